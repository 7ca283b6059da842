// Declarations shared by the CPU and CUDA implementations of small_sym_eig and jacobian_spectrum.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace pyadvt {

// G: [B, k, k] float32/float64 with 1 <= k <= 64.
void validate_small_sym_eig(const at::Tensor& G);

// J: [B, m, n] float32/float64 with 1 <= m <= 64 and n >= 1.
void validate_jacobian_spectrum(const at::Tensor& J);

// Validates J and allocates the outputs (sigma1 [B], sigma2 [B], lambda [B], v1 [B, n], flags [B] int32).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> new_jacobian_spectrum_outputs(
    const at::Tensor& J);

}  // namespace pyadvt
