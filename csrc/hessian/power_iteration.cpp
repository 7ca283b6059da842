// power_iteration_update_: validation shared by every backend (schema in csrc/ops.cpp).
#include "hessian/power_iteration.h"

#include <cmath>

#include "pyadvt/torch_checks.h"

namespace pyadvt {

void validate_power_iteration_update(const at::Tensor& v, const at::Tensor& hv, const at::Tensor& eig,
                                     const at::Tensor& active, double tol) {
  TORCH_CHECK(v.dim() == 2, "pyadvt: 'v' must have shape [B, n], got ", v.sizes());
  TORCH_CHECK(v.scalar_type() == at::kFloat || v.scalar_type() == at::kDouble,
              "pyadvt: 'v' must be float32 or float64, got ", v.scalar_type());
  check_like(v, hv, "v", "hv");
  check_same_device(v, eig, "v", "eig");
  check_same_device(v, active, "v", "active");
  TORCH_CHECK(eig.dim() == 1 && eig.size(0) == v.size(0) && eig.scalar_type() == v.scalar_type(), "pyadvt: 'eig' must be a [",
              v.size(0), "] tensor of dtype ", v.scalar_type(), ", got ", eig.sizes(), " ", eig.scalar_type());
  TORCH_CHECK(active.dim() == 1 && active.size(0) == v.size(0) && active.scalar_type() == at::kBool,
              "pyadvt: 'active' must be a [", v.size(0), "] bool tensor, got ", active.sizes(), " ",
              active.scalar_type());
  TORCH_CHECK(std::isfinite(tol) && tol >= 0.0, "pyadvt: 'tol' must be finite and >= 0, got ", tol);
}

}  // namespace pyadvt
