// Fused optimizer step bindings (used by deepcore/optim/*.py): one call per param group.
// Lists are converted while holding the GIL; the update itself runs without it.
#include "jit/graph.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

// A list of tensors; None entries become undefined tensors when `allow_none`.
tensor_list tensors_arg(py::handle obj, const char* op, const char* what,
                        bool allow_none = false) {
  DC_CHECK(py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj), TypeError, "[",
           op, "] ", what, " must be a list of tensors");
  tensor_list out;
  for (py::handle h : obj) {
    if (h.is_none()) {
      DC_CHECK(allow_none, TypeError, "[", op, "] ", what, " must not contain None");
      out.emplace_back();
      continue;
    }
    DC_CHECK(is_tensor(h), TypeError, "[", op, "] ", what, " must contain tensors, got ",
             std::string(py::str(py::type::of(h).attr("__name__"))));
    out.push_back(h.cast<Tensor>());
  }
  return out;
}

int64_t total_numel(const tensor_list& ts) {
  int64_t n = 0;
  for (const auto& t : ts) n += t.defined() ? t.numel() : 0;
  return n;
}

// Boxed forms for the tracer (Note [Traced graphs] in jit/graph.h): a traced training step
// replays the fused update.
const tensor_list& L(jit::Stack& s, int i) { return std::get<tensor_list>(s[i]); }
double D(jit::Stack& s, int i) { return std::get<double>(s[i]); }
bool B(jit::Stack& s, int i) { return std::get<bool>(s[i]); }

tensor_list invoke_sgd(jit::Stack& s) {
  return ops::sgd_step_(L(s, 0), L(s, 1), L(s, 2),
                        cpu::SgdHyper{D(s, 3), D(s, 4), D(s, 5), D(s, 6), B(s, 7), B(s, 8)});
}
tensor_list invoke_adam(jit::Stack& s) {
  ops::adam_step_(L(s, 0), L(s, 1), L(s, 2), L(s, 3), L(s, 4), L(s, 5),
                  cpu::AdamHyper{D(s, 6), D(s, 7), D(s, 8), D(s, 9), D(s, 10), B(s, 11),
                                 B(s, 12), B(s, 13)});
  return {};
}
tensor_list invoke_rmsprop(jit::Stack& s) {
  ops::rmsprop_step_(L(s, 0), L(s, 1), L(s, 2), L(s, 3), L(s, 4), L(s, 5),
                     cpu::RmspropHyper{D(s, 6), D(s, 7), D(s, 8), D(s, 9), D(s, 10), B(s, 11),
                                       B(s, 12)});
  return {};
}
tensor_list invoke_adagrad(jit::Stack& s) {
  ops::adagrad_step_(L(s, 0), L(s, 1), L(s, 2), L(s, 3),
                     cpu::AdagradHyper{D(s, 4), D(s, 5), D(s, 6), D(s, 7), B(s, 8)});
  return {};
}
const int k_sgd = jit::register_op("sgd_step_", &invoke_sgd);
const int k_adam = jit::register_op("adam_step_", &invoke_adam);
const int k_rmsprop = jit::register_op("rmsprop_step_", &invoke_rmsprop);
const int k_adagrad = jit::register_op("adagrad_step_", &invoke_adagrad);

