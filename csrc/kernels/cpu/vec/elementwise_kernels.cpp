// Elementwise loops, compiled once per ISA (see Note [Per-ISA kernels]). Each op is a small
// functor; the loop templates give it a contiguous fast path (vectorised by the compiler), a
// broadcast-scalar path, and a generic strided path (Note [Elementwise iteration]).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/cpu/elementwise.h"

namespace dc::cpu::DC_ISA_NS {
namespace {

#include "kernels/cpu/vec/vmath.h"

template <typename T>
inline T max_nan(T a, T b) { return (a > b || a != a) ? a : b; }
template <typename T>
inline T min_nan(T a, T b) { return (a < b || a != a) ? a : b; }

// ---- loop shapes -------------------------------------------------------------------------
// Flattened: every call in a loop is inlined into it, the precondition for vectorising it. In
// a file of this size GCC's unit growth limit otherwise keeps the larger functors (lgamma,
// erfinv) out of line, and their loops scalar (10x slower than in a small file).

template <typename To, typename Ti, typename F>
__attribute__((flatten)) void unary_loop(char** data, const int64_t* s, int64_t n, const F& f) {
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
__attribute__((flatten)) void binary_loop(char** data, const int64_t* s, int64_t n, const F& f) {
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

// A functor over x; the op's parameters, if any, come in `p`.
#define DC_UNARY(NAME, ...)                                                     \
  template <typename T>                                                          \
  void NAME##_loop(char** d, const int64_t* s, int64_t n, const double* p) {      \
    unary_loop<T, T>(d, s, n, [=](T x) -> T { __VA_ARGS__; });                          \
  }
// A fused derivative: operands out, g (the incoming gradient), x (the saved tensor).
#define DC_UNARY_BACKWARD(NAME, ...)                                                     \
  template <typename T>                                                                   \
  void NAME##_backward_loop(char** d, const int64_t* s, int64_t n, const double* p) {      \
    binary_loop<T, T>(d, s, n, [=](T g, T x) -> T { __VA_ARGS__; });                      \
  }

// ---- scalar helpers of the pointwise rows -------------------------------------------------

#include "kernels/cpu/vec/pointwise_math.h"

// The pointwise ops (ops/pointwise.def): the functor, its integer instantiation for the rows
// that keep integers (nullptr for the others, which the op layer casts to float first), and
// the fused derivative, where x and y both name the one saved tensor (input or output).
#define DC_POINTWISE(name, keeps_int, saves, forward, derivative, fused)  \
  DC_UNARY(name, return forward)                                          \
  template <typename T>                                                   \
  LoopFn name##_int_loop() {                                              \
    if constexpr (keeps_int) return name##_loop<T>;                       \
    else return nullptr;                                                  \
  }                                                                       \
  DC_UNARY_BACKWARD(name, [[maybe_unused]] const T y = x; (void)g; return fused)
#include "ops/pointwise.def"

// ---- activations with parameters or several forms -----------------------------------------

// Note [GELU accuracy]
// 0.5 x (1 + erf(x / sqrt 2)) cancels for x < -3 (1% error in float32 at x = -5), so both
// dtypes use the tail Phi(-|x|) = 0.5 erfc(|x| / sqrt 2), which moves by x^2 times a relative
// change of x^2 (24 ulp at x = -5 in float32): the argument's rounding must be carried.
// float64: z = -x / sqrt 2 plus its rounding dz, erfc(z + dz) ~ erfc(z) - 2/sqrt(pi) e^(-z^2) dz.
// float32 (forward and fused backward) stays in float lanes, no erfc, no double: twice the
// lanes, 3x faster (4M elements on one AVX-512 thread: 13.3 -> 4.2 ms), for a 4-ulp target
// instead of 2: 2.68 ulp measured by scripts/ulp_table.py, 2.99 over every third float of
// |x| < 20 (the tail's factors and products each round once). GELU sits in every Transformer
// MLP, where its time matters more than its last ulp.
//   |x| < 1: Phi(x) = 0.5 + x c0 + x^3 P(x^2), c0 = 1/sqrt(2 pi) as hi + lo, P of degree 4
//     (fit error 2^-30); by FMA the sum rounds once where it cancels (3x at x = -1).
//   |x| >= 1: Phi(-a) = e^(-a^2/2) R(a). a^2 = h + l exactly (FMA, or Dekker's split), then
//     e^(-h/2 - l/2) = 2^n (1 + m) (Cody-Waite, a degree-6 polynomial, 2^-27.7). R is of
//     degree 14 in a - 3.5, fitted on [1, 7] with mpmath (2^-28 where gelu >= 1e-6; looser
//     below, where the ulp test holds gelu to an absolute 2^-43) and clamped past 7. x R is
//     kept as two floats (mul_err); Phi(a) = 1 - Phi(-a). Past a = 13 the tail is 0: -0 for
//     x < -13, NaN for -inf, as torch has them. Without FMA (generic) 3.26 ulp.
inline double gelu_erf_any(double x) {
  const double c_hi = -0.70710678118654757, c_lo = 4.8336466567264567e-17;  // -1/sqrt(2)
  const double z = x * c_hi;
  const double dz = std::fma(x, c_hi, -z) + x * c_lo;
  return 0.5 * x * (vm::erfc(z) - 1.1283791670955126 * vm::exp(-z * z) * dz);
}
namespace gelu_detail {
using vm::detail::fbits;
using vm::detail::ffrom;
using vm::detail::sel;
// The rounding error of p = a * b, exactly.
inline float mul_err(float a, float b, float p) {
#if defined(__FMA__)
  return __builtin_fmaf(a, b, -p);
#else
  const float ah = ffrom(fbits(a) & 0xfffff000u), al = a - ah;
  const float bh = ffrom(fbits(b) & 0xfffff000u), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}
constexpr float kR[15] = {  // R(a) = e^(a^2/2) Phi(-a) in powers of a - 3.5
    0.106345154f,   -0.0267342441f,  0.00638765283f,   -0.00145914545f, 0.000320151274f,
    -6.77377684e-05f, 1.38576452e-05f, -2.73594401e-06f, 5.27070824e-07f, -1.0412198e-07f,
    1.90242275e-08f, -2.26832308e-09f, 4.14808299e-10f, -1.91606939e-10f, 3.03247566e-11f};
// R(u): the first three steps by Horner's rule (each rounding at R's own scale, where it
// counts), the twelve terms under them by Estrin's scheme, which rounds four times at that
// scale (all Estrin: 3.8 ulp against Horner's 2.68): a dependency chain of 7 multiply-adds
// instead of 14. The loop is latency-bound: its iterations overlap only as far as the
// out-of-order window reaches, and Zen 3's holds about two. Forward, 4M elements under AVX2:
// 6.89 -> 6.12 ms on one thread, 3.67 -> 3.15 on two; the same max ulp over |x| in
// [2^-15, 2^17] (scripts/ulp_exhaustive.py: 3.01 negative, 1.51 positive).
inline float r_poly(float u) {
  const float u2 = u * u, u4 = u2 * u2, u8 = u4 * u4;
  const float b0 = kR[3] + kR[4] * u, b1 = kR[5] + kR[6] * u, b2 = kR[7] + kR[8] * u,
              b3 = kR[9] + kR[10] * u, b4 = kR[11] + kR[12] * u, b5 = kR[13] + kR[14] * u;
  const float d0 = b0 + b1 * u2, d1 = b2 + b3 * u2, d2 = b4 + b5 * u2;
  const float tail = (d0 + d1 * u4) + d2 * u8;
  return kR[0] + u * (kR[1] + u * (kR[2] + u * tail));
}
// The parts of Phi(x), x float: a = |x|, e^(-a^2/2) = s (1 + m) (0 for a > 13), R(a), and
// x^2 P(x^2) (the small-|x| series after its c0 x).
struct GeluParts {
  float a, m, s, R, P;
};
inline GeluParts parts(float x) {
  GeluParts g;
  g.a = vm::detail::fabs_f(x);
  const float ac = sel(g.a > 13.0f, 13.0f, g.a);  // also NaN -> NaN
  const float h = ac * ac, l = mul_err(ac, ac, h), w = -0.5f * h;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = w * 1.44269504f + shifter, fn = t - shifter;
  // ln2 = 0.693145752 (16 bits: fn * it is exact) + 1.42860677e-06; w - fn ln2_hi is exact
  const float r = ((w - fn * 0.693145752f) - fn * 1.42860677e-06f) - 0.5f * l;
  g.m = r + r * r * vm::detail::poly(r, r * r, 0.499999851, 0.166665003, 0.0416698679,
                                     0.00837099552, 0.00137438776);
  g.s = sel(g.a > 13.0f, 0.0f, ffrom((fbits(t) - fbits(shifter) + 127u) << 23));
  g.R = r_poly(sel(ac > 7.0f, 7.0f, sel(ac < 1.0f, 1.0f, ac)) - 3.5f);
  const float z = x * x;
  g.P = z * vm::detail::poly(z, z * z, -0.0664903671, 0.00997335091, -0.00118639809,
                             0.000113557559, -7.68088466e-06);
  return g;
}
constexpr float kC0Hi = 0.398942292f, kC0Lo = -1.13351701e-08f;  // 1 / sqrt(2 pi)
}  // namespace gelu_detail
inline float gelu_erf_any(float x) {
  using gelu_detail::sel;
  const gelu_detail::GeluParts g = gelu_detail::parts(x);
  // |x| < 1: x (0.5 + x c0 + x P), the sum rounded once where it cancels (x near -1)
#if defined(__FMA__)
  const float v = x * g.P;
  const float small = x * (__builtin_fmaf(x, gelu_detail::kC0Hi,
                                          __builtin_fmaf(x, gelu_detail::kC0Lo, v)) + 0.5f);
#else
  const double xd = x;
  const float small = static_cast<float>(
      xd * (0.5 + xd * (double(gelu_detail::kC0Hi) + double(gelu_detail::kC0Lo) + double(g.P))));
#endif
  // x < 0: x R (1 + m) s with x R = xr + xr_lo; x > 0: x (1 - R (1 + m) s)
  const float xr = x * g.R, xr_lo = gelu_detail::mul_err(x, g.R, xr);
  const float neg = (xr + (xr * g.m + xr_lo)) * g.s;
  const float pos = x * (1.0f - (g.R + g.R * g.m) * g.s);
  return sel(g.a < 1.0f, small, sel(x < 0.0f, neg, pos));
}
// The derivative Phi(x) + x phi(x), from the same parts; phi(x) = s (1 + m) / sqrt(2 pi).
inline float gelu_erf_grad(float x) {
  using gelu_detail::sel;
  const gelu_detail::GeluParts g = gelu_detail::parts(x);
  const float small = 0.5f + x * (gelu_detail::kC0Hi + g.P);
  const float e = (1.0f + g.m) * g.s, tail = g.R * e;
  const float cdf = sel(g.a < 1.0f, small, sel(x < 0.0f, tail, 1.0f - tail));
  return cdf + x * (e * gelu_detail::kC0Hi);
}
inline double gelu_erf_grad(double x) {
  const double cdf = 0.5 * vm::erfc(x * -0.70710678118654752440);
  return cdf + x * (vm::exp(-0.5 * x * x) * 0.39894228040143267794);
}
template <typename T>
inline T gelu_tanh_any(T x) {
  const T u = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
  return x / (T(1) + vm::exp(T(-2) * u));
}
inline float gelu_tanh_any(float x) { return static_cast<float>(gelu_tanh_any<double>(x)); }

DC_UNARY(gelu_erf, return gelu_erf_any(x))
DC_UNARY(gelu_tanh, return gelu_tanh_any(x))
DC_UNARY_BACKWARD(gelu_erf, return g * gelu_erf_grad(x))
DC_UNARY_BACKWARD(gelu_tanh, {
  const T k = T(0.79788456080286535588), c = T(0.044715);
  const T x2 = x * x;
  const T t = vm::tanh(k * (x + c * x2 * x));
  return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * k * (T(1) + T(3) * c * x2));
})
// params: [beta, threshold]
DC_UNARY(softplus, {
  const T beta = T(p[0]), bx = x * beta;
  return vm::select(bx > T(p[1]), x, vm::log1p(vm::exp(bx)) / beta);
})
DC_UNARY_BACKWARD(softplus, {
  const T bx = x * T(p[0]);
  return vm::select(bx > T(p[1]), g, g * sigmoid_any(bx));
})
// params: [negative_slope]
DC_UNARY(leaky_relu, return vm::select(x > T(0), x, x * T(p[0])))
DC_UNARY_BACKWARD(leaky_relu, return vm::select(x > T(0), g, g * T(p[0])))
// params: [alpha, scale, input_scale]; expm1 keeps the digits of small negative x.
DC_UNARY(elu, return vm::select(x > T(0), T(p[1]) * x, T(p[1] * p[0]) * vm::expm1(x * T(p[2]))))
DC_UNARY_BACKWARD(elu, return vm::select(x > T(0), g * T(p[1]),
                                          g * T(p[1] * p[0] * p[2]) * vm::exp(x * T(p[2]))))
