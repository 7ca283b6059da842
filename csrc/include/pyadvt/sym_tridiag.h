// Framework-free Householder-tridiagonal + implicit-QL eigen-solver for small symmetric matrices
// (docs/theory.md §8, small_sym_eig): the CPU path of small_sym_eig and jacobian_spectrum, shared with
// the native tests. (The CUDA kernel runs the parallel cyclic Jacobi of pyadvt/sym_eig.h, whose
// rotations map onto threads; a serial matrix is ~3x faster this way on a CPU core.)
//
// Steps, all in double on a row-major k x k matrix:
//   1. tridiagonalize: A = Q T Q^T with Q = H_0 H_1 ... H_{k-3}, H_j = I - tau_j v_j v_j^T acting on
//      coordinates j+1..k-1 (v_j[0] = 1), T = tridiag(e, d, e) (Golub & Van Loan, section 8.3.1).
//   2. tridiagonal_ql: implicit QL sweeps with Wilkinson's shift on T (Golub & Van Loan 8.3.5,
//      QL form), each eigenvalue deflated when |e_m| <= eps (|d_m| + |d_{m+1}|); the plane rotations
//      are optionally accumulated into the rows of an eigenvector matrix. tridiagonal_top2 shifts
//      towards the largest eigenvalues instead and stops once a Sturm count proves the top two found.
//   3. the back-transformation by Q: all eigenvectors (tridiagonal_eig, small_sym_eig) or only the
//      top one (tridiagonal_top2, jacobian_spectrum: QL accumulates T's eigenvectors, then u1 = Q y1).
// The input is first scaled by the power of two that puts max |G| in [0.5, 1) (pyadvt/scaling.h,
// as LAPACK's dsyev scales; exact) and the eigenvalues are scaled back, so the whole finite double
// range works; a NaN or Inf entry gives NaN outputs. Eigenvalues come out sorted ascending
// (stable, NaN last); each eigenvector follows the shared sign rule of scaling.h (largest-
// magnitude component positive), as the Jacobi path and the PyTorch reference.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "pyadvt/scaling.h"

