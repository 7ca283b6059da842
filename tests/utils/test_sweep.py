"""CellStore / run_cells: atomic per-cell storage, resumption after a crash, sharding."""

from __future__ import annotations

import json
import os
import signal
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt.utils import sweep
from pyadvt.utils.sweep import CellStore, key_to_str, run_cells, to_jsonable

keys = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=12)),
                    lambda children: st.lists(children, max_size=3).map(tuple), max_leaves=6)


@settings(max_examples=25, deadline=None)
@given(key=keys, value=st.floats(allow_nan=False, allow_infinity=False))
def test_put_get_roundtrip_any_key(tmp_path_factory, key, value):
    store = CellStore(tmp_path_factory.mktemp("s"))
    assert not store.has(key) and store.get(key, "absent") == "absent"
    assert store.put(key, {"v": value}) == {"v": value}
    assert store.has(key) and key in store
    assert store.get(key) == {"v": value}
    assert store.keys() == [key]
    assert store.path(key).parent == store.directory


def test_distinct_keys_distinct_files(tmp_path):
    store = CellStore(tmp_path)
    ks = [1, "1", (1,), ("a", "b"), "a_b", ("a b",), True, None]  # similar-looking keys
    for i, k in enumerate(ks):
        store.put(k, i)
    assert [store.get(k) for k in ks] == list(range(len(ks)))
    assert len({store.path(k) for k in ks}) == len(ks)
    assert sorted(map(key_to_str, store.keys())) == sorted(map(key_to_str, ks))


def test_bad_keys_and_values(tmp_path):
    store = CellStore(tmp_path)
    with pytest.raises(TypeError, match="cell keys"):
        store.put(1.5, 0)
    with pytest.raises(TypeError, match="cannot convert object"):
        store.put("k", object())
    assert not store.has("k")


def test_to_jsonable_converts_tensors_and_marks_nonfinite_undefined():
    out = to_jsonable({"t": torch.tensor([1.0, float("nan"), float("inf")]), "a": np.arange(3),
                       "s": np.float32(0.5), "tup": (1, (2, 3)), "p": Path("/x"), 3: {1, 2}})
    assert out == {"t": [1.0, None, None], "a": [0, 1, 2], "s": 0.5, "tup": [1, [2, 3]], "p": "/x",
                   "3": [1, 2]}
    json.dumps(out, allow_nan=False)