// params: [n]
// ---- functions whose fast path has a limited range ---------------------------------------

// The loops vectorise only with the whole function inside them; GCC's size heuristics would
// keep a function called from several kernels out of line.
#define DC_FORCE_INLINE __attribute__((always_inline)) inline

// Note [Slow elements]
// vm::sin, cos and tan reduce their argument exactly only below 2^28 (float32) / 2^20
// (float64), and vm::polygamma is accurate only above -2 (vmath_trig.h, vmath_special.h).
// Their kernels first test the row for elements outside that range, a vectorised OR over the
// input that costs a small fraction of the function, and run the vector loop when there are
// none; otherwise a loop that sends those elements to the slow, exact form.
struct SinFn {
  template <typename T> DC_FORCE_INLINE static T fast(T x, int) { return vm::sin(x); }
  template <typename T> static T slow(T x, int) { return std::sin(x); }
  template <typename T> DC_FORCE_INLINE static bool needs_slow(T x, int) {
    return vm::sin_needs_slow(x);
  }
};
struct CosFn {
  template <typename T> DC_FORCE_INLINE static T fast(T x, int) { return vm::cos(x); }
  template <typename T> static T slow(T x, int) { return std::cos(x); }
  template <typename T> DC_FORCE_INLINE static bool needs_slow(T x, int) {
    return vm::cos_needs_slow(x);
  }
};
struct TanFn {
  template <typename T> DC_FORCE_INLINE static T fast(T x, int) { return vm::tan(x); }
  template <typename T> static T slow(T x, int) { return std::tan(x); }
  template <typename T> DC_FORCE_INLINE static bool needs_slow(T x, int) {
    return vm::tan_needs_slow(x);
  }
};
// psi^(n)(x) = psi^(n)(x + 1) - (-1)^n n! / x^(n + 1), stepped up into the accurate range.
struct PolygammaFn {  // n >= 1 (polygamma_loop sends n = 0 to digamma)
  template <typename T> DC_FORCE_INLINE static T fast(T x, int n) {
    return static_cast<T>(vm::special_detail::polygamma_impl(n, x));
  }
  template <typename T> static T slow(T x, int n) {
    const double fact = std::tgamma(n + 1.0), sign = n % 2 == 0 ? 1.0 : -1.0;
    double v = x, acc = 0.0;
    for (; v < -1.5; v += 1.0) acc -= sign * fact / std::pow(v, n + 1);
    return static_cast<T>(vm::polygamma(n, v) + acc);
  }
  template <typename T> DC_FORCE_INLINE static bool needs_slow(T x, int n) {
    return vm::polygamma_needs_slow(n, x);
  }
};

