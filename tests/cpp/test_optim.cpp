// Fused optimizer kernels (kernels/cpu/optim.h) against naive scalar loops written straight
// from PyTorch's op sequence, at awkward sizes (0, 1, 17, 4099, and one above the parallel
// grain), on multi-tensor lists, under every ISA this CPU runs, and on 1 vs several threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/optim.h"

namespace {

using dc::DType;
using dc::cpu::OptimTensor;

const std::vector<int64_t> kSizes = {0, 1, 17, 4099, 70001};

template <typename T>
std::vector<T> randn(int64_t n, uint32_t seed, double scale = 1.0, double shift = 0.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(shift + scale * dist(rng));
  return v;
}

// One parameter with its gradient and three state buffers.
template <typename T>
struct Buffers {
  std::vector<T> p, g, s0, s1, s2;
  Buffers(int64_t n, uint32_t seed)
      : p(randn<T>(n, seed)), g(randn<T>(n, seed + 1)), s0(randn<T>(n, seed + 2, 0.1, 0.0)),
        s1(randn<T>(n, seed + 3, 0.1, 0.0)), s2(randn<T>(n, seed + 4, 0.1, 0.0)) {
    for (auto& x : s0) x = x * x + T(0.05);  // square averages stay above grad_avg^2
    for (auto& x : s1) x = x * x;  // second moments are non-negative
    for (auto& x : s2) x = x * x;
  }
  OptimTensor view(double step = 0, bool init = false) {
    OptimTensor t;
    t.param = p.data();
    t.grad = g.data();
    t.state[0] = s0.data();
    t.state[1] = s1.data();
    t.state[2] = s2.data();
    t.numel = static_cast<int64_t>(p.size());
    t.step = step;
    t.init_buffer = init;
    return t;
  }
};

// Naive references: PyTorch's single-tensor updates, one op at a time, in double. The
// kernels round in T, so they are compared with a tolerance relative to T's epsilon.
template <typename T>
void sgd_ref(const dc::cpu::SgdHyper& h, Buffers<double>& b, bool init) {
  for (size_t i = 0; i < b.p.size(); ++i) {
    double d = h.maximize ? -b.g[i] : b.g[i];
    if (h.weight_decay != 0) d += h.weight_decay * b.p[i];
    if (h.momentum != 0) {
      b.s0[i] = init ? d : b.s0[i] * h.momentum + (1 - h.dampening) * d;
      d = h.nesterov ? d + h.momentum * b.s0[i] : b.s0[i];
    }
    b.p[i] -= h.lr * d;
  }
}

void adam_ref(const dc::cpu::AdamHyper& h, Buffers<double>& b, double step) {
  const double bc1 = 1 - std::pow(h.beta1, step), bc2 = 1 - std::pow(h.beta2, step);
  for (size_t i = 0; i < b.p.size(); ++i) {
    double d = h.maximize ? -b.g[i] : b.g[i];
    if (h.weight_decay != 0) {
      if (h.decoupled) b.p[i] *= 1 - h.lr * h.weight_decay;
      else d += h.weight_decay * b.p[i];
    }
    b.s0[i] += (1 - h.beta1) * (d - b.s0[i]);
    b.s1[i] = h.beta2 * b.s1[i] + (1 - h.beta2) * d * d;
    double v = b.s1[i];
    if (h.amsgrad) v = b.s2[i] = std::max(b.s2[i], v);
    b.p[i] -= h.lr / bc1 * b.s0[i] / (std::sqrt(v) / std::sqrt(bc2) + h.eps);
  }
}

void rmsprop_ref(const dc::cpu::RmspropHyper& h, Buffers<double>& b) {
  for (size_t i = 0; i < b.p.size(); ++i) {
    double d = h.maximize ? -b.g[i] : b.g[i];
    if (h.weight_decay != 0) d += h.weight_decay * b.p[i];
    b.s0[i] = h.alpha * b.s0[i] + (1 - h.alpha) * d * d;
    double avg;
    if (h.centered) {
      b.s1[i] += (1 - h.alpha) * (d - b.s1[i]);
      avg = std::sqrt(b.s0[i] - b.s1[i] * b.s1[i]);
    } else {
      avg = std::sqrt(b.s0[i]);
    }
    avg += h.eps;
    if (h.momentum > 0) {
      b.s2[i] = h.momentum * b.s2[i] + d / avg;
      b.p[i] -= h.lr * b.s2[i];
    } else {
      b.p[i] -= h.lr * d / avg;
    }
  }
}

void adagrad_ref(const dc::cpu::AdagradHyper& h, Buffers<double>& b, double step) {
  const double clr = h.lr / (1 + (step - 1) * h.lr_decay);
  for (size_t i = 0; i < b.p.size(); ++i) {
    double d = h.maximize ? -b.g[i] : b.g[i];
    if (h.weight_decay != 0) d += h.weight_decay * b.p[i];
    b.s0[i] += d * d;
    b.p[i] -= clr * d / (std::sqrt(b.s0[i]) + h.eps);
  }
}

template <typename T>
Buffers<double> widen(const Buffers<T>& b) {
  Buffers<double> w(0, 0);
  w.p.assign(b.p.begin(), b.p.end());
  w.g.assign(b.g.begin(), b.g.end());
  w.s0.assign(b.s0.begin(), b.s0.end());
  w.s1.assign(b.s1.begin(), b.s1.end());
  w.s2.assign(b.s2.begin(), b.s2.end());
  return w;
}

template <typename T>
void expect_close(const std::vector<T>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << what << " at " << i;
  }
}

