// vm:: special functions: erfinv, lgamma, digamma, polygamma, i0 (see vmath.h).
// PLACEHOLDER BODIES: libm calls or slow series, to be replaced by the vectorisable versions.
namespace vm {
inline float lgamma(float x) { return std::lgamma(x); }
inline double lgamma(double x) { return std::lgamma(x); }
template <typename T>
inline T digamma(T x) {  // placeholder: recurrence + asymptotic series
  if (x == T(0)) return std::signbit(x) ? INFINITY : -INFINITY;
  if (x < T(0) && x == std::floor(x)) return NAN;
  double v = x, acc = 0;
  if (v < 0) { acc -= M_PI / std::tan(M_PI * v); v = 1 - v; }
  while (v < 10) { acc -= 1 / v; v += 1; }
  const double r = 1 / (v * v);
  return T(acc + std::log(v) - 0.5 / v - r * (1.0 / 12 - r * (1.0 / 120 - r / 252)));
}
template <typename T>
inline T erfinv(T y) {  // placeholder: Newton on erf
  if (!(y > T(-1) && y < T(1))) return y == T(1) ? INFINITY : y == T(-1) ? -INFINITY : NAN;
  double x = 0;
  for (int i = 0; i < 60; ++i) x -= (std::erf(x) - y) / (M_2_SQRTPI * std::exp(-x * x));
  return T(x);
}
template <typename T>
inline T i0(T x) {  // placeholder: power series
  double s = 1, t = 1, q = double(x) * x / 4;
  for (int k = 1; k < 500 && t > 1e-17 * s; ++k) { t *= q / (double(k) * k); s += t; }
  return T(s);
}
template <typename T>
inline T polygamma(int n, T x) {  // placeholder: n = 0 is digamma; n >= 1 by Hurwitz zeta
  if (n == 0) return digamma(x);
  double s = 0, v = x;
  for (int k = 0; k < 100000; ++k) s += std::pow(v + k, -(n + 1.0));
  const double f = std::tgamma(n + 1.0);
  return T(((n + 1) % 2 ? -1.0 : 1.0) * -f * s);
}
}  // namespace vm
