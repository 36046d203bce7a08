// Range checks for Python numbers entering a dtype (Note [Scalars out of range] in scalar.h).
#include "core/scalar.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace dc {

bool scalar_fits(const Scalar& s, DType dtype) {
  switch (dtype) {
    case DType::Bool:
    case DType::Float64:
      return true;
    case DType::Float32: {
      // Every int64 rounds to a finite float; a finite double may not.
      const double v = s.to_double();
      return !s.is_float() || !std::isfinite(v) || std::fabs(v) <= std::numeric_limits<float>::max();
    }
    case DType::Int32:
    case DType::Int64: {
      const bool i32 = dtype == DType::Int32;
      if (!s.is_float()) {
        const int64_t v = s.to_int();
        return !i32 || (v >= std::numeric_limits<int32_t>::min() &&
                        v <= std::numeric_limits<int32_t>::max());
      }
      // A float truncates toward zero. int32: trunc(v) in [-2^31, 2^31) means v in
      // (-2^31 - 1, 2^31); int64: v in [-2^63, 2^63), as no double lies in (-2^63 - 1, -2^63).
      const double v = s.to_double();
      if (i32) return v > -2147483649.0 && v < 2147483648.0;
      return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
    }
    default:
      return true;
  }
}

std::string scalar_str(const Scalar& s) {
  if (s.is_bool()) return s.to_int() ? "True" : "False";
  if (s.is_int()) return std::to_string(s.to_int());
  const double v = s.to_double();
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return str(v);
}

void check_scalar_fits(const Scalar& s, DType dtype, const char* op) {
  DC_CHECK(scalar_fits(s, dtype), RuntimeError, "[", op, "] value ", scalar_str(s),
           " cannot be converted to type ", dtype_name(dtype), " without overflow");
}

}  // namespace dc
