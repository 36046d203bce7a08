// Softmax / log_softmax, layer / RMS norm and dropout: forward dispatch and derivatives.
// The losses are in nn_loss.cpp.
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
#include "core/rng.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/softmax.h"
#include "ops/ops.h"
#include "ops/registry.h"

namespace dc::ops {

using autograd::GradCtx;

Reduction reduction_from_name(const std::string& name, const char* op) {
  if (name == "none") return Reduction::none;
  if (name == "mean") return Reduction::mean;
  if (name == "sum") return Reduction::sum;
  DC_THROW(ValueError, "[", op, "] reduction must be 'none', 'mean' or 'sum', got '", name, "'");
}

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
  cpu::softmax_into(y, contiguous_data(x), d, log);
  autograd::record(
      name, {x}, {y},
      [d, log](GradCtx& g) -> tensor_list {
        return {softmax_backward_data(g.grad(), g.saved(0), d, log)};
      },
      {y});
  return y;
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

Tensor softmax_backward_data(const Tensor& grad, const Tensor& y, int64_t dim, bool log) {
  if (autograd::any_requires_grad({&grad, &y})) {  // Note [Fused backward with a composite fallback]
    if (log) return grad - exp(y) * sum(grad, {dim}, true);
    return y * (grad - sum(grad * y, {dim}, true));
  }
  Tensor gx = Tensor::empty(y.sizes(), y.dtype());
  cpu::softmax_backward_into(gx, contiguous_data(to_dtype(grad, y.dtype())), contiguous_data(y),
                             dim, log);
  return gx;
}

// ---- layer_norm / rms_norm --------------------------------------------------------------------

namespace {

Tensor norm_impl(const char* name, const Tensor& x, const Shape& ns, const Tensor& w,
                 const Tensor& b, double eps, bool rms) {
  DC_CHECK(is_floating(x.dtype()), TypeError, "[", name, "] expected a floating-point input, got ",
           dtype_name(x.dtype()));
  const int64_t k = static_cast<int64_t>(ns.size());
  bool match = k >= 1 && x.dim() >= k;
  for (int64_t i = 0; match && i < k; ++i) match = x.sizes()[x.dim() - k + i] == ns[i];
  DC_CHECK(match, ValueError, "[", name, "] normalized_shape ", shape_str(ns),
           " must be non-empty and equal the trailing dims of the input, got input of shape ",
           x.shape_str());
  for (const Tensor* p : {&w, &b}) {
    if (!p->defined()) continue;
    DC_CHECK(p->sizes() == ns, ValueError, "[", name, "] ", p == &w ? "weight" : "bias",
             " must have shape normalized_shape ", shape_str(ns), ", got ", p->shape_str());
    DC_CHECK(p->dtype() == x.dtype(), TypeError, "[", name, "] ", p == &w ? "weight" : "bias",
             " dtype ", dtype_name(p->dtype()), " differs from the input's ",
             dtype_name(x.dtype()));
  }
  const int64_t N = numel_of(ns), M = N ? x.numel() / N : 0;
  Tensor y = Tensor::empty(x.sizes(), x.dtype());
  Tensor mean = Tensor::empty({M}, x.dtype()), rstd = Tensor::empty({M}, x.dtype());
  cpu::norm_forward_into(y, mean, rstd, contiguous_data(x), w.defined() ? contiguous_data(w) : w,
                         b.defined() ? contiguous_data(b) : b, N, eps, rms);
  if (!autograd::any_requires_grad({&x, &w, &b})) return y;
  const bool has_w = w.defined();
  autograd::record(
      name, {x, w, b}, {y},
      [ns, N, eps, rms, has_w](GradCtx& g) -> tensor_list {
        const Tensor x = g.saved(0), w = g.saved(1), mean = g.saved(2), rstd = g.saved(3);
        const Tensor& gr = g.grad();
        if (autograd::any_requires_grad({&gr, &x, &w})) {
          // Composite: statistics recomputed with differentiable ops.
          Shape dims;
          for (int64_t i = x.dim() - static_cast<int64_t>(ns.size()); i < x.dim(); ++i)
            dims.push_back(i);
          Tensor xm = rms ? x : x - ops::mean(x, dims, true);
          Tensor r = rsqrt(ops::mean(xm * xm, dims, true) + eps);
          Tensor xhat = xm * r;
          Tensor gw = has_w ? gr * w : gr;
          Tensor inner = gw - xhat * ops::mean(gw * xhat, dims, true);
          if (!rms) inner = inner - ops::mean(gw, dims, true);
          return {g.needs(0) ? r * inner : Tensor(), g.needs(1) ? sum_to(gr * xhat, ns) : Tensor(),
                  g.needs(2) ? sum_to(gr, ns) : Tensor()};
        }
        Tensor gx = g.needs(0) ? Tensor::empty(x.sizes(), x.dtype()) : Tensor();
        Tensor dw = g.needs(1) ? Tensor::empty(ns, x.dtype()) : Tensor();
        Tensor db = g.needs(2) ? Tensor::empty(ns, x.dtype()) : Tensor();
        cpu::norm_backward_into(gx, dw, db, contiguous_data(to_dtype(gr, x.dtype())),
                                contiguous_data(x), mean, rstd,
                                w.defined() ? contiguous_data(w) : w, N, rms);
        return {gx, dw, db};
      },
      {x, w, mean, rstd});
  return y;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  return norm_impl("layer_norm", x, normalized_shape, weight, bias, eps, false);
}

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                std::optional<double> eps) {
  const double e = eps ? *eps
                   : x.dtype() == DType::Float64 ? std::numeric_limits<double>::epsilon()
                                                 : std::numeric_limits<float>::epsilon();
  return norm_impl("rms_norm", x, normalized_shape, weight, Tensor(), e, true);
}

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
  const uint64_t n = static_cast<uint64_t>(x.numel());
  const uint64_t seed = gen.seed, start = gen.reserve((n + 3) / 4);
  cpu::dropout_mask_into(mask, p, seed, start);
  return mask;
}
}  // namespace

Tensor dropout(const Tensor& x, double p, bool training) {
  check_dropout(x, p, "dropout");
  if (!training || p == 0.0 || x.numel() == 0) return x;
  if (p == 1.0) return x * zeros({}, x.dtype());
  return x * dropout_mask(x, p);  // mul records g * mask as the derivative
}

Tensor& dropout_(Tensor& x, double p, bool training) {
  check_dropout(x, p, "dropout_");
  if (!training || p == 0.0 || x.numel() == 0) return x;
  if (p == 1.0) return mul_(x, zeros({}, x.dtype()));
  return mul_(x, dropout_mask(x, p));
}

DC_REGISTER_OPS({"softmax", "nn", Grad::differentiable},
                {"log_softmax", "nn", Grad::differentiable},
                {"layer_norm", "nn", Grad::differentiable},
                {"rms_norm", "nn", Grad::differentiable},
                {"dropout", "nn", Grad::differentiable});

}  // namespace dc::ops
