#pragma once
// Indexing: gather/scatter families, masks, advanced (integer-tensor) indexing.
// Index tensors are int32 or int64 (bool where a mask is allowed); negative indices wrap
// (except embedding and one_hot); out-of-range indices raise IndexError naming the op, the
// value, the dim and its size.
#include <optional>

#include "core/tensor.h"

namespace dc::ops {

Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index);
// t[..., index[j], ...] += alpha * source[..., j, ...] along dim; duplicates accumulate.
Tensor index_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source,
                 Scalar alpha = 1);
Tensor& index_add_(Tensor& t, int64_t dim, const Tensor& index, const Tensor& source,
                   Scalar alpha = 1);
Tensor gather(const Tensor& t, int64_t dim, const Tensor& index);
// Like gather after broadcasting t and index in every dim but `dim`; no dim: flattened.
Tensor take_along_dim(const Tensor& t, const Tensor& index, std::optional<int64_t> dim);
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor& scatter_(Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor& scatter_add_(Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
// value: a 0-d tensor (a Python number arrives as one); mask: bool, broadcast.
Tensor masked_fill(const Tensor& t, const Tensor& mask, const Tensor& value);
Tensor& masked_fill_(Tensor& t, const Tensor& mask, const Tensor& value);
Tensor masked_select(const Tensor& t, const Tensor& mask);
Tensor nonzero(const Tensor& t);  // (n, ndim) int64
// weight (V, D), indices of any shape -> indices.shape + (D,). padding_idx < 0: none (the
// caller wraps a negative padding_idx first, like torch.nn.functional.embedding).
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
Tensor one_hot(const Tensor& t, int64_t num_classes = -1);
// Advanced indexing (Note [Advanced indexing] in index.cpp): indices[i] is an integer tensor,
// a bool mask (consuming mask.dim() dims) or undefined (a full slice ':').
Tensor index(const Tensor& t, const tensor_list& indices);
Tensor& index_put_(Tensor& t, const tensor_list& indices, const Tensor& values,
                   bool accumulate = false);
Tensor index_put(const Tensor& t, const tensor_list& indices, const Tensor& values,
                 bool accumulate = false);

}  // namespace dc::ops
