// Elementwise loops, compiled once per ISA (see Note [Per-ISA kernels]). Each op is a small
// functor; the loop templates give it a contiguous fast path (vectorised by the compiler), a
// broadcast-scalar path, and a generic strided path (Note [Elementwise iteration]).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/elementwise.h"

namespace dc::cpu::DC_ISA_NS {
namespace {

#include "kernels/cpu/vec/scalar_math.h"

template <typename T>
inline T max_nan(T a, T b) { return (a > b || a != a) ? a : b; }
template <typename T>
inline T min_nan(T a, T b) { return (a < b || a != a) ? a : b; }

// ---- loop shapes -------------------------------------------------------------------------

template <typename To, typename Ti, typename F>
void unary_loop(char** data, const int64_t* s, int64_t n, const F& f) {
  if (s[0] == sizeof(To) && s[1] == sizeof(Ti)) {
    To* o = reinterpret_cast<To*>(data[0]);
    const Ti* a = reinterpret_cast<const Ti*>(data[1]);
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
  } else {
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<To*>(data[0] + i * s[0]) =
          f(*reinterpret_cast<const Ti*>(data[1] + i * s[1]));
  }
}

template <typename To, typename T, typename F>
void binary_loop(char** data, const int64_t* s, int64_t n, const F& f) {
  To* o = reinterpret_cast<To*>(data[0]);
  const T* a = reinterpret_cast<const T*>(data[1]);
  const T* b = reinterpret_cast<const T*>(data[2]);
  if (s[0] == sizeof(To)) {
    if (s[1] == sizeof(T) && s[2] == sizeof(T)) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
      return;
    }
    if (s[1] == sizeof(T) && s[2] == 0) {
      const T bv = *b;
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv);
      return;
    }
    if (s[1] == 0 && s[2] == sizeof(T)) {
      const T av = *a;
      for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i)
    *reinterpret_cast<To*>(data[0] + i * s[0]) =
        f(*reinterpret_cast<const T*>(data[1] + i * s[1]),
          *reinterpret_cast<const T*>(data[2] + i * s[2]));
}

// Functor with parameters read once per loop call.
#define DC_UNARY(NAME, ...)                                                     \
  template <typename T>                                                          \
  void NAME##_loop(char** d, const int64_t* s, int64_t n, const double* p) {      \
    unary_loop<T, T>(d, s, n, [=](T x) -> T { __VA_ARGS__; });                          \
  }

// The pointwise ops (ops/pointwise.def): the functor, and its integer instantiation for the
// rows that keep integers (nullptr for the others, which the op layer casts to float first).
#define DC_POINTWISE(name, keeps_int, saves, forward, derivative)  \
  DC_UNARY(name, return forward)                                   \
  template <typename T>                                            \
  LoopFn name##_int_loop() {                                       \
    if constexpr (keeps_int) return name##_loop<T>;                \
    else return nullptr;                                           \
  }
#include "ops/pointwise.def"

