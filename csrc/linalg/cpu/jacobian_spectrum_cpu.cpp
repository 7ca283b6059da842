// CPU implementation of jacobian_spectrum: per sample (parallel over the batch) one pass over J
// for the float64 Gram matrix, Jacobi on it, one pass for v1 = J^T u1 / sigma1.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "linalg/linalg.h"
#include "pyadvt/jacobian_spectrum.h"
#include "pyadvt/sym_eig.h"

namespace pyadvt {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> jacobian_spectrum_cpu(const at::Tensor& J) {
  validate_jacobian_spectrum(J);
  const int64_t B = J.size(0), n = J.size(2);
  const int m = static_cast<int>(J.size(1));
  at::Tensor sigma1 = at::empty({B}, J.options());
  at::Tensor sigma2 = at::empty({B}, J.options());
  at::Tensor lam = at::empty({B}, J.options());
  at::Tensor v1 = at::empty({B, n}, J.options());
  at::Tensor flags = at::empty({B}, J.options().dtype(at::kInt));
  if (B == 0) return {sigma1, sigma2, lam, v1, flags};
  // Rows must be contiguous; the row stride may be anything.
  const at::Tensor Jc = (J.stride(2) == 1 && J.stride(1) >= n) ? J : J.contiguous();
  const int64_t sb = Jc.stride(0), ld = Jc.stride(1);
  AT_DISPATCH_FLOATING_TYPES(J.scalar_type(), "jacobian_spectrum_cpu", [&] {
    const scalar_t* jp = Jc.data_ptr<scalar_t>();
    scalar_t* s1 = sigma1.data_ptr<scalar_t>();
    scalar_t* s2 = sigma2.data_ptr<scalar_t>();
    scalar_t* lp = lam.data_ptr<scalar_t>();
    scalar_t* vp = v1.data_ptr<scalar_t>();
    int32_t* fp = flags.data_ptr<int32_t>();
    const double deg_tol = spectrum::degenerate_rtol<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      std::vector<double> G(m * m), evals(m), evecs(m * m), u(m), work(2 * m * m), buf(spectrum::kChunk);
      std::vector<int> order(m);
      std::vector<eig::Rotation> rot(eig::schedule_size(m) / 2);
      for (int64_t b = begin; b < end; ++b) {
        const scalar_t* Jb = jp + b * sb;
        spectrum::gram<scalar_t>(Jb, m, n, ld, G.data());
        double trace = 0.0;
        bool finite = true;
        for (int i = 0; i < m; ++i) {
          trace += G[i * m + i];
          finite = finite && std::isfinite(G[i * m + i]);
        }
        double e1 = 0.0, e2 = 0.0;
        if (finite) {
          eig::sym_eig<double, double>(G.data(), m, m, evals.data(), evecs.data(), work.data(), order.data(),
                                       rot.data());
          e1 = evals[m - 1];
          e2 = m >= 2 ? evals[m - 2] : 0.0;
          for (int i = 0; i < m; ++i) u[i] = evecs[i * m + (m - 1)];
        }
        const spectrum::TopSpectrum top = spectrum::top_spectrum(e1, e2, trace, finite, m, deg_tol);
        s1[b] = static_cast<scalar_t>(top.sigma1);
        s2[b] = static_cast<scalar_t>(top.sigma2);
        lp[b] = static_cast<scalar_t>(top.lam);
        fp[b] = top.flags;
        spectrum::right_vector<scalar_t>(Jb, m, n, ld, u.data(), top.inv_sigma1, vp + b * n, buf.data());
      }
    });
  });
  return {sigma1, sigma2, lam, v1, flags};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CPU, m) { m.impl("jacobian_spectrum", &jacobian_spectrum_cpu); }

}  // namespace pyadvt
