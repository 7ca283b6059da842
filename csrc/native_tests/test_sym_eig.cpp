// Native tests of the two small symmetric eigen-solvers - the cyclic Jacobi of the CUDA kernel
// (serial driver) and the tridiagonal QL of the CPU kernels - and of the Jacobian-spectrum
// arithmetic (csrc/include/pyadvt/sym_eig.h, sym_tridiag.h, jacobian_spectrum.h), run under ASan/UBSan.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "pyadvt/jacobian_spectrum.h"
#include "pyadvt/sym_eig.h"
#include "pyadvt/sym_tridiag.h"

namespace eig = pyadvt::eig;
namespace sp = pyadvt::spectrum;

namespace {

enum class Solver { kJacobi, kTridiagonal };
constexpr Solver kSolvers[] = {Solver::kJacobi, Solver::kTridiagonal};

struct Decomposition {
  std::vector<double> evals, evecs;
  int sweeps;      // Jacobi sweeps (0 for the tridiagonal solver)
  bool converged;  // Jacobi: fewer than kMaxSweeps sweeps; QL: every eigenvalue deflated
};

Decomposition decompose(const std::vector<double>& G, int k, Solver solver) {
  Decomposition d{std::vector<double>(k), std::vector<double>(k * k), 0, true};
  std::vector<int> order(k);
  if (solver == Solver::kJacobi) {
    std::vector<double> work(2 * k * k);
    d.sweeps = eig::sym_eig<double, double>(G.data(), k, k, d.evals.data(), d.evecs.data(), work.data(), order.data());
    d.converged = d.sweeps < eig::kMaxSweeps;
  } else {
    std::vector<double> work(eig::tridiagonal_eig_work(k));
    d.converged = eig::tridiagonal_eig<double, double>(G.data(), k, k, d.evals.data(), d.evecs.data(), work.data(),
                                                       order.data());
  }
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

void random_matrices_are_diagonalised(Solver solver) {
  std::mt19937 rng(3);
  for (int k : {1, 2, 3, 5, 10, 17, 33, 64}) {
    for (int trial = 0; trial < 3; ++trial) {
      const auto G = random_symmetric(rng, k);
      const auto d = decompose(G, k, solver);
      double res, orth;
      residuals(G, d, k, &res, &orth);
      const double scale = max_abs(G) * k;
      CHECK(res <= 1e-12 * scale);
      CHECK(orth <= 1e-12 * k);
      CHECK(std::is_sorted(d.evals.begin(), d.evals.end()));
      CHECK(d.converged);
      double trace = 0, sum = 0;
      for (int i = 0; i < k; ++i) trace += G[i * k + i], sum += d.evals[i];
      CHECK_CLOSE(sum, trace, 1e-12 * k);
    }
  }
}

// The sign rule written out independently: the first component within the tie window of the
// largest magnitude is positive.
bool follows_sign_rule(const double* x, int n, int stride) {
  double mx = 0;
  for (int i = 0; i < n; ++i) mx = std::max(mx, std::fabs(x[i * stride]));
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i * stride]) >= (1.0 - 1e-8) * mx) return x[i * stride] > 0.0;
  return false;
}

void largest_component_positive(Solver solver) {
  std::mt19937 rng(4);
  const int k = 9;
  const auto d = decompose(random_symmetric(rng, k), k, solver);
  bool ok = true;
  for (int j = 0; j < k; ++j) ok &= follows_sign_rule(d.evecs.data() + j, k, k);
  CHECK(ok);
  // Tie within rounding: (1, -1) / sqrt(2) and (1, 1) / sqrt(2); the first component decides.
  const std::vector<double> T = {2, 1, 1, 2};
  const auto t = decompose(T, 2, solver);
  CHECK(t.evecs[0 * 2 + 0] > 0 && t.evecs[1 * 2 + 0] < 0);  // eigenvalue 1: (+, -)
  CHECK(t.evecs[0 * 2 + 1] > 0 && t.evecs[1 * 2 + 1] > 0);  // eigenvalue 3: (+, +)
}

