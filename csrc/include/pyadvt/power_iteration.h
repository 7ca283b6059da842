// Framework-free arithmetic of power_iteration_update_ (SPEC section 3(a) and 8).
//
// For an active row: rayleigh = <v, hv>; v <- hv / ||hv|| (unchanged when hv == 0);
// converged when |rayleigh - eig| <= tol |rayleigh| (a NaN eig, "no previous value", never
// converges); eig <- rayleigh; active <- !converged. Sums in double.
#pragma once

#include <cmath>
#include <cstdint>

#include "pyadvt/common.h"

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

// The whole update of one row (no-op when inactive).
template <typename T>
void update_row(T* v, const T* hv, int64_t n, T* eig, bool* active, double tol) {
  if (!*active) return;
  double dot, hv_sq;
  row_sums(v, hv, n, &dot, &hv_sq);
  const double inv = inverse_norm(hv_sq);
  if (inv > 0.0)  // branch-free loop body so it vectorises; hv == 0 keeps v
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<T>(static_cast<double>(hv[i]) * inv);
  const bool done = is_converged(dot, static_cast<double>(*eig), tol);
  *eig = static_cast<T>(dot);
  *active = !done;
}

}  // namespace power
}  // namespace pyadvt
