// Indexing ops: index_select/index_add, gather/scatter, masks, embedding, one_hot, and
// advanced indexing (index / index_put_), forward dispatch and derivative together.
//
// Every user index goes through checked_index() before a kernel sees it (Note [Index kernels
// trust their indices] in kernels/cpu/index.h): int32/int64 only, each value checked against
// the size of its dim, negatives wrapped, copied into a fresh int64 tensor. Derivatives capture
// that copy, so an index tensor modified after the forward cannot change the gradient.
// A 0-d tensor behaves as a 1-element 1-d tensor along dim 0, as in PyTorch.
#include "ops/index.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/index.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;

namespace {

void check_index_dtype(const Tensor& index, const char* op) {
  DC_CHECK(is_integral(index.dtype(), false), TypeError, "[", op,
           "] index must be an int32 or int64 tensor, got ", dtype_name(index.dtype()));
}

// A fresh contiguous int64 copy of `index` (same shape), every value checked against `size`
// (the size of dimension `dim`) and negatives wrapped unless `allow_negative` is false.
Tensor checked_index(const Tensor& index, int64_t size, const char* op, int64_t dim,
                     bool allow_negative = true) {
  check_index_dtype(index, op);
  Tensor w = Tensor::empty(index.sizes(), DType::Int64);
  DC_KERNEL(cast_into)(w, index);
  // On meta the kernel answers "in range": there are no values to check.
  int64_t bad = 0;
  DC_CHECK(DC_KERNEL(wrap_index)(w, size, allow_negative, &bad), IndexError, "[", op, "] index ", bad, " is out of bounds for dimension ", dim,
           " with size ", size);
  return w;
}

// A raw alias (no autograd) with new geometry over the same storage.
Tensor raw_view(const Tensor& t, Shape sizes, Shape strides) {
  return Tensor::make_view(t.storage(), std::move(sizes), std::move(strides), t.offset(),
                           t.dtype());
}
Tensor at_least_1d(const Tensor& t) { return t.dim() == 0 ? raw_view(t, {1}, {1}) : t; }
Tensor flat(const Tensor& contiguous) {
  return raw_view(contiguous, {contiguous.numel()}, {1});
}

// Element offsets idx * stride (a fresh tensor; idx is kept for the derivative).
Tensor scaled(const Tensor& idx, int64_t stride) {
  Tensor off = Tensor::empty(idx.sizes(), DType::Int64);
  DC_KERNEL(binary_into)(cpu::BinaryOp::mul, off, idx, scalar_tensor(stride, DType::Int64));
  return off;
}

// Dims [0, first) are outer, dims (last, ndim) inner; the block between is indexed.
cpu::IndexGeometry geometry(const Shape& sizes, const Shape& strides, int64_t first,
                            int64_t last) {
  cpu::IndexGeometry g;
  g.outer_sizes.assign(sizes.begin(), sizes.begin() + first);
  g.outer_strides.assign(strides.begin(), strides.begin() + first);
  g.inner_sizes.assign(sizes.begin() + last + 1, sizes.end());
  g.inner_strides.assign(strides.begin() + last + 1, strides.end());
  return g;
}

// In-place writes need each element to own its memory: an expanded tensor (stride 0 on a dim
// of size > 1) would silently combine writes.
void check_no_internal_overlap(const Tensor& t, const char* op) {
  if (t.numel() == 0) return;  // nothing is written (numpy gives empty arrays 0 strides)
  for (int64_t d = 0; d < t.dim(); ++d)
    DC_CHECK(!(t.sizes()[d] > 1 && t.strides()[d] == 0), RuntimeError, "[", op,
             "] cannot write in place into a tensor whose elements share memory (shape ",
             t.shape_str(), ", strides ", shape_str(t.strides()), "); clone() it first");
}

// src if it may be read while dst is written, else a private copy.
Tensor unaliased(const Tensor& src, const Tensor& dst) {
  return src.storage() == dst.storage() ? contiguous_clone(src) : src;
}

// Pads x with zeros at the end of each dim up to `shape` (differentiable, via cat).
Tensor zero_pad_to(Tensor x, const Shape& shape) {
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.sizes()[d] == shape[d]) continue;
    Shape z = x.sizes();
    z[d] = shape[d] - x.sizes()[d];
    x = cat({x, zeros(z, x.dtype())}, d);
  }
  return x;
}

