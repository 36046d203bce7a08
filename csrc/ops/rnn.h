#pragma once
// Recurrent layers: one layer and one direction of an Elman RNN, LSTM or GRU over a whole
// sequence, forward and backward through time in C++ (csrc/ops/rnn.cpp). The Python modules
// (deepcore.nn.RNN / LSTM / GRU and the cells) stack layers and directions on top of it.
#include <string>

#include "core/tensor.h"

namespace dc::ops {

// input: (T, B, I), or packed (N, I) when batch_sizes (non-increasing, summing to N; torch's
// PackedSequence layout) is given: step t runs on the first batch_sizes[t] rows.
// hx: (B, P); cx: (B, H), LSTM only. Weights in torch's layout: weight_ih (G*H, I),
// weight_hh (G*H, P), biases (G*H) or undefined, weight_hr (P, H) for an LSTM with proj_size
// (P = H otherwise); G = 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n), 1 (RNN).
// mode: "RNN_TANH", "RNN_RELU", "LSTM" or "GRU". reverse walks time backwards.
// linear_before_reset (GRU): n = tanh(x_n + r * (W_hn h + b_hn)) as torch (true), or
// n = tanh(x_n + W_hn (r * h) + b_hn) as Keras' reset_after=False (false).
// Returns {output (T, B, P) or (N, P), h_n (B, P)} and, for LSTM, c_n (B, H).
tensor_list rnn_layer(const Tensor& input, const Tensor& hx, const Tensor& cx,
                      const Tensor& weight_ih, const Tensor& weight_hh, const Tensor& bias_ih,
                      const Tensor& bias_hh, const Tensor& weight_hr, const Shape& batch_sizes,
                      const std::string& mode, bool reverse = false,
                      bool linear_before_reset = true);

}  // namespace dc::ops