// Block-structured matrices: Jacobi leaves structural zeros exactly 0, QL leaves +-1e-16 there.
// With the first-nonzero rule 26 of 100 such matrices got opposite signs from the two solvers;
// with the shared rule every eigenvector agrees (eigenvalues well separated).
void solvers_agree_on_signs_of_block_matrices() {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> size(2, 12);
  int disagree = 0;
  for (int trial = 0; trial < 100; ++trial) {
    const int k = size(rng) + 2, split = k / 2;
    auto G = random_symmetric(rng, k);
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < k; ++j)
        if ((i < split) != (j < split)) G[i * k + j] = 0.0;
    const auto a = decompose(G, k, Solver::kJacobi);
    const auto b = decompose(G, k, Solver::kTridiagonal);
    for (int j = 0; j < k; ++j) {
      const double gap = std::min(j > 0 ? a.evals[j] - a.evals[j - 1] : 1e300, j + 1 < k ? a.evals[j + 1] - a.evals[j] : 1e300);
      if (gap < 1e-6) continue;
      double dot = 0;
      for (int i = 0; i < k; ++i) dot += a.evecs[i * k + j] * b.evecs[i * k + j];
      disagree += dot < 0.5;
    }
  }
  CHECK(disagree == 0);
}

// Power-of-two scaling: a matrix times 2^e (|e| up to ~1000, incl. entries near the double maximum
// and subnormal ones) gives exactly 2^e times the eigenvalues and the same eigenvectors.
void scaled_inputs_over_the_whole_range(Solver solver) {
  std::mt19937 rng(12);
  const int k = 7;
  const auto G = random_symmetric(rng, k);
  const auto ref = decompose(G, k, solver);
  for (int e : {-1040, -1000, -700, -500, -300, 300, 500, 700, 1000, 1020}) {
    std::vector<double> S(G.size());
    for (size_t i = 0; i < G.size(); ++i) S[i] = std::ldexp(G[i], e);
    const auto d = decompose(S, k, solver);
    bool ok = true;
    for (int j = 0; j < k; ++j) {
      const double expect = std::ldexp(ref.evals[j], e);
      // subnormal inputs (e = -1040, ~34 bits left) have lost bits on entry: relative check there
      ok &= e > -1020 ? d.evals[j] == expect : std::fabs(d.evals[j] - expect) <= 1e-8 * std::ldexp(max_abs(ref.evals), e);
    }
    for (int i = 0; i < k * k; ++i) ok &= e > -1020 ? d.evecs[i] == ref.evecs[i] : std::fabs(d.evecs[i] - ref.evecs[i]) < 1e-6;
    if (!ok) std::printf("scaled by 2^%d: not exact\n", e);
    CHECK(ok);
  }
  // Entries near the double maximum: symmetric part and squares must not overflow.
  std::vector<double> H = {1.5e308, -1.0e308, -1.0e308, 1.5e308};
  const auto h = decompose(H, 2, solver);
  CHECK_CLOSE(h.evals[0], 0.5e308, 1e-14);
  CHECK(std::isinf(h.evals[1]));  // 2.5e308 is beyond the double range
  std::vector<double> H2 = {1.0e308, 0.5e308, 0.5e308, -1.0e308};
  const auto h2 = decompose(H2, 2, solver);
  CHECK_CLOSE(h2.evals[1], std::sqrt(1.25) * 1e308, 1e-14);
  CHECK_CLOSE(h2.evals[0], -std::sqrt(1.25) * 1e308, 1e-14);
}