// An OR over a uint32, not a bool: GCC vectorises only the former (1 ns -> 0.07 ns/element).
template <typename T, typename Fn>
__attribute__((flatten)) bool any_slow(const char* x, int64_t stride, int64_t n, int k) {
  uint32_t any = 0;
  if (stride == sizeof(T)) {
    const T* a = reinterpret_cast<const T*>(x);
    for (int64_t i = 0; i < n; ++i) any |= static_cast<uint32_t>(Fn::needs_slow(a[i], k));
  } else {
    for (int64_t i = 0; i < n; ++i)
      any |= static_cast<uint32_t>(Fn::needs_slow(*reinterpret_cast<const T*>(x + i * stride), k));
  }
  return any != 0;
}
// out = Fn(x); params: [k] (polygamma's n), or none.
template <typename T, typename Fn>
void guarded_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const int k = p ? static_cast<int>(p[0]) : 0;
  if (!any_slow<T, Fn>(d[1], s[1], n, k))
    unary_loop<T, T>(d, s, n, [k](T x) -> T { return Fn::fast(x, k); });
  else
    unary_loop<T, T>(d, s, n, [k](T x) -> T {
      return Fn::needs_slow(x, k) ? Fn::slow(x, k) : Fn::fast(x, k);
    });
}
#if defined(__FMA__)
// float32 sin and cos in float lanes (Note [Float-lane sine and cosine]), for rows whose
// elements are all below 2^17; other rows take the double evaluation (Wide, guarded itself).
struct SinLanesFn {
  DC_FORCE_INLINE static float fast(float x, int) { return vm::sin_lanes(x); }
  DC_FORCE_INLINE static bool needs_slow(float x, int) { return vm::lanes_need_wide(x); }
};
struct CosLanesFn {
  DC_FORCE_INLINE static float fast(float x, int) { return vm::cos_lanes(x); }
  DC_FORCE_INLINE static bool needs_slow(float x, int) { return vm::lanes_need_wide(x); }
};
template <typename Fn, typename Wide>
void lanes_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  if (any_slow<float, Fn>(d[1], s[1], n, 0)) return guarded_loop<float, Wide>(d, s, n, p);
  unary_loop<float, float>(d, s, n, [](float x) -> float { return Fn::fast(x, 0); });
}
#endif
// params: [n]
// n = 0 is digamma. Otherwise the vector loop evaluates with the constants of its n, computed
// once (polygamma_const); rows with slow elements go through guarded_loop.
template <typename T>
void polygamma_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const int k = static_cast<int>(p[0]);
  if (k == 0) return digamma_loop<T>(d, s, n, p);
  if (any_slow<T, PolygammaFn>(d[1], s[1], n, k)) return guarded_loop<T, PolygammaFn>(d, s, n, p);
  const vm::special_detail::PolygammaConst c = vm::special_detail::polygamma_const(k);
  unary_loop<T, T>(d, s, n, [c](T x) -> T {
    return static_cast<T>(vm::special_detail::polygamma_eval(c, x));
  });
}
// out = sign * g * Fn(x), x saved (operand 2): sin's derivative (cos), cos's (-sin) and
// polygamma's (polygamma of order n + 1, Offset 1).
template <typename T, typename Fn, int Sign, int Offset = 0>
void guarded_backward_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const int k = (p ? static_cast<int>(p[0]) : 0) + Offset;
  if (!any_slow<T, Fn>(d[2], s[2], n, k))
    binary_loop<T, T>(d, s, n, [k](T g, T x) -> T { return T(Sign) * g * Fn::fast(x, k); });
  else
    binary_loop<T, T>(d, s, n, [k](T g, T x) -> T {
      return T(Sign) * g * (Fn::needs_slow(x, k) ? Fn::slow(x, k) : Fn::fast(x, k));
    });
}
#if defined(__FMA__)
template <typename Fn, typename Wide, int Sign>
void lanes_backward_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  if (any_slow<float, Fn>(d[2], s[2], n, 0))
    return guarded_backward_loop<float, Wide, Sign>(d, s, n, p);
  binary_loop<float, float>(d, s, n,
                            [](float g, float x) -> float { return float(Sign) * g * Fn::fast(x, 0); });
}
#endif
// params: [eps, has_eps]. log(z / (1 - z)) near z = 0.5 is small and the quotient's rounding
// would dominate it: float32 carries the quotient's rounding (with FMA) or takes it in double
// (without). The bounds are read once per call,
// so the loop keeps no loads from `p` (which could alias the output).
inline double logit_any(double z) { return vm::log(z / (1.0 - z)); }
#if defined(__FMA__)
// float32 in float lanes with FMA: one quotient r = N / D, carried as r + r_lo (its exact
// remainder over D), and one logarithm of t + t_lo, as log(t) + t_lo / t:
//   z in [1/4, 3/4]: logit = log1p((2z - 1) / (1 - z)); 2z - 1 is exact, t = 1 + r with its
//     rounding in t_lo (log1p's own form), so the result keeps its digits near z = 1/2;
//   z < 1/4: log(z / (1 - z)), with 1 - z as an exact pair (Fast2Sum);
//   z > 3/4: -log((1 - z) / z), 1 - z exact.
// Over every float of [0, 1] against float64: 0.925 ulp (the double evaluation: 0.500). 4M
// elements under AVX2: 12.6 -> 7.5 ms on one thread, 6.5 -> 3.9 on two.
inline float logit_any(float z) {
  using vm::detail::sel;
  const float w = 1.0f - z, w_lo = (1.0f - w) - z;  // exact for |z| <= 1
  const bool mid = (z >= 0.25f) & (z <= 0.75f), high = z > 0.75f;
  const float num = sel(mid, 2.0f * z - 1.0f, sel(high, w, z));
  const float den = sel(high, z, w), den_lo = sel(high, 0.0f, w_lo);
  float r_lo;
  const float r = vm::detail::div_pair_f(num, den, den_lo, r_lo);
  const float t1 = 1.0f + r;
  const float t = sel(mid, t1, r), t_lo = sel(mid, (r - (t1 - 1.0f)) + r_lo, r_lo);
  const float y = vm::log_special(t, 0.0f, vm::detail::log_pair_f(t, t_lo));
  return sel(high, -y, y);
}
#else
inline float logit_any(float z) { return static_cast<float>(logit_any(double(z))); }
#endif
template <typename T>
void logit_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const bool has_eps = p[1] != 0;
  const T lo = has_eps ? T(p[0]) : -T(INFINITY), hi = has_eps ? T(1 - p[0]) : T(INFINITY);
  unary_loop<T, T>(d, s, n, [=](T x) -> T {
    return logit_any(vm::select(x < lo, lo, vm::select(x > hi, hi, x)));
  });
}
template <typename T>
void logit_backward_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const bool has_eps = p[1] != 0;
  const T lo = has_eps ? T(p[0]) : -T(INFINITY), hi = has_eps ? T(1 - p[0]) : T(INFINITY);
  binary_loop<T, T>(d, s, n, [=](T g, T x) -> T {
    return vm::select((x < lo) | (x > hi), T(0), g / (x * (T(1) - x)));
  });
}

