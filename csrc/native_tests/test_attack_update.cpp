// Native tests of the transfer-suite update arithmetic (csrc/include/pyadvt/attack_update.h):
// nesterov_sample (NI look-ahead), variance_sample (VMI/VNI) and patch_sample (PI), each against a
// computation done by hand in the comments (docs/theory.md §10.1, §10.4, §10.5). Run under ASan/UBSan
// by ctest, so the scratch-buffer size and the padded stencil are also checked for out-of-bounds access.
#include <algorithm>
#include <cmath>
#include <vector>

#include "check.h"
#include "pyadvt/attack_update.h"

namespace au = pyadvt::au;

namespace {

bool all_close(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!native_test::close(a[i], b[i], tol)) return false;
  return true;
}

void element_helpers() {
  // pi_clip: min(max(v, x0 - eps), x0 + eps), then [0, 1]
  CHECK_CLOSE(au::pi_clip<double>(0.75, 0.5, 0.1), 0.6, 1e-15);
  CHECK_CLOSE(au::pi_clip<double>(0.2, 0.5, 0.1), 0.4, 1e-15);
  CHECK_CLOSE(au::pi_clip<double>(0.55, 0.5, 0.1), 0.55, 1e-15);
  CHECK(au::pi_clip<double>(1.3, 0.95, 0.2) == 1.0);   // ball allows 1.15, the image range does not
  CHECK(au::pi_clip<double>(-0.3, 0.05, 0.2) == 0.0);
  // cut noise: sign(a) max(|a| - eps, 0)
  CHECK_CLOSE(au::cut_noise<double>(0.5, 0.1), 0.4, 1e-15);
  CHECK_CLOSE(au::cut_noise<double>(-0.5, 0.1), -0.4, 1e-15);
  CHECK(au::cut_noise<double>(0.05, 0.1) == 0.0);
  CHECK(au::cut_noise<double>(-0.1, 0.1) == 0.0);
  CHECK(au::cut_noise<double>(0.0, 0.1) == 0.0);
}

void nesterov_by_hand() {
  // out = x + coef * m with coef = alpha * mu = 0.1
  const std::vector<double> x = {0.5, 0.2, 0.9, 0.0}, m = {1.0, -2.0, 0.5, 0.0};
  std::vector<double> out(4, -1.0);
  au::nesterov_sample<double>(out.data(), x.data(), m.data(), 4, 0.1);
  CHECK(all_close(out, {0.6, 0.0, 0.95, 0.0}, 1e-15));
  // float storage, float accumulation
  const std::vector<float> xf = {0.5f, 0.25f}, mf = {4.0f, -1.0f};
  std::vector<float> of(2);
  au::nesterov_sample<float>(of.data(), xf.data(), mf.data(), 2, 0.125f);
  CHECK(of[0] == 1.0f && of[1] == 0.125f);            // exact in binary
  // no clipping: the look-ahead may leave [0, 1] and the ball (it is only a gradient point)
  std::vector<double> o2(1);
  const double x2 = 0.95, m2 = 3.0;
  au::nesterov_sample<double>(o2.data(), &x2, &m2, 1, 0.1);
  CHECK_CLOSE(o2[0], 1.25, 1e-15);
}

