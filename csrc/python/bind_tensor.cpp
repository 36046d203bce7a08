// The Tensor type: properties, Python operators and the hot methods. Everything else is a
// function of deepcore._C that python/deepcore/_tensor.py attaches as a method.
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "dispatch/precision.h"
#include "jit/graph.h"
#include "ops/ops.h"
#include "python/common.h"
#include "python/hooks.h"

namespace dc::py_bind {

py::array tensor_to_numpy(const Tensor& t, bool force);

// The boxed arguments of a binary dunder's schema op (bind_jit.cpp).
jit::Stack binary_args(const char* name, const Tensor& a, const Tensor& b);

namespace {

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);

// Operand types a Python operator accepts; anything else returns NotImplemented so Python
// tries the reflected operator. `np_array + t` and `[1, 2] + t` reach the reflected form
// (ndarray defers to __array_priority__) and give a tensor, like torch.
bool is_operand(py::handle other) {
  return is_tensor(other) || PyFloat_Check(other.ptr()) || PyLong_Check(other.ptr()) ||
         PyBool_Check(other.ptr()) || py::isinstance<py::array>(other) ||
         PyList_Check(other.ptr()) || py::hasattr(other, "dtype");
}

// self OP other (reflected: other OP self).
template <BinaryFn F, bool Reflected = false>
py::object binop(const Tensor& self, py::handle other, const char* name) {
  if (!is_operand(other)) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
  jit::Record rec(name);  // Note [Traced graphs]: converting `other` may make a tensor
  Tensor o = to_tensor(other, name);
  Tensor r;
  {
    // Only the C++ op runs without the GIL; py::cast below needs it back.
    ReleaseIfLarge gil(self.numel());
    const Tensor& x = Reflected ? o : self;
    const Tensor& y = Reflected ? self : o;
    r = F(x, y);
    if (rec) rec.finish(binary_args(name, x, y), {r});
  }
  return py::cast(r);
}

// self OP= other, recorded as the schema op `name` (add_, ...) while tracing.
template <Tensor& (*F)(Tensor&, const Tensor&)>
Tensor& inplace_binop(Tensor& self, py::handle other, const char* name) {
  jit::Record rec(name);
  const Tensor o = to_tensor(other, name);
  F(self, o);
  if (rec) rec.finish(binary_args(name, self, o), {self});
  return self;
}

template <BinaryFn F>
py::object rbinop(const Tensor& self, py::handle other, const char* name) {
  return binop<F, true>(self, other, name);
}

// A unary dunder, recorded as the schema op `name` while tracing.
Tensor traced_unary(const char* name, const Tensor& a, Tensor (*fn)(const Tensor&)) {
  return jit::record_call(name, [&] { return jit::Stack{a}; }, [&] { return fn(a); });
}

Tensor add2(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
// a @ b: the matmul op's autocast policy applies to the operator too (Note [Precision
// policies]); matmul has 16-bit kernels.
Tensor matmul2(const Tensor& a, const Tensor& b) {
  constexpr auto lower = dispatch::CastPolicy::lower;
  if (dispatch::precision::needed(lower, true, a, b))
    return dispatch::precision::call(lower, true, false,
                                     [](Tensor x, Tensor y) { return ops::matmul(x, y); }, a, b);
  return ops::matmul(a, b);
}
Tensor sub2(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
Tensor div2(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
Tensor& add2_(Tensor& a, const Tensor& b) { return ops::add_(a, b); }
Tensor& sub2_(Tensor& a, const Tensor& b) { return ops::sub_(a, b); }

// t.shape / t.size(): a deepcore.Size, the class registered by the package (Note [Python
// hooks] in hooks.h; t.shape is on every module's forward path).
py::object size_of(const Tensor& t) { return size_hook()(py::cast(t.sizes())); }

std::string dtype_suffix(DType d) { return std::string("dtype=deepcore.") + dtype_name(d); }

}  // namespace

void bind_tensor(py::module_& m) {
  py::class_<TensorImpl, std::shared_ptr<TensorImpl>> cls(m, "Tensor", py::dynamic_attr());
  cls.def(py::init([](py::object data) -> std::shared_ptr<TensorImpl> {
        if (is_tensor(data)) {
          const Tensor t = data.cast<Tensor>();
          return jit::record_call("alias", [&] { return jit::Stack{t}; },
                                  [&] { return ops::alias(t); }).impl_ptr();
        }
        return ops::detach(to_tensor(tensor_hook()(data), "Tensor")).impl_ptr();
      }),
      py::arg("data"));
  cls.def_property_readonly("shape", [](const Tensor& t) {
        return size_of(t);
      })
      .def_property_readonly("dtype", [](const Tensor& t) { return t.dtype(); })
      .def_property_readonly("ndim", [](const Tensor& t) { return t.dim(); })
      .def("dim", [](const Tensor& t) { return t.dim(); })
      .def("ndimension", [](const Tensor& t) { return t.dim(); })
      .def("numel", [](const Tensor& t) { return t.numel(); })
      .def("nelement", [](const Tensor& t) { return t.numel(); })
      .def("element_size", [](const Tensor& t) { return t.itemsize(); })
      .def_property_readonly("itemsize", [](const Tensor& t) { return t.itemsize(); })
      .def_property_readonly("nbytes", [](const Tensor& t) { return t.numel() * t.itemsize(); })
      .def("size", [](const Tensor& t, py::object dim) -> py::object {
        if (dim.is_none()) return size_of(t);
        return py::cast(t.size(dim.cast<int64_t>()));
      }, py::arg("dim") = py::none())
      .def("stride", [](const Tensor& t, py::object dim) -> py::object {
        if (dim.is_none()) return py::tuple(py::cast(t.strides()));
        return py::cast(t.stride(dim.cast<int64_t>()));
      }, py::arg("dim") = py::none())
      .def("storage_offset", [](const Tensor& t) { return t.offset(); })
      .def("data_ptr", [](const Tensor& t) {
        jit::on_value_read("data_ptr"); return reinterpret_cast<uintptr_t>(t.data_ptr()); })
      .def("is_contiguous", [](const Tensor& t) { return t.is_contiguous(); })
      .def_property_readonly("is_cuda", [](const Tensor& t) {
        return t.device().type == DeviceType::CUDA; })
      .def("_version", [](const Tensor& t) { return t.version(); })
      // `p.data = t` (PyTorch's set_data): this tensor object now looks at t's storage, shape
      // and dtype, keeping its identity and autograd state (Module.to(dtype) relies on it).
      .def("_set_data", [](const Tensor& self, const Tensor& src) {
        jit::on_untraceable("Tensor.data = ...");
        TensorImpl* d = self.impl();
        // A leaf's gradient accumulator records its shape, dtype and device; a new kind of
        // data gets a new accumulator (as torch's set_data does).
        if (d->autograd && (src.sizes() != d->sizes || src.dtype() != d->dtype ||
                            src.device() != self.device()))
          d->autograd->grad_accumulator.reset();
        d->storage = src.storage();
        d->sizes = src.sizes();
        d->strides = src.strides();
        d->offset = src.offset();
        d->dtype = src.dtype();
        d->base = src.impl()->base;
      }, py::arg("data"))
      .def_property_readonly("_base_shape", [](const Tensor& t) -> py::object {
        if (!t.impl()->base) return py::none();
        return py::cast(t.impl()->base->sizes);
      })
      // autograd state
      .def_property("requires_grad", [](const Tensor& t) { return t.requires_grad(); },
                    [](const Tensor& t, bool r) {
                      DC_CHECK(t.is_leaf() || r, RuntimeError,
                               "[requires_grad] you can only change requires_grad flags of leaf "
                               "tensors; use detach() to get a tensor that does not require grad");
                      DC_CHECK(!r || is_floating(t.dtype()), RuntimeError,
                               "[requires_grad] only tensors of floating point dtype can require "
                               "gradients, got ", dtype_name(t.dtype()));
                      traced_set_requires_grad(t, r);
                      t.autograd_meta().requires_grad = r;
                    })
      .def_property("grad", [](const Tensor& t) { return traced_get_grad(t); },
                    [](const Tensor& t, py::object g) {
                      traced_set_grad(t, g.is_none() ? Tensor() : g.cast<Tensor>());
                      if (g.is_none()) {
                        if (t.has_autograd_meta()) t.autograd_meta().grad.reset();
                        return;
                      }
                      Tensor gt = g.cast<Tensor>();
                      DC_CHECK(gt.sizes() == t.sizes(), ValueError, "[grad] assigned grad has shape ",
                               gt.shape_str(), " but the tensor has shape ", t.shape_str());
                      t.set_grad(gt);
                    })
      .def_property_readonly("is_leaf", [](const Tensor& t) { return t.is_leaf(); })
      .def_property_readonly("_output_nr", [](const Tensor& t) { return t.output_nr(); })
      .def("detach", [](const Tensor& t) {
        return jit::record_call("detach", [&] { return jit::Stack{t}; },
                                [&] { return ops::detach(t); });
      })
      .def("detach_", [](const Tensor& t) {
        jit::on_untraceable("Tensor.detach_()");
        if (t.has_autograd_meta()) {
          t.autograd_meta().grad_fn.reset();
          t.autograd_meta().requires_grad = false;
        }
        return t;
      })
      .def("item", [](const Tensor& t) -> py::object {
        jit::on_value_read("item");
        DC_CHECK(t.numel() == 1, ValueError, "[item] a Tensor with ", t.numel(),
                 " elements cannot be converted to a Python scalar");
        const Tensor h = ops::on_host(t);
        return DC_DISPATCH_ALL_AND_HALF(t.dtype(), "item", [&]() -> py::object {
          if constexpr (std::is_floating_point_v<scalar_t>) return py::cast(*h.data<scalar_t>());
          else if constexpr (is_float_v<scalar_t>)
            return py::cast(static_cast<double>(static_cast<float>(*h.data<scalar_t>())));
          else return py::cast(*h.data<scalar_t>());
        });
      })
      .def("numpy", [](const Tensor& t, bool force) { return tensor_to_numpy(t, force); },
           py::arg("force") = false)
      .def("__len__", [](const Tensor& t) {
        DC_CHECK(t.dim() > 0, TypeError, "[len] len() of a 0-d tensor");
        return t.sizes()[0];
      })
      .def("__add__", [](const Tensor& a, py::handle b) { return binop<add2>(a, b, "add"); })
      .def("__radd__", [](const Tensor& a, py::handle b) { return rbinop<add2>(a, b, "add"); })
      .def("__sub__", [](const Tensor& a, py::handle b) { return binop<sub2>(a, b, "sub"); })
      .def("__rsub__", [](const Tensor& a, py::handle b) { return rbinop<sub2>(a, b, "sub"); })
      .def("__mul__", [](const Tensor& a, py::handle b) { return binop<ops::mul>(a, b, "mul"); })
      .def("__rmul__", [](const Tensor& a, py::handle b) { return rbinop<ops::mul>(a, b, "mul"); })
      .def("__truediv__", [](const Tensor& a, py::handle b) { return binop<div2>(a, b, "div"); })
      .def("__rtruediv__", [](const Tensor& a, py::handle b) { return rbinop<div2>(a, b, "div"); })
      .def("__floordiv__", [](const Tensor& a, py::handle b) { return binop<ops::floor_divide>(a, b, "floor_divide"); })
      .def("__rfloordiv__", [](const Tensor& a, py::handle b) { return rbinop<ops::floor_divide>(a, b, "floor_divide"); })
      .def("__mod__", [](const Tensor& a, py::handle b) { return binop<ops::remainder>(a, b, "remainder"); })
      .def("__rmod__", [](const Tensor& a, py::handle b) { return rbinop<ops::remainder>(a, b, "remainder"); })
      .def("__pow__", [](const Tensor& a, py::handle b) { return binop<ops::pow>(a, b, "pow"); })
      .def("__rpow__", [](const Tensor& a, py::handle b) { return rbinop<ops::pow>(a, b, "pow"); })
      .def("__matmul__", [](const Tensor& a, py::handle b) { return binop<matmul2>(a, b, "matmul"); })
      .def("__rmatmul__", [](const Tensor& a, py::handle b) { return rbinop<matmul2>(a, b, "matmul"); })
      .def("__eq__", [](const Tensor& a, py::handle b) { return binop<ops::eq>(a, b, "eq"); })
      .def("__ne__", [](const Tensor& a, py::handle b) { return binop<ops::ne>(a, b, "ne"); })
      .def("__lt__", [](const Tensor& a, py::handle b) { return binop<ops::lt>(a, b, "lt"); })
      .def("__le__", [](const Tensor& a, py::handle b) { return binop<ops::le>(a, b, "le"); })
      .def("__gt__", [](const Tensor& a, py::handle b) { return binop<ops::gt>(a, b, "gt"); })
      .def("__ge__", [](const Tensor& a, py::handle b) { return binop<ops::ge>(a, b, "ge"); })
      .def("__and__", [](const Tensor& a, py::handle b) { return binop<ops::bitwise_and>(a, b, "bitwise_and"); })
      .def("__rand__", [](const Tensor& a, py::handle b) { return rbinop<ops::bitwise_and>(a, b, "bitwise_and"); })
      .def("__or__", [](const Tensor& a, py::handle b) { return binop<ops::bitwise_or>(a, b, "bitwise_or"); })
      .def("__ror__", [](const Tensor& a, py::handle b) { return rbinop<ops::bitwise_or>(a, b, "bitwise_or"); })
      .def("__xor__", [](const Tensor& a, py::handle b) { return binop<ops::bitwise_xor>(a, b, "bitwise_xor"); })
      .def("__rxor__", [](const Tensor& a, py::handle b) { return rbinop<ops::bitwise_xor>(a, b, "bitwise_xor"); })
      .def("__neg__", [](const Tensor& a) { return traced_unary("neg", a, ops::neg); })
      .def("__pos__", [](const Tensor& a) { return a; })
      .def("__abs__", [](const Tensor& a) { return traced_unary("abs", a, ops::abs); })
      .def("__invert__", [](const Tensor& a) {
        DC_CHECK(a.dtype() == DType::Bool, TypeError, "[bitwise_not] only bool tensors are supported, got ",
                 dtype_name(a.dtype()));
        return traced_unary("logical_not", a, ops::logical_not);
      })
      .def("__iadd__", [](Tensor& a, py::handle b) { return inplace_binop<add2_>(a, b, "add_"); })
      .def("__isub__", [](Tensor& a, py::handle b) { return inplace_binop<sub2_>(a, b, "sub_"); })
      .def("__imul__", [](Tensor& a, py::handle b) { return inplace_binop<ops::mul_>(a, b, "mul_"); })
      .def("__itruediv__", [](Tensor& a, py::handle b) { return inplace_binop<ops::div_>(a, b, "div_"); })
      .def("__ipow__", [](Tensor& a, py::handle b) { return inplace_binop<ops::pow_>(a, b, "pow_"); })
      .def("__bool__", [](const Tensor& t) {
        jit::on_value_read("__bool__");
        DC_CHECK(t.numel() == 1, RuntimeError, "[bool] boolean value of a tensor with ", t.numel(),
                 " elements is ambiguous");
        const Tensor h = ops::on_host(t);
        return DC_DISPATCH_ALL(t.dtype(), "bool", [&] { return *h.data<scalar_t>() != scalar_t(0); });
      })
      .def("__float__", [](const Tensor& t) { return to_scalar(py::cast(t), "float").to_double(); })
      .def("__int__", [](const Tensor& t) {
        return to_scalar(py::cast(t), "int").to<int64_t>();
      })
      .def("__index__", [](const Tensor& t) {
        DC_CHECK(!is_floating(t.dtype()) && t.numel() == 1, TypeError,
                 "[index] only integer tensors of a single element can be converted to an index");
        return to_scalar(py::cast(t), "index").to_int();
      })
      .def("__hash__", [](const Tensor& t) { return reinterpret_cast<intptr_t>(t.impl()); })
      .def("_dtype_suffix", [](const Tensor& t) { return dtype_suffix(t.dtype()); });
}

}  // namespace dc::py_bind
