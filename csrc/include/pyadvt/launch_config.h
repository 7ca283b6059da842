// Launch configuration of every CUDA kernel, framework-free so the native tests check the same
// numbers the launchers use (csrc/native_tests/test_launch_config.cpp): shared-memory layout and
// size of the Jacobi kernel for each k, grid shapes for each batch size, the column chunk of the
// float64 Gram route. Nothing here includes CUDA headers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pyadvt/sym_eig.h"

namespace pyadvt {
namespace launch {

// Hardware limits the grids must respect (all compute capabilities >= 3.0).
constexpr int64_t kMaxGridX = 2147483647;  // gridDim.x
constexpr int64_t kMaxGridY = 65535;       // gridDim.y (and z)
// Blocks of the one-block-per-row kernels (rows are grid-strided beyond it).
constexpr int64_t kMaxRowBlocks = int64_t(1) << 20;

// ------------------------------------------------------------------------ small_sym_eig (Jacobi)

// Byte offsets into the kernel's dynamic shared memory (computed on host and device alike) (extern __shared__ double[]): A and V
// (k x k doubles each), the column signs (k doubles), the rotations of one round-robin step
// (k' / 2 Rotation, k' = k rounded up to even) and the sort order (k ints); bytes is the total.
struct SymEigSmem {
  size_t a, v, sgn, rot, order, bytes;
};

PYADVT_HD size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

PYADVT_HD SymEigSmem sym_eig_smem(int k) {
  SymEigSmem s{};
  const size_t kk = static_cast<size_t>(k) * static_cast<size_t>(k);
  const size_t half = static_cast<size_t>(eig::schedule_size(k) / 2);
  s.a = 0;
  s.v = s.a + kk * sizeof(double);
  s.sgn = s.v + kk * sizeof(double);
  s.rot = align_up(s.sgn + static_cast<size_t>(k) * sizeof(double), alignof(eig::Rotation));
  s.order = align_up(s.rot + half * sizeof(eig::Rotation), alignof(int));
  s.bytes = s.order + static_cast<size_t>(k) * sizeof(int);
  return s;
}

struct SymEigLaunch {
  int threads;           // a multiple of 32 in [32, 256]
  int64_t blocks;        // grid-stride over the B matrices
  size_t dynamic_smem;   // bytes passed at launch
  bool fits;             // dynamic + static shared memory within the device's opt-in limit
};

// static_smem: the kernel's static shared memory (cudaFuncAttributes::sharedSizeBytes; the block
// reductions' buffers); smem_optin: cudaDevAttrMaxSharedMemoryPerBlockOptin. The launcher sets
// cudaFuncAttributeMaxDynamicSharedMemorySize once to max_dynamic_smem(...), so every launch
// that fits is allowed whatever k is.
inline SymEigLaunch sym_eig_launch(int k, int64_t B, size_t static_smem, size_t smem_optin) {
  SymEigLaunch l{};
  const int half = eig::schedule_size(k) / 2;
  int threads = ((k * half + 31) / 32) * 32;
  l.threads = threads < 32 ? 32 : (threads > 256 ? 256 : threads);
  l.blocks = B < kMaxRowBlocks ? (B < 1 ? 1 : B) : kMaxRowBlocks;
  l.dynamic_smem = sym_eig_smem(k).bytes;
  l.fits = l.dynamic_smem + static_smem <= smem_optin;
  return l;
}

// Value for cudaFuncAttributeMaxDynamicSharedMemorySize: everything the device allows next to the
// static part.
inline size_t max_dynamic_smem(size_t static_smem, size_t smem_optin) {
  return smem_optin > static_smem ? smem_optin - static_smem : 0;
}

// -------------------------------------------------------------------------------- pgd_step_

constexpr int kPgdThreads = 256;
constexpr int64_t kPgdElementsPerBlock = kPgdThreads * 4;  // per-sample kernels: >= 4 per thread
constexpr int64_t kPgdMaxBlocksPerSample = 1024;
constexpr int64_t kPgdMaxElementwiseBlocks = 65535 * 8;

// Element-wise L-inf kernel: a 1-D grid-stride loop over the B * n elements.
inline int64_t pgd_elementwise_blocks(int64_t total) {
  int64_t blocks = (total + kPgdThreads - 1) / kPgdThreads;
  if (blocks < 1) blocks = 1;
  return blocks < kPgdMaxElementwiseBlocks ? blocks : kPgdMaxElementwiseBlocks;
}

// Per-sample kernels: blockIdx.x strides over a sample's n elements, blockIdx.y over the samples
// (b = blockIdx.y, blockIdx.y + gridDim.y, ...), so any B runs. Each (sample, x-block) pair
// writes one partial sum, reduced in a fixed order afterwards (deterministic results).
struct PerSampleGrid {
  int64_t blocks_x, blocks_y;
};

inline PerSampleGrid pgd_per_sample_grid(int64_t n, int64_t B) {
  int64_t bx = (n + kPgdElementsPerBlock - 1) / kPgdElementsPerBlock;
  if (bx < 1) bx = 1;
  if (bx > kPgdMaxBlocksPerSample) bx = kPgdMaxBlocksPerSample;
  int64_t by = B < kMaxGridY ? B : kMaxGridY;
  if (by < 1) by = 1;
  return PerSampleGrid{bx, by};
}

// Finishing reduction of the partial sums: one warp per sample, kPgdThreads / 32 samples per
// block, grid-strided.
inline int64_t pgd_finish_blocks(int64_t B) {
  const int64_t per_block = kPgdThreads / 32;
  int64_t blocks = (B + per_block - 1) / per_block;
  if (blocks < 1) blocks = 1;
  return blocks < kPgdMaxElementwiseBlocks ? blocks : kPgdMaxElementwiseBlocks;
}

// ------------------------------------------------------------------- rows, Gram chunks

// One block per row (power_iteration_update_, jacobian_spectrum's v1), grid-strided.
inline int64_t row_blocks(int64_t B) { return B < 1 ? 1 : (B < kMaxRowBlocks ? B : kMaxRowBlocks); }

// Columns per chunk of the CUDA Gram route: a float64 copy of J[:, :, c0:c0+chunk] takes at most
// budget_bytes (never fewer than min(n, 1024) columns), so float32 Jacobians are never copied to
// float64 in full.
constexpr int64_t kGramChunkBudget = int64_t(256) << 20;
inline int64_t gram_chunk_columns(int64_t B, int64_t m, int64_t n, int64_t budget_bytes = kGramChunkBudget) {
  const int64_t per_column = B * m * static_cast<int64_t>(sizeof(double));
  int64_t chunk = per_column > 0 ? budget_bytes / per_column : n;
  const int64_t floor = n < 1024 ? n : 1024;
  if (chunk < floor) chunk = floor;
  if (chunk > n) chunk = n;
  return chunk < 1 ? 1 : chunk;
}

}  // namespace launch
}  // namespace pyadvt