// 0.5 x (1 + erf(x / sqrt 2)) written with erfc: for x < -3 the sum 1 + erf cancels and
// loses every digit (1% error in float32 at x = -5); erfc(-x / sqrt 2) keeps them.
DC_UNARY(gelu_erf, return T(0.5) * x * std::erfc(x * T(-0.70710678118654752440)))
DC_UNARY(gelu_tanh, {
  const T inner = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
  return T(0.5) * x * (T(1) + std::tanh(inner));
})
// params: [beta, threshold]
template <typename T>
void softplus_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const T beta = T(p[0]), threshold = T(p[1]);
  unary_loop<T, T>(d, s, n, [=](T x) -> T {
    const T bx = x * beta;
    return bx > threshold ? x : std::log1p(exp_any(bx)) / beta;
  });
}
// params: [negative_slope]
template <typename T>
void leaky_relu_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const T slope = T(p[0]);
  unary_loop<T, T>(d, s, n, [=](T x) -> T { return x > T(0) ? x : x * slope; });
}
// params: [alpha, scale, input_scale]
template <typename T>
void elu_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const T alpha = T(p[0]), scale = T(p[1]), iscale = T(p[2]);
  unary_loop<T, T>(d, s, n, [=](T x) -> T {
    return x > T(0) ? scale * x : scale * alpha * (exp_any(x * iscale) - T(1));
  });
}
// params: [min, max, has_min, has_max]; NaN passes through like PyTorch.
template <typename T>
void clamp_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const bool has_min = p[2] != 0, has_max = p[3] != 0;
  const T lo = has_min ? T(p[0]) : T(0), hi = has_max ? T(p[1]) : T(0);
  if (has_min && has_max)
    // min(max(x, lo), hi): when lo > hi every element becomes hi, like PyTorch.
    unary_loop<T, T>(d, s, n, [=](T x) -> T {
      const T y = x < lo ? lo : x;
      return y > hi ? hi : y;
    });
  else if (has_min)
    unary_loop<T, T>(d, s, n, [=](T x) -> T { return x < lo ? lo : x; });
  else
    unary_loop<T, T>(d, s, n, [=](T x) -> T { return x > hi ? hi : x; });
}
// params: [value]; data[1] is unused.
template <typename T>
void fill_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const T v = static_cast<T>(p[0]);
  if (s[0] == sizeof(T)) {
    T* o = reinterpret_cast<T*>(d[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  } else {
    for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(d[0] + i * s[0]) = v;
  }
}
template <typename T>
void logical_not_loop(char** d, const int64_t* s, int64_t n, const double*) {
  unary_loop<bool, T>(d, s, n, [](T x) -> bool { return !x; });
}

// Integers: only the ops that make sense stay exact in integer arithmetic.
DC_UNARY(int_abs, return x < T(0) ? T(-x) : x)
DC_UNARY(int_relu, return x > T(0) ? x : T(0))
DC_UNARY(identity, return x)

#define DC_BINARY(NAME, ...)                                                    \
  template <typename T>                                                          \
  void NAME##_loop(char** d, const int64_t* s, int64_t n, const double*) {        \
    binary_loop<T, T>(d, s, n, [](T a, T b) -> T { __VA_ARGS__; });                     \
  }

DC_BINARY(add, return a + b)
DC_BINARY(sub, return a - b)
DC_BINARY(mul, return a * b)
DC_BINARY(div, return a / b)
DC_BINARY(float_floor_divide, return std::floor(a / b))
DC_BINARY(float_remainder, {
  const T r = std::fmod(a, b);
  return (r != T(0) && ((r < T(0)) != (b < T(0)))) ? r + b : r;
})
DC_BINARY(float_pow, return std::pow(a, b))
DC_BINARY(maximum, return max_nan(a, b))
DC_BINARY(minimum, return min_nan(a, b))
DC_BINARY(atan2, return std::atan2(a, b))
DC_BINARY(fmod, return std::fmod(a, b))
// relu's gradient: a (the incoming gradient) where b (relu's output) is positive.
DC_BINARY(relu_grad, return b > T(0) ? a : T(0))
// Integer division: the op layer refuses a zero divisor before calling these. A divisor of
// -1 is handled apart: x86 traps (SIGFPE) on INT_MIN / -1 and INT_MIN % -1; the quotient
// wraps to INT_MIN like torch, the remainder is 0.
template <typename T>
inline T wrapping_neg(T a) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(U(0) - static_cast<U>(a));
}
DC_BINARY(int_div, return b == T(-1) ? wrapping_neg(a) : a / b)
DC_BINARY(int_floor_divide, {
  if (b == T(-1)) return wrapping_neg(a);
  const T q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
})
DC_BINARY(int_remainder, {
  if (b == T(-1)) return T(0);
  const T r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
})
DC_BINARY(int_fmod, return b == T(-1) ? T(0) : a % b)
DC_BINARY(int_pow, {
  if (b < 0) return a == 1 ? T(1) : (a == -1 ? ((b & 1) ? T(-1) : T(1)) : T(0));
  T result = 1, base = a;
  for (T e = b; e > 0; e >>= 1) {
    if (e & 1) result *= base;
    base *= base;
  }
  return result;
})
DC_BINARY(int_maximum, return a > b ? a : b)
DC_BINARY(int_minimum, return a < b ? a : b)
DC_BINARY(logical_and, return a && b)
DC_BINARY(logical_or, return a || b)
DC_BINARY(logical_xor, return a != b)
DC_BINARY(bitwise_and, return a & b)
DC_BINARY(bitwise_or, return a | b)
DC_BINARY(bitwise_xor, return a ^ b)