Tensor zero_scalar(DType dtype) { return zeros({}, dtype); }

// Whether `from` broadcasts to exactly `to`.
bool broadcastable_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const size_t lead = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[lead + i]) return false;
  return true;
}

}  // namespace

// ---- index_select / index_add ----------------------------------------------------------------

Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index) {
  DC_OP_GUARD("index_select", t, index);
  check_index_dtype(index, "index_select");
  DC_CHECK(index.dim() <= 1, IndexError, "[index_select] index must be 1-D or 0-d, got shape ",
           index.shape_str());
  const Tensor src = at_least_1d(t);
  dim = wrap_dim(dim, src.dim(), "index_select");
  const Tensor idx = flat(checked_index(index, src.sizes()[dim], "index_select", dim));
  if (t.dim() == 0)
    DC_CHECK(idx.numel() == 1, IndexError, "[index_select] indexing a 0-d tensor takes exactly "
             "one index, got ", idx.numel());
  Shape out_shape = src.sizes();
  out_shape[dim] = idx.numel();
  Tensor out = Tensor::empty(t.dim() == 0 ? Shape{} : out_shape, t.dtype());
  DC_KERNEL(index_gather)(at_least_1d(out), src, geometry(src.sizes(), src.strides(), dim, dim),
                    scaled(idx, src.strides()[dim]));
  if (autograd::any_requires_grad({&t})) {
    autograd::record("index_select", {t}, {out},
                     [in = t.sizes(), dim, idx](GradCtx& g) -> tensor_list {
                       return {index_add(zeros(in, g.grad().dtype()), dim, idx, g.grad())};
                     });
  }
  return out;
}

namespace {

// dst[.., idx[j], ..] += alpha * source[.., j, ..]; checks, runs the kernel, returns the index.
Tensor index_add_kernel(const Tensor& dst, int64_t dim, const Tensor& index,
                        const Tensor& source, Scalar alpha, const char* op) {
  check_index_dtype(index, op);
  DC_CHECK(index.dim() <= 1, IndexError, "[", op, "] index must be 1-D or 0-d, got shape ",
           index.shape_str());
  const Tensor d = at_least_1d(dst);
  dim = wrap_dim(dim, d.dim(), op);
  const Tensor idx = flat(checked_index(index, d.sizes()[dim], op, dim));
  Shape expect = d.sizes();
  expect[dim] = idx.numel();
  const bool scalar_like = dst.dim() == 0 && source.numel() == idx.numel() && source.dim() <= 1;
  DC_CHECK(scalar_like || source.sizes() == expect, ValueError, "[", op, "] source of shape ",
           source.shape_str(), " does not match self of shape ", dst.shape_str(), " with ",
           idx.numel(), " indices along dim ", dim, ": expected ", shape_str(expect));
  DC_CHECK(source.dtype() == dst.dtype(), TypeError, "[", op, "] source dtype ",
           dtype_name(source.dtype()), " does not match self dtype ", dtype_name(dst.dtype()));
  check_no_internal_overlap(d, op);
  Tensor v;
  {
    autograd::GradModeGuard off(false);
    v = alpha.to_double() == 1.0 ? source : mul(source, scalar_tensor(alpha, dst.dtype()));
    if (!v.is_contiguous() || v.storage() == dst.storage()) v = contiguous_clone(v);
  }
  DC_KERNEL(index_scatter)(d, v, geometry(d.sizes(), d.strides(), dim, dim),
                     scaled(idx, d.strides()[dim]), /*accumulate=*/true);
  return idx;
}

autograd::BackwardFn index_add_backward(int64_t dim, Tensor idx, Scalar alpha, Shape src_shape) {
  return [dim, idx, alpha, src_shape](GradCtx& g) -> tensor_list {
    Tensor gs;
    if (g.needs(1)) {
      gs = reshape(index_select(g.grad(), dim, idx), src_shape);
      if (alpha.to_double() != 1.0) gs = gs * alpha.to_double();
    }
    return {g.needs(0) ? g.grad() : Tensor(), gs};
  };
}

}  // namespace

