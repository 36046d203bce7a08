// The host-side logic of the CUDA kernels' bfloat16 and float16 paths (Note [16-bit floats in
// the CUDA kernels] in kernels/cuda/half_storage.h), which needs no GPU to be right:
//   - the widening loads and rounding stores against core/half.h and against an independent
//     decoding and round-to-nearest-even, bit for bit, and convert_value against the cpu's
//     static_cast between every pair of dtypes;
//   - the elementwise functors of kernels/cuda/half_ops.h on widened 16-bit operands, rounded
//     once, against the cpu's 16-bit elementwise kernels, bit for bit (NaN as NaN);
//   - the sum's Op run in the reduction kernels' order (warp lanes, shuffle tree, split of K)
//     against cpu::sum_reduce for every pair of input and output dtypes;
//   - batch norm's per-channel maps with norm_batch.cu's block sums against the cpu's mixed
//     batch norm on 16-bit data;
//   - the 16-bit convolution's pass (widened operands, conv.cu's float sums through the
//     implicit-GEMM maps in the tile loop's order, one rounding) against cpu::conv2d_*.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "core/tensor.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/norm_batch.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/conv_plan.h"
#include "kernels/cuda/half_ops.h"
#include "kernels/cuda/half_storage.h"
#include "kernels/cuda/reduce_ops.h"
#include "reduce_emulation.h"

