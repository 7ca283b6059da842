"""Influence functions restricted to a softmax-linear head (seed 002 sec. 6 / app. A.9, docs/theory.md §7).

For head parameters ``theta = [W | b]`` (``C x (d + 1)``, flattened row-major) acting on features
``phi~ = [phi; 1]`` with softmax cross-entropy:

* ``grad_theta l(z) = (p - e_y) (x) phi~`` (Kronecker product, ``C (d + 1)`` entries);
* ``H = mean_i [(diag p_i - p_i p_i^T) (x) phi~_i phi~_i^T] + damping I`` — the exact Hessian of the mean
  training loss plus ``(damping / 2) ||theta||^2``;
* ``I(z, z_test) = -grad l(z_test)^T H^+ grad l(z)`` (Koh & Liang 2017): the derivative of the test loss
  when the training point ``z`` is up-weighted. Negative values help (upweighting lowers the test loss).

``H`` is singular (softmax is invariant to adding one vector to every class's row). The default is the
paper's choice (seed 002 app. A.9): the Moore-Penrose pseudo-inverse ``H^+`` keeping singular values
``> 1e-20`` (``solver="pinv"``, ``pinv_cutoff``) with no damping. ``solver="cholesky"`` with a
``damping > 0`` is the regularised alternative; a damping of 0.01 on a small, confident head makes
``H + damping I`` nearly ``damping I``, and then every source scores a top-1 label match near 1.

The top-k influential-label match rate (seed 002 Fig. 7b) is the fraction of each test point's ``k``
most influential training points whose label equals the test label, averaged over test points.
"Most influential" is the most *helpful* (most negative ``I``) by default.

Example:
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> phi, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    >>> head = torch.nn.Linear(3, 2)
    >>> inf = head_influence(head, phi, y, phi[:4], y[:4])
    >>> tuple(inf.shape)
    (4, 20)
    >>> bool((inf.diagonal()[:4] < 0).all())  # a point's own upweighting lowers its loss
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError

#: a softmax-linear head: ``nn.Linear(d, C)`` or its ``(W [C, d], b [C])``
Head = nn.Linear | tuple[torch.Tensor, torch.Tensor]

__all__ = ["SOLVERS", "head_gradients", "head_hessian", "head_influence", "influence_match_rate"]

SOLVERS = ("pinv", "cholesky")


def _augment(phi: torch.Tensor) -> torch.Tensor:
    return torch.cat([phi, torch.ones(phi.shape[0], 1, dtype=phi.dtype, device=phi.device)], dim=1)


def _head_params(head: nn.Linear | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(head, nn.Linear):
        W = head.weight.detach()
        b = head.bias.detach() if head.bias is not None else torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)
        return W.double(), b.double()
    if isinstance(head, (tuple, list)) and len(head) == 2:
        return head[0].detach().double(), head[1].detach().double()
    raise TypeError("'head' must be an nn.Linear or a (W [C, d], b [C]) pair")


def _check_phi(phi: torch.Tensor, W: torch.Tensor, name: str) -> None:
    if not isinstance(phi, torch.Tensor):
        raise InvalidTypeError(f"'{name}' must be a torch.Tensor [N, d], got {type(phi).__name__}")
    if phi.dim() != 2 or phi.shape[1] != W.shape[1]:
        raise InvalidValueError(f"'{name}' features must be [N, d={W.shape[1]}], got {tuple(phi.shape)}")
    if not bool(torch.isfinite(phi).all()):
        raise InvalidValueError(f"'{name}' contains NaN or infinite features; pass finite features "
                                "(drop the samples whose representation is not finite)")


def _check(phi: torch.Tensor, y: torch.Tensor, W: torch.Tensor, name: str, y_name: str | None = None) -> None:
    _check_phi(phi, W, name)
    y_name = y_name or f"y of '{name}'"
    if y.shape != (phi.shape[0],) or y.dtype not in (torch.int64, torch.int32):
        raise InvalidValueError(f"the labels '{y_name}' must be int [N={phi.shape[0]}], got {tuple(y.shape)} {y.dtype}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= W.shape[0]):
        raise InvalidValueError(f"the labels '{y_name}' must lie in [0, {W.shape[0]}) (the head's classes)")


def head_gradients(head: Head, phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample ``grad_theta l = (p - e_y) (x) [phi; 1]``: ``[N, C (d + 1)]`` (float64).

    Row ``i``, entry ``c (d + 1) + k`` is ``(p_ic - [y_i = c]) phi~_ik``; the last column of each class
    block is the bias gradient.

    Source: seed 002 (Utrera et al., ICLR 2021) Section 6 / app. A.9; docs/theory.md §7.
    ``head``: ``nn.Linear(d, C)`` or ``(W [C, d], b [C])``; ``phi``: ``[N, d]`` features; ``y``: ``[N]`` int labels.

    Raises:
        TypeError: ``head`` is neither an nn.Linear nor a ``(W, b)`` pair.
        InvalidTypeError: ``phi`` is not a tensor.
        InvalidValueError: ``phi`` is not finite ``[N, d]``, or ``y`` is not ``[N]`` int labels in ``[0, C)``.

    Example:
        >>> import torch
        >>> head = torch.nn.Linear(3, 2)
        >>> g = head_gradients(head, torch.rand(4, 3), torch.tensor([0, 1, 1, 0]))
        >>> g.shape, g.dtype
        (torch.Size([4, 8]), torch.float64)
    """
    return _gradients(head, phi, y, "phi", "y")


