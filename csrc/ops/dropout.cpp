// Dropout: the mask kernel (csrc/kernels/cpu/dropout.cpp) times the input; mul records the
// derivative.
#include "ops/dropout.h"

#include "autograd/grad_mode.h"
#include "core/rng.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/dropout.h"
#include "ops/ops.h"

namespace dc::ops {

// ---- dropout ----------------------------------------------------------------------------------

namespace {
void check_dropout(const Tensor& x, double p, const char* name) {
  DC_CHECK(p >= 0.0 && p <= 1.0, ValueError, "[", name,
           "] dropout probability has to be between 0 and 1, but got ", p);
  DC_CHECK(is_floating(x.dtype()), TypeError, "[", name, "] expected a floating-point tensor, got ",
           dtype_name(x.dtype()));
}

// 0 or 1 / (1 - p) per element; no autograd (a constant of the graph).
Tensor dropout_mask(const Tensor& x, double p) {
  Tensor mask = Tensor::empty(x.sizes(), x.dtype());
  Generator& gen = default_generator();
  const uint64_t seed = gen.seed, start = gen.reserve(random_fill_counters(x.numel()));
  DC_KERNEL(dropout_mask_into)(mask, p, seed, start);
  return mask;
}
}  // namespace

Tensor dropout(const Tensor& x, double p, bool training) {
  DC_OP_GUARD("dropout", x);
  check_dropout(x, p, "dropout");
  if (!training || p == 0.0 || x.numel() == 0) return x;
  if (p == 1.0) return x * zeros({}, x.dtype());
  return x * dropout_mask(x, p);  // mul records g * mask as the derivative
}

Tensor& dropout_(Tensor& x, double p, bool training) {
  DC_OP_GUARD("dropout_", x);
  check_dropout(x, p, "dropout_");
  if (!training || p == 0.0 || x.numel() == 0) return x;
  if (p == 1.0) return mul_(x, zeros({}, x.dtype()));
  return mul_(x, dropout_mask(x, p));
}

}  // namespace dc::ops