void repeated_and_diagonal_cases(Solver solver) {
  // Diagonal input: no rotation, exact eigenvalues, permutation eigenvectors.
  const int k = 4;
  std::vector<double> D = {3, 0, 0, 0, 0, -1, 0, 0, 0, 0, 2, 0, 0, 0, 0, -1};
  const auto d = decompose(D, k, solver);
  CHECK(d.evals[0] == -1 && d.evals[1] == -1 && d.evals[2] == 2 && d.evals[3] == 3);
  CHECK(d.evecs[1 * k + 0] == 1.0 && d.evecs[3 * k + 1] == 1.0);  // stable order of the tie
  CHECK(d.sweeps == 0 && d.converged);
  // Zero matrix and a rank-one matrix with a 3-fold zero eigenvalue.
  const auto z = decompose(std::vector<double>(k * k, 0.0), k, solver);
  CHECK(max_abs(z.evals) == 0.0);
  std::vector<double> u = {1, 2, -2, 4}, R(k * k);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) R[i * k + j] = u[i] * u[j];
  const auto r = decompose(R, k, solver);
  double res, orth;
  residuals(R, r, k, &res, &orth);
  CHECK(res <= 1e-13 * 25 && orth <= 1e-14 * 10);
  CHECK_CLOSE(r.evals[3], 25.0, 1e-14);
  CHECK(std::fabs(r.evals[0]) <= 1e-13 && std::fabs(r.evals[2]) <= 1e-13);
}

void graded_matrix_keeps_small_eigenvalues(Solver solver) {
  // diag(1e12, 1, 1e-12) mixed by a rotation of its first two coordinates.
  const double c = std::cos(0.3), s = std::sin(0.3);
  std::vector<double> G = {c * c * 1e12 + s * s, c * s * (1e12 - 1), 0, c * s * (1e12 - 1), s * s * 1e12 + c * c, 0,
                           0, 0, 1e-12};
  const auto d = decompose(G, 3, solver);
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
  std::vector<double> buf(n), w(n);
  sp::right_vector<float>(J.data(), m, n, ld, u, 0.5, 0, v1.data(), buf.data());
  int64_t big = 0;
  for (int64_t c = 0; c < n; ++c) {
    w[c] = 0.6 * J[c] - 0.8 * J[2 * ld + c];
    if (std::fabs(w[c]) > std::fabs(w[big])) big = c;
  }
  const double sign = w[big] < 0 ? -1.0 : 1.0;
  ok = v1[big] > 0;
  for (int64_t c = 0; c < n; ++c) {
    const double ref = sign * 0.5 * w[c];
    ok &= std::fabs(v1[c] - ref) <= 1e-6 * (1 + std::fabs(ref));
  }
  CHECK(ok);
  // Scaled J (shift s): v1 of 2^s J with scale 2^-s... the same vector.
  std::vector<float> v1s(n);
  sp::right_vector<float>(J.data(), m, n, ld, u, 0.5 / 8.0, 3, v1s.data(), buf.data());
  CHECK(v1s == v1);
  sp::right_vector<float>(J.data(), m, n, ld, u, 0.0, 0, v1.data(), buf.data());
  CHECK(*std::max_element(v1.begin(), v1.end()) == 0.0f && *std::min_element(v1.begin(), v1.end()) == 0.0f);
}

