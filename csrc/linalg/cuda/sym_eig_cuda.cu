// CUDA implementation of small_sym_eig: one block per matrix (grid-strided over the batch), the
// whole Jacobi state (A, V) in shared memory, each round-robin step's k/2 disjoint rotations
// applied concurrently with the phases of pyadvt/sym_eig.h. This is the parallel cyclic Jacobi;
// the CPU op runs Householder tridiagonalisation + implicit QL (pyadvt/sym_tridiag.h), so the two
// agree to rounding, and one sign rule (pyadvt/scaling.h) fixes every eigenvector's sign on both.
// Each matrix is scaled by a power of two on load (max |G| in [0.5, 1)) and its eigenvalues scaled
// back; a NaN or Inf entry anywhere gives NaN outputs, as on the CPU.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <limits>
#include <mutex>
#include <tuple>

#include "pyadvt/block_reduce.cuh"
#include "linalg/cuda/sym_eig_cuda.cuh"
#include "linalg/linalg.h"
#include "pyadvt/launch_config.h"
#include "pyadvt/sym_eig.h"

namespace pyadvt {
namespace {

template <typename T, typename U>
__global__ void sym_eig_kernel(const T* __restrict__ G, int64_t B, int k, U* __restrict__ evals,
                               U* __restrict__ evecs) {
  extern __shared__ double smem[];
  const launch::SymEigSmem layout = launch::sym_eig_smem(k);
  char* base = reinterpret_cast<char*>(smem);
  double* A = reinterpret_cast<double*>(base + layout.a);
  double* V = reinterpret_cast<double*>(base + layout.v);
  double* sgn = reinterpret_cast<double*>(base + layout.sgn);
  eig::Rotation* rot = reinterpret_cast<eig::Rotation*>(base + layout.rot);
  int* order = reinterpret_cast<int*>(base + layout.order);
  const int K = eig::schedule_size(k), half = K / 2;
  const int tid = threadIdx.x, nt = blockDim.x;
  const int kk = k * k;

  for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    const T* Gb = G + b * kk;
    double mx = 0.0;
    for (int idx = tid; idx < kk; idx += nt) mx = scaling::nan_max_abs(mx, static_cast<double>(Gb[idx]));
    mx = cuda::block_max_nan(mx);  // uniform over the block
    if (!(mx <= 1.7976931348623157e308)) {  // NaN or Inf entry: NaN outputs
      const U nan = std::numeric_limits<U>::quiet_NaN();
      for (int idx = tid; idx < kk; idx += nt) evecs[b * kk + idx] = nan;
      for (int j = tid; j < k; j += nt) evals[b * k + j] = nan;
      continue;
    }
    const int shift = scaling::scale_shift(mx);
    const scaling::Pow2 f = scaling::pow2_factors(shift);
    for (int idx = tid; idx < kk; idx += nt) {
      const int i = idx / k, j = idx % k;
      A[idx] = eig::scaled_symmetric_entry(Gb[i * k + j], Gb[j * k + i], f);
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
    for (int j = tid; j < k; j += nt) evals[b * k + j] = static_cast<U>(scaling::pow2_mul(A[order[j] * k + order[j]], -shift));
    __syncthreads();  // shared state is reused by the next matrix
  }
}

// Static shared memory of the kernel and the device's opt-in limit, queried and the dynamic
// shared-memory attribute set once per (device, instantiation).
struct KernelLimits {
  size_t static_smem = 0, smem_optin = 0;
};

constexpr int kMaxDevices = 64;

template <typename T, typename U>
const KernelLimits& kernel_limits(int device) {
  static KernelLimits limits[kMaxDevices];
  static std::once_flag once[kMaxDevices];
  TORCH_CHECK(device >= 0 && device < kMaxDevices, "pyadvt: CUDA device index ", device, " out of range");
  std::call_once(once[device], [device] {
    cudaFuncAttributes attr;
    C10_CUDA_CHECK(cudaFuncGetAttributes(&attr, sym_eig_kernel<T, U>));
    int optin = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    KernelLimits l;
    l.static_smem = attr.sharedSizeBytes;
    l.smem_optin = static_cast<size_t>(optin);
    C10_CUDA_CHECK(cudaFuncSetAttribute(sym_eig_kernel<T, U>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(launch::max_dynamic_smem(l.static_smem, l.smem_optin))));
    limits[device] = l;
  });
  return limits[device];
}

template <typename T, typename U>
void launch_typed(const T* G, int64_t B, int k, U* evals, U* evecs, cudaStream_t stream, int device) {
  const KernelLimits& lim = kernel_limits<T, U>(device);
  const launch::SymEigLaunch cfg = launch::sym_eig_launch(k, B, lim.static_smem, lim.smem_optin);
  TORCH_CHECK(cfg.fits, "pyadvt: small_sym_eig with k=", k, " needs ", cfg.dynamic_smem + lim.static_smem,
              " bytes of shared memory per block but this GPU allows ", lim.smem_optin,
              "; use a smaller k or run on the CPU");
  sym_eig_kernel<T, U><<<static_cast<unsigned>(cfg.blocks), cfg.threads, cfg.dynamic_smem, stream>>>(G, B, k, evals,
                                                                                                     evecs);
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
  const int device = G.get_device();
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "sym_eig_cuda", [&] {
    using T = scalar_t;
    const T* gp = G.data_ptr<T>();
    if (evals.scalar_type() == at::kDouble) {
      launch_typed<T, double>(gp, B, k, evals.data_ptr<double>(), evecs.data_ptr<double>(), stream, device);
    } else {
      launch_typed<T, float>(gp, B, k, evals.data_ptr<float>(), evecs.data_ptr<float>(), stream, device);
    }
  });
}

TORCH_LIBRARY_IMPL(pyadvt, CUDA, m) { m.impl("small_sym_eig", &small_sym_eig_cuda); }

}  // namespace pyadvt