void variance_by_hand() {
  // g + v = t = {2, -2, -1, 4}, mean|t| = 9/4 -> t / mean|t| = {8/9, -8/9, -4/9, 16/9}
  // mu = 1, m0 = {0.5, 0, 0, -1} -> m = {0.5 + 8/9, -8/9, -4/9, 7/9}
  // v <- nb - g = {0.5 - 1, 0.5 + 2, 0.5 - 0, 0.5 - 3}
  // x <- clip_{x0, 0.1}(x + 0.06 sign(m)), then [0, 1]:
  //   0.58 + 0.06 = 0.64 -> x0 + eps = 0.6;  0.55 - 0.06 = 0.49;  0.02 - 0.06 = -0.04 -> 0;  0.99 + 0.06 -> 1
  std::vector<double> x = {0.58, 0.55, 0.02, 0.99};
  const std::vector<double> x0 = {0.5, 0.5, 0.02, 0.99};
  const std::vector<double> g = {1.0, -2.0, 0.0, 3.0}, nb = {0.5, 0.5, 0.5, 0.5};
  std::vector<double> v = {1.0, 0.0, -1.0, 1.0}, m = {0.5, 0.0, 0.0, -1.0};
  au::variance_sample<double>(x.data(), g.data(), v.data(), nb.data(), x0.data(), m.data(), 4, 0.1, 0.06, 1.0);
  CHECK(all_close(m, {0.5 + 8.0 / 9.0, -8.0 / 9.0, -4.0 / 9.0, 7.0 / 9.0}, 1e-14));
  CHECK(all_close(v, {-0.5, 2.5, 0.5, -2.5}, 1e-15));
  CHECK(all_close(x, {0.6, 0.49, 0.0, 1.0}, 1e-14));

  // decay mu = 0.5 scales the old momentum only: t = {2, -2}, mean|t| = 2 -> m = 0.5 * {2, -2} + {1, -1}
  std::vector<double> x2 = {0.5, 0.5}, m2 = {2.0, -2.0}, v2 = {1.0, -1.0};
  const std::vector<double> g2 = {1.0, -1.0}, nb2 = {0.0, 0.0}, x02 = {0.5, 0.5};
  au::variance_sample<double>(x2.data(), g2.data(), v2.data(), nb2.data(), x02.data(), m2.data(), 2, 0.2, 0.05, 0.5);
  CHECK(all_close(m2, {2.0, -2.0}, 1e-15));
  CHECK(all_close(x2, {0.55, 0.45}, 1e-15));
  CHECK(all_close(v2, {-1.0, 1.0}, 1e-15));
}

void variance_zero_direction() {
  // g + v == 0 everywhere: the normalised term vanishes (no 0/0), m <- mu m, and x moves by sign(m)
  std::vector<double> x = {0.5, 0.5, 0.5}, m = {0.0, 1.0, -1.0}, v = {-1.0, 2.0, 0.0};
  const std::vector<double> g = {1.0, -2.0, 0.0}, nb = {1.0, 1.0, 1.0}, x0 = {0.5, 0.5, 0.5};
  au::variance_sample<double>(x.data(), g.data(), v.data(), nb.data(), x0.data(), m.data(), 3, 0.1, 0.03, 1.0);
  bool finite = true;
  for (double e : m) finite &= std::isfinite(e);
  CHECK(finite);
  CHECK(all_close(m, {0.0, 1.0, -1.0}, 0.0));
  CHECK(all_close(x, {0.5, 0.53, 0.47}, 1e-15));     // sign(0) = 0: the first element stays
  CHECK(all_close(v, {0.0, 3.0, 1.0}, 0.0));
}

void variance_float_storage() {
  // the float instantiation rounds t to float before |t| is summed, as the PyTorch reference does
  std::vector<float> x = {0.5f, 0.5f}, m = {0.0f, 0.0f}, v = {0.0f, 0.0f};
  const std::vector<float> g = {3.0f, -1.0f}, nb = {1.0f, 1.0f}, x0 = {0.5f, 0.5f};
  au::variance_sample<float>(x.data(), g.data(), v.data(), nb.data(), x0.data(), m.data(), 2, 0.25f, 0.125f, 1.0f);
  // mean|t| = 2 -> m = {1.5, -0.5}; x = 0.5 +- 0.125 (exact)
  CHECK(m[0] == 1.5f && m[1] == -0.5f);
  CHECK(x[0] == 0.625f && x[1] == 0.375f);
  CHECK(v[0] == -2.0f && v[1] == 2.0f);
}

