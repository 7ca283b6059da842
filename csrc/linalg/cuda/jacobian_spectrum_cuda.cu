// CUDA implementation of jacobian_spectrum: float64 Gram matrices with one batched GEMM, the
// shared-memory Jacobi kernel, a per-sample spectrum kernel (pyadvt/jacobian_spectrum.h), the
// J^T u1 products with a second batched GEMM, and a finishing kernel that fixes v1's sign.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "linalg/cuda/block_reduce.cuh"
#include "linalg/cuda/sym_eig_cuda.cuh"
#include "linalg/linalg.h"
#include "pyadvt/jacobian_spectrum.h"

namespace pyadvt {
namespace {

constexpr int kThreads = 256;

// One thread per sample: trace/finiteness of G, the top spectrum and its flags.
template <typename T>
__global__ void top_spectrum_kernel(const double* __restrict__ G, const double* __restrict__ evals, int64_t B, int m,
                                    double deg_tol, T* sigma1, T* sigma2, T* lam, int32_t* flags, double* scale) {
  const int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (b >= B) return;
  double trace = 0.0;
  bool finite = true;
  for (int i = 0; i < m; ++i) {
    const double g = G[b * m * m + i * m + i];
    trace += g;
    finite = finite && isfinite(g);
  }
  const double e1 = evals[b * m + m - 1];
  const double e2 = m >= 2 ? evals[b * m + m - 2] : 0.0;
  const spectrum::TopSpectrum top = spectrum::top_spectrum(e1, e2, trace, finite, m, deg_tol);
  sigma1[b] = static_cast<T>(top.sigma1);
  sigma2[b] = static_cast<T>(top.sigma2);
  lam[b] = static_cast<T>(top.lam);
  flags[b] = top.flags;
  scale[b] = top.inv_sigma1;
}

// One block per sample: v1 = sign * scale * w with the sign of w's first nonzero entry.
template <typename T>
__global__ void finish_v1_kernel(const double* __restrict__ w, const double* __restrict__ scale, int64_t B, int64_t n,
                                 T* __restrict__ v1) {
  for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    const double* wb = w + b * n;
    long long first = n;
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) {
      if (wb[c] != 0.0) {
        first = c;
        break;  // later entries of this thread have larger indices
      }
    }
    first = cuda::block_min(first);
    const double s = scale[b];
    const double f = (first < n && wb[first] < 0.0) ? -s : s;
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

  const at::Tensor Jd = J.to(at::kDouble);
  const at::Tensor G = at::bmm(Jd, Jd.transpose(1, 2)).contiguous();  // [B, m, m]
  // Non-finite Gram matrices are replaced by zeros for the eigen-solver (flagged below).
  const at::Tensor finite = at::isfinite(G.diagonal(0, 1, 2)).all(1);
  const at::Tensor Gs = at::where(finite.view({B, 1, 1}), G, at::zeros_like(G)).contiguous();
  at::Tensor evals = at::empty({B, m}, Gs.options());
  at::Tensor evecs = at::empty({B, m, m}, Gs.options());
  launch_sym_eig(Gs, evals, evecs);
  at::Tensor scale = at::empty({B}, Gs.options());
  AT_DISPATCH_FLOATING_TYPES(J.scalar_type(), "jacobian_spectrum_cuda", [&] {
    const int blocks = static_cast<int>((B + kThreads - 1) / kThreads);
    top_spectrum_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        G.data_ptr<double>(), evals.data_ptr<double>(), B, static_cast<int>(m), spectrum::degenerate_rtol<scalar_t>(),
        sigma1.data_ptr<scalar_t>(), sigma2.data_ptr<scalar_t>(), lam.data_ptr<scalar_t>(), flags.data_ptr<int32_t>(),
        scale.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // w = J^T u1 as [B, 1, n]; rows of a non-finite sample come out NaN (scale is NaN there too).
    const at::Tensor u1 = evecs.select(2, m - 1).unsqueeze(1);
    const at::Tensor w = at::bmm(u1, Jd).contiguous();
    const int64_t grid = B < (1 << 20) ? B : (1 << 20);
    finish_v1_kernel<scalar_t><<<static_cast<unsigned>(grid), kThreads, 0, stream>>>(
        w.data_ptr<double>(), scale.data_ptr<double>(), B, n, v1.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {sigma1, sigma2, lam, v1, flags};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CUDA, m) { m.impl("jacobian_spectrum", &jacobian_spectrum_cuda); }

}  // namespace pyadvt
