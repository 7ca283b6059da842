"""torch.distributed helpers: single-process no-ops, and 2 gloo ranks on loopback == 1 process."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pyadvt.utils import distributed as D
from pyadvt.utils.sweep import CellStore

CELLS = [(src, tgt) for src in range(4) for tgt in range(3)]


def cell_value(cell):
    """A deterministic per-cell computation with a tiny random model (like one transfer-grid cell)."""
    g = torch.Generator().manual_seed(100 * cell[0] + cell[1])
    net = torch.nn.Linear(5, 3)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        out = net(torch.randn(8, 5, generator=g)).softmax(-1)
    return {"mean": out.mean(0), "argmax": out.argmax(-1)}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback_env(rank: int, world: int, port: int) -> dict:
    return {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo"}


def _rank_main(rank, world, port, out_dir, use_store):
    """One torchrun-style rank (forked, so no second torch import): env vars -> init_from_env -> map_cells."""
    torch.set_num_threads(1)
    os.environ.update(_loopback_env(rank, world, port))
    out_dir = Path(out_dir)
    computed = []

    def fn(cell):
        computed.append(list(cell))
        return cell_value(cell)

    code = 1
    try:
        with D.session(backend="gloo") as active:
            store = CellStore(out_dir / "store") if use_store else None
            with D.session(backend="gloo") as inner:  # a nested session keeps the outer group alive
                assert inner is True
            merged = D.map_cells(CELLS, fn, store, progress=False)
            info = {"active": active, "rank": D.rank(), "world": D.world_size(), "main": D.is_main(),
                    "gathered": D.gather_objects(D.rank() * 10), "bcast": D.broadcast_object(f"from{D.rank()}"),
                    "computed": computed, "merged": [[list(k), v] for k, v in merged.items()]}
            (out_dir / f"rank{rank}.json").write_text(json.dumps(info))
            D.rank_zero_only(lambda: (out_dir / "written_by_rank0").write_text(str(D.rank())))()
            D.barrier()
        code = 0
    finally:
        os._exit(code)


def _failing_rank_main(rank, world, port, out_dir):
    torch.set_num_threads(1)
    os.environ.update(_loopback_env(rank, world, port))

    def fn(cell):
        if cell == CELLS[3]:  # dealt to rank 1
            raise ArithmeticError("bad cell")
        return cell_value(cell)

    with D.session(backend="gloo"):
        try:
            D.map_cells(CELLS, fn, CellStore(Path(out_dir) / "store"), progress=False)
            message = "no error"
        except Exception as exc:  # noqa: BLE001
            message = f"{type(exc).__name__}: {exc}"
    Path(out_dir, f"error{rank}.txt").write_text(message)
    os._exit(0)


def test_a_failing_cell_stops_every_rank_without_hanging(tmp_path):
    ctx = mp.get_context("fork")
    port = _free_port()
    procs = [ctx.Process(target=_failing_rank_main, args=(r, 2, port, tmp_path)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert (tmp_path / "error1.txt").read_text() == "ArithmeticError: bad cell"
    assert (tmp_path / "error0.txt").read_text().startswith(
        "RuntimeError: a cell failed on another rank (rank 1: ArithmeticError: bad cell)")
    assert len(CellStore(tmp_path / "store")) >= len(CELLS[0::2])  # rank 0's cells were kept


def _run_ranks(tmp_path, world=2, use_store=False):
    ctx = mp.get_context("fork")
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, world, port, tmp_path, use_store)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * world
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]


def test_single_process_is_a_noop(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert D.init_from_env() is False
    assert (D.rank(), D.world_size(), D.is_main(), D.is_distributed()) == (0, 1, True, False)
    assert D.gather_objects({"a": 1}) == [{"a": 1}] and D.broadcast_object(5) == 5
    D.barrier()
    assert D.rank_zero_only(lambda: "ran")() == "ran"
    assert D.local_device() == torch.device("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    with D.session() as active:
        assert active is False


def test_init_from_env_needs_torchrun_variables(monkeypatch):
    for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="RANK, MASTER_ADDR, MASTER_PORT not set: launch with torchrun"):
        D.init_from_env()


def test_shard_partitions_round_robin():
    items = list(range(11))
    parts = [D.shard(items, rank_id=r, num_ranks=3) for r in range(3)]
    assert sorted(x for p in parts for x in p) == items and parts[2] == [2, 5, 8]
    with pytest.raises(ValueError, match="rank < world_size"):
        D.shard(items, rank_id=3, num_ranks=3)


def test_two_gloo_ranks_match_one_process(tmp_path):
    single = D.map_cells(CELLS, cell_value, progress=False)
    ranks = _run_ranks(tmp_path)
    expected = [[list(k), v] for k, v in single.items()]
    for r, info in enumerate(ranks):
        assert info["active"] is True and info["rank"] == r and info["world"] == 2 and info["main"] == (r == 0)
        assert info["gathered"] == [0, 10] and info["bcast"] == "from0"
        assert info["merged"] == expected  # identical results, in grid order, on every rank
    # each cell computed exactly once, split round-robin between the ranks
    assert ranks[0]["computed"] == [list(c) for c in CELLS[0::2]]
    assert ranks[1]["computed"] == [list(c) for c in CELLS[1::2]]
    assert (tmp_path / "written_by_rank0").read_text() == "0"


def test_two_ranks_share_a_store_and_a_single_process_resumes_from_it(tmp_path):
    ranks = _run_ranks(tmp_path, use_store=True)
    store = CellStore(tmp_path / "store")
    assert len(store) == len(CELLS)
    calls = []
    resumed = D.map_cells(CELLS, lambda c: calls.append(c) or cell_value(c), store, progress=False)
    assert calls == []  # nothing recomputed
    assert [[list(k), v] for k, v in resumed.items()] == ranks[0]["merged"] == ranks[1]["merged"]


def test_resumed_sweep_deals_only_the_remaining_cells(tmp_path):
    store = CellStore(tmp_path / "store")
    done = CELLS[:5]  # e.g. a crashed earlier run finished these
    D.map_cells(done, cell_value, store, progress=False)
    ranks = _run_ranks(tmp_path, use_store=True)
    remaining = [list(c) for c in CELLS[5:]]
    assert ranks[0]["computed"] == remaining[0::2] and ranks[1]["computed"] == remaining[1::2]
    single = D.map_cells(CELLS, cell_value, progress=False)
    assert ranks[0]["merged"] == ranks[1]["merged"] == [[list(k), v] for k, v in single.items()]


_TORCHRUN_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    from pyadvt.utils import distributed as D
    sys.path.insert(0, sys.argv[2])
    from test_distributed import CELLS, cell_value
    with D.session(backend="gloo"):
        merged = D.map_cells(CELLS, cell_value, progress=False)
        D.rank_zero_only(lambda: open(sys.argv[1], "w").write(
            json.dumps({"world": D.world_size(), "merged": [[list(k), v] for k, v in merged.items()]})))()
""")


@pytest.mark.slow
def test_torchrun_two_processes_on_loopback(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_TORCHRUN_SCRIPT)
    out = tmp_path / "out.json"
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(script), str(out),
           str(Path(__file__).parent)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    single = D.map_cells(CELLS, cell_value, progress=False)
    assert result == {"world": 2, "merged": [[list(k), v] for k, v in single.items()]}