// Already-tridiagonal input (QL runs on it directly) and a tight cluster next to a large eigenvalue.
void tridiagonal_and_clustered_inputs(Solver solver) {
  const int k = 12;
  std::vector<double> T(k * k, 0.0);  // the 1-2-1 matrix: eigenvalues 2 - 2 cos(j pi / (k + 1))
  for (int i = 0; i < k; ++i) {
    T[i * k + i] = 2.0;
    if (i + 1 < k) T[i * k + i + 1] = T[(i + 1) * k + i] = -1.0;
  }
  const auto d = decompose(T, k, solver);
  bool ok = d.converged;
  for (int j = 0; j < k; ++j) ok &= std::fabs(d.evals[j] - (2.0 - 2.0 * std::cos((j + 1) * M_PI / (k + 1)))) <= 1e-14;
  CHECK(ok);
  std::mt19937 rng(7);
  std::vector<double> lam = {1.0, 1.0 + 1e-13, 1.0 + 2e-13, 1e6, -3.0, 0.5};  // cluster of three
  const int n = static_cast<int>(lam.size());
  auto M = random_symmetric(rng, n);  // M -> Q diag(lam) Q^T with Q from Gram-Schmidt on M's columns
  std::vector<double> Q(n * n);
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < n; ++i) Q[i * n + j] = M[i * n + j];
    for (int p = 0; p < j; ++p) {
      double dot = 0;
      for (int i = 0; i < n; ++i) dot += Q[i * n + p] * Q[i * n + j];
      for (int i = 0; i < n; ++i) Q[i * n + j] -= dot * Q[i * n + p];
    }
    double nrm = 0;
    for (int i = 0; i < n; ++i) nrm += Q[i * n + j] * Q[i * n + j];
    for (int i = 0; i < n; ++i) Q[i * n + j] /= std::sqrt(nrm);
  }
  std::vector<double> A(n * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int p = 0; p < n; ++p) A[i * n + j] += Q[i * n + p] * lam[p] * Q[j * n + p];
  const auto c = decompose(A, n, solver);
  double res, orth;
  residuals(A, c, n, &res, &orth);
  CHECK(c.converged && res <= 1e-15 * 1e6 * n * 8 && orth <= 1e-13);
  CHECK_CLOSE(c.evals[n - 1], 1e6, 1e-9);
  CHECK_CLOSE(c.evals[1], 0.5, 1e-9);
}

// NaN or Inf input (small_sym_eig(check=True) refuses it; check=False may pass it): both solvers
// return NaN for every eigenvalue and eigenvector component, also for a NaN only off the
// diagonal (Jacobi used to give up at once and return the finite diagonal).
void non_finite_input_gives_nan(Solver solver) {
  const int k = 5;
  std::mt19937 rng(8);
  for (double bad : {std::nan(""), double(INFINITY), -double(INFINITY)}) {
    for (int pos : {1 * k + 3, 2 * k + 2}) {
      auto G = random_symmetric(rng, k);
      G[pos] = bad;
      const auto d = decompose(G, k, solver);
      bool all_nan = true;
      for (double v : d.evals) all_nan &= std::isnan(v);
      for (double v : d.evecs) all_nan &= std::isnan(v);
      CHECK(all_nan);
    }
  }
}

// jacobian_spectrum's scaling rule: J at 1e+-200 (beyond what the squares survive) gives exactly the
// scaled singular values of the unscaled J, and the same v1.
void spectrum_over_the_whole_range() {
  std::mt19937 rng(13);
  std::normal_distribution<double> nd;
  const int m = 4;
  const int64_t n = 300;
  std::vector<double> J(m * n);
  for (double& x : J) x = nd(rng);
  auto run = [&](const std::vector<double>& Jx, double* s1, double* s2, std::vector<double>& v1, int32_t* flags) {
    std::vector<double> G(m * m), u(m), work(eig::tridiagonal_eig_work(m)), w(n);
    bool finite = true;
    const int shift = sp::scaled_gram<double>(Jx.data(), m, n, n, G.data(), &finite);
    double trace = 0, e1 = 0, e2 = 0;
    for (int i = 0; i < m; ++i) trace += G[i * m + i];
    if (finite) eig::tridiagonal_top2<double>(G.data(), m, m, &e1, &e2, u.data(), work.data());
    const auto top = sp::top_spectrum(e1, e2, trace, finite, m, sp::degenerate_rtol<double>(), shift);
    sp::right_vector<double>(Jx.data(), m, n, n, u.data(), top.inv_sigma1, shift, v1.data(), w.data());
    *s1 = top.sigma1;
    *s2 = top.sigma2;
    *flags = top.flags;
    return shift;
  };
  double r1, r2;
  int32_t rf;
  std::vector<double> rv(n);
  CHECK(run(J, &r1, &r2, rv, &rf) == 0);
  CHECK(rf == 0);
  for (int e : {-1000, -700, -600, 500, 700, 1000}) {
    std::vector<double> S(J.size());
    for (size_t i = 0; i < J.size(); ++i) S[i] = std::ldexp(J[i], e);
    double s1, s2;
    int32_t f;
    std::vector<double> v(n);
    const int shift = run(S, &s1, &s2, v, &f);
    CHECK(shift != 0);
    CHECK(f == 0 && s1 == std::ldexp(r1, e) && s2 == std::ldexp(r2, e));
    CHECK(v == rv);
  }
  // Inside the safe range no rescaling (one pass) and the same digits.
  std::vector<double> S(J.size());
  for (size_t i = 0; i < J.size(); ++i) S[i] = std::ldexp(J[i], 400);
  double s1, s2;
  int32_t f;
  std::vector<double> v(n);
  CHECK(run(S, &s1, &s2, v, &f) == 0 && s1 == std::ldexp(r1, 400) && v == rv);
  // Entries so small that their squares underflow to zero: not reported as a zero Jacobian.
  for (size_t i = 0; i < J.size(); ++i) S[i] = std::ldexp(J[i], -1060);
  run(S, &s1, &s2, v, &f);
  CHECK(!(f & sp::kFlagZero) && s1 > 0);
  // NaN / Inf entries: the non-finite flag.
  S = J;
  S[5] = double(INFINITY);
  run(S, &s1, &s2, v, &f);
  CHECK(f == sp::kFlagNonFinite && std::isnan(s1) && std::isnan(v[0]));
}

