// CUDA implementation of pgd_step_ (float32/float64, and float16/bfloat16 computed in float32).
//
// L-inf without momentum is one element-wise pass. Otherwise the per-sample sums (mean |g|,
// ||d||^2, ||delta||^2) are deterministic two-pass reductions in double: a 2-D grid (x: blocks
// over a sample's elements, y: samples, grid-strided so any B runs; pyadvt/launch_config.h)
// writes one partial sum per (sample, x-block), then one warp per sample adds them in a fixed
// order. No atomics: the same inputs give bit-identical results on every run. Every element
// formula comes from pyadvt/pgd_step.h.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "pgd/pgd_step.h"
#include "pyadvt/torch_checks.h"
#include "pyadvt/block_reduce.cuh"
#include "pyadvt/finish_sums.cuh"
#include "pyadvt/launch_config.h"

namespace pyadvt {
namespace {

constexpr int kThreads = launch::kPgdThreads;

template <typename A>
__device__ __forceinline__ A load_param(const A* p, int64_t stride, int64_t b) {
  return p[b * stride];
}

using cuda::block_sum_store;

template <typename T, typename A>
__global__ void linf_kernel(T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ x0, int64_t n,
                            int64_t total, const A* eps, int64_t es, const A* alpha, int64_t as, A lo, A hi) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = i / n;
    x[i] = static_cast<T>(pgd::linf_element<A>(static_cast<A>(x[i]), static_cast<A>(g[i]), static_cast<A>(x0[i]),
                                               load_param(eps, es, b), load_param(alpha, as, b), lo, hi));
  }
}

// Loops of the per-sample kernels: sample b over blockIdx.y (grid-strided), element i of b over
// blockIdx.x / threadIdx.x.
#define PYADVT_FOR_SAMPLES(b) for (int64_t b = blockIdx.y; b < B; b += gridDim.y)
#define PYADVT_FOR_ELEMENTS(i) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)

// partial[b, blockIdx.x] = sum |g| over this block's elements of sample b.
template <typename T>
__global__ void sum_abs_kernel(const T* __restrict__ g, int64_t B, int64_t n, double* partial) {
  PYADVT_FOR_SAMPLES(b) {
    double acc = 0.0;
    PYADVT_FOR_ELEMENTS(i) acc += fabs(static_cast<double>(g[b * n + i]));
    block_sum_store(acc, partial + b * gridDim.x + blockIdx.x);
  }
}

// m <- mu m + g / mean|g|; optionally partial[b, blockIdx.x] = sum m^2 (for the L2 direction).
template <typename T, typename A>
__global__ void momentum_kernel(T* __restrict__ m, const T* __restrict__ g, int64_t B, int64_t n, A mu,
                                const double* sum_abs, double* partial) {
  PYADVT_FOR_SAMPLES(b) {
    const A inv = pgd::safe_inverse_mean<A>(sum_abs[b], n);
    double acc = 0.0;
    PYADVT_FOR_ELEMENTS(i) {
      const A v = pgd::momentum_element<A>(static_cast<A>(m[b * n + i]), static_cast<A>(g[b * n + i]), mu, inv);
      const T stored = static_cast<T>(v);
      m[b * n + i] = stored;
      const double s = static_cast<double>(stored);
      acc += s * s;
    }
    if (partial != nullptr) block_sum_store(acc, partial + b * gridDim.x + blockIdx.x);
  }
}

// L-inf update reading a direction buffer (used after the momentum pass).
template <typename T, typename A>
__global__ void linf_dir_kernel(T* __restrict__ x, const T* __restrict__ d, const T* __restrict__ x0, int64_t B,
                                int64_t n, const A* eps, int64_t es, const A* alpha, int64_t as, A lo, A hi) {
  PYADVT_FOR_SAMPLES(b) {
    const A e = load_param(eps, es, b), a = load_param(alpha, as, b);
    PYADVT_FOR_ELEMENTS(i) {
      const int64_t k = b * n + i;
      x[k] = static_cast<T>(
          pgd::linf_element<A>(static_cast<A>(x[k]), static_cast<A>(d[k]), static_cast<A>(x0[k]), e, a, lo, hi));
    }
  }
}

template <typename T>
__global__ void sum_sq_kernel(const T* __restrict__ d, int64_t B, int64_t n, double* partial) {
  PYADVT_FOR_SAMPLES(b) {
    double acc = 0.0;
    PYADVT_FOR_ELEMENTS(i) {
      const double v = static_cast<double>(d[b * n + i]);
      acc += v * v;
    }
    block_sum_store(acc, partial + b * gridDim.x + blockIdx.x);
  }
}

