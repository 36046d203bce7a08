// View and shape ops.
//
// Note [Views]
// A view is a new TensorImpl over the same Storage with its own sizes/strides/offset. It
// remembers the root tensor it looks into (TensorImpl::base) for the in-place checks of
// Note [In-place on views]. Each view op records a derivative that maps the gradient back to
// the input's shape using differentiable ops, so higher-order gradients flow through views.
#include "ops/shape.h"

#include <algorithm>
#include <optional>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/elementwise.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;

namespace {

Tensor make_view(const Tensor& t, Shape sizes, Shape strides, int64_t offset) {
  Tensor v = Tensor::make_view(t.storage(), std::move(sizes), std::move(strides), offset,
                               t.dtype());
  v.impl()->base = t.impl()->base ? t.impl()->base : t.impl_ptr();
  return v;
}

// Strides that let `new_shape` view memory laid out as (sizes, strides), if any exist
// (the same rule as PyTorch's computeStride: chunks of dims that are contiguous together).
std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& new_shape) {
  if (sizes.empty()) return Shape(new_shape.size(), 1);
  const int64_t numel = numel_of(sizes);
  if (numel == 0) return contiguous_strides(new_shape);
  Shape out(new_shape.size());
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

Tensor reshape_back(const Tensor& g, const Shape& shape) { return reshape(g, shape); }

// A view with unchanged geometry (what squeeze returns when there is nothing to squeeze).
Tensor alias_view_of(const Tensor& t) { return view(t, t.sizes()); }

}  // namespace

Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  DC_OP_GUARD_FACTORY("infer_shape");
  Shape out = shape;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      DC_CHECK(infer < 0, ValueError, "[", op, "] only one dimension can be inferred (-1) in ",
               shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      DC_CHECK(shape[i] >= 0, ValueError, "[", op, "] invalid shape dimension ", shape[i], " in ",
               shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    DC_CHECK(known != 0 && numel % known == 0, ValueError, "[", op, "] shape ", shape_str(shape),
             " is invalid for input of size ", numel);
    out[infer] = numel / known;
  } else {
    DC_CHECK(known == numel, ValueError, "[", op, "] shape ", shape_str(shape),
             " is invalid for input of size ", numel);
  }
  return out;
}

Tensor as_strided(const Tensor& t, const Shape& sizes, const Shape& strides, int64_t offset) {
  DC_OP_GUARD("as_strided", t);
  DC_CHECK(sizes.size() == strides.size(), ValueError, "[as_strided] sizes ", shape_str(sizes),
           " and strides ", shape_str(strides), " must have the same length");
  int64_t max_index = offset;
  for (size_t i = 0; i < sizes.size(); ++i) {
    DC_CHECK(sizes[i] >= 0 && strides[i] >= 0, ValueError,
             "[as_strided] negative size or stride in ", shape_str(sizes), " / ", shape_str(strides));
    if (sizes[i] == 0) max_index = -1;
    if (max_index >= 0) max_index += (sizes[i] - 1) * strides[i];
  }
  DC_CHECK(offset >= 0 && max_index < static_cast<int64_t>(t.storage()->nbytes / t.itemsize()),
           ValueError, "[as_strided] sizes ", shape_str(sizes), " with strides ",
           shape_str(strides), " and offset ", offset, " reach outside the storage of ",
           t.storage()->nbytes / t.itemsize(), " elements");
  DC_CHECK(!autograd::any_requires_grad({&t}), RuntimeError,
           "[as_strided] is not differentiable; use view/slicing ops instead");
  return make_view(t, sizes, strides, offset);
}

Tensor view(const Tensor& t, const Shape& shape) {
  DC_OP_GUARD("view", t);
  Shape s = infer_shape(shape, t.numel(), "view");
  auto st = view_strides(t.sizes(), t.strides(), s);
  DC_CHECK(st.has_value(), RuntimeError, "[view] view size ", shape_str(s),
           " is not compatible with input of shape ", t.shape_str(), " and strides ",
           shape_str(t.strides()),
           " (at least one dimension spans across two contiguous subspaces); use reshape() "
           "instead");
  Tensor out = make_view(t, s, *st, t.offset());
  if (autograd::any_requires_grad({&t})) {
    const Shape in = t.sizes();
    autograd::record("view", {t}, {out},
                     [in](GradCtx& g) -> tensor_list { return {reshape_back(g.grad(), in)}; });
  }
  return out;
}

