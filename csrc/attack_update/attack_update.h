// Validation shared by the CPU and CUDA implementations of the attack-update ops.
#pragma once

#include <ATen/ATen.h>

namespace pyadvt {

void validate_nesterov_point(const at::Tensor& x, const at::Tensor& momentum, const at::Tensor& alpha);
void validate_variance_momentum_step(const at::Tensor& x, const at::Tensor& grad, const at::Tensor& variance,
                                     const at::Tensor& neighbours, const at::Tensor& x_orig, const at::Tensor& eps,
                                     const at::Tensor& alpha, const at::Tensor& momentum);
void validate_patch_step(const at::Tensor& x, const at::Tensor& grad, const at::Tensor& x_orig,
                         const at::Tensor& amplification, const at::Tensor& eps, const at::Tensor& alpha,
                         const at::Tensor& gamma, const at::Tensor& kernel);

// eps/alpha/gamma as contiguous accumulation-type vectors and their stride (0: one shared value).
inline std::pair<at::Tensor, int64_t> per_sample_values(const at::Tensor& p, at::ScalarType acc) {
  at::Tensor c = p.to(acc).contiguous();
  return {c, c.size(0) == 1 ? 0 : 1};
}

}  // namespace pyadvt
