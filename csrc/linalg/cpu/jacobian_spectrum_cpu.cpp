// CPU implementation of jacobian_spectrum: per sample (parallel over the batch) one pass over J
// for the float64 Gram matrix (a second, scaled pass only when float64 entries leave
// [1e-145, 1e145]; pyadvt/jacobian_spectrum.h), its two largest eigenvalues and top eigenvector by
// tridiagonal QL (pyadvt/sym_tridiag.h), one pass for v1 = J^T u1 / sigma1.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "linalg/linalg.h"
#include "pyadvt/target_clones.h"
#include "pyadvt/jacobian_spectrum.h"
#include "pyadvt/sym_tridiag.h"

namespace pyadvt {
namespace {

// Scratch of one worker thread (w: the float64 product J^T u1 of one sample, for the sign rule).
struct Workspace {
  Workspace(int m, int64_t n) : G(m * m), u(m), work(eig::tridiagonal_eig_work(m)), w(n) {}
  std::vector<double> G, u, work, w;
};

// Everything for one sample Jb [m, n] (row stride ld); outputs as doubles plus v1 written.
template <typename T>
inline spectrum::TopSpectrum sample_spectrum(const T* Jb, int m, int64_t n, int64_t ld, double deg_tol, T* v1,
                                             Workspace& ws) {
  bool finite = true;
  const int shift = spectrum::scaled_gram<T>(Jb, m, n, ld, ws.G.data(), &finite);
  double trace = 0.0;
  for (int i = 0; i < m; ++i) trace += ws.G[i * m + i];
  double e1 = 0.0, e2 = 0.0;
  if (finite) {
    eig::tridiagonal_top2<double>(ws.G.data(), m, m, &e1, &e2, ws.u.data(), ws.work.data());
    if (m < 2) e2 = 0.0;
  }
  const spectrum::TopSpectrum top = spectrum::top_spectrum(e1, e2, trace, finite, m, deg_tol, shift);
  spectrum::right_vector<T>(Jb, m, n, ld, ws.u.data(), top.inv_sigma1, shift, v1, ws.w.data());
  return top;
}

PYADVT_TARGET_CLONES spectrum::TopSpectrum sample_spectrum_float(const float* Jb, int m, int64_t n, int64_t ld,
                                                                 double deg_tol, float* v1, Workspace& ws) {
  return sample_spectrum<float>(Jb, m, n, ld, deg_tol, v1, ws);
}

PYADVT_TARGET_CLONES spectrum::TopSpectrum sample_spectrum_double(const double* Jb, int m, int64_t n, int64_t ld,
                                                                  double deg_tol, double* v1, Workspace& ws) {
  return sample_spectrum<double>(Jb, m, n, ld, deg_tol, v1, ws);
}

inline spectrum::TopSpectrum sample_spectrum_dispatch(const float* Jb, int m, int64_t n, int64_t ld, double deg_tol,
                                                      float* v1, Workspace& ws) {
  return sample_spectrum_float(Jb, m, n, ld, deg_tol, v1, ws);
}

inline spectrum::TopSpectrum sample_spectrum_dispatch(const double* Jb, int m, int64_t n, int64_t ld, double deg_tol,
                                                      double* v1, Workspace& ws) {
  return sample_spectrum_double(Jb, m, n, ld, deg_tol, v1, ws);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> jacobian_spectrum_cpu(const at::Tensor& J) {
  at::Tensor sigma1, sigma2, lam, v1, flags;
  std::tie(sigma1, sigma2, lam, v1, flags) = new_jacobian_spectrum_outputs(J);
  const int64_t B = J.size(0), n = J.size(2);
  const int m = static_cast<int>(J.size(1));
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
      Workspace ws(m, n);
      for (int64_t b = begin; b < end; ++b) {
        const spectrum::TopSpectrum top = sample_spectrum_dispatch(jp + b * sb, m, n, ld, deg_tol, vp + b * n, ws);
        s1[b] = static_cast<scalar_t>(top.sigma1);
        s2[b] = static_cast<scalar_t>(top.sigma2);
        lp[b] = static_cast<scalar_t>(top.lam);
        fp[b] = top.flags;
      }
    });
  });
  return {sigma1, sigma2, lam, v1, flags};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CPU, m) { m.impl("jacobian_spectrum", &jacobian_spectrum_cpu); }

}  // namespace pyadvt
