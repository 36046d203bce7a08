// Drivers of the recurrent step kernels: pick the active ISA's row functions
// (csrc/kernels/cpu/vec/rnn_gates.cpp) and split the rows over threads.
#include "kernels/cpu/rnn.h"

#include <algorithm>

#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/gemm/gemm.h"
#include "kernels/cpu/isa.h"

namespace dc::cpu {

namespace {

template <void (*Fill)(RnnGateTable&)>
const RnnGateTable& table() {
  static const RnnGateTable t = [] {
    RnnGateTable x;
    Fill(x);
    return x;
  }();
  return t;
}

const RnnGateTable& gate_table() {
  switch (active_isa()) {
    case Isa::avx512: return table<avx512::fill_rnn_gates>();
    case Isa::avx2: return table<avx2::fill_rnn_gates>();
    default: return table<generic::fill_rnn_gates>();
  }
}

int64_t gates_of(RnnMode m) { return m == RnnMode::lstm ? 4 : m == RnnMode::gru ? 3 : 1; }

// Rows per thread chunk: a step's gates cost a few transcendental functions per element, so a
// chunk of about 4096 gate values pays for waking a thread. Measured on the bench row (LSTM,
// 256 units, batch 32, two threads): deepcore / torch 0.90 with this grain, 1.00 with the
// gates on one thread (kGrainSize), the serial gates then limiting the speedup of the GEMMs.
int64_t row_grain(RnnMode m, int64_t hidden) {
  return std::max<int64_t>(1, 4096 / std::max<int64_t>(1, gates_of(m) * hidden));
}

}  // namespace

void rnn_step_forward(DType dtype, const RnnStepForward& s) {
  const auto& t = gate_table();
  const int64_t grain = row_grain(s.mode, s.hidden);
  if (dtype == DType::Float32) {
    parallel_for(0, s.rows, grain, [&](int64_t b, int64_t e) { t.f32.forward(s, b, e); });
  } else if (dtype == DType::Float64) {
    parallel_for(0, s.rows, grain, [&](int64_t b, int64_t e) { t.f64.forward(s, b, e); });
  } else {
    DC_THROW(TypeError, "[rnn] expected float32 or float64, got ", dtype_name(dtype));
  }
}

void rnn_step_backward(DType dtype, const RnnStepBackward& s) {
  const auto& t = gate_table();
  const int64_t grain = row_grain(s.mode, s.hidden);
  if (dtype == DType::Float32) {
    parallel_for(0, s.rows, grain, [&](int64_t b, int64_t e) { t.f32.backward(s, b, e); });
  } else if (dtype == DType::Float64) {
    parallel_for(0, s.rows, grain, [&](int64_t b, int64_t e) { t.f64.backward(s, b, e); });
  } else {
    DC_THROW(TypeError, "[rnn] expected float32 or float64, got ", dtype_name(dtype));
  }
}

// ---- the per-step GEMM with a packed weight ---------------------------------------------------
//
// Layout: the K rows are cut into KC-deep slices; slice p holds ceil(N / NR) micro-panels of
// (kc_p, NR) values (zero-padded past N), each padded to a whole number of 64-byte lines so
// that every panel starts aligned, as the micro-kernel requires. A step packs its (M, K) rows of
// h into MR-high panels once, then threads split the NR-wide column panels of C between them:
// for M = 32, K = 256, N = 1024 (an LSTM of 256 units, batch 32) that removes the 1 MB weight
// pack every step paid in the plain GEMM, 11 % of a training step.

namespace {

struct PackedGeom {
  int64_t K, N, kc, nr, panels, line;
  int64_t slices() const { return (K + kc - 1) / kc; }
  int64_t depth(int64_t p) const { return std::min(kc, K - p * kc); }
  int64_t panel_numel(int64_t p) const { return (depth(p) * nr + line - 1) / line * line; }
  // offset of slice p: every earlier slice is kc deep
  int64_t slice_offset(int64_t p) const { return p * panels * ((kc * nr + line - 1) / line * line); }
  int64_t numel() const {
    int64_t n = 0;
    for (int64_t p = 0; p < slices(); ++p) n += panels * panel_numel(p);
    return n;
  }
};

template <typename T>
PackedGeom packed_geom(int64_t K, int64_t N) {
  const GemmBlocks<T> g = gemm_blocks<T>();
  const int64_t line = 64 / static_cast<int64_t>(sizeof(T));
  return {K, N, g.kc, g.nr, (N + g.nr - 1) / g.nr, line};
}

template <typename T>
void pack_weight(const Tensor& b, const Tensor& packed) {
  const int64_t K = b.sizes()[0], N = b.sizes()[1], rs = b.strides()[0], cs = b.strides()[1];
  const PackedGeom pg = packed_geom<T>(K, N);
  const GemmBlocks<T> g = gemm_blocks<T>();
  const T* src = b.data<T>();
  T* dst = packed.data<T>();
  parallel_for(0, pg.slices() * pg.panels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t p = item / pg.panels, j = item % pg.panels;
      const int64_t kd = pg.depth(p), n0 = j * pg.nr, w = std::min(pg.nr, N - n0);
      T* d = dst + pg.slice_offset(p) + j * pg.panel_numel(p);
      const T* s0 = src + p * pg.kc * rs + n0 * cs;
      if (rs == 1) {  // columns of b contiguous along k: a blocked transpose
        g.transpose(kd, w, s0, cs, d, pg.nr);
        continue;
      }
      for (int64_t k = 0; k < kd; ++k)
        for (int64_t c = 0; c < pg.nr; ++c) d[k * pg.nr + c] = c < w ? s0[k * rs + c * cs] : T(0);
    }
  });
}

