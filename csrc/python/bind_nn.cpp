// Bindings of the nn ops (csrc/ops/softmax.cpp, loss.cpp, norm.cpp, dropout.cpp). deepcore.nn.functional wraps these
// with PyTorch's full signatures (legacy size_average/reduce, inplace=, implicit softmax dim).
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

Tensor opt_tensor(const py::object& o, const char* op) {
  return o.is_none() ? Tensor() : to_tensor(o, op);
}

Tensor cast_first(const Tensor& x, const py::object& dtype) {
  return dtype.is_none() ? x : ops::to_dtype(x, to_dtype_arg(dtype));
}

void bind_nn(py::module_& m) {
  using namespace ops;
  m.def("softmax", [](const Tensor& x, int64_t dim, py::object dtype) {
    Tensor in = cast_first(x, dtype);
    ReleaseIfLarge gil(in.numel());
    return softmax(in, dim);
  }, py::arg("input"), py::arg("dim"), py::arg("dtype") = py::none());
  m.def("log_softmax", [](const Tensor& x, int64_t dim, py::object dtype) {
    Tensor in = cast_first(x, dtype);
    ReleaseIfLarge gil(in.numel());
    return log_softmax(in, dim);
  }, py::arg("input"), py::arg("dim"), py::arg("dtype") = py::none());

  m.def("_cross_entropy", [](const Tensor& x, py::handle target, py::object weight,
                             int64_t ignore_index, const std::string& reduction, double smoothing) {
    const Reduction r = reduction_from_name(reduction, "cross_entropy");
    Tensor t = to_tensor(target, "cross_entropy"), w = opt_tensor(weight, "cross_entropy");
    ReleaseIfLarge gil(x.numel());
    return cross_entropy(x, t, w, r, ignore_index, smoothing);
  }, py::arg("input"), py::arg("target"), py::arg("weight") = py::none(),
     py::arg("ignore_index") = -100, py::arg("reduction") = "mean",
     py::arg("label_smoothing") = 0.0);
  m.def("_nll_loss", [](const Tensor& x, py::handle target, py::object weight,
                        int64_t ignore_index, const std::string& reduction) {
    const Reduction r = reduction_from_name(reduction, "nll_loss");
    Tensor t = to_tensor(target, "nll_loss"), w = opt_tensor(weight, "nll_loss");
    ReleaseIfLarge gil(x.numel());
    return nll_loss(x, t, w, r, ignore_index);
  }, py::arg("input"), py::arg("target"), py::arg("weight") = py::none(),
     py::arg("ignore_index") = -100, py::arg("reduction") = "mean");

#define DC_BIND_PAIR_LOSS(name)                                                          \
  m.def("_" #name, [](const Tensor& x, py::handle y, const std::string& reduction) {    \
    return name(x, to_tensor(y, #name), reduction_from_name(reduction, #name));         \
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean");
  DC_BIND_PAIR_LOSS(mse_loss)
  DC_BIND_PAIR_LOSS(l1_loss)
#undef DC_BIND_PAIR_LOSS
  m.def("_smooth_l1_loss", [](const Tensor& x, py::handle y, const std::string& reduction,
                              double beta) {
    return smooth_l1_loss(x, to_tensor(y, "smooth_l1_loss"),
                          reduction_from_name(reduction, "smooth_l1_loss"), beta);
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean", py::arg("beta") = 1.0);
  m.def("_huber_loss", [](const Tensor& x, py::handle y, const std::string& reduction,
                          double delta) {
    return huber_loss(x, to_tensor(y, "huber_loss"), reduction_from_name(reduction, "huber_loss"),
                      delta);
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean", py::arg("delta") = 1.0);
  m.def("_binary_cross_entropy", [](const Tensor& p, py::handle y, py::object weight,
                                    const std::string& reduction) {
    const char* op = "binary_cross_entropy";
    return binary_cross_entropy(p, to_tensor(y, op), opt_tensor(weight, op),
                                reduction_from_name(reduction, op));
  }, py::arg("input"), py::arg("target"), py::arg("weight") = py::none(),
     py::arg("reduction") = "mean");
  m.def("_binary_cross_entropy_with_logits", [](const Tensor& x, py::handle y, py::object weight,
                                                const std::string& reduction,
                                                py::object pos_weight) {
    const char* op = "binary_cross_entropy_with_logits";
    return binary_cross_entropy_with_logits(x, to_tensor(y, op), opt_tensor(weight, op),
                                            opt_tensor(pos_weight, op),
                                            reduction_from_name(reduction, op));
  }, py::arg("input"), py::arg("target"), py::arg("weight") = py::none(),
     py::arg("reduction") = "mean", py::arg("pos_weight") = py::none());
  m.def("_kl_div", [](const Tensor& x, py::handle t, const std::string& reduction,
                      bool log_target) {
    return kl_div(x, to_tensor(t, "kl_div"), reduction, log_target);
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean",
     py::arg("log_target") = false);

  m.def("layer_norm", [](const Tensor& x, py::handle shape, py::object w, py::object b,
                         double eps) {
    Shape ns = to_shape(shape, "layer_norm");
    Tensor wt = opt_tensor(w, "layer_norm"), bt = opt_tensor(b, "layer_norm");
    ReleaseIfLarge gil(x.numel());
    return layer_norm(x, ns, wt, bt, eps);
  }, py::arg("input"), py::arg("normalized_shape"), py::arg("weight") = py::none(),
     py::arg("bias") = py::none(), py::arg("eps") = 1e-5);
  m.def("rms_norm", [](const Tensor& x, py::handle shape, py::object w, py::object eps) {
    Shape ns = to_shape(shape, "rms_norm");
    Tensor wt = opt_tensor(w, "rms_norm");
    std::optional<double> e;
    if (!eps.is_none()) e = eps.cast<double>();
    ReleaseIfLarge gil(x.numel());
    return rms_norm(x, ns, wt, e);
  }, py::arg("input"), py::arg("normalized_shape"), py::arg("weight") = py::none(),
     py::arg("eps") = py::none());

  m.def("dropout", [](const Tensor& x, double p, bool train) { return dropout(x, p, train); },
        py::arg("input"), py::arg("p"), py::arg("train"));
  m.def("dropout_", [](Tensor& x, double p, bool train) { return dropout_(x, p, train); },
        py::arg("input"), py::arg("p"), py::arg("train"));
}

const BindingRegistrar registrar("nn", bind_nn);

}  // namespace
}  // namespace dc::py_bind
