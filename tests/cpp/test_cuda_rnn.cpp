// The CUDA recurrent step kernels (csrc/kernels/cuda/rnn.cu) on the host: a device thread runs
// rnn_forward_element / rnn_backward_element (csrc/kernels/rnn_cells.h) for one (row, unit) of
// a step. Here every element of a step runs in the order a grid-stride launch with a small grid
// and scrambled blocks and threads would take them, on buffers with padded row strides and
// rows past the step's, and the result must equal the cpu kernel (csrc/kernels/cpu/rnn.h) run
// on a copy, every bit of every buffer. The cpu runs its generic ISA for that: like this file,
// it fuses no multiply-add. (The avx2/avx512 kernels and nvcc do, and where 1 - n * n or
// h_prev - n cancels a fused product can move the result by far more than an ulp, so there
// only the formulas, not the bits, are shared.) The cells themselves are checked against a
// long-double forward, and their backward against its central differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/rnn.h"
#include "kernels/cuda/launch.h"

namespace dc::rnn_cells_test {
#include "kernels/cpu/vec/vmath.h"
#include "kernels/rnn_cells.h"
}  // namespace dc::rnn_cells_test

namespace {

namespace cells = dc::rnn_cells_test;
using dc::cpu::RnnMode;
using dc::cpu::RnnPhase;
using dc::cpu::RnnStepBackward;
using dc::cpu::RnnStepForward;

struct Case {
  RnnMode mode;
  RnnPhase phase;
  const char* name;
};
const Case kCases[] = {
    {RnnMode::rnn_tanh, RnnPhase::full, "rnn_tanh"},
    {RnnMode::rnn_relu, RnnPhase::full, "rnn_relu"},
    {RnnMode::lstm, RnnPhase::full, "lstm"},
    {RnnMode::gru, RnnPhase::full, "gru"},
    {RnnMode::gru, RnnPhase::gru_reset, "gru_reset"},
    {RnnMode::gru, RnnPhase::gru_update, "gru_update"},
};

int64_t gates_of(RnnMode m) { return m == RnnMode::lstm ? 4 : m == RnnMode::gru ? 3 : 1; }

// The order in which a grid-stride launch over n elements visits them (elementwise_launch with
// a grid of at most max_blocks blocks): blocks and the threads within each in a scrambled order,
// each thread's elements in its loop's order. Every element must come exactly once.
std::vector<int64_t> grid_stride_order(int64_t n, int64_t max_blocks, std::mt19937& rng) {
  const dc::cuda_kernels::LaunchConfig c = dc::cuda_kernels::elementwise_launch(n, max_blocks);
  std::vector<int64_t> threads(static_cast<size_t>(c.blocks * c.threads));
  std::iota(threads.begin(), threads.end(), 0);
  std::shuffle(threads.begin(), threads.end(), rng);
  std::vector<int64_t> order;
  for (int64_t t : threads)
    for (int64_t e = t; e < n; e += c.blocks * c.threads) order.push_back(e);
  return order;
}

TEST(CudaRnn, GridStrideLaunchVisitsEveryElementOnce) {
  std::mt19937 rng(3);
  for (int64_t n : {0, 1, 5, 255, 256, 257, 1000, 4099})
    for (int64_t max_blocks : {1, 2, 3, 64}) {
      std::vector<int64_t> order = grid_stride_order(n, max_blocks, rng);
      std::sort(order.begin(), order.end());
      std::vector<int64_t> want(static_cast<size_t>(n));
      std::iota(want.begin(), want.end(), 0);
      EXPECT_EQ(order, want) << "n " << n << ", max_blocks " << max_blocks;
    }
}

// ---- step elements against the cpu kernel ----------------------------------------------------

// Every buffer a step may touch, each with kSpareRows rows past the step's and its own row
// stride, so that a wrong stride or a write past the step shows as a difference.
constexpr int64_t kSpareRows = 2;

template <typename T>
struct StepBuffers {
  int64_t rows = 0, H = 0, G = 1;
  int64_t ld_h_prev = 0, ld_out = 0, ld_d_out = 0, ld_d_h_prev = 0;
  std::vector<T> gates, hg, bias_hn, h_prev, c_prev, c, aux, out, d_out, dc, dgates, dhg,
      d_h_prev;

