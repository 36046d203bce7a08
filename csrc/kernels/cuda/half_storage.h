#pragma once
// Note [16-bit floats in the CUDA kernels]
// bfloat16 and float16 tensors are computed on the device as the cpu computes them (Note
// [Reduced-precision compute] in kernels/cpu/loops.cpp): a kernel reads each 16-bit value
// widened to float (exactly), does its arithmetic in float (its accumulations in double where
// the cpu's accumulate in double), and rounds once when it stores, by core/half.h's conversions
// (to nearest, ties to even, NaN kept a NaN). So results agree with the cpu's up to the order of
// sums and nvcc's fused multiply-adds.
//
// A kernel that serves them is templated on its storage type S: float or double (computed in
// themselves), or one of the tags below (computed in float), and reads through load_widened and
// writes through store_rounded, which are plain loads and stores for the C++ types: one kernel
// body for the four floating dtypes. with_storage_type (kernels/cuda/kernels.h) picks S from a
// dtype. This header is plain C++ where nvcc does not compile it: the cpu build checks it
// against core/half.h and an independent decoding, bit for bit (tests/cpp/test_cuda_half.cpp).
#include <cstdint>
#include <type_traits>

#include "core/half.h"
#include "kernels/host_device.h"

namespace dc::cuda_kernels {

// The 16 bits of a bfloat16 or float16 element, laid out as BFloat16 and Half are (a tensor's
// memory read as an array of them).
struct Bf16Bits {
  uint16_t bits;
};
struct F16Bits {
  uint16_t bits;
};
static_assert(sizeof(Bf16Bits) == sizeof(BFloat16) && sizeof(F16Bits) == sizeof(Half),
              "the tags are the storage types' 16 bits");

template <typename S>
inline constexpr bool is_half_storage_v =
    std::is_same_v<S, Bf16Bits> || std::is_same_v<S, F16Bits>;

// The type a kernel computes an S in: float for the 16-bit tags, S itself otherwise.
template <typename S>
using compute_type = std::conditional_t<is_half_storage_v<S>, float, S>;

// A stored value as a compute_type (exact).
DC_HD inline float widen_value(Bf16Bits h) { return bf16_bits_to_float(h.bits); }
DC_HD inline float widen_value(F16Bits h) { return f16_bits_to_float(h.bits); }
template <typename T>
DC_HD inline T widen_value(T x) {
  return x;
}

// A computed value as an S: one rounding for the 16-bit tags (a double argument reaches them
// through float, as the cpu's BFloat16(float) / Half(float) constructors take it).
template <typename S>
DC_HD inline S round_value(compute_type<S> v) {
  if constexpr (std::is_same_v<S, Bf16Bits>) return Bf16Bits{float_to_bf16_bits(v)};
  else if constexpr (std::is_same_v<S, F16Bits>) return F16Bits{float_to_f16_bits(v)};
  else return v;
}

template <typename S>
DC_HD inline compute_type<S> load_widened(const S* p) {
  return widen_value(*p);
}
template <typename S>
DC_HD inline void store_rounded(S* p, compute_type<S> v) {
  *p = round_value<S>(v);
}

// static_cast<To>(x) of the cpu's C++ types, in compute types: x (any storage type) converted to
// To and widened again. Into a 16-bit float it goes through float (BFloat16(float(x))); out of
// one it is its float value.
template <typename To, typename From>
DC_HD inline compute_type<To> convert_value(From x) {
  const compute_type<From> v = widen_value(x);
  if constexpr (is_half_storage_v<To>) return widen_value(round_value<To>(static_cast<float>(v)));
  else return static_cast<To>(v);
}

}  // namespace dc::cuda_kernels
