// Framework-free arithmetic of jacobian_spectrum (docs/theory.md section 8): top singular values,
// their ratio and the top right singular vector of short-and-wide Jacobians J [m, n] via the
// float64 Gram matrix G = J J^T, its eigen-decomposition and v1 = J^T u1 / sigma1.
//
// Scaling: G is formed from 2^s J, s = scale_shift(max |J|) (pyadvt/scaling.h), whenever the
// unscaled squares could overflow or underflow (max |J| outside [1e-145, 1e145], which only float64
// inputs reach); sigma_i are scaled back by 2^-s, lambda and v1 are scale-free. Power-of-two
// scaling is exact, so scaled and unscaled routes agree wherever both are defined.
//
// Flags and thresholds (mirrored by pyadvt/ops/reference/linalg.py):
//   kFlagNonFinite (8)     NaN/Inf in J: every output NaN, only this flag.
//   kFlagZero (1)          J == 0: sigma1 = sigma2 = lam = 0, v1 = 0 (with kFlagRankLt2).
//   kFlagRankLt2 (4)       e2 <= 64 m eps_f64 e1 (the Gram route's resolution) or m == 1: sigma2 = 0.
//   kFlagDegenerateTop (2) rank >= 2 and e1 - e2 <= sqrt(eps_T) e1: v1 spans a near-degenerate
//                          top subspace (still a unit vector, deterministic).
// v1 follows the shared sign rule (largest-magnitude component positive, scaling.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "pyadvt/common.h"
#include "pyadvt/scaling.h"