// tridiagonalize + apply_q: Q^T A Q equals tridiag(e, d, e) and Q is orthogonal.
void tridiagonalization_is_a_similarity() {
  std::mt19937 rng(9);
  for (int k : {1, 2, 3, 6, 10, 31, 64}) {
    const auto G = random_symmetric(rng, k);
    std::vector<double> A = G, d(k), e(k), tau(k), Q(k * k);
    eig::tridiagonalize(A.data(), k, d.data(), e.data(), tau.data());
    for (int i = 0; i < k; ++i) {  // column i of Q = Q e_i
      std::vector<double> y(k, 0.0);
      y[i] = 1.0;
      eig::apply_q(A.data(), tau.data(), k, y.data());
      for (int r = 0; r < k; ++r) Q[r * k + i] = y[r];
    }
    double err = 0, orth = 0;
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < k; ++j) {
        double t = 0, qq = 0;
        for (int r = 0; r < k; ++r) {
          qq += Q[r * k + i] * Q[r * k + j];
          for (int c = 0; c < k; ++c) t += Q[r * k + i] * G[r * k + c] * Q[c * k + j];
        }
        const double expect = i == j ? d[i] : (j == i + 1 ? e[i] : (i == j + 1 ? e[j] : 0.0));
        err = std::max(err, std::fabs(t - expect));
        orth = std::max(orth, std::fabs(qq - (i == j ? 1.0 : 0.0)));
      }
    CHECK(err <= 1e-13 * k * max_abs(G));
    CHECK(orth <= 1e-14 * k);
    CHECK(e[k - 1] == 0.0);
  }
}