// partial[b, blockIdx.x] = this block's part of ||x + alpha d/||d|| - x0||^2.
template <typename T, typename A>
__global__ void l2_delta_kernel(const T* __restrict__ x, const T* __restrict__ d, const T* __restrict__ x0, int64_t B,
                                int64_t n, const A* alpha, int64_t as, const double* dsq, double* partial) {
  PYADVT_FOR_SAMPLES(b) {
    const A scale = load_param(alpha, as, b) * pgd::safe_inverse_norm<A>(dsq[b]);
    double acc = 0.0;
    PYADVT_FOR_ELEMENTS(i) {
      const int64_t k = b * n + i;
      const A delta = (static_cast<A>(x[k]) + scale * static_cast<A>(d[k])) - static_cast<A>(x0[k]);
      acc += static_cast<double>(delta) * static_cast<double>(delta);
    }
    block_sum_store(acc, partial + b * gridDim.x + blockIdx.x);
  }
}

template <typename T, typename A>
__global__ void l2_write_kernel(T* __restrict__ x, const T* __restrict__ d, const T* __restrict__ x0, int64_t B,
                                int64_t n, const A* eps, int64_t es, const A* alpha, int64_t as, const double* dsq,
                                const double* delta_sq, A lo, A hi) {
  PYADVT_FOR_SAMPLES(b) {
    const A scale = load_param(alpha, as, b) * pgd::safe_inverse_norm<A>(dsq[b]);
    const A factor = pgd::l2_projection_factor<A>(delta_sq[b], load_param(eps, es, b));
    PYADVT_FOR_ELEMENTS(i) {
      const int64_t k = b * n + i;
      const A delta = (static_cast<A>(x[k]) + scale * static_cast<A>(d[k])) - static_cast<A>(x0[k]);
      x[k] = static_cast<T>(clamp_to<A>(static_cast<A>(x0[k]) + delta * factor, lo, hi));
    }
  }
}

#undef PYADVT_FOR_SAMPLES
#undef PYADVT_FOR_ELEMENTS

void pgd_step_cuda(at::Tensor x, const at::Tensor& grad, const at::Tensor& x_orig, const at::Tensor& eps,
                   const at::Tensor& alpha, c10::string_view norm_name, double lo, double hi,
                   const c10::optional<at::Tensor>& momentum, double mu) {
  const pgd::Norm norm = validate_pgd_step(x, grad, x_orig, eps, alpha, std::string(norm_name), lo, hi, momentum);
  bump_versions({&x, momentum.has_value() ? &*momentum : nullptr});
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
      const int64_t blocks = launch::pgd_elementwise_blocks(total);
      linf_kernel<scalar_t, A><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(xp, gp, x0p, n, total, e, es,
                                                                                       a, as, lo_a, hi_a);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
    const launch::PerSampleGrid shape = launch::pgd_per_sample_grid(n, B);
    const dim3 grid(static_cast<unsigned>(shape.blocks_x), static_cast<unsigned>(shape.blocks_y));
    const unsigned finish_blocks = static_cast<unsigned>(launch::pgd_finish_blocks(B));
    at::Tensor partial = at::empty({B * shape.blocks_x}, x.options().dtype(at::kDouble));
    at::Tensor sums = at::empty({3, B}, x.options().dtype(at::kDouble));
    double* part = partial.data_ptr<double>();
    double* s_abs = sums[0].data_ptr<double>();
    double* s_dir = sums[1].data_ptr<double>();
    double* s_delta = sums[2].data_ptr<double>();
    auto finish = [&](double* out) {
      finish_sums_kernel<<<finish_blocks, kThreads, 0, stream>>>(part, B, shape.blocks_x, out);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    };
    const scalar_t* dp = gp;
    if (has_m) {
      scalar_t* mp = mc.data_ptr<scalar_t>();
      sum_abs_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(gp, B, n, part);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      finish(s_abs);
      const bool l2 = norm == pgd::Norm::L2;
      momentum_kernel<scalar_t, A><<<grid, kThreads, 0, stream>>>(mp, gp, B, n, mu_a, s_abs, l2 ? part : nullptr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      if (l2) finish(s_dir);
      dp = mp;
    }
    if (norm == pgd::Norm::Linf) {
      linf_dir_kernel<scalar_t, A><<<grid, kThreads, 0, stream>>>(xp, dp, x0p, B, n, e, es, a, as, lo_a, hi_a);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
    if (!has_m) {
      sum_sq_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(dp, B, n, part);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      finish(s_dir);
    }
    l2_delta_kernel<scalar_t, A><<<grid, kThreads, 0, stream>>>(xp, dp, x0p, B, n, a, as, s_dir, part);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    finish(s_delta);
    l2_write_kernel<scalar_t, A><<<grid, kThreads, 0, stream>>>(xp, dp, x0p, B, n, e, es, a, as, s_dir, s_delta, lo_a,
                                                                hi_a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  if (!xc.is_same(x)) x.copy_(xc);
  if (has_m && !mc.is_same(*momentum)) momentum->copy_(mc);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CUDA, m) { m.impl("pgd_step_", &pgd_step_cuda); }

}  // namespace pyadvt