// Independent evaluation of one PI step on [C, H, W] written as the equations read (no padded buffer):
// s = step sign(g); a1 = a + s; C = cut(a1); P[c,i,j] = gamma sign(sum_{u,q} w[u,q] C[c, i+u-r, j+q-r])
// (cross-correlation, zero outside); a <- a1 + P; x <- pi_clip(x + s + P).
void patch_formula(std::vector<double>& x, const std::vector<double>& g, const std::vector<double>& x0,
                   std::vector<double>& a, int C, int H, int W, const std::vector<double>& w, int k, double eps,
                   double step, double gamma) {
  const int r = k / 2, n = C * H * W;
  std::vector<double> s(n), cut(n), P(n);
  for (int i = 0; i < n; ++i) {
    s[i] = step * ((g[i] > 0) - (g[i] < 0));
    a[i] += s[i];
    cut[i] = (std::fabs(a[i]) > eps ? std::fabs(a[i]) - eps : 0.0) * ((a[i] > 0) - (a[i] < 0));
  }
  for (int c = 0; c < C; ++c)
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j) {
        double acc = 0.0;
        for (int u = 0; u < k; ++u)
          for (int q = 0; q < k; ++q) {
            const int ii = i + u - r, jj = j + q - r;
            if (ii >= 0 && ii < H && jj >= 0 && jj < W) acc += w[u * k + q] * cut[(c * H + ii) * W + jj];
          }
        P[(c * H + i) * W + j] = gamma * ((acc > 0) - (acc < 0));
      }
  for (int i = 0; i < n; ++i) {
    a[i] += P[i];
    const double v = std::min(std::max(x[i] + s[i] + P[i], x0[i] - eps), x0[i] + eps);
    x[i] = std::min(std::max(v, 0.0), 1.0);
  }
}

void patch_by_hand() {
  // 1 channel 3 x 3, gradient only at the centre, kernel: ones with a zero centre (PI's project kernel
  // shape), eps 0.3, step (alpha * beta) 0.5, gamma 0.2.
  // a = 0.5 at the centre -> cut noise 0.2 there, 0 elsewhere; the stencil sums to 0 at the centre (its
  // own weight is 0) and 0.2 > 0 at the 8 neighbours -> P = 0.2 at the neighbours, 0 at the centre.
  // a <- {0.2 ... 0.5 (centre) ... 0.2};  x = 0.5 + s + P: centre 1.0 -> x0 + eps = 0.8, neighbours 0.7.
  const int C = 1, H = 3, W = 3, k = 3;
  const std::vector<double> w = {1, 1, 1, 1, 0, 1, 1, 1, 1};
  std::vector<double> x(9, 0.5), a(9, 0.0);
  const std::vector<double> x0(9, 0.5);
  std::vector<double> g(9, 0.0);
  g[4] = 2.0;
  std::vector<double> scratch(au::patch_scratch_size(C, H, W, k));
  au::patch_sample<double>(x.data(), g.data(), x0.data(), a.data(), C, H, W, w.data(), k, 0.3, 0.5, 0.2,
                           scratch.data());
  CHECK(all_close(x, {0.7, 0.7, 0.7, 0.7, 0.8, 0.7, 0.7, 0.7, 0.7}, 1e-15));
  CHECK(all_close(a, {0.2, 0.2, 0.2, 0.2, 0.5, 0.2, 0.2, 0.2, 0.2}, 1e-15));
}

void patch_orientation_and_channels() {
  // A kernel with one non-zero weight w[0][0] (top-left) reads C[i - 1][j - 1]: cross-correlation, as
  // F.conv2d. Channel 0: negative gradient at (1, 1) -> a = -0.5, cut -0.4 -> P = -0.1 at (2, 2) only.
  // Channel 1: positive gradient at (2, 2) -> its shift (3, 3) is outside the 3 x 3 image: P = 0.
  // eps 0.1 step 0.5 gamma 0.1; x0 = 0.5, x = x0:
  //   ch0 (1,1): 0.5 - 0.5 -> x0 - eps = 0.4;  ch0 (2,2): 0.5 - 0.1 = 0.4;  ch1 (2,2): 1.0 -> 0.6.
  const int C = 2, H = 3, W = 3, k = 3;
  std::vector<double> w(9, 0.0);
  w[0] = 0.25;
  std::vector<double> x(18, 0.5), a(18, 0.0), g(18, 0.0);
  const std::vector<double> x0(18, 0.5);
  g[1 * W + 1] = -1.0;
  g[H * W + 2 * W + 2] = 3.0;
  std::vector<double> scratch(au::patch_scratch_size(C, H, W, k));
  au::patch_sample<double>(x.data(), g.data(), x0.data(), a.data(), C, H, W, w.data(), k, 0.1, 0.5, 0.1,
                           scratch.data());
  std::vector<double> xe(18, 0.5), ae(18, 0.0);
  xe[4] = 0.4;
  xe[8] = 0.4;
  xe[17] = 0.6;
  ae[4] = -0.5;
  ae[8] = -0.1;
  ae[17] = 0.5;
  CHECK(all_close(x, xe, 1e-15));
  CHECK(all_close(a, ae, 1e-15));
}

