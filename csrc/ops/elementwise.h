#pragma once
// Elementwise ops: broadcasting over any strides, PyTorch type promotion, in-place variants.
#include <optional>

#include "core/tensor.h"

namespace dc::ops {

// A Python number as a 0-d "wrapped number" tensor (lowest promotion priority).
Tensor wrap_scalar(Scalar s);
// RuntimeError naming `op` when `t` is a wrapped number that does not fit `dtype` (Note
// [Scalars out of range] in core/scalar.h); nothing for other tensors, which convert like .to().
void check_wrapped_fits(const Tensor& t, DType dtype, const char* op);
// torch.result_type over tensors (wrapped numbers included).
DType result_type(const tensor_list& tensors);

Tensor add(const Tensor& a, const Tensor& b, Scalar alpha = 1);
Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha = 1);
Tensor mul(const Tensor& a, const Tensor& b);
// rounding_mode: "" (true division), "trunc" or "floor".
Tensor div(const Tensor& a, const Tensor& b, const std::string& rounding_mode = "");
Tensor floor_divide(const Tensor& a, const Tensor& b);
Tensor remainder(const Tensor& a, const Tensor& b);
Tensor fmod(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
// g where y > 0, else 0, in one pass: relu's gradient given its output y. Differentiable in g.
Tensor relu_backward(const Tensor& g, const Tensor& y);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor atan2(const Tensor& a, const Tensor& b);
Tensor hypot(const Tensor& a, const Tensor& b);
Tensor copysign(const Tensor& a, const Tensor& b);
Tensor logaddexp(const Tensor& a, const Tensor& b);
Tensor logaddexp2(const Tensor& a, const Tensor& b);
// x * log(y), 0 where x == 0 (unless y is NaN).
Tensor xlogy(const Tensor& x, const Tensor& y);
// The next float after a towards b; not differentiable (as in torch).
Tensor nextafter(const Tensor& a, const Tensor& b);
Tensor& add_(Tensor& a, const Tensor& b, Scalar alpha = 1);
Tensor& sub_(Tensor& a, const Tensor& b, Scalar alpha = 1);
Tensor& mul_(Tensor& a, const Tensor& b);
Tensor& div_(Tensor& a, const Tensor& b);
Tensor& pow_(Tensor& a, const Tensor& b);

Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_xor(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);
Tensor bitwise_and(const Tensor& a, const Tensor& b);
Tensor bitwise_or(const Tensor& a, const Tensor& b);
Tensor bitwise_xor(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor isnan(const Tensor& a);
Tensor isinf(const Tensor& a);
Tensor isfinite(const Tensor& a);

// Unary math, one row each in ops/pointwise.def (integer inputs are promoted to float32 where
// the result is not an integer).
#define DC_POINTWISE(name, ...)   \
  Tensor name(const Tensor& a); \
  Tensor& name##_(Tensor& a);
#include "ops/pointwise.def"

// approximate: "none" (erf form) or "tanh".
Tensor gelu(const Tensor& a, const std::string& approximate = "none");
Tensor softplus(const Tensor& a, double beta = 1.0, double threshold = 20.0);
Tensor leaky_relu(const Tensor& a, double negative_slope = 0.01);
Tensor elu(const Tensor& a, double alpha = 1.0, double scale = 1.0, double input_scale = 1.0);
Tensor selu(const Tensor& a);
Tensor celu(const Tensor& a, double alpha = 1.0);
Tensor hardtanh(const Tensor& a, double min_val = -1.0, double max_val = 1.0);
Tensor relu6(const Tensor& a);
// x where x > threshold, else value.
Tensor threshold(const Tensor& a, double threshold, double value);
// x outside [-lambd, lambd], else 0; softshrink also moves x towards 0 by lambd.
Tensor hardshrink(const Tensor& a, double lambd = 0.5);
Tensor softshrink(const Tensor& a, double lambd = 0.5);
// NaN, +inf and -inf replaced (the infinities by the dtype's extremes unless given).
Tensor nan_to_num(const Tensor& a, double nan = 0.0, std::optional<double> posinf = std::nullopt,
                  std::optional<double> neginf = std::nullopt);
// The n-th derivative of digamma (n = 0 is digamma itself).
Tensor polygamma(int64_t n, const Tensor& a);
// log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is given.
Tensor logit(const Tensor& a, std::optional<double> eps = std::nullopt);
// clamp(min, max): either bound may be absent (nullptr), not both.
Tensor clamp(const Tensor& a, const Scalar* min, const Scalar* max);
Tensor clamp_tensor(const Tensor& a, const Tensor& min, const Tensor& max);
Tensor& clamp_(Tensor& a, const Scalar* min, const Scalar* max);
Tensor& leaky_relu_(Tensor& a, double negative_slope);

// Sums `grad` down to `shape` (undoing broadcasting); differentiable.
Tensor sum_to(const Tensor& grad, const Shape& shape);

// C++ operators, so derivative formulas read like math.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, wrap_scalar(s)); }
inline Tensor operator-(const Tensor& a, double s) { return sub(a, wrap_scalar(s)); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, wrap_scalar(s)); }
inline Tensor operator/(const Tensor& a, double s) { return div(a, wrap_scalar(s)); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, wrap_scalar(s)); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, wrap_scalar(s)); }
inline Tensor operator-(double s, const Tensor& a) { return sub(wrap_scalar(s), a); }

}  // namespace dc::ops
