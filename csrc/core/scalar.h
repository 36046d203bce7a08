#pragma once
// A Python number crossing into C++: keeps whether it was a bool, an int or a float, because
// type promotion treats the three differently (see result_type in core/type_promotion.h).
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace dc {

class Scalar {
 public:
  enum class Kind : int8_t { Bool, Int, Float };
  Scalar() : Scalar(int64_t(0)) {}
  Scalar(double v) : kind_(Kind::Float), d_(v), i_(static_cast<int64_t>(v)) {}
  Scalar(float v) : Scalar(static_cast<double>(v)) {}
  Scalar(int64_t v) : kind_(Kind::Int), d_(static_cast<double>(v)), i_(v) {}
  Scalar(int v) : Scalar(static_cast<int64_t>(v)) {}
  Scalar(bool v) : kind_(Kind::Bool), d_(v), i_(v) {}

  Kind kind() const { return kind_; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  double to_double() const { return d_; }
  int64_t to_int() const { return i_; }
  template <typename T>
  T to() const {
    if constexpr (std::is_same_v<T, bool>) return d_ != 0.0;
    else if constexpr (std::is_floating_point_v<T>) return static_cast<T>(d_);
    else return kind_ == Kind::Float ? static_cast<T>(d_) : static_cast<T>(i_);
  }
  // The dtype a lone scalar would have as a tensor: bool, int64 or float32 (default float).
  DType natural_dtype() const {
    return kind_ == Kind::Bool ? DType::Bool : kind_ == Kind::Int ? DType::Int64 : kDefaultFloat;
  }

 private:
  Kind kind_;
  double d_;
  int64_t i_;
};

// Note [Scalars out of range]
// A Python number is converted to the dtype it meets. PyTorch raises for a value that does not
// fit where the number is an explicit value (fill_, full, clamp, masked_fill, alpha), yet wraps
// it silently where it is an operand: int32 + 2**32 adds 0, int32 // 2**32 divides by zero and
// int32 < 2**31 is False. deepcore raises in both places: a wrapped operand is a wrong answer.
// Bool takes any value (nonzero is True); inf and nan pass into floating types.
bool scalar_fits(const Scalar& s, DType dtype);
// RuntimeError "[op] value 4294967296 cannot be converted to type int32 without overflow".
void check_scalar_fits(const Scalar& s, DType dtype, const char* op);
std::string scalar_str(const Scalar& s);  // as Python prints it: True, 3, 2.5

}  // namespace dc
