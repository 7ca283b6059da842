// Argument checks shared by the torch-facing op implementations (CPU and CUDA).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <initializer_list>
#include <string>

namespace pyadvt {

inline void check_same_device(const at::Tensor& ref, const at::Tensor& t, const char* ref_name,
                              const char* name) {
  TORCH_CHECK(t.device() == ref.device(), "pyadvt: '", name, "' is on ", t.device(), " but '",
              ref_name, "' is on ", ref.device(), "; move them to the same device");
}

inline void check_like(const at::Tensor& ref, const at::Tensor& t, const char* ref_name,
                       const char* name) {
  check_same_device(ref, t, ref_name, name);
  TORCH_CHECK(t.sizes() == ref.sizes(), "pyadvt: '", name, "' has shape ", t.sizes(), " but '",
              ref_name, "' has shape ", ref.sizes());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), "pyadvt: '", name, "' has dtype ",
              t.scalar_type(), " but '", ref_name, "' has dtype ", ref.scalar_type());
}

// A per-sample parameter: 1-D floating tensor with 1 or B entries on x's device.
inline void check_per_sample(const at::Tensor& x, const at::Tensor& p, const char* name) {
  check_same_device(x, p, "x", name);
  TORCH_CHECK(p.dim() == 1 && (p.size(0) == 1 || p.size(0) == x.size(0)), "pyadvt: '", name,
              "' must be a 1-D tensor with 1 or B=", x.size(0), " entries, got shape ", p.sizes());
  TORCH_CHECK(at::isFloatingType(p.scalar_type()), "pyadvt: '", name,
              "' must be floating point, got ", p.scalar_type());
}

// Version-counter bump of the tensors an in-place op wrote (as torch's ADInplaceOrView kernels
// do), so autograd detects that saved values changed. A no-op on inference tensors in inference
// mode.
inline void bump_versions(std::initializer_list<const at::Tensor*> written) {
  for (const at::Tensor* t : written)
    if (t != nullptr && t->defined() && !t->is_inference()) t->unsafeGetTensorImpl()->bump_version();
}

}  // namespace pyadvt
