// CUDA implementation of small_sym_eig: one block per matrix, the whole Jacobi state (A, V) in
// shared memory, each round-robin step's k/2 disjoint rotations applied concurrently with the
// phases of pyadvt/sym_eig.h (so CPU and GPU perform the same rotations).
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "linalg/cuda/block_reduce.cuh"
#include "linalg/cuda/sym_eig_cuda.cuh"
#include "linalg/linalg.h"
#include "pyadvt/sym_eig.h"

namespace pyadvt {
namespace {

size_t shared_bytes(int k) {
  const int half = eig::schedule_size(k) / 2;
  return (2 * k * k + k) * sizeof(double) + half * sizeof(eig::Rotation) + k * sizeof(int);
}

template <typename T, typename U>
__global__ void sym_eig_kernel(const T* __restrict__ G, int64_t B, int k, U* __restrict__ evals,
                               U* __restrict__ evecs) {
  extern __shared__ double smem[];
  double* A = smem;
  double* V = A + k * k;
  double* sgn = V + k * k;
  eig::Rotation* rot = reinterpret_cast<eig::Rotation*>(sgn + k);
  const int K = eig::schedule_size(k), half = K / 2;
  int* order = reinterpret_cast<int*>(rot + half);
  const int tid = threadIdx.x, nt = blockDim.x;
  const int kk = k * k;

  for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    const T* Gb = G + b * kk;
    for (int idx = tid; idx < kk; idx += nt) {
      const int i = idx / k, j = idx % k;
      A[idx] = 0.5 * (static_cast<double>(Gb[i * k + j]) + static_cast<double>(Gb[j * k + i]));
      V[idx] = i == j ? 1.0 : 0.0;
    }
    __syncthreads();
    for (int sweep = 0; sweep < eig::kMaxSweeps && k >= 2; ++sweep) {
      double off = 0.0, fro = 0.0;
      for (int idx = tid; idx < kk; idx += nt) {
        const double a = A[idx];
        fro += a * a;
        if (idx / k != idx % k) off += a * a;
      }
      cuda::block_sum2(off, fro);
      if (eig::converged(off, fro)) break;  // uniform: every thread has the same totals
      for (int s = 0; s < K - 1; ++s) {
        if (tid < half) {
          int p, q;
          eig::round_robin_pair(K, s, tid, &p, &q);
          rot[tid] = eig::make_rotation(A, k, p, q);
        }
        __syncthreads();
        for (int idx = tid; idx < k * half; idx += nt) {
          const eig::Rotation& r = rot[idx % half];
          if (r.q >= 0) {
            eig::rotate_columns(A, k, idx / half, r);
            eig::rotate_columns(V, k, idx / half, r);
          }
        }
        __syncthreads();
        for (int idx = tid; idx < k * half; idx += nt) {
          const eig::Rotation& r = rot[idx % half];
          if (r.q >= 0) eig::rotate_rows(A, k, idx / half, r);
        }
        __syncthreads();
        if (tid < half && rot[tid].q >= 0) eig::finish_rotation(A, k, rot[tid]);
        __syncthreads();
      }
    }
    if (tid == 0) eig::ascending_order(A, k, order);
    __syncthreads();
    for (int j = tid; j < k; j += nt) sgn[j] = eig::column_sign(V, k, order[j]);
    __syncthreads();
    for (int idx = tid; idx < kk; idx += nt) {
      const int i = idx / k, j = idx % k;
      evecs[b * kk + idx] = static_cast<U>(sgn[j] * V[i * k + order[j]]);
    }
    for (int j = tid; j < k; j += nt) evals[b * k + j] = static_cast<U>(A[order[j] * k + order[j]]);
    __syncthreads();  // shared state is reused by the next matrix
  }
}

template <typename T, typename U>
void launch_typed(const T* G, int64_t B, int k, U* evals, U* evecs, cudaStream_t stream) {
  const size_t bytes = shared_bytes(k);
  if (bytes > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(sym_eig_kernel<T, U>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
  }
  const int half = eig::schedule_size(k) / 2;
  int threads = ((k * half + 31) / 32) * 32;
  threads = threads < 32 ? 32 : (threads > 256 ? 256 : threads);
  const int64_t blocks = B < (1 << 20) ? B : (1 << 20);
  sym_eig_kernel<T, U><<<static_cast<unsigned>(blocks), threads, bytes, stream>>>(G, B, k, evals, evecs);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor> small_sym_eig_cuda(const at::Tensor& G) {
  validate_small_sym_eig(G);
  const int64_t B = G.size(0), k = G.size(1);
  at::Tensor evals = at::empty({B, k}, G.options());
  at::Tensor evecs = at::empty({B, k, k}, G.options());
  if (B == 0) return {evals, evecs};
  c10::cuda::CUDAGuard guard(G.device());
  launch_sym_eig(G.contiguous(), evals, evecs);
  return {evals, evecs};
}

}  // namespace

void launch_sym_eig(const at::Tensor& G, at::Tensor& evals, at::Tensor& evecs) {
  const int64_t B = G.size(0);
  const int k = static_cast<int>(G.size(1));
  TORCH_CHECK(evals.scalar_type() == evecs.scalar_type(), "pyadvt: evals/evecs dtypes differ");
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "sym_eig_cuda", [&] {
    using T = scalar_t;
    const T* gp = G.data_ptr<T>();
    if (evals.scalar_type() == at::kDouble) {
      launch_typed<T, double>(gp, B, k, evals.data_ptr<double>(), evecs.data_ptr<double>(), stream);
    } else {
      launch_typed<T, float>(gp, B, k, evals.data_ptr<float>(), evecs.data_ptr<float>(), stream);
    }
  });
}

TORCH_LIBRARY_IMPL(pyadvt, CUDA, m) { m.impl("small_sym_eig", &small_sym_eig_cuda); }

}  // namespace pyadvt
