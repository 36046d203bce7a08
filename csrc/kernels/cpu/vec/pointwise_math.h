// The scalar helpers of the pointwise rows (ops/pointwise.def) that are more than one
// expression. Included, like vmath.h, inside the namespace of each includer: the cpu loops of
// every ISA (kernels/cpu/vec/elementwise_kernels.cpp) and the CUDA kernels, where DC_HD makes
// them device functions too. The includer provides vmath.h first.

// Note [float32 through double]
// Where a float32 result would take several roundings (1 / (1 + exp(-x)) takes three, and
// sigmoid must stay within 1 ulp), the float32 overload evaluates in double and rounds once.
// A double lane costs twice a float lane, still far under the memory traffic of a large
// tensor; the float64 overloads evaluate directly.
// The double exponential needs only float's precision here: vm::detail::exp_lo (2^-32), on
// an argument clamped where sigmoid has long saturated (NaN passes the clamp).
template <typename T>
DC_HD inline T sigmoid_any(T x) { return T(1) / (T(1) + vm::exp(-x)); }
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