Tensor reshape(const Tensor& t, const Shape& shape) {
  DC_OP_GUARD("reshape", t);
  Shape s = infer_shape(shape, t.numel(), "reshape");
  if (view_strides(t.sizes(), t.strides(), s)) return view(t, s);
  return view(clone(t), s);
}

Tensor permute(const Tensor& t, const Shape& dims) {
  DC_OP_GUARD("permute", t);
  const int64_t n = t.dim();
  DC_CHECK(static_cast<int64_t>(dims.size()) == n, ValueError, "[permute] number of dims ",
           shape_str(dims), " doesn't match the tensor's ", n, " dimensions");
  Shape sizes(n), strides(n), inverse(n);
  std::vector<bool> seen(n, false);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t d = wrap_dim(dims[i], n, "permute");
    DC_CHECK(!seen[d], ValueError, "[permute] repeated dim ", d, " in ", shape_str(dims));
    seen[d] = true;
    sizes[i] = t.sizes()[d];
    strides[i] = t.strides()[d];
    inverse[d] = i;
  }
  Tensor out = make_view(t, sizes, strides, t.offset());
  if (autograd::any_requires_grad({&t}))
    autograd::record("permute", {t}, {out}, [inverse](GradCtx& g) -> tensor_list {
      return {permute(g.grad(), inverse)};
    });
  return out;
}

Tensor transpose(const Tensor& t, int64_t d0, int64_t d1) {
  DC_OP_GUARD("transpose", t);
  const int64_t n = t.dim();
  if (n == 0) {
    wrap_dim_scalar_ok(d0, n, "transpose");
    wrap_dim_scalar_ok(d1, n, "transpose");
    return alias(t);
  }
  d0 = wrap_dim(d0, n, "transpose");
  d1 = wrap_dim(d1, n, "transpose");
  Shape perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  std::swap(perm[d0], perm[d1]);
  return permute(t, perm);
}

Tensor t_(const Tensor& t) {
  DC_OP_GUARD("t_", t);
  Shape perm(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) perm[i] = t.dim() - 1 - i;
  return permute(t, perm);
}

Tensor expand(const Tensor& t, const Shape& shape) {
  DC_OP_GUARD("expand", t);
  const int64_t n = static_cast<int64_t>(shape.size());
  DC_CHECK(n >= t.dim(), ValueError, "[expand] the number of sizes provided (", n,
           ") must be greater or equal to the number of dimensions in the tensor (", t.dim(), ")");
  Shape sizes(n), strides(n);
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t src = i - (n - t.dim());
    const int64_t cur = src >= 0 ? t.sizes()[src] : 1;
    const int64_t want = shape[i] == -1 ? cur : shape[i];
    DC_CHECK(src >= 0 || shape[i] != -1, ValueError,
             "[expand] -1 is not allowed for a new leading dimension in ", shape_str(shape));
    DC_CHECK(cur == want || cur == 1, ValueError, "[expand] the expanded size ", want,
             " must match the existing size ", cur, " at dimension ", i, " (tensor ",
             t.shape_str(), " to ", shape_str(shape), ")");
    sizes[i] = want;
    strides[i] = (src >= 0 && cur == want) ? t.strides()[src] : 0;
  }
  Tensor out = make_view(t, sizes, strides, t.offset());
  if (autograd::any_requires_grad({&t})) {
    const Shape in = t.sizes();
    autograd::record("expand", {t}, {out},
                     [in](GradCtx& g) -> tensor_list { return {sum_to(g.grad(), in)}; });
  }
  return out;
}

Tensor squeeze(const Tensor& t) {
  DC_OP_GUARD("squeeze", t);
  Shape s;
  for (int64_t x : t.sizes())
    if (x != 1) s.push_back(x);
  return s.size() == t.sizes().size() ? alias_view_of(t) : reshape(t, s);
}