namespace dc::cuda_kernels {
namespace {

// ---- types and values ----------------------------------------------------------------------

// The cpu's C++ type of a storage type.
template <typename S>
struct CpuOf {
  using type = S;
};
template <>
struct CpuOf<Bf16Bits> {
  using type = BFloat16;
};
template <>
struct CpuOf<F16Bits> {
  using type = Half;
};
template <typename S>
using cpu_t = typename CpuOf<S>::type;
template <typename S>
constexpr DType dtype_v = dtype_of<cpu_t<S>>::value;

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_from(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A 16-bit value's own decoding, written from the formats' definitions (not core/half.h's).
double decode(Bf16Bits h) {
  const int sign = h.bits >> 15, e = (h.bits >> 7) & 0xff, m = h.bits & 0x7f;
  const double mag = e == 0xff ? (m ? NAN : INFINITY)
                     : e == 0  ? std::ldexp(m, -133)
                               : std::ldexp(128 + m, e - 134);
  return sign ? -mag : mag;
}
double decode(F16Bits h) {
  const int sign = h.bits >> 15, e = (h.bits >> 10) & 0x1f, m = h.bits & 0x3ff;
  const double mag = e == 0x1f ? (m ? NAN : INFINITY)
                     : e == 0  ? std::ldexp(m, -24)
                               : std::ldexp(1024 + m, e - 25);
  return sign ? -mag : mag;
}

// Signed position of a 16-bit value in value order (-0 and +0 both 0), so that two values are
// n ulps apart when their positions are.
int ulp_position(uint16_t bits) { return bits & 0x8000 ? -(bits & 0x7fff) : bits; }
template <typename S>
bool is_nan16(S h) {
  return widen_value(h) != widen_value(h);
}
// Whether a and b agree: both NaN, or at most `ulps` apart.
template <typename S>
bool close16(S a, S b, int ulps) {
  if (is_nan16(a) || is_nan16(b)) return is_nan16(a) && is_nan16(b);
  return std::abs(ulp_position(a.bits) - ulp_position(b.bits)) <= ulps;
}

// The 16-bit value nearest to f, ties to the even bit pattern, by search over every finite
// non-negative value of the format (and infinity as the value one ulp past the largest, so
// that overflow rounds the IEEE way); NaN is left to the caller.
template <typename S>
class NearestEven {
 public:
  NearestEven() {
    const uint16_t inf = std::is_same_v<S, Bf16Bits> ? 0x7f80 : 0x7c00;
    for (uint16_t b = 0; b < inf; ++b) values_.push_back(decode(S{b}));
    const double top = values_.back(), ulp = top - values_[values_.size() - 2];
    values_.push_back(top + ulp);  // infinity's place
  }
  uint16_t operator()(float f) const {
    const double a = std::fabs(static_cast<double>(f));
    uint16_t r;
    if (a >= values_.back()) {
      r = static_cast<uint16_t>(values_.size() - 1);
    } else {
      const size_t hi = std::upper_bound(values_.begin(), values_.end(), a) - values_.begin();
      const size_t lo = hi - 1;
      const double dlo = a - values_[lo], dhi = values_[hi] - a;
      r = static_cast<uint16_t>(dlo < dhi ? lo : dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi));
    }
    return static_cast<uint16_t>(r | (std::signbit(f) ? 0x8000 : 0));
  }

 private:
  std::vector<double> values_;
};

// Floats that probe the rounding: every tie and its neighbours around a spread of 16-bit
// values, both formats' overflow and subnormal edges, signed zeros, infinities, NaNs, then
// random bit patterns.
std::vector<float> rounding_probes() {
  std::vector<float> v = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 65504.0f, 65520.0f,
                          -65520.0f, 65519.996f, 3.3895314e38f, 3.3961775e38f, 3.40282347e38f,
                          5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f, 6.1035156e-05f,
                          6.0975552e-05f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 256, 1.0f + 1.0f / 2048};
  v.push_back(float_from(0x7f800001u));  // a signalling NaN
  v.push_back(float_from(0xffc12345u));
  for (uint32_t hi = 0; hi < 0x10000u; hi += 37) {
    const uint32_t base = hi << 16;
    for (uint32_t low : {0x7fffu, 0x8000u, 0x8001u, 0x0fffu, 0x1000u, 0x1001u, 0x2000u, 0x3000u})
      v.push_back(float_from(base | low));
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) v.push_back(float_from(rng()));
  return v;
}

// ---- the loads and stores ------------------------------------------------------------------

TEST(CudaHalfStorage, WidenEveryBitPattern) {
  for (uint32_t b = 0; b < 0x10000u; ++b) {
    const uint16_t h = static_cast<uint16_t>(b);
    const float bf = widen_value(Bf16Bits{h}), f16 = widen_value(F16Bits{h});
    ASSERT_EQ(float_bits(bf), float_bits(bf16_bits_to_float(h))) << std::hex << b;
    ASSERT_EQ(float_bits(f16), float_bits(f16_bits_to_float(h))) << std::hex << b;
    // The value the format defines, exactly; a NaN keeps its sign and payload.
    const double want_bf = decode(Bf16Bits{h}), want_f16 = decode(F16Bits{h});
    if (std::isnan(want_bf)) ASSERT_EQ(float_bits(bf), b << 16) << std::hex << b;
    else ASSERT_EQ(static_cast<double>(bf), want_bf) << std::hex << b;
    if (std::isnan(want_f16))
      ASSERT_EQ(float_bits(f16), ((b & 0x8000u) << 16) | 0x7f800000u | ((b & 0x3ffu) << 13))
          << std::hex << b;
    else ASSERT_EQ(static_cast<double>(f16), want_f16) << std::hex << b;
  }
}

TEST(CudaHalfStorage, RoundToNearestEven) {
  const NearestEven<Bf16Bits> bf_ref;
  const NearestEven<F16Bits> f16_ref;
  for (float f : rounding_probes()) {
    const uint16_t bf = round_value<Bf16Bits>(f).bits, f16 = round_value<F16Bits>(f).bits;
    ASSERT_EQ(bf, float_to_bf16_bits(f)) << f;
    ASSERT_EQ(f16, float_to_f16_bits(f)) << f;
    ASSERT_EQ(bf, BFloat16(f).x) << f;
    ASSERT_EQ(f16, Half(f).x) << f;
    if (std::isnan(f)) {  // a quiet NaN of the same sign
      ASSERT_TRUE(is_nan16(Bf16Bits{bf}) && is_nan16(F16Bits{f16})) << std::hex << float_bits(f);
      ASSERT_EQ(bf >> 15, float_bits(f) >> 31);
      ASSERT_EQ(f16 >> 15, float_bits(f) >> 31);
      ASSERT_TRUE((bf & 0x40u) && (f16 & 0x200u)) << std::hex << float_bits(f);
      continue;
    }
    ASSERT_EQ(bf, bf_ref(f)) << std::hex << float_bits(f);
    ASSERT_EQ(f16, f16_ref(f)) << std::hex << float_bits(f);
  }
}

TEST(CudaHalfStorage, PointerHelpersReadTensorMemory) {
  // A tensor's BFloat16 / Half memory read and written through the tags, as the kernels do.
  std::vector<BFloat16> bf(300);
  std::vector<Half> hf(300);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-70000.0f, 70000.0f);
  for (size_t i = 0; i < bf.size(); ++i) bf[i] = BFloat16(u(rng)), hf[i] = Half(u(rng) / 8);
  const auto* bt = reinterpret_cast<const Bf16Bits*>(bf.data());
  const auto* ht = reinterpret_cast<const F16Bits*>(hf.data());
  std::vector<BFloat16> bf_out(bf.size());
  std::vector<Half> hf_out(hf.size());
  for (size_t i = 0; i < bf.size(); ++i) {
    EXPECT_EQ(float_bits(load_widened(bt + i)), float_bits(float(bf[i])));
    EXPECT_EQ(float_bits(load_widened(ht + i)), float_bits(float(hf[i])));
    const float y = load_widened(bt + i) * 1.37f, z = load_widened(ht + i) * 1.37f;
    store_rounded(reinterpret_cast<Bf16Bits*>(bf_out.data()) + i, y);
    store_rounded(reinterpret_cast<F16Bits*>(hf_out.data()) + i, z);
    EXPECT_EQ(bf_out[i].x, BFloat16(y).x);
    EXPECT_EQ(hf_out[i].x, Half(z).x);
  }
  // float and double pass through untouched.
  const double d = 0.1;
  double dd = 0;
  store_rounded(&dd, load_widened(&d));
  EXPECT_EQ(dd, 0.1);
  static_assert(std::is_same_v<compute_type<Bf16Bits>, float> &&
                std::is_same_v<compute_type<F16Bits>, float> &&
                std::is_same_v<compute_type<double>, double> &&
                std::is_same_v<compute_type<int64_t>, int64_t>);
}

TEST(CudaHalfStorage, DoubleReachesSixteenBitsThroughFloat) {
  // 1 + 2^-8 + 2^-40: nearest bfloat16 1 + 2^-7 directly, but float keeps 1 + 2^-8, a tie that
  // goes to 1. The cpu's BFloat16(float(d)) takes the second: so do round_value and fills.
  const double d = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40);
  EXPECT_EQ(round_value<Bf16Bits>(d).bits, 0x3f80u);
  EXPECT_EQ(round_value<Bf16Bits>(d).bits, BFloat16(static_cast<float>(d)).x);
  EXPECT_EQ(convert_value<Bf16Bits>(d), 1.0f);
  const double e = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);  // float16's tie
  EXPECT_EQ(round_value<F16Bits>(e).bits, Half(static_cast<float>(e)).x);
  EXPECT_EQ(round_value<F16Bits>(e).bits, 0x3c00u);
}