#define DC_COMPARE(NAME, EXPR)                                                   \
  template <typename T>                                                          \
  void NAME##_loop(char** d, const int64_t* s, int64_t n, const double*) {        \
    binary_loop<bool, T>(d, s, n, [](T a, T b) -> bool { return EXPR; });        \
  }
DC_COMPARE(eq, a == b)
DC_COMPARE(ne, a != b)
DC_COMPARE(lt, a < b)
DC_COMPARE(le, a <= b)
DC_COMPARE(gt, a > b)
DC_COMPARE(ge, a >= b)

template <typename To, typename Ti>
void cast_loop(char** d, const int64_t* s, int64_t n, const double*) {
  unary_loop<To, Ti>(d, s, n, [](Ti x) -> To {
    if constexpr (std::is_same_v<To, bool>) return x != Ti(0);
    else return static_cast<To>(x);
  });
}

template <typename T>
void where_loop(char** d, const int64_t* s, int64_t n, const double*) {
  if (s[0] == sizeof(T) && s[1] == 1 && s[2] == sizeof(T) && s[3] == sizeof(T)) {
    T* o = reinterpret_cast<T*>(d[0]);
    const bool* c = reinterpret_cast<const bool*>(d[1]);
    const T* a = reinterpret_cast<const T*>(d[2]);
    const T* b = reinterpret_cast<const T*>(d[3]);
    for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? a[i] : b[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    *reinterpret_cast<T*>(d[0] + i * s[0]) = *reinterpret_cast<const bool*>(d[1] + i * s[1])
                                                  ? *reinterpret_cast<const T*>(d[2] + i * s[2])
                                                  : *reinterpret_cast<const T*>(d[3] + i * s[3]);
}

// params: [alpha]
template <typename T>
void add_scaled_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const T alpha = static_cast<T>(p[0]);
  binary_loop<T, T>(d, s, n, [=](T a, T b) -> T { return a + alpha * b; });
}

constexpr int idx(DType t) { return static_cast<int>(t); }

}  // namespace

