// Declarations shared by the CPU and CUDA implementations of power_iteration_update_.
#pragma once

#include <ATen/ATen.h>

namespace pyadvt {

// v, hv: [B, n] float32/float64 alike; eig: [B] of v's dtype; active: [B] bool; tol >= 0.
void validate_power_iteration_update(const at::Tensor& v, const at::Tensor& hv, const at::Tensor& eig,
                                     const at::Tensor& active, double tol);

}  // namespace pyadvt
