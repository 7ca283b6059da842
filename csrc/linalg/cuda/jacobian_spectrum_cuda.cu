// CUDA implementation of jacobian_spectrum: per-sample max |J| and its power-of-two scaling
// (pyadvt/jacobian_spectrum.h), float64 Gram matrices accumulated over column chunks with batched
// GEMMs (a chunk of J is converted to float64 at a time, pyadvt/launch_config.h, so a float32 J
// is never copied to float64 in full), the shared-memory Jacobi kernel, a per-sample spectrum
// kernel, the J^T u1 products over the same chunks, and a finishing kernel that applies the sign
// rule (pyadvt/scaling.h) to v1.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>

#include "pyadvt/block_reduce.cuh"
#include "linalg/cuda/sym_eig_cuda.cuh"
#include "linalg/linalg.h"
#include "pyadvt/jacobian_spectrum.h"
#include "pyadvt/launch_config.h"

namespace pyadvt {
namespace {

constexpr int kThreads = 256;

// Per sample: the shift of the scaling rule and its two exact factors (1 when unscaled).
__global__ void shift_kernel(const double* __restrict__ max_abs, int64_t B, int32_t* shift, double* f1,
                             double* f2) {
  const int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (b >= B) return;
  const int s = scaling::scale_shift_if_needed(max_abs[b]);
  const scaling::Pow2 f = scaling::pow2_factors(s);
  shift[b] = s;
  f1[b] = f.f1;
  f2[b] = f.f2;
}

// One thread per sample: trace of G, the top spectrum and its flags.
template <typename T>
__global__ void top_spectrum_kernel(const double* __restrict__ G, const double* __restrict__ evals,
                                    const double* __restrict__ max_abs, const int32_t* __restrict__ shift, int64_t B,
                                    int m, double deg_tol, T* sigma1, T* sigma2, T* lam, int32_t* flags,
                                    double* scale) {
  const int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (b >= B) return;
  double trace = 0.0;
  for (int i = 0; i < m; ++i) trace += G[b * m * m + i * m + i];
  const bool finite = max_abs[b] <= 1.7976931348623157e308;  // false for NaN / Inf entries
  const double e1 = evals[b * m + m - 1];
  const double e2 = m >= 2 ? evals[b * m + m - 2] : 0.0;
  const spectrum::TopSpectrum top = spectrum::top_spectrum(e1, e2, trace, finite, m, deg_tol, shift[b]);
  sigma1[b] = static_cast<T>(top.sigma1);
  sigma2[b] = static_cast<T>(top.sigma2);
  lam[b] = static_cast<T>(top.lam);
  flags[b] = top.flags;
  scale[b] = top.inv_sigma1;
}

// One block per sample: v1 = sign * scale * w with the shared sign rule on w.
template <typename T>
__global__ void finish_v1_kernel(const double* __restrict__ w, const double* __restrict__ scale, int64_t B, int64_t n,
                                 T* __restrict__ v1) {
  for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    const double* wb = w + b * n;
    double mx = 0.0;
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) mx = scaling::nan_max_abs(mx, wb[c]);
    mx = cuda::block_max_nan(mx);
    const double bar = (1.0 - scaling::kSignTieRtol) * mx;
    long long first = n;
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) {
      if (fabs(wb[c]) >= bar) {
        first = c;
        break;  // later entries of this thread have larger indices
      }
    }
    first = cuda::block_min(first);
    const double s = scale[b];
    const bool flip = mx > 0.0 && mx <= 1.7976931348623157e308 && first < n && wb[first] < 0.0;
    const double f = flip ? -s : s;
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) {
      // s == 0: zero Jacobian -> exact zeros; s NaN: non-finite input -> NaN.
      v1[b * n + c] = static_cast<T>(s == 0.0 ? 0.0 : f * wb[c]);
    }
    __syncthreads();
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> jacobian_spectrum_cuda(const at::Tensor& J) {
  at::Tensor sigma1, sigma2, lam, v1, flags;
  std::tie(sigma1, sigma2, lam, v1, flags) = new_jacobian_spectrum_outputs(J);
  const int64_t B = J.size(0), n = J.size(2);
  const int64_t m = J.size(1);
  if (B == 0) return {sigma1, sigma2, lam, v1, flags};
  c10::cuda::CUDAGuard guard(J.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const auto f64 = J.options().dtype(at::kDouble);
  const int blocks_b = static_cast<int>((B + kThreads - 1) / kThreads);

  // max |J| per sample in J's dtype (no copy of J), NaN/Inf propagate.
  const at::Tensor max_abs = at::linalg_vector_norm(J, INFINITY, at::IntArrayRef{1, 2}, false).to(at::kDouble).contiguous();
  at::Tensor shift = at::empty({B}, J.options().dtype(at::kInt));
  at::Tensor f1 = at::empty({B}, f64), f2 = at::empty({B}, f64);
  shift_kernel<<<blocks_b, kThreads, 0, stream>>>(max_abs.data_ptr<double>(), B, shift.data_ptr<int32_t>(),
                                                  f1.data_ptr<double>(), f2.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const at::Tensor f1v = f1.view({B, 1, 1}), f2v = f2.view({B, 1, 1});
  const int64_t chunk = launch::gram_chunk_columns(B, m, n);
  auto scaled_chunk = [&](int64_t c0) {  // 2^s J[:, :, c0:c0+chunk] in float64 (exact scaling)
    const at::Tensor c = J.narrow(2, c0, std::min(chunk, n - c0));
    // never in place on a float64 J (to() would return the caller's storage)
    at::Tensor d = c.scalar_type() == at::kDouble ? c.mul(f1v) : c.to(at::kDouble).mul_(f1v);
    return d.mul_(f2v);
  };
  at::Tensor G = at::zeros({B, m, m}, f64);
  for (int64_t c0 = 0; c0 < n; c0 += chunk) {
    const at::Tensor Jc = scaled_chunk(c0);
    G.baddbmm_(Jc, Jc.transpose(1, 2));
  }
  // Samples with NaN/Inf entries go to the eigen-solver as zeros (flagged below).
  const at::Tensor finite = at::isfinite(max_abs);
  const at::Tensor Gs = at::where(finite.view({B, 1, 1}), G, at::zeros_like(G)).contiguous();
  at::Tensor evals = at::empty({B, m}, f64);
  at::Tensor evecs = at::empty({B, m, m}, f64);
  launch_sym_eig(Gs, evals, evecs);
  at::Tensor scale = at::empty({B}, f64);
  AT_DISPATCH_FLOATING_TYPES(J.scalar_type(), "jacobian_spectrum_cuda", [&] {
    top_spectrum_kernel<scalar_t><<<blocks_b, kThreads, 0, stream>>>(
        Gs.data_ptr<double>(), evals.data_ptr<double>(), max_abs.data_ptr<double>(), shift.data_ptr<int32_t>(), B,
        static_cast<int>(m), spectrum::degenerate_rtol<scalar_t>(), sigma1.data_ptr<scalar_t>(),
        sigma2.data_ptr<scalar_t>(), lam.data_ptr<scalar_t>(), flags.data_ptr<int32_t>(), scale.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // w = (2^s J)^T u1 as [B, 1, n]; rows of a non-finite sample come out NaN (scale is NaN there too).
    const at::Tensor u1 = evecs.select(2, m - 1).unsqueeze(1);
    at::Tensor w = at::empty({B, 1, n}, f64);
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
      const at::Tensor Jc = scaled_chunk(c0);
      w.narrow(2, c0, Jc.size(2)).copy_(at::bmm(u1, Jc));
    }
    const int64_t grid = launch::row_blocks(B);
    finish_v1_kernel<scalar_t><<<static_cast<unsigned>(grid), kThreads, 0, stream>>>(
        w.data_ptr<double>(), scale.data_ptr<double>(), B, n, v1.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {sigma1, sigma2, lam, v1, flags};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CUDA, m) { m.impl("jacobian_spectrum", &jacobian_spectrum_cuda); }

}  // namespace pyadvt
