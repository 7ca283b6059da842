// Second pass of the deterministic per-sample reductions of the CUDA update kernels (pgd_step_,
// the attack-update family): sums[b] = sum_j partial[b * parts + j], one warp per sample, in a fixed
// order, so results are bitwise reproducible (no atomics). Internal linkage: each .cu file that
// includes it gets its own copy of the kernel.
#pragma once

#include <cstdint>

namespace pyadvt {
namespace {

__global__ void finish_sums_kernel(const double* __restrict__ partial, int64_t B, int64_t parts,
                                   double* __restrict__ sums) {
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_block = blockDim.x >> 5;
  for (int64_t b = blockIdx.x * warps_per_block + (threadIdx.x >> 5); b < B;
       b += (int64_t)gridDim.x * warps_per_block) {
    double v = 0.0;
    for (int64_t j = lane; j < parts; j += 32) v += partial[b * parts + j];
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffff, v, offset);
    if (lane == 0) sums[b] = v;
  }
}

}  // namespace
}  // namespace pyadvt
