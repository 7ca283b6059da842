"""Config files (YAML/TOML/JSON), defaults merging, --set overrides, flags, unknown-key errors."""

from __future__ import annotations

import argparse
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt.utils.config import (FreeForm, add_config_arguments, config_from_args, dump_config, load_config,
                                 merge_config, parse_overrides, resolve_config)

DEFAULTS = {
    "seed": 0,
    "eps": 0.1,
    "quiet": False,
    "models": ["mlp", "cnn"],
    "train": {"epochs": 3, "lr": 0.05, "optimizer": "sgd"},
    "extra": {},          # free-form section
    "checkpoint": None,   # anything goes
}


@pytest.mark.parametrize("suffix, text", [
    (".yaml", "eps: 0.25\ntrain:\n  epochs: 7\nmodels: [a, b, c]\n"),
    (".yml", "eps: 0.25\ntrain: {epochs: 7}\nmodels:\n  - a\n  - b\n  - c\n"),
    (".toml", "eps = 0.25\nmodels = ['a', 'b', 'c']\n[train]\nepochs = 7\n"),
    (".json", '{"eps": 0.25, "train": {"epochs": 7}, "models": ["a", "b", "c"]}'),
])
def test_same_config_in_every_format(tmp_path, suffix, text):
    path = tmp_path / f"cfg{suffix}"
    path.write_text(text)
    cfg = resolve_config(DEFAULTS, path)
    assert cfg["eps"] == 0.25 and cfg["train"] == {"epochs": 7, "lr": 0.05, "optimizer": "sgd"}
    assert cfg["models"] == ["a", "b", "c"] and cfg["seed"] == 0
    assert DEFAULTS["train"]["epochs"] == 3  # defaults not mutated


def test_precedence_defaults_file_overrides_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("eps: 0.2\nseed: 5\ntrain: {lr: 0.1}\n")
    cfg = resolve_config(DEFAULTS, path, overrides=["seed=6", "train.epochs=9"],
                         flags={"seed": 7, "train.lr": None})
    assert cfg["eps"] == 0.2                # file beats default
    assert cfg["train"]["epochs"] == 9      # override beats default
    assert cfg["seed"] == 7                 # flag beats override and file
    assert cfg["train"]["lr"] == 0.1        # a flag left at None does not override


def test_unknown_keys_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown config key 'train\.epoch' \(did you mean 'train\.epochs'\?\)"):
        resolve_config(DEFAULTS, overrides=["train.epoch=5"])
    path = tmp_path / "c.toml"
    path.write_text("[training]\nepochs = 1\n")
    with pytest.raises(ValueError, match="unknown config key 'training'"):
        resolve_config(DEFAULTS, path)
    with pytest.raises(ValueError, match="unknown config key 'zzz' .known keys: seed, eps"):
        resolve_config(DEFAULTS, {"zzz": 1})
    # free-form sections accept new keys
    assert resolve_config(DEFAULTS, {"extra": {"anything": [1]}})["extra"] == {"anything": [1]}


@pytest.mark.parametrize("override, message", [
    ("seed=abc", "'seed' must be an integer"),
    ("seed=1.5", "'seed' must be an integer"),
    ("eps=high", "'eps' must be a number"),
    ("quiet=1", "'quiet' must be true/false"),
    ("models=mlp", "'models' must be a list"),
    ("train=3", "'train' must be a mapping"),
    ("train.optimizer=3", "'train.optimizer' must be a string"),
])
def test_type_mismatch_names_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(DEFAULTS, overrides=[override])


def test_overrides_parse_yaml_values_and_coerce_numbers():
    cfg = resolve_config(DEFAULTS, overrides=["eps=1", "train.lr=1e-3", "quiet=true", "models=[x, y]",
                                              "checkpoint=path/to.pt", "extra.k=null"])
    assert cfg["eps"] == 1.0 and isinstance(cfg["eps"], float)
    assert cfg["train"]["lr"] == 1e-3
    assert cfg["quiet"] is True and cfg["models"] == ["x", "y"]
    assert cfg["checkpoint"] == "path/to.pt" and cfg["extra"] == {"k": None}
    assert parse_overrides(["a.b.c=x=y", "s="]) == {"a": {"b": {"c": "x=y"}}, "s": ""}