// convert_value<To>(x) against static_cast<To>(x) of the cpu's types, for every pair.
template <typename To, typename From>
void check_convert(const std::vector<double>& values) {
  for (double v : values) {
    const cpu_t<From> x = static_cast<cpu_t<From>>(static_cast<float>(v));
    From s;
    std::memcpy(&s, &x, sizeof(s));
    const compute_type<To> got = convert_value<To>(s);
    const cpu_t<To> want = static_cast<cpu_t<To>>(x);
    if constexpr (std::is_same_v<cpu_t<To>, BFloat16> || std::is_same_v<cpu_t<To>, Half>)
      EXPECT_EQ(float_bits(got), float_bits(float(want))) << v;
    else
      EXPECT_EQ(got, want) << v;
  }
}
template <typename From>
void check_convert_from(const std::vector<double>& values) {
  check_convert<bool, From>(values);
  check_convert<int32_t, From>(values);
  check_convert<int64_t, From>(values);
  check_convert<float, From>(values);
  check_convert<double, From>(values);
  check_convert<Bf16Bits, From>(values);
  check_convert<F16Bits, From>(values);
}

TEST(CudaHalfStorage, ConvertValueIsTheCpusCast) {
  // In range of every dtype (an out-of-range float to int cast is undefined in C++).
  const std::vector<double> values = {0, 1, -1, 2.5, -3.75, 100.3, 1000.7, 65504, 1e-7, -0.0,
                                      3.1e4, 0.333};
  check_convert_from<bool>(values);
  check_convert_from<int32_t>(values);
  check_convert_from<int64_t>(values);
  check_convert_from<float>(values);
  check_convert_from<double>(values);
  check_convert_from<Bf16Bits>(values);
  check_convert_from<F16Bits>(values);
}

// ---- elementwise -------------------------------------------------------------------------

// n 16-bit values: mostly moderate magnitudes, with zeros of both signs, infinities, NaN,
// subnormals, the largest finite value and random bit patterns among them.
template <typename S>
std::vector<S> sample16(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-6.0f, 6.0f);
  const bool bf = std::is_same_v<S, Bf16Bits>;
  const std::vector<uint16_t> special = {0x0000, 0x8000, 0x0001, 0x8003,
                                         static_cast<uint16_t>(bf ? 0x7f80 : 0x7c00),
                                         static_cast<uint16_t>(bf ? 0xff80 : 0xfc00),
                                         static_cast<uint16_t>(bf ? 0x7fc0 : 0x7e00),
                                         static_cast<uint16_t>(bf ? 0x7f7f : 0x7bff),
                                         static_cast<uint16_t>(bf ? 0x0080 : 0x0400)};
  std::vector<S> v(static_cast<size_t>(n));
  for (auto& x : v) {
    const uint32_t pick = rng() % 16;
    if (pick == 0) x = S{special[rng() % special.size()]};
    else if (pick == 1) x = S{static_cast<uint16_t>(rng())};
    else x = round_value<S>(u(rng));
  }
  return v;
}

template <typename S>
Tensor tensor16(const std::vector<S>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape, dtype_v<S>);
  std::memcpy(t.data_ptr(), v.data(), v.size() * sizeof(S));
  return t;
}

template <typename S>
std::vector<S> values16(const Tensor& t) {
  std::vector<S> v(static_cast<size_t>(t.numel()));
  std::memcpy(v.data(), t.data_ptr(), v.size() * sizeof(S));
  return v;
}

// Sizes around the cpu's widening chunk (1024), and b broadcast from one element.
struct BinaryCase {
  int64_t n;
  bool b_scalar;
};
const BinaryCase kBinaryCases[] = {{1, false}, {3, false}, {1023, false}, {1025, false},
                                   {2600, false}, {7, true}, {1500, true}};

