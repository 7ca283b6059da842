"""The versioned JSON result schema every experiment and ranking writes (``pyadvt.result/1``).

A result is a JSON object::

    {
      "schema": "pyadvt.result/1",
      "kind": "transfer_matrix",            # experiment / command name
      "created": "2026-11-25T21:50:00+00:00",
      "config": {...},                      # the effective configuration (utils.config)
      "environment": {"pyadvt": ..., "torch": ..., "python": ..., "platform": ..., "device": ...,
                      "git_commit": ... or null, "seeds": [...] or {...}, "world_size": 1},
      "timings": {"train": 12.3, ...},      # seconds per named phase
      "data": {...},                        # the numbers (free-form JSON)
      # optional, used by pyadvt.report.render:
      "summary": {"spearman": 0.8, ...},   # headline scalars
      "figures": [{"type": "heatmap", "title": ..., "matrix": [[...]], ...}, ...],
      "tables": [{"title": ..., "columns": [...], "rows": [[...], ...]}, ...],
      "notes": ["..."]
    }

Figure specs are the keyword arguments of the functions in :mod:`pyadvt.report.figures`
(``type`` = ``heatmap`` | ``scatter`` | ``bars`` | ``curves``); non-finite floats are stored as
``null`` (undefined). :func:`make_result` builds one, :func:`write_result` validates and writes it
atomically, :func:`read_result` reads and validates, :class:`Timings` collects phase timings.

Example:
    >>> import tempfile, os
    >>> t = Timings()
    >>> with t("compute"):
    ...     total = sum(range(10))
    >>> res = make_result("demo", {"n": 10}, {"total": total}, timings=t, seeds=[0])
    >>> path = write_result(res, tempfile.mkdtemp())
    >>> read_result(path)["data"], os.path.basename(path)
    ({'total': 45}, 'result.json')
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pyadvt.utils.sweep import atomic_write_text, to_jsonable

__all__ = ["SCHEMA", "FIGURE_TYPES", "make_result", "environment", "git_commit", "write_result",
           "read_result", "validate_result", "find_results", "Timings"]

SCHEMA = "pyadvt.result/1"
FIGURE_TYPES = ("heatmap", "scatter", "bars", "curves", "scatter_grid")
_REQUIRED = {"schema": str, "kind": str, "config": dict, "environment": dict, "timings": dict, "data": dict}
_OPTIONAL = {"created": str, "summary": dict, "figures": list, "tables": list, "notes": list}


class Timings(dict):
    """``{phase: seconds}`` filled by ``with timings("phase"): ...`` (re-entering a phase adds up).

    Raises nothing of its own (a dict).

    Example:
        >>> t = Timings()
        >>> with t("train"):
        ...     pass
        >>> list(t), t["train"] >= 0.0
        (['train'], True)
    """

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self[phase] = self.get(phase, 0.0) + time.perf_counter() - start


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The git commit (with ``+dirty`` if the tree has changes) of the pyadvt checkout, or ``None``."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head or None


def environment(*, seeds: Any = None, device: Any = None) -> dict:
    """Versions, device, git commit, world size and seeds describing where a result was computed.

    Raises nothing: a field that cannot be found (no git checkout, no CUDA) is ``None``.

    Example:
        >>> env = environment(seeds=[0, 1])
        >>> env["seeds"], "torch" in env
        ([0, 1], True)
    """
    import torch

    import pyadvt
    from pyadvt.utils import distributed

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    env = {
        "pyadvt": pyadvt.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "device_name": (torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda")
                        and torch.cuda.is_available() else platform.processor() or platform.machine()),
        "cpu_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "world_size": distributed.world_size(),
        "seeds": to_jsonable(seeds),
    }
    try:
        env["kernels"] = pyadvt.build_info().get("kernels")
    except Exception:  # noqa: BLE001 - a broken extension must not stop a result being written
        env["kernels"] = None
    return env


def make_result(kind: str, config: Mapping, data: Mapping, *, timings: Mapping[str, float] | None = None,
                seeds: Any = None, device: Any = None, summary: Mapping | None = None,
                figures: list[Mapping] | None = None, tables: list[Mapping] | None = None,
                notes: list[str] | None = None) -> dict:
    """Assemble a validated ``pyadvt.result/1`` dict (see module docstring); values go through
    :func:`~pyadvt.utils.sweep.to_jsonable` (tensors/arrays -> lists, NaN -> null).

    Raises:
        ValueError: the assembled result is not a valid ``pyadvt.result/1`` (:func:`validate_result`).

    Example:
        >>> r = make_result("demo", {"epochs": 1}, {"acc": float("nan")}, timings={"train": 1.5})
        >>> r["schema"], r["kind"], r["data"]["acc"], r["timings"]
        ('pyadvt.result/1', 'demo', None, {'train': 1.5})
    """
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": kind,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": to_jsonable(dict(config)),
        "environment": environment(seeds=seeds, device=device),
        "timings": to_jsonable(dict(timings or {})),
        "data": to_jsonable(dict(data)),
    }
    for name, value in (("summary", summary), ("figures", figures), ("tables", tables), ("notes", notes)):
        if value is not None:
            result[name] = to_jsonable(value)
    validate_result(result)
    return result


def validate_result(result: Any) -> None:
    """Raise ``ValueError`` naming the first problem if ``result`` is not a valid ``pyadvt.result/1``.

    Raises:
        ValueError: the first problem found (not a dict, wrong ``schema``, a missing or mistyped field).

    Example:
        >>> validate_result(make_result("demo", {}, {}))
        >>> try:
        ...     validate_result({"schema": "pyadvt.result/1"})
        ... except ValueError as err:
        ...     print(err)
        result is missing the required key 'kind'
    """
    if not isinstance(result, Mapping):
        raise ValueError(f"a result must be a JSON object, got {type(result).__name__}")
    for key, typ in _REQUIRED.items():
        if key not in result:
            raise ValueError(f"result is missing the required key {key!r}")
        if not isinstance(result[key], typ):
            raise ValueError(f"result key {key!r} must be a {typ.__name__}, got {type(result[key]).__name__}")
    if result["schema"] != SCHEMA:
        raise ValueError(f"unsupported result schema {result['schema']!r} (this pyadvt reads {SCHEMA!r})")
    if not result["kind"]:
        raise ValueError("result key 'kind' must be a non-empty string")
    for key, typ in _OPTIONAL.items():
        if key in result and not isinstance(result[key], typ):
            raise ValueError(f"result key {key!r} must be a {typ.__name__}, got {type(result[key]).__name__}")
    unknown = set(result) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise ValueError(f"unknown result key {sorted(unknown)[0]!r}")
    for phase, seconds in result["timings"].items():
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
            raise ValueError(f"timings[{phase!r}] must be a number of seconds, got {seconds!r}")
    for i, fig in enumerate(result.get("figures", [])):
        if not isinstance(fig, Mapping) or fig.get("type") not in FIGURE_TYPES:
            raise ValueError(f"figures[{i}] must be an object with type in {FIGURE_TYPES}")
    for i, table in enumerate(result.get("tables", [])):
        if not isinstance(table, Mapping) or not isinstance(table.get("columns"), list) \
                or not isinstance(table.get("rows"), list):
            raise ValueError(f"tables[{i}] must be an object with 'columns' and 'rows' lists")
        width = len(table["columns"])
        for j, row in enumerate(table["rows"]):
            if not isinstance(row, list) or len(row) != width:
                raise ValueError(f"tables[{i}].rows[{j}] must be a list of {width} cells")


def write_result(result: Mapping, path: str | os.PathLike) -> Path:
    """Validate ``result`` and write it atomically; ``path`` may be a directory (-> ``result.json``).

    Non-finite floats are written as ``null`` so the file is strict JSON. Returns the file path.

    Raises:
        ValueError: ``result`` is not a valid ``pyadvt.result/1``.  OSError: ``path`` cannot be written.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> write_result(make_result("demo", {}, {"x": 1}), d).name
        'result.json'
    """
    result = to_jsonable(dict(result))
    validate_result(result)
    path = Path(path)
    if path.suffix.lower() != ".json":
        path = path / "result.json"
    return atomic_write_text(path, json.dumps(result, indent=1, allow_nan=False) + "\n")


def read_result(path: str | os.PathLike) -> dict:
    """Read and validate a result file (a directory means its ``result.json``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not JSON or not a valid ``pyadvt.result/1``.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> read_result(write_result(make_result("demo", {}, {"x": 1}), d))["data"]
        {'x': 1}
    """
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    if not path.is_file():
        raise FileNotFoundError(f"result file not found: {path}")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"result file {path} is not valid JSON: {exc}") from None
    try:
        validate_result(result)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return result


def find_results(directory: str | os.PathLike) -> list[Path]:
    """All ``*.json`` files under ``directory`` (recursively) that are ``pyadvt.result`` files.

    Raises nothing: unreadable or foreign JSON files are skipped; a missing ``directory`` gives ``[]``.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> _ = write_result(make_result("demo", {}, {}), os.path.join(d, "a"))
        >>> [p.parent.name for p in find_results(d)]
        ['a']
    """
    found = []
    for path in sorted(Path(directory).rglob("*.json")):
        if path.name.startswith(".tmp-"):
            continue
        try:
            with path.open(encoding="utf-8") as fh:
                head = json.load(fh)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(head, dict) and head.get("schema") == SCHEMA:
            found.append(path)
    return found
