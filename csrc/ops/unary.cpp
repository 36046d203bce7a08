// Unary elementwise ops and activations: forward dispatch and derivatives, one table row each.
#include <cmath>
#include <functional>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/elementwise.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;
using cpu::UnaryOp;

namespace {

// d(out)/d(in) * g, from the input x, the output y and the incoming gradient g.
using Derivative = Tensor (*)(const Tensor& g, const Tensor& x, const Tensor& y);

// What a derivative reads besides the incoming gradient.
enum class Saves { none, input, output };

struct UnaryDef {
  const char* name;
  UnaryOp kernel;
  bool keeps_int;    // integer input gives integer output (neg, abs, floor...)
  Derivative deriv;  // nullptr only for the parameterised ops, which record their own node
  Saves saves;
};

Tensor mask_to(const Tensor& m, const Tensor& like) { return to_dtype(m, like.dtype()); }
Tensor s(double v) { return wrap_scalar(v); }

Tensor run_unary(const UnaryDef& d, const Tensor& a, const double* params = nullptr) {
  // Float-valued ops promote bool like int (sin(True) == sin(1.0)); integer-valued ones refuse it.
  // As in torch, sign keeps a mask and square counts in int64 (True * True == 1).
  if (a.dtype() == DType::Bool && d.kernel == UnaryOp::sign) return clone(a);
  if (a.dtype() == DType::Bool && d.kernel == UnaryOp::square) return to_dtype(a, DType::Int64);
  DC_CHECK(a.dtype() != DType::Bool || !d.keeps_int || d.kernel == UnaryOp::abs, TypeError, "[",
           d.name, "] not implemented for bool tensors");
  const DType dt = d.keeps_int ? a.dtype() : to_float_dtype(a.dtype());
  Tensor in = a.dtype() == dt ? a : to_dtype(detach(a), dt);
  Tensor out = Tensor::empty_like_layout(a.sizes(), dt, {&a});
  DC_KERNEL(unary_into)(d.kernel, out, in, params);
  return out;
}

// grad_in = f'(saved) * g in one pass: the op's fused derivative kernel (pointwise.def).
Tensor fused_backward(UnaryOp kernel, const Tensor& g, const Tensor& saved, const double* params) {
  const Tensor gs = g.dtype() == saved.dtype() ? g : to_dtype(g, saved.dtype());
  Tensor out = Tensor::empty_like_layout(saved.sizes(), saved.dtype(), {&saved, &gs});
  DC_KERNEL(unary_backward_into)(kernel, out, gs, saved, params);
  return out;
}

// Records the op's node: input `in` (its history as it is now), output `out`. A plain
// backward runs the fused kernel; one that builds a graph (create_graph, grad mode on) runs
// the derivative's differentiable Tensor expression.
void record_unary(const UnaryDef& d, const Tensor& in, const Tensor& out) {
  const Derivative deriv = d.deriv;
  const Saves saves = d.saves;
  const UnaryOp kernel = d.kernel;
  autograd::record(
      d.name, {in}, {out},
      [deriv, saves, kernel](GradCtx& g) -> tensor_list {
        const Tensor saved = saves == Saves::none ? Tensor() : g.saved(0);
        if (!autograd::grad_enabled())
          return {fused_backward(kernel, g.grad(), saved.defined() ? saved : g.grad(), nullptr)};
        return {deriv(g.grad(), saves == Saves::input ? saved : Tensor(),
                      saves == Saves::output ? saved : Tensor())};
      },
      saves == Saves::input ? tensor_list{in} : saves == Saves::output ? tensor_list{out}
                                                                        : tensor_list{});
}

Tensor unary_op(const UnaryDef& d, const Tensor& a) {
  Tensor out = run_unary(d, a);
  if (autograd::any_requires_grad({&a})) record_unary(d, a, out);
  return out;
}

Tensor unary_inplace(const UnaryDef& d, Tensor& a) {
  check_inplace(a, d.name);
  DC_CHECK(a.dtype() != DType::Bool || !d.keeps_int || d.kernel == UnaryOp::abs ||
               d.kernel == UnaryOp::sign, TypeError, "[", d.name, "_] not implemented for bool "
           "tensors in place", d.kernel == UnaryOp::square ? " (square gives int64)" : "");
  if (a.dtype() == DType::Bool && d.kernel == UnaryOp::sign) return a;  // sign(mask) == mask
  const DType dt = d.keeps_int ? a.dtype() : to_float_dtype(a.dtype());
  DC_CHECK(dt == a.dtype(), TypeError, "[", d.name, "_] result type ", dtype_name(dt),
           " can't be cast to the destination dtype ", dtype_name(a.dtype()));
  const bool grad = autograd::any_requires_grad({&a});
  // An op that saves its input needs it intact, and a view's base needs its history
  // rewritten (Note [In-place on views]): both go out of place, then copy_ into `a`.
  const bool saves_input = d.saves == Saves::input;
  if (grad && (saves_input || a.impl()->base))
    return copy_(a, unary_op(d, saves_input ? clone(a) : a));
  DC_KERNEL(unary_into)(d.kernel, a, a, nullptr);
  a.bump_version();
  // Otherwise `a` takes the op's node as its history, the op reading its old history (the
  // output it saves is `a` at its new version, as in torch's relu_).
  if (grad) record_unary(d, a, a);
  return a;
}

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

#define D(expr) [](const Tensor& g, const Tensor& x, const Tensor& y) -> Tensor { return expr; }
// The pointwise ops' rows: <name>_def, with its kernel, dtype rule, derivative and what it saves.
#define DC_POINTWISE(fn, keeps_int, saves, forward, derivative, fused) \
  const UnaryDef fn##_def{#fn, UnaryOp::fn, keeps_int, D(derivative), Saves::saves};
#include "ops/pointwise.def"

const UnaryDef kGeluErf{"gelu", UnaryOp::gelu_erf, false, D([&] {
                          Tensor cdf = (erf(x * M_SQRT1_2) + 1.0) * 0.5;
                          Tensor pdf = exp(x * x * -0.5) * kInvSqrt2Pi;
                          return g * (cdf + x * pdf);
                        }()), Saves::input};
const UnaryDef kGeluTanh{"gelu", UnaryOp::gelu_tanh, false, D([&] {
                           Tensor x2 = x * x;
                           Tensor t = tanh((x + x2 * x * 0.044715) * kSqrt2OverPi);
                           Tensor left = (t + 1.0) * 0.5;
                           Tensor right = x * (1.0 - t * t) * (x2 * (3 * 0.044715) + 1.0) *
                                          (0.5 * kSqrt2OverPi);
                           return g * (left + right);
                         }()), Saves::input};
#undef D

}  // namespace

