#pragma once
// Fused loss kernels over rows x[M, C] (contiguous; the op layer moves the class dim last).
// Kernels only compute: arguments, including every target, are validated by csrc/ops/loss.cpp
// before any kernel runs.
#include "core/tensor.h"

namespace dc::cpu {

// Class-index targets: target[M] int64 in [0, C) or == ignore_index; weight[C] or undefined.
struct ClassTargets {
  const Tensor& target;
  const Tensor& weight;
  int64_t ignore_index;
  double smoothing;  // label_smoothing (cross_entropy only; 0 for nll_loss)
};

// Index of the first target outside [0, C) that is not ignore_index, or -1.
int64_t first_bad_target(const Tensor& target, int64_t C, int64_t ignore_index);

// Per-row loss (0 for ignored rows) into loss[M]; returns sum over non-ignored rows of
// weight[target] (the mean reduction's divisor). `logits`: x holds logits, and lse[M] receives
// logsumexp per row (cross_entropy); otherwise x holds log-probabilities (nll_loss).
//   loss_r = (1 - eps) * w[t] * -logp[t] + eps / C * sum_c w[c] * -logp[c]
double class_loss_forward(const Tensor& loss, const Tensor& lse, const Tensor& x,
                          const ClassTargets& t, bool logits);
// gx[r, c] = s_r * (A_r * softmax(x_r)[c] - B[r, c]) with B as in class_target_matrix_into and
// A_r = sum_c B[r, c]; s = row_scale (0-d: one scale for all rows, or [M]).
void cross_entropy_backward_into(const Tensor& gx, const Tensor& x, const Tensor& lse,
                                 const ClassTargets& t, const Tensor& row_scale);
// B[r, c] = (1 - eps) * w[t_r] * [c == t_r] + eps / C * w[c]; zero rows for ignored targets.
// The loss is -sum_c B[r, c] * logp[r, c], so B is the (constant) target the composite
// derivative formulas use.
void class_target_matrix_into(const Tensor& B, const ClassTargets& t, int64_t C);

// Probability targets target[M, C]: loss_r = -sum_c w[c] * t'[r, c] * logp[r, c] with
// t' = t * (1 - eps) + eps / C, and logp = log_softmax(x).
void prob_loss_forward(const Tensor& loss, const Tensor& x, const Tensor& target,
                       const Tensor& weight, double smoothing);

// Fixed-order sum of a contiguous float tensor in double (independent of the thread count).
double ordered_sum(const Tensor& t);
// True if every element of the contiguous float tensor t lies in [lo, hi] (NaN fails).
bool all_within(const Tensor& t, double lo, double hi);

}  // namespace dc::cpu
