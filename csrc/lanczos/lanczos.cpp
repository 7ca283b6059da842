// lanczos_step_: one batched Lanczos step's bookkeeping (docs/theory.md §9). The schema is a
// fragment of the pyadvt library so this family stays self-contained (the other schemas live in
// csrc/ops.cpp); backends register with TORCH_LIBRARY_IMPL(pyadvt, CPU|CUDA, m).
#include "lanczos/lanczos.h"

#include <torch/library.h>

namespace pyadvt {

namespace {
void check_contig(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_contiguous(), "pyadvt: '", name, "' must be contiguous");
}
void check_device(const at::Tensor& t, const at::Tensor& ref, const char* name) {
  TORCH_CHECK(t.device() == ref.device(), "pyadvt: '", name, "' is on ", t.device(), " but 'Q' is on ", ref.device());
}
}  // namespace

void validate_lanczos_step(const at::Tensor& Q, const at::Tensor& w, const at::Tensor& alpha, const at::Tensor& beta,
                           const at::Tensor& ritz, const at::Tensor& y, const at::Tensor& status,
                           const at::Tensor& active, int64_t j, int64_t npairs) {
  TORCH_CHECK(Q.dim() == 3 && Q.size(1) >= 2, "pyadvt: 'Q' must have shape [B, K + 1, dim] with K >= 1, got ",
              Q.sizes());
  TORCH_CHECK(Q.scalar_type() == at::kFloat || Q.scalar_type() == at::kDouble,
              "pyadvt: 'Q' must be float32 or float64, got ", Q.scalar_type());
  const int64_t B = Q.size(0), K = Q.size(1) - 1, dim = Q.size(2);
  TORCH_CHECK(w.dim() == 2 && w.size(0) == B && w.size(1) == dim && w.scalar_type() == Q.scalar_type(),
              "pyadvt: 'w' must be [B, dim] = [", B, ", ", dim, "] of Q's dtype, got ", w.sizes(), " ",
              w.scalar_type());
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{alpha, "alpha"}, {beta, "beta"}, {y, "y"}}) {
    TORCH_CHECK(t.dim() == 2 && t.size(0) == B && t.size(1) == K && t.scalar_type() == at::kDouble, "pyadvt: '",
                name, "' must be float64 [B, K] = [", B, ", ", K, "], got ", t.sizes(), " ", t.scalar_type());
  }
  TORCH_CHECK(ritz.dim() == 2 && ritz.size(0) == B && ritz.size(1) == 4 && ritz.scalar_type() == at::kDouble,
              "pyadvt: 'ritz' must be float64 [B, 4], got ", ritz.sizes(), " ", ritz.scalar_type());
  TORCH_CHECK(status.dim() == 1 && status.size(0) == B && status.scalar_type() == at::kInt,
              "pyadvt: 'status' must be int32 [B], got ", status.sizes(), " ", status.scalar_type());
  TORCH_CHECK(active.dim() == 1 && active.size(0) == B && active.scalar_type() == at::kBool,
              "pyadvt: 'active' must be bool [B], got ", active.sizes(), " ", active.scalar_type());
  TORCH_CHECK(j >= 0 && j < K, "pyadvt: 'j' must satisfy 0 <= j < K = ", K, ", got ", j);
  TORCH_CHECK(npairs == 1 || npairs == 2, "pyadvt: 'npairs' must be 1 or 2, got ", npairs);
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{Q, "Q"}, {w, "w"}, {alpha, "alpha"},
                                {beta, "beta"}, {ritz, "ritz"}, {y, "y"}, {status, "status"}, {active, "active"}}) {
    check_contig(t, name);
    check_device(t, Q, name);
  }
}

TORCH_LIBRARY_FRAGMENT(pyadvt, m) {
  // One Lanczos step on every active sample: Q [B, K+1, dim] basis (row j+1 written), w = G q_j
  // [B, dim], alpha/beta [B, K] tridiagonal (column j written), ritz [B, 4] = (theta1, theta2,
  // resid1, resid2), y [B, K] top Ritz vector in the basis, status [B] int32 (1 converged,
  // 2 invariant, 4 QL failed); active [B] cleared where the sample stops. Inactive rows untouched.
  m.def(
      "lanczos_step_(Tensor(a!) Q, Tensor w, Tensor(b!) alpha, Tensor(c!) beta, Tensor(d!) ritz, "
      "Tensor(e!) y, Tensor(f!) status, Tensor(g!) active, int j, int npairs, float tol, "
      "float invariant_rtol) -> ()");
}

}  // namespace pyadvt