template <typename T>
void expect_all_close(const Buffers<T>& got, const Buffers<double>& want) {
  expect_close(got.p, want.p, "param");
  expect_close(got.s0, want.s0, "state0");
  expect_close(got.s1, want.s1, "state1");
  expect_close(got.s2, want.s2, "state2");
}

constexpr DType dtype_of(float) { return DType::Float32; }
constexpr DType dtype_of(double) { return DType::Float64; }

// Runs `update` on every size as one multi-tensor list and compares each tensor with `ref`.
template <typename T, typename Update, typename Ref>
void check_multi(Update update, Ref ref, double step = 1, bool init = false) {
  std::vector<Buffers<T>> bufs;
  std::vector<Buffers<double>> want;
  for (size_t k = 0; k < kSizes.size(); ++k) {
    bufs.emplace_back(kSizes[k], static_cast<uint32_t>(10 * k + 1));
    want.push_back(widen(bufs.back()));
  }
  std::vector<OptimTensor> ts;
  for (auto& b : bufs) ts.push_back(b.view(step, init));
  update(dtype_of(T()), ts);
  for (size_t k = 0; k < bufs.size(); ++k) {
    ref(want[k]);
    SCOPED_TRACE(::testing::Message() << "size " << kSizes[k]);
    expect_all_close(bufs[k], want[k]);
  }
}

std::vector<dc::cpu::Isa> runnable_isas() {
  std::vector<dc::cpu::Isa> out;
  for (auto isa : {dc::cpu::Isa::generic, dc::cpu::Isa::avx2, dc::cpu::Isa::avx512})
    if (static_cast<int>(isa) <= static_cast<int>(dc::cpu::detected_isa())) out.push_back(isa);
  return out;
}

struct IsaGuard {
  dc::cpu::Isa prev = dc::cpu::active_isa();
  ~IsaGuard() { dc::cpu::set_active_isa(prev); }
};

