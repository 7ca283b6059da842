// Declarations shared by the CPU and CUDA implementations of lanczos_step_ (schema in lanczos.cpp).
#pragma once

#include <ATen/ATen.h>

namespace pyadvt {

// Q [B, K + 1, dim] and w [B, dim] float32/float64 (same dtype, contiguous), alpha/beta/y [B, K]
// and ritz [B, 4] float64 contiguous, status [B] int32 contiguous, active [B] bool; 0 <= j < K.
void validate_lanczos_step(const at::Tensor& Q, const at::Tensor& w, const at::Tensor& alpha, const at::Tensor& beta,
                           const at::Tensor& ritz, const at::Tensor& y, const at::Tensor& status,
                           const at::Tensor& active, int64_t j, int64_t npairs);

}  // namespace pyadvt
