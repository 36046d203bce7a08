// Binary elementwise ops: forward dispatch and derivatives. Unary ops are in unary.cpp.
#include "ops/elementwise.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/elementwise.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;
using cpu::BinaryOp;
using cpu::CompareOp;

Tensor wrap_scalar(Scalar s) {
  const DType dt = s.is_bool() ? DType::Bool : s.is_int() ? DType::Int64 : DType::Float64;
  // On the cpu whatever the op's device, as torch keeps them: a 0-d cpu tensor goes with any
  // device (Note [The dispatcher]), and its value stays readable on the host.
  DeviceGuard on_cpu{Device{}};
  Tensor t = scalar_tensor(s, dt);
  t.impl()->is_wrapped_number = true;
  return t;
}

void check_wrapped_fits(const Tensor& t, DType dtype, const char* op) {
  DC_OP_GUARD("check_wrapped_fits", t);
  if (!t.defined() || !t.impl()->is_wrapped_number || t.dtype() == dtype || t.is_meta()) return;
  const Scalar v = t.dtype() == DType::Bool    ? Scalar(*t.data<bool>())
                   : t.dtype() == DType::Int64 ? Scalar(*t.data<int64_t>())
                                               : Scalar(*t.data<double>());
  check_scalar_fits(v, dtype, op);
}

namespace {
enum class Category { none, boolean, integral, floating };
Category category(DType d) {
  return d == DType::Bool ? Category::boolean
                          : is_floating(d) ? Category::floating : Category::integral;
}
struct PromotionState {
  bool has_dim = false, has_zero = false, has_wrapped = false;
  DType dim = DType::Bool, zero = DType::Bool, wrapped = DType::Bool;
};
// PyTorch's combine_categories: a lower-priority group only wins if its category is higher.
std::pair<bool, DType> combine(bool has_hi, DType hi, bool has_lo, DType lo) {
  if (!has_hi) return {has_lo, lo};
  if (!has_lo) return {true, hi};
  if (category(lo) > category(hi)) {
    // A float scalar with an int tensor gives the default float, not float64.
    return {true, is_floating(lo) && !is_floating(hi) ? promote_types(lo, hi) : lo};
  }
  return {true, hi};
}
}  // namespace

DType result_type(const tensor_list& tensors) {
  PromotionState st;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (t.impl()->is_wrapped_number) {
      // Python floats count as the default float dtype, ints as int64.
      const DType d = t.dtype() == DType::Float64 ? kDefaultFloat : t.dtype();
      st.wrapped = st.has_wrapped ? promote_types(st.wrapped, d) : d;
      st.has_wrapped = true;
    } else if (t.dim() == 0) {
      st.zero = st.has_zero ? promote_types(st.zero, t.dtype()) : t.dtype();
      st.has_zero = true;
    } else {
      st.dim = st.has_dim ? promote_types(st.dim, t.dtype()) : t.dtype();
      st.has_dim = true;
    }
  }
  auto [has_lo, lo] = combine(st.has_zero, st.zero, st.has_wrapped, st.wrapped);
  auto [has, r] = combine(st.has_dim, st.dim, has_lo, lo);
  return has ? r : kDefaultFloat;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  DC_OP_GUARD("sum_to", grad);
  if (grad.sizes() == shape) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  Shape dims;
  for (int64_t i = 0; i < grad.dim(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && grad.sizes()[i] != 1)) dims.push_back(i);
  }
  Tensor r = dims.empty() ? grad : sum(grad, dims, true);
  return r.sizes() == shape ? r : reshape(r, shape);
}

namespace {

Tensor cast_for(const Tensor& t, DType d, const char* op) {
  if (t.dtype() == d) return t;
  // A Python int computing in int32 must fit it; a float operand overflowing float32 is inf.
  if (is_integral(d, false)) check_wrapped_fits(t, d, op);
  Tensor out = Tensor::empty_like_layout(t.sizes(), d, {&t});
  DC_KERNEL(cast_into)(out, t);
  return out;
}

Tensor binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b, DType compute,
                     const char* name) {
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  Tensor out = Tensor::empty_like_layout(shape, compute, {&a, &b});
  DC_KERNEL(binary_into)(op, out, cast_for(a, compute, name), cast_for(b, compute, name));
  return out;
}