Tensor& index_add_(Tensor& t, int64_t dim, const Tensor& index, const Tensor& source,
                   Scalar alpha) {
  DC_OP_GUARD("index_add_", t, index, source);
  check_inplace(t, "index_add_", source.requires_grad());
  if (inplace_into_view_needs_history(t, source.requires_grad()))
    return copy_(t, index_add(t, dim, index, source, alpha));
  const Tensor idx = index_add_kernel(t, dim, index, source, alpha, "index_add_");
  t.bump_version();
  if (autograd::any_requires_grad({&t, &source}))
    autograd::record("index_add_", {t, source}, {t},
                     index_add_backward(dim, idx, alpha, source.sizes()));
  return t;
}

Tensor index_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source,
                 Scalar alpha) {
  DC_OP_GUARD("index_add", t, index, source);
  Tensor out = contiguous_clone(t);
  const Tensor idx = index_add_kernel(out, dim, index, source, alpha, "index_add");
  if (autograd::any_requires_grad({&t, &source}))
    autograd::record("index_add", {t, source}, {out},
                     index_add_backward(dim, idx, alpha, source.sizes()));
  return out;
}

// ---- gather / scatter ------------------------------------------------------------------------

Tensor gather(const Tensor& t, int64_t dim, const Tensor& index) {
  DC_OP_GUARD("gather", t, index);
  check_index_dtype(index, "gather");
  const Tensor src = at_least_1d(t), ix = at_least_1d(index);
  DC_CHECK(ix.dim() == src.dim(), ValueError, "[gather] index (shape ", index.shape_str(),
           ") must have as many dims as input (shape ", t.shape_str(), ")");
  dim = wrap_dim(dim, src.dim(), "gather");
  for (int64_t d = 0; d < src.dim(); ++d)
    DC_CHECK(d == dim || ix.sizes()[d] <= src.sizes()[d], ValueError, "[gather] index (shape ",
             index.shape_str(), ") is larger than input (shape ", t.shape_str(),
             ") in dimension ", d);
  const Tensor idx = checked_index(index, src.sizes()[dim], "gather", dim);
  Tensor out = Tensor::empty(index.sizes(), t.dtype());
  DC_KERNEL(gather_dim)(at_least_1d(out), src, dim, at_least_1d(idx));
  if (autograd::any_requires_grad({&t})) {
    autograd::record("gather", {t}, {out}, [in = t.sizes(), dim, idx](GradCtx& g) -> tensor_list {
      return {scatter_add(zeros(in, g.grad().dtype()), dim, idx, g.grad())};
    });
  }
  return out;
}

Tensor take_along_dim(const Tensor& t, const Tensor& index, std::optional<int64_t> dim) {
  DC_OP_GUARD("take_along_dim", t, index);
  check_index_dtype(index, "take_along_dim");
  if (!dim) return gather(reshape(t, {t.numel()}), 0, reshape(index, {index.numel()}));
  DC_CHECK(t.dim() == index.dim(), ValueError, "[take_along_dim] input (shape ", t.shape_str(),
           ") and indices (shape ", index.shape_str(), ") must have the same number of dims");
  const int64_t d = wrap_dim(*dim, t.dim(), "take_along_dim");
  Shape ts = t.sizes(), is = index.sizes();
  ts[d] = is[d] = 1;
  const Shape b = broadcast_shapes(ts, is, "take_along_dim");
  Shape tb = b, ib = b;
  tb[d] = t.sizes()[d];
  ib[d] = index.sizes()[d];
  return gather(expand(t, tb), d, expand(index, ib));
}