namespace pyadvt {
namespace spectrum {

constexpr int32_t kFlagZero = 1;
constexpr int32_t kFlagDegenerateTop = 2;
constexpr int32_t kFlagRankLt2 = 4;
constexpr int32_t kFlagNonFinite = 8;

// sqrt(machine epsilon) of the input type: the degenerate-top threshold.
template <typename T>
inline double degenerate_rtol() {
  return std::sqrt(static_cast<double>(std::numeric_limits<T>::epsilon()));
}

PYADVT_HD double rank_rtol(int m) { return 64.0 * m * 2.220446049250313e-16; }

struct TopSpectrum {
  double sigma1, sigma2, lam;
  double inv_sigma1;  // scale of (2^s J)^T u1 giving v1 (0 for a zero Jacobian, NaN when non-finite)
  int32_t flags;
};

// From the two largest eigenvalues e1 >= e2 (e2 = 0 when m == 1) and the trace of the Gram matrix
// of 2^shift J, and whether J was finite. sigma1/sigma2 are returned unscaled (times 2^-shift);
// inv_sigma1 refers to the scaled J.
PYADVT_HD TopSpectrum top_spectrum(double e1, double e2, double trace, bool finite, int m, double degenerate_tol,
                                   int shift = 0) {
  TopSpectrum out{0.0, 0.0, 0.0, 0.0, 0};
  if (!finite) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    out = TopSpectrum{nan, nan, nan, nan, kFlagNonFinite};
    return out;
  }
  if (!(trace > 0.0)) {
    out.flags = kFlagZero | kFlagRankLt2;
    return out;
  }
  const double a = e1 > 0.0 ? e1 : 0.0;
  const double b = (m >= 2 && e2 > 0.0) ? e2 : 0.0;
  const double s1 = std::sqrt(a);
  out.sigma1 = scaling::pow2_mul(s1, -shift);
  out.inv_sigma1 = s1 > 0.0 ? 1.0 / s1 : 0.0;
  if (b <= rank_rtol(m) * a) {
    out.flags = kFlagRankLt2;
  } else {
    const double s2 = std::sqrt(b);
    out.sigma2 = scaling::pow2_mul(s2, -shift);
    out.lam = s2 * out.inv_sigma1;
    if (a - b <= degenerate_tol * a) out.flags = kFlagDegenerateTop;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CPU helpers on raw pointers.

constexpr int64_t kChunk = 256;  // columns per block: m rows of a chunk stay in L1

// G (m x m, row-major, full) = (2^shift J)(2^shift J)^T accumulated in double; J rows have stride
// ld. One pass over J: every column chunk updates all m (m + 1) / 2 pairs. kLanes independent
// accumulators per pair (lane l sums the columns = l mod kLanes) let the compiler vectorise the
// float -> double multiply-adds without reassociating a reduction (measured ~4x the scalar loop
// with AVX2).
constexpr int kLanes = 8;

template <typename T, typename Load>
void gram_with(const T* J, int m, int64_t n, int64_t ld, double* G, Load load) {
  for (int i = 0; i < m * m; ++i) G[i] = 0.0;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t c1 = c0 + kChunk < n ? c0 + kChunk : n;
    const int64_t vec_end = c0 + ((c1 - c0) / kLanes) * kLanes;
    for (int i = 0; i < m; ++i) {
      const T* a = J + i * ld;
      for (int j = 0; j <= i; ++j) {
        const T* b = J + j * ld;
        double acc[kLanes] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        for (int64_t c = c0; c < vec_end; c += kLanes)
          for (int l = 0; l < kLanes; ++l) acc[l] += load(a[c + l]) * load(b[c + l]);
        for (int64_t c = vec_end; c < c1; ++c) acc[0] += load(a[c]) * load(b[c]);
        G[i * m + j] += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      }
    }
  }
  for (int i = 0; i < m; ++i)
    for (int j = i + 1; j < m; ++j) G[i * m + j] = G[j * m + i];
}

template <typename T>
void gram(const T* J, int m, int64_t n, int64_t ld, double* G, int shift = 0) {
  if (shift == 0) {
    gram_with(J, m, n, ld, G, [](T x) { return static_cast<double>(x); });
  } else {
    const scaling::Pow2 f = scaling::pow2_factors(shift);
    gram_with(J, m, n, ld, G, [f](T x) { return (static_cast<double>(x) * f.f1) * f.f2; });
  }
}

// max |J| over the m rows (NaN if any entry is NaN).
template <typename T>
double max_abs(const T* J, int m, int64_t n, int64_t ld) {
  double mx = 0.0;
  bool nan = false;
  for (int i = 0; i < m; ++i) {
    const T* row = J + i * ld;
    for (int64_t c = 0; c < n; ++c) {
      const double a = std::fabs(static_cast<double>(row[c]));
      nan |= !(a == a);
      mx = a > mx ? a : mx;
    }
  }
  return nan ? std::numeric_limits<double>::quiet_NaN() : mx;
}

// The Gram matrix with the scaling rule of this file: the unscaled G when its diagonal is finite
// and within [kSafeMin^2, kSafeMax^2] (one pass over J, the common case), else G of 2^s J with
// s = scale_shift(max |J|). Returns s; *finite is false when J has a NaN or Inf entry.
template <typename T>
int scaled_gram(const T* J, int m, int64_t n, int64_t ld, double* G, bool* finite) {
  gram<T>(J, m, n, ld, G, 0);
  bool ok = true;
  for (int i = 0; i < m; ++i) {
    const double g = G[i * m + i];
    ok = ok && g >= scaling::kSafeMin * scaling::kSafeMin && g <= scaling::kSafeMax * scaling::kSafeMax;
  }
  *finite = true;
  if (ok) return 0;
  const double mx = max_abs<T>(J, m, n, ld);
  if (!(mx <= std::numeric_limits<double>::max())) {
    *finite = false;
    return 0;
  }
  if (mx == 0.0) return 0;  // G is already exactly zero
  const int shift = scaling::scale_shift(mx);
  gram<T>(J, m, n, ld, G, shift);
  return shift;
}

// v1 = sign * scale * (2^shift J)^T u (u: m doubles), written as T, where sign is the shared sign
// rule on the float64 product; scale = 0 writes zeros, a NaN scale writes NaNs. w: n doubles.
template <typename T>
void right_vector(const T* J, int m, int64_t n, int64_t ld, const double* u, double scale, int shift, T* v1,
                  double* w) {
  if (!(scale == scale) || scale == 0.0) {
    const T fill = scale == 0.0 ? T(0) : std::numeric_limits<T>::quiet_NaN();
    for (int64_t c = 0; c < n; ++c) v1[c] = fill;
    return;
  }
  const scaling::Pow2 f = scaling::pow2_factors(shift);
  double mx = 0.0;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {  // a chunk of w stays in L1 over the m rows
    const int64_t len = c0 + kChunk < n ? kChunk : n - c0;
    double* buf = w + c0;
    for (int64_t c = 0; c < len; ++c) buf[c] = 0.0;
    for (int i = 0; i < m; ++i) {
      const T* row = J + i * ld + c0;
      const double ui = u[i];
      if (shift == 0) {
        for (int64_t c = 0; c < len; ++c) buf[c] += ui * static_cast<double>(row[c]);
      } else {  // scale J's entries (2^shift itself may not be representable)
        for (int64_t c = 0; c < len; ++c) buf[c] += ui * ((static_cast<double>(row[c]) * f.f1) * f.f2);
      }
    }
    for (int64_t c = 0; c < len; ++c) mx = scaling::nan_max_abs(mx, buf[c]);
  }
  const double g = scaling::sign_of_largest(w, n, 1, mx) < 0.0 ? -scale : scale;
  for (int64_t c = 0; c < n; ++c) v1[c] = static_cast<T>(g * w[c]);
}

}  // namespace spectrum
}  // namespace pyadvt
