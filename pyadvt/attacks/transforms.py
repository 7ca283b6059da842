"""Input transforms applied before each gradient, with several random copies averaged (docs/theory.md §10).

An :class:`InputTransform` maps ``n`` rows ``[n, C, H, W]`` to ``copies * n`` rows (copy-major: row
``j * n + i`` is copy ``j`` of row ``i``). Its random draws are declared in :attr:`InputTransform.draws`
as ``(shape, distribution)`` per input row; :class:`pyadvt.attacks.TransferAttack` draws them from each
sample's own stream (so a sample's copies do not depend on its batch) and passes them in, which also lets
tests inject the same draws into an independent re-implementation.

The transforms here:

* :class:`ScaleCopies` - SI (Lin et al. 2020), ``x / 2^i`` for ``i < m`` (docs/theory.md §10.2);
* :class:`AdmixMix` - Admix's mixing ``x + eta * sg(x')`` with partner images (§10.6);
* :class:`DiverseInputs` - DI's resize-and-pad (Xie et al. 2019, docs/theory.md §1);
* :class:`SpectrumTransform` - SSA's spectrum simulation (Long et al. 2022, §10.7);
* :class:`BlockShuffleRotate` - BSR (Wang et al. 2024, §10.8).

The gradient of the mean objective over the copies w.r.t. the iterate is the attack's gradient: SI's
``2^-i`` and BSR's chain rule come from autograd; SSA's gradient is taken w.r.t. the transformed image
itself (a straight-through estimator, ``x + (T(x) - x).detach()``), as its authors do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pyadvt.attacks.di import _MODES, diverse_input


@dataclass
class TransformContext:
    """What a transform may need besides the rows: per-row budgets and the caller's clean batch.

    Attributes:
        eps: ``[n]`` budget of each input row (SSA's noise scale defaults to it).
        clean: ``[B, C, H, W]`` the caller's clean images (Admix's default partner pool).
    """

    eps: torch.Tensor
    clean: torch.Tensor


class InputTransform:
    """Base class: ``copies`` output rows per input row, random draws per input row (see module doc)."""

    name = "transform"
    copies = 1

    @property
    def draws(self) -> list[tuple[tuple[int, ...], str]]:
        """``[(shape, "uniform" | "normal"), ...]`` drawn per input row and step (default: none)."""
        return []

    def draw_shapes(self, in_shape: Sequence[int]) -> list[tuple[tuple[int, ...], str]]:
        """:attr:`draws` for images of shape ``in_shape`` (transforms whose draws are per pixel override)."""
        return self.draws

    def __call__(self, x: torch.Tensor, draws: list[torch.Tensor], ctx: TransformContext) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _check_int(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{name}' must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"'{name}' must be >= {low}, got {value}")
    return value


def _check_float(value, name: str, low: float | None = None, high: float | None = None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}' must be a number, got {type(value).__name__}") from None
    if not math.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"'{name}' must be a finite number in [{low}, {high}], got {value}")
    return v


class ScaleCopies(InputTransform):
    """SI: ``m`` copies ``c + (x - c) / 2^i``, ``i = 0..m-1`` (docs/theory.md §10.2).

    ``center=0`` scales in [0, 1] as torchattacks/TransferAttack do (darker copies); ``center=0.5``
    is the authors' TF code in [-1, 1] (legacy ``scale_center=0.5``).

    Example:
        >>> ScaleCopies(3)(torch.ones(1, 1, 1, 1), [], None).flatten().tolist()
        [1.0, 0.5, 0.25]
    """

    name = "si"

    def __init__(self, m: int = 5, center: float = 0.0) -> None:
        self.copies = _check_int(m, "m")
        self.center = _check_float(center, "center", 0.0, 1.0)

    def __call__(self, x, draws, ctx):
        scales = 0.5 ** torch.arange(self.copies, dtype=x.dtype, device=x.device)
        shaped = scales.view((-1,) + (1,) * x.dim())
        out = self.center + (x.unsqueeze(0) - self.center) * shaped
        return out.reshape((-1,) + tuple(x.shape[1:]))

    def __repr__(self) -> str:
        return f"ScaleCopies(m={self.copies}, center={self.center:g})"


class AdmixMix(InputTransform):
    """Admix's mixing: ``m2`` copies ``x + eta * sg(x'_j)`` (docs/theory.md §10.6), not clipped.

    Partner ``x'_j`` of a row is image ``floor(u_j * P)`` of a pool of ``P`` images, ``u_j`` from the
    row's own stream. The pool is ``pool`` when given (fixed images: the attack is then exactly
    batch-independent), else the caller's clean batch (the images are the batch's, as in the paper;
    the authors' code mixes the partners' current iterates, which differ from the clean ones by at most
    ``eta * eps`` per pixel). Like the authors' code, a partner may be the image itself or of its class.

    Example:
        >>> t = AdmixMix(eta=0.5, m2=1, pool=torch.ones(1, 1, 1, 1))
        >>> t(torch.zeros(2, 1, 1, 1), [torch.tensor([[0.3], [0.9]])], None).flatten().tolist()
        [0.5, 0.5]
    """

    name = "admix"

    def __init__(self, eta: float = 0.2, m2: int = 3, pool: torch.Tensor | None = None) -> None:
        self.eta = _check_float(eta, "eta", 0.0)
        self.copies = _check_int(m2, "m2")
        if pool is not None and (not isinstance(pool, torch.Tensor) or pool.dim() < 2 or pool.shape[0] == 0):
            raise ValueError("'pool' must be a non-empty tensor of partner images [P, C, H, W] in [0, 1]")
        self.pool = None if pool is None else pool.detach()

    @property
    def draws(self):
        return [((self.copies,), "uniform")]

    def __call__(self, x, draws, ctx):
        pool = self.pool if self.pool is not None else ctx.clean
        if tuple(pool.shape[1:]) != tuple(x.shape[1:]):
            raise ValueError(f"Admix 'pool' images have shape {tuple(pool.shape[1:])} but the inputs "
                             f"{tuple(x.shape[1:])}")
        pool = pool.to(device=x.device, dtype=x.dtype)
        idx = (draws[0].t().reshape(-1).to(torch.float64) * pool.shape[0]).floor().long().clamp_(max=pool.shape[0] - 1)
        partners = pool[idx].detach()
        return x.repeat((self.copies,) + (1,) * (x.dim() - 1)) + self.eta * partners

    def __repr__(self) -> str:
        return f"AdmixMix(eta={self.eta:g}, m2={self.copies}, pool={'given' if self.pool is not None else 'batch'})"


class DiverseInputs(InputTransform):
    """DI as a composable transform: :func:`pyadvt.attacks.diverse_input` with per-row draws.

    Example:
        >>> DiverseInputs(p=0.0)(torch.ones(1, 1, 4, 4), [torch.rand(1, 4)], None).equal(torch.ones(1, 1, 4, 4))
        True
    """

    name = "di"

    def __init__(self, p: float = 0.7, resize_low: float = 0.9, resize_high: float = 1.1,
                 interpolation: str = "nearest") -> None:
        self.p = _check_float(p, "p", 0.0, 1.0)
        self.resize_low = _check_float(resize_low, "resize_low", 1e-6)
        self.resize_high = _check_float(resize_high, "resize_high", self.resize_low)
        if interpolation not in _MODES:
            raise ValueError(f"'interpolation' must be one of {_MODES}, got {interpolation!r}")
        self.interpolation = interpolation

    @property
    def draws(self):
        return [((4,), "uniform")]

    def __call__(self, x, draws, ctx):
        return diverse_input(x, draws[0], p=self.p, resize_low=self.resize_low, resize_high=self.resize_high,
                             interpolation=self.interpolation)

    def __repr__(self) -> str:
        return f"DiverseInputs(p={self.p:g}, resize=({self.resize_low:g}, {self.resize_high:g}))"


def dct_matrix(n: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D [n, n]``: ``DCT(v) = D v``, ``IDCT(V) = D^T V``.

    Example:
        >>> D = dct_matrix(5)
        >>> torch.allclose(D @ D.T, torch.eye(5, dtype=D.dtype))
        True
    """
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    D = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    D[0] /= math.sqrt(2.0)
    return D.to(dtype=dtype, device=device)


