"""``torch.distributed`` helpers for scaling sweeps out with ``torchrun`` (gloo on CPU, NCCL on GPU).

A transferability study is a grid of independent cells, so scale-out is: every rank computes its
share of the cells (:func:`shard`), results are gathered to every rank (:func:`gather_objects`) and
merged, and only rank 0 writes files (:func:`is_main` / :func:`rank_zero_only`). :func:`map_cells`
does all of this, combined with the resumable :class:`~pyadvt.utils.sweep.CellStore`.

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment, or ``WORLD_SIZE=1``) everything is a
no-op single process: ``rank() == 0``, ``world_size() == 1``, ``gather_objects(x) == [x]``. So the
same code runs unchanged as::

    python -m pyadvt experiment NAME ...
    torchrun --nproc_per_node=2 -m pyadvt experiment NAME ...

Stalled ranks: the process-group timeout defaults to :data:`DEFAULT_TIMEOUT_S` (5 minutes, not
torch's 30), configurable per call (``timeout_s``) or with ``PYADVT_DIST_TIMEOUT`` (seconds). Before each
collective of this module every rank records its arrival in the rendezvous store; a rank that does not
arrive within the timeout (stopped with SIGSTOP, hung, or far slower than the others) turns into a
:class:`RankTimeoutError` on the others naming it, instead of a hang. A killed rank is detected by the
transport at once.

Example:
    >>> init_from_env()          # no torchrun variables here: single process
    False
    >>> shard(list("abcde")), gather_objects({"x": 1})
    (['a', 'b', 'c', 'd', 'e'], [{'x': 1}])
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from pyadvt.utils.sweep import CellStore, key_to_str, run_cells
from pyadvt.utils.validation import InvalidValueError

__all__ = ["init_from_env", "cleanup", "session", "is_distributed", "rank", "world_size", "is_main",
           "local_device", "shard", "gather_objects", "broadcast_object", "barrier", "rank_zero_only",
           "map_cells", "DEFAULT_TIMEOUT_S", "RankTimeoutError", "timeout_seconds"]

T = TypeVar("T")
_OWNED = False  # whether this module initialised the process group (and should destroy it)
DEFAULT_TIMEOUT_S = 300.0
_TIMEOUT_ENV = "PYADVT_DIST_TIMEOUT"
_state = {"timeout_s": DEFAULT_TIMEOUT_S, "op": 0}


class RankTimeoutError(RuntimeError):
    """One or more ranks did not reach a collective within the process-group timeout."""


def timeout_seconds(timeout_s: float | None = None) -> float:
    """The process-group timeout: ``timeout_s``, else ``$PYADVT_DIST_TIMEOUT``, else 300 s."""
    if timeout_s is None:
        raw = os.environ.get(_TIMEOUT_ENV, "").strip()
        if not raw:
            return DEFAULT_TIMEOUT_S
        try:
            timeout_s = float(raw)
        except ValueError:
            raise InvalidValueError(f"{_TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None
        name = _TIMEOUT_ENV
    else:
        name = "timeout_s"
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < float("inf"):
        raise InvalidValueError(f"{name} must be a finite number of seconds > 0, got {timeout_s!r}")
    return float(timeout_s)


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of ranks (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0: the only rank that writes results, reports and logs."""
    return rank() == 0


def _default_backend() -> str:
    return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


def init_from_env(backend: str | None = None, *, timeout_s: float | None = None) -> bool:
    """Initialise the default process group from ``torchrun``'s environment variables.

    Reads ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. When
    ``WORLD_SIZE`` is missing or 1 nothing happens and ``False`` is returned. ``backend`` defaults to
    ``"nccl"`` when CUDA is available (the process then uses ``cuda:LOCAL_RANK``) and ``"gloo"``
    otherwise. Calling it again when a group already exists returns ``True`` without re-initialising.
    ``timeout_s`` bounds every collective (default :func:`timeout_seconds`: 300 s or
    ``$PYADVT_DIST_TIMEOUT``).
    """
    global _OWNED
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return False
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: launch with torchrun")
    timeout = timeout_seconds(timeout_s)
    backend = backend or _default_backend()
    if backend not in ("gloo", "nccl", "mpi"):
        raise ValueError(f"backend must be 'gloo', 'nccl' or 'mpi', got {backend!r}")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend, init_method="env://", timeout=timedelta(seconds=timeout))
    _state.update(timeout_s=timeout, op=0)
    _OWNED = True
    return True


def cleanup() -> None:
    """Destroy the process group if :func:`init_from_env` created it."""
    global _OWNED
    if _OWNED and dist.is_initialized():
        dist.destroy_process_group()
    _OWNED = False


@contextlib.contextmanager
def session(backend: str | None = None, *, timeout_s: float | None = None) -> Iterator[bool]:
    """``with session() as distributed:`` = :func:`init_from_env` ... :func:`cleanup`.

    Sessions nest: an inner session inside an existing process group neither re-initialises nor
    destroys it (so a CLI wrapper and a command may both open one).
    """
    created = not (dist.is_available() and dist.is_initialized())
    active = init_from_env(backend, timeout_s=timeout_s)
    try:
        yield active
    finally:
        if created:
            cleanup()