void patch_matches_formula_over_steps() {
  // 3 channels 5 x 4, 5 x 5 kernel, 6 steps with varying gradients: the driver equals the equations
  // evaluated directly (patch_formula), including the accumulation in a and the clipping.
  const int C = 3, H = 5, W = 4, k = 5, n = C * H * W;
  std::vector<double> w(k * k);
  for (int i = 0; i < k * k; ++i) w[i] = std::sin(1.0 + 0.7 * i);  // signed, asymmetric
  std::vector<double> x0(n);
  for (int i = 0; i < n; ++i) x0[i] = 0.5 + 0.45 * std::sin(0.37 * i);
  std::vector<double> x = x0, a(n, 0.0), xr = x0, ar(n, 0.0), g(n);
  std::vector<double> scratch(au::patch_scratch_size(C, H, W, k));
  for (int t = 0; t < 6; ++t) {
    for (int i = 0; i < n; ++i) g[i] = (i * 7 + t * 3) % 5 == 0 ? 0.0 : std::cos(0.9 * i + 1.3 * t);
    au::patch_sample<double>(x.data(), g.data(), x0.data(), a.data(), C, H, W, w.data(), k, 0.06, 0.05, 0.04,
                             scratch.data());
    patch_formula(xr, g, x0, ar, C, H, W, w, k, 0.06, 0.05, 0.04);
  }
  CHECK(all_close(x, xr, 1e-12));
  CHECK(all_close(a, ar, 1e-12));
  bool inside = true;
  for (int i = 0; i < n; ++i) inside &= std::fabs(x[i] - x0[i]) <= 0.06 + 1e-12 && x[i] >= 0.0 && x[i] <= 1.0;
  CHECK(inside);
}

void patch_float_matches_double() {
  // float storage: same result as the double driver up to float rounding, on a 1 x 1 kernel edge case too
  const int C = 1, H = 4, W = 4, n = 16;
  for (int k : {1, 3}) {
    std::vector<float> wf(k * k, 1.0f), xf(n), x0f(n), af(n, 0.0f), gf(n);
    std::vector<double> wd(k * k, 1.0), xd(n), x0d(n), ad(n, 0.0), gd(n);
    for (int i = 0; i < n; ++i) {
      x0f[i] = xf[i] = static_cast<float>(0.25 + 0.03125 * i);
      x0d[i] = xd[i] = x0f[i];
      gf[i] = static_cast<float>(i % 3) - 1.0f;
      gd[i] = gf[i];
    }
    std::vector<float> sf(au::patch_scratch_size(C, H, W, k));
    std::vector<double> sd(au::patch_scratch_size(C, H, W, k));
    au::patch_sample<float>(xf.data(), gf.data(), x0f.data(), af.data(), C, H, W, wf.data(), k, 0.125f, 0.25f,
                            0.0625f, sf.data());
    au::patch_sample<double>(xd.data(), gd.data(), x0d.data(), ad.data(), C, H, W, wd.data(), k, 0.125, 0.25,
                             0.0625, sd.data());
    bool ok = true;
    for (int i = 0; i < n; ++i) ok &= std::fabs(xf[i] - xd[i]) <= 1e-6 && std::fabs(af[i] - ad[i]) <= 1e-6;
    CHECK(ok);
  }
}

}  // namespace

int main() {
  element_helpers();
  nesterov_by_hand();
  variance_by_hand();
  variance_zero_direction();
  variance_float_storage();
  patch_by_hand();
  patch_orientation_and_channels();
  patch_matches_formula_over_steps();
  patch_float_matches_double();
  return native_test::finish();
}