// The kernel's element: Binary's widened operands through the functor, rounded once.
template <typename S, typename Op>
void check_binary(cpu::BinaryOp op, Op f, uint32_t seed) {
  for (const BinaryCase& c : kBinaryCases) {
    const auto a = sample16<S>(c.n, seed), b = sample16<S>(c.b_scalar ? 1 : c.n, seed + 1);
    Tensor out = Tensor::empty({c.n}, dtype_v<S>);
    cpu::binary_into(op, out, tensor16(a, {c.n}), tensor16(b, {c.b_scalar ? 1 : c.n}));
    const auto cpu = values16<S>(out);
    for (int64_t i = 0; i < c.n; ++i) {
      const S bi = b[c.b_scalar ? 0 : i];
      const S dev = round_value<S>(f(widen_value(a[i]), widen_value(bi)));
      ASSERT_TRUE(close16(dev, cpu[i], 0))
          << cpu::binary_op_name(op) << " n=" << c.n << " i=" << i << std::hex << " a=" << a[i].bits
          << " b=" << bi.bits << " cuda=" << dev.bits << " cpu=" << cpu[i].bits;
    }
  }
}

template <typename S>
void check_all_binary() {
  check_binary<S>(cpu::BinaryOp::add, AddOp{}, 11);
  check_binary<S>(cpu::BinaryOp::sub, SubOp{}, 12);
  check_binary<S>(cpu::BinaryOp::mul, MulOp{}, 13);
  check_binary<S>(cpu::BinaryOp::div, DivOp{}, 14);
  check_binary<S>(cpu::BinaryOp::maximum, MaxOp{}, 15);
  check_binary<S>(cpu::BinaryOp::minimum, MinOp{}, 16);
  check_binary<S>(cpu::BinaryOp::relu_grad, ReluGradOp{}, 17);
}

TEST(CudaHalfElementwise, BinaryOpsMatchCpu) {
  check_all_binary<Bf16Bits>();
  check_all_binary<F16Bits>();
}

template <typename S>
void check_add_scaled() {
  for (double alpha : {0.3, -2.5, 1e-3, 1.0 / 3}) {
    for (const BinaryCase& c : kBinaryCases) {
      const auto a = sample16<S>(c.n, 21), b = sample16<S>(c.b_scalar ? 1 : c.n, 22);
      Tensor out = Tensor::empty({c.n}, dtype_v<S>);
      cpu::add_scaled_into(out, tensor16(a, {c.n}), tensor16(b, {c.b_scalar ? 1 : c.n}), alpha);
      const auto cpu = values16<S>(out);
      const AddScaled<float> f{static_cast<float>(alpha)};  // as cuda_add_scaled_into builds it
      for (int64_t i = 0; i < c.n; ++i) {
        const float av = widen_value(a[i]), bv = widen_value(b[c.b_scalar ? 0 : i]);
        // nvcc contracts a + alpha b into one fma, and the cpu's float32 kernel may (per ISA):
        // near cancellation the two differ by more than an ulp of the result, so either
        // rounding of the float result is the cpu's, exactly.
        const S plain = round_value<S>(f(av, bv));
        const S fused = round_value<S>(std::fma(f.alpha, bv, av));
        ASSERT_TRUE(close16(plain, cpu[i], 0) || close16(fused, cpu[i], 0))
            << "alpha " << alpha << " i=" << i << std::hex << " a=" << a[i].bits
            << " b=" << b[c.b_scalar ? 0 : i].bits << " cpu=" << cpu[i].bits;
      }
    }
  }
}

TEST(CudaHalfElementwise, AddScaledMatchesCpu) {
  check_add_scaled<Bf16Bits>();
  check_add_scaled<F16Bits>();
}

template <typename S, int Cmp>
void check_compare(cpu::CompareOp op) {
  for (const BinaryCase& c : kBinaryCases) {
    auto a = sample16<S>(c.n, 31);
    const auto b = sample16<S>(c.b_scalar ? 1 : c.n, 32);
    for (int64_t i = 0; i < c.n; i += 3) a[i] = b[c.b_scalar ? 0 : i];  // equal pairs
    Tensor out = Tensor::empty({c.n}, DType::Bool);
    cpu::compare_into(op, out, tensor16(a, {c.n}), tensor16(b, {c.b_scalar ? 1 : c.n}));
    const bool* cpu = out.data<bool>();
    for (int64_t i = 0; i < c.n; ++i)
      ASSERT_EQ(CompareFn<Cmp>{}(widen_value(a[i]), widen_value(b[c.b_scalar ? 0 : i])), cpu[i])
          << "compare " << Cmp << " i=" << i;
  }
}

template <typename S>
void check_all_compare() {
  check_compare<S, 0>(cpu::CompareOp::eq);
  check_compare<S, 1>(cpu::CompareOp::ne);
  check_compare<S, 2>(cpu::CompareOp::lt);
  check_compare<S, 3>(cpu::CompareOp::le);
  check_compare<S, 4>(cpu::CompareOp::gt);
  check_compare<S, 5>(cpu::CompareOp::ge);
}

TEST(CudaHalfElementwise, ComparisonsMatchCpu) {
  check_all_compare<Bf16Bits>();
  check_all_compare<F16Bits>();
}

