// Gate activations and state updates of one recurrent time step, compiled once per ISA (Note
// [Per-ISA kernels]); the contracts are in csrc/kernels/cpu/rnn.h. Each row is one loop over
// the H units that reads the gate columns at offsets 0, H, 2H, 3H, so that it vectorises with
// the vm:: functions inlined. The math of one unit is kernels/rnn_cells.h, shared with the
// CUDA kernels.
// The gate columns of a row are passed as separate __restrict__ parameters: GCC ignores restrict
// on local pointers into one buffer, and without it the LSTM and GRU loops, with their in-place
// gate writes, stay scalar (measured: the gates took 20% of an LSTM training step).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/cpu/rnn.h"

namespace dc::cpu::DC_ISA_NS {
namespace {

#include "kernels/cpu/vec/vmath.h"
#include "kernels/rnn_cells.h"

// ---- forward -------------------------------------------------------------------------------

// gates[r, 4H]: (i, f, g, o) pre-activations -> activations; c = f c_prev + i g; out = o tanh(c)
template <typename T>
__attribute__((flatten)) void lstm_loop(T* __restrict__ gi, T* __restrict__ gf,
                                        T* __restrict__ gg, T* __restrict__ go,
                                        const T* __restrict__ cp, T* __restrict__ c,
                                        T* __restrict__ out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    T i = gi[j], f = gf[j], u = gg[j], o = go[j], cn, h;
    lstm_cell(i, f, u, o, cp[j], cn, h);
    gi[j] = i;
    gf[j] = f;
    gg[j] = u;
    go[j] = o;
    c[j] = cn;
    out[j] = h;
  }
}

// r = s(x_r + hg_r), z = s(x_z + hg_z), a = hg_n + b_hn, n = tanh(x_n + r a), out = (1-z) n + z h
template <typename T>
__attribute__((flatten)) void gru_loop(T* __restrict__ gr, T* __restrict__ gz,
                                       T* __restrict__ gn, const T* __restrict__ hr,
                                       const T* __restrict__ hz, const T* __restrict__ hn,
                                       const T* __restrict__ bhn, const T* __restrict__ hp,
                                       T* __restrict__ aux, T* __restrict__ out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    T r = gr[j], z = gz[j], n = gn[j], a, h;
    gru_cell(r, z, n, hr[j], hz[j], hn[j], bhn[j], hp[j], a, h);
    gr[j] = r;
    gz[j] = z;
    gn[j] = n;
    aux[j] = a;
    out[j] = h;
  }
}

// (r, z) from their full pre-activations; aux = r * h_prev
template <typename T>
__attribute__((flatten)) void gru_reset_row(T* g, const T* hp, T* aux, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    T r = g[j], z = g[H + j], rh;
    gru_reset_cell(r, z, hp[j], rh);
    g[j] = r;
    g[H + j] = z;
    aux[j] = rh;
  }
}

// n = tanh(x_n + hg + b_hn), out = (1 - z) n + z h_prev
template <typename T>
__attribute__((flatten)) void gru_update_row(T* g, const T* hg, const T* bhn, const T* hp,
                                             T* out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    T n = g[2 * H + j], h;
    gru_update_cell(g[H + j], n, hg[j], bhn[j], hp[j], h);
    g[2 * H + j] = n;
    out[j] = h;
  }
}

template <typename T>
__attribute__((flatten)) void rnn_row(const T* g, T* out, int64_t H, bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) out[j] = rnn_relu_cell(g[j]);
  } else {
    for (int64_t j = 0; j < H; ++j) out[j] = rnn_tanh_cell(g[j]);
  }
}

template <typename T>
void forward(const RnnStepForward& s, int64_t r0, int64_t r1) {
  const int64_t H = s.hidden;
  T* gates = static_cast<T*>(s.gates);
  const T* hp = static_cast<const T*>(s.h_prev);
  T* out = static_cast<T*>(s.out);
  for (int64_t r = r0; r < r1; ++r) {
    T* o = out + r * s.ld_out;
    switch (s.mode) {
      case RnnMode::rnn_tanh:
      case RnnMode::rnn_relu:
        rnn_row(gates + r * H, o, H, s.mode == RnnMode::rnn_relu);
        break;
      case RnnMode::lstm:
      {
        T* g = gates + r * 4 * H;
        lstm_loop(g, g + H, g + 2 * H, g + 3 * H, static_cast<const T*>(s.c_prev) + r * H,
                  static_cast<T*>(s.c) + r * H, o, H);
      }
        break;
      case RnnMode::gru: {
        T* g = gates + r * 3 * H;
        const T* h = hp + r * s.ld_h_prev;
        if (s.phase == RnnPhase::full)
        {
          const T* hg = static_cast<const T*>(s.hg) + r * 3 * H;
          gru_loop(g, g + H, g + 2 * H, hg, hg + H, hg + 2 * H,
                   static_cast<const T*>(s.bias_hn), h, static_cast<T*>(s.aux) + r * H, o, H);
        }
        else if (s.phase == RnnPhase::gru_reset)
          gru_reset_row(g, h, static_cast<T*>(s.aux) + r * H, H);
        else
          gru_update_row(g, static_cast<const T*>(s.hg) + r * H,
                         static_cast<const T*>(s.bias_hn), h, o, H);
        break;
      }
    }
  }
}

// ---- backward ------------------------------------------------------------------------------

