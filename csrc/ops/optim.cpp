// Fused optimizer steps: argument checks, the tensor lists -> kernel descriptors, version
// counters. The update math is in csrc/kernels/cpu/vec/optim_kernels.cpp.
#include "ops/optim.h"

#include <utility>

#include "dispatch/kernels.h"
#include "kernels/cpu/elementwise.h"
#include "ops/creation.h"

namespace dc::ops {
namespace {

using cpu::OptimTensor;

int dtype_slot(DType dt) { return dt == DType::Float32 ? 0 : 1; }

// One step's kernel descriptors, split by dtype, plus the bookkeeping around them.
class StepPlan {
 public:
  StepPlan(const char* op, const tensor_list& params, const tensor_list& grads)
      : op_(op), params_(params) {
    DC_CHECK(grads.size() == params.size(), ValueError, "[", op, "] got ", params.size(),
             " parameters but ", grads.size(), " gradients");
    items_.resize(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const Tensor& p = params[i];
      const Tensor& g = grads[i];
      DC_CHECK(p.defined() && g.defined(), ValueError, "[", op, "] parameter ", i,
               " or its gradient is None");
      DC_CHECK(is_floating(p.dtype()), TypeError, "[", op, "] parameter ", i, " has dtype ",
               dtype_name(p.dtype()), "; only floating-point parameters can be optimized");
      DC_CHECK(g.sizes() == p.sizes() && g.dtype() == p.dtype(), ValueError, "[", op,
               "] parameter ", i, " of shape ", p.shape_str(), " and dtype ",
               dtype_name(p.dtype()), " has a gradient of shape ", g.shape_str(), " and dtype ",
               dtype_name(g.dtype()));
      Item& it = items_[i];
      // A non-contiguous parameter is updated in a contiguous copy that is written back; a
      // 16-bit one in a float32 copy (the update's arithmetic in float32, rounded once, as
      // torch's optimizers compute on bfloat16 parameters).
      it.work = is_reduced_float(p.dtype()) ? widened(p)
                : p.is_contiguous()          ? p
                                             : contiguous_clone(p);
      it.grad = is_reduced_float(g.dtype()) ? widened(g)
                : g.is_contiguous()          ? g
                                             : contiguous_clone(g);
      it.t.param = it.work.data_ptr();
      it.t.grad = it.grad.data_ptr();
      it.t.numel = p.numel();
    }
  }

  // Attaches state tensor list `states` (named `what`) to slot `k`; an empty list means the
  // optimizer does not use this slot. `allow_missing` lets undefined entries through.
  void attach(int k, const tensor_list& states, const char* what, bool allow_missing = false) {
    if (states.empty()) return;
    DC_CHECK(states.size() == params_.size(), ValueError, "[", op_, "] got ", params_.size(),
             " parameters but ", states.size(), " ", what, " tensors");
    for (size_t i = 0; i < states.size(); ++i) {
      const Tensor& s = states[i];
      if (!s.defined() && allow_missing) continue;
      DC_CHECK(s.defined(), ValueError, "[", op_, "] ", what, " of parameter ", i, " is None");
      const Tensor& p = params_[i];
      DC_CHECK(s.sizes() == p.sizes() && s.dtype() == p.dtype(), ValueError, "[", op_, "] ",
               what, " of parameter ", i, " has shape ", s.shape_str(), " and dtype ",
               dtype_name(s.dtype()), ", expected the parameter's ", p.shape_str(), " and ",
               dtype_name(p.dtype()));
      DC_CHECK(s.is_contiguous(), ValueError, "[", op_, "] ", what, " of parameter ", i,
               " must be contiguous");
      written_.push_back(s);
      if (is_reduced_float(s.dtype())) {  // kept in the parameter's dtype, updated in float32
        widened_states_.emplace_back(s, widened(s));
        items_[i].t.state[k] = widened_states_.back().second.data_ptr();
      } else {
        items_[i].t.state[k] = s.data_ptr();
      }
    }
  }

  // Increments each parameter's step tensor and gives the kernels the new count.
  void advance_steps(const tensor_list& steps) {
    DC_CHECK(steps.size() == params_.size(), ValueError, "[", op_, "] got ", params_.size(),
             " parameters but ", steps.size(), " step tensors");
    for (size_t i = 0; i < steps.size(); ++i) {
      const Tensor& s = steps[i];
      DC_CHECK(s.defined() && s.numel() == 1 &&
                   (s.dtype() == DType::Float32 || s.dtype() == DType::Float64),
               ValueError, "[", op_, "] step of parameter ", i,
               " must be a one-element float tensor");
    }
    for (size_t i = 0; i < steps.size(); ++i) {
      const Tensor& s = steps[i];
      // A meta step has no count to advance; the meta update kernels do not read it.
      if (s.is_meta()) continue;
      if (s.device().type != DeviceType::CPU) {
        // A step kept on the device (torch's capturable form): read back, counted, written.
        const Tensor h = on_host(s);
        const double next = DC_DISPATCH_FLOAT(s.dtype(), op_, [&] {
          return static_cast<double>(*h.data<scalar_t>() + scalar_t(1));
        });
        DeviceGuard on{s.device()};
        DC_KERNEL(fill_into)(s, next);
        items_[i].t.step = next;
        s.bump_version();
        continue;
      }
      items_[i].t.step = DC_DISPATCH_FLOAT(s.dtype(), op_, [&] {
        scalar_t* v = s.data<scalar_t>();
        *v = *v + scalar_t(1);  // counts in the step's own dtype, like torch's step_t += 1
        return static_cast<double>(*v);
      });
      s.bump_version();
    }
  }

  OptimTensor& at(size_t i) { return items_[i].t; }