TEST(CudaHalfElementwise, FillMatchesCpu) {
  for (double v : {0.1, -1e-9, 70000.0, 3.3961775e38, -0.0,
                   1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40),
                   std::numeric_limits<double>::quiet_NaN()}) {
    Tensor bf = Tensor::empty({5}, DType::BFloat16), hf = Tensor::empty({5}, DType::Float16);
    cpu::fill_into(bf, v);
    cpu::fill_into(hf, v);
    // cuda_fill_into's value: through float, then rounded once.
    const Bf16Bits dbf = round_value<Bf16Bits>(static_cast<float>(v));
    const F16Bits dhf = round_value<F16Bits>(static_cast<float>(v));
    for (int i = 0; i < 5; ++i) {
      EXPECT_TRUE(close16(dbf, values16<Bf16Bits>(bf)[i], 0)) << v;
      EXPECT_TRUE(close16(dhf, values16<F16Bits>(hf)[i], 0)) << v;
    }
  }
}

// ---- sum -----------------------------------------------------------------------------------

using cpu::ReduceDims;

// Shapes (outer, K, inner): a thread per row (K < 32), a warp per row, one long row whose K is
// split (and a split whose chunks are not a multiple of 32), columns, and split columns.
const std::vector<ReduceDims> kSumShapes = {{1, 1, 1},   {7, 2, 1},   {3, 37, 1},  {2, 1100, 1},
                                            {1, 5000, 1}, {1, 2113, 1}, {5, 1, 7},  {4, 33, 5},
                                            {2, 600, 3},  {1, 3000, 2}};

int64_t numel(const ReduceDims& d) { return d.outer * d.reduce * d.inner; }

// n inputs of storage type In: bools, integers (some large, to wrap an int32 sum), or floats
// of mixed signs and magnitudes, with infinities and a NaN when `specials`. (An array, not a
// std::vector: bool needs a bool*.)
template <typename In>
std::unique_ptr<In[]> sum_inputs(int64_t n, bool specials, uint32_t seed) {
  std::mt19937 rng(seed);
  std::unique_ptr<In[]> v(new In[static_cast<size_t>(n)]);
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<In, bool>) {
      v[i] = rng() % 2;
    } else if constexpr (std::is_integral_v<In>) {
      const int64_t big = std::is_same_v<In, int64_t> && rng() % 7 == 0 ? int64_t(1) << 40 : 1;
      v[i] = static_cast<In>((static_cast<int64_t>(rng() % 2001) - 1000) * big);
    } else {
      const float f = std::ldexp(static_cast<float>(rng() % 20001) / 10000.0f - 1.0f,
                                 static_cast<int>(rng() % 9) - 4);
      v[i] = round_value<In>(f);
      if (specials && rng() % 500 == 0) {
        const float s[] = {INFINITY, -INFINITY, NAN};
        v[i] = round_value<In>(s[rng() % 3]);
      }
    }
  }
  return v;
}

// How far the device's sum may lie from the cpu's: integers exactly; floats by the two
// orders of adding (the cpu adds float32 lanes for a float32 or 16-bit output), plus one ulp
// of a 16-bit output where the two totals fall on either side of a rounding point.
template <typename Out>
void expect_sum_close(compute_type<Out> dev, compute_type<Out> cpu, double abs_sum,
                      const char* what) {
  if constexpr (std::is_integral_v<compute_type<Out>>) {
    EXPECT_EQ(dev, cpu) << what;
  } else {
    if (std::isnan(cpu) || std::isnan(dev)) {
      EXPECT_TRUE(std::isnan(cpu) && std::isnan(dev)) << what << " cuda " << dev << " cpu " << cpu;
      return;
    }
    if (std::isinf(cpu) || std::isinf(dev)) {
      EXPECT_EQ(dev, cpu) << what;
      return;
    }
    // the cpu's float lanes: 64 elements each before a flush to double (kSumBlock / kSumLanes)
    double tol = (std::is_same_v<Out, double> ? 1e-13 : 64 * std::ldexp(1.0, -24)) * abs_sum;
    if constexpr (is_half_storage_v<Out>) {
      const float mag = std::max(std::fabs(dev), std::fabs(cpu));
      const float next = widen_value(Out{static_cast<uint16_t>(round_value<Out>(mag).bits + 1)});
      tol += next - mag;
    }
    EXPECT_NEAR(dev, cpu, tol) << what;
  }
}

template <typename In, typename Out>
void check_sum_pair() {
  const bool float_out = !std::is_integral_v<compute_type<Out>>;
  uint32_t seed = 100;
  for (const ReduceDims& d : kSumShapes) {
    // A float cast to an integer must stay in range (out of it the C++ cast is undefined).
    const auto x = sum_inputs<In>(numel(d), float_out, ++seed);
    std::vector<Out> dev(static_cast<size_t>(d.outer * d.inner));
    std::vector<cpu_t<Out>> cpu(dev.size());
    emulate_reduce(SumOp<In, Out>{dev.data()}, x.get(), d);
    cpu::sum_reduce(dtype_v<In>, dtype_v<Out>, x.get(), cpu.data(), d);
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t i = 0; i < d.inner; ++i) {
        double abs_sum = 0;
        for (int64_t k = 0; k < d.reduce; ++k)
          abs_sum += std::fabs(static_cast<double>(
              SumOp<In, Out>::summand(x[(o * d.reduce + k) * d.inner + i])));
        const int64_t at = o * d.inner + i;
        cpu_t<Out> c = cpu[at];
        Out cs;
        std::memcpy(&cs, &c, sizeof(cs));
        expect_sum_close<Out>(widen_value(dev[at]), widen_value(cs), abs_sum,
                              (std::string(dtype_name(dtype_v<In>)) + " -> " +
                               dtype_name(dtype_v<Out>) + " shape (" + std::to_string(d.outer) +
                               ", " + std::to_string(d.reduce) + ", " + std::to_string(d.inner) +
                               ") at " + std::to_string(at))
                                  .c_str());
      }
  }
}

