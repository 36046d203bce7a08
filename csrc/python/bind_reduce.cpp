// Reduction bindings (sum and mean are in bind_ops.cpp). Overloaded PyTorch signatures
// (max/min, var/std with `unbiased`, norm with string p) are resolved in deepcore/_reduce.py
// on top of the underscore functions here.
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

// dim=None -> all dims; int -> one; sequence -> several. Python arguments are converted
// before ReleaseIfLarge drops the GIL.
Shape dims_arg(const py::object& dim, const char* op) {
  if (dim.is_none()) return {};
  return to_shape(dim, op);
}

// A dtype= argument casts the input first, like PyTorch.
Tensor cast_arg(const Tensor& t, const py::object& dtype) {
  return dtype.is_none() ? t : ops::to_dtype(t, to_dtype_arg(dtype));
}

bool reduces_nothing(const py::object& dim) {
  return py::isinstance<py::sequence>(dim) && py::len(dim) == 0;
}

void bind_reduce(py::module_& m) {
  using namespace ops;
  m.def("prod", [](const Tensor& t, py::object dim, bool keepdim, py::object dtype) {
    const Tensor x = cast_arg(t, dtype);
    const Shape dims = dims_arg(dim, "prod");
    ReleaseIfLarge gil(t.numel());
    return prod(x, dims, keepdim);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false, py::kw_only(),
     py::arg("dtype") = py::none());
  m.def("amax", [](const Tensor& t, py::object dim, bool keepdim) {
    const Shape dims = dims_arg(dim, "amax");
    ReleaseIfLarge gil(t.numel());
    return amax(t, dims, keepdim);
  }, py::arg("input"), py::arg("dim") = py::tuple(), py::arg("keepdim") = false);
  m.def("amin", [](const Tensor& t, py::object dim, bool keepdim) {
    const Shape dims = dims_arg(dim, "amin");
    ReleaseIfLarge gil(t.numel());
    return amin(t, dims, keepdim);
  }, py::arg("input"), py::arg("dim") = py::tuple(), py::arg("keepdim") = false);
  m.def("_max_all", [](const Tensor& t) {
    ReleaseIfLarge gil(t.numel());
    return max_all(t);
  });
  m.def("_min_all", [](const Tensor& t) {
    ReleaseIfLarge gil(t.numel());
    return min_all(t);
  });
  m.def("_max_dim", [](const Tensor& t, int64_t dim, bool keepdim) {
    ReleaseIfLarge gil(t.numel());
    return max_dim(t, dim, keepdim);
  });
  m.def("_min_dim", [](const Tensor& t, int64_t dim, bool keepdim) {
    ReleaseIfLarge gil(t.numel());
    return min_dim(t, dim, keepdim);
  });
  m.def("argmax", [](const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
    ReleaseIfLarge gil(t.numel());
    return argmax(t, dim, keepdim);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("argmin", [](const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
    ReleaseIfLarge gil(t.numel());
    return argmin(t, dim, keepdim);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("_var", [](const Tensor& t, py::object dim, double correction, bool keepdim) {
    const Shape dims = dims_arg(dim, "var");
    ReleaseIfLarge gil(t.numel());
    return var(t, dims, correction, keepdim);
  });
  m.def("_std", [](const Tensor& t, py::object dim, double correction, bool keepdim) {
    const Shape dims = dims_arg(dim, "std");
    ReleaseIfLarge gil(t.numel());
    return ops::std(t, dims, correction, keepdim);
  });
  m.def("logsumexp", [](const Tensor& t, py::object dim, bool keepdim) {
    const Shape dims = dims_arg(dim, "logsumexp");
    ReleaseIfLarge gil(t.numel());
    return logsumexp(t, dims, keepdim);
  }, py::arg("input"), py::arg("dim"), py::arg("keepdim") = false);
  m.def("_norm", [](const Tensor& t, double p, py::object dim, bool keepdim) {
    const Shape dims = dims_arg(dim, "norm");
    ReleaseIfLarge gil(t.numel());
    return norm(t, p, dims, keepdim);
  });
  // all/any with dim=() reduce nothing in PyTorch (an elementwise "!= 0").
  m.def("all", [](const Tensor& t, py::object dim, bool keepdim) {
    if (reduces_nothing(dim)) return ne(t, wrap_scalar(Scalar(int64_t(0))));
    const Shape dims = dims_arg(dim, "all");
    ReleaseIfLarge gil(t.numel());
    return all(t, dims, keepdim);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("any", [](const Tensor& t, py::object dim, bool keepdim) {
    if (reduces_nothing(dim)) return ne(t, wrap_scalar(Scalar(int64_t(0))));
    const Shape dims = dims_arg(dim, "any");
    ReleaseIfLarge gil(t.numel());
    return any(t, dims, keepdim);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("count_nonzero", [](const Tensor& t, py::object dim) {
    const Shape dims = dims_arg(dim, "count_nonzero");
    ReleaseIfLarge gil(t.numel());
    return count_nonzero(t, dims);
  }, py::arg("input"), py::arg("dim") = py::none());
  m.def("cumsum", [](const Tensor& t, int64_t dim, py::object dtype) {
    const Tensor x = cast_arg(t, dtype);
    ReleaseIfLarge gil(t.numel());
    return cumsum(x, dim);
  }, py::arg("input"), py::arg("dim"), py::kw_only(), py::arg("dtype") = py::none());
}

const BindingRegistrar reg("reduce", bind_reduce);

}  // namespace
}  // namespace dc::py_bind
