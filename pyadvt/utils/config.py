"""Experiment configuration: defaults <- config file (YAML/TOML/JSON) <- ``--set`` overrides <- flags.

Every experiment and ranking command declares a nested ``defaults`` dict. The effective
configuration is built by :func:`resolve_config`, later sources winning:

1. ``defaults`` (the experiment's own),
2. a config file given with ``--config PATH`` (``.yaml``/``.yml``, ``.toml`` or ``.json``),
3. ``--set key.sub=value`` overrides (values parsed as YAML scalars/lists: ``3``, ``0.5``, ``true``,
   ``[1, 2]``, ``resnet``),
4. explicit CLI flags mapped to dotted keys (``None`` values = flag not given, skipped).

Unknown keys are rejected with a ``ValueError`` naming the key (and the closest known key), and a
value whose type does not match the default's (e.g. a string for an int) is rejected naming the
key; ints are accepted for floats, lists for tuples. A default of ``None`` or an empty dict accepts
anything (free-form sections such as a ``models`` mapping); wrap a section in :class:`FreeForm` to
give it defaults and still accept new keys (e.g. extra model constructor arguments).

Example:
    >>> defaults = {"eps": 0.1, "train": {"epochs": 3, "lr": 0.05}}
    >>> resolve_config(defaults, overrides=["train.epochs=5"], flags={"eps": None})
    {'eps': 0.1, 'train': {'epochs': 5, 'lr': 0.05}}
    >>> resolve_config(defaults, overrides=["train.epoch=5"])
    Traceback (most recent call last):
    ...
    ValueError: unknown config key 'train.epoch' (did you mean 'train.epochs'?)
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["FreeForm", "load_config", "merge_config", "parse_overrides", "resolve_config", "add_config_arguments",
           "config_from_args", "dump_config"]


class FreeForm(dict):
    """A config section whose defaults are type-checked but which also accepts new keys.

    Example:
        >>> resolve_config({"cnn": FreeForm(channels=[16, 32])}, overrides=["cnn.activation=tanh"])
        {'cnn': {'channels': [16, 32], 'activation': 'tanh'}}
    """


def load_config(path: str | os.PathLike) -> dict:
    """Read a YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON (``.json``) config file into a dict.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (naming the file) for an
    unsupported extension, a parse error or a top level that is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ValueError(f"config file {path} must end in .yaml, .yml, .toml or .json")
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot parse config file {path}: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping at the top level, got {type(data).__name__}")
    return data


def _type_name(value: Any) -> str:
    return type(value).__name__


def _coerce(default: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the type of ``default`` (the known schema) and coerce int->float."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"config key {key!r} must be true/false, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"config key {key!r} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config key {key!r} must be an integer, got {value!r}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"config key {key!r} must be a string, got {value!r}")
        return value
    if isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ValueError(f"config key {key!r} must be a list, got {value!r}")
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(f"config key {key!r} must be a mapping, got {value!r}")
        return value
    if not isinstance(value, type(default)):
        raise ValueError(f"config key {key!r} must be a {_type_name(default)}, got {value!r}")
    return value


def merge_config(base: Mapping, override: Mapping, *, strict: bool = True, _prefix: str = "") -> dict:
    """Deep-merge ``override`` into a copy of ``base`` and return it.

    With ``strict=True`` every key of ``override`` must exist in ``base`` (unless the base section is
    an empty dict: free-form) and values must match the base value's type (see module docstring).
    """
    if not isinstance(override, Mapping):
        raise ValueError(f"config section {_prefix or '<top>'!r} must be a mapping, got {override!r}")
    out = copy.deepcopy(base)
    out = FreeForm(out) if isinstance(base, FreeForm) else dict(out)
    free_form = not base or isinstance(base, FreeForm)
    for key, value in override.items():
        name = f"{_prefix}.{key}" if _prefix else str(key)
        if key not in base:
            if strict and not free_form:
                close = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
                hint = f" (did you mean {(_prefix + '.' if _prefix else '') + close[0]!r}?)" if close else (
                    f" (known keys: {', '.join(map(str, base))})")
                raise ValueError(f"unknown config key {name!r}{hint}")
            out[key] = copy.deepcopy(value)
            continue
        default = base[key]
        if isinstance(default, Mapping) and default and isinstance(value, Mapping):
            out[key] = merge_config(default, value, strict=strict, _prefix=name)
        else:
            out[key] = copy.deepcopy(_coerce(default, value, name) if strict else value)
    return out


def _set_dotted(target: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if not all(parts):
        raise ValueError(f"bad config key {dotted!r}: empty component")
    node = target
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"config key {dotted!r} conflicts with a non-mapping value at {part!r}")
    node[parts[-1]] = value


def parse_overrides(items: Iterable[str] | None) -> dict:
    """Turn ``["a.b=1", "name=resnet"]`` into ``{"a": {"b": 1}, "name": "resnet"}``.

    Values are parsed as YAML (``1`` int, ``0.5`` float, ``true`` bool, ``[1, 2]`` list, ``null``);
    anything else stays a string. ``ValueError`` for an item without ``=``.
    """
    out: dict = {}
    for item in items or ():
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        key, _, raw = item.partition("=")
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(out, key, value)
    return out


def resolve_config(defaults: Mapping, config: Mapping | str | os.PathLike | None = None, *,
                   overrides: Iterable[str] | None = None, flags: Mapping[str, Any] | None = None) -> dict:
    """The effective configuration: ``defaults`` <- ``config`` (dict or file) <- overrides <- flags.

    Args:
        defaults: the full nested default configuration (its keys are the schema).
        config: a partial config dict, or the path of a YAML/TOML/JSON file, or ``None``.
        overrides: ``key.sub=value`` strings (CLI ``--set``).
        flags: ``{dotted.key: value}`` from explicit CLI flags; ``None`` values are skipped.
    """
    cfg = copy.deepcopy(dict(defaults))
    if config is not None:
        cfg = merge_config(cfg, config if isinstance(config, Mapping) else load_config(config))
    cfg = merge_config(cfg, parse_overrides(overrides))
    flag_tree: dict = {}
    for key, value in (flags or {}).items():
        if value is not None:
            _set_dotted(flag_tree, key, value)
    return merge_config(cfg, flag_tree)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config PATH`` and repeatable ``--set KEY=VALUE`` to ``parser``."""
    parser.add_argument("--config", metavar="PATH", default=None,
                        help="YAML/TOML/JSON config file (CLI flags override it)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="override one config value, e.g. --set train.epochs=5 (repeatable)")


def config_from_args(defaults: Mapping, args: argparse.Namespace,
                     flag_map: Mapping[str, str] | None = None) -> dict:
    """:func:`resolve_config` from parsed arguments of :func:`add_config_arguments`.

    ``flag_map`` maps argparse destinations to dotted config keys, e.g. ``{"epochs": "train.epochs"}``;
    flags left at ``None`` (give them ``default=None``) do not override the config.
    """
    flags = {key: getattr(args, dest, None) for dest, key in (flag_map or {}).items()}
    return resolve_config(defaults, getattr(args, "config", None),
                          overrides=getattr(args, "overrides", None), flags=flags)


def dump_config(config: Mapping, path: str | os.PathLike | None = None) -> str:
    """The config as YAML text (written to ``path`` too when given), reloadable with ``--config``."""
    text = yaml.safe_dump(json.loads(json.dumps(config, default=str)), sort_keys=False)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
