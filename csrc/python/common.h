#pragma once
// Shared pieces of the bindings: the Tensor caster (Python objects map 1:1 onto TensorImpl, so
// identity and subclasses like nn.Parameter survive a round trip through C++), argument
// conversion and GIL helpers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "core/tensor.h"

namespace py = pybind11;

namespace pybind11::detail {
template <>
struct type_caster<dc::Tensor> {
 public:
  PYBIND11_TYPE_CASTER(dc::Tensor, const_name("Tensor"));
  bool load(handle src, bool convert);
  static handle cast(const dc::Tensor& t, return_value_policy policy, handle parent);
};
}  // namespace pybind11::detail

namespace dc::py_bind {

// A tensor argument: Tensor, Python number (wrapped scalar), NumPy array or nested list.
Tensor to_tensor(py::handle obj, const char* op);
Scalar to_scalar(py::handle obj, const char* op);
bool is_tensor(py::handle obj);
DType to_dtype_arg(py::handle obj);  // accepts a dtype or a dtype name
Shape to_shape(py::handle obj, const char* op);  // int or sequence of ints
// Indices: a tensor, NumPy array, list or int; an empty list is an empty int64 index.
Tensor to_index_tensor(py::handle obj, const char* op);
// A list of indices for index/index_put_: None stands for a full slice.
tensor_list to_index_list(py::handle obj, const char* op);
// A creation op's requires_grad=: only floating point results may require gradients.
Tensor set_requires_grad(Tensor t, bool requires_grad);

// The tracer's hooks in the hand-written bindings (bind_jit.cpp; Note [Traced graphs]).
Tensor traced_get_grad(const Tensor& t);
void traced_set_grad(const Tensor& t, const Tensor& g);
void traced_set_requires_grad(const Tensor& t, bool requires_grad);
void trace_backward(const tensor_list& roots, const tensor_list& grads, bool retain, bool create,
                    const tensor_list& inputs);
tensor_list trace_grad(const tensor_list& outs, const tensor_list& ins, const tensor_list& gs,
                       bool retain, bool create, bool allow_unused);

// Releases the GIL only for work big enough to outweigh the cost of re-acquiring it.
struct ReleaseIfLarge {
  explicit ReleaseIfLarge(int64_t work) {
    if (work >= 65536) release.emplace();
  }
  std::optional<py::gil_scoped_release> release;
};

// Holds a Python callable from C++ safely: copies and destruction take the GIL.
std::shared_ptr<py::object> hold(py::object obj);

// Each bind_*.cpp file registers itself; the module init runs them in file-name order.
struct BindingRegistrar {
  BindingRegistrar(const char* name, void (*fn)(py::module_&));
};
void run_registered_bindings(py::module_& m);

void bind_tensor(py::module_& m);
void bind_ops(py::module_& m);
void bind_autograd(py::module_& m);
void bind_interop(py::module_& m);

}  // namespace dc::py_bind
