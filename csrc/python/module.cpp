// deepcore._C: module setup, error translation, the Tensor caster and argument conversion.
#include <pybind11/numpy.h>

#include <algorithm>

#include "autograd/grad_mode.h"
#include "core/matmul_precision.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "jit/graph.h"
#include "kernels/cpu/isa.h"
#include "ops/ops.h"
#include "python/common.h"
#include "python/hooks.h"

#ifndef DEEPCORE_VERSION
#define DEEPCORE_VERSION "dev"
#endif
#ifndef DEEPCORE_COMPILER
#define DEEPCORE_COMPILER "unknown"
#endif

namespace pybind11::detail {

bool type_caster<dc::Tensor>::load(handle src, bool) {
  if (!isinstance<dc::TensorImpl>(src)) return false;
  value = dc::Tensor(src.cast<std::shared_ptr<dc::TensorImpl>>());
  return true;
}

handle type_caster<dc::Tensor>::cast(const dc::Tensor& t, return_value_policy, handle) {
  if (!t.defined()) return none().release();
  return pybind11::cast(t.impl_ptr()).release();
}

}  // namespace pybind11::detail

namespace dc::py_bind {

bool is_tensor(py::handle obj) { return py::isinstance<TensorImpl>(obj); }

Scalar to_scalar(py::handle obj, const char* op) {
  if (PyBool_Check(obj.ptr())) return Scalar(obj.ptr() == Py_True);
  if (PyLong_Check(obj.ptr())) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj.ptr(), &overflow);
    DC_CHECK(!overflow, ValueError, "[", op, "] integer ", py::str(obj).cast<std::string>(),
             " does not fit in int64");
    return Scalar(static_cast<int64_t>(v));
  }
  if (PyFloat_Check(obj.ptr())) return Scalar(PyFloat_AS_DOUBLE(obj.ptr()));
  if (is_tensor(obj)) {
    jit::on_value_read("item");  // float(t), int(t), a tensor where a number goes
    Tensor t = obj.cast<Tensor>();
    DC_CHECK(t.numel() == 1, ValueError, "[", op, "] expected a number or a one-element tensor, "
             "got a tensor of shape ", t.shape_str());
    Tensor d = ops::to_dtype(ops::detach(t), t.dtype());
    return DC_DISPATCH_ALL(t.dtype(), op, [&]() -> Scalar {
      scalar_t v = *ops::on_host(ops::contiguous_clone(d)).data<scalar_t>();
      if constexpr (std::is_same_v<scalar_t, bool>) return Scalar(v);
      else if constexpr (std::is_floating_point_v<scalar_t>) return Scalar(static_cast<double>(v));
      else return Scalar(static_cast<int64_t>(v));
    });
  }
  // NumPy scalars and anything else with __float__/__index__.
  if (py::hasattr(obj, "dtype") && py::hasattr(obj, "item") && !py::hasattr(obj, "shape"))
    return to_scalar(obj.attr("item")(), op);
  if (py::isinstance<py::array>(obj) && py::array(py::reinterpret_borrow<py::object>(obj)).ndim() == 0)
    return to_scalar(obj.attr("item")(), op);
  DC_THROW(TypeError, "[", op, "] expected a number, got ",
           py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
}

Tensor to_tensor(py::handle obj, const char* op) {
  if (is_tensor(obj)) return obj.cast<Tensor>();
  if (PyBool_Check(obj.ptr()) || PyLong_Check(obj.ptr()) || PyFloat_Check(obj.ptr()))
    return ops::wrap_scalar(to_scalar(obj, op));
  if (py::isinstance<py::array>(obj) || PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr()) ||
      py::hasattr(obj, "__array__") || py::hasattr(obj, "dtype")) {
    return tensor_hook()(obj).cast<Tensor>();
  }
  DC_THROW(TypeError, "[", op, "] expected a Tensor, a number, a NumPy array or a list, got ",
           py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
}

DType to_dtype_arg(py::handle obj) {
  if (py::isinstance<DType>(obj)) return obj.cast<DType>();
  if (py::isinstance<py::str>(obj)) return dtype_from_name(obj.cast<std::string>());
  if (obj.ptr() == reinterpret_cast<PyObject*>(&PyFloat_Type)) return DType::Float32;
  if (obj.ptr() == reinterpret_cast<PyObject*>(&PyLong_Type)) return DType::Int64;
  if (obj.ptr() == reinterpret_cast<PyObject*>(&PyBool_Type)) return DType::Bool;
  // NumPy dtypes and types: by name.
  if (py::hasattr(obj, "name") || py::hasattr(obj, "__name__")) {
    py::object np = py::module_::import("numpy");
    std::string name = py::str(np.attr("dtype")(obj).attr("name"));
    return dtype_from_name(name);
  }
  DC_THROW(TypeError, "[dtype] expected a deepcore dtype, got ",
           py::str(obj).cast<std::string>());
}