namespace {

// Checks scatter(dst, dim, index, src) and runs the kernel; returns the checked index.
Tensor scatter_kernel(const Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src,
                      bool accumulate, const char* op) {
  check_index_dtype(index, op);
  DC_CHECK(src.dtype() == dst.dtype(), TypeError, "[", op, "] src dtype ", dtype_name(src.dtype()),
           " does not match self dtype ", dtype_name(dst.dtype()));
  const Tensor d = at_least_1d(dst), ix = at_least_1d(index), s = at_least_1d(src);
  DC_CHECK(ix.dim() == d.dim() && s.dim() == d.dim(), ValueError, "[", op, "] index (shape ",
           index.shape_str(), "), src (shape ", src.shape_str(), ") and self (shape ",
           dst.shape_str(), ") must have the same number of dims");
  dim = wrap_dim(dim, d.dim(), op);
  for (int64_t k = 0; k < d.dim(); ++k) {
    DC_CHECK(ix.sizes()[k] <= s.sizes()[k], ValueError, "[", op, "] index (shape ",
             index.shape_str(), ") is larger than src (shape ", src.shape_str(),
             ") in dimension ", k);
    DC_CHECK(k == dim || ix.sizes()[k] <= d.sizes()[k], ValueError, "[", op, "] index (shape ",
             index.shape_str(), ") is larger than self (shape ", dst.shape_str(),
             ") in dimension ", k);
  }
  check_no_internal_overlap(d, op);
  const Tensor idx = checked_index(index, d.sizes()[dim], op, dim);
  DC_KERNEL(scatter_dim)(d, dim, at_least_1d(idx), at_least_1d(unaliased(src, dst)), accumulate);
  return idx;
}

// self: overwritten positions get no gradient (plain scatter) or all of it (scatter_add);
// src: the gradient gathered back, zero where src was larger than index.
autograd::BackwardFn scatter_backward(int64_t dim, Tensor idx, Shape src_shape, bool accumulate) {
  return [dim, idx, src_shape, accumulate](GradCtx& g) -> tensor_list {
    Tensor gt, gs;
    if (g.needs(0)) {
      gt = accumulate ? g.grad()
                      : scatter(g.grad(), dim, idx,
                                expand(zero_scalar(g.grad().dtype()), idx.sizes()));
    }
    if (g.needs(1)) gs = zero_pad_to(gather(g.grad(), dim, idx), src_shape);
    return {gt, gs};
  };
}

Tensor scatter_outplace(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src,
                        bool accumulate, const char* op);

Tensor& scatter_inplace(Tensor& t, int64_t dim, const Tensor& index, const Tensor& src,
                        bool accumulate, const char* op) {
  check_inplace(t, op, src.requires_grad());
  if (inplace_into_view_needs_history(t, src.requires_grad()))
    return copy_(t, scatter_outplace(t, dim, index, src, accumulate, op));
  const Tensor idx = scatter_kernel(t, dim, index, src, accumulate, op);
  t.bump_version();
  if (autograd::any_requires_grad({&t, &src}))
    autograd::record(op, {t, src}, {t}, scatter_backward(dim, idx, src.sizes(), accumulate));
  return t;
}

Tensor scatter_outplace(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src,
                        bool accumulate, const char* op) {
  Tensor out = contiguous_clone(t);
  const Tensor idx = scatter_kernel(out, dim, index, src, accumulate, op);
  if (autograd::any_requires_grad({&t, &src}))
    autograd::record(op, {t, src}, {out}, scatter_backward(dim, idx, src.sizes(), accumulate));
  return out;
}

}  // namespace

Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  DC_OP_GUARD("scatter", t, index, src);
  return scatter_outplace(t, dim, index, src, false, "scatter");
}
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  DC_OP_GUARD("scatter_add", t, index, src);
  return scatter_outplace(t, dim, index, src, true, "scatter_add");
}
Tensor& scatter_(Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  DC_OP_GUARD("scatter_", t, index, src);
  return scatter_inplace(t, dim, index, src, false, "scatter_");
}
Tensor& scatter_add_(Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  DC_OP_GUARD("scatter_add_", t, index, src);
  return scatter_inplace(t, dim, index, src, true, "scatter_add_");
}

// ---- masks -----------------------------------------------------------------------------------

namespace {
void check_mask_and_value(const Tensor& mask, const Tensor& value, const char* op) {
  DC_CHECK(mask.dtype() == DType::Bool, TypeError, "[", op, "] mask must be a bool tensor, got ",
           dtype_name(mask.dtype()));
  DC_CHECK(value.dim() == 0, ValueError, "[", op, "] value must be a number or a 0-d tensor, "
           "got a tensor of shape ", value.shape_str());
}
}  // namespace

Tensor masked_fill(const Tensor& t, const Tensor& mask, const Tensor& value) {
  DC_OP_GUARD("masked_fill", t, mask, value);
  check_mask_and_value(mask, value, "masked_fill");
  check_wrapped_fits(value, t.dtype(), "masked_fill");
  broadcast_shapes(t.sizes(), mask.sizes(), "masked_fill");
  // where() carries the derivative to both t and a 0-d value tensor.
  return where(mask, to_dtype(value, t.dtype()), t);
}