  std::vector<std::vector<T>*> all() {
    return {&gates, &hg, &bias_hn, &h_prev, &c_prev, &c, &aux, &out, &d_out, &dc, &dgates,
            &dhg, &d_h_prev};
  }
  static const char* name(size_t k) {
    static const char* names[] = {"gates", "hg",  "bias_hn", "h_prev", "c_prev", "c",       "aux",
                                  "out",   "d_out", "dc",    "dgates", "dhg",    "d_h_prev"};
    return names[k];
  }

  // Random values, with saturating, overflowing (exp(-x) = inf) and NaN inputs among them.
  StepBuffers(RnnMode mode, int64_t rows_, int64_t H_, std::mt19937& rng)
      : rows(rows_), H(H_), G(gates_of(mode)) {
    ld_h_prev = H + 3;
    ld_out = H + 1;
    ld_d_out = H + 2;
    ld_d_h_prev = H + 4;
    const int64_t R = rows + kSpareRows;
    std::normal_distribution<double> normal(0.0, 2.0);
    std::uniform_int_distribution<int> pick(0, 99);
    const double specials[] = {40.0, -40.0, 1000.0, -1000.0, 0.0, -0.0,
                               std::numeric_limits<double>::quiet_NaN()};
    auto fill = [&](std::vector<T>& v, int64_t n) {
      v.resize(static_cast<size_t>(n));
      for (T& x : v) {
        const int p = pick(rng);
        x = static_cast<T>(p < 7 ? specials[p] : normal(rng));
      }
    };
    fill(gates, R * G * H);
    fill(hg, R * 3 * H);
    fill(bias_hn, H);
    fill(h_prev, R * ld_h_prev);
    fill(c_prev, R * H);
    fill(c, R * H);
    fill(aux, R * H);
    fill(out, R * ld_out);
    fill(d_out, R * ld_d_out);
    fill(dc, R * H);
    fill(dgates, R * G * H);
    fill(dhg, R * 3 * H);
    fill(d_h_prev, R * ld_d_h_prev);
  }