template <typename T>
void check_all_optimizers() {
  for (bool wd : {false, true})
    for (double mom : {0.0, 0.9})
      for (bool nesterov : {false, true})
        for (bool init : {false, true}) {
          if (nesterov && mom == 0) continue;
          dc::cpu::SgdHyper h{0.05, mom, nesterov ? 0.0 : 0.2, wd ? 0.01 : 0.0, nesterov, wd};
          check_multi<T>([&](DType dt, auto& ts) { dc::cpu::sgd_update(dt, h, ts); },
                         [&](auto& b) { sgd_ref<T>(h, b, init); }, 1, init);
        }
  for (bool amsgrad : {false, true})
    for (int wd_mode : {0, 1, 2})
      for (double beta1 : {0.9, 0.3}) {
        dc::cpu::AdamHyper h{1e-2, beta1, 0.999, 1e-8, wd_mode ? 0.1 : 0.0, amsgrad,
                             wd_mode == 1, wd_mode == 2};
        check_multi<T>([&](DType dt, auto& ts) { dc::cpu::adam_update(dt, h, ts); },
                       [&](auto& b) { adam_ref(h, b, 3); }, 3);
      }
  for (bool centered : {false, true})
    for (double mom : {0.0, 0.5})
      for (bool wd : {false, true}) {
        dc::cpu::RmspropHyper h{1e-2, 0.99, 1e-8, wd ? 0.05 : 0.0, mom, centered, mom > 0};
        check_multi<T>([&](DType dt, auto& ts) { dc::cpu::rmsprop_update(dt, h, ts); },
                       [&](auto& b) { rmsprop_ref(h, b); });
      }
  for (bool wd : {false, true}) {
    dc::cpu::AdagradHyper h{0.1, 0.01, 1e-10, wd ? 0.05 : 0.0, wd};
    check_multi<T>([&](DType dt, auto& ts) { dc::cpu::adagrad_update(dt, h, ts); },
                   [&](auto& b) { adagrad_ref(h, b, 4); }, 4);
  }
}

TEST(OptimKernels, MatchNaiveLoopsFloat32EveryIsa) {
  IsaGuard guard;
  for (auto isa : runnable_isas()) {
    SCOPED_TRACE(dc::cpu::isa_name(isa));
    dc::cpu::set_active_isa(isa);
    check_all_optimizers<float>();
  }
}

TEST(OptimKernels, MatchNaiveLoopsFloat64EveryIsa) {
  IsaGuard guard;
  for (auto isa : runnable_isas()) {
    SCOPED_TRACE(dc::cpu::isa_name(isa));
    dc::cpu::set_active_isa(isa);
    check_all_optimizers<double>();
  }
}

TEST(OptimKernels, ThreadCountDoesNotChangeResults) {
  const int before = dc::get_num_threads();
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 4}) {
    dc::set_num_threads(threads);
    std::vector<Buffers<float>> bufs;
    for (int64_t n : {int64_t{100003}, int64_t{17}, int64_t{65536}}) bufs.emplace_back(n, 7);
    std::vector<OptimTensor> ts;
    for (auto& b : bufs) ts.push_back(b.view(5));
    dc::cpu::AdamHyper h{1e-3, 0.9, 0.999, 1e-8, 0.01, true, false, true};
    dc::cpu::adam_update(DType::Float32, h, ts);
    std::vector<float> all;
    for (auto& b : bufs) all.insert(all.end(), b.p.begin(), b.p.end());
    results.push_back(all);
  }
  dc::set_num_threads(before);
  for (size_t r = 1; r < results.size(); ++r) {
    ASSERT_EQ(results[r].size(), results[0].size());
    for (size_t i = 0; i < results[0].size(); ++i)
      ASSERT_EQ(results[r][i], results[0][i]) << "element " << i;
  }
}

TEST(OptimKernels, EmptyListAndNaNPropagation) {
  dc::cpu::AdamHyper h{1e-3, 0.9, 0.999, 1e-8, 0.0, true, false, false};
  dc::cpu::adam_update(DType::Float32, h, {});  // nothing to do, nothing breaks
  Buffers<float> b(3, 1);
  b.g[1] = NAN;
  dc::cpu::adam_update(DType::Float32, h, {b.view(1)});
  EXPECT_TRUE(std::isnan(b.p[1]) && std::isnan(b.s2[1]));  // amsgrad's max keeps the NaN
  EXPECT_FALSE(std::isnan(b.p[0]) || std::isnan(b.p[2]));
}

TEST(OptimKernels, RejectsNonFloatDtype) {
  dc::cpu::SgdHyper h{0.1, 0, 0, 0, false, false};
  EXPECT_THROW(dc::cpu::sgd_update(DType::Int32, h, {}), dc::TypeError);
}

}  // namespace