Tensor& masked_fill_(Tensor& t, const Tensor& mask, const Tensor& value) {
  DC_OP_GUARD("masked_fill_", t, mask, value);
  check_mask_and_value(mask, value, "masked_fill_");
  check_wrapped_fits(value, t.dtype(), "masked_fill_");
  DC_CHECK(broadcastable_to(mask.sizes(), t.sizes()), ValueError,
           "[masked_fill_] mask of shape ", mask.shape_str(),
           " cannot be broadcast to self of shape ", t.shape_str());
  check_inplace(t, "masked_fill_", value.requires_grad());
  if (inplace_into_view_needs_history(t, value.requires_grad()))
    return copy_(t, masked_fill(t, mask, value));
  check_no_internal_overlap(t, "masked_fill_");
  const Tensor m = unaliased(mask, t);
  Tensor v;
  {
    autograd::GradModeGuard off(false);
    v = to_dtype(value, t.dtype());
  }
  // Elementwise: out[i] depends only on t[i], so writing over t while reading it is safe.
  DC_KERNEL(where_into)(t, m, v, t);
  t.bump_version();
  if (autograd::any_requires_grad({&t, &value})) {
    autograd::record(
        "masked_fill_", {t, value}, {t},
        [vdtype = value.dtype()](GradCtx& g) -> tensor_list {
          const Tensor mk = g.saved(0), z = zero_scalar(g.grad().dtype());
          return {g.needs(0) ? where(mk, z, g.grad()) : Tensor(),
                  g.needs(1) ? to_dtype(sum(where(mk, g.grad(), z)), vdtype) : Tensor()};
        },
        {m});
  }
  return t;
}

Tensor masked_select(const Tensor& t, const Tensor& mask) {
  DC_OP_GUARD("masked_select", t, mask);
  DC_CHECK(mask.dtype() == DType::Bool, TypeError,
           "[masked_select] mask must be a bool tensor, got ", dtype_name(mask.dtype()));
  const Shape s = broadcast_shapes(t.sizes(), mask.sizes(), "masked_select");
  Tensor te = expand(t, s), me = expand(mask, s);
  if (s.empty()) {
    te = reshape(te, {1});
    me = reshape(me, {1});
  }
  // A full-rank mask index: index()'s derivative scatters the gradient back.
  return index(te, {me});
}

Tensor nonzero(const Tensor& t) {
  DC_OP_GUARD("nonzero", t);
  dispatch::data_dependent_shape("nonzero");
  return DC_KERNEL(nonzero)(t);
}

// ---- embedding / one_hot ---------------------------------------------------------------------

Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  DC_OP_GUARD("embedding", weight, indices);
  DC_CHECK(weight.dim() == 2, ValueError, "[embedding] weight must be 2-D (num_embeddings, "
           "embedding_dim), got shape ", weight.shape_str());
  const int64_t V = weight.sizes()[0], D = weight.sizes()[1];
  DC_CHECK(padding_idx < V, ValueError, "[embedding] padding_idx ", padding_idx,
           " must be smaller than num_embeddings ", V);
  const Tensor idx = checked_index(indices, V, "embedding", 0, /*allow_negative=*/false);
  Shape out_shape = indices.sizes();
  out_shape.push_back(D);
  Tensor out = Tensor::empty(out_shape, weight.dtype());
  cpu::IndexGeometry g;
  g.inner_sizes = {D};
  g.inner_strides = {weight.strides()[1]};
  DC_KERNEL(index_gather)(out, weight, g, scaled(idx, weight.strides()[0]));
  if (autograd::any_requires_grad({&weight})) {
    autograd::record("embedding", {weight}, {out},
                     [V, D, padding_idx, idx = flat(idx)](GradCtx& g) -> tensor_list {
                       Tensor rows = reshape(g.grad(), {idx.numel(), D});
                       if (padding_idx >= 0) {
                         const Tensor pad = eq(idx, scalar_tensor(padding_idx, DType::Int64));
                         rows = where(unsqueeze(pad, 1), zero_scalar(rows.dtype()), rows);
                       }
                       return {index_add(zeros({V, D}, rows.dtype()), 0, idx, rows)};
                     });
  }
  return out;
}