template <typename In>
void check_sum_from() {
  check_sum_pair<In, int32_t>();
  check_sum_pair<In, int64_t>();
  check_sum_pair<In, float>();
  check_sum_pair<In, double>();
  check_sum_pair<In, Bf16Bits>();
  check_sum_pair<In, F16Bits>();
}

TEST(CudaHalfSum, EveryDtypePairMatchesCpu) {
  check_sum_from<bool>();
  check_sum_from<int32_t>();
  check_sum_from<int64_t>();
  check_sum_from<float>();
  check_sum_from<double>();
  check_sum_from<Bf16Bits>();
  check_sum_from<F16Bits>();
}

TEST(CudaHalfSum, ElementsTakeTheOutputDtypeFirst) {
  // Like the cpu (and torch): 1.5 in bfloat16 summed into int32 adds 1 a time; 1e-8 in float32
  // summed into float16 adds its float16 value, 0.
  const ReduceDims d{1, 3000, 1};
  const std::vector<Bf16Bits> halves(3000, round_value<Bf16Bits>(1.5f));
  int32_t isum = -1;
  emulate_reduce(SumOp<Bf16Bits, int32_t>{&isum}, halves.data(), d);
  EXPECT_EQ(isum, 3000);
  const std::vector<float> tiny(3000, 1e-8f);
  F16Bits hsum{0xffff};
  emulate_reduce(SumOp<float, F16Bits>{&hsum}, tiny.data(), d);
  EXPECT_EQ(hsum.bits, 0u);
  Half cpu_h;
  cpu::sum_reduce(DType::Float32, DType::Float16, tiny.data(), &cpu_h, d);
  EXPECT_EQ(cpu_h.x, 0u);
}

// ---- batch norm ----------------------------------------------------------------------------

constexpr int kBnThreads = 256;  // norm_batch.cu's kThreads

// norm_batch.cu's block_sum over per-thread partials: each warp's xor butterfly (lane l adds
// lane l ^ o's value, o = 16 .. 1), lane 0's result per warp, the warps added in order.
double block_sum(const std::vector<double>& partial) {
  double total = 0;
  for (int w = 0; w < kBnThreads / 32; ++w) {
    std::array<double, 32> v;
    for (int l = 0; l < 32; ++l) v[l] = partial[w * 32 + l];
    for (int o = 16; o > 0; o /= 2) {
      const std::array<double, 32> before = v;
      for (int l = 0; l < 32; ++l) v[l] = before[l] + before[l ^ o];
    }
    total += v[0];
  }
  return total;
}

// Thread t's partial of f(j) over the channel's elements j = t, t + 256, ... .
template <typename F>
std::vector<double> thread_partials(int64_t count, F&& f) {
  std::vector<double> p(kBnThreads, 0.0);
  for (int t = 0; t < kBnThreads; ++t)
    for (int64_t j = t; j < count; j += kBnThreads) p[t] += f(j);
  return p;
}

struct BnCase {
  int64_t N, C, S;
  bool weight, bias;
};
const BnCase kBnCases[] = {{2, 3, 5, true, true},   {3, 2, 257, true, false},
                           {5, 3, 1, false, true},  {2, 1, 700, true, true},
                           {1, 4, 1, false, false}, {4, 2, 130, true, true}};

