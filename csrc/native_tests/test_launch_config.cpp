// Native tests of the CUDA launch configuration (csrc/include/pyadvt/launch_config.h): the same
// functions the launchers call, checked for every k and for batch sizes up to beyond the grid
// limits, under ASan/UBSan. No GPU is needed: the grid-stride loops are simulated.
#include <cstring>
#include <vector>

#include "check.h"
#include "pyadvt/launch_config.h"

namespace ln = pyadvt::launch;
namespace eig = pyadvt::eig;

namespace {

// Static shared memory of the Jacobi kernel: block_sum2 (2 x 32 doubles) and block_max_nan
// (32 doubles) of pyadvt/block_reduce.cuh, as ptxas reports it.
constexpr size_t kJacobiStaticSmem = 3 * 32 * sizeof(double);
constexpr size_t kOptinSm90 = 232448;  // cudaDevAttrMaxSharedMemoryPerBlockOptin, sm_90 (H100/H200)
constexpr size_t kOptinSm80 = 166912;  // sm_80 (A100)
constexpr size_t kOptinSm75 = 65536;   // sm_75 (T4)
constexpr size_t kDefaultLimit = 48 * 1024;

// The kernel's shared-memory layout carved from a heap block of exactly layout.bytes: writing
// every element of every region is an ASan error if the size or an offset is wrong; regions must
// be disjoint and aligned.
void layout_holds_every_region(int k) {
  const ln::SymEigSmem s = ln::sym_eig_smem(k);
  const size_t kk = size_t(k) * k, half = eig::schedule_size(k) / 2;
  std::vector<char> block(s.bytes);  // heap: ASan checks the bounds
  char* base = block.data();
  auto* A = reinterpret_cast<double*>(base + s.a);
  auto* V = reinterpret_cast<double*>(base + s.v);
  auto* sgn = reinterpret_cast<double*>(base + s.sgn);
  auto* rot = reinterpret_cast<eig::Rotation*>(base + s.rot);
  auto* order = reinterpret_cast<int*>(base + s.order);
  for (size_t i = 0; i < kk; ++i) A[i] = V[i] = 1.0;
  for (int i = 0; i < k; ++i) sgn[i] = 1.0;
  for (size_t i = 0; i < half; ++i) rot[i] = eig::Rotation{0, 1, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  for (int i = 0; i < k; ++i) order[i] = i;
  CHECK(s.v >= s.a + kk * sizeof(double) && s.sgn >= s.v + kk * sizeof(double));
  CHECK(s.rot >= s.sgn + k * sizeof(double) && s.order >= s.rot + half * sizeof(eig::Rotation));
  CHECK(s.bytes == s.order + k * sizeof(int));
  CHECK(s.rot % alignof(eig::Rotation) == 0 && s.order % alignof(int) == 0);
  // Check the regions were not overwritten by each other.
  bool intact = true;
  for (size_t i = 0; i < kk; ++i) intact &= A[i] == 1.0 && V[i] == 1.0;
  for (int i = 0; i < k; ++i) intact &= order[i] == i && sgn[i] == 1.0;
  CHECK(intact);
}

void jacobi_launch_for_every_k() {
  for (int k = 1; k <= eig::kMaxK; ++k) {
    layout_holds_every_region(k);
    for (int64_t B : {int64_t(1), int64_t(5), (int64_t(1) << 20) + 3}) {
      const ln::SymEigLaunch l = ln::sym_eig_launch(k, B, kJacobiStaticSmem, kOptinSm90);
      const int half = eig::schedule_size(k) / 2;
      CHECK(l.threads % 32 == 0 && l.threads >= 32 && l.threads <= 256);
      CHECK(l.threads >= half);  // threads tid < half compute the rotations of a step
      CHECK(l.blocks >= 1 && l.blocks <= ln::kMaxRowBlocks && l.blocks <= B);
      CHECK(l.dynamic_smem == ln::sym_eig_smem(k).bytes);
      // Every k fits an H100/H200 and an A100, and the attribute set once admits the launch.
      CHECK(l.fits);
      CHECK(l.dynamic_smem <= ln::max_dynamic_smem(kJacobiStaticSmem, kOptinSm90));
      CHECK(ln::sym_eig_launch(k, B, kJacobiStaticSmem, kOptinSm80).fits);
    }
  }
  // The finding of the review: at k = 54, 48,816 B dynamic + static exceed the default 48 KiB, so
  // the launch needs the attribute although the dynamic part alone is below 48 KiB.
  const ln::SymEigLaunch l54 = ln::sym_eig_launch(54, 1, kJacobiStaticSmem, kOptinSm90);
  CHECK(l54.dynamic_smem < kDefaultLimit && l54.dynamic_smem + kJacobiStaticSmem > kDefaultLimit);
  CHECK(l54.dynamic_smem <= ln::max_dynamic_smem(kJacobiStaticSmem, kOptinSm90));
  // A T4 cannot hold k = 64: the launcher reports it instead of failing the launch.
  CHECK(!ln::sym_eig_launch(64, 1, kJacobiStaticSmem, kOptinSm75).fits);
  CHECK(ln::sym_eig_launch(40, 1, kJacobiStaticSmem, kOptinSm75).fits);
}

// Simulated grid-stride loops of the per-sample pgd kernels: every (sample, element) visited once.
void per_sample_grid_covers_everything() {
  const int64_t threads = ln::kPgdThreads;
  for (int64_t n : {int64_t(1), int64_t(255), int64_t(1025), int64_t(3072), int64_t(4097), int64_t(150528)}) {
    const ln::PerSampleGrid g = ln::pgd_per_sample_grid(n, 7);
    CHECK(g.blocks_x >= 1 && g.blocks_x <= ln::kPgdMaxBlocksPerSample);
    std::vector<int> seen(n, 0);
    for (int64_t bx = 0; bx < g.blocks_x; ++bx)
      for (int64_t t = 0; t < threads; ++t)
        for (int64_t i = bx * threads + t; i < n; i += g.blocks_x * threads) ++seen[i];
    bool once = true;
    for (int v : seen) once &= v == 1;
    CHECK(once);
    CHECK(n <= ln::kPgdElementsPerBlock || g.blocks_x > 1);  // the multi-block path is taken
  }
  for (int64_t B : {int64_t(1), int64_t(7), int64_t(65535), int64_t(65536), int64_t(200001)}) {
    const ln::PerSampleGrid g = ln::pgd_per_sample_grid(3, B);
    CHECK(g.blocks_y >= 1 && g.blocks_y <= ln::kMaxGridY);
    std::vector<int> seen(B, 0);
    for (int64_t y = 0; y < g.blocks_y; ++y)
      for (int64_t b = y; b < B; b += g.blocks_y) ++seen[b];
    bool once = true;
    for (int v : seen) once &= v == 1;
    CHECK(once);
  }
  // B * n beyond 2^31 (element indices need 64 bits, as the kernels use).
  const int64_t B = 65536, n = 32769;
  const ln::PerSampleGrid g = ln::pgd_per_sample_grid(n, B);
  CHECK(g.blocks_y == ln::kMaxGridY && (B - 1) * n + (n - 1) > (int64_t(1) << 31));
  // The finishing reduction: one warp per sample.
  for (int64_t b : {int64_t(1), int64_t(9), int64_t(65536), int64_t(1) << 24}) {
    const int64_t blocks = ln::pgd_finish_blocks(b);
    const int64_t warps = blocks * (ln::kPgdThreads / 32);
    CHECK(blocks >= 1 && blocks <= ln::kPgdMaxElementwiseBlocks && (warps >= b || blocks == ln::kPgdMaxElementwiseBlocks));
  }
}

void elementwise_and_row_grids_fit_limits() {
  for (int64_t total : {int64_t(1), int64_t(255), int64_t(1) << 31, (int64_t(1) << 40) + 5}) {
    const int64_t blocks = ln::pgd_elementwise_blocks(total);
    CHECK(blocks >= 1 && blocks <= ln::kMaxGridX && blocks <= ln::kPgdMaxElementwiseBlocks);
  }
  for (int64_t B : {int64_t(1), int64_t(65536), (int64_t(1) << 20) + 3, int64_t(1) << 33}) {
    const int64_t blocks = ln::row_blocks(B);
    CHECK(blocks >= 1 && blocks <= ln::kMaxRowBlocks && blocks <= B);
  }
}

// Column chunks of the CUDA Gram route: a chunk's float64 copy within the budget (or at least
// min(n, 1024) columns), the chunks tile [0, n).
void gram_chunks_bound_memory() {
  for (int64_t B : {int64_t(1), int64_t(256), int64_t(4096)})
    for (int64_t m : {int64_t(1), int64_t(10), int64_t(64)})
      for (int64_t n : {int64_t(1), int64_t(257), int64_t(3072), int64_t(150528)}) {
        const int64_t c = ln::gram_chunk_columns(B, m, n);
        CHECK(c >= 1 && c <= n);
        CHECK(c * B * m * 8 <= ln::kGramChunkBudget || c == (n < 1024 ? n : 1024));
        int64_t covered = 0;
        for (int64_t c0 = 0; c0 < n; c0 += c) covered += (c0 + c < n ? c : n - c0);
        CHECK(covered == n);
      }
  // [256, 10, 150528] float32: the review's 3.1 GB float64 copy becomes chunks of at most 256 MiB.
  CHECK(ln::gram_chunk_columns(256, 10, 150528) * 256 * 10 * 8 <= ln::kGramChunkBudget);
}

}  // namespace

int main() {
  jacobi_launch_for_every_k();
  per_sample_grid_covers_everything();
  elementwise_and_row_grids_fit_limits();
  gram_chunks_bound_memory();
  return native_test::finish();
}