#define DC_DEFINE_UNARY(fn, def)                                          \
  Tensor fn(const Tensor& a) {                                            \
    DC_OP_GUARD(#fn, a);                                                  \
    return unary_op(def, a);                                              \
  }                                                                       \
  Tensor& fn##_(Tensor& a) {                                              \
    DC_OP_GUARD(#fn "_", a);                                              \
    unary_inplace(def, a);                                                \
    return a;                                                             \
  }
#define DC_POINTWISE(fn, ...) DC_DEFINE_UNARY(fn, fn##_def)
#include "ops/pointwise.def"
#undef DC_DEFINE_UNARY

Tensor gelu(const Tensor& a, const std::string& approximate) {
  DC_OP_GUARD("gelu", a);
  DC_CHECK(approximate == "none" || approximate == "tanh", ValueError,
           "[gelu] approximate must be 'none' or 'tanh', got '", approximate, "'");
  return unary_op(approximate == "tanh" ? kGeluTanh : kGeluErf, a);
}

namespace {
// Parameterised activations: the kernel and its fused derivative take `params`; `derivative`
// is the differentiable expression for backward passes that build a graph.
using ParamDerivative = std::function<Tensor(const Tensor& g, const Tensor& x)>;
Tensor param_unary(const char* name, UnaryOp kernel, const Tensor& a, std::vector<double> params,
                   ParamDerivative derivative) {
  UnaryDef d{name, kernel, false, nullptr, Saves::input};
  Tensor out = run_unary(d, a, params.data());
  autograd::record(
      name, {a}, {out},
      [kernel, params, derivative](GradCtx& g) -> tensor_list {
        if (!autograd::grad_enabled())
          return {fused_backward(kernel, g.grad(), g.saved(0), params.data())};
        return {derivative(g.grad(), g.saved(0))};
      },
      {a});
  return out;
}
}  // namespace

Tensor softplus(const Tensor& a, double beta, double threshold) {
  DC_OP_GUARD("softplus", a);
  return param_unary("softplus", UnaryOp::softplus, a, {beta, threshold},
                     [beta, threshold](const Tensor& g, const Tensor& x) {
                       Tensor bx = x * beta;
                       return where(gt(bx, s(threshold)), g, g * sigmoid(bx));
                     });
}

Tensor leaky_relu(const Tensor& a, double slope) {
  DC_OP_GUARD("leaky_relu", a);
  return param_unary("leaky_relu", UnaryOp::leaky_relu, a, {slope},
                     [slope](const Tensor& g, const Tensor& x) {
                       return where(gt(x, s(0.0)), g, g * slope);
                     });
}

Tensor& leaky_relu_(Tensor& a, double slope) {
  DC_OP_GUARD("leaky_relu_", a);
  check_inplace(a, "leaky_relu_");
  if (autograd::any_requires_grad({&a})) return copy_(a, leaky_relu(clone(a), slope));
  DC_CHECK(is_floating(a.dtype()), TypeError, "[leaky_relu_] needs a floating-point tensor");
  DC_KERNEL(unary_into)(UnaryOp::leaky_relu, a, a, &slope);
  a.bump_version();
  return a;
}

Tensor elu(const Tensor& a, double alpha, double scale, double input_scale) {
  DC_OP_GUARD("elu", a);
  return param_unary("elu", UnaryOp::elu, a, {alpha, scale, input_scale},
                     [alpha, scale, input_scale](const Tensor& g, const Tensor& x) {
                       Tensor neg_side = g * exp(x * input_scale) * (scale * alpha * input_scale);
                       return where(gt(x, s(0.0)), g * scale, neg_side);
                     });
}

namespace {
// The largest finite value of a's floating dtype (float32 for integer inputs).
double largest_finite(const Tensor& a) {
  switch (a.dtype()) {
    case DType::Float64: return std::numeric_limits<double>::max();
    case DType::BFloat16: return 3.3895313892515355e38;  // (2 - 2^-7) 2^127
    case DType::Float16: return 65504.0;
    default: return std::numeric_limits<float>::max();
  }
}
}  // namespace

Tensor threshold(const Tensor& a, double th, double value) {
  DC_OP_GUARD("threshold", a);
  return param_unary("threshold", UnaryOp::threshold, a, {th, value},
                     [th](const Tensor& g, const Tensor& x) {
                       return where(le(x, s(th)), zeros({}, g.dtype()), g);
                     });
}

namespace {
Tensor shrink_derivative(const Tensor& g, const Tensor& x, double lambd) {
  return where(logical_and(ge(x, s(-lambd)), le(x, s(lambd))), zeros({}, g.dtype()), g);
}
}  // namespace

Tensor hardshrink(const Tensor& a, double lambd) {
  DC_OP_GUARD("hardshrink", a);
  return param_unary("hardshrink", UnaryOp::hardshrink, a, {lambd},
                     [lambd](const Tensor& g, const Tensor& x) {
                       return shrink_derivative(g, x, lambd);
                     });
}

Tensor softshrink(const Tensor& a, double lambd) {
  DC_OP_GUARD("softshrink", a);
  const double top = largest_finite(a);
  DC_CHECK(lambd >= 0 && lambd <= top, ValueError, "[softshrink] lambd must be in [0, ", top,
           "] for ", dtype_name(to_float_dtype(a.dtype())), ", got ", lambd);
  return param_unary("softshrink", UnaryOp::softshrink, a, {lambd},
                     [lambd](const Tensor& g, const Tensor& x) {
                       return shrink_derivative(g, x, lambd);
                     });
}

Tensor nan_to_num(const Tensor& a, double nan, std::optional<double> posinf,
                  std::optional<double> neginf) {
  DC_OP_GUARD("nan_to_num", a);
  if (!is_floating(a.dtype())) return clone(a);
  const double big = largest_finite(a);
  return param_unary("nan_to_num", UnaryOp::nan_to_num, a,
                     {nan, posinf.value_or(big), neginf.value_or(-big)},
                     [](const Tensor& g, const Tensor& x) {
                       return where(isfinite(x), g, zeros({}, g.dtype()));
                     });
}

Tensor polygamma(int64_t n, const Tensor& a) {
  DC_OP_GUARD("polygamma", a);
  DC_CHECK(n >= 0, ValueError, "[polygamma] n must be non-negative, got ", n);
  // Beyond 170, n! overflows float64 and every finite result with it.
  DC_CHECK(n <= 170, ValueError, "[polygamma] n must be at most 170 (n! overflows), got ", n);
  return param_unary("polygamma", UnaryOp::polygamma, a, {static_cast<double>(n)},
                     [n](const Tensor& g, const Tensor& x) { return g * polygamma(n + 1, x); });
}

Tensor logit(const Tensor& a, std::optional<double> eps) {
  DC_OP_GUARD("logit", a);
  const double e = eps.value_or(0.0), has = eps ? 1.0 : 0.0;
  return param_unary("logit", UnaryOp::logit, a, {e, has}, [e, has](const Tensor& g,
                                                                  const Tensor& x) {
    Tensor d = g / (x * (1.0 - x));
    if (has == 0.0) return d;
    return where(logical_or(lt(x, s(e)), gt(x, s(1.0 - e))), zeros({}, d.dtype()), d);
  });
}

Tensor selu(const Tensor& a) {
  DC_OP_GUARD("selu", a);
  return elu(a, 1.6732632423543772848170429916717, 1.0507009873554804934193349852946, 1.0);
}
Tensor celu(const Tensor& a, double alpha) {
  DC_OP_GUARD("celu", a);
  return elu(a, alpha, 1.0, 1.0 / alpha);
}

namespace {
// clamp and hardtanh share the forward; their gradients differ at the bounds: clamp passes
// the gradient where min <= x <= max, hardtanh (like PyTorch) only where min < x < max.
Tensor clamp_impl(const Tensor& a, const Scalar* min, const Scalar* max, const char* name,
                  bool open_interval) {
  DC_CHECK(min || max, ValueError, "[", name, "] at least one of min and max must be given");
  // A float bound on an int tensor promotes, like PyTorch.
  tensor_list parts{a};
  if (min) parts.push_back(wrap_scalar(*min));
  if (max) parts.push_back(wrap_scalar(*max));
  const DType dt = result_type(parts);
  if (min) check_scalar_fits(*min, dt, name);
  if (max) check_scalar_fits(*max, dt, name);
  const double lo = min ? min->to_double() : 0.0, hi = max ? max->to_double() : 0.0;
  const double params[4] = {lo, hi, min ? 1.0 : 0.0, max ? 1.0 : 0.0};
  Tensor in = a.dtype() == dt ? a : to_dtype(detach(a), dt);
  Tensor out = Tensor::empty_like_layout(a.sizes(), dt, {&a});
  DC_KERNEL(unary_into)(UnaryOp::clamp, out, in, params);
  const bool has_min = min, has_max = max;
  autograd::record(
      name, {a}, {out},
      [lo, hi, has_min, has_max, open_interval](GradCtx& g) -> tensor_list {
        Tensor x = g.saved(0);
        if (!autograd::grad_enabled() && is_floating(x.dtype())) {
          const double p[5] = {lo, hi, double(has_min), double(has_max), double(open_interval)};
          return {fused_backward(UnaryOp::clamp, g.grad(), x, p)};
        }
        Tensor keep = ones(x.sizes(), DType::Bool);
        if (has_min) keep = logical_and(keep, open_interval ? gt(x, s(lo)) : ge(x, s(lo)));
        if (has_max) keep = logical_and(keep, open_interval ? lt(x, s(hi)) : le(x, s(hi)));
        return {g.grad() * mask_to(keep, g.grad())};
      },
      {a});
  return out;
}
}  // namespace

Tensor clamp(const Tensor& a, const Scalar* min, const Scalar* max) {
  DC_OP_GUARD("clamp", a);
  return clamp_impl(a, min, max, "clamp", false);
}

Tensor& clamp_(Tensor& a, const Scalar* min, const Scalar* max) {
  DC_OP_GUARD("clamp_", a);
  check_inplace(a, "clamp_");
  // clamp saves its input for backward and copy_ overwrites `a`: clamp a copy under autograd.
  Tensor r = clamp(autograd::any_requires_grad({&a}) ? clone(a) : a, min, max);
  // A bound of a higher category promotes the result (float bound, int tensor): no way back.
  DC_CHECK(r.dtype() == a.dtype(), TypeError, "[clamp_] result type ", dtype_name(r.dtype()),
           " can't be cast to the destination dtype ", dtype_name(a.dtype()));
  return copy_(a, r);
}

// Tensor bounds. The derivative is torch's (clamp_backward_min_max), not maximum/minimum's tie
// split: x keeps the whole gradient on the closed interval [min, max], a bound gets it only
// where it was strictly active (min only if min < max; max wins when max < min).
Tensor clamp_tensor(const Tensor& a, const Tensor& min, const Tensor& max) {
  DC_OP_GUARD("clamp_tensor", a, min, max);
  Tensor r = a;
  {
    autograd::GradModeGuard off(false);
    if (min.defined()) r = maximum(r, min);
    if (max.defined()) r = minimum(r, max);
  }
  if (r.is_same(a) || !autograd::any_requires_grad({&a, &min, &max})) return r;
  const Shape smin = min.defined() ? min.sizes() : Shape{};
  const Shape smax = max.defined() ? max.sizes() : Shape{};
  autograd::record(
      "clamp", {a, min, max}, {r},
      [sa = a.sizes(), smin, smax](GradCtx& g) -> tensor_list {
        const Tensor x = g.saved(0), lo = g.saved(1), hi = g.saved(2);
        const Tensor zero = zeros({}, g.grad().dtype());
        auto grad_where = [&](const Tensor& pred, const Shape& shape) {
          return sum_to(where(pred, g.grad(), zero), shape);
        };
        Tensor gx, glo, ghi;
        if (g.needs(0)) {
          Tensor inside = lo.defined() ? ge(x, lo) : Tensor();
          if (hi.defined()) inside = inside.defined() ? logical_and(inside, le(x, hi)) : le(x, hi);
          gx = grad_where(inside, sa);
        }
        if (g.needs(1)) {
          const Tensor below = lt(x, lo);
          glo = grad_where(hi.defined() ? logical_and(below, lt(lo, hi)) : below, smin);
        }
        if (g.needs(2)) {
          const Tensor above = gt(x, hi);
          ghi = grad_where(lo.defined() ? logical_or(above, lt(hi, lo)) : above, smax);
        }
        return {gx, glo, ghi};
      },
      {a, min, max});
  return r;
}

Tensor hardtanh(const Tensor& a, double min_val, double max_val) {
  DC_OP_GUARD("hardtanh", a);
  DC_CHECK(min_val <= max_val, ValueError, "[hardtanh] min_val (", min_val,
           ") cannot be greater than max_val (", max_val, ")");
  // Integer inputs keep their dtype, as in torch: the bounds are truncated to integers.
  if (is_integral(a.dtype(), false)) {
    for (double v : {min_val, max_val})
      DC_CHECK(std::isfinite(v) && std::fabs(v) < 9.2e18, RuntimeError, "[hardtanh] bound ", v,
               " cannot be converted to ", dtype_name(a.dtype()), " without overflow");
    Scalar lo(static_cast<int64_t>(min_val)), hi(static_cast<int64_t>(max_val));
    return clamp_impl(a, &lo, &hi, "hardtanh", true);
  }
  Scalar lo(min_val), hi(max_val);
  return clamp_impl(a, &lo, &hi, "hardtanh", true);
}
Tensor relu6(const Tensor& a) {
  DC_OP_GUARD("relu6", a);
  return hardtanh(a, 0.0, 6.0);
}

}  // namespace dc::ops
