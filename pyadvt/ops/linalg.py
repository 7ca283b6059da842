"""Batched small symmetric eigen-decomposition and Jacobian spectra (docs/theory.md §8).

``small_sym_eig`` diagonalises many small symmetric matrices at once (float64, k <= 64: Householder
tridiagonalisation + implicit QL on the CPU, parallel cyclic Jacobi on CUDA); ``jacobian_spectrum`` gets the two top singular values and the top right singular
vector of many short-and-wide Jacobians ``[B, m, n]`` (m small) through their Gram matrices
``J J^T`` — the quantities behind tau1 (``<v1_S, v1_T>^2``) and ``lambda = sigma2 / sigma1`` of
seed 000 (Definition 1 and Theorem 2).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from pyadvt import _ext
from pyadvt.ops._checks import require_tensor
from pyadvt.ops.reference.linalg import (
    FLAG_DEGENERATE_TOP,
    FLAG_NONFINITE,
    FLAG_RANK_LT2,
    FLAG_ZERO,
    jacobian_spectrum_reference,
    small_sym_eig_reference,
)

MAX_K = 64

__all__ = [
    "FLAG_DEGENERATE_TOP",
    "FLAG_NONFINITE",
    "FLAG_RANK_LT2",
    "FLAG_ZERO",
    "JacobianSpectrum",
    "jacobian_spectrum",
    "small_sym_eig",
]

if _ext.extension_loaded():

    @torch.library.register_fake("pyadvt::small_sym_eig")
    def _small_sym_eig_fake(G):
        B, k = G.shape[0], G.shape[1]
        return G.new_empty((B, k)), G.new_empty((B, k, k))

    @torch.library.register_fake("pyadvt::jacobian_spectrum")
    def _jacobian_spectrum_fake(J):
        B, n = J.shape[0], J.shape[2]
        return (
            J.new_empty((B,)),
            J.new_empty((B,)),
            J.new_empty((B,)),
            J.new_empty((B, n)),
            J.new_empty((B,), dtype=torch.int32),
        )


class JacobianSpectrum(NamedTuple):
    """Per-sample spectrum of a batch of Jacobians ``[B, m, n]``.

    Attributes:
        sigma1: ``[B]`` largest singular value ``||J||_2``.
        sigma2: ``[B]`` second singular value (0 when ``m == 1`` or rank < 2).
        lam: ``[B]`` ``sigma2 / sigma1`` (0 for a zero Jacobian).
        v1: ``[B, n]`` unit top right singular vector, its largest-magnitude component positive
            (the sign rule of :func:`pyadvt.ops.reference.linalg.normalize_signs`; zero vector for a
            zero Jacobian).
        flags: ``[B]`` int32 bit set: ``FLAG_ZERO`` (1) zero Jacobian, ``FLAG_DEGENERATE_TOP`` (2)
            ``sigma1 ~ sigma2`` so ``v1`` is one vector of a degenerate top subspace,
            ``FLAG_RANK_LT2`` (4) rank < 2, ``FLAG_NONFINITE`` (8) non-finite entries (outputs NaN).

    Returned by :func:`jacobian_spectrum` (the dense route of docs/theory.md §8-§9); a plain record.

    Example:
        >>> import torch
        >>> from pyadvt.ops import jacobian_spectrum
        >>> s = jacobian_spectrum(torch.tensor([[[2.0, 0.0], [0.0, 1.0]]]))
        >>> s.sigma1.tolist(), s.lam.tolist()
        ([2.0], [0.5])
    """

    sigma1: torch.Tensor
    sigma2: torch.Tensor
    lam: torch.Tensor
    v1: torch.Tensor
    flags: torch.Tensor


def _require_float(t: torch.Tensor, name: str) -> None:
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"'{name}' must be float32 or float64, got {t.dtype}")


def _use_kernel(op: str, t: torch.Tensor, backend: str) -> bool:
    if backend not in ("auto", "kernel", "reference"):
        raise ValueError(f"'backend' must be 'auto', 'kernel' or 'reference', got {backend!r}")
    if backend == "kernel":
        return True
    if backend == "reference":
        return False
    if _ext.kernel_available(op, t.device.type):
        return True
    _ext.warn_fallback(op)
    return False


def _symmetry_tol(dtype: torch.dtype) -> float:
    return 1e-4 if dtype == torch.float32 else 1e-10


def small_sym_eig(G: torch.Tensor, *, check: bool = True, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of a batch of small symmetric matrices (docs/theory.md §8).

    The kernels work in float64 on the symmetric part ``(G + G^T) / 2``, for float32 and float64
    inputs alike: on the CPU one matrix per thread by Householder tridiagonalisation and implicit
    QL with Wilkinson shifts (Golub & Van Loan §8.3; ``csrc/include/pyadvt/sym_tridiag.h``), on
    CUDA one thread block per matrix by cyclic Jacobi in the round-robin (parallel) order
    (``sym_eig.h``). Repeated eigenvalues get an orthonormal basis of their eigenspace. Each matrix
    is first scaled by the power of two that puts its largest entry in ``[0.5, 1)`` (exact, as
    LAPACK scales), so every finite float64 magnitude works (tested from 1e-300 to 1e300); with
    ``check=False`` a matrix holding NaN/Inf gives NaN eigenvalues and eigenvectors.
    Speed (2-core CPU): 1.4-1.7x ``torch.linalg.eigh`` at k = 10, 0.5-0.7x at k = 64.

    Args:
        G: ``[..., k, k]`` symmetric, float32 or float64, ``1 <= k <= 64``.
        check: verify that ``G`` is finite and symmetric to ``1e-4`` (float32) / ``1e-10``
            (float64) relative to ``max |G|`` (one device sync; skipped under ``torch.compile``).
        backend: ``"auto"`` (kernel when compiled for the device), ``"kernel"`` or ``"reference"``.

    Returns:
        ``(evals [..., k] ascending, evecs [..., k, k])`` in ``G``'s dtype; column ``j`` of ``evecs``
        is the unit eigenvector of ``evals[..., j]``, its largest-magnitude component positive (the
        first of components within a relative 1e-8 of the largest; the same rule on CPU, CUDA and
        the reference, insensitive to rounding noise in near-zero components). No
        gradient flows through the outputs (``G`` is detached).

    Raises:
        TypeError: ``G`` is not a float32/float64 tensor.
        ValueError: ``G`` is not ``[..., k, k]`` with ``1 <= k <=`` the kernel's limit, is non-finite or
            not symmetric (with ``check=True``), or ``backend`` is unknown.

    Example:
        >>> G = torch.tensor([[[2.0, 1.0], [1.0, 2.0]]])
        >>> evals, evecs = small_sym_eig(G)
        >>> evals.tolist()
        [[1.0, 3.0]]
    """
    require_tensor(G, "G")
    _require_float(G, "G")
    if G.dim() < 2 or G.shape[-1] != G.shape[-2]:
        raise ValueError(f"'G' must have shape [..., k, k] (square matrices), got {tuple(G.shape)}")
    k = G.shape[-1]
    if not 1 <= k <= MAX_K:
        raise ValueError(f"'G' matrices must be k x k with 1 <= k <= {MAX_K}, got k={k}; use torch.linalg.eigh")
    batch = G.shape[:-2]
    G3 = G.detach().reshape(-1, k, k)  # no autograd formula: outputs are constants
    if check and G3.numel() > 0 and not torch.compiler.is_compiling():
        if not bool(torch.isfinite(G3).all()):
            raise ValueError("'G' has non-finite entries (NaN or Inf)")
        scale = G3.abs().amax(dim=(-1, -2))
        asym = (G3 - G3.transpose(-1, -2)).abs().amax(dim=(-1, -2))
        bad = asym > _symmetry_tol(G.dtype) * scale
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"'G' must be symmetric: matrix {i} has max |G - G^T| = {float(asym[i]):.3g} "
                f"(max |G| = {float(scale[i]):.3g}); symmetrise it with (G + G.mT) / 2"
            )
    if G3.shape[0] == 0:
        return G.new_empty(batch + (k,)), G.new_empty(batch + (k, k))
    if _use_kernel("small_sym_eig", G3, backend):
        evals, evecs = torch.ops.pyadvt.small_sym_eig(G3)
    else:
        evals, evecs = small_sym_eig_reference(G3)
    return evals.reshape(batch + (k,)), evecs.reshape(batch + (k, k))