def _gradients(head, phi, y, phi_name: str, y_name: str) -> torch.Tensor:
    W, b = _head_params(head)
    _check(phi, y, W, phi_name, y_name)
    phi, y = phi.detach().double().to(W.device), y.to(W.device)
    pa = _augment(phi)
    r = F.softmax(phi @ W.T + b, dim=1) - F.one_hot(y.long(), W.shape[0]).double()
    return (r.unsqueeze(2) * pa.unsqueeze(1)).reshape(phi.shape[0], -1)


def head_hessian(head: Head, phi: torch.Tensor, damping: float = 0.0) -> torch.Tensor:
    """Closed-form Hessian of the mean softmax-CE over ``phi [N, d]`` w.r.t. ``[W | b]`` (docs/theory.md §7):
    ``mean_i (diag p_i - p_i p_i^T) (x) phi~_i phi~_i^T + damping I``, ``[C (d+1), C (d+1)]`` float64.

    It does not depend on the labels.

    Raises:
        TypeError: ``head`` is neither an nn.Linear nor a ``(W, b)`` pair.
        InvalidTypeError, InvalidValueError: ``phi`` is not a finite ``[N, d]`` tensor.
        ValueError: ``damping`` is negative.

    Example:
        >>> import torch
        >>> H = head_hessian(torch.nn.Linear(3, 2), torch.rand(5, 3), damping=0.1)
        >>> H.shape, bool(torch.allclose(H, H.T))
        (torch.Size([8, 8]), True)
    """
    W, b = _head_params(head)
    return _hessian(W, b, phi, damping, "phi")


def _hessian(W, b, phi, damping: float, name: str) -> torch.Tensor:
    _check_phi(phi, W, name)
    phi = phi.detach().double().to(W.device)
    if damping < 0:
        raise ValueError(f"'damping' must be >= 0, got {damping}")
    n, C = phi.shape[0], W.shape[0]
    pa = _augment(phi)
    p = F.softmax(phi @ W.T + b, dim=1)
    S = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)           # [N, C, C]
    H = torch.einsum("nab,nk,nl->akbl", S, pa, pa).reshape(C * pa.shape[1], C * pa.shape[1]) / n
    return H + damping * torch.eye(H.shape[0], dtype=H.dtype, device=H.device)


