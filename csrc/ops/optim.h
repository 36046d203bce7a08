#pragma once
// Fused optimizer steps: one call updates every parameter of a param group in place
// (kernels in csrc/kernels/cpu/optim.h). Parameters are written directly, like PyTorch's
// updates under no_grad: nothing is recorded, and the version counters of the parameters
// and state tensors are bumped. Lists are parallel (entry i belongs to params[i]).
// Parameters and grads may be float32 or float64 (mixed within a group); state tensors have
// their parameter's shape and dtype and are contiguous. `steps` are one-element float
// tensors that the step increments before using (PyTorch's state["step"]).
#include "core/tensor.h"
#include "kernels/cpu/optim.h"

namespace dc::ops {

// Undefined momentum buffers (first step) are created from the gradient; returns the list of
// buffers (empty when momentum == 0).
tensor_list sgd_step_(const tensor_list& params, const tensor_list& grads,
                      const tensor_list& momentum_buffers, const cpu::SgdHyper& h);
// max_exp_avg_sqs: empty unless h.amsgrad.
void adam_step_(const tensor_list& params, const tensor_list& grads, const tensor_list& exp_avgs,
                const tensor_list& exp_avg_sqs, const tensor_list& max_exp_avg_sqs,
                const tensor_list& steps, const cpu::AdamHyper& h);
// grad_avgs: empty unless h.centered; momentum_buffers: empty unless h.momentum > 0.
void rmsprop_step_(const tensor_list& params, const tensor_list& grads,
                   const tensor_list& square_avgs, const tensor_list& grad_avgs,
                   const tensor_list& momentum_buffers, const tensor_list& steps,
                   const cpu::RmspropHyper& h);
void adagrad_step_(const tensor_list& params, const tensor_list& grads, const tensor_list& sums,
                   const tensor_list& steps, const cpu::AdagradHyper& h);

}  // namespace dc::ops