// dm: gradient of o tanh(c); dc: in from step t+1, out for c_prev; dg: (di, df, dg, do) of the
// pre-activations.
template <typename T>
__attribute__((flatten)) void lstm_back_loop(
    const T* __restrict__ gi, const T* __restrict__ gf, const T* __restrict__ gg,
    const T* __restrict__ go, const T* __restrict__ cp, const T* __restrict__ c,
    const T* __restrict__ dm, T* __restrict__ dc, T* __restrict__ di, T* __restrict__ df,
    T* __restrict__ du, T* __restrict__ dout, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    T dcj = dc[j], dij, dfj, duj, doj;
    lstm_back_cell(gi[j], gf[j], gg[j], go[j], cp[j], c[j], dm[j], dcj, dij, dfj, duj, doj);
    di[j] = dij;
    df[j] = dfj;
    du[j] = duj;
    dout[j] = doj;
    dc[j] = dcj;
  }
}

template <typename T>
__attribute__((flatten)) void gru_back_loop(
    const T* __restrict__ gr, const T* __restrict__ gz, const T* __restrict__ gn,
    const T* __restrict__ a, const T* __restrict__ hp, const T* __restrict__ dh,
    T* __restrict__ dr, T* __restrict__ dz, T* __restrict__ dn, T* __restrict__ dhr,
    T* __restrict__ dhz, T* __restrict__ dhn, T* __restrict__ dhp, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    T drp, dzp, dnp, dhnp, dhpp;
    gru_back_cell(gr[j], gz[j], gn[j], a[j], hp[j], dh[j], drp, dzp, dnp, dhnp, dhpp);
    dr[j] = drp;
    dz[j] = dzp;
    dn[j] = dnp;
    dhr[j] = drp;
    dhz[j] = dzp;
    dhn[j] = dhnp;
    dhp[j] = dhpp;
  }
}

template <typename T>
__attribute__((flatten)) void gru_update_back_loop(
    const T* __restrict__ gz, const T* __restrict__ gn, const T* __restrict__ hp,
    const T* __restrict__ dh, T* __restrict__ dz, T* __restrict__ dn, T* __restrict__ dhp,
    int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    T dzj, dnj, dhpj;
    gru_update_back_cell(gz[j], gn[j], hp[j], dh[j], dzj, dnj, dhpj);
    dz[j] = dzj;
    dn[j] = dnj;
    dhp[j] = dhpj;
  }
}

template <typename T>
__attribute__((flatten)) void gru_reset_back_row(const T* g, const T* hp, const T* drh, T* dg,
                                                 T* dhp, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    T dr, dhpj = dhp[j];
    gru_reset_back_cell(g[j], hp[j], drh[j], dr, dhpj);
    dg[j] = dr;
    dhp[j] = dhpj;
  }
}

template <typename T>
__attribute__((flatten)) void rnn_back_row(const T* h, const T* dh, T* dg, int64_t H, bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) dg[j] = rnn_relu_back(h[j], dh[j]);
  } else {
    for (int64_t j = 0; j < H; ++j) dg[j] = rnn_tanh_back(h[j], dh[j]);
  }
}

template <typename T>
void backward(const RnnStepBackward& s, int64_t r0, int64_t r1) {
  const int64_t H = s.hidden;
  const T* gates = static_cast<const T*>(s.gates);
  const T* hp = static_cast<const T*>(s.h_prev);
  const T* dout = static_cast<const T*>(s.d_out);
  T* dgates = static_cast<T*>(s.dgates);
  T* dhp = static_cast<T*>(s.d_h_prev);
  for (int64_t r = r0; r < r1; ++r) {
    const T* dh = dout + r * s.ld_d_out;
    switch (s.mode) {
      case RnnMode::rnn_tanh:
      case RnnMode::rnn_relu:
        rnn_back_row(static_cast<const T*>(s.aux) + r * H, dh, dgates + r * H, H,
                     s.mode == RnnMode::rnn_relu);
        break;
      case RnnMode::lstm:
      {
        const T* g = gates + r * 4 * H;
        T* dg = dgates + r * 4 * H;
        lstm_back_loop(g, g + H, g + 2 * H, g + 3 * H, static_cast<const T*>(s.c_prev) + r * H,
                       static_cast<const T*>(s.c) + r * H, dh, static_cast<T*>(s.dc) + r * H,
                       dg, dg + H, dg + 2 * H, dg + 3 * H, H);
      }
        break;
      case RnnMode::gru: {
        const T* g = gates + r * 3 * H;
        const T* h = hp + r * s.ld_h_prev;
        T* dg = dgates + r * 3 * H;
        T* dh_prev = dhp + r * s.ld_d_h_prev;
        if (s.phase == RnnPhase::full)
        {
          T* dhg = static_cast<T*>(s.dhg) + r * 3 * H;
          gru_back_loop(g, g + H, g + 2 * H, static_cast<const T*>(s.aux) + r * H, h, dh, dg,
                        dg + H, dg + 2 * H, dhg, dhg + H, dhg + 2 * H, dh_prev, H);
        }
        else if (s.phase == RnnPhase::gru_update)
          gru_update_back_loop(g + H, g + 2 * H, h, dh, dg + H, dg + 2 * H, dh_prev, H);
        else
          gru_reset_back_row(g, h, static_cast<const T*>(s.hg) + r * H, dg, dh_prev, H);
        break;
      }
    }
  }
}

template <typename T>
RnnGateFns<T> make_fns() {
  return {&forward<T>, &backward<T>};
}

}  // namespace

void fill_rnn_gates(RnnGateTable& t) {
  t.f32 = make_fns<float>();
  t.f64 = make_fns<double>();
}

}  // namespace dc::cpu::DC_ISA_NS
