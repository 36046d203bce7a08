// The scalar helpers of the pointwise rows (ops/pointwise.def) that are more than one
// expression. Included, like vmath.h, inside the namespace of each includer: the cpu loops of
// every ISA (kernels/cpu/vec/elementwise_kernels.cpp) and the CUDA kernels, where DC_HD makes
// them device functions too. The includer provides vmath.h first.

// Note [float32 through double]
// Where a float32 result would take several roundings (1 / (1 + exp(-x)) takes three, and
// sigmoid must stay within 1 ulp), the float32 overload evaluates in double and rounds once,
// or, for sigmoid and silu with FMA, carries the roundings as float pairs (sigmoid_parts).
// A double lane costs twice a float lane, still far under the memory traffic of a large
// tensor; the float64 overloads evaluate directly.
// The double exponential needs only float's precision here: vm::detail::exp_lo (2^-32), on
// an argument clamped where sigmoid has long saturated (NaN passes the clamp). sigmoid_parts
// takes twice the lanes (under AVX2 the double path ran 1.8x torch's time).
template <typename T>
DC_HD inline T sigmoid_any(T x) { return T(1) / (T(1) + vm::exp(-x)); }
#if defined(__FMA__)
// sigmoid(x) = y + y_lo in float lanes. With e = e^-|x| as a pair e_hi + e_lo
// (vm::detail::exp_parts, no overflow: e <= 1) and 1 + e as s_hi + s_lo (exact), the quotient
// a / s, a = 1 for x >= 0 and e for x < 0 (e / (1 + e), no cancellation), is rounded once, then
// corrected by its remainder a - s y0 (one FMA, exact) times 1 / s_hi. Over every float of
// |x| <= 120: sigmoid within 0.65 ulp (judged, as in the ulp tests, at the ulp of 1e-6 below
// it), 0.79 ulp on all normal results; silu = x y + x y_lo within 0.71 ulp by that measure
// (x < -87, where sigmoid is subnormal, loses bits below 1e-36). NaN stays NaN, sigmoid(-inf)
// is 0, silu(-inf) is -inf * 0 = NaN as in torch and silu(inf) is inf.
DC_HD inline float sigmoid_parts(float x, float& y_lo) {
  using vm::detail::sel;
  uint32_t n;
  float p_lo;
  const float p = vm::detail::exp_parts(-vm::detail::fabs_f(x), n, p_lo);
  const float e_hi = vm::detail::scale2(p, n), e_lo = vm::detail::scale2(p_lo, n);
  const float s_hi = 1.0f + e_hi, s_lo = ((1.0f - s_hi) + e_hi) + e_lo;
  const bool neg = x < 0.0f;
  const float a_hi = sel(neg, e_hi, 1.0f), a_lo = sel(neg, e_lo, 0.0f);
  const float inv = 1.0f / s_hi, y0 = a_hi * inv;
  const float rem = __builtin_fmaf(-s_hi, y0, a_hi) + __builtin_fmaf(-s_lo, y0, a_lo);
  const float d = rem * inv, y = y0 + d;
  y_lo = (y0 - y) + d;
  return y;
}
DC_HD inline float sigmoid_any(float x) {
  float y_lo;
  return sigmoid_parts(x, y_lo);
}
template <typename T>
DC_HD inline T silu_any(T x) { return x * sigmoid_any<T>(x); }
DC_HD inline float silu_any(float x) {
  float y_lo;
  const float y = sigmoid_parts(x, y_lo);
  // x y_lo would be inf * 0 at x = +-inf: there x y (inf, or NaN for -inf).
  return vm::detail::sel(vm::detail::fabs_f(x) == INFINITY, x * y,
                         __builtin_fmaf(x, y, x * y_lo));
}
#else
DC_HD inline double sigmoid_wide(float x) {
  return 1.0 / (1.0 + vm::detail::exp_lo(-vm::detail::clamp(x, -200.0, 200.0)));
}
DC_HD inline float sigmoid_any(float x) { return static_cast<float>(sigmoid_wide(x)); }
template <typename T>
DC_HD inline T silu_any(T x) { return x * sigmoid_any<T>(x); }
// -inf * sigmoid(-inf) is -inf * 0, NaN, as torch has it; the clamp would make it -inf.
DC_HD inline float silu_any(float x) {
  const float r = static_cast<float>(static_cast<double>(x) * sigmoid_wide(x));
  return vm::select(x == -INFINITY, NAN, r);
}
#endif
// x tanh(softplus(x)) from one exponential: with e = exp(x) and n = e (e + 2),
// tanh(log(1 + e)) = n / (n + 2). x itself beyond 20, where tanh(softplus(x)) rounds to 1 (and
// n would overflow). The fused derivative, t + x (1 - t^2) sigmoid(x), reads the same e:
// 1 - t^2 = 4 (n + 1) / (n + 2)^2 and sigmoid(x) = e / (1 + e).
template <typename T>
DC_HD inline T mish_any(T x) {
  const T e = vm::exp(vm::select(x > T(20), T(20), x)), n = e * (e + T(2));
  return vm::select(x > T(20), x, x * n / (n + T(2)));
}
DC_HD inline float mish_any(float x) { return static_cast<float>(mish_any<double>(x)); }
template <typename T>
DC_HD inline T mish_derivative(T x) {
  const T e = vm::exp(vm::select(x > T(20), T(20), x)), n = e * (e + T(2)), d = n + T(2);
  const T t = n / d;
  return vm::select(x > T(20), T(1), t + x * (T(4) * (n + T(1)) / (d * d)) * (e / (T(1) + e)));
}
// min(max(v, 0), 6); NaN passes through both comparisons.
template <typename T>
DC_HD inline T clamp6(T v) {
  v = v < T(0) ? T(0) : v;
  return v > T(6) ? T(6) : v;
}
// x relu6(x + 3) / 6, x itself from 3 on (where x * 6 could overflow): three roundings, within
// 2 ulp.
template <typename T>
DC_HD inline T hardswish_any(T x) { return vm::select(x >= T(3), x, x * clamp6(x + T(3)) / T(6)); }

// x - tanh(x) cancels for small x: float32 evaluates it in double, where the difference keeps
// its digits down to |x| = 1e-4, and x^3 / 3 (relative error below 0.4 x^2) takes over there.
// Adding +0 turns a zero result into +0, as x - tanh(x) gives it.
DC_HD inline float tanhshrink_any(float x) {
  const double d = x;
  const double r = vm::select(std::fabs(d) < 1e-4, d * d * d * (1.0 / 3), d - vm::tanh(d));
  return static_cast<float>(r) + 0.0f;
}
DC_HD inline double tanhshrink_any(double x) { return x - vm::tanh(x); }
// sin(pi x) / (pi x): float32 in double, so that the product pi x adds no rounding.
DC_HD inline float sinc_any(float x) {
  const double d = x;
  return vm::select(x == 0.0f, 1.0f, static_cast<float>(vm::sinpi(d) / (M_PI * d)));
}
DC_HD inline double sinc_any(double x) { return vm::select(x == 0.0, 1.0, vm::sinpi(x) / (M_PI * x)); }