void bind_optim(py::module_& m) {
  m.def("_sgd_step", [](py::object params, py::object grads, py::object bufs, double lr,
                        double momentum, double dampening, double weight_decay, bool nesterov,
                        bool maximize) {
    const char* op = "sgd_step";
    const tensor_list p = tensors_arg(params, op, "params"), g = tensors_arg(grads, op, "grads"),
                      b = tensors_arg(bufs, op, "momentum_buffer_list", true);
    cpu::SgdHyper h{lr, momentum, dampening, weight_decay, nesterov, maximize};
    tensor_list out;
    {
      ReleaseIfLarge gil(total_numel(p));
      const auto args = [&] {
        return jit::Stack{p, g, b, lr, momentum, dampening, weight_decay, nesterov, maximize};
      };
      out = jit::record_call(k_sgd, args, [&] { return ops::sgd_step_(p, g, b, h); });
    }
    return out;
  }, py::arg("params"), py::arg("grads"), py::arg("momentum_buffer_list"), py::kw_only(),
     py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"),
     py::arg("nesterov"), py::arg("maximize"));

  m.def("_adam_step", [](py::object params, py::object grads, py::object exp_avgs,
                         py::object exp_avg_sqs, py::object max_exp_avg_sqs, py::object steps,
                         double lr, double beta1, double beta2, double eps, double weight_decay,
                         bool amsgrad, bool maximize, bool decoupled_weight_decay) {
    const char* op = "adam_step";
    const tensor_list p = tensors_arg(params, op, "params"), g = tensors_arg(grads, op, "grads"),
                      m1 = tensors_arg(exp_avgs, op, "exp_avgs"),
                      m2 = tensors_arg(exp_avg_sqs, op, "exp_avg_sqs"),
                      mx = tensors_arg(max_exp_avg_sqs, op, "max_exp_avg_sqs"),
                      st = tensors_arg(steps, op, "state_steps");
    cpu::AdamHyper h{lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                     decoupled_weight_decay};
    ReleaseIfLarge gil(total_numel(p));
    const auto args = [&] {
      return jit::Stack{p, g, m1, m2, mx, st, lr, beta1, beta2, eps, weight_decay, amsgrad,
                        maximize, decoupled_weight_decay};
    };
    jit::record_call(k_adam, args, [&] {
      ops::adam_step_(p, g, m1, m2, mx, st, h);
      return tensor_list{};
    });
  }, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"),
     py::arg("max_exp_avg_sqs"), py::arg("state_steps"), py::kw_only(), py::arg("lr"),
     py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
     py::arg("amsgrad"), py::arg("maximize"), py::arg("decoupled_weight_decay") = false);

  m.def("_rmsprop_step", [](py::object params, py::object grads, py::object square_avgs,
                            py::object grad_avgs, py::object bufs, py::object steps, double lr,
                            double alpha, double eps, double weight_decay, double momentum,
                            bool centered, bool maximize) {
    const char* op = "rmsprop_step";
    const tensor_list p = tensors_arg(params, op, "params"), g = tensors_arg(grads, op, "grads"),
                      sq = tensors_arg(square_avgs, op, "square_avgs"),
                      ga = tensors_arg(grad_avgs, op, "grad_avgs"),
                      b = tensors_arg(bufs, op, "momentum_buffer_list"),
                      st = tensors_arg(steps, op, "state_steps");
    cpu::RmspropHyper h{lr, alpha, eps, weight_decay, momentum, centered, maximize};
    ReleaseIfLarge gil(total_numel(p));
    const auto args = [&] {
      return jit::Stack{p, g, sq, ga, b, st, lr, alpha, eps, weight_decay, momentum, centered,
                        maximize};
    };
    jit::record_call(k_rmsprop, args, [&] {
      ops::rmsprop_step_(p, g, sq, ga, b, st, h);
      return tensor_list{};
    });
  }, py::arg("params"), py::arg("grads"), py::arg("square_avgs"), py::arg("grad_avgs"),
     py::arg("momentum_buffer_list"), py::arg("state_steps"), py::kw_only(), py::arg("lr"),
     py::arg("alpha"), py::arg("eps"), py::arg("weight_decay"), py::arg("momentum"),
     py::arg("centered"), py::arg("maximize"));

  m.def("_adagrad_step", [](py::object params, py::object grads, py::object sums,
                            py::object steps, double lr, double lr_decay, double eps,
                            double weight_decay, bool maximize) {
    const char* op = "adagrad_step";
    const tensor_list p = tensors_arg(params, op, "params"), g = tensors_arg(grads, op, "grads"),
                      s = tensors_arg(sums, op, "state_sums"),
                      st = tensors_arg(steps, op, "state_steps");
    cpu::AdagradHyper h{lr, lr_decay, eps, weight_decay, maximize};
    ReleaseIfLarge gil(total_numel(p));
    const auto args = [&] {
      return jit::Stack{p, g, s, st, lr, lr_decay, eps, weight_decay, maximize};
    };
    jit::record_call(k_adagrad, args, [&] {
      ops::adagrad_step_(p, g, s, st, h);
      return tensor_list{};
    });
  }, py::arg("params"), py::arg("grads"), py::arg("state_sums"), py::arg("state_steps"),
     py::kw_only(), py::arg("lr"), py::arg("lr_decay"), py::arg("eps"), py::arg("weight_decay"),
     py::arg("maximize"));
}

const BindingRegistrar reg("optim", bind_optim);

}  // namespace
}  // namespace dc::py_bind