Tensor one_hot(const Tensor& t, int64_t num_classes) {
  DC_OP_GUARD("one_hot", t);
  DC_CHECK(t.dtype() == DType::Int64, TypeError,
           "[one_hot] expects an int64 tensor of class indices, got ", dtype_name(t.dtype()));
  Tensor idx = Tensor::empty(t.sizes(), DType::Int64);
  DC_KERNEL(cast_into)(idx, t);
  const int64_t n = idx.numel();
  if (num_classes == -1) {
    DC_CHECK(n > 0, ValueError, "[one_hot] cannot infer num_classes from an empty tensor; "
             "pass num_classes");
    // The output shape depends on the values here: on meta data<> raises.
    const Tensor idx_host = on_host(idx);
    const int64_t* p = idx_host.data<int64_t>();
    num_classes = 0;
    for (int64_t i = 0; i < n; ++i) num_classes = std::max(num_classes, p[i] + 1);
  }
  DC_CHECK(num_classes >= 0, ValueError, "[one_hot] num_classes must be -1 or non-negative, got ",
           num_classes);
  int64_t bad = 0;
  DC_CHECK(DC_KERNEL(wrap_index)(idx, num_classes, false, &bad), IndexError,
           "[one_hot] class value ", bad, " is out of bounds for dimension ", t.dim(),
           " with size ", num_classes, " (num_classes)");
  Shape shape = t.sizes(), unit = t.sizes();
  shape.push_back(num_classes);
  unit.push_back(1);
  Tensor out = zeros(shape, DType::Int64);
  const Tensor one = scalar_tensor(1, DType::Int64);
  DC_KERNEL(scatter_dim)(out, t.dim(), raw_view(idx, unit, contiguous_strides(unit)),
                   raw_view(one, unit, Shape(unit.size(), 0)), false);
  return out;
}

// ---- advanced indexing -----------------------------------------------------------------------

