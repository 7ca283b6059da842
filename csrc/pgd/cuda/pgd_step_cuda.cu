// CUDA implementation of pgd_step_.
//
// L-inf without momentum is one element-wise pass. Otherwise per-sample sums (mean |g|, ||d||^2,
// ||delta||^2) are accumulated in double with a 2-D grid (blocks x samples) and atomics, followed
// by element-wise passes; every element formula comes from pyadvt/pgd_step.h.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "pgd/pgd_step.h"

namespace pyadvt {
namespace {

constexpr int kThreads = 256;

template <typename A>
__device__ __forceinline__ A load_param(const A* p, int64_t stride, int64_t b) {
  return p[b * stride];
}

// Block-wide sum in double, then one atomicAdd per block into out[b].
__device__ __forceinline__ void block_sum_atomic(double v, double* out) {
  __shared__ double shared[kThreads / 32];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffff, v, offset);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < (kThreads / 32) ? shared[lane] : 0.0;
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffff, v, offset);
    if (lane == 0) atomicAdd(out, v);
  }
}

template <typename T, typename A>
__global__ void linf_kernel(T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ x0, int64_t n,
                            int64_t total, const A* eps, int64_t es, const A* alpha, int64_t as, A lo, A hi) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = i / n;
    x[i] = static_cast<T>(pgd::linf_element<A>(static_cast<A>(x[i]), static_cast<A>(g[i]), static_cast<A>(x0[i]),
                                               load_param(eps, es, b), load_param(alpha, as, b), lo, hi));
  }
}

// sums[b] += sum |g| over sample b.
template <typename T>
__global__ void sum_abs_kernel(const T* __restrict__ g, int64_t n, double* sums) {
  const int64_t b = blockIdx.y;
  double acc = 0.0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    acc += fabs(static_cast<double>(g[b * n + i]));
  block_sum_atomic(acc, sums + b);
}

// m <- mu m + g / mean|g|; optionally sumsq[b] += m^2 (needed for the L2 direction).
template <typename T, typename A>
__global__ void momentum_kernel(T* __restrict__ m, const T* __restrict__ g, int64_t n, A mu, const double* sum_abs,
                                double* sumsq) {
  const int64_t b = blockIdx.y;
  const A inv = pgd::safe_inverse_mean<A>(sum_abs[b], n);
  double acc = 0.0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const A v = pgd::momentum_element<A>(static_cast<A>(m[b * n + i]), static_cast<A>(g[b * n + i]), mu, inv);
    m[b * n + i] = static_cast<T>(v);
    const double s = static_cast<double>(static_cast<T>(v));
    acc += s * s;
  }
  if (sumsq != nullptr) block_sum_atomic(acc, sumsq + b);
}

// L-inf update reading a direction buffer (used after the momentum pass).
template <typename T, typename A>
__global__ void linf_dir_kernel(T* __restrict__ x, const T* __restrict__ d, const T* __restrict__ x0, int64_t n,
                                const A* eps, int64_t es, const A* alpha, int64_t as, A lo, A hi) {
  const int64_t b = blockIdx.y;
  const A e = load_param(eps, es, b), a = load_param(alpha, as, b);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = b * n + i;
    x[k] = static_cast<T>(
        pgd::linf_element<A>(static_cast<A>(x[k]), static_cast<A>(d[k]), static_cast<A>(x0[k]), e, a, lo, hi));
  }
}

template <typename T>
__global__ void sum_sq_kernel(const T* __restrict__ d, int64_t n, double* sums) {
  const int64_t b = blockIdx.y;
  double acc = 0.0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const double v = static_cast<double>(d[b * n + i]);
    acc += v * v;
  }
  block_sum_atomic(acc, sums + b);
}

// delta_sq[b] += ||x + alpha d/||d|| - x0||^2.
template <typename T, typename A>
__global__ void l2_delta_kernel(const T* __restrict__ x, const T* __restrict__ d, const T* __restrict__ x0, int64_t n,
                                const A* alpha, int64_t as, const double* dsq, double* delta_sq) {
  const int64_t b = blockIdx.y;
  const A scale = load_param(alpha, as, b) * pgd::safe_inverse_norm<A>(dsq[b]);
  double acc = 0.0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = b * n + i;
    const A delta = (static_cast<A>(x[k]) + scale * static_cast<A>(d[k])) - static_cast<A>(x0[k]);
    acc += static_cast<double>(delta) * static_cast<double>(delta);
  }
  block_sum_atomic(acc, delta_sq + b);
}

