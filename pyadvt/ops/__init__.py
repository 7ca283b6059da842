"""Typed Python wrappers of the compiled kernels (``torch.ops.pyadvt.*``) with pure-PyTorch
references in :mod:`pyadvt.ops.reference` (used as fall-back when the extension is missing)."""

from pyadvt.ops.pgd import pgd_step_

__all__ = ["pgd_step_"]
