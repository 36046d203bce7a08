#pragma once
// Creation, copies and casts.
#include "core/tensor.h"

namespace dc::ops {

Tensor empty(const Shape& shape, DType dtype = DType::Float32);
Tensor full(const Shape& shape, Scalar value, DType dtype);
Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, Scalar value);
Tensor scalar_tensor(Scalar value, DType dtype);
Tensor arange(double start, double end, double step, DType dtype);
Tensor linspace(double start, double end, int64_t steps, DType dtype);
Tensor eye(int64_t n, int64_t m, DType dtype);

// RNG (see core/rng.h): reproducible under manual_seed whatever the thread count.
Tensor rand(const Shape& shape, DType dtype = DType::Float32);
Tensor randn(const Shape& shape, DType dtype = DType::Float32);
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = DType::Int64);
Tensor randperm(int64_t n, DType dtype = DType::Int64);
Tensor& uniform_(Tensor& t, double low, double high);
Tensor& normal_(Tensor& t, double mean, double std);
// Fills t with 1 (probability p) or 0.
Tensor& bernoulli_(Tensor& t, double p = 0.5);
Tensor bernoulli(const Tensor& p);
// num_samples category indices (int64) per row of p (1-D or 2-D weights, not necessarily
// normalised); without replacement each row's samples are distinct.
Tensor multinomial(const Tensor& p, int64_t num_samples, bool replacement);

// A new TensorImpl over the same storage and geometry, with no autograd history.
Tensor alias(const Tensor& t);
Tensor detach(const Tensor& t);
// Contiguous copy (always copies); differentiable.
Tensor clone(const Tensor& t);
// Contiguous copy that never records autograd (engine internals).
Tensor contiguous_clone(const Tensor& t);
Tensor contiguous(const Tensor& t);  // returns t itself when already contiguous
Tensor to_dtype(const Tensor& t, DType dtype, bool copy = false);
Tensor to_device(const Tensor& t, Device device, bool non_blocking = false);
// `t` itself on the cpu, else a copy there (no autograd): for code that reads values on the host.
Tensor on_host(const Tensor& t);
// dst[...] = src (broadcast), in place; differentiable like PyTorch's copy_.
Tensor& copy_(Tensor& dst, const Tensor& src);
Tensor& fill_(Tensor& t, Scalar value);
Tensor& zero_(Tensor& t);

// Checks for in-place writes: refuses a leaf that requires grad (under grad mode) and views
// of tensors that require grad (Note [In-place on views] in creation.cpp).
void check_inplace(const Tensor& t, const char* op, bool values_require_grad = false);
// True when an in-place write into `t` must go through copy_ so that a view's base gets the
// history (Note [In-place on views]): grad mode on, `t` is a view, and autograd is involved.
bool inplace_into_view_needs_history(const Tensor& t, bool values_require_grad);

}  // namespace dc::ops
