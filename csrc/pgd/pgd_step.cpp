// pgd_step_: validation shared by every backend (the schema is declared in csrc/ops.cpp).
#include "pgd/pgd_step.h"

#include "pyadvt/torch_checks.h"

namespace pyadvt {

pgd::Norm validate_pgd_step(const at::Tensor& x, const at::Tensor& grad, const at::Tensor& x_orig,
                            const at::Tensor& eps, const at::Tensor& alpha, const std::string& norm,
                            double lo, double hi, const c10::optional<at::Tensor>& momentum) {
  TORCH_CHECK(x.dim() >= 1 && x.size(0) > 0, "pyadvt: 'x' must have a non-empty batch dimension, got shape ",
              x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "pyadvt: 'x' must be floating point, got ",
              x.scalar_type());
  check_like(x, grad, "x", "grad");
  check_like(x, x_orig, "x", "x_orig");
  if (momentum.has_value()) check_like(x, *momentum, "x", "momentum");
  check_per_sample(x, eps, "eps");
  check_per_sample(x, alpha, "alpha");
  TORCH_CHECK(lo <= hi, "pyadvt: 'lo' (", lo, ") must not exceed 'hi' (", hi, ")");
  if (norm == "linf" || norm == "inf") return pgd::Norm::Linf;
  if (norm == "l2") return pgd::Norm::L2;
  TORCH_CHECK(false, "pyadvt: 'norm' must be 'linf' or 'l2', got '", norm, "'");
}

}  // namespace pyadvt
