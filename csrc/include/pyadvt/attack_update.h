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
void variance_sample(T* x, const T* g, T* v, const T* nb, const T* x0, T* m, int64_t n, A eps, A alpha, A mu) {
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

// One sample [C, H, W] of patch_step_; w is the k x k kernel (row-major), p a scratch of C*H*W.
template <typename T, typename A = typename acc_type<T>::type>
void patch_sample(T* x, const T* g, const T* x0, T* a, int64_t C, int64_t H, int64_t W, const A* w, int64_t k,
                  A eps, A step, A gamma, A* p) {
  const int64_t n = C * H * W;
  for (int64_t i = 0; i < n; ++i) a[i] = static_cast<T>(static_cast<A>(a[i]) + step * sign_of(static_cast<A>(g[i])));
  const int64_t r = k / 2;
  for (int64_t c = 0; c < C; ++c) {
    const T* ac = a + c * H * W;
    for (int64_t i = 0; i < H; ++i) {
      for (int64_t j = 0; j < W; ++j) {
        A acc = A(0);
        for (int64_t u = 0; u < k; ++u) {
          const int64_t ii = i + u - r;
          if (ii < 0 || ii >= H) continue;
          for (int64_t q = 0; q < k; ++q) {
            const int64_t jj = j + q - r;
            if (jj < 0 || jj >= W) continue;
            acc += w[u * k + q] * cut_noise<A>(static_cast<A>(ac[ii * W + jj]), eps);
          }
        }
        p[c * H * W + i * W + j] = gamma * sign_of(acc);
      }
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
