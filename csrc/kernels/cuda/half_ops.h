#pragma once
// The per-element math of the CUDA kernels that serve bfloat16 and float16 besides float32 and
// float64 (Note [16-bit floats in the CUDA kernels] in kernels/cuda/half_storage.h): the binary
// and comparison functors of elementwise.cu, the sum's Op (reduce.cu, run by the segment
// kernels of Note [CUDA reductions and scans]) and batch norm's per-channel maps
// (norm_batch.cu). The functors take compute types (a 16-bit operand arrives widened to float);
// the kernels load and store around them. Plain C++ where nvcc does not compile it: the cpu
// build runs them against the cpu kernels on 16-bit data (tests/cpp/test_cuda_half.cpp).
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/half_storage.h"
#include "kernels/host_device.h"

namespace dc::cuda_kernels {

// ---- elementwise (cpu::binary_into, add_scaled_into, compare_into) -------------------------

struct AddOp {
  template <typename T>
  DC_HD T operator()(T a, T b) const { return a + b; }
};
struct SubOp {
  template <typename T>
  DC_HD T operator()(T a, T b) const { return a - b; }
};
struct MulOp {
  template <typename T>
  DC_HD T operator()(T a, T b) const { return a * b; }
};
struct DivOp {  // floating point only: the integer division has its own rules (int_div)
  template <typename T>
  DC_HD T operator()(T a, T b) const { return a / b; }
};
struct MaxOp {  // NaN wins, as on the cpu
  template <typename T>
  DC_HD T operator()(T a, T b) const { return (a > b || a != a) ? a : b; }
};
struct MinOp {
  template <typename T>
  DC_HD T operator()(T a, T b) const { return (a < b || a != a) ? a : b; }
};
// relu's gradient: a (the incoming gradient) where b (relu's output) is positive.
struct ReluGradOp {
  template <typename T>
  DC_HD T operator()(T a, T b) const { return b > T(0) ? a : T(0); }
};

// a + alpha b, alpha in the compute type (float for the 16-bit floats, as the cpu's float32
// kernel takes it).
template <typename T>
struct AddScaled {
  T alpha;
  DC_HD T operator()(T a, T b) const { return a + alpha * b; }
};

// cpu::CompareOp's order: eq, ne, lt, le, gt, ge.
template <int Cmp>
struct CompareFn {
  template <typename T>
  DC_HD bool operator()(T a, T b) const {
    switch (Cmp) {
      case 0: return a == b;
      case 1: return a != b;
      case 2: return a < b;
      case 3: return a <= b;
      case 4: return a > b;
      default: return a >= b;
    }
  }
};

// ---- sum (cpu::sum_reduce) -----------------------------------------------------------------

// out = the sum over K of x[O, K, I] of storage type In into storage type Out (bool excluded),
// the reduce_ops.h Op interface. As on the cpu (and in PyTorch) each element is first converted
// to the output's dtype, then accumulated: in double for floating outputs (a 16-bit output is
// rounded once, from the double total through float, as the cpu's BFloat16(float) takes it),
// in uint64 for integer ones (wrapping like int64, without UB).
template <typename InT, typename Out>
struct SumOp {
  static constexpr bool kFloatOut = !std::is_integral_v<compute_type<Out>>;
  using In = InT;
  using State = std::conditional_t<kFloatOut, double, uint64_t>;
  Out* out;
  DC_HD static State summand(InT x) {
    if constexpr (kFloatOut) return static_cast<double>(convert_value<Out>(x));
    else return static_cast<uint64_t>(static_cast<int64_t>(convert_value<Out>(x)));
  }
  DC_HD State identity() const { return 0; }
  DC_HD void add(State& s, InT x, int64_t) const { s += summand(x); }
  DC_HD void merge(State& a, const State& b) const { a += b; }
  DC_HD void store(const State& s, int64_t at) const {
    if constexpr (kFloatOut) store_rounded(out + at, static_cast<compute_type<Out>>(s));
    else out[at] = static_cast<Out>(static_cast<int64_t>(s));
  }
};

// ---- batch norm (cpu::batch_norm_forward / backward) ---------------------------------------
// T is the statistics' and parameters' type (float for 16-bit data); the maps are applied to
// widened data in T and rounded once into the data's type, as the cpu's float32 chunks are.

// y = x scale + shift of channel c, from its mean and rstd; w and b may be null (1 and 0).
template <typename T>
struct ChannelAffine {
  T scale, shift;
  DC_HD T apply(T x) const { return x * scale + shift; }
};
template <typename T>
DC_HD inline ChannelAffine<T> batch_norm_affine(double mean, double rstd, const T* w, const T* b,
                                                int64_t c) {
  const double wc = w ? static_cast<double>(w[c]) : 1.0;
  return {static_cast<T>(rstd * wc),
          static_cast<T>((b ? static_cast<double>(b[c]) : 0.0) - mean * rstd * wc)};
}

// dx = dy tw + x tk + tc of channel c, from sdy = sum dy and sdyx = sum dy (x - mean) rstd over
// the channel's count elements. Training: dx = w r (dy - mean(dy) - xhat mean(dy xhat));
// eval: dx = w r dy.
template <typename T>
struct ChannelGradAffine {
  T tw, tk, tc;
  DC_HD T apply(T dy, T x) const { return dy * tw + x * tk + tc; }
};
template <typename T>
DC_HD inline ChannelGradAffine<T> batch_norm_grad_affine(double mean, double rstd, double wc,
                                                         double sdy, double sdyx, int64_t count,
                                                         bool training) {
  const double wr = rstd * wc;
  const double a = training && count > 0 ? sdy / static_cast<double>(count) : 0.0;
  const double k = training && count > 0 ? sdyx / static_cast<double>(count) * rstd : 0.0;
  return {static_cast<T>(wr), static_cast<T>(-wr * k), static_cast<T>(-wr * a + wr * k * mean)};
}

}  // namespace dc::cuda_kernels
