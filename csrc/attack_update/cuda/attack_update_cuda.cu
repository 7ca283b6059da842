// CUDA implementations of the attack-update ops (float32/float64, float16/bfloat16 computed in
// float32). nesterov_point is one element-wise pass; variance_momentum_step_ reduces sum |g + v| per
// sample deterministically (partial sums per (sample, x-block), then one warp per sample in a fixed
// order, as pgd_step_ does) and updates m, v and x in one pass; patch_step_ is three element-wise
// passes (amplify, project the cut noise into a scratch buffer, apply). Element formulas come from
// pyadvt/attack_update.h.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <type_traits>

#include "attack_update/attack_update.h"
#include "pyadvt/attack_update.h"
#include "pyadvt/block_reduce.cuh"
#include "pyadvt/finish_sums.cuh"
#include "pyadvt/launch_config.h"

namespace pyadvt {
namespace {

constexpr int kThreads = launch::kPgdThreads;

#define AU_FOR_SAMPLES(b) for (int64_t b = blockIdx.y; b < B; b += gridDim.y)
#define AU_FOR_ELEMENTS(i) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
#define AU_FOR_ALL(i, total) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)

using cuda::block_sum_store;

template <typename T, typename A>
__global__ void nesterov_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ m, int64_t n,
                                int64_t total, const A* alpha, int64_t as, A mu) {
  AU_FOR_ALL(i, total) {
    const int64_t b = i / n;
    out[i] = static_cast<T>(static_cast<A>(x[i]) + (alpha[b * as] * mu) * static_cast<A>(m[i]));
  }
}

template <typename T, typename A>
__global__ void tuned_abs_kernel(const T* __restrict__ g, const T* __restrict__ v, int64_t B, int64_t n,
                                 double* partial) {
  AU_FOR_SAMPLES(b) {
    double acc = 0.0;
    AU_FOR_ELEMENTS(i) {
      const int64_t k = b * n + i;
      acc += fabs(static_cast<double>(static_cast<T>(static_cast<A>(g[k]) + static_cast<A>(v[k]))));
    }
    block_sum_store(acc, partial + b * gridDim.x + blockIdx.x);
  }
}

template <typename T, typename A>
__global__ void variance_kernel(T* __restrict__ x, const T* __restrict__ g, T* __restrict__ v, const T* __restrict__ nb,
                                const T* __restrict__ x0, T* __restrict__ m, int64_t B, int64_t n, const A* eps,
                                int64_t es, const A* alpha, int64_t as, A mu, const double* sum_abs) {
  AU_FOR_SAMPLES(b) {
    const A inv = pgd::safe_inverse_mean<A>(sum_abs[b], n);
    const A e = eps[b * es], a = alpha[b * as];
    AU_FOR_ELEMENTS(i) {
      const int64_t k = b * n + i;
      const A gi = static_cast<A>(g[k]);
      const A t = static_cast<A>(static_cast<T>(gi + static_cast<A>(v[k])));
      const T mi = static_cast<T>(pgd::momentum_element<A>(static_cast<A>(m[k]), t, mu, inv));
      m[k] = mi;
      v[k] = static_cast<T>(static_cast<A>(nb[k]) - gi);
      x[k] = static_cast<T>(
          pgd::linf_element<A>(static_cast<A>(x[k]), static_cast<A>(mi), static_cast<A>(x0[k]), e, a, A(0), A(1)));
    }
  }
}

template <typename T, typename A>
__global__ void amplify_kernel(T* __restrict__ amp, const T* __restrict__ g, int64_t n, int64_t total,
                               const A* alpha, int64_t as, A beta) {
  AU_FOR_ALL(i, total) {
    const A step = alpha[(i / n) * as] * beta;
    amp[i] = static_cast<T>(static_cast<A>(amp[i]) + step * sign_of(static_cast<A>(g[i])));
  }
}

template <typename T, typename A>
__global__ void project_kernel(const T* __restrict__ amp, A* __restrict__ p, int64_t C, int64_t H, int64_t W,
                               int64_t total, const A* w, int64_t k, const A* eps, int64_t es, const A* gamma,
                               int64_t gs) {
  AU_FOR_ALL(idx, total) {
    const int64_t j = idx % W, i = (idx / W) % H, plane = idx / (H * W), b = plane / C;
    const T* ac = amp + plane * H * W;
    const A e = eps[b * es];
    const int64_t r = k / 2;
    A acc = A(0);
    for (int64_t u = 0; u < k; ++u) {
      const int64_t ii = i + u - r;
      if (ii < 0 || ii >= H) continue;
      for (int64_t q = 0; q < k; ++q) {
        const int64_t jj = j + q - r;
        if (jj < 0 || jj >= W) continue;
        acc += w[u * k + q] * au::cut_noise<A>(static_cast<A>(ac[ii * W + jj]), e);
      }
    }
    p[idx] = gamma[b * gs] * sign_of(acc);
  }
}

template <typename T, typename A>
__global__ void apply_patch_kernel(T* __restrict__ x, T* __restrict__ amp, const T* __restrict__ g,
                                   const T* __restrict__ x0, const A* __restrict__ p, int64_t n, int64_t total,
                                   const A* eps, int64_t es, const A* alpha, int64_t as, A beta) {
  AU_FOR_ALL(i, total) {
    const int64_t b = i / n;
    const A step = alpha[b * as] * beta;
    amp[i] = static_cast<T>(static_cast<A>(amp[i]) + p[i]);
    const A stepped = (static_cast<A>(x[i]) + step * sign_of(static_cast<A>(g[i]))) + p[i];
    x[i] = static_cast<T>(au::pi_clip<A>(stepped, static_cast<A>(x0[i]), eps[b * es]));
  }
}

template <typename A>
at::ScalarType acc_scalar() {
  return std::is_same<A, double>::value ? at::kDouble : at::kFloat;
}

unsigned elementwise_blocks(int64_t total) { return static_cast<unsigned>(launch::pgd_elementwise_blocks(total)); }

at::Tensor nesterov_point_cuda(const at::Tensor& x, const at::Tensor& momentum, const at::Tensor& alpha, double mu) {
  validate_nesterov_point(x, momentum, alpha);
  c10::cuda::CUDAGuard guard(x.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  at::Tensor xc = x.contiguous(), mc = momentum.contiguous();
  at::Tensor out = at::empty_like(xc);
  const int64_t B = x.size(0), n = x.numel() / B, total = B * n;
  if (total == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "nesterov_point_cuda", [&] {
    using A = typename acc_type<scalar_t>::type;
    auto [a_t, as] = per_sample_values(alpha, acc_scalar<A>());
    nesterov_kernel<scalar_t, A><<<elementwise_blocks(total), kThreads, 0, stream>>>(
        out.data_ptr<scalar_t>(), xc.data_ptr<scalar_t>(), mc.data_ptr<scalar_t>(), n, total,
        a_t.template data_ptr<A>(), as, static_cast<A>(mu));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

void variance_momentum_step_cuda(at::Tensor x, const at::Tensor& grad, at::Tensor variance,
                                 const at::Tensor& neighbours, const at::Tensor& x_orig, const at::Tensor& eps,
                                 const at::Tensor& alpha, at::Tensor momentum, double mu) {
  validate_variance_momentum_step(x, grad, variance, neighbours, x_orig, eps, alpha, momentum);
  const int64_t B = x.size(0), n = x.numel() / B;
  if (n == 0) return;
  c10::cuda::CUDAGuard guard(x.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  at::Tensor xc = x.contiguous(), vc = variance.contiguous(), mc = momentum.contiguous();
  at::Tensor gc = grad.contiguous(), nc = neighbours.contiguous(), x0c = x_orig.contiguous();
  const launch::PerSampleGrid shape = launch::pgd_per_sample_grid(n, B);
  const dim3 grid(static_cast<unsigned>(shape.blocks_x), static_cast<unsigned>(shape.blocks_y));
  at::Tensor partial = at::empty({B * shape.blocks_x}, x.options().dtype(at::kDouble));
  at::Tensor sums = at::empty({B}, x.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "variance_momentum_step_cuda", [&] {
    using A = typename acc_type<scalar_t>::type;
    auto [e_t, es] = per_sample_values(eps, acc_scalar<A>());
    auto [a_t, as] = per_sample_values(alpha, acc_scalar<A>());
    tuned_abs_kernel<scalar_t, A><<<grid, kThreads, 0, stream>>>(gc.data_ptr<scalar_t>(), vc.data_ptr<scalar_t>(), B,
                                                                 n, partial.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    finish_sums_kernel<<<static_cast<unsigned>(launch::pgd_finish_blocks(B)), kThreads, 0, stream>>>(
        partial.data_ptr<double>(), B, shape.blocks_x, sums.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    variance_kernel<scalar_t, A><<<grid, kThreads, 0, stream>>>(
        xc.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(), vc.data_ptr<scalar_t>(), nc.data_ptr<scalar_t>(),
        x0c.data_ptr<scalar_t>(), mc.data_ptr<scalar_t>(), B, n, e_t.template data_ptr<A>(), es,
        a_t.template data_ptr<A>(), as, static_cast<A>(mu), sums.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  if (!xc.is_same(x)) x.copy_(xc);
  if (!vc.is_same(variance)) variance.copy_(vc);
  if (!mc.is_same(momentum)) momentum.copy_(mc);
}

void patch_step_cuda(at::Tensor x, const at::Tensor& grad, const at::Tensor& x_orig, at::Tensor amplification,
                     const at::Tensor& eps, const at::Tensor& alpha, double beta, const at::Tensor& gamma,
                     const at::Tensor& kernel) {
  validate_patch_step(x, grad, x_orig, amplification, eps, alpha, gamma, kernel);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), n = C * H * W, total = B * n;
  if (total == 0) return;
  c10::cuda::CUDAGuard guard(x.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  at::Tensor xc = x.contiguous(), ac = amplification.contiguous();
  at::Tensor gc = grad.contiguous(), x0c = x_orig.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "patch_step_cuda", [&] {
    using A = typename acc_type<scalar_t>::type;
    auto [e_t, es] = per_sample_values(eps, acc_scalar<A>());
    auto [a_t, as] = per_sample_values(alpha, acc_scalar<A>());
    auto [g_t, gs] = per_sample_values(gamma, acc_scalar<A>());
    at::Tensor w_t = kernel.to(acc_scalar<A>()).contiguous();
    at::Tensor p = at::empty({total}, x.options().dtype(acc_scalar<A>()));
    const A beta_a = static_cast<A>(beta);
    const unsigned blocks = elementwise_blocks(total);
    amplify_kernel<scalar_t, A><<<blocks, kThreads, 0, stream>>>(ac.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(), n,
                                                                 total, a_t.template data_ptr<A>(), as, beta_a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    project_kernel<scalar_t, A><<<blocks, kThreads, 0, stream>>>(
        ac.data_ptr<scalar_t>(), p.template data_ptr<A>(), C, H, W, total, w_t.template data_ptr<A>(), kernel.size(0),
        e_t.template data_ptr<A>(), es, g_t.template data_ptr<A>(), gs);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    apply_patch_kernel<scalar_t, A><<<blocks, kThreads, 0, stream>>>(
        xc.data_ptr<scalar_t>(), ac.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(), x0c.data_ptr<scalar_t>(),
        p.template data_ptr<A>(), n, total, e_t.template data_ptr<A>(), es, a_t.template data_ptr<A>(), as, beta_a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  if (!xc.is_same(x)) x.copy_(xc);
  if (!ac.is_same(amplification)) amplification.copy_(ac);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CUDA, m) {
  m.impl("nesterov_point", &nesterov_point_cuda);
  m.impl("variance_momentum_step_", &variance_momentum_step_cuda);
  m.impl("patch_step_", &patch_step_cuda);
}

}  // namespace pyadvt