  // The fields ops/rnn.cpp sets for the case; the others stay null, so that an element reading
  // one it should not would crash here.
  RnnStepForward forward(const Case& k) {
    RnnStepForward f;
    f.mode = k.mode;
    f.phase = k.phase;
    f.rows = rows;
    f.hidden = H;
    f.gates = gates.data();
    f.h_prev = h_prev.data();
    f.ld_h_prev = ld_h_prev;
    f.out = out.data();
    f.ld_out = ld_out;
    if (k.mode == RnnMode::lstm) {
      f.c_prev = c_prev.data();
      f.c = c.data();
    } else if (k.mode == RnnMode::gru) {
      f.aux = aux.data();
      f.hg = hg.data();
      f.bias_hn = bias_hn.data();
    }
    return f;
  }
  RnnStepBackward backward(const Case& k) {
    RnnStepBackward b;
    b.mode = k.mode;
    b.phase = k.phase;
    b.rows = rows;
    b.hidden = H;
    b.gates = gates.data();
    b.h_prev = h_prev.data();
    b.ld_h_prev = ld_h_prev;
    b.d_out = d_out.data();
    b.ld_d_out = ld_d_out;
    b.dgates = dgates.data();
    b.d_h_prev = d_h_prev.data();
    b.ld_d_h_prev = ld_d_h_prev;
    if (k.mode == RnnMode::lstm) {
      b.c_prev = c_prev.data();
      b.c = c.data();
      b.dc = dc.data();
    } else if (k.mode == RnnMode::gru) {
      if (k.phase == RnnPhase::full) {
        b.aux = aux.data();
        b.dhg = dhg.data();
      } else if (k.phase == RnnPhase::gru_reset) {
        b.hg = hg.data();
      }
    } else {
      b.aux = aux.data();
    }
    return b;
  }
};

template <typename T>
dc::DType dtype_of() {
  return sizeof(T) == 4 ? dc::DType::Float32 : dc::DType::Float64;
}

// The first element whose bits differ (any NaN matches any NaN), or "".
template <typename T>
std::string first_difference(const std::vector<T>& got, const std::vector<T>& want) {
  for (size_t i = 0; i < want.size(); ++i) {
    const T g = got[i], w = want[i];
    if ((std::isnan(g) && std::isnan(w)) || std::memcmp(&g, &w, sizeof(T)) == 0) continue;
    return "element " + std::to_string(i) + ": " + std::to_string(g) + " vs " + std::to_string(w);
  }
  return "";
}

template <typename T>
void check_steps_against_cpu() {
  std::mt19937 rng(11);
  for (const Case& k : kCases)
    for (int64_t rows : {0, 1, 3, 7})
      for (int64_t H : {0, 1, 5, 17, 33}) {
        for (bool backward : {false, true}) {
          StepBuffers<T> cpu_side(k.mode, rows, H, rng);
          StepBuffers<T> dev_side = cpu_side;
          const std::vector<int64_t> order = grid_stride_order(rows * H, 2, rng);
          if (!backward) {
            dc::cpu::rnn_step_forward(dtype_of<T>(), cpu_side.forward(k));
            const RnnStepForward f = dev_side.forward(k);
            for (int64_t e : order) cells::rnn_forward_element<T>(f, e);
          } else {
            dc::cpu::rnn_step_backward(dtype_of<T>(), cpu_side.backward(k));
            const RnnStepBackward b = dev_side.backward(k);
            for (int64_t e : order) cells::rnn_backward_element<T>(b, e);
          }
          const auto want = cpu_side.all(), got = dev_side.all();
          for (size_t i = 0; i < want.size(); ++i) {
            const std::string diff = first_difference(*got[i], *want[i]);
            EXPECT_EQ(diff, "") << k.name << (backward ? " backward" : " forward") << " rows "
                                << rows << " H " << H << ", " << StepBuffers<T>::name(i)
                                << (sizeof(T) == 4 ? " float32" : " float64");
          }
        }
      }
}

TEST(CudaRnn, StepElementsMatchTheCpuKernelBitForBitOnEveryBuffer) {
  struct GenericIsa {
    GenericIsa() { dc::cpu::set_active_isa(dc::cpu::Isa::generic); }
    ~GenericIsa() { dc::cpu::set_active_isa(dc::cpu::detected_isa()); }
  } generic;
  check_steps_against_cpu<float>();
  check_steps_against_cpu<double>();
}

// ---- the cells against a long-double reference -------------------------------------------------

using LD = long double;
LD sig(LD x) { return 1.0L / (1.0L + std::exp(-x)); }

// A cell's forward in long double, as a function of its inputs x, giving its outputs.
using Forward = std::vector<LD> (*)(const std::vector<LD>& x);

std::vector<LD> lstm_ref(const std::vector<LD>& x) {  // (i, f, g, o, c_prev) -> (c, h)
  const LD c = sig(x[1]) * x[4] + sig(x[0]) * std::tanh(x[2]);
  return {c, sig(x[3]) * std::tanh(c)};
}
// (x_r, x_z, x_n, hr, hz, hn, b_hn, h_prev) -> h
std::vector<LD> gru_ref(const std::vector<LD>& x) {
  const LD r = sig(x[0] + x[3]), z = sig(x[1] + x[4]), n = std::tanh(x[2] + r * (x[5] + x[6]));
  return {(1 - z) * n + z * x[7]};
}
// (x_z, x_n, hg, b_hn, h_prev) -> h: the second half of a GRU with the reset before the product
std::vector<LD> gru_update_ref(const std::vector<LD>& x) {
  const LD z = sig(x[0]), n = std::tanh(x[1] + x[2] + x[3]);
  return {(1 - z) * n + z * x[4]};
}
std::vector<LD> gru_reset_ref(const std::vector<LD>& x) {  // (x_r, h_prev) -> r h_prev
  return {sig(x[0]) * x[1]};
}

// d(sum_k w[k] out[k]) / dx[i] by central differences.
LD central_difference(Forward f, std::vector<LD> x, const std::vector<LD>& w, size_t i) {
  const LD h = 1e-6L * (1 + std::fabs(x[i])), x0 = x[i];
  auto loss = [&](LD v) {
    x[i] = v;
    const std::vector<LD> y = f(x);
    LD s = 0;
    for (size_t k = 0; k < y.size(); ++k) s += w[k] * y[k];
    return s;
  };
  return (loss(x0 + h) - loss(x0 - h)) / (2 * h);
}

// |got - want| <= tol (1 + |want|)
::testing::AssertionResult near(double got, LD want, double tol) {
  if (std::fabs(static_cast<LD>(got) - want) <= tol * (1 + std::fabs(want)))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << got << " vs " << static_cast<double>(want);
}

template <typename T>
void check_cells(double fwd_tol, double grad_tol) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-3.0, 3.0);
  auto draw = [&](size_t n) {
    std::vector<LD> v(n);
    for (LD& x : v) x = static_cast<T>(u(rng));  // representable in T
    return v;
  };
  for (int trial = 0; trial < 200; ++trial) {
    {  // LSTM: forward, then backward of dh h + dc c
      const std::vector<LD> x = draw(5), w = draw(2);
      T i = T(x[0]), f = T(x[1]), g = T(x[2]), o = T(x[3]), c, h;
      cells::lstm_cell(i, f, g, o, T(x[4]), c, h);
      const std::vector<LD> y = lstm_ref(x);
      EXPECT_TRUE(near(c, y[0], fwd_tol)) << "lstm c";
      EXPECT_TRUE(near(h, y[1], fwd_tol)) << "lstm h";
      T dc = T(w[0]), d[4];
      cells::lstm_back_cell(i, f, g, o, T(x[4]), c, T(w[1]), dc, d[0], d[1], d[2], d[3]);
      for (size_t k = 0; k < 4; ++k)
        EXPECT_TRUE(near(d[k], central_difference(lstm_ref, x, w, k), grad_tol)) << "lstm d" << k;
      EXPECT_TRUE(near(dc, central_difference(lstm_ref, x, w, 4), grad_tol)) << "lstm dc_prev";
    }
    {  // GRU, reset after the product
      const std::vector<LD> x = draw(8), w = draw(1);
      T r = T(x[0]), z = T(x[1]), n = T(x[2]), a, h;
      cells::gru_cell(r, z, n, T(x[3]), T(x[4]), T(x[5]), T(x[6]), T(x[7]), a, h);
      EXPECT_TRUE(near(h, gru_ref(x)[0], fwd_tol)) << "gru h";
      EXPECT_TRUE(near(a, x[5] + x[6], fwd_tol)) << "gru aux";
      T dr, dz, dn, dhn, dhp;
      cells::gru_back_cell(r, z, n, a, T(x[7]), T(w[0]), dr, dz, dn, dhn, dhp);
      EXPECT_TRUE(near(dr, central_difference(gru_ref, x, w, 0), grad_tol)) << "gru dr";
      EXPECT_TRUE(near(dz, central_difference(gru_ref, x, w, 1), grad_tol)) << "gru dz";
      EXPECT_TRUE(near(dn, central_difference(gru_ref, x, w, 2), grad_tol)) << "gru dn";
      // the recurrent product's gradients: hr and hz as the gates', hn as below
      EXPECT_TRUE(near(dr, central_difference(gru_ref, x, w, 3), grad_tol)) << "gru dhr";
      EXPECT_TRUE(near(dz, central_difference(gru_ref, x, w, 4), grad_tol)) << "gru dhz";
      EXPECT_TRUE(near(dhn, central_difference(gru_ref, x, w, 5), grad_tol)) << "gru dhn";
      EXPECT_TRUE(near(dhp, central_difference(gru_ref, x, w, 7), grad_tol)) << "gru dh_prev";
    }
    {  // GRU, reset before the product: both halves
      const std::vector<LD> xr = draw(2), xu = draw(5), w = draw(1), wr = draw(1);
      T r = T(xr[0]), z = T(xu[0]), rh;
      cells::gru_reset_cell(r, z, T(xr[1]), rh);
      EXPECT_TRUE(near(rh, gru_reset_ref(xr)[0], fwd_tol)) << "gru_reset r h_prev";
      EXPECT_TRUE(near(z, sig(xu[0]), fwd_tol)) << "gru_reset z";
      T n = T(xu[1]), h;
      cells::gru_update_cell(z, n, T(xu[2]), T(xu[3]), T(xu[4]), h);
      EXPECT_TRUE(near(h, gru_update_ref(xu)[0], fwd_tol)) << "gru_update h";
      T dz, dn, dhp;
      cells::gru_update_back_cell(z, n, T(xu[4]), T(w[0]), dz, dn, dhp);
      EXPECT_TRUE(near(dz, central_difference(gru_update_ref, xu, w, 0), grad_tol)) << "dz";
      EXPECT_TRUE(near(dn, central_difference(gru_update_ref, xu, w, 1), grad_tol)) << "dn";
      EXPECT_TRUE(near(dn, central_difference(gru_update_ref, xu, w, 2), grad_tol)) << "dhg";
      EXPECT_TRUE(near(dhp, central_difference(gru_update_ref, xu, w, 4), grad_tol)) << "dhp";
      T dr, dhp2 = dhp;
      cells::gru_reset_back_cell(r, T(xr[1]), T(wr[0]), dr, dhp2);
      EXPECT_TRUE(near(dr, central_difference(gru_reset_ref, xr, wr, 0), grad_tol)) << "dr";
      // d_h_prev accumulates: z dh from the update half, then r drh
      const LD total = central_difference(gru_update_ref, xu, w, 4) +
                       central_difference(gru_reset_ref, xr, wr, 1);
      EXPECT_TRUE(near(dhp2, total, grad_tol)) << "gru_reset d_h_prev";
    }
    {  // RNN, tanh and relu (away from relu's kink)
      const LD g = draw(1)[0], dh = draw(1)[0];
      const T ht = cells::rnn_tanh_cell(T(g));
      EXPECT_TRUE(near(ht, std::tanh(g), fwd_tol)) << "tanh";
      const LD dtanh = dh * (1 - std::tanh(g) * std::tanh(g));
      EXPECT_TRUE(near(cells::rnn_tanh_back(ht, T(dh)), dtanh, grad_tol)) << "tanh back";
      if (std::fabs(g) > 1e-3L) {
        const T hr = cells::rnn_relu_cell(T(g));
        EXPECT_EQ(double(hr), g > 0 ? double(T(g)) : 0.0) << "relu";
        EXPECT_EQ(double(cells::rnn_relu_back(hr, T(dh))), g > 0 ? double(T(dh)) : 0.0);
      }
    }
  }
}

