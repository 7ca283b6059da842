"""D9: a cell that fails to load is moved aside (path printed) and recomputed with a warning."""

import json

import pytest
import torch

from pyadvt.utils.sweep import CellStore, CorruptCellError, CorruptCellWarning, run_cells

CELLS = [("m", i) for i in range(3)]


def _fn(calls):
    def fn(cell):
        calls.append(cell)
        return {"v": cell[1] * 10}
    return fn


def _fn_ckpt(store, calls):
    def fn(cell):
        calls.append(cell)
        return store.put(cell, {"v": cell[1]}, checkpoint={"w": torch.full((64,), float(cell[1]))})
    return fn


def _corrupt_json(path, how):
    if how == "truncated":
        path.write_text(path.read_text()[:7])
    elif how == "garbage":
        path.write_bytes(b"\x00\xff not json \x89")
    elif how == "schema":
        path.write_text(json.dumps({"answer": 42}))
    elif how == "other_key":
        rec = json.loads(path.read_text())
        rec["key"] = ["m", 99]
        path.write_text(json.dumps(rec))


@pytest.mark.parametrize("how", ["truncated", "garbage", "schema", "other_key"])
def test_corrupt_json_cell_is_moved_aside_and_recomputed(tmp_path, how):
    store = CellStore(tmp_path)
    first = run_cells(CELLS, _fn([]), store, progress=False)
    bad = store.path(CELLS[1])
    _corrupt_json(bad, how)
    calls = []
    with pytest.warns(CorruptCellWarning, match=f"{bad.name}.*moved aside to .*_corrupt.*recomputed") as rec:
        again = run_cells(CELLS, _fn(calls), CellStore(tmp_path), progress=False)
    assert str(bad) in str(rec[0].message)
    assert calls == [CELLS[1]]  # only the corrupt cell is recomputed
    assert again == first
    aside = list((tmp_path / "_corrupt").iterdir())
    assert len(aside) == 1 and aside[0].name.startswith(bad.name)
    assert json.loads(bad.read_text())["result"] == {"v": 10}  # a fresh, valid cell


@pytest.mark.parametrize("how", ["truncated", "garbage_same_size", "missing"])
def test_corrupt_checkpoint_is_detected_before_reuse(tmp_path, how):
    store = CellStore(tmp_path)
    run_cells(CELLS, _fn_ckpt(store, []), store, progress=False)
    pt = store.checkpoint_path(CELLS[2])
    data = pt.read_bytes()
    if how == "truncated":
        pt.write_bytes(data[: len(data) // 2])
    elif how == "garbage_same_size":
        pt.write_bytes(bytes(len(data)))
    else:
        pt.unlink()
    calls = []
    store2 = CellStore(tmp_path)
    with pytest.warns(CorruptCellWarning, match="checkpoint"):
        run_cells(CELLS, _fn_ckpt(store2, calls), store2, progress=False)
    assert calls == [CELLS[2]]
    assert float(store2.load_checkpoint(CELLS[2])["w"][0]) == 2.0


def test_load_checkpoint_names_the_file_when_it_fails_to_load(tmp_path):
    store = CellStore(tmp_path)
    store.put(("a",), {"v": 1}, checkpoint={"w": torch.ones(3)})
    pt = store.checkpoint_path(("a",))
    pt.write_bytes(b"x" * pt.stat().st_size)  # same size, wrong bytes
    with pytest.warns(CorruptCellWarning), pytest.raises(CorruptCellError, match=f"{pt.name}.*rerun"):
        store.load_checkpoint(("a",))
    assert not store.has(("a",))  # moved aside: the next run recomputes it


def test_unreadable_configuration_is_a_clear_error(tmp_path):
    CellStore(tmp_path, meta={"eps": 0.1})
    (tmp_path / "_meta.json").write_text("{trunc")
    with pytest.raises(ValueError, match="_meta.json is unreadable.*delete"):
        CellStore(tmp_path, meta={"eps": 0.1})


def test_keys_and_items_skip_a_corrupt_file(tmp_path):
    store = CellStore(tmp_path)
    run_cells(CELLS, _fn([]), store, progress=False)
    store.path(CELLS[0]).write_text("[")
    with pytest.warns(CorruptCellWarning):
        assert sorted(store.keys()) == CELLS[1:]