// params: [threshold, value]; x <= threshold gives value (NaN stays NaN, as in torch).
DC_UNARY(threshold, return vm::select(x <= T(p[0]), T(p[1]), x))
DC_UNARY_BACKWARD(threshold, return vm::select(x <= T(p[0]), T(0), g))
// params: [lambd]; 0 on [-lambd, lambd].
DC_UNARY(hardshrink, return vm::select((x >= T(-p[0])) & (x <= T(p[0])), T(0), x))
DC_UNARY_BACKWARD(hardshrink, return vm::select((x >= T(-p[0])) & (x <= T(p[0])), T(0), g))
// params: [lambd]; x * 0 in the middle keeps NaN and the sign of zero as torch has them.
DC_UNARY(softshrink, {
  const T l = T(p[0]);
  return vm::select(x > l, x - l, vm::select(x < -l, x + l, x * T(0)));
})
DC_UNARY_BACKWARD(softshrink, return vm::select((x >= T(-p[0])) & (x <= T(p[0])), T(0), g))
// params: [nan, posinf, neginf]; the gradient passes where x is finite.
DC_UNARY(nan_to_num, {
  const T inf = std::numeric_limits<T>::infinity();
  const T r = vm::select(x == inf, T(p[1]), vm::select(x == -inf, T(p[2]), x));
  return vm::select(x != x, T(p[0]), r);
})
DC_UNARY_BACKWARD(nan_to_num,
                  return vm::select(std::fabs(x) < std::numeric_limits<T>::infinity(), g, T(0)))
