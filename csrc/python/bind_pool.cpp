// Hand-written pooling binding (csrc/ops/ops.schema row marked manual): avg_pool2d's
// divisor_override=None means "the window size", and 0 is an error, not that.
#include "dispatch/precision.h"
#include "jit/graph.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

// The boxed form for the tracer (Note [Traced graphs] in jit/graph.h).
tensor_list invoke_avg_pool2d(jit::Stack& s) {
  return {ops::avg_pool2d(std::get<Tensor>(s[0]), std::get<Shape>(s[1]), std::get<Shape>(s[2]),
                          std::get<Shape>(s[3]), std::get<bool>(s[4]), std::get<bool>(s[5]),
                          std::get<int64_t>(s[6]))};
}
const int k_avg_pool2d = jit::register_op("avg_pool2d", &invoke_avg_pool2d, jit::Effect::None);

void bind_pool(py::module_& m) {
  m.def("_avg_pool2d", [](const Tensor& x, py::object k, py::object s, py::object p,
                          bool ceil_mode, bool count_include_pad, py::object divisor_override) {
    const char* op = "avg_pool2d";
    Shape st = s.is_none() ? Shape{} : to_shape(s, op);
    const int64_t dv = divisor_override.is_none() ? 0 : divisor_override.cast<int64_t>();
    DC_CHECK(divisor_override.is_none() || dv > 0, ValueError,
             "[avg_pool2d] divisor must be not zero");
    Shape ks = to_shape(k, op), ps = to_shape(p, op);
    ReleaseIfLarge gil(x.numel());
    // Note [Precision policies]: no 16-bit kernel, so 16-bit input runs in float32.
    constexpr auto none = dispatch::CastPolicy::none;
    if (dispatch::precision::needed(none, false, x))
      return dispatch::precision::call(none, false, false, [&](Tensor x) {
        return ops::avg_pool2d(x, ks, st, ps, ceil_mode, count_include_pad, dv);
      }, x);
    const auto args = [&] {
      return jit::Stack{x, ks, st, ps, ceil_mode, count_include_pad, dv};
    };
    return jit::record_call(k_avg_pool2d, args, [&] {
      return ops::avg_pool2d(x, ks, st, ps, ceil_mode, count_include_pad, dv);
    });
  }, py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(),
     py::arg("padding") = 0, py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
     py::arg("divisor_override") = py::none());
}

const BindingRegistrar registrar("pool", bind_pool);

}  // namespace
}  // namespace dc::py_bind