template <typename S>
void check_batch_norm(bool training) {
  uint32_t seed = 500;
  for (const BnCase& c : kBnCases) {
    const cpu::BatchNormShape shape{c.N, c.C, c.S};
    const int64_t n = c.N * c.C * c.S, count = c.N * c.S;
    auto at = [&](int64_t j, int64_t ch) { return (j / c.S) * c.C * c.S + ch * c.S + j % c.S; };
    std::mt19937 rng(++seed);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    std::vector<S> x(n), dy(n);
    for (int64_t i = 0; i < n; ++i)
      x[i] = round_value<S>(u(rng) * 3 + 5), dy[i] = round_value<S>(u(rng));  // mean far from 0
    std::vector<float> w(c.C), b(c.C), mean(c.C), rstd(c.C), varb(c.C);
    for (int64_t ch = 0; ch < c.C; ++ch) w[ch] = u(rng), b[ch] = u(rng);
    const float* wp = c.weight ? w.data() : nullptr;
    const float* bp = c.bias ? b.data() : nullptr;
    if (!training)
      for (int64_t ch = 0; ch < c.C; ++ch) mean[ch] = u(rng) + 5, rstd[ch] = 1.0f / (u(rng) + 3);
    // cpu
    std::vector<float> cmean = mean, crstd = rstd, cvarb(c.C);
    std::vector<S> cy(n), cdx(n);
    std::vector<float> cdw(c.C), cdb(c.C);
    cpu::batch_norm_forward(shape, dtype_v<S>, x.data(), wp, bp, 1e-5, training, cmean.data(),
                            crstd.data(), cvarb.data(), cy.data());
    cpu::batch_norm_backward(shape, dtype_v<S>, dy.data(), x.data(), cmean.data(), crstd.data(),
                             wp, training, cdx.data(), cdw.data(), cdb.data());
    // norm_batch.cu's channels, forward then backward
    std::vector<S> y(n), dx(n);
    std::vector<float> dw(c.C), db(c.C);
    for (int64_t ch = 0; ch < c.C; ++ch) {
      double m = mean[ch], r = rstd[ch];
      if (training) {
        m = count > 0 ? block_sum(thread_partials(count, [&](int64_t j) {
                          return static_cast<double>(widen_value(x[at(j, ch)]));
                        })) / static_cast<double>(count)
                      : 0.0;
        const double v = count > 0 ? block_sum(thread_partials(count, [&](int64_t j) {
                                       const double d = widen_value(x[at(j, ch)]) - m;
                                       return d * d;
                                     })) / static_cast<double>(count)
                                   : 0.0;
        r = 1.0 / std::sqrt(v + 1e-5);
        EXPECT_NEAR(static_cast<float>(m), cmean[ch], 1e-6 * std::fabs(cmean[ch]));
        EXPECT_NEAR(static_cast<float>(r), crstd[ch], 1e-6 * crstd[ch]);
        EXPECT_NEAR(static_cast<float>(v), cvarb[ch], 1e-6 * cvarb[ch]);
      }
      const ChannelAffine<float> f = batch_norm_affine(m, r, wp, bp, ch);
      for (int64_t j = 0; j < count; ++j)
        y[at(j, ch)] = round_value<S>(f.apply(widen_value(x[at(j, ch)])));
      // backward, from the statistics the cpu's forward stored (the op hands both the same)
      const double bm = cmean[ch], br = crstd[ch];
      const double sdy = block_sum(thread_partials(
          count, [&](int64_t j) { return static_cast<double>(widen_value(dy[at(j, ch)])); }));
      const double sdyx = block_sum(thread_partials(count, [&](int64_t j) {
                            return static_cast<double>(widen_value(dy[at(j, ch)])) *
                                   (static_cast<double>(widen_value(x[at(j, ch)])) - bm);
                          })) * br;
      dw[ch] = static_cast<float>(sdyx), db[ch] = static_cast<float>(sdy);
      const ChannelGradAffine<float> g =
          batch_norm_grad_affine<float>(bm, br, wp ? wp[ch] : 1.0, sdy, sdyx, count, training);
      for (int64_t j = 0; j < count; ++j)
        dx[at(j, ch)] =
            round_value<S>(g.apply(widen_value(dy[at(j, ch)]), widen_value(x[at(j, ch)])));
      EXPECT_NEAR(dw[ch], cdw[ch], 1e-5 * (1 + std::fabs(cdw[ch])));
      EXPECT_NEAR(db[ch], cdb[ch], 1e-5 * (1 + std::fabs(cdb[ch])));
    }
    // Eval maps the same floats as the cpu: bit for bit. Training's statistics differ in the
    // order of their double sums, which may move y and dx by a rounding.
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(close16(y[i], cy[i], training ? 1 : 0))
          << "forward (" << c.N << ", " << c.C << ", " << c.S << ") at " << i;
      ASSERT_TRUE(close16(dx[i], cdx[i], 1))
          << "backward (" << c.N << ", " << c.C << ", " << c.S << ") at " << i;
    }
  }
}

TEST(CudaHalfBatchNorm, MatchesCpuMixedBatchNorm) {
  for (bool training : {true, false}) {
    check_batch_norm<Bf16Bits>(training);
    check_batch_norm<F16Bits>(training);
  }
}

// ---- convolution ---------------------------------------------------------------------------

cpu::ConvGeom conv_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH,
                        int64_t KW, int64_t s, int64_t p, int64_t dil, int64_t groups) {
  cpu::ConvGeom g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.K = K, g.KH = KH, g.KW = KW;
  g.sh = g.sw = s, g.ph = g.pw = p, g.dh = g.dw = dil, g.groups = groups;
  g.OH = (H + 2 * p - dil * (KH - 1) - 1) / s + 1;
  g.OW = (W + 2 * p - dil * (KW - 1) - 1) / s + 1;
  return g;
}

