// CPU implementations of the attack-update ops, parallel over samples (element formulas in
// pyadvt/attack_update.h); float32/float64 and float16/bfloat16 (computed in float32).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <type_traits>
#include <vector>

#include "attack_update/attack_update.h"
#include "pyadvt/attack_update.h"
#include "pyadvt/target_clones.h"

namespace pyadvt {
namespace {

// The per-sample loops are memory-bound: AVX-512/AVX2 clones of the float/double drivers are
// picked at load time (half/bfloat16 use the portable template).
PYADVT_TARGET_CLONES void variance_float(float* x, const float* g, float* v, const float* nb, const float* x0,
                                         float* m, int64_t n, float eps, float alpha, float mu) {
  au::variance_sample<float, float>(x, g, v, nb, x0, m, n, eps, alpha, mu);
}
PYADVT_TARGET_CLONES void variance_double(double* x, const double* g, double* v, const double* nb, const double* x0,
                                          double* m, int64_t n, double eps, double alpha, double mu) {
  au::variance_sample<double, double>(x, g, v, nb, x0, m, n, eps, alpha, mu);
}
PYADVT_TARGET_CLONES void patch_float(float* x, const float* g, const float* x0, float* a, int64_t C, int64_t H,
                                      int64_t W, const float* w, int64_t k, float eps, float step, float gamma,
                                      float* scratch) {
  au::patch_sample<float, float>(x, g, x0, a, C, H, W, w, k, eps, step, gamma, scratch);
}
PYADVT_TARGET_CLONES void patch_double(double* x, const double* g, const double* x0, double* a, int64_t C, int64_t H,
                                       int64_t W, const double* w, int64_t k, double eps, double step, double gamma,
                                       double* scratch) {
  au::patch_sample<double, double>(x, g, x0, a, C, H, W, w, k, eps, step, gamma, scratch);
}

template <typename T, typename A>
void variance_dispatch(T* x, const T* g, T* v, const T* nb, const T* x0, T* m, int64_t n, A eps, A alpha, A mu) {
  if constexpr (std::is_same<T, float>::value) {
    variance_float(x, g, v, nb, x0, m, n, eps, alpha, mu);
  } else if constexpr (std::is_same<T, double>::value) {
    variance_double(x, g, v, nb, x0, m, n, eps, alpha, mu);
  } else {
    au::variance_sample<T, A>(x, g, v, nb, x0, m, n, eps, alpha, mu);
  }
}

template <typename T, typename A>
void patch_dispatch(T* x, const T* g, const T* x0, T* a, int64_t C, int64_t H, int64_t W, const A* w, int64_t k,
                    A eps, A step, A gamma, A* scratch) {
  if constexpr (std::is_same<T, float>::value) {
    patch_float(x, g, x0, a, C, H, W, w, k, eps, step, gamma, scratch);
  } else if constexpr (std::is_same<T, double>::value) {
    patch_double(x, g, x0, a, C, H, W, w, k, eps, step, gamma, scratch);
  } else {
    au::patch_sample<T, A>(x, g, x0, a, C, H, W, w, k, eps, step, gamma, scratch);
  }
}

template <typename A>
at::ScalarType acc_scalar() {
  return std::is_same<A, double>::value ? at::kDouble : at::kFloat;
}

at::Tensor nesterov_point_cpu(const at::Tensor& x, const at::Tensor& momentum, const at::Tensor& alpha, double mu) {
  validate_nesterov_point(x, momentum, alpha);
  at::Tensor xc = x.contiguous(), mc = momentum.contiguous();
  at::Tensor out = at::empty_like(xc);
  const int64_t B = x.size(0), n = x.numel() / B;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "nesterov_point_cpu", [&] {
    using A = typename acc_type<scalar_t>::type;
    auto [a_t, as] = per_sample_values(alpha, acc_scalar<A>());
    const A* a = a_t.template data_ptr<A>();
    const scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* mp = mc.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const A mu_a = static_cast<A>(mu);
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b)
        au::nesterov_sample<scalar_t, A>(op + b * n, xp + b * n, mp + b * n, n, a[b * as] * mu_a);
    });
  });
  return out;
}

