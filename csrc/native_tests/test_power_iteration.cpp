// Native tests of the power-iteration bookkeeping (csrc/include/pyadvt/power_iteration.h).
#include <cmath>
#include <limits>
#include <vector>

#include "check.h"
#include "pyadvt/power_iteration.h"

namespace pw = pyadvt::power;

namespace {

// H = diag(d): hv = d * v.
std::vector<double> apply(const std::vector<double>& d, const std::vector<double>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = d[i] * v[i];
  return out;
}

void converges_to_top_eigenvalue() {
  const std::vector<double> d = {5.0, 2.0, -1.0, 0.5, 4.0};
  std::vector<double> v(d.size(), 1.0 / std::sqrt(5.0));
  double eig = std::numeric_limits<double>::quiet_NaN();
  bool active = true;
  int iters = 0;
  while (active && iters < 500) {
    const auto hv = apply(d, v);
    pw::update_row<double>(v.data(), hv.data(), 5, &eig, &active, 1e-10);
    ++iters;
  }
  CHECK(!active);
  CHECK_CLOSE(eig, 5.0, 1e-8);
  double nrm = 0;
  for (double x : v) nrm += x * x;
  CHECK_CLOSE(nrm, 1.0, 1e-12);
  CHECK(std::fabs(v[0]) > 0.999);
}

void first_call_never_converges_and_sets_values() {
  std::vector<float> v = {0.6f, 0.8f}, hv = {1.8f, 0.8f};  // H = diag(3, 1)
  float eig = std::numeric_limits<float>::quiet_NaN();
  bool active = true;
  pw::update_row<float>(v.data(), hv.data(), 2, &eig, &active, 1.0);
  CHECK(active);  // NaN previous value
  CHECK_CLOSE(eig, 0.6 * 1.8 + 0.8 * 0.8, 1e-6);
  const double nrm = std::sqrt(1.8 * 1.8 + 0.8 * 0.8);
  CHECK_CLOSE(v[0], 1.8 / nrm, 1e-6);
  CHECK_CLOSE(v[1], 0.8 / nrm, 1e-6);
}

void tolerance_boundary_and_inactive_rows() {
  std::vector<double> v = {1.0, 0.0}, hv = {2.0, 0.0};
  double eig = 2.0 * (1 + 1e-6);
  bool active = true;
  pw::update_row<double>(v.data(), hv.data(), 2, &eig, &active, 1e-6 * 1.01);
  CHECK(!active && eig == 2.0);
  v = {1.0, 0.0};
  eig = 2.0 * (1 + 1e-6);
  active = true;
  pw::update_row<double>(v.data(), hv.data(), 2, &eig, &active, 1e-6 * 0.99);
  CHECK(active);
  // Inactive rows are untouched.
  std::vector<double> v2 = {0.3, 0.4};
  double eig2 = 7.0;
  bool inactive = false;
  pw::update_row<double>(v2.data(), hv.data(), 2, &eig2, &inactive, 1e-6);
  CHECK(v2[0] == 0.3 && v2[1] == 0.4 && eig2 == 7.0 && !inactive);
}

void zero_hv_keeps_v() {
  std::vector<double> v = {0.6, 0.8}, hv = {0.0, 0.0};
  double eig = std::numeric_limits<double>::quiet_NaN();
  bool active = true;
  pw::update_row<double>(v.data(), hv.data(), 2, &eig, &active, 1e-4);
  CHECK(v[0] == 0.6 && v[1] == 0.8 && eig == 0.0 && active);
  pw::update_row<double>(v.data(), hv.data(), 2, &eig, &active, 1e-4);  // |0 - 0| <= 0
  CHECK(!active);
  CHECK(pw::inverse_norm(0.0) == 0.0 && pw::inverse_norm(4.0) == 0.5);
}

void odd_length_sums() {
  std::vector<double> v = {1, 2, 3}, hv = {4, 5, 6};
  double dot, sq;
  pw::row_sums<double>(v.data(), hv.data(), 3, &dot, &sq);
  CHECK(dot == 32.0 && sq == 77.0);
}

}  // namespace

// Rows far outside the range where ||hv||^2 survives in double (1e+-200, subnormal): v still
// becomes the unit vector hv / ||hv|| (it used to stay unchanged: the squares over/underflowed).
void extreme_magnitudes_normalise() {
  const std::vector<double> base = {3.0, -4.0, 0.0, 12.0};  // norm 13
  for (int e : {-1060, -900, -500, 500, 900, 1015}) {
    std::vector<double> hv(base.size()), v(base.size(), 0.5);
    for (size_t i = 0; i < base.size(); ++i) hv[i] = std::ldexp(base[i], e);
    double eig = std::numeric_limits<double>::quiet_NaN();
    bool active = true;
    pw::update_row<double>(v.data(), hv.data(), 4, &eig, &active, 1e-6);
    bool ok = true;
    for (size_t i = 0; i < base.size(); ++i) ok &= std::fabs(v[i] - base[i] / 13.0) <= 1e-15;
    CHECK(ok);
    const double rayleigh = std::ldexp(0.5 * (3.0 - 4.0 + 12.0), e);  // <v, hv> with v = 0.5 (1, 1, 1, 1)
    CHECK(std::fabs(eig - rayleigh) <= 1e-15 * std::fabs(rayleigh));
  }
  // An Inf entry keeps v (its Rayleigh quotient is not finite).
  std::vector<double> hv = {1.0, INFINITY}, v = {0.6, 0.8};
  double eig = 1.0;
  bool active = true;
  pw::update_row<double>(v.data(), hv.data(), 2, &eig, &active, 1e-6);
  CHECK(v[0] == 0.6 && v[1] == 0.8 && std::isinf(eig));
}

int main() {
  extreme_magnitudes_normalise();
  converges_to_top_eigenvalue();
  first_call_never_converges_and_sets_values();
  tolerance_boundary_and_inactive_rows();
  zero_hv_keeps_v();
  odd_length_sums();
  return native_test::finish();
}