// params: [min, max, has_min, has_max, open]: g where x lies in the interval, closed for clamp,
// open for hardtanh (torch's rules at the bounds).
template <typename T>
void clamp_backward_loop(char** d, const int64_t* s, int64_t n, const double* p) {
  const T inf = std::numeric_limits<T>::infinity();
  const T lo = p[2] != 0 ? T(p[0]) : -inf, hi = p[3] != 0 ? T(p[1]) : inf;
  if (p[4] != 0)
    binary_loop<T, T>(d, s, n, [=](T g, T x) -> T {
      return vm::select((x > lo) & (x < hi), g, T(0));
    });
  else
    binary_loop<T, T>(d, s, n, [=](T g, T x) -> T {
      return vm::select((x >= lo) & (x <= hi), g, T(0));
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
// A scalar exponent of 2, 3, 1 or -1 is a product or a quotient, as torch computes them.
template <typename T>
void float_pow_loop(char** d, const int64_t* s, int64_t n, const double*) {
  if (s[2] == 0) {
    const T e = *reinterpret_cast<const T*>(d[2]);
    if (e == T(2)) return binary_loop<T, T>(d, s, n, [](T a, T) -> T { return a * a; });
    if (e == T(3)) return binary_loop<T, T>(d, s, n, [](T a, T) -> T { return a * a * a; });
    if (e == T(1)) return binary_loop<T, T>(d, s, n, [](T a, T) -> T { return a; });
    if (e == T(-1)) return binary_loop<T, T>(d, s, n, [](T a, T) -> T { return T(1) / a; });
  }
  binary_loop<T, T>(d, s, n, [](T a, T b) -> T { return vm::pow(a, b); });
}
DC_BINARY(maximum, return max_nan(a, b))
DC_BINARY(minimum, return min_nan(a, b))
DC_BINARY(atan2, return vm::atan2(a, b))
// float32 squares and sums in double, exactly; float64 scales by the larger magnitude. An
// infinite operand gives inf even beside a NaN, as C's hypot.
inline float hypot_any(float a, float b) {
  const double x = a, y = b;
  const float r = static_cast<float>(std::sqrt(x * x + y * y));
  return vm::select((std::fabs(a) == INFINITY) | (std::fabs(b) == INFINITY), INFINITY, r);
}
inline double hypot_any(double a, double b) {
  const double x = std::fabs(a), y = std::fabs(b);
  const double big = x > y ? x : y, small = x > y ? y : x;
  const double q = small / (big == 0.0 ? 1.0 : big);
  const double r = big * std::sqrt(1.0 + q * q);
  return x == INFINITY || y == INFINITY ? INFINITY : (x != x || y != y ? NAN : r);
}
DC_BINARY(hypot, return hypot_any(a, b))
DC_BINARY(copysign, return std::copysign(a, b))
// max + log1p(exp(-|a - b|)); equal infinities give themselves (a - b would be NaN). The two
// terms cancel where the result is near 0 (a ~ 0 > b): float32 adds them in double.
template <typename T>
inline T logaddexp_any(T a, T b) {
  const T r = vm::select(a > b, a, b) + vm::log1p(vm::exp(-std::fabs(a - b)));
  return vm::select((std::fabs(a) == T(INFINITY)) & (a == b), a, r);
}
inline float logaddexp_any(float a, float b) {
  const float r = static_cast<float>(logaddexp_any<double>(a, b));
  return vm::select((std::fabs(a) == INFINITY) & (a == b), a, r);
}
DC_BINARY(logaddexp, return logaddexp_any(a, b))
DC_BINARY(logaddexp2, {
  const T r = vm::select(a > b, a, b) +
              vm::log1p(vm::exp2(-std::fabs(a - b))) * T(1.4426950408889634074);
  return vm::select((std::fabs(a) == T(INFINITY)) & (a == b), a, r);
})
// x log y, 0 where x == 0 unless y is NaN (torch's convention).
DC_BINARY(xlogy, return vm::select((a == T(0)) & (b == b), T(0), a * vm::log(b)))
// One step of the bit pattern: away from zero when b lies beyond a on a's side, else towards
// it; from +-0 the smallest subnormal with b's sign. Integer steps, so the loop vectorises
// where std::nextafter stays a call per element.
template <typename T>
inline T nextafter_any(T a, T b) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U ua, ub;
  std::memcpy(&ua, &a, sizeof(T));
  std::memcpy(&ub, &b, sizeof(T));
  const U sign = U(1) << (sizeof(T) * 8 - 1);
  const U away = ((b > a) == (a > T(0))) ? U(1) : U(0);
  const U stepped = away ? ua + 1 : ua - 1;
  const U tiny = (ub & sign) | U(1);
  const U r = a == T(0) ? tiny : stepped;
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return vm::select((a != a) | (b != b), a + b, vm::select(a == b, b, out));
}
DC_BINARY(nextafter, return nextafter_any(a, b))
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
    // Both values loaded, then a select on the condition read as a byte: GCC 12 vectorises
    // this form under AVX2, not a ternary between two loads or on a bool.
    T* o = reinterpret_cast<T*>(d[0]);
    const unsigned char* c = reinterpret_cast<const unsigned char*>(d[1]);
    const T* a = reinterpret_cast<const T*>(d[2]);
    const T* b = reinterpret_cast<const T*>(d[3]);
    for (int64_t i = 0; i < n; ++i) {
      const T av = a[i], bv = b[i];
      const int ci = c[i];
      o[i] = ci ? av : bv;
    }
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
                F32 = idx(DType::Float32), F64 = idx(DType::Float64),
                BF16 = idx(DType::BFloat16), F16 = idx(DType::Float16);
  auto U = [&](UnaryOp op) -> LoopFn* { return t.unary[static_cast<int>(op)]; };
  auto Bn = [&](BinaryOp op) -> LoopFn* { return t.binary[static_cast<int>(op)]; };

#define DC_SET_FLOAT_UNARY(name)                     \
  U(UnaryOp::name)[F32] = name##_loop<float>;        \
  U(UnaryOp::name)[F64] = name##_loop<double>;
#define DC_SET_BACKWARD(name)                                                   \
  t.unary_backward[static_cast<int>(UnaryOp::name)][F32] = name##_backward_loop<float>;  \
  t.unary_backward[static_cast<int>(UnaryOp::name)][F64] = name##_backward_loop<double>;
#define DC_POINTWISE(name, ...)                            \
  DC_SET_FLOAT_UNARY(name)                                 \
  DC_SET_BACKWARD(name)                                    \
  U(UnaryOp::name)[I32] = name##_int_loop<int32_t>();      \
  U(UnaryOp::name)[I64] = name##_int_loop<int64_t>();
#include "ops/pointwise.def"
  DC_UNARY_OTHER_OPS(DC_SET_FLOAT_UNARY)
  DC_SET_BACKWARD(gelu_erf) DC_SET_BACKWARD(gelu_tanh) DC_SET_BACKWARD(softplus)
  DC_SET_BACKWARD(leaky_relu) DC_SET_BACKWARD(elu) DC_SET_BACKWARD(logit)
  DC_SET_BACKWARD(threshold) DC_SET_BACKWARD(hardshrink) DC_SET_BACKWARD(softshrink)
  DC_SET_BACKWARD(nan_to_num) DC_SET_BACKWARD(clamp)
#undef DC_SET_BACKWARD
#undef DC_SET_FLOAT_UNARY
  // The kernels with slow elements (Note [Slow elements]) replace the plain ones.
  auto Bw = [&](UnaryOp op) -> LoopFn* { return t.unary_backward[static_cast<int>(op)]; };
#if defined(__FMA__)
  U(UnaryOp::sin)[F32] = lanes_loop<SinLanesFn, SinFn>;
  U(UnaryOp::cos)[F32] = lanes_loop<CosLanesFn, CosFn>;
  Bw(UnaryOp::sin)[F32] = lanes_backward_loop<CosLanesFn, CosFn, 1>;
  Bw(UnaryOp::cos)[F32] = lanes_backward_loop<SinLanesFn, SinFn, -1>;
#else
  U(UnaryOp::sin)[F32] = guarded_loop<float, SinFn>;
  U(UnaryOp::cos)[F32] = guarded_loop<float, CosFn>;
  Bw(UnaryOp::sin)[F32] = guarded_backward_loop<float, CosFn, 1>;
  Bw(UnaryOp::cos)[F32] = guarded_backward_loop<float, SinFn, -1>;
#endif
  U(UnaryOp::sin)[F64] = guarded_loop<double, SinFn>;
  U(UnaryOp::cos)[F64] = guarded_loop<double, CosFn>;
  U(UnaryOp::tan)[F32] = guarded_loop<float, TanFn>;
  U(UnaryOp::tan)[F64] = guarded_loop<double, TanFn>;
  Bw(UnaryOp::sin)[F64] = guarded_backward_loop<double, CosFn, 1>;
  Bw(UnaryOp::cos)[F64] = guarded_backward_loop<double, SinFn, -1>;
  Bw(UnaryOp::polygamma)[F32] = guarded_backward_loop<float, PolygammaFn, 1, 1>;
  Bw(UnaryOp::polygamma)[F64] = guarded_backward_loop<double, PolygammaFn, 1, 1>;
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
  U(UnaryOp::fill)[BF16] = fill_loop<BFloat16>;
  U(UnaryOp::fill)[F16] = fill_loop<Half>;
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
#define DC_SET_FLOAT_BINARY(op)                 \
  Bn(BinaryOp::op)[F32] = op##_loop<float>;     \
  Bn(BinaryOp::op)[F64] = op##_loop<double>;
  DC_SET_FLOAT_BINARY(atan2) DC_SET_FLOAT_BINARY(hypot) DC_SET_FLOAT_BINARY(copysign)
  DC_SET_FLOAT_BINARY(logaddexp) DC_SET_FLOAT_BINARY(logaddexp2) DC_SET_FLOAT_BINARY(xlogy)
  DC_SET_FLOAT_BINARY(nextafter)
#undef DC_SET_FLOAT_BINARY
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
  t.cast[to_idx][BF16] = cast_loop<To, BFloat16>;                                             \
  t.cast[to_idx][F16] = cast_loop<To, Half>;                                                  \
  t.where[to_idx] = where_loop<To>;
  DC_SET_CAST_FROM(bool, B)
  DC_SET_CAST_FROM(int32_t, I32)
  DC_SET_CAST_FROM(int64_t, I64)
  DC_SET_CAST_FROM(float, F32)
  DC_SET_CAST_FROM(double, F64)
  DC_SET_CAST_FROM(BFloat16, BF16)
  DC_SET_CAST_FROM(Half, F16)
#undef DC_SET_CAST_FROM
  t.add_scaled[I32] = add_scaled_loop<int32_t>;
  t.add_scaled[I64] = add_scaled_loop<int64_t>;
  t.add_scaled[F32] = add_scaled_loop<float>;
  t.add_scaled[F64] = add_scaled_loop<double>;
}

}  // namespace dc::cpu::DC_ISA_NS
