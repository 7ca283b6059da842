// Launcher of the batched Jacobi kernel (linalg/cuda/sym_eig_cuda.cu), shared by small_sym_eig
// and jacobian_spectrum.
#pragma once

#include <ATen/ATen.h>

namespace pyadvt {

// G: contiguous [B, k, k] float32/float64 on CUDA; writes evals [B, k] and evecs [B, k, k]
// (contiguous, dtype of the outputs may differ from G's: float32/float64) on the current stream.
void launch_sym_eig(const at::Tensor& G, at::Tensor& evals, at::Tensor& evecs);

}  // namespace pyadvt
