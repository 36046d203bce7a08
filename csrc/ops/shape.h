#pragma once
// View and shape ops. Views share storage (Note [Views] in shape.cpp); reshape copies only when
// the strides cannot express the new shape.
#include "core/tensor.h"

namespace dc::ops {

Tensor as_strided(const Tensor& t, const Shape& sizes, const Shape& strides, int64_t offset);
Tensor view(const Tensor& t, const Shape& shape);  // -1 allowed once
Tensor reshape(const Tensor& t, const Shape& shape);
Tensor permute(const Tensor& t, const Shape& dims);
Tensor transpose(const Tensor& t, int64_t d0, int64_t d1);
Tensor t_(const Tensor& t);  // .T / t(): reverse all dims (PyTorch's .T); 2-D transpose
Tensor expand(const Tensor& t, const Shape& shape);  // -1 keeps a size
Tensor squeeze(const Tensor& t);
Tensor squeeze_dim(const Tensor& t, int64_t dim);
Tensor unsqueeze(const Tensor& t, int64_t dim);
Tensor flatten(const Tensor& t, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor unflatten(const Tensor& t, int64_t dim, const Shape& sizes);
// Basic slicing along one dim, Python semantics (clamped bounds, step > 0).
Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& t, int64_t dim, int64_t index);
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
tensor_list split(const Tensor& t, int64_t split_size, int64_t dim = 0);
tensor_list split_sizes(const Tensor& t, const Shape& sizes, int64_t dim = 0);
tensor_list chunk(const Tensor& t, int64_t chunks, int64_t dim = 0);
tensor_list unbind(const Tensor& t, int64_t dim = 0);
Tensor cat(const tensor_list& tensors, int64_t dim = 0);
Tensor stack(const tensor_list& tensors, int64_t dim = 0);
Tensor flip(const Tensor& t, const Shape& dims);
Tensor repeat(const Tensor& t, const Shape& repeats);
Tensor tril(const Tensor& t, int64_t diagonal = 0);
Tensor triu(const Tensor& t, int64_t diagonal = 0);

// Resolves a single -1 in `shape` against numel; ValueError naming `op` if impossible.
Shape infer_shape(const Shape& shape, int64_t numel, const char* op);

}  // namespace dc::ops