Shape to_shape(py::handle obj, const char* op) {
  if (PyLong_Check(obj.ptr())) return {obj.cast<int64_t>()};
  Shape s;
  DC_CHECK(py::isinstance<py::sequence>(obj), TypeError, "[", op,
           "] expected a shape (int or sequence of ints), got ",
           py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  for (py::handle h : obj) {
    DC_CHECK(PyLong_Check(h.ptr()) || py::hasattr(h, "__index__"), TypeError, "[", op,
             "] shape entries must be ints, got ", py::str(h).cast<std::string>());
    s.push_back(to_scalar(h, op).to_int());  // an out-of-range int is a ValueError
  }
  return s;
}

namespace {
std::vector<std::pair<std::string, void (*)(py::module_&)>>& registry() {
  static std::vector<std::pair<std::string, void (*)(py::module_&)>> r;
  return r;
}
}  // namespace

BindingRegistrar::BindingRegistrar(const char* name, void (*fn)(py::module_&)) {
  registry().emplace_back(name, fn);
}

void run_registered_bindings(py::module_& m) {
  auto r = registry();
  std::sort(r.begin(), r.end());
  for (auto& [name, fn] : r) fn(m);
}

std::shared_ptr<py::object> hold(py::object obj) {
  return std::shared_ptr<py::object>(new py::object(std::move(obj)), [](py::object* p) {
    py::gil_scoped_acquire gil;
    delete p;
  });
}

}  // namespace dc::py_bind

PYBIND11_MODULE(_C, m) {
  using namespace dc;
  m.doc() = "deepcore C++ engine";
  static py::exception<dc::NotImplementedError> not_impl(m, "_NotImplemented", PyExc_NotImplementedError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const dc::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const dc::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const dc::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const dc::MemoryError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const dc::NotImplementedError& e) {
      PyErr_SetString(PyExc_NotImplementedError, e.what());
    } catch (const dc::RuntimeError& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError, "[alloc] out of memory");
    }
  });

  py::enum_<DType>(m, "dtype")
      .value("bool", DType::Bool)
      .value("int32", DType::Int32)
      .value("int64", DType::Int64)
      .value("float32", DType::Float32)
      .value("float64", DType::Float64)
      .value("bfloat16", DType::BFloat16)
      .value("float16", DType::Float16)
      .def("__repr__", [](DType d) { return std::string("deepcore.") + dtype_name(d); })
      .def("__str__", [](DType d) { return std::string("deepcore.") + dtype_name(d); })
      .def_property_readonly("is_floating_point", [](DType d) { return is_floating(d); })
      .def_property_readonly("itemsize", [](DType d) { return itemsize(d); })
      .def_property_readonly("name", [](DType d) { return std::string(dtype_name(d)); });
  m.def("promote_types", [](DType a, DType b) { return promote_types(a, b); });

  m.def("set_num_threads", &set_num_threads);
  m.def("get_num_threads", &get_num_threads);
  m.def("_set_float32_matmul_precision", [](const std::string& p) {  // validated in Python
    set_float32_matmul_precision(p == "high"     ? Float32MatmulPrecision::high
                                 : p == "medium" ? Float32MatmulPrecision::medium
                                                 : Float32MatmulPrecision::highest);
  }, py::arg("precision"));
  m.def("manual_seed", [](uint64_t s) { manual_seed(s); });
  m.def("initial_seed", [] { return default_generator().seed; });
  m.def("_rng_state", [] { return py::make_tuple(default_generator().seed, default_generator().offset); });
  m.def("_set_rng_state", [](uint64_t seed, uint64_t offset) {
    default_generator().seed = seed;
    default_generator().offset = offset;
  });
  m.def("_set_isa", [](const std::string& n) { cpu::set_active_isa(cpu::isa_from_name(n)); });
  m.def("_active_isa", [] { return std::string(cpu::isa_name(cpu::active_isa())); });
  m.def("_detected_isa", [] { return std::string(cpu::isa_name(cpu::detected_isa())); });
  m.def("_build_info", [] {
    py::dict d;
    d["version"] = DEEPCORE_VERSION;
    d["compiler"] = DEEPCORE_COMPILER;
#ifdef DEEPCORE_CUDA
    d["cuda"] = true;
#else
    d["cuda"] = false;
#endif
    d["openmp"] = true;
    return d;
  });

  py_bind::bind_tensor(m);
  py_bind::bind_ops(m);
  py_bind::bind_autograd(m);
  py_bind::bind_interop(m);
  py_bind::run_registered_bindings(m);
}
