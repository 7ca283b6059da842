// Declarations shared by the CPU and CUDA implementations of pgd_step_.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "pyadvt/pgd_step.h"

namespace pyadvt {

// Checks every argument (shape, dtype, device, norm name) and returns the parsed norm.
pgd::Norm validate_pgd_step(const at::Tensor& x, const at::Tensor& grad, const at::Tensor& x_orig,
                            const at::Tensor& eps, const at::Tensor& alpha, const std::string& norm,
                            double lo, double hi, const c10::optional<at::Tensor>& momentum);

}  // namespace pyadvt
