#pragma once
// Fused multi-tensor optimizer updates (SGD, Adam/AdamW, RMSprop, Adagrad). One call updates
// every parameter of a param group in one pass over its elements: param, grad and state are
// each read once and written once, instead of the ~8 full passes that composing elementwise
// ops costs. The per-element math follows PyTorch's single-tensor implementations
// operation by operation (Note [Optimizer update order] in vec/optim_kernels.cpp), so
// float32 trajectories match torch.optim closely.
//
// Kernels only compute: the op layer (csrc/ops/optim.cpp) checks dtypes, shapes and
// contiguity, and bumps version counters. All arrays of one OptimTensor hold `numel`
// contiguous elements of the same floating dtype (float32 or float64).
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace dc::cpu {

struct SgdHyper {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, maximize = false;
};

// decoupled = AdamW: weight decay multiplies the parameter instead of joining the gradient.
struct AdamHyper {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  bool amsgrad = false, maximize = false, decoupled = false;
};

struct RmspropHyper {
  double lr = 0, alpha = 0, eps = 0, weight_decay = 0, momentum = 0;
  bool centered = false, maximize = false;
};

struct AdagradHyper {
  double lr = 0, lr_decay = 0, eps = 0, weight_decay = 0;
  bool maximize = false;
};

// One parameter of a multi-tensor update. Unused state slots are null.
//   SGD:     state[0] = momentum_buffer (momentum != 0)
//   Adam:    state[0] = exp_avg, state[1] = exp_avg_sq, state[2] = max_exp_avg_sq (amsgrad)
//   RMSprop: state[0] = square_avg, state[1] = grad_avg (centered),
//            state[2] = momentum_buffer (momentum > 0)
//   Adagrad: state[0] = sum
struct OptimTensor {
  void* param = nullptr;
  const void* grad = nullptr;
  void* state[3] = {nullptr, nullptr, nullptr};
  int64_t numel = 0;
  // Adam/Adagrad: this parameter's step count *after* this update (1 on the first step);
  // it sets the bias corrections / the decayed lr.
  double step = 0;
  // SGD: the momentum buffer is new: it takes the (decayed) gradient instead of blending.
  bool init_buffer = false;
};

void sgd_update(DType dtype, const SgdHyper& h, const std::vector<OptimTensor>& ts);
void adam_update(DType dtype, const AdamHyper& h, const std::vector<OptimTensor>& ts);
void rmsprop_update(DType dtype, const RmspropHyper& h, const std::vector<OptimTensor>& ts);
void adagrad_update(DType dtype, const AdagradHyper& h, const std::vector<OptimTensor>& ts);

// ---- per-ISA tables (filled by vec/optim_kernels.cpp) ----------------------------------------
// A kernel updates elements [begin, end) of one tensor; index 0 = float32, 1 = float64.
template <typename H>
using OptimKernel = void (*)(const H&, const OptimTensor&, int64_t begin, int64_t end);

struct OptimTable {
  OptimKernel<SgdHyper> sgd[2] = {};
  OptimKernel<AdamHyper> adam[2] = {};
  OptimKernel<RmspropHyper> rmsprop[2] = {};
  OptimKernel<AdagradHyper> adagrad[2] = {};
};

const OptimTable& optim_table();  // the table of the active ISA

namespace avx512 { void fill_optim(OptimTable& t); }
namespace avx2 { void fill_optim(OptimTable& t); }
namespace generic { void fill_optim(OptimTable& t); }

}  // namespace dc::cpu
