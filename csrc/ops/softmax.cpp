// Softmax / log_softmax: forward dispatch and derivatives.
//
// Note [Fused backward with a composite fallback]
// These ops have fused backward kernels (one pass over the saved tensors), but a fused kernel
// records nothing, so it cannot be differentiated again. Their recorded derivative therefore
// checks whether a graph is being built (grad mode on, as under create_graph=True, and some
// operand requires grad): if so it computes the same formula with differentiable ops
// (composite), which gives correct higher-order gradients; otherwise it calls the kernel.
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/softmax.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;


// ---- softmax / log_softmax --------------------------------------------------------------------

namespace {
Tensor contiguous_data(const Tensor& t) { return t.is_contiguous() ? t : contiguous_clone(t); }

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  DC_CHECK(is_floating(x.dtype()), TypeError, "[", name, "] expected a floating-point tensor, got ",
           dtype_name(x.dtype()), " (pass dtype= to cast first)");
  if (x.dim() == 0) {
    wrap_dim(dim, 1, name);
    return reshape(softmax_impl(reshape(x, {1}), 0, log), {});
  }
  const int64_t d = wrap_dim(dim, x.dim(), name);
  Tensor y = Tensor::empty(x.sizes(), x.dtype());
  DC_KERNEL(softmax_into)(y, contiguous_data(x), d, log);
  autograd::record(
      name, {x}, {y},
      [d, log](GradCtx& g) -> tensor_list {
        return {softmax_backward_data(g.grad(), g.saved(0), d, log)};
      },
      {y});
  return y;
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  DC_OP_GUARD("softmax", x);
  return softmax_impl(x, dim, false);
}
Tensor log_softmax(const Tensor& x, int64_t dim) {
  DC_OP_GUARD("log_softmax", x);
  return softmax_impl(x, dim, true);
}

Tensor softmax_backward_data(const Tensor& grad, const Tensor& y, int64_t dim, bool log) {
  DC_OP_GUARD("softmax_backward_data", grad, y);
  if (autograd::any_requires_grad({&grad, &y})) {  // Note [Fused backward with a composite fallback]
    if (log) return grad - exp(y) * sum(grad, {dim}, true);
    return y * (grad - sum(grad * y, {dim}, true));
  }
  Tensor gx = Tensor::empty(y.sizes(), y.dtype());
  DC_KERNEL(softmax_backward_into)(gx, contiguous_data(to_dtype(grad, y.dtype())), contiguous_data(y),
                             dim, log);
  return gx;
}

}  // namespace dc::ops
