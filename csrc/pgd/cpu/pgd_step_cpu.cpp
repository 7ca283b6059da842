// CPU implementation of pgd_step_: parallel over elements (L-inf, no momentum) or samples;
// float32/float64 and float16/bfloat16 (stored as such, computed in float32).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <type_traits>
#include <vector>

#include "pgd/pgd_step.h"
#include "pyadvt/torch_checks.h"
#include "pyadvt/target_clones.h"

namespace pyadvt {
namespace {

// The L-inf loop is the hot path: AVX-512/AVX2 clones of it are picked at load time.

PYADVT_TARGET_CLONES void linf_range_float(float* x, const float* g, const float* x0, int64_t n, const float* eps,
                                           int64_t es, const float* alpha, int64_t as, float lo, float hi,
                                           int64_t begin, int64_t end) {
  pgd::linf_range<float, float>(x, g, x0, n, eps, es, alpha, as, lo, hi, begin, end);
}

PYADVT_TARGET_CLONES void linf_range_double(double* x, const double* g, const double* x0, int64_t n,
                                            const double* eps, int64_t es, const double* alpha, int64_t as,
                                            double lo, double hi, int64_t begin, int64_t end) {
  pgd::linf_range<double, double>(x, g, x0, n, eps, es, alpha, as, lo, hi, begin, end);
}

// float16/bfloat16 are stored as such and computed in float32 (A = float).
template <typename T, typename A>
void linf_range_dispatch(T* x, const T* g, const T* x0, int64_t n, const A* eps, int64_t es, const A* alpha,
                         int64_t as, A lo, A hi, int64_t begin, int64_t end) {
  if constexpr (std::is_same<T, float>::value) {
    linf_range_float(x, g, x0, n, eps, es, alpha, as, lo, hi, begin, end);
  } else if constexpr (std::is_same<T, double>::value) {
    linf_range_double(x, g, x0, n, eps, es, alpha, as, lo, hi, begin, end);
  } else {
    pgd::linf_range<T, A>(x, g, x0, n, eps, es, alpha, as, lo, hi, begin, end);
  }
}

// eps/alpha as contiguous accumulation-type vectors plus a stride (0 = one shared value).
template <typename A>
std::pair<at::Tensor, int64_t> per_sample_values(const at::Tensor& p, at::ScalarType acc) {
  at::Tensor c = p.to(acc).contiguous();
  return {c, c.size(0) == 1 ? 0 : 1};
}

void pgd_step_cpu(at::Tensor x, const at::Tensor& grad, const at::Tensor& x_orig, const at::Tensor& eps,
                  const at::Tensor& alpha, c10::string_view norm_name, double lo, double hi,
                  const c10::optional<at::Tensor>& momentum, double mu) {
  const pgd::Norm norm = validate_pgd_step(x, grad, x_orig, eps, alpha, std::string(norm_name), lo, hi, momentum);
  bump_versions({&x, momentum.has_value() ? &*momentum : nullptr});
  const int64_t B = x.size(0);
  const int64_t n = B > 0 ? x.numel() / B : 0;
  if (n == 0) return;

  at::Tensor xc = x.is_contiguous() ? x : x.contiguous();
  at::Tensor gc = grad.contiguous();
  at::Tensor x0c = x_orig.contiguous();
  const bool has_m = momentum.has_value();
  at::Tensor mc = has_m ? (momentum->is_contiguous() ? *momentum : momentum->contiguous()) : at::Tensor();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "pgd_step_cpu", [&] {
    using A = typename acc_type<scalar_t>::type;
    const at::ScalarType acc = std::is_same<A, double>::value ? at::kDouble : at::kFloat;
    at::Tensor eps_t, alpha_t;
    int64_t eps_stride, alpha_stride;
    std::tie(eps_t, eps_stride) = per_sample_values<A>(eps, acc);
    std::tie(alpha_t, alpha_stride) = per_sample_values<A>(alpha, acc);
    const A* e = eps_t.template data_ptr<A>();
    const A* a = alpha_t.template data_ptr<A>();
    scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* gp = gc.data_ptr<scalar_t>();
    const scalar_t* x0p = x0c.data_ptr<scalar_t>();
    const A lo_a = static_cast<A>(lo), hi_a = static_cast<A>(hi), mu_a = static_cast<A>(mu);
    if (norm == pgd::Norm::Linf && !has_m) {
      // Purely element-wise: split the flat batch into cache-sized chunks.
      at::parallel_for(0, B * n, 32768, [&](int64_t begin, int64_t end) {
        linf_range_dispatch<scalar_t, A>(xp, gp, x0p, n, e, eps_stride, a, alpha_stride, lo_a, hi_a, begin, end);
      });
    } else {
      scalar_t* mp = has_m ? mc.data_ptr<scalar_t>() : nullptr;
      at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          pgd::step_sample<scalar_t, A>(xp + b * n, gp + b * n, x0p + b * n, mp ? mp + b * n : nullptr, n,
                                        e[b * eps_stride], a[b * alpha_stride], norm, lo_a, hi_a, mu_a);
        }
      });
    }
  });
  if (!xc.is_same(x)) x.copy_(xc);
  if (has_m && !mc.is_same(*momentum)) momentum->copy_(mc);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CPU, m) { m.impl("pgd_step_", &pgd_step_cpu); }

}  // namespace pyadvt