template <typename T>
void gemm_packed(const Tensor& a, const Tensor& packed, const Tensor& c, double beta) {
  const int64_t M = a.sizes()[0], K = a.sizes()[1], N = c.sizes()[1];
  if (M == 0 || N == 0) return;
  const PackedGeom pg = packed_geom<T>(K, N);
  const GemmBlocks<T> g = gemm_blocks<T>();
  const int64_t mpan = (M + g.mr - 1) / g.mr;
  // The packed rows of a, slice after slice: (mpan * MR, kc_p) each.
  thread_local std::vector<T> abuf;
  abuf.resize(static_cast<size_t>(mpan * g.mr * K));
  const T* ap = a.data<T>();
  for (int64_t p = 0; p < pg.slices(); ++p)
    g.pack_a(M, pg.depth(p), ap + p * pg.kc * a.strides()[1], a.strides()[0], a.strides()[1],
             abuf.data() + p * pg.kc * mpan * g.mr);
  const T* bp = packed.data<T>();
  T* cp = c.data<T>();
  const int64_t rsc = c.strides()[0], csc = c.strides()[1];
  const T* abase = abuf.data();
  const double flops_per_panel = 2.0 * M * K * pg.nr;
  const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>(1e6 / flops_per_panel));
  parallel_for(0, pg.panels, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) {
      const int64_t n = std::min(pg.nr, N - j * pg.nr);
      for (int64_t p = 0; p < pg.slices(); ++p) {
        const int64_t kd = pg.depth(p);
        const T* bpan = bp + pg.slice_offset(p) + j * pg.panel_numel(p);
        const T b_p = p == 0 ? T(beta) : T(1);
        for (int64_t i = 0; i < mpan; ++i) {
          const int64_t m = std::min<int64_t>(g.mr, M - i * g.mr);
          g.ukernel(kd, abase + p * pg.kc * mpan * g.mr + i * kd * g.mr, bpan,
                    cp + i * g.mr * rsc + j * pg.nr * csc, rsc, csc, m, n, T(1), b_p);
        }
      }
    }
  });
}

}  // namespace

int64_t rnn_packed_weight_numel(DType dtype, int64_t K, int64_t N) {
  return dtype == DType::Float64 ? packed_geom<double>(K, N).numel()
                                 : packed_geom<float>(K, N).numel();
}

void rnn_pack_weight(const Tensor& b, const Tensor& packed) {
  DC_DISPATCH_FLOAT(b.dtype(), "rnn", [&] { pack_weight<scalar_t>(b, packed); });
}

void rnn_gemm_packed(const Tensor& a, const Tensor& packed, const Tensor& c, double beta) {
  DC_DISPATCH_FLOAT(a.dtype(), "rnn", [&] { gemm_packed<scalar_t>(a, packed, c, beta); });
}

}  // namespace dc::cpu