// Checks the divisor as the kernel sees it, in the compute dtype: an int64 divisor may wrap to 0
// in int32 (a 0-d tensor does not promote an int32 one), and x86 traps on a zero divisor.
void check_int_divisor(const Tensor& a, const Tensor& divisor, const char* name) {
  const DType compute = result_type({a, divisor});
  if (is_floating(compute)) return;
  const Tensor b = cast_for(divisor, compute, name);
  Tensor zero = scalar_tensor(Scalar(0), b.dtype());
  Tensor hit = Tensor::empty(b.sizes(), DType::Bool);
  DC_KERNEL(compare_into)(CompareOp::eq, hit, b, zero);
  if (hit.is_meta()) return;  // meta tensors have no values: the divisor cannot be checked
  const Tensor hit_host = on_host(hit);
  const bool* p = hit_host.data<bool>();
  for (int64_t i = 0, n = hit.numel(); i < n; ++i)
    DC_CHECK(!p[i], RuntimeError, "[", name, "] integer division by zero");
}

// alpha scales an operand in the compute dtype: integer math takes no float alpha (as in
// PyTorch), and an int alpha must fit the dtype.
void check_alpha(const Scalar& alpha, DType compute, const char* op) {
  DC_CHECK(!alpha.is_bool() || compute == DType::Bool, TypeError, "[", op, "] a bool alpha "
           "needs bool inputs, got ", dtype_name(compute), " inputs");
  DC_CHECK(is_floating(compute) || !alpha.is_float(), TypeError, "[", op, "] alpha must not be a "
           "floating point number for ", dtype_name(compute), " inputs, got ", scalar_str(alpha));
  check_scalar_fits(alpha, compute, op);
}

bool can_cast(DType from, DType to) {
  return !(is_floating(from) && !is_floating(to)) && !(from != DType::Bool && to == DType::Bool);
}

