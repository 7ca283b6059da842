"""Typed Python wrappers of the compiled kernels (``torch.ops.pyadvt.*``) with pure-PyTorch
references in :mod:`pyadvt.ops.reference` (used as fall-back when the extension is missing)."""

from pyadvt.ops.attack_update import nesterov_point, patch_step_, variance_momentum_step_
from pyadvt.ops.hessian import power_iteration_update_
from pyadvt.ops.jacobian import jacobian, jvp
from pyadvt.ops.linalg import JacobianSpectrum, jacobian_spectrum, small_sym_eig
from pyadvt.ops.pgd import pgd_step_
from pyadvt.ops.budget import MemoryBudgetError, plan_route
from pyadvt.ops.matrix_free import MatrixFreeSpectrum, jacobian_top_singular, lanczos_step_

__all__ = ["JacobianSpectrum", "nesterov_point", "patch_step_", "variance_momentum_step_", "jacobian", "jacobian_spectrum", "jvp", "pgd_step_", "power_iteration_update_", "small_sym_eig",
           "MatrixFreeSpectrum", "MemoryBudgetError", "jacobian_top_singular", "lanczos_step_", "plan_route"]
