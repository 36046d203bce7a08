// The per-element gate math of one recurrent time step (contracts: kernels/cpu/rnn.h), written
// once for the per-ISA cpu row loops (kernels/cpu/vec/rnn_gates.cpp) and the CUDA kernels
// (kernels/cuda/rnn.cu). Included inside the includer's namespace after
// kernels/cpu/vec/vmath.h, like kernels/optim_steps.h: every ISA calls its own copy of vm::exp
// and vm::tanh, and the device runs the same functions, so the two sides differ only where a
// compiler fuses a multiply and an add (the avx2/avx512 builds and nvcc do, generic does not).
// The includer also includes kernels/cpu/rnn.h (and <cstdint>) before opening its namespace.
//
// A cell takes one unit's values and returns its results through references; the cpu loops
// keep their loads and stores (and __restrict__ pointers, which their vectorisation needs),
// the device's element functions below compute the addresses of one (row, unit).
#ifndef DC_RNN_CELLS_BODY
#define DC_RNN_CELLS_BODY

// Sigmoid as 1 / (1 + exp(-x)): exp overflows to inf for very negative x and the quotient
// rounds to 0, the right limit, without a branch.
template <typename T>
DC_HD inline T sigmoid_gate(T x) { return T(1) / (T(1) + vm::exp(-x)); }

// ---- forward --------------------------------------------------------------------------------

template <typename T>
DC_HD inline T rnn_tanh_cell(T g) { return vm::tanh(g); }
// NaN passes through (NaN < 0 is false), as torch's relu.
template <typename T>
DC_HD inline T rnn_relu_cell(T g) { return vm::select(g < T(0), T(0), g); }

// LSTM: i, f, g, o pre-activations in, activations out; c = f c_prev + i g; h = o tanh(c).
template <typename T>
DC_HD inline void lstm_cell(T& i, T& f, T& g, T& o, T c_prev, T& c, T& h) {
  i = sigmoid_gate(i);
  f = sigmoid_gate(f);
  g = vm::tanh(g);
  o = sigmoid_gate(o);
  c = f * c_prev + i * g;
  h = o * vm::tanh(c);
}

// GRU, reset after the recurrent product (torch): r, z, n in: x W_ih^T + b_ih (+ b_hr, b_hz),
// out: activations; hr, hz, hn: h W_hh^T. r = s(x_r + hr), z = s(x_z + hz), a = hn + b_hn,
// n = tanh(x_n + r a), h = (1 - z) n + z h_prev.
template <typename T>
DC_HD inline void gru_cell(T& r, T& z, T& n, T hr, T hz, T hn, T b_hn, T h_prev, T& a, T& h) {
  r = sigmoid_gate(r + hr);
  z = sigmoid_gate(z + hz);
  a = hn + b_hn;
  n = vm::tanh(n + r * a);
  h = (T(1) - z) * n + z * h_prev;
}

// GRU, reset before the product, first half: r, z from their full pre-activations; rh = r h_prev.
template <typename T>
DC_HD inline void gru_reset_cell(T& r, T& z, T h_prev, T& rh) {
  r = sigmoid_gate(r);
  z = sigmoid_gate(z);
  rh = r * h_prev;
}

// Second half: n pre-activation x_n in, activation out; hg = (r h_prev) W_hn^T.
// n = tanh(x_n + hg + b_hn), h = (1 - z) n + z h_prev.
template <typename T>
DC_HD inline void gru_update_cell(T z, T& n, T hg, T b_hn, T h_prev, T& h) {
  n = vm::tanh(n + hg + b_hn);
  h = (T(1) - z) * n + z * h_prev;
}

// ---- backward -------------------------------------------------------------------------------
// Gradients of the pre-activations from the forward's activations and dh, the gradient of the
// cell's output.

template <typename T>
DC_HD inline T rnn_tanh_back(T h, T dh) { return dh * (T(1) - h * h); }
template <typename T>
DC_HD inline T rnn_relu_back(T h, T dh) { return vm::select(h > T(0), dh, T(0)); }