class SpectrumTransform(InputTransform):
    """SSA: ``N`` copies ``IDCT(DCT(x + xi) * M)`` with ``xi ~ N(0, sigma^2)`` and ``M ~ U(1-rho, 1+rho)``
    per element (docs/theory.md §10.7), a 2-D DCT-II over H and W per channel, not clipped.

    The gradient is taken w.r.t. the spectrum-simulated image itself and not chained back through the
    DCT, mask or noise (straight-through), as in the authors' code. ``sigma=None`` uses each row's eps.

    Example:
        >>> t = SpectrumTransform(n=1, rho=0.0, sigma=0.0)
        >>> x = torch.rand(2, 1, 4, 4)
        >>> d = t.draw_shapes((1, 4, 4))
        >>> ctx = TransformContext(torch.zeros(2), x)
        >>> torch.allclose(t(x, [torch.zeros(2, *d[0][0]), torch.rand(2, *d[1][0])], ctx), x, atol=1e-6)
        True
    """

    name = "ssa"

    def __init__(self, n: int = 20, rho: float = 0.5, sigma: float | None = None) -> None:
        self.copies = _check_int(n, "n")
        self.rho = _check_float(rho, "rho", 0.0, 1.0)
        self.sigma = None if sigma is None else _check_float(sigma, "sigma", 0.0)

    def draw_shapes(self, in_shape):
        return [((self.copies, *in_shape), "normal"), ((self.copies, *in_shape), "uniform")]

    def __call__(self, x, draws, ctx):
        n = x.shape[0]
        H, W = x.shape[-2:]
        noise, mask_u = draws
        sigma = ctx.eps.to(x.dtype) if self.sigma is None else torch.full((n,), self.sigma, dtype=x.dtype,
                                                                          device=x.device)
        # draws are [n, N, C, H, W] -> copy-major [N * n, C, H, W]
        noise = noise.transpose(0, 1).reshape((-1,) + tuple(x.shape[1:])).to(x.dtype)
        mask = (1.0 - self.rho + 2.0 * self.rho * mask_u).transpose(0, 1).reshape(noise.shape).to(x.dtype)
        base = x.detach().repeat((self.copies,) + (1,) * (x.dim() - 1))
        sig = sigma.repeat(self.copies).view((-1,) + (1,) * (x.dim() - 1))
        Dh, Dw = dct_matrix(H, x.dtype, x.device), dct_matrix(W, x.dtype, x.device)
        spec = Dh @ (base + sig * noise) @ Dw.T
        simulated = Dh.T @ (spec * mask) @ Dw
        rows = x.repeat((self.copies,) + (1,) * (x.dim() - 1))
        return rows + (simulated - rows).detach()

    def __repr__(self) -> str:
        return f"SpectrumTransform(n={self.copies}, rho={self.rho:g}, sigma={self.sigma})"