// Note [Advanced indexing]
// index(t, indices) follows PyTorch (and NumPy): the index tensors broadcast together to a
// shape B. If the indexed dims are adjacent, B replaces them in place: t (2, 3, 4, 5) indexed
// at dims 1 and 2 by tensors of shape (6,) gives (2, 6, 5). If they are separated by a full
// slice, B goes first: t[idx, :, idx] on (2, 3, 4) gives (B..., 3). A bool mask of k dims
// stands for its k nonzero() columns; a 0-d bool adds a unit dim indexed by [0] (True) or []
// (False). Python ints are applied before this (as select), like PyTorch.
// The kernels see the source as (outer, indexed block, inner) and one element offset per
// index position, the sum of index * stride over the indexed dims, so any strides work and
// nothing is copied up front. index_put_ writes through the same geometry.
namespace {

struct AdvancedIndex {
  Tensor src;  // raw alias of t: unit dims added for 0-d bools, separated indexed dims first
  cpu::IndexGeometry geom;
  Tensor offsets;  // int64, contiguous, index shape
  Shape result_shape;
  // The indices as fresh tensors (masks replaced by their nonzero columns, negatives wrapped);
  // the derivatives index with these.
  tensor_list normalized;
};

// Index tensors made on the host (Python lists, x[True]) index a tensor on any device, as in
// torch: they move to it. Any other device mismatch is an error naming both.
Tensor index_on_device_of(const Tensor& ix, const Tensor& t, const char* op) {
  if (!ix.defined() || ix.device() == t.device()) return ix;
  DC_CHECK(ix.device().type == DeviceType::CPU, RuntimeError, "[", op,
           "] expected all tensors to be on the same device, but found at least two devices, ",
           t.device().str(), " and ", ix.device().str());
  return to_device(ix, t.device());
}

AdvancedIndex make_advanced_index(const Tensor& t, const tensor_list& host_indices,
                                  const char* op) {
  autograd::GradModeGuard no_grad(false);
  AdvancedIndex ai;
  tensor_list indices;
  for (const Tensor& ix : host_indices) indices.push_back(index_on_device_of(ix, t, op));
  int64_t consumed = 0;
  for (const Tensor& ix : indices)
    consumed += !ix.defined() ? 1 : ix.dtype() == DType::Bool ? ix.dim() : 1;
  DC_CHECK(consumed <= t.dim(), IndexError, "[", op, "] too many indices for tensor of shape ",
           t.shape_str(), ": ", consumed, " dims indexed");
  Shape sizes = t.sizes(), strides = t.strides();
  tensor_list per_dim;  // one entry per dim of (sizes, strides); undefined = ':'
  for (const Tensor& ix : indices) {
    const int64_t d = static_cast<int64_t>(per_dim.size());
    if (!ix.defined()) {
      per_dim.push_back(Tensor());
      ai.normalized.push_back(Tensor());
    } else if (ix.dtype() == DType::Bool && ix.dim() == 0) {
      dispatch::data_dependent_shape(op);
      const bool keep = *on_host(ix).data<bool>();
      sizes.insert(sizes.begin() + d, 1);
      strides.insert(strides.begin() + d, 0);
      per_dim.push_back(zeros({keep ? 1 : 0}, DType::Int64));
      ai.normalized.push_back(contiguous_clone(ix));
    } else if (ix.dtype() == DType::Bool) {
      for (int64_t k = 0; k < ix.dim(); ++k)
        DC_CHECK(ix.sizes()[k] == sizes[d + k], IndexError, "[", op, "] the shape of the mask ",
                 ix.shape_str(), " does not match the shape of the indexed tensor ",
                 t.shape_str(), " at mask dim ", k, " (", ix.sizes()[k], " vs ", sizes[d + k],
                 ")");
      dispatch::data_dependent_shape(op);
      const Tensor nz = DC_KERNEL(nonzero)(ix);
      for (int64_t k = 0; k < ix.dim(); ++k) {
        per_dim.push_back(contiguous_clone(select(nz, 1, k)));
        ai.normalized.push_back(per_dim.back());
      }
    } else {
      DC_CHECK(is_integral(ix.dtype(), false), IndexError, "[", op,
               "] tensors used as indices must be long, int or bool tensors, got ",
               dtype_name(ix.dtype()));
      per_dim.push_back(checked_index(ix, sizes[d], op, d));
      ai.normalized.push_back(per_dim.back());
    }
  }
  per_dim.resize(sizes.size());

  std::vector<int64_t> pos;
  Shape bshape;
  for (int64_t d = 0; d < static_cast<int64_t>(per_dim.size()); ++d) {
    if (!per_dim[d].defined()) continue;
    const Shape& s = per_dim[d].sizes();
    if (!pos.empty()) {
      // broadcast_shapes raises ValueError; PyTorch calls this an IndexError.
      const size_t n = std::max(bshape.size(), s.size());
      Shape out(n);
      for (size_t i = 0; i < n; ++i) {
        const int64_t a = i + bshape.size() >= n ? bshape[i + bshape.size() - n] : 1;
        const int64_t b = i + s.size() >= n ? s[i + s.size() - n] : 1;
        DC_CHECK(a == b || a == 1 || b == 1, IndexError, "[", op,
                 "] shape mismatch: indexing tensors could not be broadcast together with shapes ",
                 shape_str(bshape), " and ", shape_str(s));
        out[i] = a == 1 ? b : a;
      }
      bshape = out;
    } else {
      bshape = s;
    }
    pos.push_back(d);
  }

  // Separated indexed dims: move them to the front (order kept) so the block is contiguous.
  if (!pos.empty() && pos.back() - pos.front() + 1 != static_cast<int64_t>(pos.size())) {
    Shape order(pos.begin(), pos.end());
    for (int64_t d = 0; d < static_cast<int64_t>(sizes.size()); ++d)
      if (!per_dim[d].defined()) order.push_back(d);
    Shape ps, pst;
    tensor_list pd;
    for (int64_t d : order) {
      ps.push_back(sizes[d]);
      pst.push_back(strides[d]);
      pd.push_back(per_dim[d]);
    }
    sizes = ps;
    strides = pst;
    per_dim = pd;
    for (size_t k = 0; k < pos.size(); ++k) pos[k] = static_cast<int64_t>(k);
  }
  const int64_t first = pos.empty() ? 0 : pos.front(), last = pos.empty() ? -1 : pos.back();
  ai.geom = geometry(sizes, strides, first, last);
  ai.src = Tensor::make_view(t.storage(), sizes, strides, t.offset(), t.dtype());

  Tensor off = zeros(bshape, DType::Int64);
  for (int64_t d : pos) off = add(off, mul(per_dim[d], scalar_tensor(strides[d], DType::Int64)));
  ai.offsets = off.is_contiguous() ? off : contiguous_clone(off);

  ai.result_shape = ai.geom.outer_sizes;
  ai.result_shape.insert(ai.result_shape.end(), bshape.begin(), bshape.end());
  ai.result_shape.insert(ai.result_shape.end(), ai.geom.inner_sizes.begin(),
                         ai.geom.inner_sizes.end());
  return ai;
}

// Scatters `values` (broadcast to the indexing result) into dst; returns the normalized indices.
tensor_list index_put_kernel(const Tensor& dst, const tensor_list& indices, const Tensor& values,
                             bool accumulate, const char* op) {
  AdvancedIndex ai = make_advanced_index(dst, indices, op);
  DC_CHECK(broadcastable_to(values.sizes(), ai.result_shape), ValueError,
           "[", op, "] shape mismatch: values of shape ", values.shape_str(),
           " cannot be broadcast to the indexing result of shape ", shape_str(ai.result_shape));
  check_no_internal_overlap(dst, op);
  Tensor v;
  {
    autograd::GradModeGuard off(false);
    check_wrapped_fits(values, dst.dtype(), op);
    v = to_dtype(values, dst.dtype());
    if (v.sizes() != ai.result_shape || !v.is_contiguous() || v.storage() == dst.storage())
      v = contiguous_clone(expand(v, ai.result_shape));
  }
  DC_KERNEL(index_scatter)(ai.src, v, ai.geom, ai.offsets, accumulate);
  return ai.normalized;
}

// self: gradient except where overwritten (plain) or all of it (accumulate);
// values: the gradient read back at the indices, summed over broadcast dims.
autograd::BackwardFn index_put_backward(tensor_list idx, bool accumulate, Shape vshape,
                                        DType vdtype) {
  return [idx, accumulate, vshape, vdtype](GradCtx& g) -> tensor_list {
    Tensor gt, gv;
    if (g.needs(0))
      gt = accumulate ? g.grad() : index_put(g.grad(), idx, zero_scalar(g.grad().dtype()), false);
    if (g.needs(1)) gv = to_dtype(sum_to(index(g.grad(), idx), vshape), vdtype);
    return {gt, gv};
  };
}

}  // namespace

