// Native tests of the PGD-step arithmetic (csrc/include/pyadvt/pgd_step.h), run under ASan/UBSan.
#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "pyadvt/pgd_step.h"

using pyadvt::pgd::Norm;

namespace {

std::vector<double> random_vec(std::mt19937& rng, int n, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (auto& e : v) e = d(rng);
  return v;
}

double l2(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s);
}

void linf_stays_in_ball_and_range() {
  std::mt19937 rng(1);
  const int n = 257;
  for (int trial = 0; trial < 20; ++trial) {
    auto x0 = random_vec(rng, n, 0.0, 1.0);
    auto x = x0;
    auto g = random_vec(rng, n, -1.0, 1.0);
    for (int step = 0; step < 10; ++step) pyadvt::pgd::step_sample<double>(x.data(), g.data(), x0.data(), nullptr, n, 0.03, 0.01, Norm::Linf, 0.0, 1.0, 1.0);
    bool ok = true;
    for (int i = 0; i < n; ++i) ok &= std::fabs(x[i] - x0[i]) <= 0.03 + 1e-12 && x[i] >= 0.0 && x[i] <= 1.0;
    CHECK(ok);
  }
}

void linf_range_matches_sample_driver() {
  std::mt19937 rng(2);
  const int B = 3, n = 50;
  auto x0 = random_vec(rng, B * n, 0.0, 1.0);
  auto g = random_vec(rng, B * n, -1.0, 1.0);
  auto xa = x0, xb = x0;
  const double eps[3] = {0.1, 0.2, 0.3}, alpha[3] = {0.05, 0.5, 0.01};
  pyadvt::pgd::linf_range<double>(xa.data(), g.data(), x0.data(), n, eps, 1, alpha, 1, 0.0, 1.0, 0, B * n);
  for (int b = 0; b < B; ++b)
    pyadvt::pgd::step_sample<double>(xb.data() + b * n, g.data() + b * n, x0.data() + b * n, nullptr, n, eps[b], alpha[b], Norm::Linf, 0.0, 1.0, 1.0);
  CHECK(xa == xb);
}

void l2_projection_and_zero_gradient() {
  std::mt19937 rng(3);
  const int n = 100;
  auto x0 = random_vec(rng, n, 0.2, 0.8);
  auto x = x0;
  auto g = random_vec(rng, n, -1.0, 1.0);
  for (int step = 0; step < 5; ++step) pyadvt::pgd::step_sample<double>(x.data(), g.data(), x0.data(), nullptr, n, 0.5, 0.3, Norm::L2, 0.0, 1.0, 1.0);
  CHECK(l2(x, x0) <= 0.5 + 1e-9);
  // one unconstrained step moves exactly alpha along g/||g||
  auto y = x0;
  pyadvt::pgd::step_sample<double>(y.data(), g.data(), x0.data(), nullptr, n, 10.0, 0.01, Norm::L2, -10.0, 10.0, 1.0);
  CHECK_CLOSE(l2(y, x0), 0.01, 1e-9);
  // zero gradient: no movement, no NaN
  std::vector<double> zero(n, 0.0), m(n, 0.0);
  auto z = x0;
  pyadvt::pgd::step_sample<double>(z.data(), zero.data(), x0.data(), m.data(), n, 0.5, 0.3, Norm::L2, 0.0, 1.0, 1.0);
  CHECK(z == x0);
  bool finite = true;
  for (double v : m) finite &= std::isfinite(v);
  CHECK(finite);
}

void momentum_normalises_by_mean_abs() {
  const int n = 4;
  std::vector<float> x0 = {0.5f, 0.5f, 0.5f, 0.5f}, x = x0, g = {2.f, -2.f, 4.f, 0.f}, m = {1.f, 0.f, 0.f, 0.f};
  pyadvt::pgd::step_sample<float>(x.data(), g.data(), x0.data(), m.data(), n, 0.1f, 0.05f, Norm::Linf, 0.f, 1.f, 0.5f);
  // mean |g| = 2 -> m = 0.5 * m + g / 2
  CHECK_CLOSE(m[0], 1.5, 1e-7);
  CHECK_CLOSE(m[1], -1.0, 1e-7);
  CHECK_CLOSE(m[2], 2.0, 1e-7);
  CHECK_CLOSE(m[3], 0.0, 1e-7);
  CHECK_CLOSE(x[0], 0.55, 1e-6);
  CHECK_CLOSE(x[3], 0.5, 1e-7);
}

}  // namespace

int main() {
  linf_stays_in_ball_and_range();
  linf_range_matches_sample_driver();
  l2_projection_and_zero_gradient();
  momentum_normalises_by_mean_abs();
  return native_test::finish();
}
