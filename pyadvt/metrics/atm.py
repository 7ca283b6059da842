"""Adversarial transferability matrix (ATM) and task-similarity tree, seed 000 §4.3 / App. G.3
(docs/theory.md §2), an ordinal normalisation borrowed from Taskonomy's affinity matrix.

For N models (tasks), adversarial examples made on each source ``i`` are evaluated on each target
``T``. Per target, the *tournament matrix* ``M_T[i, j]`` is the fraction of samples on which source
``i``'s example hurts ``T`` more than source ``j``'s: a success (``T`` fooled) beats a failure, and
between equal outcomes the higher target loss wins; exact ties count 1/2 (so ``M_T + M_T^T = 1``
off the diagonal and ``M_T[i, i] = 1/2``). Column ``T`` of the ATM is the principal (Perron)
eigenvector of ``M_T`` normalised to sum 1 - a ranking of the sources by how well they transfer to
``T`` that is comparable across targets with different loss scales. Agglomerative clustering
(scipy) of the ATM's columns gives the similarity tree; agreement with reference groups is the mean
within-cluster label entropy (lower = better agreement).

Example:
    >>> import torch
    >>> loss = torch.tensor([[[3.0, 3.0]], [[1.0, 1.0]]])  # [sources=2, targets=1, samples=2]
    >>> M = tournament_matrix(loss[:, 0], torch.zeros(2, 2, dtype=torch.bool))
    >>> M.tolist()
    [[0.5, 1.0], [0.0, 0.5]]
    >>> v = perron_vector(M)
    >>> bool(v[0] > 0.99), round(float(v.sum()), 6)
    (True, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from pyadvt.metrics._result_protocol import ValidMask, headline, masked_float
from pyadvt.metrics.spectral import check_batch
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.modes import evaluating
from pyadvt.utils.validation import check_labels

if TYPE_CHECKING:
    from torch import nn

    from pyadvt.metrics._pair_data import Data

    #: ``attack(x, y) -> x_adv``
    AttackFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_loss_success(loss: torch.Tensor, success: torch.Tensor) -> None:
    if not bool(torch.isfinite(torch.as_tensor(loss, dtype=torch.float64)).all()):
        raise ValueError("'loss' contains NaN or infinite values; drop or recompute those samples first")
    s = torch.as_tensor(success)
    if s.dtype != torch.bool and not bool(((s == 0) | (s == 1)).all()):
        raise ValueError(f"'success' must be bool (or 0/1) per sample, got {s.dtype} values other than 0 and 1")


def tournament_matrix(loss: torch.Tensor, success: torch.Tensor) -> torch.Tensor:
    """``M [N, N]`` from per-sample target ``loss [N, S]`` and ``success [N, S]`` of N sources' examples.

    ``M[i, j] = mean_s (1[i beats j at s] + 0.5 * 1[tie at s])``, with "beats" = success and not the
    other's success, or equal success and a strictly higher loss (docs/theory.md §2, the ATM of
    seed 000 §4.3 / App. G.3). ``M + M^T = 1`` off the diagonal and ``M[i, i] = 1/2``.

    Args:
        loss: ``[N, S]`` target loss of each of N sources' adversarial examples, per sample (finite).
        success: ``[N, S]`` bool (or 0/1): whether that example fooled the target.

    Returns:
        ``M [N, N]`` float64.

    Raises:
        ValueError: when ``loss`` is not 2-D or ``success`` has another shape, when ``loss`` holds
            NaN or infinite values, or when ``success`` holds values other than 0 and 1.

    Example:
        >>> import torch
        >>> loss = torch.tensor([[2.0, 1.0], [1.0, 1.0]])
        >>> success = torch.tensor([[False, True], [False, False]])
        >>> tournament_matrix(loss, success).tolist()
        [[0.5, 1.0], [0.0, 0.5]]
    """
    if loss.dim() != 2 or success.shape != loss.shape:
        raise ValueError(f"'loss' and 'success' must both be [N_sources, S], got {tuple(loss.shape)} and "
                         f"{tuple(success.shape)}")
    _check_loss_success(loss, success)
    s = success.to(torch.float64)
    ls = loss.to(torch.float64)
    ds = s[:, None, :] - s[None, :, :]
    dl = torch.sign(ls[:, None, :] - ls[None, :, :])
    score = torch.where(ds != 0, torch.sign(ds), dl)  # +1 i wins, -1 j wins, 0 tie
    return ((score > 0).double() + 0.5 * (score == 0).double()).mean(-1)


def perron_vector(M: torch.Tensor, damping: float = 1e-6) -> torch.Tensor:
    """Principal eigenvector of a non-negative square matrix, made non-negative and summing to 1.

    ``damping`` is added to every entry first (as PageRank's teleportation): it makes the matrix
    positive, so its Perron root is simple and the eigenvector unique, even for a perfectly ordered
    tournament (triangular, defective ``M``); it changes generic results only at the 1e-6 level.
    The sign noise of the eigensolver is removed by ``abs`` (Perron-Frobenius). One column of the
    ATM (docs/theory.md §2, seed 000 App. G.3).

    Args:
        M: ``[N, N]`` non-negative finite matrix (a :func:`tournament_matrix`).
        damping: ``>= 0``, added to every entry.

    Returns:
        ``[N]`` float64, non-negative, summing to 1.

    Raises:
        ValueError: when ``M`` is not square, holds NaN/infinite or negative values, or when
            ``damping`` is negative.

    Example:
        >>> import torch
        >>> v = perron_vector(torch.tensor([[0.5, 1.0], [0.0, 0.5]]))
        >>> [round(float(a), 2) for a in v]
        [1.0, 0.0]
    """
    A = np.asarray(M, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"'M' must be square, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError("'M' contains NaN or infinite values; pass a finite tournament matrix")
    if (A < 0).any():
        raise ValueError("'M' must be non-negative (a tournament matrix)")
    if not damping >= 0:
        raise ValueError(f"'damping' must be >= 0, got {damping!r}")
    vals, vecs = np.linalg.eig(A + damping)
    v = np.abs(np.real(vecs[:, int(np.argmax(np.real(vals)))]))
    return torch.from_numpy(v / v.sum())


def transferability_matrix(loss: torch.Tensor, success: torch.Tensor) -> torch.Tensor:
    """ATM ``[N_sources, N_targets]`` from ``loss, success [N_sources, N_targets, S]``: column ``t`` is the
    Perron vector of target t's tournament matrix (docs/theory.md §2, seed 000 §4.3 / App. G.3).

    Raises:
        ValueError: when ``loss`` is not 3-D or ``success`` has another shape, or for the reasons of
            :func:`tournament_matrix` and :func:`perron_vector` (non-finite loss, non-0/1 success).

    Example:
        >>> import torch
        >>> loss = torch.tensor([[[2.0, 2.0]], [[1.0, 1.0]]])  # [sources=2, targets=1, samples=2]
        >>> atm = transferability_matrix(loss, torch.zeros(2, 1, 2, dtype=torch.bool))
        >>> tuple(atm.shape), [round(float(a), 2) for a in atm[:, 0]]
        ((2, 1), [1.0, 0.0])
    """
    if loss.dim() != 3 or success.shape != loss.shape:
        raise ValueError(f"'loss' and 'success' must be [N_sources, N_targets, S], got {tuple(loss.shape)}")
    cols = [perron_vector(tournament_matrix(loss[:, t], success[:, t])) for t in range(loss.shape[1])]
    return torch.stack(cols, dim=1)


@dataclass
class TransferTable(ValidMask):
    """Per-sample outcome of every source's examples on every target: ``loss``, ``success``
    ``[N_sources, N_targets, S]`` (docs/theory.md §2, seed 000 §4.3); ``atm()`` is its
    :func:`transferability_matrix`.

    ``valid`` ``[S]`` bool: True for the samples whose loss is finite on every (source, target) pair
    (a NaN loss comes from a model's non-finite logits; :func:`tournament_matrix` refuses it);
    ``n_undefined`` counts the others. The headline ``value`` is :attr:`transfer_rate`.

    Example:
        >>> import torch
        >>> table = TransferTable(loss=torch.tensor([[[2.0, 1.0]], [[1.0, 1.0]]]),
        ...                       success=torch.zeros(2, 1, 2, dtype=torch.bool))
        >>> tuple(table.atm().shape), table.n_undefined
        ((2, 1), 0)
    """

    loss: torch.Tensor
    success: torch.Tensor

    def atm(self) -> torch.Tensor:
        return transferability_matrix(self.loss, self.success)

    @property
    def valid(self) -> torch.Tensor:
        """``[S]`` bool: the sample's loss is finite for every source and target."""
        return torch.isfinite(torch.as_tensor(self.loss)).flatten(0, 1).all(0)

    @property
    def transfer_rate(self) -> float:
        """Mean ``success`` over the valid samples and the pairs with source index != target index (in
        :func:`transfer_table`'s ``[N, N, S]`` each model's examples on every other model; the
        diagonal is the white-box attack); NaN when there is no such pair or valid sample."""
        off = ~torch.eye(self.success.shape[0], self.success.shape[1], dtype=torch.bool)
        return masked_float(self.success.double().cpu()[off], self.valid.cpu().expand(int(off.sum()), -1),
                            torch.mean)

    value = headline("transfer_rate", "the mean off-diagonal success rate")

    def summary(self) -> dict:
        """Plain-Python summary: the table's sizes, ``n_undefined`` and the transfer rate (``value``)."""
        n_src, n_tgt, s = self.success.shape
        return {"n_sources": int(n_src), "n_targets": int(n_tgt), "n": int(s), "n_undefined": self.n_undefined,
                "transfer_rate": self.transfer_rate}


def transfer_table(models: Sequence[nn.Module], x: Data, labels: Sequence[torch.Tensor],
                   attack_factory: Callable[[nn.Module], AttackFn], *,
                   batch_size: int = 256, progress: bool = False) -> TransferTable:
    """Attack every model and evaluate every model on every attack.

    Args:
        models: N classifiers (sources and targets at once, as for the paper's task pool).
        x: ``[S, *in]`` images in [0, 1], or a ``TensorData`` / ``Dataset`` / ``DataLoader`` of them
            (any labels it holds are ignored), walked one batch at a time for each source
            (:func:`pyadvt.data.iter_batches`).
        labels: N tensors ``[S]``, model t's labels for x (its task).
        attack_factory: ``attack_factory(model) -> attack`` with ``attack(x, y) -> x_adv`` (e.g.
            ``lambda m: PGD(m, eps=0.03, steps=10)``); source i is attacked with its own labels.

    Untargeted success on target t = ``argmax f_t(x_adv) != labels[t]``; loss = cross-entropy
    (the input of the ATM, docs/theory.md §2, seed 000 §4.3 / App. G.3).

    Returns:
        a :class:`TransferTable` with ``loss``, ``success [N, N, S]`` (source i's examples on target t).

    Raises:
        TypeError: (``InvalidTypeError``) when ``x`` is neither a tensor nor a data source that
            :func:`pyadvt.data.iter_batches` accepts, or when a label tensor is not integer.
        ValueError: when the tensor ``x`` is not a non-empty batch ``[S, *in]``, when ``labels`` does
            not hold one tensor per model or one label per image, or (``InvalidValueError``) when a
            label is outside ``[0, num_classes)`` of its model.

    Example:
        >>> import torch
        >>> from pyadvt.attacks import FGSM
        >>> torch.manual_seed(0) and None
        >>> models = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)) for _ in range(2)]
        >>> x, y = torch.rand(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
        >>> table = transfer_table(models, x, [y, y], lambda m: FGSM(m, eps=0.1))
        >>> tuple(table.loss.shape), table.success.dtype
        ((2, 2, 4), torch.bool)
    """
    from pyadvt.data.stream import iter_batches, num_samples

    if isinstance(x, torch.Tensor):
        check_batch(x)
    if len(labels) != len(models):
        raise ValueError(f"'labels' must have one tensor per model ({len(models)}), got {len(labels)}")
    N = len(models)
    S = num_samples(x)
    if S is not None and any(lab.shape[0] != S for lab in labels):
        raise ValueError(f"'labels' must each hold one label per image ({S}), got {[lab.shape[0] for lab in labels]}")
    S = int(labels[0].shape[0]) if S is None else S
    loss = torch.zeros(N, N, S, dtype=torch.float64)
    success = torch.zeros(N, N, S, dtype=torch.bool)
    with evaluating(list(models)):
        for i, src in enumerate(models):
            atk = attack_factory(src)
            start = 0
            for xb, _ in iter_batches(x, batch_size, progress=progress, desc=f"ATM source {i}", labels=False):
                sl = slice(start, start + xb.shape[0])
                start = sl.stop
                x_adv = atk(xb, labels[i][sl].to(xb.device))
                with torch.no_grad():
                    for t, tgt in enumerate(models):
                        logits = tgt(x_adv)
                        yt = labels[t][sl].to(logits.device)
                        check_labels(yt, logits.shape[0], f"labels[{t}]", num_classes=logits.shape[1])
                        loss[i, t, sl] = F.cross_entropy(logits, yt, reduction="none").double().cpu()
                        success[i, t, sl] = (logits.argmax(1) != yt).cpu()
    return TransferTable(loss=loss, success=success)


@keyword_only("method", "metric")
def cluster_tree(atm: torch.Tensor, *, method: str = "average", metric: str = "euclidean") -> np.ndarray:
    """scipy linkage matrix of agglomerative clustering of the ATM's columns (one feature vector per task).

    The task-similarity tree of seed 000 §4.3 / Figure 6 (docs/theory.md §2).

    Args:
        atm: ``[N, N]`` finite transferability matrix (:func:`transferability_matrix`), N >= 2.
        method, metric: passed to :func:`scipy.cluster.hierarchy.linkage`.

    Returns:
        the ``[N - 1, 4]`` float64 linkage matrix (numpy).

    Raises:
        ValueError: when ``atm`` is not 2-D, holds NaN or infinite values, or has fewer than 2 tasks
            (and scipy's ``ValueError`` for an unknown ``method`` or ``metric``).

    Example:
        >>> import torch
        >>> atm = torch.tensor([[0.6, 0.5, 0.1], [0.3, 0.4, 0.1], [0.1, 0.1, 0.8]])
        >>> cluster_tree(atm).shape
        (2, 4)
    """
    from scipy.cluster.hierarchy import linkage

    cols = np.asarray(atm, dtype=np.float64).T
    if cols.ndim != 2:
        raise ValueError(f"'atm' must be a 2-D matrix [tasks, tasks], got shape {cols.T.shape}")
    if not np.all(np.isfinite(cols)):
        raise ValueError("'atm' contains NaN or infinite values; pass a finite transferability matrix")
    if cols.shape[0] < 2:
        raise ValueError("clustering needs at least 2 tasks")
    return linkage(cols, method=method, metric=metric)


def cut_tree(linkage_matrix: np.ndarray, n_clusters: int) -> np.ndarray:
    """Cluster label (1..k) of every task when the tree is cut into ``n_clusters`` clusters."""
    from scipy.cluster.hierarchy import fcluster

    return fcluster(linkage_matrix, t=n_clusters, criterion="maxclust")


def within_cluster_entropy(clusters: Sequence[int], reference: Sequence) -> float:
    """Mean over predicted clusters of the entropy (bits) of the reference labels inside each cluster.

    0 when every cluster is pure (agrees with the reference grouping); higher = more mixing. The
    agreement of the task-similarity tree with a reference grouping (docs/theory.md §2, seed 000
    Figure 6).

    Raises:
        ValueError: when ``clusters`` and ``reference`` are empty or of different lengths.

    Example:
        >>> within_cluster_entropy([1, 1, 2, 2], ["a", "a", "b", "b"])
        0.0
        >>> within_cluster_entropy([1, 1, 1, 1], ["a", "a", "b", "b"])
        1.0
    """
    clusters, reference = list(clusters), list(reference)
    if len(clusters) != len(reference) or not clusters:
        raise ValueError("'clusters' and 'reference' must be non-empty and of equal length")
    ents = []
    for c in sorted(set(clusters)):
        members = [r for k, r in zip(clusters, reference) if k == c]
        _, counts = np.unique(np.asarray(members, dtype=object).astype(str), return_counts=True)
        p = counts / counts.sum()
        ents.append(float(-(p * np.log2(p)).sum()))
    return float(np.mean(ents))


def entropy_curve(linkage_matrix: np.ndarray, reference: Sequence, ks: Sequence[int] | None = None) -> dict[int, float]:
    """Within-cluster entropy for every number of clusters ``k`` (paper's Fig. 6)."""
    n = linkage_matrix.shape[0] + 1
    ks = range(1, n + 1) if ks is None else ks
    return {int(k): within_cluster_entropy(cut_tree(linkage_matrix, int(k)), reference) for k in ks}


def save_dendrogram(linkage_matrix: np.ndarray, labels: Sequence[str], path, title: str = "Task similarity tree"):
    """Deprecated (removed in the next release): use :func:`pyadvt.report.figures.dendrogram`.

    Figures are drawn only by :mod:`pyadvt.report`; this alias draws the same tree there.
    """
    import warnings

    warnings.warn("pyadvt.metrics.atm.save_dendrogram is deprecated; use pyadvt.report.figures.dendrogram",
                  DeprecationWarning, stacklevel=2)
    from pyadvt.report.figures import dendrogram  # lazy: figures live in the report layer

    return dendrogram(linkage_matrix, labels, path, title=title)
