// deepcore._C._op_registry(): the rows of csrc/ops/ops.schema, for tests, docs and the Python
// layer (deepcore/_tensor.py attaches Tensor methods and exports functions from it).
#include <sstream>

#include "ops/registry.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

py::list words(const char* s) {
  py::list out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.append(w);
  return out;
}

void bind_registry(py::module_& m) {
  m.def("_op_registry", [](bool internal) {
    py::list out;
    for (const auto& op : ops::op_registry()) {
      if (op.name[0] == '_' && !internal) continue;
      py::dict d;
      d["name"] = op.name;
      d["family"] = op.family;
      d["differentiable"] = op.grad == ops::Grad::differentiable;
      d["cpu"] = op.cpu;
      d["cuda"] = op.cuda;
      d["signature"] = op.signature;
      d["variants"] = words(op.variants);
      d["binding"] = *op.binding ? py::object(py::str(op.binding)) : py::object(py::none());
      d["generated"] = op.generated;
      d["python"] = !*op.binding;
      d["module"] = op.nn ? "deepcore.nn.functional" : "deepcore";
      d["inplace_of"] = *op.inplace_of ? py::object(py::str(op.inplace_of)) : py::object(py::none());
      out.append(d);
    }
    return out;
  }, py::arg("internal") = false);
}

const BindingRegistrar registrar("registry", bind_registry);

}  // namespace
}  // namespace dc::py_bind