// One pass as conv.cu runs a 16-bit one: the operands widened (exactly), each output's float
// sum over the reduction in order within each split of the plan (the tile loop adds slice after
// slice), the splits added in order (sum_splits), the bias added at the store, then one
// rounding. Returns the rounded outputs and, per output, the sum of |terms| (the scale of the
// rounding error a reordering may add).
template <typename S, typename Map>
void emulate_pass(const Map& map, int64_t groups, int64_t split_target, const std::vector<S>& a,
                  const std::vector<S>& b, const std::vector<S>* bias, std::vector<S>& out,
                  std::vector<double>& scale) {
  const ConvGemmDims d = map.dims();
  const ConvGemmPlan plan = plan_conv_gemm(d, groups, split_target);
  if (plan.grid_x == 0) return;
  for (int64_t grp = 0; grp < groups; ++grp)
    for (int64_t j = 0; j < d.cols; ++j) {
      const auto column = map.column(grp, j);
      for (int64_t m = 0; m < d.M; ++m) {
        float total = 0;
        double abs_sum = 0;
        for (int64_t sp = 0; sp < plan.splits; ++sp) {
          float acc = 0;
          for (int64_t r = plan.chunk_begin(sp); r < plan.chunk_end(sp, d.R); ++r) {
            const int64_t boff = map.b_offset(column, map.row(grp, r));
            const float av = widen_value(a[map.a_offset(grp, r) + m * map.a_row_stride()]);
            const float bv = boff >= 0 ? widen_value(b[boff]) : 0.0f;
            acc += av * bv;
            abs_sum += std::fabs(static_cast<double>(av) * bv);
          }
          total = sp == 0 ? acc : total + acc;
        }
        if (bias) {
          total += widen_value((*bias)[grp * d.M + m]);
          abs_sum += std::fabs(widen_value((*bias)[grp * d.M + m]));
        }
        const int64_t o = map.out_offset(grp, j) + m * map.out_row_stride();
        out[o] = round_value<S>(total);
        scale[o] = abs_sum;
      }
    }
}

template <typename S>
void expect_conv_close(const std::vector<S>& dev, const std::vector<S>& cpu,
                       const std::vector<double>& scale, const char* pass, int64_t geom) {
  for (size_t i = 0; i < dev.size(); ++i) {
    const float dv = widen_value(dev[i]), cv = widen_value(cpu[i]);
    // one ulp of the result's format where the float sums straddle a rounding point, plus the
    // float32 error of another order of summing (or of the cpu's Winograd transforms)
    const float mag = std::max(std::fabs(dv), std::fabs(cv));
    const float ulp = widen_value(S{static_cast<uint16_t>(round_value<S>(mag).bits + 1)}) - mag;
    ASSERT_NEAR(dv, cv, ulp + 1e-4 * scale[i]) << pass << " geometry " << geom << " at " << i;
  }
}

template <typename S>
void check_conv() {
  const std::vector<cpu::ConvGeom> geoms = {
      conv_geom(2, 3, 5, 7, 4, 1, 1, 1, 0, 1, 1),     // pointwise
      conv_geom(2, 4, 9, 8, 6, 3, 3, 1, 1, 1, 1),     // 3x3 same
      conv_geom(1, 6, 11, 9, 9, 3, 3, 2, 1, 1, 3),    // stride 2, groups 3
      conv_geom(1, 2, 13, 10, 3, 3, 3, 1, 2, 2, 1),   // dilation 2
      conv_geom(2, 3, 20, 20, 4, 3, 3, 1, 1, 1, 1),   // 800 pixels: a split weight gradient
  };
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto random16 = [&](int64_t n) {
    std::vector<S> v(static_cast<size_t>(n));
    for (auto& e : v) e = round_value<S>(u(rng));
    return v;
  };
  for (size_t gi = 0; gi < geoms.size(); ++gi) {
    const cpu::ConvGeom& g = geoms[gi];
    const ConvShape s = conv_shape(g);
    const int64_t xn = g.N * g.C * g.H * g.W, yn = g.N * g.K * g.OH * g.OW, wn = g.K * g.ckk();
    const auto x = random16(xn), w = random16(wn), bias = random16(g.K), gy = random16(yn);
    std::vector<S> dev_y(yn), cpu_y(yn), dev_gx(xn), cpu_gx(xn), dev_gw(wn), cpu_gw(wn);
    std::vector<double> sy(yn), sgx(xn), sgw(wn);
    emulate_pass<S>(ConvForwardMap{s}, g.groups, 0, w, x, &bias, dev_y, sy);
    emulate_pass<S>(ConvGradInputMap{s}, g.groups, 0, w, gy, nullptr, dev_gx, sgx);
    emulate_pass<S>(ConvGradWeightMap{s}, g.groups, kWeightGradTargetBlocks, gy, x, nullptr,
                    dev_gw, sgw);
    cpu::conv2d_forward(g, dtype_v<S>, x.data(), w.data(), bias.data(), cpu_y.data());
    cpu::conv2d_backward_input(g, dtype_v<S>, gy.data(), w.data(), cpu_gx.data());
    cpu::conv2d_backward_weight(g, dtype_v<S>, gy.data(), x.data(), cpu_gw.data());
    expect_conv_close(dev_y, cpu_y, sy, "forward", static_cast<int64_t>(gi));
    expect_conv_close(dev_gx, cpu_gx, sgx, "input gradient", static_cast<int64_t>(gi));
    expect_conv_close(dev_gw, cpu_gw, sgw, "weight gradient", static_cast<int64_t>(gi));
  }
  // The split geometry does split its weight gradient, or the test above would not cover it.
  const ConvGradWeightMap map{conv_shape(geoms.back())};
  EXPECT_GT(plan_conv_gemm(map.dims(), 1, kWeightGradTargetBlocks).splits, 1);
}

TEST(CudaHalfConv, SixteenBitPassesMatchCpu) {
  check_conv<Bf16Bits>();
  check_conv<F16Bits>();
}

}  // namespace
}  // namespace dc::cuda_kernels