namespace pyadvt {
namespace eig {

constexpr double kTridiagEps = 2.220446049250313e-16;
constexpr int kQlIterationsPerEigenvalue = 60;

// sqrt(a^2 + b^2) without the cost of std::hypot (~20x slower in glibc, and QL calls it once per
// rotation); rescaled only when a square could overflow or underflow.
inline double fast_hypot(double a, double b) {
  const double m = std::fmax(std::fabs(a), std::fabs(b));
  if (m > 1e-150 && m < 1e150) return std::sqrt(a * a + b * b);
  if (m == 0.0 || !(m == m) || std::isinf(m)) return std::hypot(a, b);
  const double x = a / m, y = b / m;
  return m * std::sqrt(x * x + y * y);
}

// Step 1. A (k x k, symmetric, row-major; overwritten) -> d[k] (diagonal of T), e[k] (e[i] couples
// i and i + 1, e[k - 1] = 0) and tau[k]. Afterwards A[(j + 1 + i) * k + j] = v_j[i] for i >= 1
// (the reflector of column j, stored below the subdiagonal). tau_j = 0 when the column below the
// subdiagonal is already zero (no reflection: diagonal and tridiagonal inputs pass unchanged).
inline void tridiagonalize(double* A, int k, double* d, double* e, double* tau) {
  for (int j = 0; j + 1 < k; ++j) {
    const int n = k - j - 1;  // length of x = A[j+1.., j]
    double* x0 = A + (j + 1) * k + j;
    double tail = 0.0;  // ||x[1:]||^2
    for (int i = 1; i < n; ++i) tail += x0[i * k] * x0[i * k];
    d[j] = A[j * k + j];
    if (tail == 0.0) {  // already tridiagonal in this column
      e[j] = *x0;
      tau[j] = 0.0;
      continue;
    }
    const double alpha = *x0;
    const double beta = -std::copysign(std::sqrt(alpha * alpha + tail), alpha);  // H x = beta e_1
    const double t = (beta - alpha) / beta;
    const double scale = 1.0 / (alpha - beta);
    *x0 = 1.0;  // v_j[0]; the rest of v_j overwrites x in place
    for (int i = 1; i < n; ++i) x0[i * k] *= scale;
    e[j] = beta;
    tau[j] = t;
    // Trailing block S = A[j+1.., j+1..] <- H S H: p = t S v, w = p - (t/2)(p.v) v, S -= v w^T + w v^T.
    double p[64], v[64];
    for (int i = 0; i < n; ++i) v[i] = x0[i * k];
    double pv = 0.0;
    for (int r = 0; r < n; ++r) {
      const double* row = A + (j + 1 + r) * k + (j + 1);
      double s = 0.0;
      for (int c = 0; c < n; ++c) s += row[c] * v[c];
      p[r] = t * s;
      pv += p[r] * v[r];
    }
    const double half = 0.5 * t * pv;
    for (int r = 0; r < n; ++r) p[r] -= half * v[r];
    for (int r = 0; r < n; ++r) {
      double* row = A + (j + 1 + r) * k + (j + 1);
      const double vr = v[r], pr = p[r];
      for (int c = 0; c < n; ++c) row[c] -= vr * p[c] + pr * v[c];
    }
  }
  if (k >= 1) d[k - 1] = A[(k - 1) * k + (k - 1)];
  if (k >= 1) e[k - 1] = 0.0;
}

// y <- Q y for y[k] (back-transformation of an eigenvector of T), A and tau from tridiagonalize.
inline void apply_q(const double* A, const double* tau, int k, double* y) {
  for (int j = k - 3; j >= 0; --j) {
    if (tau[j] == 0.0) continue;
    const double* v = A + (j + 1) * k + j;  // v[i * k], v[0] read as 1
    double s = y[j + 1];
    for (int i = 1; i < k - j - 1; ++i) s += v[i * k] * y[j + 1 + i];
    s *= tau[j];
    y[j + 1] -= s;
    for (int i = 1; i < k - j - 1; ++i) y[j + 1 + i] -= s * v[i * k];
  }
}

// Shift of a QL sweep at position l: Wilkinson's (the eigenvalue of the leading 2 x 2 block of the
// unreduced part nearer d[l]; all eigenvalues, fastest overall) or the larger eigenvalue of that
// block (steers the sweeps towards the largest eigenvalues first; tridiagonal_top2).
enum class QlShift { kWilkinson, kLargest };

// One step of QL: sweeps on the unreduced block starting at l until e[l] is negligible, i.e. until
// d[l] is an eigenvalue (deflation when |e_m| <= eps (|d_m| + |d_{m+1}|)); rows l..k-1 of Zt (when
// not null) take the plane rotations. Rows < l, d[< l] and e[< l] are not touched, and later steps
// never touch row l again. Returns false after kQlIterationsPerEigenvalue sweeps (NaN input).
inline bool ql_deflate(double* d, double* e, int k, int l, double* Zt, QlShift shift) {
  for (int iter = 0;; ++iter) {
    int m = l;
    for (; m + 1 < k; ++m)
      if (std::fabs(e[m]) <= kTridiagEps * (std::fabs(d[m]) + std::fabs(d[m + 1]))) break;
    if (m == l) return true;
    if (iter == kQlIterationsPerEigenvalue) return false;
    // Eigenvalues of [[d_l, e_l], [e_l, d_l+1]]: (d_l + d_l+1) / 2 +- |e_l| hypot(g, 1).
    double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
    double r = fast_hypot(g, 1.0);
    const double mu = shift == QlShift::kWilkinson ? d[l] - e[l] / (g + std::copysign(r, g))
                                                   : 0.5 * (d[l] + d[l + 1]) + std::fabs(e[l]) * r;
    g = d[m] - mu;
    double s = 1.0, c = 1.0, p = 0.0;
    int i = m - 1;
    for (; i >= l; --i) {  // chase the bulge from the bottom of the block to the top
      const double f = s * e[i], b = c * e[i];
      r = fast_hypot(f, g);
      e[i + 1] = r;
      if (r == 0.0) {  // underflow: T split; undo the shift and restart the block
        d[i + 1] -= p;
        e[m] = 0.0;
        break;
      }
      const double inv = 1.0 / r;
      s = f * inv;
      c = g * inv;
      g = d[i + 1] - p;
      r = (d[i] - g) * s + 2.0 * c * b;
      p = s * r;
      d[i + 1] = g + p;
      g = c * r - b;
      if (Zt != nullptr) {
        double* zi = Zt + i * k;
        double* zn = Zt + (i + 1) * k;
        for (int q = 0; q < k; ++q) {
          const double a = zi[q], bq = zn[q];
          zn[q] = s * a + c * bq;
          zi[q] = c * a - s * bq;
        }
      }
    }
    if (r == 0.0 && i >= l) continue;
    d[l] -= p;
    e[l] = g;
    e[m] = 0.0;
  }
}

// Step 2. Eigenvalues of tridiag(e, d, e) into d (unsorted); e is destroyed. When Zt is not null,
// the rotations are applied to its rows: with Zt = Q^T on entry, row i of Zt ends as the unit
// eigenvector of d[i]. Returns false if some eigenvalue needed more than
// kQlIterationsPerEigenvalue sweeps (NaN input; the values are then not meaningful).
inline bool tridiagonal_ql(double* d, double* e, int k, double* Zt) {
  if (k < 2) return true;
  e[k - 1] = 0.0;
  bool ok = true;
  for (int l = 0; l < k; ++l) ok = ql_deflate(d, e, k, l, Zt, QlShift::kWilkinson) && ok;
  return ok;
}

// Sturm count: the number of eigenvalues >= x of the trailing block tridiag(e[l..k-2], d[l..k-1]),
// from the signs of the LDL^T pivots q_i = (d_i - x) - e_{i-1}^2 / q_{i-1} (Sylvester's law of
// inertia: #negative pivots = #eigenvalues < x; a zero pivot is replaced by a tiny negative one).
inline int count_at_least(const double* d, const double* e, int l, int k, double x) {
  int below = 0;
  double q = 1.0;
  for (int i = l; i < k; ++i) {
    q = (d[i] - x) - (i > l ? e[i - 1] * e[i - 1] / q : 0.0);
    if (q == 0.0) q = -std::numeric_limits<double>::min();
    below += q < 0.0;
  }
  return (k - l) - below;
}

// Stable ascending order of d[k] (NaN last) into order[k] (insertion sort, k <= 64).
inline void ascending_indices(const double* d, int k, int* order) {
  for (int j = 0; j < k; ++j) order[j] = j;
  for (int j = 1; j < k; ++j) {
    const int cur = order[j];
    const double v = d[cur];
    int i = j - 1;
    while (i >= 0 && (d[order[i]] > v || (d[order[i]] != d[order[i]] && v == v))) {
      order[i + 1] = order[i];
      --i;
    }
    order[i + 1] = cur;
  }
}

// Copies the scaled symmetric part 2^shift (G + G^T) / 2 of G (k x k, row stride ld) into A
// (row-major, double), shift = scale_shift(max |G|). Returns false (A untouched) when G has a NaN
// or Inf entry.
template <typename T>
inline bool scaled_symmetric_part(const T* G, int64_t ld, int k, double* A, int* shift) {
  double max_abs = 0.0;
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) max_abs = scaling::nan_max_abs(max_abs, static_cast<double>(G[i * ld + j]));
  *shift = 0;
  if (!(max_abs <= std::numeric_limits<double>::max())) return false;
  *shift = scaling::scale_shift(max_abs);
  const scaling::Pow2 f = scaling::pow2_factors(*shift);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j)
      A[i * k + j] = 0.5 * ((static_cast<double>(G[i * ld + j]) * f.f1) * f.f2 +
                            (static_cast<double>(G[j * ld + i]) * f.f1) * f.f2);
  return true;
}

