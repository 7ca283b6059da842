// CPU implementation of small_sym_eig: Householder tridiagonalisation + implicit QL per matrix
// (pyadvt/sym_tridiag.h), parallel over the batch.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "linalg/linalg.h"
#include "pyadvt/target_clones.h"
#include "pyadvt/sym_tridiag.h"

namespace pyadvt {
namespace {

PYADVT_TARGET_CLONES void sym_eig_float(const float* G, int k, float* evals, float* evecs, double* work, int* order) {
  eig::tridiagonal_eig<float, float>(G, k, k, evals, evecs, work, order);
}

PYADVT_TARGET_CLONES void sym_eig_double(const double* G, int k, double* evals, double* evecs, double* work,
                                         int* order) {
  eig::tridiagonal_eig<double, double>(G, k, k, evals, evecs, work, order);
}

inline void sym_eig_dispatch(const float* G, int k, float* e, float* v, double* w, int* o) { sym_eig_float(G, k, e, v, w, o); }
inline void sym_eig_dispatch(const double* G, int k, double* e, double* v, double* w, int* o) {
  sym_eig_double(G, k, e, v, w, o);
}

std::tuple<at::Tensor, at::Tensor> small_sym_eig_cpu(const at::Tensor& G) {
  validate_small_sym_eig(G);
  const int64_t B = G.size(0);
  const int k = static_cast<int>(G.size(1));
  at::Tensor evals = at::empty({B, k}, G.options());
  at::Tensor evecs = at::empty({B, k, k}, G.options());
  if (B == 0) return {evals, evecs};
  const at::Tensor Gc = G.contiguous();
  // About 10 k^3 flops per matrix: batch small k into chunks.
  const int64_t grain = std::max<int64_t>(1, 4096 / (static_cast<int64_t>(k) * k * k));
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "small_sym_eig_cpu", [&] {
    const scalar_t* gp = Gc.data_ptr<scalar_t>();
    scalar_t* ep = evals.data_ptr<scalar_t>();
    scalar_t* vp = evecs.data_ptr<scalar_t>();
    at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
      std::vector<double> work(eig::tridiagonal_eig_work(k));
      std::vector<int> order(k);
      for (int64_t b = begin; b < end; ++b) {
        sym_eig_dispatch(gp + b * k * k, k, ep + b * k, vp + b * k * k, work.data(), order.data());
      }
    });
  });
  return {evals, evecs};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyadvt, CPU, m) { m.impl("small_sym_eig", &small_sym_eig_cpu); }

}  // namespace pyadvt
