// CPU implementation of power_iteration_update_: one pass per active row, parallel over rows.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "hessian/power_iteration.h"
#include "pyadvt/torch_checks.h"
#include "pyadvt/target_clones.h"
#include "pyadvt/power_iteration.h"

namespace pyadvt {
namespace {

PYADVT_TARGET_CLONES void update_row_float(float* v, const float* hv, int64_t n, float* eig, bool* active, double tol) {
  power::update_row<float>(v, hv, n, eig, active, tol);
}

PYADVT_TARGET_CLONES void update_row_double(double* v, const double* hv, int64_t n, double* eig, bool* active,
                                            double tol) {
  power::update_row<double>(v, hv, n, eig, active, tol);
}

inline void update_row_dispatch(float* v, const float* hv, int64_t n, float* e, bool* a, double tol) {
  update_row_float(v, hv, n, e, a, tol);
}
inline void update_row_dispatch(double* v, const double* hv, int64_t n, double* e, bool* a, double tol) {
  update_row_double(v, hv, n, e, a, tol);
}

void power_iteration_update_cpu(at::Tensor v, const at::Tensor& hv, at::Tensor eig, at::Tensor active, double tol) {
  validate_power_iteration_update(v, hv, eig, active, tol);
  bump_versions({&v, &eig, &active});
  const int64_t B = v.size(0), n = v.size(1);
  if (B == 0) return;
  at::Tensor vc = v.is_contiguous() ? v : v.contiguous();
  at::Tensor hc = hv.contiguous();
  at::Tensor ec = eig.is_contiguous() ? eig : eig.contiguous();
  at::Tensor ac = active.is_contiguous() ? active : active.contiguous();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "power_iteration_update_cpu", [&] {
    scalar_t* vp = vc.data_ptr<scalar_t>();
    const scalar_t* hp = hc.data_ptr<scalar_t>();
    scalar_t* ep = ec.data_ptr<scalar_t>();
    bool* ap = ac.data_ptr<bool>();
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1));
    at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) update_row_dispatch(vp + b * n, hp + b * n, n, ep + b, ap + b, tol);
    });
  });
  if (!vc.is_same(v)) v.copy_(vc);
  if (!ec.is_same(eig)) eig.copy_(ec);
  if (!ac.is_same(active)) active.copy_(ac);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CPU, m) { m.impl("power_iteration_update_", &power_iteration_update_cpu); }

}  // namespace pyadvt
