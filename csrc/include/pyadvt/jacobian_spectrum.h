// Framework-free arithmetic of jacobian_spectrum (SPEC section 8): top singular values, their
// ratio and the top right singular vector of short-and-wide Jacobians J [m, n] via the float64
// Gram matrix G = J J^T, its eigen-decomposition (pyadvt/sym_eig.h) and v1 = J^T u1 / sigma1.
//
// Flags and thresholds (mirrored by pyadvt/ops/reference/linalg.py):
//   kFlagNonFinite (8)     diag(G) not finite (NaN/Inf in J): every output NaN, only this flag.
//   kFlagZero (1)          trace(G) == 0: sigma1 = sigma2 = lam = 0, v1 = 0 (with kFlagRankLt2).
//   kFlagRankLt2 (4)       e2 <= 64 m eps_f64 e1 (the Gram route's resolution) or m == 1: sigma2 = 0.
//   kFlagDegenerateTop (2) rank >= 2 and e1 - e2 <= sqrt(eps_T) e1: v1 spans a near-degenerate
//                          top subspace (still a unit vector, deterministic).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "pyadvt/common.h"

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
  double inv_sigma1;  // scale of J^T u1 giving v1 (0 for a zero Jacobian, NaN when non-finite)
  int32_t flags;
};

// From the two largest Gram eigenvalues e1 >= e2 (e2 = 0 when m == 1), the trace of G and
// whether diag(G) was finite.
PYADVT_HD TopSpectrum top_spectrum(double e1, double e2, double trace, bool finite, int m, double degenerate_tol) {
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
  out.sigma1 = std::sqrt(a);
  out.inv_sigma1 = out.sigma1 > 0.0 ? 1.0 / out.sigma1 : 0.0;
  if (b <= rank_rtol(m) * a) {
    out.flags = kFlagRankLt2;
  } else {
    out.sigma2 = std::sqrt(b);
    out.lam = out.sigma2 * out.inv_sigma1;
    if (a - b <= degenerate_tol * a) out.flags = kFlagDegenerateTop;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CPU helpers on raw pointers.

constexpr int64_t kChunk = 256;  // columns per block: m rows of a chunk stay in L1

// G (m x m, row-major, full) = J J^T accumulated in double; J rows have stride ld. One pass over
// J: every column chunk updates all m (m + 1) / 2 pairs. kLanes independent accumulators per pair
// (lane l sums the columns = l mod kLanes) let the compiler vectorise the float -> double
// multiply-adds without reassociating a reduction (measured ~4x the scalar loop with AVX2).
constexpr int kLanes = 8;

template <typename T>
void gram(const T* J, int m, int64_t n, int64_t ld, double* G) {
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
          for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(a[c + l]) * static_cast<double>(b[c + l]);
        for (int64_t c = vec_end; c < c1; ++c) acc[0] += static_cast<double>(a[c]) * static_cast<double>(b[c]);
        G[i * m + j] += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      }
    }
  }
  for (int i = 0; i < m; ++i)
    for (int j = i + 1; j < m; ++j) G[i * m + j] = G[j * m + i];
}

// v1 = sign * scale * J^T u (u: m doubles), written as T, where sign makes the first nonzero
// component positive; scale = 0 writes zeros, a NaN scale writes NaNs. buf: kChunk doubles.
template <typename T>
void right_vector(const T* J, int m, int64_t n, int64_t ld, const double* u, double scale, T* v1, double* buf) {
  if (!(scale == scale) || scale == 0.0) {
    const T fill = scale == 0.0 ? T(0) : std::numeric_limits<T>::quiet_NaN();
    for (int64_t c = 0; c < n; ++c) v1[c] = fill;
    return;
  }
  double sign = 0.0;  // decided by the first nonzero component
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t len = c0 + kChunk < n ? kChunk : n - c0;
    for (int64_t c = 0; c < len; ++c) buf[c] = 0.0;
    for (int i = 0; i < m; ++i) {
      const T* row = J + i * ld + c0;
      const double ui = u[i];
      for (int64_t c = 0; c < len; ++c) buf[c] += ui * static_cast<double>(row[c]);
    }
    if (sign == 0.0)
      for (int64_t c = 0; c < len && sign == 0.0; ++c)
        if (buf[c] != 0.0) sign = buf[c] < 0.0 ? -1.0 : 1.0;
    const double f = (sign < 0.0 ? -scale : scale);
    for (int64_t c = 0; c < len; ++c) v1[c0 + c] = static_cast<T>(f * buf[c]);
  }
}

}  // namespace spectrum
}  // namespace pyadvt