Tensor squeeze_dim(const Tensor& t, int64_t dim) {
  DC_OP_GUARD("squeeze_dim", t);
  dim = wrap_dim_scalar_ok(dim, t.dim(), "squeeze");
  if (t.dim() == 0) return alias_view_of(t);
  if (t.sizes()[dim] != 1) return alias_view_of(t);
  Shape s = t.sizes();
  s.erase(s.begin() + dim);
  return reshape(t, s);
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  DC_OP_GUARD("unsqueeze", t);
  dim = wrap_dim(dim, t.dim() + 1, "unsqueeze");
  Shape s = t.sizes();
  s.insert(s.begin() + dim, 1);
  return reshape(t, s);
}

Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  DC_OP_GUARD("flatten", t);
  start_dim = wrap_dim_scalar_ok(start_dim, t.dim(), "flatten");
  end_dim = wrap_dim_scalar_ok(end_dim, t.dim(), "flatten");
  if (t.dim() == 0) return reshape(t, {1});
  DC_CHECK(start_dim <= end_dim, ValueError, "[flatten] start_dim (", start_dim,
           ") cannot come after end_dim (", end_dim, ")");
  Shape s(t.sizes().begin(), t.sizes().begin() + start_dim);
  int64_t m = 1;
  for (int64_t i = start_dim; i <= end_dim; ++i) m *= t.sizes()[i];
  s.push_back(m);
  s.insert(s.end(), t.sizes().begin() + end_dim + 1, t.sizes().end());
  return reshape(t, s);
}

Tensor unflatten(const Tensor& t, int64_t dim, const Shape& sizes) {
  DC_OP_GUARD("unflatten", t);
  dim = wrap_dim(dim, t.dim(), "unflatten");
  Shape inner = infer_shape(sizes, t.sizes()[dim], "unflatten");
  Shape s(t.sizes().begin(), t.sizes().begin() + dim);
  s.insert(s.end(), inner.begin(), inner.end());
  s.insert(s.end(), t.sizes().begin() + dim + 1, t.sizes().end());
  return reshape(t, s);
}

// slice_backward: zeros of the input's shape with the gradient written into the slice.
// Recorded itself, with slice as its derivative, so double backward works.
namespace {
Tensor slice_backward(const Tensor& g, const Shape& in, int64_t dim, int64_t start, int64_t end,
                      int64_t step) {
  Tensor out = zeros(in, g.dtype());
  Tensor region = make_view(out, out.sizes(), out.strides(), out.offset());
  {
    autograd::GradModeGuard off(false);
    Tensor r = slice(region, dim, start, end, step);
    DC_KERNEL(cast_into)(r, g);
  }
  autograd::record("slice_backward", {g}, {out},
                   [dim, start, end, step](GradCtx& gg) -> tensor_list {
                     return {slice(gg.grad(), dim, start, end, step)};
                   });
  return out;
}
}  // namespace

Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step) {
  DC_OP_GUARD("slice", t);
  DC_CHECK(t.dim() > 0, IndexError, "[slice] cannot slice a 0-d tensor");
  dim = wrap_dim(dim, t.dim(), "slice");
  DC_CHECK(step > 0, ValueError, "[slice] step must be positive, got ", step);
  const int64_t n = t.sizes()[dim];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sizes = t.sizes(), strides = t.strides();
  sizes[dim] = (end - start + step - 1) / step;
  strides[dim] *= step;
  Tensor out = make_view(t, sizes, strides, t.offset() + start * t.strides()[dim]);
  if (autograd::any_requires_grad({&t})) {
    const Shape in = t.sizes();
    autograd::record("slice", {t}, {out}, [in, dim, start, end, step](GradCtx& g) -> tensor_list {
      return {slice_backward(g.grad(), in, dim, start, end, step)};
    });
  }
  return out;
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  DC_OP_GUARD("select", t);
  DC_CHECK(t.dim() > 0, IndexError, "[select] cannot index a 0-d tensor");
  dim = wrap_dim(dim, t.dim(), "select");
  const int64_t n = t.sizes()[dim];
  DC_CHECK(index >= -n && index < n, IndexError, "[select] index ", index,
           " is out of bounds for dimension ", dim, " with size ", n);
  if (index < 0) index += n;
  Tensor s = slice(t, dim, index, index + 1, 1);
  return squeeze_dim(s, dim);
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  DC_OP_GUARD("narrow", t);
  dim = wrap_dim(dim, t.dim(), "narrow");
  const int64_t n = t.sizes()[dim];
  if (start < 0) start += n;
  DC_CHECK(start >= 0 && length >= 0 && start + length <= n, IndexError, "[narrow] start (",
           start, ") + length (", length, ") exceeds dimension size (", n, ")");
  return slice(t, dim, start, start + length, 1);
}