// dc: in, the gradient reaching c from step t + 1; out, the one for c_prev.
template <typename T>
DC_HD inline void lstm_back_cell(T i, T f, T g, T o, T c_prev, T c, T dh, T& dc, T& di, T& df,
                                 T& dg, T& dout) {
  const T tc = vm::tanh(c);
  const T dcj = dc + dh * o * (T(1) - tc * tc);
  di = dcj * g * i * (T(1) - i);
  df = dcj * c_prev * f * (T(1) - f);
  dg = dcj * i * (T(1) - g * g);
  dout = dh * tc * o * (T(1) - o);
  dc = dcj * f;
}

// dr, dz, dn: the gates' pre-activations (also those of hr and hz); dhn: of hn (the n gate's
// recurrent product, scaled by r); dh_prev = z dh, the part of h_prev's gradient outside W_hh.
template <typename T>
DC_HD inline void gru_back_cell(T r, T z, T n, T a, T h_prev, T dh, T& dr, T& dz, T& dn,
                                T& dhn, T& dh_prev) {
  dn = dh * (T(1) - z) * (T(1) - n * n);
  dz = dh * (h_prev - n) * z * (T(1) - z);
  dr = dn * a * r * (T(1) - r);
  dhn = dn * r;
  dh_prev = dh * z;
}

// Reset before the product, run first: dz, dn (also the gradient of hg), dh_prev = z dh.
template <typename T>
DC_HD inline void gru_update_back_cell(T z, T n, T h_prev, T dh, T& dz, T& dn, T& dh_prev) {
  dz = dh * (h_prev - n) * z * (T(1) - z);
  dn = dh * (T(1) - z) * (T(1) - n * n);
  dh_prev = dh * z;
}

// Then, with drh the gradient of r h_prev: dr, and r drh added to dh_prev.
template <typename T>
DC_HD inline void gru_reset_back_cell(T r, T h_prev, T drh, T& dr, T& dh_prev) {
  dr = drh * h_prev * r * (T(1) - r);
  dh_prev += drh * r;
}

// ---- one (row, unit) of a step, as a device thread runs it ----------------------------------
// Element e of rows * hidden is row e / hidden, unit e % hidden; it reads and writes only that
// unit's columns of its row (gates at u, H + u, 2H + u, 3H + u), so the elements of a step may
// run in any order and at once, and a step leaves everything past its rows and units alone.

template <typename T>
DC_HD inline void rnn_forward_element(const ::dc::cpu::RnnStepForward& s, int64_t e) {
  using ::dc::cpu::RnnMode;
  using ::dc::cpu::RnnPhase;
  const int64_t H = s.hidden, row = e / H, u = e % H;
  T* out = static_cast<T*>(s.out) + row * s.ld_out + u;
  switch (s.mode) {
    case RnnMode::rnn_tanh:
    case RnnMode::rnn_relu: {
      const T g = static_cast<const T*>(s.gates)[row * H + u];
      *out = s.mode == RnnMode::rnn_relu ? rnn_relu_cell(g) : rnn_tanh_cell(g);
      return;
    }
    case RnnMode::lstm: {
      T* g = static_cast<T*>(s.gates) + row * 4 * H + u;
      T i = g[0], f = g[H], gg = g[2 * H], o = g[3 * H], c, h;
      lstm_cell(i, f, gg, o, static_cast<const T*>(s.c_prev)[row * H + u], c, h);
      g[0] = i;
      g[H] = f;
      g[2 * H] = gg;
      g[3 * H] = o;
      static_cast<T*>(s.c)[row * H + u] = c;
      *out = h;
      return;
    }
    case RnnMode::gru: {
      T* g = static_cast<T*>(s.gates) + row * 3 * H + u;
      T* aux = static_cast<T*>(s.aux) + row * H + u;
      const T* b_hn = static_cast<const T*>(s.bias_hn);
      const T h_prev = static_cast<const T*>(s.h_prev)[row * s.ld_h_prev + u];
      if (s.phase == RnnPhase::full) {
        const T* hg = static_cast<const T*>(s.hg) + row * 3 * H + u;
        T r = g[0], z = g[H], n = g[2 * H], a, h;
        gru_cell(r, z, n, hg[0], hg[H], hg[2 * H], b_hn[u], h_prev, a, h);
        g[0] = r;
        g[H] = z;
        g[2 * H] = n;
        *aux = a;
        *out = h;
      } else if (s.phase == RnnPhase::gru_reset) {
        T r = g[0], z = g[H], rh;
        gru_reset_cell(r, z, h_prev, rh);
        g[0] = r;
        g[H] = z;
        *aux = rh;
      } else {
        T n = g[2 * H], h;
        gru_update_cell(g[H], n, static_cast<const T*>(s.hg)[row * H + u], b_hn[u], h_prev, h);
        g[2 * H] = n;
        *out = h;
      }
      return;
    }
  }
}

