// Framework-free arithmetic of the transfer-suite updates (docs/theory.md §10.1, §10.4, §10.5).
//
// One sample is a contiguous run of n elements ([C, H, W] for patch_step_). For every sample b:
//   nesterov_point:          out = x + (alpha * mu) * m                           (NI look-ahead)
//   variance_momentum_step_: t = g + v;  m <- mu m + t / mean|t|;  v <- nb - g;
//                            x <- clip_{x0, eps}(x + alpha sign(m))               (VMI / VNI)
//   patch_step_:             s = (alpha beta) sign(g);  a += s;  C = sign(a) max(|a| - eps, 0);
//                            P = gamma sign(W * C) (per channel, zero padding);  a += P;
//                            x <- clip(min(max(x + s + P, x0 - eps), x0 + eps), 0, 1)   (PI)
// The element formulas are shared by the CPU drivers below and the CUDA kernels; the pure-PyTorch
// reference is pyadvt/ops/attack_update.py.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "pyadvt/common.h"
#include "pyadvt/pgd_step.h"

namespace pyadvt {
namespace au {

template <typename A>
PYADVT_HD A pi_clip(A v, A x0, A eps) {
  A lo = x0 - eps, hi = x0 + eps;
  A w = v > lo ? v : lo;  // torch.maximum(v, x0 - eps)
  w = w < hi ? w : hi;    // torch.minimum(., x0 + eps)
  return clamp_to<A>(w, A(0), A(1));
}

template <typename A>
PYADVT_HD A cut_noise(A a, A eps) {
  A over = std::fabs(a) - eps;
  return (over > A(0) ? over : A(0)) * sign_of(a);
}

// ------------------------------------------------------------------------- CPU drivers

template <typename T, typename A = typename acc_type<T>::type>
void nesterov_sample(T* out, const T* x, const T* m, int64_t n, A coef) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(static_cast<A>(x[i]) + coef * static_cast<A>(m[i]));
}

template <typename T, typename A = typename acc_type<T>::type>
void variance_sample(T* __restrict__ x, const T* __restrict__ g, T* __restrict__ v, const T* __restrict__ nb,
                     const T* __restrict__ x0, T* __restrict__ m, int64_t n, A eps, A alpha, A mu) {
  const double s = simd_sum(n, [=](int64_t i) {
    return std::fabs(static_cast<double>(static_cast<T>(static_cast<A>(g[i]) + static_cast<A>(v[i]))));
  });
  const A inv = pgd::safe_inverse_mean<A>(s, n);
  for (int64_t i = 0; i < n; ++i) {
    const A gi = static_cast<A>(g[i]);
    const A t = static_cast<A>(static_cast<T>(gi + static_cast<A>(v[i])));
    const T mi = static_cast<T>(pgd::momentum_element<A>(static_cast<A>(m[i]), t, mu, inv));
    m[i] = mi;
    v[i] = static_cast<T>(static_cast<A>(nb[i]) - gi);
    x[i] = static_cast<T>(pgd::linf_element<A>(static_cast<A>(x[i]), static_cast<A>(mi), static_cast<A>(x0[i]), eps,
                                               alpha, A(0), A(1)));
  }
}

// Scratch floats per sample of patch_sample: the zero-padded cut noise of one channel plus P.
inline int64_t patch_scratch_size(int64_t C, int64_t H, int64_t W, int64_t k) {
  return (H + k - 1) * (W + k - 1) + C * H * W;
}

// One sample [C, H, W] of patch_step_; w is the k x k kernel (row-major), scratch has
// patch_scratch_size(C, H, W, k) entries.
template <typename T, typename A = typename acc_type<T>::type>
void patch_sample(T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ x0, T* __restrict__ a, int64_t C,
                  int64_t H, int64_t W, const A* __restrict__ w, int64_t k, A eps, A step, A gamma,
                  A* __restrict__ scratch) {
  const int64_t n = C * H * W, r = k / 2, Wp = W + k - 1;
  A* pad = scratch;                               // [(H + k - 1), (W + k - 1)], zero border
  A* p = scratch + (H + k - 1) * Wp;              // [C, H, W] projection
  for (int64_t i = 0; i < (H + k - 1) * Wp; ++i) pad[i] = A(0);
  for (int64_t c = 0; c < C; ++c) {
    T* ac = a + c * H * W;
    const T* gc = g + c * H * W;
    for (int64_t i = 0; i < H; ++i) {
      A* row = pad + (i + r) * Wp + r;
      for (int64_t j = 0; j < W; ++j) {
        const T ai = static_cast<T>(static_cast<A>(ac[i * W + j]) + step * sign_of(static_cast<A>(gc[i * W + j])));
        ac[i * W + j] = ai;
        row[j] = cut_noise<A>(static_cast<A>(ai), eps);
      }
    }
    A* pc = p + c * H * W;
    for (int64_t i = 0; i < H; ++i) {
      A* out = pc + i * W;
      for (int64_t j = 0; j < W; ++j) out[j] = A(0);
      for (int64_t u = 0; u < k; ++u) {
        const A* src = pad + (i + u) * Wp;
        for (int64_t q = 0; q < k; ++q) {
          const A wq = w[u * k + q];
          const A* s = src + q;
          for (int64_t j = 0; j < W; ++j) out[j] += wq * s[j];
        }
      }
      for (int64_t j = 0; j < W; ++j) out[j] = gamma * sign_of(out[j]);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    a[i] = static_cast<T>(static_cast<A>(a[i]) + p[i]);
    const A stepped = (static_cast<A>(x[i]) + step * sign_of(static_cast<A>(g[i]))) + p[i];
    x[i] = static_cast<T>(pi_clip<A>(stepped, static_cast<A>(x0[i]), eps));
  }
}

}  // namespace au
}  // namespace pyadvt