@pytest.mark.parametrize("bad", ["noequals", ".a=1", "a..b=1"])
def test_malformed_overrides(bad):
    with pytest.raises(ValueError, match="key"):
        parse_overrides([bad])


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    for name, text, msg in [("a.ini", "x=1", "must end in"), ("b.yaml", "a: [1,", "cannot parse config file"),
                            ("c.toml", "a = = 1", "cannot parse config file"), ("d.yaml", "- 1\n- 2\n", "mapping")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=msg):
            load_config(tmp_path / name)
    (tmp_path / "empty.yaml").write_text("")
    assert load_config(tmp_path / "empty.yaml") == {}


def test_cli_arguments_and_flag_map(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {epochs: 4}\n")
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--eps", type=float, default=None)
    args = parser.parse_args(["--config", str(path), "--set", "seed=3", "--set", "eps=0.3", "--epochs", "8"])
    cfg = config_from_args(DEFAULTS, args, {"epochs": "train.epochs", "eps": "eps"})
    assert cfg["train"]["epochs"] == 8 and cfg["seed"] == 3 and cfg["eps"] == 0.3
    assert config_from_args(DEFAULTS, parser.parse_args([])) == DEFAULTS


def test_dump_config_roundtrips(tmp_path):
    cfg = resolve_config(DEFAULTS, overrides=["train.epochs=11"])
    text = dump_config(cfg, tmp_path / "out.yaml")
    assert yaml.safe_load(text) == cfg
    assert resolve_config(DEFAULTS, tmp_path / "out.yaml") == cfg


scalars = st.one_of(st.integers(-1000, 1000), st.booleans(),
                    st.text(alphabet="abcxyz", min_size=1, max_size=6).filter(
                        lambda s: s not in ("y", "n", "yes", "no", "on", "off", "null")))


@settings(max_examples=40, deadline=None)
@given(tree=st.dictionaries(st.sampled_from(["a", "b", "c"]),
                            st.one_of(scalars, st.dictionaries(st.sampled_from(["x", "y"]), scalars, min_size=1)),
                            min_size=1))
def test_override_strings_reproduce_any_config(tree):
    """Writing a config as --set strings and merging into itself is the identity (and via JSON file too)."""
    items = []

    def flatten(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, dict):
                flatten(v, f"{prefix}{k}.")
            else:
                items.append(f"{prefix}{k}={json.dumps(v)}")

    flatten(tree)
    assert parse_overrides(items) == tree
    assert merge_config(tree, parse_overrides(items)) == tree


def test_free_form_sections_keep_checking_known_keys(tmp_path):
    defaults = {"kw": FreeForm(cnn=FreeForm(channels=[16, 32]), mlp=FreeForm()), "eps": 0.1}
    path = tmp_path / "c.yaml"
    path.write_text("kw:\n  cnn: {channels: [8, 8], activation: tanh}\n  resnet: {widths: [4]}\n")
    cfg = resolve_config(defaults, path, overrides=["kw.mlp.hidden=[32]", "kw.cnn.dropout=0.1"])
    assert cfg["kw"] == {"cnn": {"channels": [8, 8], "activation": "tanh", "dropout": 0.1},
                         "mlp": {"hidden": [32]}, "resnet": {"widths": [4]}}
    with pytest.raises(ValueError, match="'kw.cnn.channels' must be a list"):
        resolve_config(defaults, overrides=["kw.cnn.channels=3"])
    with pytest.raises(ValueError, match="unknown config key 'epss'"):
        resolve_config(defaults, overrides=["epss=1"])
    assert yaml.safe_load(dump_config(cfg)) == cfg