// Scratch doubles needed by tridiagonal_eig for size k.
constexpr int tridiagonal_eig_work(int k) { return 2 * k * k + 3 * k; }

// The reduced form of a symmetric matrix, in a caller's tridiagonal_eig_work(k) scratch: A holds
// the reflectors (step 1), d, e, tau the tridiagonal T (of the matrix scaled by 2^shift) and the
// reflector scales, Zt (k x k) room for the eigenvector rows; finite is false (nothing reduced)
// for a NaN or Inf entry.
struct Reduced {
  double *A, *Zt, *d, *e, *tau;
  int shift;
  bool finite;
};

// Scaled symmetric part of G (row stride ld) reduced to tridiagonal form in work.
template <typename T>
inline Reduced reduce(const T* G, int64_t ld, int k, double* work) {
  Reduced r{work, work + k * k, work + 2 * k * k, work + 2 * k * k + k, work + 2 * k * k + 2 * k, 0, true};
  r.finite = scaled_symmetric_part(G, ld, k, r.A, &r.shift);
  if (r.finite) tridiagonalize(r.A, k, r.d, r.e, r.tau);
  return r;
}

// Full decomposition of a symmetric k x k matrix G (row stride ld, elements T), using the
// symmetric part (G + G^T) / 2: evals[k] ascending, evecs k x k row-major with the eigenvectors
// as columns (sign rule of scaling.h). work: tridiagonal_eig_work(k) doubles, order: k ints.
// Returns false when G is not finite (all outputs NaN) or QL did not converge.
template <typename T, typename U>
inline bool tridiagonal_eig(const T* G, int64_t ld, int k, U* evals, U* evecs, double* work, int* order) {
  const Reduced r = reduce(G, ld, k, work);
  if (!r.finite) {
    const U nan = std::numeric_limits<U>::quiet_NaN();
    for (int j = 0; j < k; ++j) evals[j] = nan;
    for (int i = 0; i < k * k; ++i) evecs[i] = nan;
    return false;
  }
  double *A = r.A, *Zt = r.Zt, *d = r.d, *e = r.e, *tau = r.tau;
  for (int i = 0; i < k; ++i) {  // Zt = Q^T: row i = Q e_i
    double* z = Zt + i * k;
    for (int q = 0; q < k; ++q) z[q] = 0.0;
    z[i] = 1.0;
    apply_q(A, tau, k, z);
  }
  // Zt holds Q^T with rows = columns of Q; QL's rotations combine those rows.
  const bool ok = tridiagonal_ql(d, e, k, Zt);
  ascending_indices(d, k, order);
  for (int j = 0; j < k; ++j) {
    const int src = order[j];
    evals[j] = static_cast<U>(scaling::pow2_mul(d[src], -r.shift));
    const double* z = Zt + src * k;
    const double sg = scaling::vector_sign(z, k, 1);
    for (int i = 0; i < k; ++i) evecs[i * k + j] = static_cast<U>(sg * z[i]);
  }
  return ok;
}

