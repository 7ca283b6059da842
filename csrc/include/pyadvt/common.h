// Shared macros for the framework-free kernel code (usable from C++, CUDA and native tests).
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define PYADVT_HD __host__ __device__ __forceinline__
#else
#define PYADVT_HD inline
#endif

namespace pyadvt {

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
