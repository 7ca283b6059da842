// Native tests of the Jacobi eigen-solver and the Jacobian-spectrum arithmetic
// (csrc/include/pyadvt/sym_eig.h, jacobian_spectrum.h), run under ASan/UBSan.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "pyadvt/jacobian_spectrum.h"
#include "pyadvt/sym_eig.h"

namespace eig = pyadvt::eig;
namespace sp = pyadvt::spectrum;

namespace {

struct Decomposition {
  std::vector<double> evals, evecs;
  int sweeps;
};

Decomposition decompose(const std::vector<double>& G, int k) {
  Decomposition d{std::vector<double>(k), std::vector<double>(k * k), 0};
  std::vector<double> work(2 * k * k);
  std::vector<int> order(k);
  d.sweeps = eig::sym_eig<double, double>(G.data(), k, k, d.evals.data(), d.evecs.data(), work.data(), order.data());
  return d;
}

std::vector<double> random_symmetric(std::mt19937& rng, int k) {
  std::normal_distribution<double> nd;
  std::vector<double> G(k * k);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j <= i; ++j) G[i * k + j] = G[j * k + i] = nd(rng);
  return G;
}

double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::fabs(v));
  return m;
}

// max_j ||G v_j - l_j v_j|| and max |V^T V - I|.
void residuals(const std::vector<double>& G, const Decomposition& d, int k, double* res, double* orth) {
  *res = 0;
  *orth = 0;
  for (int j = 0; j < k; ++j) {
    double r = 0;
    for (int i = 0; i < k; ++i) {
      double gv = 0;
      for (int l = 0; l < k; ++l) gv += G[i * k + l] * d.evecs[l * k + j];
      r += (gv - d.evals[j] * d.evecs[i * k + j]) * (gv - d.evals[j] * d.evecs[i * k + j]);
    }
    *res = std::max(*res, std::sqrt(r));
    for (int l = 0; l < k; ++l) {
      double dot = 0;
      for (int i = 0; i < k; ++i) dot += d.evecs[i * k + j] * d.evecs[i * k + l];
      *orth = std::max(*orth, std::fabs(dot - (j == l ? 1.0 : 0.0)));
    }
  }
}

void round_robin_covers_every_pair_once() {
  for (int k : {1, 2, 3, 7, 10, 64}) {
    const int K = eig::schedule_size(k);
    std::vector<int> seen(K * K, 0);
    bool disjoint = true;
    for (int s = 0; s < K - 1; ++s) {
      std::vector<int> used(K, 0);
      for (int j = 0; j < K / 2; ++j) {
        int p, q;
        eig::round_robin_pair(K, s, j, &p, &q);
        disjoint &= p < q && used[p] == 0 && used[q] == 0;
        used[p] = used[q] = 1;
        ++seen[p * K + q];
      }
    }
    bool once = true;
    for (int p = 0; p < K; ++p)
      for (int q = p + 1; q < K; ++q) once &= seen[p * K + q] == 1;
    CHECK(disjoint);
    CHECK(once);
  }
}

void random_matrices_are_diagonalised() {
  std::mt19937 rng(3);
  for (int k : {1, 2, 3, 5, 10, 17, 33, 64}) {
    for (int trial = 0; trial < 3; ++trial) {
      const auto G = random_symmetric(rng, k);
      const auto d = decompose(G, k);
      double res, orth;
      residuals(G, d, k, &res, &orth);
      const double scale = max_abs(G) * k;
      CHECK(res <= 1e-12 * scale);
      CHECK(orth <= 1e-12 * k);
      CHECK(std::is_sorted(d.evals.begin(), d.evals.end()));
      CHECK(d.sweeps < eig::kMaxSweeps);
      double trace = 0, sum = 0;
      for (int i = 0; i < k; ++i) trace += G[i * k + i], sum += d.evals[i];
      CHECK_CLOSE(sum, trace, 1e-12 * k);
    }
  }
}

void first_nonzero_component_positive() {
  std::mt19937 rng(4);
  const int k = 9;
  const auto d = decompose(random_symmetric(rng, k), k);
  bool ok = true;
  for (int j = 0; j < k; ++j) {
    int i = 0;
    while (i < k && d.evecs[i * k + j] == 0.0) ++i;
    ok &= i < k && d.evecs[i * k + j] > 0.0;
  }
  CHECK(ok);
}