Tensor index(const Tensor& t, const tensor_list& indices) {
  DC_OP_GUARD("index", t);
  AdvancedIndex ai = make_advanced_index(t, indices, "index");
  Tensor out = Tensor::empty(ai.result_shape, t.dtype());
  DC_KERNEL(index_gather)(out, ai.src, ai.geom, ai.offsets);
  if (autograd::any_requires_grad({&t})) {
    autograd::record("index", {t}, {out},
                     [in = t.sizes(), idx = ai.normalized](GradCtx& g) -> tensor_list {
                       return {index_put(zeros(in, g.grad().dtype()), idx, g.grad(), true)};
                     });
  }
  return out;
}

Tensor& index_put_(Tensor& t, const tensor_list& indices, const Tensor& values, bool accumulate) {
  DC_OP_GUARD("index_put_", t, values);
  check_inplace(t, "index_put_", values.requires_grad());
  if (inplace_into_view_needs_history(t, values.requires_grad()))
    return copy_(t, index_put(t, indices, values, accumulate));
  tensor_list idx = index_put_kernel(t, indices, values, accumulate, "index_put_");
  t.bump_version();
  if (autograd::any_requires_grad({&t, &values}))
    autograd::record("index_put_", {t, values}, {t},
                     index_put_backward(std::move(idx), accumulate, values.sizes(),
                                        values.dtype()));
  return t;
}

Tensor index_put(const Tensor& t, const tensor_list& indices, const Tensor& values,
                 bool accumulate) {
  DC_OP_GUARD("index_put", t, values);
  Tensor out = contiguous_clone(t);
  tensor_list idx = index_put_kernel(out, indices, values, accumulate, "index_put");
  if (autograd::any_requires_grad({&t, &values}))
    autograd::record("index_put", {t, values}, {out},
                     index_put_backward(std::move(idx), accumulate, values.sizes(),
                                        values.dtype()));
  return out;
}

}  // namespace dc::ops
