// Shared macros for the framework-free kernel code (usable from C++, CUDA and native tests).
#pragma once

#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define PYADVT_HD __host__ __device__ __forceinline__
#else
#define PYADVT_HD inline
#endif

// Lets the compiler vectorise floating-point sum loops (reassociation is otherwise forbidden);
// active where OpenMP is (the extension builds with -fopenmp), a no-op elsewhere.
#if defined(_OPENMP) && !defined(__CUDACC__)
#define PYADVT_SIMD_SUM_S _Pragma("omp simd reduction(+ : s)")
#else
#define PYADVT_SIMD_SUM_S
#endif

namespace pyadvt {

// sum_{i < n} term(i) in double, vectorised where possible (summation order is unspecified).
template <typename F>
inline double simd_sum(int64_t n, F term) {
  double s = 0.0;
  PYADVT_SIMD_SUM_S
  for (int64_t i = 0; i < n; ++i) s += term(i);
  return s;
}

// Accumulation type: float for half/bfloat16/float, double for double.
template <typename T>
struct acc_type {
  using type = float;
};
template <>
struct acc_type<double> {
  using type = double;
};

template <typename T>
PYADVT_HD T sign_of(T v) {
  // Same convention as torch.sign: sign(0) == 0, NaN propagates as 0 > NaN == false.
  return static_cast<T>((T(0) < v) - (v < T(0)));
}

template <typename T>
PYADVT_HD T clamp_to(T v, T lo, T hi) {
  // min/max order matches torch.clamp(v, lo, hi) = min(max(v, lo), hi).
  T a = v < lo ? lo : v;
  return a > hi ? hi : a;
}

}  // namespace pyadvt