TEST(CudaRnn, CellsMatchALongDoubleReferenceAndItsDifferences) {
  check_cells<double>(1e-14, 1e-8);
  check_cells<float>(2e-6, 2e-5);
}

// The limits the cells reach without a branch: sigmoid at +-inf-bound inputs, NaN through relu.
TEST(CudaRnn, CellsSaturateAndPropagateNaN) {
  EXPECT_EQ(cells::sigmoid_gate(-1000.0f), 0.0f);
  EXPECT_EQ(cells::sigmoid_gate(1000.0f), 1.0f);
  EXPECT_EQ(cells::sigmoid_gate(-1e4), 0.0);
  EXPECT_EQ(cells::sigmoid_gate(1e4), 1.0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(cells::rnn_relu_cell(nan)));
  EXPECT_TRUE(std::isnan(cells::rnn_tanh_cell(nan)));
  EXPECT_EQ(cells::rnn_relu_back(nan, 2.0f), 0.0f);
  float i = 1000, f = -1000, g = 1000, o = 1000, c, h;
  cells::lstm_cell(i, f, g, o, 5.0f, c, h);
  EXPECT_EQ(c, 1.0f);  // f = 0 forgets c_prev, i g = 1
  EXPECT_FLOAT_EQ(h, std::tanh(1.0f));
}

}  // namespace
