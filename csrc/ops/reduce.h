#pragma once
// Reductions over any set of dims, with keepdim. An empty `dims` means all dims.
#include <optional>

#include "core/tensor.h"

namespace dc::ops {

Tensor sum(const Tensor& t, const Shape& dims = {}, bool keepdim = false,
           std::optional<DType> dtype = std::nullopt);
Tensor mean(const Tensor& t, const Shape& dims = {}, bool keepdim = false);
Tensor prod(const Tensor& t, const Shape& dims = {}, bool keepdim = false);
Tensor amax(const Tensor& t, const Shape& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& t, const Shape& dims = {}, bool keepdim = false);
// max()/min() over all elements (0-d result); gradient split evenly among ties.
Tensor max_all(const Tensor& t);
Tensor min_all(const Tensor& t);
// (values, indices) along one dim.
std::pair<Tensor, Tensor> max_dim(const Tensor& t, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min_dim(const Tensor& t, int64_t dim, bool keepdim = false);
// No dim: index into the flattened tensor.
Tensor argmax(const Tensor& t, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& t, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor var(const Tensor& t, const Shape& dims = {}, double correction = 1, bool keepdim = false);
Tensor std(const Tensor& t, const Shape& dims = {}, double correction = 1, bool keepdim = false);
Tensor logsumexp(const Tensor& t, const Shape& dims, bool keepdim = false);
Tensor all(const Tensor& t, const Shape& dims = {}, bool keepdim = false);
Tensor any(const Tensor& t, const Shape& dims = {}, bool keepdim = false);
Tensor norm(const Tensor& t, double p = 2, const Shape& dims = {}, bool keepdim = false);
Tensor cumsum(const Tensor& t, int64_t dim);
// Running product (integers: int64), running max/min with the index each came from, and
// log(cumsum(exp(x))) computed stably; all along one dim.
Tensor cumprod(const Tensor& t, int64_t dim);
std::pair<Tensor, Tensor> cummax(const Tensor& t, int64_t dim);
std::pair<Tensor, Tensor> cummin(const Tensor& t, int64_t dim);
Tensor logcumsumexp(const Tensor& t, int64_t dim);
// Number of non-zero elements (int64) over `dims` (all if empty).
Tensor count_nonzero(const Tensor& t, const Shape& dims = {});

// The dims a reduction runs over, wrapped and deduplicated (all dims if `dims` is empty).
std::vector<bool> reduction_mask(const Tensor& t, const Shape& dims, const char* op);
// Output shape of a reduction (reduced dims become 1 with keepdim, vanish without).
Shape reduced_shape(const Shape& in, const std::vector<bool>& mask, bool keepdim);

}  // namespace dc::ops
