// Framework-free arithmetic of power_iteration_update_ (docs/theory.md §3(a) and 8).
//
// For an active row: rayleigh = <v, hv>; v <- hv / ||hv|| (unchanged when hv == 0);
// converged when |rayleigh - eig| <= tol |rayleigh| (a NaN eig, "no previous value", never
// converges); eig <- rayleigh; active <- !converged. Sums in double.
//
// Scaling: when ||hv||^2 leaves [kSafeMin^2, kSafeMax^2] (float64 rows above ~1e145 or below
// ~1e-145, where the squares overflow or underflow), the norm is taken of 2^s hv with
// s = scale_shift(max |hv|) (pyadvt/scaling.h) and v = 2^s hv / ||2^s hv||, exact power-of-two
// scaling, so every finite nonzero hv gives a unit v.
#pragma once

#include <cmath>
#include <cstdint>

#include "pyadvt/common.h"
#include "pyadvt/scaling.h"

namespace pyadvt {
namespace power {

PYADVT_HD bool is_converged(double rayleigh, double previous, double tol) {
  return std::fabs(rayleigh - previous) <= tol * std::fabs(rayleigh);
}

PYADVT_HD double inverse_norm(double sum_sq) { return sum_sq > 0.0 ? 1.0 / std::sqrt(sum_sq) : 0.0; }

// New value of one element of v given the row's inverse norm of hv (0: keep v).
template <typename T>
PYADVT_HD T normalized(T v, T hv, double inv_norm) {
  return inv_norm > 0.0 ? static_cast<T>(static_cast<double>(hv) * inv_norm) : v;
}

// <v, hv> and ||hv||^2 of one row; kLanes independent accumulators (lane l sums the elements
// = l mod kLanes) so the loop vectorises without reassociating a reduction.
constexpr int kLanes = 8;

template <typename T>
void row_sums(const T* v, const T* hv, int64_t n, double* dot, double* hv_sq) {
  double d[kLanes] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  double q[kLanes] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  const int64_t vec_end = (n / kLanes) * kLanes;
  for (int64_t i = 0; i < vec_end; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) d[l] += static_cast<double>(v[i + l]) * static_cast<double>(hv[i + l]);
    for (int l = 0; l < kLanes; ++l) q[l] += static_cast<double>(hv[i + l]) * static_cast<double>(hv[i + l]);
  }
  for (int64_t i = vec_end; i < n; ++i) {
    const double h = static_cast<double>(hv[i]);
    d[0] += static_cast<double>(v[i]) * h;
    q[0] += h * h;
  }
  *dot = ((d[0] + d[1]) + (d[2] + d[3])) + ((d[4] + d[5]) + (d[6] + d[7]));
  *hv_sq = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
}

// Whether ||hv||^2 = hv_sq needs the scaled recomputation: outside the safe range, including 0
// (the squares of a nonzero hv may all underflow) and Inf (they may overflow); not NaN (a NaN
// entry: v is kept). The rescaled path finds max |hv| and keeps v when it is 0 or not finite.
PYADVT_HD bool needs_rescale(double hv_sq) {
  return hv_sq == hv_sq &&
         !(hv_sq >= scaling::kSafeMin * scaling::kSafeMin && hv_sq <= scaling::kSafeMax * scaling::kSafeMax);
}

// Element of v = 2^shift hv * inv_norm (inv_norm = 1 / ||2^shift hv||; shift == 0: unscaled).
template <typename T>
PYADVT_HD T normalized_scaled(T hv, int shift, double inv_norm) {
  return static_cast<T>(scaling::pow2_mul(static_cast<double>(hv), shift) * inv_norm);
}

// The whole update of one row (no-op when inactive).
template <typename T>
void update_row(T* v, const T* hv, int64_t n, T* eig, bool* active, double tol) {
  if (!*active) return;
  double dot, hv_sq;
  row_sums(v, hv, n, &dot, &hv_sq);
  if (needs_rescale(hv_sq)) {
    const double mx = scaling::max_abs_strided(hv, n, 1);
    const int shift = scaling::scale_shift(mx);
    if (mx > 0.0 && mx <= 1.7976931348623157e308) {
      const scaling::Pow2 f = scaling::pow2_factors(shift);
      const double sq = simd_sum(n, [hv, f](int64_t i) {
        const double h = (static_cast<double>(hv[i]) * f.f1) * f.f2;
        return h * h;
      });
      const double inv = inverse_norm(sq);
      for (int64_t i = 0; i < n; ++i) v[i] = normalized_scaled(hv[i], shift, inv);
    }
  } else {
    const double inv = inverse_norm(hv_sq);
    if (inv > 0.0)  // branch-free loop body so it vectorises; hv == 0 keeps v
      for (int64_t i = 0; i < n; ++i) v[i] = static_cast<T>(static_cast<double>(hv[i]) * inv);
  }
  const bool done = is_converged(dot, static_cast<double>(*eig), tol);
  *eig = static_cast<T>(dot);
  *active = !done;
}

}  // namespace power
}  // namespace pyadvt
