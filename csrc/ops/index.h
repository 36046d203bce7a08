#pragma once
// Indexing: gather/scatter families, masks, advanced (integer-tensor) indexing.
#include <optional>

#include "core/tensor.h"

namespace dc::ops {

Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& t, int64_t dim, const Tensor& index);
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor& scatter_(Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor& scatter_add_(Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor masked_fill(const Tensor& t, const Tensor& mask, const Tensor& value);
Tensor& masked_fill_(Tensor& t, const Tensor& mask, const Tensor& value);
Tensor masked_select(const Tensor& t, const Tensor& mask);
Tensor nonzero(const Tensor& t);  // (n, ndim) int64
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
Tensor one_hot(const Tensor& t, int64_t num_classes = -1);
// Advanced indexing: indices[i] (undefined = full slice ':') applies to dim i, PyTorch/NumPy
// rules for where the broadcast index dims land. Bool indices are converted to nonzero().
Tensor index(const Tensor& t, const tensor_list& indices);
Tensor& index_put_(Tensor& t, const tensor_list& indices, const Tensor& values,
                   bool accumulate = false);
Tensor index_put(const Tensor& t, const tensor_list& indices, const Tensor& values,
                 bool accumulate = false);

}  // namespace dc::ops
