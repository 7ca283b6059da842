// CUDA implementation of power_iteration_update_: one block per row (grid-strided); a block
// reduction gives <v, hv> and ||hv||^2 (double; recomputed on 2^s hv when the squares leave the
// safe range, pyadvt/power_iteration.h), then the row is rewritten and thread 0 updates eig/active.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "hessian/power_iteration.h"
#include "pyadvt/torch_checks.h"
#include "pyadvt/block_reduce.cuh"
#include "pyadvt/launch_config.h"
#include "pyadvt/power_iteration.h"

namespace pyadvt {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void power_update_kernel(T* __restrict__ v, const T* __restrict__ hv, T* __restrict__ eig,
                                    bool* __restrict__ active, int64_t B, int64_t n, double tol) {
  for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    if (!active[b]) continue;  // uniform over the block
    T* vb = v + b * n;
    const T* hb = hv + b * n;
    double dot = 0.0, hv_sq = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const double h = static_cast<double>(hb[i]);
      dot += static_cast<double>(vb[i]) * h;
      hv_sq += h * h;
    }
    cuda::block_sum2(dot, hv_sq);  // every thread has read its v entries before any write below
    if (power::needs_rescale(hv_sq)) {  // uniform: |hv| outside [1e-145, 1e145] (float64 only)
      double mx = 0.0;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = scaling::nan_max_abs(mx, static_cast<double>(hb[i]));
      mx = cuda::block_max_nan(mx);
      if (mx > 0.0 && mx <= 1.7976931348623157e308) {
        const int shift = scaling::scale_shift(mx);
        const scaling::Pow2 f = scaling::pow2_factors(shift);
        double sq = 0.0, unused = 0.0;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
          const double h = (static_cast<double>(hb[i]) * f.f1) * f.f2;
          sq += h * h;
        }
        cuda::block_sum2(sq, unused);
        const double inv = power::inverse_norm(sq);
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) vb[i] = power::normalized_scaled(hb[i], shift, inv);
      }
    } else {
      const double inv = power::inverse_norm(hv_sq);
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) vb[i] = power::normalized(vb[i], hb[i], inv);
    }
    if (threadIdx.x == 0) {
      const bool done = power::is_converged(dot, static_cast<double>(eig[b]), tol);
      eig[b] = static_cast<T>(dot);
      active[b] = !done;
    }
    __syncthreads();  // active[b] is read again only by this block; keep iterations ordered
  }
}

void power_iteration_update_cuda(at::Tensor v, const at::Tensor& hv, at::Tensor eig, at::Tensor active, double tol) {
  validate_power_iteration_update(v, hv, eig, active, tol);
  bump_versions({&v, &eig, &active});
  const int64_t B = v.size(0), n = v.size(1);
  if (B == 0) return;
  c10::cuda::CUDAGuard guard(v.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  at::Tensor vc = v.is_contiguous() ? v : v.contiguous();
  at::Tensor hc = hv.contiguous();
  at::Tensor ec = eig.is_contiguous() ? eig : eig.contiguous();
  at::Tensor ac = active.is_contiguous() ? active : active.contiguous();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "power_iteration_update_cuda", [&] {
    const int64_t grid = launch::row_blocks(B);
    power_update_kernel<scalar_t><<<static_cast<unsigned>(grid), kThreads, 0, stream>>>(
        vc.data_ptr<scalar_t>(), hc.data_ptr<scalar_t>(), ec.data_ptr<scalar_t>(), ac.data_ptr<bool>(), B, n, tol);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  if (!vc.is_same(v)) v.copy_(vc);
  if (!ec.is_same(eig)) eig.copy_(ec);
  if (!ac.is_same(active)) active.copy_(ac);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CUDA, m) { m.impl("power_iteration_update_", &power_iteration_update_cuda); }

}  // namespace pyadvt
