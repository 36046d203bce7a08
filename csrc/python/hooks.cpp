// The Python hooks of the bindings (Note [Python hooks] in hooks.h) and the private function
// that registers them.
#include "python/hooks.h"

namespace dc::py_bind {

namespace hooks_detail {
PyObject* tensor_fn = nullptr;
PyObject* size_cls = nullptr;

void not_registered(const char* name) {
  DC_THROW(RuntimeError, "[deepcore._C] deepcore.", name,
           " is not registered: import the deepcore package (it calls "
           "_C._register_python_hooks) rather than deepcore._C alone");
}
}  // namespace hooks_detail

namespace {

// A new strong reference that is never released; a replaced one is leaked too, since a
// binding running on another thread may still be calling it.
void keep(PyObject*& slot, const py::object& obj) { slot = obj.inc_ref().ptr(); }

void bind_hooks(py::module_& m) {
  m.def("_register_python_hooks", [](const py::object& tensor, const py::object& size) {
    DC_CHECK(PyCallable_Check(tensor.ptr()), TypeError,
             "[_register_python_hooks] tensor must be callable");
    DC_CHECK(PyType_Check(size.ptr()), TypeError, "[_register_python_hooks] Size must be a class");
    keep(hooks_detail::tensor_fn, tensor);
    keep(hooks_detail::size_cls, size);
  }, py::arg("tensor"), py::arg("Size"),
     "Hands _C the Python objects its bindings call back into (deepcore.tensor, deepcore.Size); "
     "called once by deepcore/__init__.py.");
}

const BindingRegistrar registrar("hooks", bind_hooks);

}  // namespace
}  // namespace dc::py_bind
