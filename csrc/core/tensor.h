#pragma once
#include <initializer_list>
// Tensor = shared Storage + sizes + strides + offset + dtype + device, plus autograd metadata.
// `Tensor` is a cheap handle (one shared_ptr); copies alias the same TensorImpl.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/scalar.h"
#include "core/storage.h"

namespace dc {

namespace autograd {
struct Node;
}
class Tensor;
using Shape = std::vector<int64_t>;
using tensor_list = std::vector<Tensor>;
using TensorHook = std::function<Tensor(const Tensor&)>;

struct AutogradMeta {
  bool requires_grad = false;  // set on leaves by the user
  std::shared_ptr<autograd::Node> grad_fn;
  std::weak_ptr<autograd::Node> grad_accumulator;  // leaves: shared by every use
  uint32_t output_nr = 0;
  bool retains_grad = false;
  std::shared_ptr<struct TensorImpl> grad;
  std::vector<TensorHook> hooks;  // leaf hooks; non-leaf hooks live on grad_fn
  // Leaves: run after backward has accumulated into .grad (register_post_accumulate_grad_hook),
  // each under the id its handle removes it by.
  std::vector<std::pair<int64_t, std::function<void(const Tensor&)>>> post_accumulate_hooks;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape sizes;
  Shape strides;  // in elements
  int64_t offset = 0;
  DType dtype = DType::Float32;
  // A Python number turned into a 0-d tensor: it joins type promotion with the lowest priority.
  bool is_wrapped_number = false;
  // For views: the tensor whose storage this one looks into (the root base, never a view).
  // In-place writes through a view consult it (Note [In-place on views] in ops/creation.cpp).
  std::shared_ptr<TensorImpl> base;
  std::unique_ptr<AutogradMeta> autograd;  // allocated on first use
  std::shared_ptr<void> py_extra;          // reserved for the bindings
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialised contiguous tensor.
  // On `device`, by default the current one (the device of the op in flight, else cpu).
  static Tensor empty(const Shape& shape, DType dtype, Device device = current_device());
  // Uninitialised dense tensor whose memory order follows `like` (Note [Output layout]): a
  // permuted input (x.t(), a channels-last image) gives an output with the same strides.
  // `like` are pointers, as at the op's call sites ({&a, &b}): no vector, no reference counts.
  static Tensor empty_like_layout(const Shape& shape, DType dtype,
                                  std::initializer_list<const Tensor*> like,
                                  Device device = current_device());
  // A view over `storage` with the given geometry (no checks beyond bounds; no autograd).
  static Tensor make_view(const std::shared_ptr<Storage>& storage, Shape sizes, Shape strides,
                          int64_t offset, DType dtype);

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  const Shape& sizes() const { return impl_->sizes; }
  const Shape& shape() const { return impl_->sizes; }
  const Shape& strides() const { return impl_->strides; }
  int64_t size(int64_t dim) const;    // negative dims wrap; IndexError if out of range
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return static_cast<int64_t>(impl_->sizes.size()); }
  int64_t numel() const;
  int64_t offset() const { return impl_->offset; }
  DType dtype() const { return impl_->dtype; }
  size_t itemsize() const { return dc::itemsize(impl_->dtype); }
  Device device() const { return impl_->storage->device; }
  bool is_meta() const { return impl_->storage->device.type == DeviceType::Meta; }
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
  void* data_ptr() const {
    return static_cast<char*>(impl_->storage->data) + impl_->offset * itemsize();
  }
  // Typed access to the values, for code that reads or writes them on the host. A meta tensor
  // has no values, and a device's values are not in host memory: RuntimeError naming the op in
  // flight, never a wild pointer. (data_ptr() stays unchecked: it is only handed to the kernels
  // of the tensor's own device.)
  template <typename T>
  T* data() const {
    if (impl_->storage->device.type != DeviceType::CPU) throw_no_host_values();
    return static_cast<T*>(data_ptr());
  }
  bool is_contiguous() const;
  // Bytes from the first to one past the last element reachable through this view.
  bool is_non_overlapping_and_dense() const;

  // Autograd state (the ops that change it live in autograd/).
  bool requires_grad() const;
  bool is_leaf() const;
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  uint32_t output_nr() const { return impl_->autograd ? impl_->autograd->output_nr : 0; }
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  AutogradMeta& autograd_meta() const;  // allocates on first use
  bool has_autograd_meta() const { return impl_->autograd != nullptr; }
  uint32_t version() const { return impl_->storage->version.load(std::memory_order_relaxed); }
  void bump_version() const { impl_->storage->version.fetch_add(1, std::memory_order_relaxed); }

  std::string shape_str() const { return dc::shape_str(impl_->sizes); }

 private:
  [[noreturn]] void throw_no_host_values() const;
  std::shared_ptr<TensorImpl> impl_;
};

// Shape helpers shared by ops and kernels.
int64_t numel_of(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
// Dense strides for `shape` whose dims are laid out in memory in `order`, outermost first.
Shape permuted_strides(const Shape& shape, const std::vector<int64_t>& order);
// The memory order (dims, outermost first) that tensors broadcast to `shape` share: dims sorted
// by decreasing stride, the first operand with distinct non-zero strides deciding each pair,
// the original order where none does (Note [Output layout]).
std::vector<int64_t> memory_order(const Shape& shape,
                                  std::initializer_list<const Tensor*> operands);
// Note [Dims of a 0-d tensor]
// wrap_dim maps a possibly negative dim into [0, ndim) and raises IndexError naming `op`
// otherwise, a 0-d tensor included: its result always indexes sizes()/strides(). Ops that, like
// PyTorch, also accept dim 0 or -1 on a 0-d tensor (reductions, softmax, flip, squeeze, ...)
// call wrap_dim_scalar_ok and must handle the 0-d case before they index anything with it.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
int64_t wrap_dim_scalar_ok(int64_t dim, int64_t ndim, const char* op);
// Broadcast two shapes like NumPy; ValueError naming `op` if they are incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace dc
