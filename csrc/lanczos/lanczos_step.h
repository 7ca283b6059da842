// Framework-free bookkeeping of one batched Lanczos step (docs/theory.md §9, §8): the per-sample
// three-term recurrence, full re-orthogonalisation of the new vector against the basis (classical
// Gram-Schmidt applied twice: "twice is enough"), the tridiagonal update, the Ritz pairs of the
// tridiagonal matrix T_k (implicit QL of pyadvt/sym_tridiag.h, eigenvectors accumulated) and
// ARPACK's residual test ||G y_i - theta_i y_i|| = beta_k |s_{k,i}| for the top one or two pairs.
//
// Used by the CPU kernel (csrc/lanczos/cpu) and mirrored exactly by the PyTorch reference
// pyadvt/ops/reference/lanczos.py. All sums are accumulated in double.
#pragma once

#include <cmath>
#include <cstdint>

#include "pyadvt/sym_tridiag.h"

namespace pyadvt {
namespace lanczos {

// Status bits returned by step().
constexpr int kContinue = 0;
constexpr int kConverged = 1;   // residual test passed for the requested pairs
constexpr int kInvariant = 2;   // beta_k ~ 0: the Krylov space is invariant, the Ritz values are exact
constexpr int kQlFailed = 4;    // tridiagonal QL did not converge (non-finite input)

// Scratch doubles for a tridiagonal problem of size k: d[k], e[k], Zt[k * k].
constexpr int64_t work_size(int k) { return 2 * static_cast<int64_t>(k) + static_cast<int64_t>(k) * k; }

// One Lanczos step for one sample.
//   Q      [(K + 1) x dim] basis, rows 0..j filled (unit, orthonormal); row j + 1 is written:
//          the next Lanczos vector (unit) when the sample continues, the unnormalised residual
//          vector otherwise.
//   w      [dim] the product G q_j.
//   alpha, beta [K] the tridiagonal T (alpha[j], beta[j] written).
//   ritz   [4] out: theta_1, theta_2 (the two largest Ritz values; theta_2 = 0 while k = 1),
//          their residual norms.
//   y      [K] out: coefficients of the top Ritz vector in the basis (zero beyond k = j + 1).
//   tol    ARPACK residual tolerance, relative to |theta_1| for both pairs.
//   inv_rtol beta_k <= inv_rtol * max(|theta_1|, max |alpha|) declares the space invariant.
template <typename T>
inline int step(T* Q, const T* w, int64_t dim, int j, int K, double* alpha, double* beta, double* ritz,
                double* y, int npairs, double tol, double inv_rtol, double* work) {
  const T* qj = Q + static_cast<int64_t>(j) * dim;
  T* r = Q + static_cast<int64_t>(j + 1) * dim;
  double a = 0.0;
  for (int64_t i = 0; i < dim; ++i) a += static_cast<double>(w[i]) * static_cast<double>(qj[i]);
  const double bprev = j > 0 ? beta[j - 1] : 0.0;
  const T* qp = j > 0 ? Q + static_cast<int64_t>(j - 1) * dim : nullptr;
  for (int64_t i = 0; i < dim; ++i) {
    double v = static_cast<double>(w[i]) - a * static_cast<double>(qj[i]);
    if (qp != nullptr) v -= bprev * static_cast<double>(qp[i]);
    r[i] = static_cast<T>(v);
  }
  // Full re-orthogonalisation, classical Gram-Schmidt twice. The coefficients of one pass are
  // all computed before any is subtracted (so a pass is one read of the basis per coefficient).
  double* coef = work;  // borrows the scratch (k = j + 1 <= K entries) before the QL below
  for (int pass = 0; pass < 2; ++pass) {
    for (int p = 0; p <= j; ++p) {
      const T* qp2 = Q + static_cast<int64_t>(p) * dim;
      double c = 0.0;
      for (int64_t i = 0; i < dim; ++i) c += static_cast<double>(qp2[i]) * static_cast<double>(r[i]);
      coef[p] = c;
    }
    for (int p = 0; p <= j; ++p) {
      const T* qp2 = Q + static_cast<int64_t>(p) * dim;
      const double c = coef[p];
      for (int64_t i = 0; i < dim; ++i) r[i] = static_cast<T>(static_cast<double>(r[i]) - c * static_cast<double>(qp2[i]));
    }
  }
  double bb = 0.0;
  for (int64_t i = 0; i < dim; ++i) bb += static_cast<double>(r[i]) * static_cast<double>(r[i]);
  const double b = std::sqrt(bb);
  alpha[j] = a;
  beta[j] = b;

  // Ritz pairs of T_k, k = j + 1.
  const int k = j + 1;
  double* d = work;
  double* e = work + k;
  double* Zt = work + 2 * k;
  double amax = 0.0;
  for (int i = 0; i < k; ++i) {
    d[i] = alpha[i];
    e[i] = i + 1 < k ? beta[i] : 0.0;
    amax = std::fmax(amax, std::fabs(alpha[i]));
  }
  for (int i = 0; i < k * k; ++i) Zt[i] = 0.0;
  for (int i = 0; i < k; ++i) Zt[i * k + i] = 1.0;
  int status = kContinue;
  if (!eig::tridiagonal_ql(d, e, k, Zt)) status |= kQlFailed;
  int i1 = 0;
  for (int i = 1; i < k; ++i)
    if (d[i] > d[i1]) i1 = i;
  int i2 = -1;
  for (int i = 0; i < k; ++i)
    if (i != i1 && (i2 < 0 || d[i] > d[i2])) i2 = i;
  const double th1 = d[i1];
  const double th2 = i2 >= 0 ? d[i2] : 0.0;
  const double r1 = b * std::fabs(Zt[i1 * k + (k - 1)]);
  const double r2 = i2 >= 0 ? b * std::fabs(Zt[i2 * k + (k - 1)]) : b;
  ritz[0] = th1;
  ritz[1] = th2;
  ritz[2] = r1;
  ritz[3] = r2;
  for (int i = 0; i < K; ++i) y[i] = i < k ? Zt[i1 * k + i] : 0.0;

  const double scale = std::fabs(th1);
  const bool invariant = !(b > inv_rtol * std::fmax(scale, amax));
  const bool conv = r1 <= tol * scale && (npairs < 2 || (i2 >= 0 && r2 <= tol * scale));
  if (invariant) status |= kInvariant;
  if (conv) status |= kConverged;
  if (status == kContinue) {
    const double inv = 1.0 / b;
    for (int64_t i = 0; i < dim; ++i) r[i] = static_cast<T>(static_cast<double>(r[i]) * inv);
  }
  return status;
}

}  // namespace lanczos
}  // namespace pyadvt