def test_failed_write_leaves_no_cell_and_no_temp_file(tmp_path, monkeypatch):
    store = CellStore(tmp_path)
    store.put("a", 1)

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(sweep.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.put("b", 2)
    with pytest.raises(OSError):
        store.put("a", 99)  # an overwrite that fails keeps the old value
    monkeypatch.undo()
    assert not store.has("b") and store.get("a") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [store.path("a").name]


def test_checkpoint_saved_with_cell(tmp_path):
    store = CellStore(tmp_path)
    state = {"w": torch.randn(3, 2), "b": torch.zeros(2)}
    store.put(("net", 0), {"acc": 0.9}, checkpoint=state)
    loaded = store.load_checkpoint(("net", 0))
    assert torch.equal(loaded["w"], state["w"]) and torch.equal(loaded["b"], state["b"])
    # run_cells re-putting the result keeps the checkpoint
    run_cells([("net", 0), ("net", 1)], lambda c: store.put(c, {"acc": 0.1}, checkpoint=state) and {"acc": 0.1},
              store, progress=False)
    assert torch.equal(store.load_checkpoint(("net", 1))["w"], state["w"])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        store.load_checkpoint("other")


def test_meta_mismatch_is_rejected(tmp_path):
    CellStore(tmp_path, meta={"eps": 0.1, "models": ["a", "b"]})
    CellStore(tmp_path, meta={"eps": 0.1, "models": ["a", "b"]})  # same config: fine
    with pytest.raises(ValueError, match="different configuration.*eps"):
        CellStore(tmp_path, meta={"eps": 0.2, "models": ["a", "b"]})
    with pytest.raises(ValueError, match="'seed' is only in the new"):
        CellStore(tmp_path, meta={"eps": 0.1, "models": ["a", "b"], "seed": 1})


def test_run_cells_skips_finished_cells_and_roundtrips(tmp_path):
    store = CellStore(tmp_path)
    calls = []

    def fn(cell):
        calls.append(cell)
        return {"pair": cell, "x": torch.tensor([cell[0] * 0.5])}

    cells = [(i, j) for i in range(3) for j in range(2)]
    first = run_cells(cells[:4], fn, store, progress=False)
    assert calls == cells[:4]
    both = run_cells(cells, fn, store, progress=False)
    assert calls == cells  # only the two new cells were computed
    assert list(both) == cells
    assert {c: both[c] for c in first} == first
    assert both[(2, 1)] == {"pair": [2, 1], "x": [1.0]}
    assert run_cells(cells, fn, None, progress=False) == both  # same values with no store


def test_run_cells_shards_partition_the_grid(tmp_path):
    cells = [("s", i) for i in range(7)]
    parts = [run_cells(cells, lambda c: c[1] ** 2, CellStore(tmp_path), progress=False, shard=(r, 3))
             for r in range(3)]
    merged = {k: v for p in parts for k, v in p.items()}
    assert merged == {c: c[1] ** 2 for c in cells}
    assert sum(len(p) for p in parts) == len(cells)
    assert list(parts[1]) == cells[1::3]


@pytest.mark.parametrize("shard, err", [((3, 3), ValueError), ((0, 0), ValueError), ("ab", TypeError)])
def test_run_cells_bad_shard(shard, err):
    with pytest.raises(err, match="shard"):
        run_cells([1], lambda c: c, None, progress=False, shard=shard)


def test_run_cells_rejects_duplicate_cells():
    with pytest.raises(ValueError, match="more than once"):
        run_cells([("a", 1), ("a", 1)], lambda c: 0, None, progress=False)


_FORK = mp.get_context("fork")  # a forked child starts instantly (no second torch import)


def _sweep_worker(store_dir, log_path, out_path, crash_after, delay):
    started = 0

    def cell_fn(cell):
        nonlocal started
        with open(log_path, "a") as fh:
            fh.write(json.dumps(cell) + "\n")
        started += 1
        if started == crash_after:
            os._exit(17)  # crash in the middle of a cell, no cleanup
        time.sleep(delay)
        g = torch.Generator().manual_seed(1000 * cell[0] + cell[1])
        return {"value": torch.randn(4, generator=g).tolist(), "cell": cell}

    cells = [(i, j) for i in range(3) for j in range(3)]
    out = run_cells(cells, cell_fn, CellStore(store_dir, meta={"grid": 3}), progress=False)
    Path(out_path).write_text(json.dumps([[list(k), v] for k, v in out.items()]))
    os._exit(0)


def _run_worker(tmp_path, name, crash_after, delay=0.0):
    proc = _FORK.Process(target=_sweep_worker, args=(tmp_path / name, tmp_path / f"{name}.log",
                                                     tmp_path / f"{name}.out", crash_after, delay))
    proc.start()
    return proc


def _log_counts(log: Path) -> dict:
    counts: dict = {}
    for line in log.read_text().splitlines():
        counts[tuple(json.loads(line))] = counts.get(tuple(json.loads(line)), 0) + 1
    return counts


def test_crash_midway_then_resume_recomputes_at_most_one_cell(tmp_path):
    for name, crash_after in (("ref", -1), ("store", 5)):
        proc = _run_worker(tmp_path, name, crash_after)
        proc.join(60)
        assert proc.exitcode == (0 if crash_after < 0 else 17)
    assert len(CellStore(tmp_path / "store")) == 4  # cells 1-4 finished, the 5th died mid-cell
    assert not (tmp_path / "store.out").exists()
    proc = _run_worker(tmp_path, "store", -1)
    proc.join(60)
    assert proc.exitcode == 0
    counts = _log_counts(tmp_path / "store.log")
    assert len(counts) == 9 and sum(v > 1 for v in counts.values()) == 1 and max(counts.values()) == 2
    # identical final results to the uninterrupted run
    assert json.loads((tmp_path / "store.out").read_text()) == json.loads((tmp_path / "ref.out").read_text())


def test_sigkill_at_random_time_never_corrupts_the_store(tmp_path):
    proc = _run_worker(tmp_path, "store", -1, delay=0.1)
    deadline = time.time() + 60
    while time.time() < deadline and len(CellStore(tmp_path / "store")) < 3:
        time.sleep(0.02)
    time.sleep(0.05)  # somewhere inside a cell (or its write)
    proc.kill()
    proc.join(60)
    assert proc.exitcode == -signal.SIGKILL
    store = CellStore(tmp_path / "store")
    assert 3 <= len(store) < 9
    for _, result in store.items():  # every stored cell is complete JSON
        assert len(result["value"]) == 4
    proc = _run_worker(tmp_path, "store", -1)
    proc.join(60)
    assert proc.exitcode == 0
    counts = _log_counts(tmp_path / "store.log")
    assert len(counts) == 9 and sum(v > 1 for v in counts.values()) <= 1
    assert len(json.loads((tmp_path / "store.out").read_text())) == 9


def test_config_digest_is_stable_and_sensitive():
    a = sweep.config_digest(0, {"epochs": 3, "lr": 0.05, "dev": torch.device("cpu")})
    assert a == sweep.config_digest(0, {"lr": 0.05, "epochs": 3, "dev": torch.device("cpu")})  # key order
    assert a != sweep.config_digest(0, {"epochs": 4, "lr": 0.05, "dev": torch.device("cpu")})
    assert a != sweep.config_digest(1, {"epochs": 3, "lr": 0.05, "dev": torch.device("cpu")})
    assert len(a) == 10 and int(a, 16) >= 0
    assert to_jsonable([torch.float32, torch.device("cpu")]) == ["torch.float32", "cpu"]


def test_stale_temporary_files_are_removed_fresh_ones_kept(tmp_path):
    stale, fresh = tmp_path / ".tmp-old", tmp_path / ".tmp-new"
    stale.write_text("{")
    fresh.write_text("{")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    store = CellStore(tmp_path)
    assert not stale.exists() and fresh.exists() and len(store) == 0
