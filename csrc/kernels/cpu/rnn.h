#pragma once
// The pointwise part of one recurrent time step (csrc/ops/rnn.cpp runs the time loop and the
// GEMMs): gate activations and state updates over the `rows` active rows of a step, forward and
// backward, compiled once per ISA in csrc/kernels/cpu/vec/rnn_gates.cpp.
//
// Gate order is torch's: LSTM (i, f, g, o), GRU (r, z, n). Every buffer is row-major with the
// row stride given next to it (in elements); pointers are void* of the step's dtype
// (float32 / float64). Fields a mode does not use stay null.
#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace dc::cpu {

enum class RnnMode { rnn_tanh = 0, rnn_relu = 1, lstm = 2, gru = 3 };

// Which part of a step a call computes. GRU with the reset gate applied before the recurrent
// product (Keras' reset_after=False) needs a GEMM between its two halves.
enum class RnnPhase { full = 0, gru_reset = 1, gru_update = 2 };

// Forward of one step, H = hidden units, G = gates (LSTM 4, GRU 3, RNN 1).
//   RNN   gates[rows, H]: x W_ih^T + b_ih + b_hh + h W_hh^T   -> h = act(gates) into out
//   LSTM  gates[rows, 4H]: pre-activations -> activations (i, f, g, o), in place;
//         c = f * c_prev + i * g  into c;   out = o * tanh(c)  (h, or m before the projection)
//   GRU   full (reset after the product, torch):
//           gates[rows, 3H] in: x W_ih^T + b_ih (+ b_hr, b_hz), out: (r, z, n);
//           hg[rows, 3H] = h W_hh^T (no bias); aux[rows, H] out: hg_n + b_hn (kept for backward)
//           n = tanh(x_n + r * aux), out = (1 - z) * n + z * h_prev
//         gru_reset:  gates[:, :2H] (the recurrent product already added in) -> (r, z);
//                     aux = r * h_prev
//         gru_update: hg[rows, H] = (r * h_prev) W_hn^T (no bias):
//                     n = tanh(x_n + hg + b_hn), out = (1 - z) * n + z * h_prev
struct RnnStepForward {
  RnnMode mode = RnnMode::lstm;
  RnnPhase phase = RnnPhase::full;
  int64_t rows = 0, hidden = 0;
  void* gates = nullptr;            // [rows, G*H], row stride G*H
  const void* hg = nullptr;         // GRU: [rows, 3H] (full) or [rows, H] (gru_update)
  const void* bias_hn = nullptr;    // GRU: b_hn [H] (zeros for a layer without bias)
  const void* h_prev = nullptr;     // [rows, H], row stride ld_h_prev
  int64_t ld_h_prev = 0;
  const void* c_prev = nullptr;     // LSTM [rows, H], row stride H
  void* c = nullptr;                // LSTM [rows, H], row stride H
  void* aux = nullptr;              // GRU [rows, H], row stride H
  void* out = nullptr;              // [rows, H], row stride ld_out
  int64_t ld_out = 0;
};

// Backward of one step: d_out[rows, H] (row stride ld_d_out) is the gradient of the step's
// output (h, or m before the LSTM projection). Writes dgates[rows, G*H], the gradient of the
// gate pre-activations, which is also the gradient of x W_ih^T + b_ih and, except for GRU's n
// gate, of h W_hh^T + b_hh; and d_h_prev[rows, H] (row stride ld_d_h_prev), the part of
// h_prev's gradient that does not go through W_hh (GRU's z * dh; zero for RNN and LSTM, which
// leave it unwritten).
//   LSTM  dc[rows, H]: in the gradient reaching c from step t + 1, out the one for c_prev.
//   GRU   full: dhg[rows, 3H] = gradient of h W_hh^T + b_hh (n gate scaled by r).
//         gru_update (runs first): writes dgates[:, H:3H] and d_h_prev = z * dh.
//         gru_reset: d_rh[rows, H] = gradient of r * h_prev (in hg):
//                    writes dgates[:, :H] and adds r * d_rh to d_h_prev.
struct RnnStepBackward {
  RnnMode mode = RnnMode::lstm;
  RnnPhase phase = RnnPhase::full;
  int64_t rows = 0, hidden = 0;
  const void* gates = nullptr;  // the forward's activations [rows, G*H]
  const void* hg = nullptr;     // GRU gru_reset: d_rh [rows, H]
  const void* h_prev = nullptr;
  int64_t ld_h_prev = 0;
  const void* c_prev = nullptr;
  const void* c = nullptr;
  const void* aux = nullptr;    // GRU full: hg_n + b_hn; RNN: the step's output h
  const void* d_out = nullptr;
  int64_t ld_d_out = 0;
  void* dc = nullptr;
  void* dgates = nullptr;       // [rows, G*H]
  void* dhg = nullptr;          // GRU full: [rows, 3H]
  void* d_h_prev = nullptr;
  int64_t ld_d_h_prev = 0;
};

void rnn_step_forward(DType dtype, const RnnStepForward& s);
void rnn_step_backward(DType dtype, const RnnStepBackward& s);

// The per-step GEMMs multiply by the same weight T times, so the weight is packed once per
// layer call into the GEMM's micro-panels and every step only packs its few rows of h
// (Note [RNN layer] in csrc/ops/rnn.cpp).
// Elements of the packed form of a (K, N) operand.
int64_t rnn_packed_weight_numel(DType dtype, int64_t K, int64_t N);
// packed (1-D, rnn_packed_weight_numel elements, float32/float64) <- b (K, N), any strides.
void rnn_pack_weight(const Tensor& b, const Tensor& packed);
// c (M, N) = a (M, K) @ B + beta * c, B packed by rnn_pack_weight; any strides for a and c
// (c must not overlap a). beta == 0: c is not read.
void rnn_gemm_packed(const Tensor& a, const Tensor& packed, const Tensor& c, double beta);

// The per-ISA row functions behind the two kernels: each handles rows [r0, r1).
template <typename T>
struct RnnGateFns {
  void (*forward)(const RnnStepForward& s, int64_t r0, int64_t r1);
  void (*backward)(const RnnStepBackward& s, int64_t r0, int64_t r1);
};
struct RnnGateTable {
  RnnGateFns<float> f32;
  RnnGateFns<double> f64;
};
namespace avx512 { void fill_rnn_gates(RnnGateTable& t); }
namespace avx2 { void fill_rnn_gates(RnnGateTable& t); }
namespace generic { void fill_rnn_gates(RnnGateTable& t); }

}  // namespace dc::cpu
