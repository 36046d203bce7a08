// The fused attention kernels against a naive double-precision loop, for every ISA this CPU
// runs: two query heads sharing one key/value slab (GQA: dk, dv sum over both), lengths that
// are not multiples of the blocks (64 queries x 128 keys), a bool mask read through a
// broadcast stride with a row that sees no key, and is_causal with L > S and L < S; with
// dropout, the mask of the layout in Note [Dropout inside flash attention], drawn here from the
// scalar dc::philox.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/isa.h"

namespace dc::cpu {
namespace {

template <typename T>
Tensor random_tensor(const Shape& shape, uint32_t seed) {
  Tensor t = Tensor::empty(shape, dtype_of<T>::value);
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(nd(gen));
  return t;
}

struct Case {
  int64_t L, S, E, Ev;
  bool causal, mask;
  double dropout_p = 0.0;
};

// The dropout factor of (slab h, query i, key j): 1 / (1 - p) or 0, from the scalar Philox.
double drop_factor(const AttentionGeom& g, int64_t h, int64_t i, int64_t j) {
  if (g.dropout_p == 0.0) return 1.0;
  const uint64_t ctr = g.offset + static_cast<uint64_t>(h * g.L + i) *
                                      attention_dropout_row_counters(g.S) +
                       16 * static_cast<uint64_t>(j / 64) + static_cast<uint64_t>(j % 16);
  const uint32_t word = philox(g.seed, ctr)[(j % 64) / 16];
  const double thr = std::ceil((1.0 - g.dropout_p) * 16777216.0);
  return (word >> 8) < thr ? 1.0 / (1.0 - g.dropout_p) : 0.0;
}

// q[2, L, E] (two heads), k[1, S, E], v[1, S, Ev]; mask[L, S] shared by both heads.
template <typename T>
void check(const Case& c, double tol) {
  const int64_t H = 2;
  Tensor q = random_tensor<T>({H, c.L, c.E}, 1), k = random_tensor<T>({1, c.S, c.E}, 2);
  Tensor v = random_tensor<T>({1, c.S, c.Ev}, 3), dout = random_tensor<T>({H, c.L, c.Ev}, 4);
  Tensor mask;
  std::vector<char> keep(c.L * c.S, 1);
  if (c.mask) {
    mask = Tensor::empty({c.L, c.S}, DType::Bool);
    std::mt19937 gen(5);
    for (int64_t i = 0; i < c.L * c.S; ++i) keep[i] = gen() % 4 != 0;
    for (int64_t j = 0; j < c.S; ++j) keep[(c.L / 2) * c.S + j] = 0;  // a row without keys
    for (int64_t i = 0; i < c.L * c.S; ++i) mask.data<bool>()[i] = keep[i];
  }
  if (c.causal)
    for (int64_t i = 0; i < c.L; ++i)
      for (int64_t j = i + 1; j < c.S; ++j) keep[i * c.S + j] = 0;
  AttentionGeom g;
  g.batch = H, g.kv_batch = 1, g.L = c.L, g.S = c.S, g.E = c.E, g.Ev = c.Ev;
  g.q_off = {0, c.L * c.E}, g.k_off = {0, 0}, g.v_off = {0, 0}, g.m_off = {0, 0};
  g.kv_index = {0, 0};
  g.q_rs = c.E, g.k_rs = c.E, g.v_rs = c.Ev;
  g.m_rs = c.S, g.m_cs = 1;
  g.mask = c.mask ? AttentionMask::keep : AttentionMask::none;
  g.causal = c.causal;
  g.scale = 0.37;
  g.dropout_p = c.dropout_p, g.seed = 0x1234567890abcdefULL, g.offset = 1000;

  // The reference, in double.
  std::vector<double> out(H * c.L * c.Ev, 0), dq(H * c.L * c.E, 0), dk(c.S * c.E, 0),
      dv(c.S * c.Ev, 0);
  const T *qp = q.data<T>(), *kp = k.data<T>(), *vp = v.data<T>(), *gp = dout.data<T>();
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < c.L; ++i) {
      const T* qi = qp + (h * c.L + i) * c.E;
      const T* gi = gp + (h * c.L + i) * c.Ev;
      std::vector<double> p(c.S, 0), dp(c.S, 0);
      double m = -INFINITY, sum = 0, dsum = 0;
      for (int64_t j = 0; j < c.S; ++j) {
        if (!keep[i * c.S + j]) continue;
        double s = 0;
        for (int64_t e = 0; e < c.E; ++e) s += double(qi[e]) * kp[j * c.E + e];
        p[j] = s * g.scale;
        m = std::max(m, p[j]);
      }
      if (m == -INFINITY) continue;  // no key: out, dq stay 0
      for (int64_t j = 0; j < c.S; ++j)
        sum += p[j] = keep[i * c.S + j] ? std::exp(p[j] - m) : 0.0;
      for (int64_t j = 0; j < c.S; ++j) {
        p[j] /= sum;
        const double f = drop_factor(g, h, i, j), pd = p[j] * f;  // dropped after softmax
        for (int64_t e = 0; e < c.Ev; ++e) {
          out[(h * c.L + i) * c.Ev + e] += pd * vp[j * c.Ev + e];
          dv[j * c.Ev + e] += pd * gi[e];
          dp[j] += double(gi[e]) * vp[j * c.Ev + e] * f;
        }
        dsum += p[j] * dp[j];
      }
      for (int64_t j = 0; j < c.S; ++j) {
        const double ds = p[j] * (dp[j] - dsum) * g.scale;
        for (int64_t e = 0; e < c.E; ++e) {
          dq[(h * c.L + i) * c.E + e] += ds * kp[j * c.E + e];
          dk[j * c.E + e] += ds * qi[e];
        }
      }
    }

  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) continue;
    set_active_isa(isa);
    Tensor o = Tensor::empty({H, c.L, c.Ev}, q.dtype()), lse = Tensor::empty({H, c.L}, q.dtype());
    sdpa_flash_forward(g, q, k, v, mask, o, lse);
    Tensor gq = Tensor::empty(q.sizes(), q.dtype()), gk = Tensor::empty(k.sizes(), q.dtype());
    Tensor gv = Tensor::empty(v.sizes(), q.dtype());
    sdpa_flash_backward(g, q, k, v, mask, o, lse, dout, gq, gk, gv);
    Tensor drop = Tensor::empty({H, c.L, c.S}, q.dtype());
    if (c.dropout_p > 0.0) sdpa_dropout_mask(g, drop);
    set_active_isa(detected_isa());
    for (int64_t h = 0; c.dropout_p > 0.0 && h < H; ++h)
      for (int64_t i = 0; i < c.L; ++i)
        for (int64_t j = 0; j < c.S; ++j)
          ASSERT_EQ(drop.data<T>()[(h * c.L + i) * c.S + j], T(drop_factor(g, h, i, j)))
              << "dropout mask at " << h << ", " << i << ", " << j << " under " << isa_name(isa);
    auto expect = [&](const Tensor& got, const std::vector<double>& ref, const char* what) {
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(got.data<T>()[i], ref[i], tol * (1 + std::abs(ref[i])))
            << what << " at " << i << " under " << isa_name(isa) << " L=" << c.L << " S=" << c.S
            << " causal=" << c.causal << " mask=" << c.mask;
    };
    expect(o, out, "out");
    expect(gq, dq, "dq");
    expect(gk, dk, "dk");
    expect(gv, dv, "dv");
  }
}

