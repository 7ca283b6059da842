"""Per-sample randomness (docs/theory.md §0): a sample's random draws depend on the seed and on the
sample itself, never on the batch it is in or its position there.

By default a sample is identified by a CRC32 of its bytes; pass explicit ``sample_ids`` (e.g.
dataset indices) to identify samples otherwise (two identical images then still get different
draws).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch

from pyadvt.utils.deprecation import keyword_only


@keyword_only("stream")
def sample_seeds(x: torch.Tensor, seed: int, sample_ids: Sequence[int] | torch.Tensor | None = None, *,
                 stream: int = 0) -> list[int]:
    """One 63-bit seed per sample of ``x`` ([B, ...]), from ``(seed, stream, sample identity)``.

    ``stream`` separates independent uses (e.g. restart number, iteration) of the same sample.

    Raises:
        ValueError: ``sample_ids`` does not have one entry per sample of ``x``.

    Example:
        >>> x = torch.rand(3, 4)
        >>> sample_seeds(x, 0)[1] == sample_seeds(x[1:2], 0)[0]
        True
    """
    if sample_ids is not None:
        ids = [int(i) for i in (sample_ids.tolist() if isinstance(sample_ids, torch.Tensor) else sample_ids)]
        if len(ids) != x.shape[0]:
            raise ValueError(f"'sample_ids' has {len(ids)} entries but x has B={x.shape[0]} samples")
    else:
        # the raw bytes of each sample, through a uint8 view: numpy has no bfloat16/float8 types
        # (identical bytes, hence identical seeds, for the dtypes numpy does have)
        rows = x.detach().to("cpu").contiguous().reshape(x.shape[0], -1)
        arr = rows.view(torch.uint8).numpy() if rows.numel() > 0 else np.zeros((x.shape[0], 0), np.uint8)
        ids = [zlib.crc32(np.ascontiguousarray(row).tobytes()) for row in arr]
    base = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(stream) & 0xFFFFFFFF])
    root = int(base.generate_state(1, dtype=np.uint64)[0])
    return [int(np.random.SeedSequence([root & 0xFFFFFFFF, root >> 32, i & 0xFFFFFFFF]).generate_state(
        1, dtype=np.uint64)[0] >> 1) for i in ids]


@keyword_only("stream")
def per_sample_generators(x: torch.Tensor, seed: int, sample_ids: Sequence[int] | torch.Tensor | None = None,
                          *, stream: int = 0) -> list[torch.Generator]:
    """One CPU ``torch.Generator`` per sample of ``x [B, ...]``, seeded by :func:`sample_seeds`.

    Raises:
        ValueError: ``sample_ids`` does not have one entry per sample of ``x``.

    Example:
        >>> x = torch.rand(2, 3)
        >>> g = per_sample_generators(x, seed=0)
        >>> torch.equal(torch.rand(2, generator=g[1]), torch.rand(2, generator=per_sample_generators(x[1:], 0)[0]))
        True
    """
    gens = []
    for s in sample_seeds(x, seed, sample_ids, stream=stream):
        g = torch.Generator()
        g.manual_seed(s)
        gens.append(g)
    return gens


@keyword_only("stream", "distribution", "dtype")
def per_sample_rand(x: torch.Tensor, shape: Sequence[int], seed: int,
                    sample_ids: Sequence[int] | torch.Tensor | None = None, *, stream: int = 0,
                    distribution: str = "uniform", dtype: torch.dtype | None = None) -> torch.Tensor:
    """``[B, *shape]`` draws (``"uniform"`` in [0, 1) or ``"normal"``), row b from sample b's generator,
    on x's device and dtype (or ``dtype``).

    Draws are made in float64 and rounded once to the output dtype, so every floating dtype works
    (float16, bfloat16, float8 ...) and a sample's draws agree across dtypes up to that rounding;
    the sample identity is the CRC32 of its raw bytes whatever its dtype.

    Raises:
        ValueError: ``distribution`` is unknown, or ``sample_ids`` does not have one entry per sample.

    Example:
        >>> x = torch.rand(4, 2)
        >>> a = per_sample_rand(x, (3,), seed=1)
        >>> torch.equal(a[2:], per_sample_rand(x[2:], (3,), seed=1))
        True
    """
    dtype = dtype or (x.dtype if x.is_floating_point() else torch.float32)
    draw = torch.rand if distribution == "uniform" else torch.randn
    if distribution not in ("uniform", "normal"):
        raise ValueError(f"'distribution' must be 'uniform' or 'normal', got {distribution!r}")
    rows = [draw(tuple(shape), generator=g, dtype=torch.float64)
            for g in per_sample_generators(x, seed, sample_ids, stream=stream)]
    return torch.stack(rows).to(device=x.device, dtype=dtype)
