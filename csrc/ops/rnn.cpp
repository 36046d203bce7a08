// Recurrent layers: one layer, one direction, the whole sequence (Note [RNN layer]).
#include "ops/rnn.h"

#include <optional>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "ops/ops.h"

namespace dc::ops {

// Note [RNN layer]
// Forward, for input x (N, I) (a padded (T, B, I) sequence is the packed case with every
// batch size B):
//   1. the input projection of every step as one GEMM, gates = x W_ih^T + b_ih + b_hh (N, G*H)
//      (GRU keeps b_hn out: it sits inside r * (W_hn h + b_hn));
//   2. per step t, on its first bs[t] rows: one GEMM h_prev W_hh^T, added into the step's rows
//      of `gates` (LSTM, RNN, GRU's r and z without linear_before_reset) or into a separate
//      buffer (GRU), then the fused gate kernel (csrc/kernels/cpu/rnn.h), which leaves the
//      activations in `gates` for backward; LSTM with proj_size then h = m W_hr^T.
//      The step GEMMs multiply by weights packed once per call (StepWeight): the plain GEMM
//      would repack the whole weight for each step's few rows.
// The running state lives in hbuf (B, P) / cbuf (B, H): a step reads and rewrites only its
// first bs[t] rows, so a packed sequence that ended keeps its last state there (h_n), and in
// reverse a sequence that has not started yet still holds its h0 row when it does.
// The h_prev (and c_prev) rows each step read are copied to hprev (N, P) / cprev (N, H):
// backward needs them per step, and dW_hh = dgates^T hprev is then one GEMM over all steps,
// like dW_ih = dgates^T x, dx = dgates W_ih and dW_hr = dh^T m.
// Backward walks the steps in the opposite order with dhbuf (B, P) / dcbuf (B, H) seeded with
// the gradients of h_n / c_n; a step adds its rows of d(output), runs the gate kernel's
// backward into dgates (N, G*H) and sets dhbuf's rows to dgates W_hh (+ GRU's z * dh).
// Rows no later step reads are left holding the gradient of h0 / c0.
// Double backward would need the whole recurrence written with differentiable ops; it raises
// instead (NotImplementedError).

using autograd::GradCtx;
using cpu::RnnMode;
using cpu::RnnPhase;

namespace {

struct Layer {
  RnnMode mode = RnnMode::lstm;
  bool lbr = true, reverse = false;
  int64_t G = 4, H = 0, P = 0, I = 0, B = 0, N = 0, T = 0;
  std::vector<int64_t> bs, off;  // rows of each step and its first row in the (N, *) buffers
  DType dtype = DType::Float32;
  bool gru_reset() const { return mode == RnnMode::gru && !lbr; }
  int64_t step(int64_t s) const { return reverse ? T - 1 - s : s; }  // s-th step run forward
};

Tensor contig(const Tensor& t) { return t.is_contiguous() ? t : contiguous_clone(t); }

// Rows [r0, r0 + rows), columns [c0, c0 + cols) of a contiguous 2-D tensor, as a view.
Tensor block(const Tensor& t, int64_t r0, int64_t rows, int64_t c0, int64_t cols) {
  const int64_t ld = t.sizes()[1];
  return Tensor::make_view(t.storage(), {rows, cols}, {ld, 1}, t.offset() + r0 * ld + c0,
                           t.dtype());
}
Tensor rows_of(const Tensor& t, int64_t r0, int64_t rows) {
  return block(t, r0, rows, 0, t.sizes()[1]);
}
Tensor tr(const Tensor& v) {
  return Tensor::make_view(v.storage(), {v.sizes()[1], v.sizes()[0]},
                           {v.strides()[1], v.strides()[0]}, v.offset(), v.dtype());
}

// c = a @ b + beta * c (then the epilogue)
void gemm(const Tensor& a, const Tensor& b, const Tensor& c, double beta,
          const cpu::GemmEpilogue& ep = {}) {
  dispatch::add_flops(2.0 * a.sizes()[0] * a.sizes()[1] * b.sizes()[1]);
  DC_KERNEL(matmul_into)(a, b, c, 1.0, beta, ep);
}
void copy_into(const Tensor& dst, const Tensor& src) { DC_KERNEL(cast_into)(dst, src); }

// A weight operand b (K, N) of the per-step GEMMs, packed once per layer call.
class StepWeight {
 public:
  explicit StepWeight(const Tensor& b) {
    packed_ = Tensor::empty(
        {DC_KERNEL(rnn_packed_weight_numel)(b.dtype(), b.sizes()[0], b.sizes()[1])}, b.dtype());
    DC_KERNEL(rnn_pack_weight)(b, packed_);
  }
  // c = a @ b + beta * c
  void mul(const Tensor& a, const Tensor& c, double beta) const {
    dispatch::add_flops(2.0 * a.sizes()[0] * a.sizes()[1] * c.sizes()[1]);
    DC_KERNEL(rnn_gemm_packed)(a, packed_, c, beta);
  }