const Case kCases[] = {{1, 1, 3, 2, false, false},   {7, 130, 5, 3, false, true},
                       {130, 67, 16, 9, true, false}, {65, 200, 8, 8, true, false},
                       {70, 129, 4, 6, false, true},  {129, 129, 33, 17, false, false}};

TEST(Attention, MatchesNaiveFloat64) {
  for (const Case& c : kCases) check<double>(c, 1e-11);
}

TEST(Attention, MatchesNaiveFloat32) {
  for (const Case& c : kCases) check<float>(c, 2e-5 * std::sqrt(double(c.S + c.E)));
}

// Dropout inside the kernel: the kernels' mask is the scalar Philox layout of the Note, for
// every ISA; p = 1 drops everything (out and gradients 0).
const Case kDropoutCases[] = {
    {7, 130, 5, 3, false, true, 0.3},     {130, 67, 16, 9, true, false, 0.5},
    {65, 200, 8, 8, true, false, 0.1},    {129, 129, 33, 17, false, false, 0.7},
    {70, 129, 4, 6, false, true, 1.0}};

TEST(Attention, DropoutMatchesNaiveFloat64) {
  for (const Case& c : kDropoutCases) check<double>(c, 1e-11);
}

TEST(Attention, DropoutMatchesNaiveFloat32) {
  for (const Case& c : kDropoutCases) check<float>(c, 2e-5 * std::sqrt(double(c.S + c.E)));
}

}  // namespace
}  // namespace dc::cpu
