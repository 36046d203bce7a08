// Argument conversions the generated op bindings (tools/gen_ops.py) use beside common.h's.
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {

Tensor to_index_tensor(py::handle obj, const char* op) {
  Tensor t = to_tensor(obj, op);
  if (!is_tensor(obj) && t.numel() == 0 && is_floating(t.dtype()))
    t = ops::to_dtype(t, DType::Int64);
  return t;
}

tensor_list to_index_list(py::handle obj, const char* op) {
  DC_CHECK(py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj), TypeError, "[",
           op, "] indices must be a sequence of tensors or None");
  tensor_list out;
  for (py::handle h : obj) out.push_back(h.is_none() ? Tensor() : to_index_tensor(h, op));
  return out;
}

Tensor set_requires_grad(Tensor t, bool requires_grad) {
  if (requires_grad) {
    DC_CHECK(is_floating(t.dtype()), RuntimeError, "[requires_grad] only tensors of floating "
             "point dtype can require gradients, got ", dtype_name(t.dtype()));
    t.autograd_meta().requires_grad = true;
  }
  return t;
}

}  // namespace dc::py_bind
