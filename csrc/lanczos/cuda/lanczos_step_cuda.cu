// CUDA implementation of lanczos_step_ (docs/theory.md §9). The memory-bound part - the
// three-term recurrence and the full re-orthogonalisation against the basis (classical
// Gram-Schmidt twice), one thread block per active sample - is a kernel; the tiny tridiagonal
// Ritz problem (k <= max_iter) is solved for the whole batch with ATen's batched eigh and the
// stopping rule is evaluated with tensor ops, mirroring csrc/lanczos/lanczos_step.h and
// pyadvt/ops/reference/lanczos.py.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "lanczos/lanczos.h"
#include "lanczos/lanczos_step.h"
#include "pyadvt/block_reduce.cuh"

namespace pyadvt {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ double block_sum(double v) {
  double dummy = 0.0;
  cuda::block_sum2(v, dummy);
  return v;
}

// One block per sample b (inactive samples return at once). Writes the unnormalised, re-orthogonalised
// residual into Q[b, j + 1], alpha[b, j] and beta[b, j] = its norm. coef: [B, K] scratch.
template <typename T>
__global__ void lanczos_reorth_kernel(T* __restrict__ Q, const T* __restrict__ w, double* __restrict__ alpha,
                                      double* __restrict__ beta, double* __restrict__ coef,
                                      const bool* __restrict__ active, int64_t K, int64_t dim, int64_t j) {
  const int64_t b = blockIdx.x;
  if (!active[b]) return;
  T* Qb = Q + b * (K + 1) * dim;
  const T* wb = w + b * dim;
  const T* qj = Qb + j * dim;
  T* r = Qb + (j + 1) * dim;
  double a = 0.0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) a += static_cast<double>(wb[i]) * static_cast<double>(qj[i]);
  a = block_sum(a);
  const double bprev = j > 0 ? beta[b * K + j - 1] : 0.0;
  const T* qp = j > 0 ? Qb + (j - 1) * dim : nullptr;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    double v = static_cast<double>(wb[i]) - a * static_cast<double>(qj[i]);
    if (qp != nullptr) v -= bprev * static_cast<double>(qp[i]);
    r[i] = static_cast<T>(v);
  }
  __syncthreads();
  double* cb = coef + b * K;
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t p = 0; p <= j; ++p) {
      const T* q = Qb + p * dim;
      double c = 0.0;
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) c += static_cast<double>(q[i]) * static_cast<double>(r[i]);
      c = block_sum(c);
      if (threadIdx.x == 0) cb[p] = c;
    }
    __syncthreads();
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
      double v = static_cast<double>(r[i]);
      for (int64_t p = 0; p <= j; ++p) v -= cb[p] * static_cast<double>(Qb[p * dim + i]);
      r[i] = static_cast<T>(v);
    }
    __syncthreads();
  }
  double bb = 0.0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) bb += static_cast<double>(r[i]) * static_cast<double>(r[i]);
  bb = block_sum(bb);
  if (threadIdx.x == 0) {
    alpha[b * K + j] = a;
    beta[b * K + j] = sqrt(bb);
  }
}

void lanczos_step_cuda(at::Tensor Q, const at::Tensor& w, at::Tensor alpha, at::Tensor beta, at::Tensor ritz,
                       at::Tensor y, at::Tensor status, at::Tensor active, int64_t j, int64_t npairs, double tol,
                       double invariant_rtol) {
  validate_lanczos_step(Q, w, alpha, beta, ritz, y, status, active, j, npairs);
  const int64_t B = Q.size(0), K = Q.size(1) - 1, dim = Q.size(2);
  if (B == 0) return;
  const c10::cuda::CUDAGuard guard(Q.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  at::Tensor coef = at::zeros({B, K}, alpha.options());
  AT_DISPATCH_FLOATING_TYPES(Q.scalar_type(), "lanczos_step_cuda", [&] {
    lanczos_reorth_kernel<scalar_t><<<B, kThreads, 0, stream>>>(
        Q.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), alpha.data_ptr<double>(), beta.data_ptr<double>(),
        coef.data_ptr<double>(), active.data_ptr<bool>(), K, dim, j);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  // Ritz pairs of T_{j+1} for the whole batch (inactive rows are computed and discarded).
  const int64_t k = j + 1;
  at::Tensor al = alpha.narrow(1, 0, k);
  at::Tensor T = at::diag_embed(al);
  if (k > 1) {
    at::Tensor off = beta.narrow(1, 0, k - 1);
    T = T + at::diag_embed(off, 1) + at::diag_embed(off, -1);
  }
  at::Tensor finite = at::isfinite(T).flatten(1).all(1);
  T = at::where(finite.view({B, 1, 1}), T, at::zeros_like(T));
  auto [evals, evecs] = at::linalg_eigh(T);
  at::Tensor b = beta.select(1, j);
  at::Tensor th1 = evals.select(1, k - 1);
  at::Tensor th2 = k > 1 ? evals.select(1, k - 2) : at::zeros_like(th1);
  at::Tensor last = evecs.select(1, k - 1);  // last components of every eigenvector: [B, k]
  at::Tensor r1 = b * last.select(1, k - 1).abs();
  at::Tensor r2 = k > 1 ? b * last.select(1, k - 2).abs() : b.clone();
  at::Tensor scale = th1.abs();
  at::Tensor amax = al.abs().amax(1);
  at::Tensor invariant = at::logical_not(b > invariant_rtol * at::maximum(scale, amax));
  at::Tensor conv = r1 <= tol * scale;
  if (npairs == 2) conv = k > 1 ? at::logical_and(conv, r2 <= tol * scale) : at::zeros_like(conv);
  at::Tensor st = invariant.to(at::kInt) * lanczos::kInvariant + conv.to(at::kInt) * lanczos::kConverged +
                  at::logical_not(finite).to(at::kInt) * lanczos::kQlFailed;
  at::Tensor act = active.clone();
  at::Tensor cont = at::logical_and(act, st == 0);
  at::Tensor yy = at::zeros({B, K}, y.options());
  yy.narrow(1, 0, k).copy_(evecs.select(2, k - 1));
  at::Tensor rz = at::stack({th1, th2, r1, r2}, 1);
  ritz.copy_(at::where(act.view({B, 1}), rz, ritz));
  y.copy_(at::where(act.view({B, 1}), yy, y));
  status.copy_(at::where(act, st, status));
  at::Tensor next = Q.select(1, j + 1);
  at::Tensor safe_b = at::where(cont, b, at::ones_like(b)).to(Q.scalar_type());
  next.copy_(at::where(cont.view({B, 1}), next / safe_b.view({B, 1}), next));
  active.copy_(cont);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CUDA, m) { m.impl("lanczos_step_", &lanczos_step_cuda); }

}  // namespace pyadvt
