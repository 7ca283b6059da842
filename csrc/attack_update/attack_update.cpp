// Schemas and validation of the transfer-suite update ops (docs/theory.md §10): a library fragment
// of the pyadvt namespace, so this family is self-contained (csrc/ops.cpp declares the others).
// Backends register with TORCH_LIBRARY_IMPL(pyadvt, CPU|CUDA, m) in cpu/ and cuda/.
#include "attack_update/attack_update.h"

#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include <vector>

#include "pyadvt/torch_checks.h"

namespace pyadvt {

namespace {

void check_floating(const at::Tensor& x) {
  TORCH_CHECK(x.dim() >= 1 && x.size(0) > 0, "pyadvt: 'x' must have a non-empty batch dimension, got shape ",
              x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "pyadvt: 'x' must be floating point, got ", x.scalar_type());
}

// ADInplaceOrView kernel: run the op below this key, then bump the version counter of every argument
// the schema marks as written (the ops return (), so torch's fallback would bump nothing).
void bump_written_arguments(const c10::OperatorHandle& op, c10::DispatchKeySet keys, torch::jit::Stack* stack) {
  const auto& args = op.schema().arguments();
  const size_t n = args.size(), first = stack->size() - n;
  std::vector<at::Tensor> written;
  for (size_t i = 0; i < n; ++i) {
    const auto* alias = args[i].alias_info();
    const c10::IValue& value = (*stack)[first + i];
    if (alias != nullptr && alias->isWrite() && value.isTensor()) written.push_back(value.toTensor());
  }
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    op.redispatchBoxed(keys & c10::after_ADInplaceOrView_keyset, stack);
  }
  for (const at::Tensor& t : written) t.unsafeGetTensorImpl()->bump_version();
}

}  // namespace

void validate_nesterov_point(const at::Tensor& x, const at::Tensor& momentum, const at::Tensor& alpha) {
  check_floating(x);
  check_like(x, momentum, "x", "momentum");
  check_per_sample(x, alpha, "alpha");
}

void validate_variance_momentum_step(const at::Tensor& x, const at::Tensor& grad, const at::Tensor& variance,
                                     const at::Tensor& neighbours, const at::Tensor& x_orig, const at::Tensor& eps,
                                     const at::Tensor& alpha, const at::Tensor& momentum) {
  check_floating(x);
  check_like(x, grad, "x", "grad");
  check_like(x, variance, "x", "variance");
  check_like(x, neighbours, "x", "neighbours");
  check_like(x, x_orig, "x", "x_orig");
  check_like(x, momentum, "x", "momentum");
  check_per_sample(x, eps, "eps");
  check_per_sample(x, alpha, "alpha");
}

void validate_patch_step(const at::Tensor& x, const at::Tensor& grad, const at::Tensor& x_orig,
                         const at::Tensor& amplification, const at::Tensor& eps, const at::Tensor& alpha,
                         const at::Tensor& gamma, const at::Tensor& kernel) {
  check_floating(x);
  TORCH_CHECK(x.dim() == 4, "pyadvt: patch_step_ needs images [B, C, H, W], got shape ", x.sizes());
  check_like(x, grad, "x", "grad");
  check_like(x, x_orig, "x", "x_orig");
  check_like(x, amplification, "x", "amplification");
  check_per_sample(x, eps, "eps");
  check_per_sample(x, alpha, "alpha");
  check_per_sample(x, gamma, "gamma");
  check_same_device(x, kernel, "x", "kernel");
  TORCH_CHECK(kernel.dim() == 2 && kernel.size(0) == kernel.size(1) && kernel.size(0) % 2 == 1,
              "pyadvt: 'kernel' must be a square [k, k] tensor with k odd, got shape ", kernel.sizes());
}

}  // namespace pyadvt

TORCH_LIBRARY_FRAGMENT(pyadvt, m) {
  // NI-FGSM look-ahead: x + alpha * mu * momentum (alpha [B] or [1]); a new tensor.
  m.def("nesterov_point(Tensor x, Tensor momentum, Tensor alpha, float mu) -> Tensor");
  // VMI/VNI update in place on x, variance and momentum (eps/alpha [B] or [1]).
  m.def(
      "variance_momentum_step_(Tensor(a!) x, Tensor grad, Tensor(b!) variance, Tensor neighbours, "
      "Tensor x_orig, Tensor eps, Tensor alpha, Tensor(c!) momentum, float mu) -> ()");
  // PI-FGSM step in place on x and amplification; kernel [k, k] (project kernel).
  m.def(
      "patch_step_(Tensor(a!) x, Tensor grad, Tensor x_orig, Tensor(b!) amplification, Tensor eps, Tensor alpha, "
      "float beta, Tensor gamma, Tensor kernel) -> ()");
}

TORCH_LIBRARY_IMPL(pyadvt, Autograd, m) {
  m.impl("nesterov_point", torch::autograd::autogradNotImplementedFallback());
  m.impl("variance_momentum_step_", torch::autograd::autogradNotImplementedFallback());
  m.impl("patch_step_", torch::autograd::autogradNotImplementedFallback());
}

TORCH_LIBRARY_IMPL(pyadvt, ADInplaceOrView, m) {
  m.impl("variance_momentum_step_", torch::CppFunction::makeFromBoxedFunction<&pyadvt::bump_written_arguments>());
  m.impl("patch_step_", torch::CppFunction::makeFromBoxedFunction<&pyadvt::bump_written_arguments>());
}
