// Framework-free power-of-two scaling and the sign rule shared by every eigen/singular-vector
// output (docs/theory.md section 8), used by the CPU kernels, the CUDA kernels and the native tests.
//
// Scaling. A solver that squares its entries (Gram matrices, Householder norms, Jacobi's off(A),
// ||hv||^2) overflows for float64 entries above ~1e154 and loses everything below ~1e-154. As
// LAPACK does, the input is scaled by its largest magnitude first: x * 2^s with s = scale_shift(max
// |x|) puts the largest entry in [0.5, 1). A power of two is exact, so the scaled problem has the
// same digits and results are scaled back by 2^-s. pow2_mul applies 2^s as two exact factors, so
// shifts beyond the double exponent range (subnormal inputs) stay representable.
//
// Sign rule. A unit vector is determined up to sign; each output vector is flipped so that its
// largest-magnitude component is positive, the first one (lowest index) when several lie within a
// relative kSignTieRtol of the largest. The tie window makes the rule insensitive to rounding (the
// CPU and CUDA solvers differ in the last bits; a rule keyed on the first nonzero component would
// key on +-1e-16 noise where one solver leaves an exact zero).
#pragma once

#include <cmath>
#include <cstdint>

#include "pyadvt/common.h"

namespace pyadvt {
namespace scaling {

// Relative window of the sign rule's tie-break: components with |x_i| >= (1 - kSignTieRtol) max|x|
// count as largest; the first of them decides.
constexpr double kSignTieRtol = 1e-8;

// Magnitudes in [kSafeMin, kSafeMax] can be squared and summed (up to 1e10 terms) in double
// without overflow or underflow to subnormals.
constexpr double kSafeMin = 1e-145;
constexpr double kSafeMax = 1e145;

// max(m, |v|) that propagates NaN (a NaN v or m gives NaN).
PYADVT_HD double nan_max_abs(double m, double v) {
  const double a = std::fabs(v);
  if (!(a == a) || !(m == m)) return a + m;  // NaN
  return a > m ? a : m;
}

// Exponent s with max_abs * 2^s in [0.5, 1); 0 for zero, NaN or Inf.
PYADVT_HD int scale_shift(double max_abs) {
  if (!(max_abs > 0.0) || !(max_abs <= 1.7976931348623157e308)) return 0;
  int e = 0;
  (void)std::frexp(max_abs, &e);  // max_abs = f * 2^e, f in [0.5, 1)
  return -e;
}

// Shift that is 0 inside the safe range and scale_shift outside it (the Gram and power-iteration
// kernels skip the scaling pass in the common case; results are identical either way).
PYADVT_HD int scale_shift_if_needed(double max_abs) {
  return (max_abs >= kSafeMin && max_abs <= kSafeMax) ? 0 : scale_shift(max_abs);
}

// x * 2^s, exact unless the result overflows or underflows (|s| up to ~2100).
PYADVT_HD double pow2_mul(double x, int s) {
  if (s == 0) return x;
  const int a = s / 2, b = s - a;
  return (x * std::ldexp(1.0, a)) * std::ldexp(1.0, b);
}

// The two exact factors of pow2_mul (f1 * f2 == 2^s), for loops that multiply many elements.
struct Pow2 {
  double f1, f2;
};
PYADVT_HD Pow2 pow2_factors(int s) {
  const int a = s / 2, b = s - a;
  return Pow2{std::ldexp(1.0, a), std::ldexp(1.0, b)};
}

// Sign rule on x[0], x[stride], ..., x[(n - 1) stride] with largest magnitude max_abs (> 0):
// +1 or -1. Returns +1 for an all-zero or non-finite vector.
template <typename T>
PYADVT_HD double sign_of_largest(const T* x, int64_t n, int64_t stride, double max_abs) {
  if (!(max_abs > 0.0) || !(max_abs <= 1.7976931348623157e308)) return 1.0;
  const double bar = (1.0 - kSignTieRtol) * max_abs;
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i * stride]);
    if (std::fabs(v) >= bar) return v < 0.0 ? -1.0 : 1.0;
  }
  return 1.0;
}

// Largest magnitude of x[0], x[stride], ... (NaN if any entry is NaN).
template <typename T>
PYADVT_HD double max_abs_strided(const T* x, int64_t n, int64_t stride) {
  double m = 0.0;
  for (int64_t i = 0; i < n; ++i) m = nan_max_abs(m, static_cast<double>(x[i * stride]));
  return m;
}

// Sign rule in one call (two passes over the vector).
template <typename T>
PYADVT_HD double vector_sign(const T* x, int64_t n, int64_t stride) {
  return sign_of_largest(x, n, stride, max_abs_strided(x, n, stride));
}

}  // namespace scaling
}  // namespace pyadvt