// tridiagonal_top2 against the full decomposition: the two largest eigenvalues and |<u1, v_top>| = 1,
// a unit vector of the top eigenspace when it is repeated, and k = 1.
void top2_matches_full_decomposition() {
  std::mt19937 rng(10);
  std::vector<int> sizes = {2, 3, 17, 64};
  for (int t = 0; t < 40; ++t) sizes.push_back(10);  // many trials: the early stop and its continuation
  for (size_t t = 0; t < sizes.size(); ++t) {
    const int k = sizes[t];
    auto G = random_symmetric(rng, k);
    if (t % 2 == 1) {  // Gram matrix of a 10 x 3k Gaussian "Jacobian" (positive semi-definite)
      std::normal_distribution<double> nd;
      std::vector<double> J(k * 3 * k);
      for (double& v : J) v = nd(rng);
      for (int i = 0; i < k; ++i)
        for (int j = 0; j < k; ++j) {
          double g = 0;
          for (int c = 0; c < 3 * k; ++c) g += J[i * 3 * k + c] * J[j * 3 * k + c];
          G[i * k + j] = g;
        }
    }
    const auto d = decompose(G, k, Solver::kTridiagonal);
    std::vector<double> work(eig::tridiagonal_eig_work(k)), u(k);
    double e1, e2;
    CHECK(eig::tridiagonal_top2<double>(G.data(), k, k, &e1, &e2, u.data(), work.data()));
    CHECK(std::fabs(e1 - d.evals[k - 1]) <= 1e-13 * k * max_abs(G));
    CHECK(std::fabs(e2 - d.evals[k - 2]) <= 1e-13 * k * max_abs(G));
    double dot = 0;
    for (int i = 0; i < k; ++i) dot += u[i] * d.evecs[i * k + (k - 1)];
    CHECK_CLOSE(std::fabs(dot), 1.0, 1e-12);
  }
  // diag(1, 5, 5, 2): e1 = e2 = 5, u1 in span(e_1, e_2) (0-based), unit norm.
  const std::vector<double> D = {1, 0, 0, 0, 0, 5, 0, 0, 0, 0, 5, 0, 0, 0, 0, 2};
  std::vector<double> work(eig::tridiagonal_eig_work(4)), u(4);
  double e1, e2;
  eig::tridiagonal_top2<double>(D.data(), 4, 4, &e1, &e2, u.data(), work.data());
  CHECK(e1 == 5.0 && e2 == 5.0 && u[0] == 0.0 && u[3] == 0.0);
  CHECK_CLOSE(u[1] * u[1] + u[2] * u[2], 1.0, 1e-15);
  const double one = 7.0;
  double v;
  eig::tridiagonal_top2<double>(&one, 1, 1, &e1, &e2, &v, work.data());
  CHECK(e1 == 7.0 && std::isinf(e2) && e2 < 0 && std::fabs(v) == 1.0);
}

// Sturm count of a trailing block against its eigenvalues from the full decomposition.
void sturm_count_matches_eigenvalues() {
  std::mt19937 rng(11);
  std::normal_distribution<double> nd;
  const int k = 9, l = 2, n = k - l;
  std::vector<double> d(k), e(k, 0.0), T(n * n, 0.0);
  for (int i = 0; i < k; ++i) d[i] = nd(rng);
  for (int i = 0; i + 1 < k; ++i) e[i] = nd(rng);
  for (int i = 0; i < n; ++i) {
    T[i * n + i] = d[l + i];
    if (i + 1 < n) T[i * n + i + 1] = T[(i + 1) * n + i] = e[l + i];
  }
  const auto ref = decompose(T, n, Solver::kTridiagonal);
  bool ok = true;
  for (double x : {-10.0, -1.0, 0.0, 0.3, 1.0, 10.0}) {
    int expect = 0;
    for (double v : ref.evals) expect += v >= x;
    ok &= eig::count_at_least(d.data(), e.data(), l, k, x) == expect;
  }
  for (int j = 0; j < n; ++j)  // just above each eigenvalue: n - 1 - j remain
    ok &= eig::count_at_least(d.data(), e.data(), l, k, ref.evals[j] + 1e-9) == n - 1 - j;
  CHECK(ok);
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
  for (Solver solver : kSolvers) {
    random_matrices_are_diagonalised(solver);
    largest_component_positive(solver);
    scaled_inputs_over_the_whole_range(solver);
    repeated_and_diagonal_cases(solver);
    graded_matrix_keeps_small_eigenvalues(solver);
    tridiagonal_and_clustered_inputs(solver);
    non_finite_input_gives_nan(solver);
  }
  tridiagonalization_is_a_similarity();
  top2_matches_full_decomposition();
  sturm_count_matches_eigenvalues();
  gram_and_right_vector();
  solvers_agree_on_signs_of_block_matrices();
  spectrum_over_the_whole_range();
  top_spectrum_flags();
  return native_test::finish();
}
