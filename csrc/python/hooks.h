#pragma once
// Note [Python hooks]
// C++ never imports the deepcore package: the package sits on top of _C, so an import from C++
// would run the package's __init__ from inside a binding (a cycle, and a half-initialised
// module when it happens during import). The few Python objects the bindings call back into
// are handed to _C instead, by deepcore/__init__.py right after it defines them:
//     _C._register_python_hooks(tensor=deepcore.tensor, Size=deepcore.Size)
// Each is kept as a strong reference that is never released (so nothing is freed after the
// interpreter has shut down), and reading it costs one pointer test: t.shape calls Size on
// every module's forward path. Using one before registration (deepcore._C loaded without the
// package) raises RuntimeError.
#include "python/common.h"

namespace dc::py_bind {

namespace hooks_detail {
extern PyObject* tensor_fn;
extern PyObject* size_cls;
[[noreturn]] void not_registered(const char* name);
}  // namespace hooks_detail

// deepcore.tensor: lists, tuples and arrays to tensors.
inline py::handle tensor_hook() {
  if (!hooks_detail::tensor_fn) hooks_detail::not_registered("tensor");
  return hooks_detail::tensor_fn;
}

// deepcore.Size: the class of t.shape and t.size().
inline py::handle size_hook() {
  if (!hooks_detail::size_cls) hooks_detail::not_registered("Size");
  return hooks_detail::size_cls;
}

}  // namespace dc::py_bind