void repeated_and_diagonal_cases() {
  // Diagonal input: no rotation, exact eigenvalues, permutation eigenvectors.
  const int k = 4;
  std::vector<double> D = {3, 0, 0, 0, 0, -1, 0, 0, 0, 0, 2, 0, 0, 0, 0, -1};
  const auto d = decompose(D, k);
  CHECK(d.evals[0] == -1 && d.evals[1] == -1 && d.evals[2] == 2 && d.evals[3] == 3);
  CHECK(d.evecs[1 * k + 0] == 1.0 && d.evecs[3 * k + 1] == 1.0);  // stable order of the tie
  CHECK(d.sweeps == 0);
  // Zero matrix and a rank-one matrix with a 3-fold zero eigenvalue.
  const auto z = decompose(std::vector<double>(k * k, 0.0), k);
  CHECK(max_abs(z.evals) == 0.0);
  std::vector<double> u = {1, 2, -2, 4}, R(k * k);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) R[i * k + j] = u[i] * u[j];
  const auto r = decompose(R, k);
  double res, orth;
  residuals(R, r, k, &res, &orth);
  CHECK(res <= 1e-13 * 25 && orth <= 1e-14 * 10);
  CHECK_CLOSE(r.evals[3], 25.0, 1e-14);
  CHECK(std::fabs(r.evals[0]) <= 1e-13 && std::fabs(r.evals[2]) <= 1e-13);
}

void graded_matrix_keeps_small_eigenvalues() {
  // diag(1e12, 1, 1e-12) mixed by a rotation of its first two coordinates.
  const double c = std::cos(0.3), s = std::sin(0.3);
  std::vector<double> G = {c * c * 1e12 + s * s, c * s * (1e12 - 1), 0, c * s * (1e12 - 1), s * s * 1e12 + c * c, 0,
                           0, 0, 1e-12};
  const auto d = decompose(G, 3);
  CHECK(d.evals[0] == 1e-12);
  CHECK_CLOSE(d.evals[2], 1e12, 1e-14);
}

void gram_and_right_vector() {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  const int m = 3;
  const int64_t n = 600, ld = 611;  // more than two chunks, padded rows
  std::vector<float> J(m * ld, 7.0f);
  for (int i = 0; i < m; ++i)
    for (int64_t c = 0; c < n; ++c) J[i * ld + c] = nd(rng);
  std::vector<double> G(m * m);
  sp::gram<float>(J.data(), m, n, ld, G.data());
  bool ok = true;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j) {
      double ref = 0;
      for (int64_t c = 0; c < n; ++c) ref += double(J[i * ld + c]) * double(J[j * ld + c]);
      ok &= std::fabs(G[i * m + j] - ref) <= 1e-12 * (1 + std::fabs(ref));
    }
  CHECK(ok);
  const double u[3] = {0.6, 0.0, -0.8};
  std::vector<float> v1(n);
  std::vector<double> buf(sp::kChunk);
  sp::right_vector<float>(J.data(), m, n, ld, u, 0.5, v1.data(), buf.data());
  double first = 0.6 * J[0] - 0.8 * J[2 * ld];
  const double sign = first < 0 ? -1.0 : 1.0;
  ok = v1[0] > 0;
  for (int64_t c = 0; c < n; ++c) {
    const double ref = sign * 0.5 * (0.6 * J[c] - 0.8 * J[2 * ld + c]);
    ok &= std::fabs(v1[c] - ref) <= 1e-6 * (1 + std::fabs(ref));
  }
  CHECK(ok);
  sp::right_vector<float>(J.data(), m, n, ld, u, 0.0, v1.data(), buf.data());
  CHECK(*std::max_element(v1.begin(), v1.end()) == 0.0f && *std::min_element(v1.begin(), v1.end()) == 0.0f);
}

void top_spectrum_flags() {
  const double tol = sp::degenerate_rtol<double>();
  auto t = sp::top_spectrum(9.0, 1.0, 10.0, true, 2, tol);
  CHECK(t.flags == 0 && t.sigma1 == 3.0 && t.sigma2 == 1.0 && t.lam == 1.0 / 3.0);
  t = sp::top_spectrum(0.0, 0.0, 0.0, true, 2, tol);
  CHECK(t.flags == (sp::kFlagZero | sp::kFlagRankLt2) && t.sigma1 == 0 && t.lam == 0 && t.inv_sigma1 == 0);
  t = sp::top_spectrum(4.0, 4.0, 8.0, true, 2, tol);
  CHECK(t.flags == sp::kFlagDegenerateTop && t.lam == 1.0);
  t = sp::top_spectrum(4.0, 1e-20, 4.0, true, 3, tol);
  CHECK(t.flags == sp::kFlagRankLt2 && t.sigma2 == 0 && t.lam == 0);
  t = sp::top_spectrum(4.0, -1e-15, 4.0, true, 1, tol);  // m == 1, tiny negative rounding
  CHECK(t.flags == sp::kFlagRankLt2 && t.sigma1 == 2.0);
  t = sp::top_spectrum(0.0, 0.0, 1.0, false, 2, tol);
  CHECK(t.flags == sp::kFlagNonFinite && std::isnan(t.sigma1) && std::isnan(t.inv_sigma1));
}

}  // namespace

int main() {
  round_robin_covers_every_pair_once();
  random_matrices_are_diagonalised();
  first_nonzero_component_positive();
  repeated_and_diagonal_cases();
  graded_matrix_keeps_small_eigenvalues();
  gram_and_right_vector();
  top_spectrum_flags();
  return native_test::finish();
}