@keyword_only("damping", "solver", "pinv_cutoff")
def head_influence(head: Head, phi_train: torch.Tensor, y_train: torch.Tensor, phi_test: torch.Tensor,
                   y_test: torch.Tensor, *, damping: float = 0.0, solver: str = "pinv",
                   pinv_cutoff: float = 1e-20) -> torch.Tensor:
    """``I[t, i] = -grad l(z_test_t)^T H^+ grad l(z_train_i)``: ``[N_test, N_train]`` float64.

    Args:
        head: the trained linear head (``nn.Linear(d, C)``) or ``(W, b)``.
        phi_train: ``[N, d]`` training features (the representation ``g(x)``), ``y_train`` ``[N]`` int.
        phi_test: ``[M, d]`` test features, ``y_test`` ``[M]`` int.
        damping: ``lambda >= 0`` added to ``H`` (default 0, the paper's; ``solver="cholesky"`` needs ``> 0``).
        solver: ``"pinv"`` (default, seed 002 app. A.9: pseudo-inverse of the symmetric ``H`` keeping
            singular values ``> pinv_cutoff``, an absolute threshold, default ``1e-20``) or
            ``"cholesky"`` (a solve with the damped, positive-definite ``H``).

    Raises:
        ValueError: unknown ``solver``, negative ``damping`` or ``pinv_cutoff``, or ``solver="cholesky"``
            without ``damping > 0``.
        TypeError, InvalidTypeError, InvalidValueError: as :func:`head_gradients` for ``head``, the
            features and the labels.

    Example:
        >>> import torch
        >>> head = torch.nn.Linear(3, 2)
        >>> phi, y = torch.rand(6, 3), torch.tensor([0, 1, 0, 1, 0, 1])
        >>> head_influence(head, phi, y, phi[:2], y[:2], damping=0.1, solver="cholesky").shape
        torch.Size([2, 6])
    """
    if solver not in SOLVERS:
        raise ValueError(f"'solver' must be one of {SOLVERS}, got {solver!r}")
    if not damping >= 0:
        raise ValueError(f"'damping' must be >= 0, got {damping}")
    if solver == "cholesky" and not damping > 0:
        raise ValueError(f"solver='cholesky' needs 'damping' > 0 (the head Hessian is singular), got {damping}; "
                         "or use solver='pinv'")
    if not pinv_cutoff >= 0:
        raise ValueError(f"'pinv_cutoff' must be >= 0, got {pinv_cutoff}")
    g_tr = _gradients(head, phi_train, y_train, "phi_train", "y_train")
    g_te = _gradients(head, phi_test, y_test, "phi_test", "y_test")
    H = _hessian(*_head_params(head), phi_train, damping, "phi_train")
    if solver == "cholesky":
        L = torch.linalg.cholesky(H)
        return -(g_te @ torch.cholesky_solve(g_tr.T, L))
    H = (H + H.T) / 2
    H_pinv = torch.linalg.pinv(H, atol=float(pinv_cutoff), rtol=0.0, hermitian=True)
    return -(g_te @ (H_pinv @ g_tr.T))


@keyword_only("ks", "by")
def influence_match_rate(influence: torch.Tensor, y_train: torch.Tensor, y_test: torch.Tensor, *,
                         ks: Sequence[int] = (1, 5, 10), by: str = "helpful") -> dict[int, float]:
    """Top-k influential-label match rate (seed 002 Fig. 7b).

    Args:
        influence: ``[M, N]`` from :func:`head_influence`.
        ks: the k values; each gives the mean over test points of the fraction of the top-k training
            points whose label equals the test label.
        by: ``"helpful"`` (most negative influence first), ``"harmful"`` (most positive) or ``"abs"``.

    Raises:
        InvalidTypeError: an argument is not a tensor.
        InvalidValueError: ``influence`` is not finite ``[M, N]``, the labels do not match it, or a
            ``k`` is outside ``[1, N]``.
        ValueError: ``by`` is unknown.

    Example:
        >>> inf = torch.tensor([[-3., -1., 2.], [0., -2., -1.]])
        >>> influence_match_rate(inf, torch.tensor([0, 1, 0]), torch.tensor([0, 0]), ks=(1, 2))
        {1: 0.5, 2: 0.5}
    """
    for name, t in (("influence", influence), ("y_train", y_train), ("y_test", y_test)):
        if not isinstance(t, torch.Tensor):
            raise InvalidTypeError(f"'{name}' must be a torch.Tensor, got {type(t).__name__}")
    if influence.dim() != 2:
        raise InvalidValueError(f"'influence' must be [M, N] (test x train), got {tuple(influence.shape)}")
    for name, t, n in (("y_train", y_train, influence.shape[1]), ("y_test", y_test, influence.shape[0])):
        if t.shape != (n,):
            raise InvalidValueError(f"'{name}' must have shape [{n}] to match 'influence' "
                                    f"{tuple(influence.shape)}, got {tuple(t.shape)}")
    if not bool(torch.isfinite(influence).all()):
        raise InvalidValueError("'influence' contains NaN or infinite values; it would rank them arbitrarily")
    score = {"helpful": -influence, "harmful": influence, "abs": influence.abs()}.get(by)
    if score is None:
        raise ValueError(f"'by' must be 'helpful', 'harmful' or 'abs', got {by!r}")
    out = {}
    for k in ks:
        if not 1 <= int(k) <= influence.shape[1]:
            raise InvalidValueError(f"every k of 'ks' must be in [1, {influence.shape[1]}], got {k}")
        idx = score.topk(int(k), dim=1).indices                           # [M, k]
        out[int(k)] = float((y_train.to(idx.device)[idx] == y_test.to(idx.device).unsqueeze(1)).double().mean())
    return out
