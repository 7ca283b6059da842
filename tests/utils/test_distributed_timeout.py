"""D14: a stopped (SIGSTOP) rank turns into a clear error naming it within the configurable timeout."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import torch

from pyadvt.utils import distributed as D
from pyadvt.utils.sweep import CellStore

CELLS = [(i,) for i in range(6)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stalling_rank(rank, world, port, out_dir, timeout_s):
    torch.set_num_threads(1)
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo"})

    def fn(cell):
        if rank == 1:
            os.kill(os.getpid(), signal.SIGSTOP)  # the operator's Ctrl-Z / a frozen node
        return {"v": cell[0]}

    start = time.monotonic()
    with D.session(backend="gloo", timeout_s=timeout_s):
        try:
            D.map_cells(CELLS, fn, CellStore(Path(out_dir) / "store"), progress=False)
            message = "no error"
        except Exception as exc:  # noqa: BLE001
            message = f"{type(exc).__name__}: {exc}"
        Path(out_dir, f"rank{rank}.txt").write_text(f"{time.monotonic() - start:.2f}\n{message}")
        os._exit(0)  # skip destroying a group whose peer is stopped


@pytest.mark.parametrize("via_env", [False, True])
def test_stopped_rank_is_named_within_the_timeout(tmp_path, monkeypatch, via_env):
    timeout_s = 3.0
    if via_env:
        monkeypatch.setenv("PYADVT_DIST_TIMEOUT", str(timeout_s))
    ctx = mp.get_context("fork")
    port = _free_port()
    procs = [ctx.Process(target=_stalling_rank, args=(r, 2, port, tmp_path, None if via_env else timeout_s))
             for r in range(2)]
    for p in procs:
        p.start()
    try:
        procs[0].join(60)
        assert procs[0].exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
            p.join(10)
    elapsed, message = (tmp_path / "rank0.txt").read_text().split("\n", 1)
    assert message.startswith("RankTimeoutError: rank 0: rank(s) 1 did not reach the gather of results within 3 s")
    assert "rerun to resume" in message
    assert float(elapsed) < timeout_s + 20  # not torch's 1800 s
    assert len(CellStore(tmp_path / "store")) == 3  # rank 0's share of the cells was kept


def test_timeout_default_and_validation(monkeypatch):
    monkeypatch.delenv("PYADVT_DIST_TIMEOUT", raising=False)
    assert D.timeout_seconds() == D.DEFAULT_TIMEOUT_S <= 300
    monkeypatch.setenv("PYADVT_DIST_TIMEOUT", "42")
    assert D.timeout_seconds() == 42.0 and D.timeout_seconds(7) == 7.0
    for bad in ("soon", "0", "-3", "inf"):
        monkeypatch.setenv("PYADVT_DIST_TIMEOUT", bad)
        with pytest.raises(ValueError, match="PYADVT_DIST_TIMEOUT"):
            D.timeout_seconds()
    with pytest.raises(ValueError, match="timeout_s"):
        D.timeout_seconds(0)