def jacobian_spectrum(J: torch.Tensor, *, backend: str = "auto") -> JacobianSpectrum:
    """Top two singular values, their ratio and the top right singular vector of ``J [B, m, n]``.

    Seed 000 (Definition 1, Theorem 2; docs/theory.md §2): ``tau1(x) = <v1_S, v1_T>^2`` and
    ``lambda_f(x) = sigma2 / sigma1``. Computed through the Gram matrix ``G = J J^T`` (``[B, m, m]``,
    accumulated in float64), its two largest eigenvalues and top eigenvector ``u1`` (the tridiagonal QL
    solver of :func:`small_sym_eig` on the CPU, its Jacobi on CUDA), ``sigma_i = sqrt(max(e_i, 0))`` and ``v1 = J^T u1 / sigma1`` — two passes over ``J``
    instead of an SVD.

    Range: float64 Jacobians with entries beyond ~1e145 or below ~1e-145 (whose squares would
    over- or underflow) are scaled by a power of two before the Gram matrix is formed and the
    singular values scaled back (exact), so the whole finite range works.

    Accuracy: the Gram route squares the condition number, so singular values below about
    ``1e-8 * sigma1`` are not resolved (they count as rank < 2 and are reported as 0) and ``v1``'s
    angular error grows like ``1e-16 / gap`` with ``gap = (sigma1^2 - sigma2^2) / sigma1^2``; with a
    relative gap above ~1e-6 ``|<v1, v1_svd>| >= 1 - 1e-6`` in float64 (tested).

    Flags (``flags`` bits; outputs never NaN for finite input):
        * 1 ``FLAG_ZERO``: ``J == 0``: ``sigma1 = sigma2 = lam = 0``, ``v1 = 0`` (also sets 4).
        * 2 ``FLAG_DEGENERATE_TOP``: ``(sigma1^2 - sigma2^2) <= sqrt(eps_dtype) * sigma1^2``; ``v1`` is
          a deterministic unit vector of the (near-)degenerate top subspace.
        * 4 ``FLAG_RANK_LT2``: ``sigma2^2 <= 64 m eps_f64 sigma1^2`` (or ``m == 1``): ``sigma2 = lam = 0``.
        * 8 ``FLAG_NONFINITE``: NaN/Inf in ``J``: that sample's
          outputs are NaN (only this flag set); mask such samples.

    Args:
        J: ``[B, m, n]`` float32/float64, ``1 <= m <= 64`` (outputs x inputs; put the short side
            in the middle), any strides.
        backend: ``"auto"``, ``"kernel"`` or ``"reference"``.

    Returns:
        :class:`JacobianSpectrum` ``(sigma1 [B], sigma2 [B], lam [B], v1 [B, n], flags [B] int32)``;
        no gradient flows through them (``J`` is detached).

    Performance (2-core CPU, float32, m = 10; benchmarks/bench_spectral.py): about 6.7x
    ``torch.linalg.svd`` at n = 64 (the 10 x 10 eigen-solve dominates), 9.7x at n = 3072 and 12x at
    n = 150528 (one vectorised float64 Gram pass plus one pass for ``v1``).

    Raises:
        TypeError: ``J`` is not a float32/float64 tensor.
        ValueError: ``J`` is not ``[B, m, n]`` with ``1 <= m <=`` the kernel's limit and ``n >= 1``, or
            ``backend`` is unknown.

    Example:
        >>> J = torch.tensor([[[3.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
        >>> s = jacobian_spectrum(J)
        >>> s.sigma1.tolist(), s.sigma2.tolist(), s.v1.tolist(), s.flags.tolist()
        ([3.0], [1.0], [[1.0, 0.0, 0.0]], [0])
    """
    require_tensor(J, "J")
    _require_float(J, "J")
    if J.dim() != 3:
        raise ValueError(f"'J' must have shape [B, m, n], got {tuple(J.shape)}")
    B, m, n = J.shape
    if not 1 <= m <= MAX_K:
        raise ValueError(
            f"'J' must have 1 <= m <= {MAX_K} rows (outputs) per sample, got m={m}; "
            "for tall Jacobians pass J.mT or use torch.linalg.svd"
        )
    if n < 1:
        raise ValueError(f"'J' must have at least one column (input dimension), got shape {tuple(J.shape)}")
    if B == 0:
        e = J.new_empty((0,))
        return JacobianSpectrum(e, e.clone(), e.clone(), J.new_empty((0, n)), J.new_empty((0,), dtype=torch.int32))
    J = J.detach()  # no autograd formula: outputs are constants
    if _use_kernel("jacobian_spectrum", J, backend):
        out = torch.ops.pyadvt.jacobian_spectrum(J)
    else:
        out = jacobian_spectrum_reference(J)
    return JacobianSpectrum(*out)