template <typename T, typename A>
__global__ void l2_write_kernel(T* __restrict__ x, const T* __restrict__ d, const T* __restrict__ x0, int64_t n,
                                const A* eps, int64_t es, const A* alpha, int64_t as, const double* dsq,
                                const double* delta_sq, A lo, A hi) {
  const int64_t b = blockIdx.y;
  const A scale = load_param(alpha, as, b) * pgd::safe_inverse_norm<A>(dsq[b]);
  const A factor = pgd::l2_projection_factor<A>(delta_sq[b], load_param(eps, es, b));
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = b * n + i;
    const A delta = (static_cast<A>(x[k]) + scale * static_cast<A>(d[k])) - static_cast<A>(x0[k]);
    x[k] = static_cast<T>(clamp_to<A>(static_cast<A>(x0[k]) + delta * factor, lo, hi));
  }
}

dim3 per_sample_grid(int64_t n, int64_t B) {
  int64_t blocks = (n + kThreads * 4 - 1) / (kThreads * 4);
  if (blocks < 1) blocks = 1;
  if (blocks > 1024) blocks = 1024;
  TORCH_CHECK(B <= 65535, "pyadvt: pgd_step_ on CUDA supports at most 65535 samples per call, got ", B);
  return dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(B));
}

void pgd_step_cuda(at::Tensor x, const at::Tensor& grad, const at::Tensor& x_orig, const at::Tensor& eps,
                   const at::Tensor& alpha, c10::string_view norm_name, double lo, double hi,
                   const c10::optional<at::Tensor>& momentum, double mu) {
  const pgd::Norm norm = validate_pgd_step(x, grad, x_orig, eps, alpha, std::string(norm_name), lo, hi, momentum);
  const int64_t B = x.size(0);
  const int64_t n = x.numel() / B;
  if (n == 0) return;
  c10::cuda::CUDAGuard guard(x.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  at::Tensor xc = x.is_contiguous() ? x : x.contiguous();
  at::Tensor gc = grad.contiguous();
  at::Tensor x0c = x_orig.contiguous();
  const bool has_m = momentum.has_value();
  at::Tensor mc = has_m ? (momentum->is_contiguous() ? *momentum : momentum->contiguous()) : at::Tensor();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "pgd_step_cuda", [&] {
    using A = typename acc_type<scalar_t>::type;
    const at::ScalarType acc = std::is_same<A, double>::value ? at::kDouble : at::kFloat;
    at::Tensor eps_t = eps.to(acc).contiguous(), alpha_t = alpha.to(acc).contiguous();
    const int64_t es = eps_t.size(0) == 1 ? 0 : 1, as = alpha_t.size(0) == 1 ? 0 : 1;
    const A* e = eps_t.data_ptr<A>();
    const A* a = alpha_t.data_ptr<A>();
    scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* gp = gc.data_ptr<scalar_t>();
    const scalar_t* x0p = x0c.data_ptr<scalar_t>();
    const A lo_a = static_cast<A>(lo), hi_a = static_cast<A>(hi), mu_a = static_cast<A>(mu);

    if (norm == pgd::Norm::Linf && !has_m) {
      const int64_t total = B * n;
      const int64_t blocks = std::min<int64_t>((total + kThreads - 1) / kThreads, 65535LL * 8);
      linf_kernel<scalar_t, A><<<blocks, kThreads, 0, stream>>>(xp, gp, x0p, n, total, e, es, a, as, lo_a, hi_a);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
    const dim3 grid = per_sample_grid(n, B);
    at::Tensor sums = at::zeros({3, B}, x.options().dtype(at::kDouble));
    double* s_abs = sums[0].data_ptr<double>();
    double* s_dir = sums[1].data_ptr<double>();
    double* s_delta = sums[2].data_ptr<double>();
    const scalar_t* dp = gp;
    if (has_m) {
      scalar_t* mp = mc.data_ptr<scalar_t>();
      sum_abs_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(gp, n, s_abs);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      momentum_kernel<scalar_t, A><<<grid, kThreads, 0, stream>>>(mp, gp, n, mu_a, s_abs,
                                                                  norm == pgd::Norm::L2 ? s_dir : nullptr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      dp = mp;
    }
    if (norm == pgd::Norm::Linf) {
      linf_dir_kernel<scalar_t, A><<<grid, kThreads, 0, stream>>>(xp, dp, x0p, n, e, es, a, as, lo_a, hi_a);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
    if (!has_m) {
      sum_sq_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(dp, n, s_dir);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    l2_delta_kernel<scalar_t, A><<<grid, kThreads, 0, stream>>>(xp, dp, x0p, n, a, as, s_dir, s_delta);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    l2_write_kernel<scalar_t, A><<<grid, kThreads, 0, stream>>>(xp, dp, x0p, n, e, es, a, as, s_dir, s_delta, lo_a,
                                                                hi_a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  if (!xc.is_same(x)) x.copy_(xc);
  if (has_m && !mc.is_same(*momentum)) momentum->copy_(mc);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CUDA, m) { m.impl("pgd_step_", &pgd_step_cuda); }

}  // namespace pyadvt
