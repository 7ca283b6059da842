// Framework-free arithmetic of the fused PGD step (docs/theory.md §8, pgd_step_).
//
// One sample is a contiguous run of n elements. For every sample b:
//   momentum (optional):  m <- mu * m + g / mean(|g|)          (MI-FGSM; zero grad -> zero term)
//   direction d = m if momentum else g
//   L-inf:  x' = x + alpha * sign(d)
//   L2:     x' = x + alpha * d / ||d||                       (||d|| == 0 -> no step)
//   delta = x' - x0 projected onto the eps-ball (clamp for L-inf, rescale for L2)
//   x <- clamp(x0 + delta, lo, hi)
// The same element formulas are used by the CPU driver below, the CUDA kernels and the
// native tests; the torch-facing code only validates and dispatches.
#pragma once

#include <cmath>
#include <cstdint>

#include "pyadvt/common.h"

namespace pyadvt {
namespace pgd {

enum class Norm : int { Linf = 0, L2 = 1 };

// L-inf update of one element, with the projection written the way torchattacks does it
// (clamp the difference, then add back) so results agree bit for bit.
template <typename A>
PYADVT_HD A linf_element(A x, A d, A x0, A eps, A alpha, A lo, A hi) {
  A stepped = x + alpha * sign_of(d);
  A delta = clamp_to(stepped - x0, -eps, eps);
  return clamp_to(x0 + delta, lo, hi);
}

// Momentum accumulation of one element: m <- mu * m + g * inv_mean_abs.
template <typename A>
PYADVT_HD A momentum_element(A m, A g, A mu, A inv_mean_abs) {
  return mu * m + g * inv_mean_abs;
}

// 1 / mean(|g|) with the zero-gradient convention (returns 0 so the term vanishes).
template <typename A>
PYADVT_HD A safe_inverse_mean(double sum_abs, int64_t n) {
  return sum_abs > 0.0 ? static_cast<A>(static_cast<double>(n) / sum_abs) : A(0);
}

// 1 / ||d|| with the zero-direction convention.
template <typename A>
PYADVT_HD A safe_inverse_norm(double sum_sq) {
  return sum_sq > 0.0 ? static_cast<A>(1.0 / std::sqrt(sum_sq)) : A(0);
}

// Scale factor that projects a delta with squared norm sum_sq onto the L2 ball of radius eps.
template <typename A>
PYADVT_HD A l2_projection_factor(double sum_sq, A eps) {
  double nrm = std::sqrt(sum_sq);
  return (nrm > static_cast<double>(eps)) ? static_cast<A>(static_cast<double>(eps) / nrm) : A(1);
}

// ---------------------------------------------------------------------------------------------
// CPU drivers on raw pointers (T is the storage type, A its accumulation type).

template <typename T, typename A = typename acc_type<T>::type>
double sum_abs(const T* g, int64_t n) {
  return simd_sum(n, [g](int64_t i) { return std::fabs(static_cast<double>(g[i])); });
}

// L-inf step without momentum on elements [begin, end) of a [B, n] batch; eps/alpha are read
// with a stride (0 for a scalar, 1 for per-sample values).
template <typename T, typename A = typename acc_type<T>::type>
void linf_range(T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ x0, int64_t n, const A* eps, int64_t eps_stride,
                const A* alpha, int64_t alpha_stride, A lo, A hi, int64_t begin, int64_t end) {
  int64_t i = begin;
  while (i < end) {
    const int64_t b = i / n;
    const int64_t stop = (b + 1) * n < end ? (b + 1) * n : end;
    const A e = eps[b * eps_stride];
    const A a = alpha[b * alpha_stride];
    for (; i < stop; ++i) {
      x[i] = static_cast<T>(linf_element<A>(static_cast<A>(x[i]), static_cast<A>(g[i]),
                                            static_cast<A>(x0[i]), e, a, lo, hi));
    }
  }
}

// Full update of one sample (any norm, optional momentum buffer m, which may be nullptr).
template <typename T, typename A = typename acc_type<T>::type>
void step_sample(T* x, const T* g, const T* x0, T* m, int64_t n, A eps, A alpha, Norm norm, A lo,
                 A hi, A mu) {
  const T* d = g;
  if (m != nullptr) {
    const A inv = safe_inverse_mean<A>(sum_abs<T, A>(g, n), n);
    for (int64_t i = 0; i < n; ++i)
      m[i] = static_cast<T>(momentum_element<A>(static_cast<A>(m[i]), static_cast<A>(g[i]), mu, inv));
    d = m;
  }
  if (norm == Norm::Linf) {
    for (int64_t i = 0; i < n; ++i)
      x[i] = static_cast<T>(linf_element<A>(static_cast<A>(x[i]), static_cast<A>(d[i]),
                                            static_cast<A>(x0[i]), eps, alpha, lo, hi));
    return;
  }
  const double dsq = simd_sum(n, [d](int64_t i) { return static_cast<double>(d[i]) * static_cast<double>(d[i]); });
  const A scale = alpha * safe_inverse_norm<A>(dsq);
  const double delta_sq = simd_sum(n, [=](int64_t i) {
    const A delta = (static_cast<A>(x[i]) + scale * static_cast<A>(d[i])) - static_cast<A>(x0[i]);
    return static_cast<double>(delta) * static_cast<double>(delta);
  });
  const A factor = l2_projection_factor<A>(delta_sq, eps);
  for (int64_t i = 0; i < n; ++i) {
    const A delta = (static_cast<A>(x[i]) + scale * static_cast<A>(d[i])) - static_cast<A>(x0[i]);
    x[i] = static_cast<T>(clamp_to<A>(static_cast<A>(x0[i]) + delta * factor, lo, hi));
  }
}

}  // namespace pgd
}  // namespace pyadvt
