// Framework-free cyclic Jacobi eigen-solver for small symmetric matrices (docs/theory.md §8,
// small_sym_eig): the CUDA kernel's arithmetic, and a serial driver of the same rotations that the
// native tests check on the CPU (the CPU kernels use the tridiagonal QL of sym_tridiag.h).
//
// Work is in double on a row-major k x k matrix A (overwritten) and eigenvector matrix V
// (CUDA: V[i * k + j] = component i of eigenvector j; the serial CPU driver keeps the transpose so
// its rotations touch contiguous rows). One sweep visits every pair (p, q), p < q, once,
// in the round-robin ("parallel") order: K = k rounded up to even, K - 1 steps of K / 2 disjoint
// pairs each, so one step's rotations commute and the CUDA kernel applies them concurrently. A
// step is three phases, identical on CPU and GPU:
//   1. rotation parameters of every pair from the current A (Golub & Van Loan, sym.schur2),
//   2. column rotations  A <- A R,  V <- V R,
//   3. row rotations     A <- R^T A, then a_pq = a_qp = 0 and the diagonal from the exact formula.
// (The CUDA kernel runs these phases with threads; the serial driver applies each rotation in turn with the
// symmetric update of apply_rotation_serial, the same rotations up to rounding.)
// Sweeps stop when off(A) = sqrt(sum_{p != q} a_pq^2) <= eps_f64 * ||A||_F (or after kMaxSweeps).
// On load A is scaled by the power of two that puts max |G| in [0.5, 1) (pyadvt/scaling.h; exact,
// so the rotations are those of the unscaled matrix wherever that one would not over/underflow)
// and the eigenvalues are scaled back; a matrix with a NaN or Inf entry gives NaN eigenvalues
// and eigenvectors. Finally eigenvalues are sorted ascending (stable) and every eigenvector column
// is flipped by the shared sign rule (largest-magnitude component positive, scaling.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "pyadvt/common.h"
#include "pyadvt/scaling.h"