def _random_lengths(u: torch.Tensor, length: int) -> torch.Tensor:
    """``[R, k]`` block lengths summing to ``length``: ``round(u / sum(u) * length)``, the rounding
    remainder added to the largest part (docs/theory.md §10.8); every part is at least 1 when
    ``length >= k`` (a part rounded to 0 takes one pixel from the largest)."""
    parts = torch.floor(u / u.sum(dim=-1, keepdim=True) * length + 0.5).long()
    big = parts.argmax(dim=-1, keepdim=True)
    parts.scatter_add_(-1, big, length - parts.sum(dim=-1, keepdim=True))
    if length >= u.shape[-1]:
        for _ in range(u.shape[-1]):
            zero = parts < 1
            if not bool(zero.any()):
                break
            big = parts.argmax(dim=-1, keepdim=True)
            parts = parts + zero.long()
            parts.scatter_add_(-1, big, -zero.long().sum(dim=-1, keepdim=True))
    return parts


def _block_map(lengths: torch.Tensor, order: torch.Tensor, size: int) -> torch.Tensor:
    """``[..., size]`` source index of each output position when the blocks (``lengths [..., k]``) are
    laid out in the order ``order [..., k]`` (output block ``q`` is source block ``order[q]``)."""
    src_start = torch.cumsum(lengths, dim=-1) - lengths
    out_len = lengths.gather(-1, order)
    out_end = torch.cumsum(out_len, dim=-1)
    pos = torch.arange(size, device=lengths.device).expand(lengths.shape[:-1] + (size,)).contiguous()
    q = torch.searchsorted(out_end, pos, right=True).clamp_(max=lengths.shape[-1] - 1)
    offset = pos - (out_end - out_len).gather(-1, q)
    return src_start.gather(-1, order.gather(-1, q)) + offset


