#pragma once
// Element types and PyTorch's type-promotion lattice.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/half.h"

namespace dc {

// Order matters: it is the index into kernel tables.
enum class DType : int8_t { Bool = 0, Int32, Int64, Float32, Float64, BFloat16, Float16, kCount };
constexpr int kNumDTypes = static_cast<int>(DType::kCount);

inline size_t itemsize(DType t) {
  switch (t) {
    case DType::Bool: return 1;
    case DType::Int32: return 4;
    case DType::Int64: return 8;
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::BFloat16: return 2;
    case DType::Float16: return 2;
    default: return 0;
  }
}
inline bool is_floating(DType t) {
  return t == DType::Float32 || t == DType::Float64 || t == DType::BFloat16 ||
         t == DType::Float16;
}
// bfloat16 and float16: stored in 16 bits, computed in float32 (core/half.h).
inline bool is_reduced_float(DType t) { return t == DType::BFloat16 || t == DType::Float16; }
inline bool is_integral(DType t, bool include_bool) {
  return t == DType::Int32 || t == DType::Int64 || (include_bool && t == DType::Bool);
}
const char* dtype_name(DType t);  // "float32"
DType dtype_from_name(const std::string& name);

// promote_types(int32, float32) == float32, like torch.promote_types.
DType promote_types(DType a, DType b);
// The dtype integer inputs get when an op needs floats (div, exp, mean...).
constexpr DType kDefaultFloat = DType::Float32;
inline DType to_float_dtype(DType t) { return is_floating(t) ? t : kDefaultFloat; }

template <typename T> struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = DType::BFloat16; };
template <> struct dtype_of<Half> { static constexpr DType value = DType::Float16; };

}  // namespace dc

// Runs the lambda body with `scalar_t` bound to the C++ type of `dtype`.
#define DC_DISPATCH_CASE(DT, T, ...) \
  case ::dc::DType::DT: {            \
    using scalar_t = T;              \
    return __VA_ARGS__();            \
  }
// The cases of the five dtypes every kernel knows, and the switch around a list of cases.
#define DC_DISPATCH_CASES_BASIC(...)                  \
  DC_DISPATCH_CASE(Bool, bool, __VA_ARGS__)           \
  DC_DISPATCH_CASE(Int32, int32_t, __VA_ARGS__)       \
  DC_DISPATCH_CASE(Int64, int64_t, __VA_ARGS__)       \
  DC_DISPATCH_CASE(Float32, float, __VA_ARGS__)       \
  DC_DISPATCH_CASE(Float64, double, __VA_ARGS__)
#define DC_DISPATCH_SWITCH(dtype, opname, CASES)                                           \
  [&] {                                                                                    \
    switch (dtype) {                                                                       \
      CASES                                                                                \
      default: DC_THROW(TypeError, "[", opname, "] unsupported dtype ", ::dc::dtype_name(dtype)); \
    }                                                                                      \
  }()
#define DC_DISPATCH_ALL(dtype, opname, ...) \
  DC_DISPATCH_SWITCH(dtype, opname, DC_DISPATCH_CASES_BASIC(__VA_ARGS__))
// DC_DISPATCH_ALL plus the 16-bit floats, for kernels that only move or convert values.
#define DC_DISPATCH_ALL_AND_HALF(dtype, opname, ...)                            \
  DC_DISPATCH_SWITCH(dtype, opname,                                             \
                     DC_DISPATCH_CASES_BASIC(__VA_ARGS__)                       \
                     DC_DISPATCH_CASE(BFloat16, ::dc::BFloat16, __VA_ARGS__)    \
                     DC_DISPATCH_CASE(Float16, ::dc::Half, __VA_ARGS__))
#define DC_DISPATCH_FLOAT(dtype, opname, ...)                                              \
  [&] {                                                                                     \
    switch (dtype) {                                                                        \
      DC_DISPATCH_CASE(Float32, float, __VA_ARGS__)                                         \
      DC_DISPATCH_CASE(Float64, double, __VA_ARGS__)                                        \
      default: DC_THROW(TypeError, "[", opname, "] expected a floating-point tensor, got ", \
                        ::dc::dtype_name(dtype));                                           \
    }                                                                                       \
  }()