tensor_list split_sizes(const Tensor& t, const Shape& sizes, int64_t dim) {
  DC_OP_GUARD("split_sizes", t);
  dim = wrap_dim(dim, t.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    DC_CHECK(s >= 0, ValueError, "[split] split sizes must be non-negative, got ",
             shape_str(sizes), " for input ", t.shape_str());
    total += s;
  }
  DC_CHECK(total == t.sizes()[dim], ValueError, "[split] split sizes ", shape_str(sizes),
           " sum to ", total, " but dimension ", dim, " has size ", t.sizes()[dim]);
  tensor_list out;
  int64_t pos = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(t, dim, pos, pos + s, 1));
    pos += s;
  }
  return out;
}

tensor_list split(const Tensor& t, int64_t split_size, int64_t dim) {
  DC_OP_GUARD("split", t);
  dim = wrap_dim(dim, t.dim(), "split");
  DC_CHECK(split_size > 0 || (split_size == 0 && t.sizes()[dim] == 0), ValueError,
           "[split] split_size must be positive, got ", split_size);
  Shape sizes;
  for (int64_t pos = 0; pos < t.sizes()[dim]; pos += split_size)
    sizes.push_back(std::min(split_size, t.sizes()[dim] - pos));
  if (sizes.empty()) sizes.push_back(0);
  return split_sizes(t, sizes, dim);
}

tensor_list chunk(const Tensor& t, int64_t chunks, int64_t dim) {
  DC_OP_GUARD("chunk", t);
  DC_CHECK(chunks > 0, ValueError, "[chunk] number of chunks must be positive, got ", chunks);
  dim = wrap_dim(dim, t.dim(), "chunk");
  const int64_t size = (t.sizes()[dim] + chunks - 1) / chunks;
  return split(t, std::max<int64_t>(size, 1), dim);
}

tensor_list unbind(const Tensor& t, int64_t dim) {
  DC_OP_GUARD("unbind", t);
  dim = wrap_dim(dim, t.dim(), "unbind");
  tensor_list out;
  for (int64_t i = 0; i < t.sizes()[dim]; ++i) out.push_back(select(t, dim, i));
  return out;
}

Tensor cat(const tensor_list& tensors, int64_t dim) {
  DC_OP_GUARD_LIST("cat", tensors);
  DC_CHECK(!tensors.empty(), ValueError, "[cat] expected a non-empty list of tensors");
  // Legacy rule: 1-D empty tensors are skipped.
  const Tensor* ref = nullptr;
  for (const Tensor& t : tensors)
    if (!(t.dim() == 1 && t.numel() == 0)) { ref = &t; break; }
  if (!ref) return zeros({0}, result_type(tensors));
  DC_CHECK(ref->dim() > 0, ValueError, "[cat] zero-dimensional tensors cannot be concatenated");
  dim = wrap_dim(dim, ref->dim(), "cat");
  Shape out_shape = ref->sizes();
  out_shape[dim] = 0;
  DType dt = tensors[0].dtype();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    dt = promote_types(dt, t.dtype());
    if (t.dim() == 1 && t.numel() == 0) continue;
    DC_CHECK(t.dim() == ref->dim(), ValueError, "[cat] tensors must have the same number of "
             "dimensions: tensor 0 has shape ", ref->shape_str(), ", tensor ", i, " has shape ",
             t.shape_str());
    for (int64_t d = 0; d < t.dim(); ++d)
      DC_CHECK(d == dim || t.sizes()[d] == ref->sizes()[d], ValueError,
               "[cat] sizes of tensors must match except in dimension ", dim, ": tensor 0 has "
               "shape ", ref->shape_str(), ", tensor ", i, " has shape ", t.shape_str());
    out_shape[dim] += t.sizes()[dim];
  }
  Tensor out = Tensor::empty(out_shape, dt);
  Shape sizes;
  {
    int64_t pos = 0;
    for (const Tensor& t : tensors) {
      if (t.dim() == 1 && t.numel() == 0) { sizes.push_back(-1); continue; }  // skipped
      const int64_t n = t.sizes()[dim];
      Shape vs = out.sizes();
      vs[dim] = n;
      Tensor region = Tensor::make_view(out.storage(), vs, out.strides(),
                                        pos * out.strides()[dim], dt);
      DC_KERNEL(cast_into)(region, t);
      sizes.push_back(n);
      pos += n;
    }
  }
  if (autograd::any_requires_grad(tensors)) {
    autograd::record("cat", tensors, {out}, [sizes, dim](GradCtx& g) -> tensor_list {
      tensor_list grads;
      int64_t pos = 0;
      for (int64_t n : sizes) {
        if (n < 0) {
          grads.push_back(zeros({0}, g.grad().dtype()));
          continue;
        }
        grads.push_back(slice(g.grad(), dim, pos, pos + n, 1));
        pos += n;
      }
      return grads;
    });
  }
  return out;
}