class BlockShuffleRotate(InputTransform):
    """BSR, TransferAttack's version (docs/theory.md §10.8, the recommended default): ``N`` copies each of
    which, per image,

    1. picks the first axis (rows or columns) at random, splits it into ``n`` strips of random lengths
       (``u ~ U(1, 2)^n``, see :func:`_random_lengths`) and shuffles them;
    2. rotates every strip by its own angle ``theta ~ U(-max_angle, max_angle)`` (bilinear, zero fill
       outside the strip, about the strip's centre);
    3. splits every strip along the other axis with fresh lengths and shuffles those blocks.

    The copies are differentiable w.r.t. ``x`` (the gradient is chained through the shuffle and the
    bilinear rotation). Unlike TransferAttack, which draws one angle per strip and call for the whole
    batch, every image draws its own (batch independence).

    Draws per row and copy: ``1 + 3 n + 2 n^2`` uniforms (axis, lengths, order, angles, and per strip the
    second split's lengths and order).

    Example:
        >>> t = BlockShuffleRotate(n=2, copies=1, max_angle=0.0)
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> y = t(x, [torch.rand(1, 1, 1 + 6 + 8)], None)
        >>> sorted(y.flatten().tolist()) == sorted(x.flatten().tolist())   # a pure shuffle
        True
    """

    name = "bsr"

    def __init__(self, n: int = 3, copies: int = 20, max_angle: float = 24.0) -> None:
        self.n = _check_int(n, "n")
        self.copies = _check_int(copies, "copies")
        self.max_angle = _check_float(max_angle, "max_angle", 0.0, 180.0)

    @property
    def draws(self):
        return [((self.copies, 1 + 3 * self.n + 2 * self.n * self.n), "uniform")]

    def __call__(self, x, draws, ctx):
        if x.dim() != 4:
            raise ValueError(f"BSR needs images [N, C, H, W], got shape {tuple(x.shape)}")
        u = draws[0].transpose(0, 1).reshape(-1, draws[0].shape[-1]).to(torch.float64)
        rows = x.repeat(self.copies, 1, 1, 1)
        out = torch.empty_like(rows)
        first_cols = u[:, 0] >= 0.5
        for cols in (False, True):
            sel = (first_cols == cols).nonzero().squeeze(1)
            if sel.numel() == 0:
                continue
            img = rows[sel].transpose(2, 3) if cols else rows[sel]
            res = self._shuffle_rotate(img, u[sel, 1:])
            out = out.index_copy(0, sel, res.transpose(2, 3) if cols else res)
        return out

    def _shuffle_rotate(self, img: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Strips along H (rows), rotation, then blocks along W within each strip."""
        R, C, H, W = img.shape
        n, dev = self.n, img.device
        u_len, u_ord, u_ang = u[:, :n], u[:, n:2 * n], u[:, 2 * n:3 * n]
        u_len2 = u[:, 3 * n:3 * n + n * n].reshape(R, n, n)
        u_ord2 = u[:, 3 * n + n * n:].reshape(R, n, n)
        lengths = _random_lengths(1.0 + u_len, H).to(dev)                 # source strips [R, n]
        order = torch.argsort(u_ord, dim=-1).to(dev)                      # output strip q <- source order[q]
        src_row = _block_map(lengths, order, H)                           # [R, H] source row of output row
        out_len = lengths.gather(1, order)
        out_end = torch.cumsum(out_len, dim=1)
        pos = torch.arange(H, device=dev).expand(R, H).contiguous()
        q = torch.searchsorted(out_end, pos, right=True).clamp_(max=n - 1)  # [R, H] output strip of each row
        src_strip = order.gather(1, q)
        L = lengths.gather(1, src_strip).to(torch.float64)                # [R, H] strip height
        start = (torch.cumsum(lengths, 1) - lengths).gather(1, src_strip)  # [R, H] strip's first source row
        local_r = (src_row - start).to(torch.float64)                     # row inside the strip
        # second split: per output strip q, fresh lengths/order over W
        len2 = _random_lengths(1.0 + u_len2.reshape(R * n, n), W).to(dev).reshape(R, n, n)
        ord2 = torch.argsort(u_ord2, dim=-1).to(dev)
        col_map = _block_map(len2, ord2, W)                               # [R, n, W]
        cols = col_map.gather(1, q.unsqueeze(-1).expand(R, H, W)).to(torch.float64)  # [R, H, W]
        theta = (2.0 * u_ang - 1.0) * math.radians(self.max_angle)
        th = theta.to(dev).gather(1, src_strip).unsqueeze(-1)             # [R, H, 1]
        cy = (L.unsqueeze(-1) - 1.0) / 2.0
        cx = (W - 1.0) / 2.0
        dy, dx = local_r.unsqueeze(-1) - cy, cols - cx
        # inverse rotation: the rotated strip's pixel samples the strip at R(-theta) (p - c) + c
        sy = torch.cos(th) * dy + torch.sin(th) * dx + cy
        sx = -torch.sin(th) * dy + torch.cos(th) * dx + cx
        y0, x0 = torch.floor(sy), torch.floor(sx)
        flat = img.reshape(R, C, H * W)
        out = torch.zeros(R, C, H * W, dtype=img.dtype, device=dev)
        Lh = L.unsqueeze(-1)
        st = start.unsqueeze(-1)
        for oy in (0.0, 1.0):
            for ox in (0.0, 1.0):
                yy, xx = y0 + oy, x0 + ox
                wgt = (1.0 - (sy - yy).abs()) * (1.0 - (sx - xx).abs())
                ok = (yy >= 0) & (yy <= Lh - 1) & (xx >= 0) & (xx <= W - 1)
                idx = (st + yy.clamp(min=0).long()).clamp(max=H - 1) * W + xx.clamp(0, W - 1).long()
                idx = torch.where(ok, idx, torch.zeros_like(idx)).reshape(R, 1, H * W).expand(R, C, H * W)
                w = torch.where(ok, wgt, torch.zeros_like(wgt)).to(img.dtype).reshape(R, 1, H * W)
                out = out + flat.gather(2, idx) * w
        return out.reshape(R, C, H, W)

    def __repr__(self) -> str:
        return f"BlockShuffleRotate(n={self.n}, copies={self.copies}, max_angle={self.max_angle:g})"


def apply_transforms(transforms: Sequence[InputTransform], x: torch.Tensor, draws: list[list[torch.Tensor]],
                     ctx: TransformContext) -> torch.Tensor:
    """Apply ``transforms`` in order; ``draws[i]`` are transform ``i``'s draws, one row per input row of
    that transform (already expanded over the earlier transforms' copies). Returns copy-major rows."""
    eps = ctx.eps
    for t, d in zip(transforms, draws):
        x = t(x, d, TransformContext(eps=eps, clean=ctx.clean))
        eps = eps.repeat(t.copies)
    return x


def total_copies(transforms: Sequence[InputTransform]) -> int:
    """Rows per input row after all ``transforms``."""
    return math.prod(t.copies for t in transforms)