template <typename T>
DC_HD inline void rnn_backward_element(const ::dc::cpu::RnnStepBackward& s, int64_t e) {
  using ::dc::cpu::RnnMode;
  using ::dc::cpu::RnnPhase;
  const int64_t H = s.hidden, row = e / H, u = e % H;
  // d_out is read by every phase but gru_reset's, whose gradient arrives in hg
  const T* d_out = static_cast<const T*>(s.d_out) + row * s.ld_d_out + u;
  switch (s.mode) {
    case RnnMode::rnn_tanh:
    case RnnMode::rnn_relu: {
      const T h = static_cast<const T*>(s.aux)[row * H + u];
      static_cast<T*>(s.dgates)[row * H + u] =
          s.mode == RnnMode::rnn_relu ? rnn_relu_back(h, *d_out) : rnn_tanh_back(h, *d_out);
      return;
    }
    case RnnMode::lstm: {
      const T* g = static_cast<const T*>(s.gates) + row * 4 * H + u;
      T* dg = static_cast<T*>(s.dgates) + row * 4 * H + u;
      T* dc = static_cast<T*>(s.dc) + row * H + u;
      T dcv = *dc, di, df, dgg, dout;
      lstm_back_cell(g[0], g[H], g[2 * H], g[3 * H], static_cast<const T*>(s.c_prev)[row * H + u],
                     static_cast<const T*>(s.c)[row * H + u], *d_out, dcv, di, df, dgg, dout);
      dg[0] = di;
      dg[H] = df;
      dg[2 * H] = dgg;
      dg[3 * H] = dout;
      *dc = dcv;
      return;
    }
    case RnnMode::gru: {
      const T* g = static_cast<const T*>(s.gates) + row * 3 * H + u;
      const T h_prev = static_cast<const T*>(s.h_prev)[row * s.ld_h_prev + u];
      T* dg = static_cast<T*>(s.dgates) + row * 3 * H + u;
      T* dh_prev = static_cast<T*>(s.d_h_prev) + row * s.ld_d_h_prev + u;
      if (s.phase == RnnPhase::full) {
        T* dhg = static_cast<T*>(s.dhg) + row * 3 * H + u;
        T dr, dz, dn, dhn, dhp;
        gru_back_cell(g[0], g[H], g[2 * H], static_cast<const T*>(s.aux)[row * H + u], h_prev,
                      *d_out, dr, dz, dn, dhn, dhp);
        dg[0] = dr;
        dg[H] = dz;
        dg[2 * H] = dn;
        dhg[0] = dr;
        dhg[H] = dz;
        dhg[2 * H] = dhn;
        *dh_prev = dhp;
      } else if (s.phase == RnnPhase::gru_update) {
        T dz, dn, dhp;
        gru_update_back_cell(g[H], g[2 * H], h_prev, *d_out, dz, dn, dhp);
        dg[H] = dz;
        dg[2 * H] = dn;
        *dh_prev = dhp;
      } else {
        T dr, dhp = *dh_prev;
        gru_reset_back_cell(g[0], h_prev, static_cast<const T*>(s.hg)[row * H + u], dr, dhp);
        dg[0] = dr;
        *dh_prev = dhp;
      }
      return;
    }
  }
}

#endif  // DC_RNN_CELLS_BODY