 private:
  Tensor packed_;
};

RnnMode parse_mode(const std::string& m) {
  if (m == "LSTM") return RnnMode::lstm;
  if (m == "GRU") return RnnMode::gru;
  if (m == "RNN_TANH") return RnnMode::rnn_tanh;
  if (m == "RNN_RELU") return RnnMode::rnn_relu;
  DC_THROW(ValueError, "[_rnn_layer] unknown mode '", m,
           "': expected 'RNN_TANH', 'RNN_RELU', 'LSTM' or 'GRU'");
}

void expect_shape(const Tensor& t, const Shape& want, const char* what, const std::string& mode,
                  DType dtype) {
  DC_CHECK(t.sizes() == want, ValueError, "[_rnn_layer] ", mode, ": expected ", what,
           " of shape ", shape_str(want), ", got ", t.shape_str());
  DC_CHECK(t.dtype() == dtype, TypeError, "[_rnn_layer] ", mode, ": ", what, " has dtype ",
           dtype_name(t.dtype()), ", expected ", dtype_name(dtype), " like the input");
}

Layer check_layer(const Tensor& x, const Tensor& hx, const Tensor& cx, const Tensor& w_ih,
                  const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                  const Tensor& w_hr, const Shape& batch_sizes, const std::string& mode,
                  bool reverse, bool lbr) {
  Layer L;
  L.mode = parse_mode(mode);
  L.lbr = lbr;
  L.reverse = reverse;
  L.G = L.mode == RnnMode::lstm ? 4 : L.mode == RnnMode::gru ? 3 : 1;
  L.dtype = x.dtype();
  DC_CHECK(is_floating(x.dtype()), TypeError, "[_rnn_layer] ", mode,
           ": expected a float32 or float64 input, got ", dtype_name(x.dtype()));
  DC_CHECK(w_ih.dim() == 2 && w_hh.dim() == 2 && w_ih.sizes()[0] % L.G == 0, ValueError,
           "[_rnn_layer] ", mode, ": expected 2-D weights with a multiple of ", L.G,
           " rows, got weight_ih ", w_ih.shape_str(), " and weight_hh ", w_hh.shape_str());
  L.H = w_ih.sizes()[0] / L.G;
  L.I = w_ih.sizes()[1];
  L.P = w_hr.defined() ? w_hr.sizes()[0] : L.H;
  DC_CHECK(!w_hr.defined() || L.mode == RnnMode::lstm, ValueError, "[_rnn_layer] ", mode,
           ": weight_hr (proj_size) is only supported for LSTM");
  const bool packed = !batch_sizes.empty();
  if (packed) {
    DC_CHECK(x.dim() == 2, ValueError, "[_rnn_layer] ", mode,
             ": packed input must be 2-D (N, input_size), got ", x.shape_str());
    L.T = static_cast<int64_t>(batch_sizes.size());
    L.bs.assign(batch_sizes.begin(), batch_sizes.end());
    int64_t total = 0;
    for (int64_t t = 0; t < L.T; ++t) {
      DC_CHECK(L.bs[t] > 0 && (t == 0 || L.bs[t] <= L.bs[t - 1]), ValueError, "[_rnn_layer] ",
               mode, ": batch_sizes must be positive and non-increasing, got ",
               shape_str(batch_sizes));
      total += L.bs[t];
    }
    DC_CHECK(total == x.sizes()[0], ValueError, "[_rnn_layer] ", mode, ": batch_sizes sum to ",
             total, " but the packed input has ", x.sizes()[0], " rows");
    L.B = L.bs[0];
    L.N = total;
  } else {
    DC_CHECK(x.dim() == 3, ValueError, "[_rnn_layer] ", mode,
             ": expected input of shape (T, B, input_size), got ", x.shape_str());
    L.T = x.sizes()[0];
    L.B = x.sizes()[1];
    L.N = L.T * L.B;
    L.bs.assign(L.T, L.B);
  }
  L.off.resize(L.T);
  for (int64_t t = 0, o = 0; t < L.T; o += L.bs[t], ++t) L.off[t] = o;
  DC_CHECK(x.sizes().back() == L.I, ValueError, "[_rnn_layer] ", mode, ": input ",
           x.shape_str(), " has ", x.sizes().back(), " features, expected ", L.I,
           " (weight_ih ", w_ih.shape_str(), ")");
  expect_shape(w_ih, {L.G * L.H, L.I}, "weight_ih", mode, L.dtype);
  expect_shape(w_hh, {L.G * L.H, L.P}, "weight_hh", mode, L.dtype);
  if (w_hr.defined()) expect_shape(w_hr, {L.P, L.H}, "weight_hr", mode, L.dtype);
  if (b_ih.defined()) expect_shape(b_ih, {L.G * L.H}, "bias_ih", mode, L.dtype);
  if (b_hh.defined()) expect_shape(b_hh, {L.G * L.H}, "bias_hh", mode, L.dtype);
  DC_CHECK(b_ih.defined() == b_hh.defined(), ValueError, "[_rnn_layer] ", mode,
           ": bias_ih and bias_hh must both be given or both be None");
  expect_shape(hx, {L.B, L.P}, "hidden state hx", mode, L.dtype);
  if (L.mode == RnnMode::lstm) {
    DC_CHECK(cx.defined(), ValueError, "[_rnn_layer] LSTM: the cell state cx is required");
    expect_shape(cx, {L.B, L.H}, "cell state cx", mode, L.dtype);
  } else {
    DC_CHECK(!cx.defined(), ValueError, "[_rnn_layer] ", mode, ": a cell state is only for LSTM");
  }
  return L;
}

// Everything the forward keeps for backward (Note [RNN layer]).
struct Saved {
  Tensor x, w_ih, w_hh, w_hr;  // x (N, I), weights contiguous
  Tensor gates;                // (N, G*H) activations
  Tensor hprev;                // (N, P) h_prev of each step's rows
  Tensor cprev, c;             // LSTM (N, H)
  Tensor m;                    // LSTM with projection (N, H): o * tanh(c)
  Tensor aux;                  // GRU (N, H): W_hn h + b_hn (torch) or r * h (reset before)
  Tensor out;                  // (N, P)
};

// Runs the layer; returns {out (N, P), h_n, c_n}.
tensor_list run_forward(const Layer& L, Saved& S, const Tensor& hx, const Tensor& cx,
                        const Tensor& b_ih, const Tensor& b_hh) {
  const int64_t G = L.G, H = L.H, P = L.P, N = L.N, B = L.B;
  const DType dt = L.dtype;
  // 1. input projection of all steps, with the biases that add straight into the gates
  S.gates = Tensor::empty({N, G * H}, dt);
  Tensor bias, bias_hn;
  if (b_ih.defined()) {
    autograd::GradModeGuard off(false);
    if (L.mode == RnnMode::gru) {
      bias = contig(cat({slice(b_ih, 0, 0, 2 * H) + slice(b_hh, 0, 0, 2 * H),
                         slice(b_ih, 0, 2 * H, 3 * H)}));
      bias_hn = contig(slice(b_hh, 0, 2 * H, 3 * H));
    } else {
      bias = contig(b_ih + b_hh);
    }
  } else if (L.mode == RnnMode::gru) {
    bias_hn = zeros({H}, dt);
  }
  cpu::GemmEpilogue ep;
  if (bias.defined()) ep.bias = bias.data_ptr();
  gemm(S.x, tr(S.w_ih), S.gates, 0.0, ep);

  // 2. the time loop
  Tensor hbuf = contiguous_clone(hx), cbuf = cx.defined() ? contiguous_clone(cx) : Tensor();
  S.hprev = Tensor::empty({N, P}, dt);
  S.out = Tensor::empty({N, P}, dt);
  Tensor hg;  // GRU: the step's recurrent product
  if (L.mode == RnnMode::lstm) {
    S.cprev = Tensor::empty({N, H}, dt);
    S.c = Tensor::empty({N, H}, dt);
    if (S.w_hr.defined()) S.m = Tensor::empty({N, H}, dt);
  } else if (L.mode == RnnMode::gru) {
    S.aux = Tensor::empty({N, H}, dt);
    hg = Tensor::empty({B, L.lbr ? 3 * H : H}, dt);
  }
  // The per-step weights: W_hh^T, or its (r, z) and n parts (GRU, reset before the product).
  const bool split = L.gru_reset();
  const StepWeight w_hh(split ? tr(block(S.w_hh, 0, 2 * H, 0, P)) : tr(S.w_hh));
  const std::optional<StepWeight> w_hn =
      split ? std::optional<StepWeight>(tr(block(S.w_hh, 2 * H, H, 0, P))) : std::nullopt;
  const std::optional<StepWeight> w_hr =
      S.w_hr.defined() ? std::optional<StepWeight>(tr(S.w_hr)) : std::nullopt;
  for (int64_t s = 0; s < L.T; ++s) {
    const int64_t t = L.step(s), rows = L.bs[t], o = L.off[t];
    const Tensor hp = rows_of(S.hprev, o, rows), out = rows_of(S.out, o, rows);
    const Tensor g = rows_of(S.gates, o, rows);
    copy_into(hp, rows_of(hbuf, 0, rows));
    cpu::RnnStepForward f;
    f.mode = L.mode;
    f.rows = rows;
    f.hidden = H;
    f.gates = g.data_ptr();
    f.h_prev = hp.data_ptr();
    f.ld_h_prev = P;
    f.out = out.data_ptr();
    f.ld_out = P;
    switch (L.mode) {
      case RnnMode::rnn_tanh:
      case RnnMode::rnn_relu:
        w_hh.mul(hp, g, 1.0);
        DC_KERNEL(rnn_step_forward)(dt, f);
        break;
      case RnnMode::lstm: {
        const Tensor cp = rows_of(S.cprev, o, rows), c = rows_of(S.c, o, rows);
        copy_into(cp, rows_of(cbuf, 0, rows));
        w_hh.mul(hp, g, 1.0);
        f.c_prev = cp.data_ptr();
        f.c = c.data_ptr();
        const Tensor m = S.m.defined() ? rows_of(S.m, o, rows) : out;
        f.out = m.data_ptr();
        f.ld_out = m.sizes()[1];
        DC_KERNEL(rnn_step_forward)(dt, f);
        if (w_hr) w_hr->mul(m, out, 0.0);
        copy_into(rows_of(cbuf, 0, rows), c);
        break;
      }
      case RnnMode::gru: {
        const Tensor aux = rows_of(S.aux, o, rows), hgr = rows_of(hg, 0, rows);
        f.aux = aux.data_ptr();
        f.hg = hgr.data_ptr();
        f.bias_hn = bias_hn.data_ptr();
        if (L.lbr) {
          w_hh.mul(hp, hgr, 0.0);
          DC_KERNEL(rnn_step_forward)(dt, f);
        } else {
          w_hh.mul(hp, block(S.gates, o, rows, 0, 2 * H), 1.0);
          f.phase = RnnPhase::gru_reset;
          DC_KERNEL(rnn_step_forward)(dt, f);
          w_hn->mul(aux, hgr, 0.0);
          f.phase = RnnPhase::gru_update;
          DC_KERNEL(rnn_step_forward)(dt, f);
        }
        break;
      }
    }
    copy_into(rows_of(hbuf, 0, rows), out);
  }
  return {S.out, hbuf, cbuf};
}

// Gradients {x, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr} from those of {out, h_n, c_n}.
// Only the gradients `need` asks for are computed (indices as in the result).
tensor_list run_backward(const Layer& L, const Saved& S, const Tensor& d_out,
                         const Tensor& d_hn, const Tensor& d_cn, bool has_bias,
                         const std::vector<bool>& need) {
  const int64_t G = L.G, H = L.H, P = L.P, N = L.N, B = L.B;
  const DType dt = L.dtype;
  Tensor dhbuf = contiguous_clone(d_hn);
  Tensor dcbuf = L.mode == RnnMode::lstm ? contiguous_clone(d_cn) : Tensor();
  Tensor dg = Tensor::empty({N, G * H}, dt);
  Tensor dhg = L.mode == RnnMode::gru && L.lbr ? Tensor::empty({N, 3 * H}, dt) : Tensor();
  const bool proj = S.w_hr.defined();
  Tensor dh_all = proj ? Tensor::empty({N, P}, dt) : Tensor();  // dW_hr = dh^T m
  Tensor dh_step = Tensor::empty({B, P}, dt);
  Tensor dm = proj ? Tensor::empty({B, H}, dt) : Tensor();
  Tensor drh = L.gru_reset() ? Tensor::empty({B, H}, dt) : Tensor();
  const bool split = L.gru_reset();
  const StepWeight w_hh(split ? block(S.w_hh, 0, 2 * H, 0, P) : S.w_hh);
  const std::optional<StepWeight> w_hn =
      split ? std::optional<StepWeight>(block(S.w_hh, 2 * H, H, 0, P)) : std::nullopt;
  const std::optional<StepWeight> w_hr =
      proj ? std::optional<StepWeight>(S.w_hr) : std::nullopt;
  for (int64_t s = L.T - 1; s >= 0; --s) {
    const int64_t t = L.step(s), rows = L.bs[t], o = L.off[t];
    const Tensor dh = proj ? rows_of(dh_all, o, rows) : rows_of(dh_step, 0, rows);
    const Tensor dhb = rows_of(dhbuf, 0, rows), dgr = rows_of(dg, o, rows);
    DC_KERNEL(add_scaled_into)(dh, dhb, rows_of(d_out, o, rows), 1.0);
    cpu::RnnStepBackward b;
    b.mode = L.mode;
    b.rows = rows;
    b.hidden = H;
    b.gates = rows_of(S.gates, o, rows).data_ptr();
    b.h_prev = rows_of(S.hprev, o, rows).data_ptr();
    b.ld_h_prev = P;
    b.d_out = dh.data_ptr();
    b.ld_d_out = P;
    b.dgates = dgr.data_ptr();
    b.d_h_prev = dhb.data_ptr();
    b.ld_d_h_prev = P;
    switch (L.mode) {
      case RnnMode::rnn_tanh:
      case RnnMode::rnn_relu:
        b.aux = rows_of(S.out, o, rows).data_ptr();
        DC_KERNEL(rnn_step_backward)(dt, b);
        w_hh.mul(dgr, dhb, 0.0);
        break;
      case RnnMode::lstm: {
        if (proj) {
          const Tensor dmr = rows_of(dm, 0, rows);
          w_hr->mul(dh, dmr, 0.0);
          b.d_out = dmr.data_ptr();
          b.ld_d_out = H;
        }
        b.c_prev = rows_of(S.cprev, o, rows).data_ptr();
        b.c = rows_of(S.c, o, rows).data_ptr();
        b.dc = rows_of(dcbuf, 0, rows).data_ptr();
        DC_KERNEL(rnn_step_backward)(dt, b);
        w_hh.mul(dgr, dhb, 0.0);
        break;
      }
      case RnnMode::gru:
        if (L.lbr) {
          const Tensor dhgr = rows_of(dhg, o, rows);
          b.aux = rows_of(S.aux, o, rows).data_ptr();
          b.dhg = dhgr.data_ptr();
          DC_KERNEL(rnn_step_backward)(dt, b);
          w_hh.mul(dhgr, dhb, 1.0);
        } else {
          b.phase = RnnPhase::gru_update;
          DC_KERNEL(rnn_step_backward)(dt, b);
          const Tensor drhr = rows_of(drh, 0, rows);
          w_hn->mul(block(dg, o, rows, 2 * H, H), drhr, 0.0);
          b.phase = RnnPhase::gru_reset;
          b.hg = drhr.data_ptr();
          DC_KERNEL(rnn_step_backward)(dt, b);
          w_hh.mul(block(dg, o, rows, 0, 2 * H), dhb, 1.0);
        }
        break;
    }
  }
  // Weight gradients: one GEMM each over all steps.
  Tensor dx, dw_ih, dw_hh, db_ih, db_hh, dw_hr;
  if (need[0]) {
    dx = Tensor::empty({N, L.I}, dt);
    gemm(dg, S.w_ih, dx, 0.0);
  }
  if (need[3]) {
    dw_ih = Tensor::empty({G * H, L.I}, dt);
    gemm(tr(dg), S.x, dw_ih, 0.0);
  }
  const Tensor& dgh = dhg.defined() ? dhg : dg;  // gradient of h W_hh^T + b_hh
  if (need[4]) {
    dw_hh = Tensor::empty({G * H, P}, dt);
    if (L.gru_reset()) {
      gemm(tr(block(dg, 0, N, 0, 2 * H)), S.hprev, block(dw_hh, 0, 2 * H, 0, P), 0.0);
      gemm(tr(block(dg, 0, N, 2 * H, H)), S.aux, block(dw_hh, 2 * H, H, 0, P), 0.0);
    } else {
      gemm(tr(dgh), S.hprev, dw_hh, 0.0);
    }
  }
  if (has_bias && (need[5] || need[6])) {
    db_ih = sum(dg, {0});
    db_hh = dhg.defined() ? sum(dhg, {0}) : db_ih;
  }
  if (proj && need[7]) {
    dw_hr = Tensor::empty({P, H}, dt);
    gemm(tr(dh_all), S.m, dw_hr, 0.0);
  }
  return {dx, dhbuf, dcbuf, dw_ih, dw_hh, db_ih, db_hh, dw_hr};
}

}  // namespace

tensor_list rnn_layer(const Tensor& input, const Tensor& hx, const Tensor& cx,
                      const Tensor& weight_ih, const Tensor& weight_hh, const Tensor& bias_ih,
                      const Tensor& bias_hh, const Tensor& weight_hr, const Shape& batch_sizes,
                      const std::string& mode, bool reverse, bool linear_before_reset) {
  DC_OP_GUARD("_rnn_layer", input, hx, cx, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr);
  const Layer L = check_layer(input, hx, cx, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr,
                              batch_sizes, mode, reverse, linear_before_reset);
  Saved S;
  {
    autograd::GradModeGuard off(false);
    S.x = contig(reshape(input, {L.N, L.I}));
    S.w_ih = contig(weight_ih);
    S.w_hh = contig(weight_hh);
    if (weight_hr.defined()) S.w_hr = contig(weight_hr);
  }
  tensor_list res = run_forward(L, S, hx, cx, bias_ih, bias_hh);
  Tensor out = batch_sizes.empty() ? reshape(res[0], {L.T, L.B, L.P}) : res[0];
  tensor_list outputs = {out, res[1]};
  if (L.mode == RnnMode::lstm) outputs.push_back(res[2]);
  if (!autograd::any_requires_grad(
          {&input, &hx, &cx, &weight_ih, &weight_hh, &bias_ih, &bias_hh, &weight_hr}))
    return outputs;
  // Everything backward reads goes through the saved-tensor mechanism: the version check on
  // the inputs, the release after backward, the error on a second backward without
  // retain_graph, and no reference cycle through the output (Note [Saved tensor versions]).
  const bool has_bias = bias_ih.defined();
  autograd::record(
      "_rnn_layer", {input, hx, cx, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr}, outputs,
      [L, has_bias](GradCtx& g) -> tensor_list {
        const Tensor input = g.saved(0), w_ih = g.saved(1), w_hh = g.saved(2), hx = g.saved(3);
        // Grad mode is on in backward only with create_graph=True.
        DC_CHECK(!autograd::any_requires_grad({&g.grad(0), &input, &w_ih, &w_hh, &hx}),
                 NotImplementedError,
                 "[_rnn_layer] double backward through a recurrent layer is not supported "
                 "(backward with create_graph=True)");
        Saved S;
        S.x = g.saved(4);
        S.w_ih = g.saved(5);
        S.w_hh = g.saved(6);
        S.w_hr = g.saved(7);
        S.gates = g.saved(8);
        S.hprev = g.saved(9);
        S.cprev = g.saved(10);
        S.c = g.saved(11);
        S.m = g.saved(12);
        S.aux = g.saved(13);
        S.out = g.saved(14);
        if (S.out.dim() != 2) S.out = reshape(S.out, {L.N, L.P});
        auto grad_of = [&](size_t i) { return contig(to_dtype(g.grad(i), L.dtype)); };
        const Tensor d_out = reshape(grad_of(0), {L.N, L.P});
        const Tensor d_cn = L.mode == RnnMode::lstm ? grad_of(2) : Tensor();
        std::vector<bool> need(8);
        for (size_t i = 0; i < need.size(); ++i) need[i] = g.needs(i);
        tensor_list r = run_backward(L, S, d_out, grad_of(1), d_cn, has_bias, need);
        if (r[0].defined()) r[0] = reshape(r[0], input.sizes());
        for (size_t i = 0; i < r.size(); ++i)
          if (!need[i]) r[i] = Tensor();
        return r;
      },
      {input, weight_ih, weight_hh, hx, S.x, S.w_ih, S.w_hh, S.w_hr, S.gates, S.hprev, S.cprev,
       S.c, S.m, S.aux, out});
  return outputs;
}

}  // namespace dc::ops
