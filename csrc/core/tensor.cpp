#include "core/tensor.h"

#include <algorithm>
#include <limits>

namespace dc {

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t st = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = st;
    st *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

// Note [Output layout]
// An elementwise result takes the memory order of its inputs, as torch's TensorIterator gives
// it: x.t() + 1 is laid out like x.t() (column-major), so input and output are both read and
// written in memory order, one flat run. A row-major result would read x.t() across its
// strides, 17x slower on a 256x1024 tensor. The order compares dims pairwise, operand by
// operand: the first operand whose strides for the two dims are both non-zero and differ
// decides; broadcast (stride 0) and size-1 dims decide nothing, so `x.t() + row` still follows
// x.t(). Where no operand decides, the dims keep their row-major order. The CPU loops
// (kernels/cpu/loops.cpp) sort their dims the same way, so they run in the output's memory
// order whatever layout it has.
Shape permuted_strides(const Shape& shape, const std::vector<int64_t>& order) {
  Shape strides(shape.size());
  int64_t st = 1;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    strides[*it] = st;
    st *= std::max<int64_t>(shape[*it], 1);
  }
  return strides;
}

std::vector<int64_t> memory_order(const Shape& shape,
                                  std::initializer_list<const Tensor*> operands) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  std::vector<int64_t> order(nd);
  for (int64_t i = 0; i < nd; ++i) order[i] = i;
  // Stride of operand t along output dim d (0 where broadcast or of size 1).
  auto stride = [&](const Tensor& t, int64_t d) -> int64_t {
    const int64_t src = d - (nd - t.dim());
    return src < 0 || t.sizes()[src] == 1 ? 0 : t.strides()[src];
  };
  // True when dim d belongs outside dim e: it has the larger stride.
  auto belongs_before = [&](int64_t d, int64_t e) {
    for (const Tensor* t : operands) {
      if (!t->defined()) continue;
      const int64_t a = stride(*t, d), b = stride(*t, e);
      if (a != 0 && b != 0 && a != b) return a > b;
    }
    return false;
  };
  // Insertion sort: stable, and the pairwise rule need not be a total order.
  for (int64_t i = 1; i < nd; ++i)
    for (int64_t j = i; j > 0 && belongs_before(order[j], order[j - 1]); --j)
      std::swap(order[j], order[j - 1]);
  return order;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  DC_CHECK(ndim > 0, IndexError, "[", op, "] dimension specified as ", dim,
           " but the tensor has no dimensions (shape ())");
  return wrap_dim_scalar_ok(dim, ndim, op);
}

int64_t wrap_dim_scalar_ok(int64_t dim, int64_t ndim, const char* op) {
  const int64_t n = std::max<int64_t>(ndim, 1);  // a 0-d tensor accepts dim 0 and -1
  DC_CHECK(dim >= -n && dim < n, IndexError, "[", op, "] dimension out of range: got ", dim,
           " for a tensor with ", ndim, " dimension", ndim == 1 ? "" : "s", " (expected in [",
           -n, ", ", n - 1, "])");
  return dim < 0 ? dim + n : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    DC_CHECK(da == db || da == 1 || db == 1, ValueError, "[", op, "] shapes ", shape_str(a),
             " and ", shape_str(b), " cannot be broadcast: dimension ", i, " is ", da, " vs ",
             db);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  int64_t n = 1;
  for (int64_t s : shape) {
    DC_CHECK(s >= 0, ValueError, "[empty] negative dimension in shape ", dc::shape_str(shape));
    DC_CHECK(s == 0 || n <= std::numeric_limits<int64_t>::max() / s / 8, MemoryError,
             "[empty] shape ", dc::shape_str(shape), " has too many elements to allocate");
    n *= s;
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(static_cast<size_t>(n) * dc::itemsize(dtype), device);
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty_like_layout(const Shape& shape, DType dtype,
                                 std::initializer_list<const Tensor*> like, Device device) {
  Tensor out = empty(shape, dtype, device);
  if (shape.size() < 2) return out;
  // The common case, every input row-major, keeps the row-major result without sorting.
  bool all_contiguous = true;
  for (const Tensor* t : like) all_contiguous &= !t->defined() || t->is_contiguous();
  if (all_contiguous) return out;
  const std::vector<int64_t> order = memory_order(shape, like);
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i] != static_cast<int64_t>(i)) {
      out.impl()->strides = permuted_strides(shape, order);
      break;
    }
  return out;
}

Tensor Tensor::make_view(const std::shared_ptr<Storage>& storage, Shape sizes, Shape strides,
                         int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage;
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const { return impl_->sizes[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return impl_->strides[wrap_dim(d, dim(), "stride")]; }
int64_t Tensor::numel() const { return numel_of(impl_->sizes); }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // nothing to lay out, whatever the strides (numpy gives 0s)
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    const int64_t s = impl_->sizes[i];
    if (s == 0) return true;
    if (s != 1 && impl_->strides[i] != expected) return false;
    expected *= s;
  }
  return true;
}

bool Tensor::is_non_overlapping_and_dense() const {
  if (is_contiguous()) return true;
  // Sort dims by stride; dense iff they tile memory exactly.
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < dim(); ++i)
    if (impl_->sizes[i] != 1) perm.push_back(i);
  std::sort(perm.begin(), perm.end(),
            [&](int64_t x, int64_t y) { return impl_->strides[x] < impl_->strides[y]; });
  int64_t expected = 1;
  for (int64_t d : perm) {
    if (impl_->strides[d] != expected) return false;
    expected *= impl_->sizes[d];
  }
  return true;
}

bool Tensor::requires_grad() const {
  const auto& m = impl_->autograd;
  return m && (m->requires_grad || m->grad_fn);
}
bool Tensor::is_leaf() const { return !impl_->autograd || !impl_->autograd->grad_fn; }

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<autograd::Node> none;
  return impl_->autograd ? impl_->autograd->grad_fn : none;
}

Tensor Tensor::grad() const {
  return impl_->autograd && impl_->autograd->grad ? Tensor(impl_->autograd->grad) : Tensor();
}

void Tensor::set_grad(const Tensor& g) const { autograd_meta().grad = g.impl_ptr(); }

AutogradMeta& Tensor::autograd_meta() const {
  if (!impl_->autograd) impl_->autograd = std::make_unique<AutogradMeta>();
  return *impl_->autograd;
}

}  // namespace dc
