// CPU implementations of the attack-update ops, parallel over samples (element formulas in
// pyadvt/attack_update.h); float32/float64 and float16/bfloat16 (computed in float32).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <type_traits>
#include <vector>

#include "attack_update/attack_update.h"
#include "pyadvt/attack_update.h"

namespace pyadvt {
namespace {

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
        au::variance_sample<scalar_t, A>(xp + o, gp + o, vp + o, np_ + o, x0p + o, mp + o, n, e[b * es], a[b * as],
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
      std::vector<A> scratch(static_cast<size_t>(n));
      for (int64_t b = begin; b < end; ++b) {
        const int64_t o = b * n;
        au::patch_sample<scalar_t, A>(xp + o, gp + o, x0p + o, ap + o, C, H, W, w, k, e[b * es], al[b * as] * beta_a,
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
