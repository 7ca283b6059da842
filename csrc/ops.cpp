// The pyadvt operator library: every schema of torch.ops.pyadvt.* is declared here, so this file
// is the one list of the kernels' public surface. Backends register implementations with
// TORCH_LIBRARY_IMPL(pyadvt, CPU|CUDA, m) in csrc/<family>/{cpu,cuda}/.
//
// The Python module pyadvt._C only carries build information; ops are reached through the
// dispatcher (torch.ops.pyadvt.<name>), never through pybind11 functions.
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/extension.h>
#include <torch/library.h>

#include <string>

#ifndef PYADVT_BUILD_FLAGS
#define PYADVT_BUILD_FLAGS ""
#endif
#ifndef PYADVT_CUDA_ARCH
#define PYADVT_CUDA_ARCH ""
#endif

TORCH_LIBRARY(pyadvt, m) {
  // Fused in-place PGD update (csrc/pgd). eps/alpha: float tensors of shape [B] or [1].
  m.def(
      "pgd_step_(Tensor(a!) x, Tensor grad, Tensor x_orig, Tensor eps, Tensor alpha, str norm, "
      "float lo, float hi, Tensor(b!)? momentum, float mu) -> ()");
  // Batched symmetric eigen-decomposition of [B, k, k] (csrc/linalg): ascending eigenvalues
  // [B, k] and eigenvectors as columns [B, k, k].
  m.def("small_sym_eig(Tensor G) -> (Tensor, Tensor)");
  // From Jacobians [B, m, n]: sigma1 [B], sigma2 [B], lambda [B], v1 [B, n], flags [B] (int32).
  m.def("jacobian_spectrum(Tensor J) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
  // One power-iteration bookkeeping pass (csrc/hessian): v [B, n] unit vectors, hv = H v,
  // eig [B] previous Rayleigh quotients, active [B] bool; tol relative.
  m.def(
      "power_iteration_update_(Tensor(a!) v, Tensor hv, Tensor(b!) eig, Tensor(c!) active, "
      "float tol) -> ()");
}

// The mutating ops behave as torch's own in-place ops: with grad mode on, a leaf that requires
// grad is refused ("a leaf Variable that requires grad is being used in an in-place operation")
// and a mutated tensor that is part of a graph makes a later backward through it fail (torch's
// autograd fallback); the backend kernels bump the version counter of every written argument
// (bump_versions, pyadvt/torch_checks.h), so a backward that saved one raises instead of
// silently using the new values. (The fallback redispatches below ADInplaceOrView and bumps only
// mutated returns; these ops return ().)
TORCH_LIBRARY_IMPL(pyadvt, Autograd, m) {
  m.impl("pgd_step_", torch::autograd::autogradNotImplementedFallback());
  m.impl("power_iteration_update_", torch::autograd::autogradNotImplementedFallback());
}
namespace {

std::string compiled_backends() {
#ifdef PYADVT_WITH_CUDA
  return "cpu,cuda";
#else
  return "cpu";
#endif
}

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return "gcc " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
         std::to_string(__GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.doc() = "pyadvt C++/CUDA kernels (ops registered as torch.ops.pyadvt.*)";
  module.def("compiled_backends", &compiled_backends, "Comma-separated backends compiled in.");
  module.def("compiler", &compiler, "Host compiler that built the extension.");
  module.def("build_flags", []() { return std::string(PYADVT_BUILD_FLAGS); });
  module.def("cuda_arch", []() { return std::string(PYADVT_CUDA_ARCH); });
  module.def("torch_version", []() { return std::string(TORCH_VERSION); });
}
