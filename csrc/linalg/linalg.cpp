// small_sym_eig / jacobian_spectrum: validation shared by every backend (schemas in csrc/ops.cpp).
#include "linalg/linalg.h"

#include "pyadvt/sym_eig.h"

namespace pyadvt {

namespace {
void check_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "pyadvt: '", name,
              "' must be float32 or float64, got ", t.scalar_type());
}
}  // namespace

void validate_small_sym_eig(const at::Tensor& G) {
  TORCH_CHECK(G.dim() == 3 && G.size(1) == G.size(2), "pyadvt: 'G' must have shape [B, k, k], got ", G.sizes());
  TORCH_CHECK(G.size(1) >= 1 && G.size(1) <= eig::kMaxK, "pyadvt: 'G' must be k x k with 1 <= k <= ", eig::kMaxK,
              ", got k=", G.size(1));
  check_float(G, "G");
}

void validate_jacobian_spectrum(const at::Tensor& J) {
  TORCH_CHECK(J.dim() == 3, "pyadvt: 'J' must have shape [B, m, n], got ", J.sizes());
  TORCH_CHECK(J.size(1) >= 1 && J.size(1) <= eig::kMaxK, "pyadvt: 'J' must have 1 <= m <= ", eig::kMaxK,
              " rows per sample, got m=", J.size(1));
  TORCH_CHECK(J.size(2) >= 1, "pyadvt: 'J' must have at least one column, got ", J.sizes());
  check_float(J, "J");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> new_jacobian_spectrum_outputs(
    const at::Tensor& J) {
  validate_jacobian_spectrum(J);
  const int64_t B = J.size(0), n = J.size(2);
  return {at::empty({B}, J.options()), at::empty({B}, J.options()), at::empty({B}, J.options()),
          at::empty({B, n}, J.options()), at::empty({B}, J.options().dtype(at::kInt))};
}

}  // namespace pyadvt
