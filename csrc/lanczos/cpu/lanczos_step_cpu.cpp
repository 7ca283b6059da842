// CPU implementation of lanczos_step_: one sample per task (lanczos/lanczos_step.h).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "lanczos/lanczos.h"
#include "lanczos/lanczos_step.h"

namespace pyadvt {
namespace {

void lanczos_step_cpu(at::Tensor Q, const at::Tensor& w, at::Tensor alpha, at::Tensor beta, at::Tensor ritz,
                      at::Tensor y, at::Tensor status, at::Tensor active, int64_t j, int64_t npairs, double tol,
                      double invariant_rtol) {
  validate_lanczos_step(Q, w, alpha, beta, ritz, y, status, active, j, npairs);
  const int64_t B = Q.size(0), K = Q.size(1) - 1, dim = Q.size(2);
  if (B == 0) return;
  bool* act = active.data_ptr<bool>();
  int* st = status.data_ptr<int>();
  double* al = alpha.data_ptr<double>();
  double* be = beta.data_ptr<double>();
  double* rz = ritz.data_ptr<double>();
  double* yp = y.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(Q.scalar_type(), "lanczos_step_cpu", [&] {
    scalar_t* qp = Q.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      std::vector<double> work(lanczos::work_size(static_cast<int>(j + 1)) + K);
      for (int64_t b = begin; b < end; ++b) {
        if (!act[b]) continue;
        const int s = lanczos::step<scalar_t>(qp + b * (K + 1) * dim, wp + b * dim, dim, static_cast<int>(j),
                                              static_cast<int>(K), al + b * K, be + b * K, rz + b * 4, yp + b * K,
                                              static_cast<int>(npairs), tol, invariant_rtol, work.data());
        st[b] = s;
        if (s != lanczos::kContinue) act[b] = false;
      }
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CPU, m) { m.impl("lanczos_step_", &lanczos_step_cpu); }

}  // namespace pyadvt