namespace pyadvt {
namespace eig {

constexpr int kMaxK = 64;
constexpr int kMaxSweeps = 60;
constexpr double kEps = 2.220446049250313e-16;

// Rotation of the pair (p, q): a' = R^T a R with R_pp = R_qq = c, R_pq = s, R_qp = -s.
struct Rotation {
  int p, q;     // q < 0: no rotation (dummy partner of an odd k, or a_pq negligible)
  double c, s;  // cosine, sine
  double t;     // tangent, for the exact diagonal update
  double apq;   // the eliminated off-diagonal entry
  double app, aqq;  // diagonal entries before the step (no other rotation of the step touches them)
};

// Even size used by the round-robin schedule.
PYADVT_HD int schedule_size(int k) { return k + (k & 1); }

// Pair j (0 <= j < K/2) of round-robin step s (0 <= s < K-1): the circle method with player K-1
// fixed. Returns p < q; q == k marks the dummy partner of an odd k.
PYADVT_HD void round_robin_pair(int K, int s, int j, int* p, int* q) {
  int a, b;
  const int m = K - 1;
  if (j == 0) {
    a = s;
    b = m;
  } else {
    a = (s + j) % m;
    b = (s - j + m) % m;
  }
  *p = a < b ? a : b;
  *q = a < b ? b : a;
}

// Rotation that zeroes a_pq (sym.schur2), or an identity marker when a_pq is zero or negligible
// against the diagonal (|a_pq| <= eps/2 * sqrt(|a_pp| |a_qq|)); a negligible entry is set to zero
// here (a backward error below rounding) so that off(A) keeps decreasing.
PYADVT_HD Rotation make_rotation(double* A, int k, int p, int q) {
  Rotation r{p, -1, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  if (q >= k) return r;
  const double apq = A[p * k + q];
  const double app = A[p * k + p], aqq = A[q * k + q];
  if (apq == 0.0) return r;
  // The cheap test is implied by the exact one (sqrt(|a b|) <= (|a| + |b|) / 2): sqrt only when needed.
  if (std::fabs(apq) <= kEps * (std::fabs(app) + std::fabs(aqq)) &&
      std::fabs(apq) <= 0.5 * kEps * std::sqrt(std::fabs(app)) * std::sqrt(std::fabs(aqq))) {
    A[p * k + q] = 0.0;
    A[q * k + p] = 0.0;
    return r;
  }
  const double tau = (aqq - app) / (2.0 * apq);
  double t;
  if (std::fabs(tau) > 1e150) {
    t = 0.5 / tau;  // 1 / (2 tau): sqrt(1 + tau^2) would overflow
  } else {
    t = (tau >= 0.0 ? 1.0 : -1.0) / (std::fabs(tau) + std::sqrt(1.0 + tau * tau));
  }
  const double c = 1.0 / std::sqrt(1.0 + t * t);
  r.q = q;
  r.c = c;
  r.s = t * c;
  r.t = t;
  r.apq = apq;
  r.app = app;
  r.aqq = aqq;
  return r;
}

// Phase 2 for row i: columns p, q of row i of M (A or V) <- (c x_p - s x_q, s x_p + c x_q).
PYADVT_HD void rotate_columns(double* M, int k, int i, const Rotation& r) {
  double* row = M + i * k;
  const double xp = row[r.p], xq = row[r.q];
  row[r.p] = r.c * xp - r.s * xq;
  row[r.q] = r.s * xp + r.c * xq;
}

// Phase 3 for column j: rows p, q of column j of A <- (c x_p - s x_q, s x_p + c x_q).
PYADVT_HD void rotate_rows(double* A, int k, int j, const Rotation& r) {
  const double xp = A[r.p * k + j], xq = A[r.q * k + j];
  A[r.p * k + j] = r.c * xp - r.s * xq;
  A[r.q * k + j] = r.s * xp + r.c * xq;
}

// After phase 3: the eliminated entry is exactly zero and the diagonal takes the exact update
// a_pp - t a_pq, a_qq + t a_pq (more accurate than the rotated values).
PYADVT_HD void finish_rotation(double* A, int k, const Rotation& r) {
  A[r.p * k + r.q] = 0.0;
  A[r.q * k + r.p] = 0.0;
  A[r.p * k + r.p] = r.app - r.t * r.apq;
  A[r.q * k + r.q] = r.aqq + r.t * r.apq;
}

// Squared off-diagonal and total Frobenius norms of row i.
PYADVT_HD void row_norms(const double* A, int k, int i, double* off_sq, double* fro_sq) {
  double off = 0.0, fro = 0.0;
  for (int j = 0; j < k; ++j) {
    const double a = A[i * k + j];
    fro += a * a;
    if (j != i) off += a * a;
  }
  *off_sq = off;
  *fro_sq = fro;
}

PYADVT_HD bool converged(double off_sq, double fro_sq) {
  return off_sq == 0.0 || off_sq <= kEps * kEps * fro_sq || !(off_sq == off_sq);  // NaN: give up
}

// Sorting of the diagonal: order[j] = index of the j-th smallest (stable, NaN last).
PYADVT_HD void ascending_order(const double* A, int k, int* order) {
  for (int j = 0; j < k; ++j) order[j] = j;
  for (int j = 1; j < k; ++j) {  // insertion sort, k <= 64
    const int cur = order[j];
    const double v = A[cur * k + cur];
    int i = j - 1;
    while (i >= 0 && (A[order[i] * k + order[i]] > v || (A[order[i] * k + order[i]] != A[order[i] * k + order[i]] && v == v))) {
      order[i + 1] = order[i];
      --i;
    }
    order[i + 1] = cur;
  }
}

// Sign (+1 / -1) of column j of V (k x k row-major) under the shared sign rule.
PYADVT_HD double column_sign(const double* V, int k, int j) { return scaling::vector_sign(V + j, k, k); }

// Sign (+1 / -1) of row j of Vt under the shared sign rule.
PYADVT_HD double row_sign(const double* Vt, int k, int j) { return scaling::vector_sign(Vt + j * k, k, 1); }

// Entry (i, j) of the scaled symmetric part 2^s (G + G^T) / 2 (scaled before the sum, so entries
// near the double maximum do not overflow).
template <typename T>
PYADVT_HD double scaled_symmetric_entry(T gij, T gji, scaling::Pow2 f) {
  return 0.5 * ((static_cast<double>(gij) * f.f1) * f.f2 + (static_cast<double>(gji) * f.f1) * f.f2);
}

// ---------------------------------------------------------------------------------------------
// Serial driver (native tests).

// One rotation applied serially with the symmetric update: rows p, q of A rotated (contiguous, so
// the loop vectorises) and mirrored into columns p, q, the exact 2 x 2 block update, and rows p, q
// of the transposed eigenvector matrix Vt. Equals phases 2-3 for this pair up to rounding (the
// rotations of one step are disjoint and commute).
inline void apply_rotation_serial(double* A, double* Vt, int k, const Rotation& r) {
  double* ap = A + r.p * k;
  double* aq = A + r.q * k;
  const double c = r.c, s = r.s;
  for (int i = 0; i < k; ++i) {
    const double xp = ap[i], xq = aq[i];
    ap[i] = c * xp - s * xq;
    aq[i] = s * xp + c * xq;
  }
  for (int i = 0; i < k; ++i) {
    A[i * k + r.p] = ap[i];
    A[i * k + r.q] = aq[i];
  }
  double* vp = Vt + r.p * k;
  double* vq = Vt + r.q * k;
  for (int i = 0; i < k; ++i) {
    const double xp = vp[i], xq = vq[i];
    vp[i] = c * xp - s * xq;
    vq[i] = s * xp + c * xq;
  }
  finish_rotation(A, k, r);  // overwrites the 2 x 2 block, which the loops above only half-rotated
}

// Diagonalises A (k x k, symmetric, row-major; overwritten: its diagonal ends up holding the
// eigenvalues) and accumulates the rotations into Vt (eigenvectors as ROWS, unsorted), visiting
// the pairs in the same round-robin order as the CUDA kernel. Returns the number of sweeps done.
inline int jacobi_unsorted(double* A, double* Vt, int k) {
  for (int i = 0; i < k * k; ++i) Vt[i] = 0.0;
  for (int i = 0; i < k; ++i) Vt[i * k + i] = 1.0;
  if (k < 2) return 0;
  const int K = schedule_size(k), half = K / 2;
  int sweep = 0;
  for (; sweep < kMaxSweeps; ++sweep) {
    double off = 0.0, fro = 0.0;
    for (int i = 0; i < k; ++i) {
      double o, f;
      row_norms(A, k, i, &o, &f);
      off += o;
      fro += f;
    }
    if (converged(off, fro)) break;
    for (int s = 0; s < K - 1; ++s) {
      for (int j = 0; j < half; ++j) {
        int p, q;
        round_robin_pair(K, s, j, &p, &q);
        const Rotation r = make_rotation(A, k, p, q);
        if (r.q >= 0) apply_rotation_serial(A, Vt, k, r);
      }
    }
  }
  return sweep;
}

// Full decomposition of a symmetric k x k matrix G given with row stride ld (elements of type T):
// evals[k] ascending and evecs (k x k row-major, columns = eigenvectors, sign rule of scaling.h),
// both of type U. work: 2 k^2 doubles; order: k ints. Uses the symmetric part (G + G^T) / 2,
// scaled by a power of two (see above); non-finite G gives NaN outputs (returns 0 sweeps).
template <typename T, typename U>
inline int sym_eig(const T* G, int64_t ld, int k, U* evals, U* evecs, double* work, int* order) {
  double* A = work;
  double* Vt = work + k * k;  // eigenvectors as rows
  double max_abs = 0.0;
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) max_abs = scaling::nan_max_abs(max_abs, static_cast<double>(G[i * ld + j]));
  if (!(max_abs <= std::numeric_limits<double>::max())) {  // NaN or Inf entry
    const U nan = std::numeric_limits<U>::quiet_NaN();
    for (int j = 0; j < k; ++j) evals[j] = nan;
    for (int i = 0; i < k * k; ++i) evecs[i] = nan;
    return 0;
  }
  const int shift = scaling::scale_shift(max_abs);
  const scaling::Pow2 f = scaling::pow2_factors(shift);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) A[i * k + j] = scaled_symmetric_entry(G[i * ld + j], G[j * ld + i], f);
  const int sweeps = jacobi_unsorted(A, Vt, k);
  ascending_order(A, k, order);
  for (int j = 0; j < k; ++j) {
    const int src = order[j];
    evals[j] = static_cast<U>(scaling::pow2_mul(A[src * k + src], -shift));
    const double sg = row_sign(Vt, k, src);
    for (int i = 0; i < k; ++i) evecs[i * k + j] = static_cast<U>(sg * Vt[src * k + i]);
  }
  return sweeps;
}

}  // namespace eig
}  // namespace pyadvt
