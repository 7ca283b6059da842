// Block-wide reductions shared by every CUDA kernel family (linalg, hessian, lanczos, pgd,
// attack_update). All sums run in double in a fixed order, so results are bitwise reproducible.
// blockDim.x must be a multiple of 32 and at most 1024; every function contains __syncthreads()
// and must be called from all threads of the block.
#pragma once

#include <cuda_runtime.h>

namespace pyadvt {
namespace cuda {

// Sum of two values over the whole block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the totals. Contains __syncthreads(): call it from all threads of the block.
__device__ __forceinline__ void block_sum2(double& a, double& b) {
  __shared__ double sa[32], sb[32];
  for (int off = 16; off > 0; off >>= 1) {
    a += __shfl_down_sync(0xffffffff, a, off);
    b += __shfl_down_sync(0xffffffff, b, off);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();  // protects sa/sb from a previous call
  if (lane == 0) {
    sa[warp] = a;
    sb[warp] = b;
  }
  __syncthreads();
  double ta = 0.0, tb = 0.0;
  for (int w = 0; w < warps; ++w) {  // same order in every thread: identical totals
    ta += sa[w];
    tb += sb[w];
  }
  a = ta;
  b = tb;
}

// NaN-propagating maximum of a double over the block; every thread gets it. Contains
// __syncthreads(): call it from all threads of the block.
__device__ __forceinline__ double block_max_nan(double v) {
  __shared__ double sm[32];
  for (int off = 16; off > 0; off >>= 1) {
    const double o = __shfl_down_sync(0xffffffff, v, off);
    v = (o != o || v != v) ? (o + v) : (o > v ? o : v);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sm[warp] = v;
  __syncthreads();
  double t = sm[0];
  for (int w = 1; w < warps; ++w) t = (sm[w] != sm[w] || t != t) ? (sm[w] + t) : (sm[w] > t ? sm[w] : t);
  return t;
}

// Minimum of an int64 over the block; every thread gets it.
__device__ __forceinline__ long long block_min(long long v) {
  __shared__ long long sm[32];
  for (int off = 16; off > 0; off >>= 1) {
    const long long o = __shfl_down_sync(0xffffffff, v, off);
    v = o < v ? o : v;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sm[warp] = v;
  __syncthreads();
  long long t = sm[0];
  for (int w = 1; w < warps; ++w) t = sm[w] < t ? sm[w] : t;
  return t;
}

// Block-wide sum of v written by thread 0 to *slot (the first pass of the deterministic per-sample
// reductions of pgd_step_ and the attack-update ops; pyadvt/finish_sums.cuh is the second).
__device__ __forceinline__ void block_sum_store(double v, double* slot) {
  __shared__ double shared[32];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffff, v, offset);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();  // the previous sample's reads of shared are done
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? shared[lane] : 0.0;
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffff, v, offset);
    if (lane == 0) *slot = v;
  }
}

}  // namespace cuda
}  // namespace pyadvt