void fill_elementwise(ElementwiseTable& t) {
  constexpr int B = idx(DType::Bool), I32 = idx(DType::Int32), I64 = idx(DType::Int64),
                F32 = idx(DType::Float32), F64 = idx(DType::Float64);
  auto U = [&](UnaryOp op) -> LoopFn* { return t.unary[static_cast<int>(op)]; };
  auto Bn = [&](BinaryOp op) -> LoopFn* { return t.binary[static_cast<int>(op)]; };

#define DC_SET_FLOAT_UNARY(name)                     \
  U(UnaryOp::name)[F32] = name##_loop<float>;        \
  U(UnaryOp::name)[F64] = name##_loop<double>;
#define DC_POINTWISE(name, ...)                            \
  DC_SET_FLOAT_UNARY(name)                                 \
  U(UnaryOp::name)[I32] = name##_int_loop<int32_t>();      \
  U(UnaryOp::name)[I64] = name##_int_loop<int64_t>();
#include "ops/pointwise.def"
  DC_UNARY_OTHER_OPS(DC_SET_FLOAT_UNARY)
#undef DC_SET_FLOAT_UNARY
  // Integer kernels of their own, in place of the pointwise rows' functors: abs and relu in
  // integer form (no NaN test), the rounding ops as the identity (std::floor goes through
  // double and would round int64 values beyond 2^53).
  for (int dt : {I32, I64}) {
    const bool i32 = dt == I32;
    U(UnaryOp::abs)[dt] = i32 ? int_abs_loop<int32_t> : int_abs_loop<int64_t>;
    U(UnaryOp::relu)[dt] = i32 ? int_relu_loop<int32_t> : int_relu_loop<int64_t>;
    U(UnaryOp::clamp)[dt] = i32 ? clamp_loop<int32_t> : clamp_loop<int64_t>;
    for (UnaryOp op : {UnaryOp::floor, UnaryOp::ceil, UnaryOp::round, UnaryOp::trunc})
      U(op)[dt] = i32 ? identity_loop<int32_t> : identity_loop<int64_t>;
  }
  U(UnaryOp::fill)[B] = fill_loop<bool>;
  U(UnaryOp::fill)[I32] = fill_loop<int32_t>;
  U(UnaryOp::fill)[I64] = fill_loop<int64_t>;
  U(UnaryOp::abs)[B] = identity_loop<bool>;
  // logical_not writes bool from any input dtype.
  U(UnaryOp::logical_not)[B] = logical_not_loop<bool>;
  U(UnaryOp::logical_not)[I32] = logical_not_loop<int32_t>;
  U(UnaryOp::logical_not)[I64] = logical_not_loop<int64_t>;
  U(UnaryOp::logical_not)[F32] = logical_not_loop<float>;
  U(UnaryOp::logical_not)[F64] = logical_not_loop<double>;

#define DC_SET_ARITH(op, T, dt) Bn(BinaryOp::op)[dt] = op##_loop<T>;
#define DC_SET_ALL_ARITH(T, dt)                                                         \
  DC_SET_ARITH(add, T, dt) DC_SET_ARITH(sub, T, dt) DC_SET_ARITH(mul, T, dt)            \
  DC_SET_ARITH(div, T, dt)
  DC_SET_ALL_ARITH(int32_t, I32)
  DC_SET_ALL_ARITH(int64_t, I64)
  DC_SET_ALL_ARITH(float, F32)
  DC_SET_ALL_ARITH(double, F64)
#undef DC_SET_ALL_ARITH
#undef DC_SET_ARITH
  Bn(BinaryOp::div)[I32] = int_div_loop<int32_t>;  // truncating; safe for INT_MIN / -1
  Bn(BinaryOp::div)[I64] = int_div_loop<int64_t>;
  Bn(BinaryOp::add)[B] = logical_or_loop<bool>;
  Bn(BinaryOp::mul)[B] = logical_and_loop<bool>;
  Bn(BinaryOp::maximum)[B] = logical_or_loop<bool>;
  Bn(BinaryOp::minimum)[B] = logical_and_loop<bool>;
  Bn(BinaryOp::floor_divide)[F32] = float_floor_divide_loop<float>;
  Bn(BinaryOp::floor_divide)[F64] = float_floor_divide_loop<double>;
  Bn(BinaryOp::floor_divide)[I32] = int_floor_divide_loop<int32_t>;
  Bn(BinaryOp::floor_divide)[I64] = int_floor_divide_loop<int64_t>;
  Bn(BinaryOp::remainder)[F32] = float_remainder_loop<float>;
  Bn(BinaryOp::remainder)[F64] = float_remainder_loop<double>;
  Bn(BinaryOp::remainder)[I32] = int_remainder_loop<int32_t>;
  Bn(BinaryOp::remainder)[I64] = int_remainder_loop<int64_t>;
  Bn(BinaryOp::fmod)[F32] = fmod_loop<float>;
  Bn(BinaryOp::fmod)[F64] = fmod_loop<double>;
  Bn(BinaryOp::fmod)[I32] = int_fmod_loop<int32_t>;
  Bn(BinaryOp::fmod)[I64] = int_fmod_loop<int64_t>;
  Bn(BinaryOp::pow)[F32] = float_pow_loop<float>;
  Bn(BinaryOp::pow)[F64] = float_pow_loop<double>;
  Bn(BinaryOp::pow)[I32] = int_pow_loop<int32_t>;
  Bn(BinaryOp::pow)[I64] = int_pow_loop<int64_t>;
  Bn(BinaryOp::maximum)[F32] = maximum_loop<float>;
  Bn(BinaryOp::maximum)[F64] = maximum_loop<double>;
  Bn(BinaryOp::maximum)[I32] = int_maximum_loop<int32_t>;
  Bn(BinaryOp::maximum)[I64] = int_maximum_loop<int64_t>;
  Bn(BinaryOp::minimum)[F32] = minimum_loop<float>;
  Bn(BinaryOp::minimum)[F64] = minimum_loop<double>;
  Bn(BinaryOp::minimum)[I32] = int_minimum_loop<int32_t>;
  Bn(BinaryOp::minimum)[I64] = int_minimum_loop<int64_t>;
  Bn(BinaryOp::relu_grad)[F32] = relu_grad_loop<float>;
  Bn(BinaryOp::relu_grad)[F64] = relu_grad_loop<double>;
  Bn(BinaryOp::atan2)[F32] = atan2_loop<float>;
  Bn(BinaryOp::atan2)[F64] = atan2_loop<double>;
  Bn(BinaryOp::logical_and)[B] = logical_and_loop<bool>;
  Bn(BinaryOp::logical_or)[B] = logical_or_loop<bool>;
  Bn(BinaryOp::logical_xor)[B] = logical_xor_loop<bool>;
  Bn(BinaryOp::bitwise_and)[B] = logical_and_loop<bool>;
  Bn(BinaryOp::bitwise_or)[B] = logical_or_loop<bool>;
  Bn(BinaryOp::bitwise_xor)[B] = logical_xor_loop<bool>;
  Bn(BinaryOp::bitwise_and)[I32] = bitwise_and_loop<int32_t>;
  Bn(BinaryOp::bitwise_or)[I32] = bitwise_or_loop<int32_t>;
  Bn(BinaryOp::bitwise_xor)[I32] = bitwise_xor_loop<int32_t>;
  Bn(BinaryOp::bitwise_and)[I64] = bitwise_and_loop<int64_t>;
  Bn(BinaryOp::bitwise_or)[I64] = bitwise_or_loop<int64_t>;
  Bn(BinaryOp::bitwise_xor)[I64] = bitwise_xor_loop<int64_t>;

#define DC_SET_COMPARE(op)                                                        \
  t.compare[static_cast<int>(CompareOp::op)][B] = op##_loop<bool>;                \
  t.compare[static_cast<int>(CompareOp::op)][I32] = op##_loop<int32_t>;           \
  t.compare[static_cast<int>(CompareOp::op)][I64] = op##_loop<int64_t>;           \
  t.compare[static_cast<int>(CompareOp::op)][F32] = op##_loop<float>;             \
  t.compare[static_cast<int>(CompareOp::op)][F64] = op##_loop<double>;
  DC_COMPARE_OPS(DC_SET_COMPARE)
#undef DC_SET_COMPARE

#define DC_SET_CAST_FROM(To, to_idx)                                                          \
  t.cast[to_idx][B] = cast_loop<To, bool>;                                                     \
  t.cast[to_idx][I32] = cast_loop<To, int32_t>;                                               \
  t.cast[to_idx][I64] = cast_loop<To, int64_t>;                                               \
  t.cast[to_idx][F32] = cast_loop<To, float>;                                                 \
  t.cast[to_idx][F64] = cast_loop<To, double>;                                                \
  t.where[to_idx] = where_loop<To>;
  DC_SET_CAST_FROM(bool, B)
  DC_SET_CAST_FROM(int32_t, I32)
  DC_SET_CAST_FROM(int64_t, I64)
  DC_SET_CAST_FROM(float, F32)
  DC_SET_CAST_FROM(double, F64)
#undef DC_SET_CAST_FROM
  t.add_scaled[I32] = add_scaled_loop<int32_t>;
  t.add_scaled[I64] = add_scaled_loop<int64_t>;
  t.add_scaled[F32] = add_scaled_loop<float>;
  t.add_scaled[F64] = add_scaled_loop<double>;
}

}  // namespace dc::cpu::DC_ISA_NS