Tensor stack(const tensor_list& tensors, int64_t dim) {
  DC_OP_GUARD_LIST("stack", tensors);
  DC_CHECK(!tensors.empty(), ValueError, "[stack] expected a non-empty list of tensors");
  dim = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  for (size_t i = 1; i < tensors.size(); ++i)
    DC_CHECK(tensors[i].sizes() == tensors[0].sizes(), ValueError,
             "[stack] stack expects each tensor to be equal size, but got ",
             tensors[0].shape_str(), " at entry 0 and ", tensors[i].shape_str(), " at entry ", i);
  tensor_list parts;
  for (const Tensor& t : tensors) parts.push_back(unsqueeze(t, dim));
  return cat(parts, dim);
}

Tensor flip(const Tensor& t, const Shape& dims) {
  DC_OP_GUARD("flip", t);
  Shape strides = t.strides();
  int64_t offset = t.offset();
  std::vector<bool> seen(t.dim(), false);
  for (int64_t d : dims) {
    d = wrap_dim_scalar_ok(d, t.dim(), "flip");
    if (t.dim() == 0) continue;  // flipping a 0-d tensor copies it
    DC_CHECK(!seen[d], ValueError, "[flip] dim ", d, " appears multiple times in ", shape_str(dims));
    seen[d] = true;
    if (t.sizes()[d] > 0) offset += (t.sizes()[d] - 1) * strides[d];
    strides[d] = -strides[d];
  }
  // A negative-stride view exists only inside this op; the result is a fresh copy.
  Tensor reversed = Tensor::make_view(t.storage(), t.sizes(), strides, offset, t.dtype());
  Tensor out = contiguous_clone(reversed);
  if (autograd::any_requires_grad({&t})) {
    autograd::record("flip", {t}, {out},
                     [dims](GradCtx& g) -> tensor_list { return {flip(g.grad(), dims)}; });
  }
  return out;
}

Tensor repeat(const Tensor& t, const Shape& repeats) {
  DC_OP_GUARD("repeat", t);
  DC_CHECK(static_cast<int64_t>(repeats.size()) >= t.dim(), ValueError,
           "[repeat] number of repeat dims (", repeats.size(),
           ") can not be smaller than the number of tensor dims (", t.dim(), ")");
  const int64_t n = static_cast<int64_t>(repeats.size());
  Shape padded(n - t.dim(), 1);
  padded.insert(padded.end(), t.sizes().begin(), t.sizes().end());
  Shape interleaved, expanded, final_shape;
  for (int64_t i = 0; i < n; ++i) {
    DC_CHECK(repeats[i] >= 0, ValueError, "[repeat] repeats must be non-negative, got ",
             shape_str(repeats));
    interleaved.push_back(1);
    interleaved.push_back(padded[i]);
    expanded.push_back(repeats[i]);
    expanded.push_back(padded[i]);
    final_shape.push_back(repeats[i] * padded[i]);
  }
  return reshape(contiguous(expand(reshape(t, interleaved), expanded)), final_shape);
}

namespace {
Tensor tri_mask(const Tensor& t, int64_t diagonal, bool lower, const char* op) {
  DC_CHECK(t.dim() >= 2, ValueError, "[", op, "] input must have at least 2 dimensions, got ",
           t.shape_str());
  const int64_t r = t.sizes()[t.dim() - 2], c = t.sizes()[t.dim() - 1];
  // mask[i, j] = j - i <= diagonal (lower) or >= diagonal, built from ops so that it is made
  // on t's device.
  const Tensor rows = reshape(arange(0, static_cast<double>(r), 1, DType::Int64), {r, 1});
  const Tensor offset = sub(arange(0, static_cast<double>(c), 1, DType::Int64), rows);
  const Tensor d = scalar_tensor(diagonal, DType::Int64);
  const Tensor mask = lower ? le(offset, d) : ge(offset, d);
  return where(mask, t, zeros({}, t.dtype()));
}
}  // namespace

Tensor tril(const Tensor& t, int64_t diagonal) {
  DC_OP_GUARD("tril", t);
  return tri_mask(t, diagonal, true, "tril");
}
Tensor triu(const Tensor& t, int64_t diagonal) {
  DC_OP_GUARD("triu", t);
  return tri_mask(t, diagonal, false, "triu");
}

}  // namespace dc::ops