// The two largest eigenvalues e1 >= e2 of a symmetric k x k matrix G (row stride ld; symmetric
// part used; e2 = -inf when k == 1) and a unit eigenvector u1[k] of e1 (sign unspecified). Same
// work size as tridiagonal_eig. QL deflates with the kLargest shift, which tends to find the large
// eigenvalues first, and stops as soon as a Sturm count shows that no eigenvalue of the
// undeflated rest exceeds the second largest found (plus 64 k eps |e1|, the resolution). For
// 10 x 10 Gram matrices of Gaussian 10 x 64 Jacobians this does about 2/3 of the full QL's
// rotations, with geometrically decaying singular values about 1/3.
// Returns false when G is not finite (e1, e2 and u1 NaN) or QL did not converge.
template <typename T>
inline bool tridiagonal_top2(const T* G, int64_t ld, int k, double* e1, double* e2, double* u1, double* work) {
  const Reduced r = reduce(G, ld, k, work);
  if (!r.finite) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    *e1 = *e2 = nan;
    for (int i = 0; i < k; ++i) u1[i] = nan;
    return false;
  }
  double *A = r.A, *Zt = r.Zt, *d = r.d, *e = r.e, *tau = r.tau;
  for (int i = 0; i < k * k; ++i) Zt[i] = 0.0;
  for (int i = 0; i < k; ++i) Zt[i * k + i] = 1.0;
  e[k - 1] = 0.0;
  bool ok = true;
  int top = -1, second = -1;
  for (int l = 0; l < k; ++l) {
    ok = ql_deflate(d, e, k, l, Zt, QlShift::kLargest) && ok;
    if (top < 0 || d[l] > d[top] || d[top] != d[top]) {
      second = top;
      top = l;
    } else if (second < 0 || d[l] > d[second]) {
      second = l;
    }
    if (second < 0 || l + 1 == k) continue;
    const double resolution = 64.0 * k * kTridiagEps * std::fabs(d[top]);
    if (count_at_least(d, e, l + 1, k, d[second] + resolution) == 0) break;
  }
  *e1 = scaling::pow2_mul(d[top], -r.shift);
  *e2 = second >= 0 ? scaling::pow2_mul(d[second], -r.shift) : -std::numeric_limits<double>::infinity();
  for (int i = 0; i < k; ++i) u1[i] = Zt[top * k + i];
  apply_q(A, tau, k, u1);
  return ok;
}

}  // namespace eig
}  // namespace pyadvt
