// Private hooks of the convolution kernels' algorithm choice (Note [Choosing a convolution
// algorithm] in csrc/kernels/cpu/conv.cpp), for the tests that run every algorithm.
#include "kernels/cpu/conv.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

void bind_conv_algo(py::module_& m) {
  m.def("_set_conv_algo", [](const std::string& pass, const std::string& algo) {
    cpu::set_conv_algo_override(cpu::conv_pass_from_name(pass.c_str()),
                                cpu::conv_algo_from_name(algo.c_str()));
  }, py::arg("pass_"), py::arg("algo"),
     "Forces the algorithm of one conv2d pass ('forward', 'grad_input', 'grad_weight'): "
     "'pointwise', 'im2col', 'implicit', 'phases', 'channels_last', or 'auto' to choose by "
     "shape again.");
  m.def("_get_conv_algo", [](const std::string& pass) {
    return std::string(cpu::conv_algo_name(cpu::conv_algo_override(cpu::conv_pass_from_name(pass.c_str()))));
  }, py::arg("pass_"));
}

const BindingRegistrar registrar("conv_algo", bind_conv_algo);

}  // namespace
}  // namespace dc::py_bind