def local_device() -> torch.device:
    """The device this rank should compute on: ``cuda:LOCAL_RANK`` under NCCL (or with CUDA), else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device("cpu")


def shard(items: Iterable[T], *, rank_id: int | None = None, num_ranks: int | None = None) -> list[T]:
    """This rank's share of ``items``: ``items[rank::world_size]`` (round-robin, so costly cells
    that are adjacent in the grid spread over ranks). Defaults to the current process group."""
    r = rank() if rank_id is None else int(rank_id)
    w = world_size() if num_ranks is None else int(num_ranks)
    if w < 1 or not 0 <= r < w:
        raise ValueError(f"need 0 <= rank < world_size, got rank={r}, world_size={w}")
    return list(items)[r::w]


def _arrive(what: str) -> None:
    """Every rank records its arrival at collective number ``op`` in the rendezvous store and waits for
    the others; the ones missing after the timeout are named (a stopped rank would otherwise hang the
    collective). Every rank calls this module's collectives in the same order, so ``op`` agrees."""
    from torch.distributed import distributed_c10d as c10d

    get_store = getattr(c10d, "_get_default_store", None)
    if get_store is None:  # pragma: no cover - older/newer torch: rely on the collective's own timeout
        return
    store = get_store()
    _state["op"] += 1
    prefix = f"pyadvt/arrive/{_state['op']}/"
    timeout = _state["timeout_s"]
    me, world = dist.get_rank(), dist.get_world_size()
    store.set(prefix + str(me), "1")
    keys = [prefix + str(r) for r in range(world)]
    try:
        store.wait(keys, timedelta(seconds=timeout))
    except Exception:  # noqa: BLE001 - the store's timeout error type differs between torch versions
        try:
            missing = [r for r in range(world) if not store.check([prefix + str(r)])]
            who = f"rank(s) {', '.join(map(str, missing))}" if missing else "a rank"
        except Exception:  # noqa: BLE001
            who = "rank 0 (it hosts the rendezvous store)"
        raise RankTimeoutError(
            f"rank {me}: {who} did not reach the {what} within {timeout:g} s (stopped, hung or much slower "
            f"than the others); finished cells are stored, rerun to resume (timeout: timeout_s= or "
            f"${_TIMEOUT_ENV})") from None


def gather_objects(obj: Any) -> list[Any]:
    """``[obj from rank 0, obj from rank 1, ...]`` on every rank (picklable objects; ``[obj]`` alone)."""
    if not is_distributed():
        return [obj]
    _arrive("gather of results")
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (identity when not distributed)."""
    if not is_distributed():
        return obj
    _arrive(f"broadcast from rank {src}")
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    """Wait for all ranks (no-op when not distributed)."""
    if is_distributed():
        _arrive("barrier")
        dist.barrier()


def rank_zero_only(fn: Callable[..., T]) -> Callable[..., T | None]:
    """Decorator: run ``fn`` on rank 0 only (other ranks get ``None``), e.g. for writing files."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T | None:
        return fn(*args, **kwargs) if is_main() else None

    return wrapper


def map_cells(cells: Sequence[Hashable], fn: Callable[[Hashable], Any], store: CellStore | None = None,
              *, progress: bool = True, desc: str = "cells") -> dict[Hashable, Any]:
    """Compute ``fn(cell)`` for every cell across all ranks and return the merged ``{cell: result}``.

    The cells not yet in ``store`` (as seen by rank 0) are dealt round-robin to the ranks; each rank
    computes its share, writing each finished cell at once, and the shares are gathered (finished
    cells are read from the store), so every rank returns the same dict in ``cells`` order. Single-process runs give identical results (values are JSON round-trips, see
    :func:`~pyadvt.utils.sweep.run_cells`). ``fn`` must not itself use collectives (cells are
    independent). If ``fn`` raises on one rank, that rank re-raises and every other rank raises a
    ``RuntimeError`` naming it once it reaches the gather, instead of waiting for the timeout. With a ``store``, all ranks must see the same directory (one machine or a shared
    file system).

    Example:
        >>> map_cells([1, 2, 3], lambda c: c * 10, progress=False)
        {1: 10, 2: 20, 3: 30}
    """
    cells = list(cells)
    if store is None:
        pending = cells
    else:
        # rank 0 decides what is left (every rank then agrees, even while others write) and the
        # remaining cells are dealt round-robin, so a resumed sweep stays balanced across ranks
        pending = broadcast_object([c for c in cells if not store.has(c)] if is_main() else None)
    failure: BaseException | None = None
    try:
        mine = run_cells(pending, fn, store, progress=progress, shard=(rank(), world_size()), desc=desc)
        payload: Any = [(key_to_str(k), v) for k, v in mine.items()]
    except Exception as exc:  # noqa: BLE001 - tell the other ranks instead of leaving them waiting
        if not is_distributed():
            raise
        failure, payload = exc, f"rank {rank()}: {type(exc).__name__}: {exc}"
    parts = gather_objects(payload)
    if failure is not None:
        raise failure
    errors = [p for p in parts if isinstance(p, str)]
    if errors:
        raise RuntimeError(f"a cell failed on another rank ({errors[0]}); finished cells are stored, rerun to resume")
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    out = {}
    for cell in cells:
        text = key_to_str(cell)
        out[cell] = merged[text] if text in merged else store.get(cell)
    return out