// a <- op(a, b) in place. Without autograd the kernel writes straight into `a`; with it the
// result is computed out of place and copied in, so copy_'s derivative links the history.
// `alpha` (add_/sub_ with alpha != 1) makes the direct path a + alpha * b.
template <typename OutOfPlace>
Tensor& inplace(Tensor& a, const Tensor& b, const char* name, BinaryOp op, OutOfPlace f,
                const double* alpha = nullptr) {
  const DType compute = result_type({a, b});
  DC_CHECK(can_cast(compute, a.dtype()), TypeError, "[", name, "] result type ",
           dtype_name(compute), " can't be cast to the destination dtype ", dtype_name(a.dtype()));
  check_inplace(a, name, b.requires_grad());
  // The result has the broadcast shape; in place, that must be a's own shape.
  const Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  DC_CHECK(shape == a.sizes(), ValueError, "[", name, "] output with shape ", a.shape_str(),
           " doesn't match the broadcast shape ", dc::shape_str(shape));
  const bool same_memory = a.storage() == b.storage();
  if (autograd::any_requires_grad({&a, &b})) {
    if ((op == BinaryOp::add || op == BinaryOp::sub) && !a.impl()->base && compute == a.dtype() &&
        !same_memory) {
      // a +/-= alpha * b saves nothing: run it in place and give `a` the op's node as its
      // history, the node reading a's old history.
      const double scale = alpha ? *alpha : op == BinaryOp::sub ? -1.0 : 1.0;
      if (alpha) DC_KERNEL(add_scaled_into)(a, a, cast_for(b, compute, name), *alpha);
      else DC_KERNEL(binary_into)(op, a, a, cast_for(b, compute, name));
      a.bump_version();
      const Shape sb = b.sizes();
      autograd::record(name, {a, b}, {a}, [sb, scale](GradCtx& g) -> tensor_list {
        return {g.needs(0) ? g.grad() : Tensor(),
                g.needs(1) ? sum_to(scale == 1.0 ? g.grad() : g.grad() * scale, sb) : Tensor()};
      });
      return a;
    }
    // The out-of-place op may save its operands for backward, and copy_ is about to overwrite
    // `a` (and `b` if it shares a's memory): hand it copies so the saved values stay valid.
    Tensor src = op == BinaryOp::add || op == BinaryOp::sub ? a : clone(a);
    Tensor other = same_memory ? clone(b) : b;
    return copy_(a, f(src, other));
  }
  if (compute != a.dtype() || same_memory) return copy_(a, f(a, b));
  if (alpha) DC_KERNEL(add_scaled_into)(a, a, cast_for(b, compute, name), *alpha);
  else DC_KERNEL(binary_into)(op, a, a, cast_for(b, compute, name));
  a.bump_version();
  return a;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, Scalar alpha) {
  DC_OP_GUARD("add", a, b);
  const DType dt = result_type({a, b});
  check_alpha(alpha, dt, "add");
  Tensor out;
  if (alpha.to_double() == 1.0) {
    out = binary_kernel(BinaryOp::add, a, b, dt, "add");
  } else {
    out = Tensor::empty_like_layout(broadcast_shapes(a.sizes(), b.sizes(), "add"), dt, {&a, &b});
    DC_KERNEL(add_scaled_into)(out, cast_for(a, dt, "add"), cast_for(b, dt, "add"),
                               alpha.to_double());
  }
  if (autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    const double al = alpha.to_double();
    autograd::record("add", {a, b}, {out}, [sa, sb, al](GradCtx& g) -> tensor_list {
      return {g.needs(0) ? sum_to(g.grad(), sa) : Tensor(),
              g.needs(1) ? sum_to(al == 1.0 ? g.grad() : g.grad() * al, sb) : Tensor()};
    });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha) {
  DC_OP_GUARD("sub", a, b);
  // Like PyTorch, any bool operand (a Python bool included) is refused, not just two.
  DC_CHECK(a.dtype() != DType::Bool && b.dtype() != DType::Bool, TypeError,
           "[sub] subtraction with a bool tensor is not supported; to invert a mask use ~ or "
           "logical_not(), for a difference of masks use logical_xor()");
  check_alpha(alpha, result_type({a, b}), "sub");
  if (alpha.to_double() != 1.0)
    return add(a, b, alpha.is_float() ? Scalar(-alpha.to_double()) : Scalar(-alpha.to_int()));
  Tensor out = binary_kernel(BinaryOp::sub, a, b, result_type({a, b}), "sub");
  if (autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    autograd::record("sub", {a, b}, {out}, [sa, sb](GradCtx& g) -> tensor_list {
      return {g.needs(0) ? sum_to(g.grad(), sa) : Tensor(),
              g.needs(1) ? sum_to(-g.grad(), sb) : Tensor()};
    });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("mul", a, b);
  Tensor out = binary_kernel(BinaryOp::mul, a, b, result_type({a, b}), "mul");
  if (autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    autograd::record(
        "mul", {a, b}, {out},
        [sa, sb](GradCtx& g) -> tensor_list {
          return {g.needs(0) ? sum_to(g.grad() * g.saved(1), sa) : Tensor(),
                  g.needs(1) ? sum_to(g.grad() * g.saved(0), sb) : Tensor()};
        },
        {a, b});
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b, const std::string& rounding_mode) {
  DC_OP_GUARD("div", a, b);
  if (rounding_mode == "floor") return floor_divide(a, b);
  if (rounding_mode == "trunc") {
    const DType dt = result_type({a, b});
    if (is_floating(dt)) return trunc(div(a, b));
    // Integers stay integers: C++ division already truncates toward zero.
    check_int_divisor(a, b, "div");
    return binary_kernel(BinaryOp::div, a, b, dt, "div");
  }
  DC_CHECK(rounding_mode.empty(), ValueError, "[div] rounding_mode must be None, 'trunc' or "
           "'floor', got '", rounding_mode, "'");
  Tensor out = binary_kernel(BinaryOp::div, a, b, to_float_dtype(result_type({a, b})), "div");
  if (autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    autograd::record(
        "div", {a, b}, {out},
        [sa, sb](GradCtx& g) -> tensor_list {
          Tensor bb = g.saved(1);
          return {g.needs(0) ? sum_to(g.grad() / bb, sa) : Tensor(),
                  g.needs(1) ? sum_to(-g.grad() * g.saved(0) / (bb * bb), sb) : Tensor()};
        },
        {a, b});
  }
  return out;
}

Tensor floor_divide(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("floor_divide", a, b);
  check_int_divisor(a, b, "floor_divide");
  return binary_kernel(BinaryOp::floor_divide, a, b, result_type({a, b}), "floor_divide");
}

Tensor remainder(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("remainder", a, b);
  check_int_divisor(a, b, "remainder");
  Tensor out = binary_kernel(BinaryOp::remainder, a, b, result_type({a, b}), "remainder");
  if (autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    autograd::record(
        "remainder", {a, b}, {out},
        [sa, sb](GradCtx& g) -> tensor_list {
          return {g.needs(0) ? sum_to(g.grad(), sa) : Tensor(),
                  g.needs(1) ? sum_to(-g.grad() * floor(g.saved(0) / g.saved(1)), sb)
                             : Tensor()};
        },
        {a, b});
  }
  return out;
}

Tensor fmod(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("fmod", a, b);
  check_int_divisor(a, b, "fmod");
  Tensor out = binary_kernel(BinaryOp::fmod, a, b, result_type({a, b}), "fmod");
  if (autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    autograd::record(
        "fmod", {a, b}, {out},
        [sa, sb](GradCtx& g) -> tensor_list {
          return {g.needs(0) ? sum_to(g.grad(), sa) : Tensor(),
                  g.needs(1) ? sum_to(-g.grad() * trunc(g.saved(0) / g.saved(1)), sb)
                             : Tensor()};
        },
        {a, b});
  }
  return out;
}

namespace {
// Shared by pow and pow_ (whose direct in-place path never calls pow).
void check_int_exponents(const Tensor& a, const Tensor& b, const char* name) {
  if (is_floating(result_type({a, b})) || is_floating(b.dtype())) return;
  Tensor neg_exp = Tensor::empty(b.sizes(), DType::Bool);
  DC_KERNEL(compare_into)(CompareOp::lt, neg_exp, b, scalar_tensor(Scalar(0), b.dtype()));
  // Meta tensors have no values: the exponents cannot be checked there.
  if (neg_exp.is_meta()) return;
  const Tensor neg_host = on_host(neg_exp);
  for (int64_t i = 0; i < neg_host.numel(); ++i)
    DC_CHECK(!neg_host.data<bool>()[i], RuntimeError,
             "[", name, "] integers to negative integer powers are not allowed");
}
}  // namespace

Tensor pow(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("pow", a, b);
  const DType dt = result_type({a, b});
  check_int_exponents(a, b, "pow");
  Tensor out = binary_kernel(BinaryOp::pow, a, b, dt, "pow");
  if (autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    autograd::record(
        "pow", {a, b}, {out},
        [sa, sb](GradCtx& g) -> tensor_list {
          // Work in the gradient's dtype: a Python-number operand (an int, or two wrapped
          // numbers meeting in `e - 1`) would otherwise be computed in float32.
          const DType gd = g.grad().dtype();
          auto in_grad_dtype = [gd](const Tensor& t) {
            return t.dtype() == gd && !t.impl()->is_wrapped_number ? t : to_dtype(t, gd, true);
          };
          Tensor x = in_grad_dtype(g.saved(0)), e = in_grad_dtype(g.saved(1));
          Tensor ga, gb;
          if (g.needs(0)) ga = sum_to(g.grad() * e * pow(x, e - 1.0), sa);
          if (g.needs(1)) {
            // d/de x^e = x^e log x, defined as 0 where x == 0 and e >= 0.
            Tensor d = g.grad() * g.saved(2) * log(x);
            Tensor zero_base = logical_and(eq(x, wrap_scalar(0.0)), ge(e, wrap_scalar(0.0)));
            gb = sum_to(where(zero_base, zeros_like(d), d), sb);
          }
          return {ga, gb};
        },
        {a, b, out});
  }
  return out;
}

namespace {
Tensor minmax(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  Tensor out = binary_kernel(op, a, b, result_type({a, b}), name);
  if (autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    const bool is_max = op == BinaryOp::maximum;
    autograd::record(
        name, {a, b}, {out},
        [sa, sb, is_max](GradCtx& g) -> tensor_list {
          Tensor x = g.saved(0), y = g.saved(1);
          // Ties split the gradient evenly, like PyTorch.
          const DType dt = g.grad().dtype();
          Tensor wins = to_dtype(is_max ? gt(x, y) : lt(x, y), dt);
          Tensor ties = to_dtype(eq(x, y), dt);
          Tensor wa = wins + ties * 0.5;
          return {g.needs(0) ? sum_to(g.grad() * wa, sa) : Tensor(),
                  g.needs(1) ? sum_to(g.grad() * (1.0 - wa), sb) : Tensor()};
        },
        {a, b});
  }
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("maximum", a, b);
  return minmax(BinaryOp::maximum, a, b, "maximum");
}

Tensor relu_backward(const Tensor& g, const Tensor& y) {
  DC_OP_GUARD("relu_backward", g, y);
  Tensor out = binary_kernel(BinaryOp::relu_grad, g, y, result_type({g, y}), "relu_backward");
  if (autograd::any_requires_grad({&g})) {
    autograd::record(
        "relu_backward", {g}, {out},
        [](GradCtx& c) -> tensor_list { return {relu_backward(c.grad(), c.saved(0))}; }, {y});
  }
  return out;
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("minimum", a, b);
  return minmax(BinaryOp::minimum, a, b, "minimum");
}

Tensor atan2(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("atan2", a, b);
  Tensor out = binary_kernel(BinaryOp::atan2, a, b, to_float_dtype(result_type({a, b})), "atan2");
  if (autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    autograd::record(
        "atan2", {a, b}, {out},
        [sa, sb](GradCtx& g) -> tensor_list {
          // In the gradient's dtype, so a Python-number operand squares in full precision.
          const DType gd = g.grad().dtype();
          auto in_grad_dtype = [gd](const Tensor& t) {
            return t.dtype() == gd && !t.impl()->is_wrapped_number ? t : to_dtype(t, gd, true);
          };
          Tensor y = in_grad_dtype(g.saved(0)), x = in_grad_dtype(g.saved(1));
          Tensor denom = y * y + x * x;
          return {g.needs(0) ? sum_to(g.grad() * x / denom, sa) : Tensor(),
                  g.needs(1) ? sum_to(-g.grad() * y / denom, sb) : Tensor()};
        },
        {a, b});
  }
  return out;
}

namespace {
// A float-valued binary op (hypot, logaddexp...): integers promote to the default float, and
// `derivative` gives both inputs' gradients from g, a, b and the output, in the gradient's dtype.
using BinaryDerivative = std::pair<Tensor, Tensor> (*)(const Tensor& g, const Tensor& a,
                                                       const Tensor& b, const Tensor& out);
Tensor float_binary(BinaryOp op, const Tensor& a, const Tensor& b, const char* name,
                    BinaryDerivative derivative) {
  Tensor out = binary_kernel(op, a, b, to_float_dtype(result_type({a, b})), name);
  if (derivative && autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    autograd::record(
        name, {a, b}, {out},
        [sa, sb, derivative](GradCtx& g) -> tensor_list {
          const DType gd = g.grad().dtype();
          auto in_grad_dtype = [gd](const Tensor& t) {
            return t.dtype() == gd && !t.impl()->is_wrapped_number ? t : to_dtype(t, gd, true);
          };
          auto [ga, gb] = derivative(g.grad(), in_grad_dtype(g.saved(0)),
                                     in_grad_dtype(g.saved(1)), g.saved(2));
          return {g.needs(0) ? sum_to(ga, sa) : Tensor(), g.needs(1) ? sum_to(gb, sb) : Tensor()};
        },
        {a, b, out});
  }
  return out;
}
Tensor zero_where_x_zero(const Tensor& x, const Tensor& v) {
  return where(eq(x, wrap_scalar(0.0)), zeros({}, v.dtype()), v);
}
}  // namespace

Tensor hypot(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("hypot", a, b);
  return float_binary(BinaryOp::hypot, a, b, "hypot",
                      [](const Tensor& g, const Tensor& x, const Tensor& y, const Tensor& r) {
                        return std::make_pair(g * x / r, g * y / r);
                      });
}
// d/da copysign(a, b) = copysign(a, b) / a, 0 at a == 0 (torch's convention); nothing for b.
Tensor copysign(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("copysign", a, b);
  return float_binary(BinaryOp::copysign, a, b, "copysign",
                      [](const Tensor& g, const Tensor& x, const Tensor&, const Tensor& r) {
                        return std::make_pair(zero_where_x_zero(x, g * r / x), zeros_like(g));
                      });
}
Tensor logaddexp(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("logaddexp", a, b);
  return float_binary(BinaryOp::logaddexp, a, b, "logaddexp",
                      [](const Tensor& g, const Tensor& x, const Tensor& y, const Tensor&) {
                        return std::make_pair(g * sigmoid(x - y), g * sigmoid(y - x));
                      });
}
Tensor logaddexp2(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("logaddexp2", a, b);
  return float_binary(BinaryOp::logaddexp2, a, b, "logaddexp2",
                      [](const Tensor& g, const Tensor& x, const Tensor& y, const Tensor&) {
                        return std::make_pair(g * sigmoid((x - y) * M_LN2),
                                              g * sigmoid((y - x) * M_LN2));
                      });
}
Tensor xlogy(const Tensor& x, const Tensor& y) {
  DC_OP_GUARD("xlogy", x, y);
  return float_binary(BinaryOp::xlogy, x, y, "xlogy",
                      [](const Tensor& g, const Tensor& a, const Tensor& b, const Tensor&) {
                        return std::make_pair(zero_where_x_zero(a, g * log(b)), g * a / b);
                      });
}
Tensor nextafter(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("nextafter", a, b);
  // Both operands keep the promoted float dtype: the step is that dtype's ulp.
  const DType dt = result_type({a, b});
  DC_CHECK(is_floating(dt), TypeError, "[nextafter] needs floating-point inputs, got ",
           dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  return float_binary(BinaryOp::nextafter, a, b, "nextafter", nullptr);
}

Tensor& add_(Tensor& a, const Tensor& b, Scalar alpha) {
  DC_OP_GUARD("add_", a, b);
  check_alpha(alpha, result_type({a, b}), "add_");
  if (alpha.to_double() != 1.0) {
    const double al = alpha.to_double();
    return inplace(a, b, "add_", BinaryOp::add,
                   [&](const Tensor& x, const Tensor& y) { return add(x, y, alpha); }, &al);
  }
  return inplace(a, b, "add_", BinaryOp::add,
                 [](const Tensor& x, const Tensor& y) { return add(x, y); });
}
Tensor& sub_(Tensor& a, const Tensor& b, Scalar alpha) {
  DC_OP_GUARD("sub_", a, b);
  check_alpha(alpha, result_type({a, b}), "sub_");
  const double neg_alpha = -alpha.to_double();
  return inplace(a, b, "sub_", BinaryOp::sub,
                 [&](const Tensor& x, const Tensor& y) { return sub(x, y, alpha); },
                 alpha.to_double() == 1.0 ? nullptr : &neg_alpha);
}
Tensor& mul_(Tensor& a, const Tensor& b) {
  DC_OP_GUARD("mul_", a, b);
  return inplace(a, b, "mul_", BinaryOp::mul,
                 [](const Tensor& x, const Tensor& y) { return mul(x, y); });
}
Tensor& div_(Tensor& a, const Tensor& b) {
  DC_OP_GUARD("div_", a, b);
  DC_CHECK(is_floating(a.dtype()), TypeError, "[div_] result type float32 can't be cast to the "
           "destination dtype ", dtype_name(a.dtype()));
  return inplace(a, b, "div_", BinaryOp::div,
                 [](const Tensor& x, const Tensor& y) { return div(x, y); });
}
Tensor& pow_(Tensor& a, const Tensor& b) {
  DC_OP_GUARD("pow_", a, b);
  check_int_exponents(a, b, "pow_");
  return inplace(a, b, "pow_", BinaryOp::pow,
                 [](const Tensor& x, const Tensor& y) { return pow(x, y); });
}

// ---- comparisons and logical ops (never differentiable) -------------------------------------

namespace {
Tensor compare(CompareOp op, const Tensor& a, const Tensor& b, const char* name) {
  const DType dt = result_type({a, b});
  const Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  Tensor out = Tensor::empty_like_layout(shape, DType::Bool, {&a, &b});
  DC_KERNEL(compare_into)(op, out, cast_for(a, dt, name), cast_for(b, dt, name));
  return out;
}
Tensor logical(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  return binary_kernel(op, cast_for(a, DType::Bool, name), cast_for(b, DType::Bool, name),
                       DType::Bool, name);
}
Tensor bitwise(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  const DType dt = result_type({a, b});
  DC_CHECK(!is_floating(dt), TypeError, "[", name, "] not implemented for dtype ", dtype_name(dt));
  return binary_kernel(op, a, b, dt, name);
}
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("eq", a, b);
  return compare(CompareOp::eq, a, b, "eq");
}
Tensor ne(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("ne", a, b);
  return compare(CompareOp::ne, a, b, "ne");
}
Tensor lt(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("lt", a, b);
  return compare(CompareOp::lt, a, b, "lt");
}
Tensor le(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("le", a, b);
  return compare(CompareOp::le, a, b, "le");
}
Tensor gt(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("gt", a, b);
  return compare(CompareOp::gt, a, b, "gt");
}
Tensor ge(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("ge", a, b);
  return compare(CompareOp::ge, a, b, "ge");
}
Tensor logical_and(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("logical_and", a, b);
  return logical(BinaryOp::logical_and, a, b, "logical_and");
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("logical_or", a, b);
  return logical(BinaryOp::logical_or, a, b, "logical_or");
}
Tensor logical_xor(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("logical_xor", a, b);
  return logical(BinaryOp::logical_xor, a, b, "logical_xor");
}
Tensor bitwise_and(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("bitwise_and", a, b);
  return bitwise(BinaryOp::bitwise_and, a, b, "bitwise_and");
}
Tensor bitwise_or(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("bitwise_or", a, b);
  return bitwise(BinaryOp::bitwise_or, a, b, "bitwise_or");
}
Tensor bitwise_xor(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("bitwise_xor", a, b);
  return bitwise(BinaryOp::bitwise_xor, a, b, "bitwise_xor");
}

Tensor logical_not(const Tensor& a) {
  DC_OP_GUARD("logical_not", a);
  Tensor out = Tensor::empty_like_layout(a.sizes(), DType::Bool, {&a});
  DC_KERNEL(unary_into)(cpu::UnaryOp::logical_not, out, a, nullptr);
  return out;
}

Tensor isnan(const Tensor& a) {
  DC_OP_GUARD("isnan", a);
  return ne(a, a);
}
Tensor isinf(const Tensor& a) {
  DC_OP_GUARD("isinf", a);
  if (!is_floating(a.dtype())) return zeros(a.sizes(), DType::Bool);
  return eq(abs(a), wrap_scalar(INFINITY));
}
Tensor isfinite(const Tensor& a) {
  DC_OP_GUARD("isfinite", a);
  if (!is_floating(a.dtype())) return ones(a.sizes(), DType::Bool);
  return logical_not(logical_or(isnan(a), isinf(a)));
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("where", cond, a, b);
  DC_CHECK(cond.dtype() == DType::Bool, TypeError, "[where] condition must be a bool tensor, got ",
           dtype_name(cond.dtype()));
  const DType dt = result_type({a, b});
  Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(),
                                 "where");
  Tensor out = Tensor::empty_like_layout(shape, dt, {&cond, &a, &b});
  check_wrapped_fits(a, dt, "where");  // a value, not an operand: float32 overflow counts too
  check_wrapped_fits(b, dt, "where");
  DC_KERNEL(where_into)(out, cond, cast_for(a, dt, "where"), cast_for(b, dt, "where"));
  if (autograd::any_requires_grad({&a, &b})) {
    const Shape sa = a.sizes(), sb = b.sizes();
    autograd::record(
        "where", {a, b}, {out},
        [sa, sb](GradCtx& g) -> tensor_list {
          Tensor c = g.saved(0), z = zeros_like(g.grad());
          return {g.needs(0) ? sum_to(where(c, g.grad(), z), sa) : Tensor(),
                  g.needs(1) ? sum_to(where(c, z, g.grad()), sb) : Tensor()};
        },
        {cond});
  }
  return out;
}

}  // namespace dc::ops
