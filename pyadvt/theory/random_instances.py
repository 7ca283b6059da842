"""Random instances for exercising seed 003's theorems: separable sets, S-accurate linear separators and
S-accurate ReLU classifiers of the classes R, R', R''.

Every generator takes a ``numpy.random.Generator`` (or seed) and returns an instance that satisfies the
theorems' hypotheses *by construction* (and is asserted to), so property tests can draw many of them.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, y = random_separable_set(rng, n=20, d=3, margin=0.5)
    >>> h = random_linear_separator(X, y, rng)
    >>> bool(np.all(h.predict(X) == y))
    True
"""

from __future__ import annotations

import numpy as np

from pyadvt.theory._validate import as_binary_labels, as_int_labels, as_points, require_both_classes
from pyadvt.theory.linear import LinearClassifier, MultiClassLinear
from pyadvt.theory.relu_classes import AllActiveReLU, TwoLayerReLU
from pyadvt.theory.svm import linear_separator


def random_separable_set(rng, n: int, d: int, margin: float = 0.5, scale: float = 1.0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``(X [n, d], y [n])`` with both labels, separated by a random hyperplane with margin ``>= margin``.

    Points are Gaussian (std ``scale``) along the hyperplane and at distance ``margin + |N(0, scale)|``
    on their label's side of it.
    """
    rng = np.random.default_rng(rng)
    if n < 2 or d < 1 or not margin > 0:
        raise ValueError(f"need n >= 2, d >= 1 and margin > 0, got n={n}, d={d}, margin={margin}")
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    offset = rng.normal()
    y = rng.choice([-1.0, 1.0], size=n)
    y[:2] = [-1.0, 1.0]
    rng.shuffle(y)
    Z = rng.normal(scale=scale, size=(n, d))
    Z -= np.outer(Z @ u, u)
    dist = y * (margin + np.abs(rng.normal(scale=scale, size=n)))
    X = Z + np.outer(dist - offset, u)
    return X, y


def random_linear_separator(X, y, rng, spread: float = 1.0) -> LinearClassifier:
    """A random S-accurate ``(w, b)``: a separator's normal plus Gaussian noise (halved until it still
    separates) and an offset uniform in the open interval of separating offsets."""
    rng = np.random.default_rng(rng)
    X = as_points(X)
    y = as_binary_labels(y, X.shape[0])
    require_both_classes(y)
    base = linear_separator(X, y)
    if base is None:
        raise ValueError("the data (X, y) is not linearly separable")
    w0 = base.w / np.linalg.norm(base.w)
    noise = rng.normal(size=w0.shape)
    for _ in range(60):
        w = w0 + spread * noise
        s = X @ w
        lo, hi = s[y < 0].max(), s[y > 0].min()
        if lo < hi:
            b = -(lo + (hi - lo) * rng.uniform(0.05, 0.95))
            h = LinearClassifier(w, b)
            if np.all(h.margins(X, y) > 0):
                return h
        noise *= 0.5
    raise RuntimeError("could not draw a separating perturbation")  # unreachable: noise -> 0 gives w0


def _separator_unit(X, y, rng) -> LinearClassifier:
    """A random separator scaled so its smallest |score| on S is >= 1."""
    h = random_linear_separator(X, y, rng)
    m = np.min(h.margins(X, y))
    return LinearClassifier(h.w / m, h.b / m)


def random_relu_classifier(X, y, rng, kind: str = "R'", width: int = 6, strict: bool | None = None):
    """A random S-accurate classifier of class ``kind`` (``"R"``, ``"R'"`` or ``"R''"``).

    Construction: ``width - 1`` random units plus one *anchor* unit from a random separator ``(u, c)`` with
    ``y (u.x + c) >= 1`` on S.

    * R: the random units get biases that switch them off on all of ``S[-1]``; the anchor is on exactly on
      ``S[+1]``; ``v = 1``, ``a = 0``.
    * R': random units and biases, random ``v >= 0``; the anchor's weight is raised until
      ``max f(S[-1]) < min f(S[+1])`` and ``a > 0`` is drawn in between.
    * R'': the random units get biases that switch them on over all of ``S[+1]``; the anchor is off on
      ``S[-1]``.
    """
    rng = np.random.default_rng(rng)
    X = as_points(X)
    y = as_binary_labels(y, X.shape[0])
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if kind not in ("R", "R'", "R''"):
        raise ValueError(f"kind must be 'R', \"R'\" or \"R''\", got {kind!r}")
    anchor = _separator_unit(X, y, rng)
    scale = float(np.std(X)) or 1.0
    W = rng.normal(size=(width - 1, X.shape[1]))
    pre = X @ W.T
    neg, pos = y < 0, y > 0
    if kind == "R":
        b = -pre[neg].max(axis=0) - scale * rng.uniform(0.0, 1.0, size=width - 1)
        h = TwoLayerReLU(np.vstack([W, anchor.w]), np.append(b, anchor.b))
    elif kind == "R''":
        b = -pre[pos].min(axis=0) + scale * rng.uniform(0.01, 1.0, size=width - 1)
        h = AllActiveReLU(np.vstack([W, anchor.w]), np.append(b, anchor.b))
    else:
        b = rng.normal(scale=scale, size=width - 1)
        v = rng.uniform(0.0, 1.0, size=width - 1) * (rng.uniform(size=width - 1) < 0.8)
        f_rand = np.maximum(pre + b, 0.0) @ v
        f_anchor = np.maximum(anchor.scores(X), 0.0)  # >= 1 on S[+1], 0 on S[-1]
        v_anchor = max(0.0, f_rand[neg].max() - f_rand[pos].min()) + rng.uniform(0.1, 1.0)
        f = f_rand + v_anchor * f_anchor
        lo, hi = max(f[neg].max(), 0.0), f[pos].min()
        a = lo + (hi - lo) * rng.uniform(0.05, 0.95)
        strict = bool(rng.integers(2)) if strict is None else strict
        h = TwoLayerReLU(np.vstack([W, anchor.w]), np.append(b, anchor.b), np.append(v, v_anchor), a, strict)
    if np.any(h.predict(X) != y):
        raise RuntimeError("internal error: the constructed ReLU classifier is not S-accurate")
    return h


def sample_region(h, label: float, X_ref, n: int, rng, scale: float = 1.0) -> np.ndarray:
    """Up to ``n`` random points with ``h(x) = label``: Gaussian perturbations (std ``scale`` times the data
    spread) of random points of ``X_ref [N, d]``, and random convex combinations of them."""
    rng = np.random.default_rng(rng)
    X_ref = as_points(X_ref, "X_ref")
    spread = float(np.std(X_ref)) or 1.0
    centers = X_ref[rng.integers(0, X_ref.shape[0], size=4 * n)]
    cand = centers + rng.normal(scale=scale * spread, size=centers.shape)
    keep = cand[h.predict(cand) == label]
    return keep[:n]


def random_multiclass_set(rng, n: int, d: int, k: int, margin: float = 0.5
                          ) -> tuple[np.ndarray, np.ndarray]:
    """``(X [n, d], y [n])`` with labels ``0..k-1`` (each present) separable by the nearest-centroid rule
    ``argmax(W x + b)`` (``W = centres``, ``b = -||centre||^2 / 2``) with score gap ``>= margin``.

    Each class's centre is in the set (so every label occurs); the other points are Gaussian around random
    centres, kept when their score gap is at least ``margin``.
    """
    rng = np.random.default_rng(rng)
    if k < 2 or n < k or not margin > 0:
        raise ValueError(f"need k >= 2, n >= k and margin > 0, got n={n}, k={k}, margin={margin}")
    spread = 2.0 * np.sqrt(margin) + 1.0
    for _ in range(1000):
        C = rng.normal(scale=spread, size=(k, d))
        gaps = np.sum((C[:, None] - C[None]) ** 2, axis=-1) / 2 + np.diag(np.full(k, np.inf))
        if gaps.min() >= 2 * margin:
            break
        spread *= 1.05
    b = -np.sum(C ** 2, axis=1) / 2
    X_parts, y_parts, have = [C], [np.arange(k)], k
    while have < n:
        cand = C[rng.integers(0, k, size=4 * n)] + rng.normal(size=(4 * n, d))
        Z = np.sort(cand @ C.T + b, axis=1)
        ok = Z[:, -1] - Z[:, -2] >= margin
        X_parts.append(cand[ok])
        y_parts.append(np.argmax(cand[ok] @ C.T + b, axis=1))
        have += int(ok.sum())
    X, y = np.vstack(X_parts)[:n], np.concatenate(y_parts)[:n]
    perm = rng.permutation(n)
    return X[perm], y[perm]


def multiclass_separator(X, y) -> MultiClassLinear | None:
    """Some ``argmax(W x + b)`` with ``z_y - z_j >= 1`` for every point and ``j != y`` (an LP), or ``None``."""
    from scipy.optimize import linprog

    X = as_points(X)
    y = as_int_labels(y, X.shape[0])
    labels = np.unique(y)
    K, (n, d) = labels.size, X.shape
    rows = np.searchsorted(labels, y)
    Xt = np.hstack([X, np.ones((n, 1))])
    A = []
    for i in range(n):
        for j in range(K):
            if j == rows[i]:
                continue
            a = np.zeros((K, d + 1))
            a[rows[i]] -= Xt[i]
            a[j] += Xt[i]
            A.append(a.ravel())
    res = linprog(np.zeros(K * (d + 1)), A_ub=np.array(A), b_ub=-np.ones(len(A)),
                  bounds=[(None, None)] * (K * (d + 1)), method="highs")
    if res.status != 0:
        return None
    sol = res.x.reshape(K, d + 1)
    h = MultiClassLinear(sol[:, :d], sol[:, d], labels)
    return h if np.all(h.predict(X) == y) else None


def random_multiclass_separator(X, y, rng, spread: float = 1.0) -> MultiClassLinear:
    """A random S-accurate ``argmax(W x + b)``: an LP separator plus Gaussian noise, halved until accurate."""
    rng = np.random.default_rng(rng)
    base = multiclass_separator(X, y)
    if base is None:
        raise ValueError("the data (X, y) is not separable by any argmax(Wx + b)")
    X = as_points(X)
    y = as_int_labels(y, X.shape[0])
    scale = np.linalg.norm(base.W) / np.sqrt(base.W.size)
    nW, nb = rng.normal(size=base.W.shape) * scale, rng.normal(size=base.b.shape) * scale
    for _ in range(60):
        h = MultiClassLinear(base.W + spread * nW, base.b + spread * nb, base.labels)
        if np.all(h.predict(X) == y):
            return h
        nW, nb = nW * 0.5, nb * 0.5
    raise RuntimeError("could not draw an accurate perturbation")  # unreachable: noise -> 0 gives base