void variance_momentum_step_cpu(at::Tensor x, const at::Tensor& grad, at::Tensor variance, const at::Tensor& neighbours,
                                const at::Tensor& x_orig, const at::Tensor& eps, const at::Tensor& alpha,
                                at::Tensor momentum, double mu) {
  validate_variance_momentum_step(x, grad, variance, neighbours, x_orig, eps, alpha, momentum);
  const int64_t B = x.size(0), n = x.numel() / B;
  if (n == 0) return;
  at::Tensor xc = x.contiguous(), vc = variance.contiguous(), mc = momentum.contiguous();
  at::Tensor gc = grad.contiguous(), nc = neighbours.contiguous(), x0c = x_orig.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "variance_momentum_step_cpu", [&] {
    using A = typename acc_type<scalar_t>::type;
    auto [e_t, es] = per_sample_values(eps, acc_scalar<A>());
    auto [a_t, as] = per_sample_values(alpha, acc_scalar<A>());
    const A* e = e_t.template data_ptr<A>();
    const A* a = a_t.template data_ptr<A>();
    scalar_t *xp = xc.data_ptr<scalar_t>(), *vp = vc.data_ptr<scalar_t>(), *mp = mc.data_ptr<scalar_t>();
    const scalar_t *gp = gc.data_ptr<scalar_t>(), *np_ = nc.data_ptr<scalar_t>(), *x0p = x0c.data_ptr<scalar_t>();
    const A mu_a = static_cast<A>(mu);
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t o = b * n;
        variance_dispatch<scalar_t, A>(xp + o, gp + o, vp + o, np_ + o, x0p + o, mp + o, n, e[b * es], a[b * as],
                                       mu_a);
      }
    });
  });
  if (!xc.is_same(x)) x.copy_(xc);
  if (!vc.is_same(variance)) variance.copy_(vc);
  if (!mc.is_same(momentum)) momentum.copy_(mc);
}

void patch_step_cpu(at::Tensor x, const at::Tensor& grad, const at::Tensor& x_orig, at::Tensor amplification,
                    const at::Tensor& eps, const at::Tensor& alpha, double beta, const at::Tensor& gamma,
                    const at::Tensor& kernel) {
  validate_patch_step(x, grad, x_orig, amplification, eps, alpha, gamma, kernel);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), n = C * H * W;
  if (n == 0) return;
  at::Tensor xc = x.contiguous(), ac = amplification.contiguous();
  at::Tensor gc = grad.contiguous(), x0c = x_orig.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "patch_step_cpu", [&] {
    using A = typename acc_type<scalar_t>::type;
    auto [e_t, es] = per_sample_values(eps, acc_scalar<A>());
    auto [a_t, as] = per_sample_values(alpha, acc_scalar<A>());
    auto [g_t, gs] = per_sample_values(gamma, acc_scalar<A>());
    at::Tensor w_t = kernel.to(acc_scalar<A>()).contiguous();
    const A *e = e_t.template data_ptr<A>(), *al = a_t.template data_ptr<A>(), *ga = g_t.template data_ptr<A>();
    const A* w = w_t.template data_ptr<A>();
    const int64_t k = kernel.size(0);
    scalar_t *xp = xc.data_ptr<scalar_t>(), *ap = ac.data_ptr<scalar_t>();
    const scalar_t *gp = gc.data_ptr<scalar_t>(), *x0p = x0c.data_ptr<scalar_t>();
    const A beta_a = static_cast<A>(beta);
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      std::vector<A> scratch(static_cast<size_t>(au::patch_scratch_size(C, H, W, k)));
      for (int64_t b = begin; b < end; ++b) {
        const int64_t o = b * n;
        patch_dispatch<scalar_t, A>(xp + o, gp + o, x0p + o, ap + o, C, H, W, w, k, e[b * es], al[b * as] * beta_a,
                                    ga[b * gs], scratch.data());
      }
    });
  });
  if (!xc.is_same(x)) x.copy_(xc);
  if (!ac.is_same(amplification)) amplification.copy_(ac);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CPU, m) {
  m.impl("nesterov_point", &nesterov_point_cpu);
  m.impl("variance_momentum_step_", &variance_momentum_step_cpu);
  m.impl("patch_step_", &patch_step_cpu);
}

}  // namespace pyadvt