  template <typename H>
  void run(void (*update)(DType, const H&, const std::vector<OptimTensor>&), const H& h) {
    std::vector<OptimTensor> by_dtype[2];
    for (auto& it : items_) by_dtype[dtype_slot(it.work.dtype())].push_back(it.t);
    if (!by_dtype[0].empty()) update(DType::Float32, h, by_dtype[0]);
    if (!by_dtype[1].empty()) update(DType::Float64, h, by_dtype[1]);
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!items_[i].work.is_same(params_[i])) DC_KERNEL(cast_into)(params_[i], items_[i].work);
      params_[i].bump_version();
    }
    for (auto& [state, wide] : widened_states_) DC_KERNEL(cast_into)(state, wide);
    for (const Tensor& s : written_) s.bump_version();
  }

 private:
  struct Item {
    Tensor work, grad;
    OptimTensor t;
  };
  // A float32 copy of a 16-bit tensor, made without recording a graph.
  static Tensor widened(const Tensor& t) {
    Tensor w = Tensor::empty(t.sizes(), DType::Float32);
    DC_KERNEL(cast_into)(w, t);
    return w;
  }

  const char* op_;
  const tensor_list& params_;
  std::vector<Item> items_;
  tensor_list written_;
  std::vector<std::pair<Tensor, Tensor>> widened_states_;  // (state, its float32 copy)
};

void check_finite_nonneg(const char* op, const char* what, double v) {
  DC_CHECK(v >= 0, ValueError, "[", op, "] invalid ", what, ": ", v);
}

}  // namespace

tensor_list sgd_step_(const tensor_list& params, const tensor_list& grads,
                      const tensor_list& momentum_buffers, const cpu::SgdHyper& h) {
  DC_OP_GUARD_LIST("sgd_step_", params);
  check_finite_nonneg("sgd_step", "learning rate", h.lr);
  StepPlan plan("sgd_step", params, grads);
  tensor_list bufs;
  if (h.momentum != 0) {
    DC_CHECK(momentum_buffers.size() == params.size(), ValueError, "[sgd_step] got ",
             params.size(), " parameters but ", momentum_buffers.size(), " momentum buffers");
    bufs = momentum_buffers;
    for (size_t i = 0; i < bufs.size(); ++i) {
      if (!bufs[i].defined()) {
        bufs[i] = Tensor::empty(params[i].sizes(), params[i].dtype());
        plan.at(i).init_buffer = true;
      }
    }
    plan.attach(0, bufs, "momentum_buffer");
  }
  plan.run(DC_KERNEL(sgd_update), h);
  return bufs;
}

void adam_step_(const tensor_list& params, const tensor_list& grads, const tensor_list& exp_avgs,
                const tensor_list& exp_avg_sqs, const tensor_list& max_exp_avg_sqs,
                const tensor_list& steps, const cpu::AdamHyper& h) {
  DC_OP_GUARD_LIST("adam_step_", params);
  check_finite_nonneg("adam_step", "learning rate", h.lr);
  StepPlan plan("adam_step", params, grads);
  plan.attach(0, exp_avgs, "exp_avg");
  plan.attach(1, exp_avg_sqs, "exp_avg_sq");
  DC_CHECK(exp_avgs.size() == params.size() && exp_avg_sqs.size() == params.size(), ValueError,
           "[adam_step] every parameter needs exp_avg and exp_avg_sq");
  if (h.amsgrad) {
    DC_CHECK(max_exp_avg_sqs.size() == params.size(), ValueError,
             "[adam_step] amsgrad needs max_exp_avg_sq for every parameter");
    plan.attach(2, max_exp_avg_sqs, "max_exp_avg_sq");
  }
  plan.advance_steps(steps);
  plan.run(DC_KERNEL(adam_update), h);
}

void rmsprop_step_(const tensor_list& params, const tensor_list& grads,
                   const tensor_list& square_avgs, const tensor_list& grad_avgs,
                   const tensor_list& momentum_buffers, const tensor_list& steps,
                   const cpu::RmspropHyper& h) {
  DC_OP_GUARD_LIST("rmsprop_step_", params);
  check_finite_nonneg("rmsprop_step", "learning rate", h.lr);
  StepPlan plan("rmsprop_step", params, grads);
  DC_CHECK(square_avgs.size() == params.size(), ValueError,
           "[rmsprop_step] every parameter needs square_avg");
  plan.attach(0, square_avgs, "square_avg");
  if (h.centered) {
    DC_CHECK(grad_avgs.size() == params.size(), ValueError,
             "[rmsprop_step] centered needs grad_avg for every parameter");
    plan.attach(1, grad_avgs, "grad_avg");
  }
  if (h.momentum > 0) {
    DC_CHECK(momentum_buffers.size() == params.size(), ValueError,
             "[rmsprop_step] momentum needs momentum_buffer for every parameter");
    plan.attach(2, momentum_buffers, "momentum_buffer");
  }
  plan.advance_steps(steps);
  plan.run(DC_KERNEL(rmsprop_update), h);
}

void adagrad_step_(const tensor_list& params, const tensor_list& grads, const tensor_list& sums,
                   const tensor_list& steps, const cpu::AdagradHyper& h) {
  DC_OP_GUARD_LIST("adagrad_step_", params);
  check_finite_nonneg("adagrad_step", "learning rate", h.lr);
  StepPlan plan("adagrad_step", params, grads);
  DC_CHECK(sums.size() == params.size(), ValueError, "[adagrad_step] every parameter needs sum");
  plan.attach(0, sums, "sum");
  plan.advance_steps(steps);
  plan.run(DC_KERNEL(adagrad_update), h);
}

}  // namespace dc::ops
