// vm:: exponential, logarithmic, hyperbolic and error functions (see vmath.h).
//
// Note [Vectorisable transcendental functions]
// Every function here is straight-line code: range reduction, a polynomial, selects for the
// special cases, bit manipulation through memcpy. No calls, no branches, no tables, so that
// `for (i) out[i] = vm::tanh(in[i]);` becomes SIMD code under each ISA's flags. The
// polynomials are Chebyshev fits made for this file (tools: mpmath); the comment over each
// gives the interval and the relative error of the fit.
//
// float32 functions are mostly evaluated in double: a short double polynomial then rounds to
// the nearest float or its neighbour (<= 1 ulp) without the error analysis that float
// arithmetic needs, and float inputs and outputs (subnormals included) are all normal
// doubles, so there is no scaling to do. It costs half the vector width; exp and exp2 stay in
// float (with FMA), where that is already within 1 ulp, and so does most of erfc, its
// roundings carried as float pairs.
//
// Divisions and square roots are slow in SIMD (a double division costs as much as ~10
// fused multiply-adds), so they are used only where a polynomial would be much longer.
//
// Maximum errors, measured by tests/cpp/test_vmath_exp.cpp, are in that test.
namespace vm {
namespace detail {

// 2^n for an integer n in [-1022, 1023], held in two's complement in a uint64.
DC_VM_INLINE double pow2i(uint64_t n) { return dfrom((n + 1023u) << 52); }

constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;
// ln 2 = kLn2Hi + kLn2Lo; kLn2Hi has 21 trailing zero bits, so n * kLn2Hi is exact for
// |n| < 2^21.
constexpr double kLn2Hi = 0.6931471803691238;
constexpr double kLn2Lo = 1.9082149292705877e-10;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr uint64_t kSqrtHalfBits = 0x3fe6a09e667f3bcdull;  // bits of sqrt(1/2)

// The low 27 bits of the significand cleared: the product of two such values is exact.
DC_VM_INLINE double hi26(double x) { return dfrom(dbits(x) & 0xfffffffff8000000ull); }

// Splits x = n ln2 + r + c, |r| <= 0.35, c the rounding error of r (|c| <= ulp(r) / 2);
// returns n as an integer (two's complement) and as a double. Valid for |x| < 1500.
DC_VM_INLINE uint64_t reduce_ln2(double x, double& fn, double& r, double& c) {
  const double t = x * kLog2e + kShift52;
  fn = t - kShift52;
  const double r_hi = x - fn * kLn2Hi;  // exact
  r = r_hi - fn * kLn2Lo;
  c = (r_hi - r) - fn * kLn2Lo;
  return dbits(t) - dbits(kShift52);
}

// e^r - 1 - r = r^2 q(r) on |r| <= 0.35. Fit of q: degree 9, relative error 2^-51.8, which
// is 2^-56 of e^r - 1.
DC_VM_INLINE double expm1_tail(double r) {
  const double r2 = r * r;
  return r2 * poly(r, r2, 0.5000000000000001, 0.16666666666666669, 0.04166666666662064,
                   0.008333333333329793, 0.0013888888918939168, 0.00019841269864380513,
                   2.4801518641395993e-05, 2.75572664186123e-06, 2.7621338669142925e-07,
                   2.510134692835034e-08);
}
// The same to 2^-28 of q (2^-32 of e^r - 1), for the float functions.
DC_VM_INLINE double expm1_tail_lo(double r) {
  const double r2 = r * r;
  return r2 * poly(r, r2, 0.5000000014286223, 0.16666666682534356, 0.04166645680967788,
                   0.008333310024225292, 0.0013934541928270264, 0.0001989198131397769);
}

// e^x to ~2^-32 (for float results), x in [-700, 700]; no special cases.
DC_VM_INLINE double exp_lo(double x) {
  const double t = x * kLog2e + kShift52;
  const double fn = t - kShift52;
  const double r = x - fn * kLn2;
  return (1.0 + (r + expm1_tail_lo(r))) * pow2i(dbits(t) - dbits(kShift52));
}
// e^x - 1 to ~2^-32 (for float results), x in [-30, 700].
DC_VM_INLINE double expm1_lo(double x) {
  const double t = x * kLog2e + kShift52;
  const double fn = t - kShift52;
  const double r = x - fn * kLn2;
  const double e = r + expm1_tail_lo(r);
  // e^x - 1 = 2 (2^(n-1) - 1/2 + 2^(n-1) e): each step exact or a single rounding.
  const double h = pow2i(dbits(t) - dbits(kShift52) - 1);
  return ((h - 0.5) + h * e) * 2.0;
}

// The reduction shared by the logarithms: x = 2^k m, m in [sqrt(1/2),
// sqrt(2)), for x > 0 normal. Returns f = m - 1 (exact) and k as a double.
DC_VM_INLINE double reduce_log(double x, double& k, uint64_t& k12) {
  const uint64_t u = dbits(x);
  const uint64_t tmp = u - kSqrtHalfBits;  // its top 12 bits are k, two's complement
  k12 = tmp >> 52;
  // k as a double without an int64 conversion (AVX2 has none): k + 2048 in [0, 4096) placed
  // in the significand of 2^52.
  k = dfrom(0x4330000000000000ull | ((k12 + 2048u) & 0xfffu)) - (4503599627370496.0 + 2048.0);
  return dfrom(u - (tmp & 0xfff0000000000000ull)) - 1.0;
}
DC_VM_INLINE double reduce_log(double x, double& k) {
  uint64_t k12;
  return reduce_log(x, k, k12);
}

// log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1], relative error 2^-34 (for float
// results): f + f^2 p(f), p of degree 11 (fit error 2^-32.2).
DC_VM_INLINE double log1p_poly_lo(double f) {
  const double f2 = f * f;
  return f + f2 * poly(f, f2, -0.5000000000450991, 0.3333333362281122, -0.24999997670191584,
                       0.1999994059949324, -0.166668250246779, 0.1428918897468902,
                       -0.12498231634554315, 0.1102799390956836, -0.09935812014310702,
                       0.09926214553686429, -0.09774922715867193, 0.05392889438091898);
}
// log(x) to ~2^-34 for x > 0 normal, finite (for float results).
DC_VM_INLINE double log_lo(double x) {
  double k;
  const double f = reduce_log(x, k);
  return k * kLn2 + log1p_poly_lo(f);
}
// log(1 + x) to ~2^-34 for x > -1 finite (for float results).
DC_VM_INLINE double log1p_lo(double x) {
  const double u = 1.0 + x;
  // u = 1 + x - c exactly; log(1 + x) = log(u) + c / u, and c matters only while u is near 1.
  const double c = x - (u - 1.0);
  return log_lo(u) + sel(u < 1.5, c * (2.0 - u), 0.0);
}

// log(m) for m = 1 + f in [sqrt(1/2), sqrt(2)), k ln2 added, and corr (a small addend,
// rounding error of the caller) added at full precision. log(1 + f) = 2 atanh(s) with
// s = f / (2 + f) = f - f^2/2 + s (f^2/2 + R(s^2)); the division only touches the small
// term, so its rounding hardly shows. R(z) = z g(z), g of degree 6 on [0, 0.0297] (fit
// error 2^-50.7).
DC_VM_INLINE double log_reduced(double f, double k, double corr) {
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double z2 = z * z;
  const double R = z * poly(z, z2, 0.666666666666667, 0.39999999999893016, 0.2857142862890348,
                            0.22222210659293473, 0.18182923591453207, 0.1533058183634364,
                            0.14630465387106195);
  const double hfsq = 0.5 * f * f;
  return k * kLn2Hi - ((hfsq - (s * (hfsq + R) + (k * kLn2Lo + corr))) - f);
}
// log(x) in double, <= 1 ulp, for x > 0 finite (subnormals included).
DC_VM_INLINE double log_core(double x) {
  const bool sub = x < 0x1p-1022;
  double k;
  const double f = reduce_log(sel(sub, x * 0x1p54, x), k);
  return log_reduced(f, sel(sub, k - 54.0, k), 0.0);
}
// log(1 + x) in double for x > -1 finite, |x| >= 2^-54.
DC_VM_INLINE double log1p_core(double x) {
  const double u = 1.0 + x;
  double k;
  uint64_t k12;
  const double f = reduce_log(u, k, k12);
  // 1 + x = u + c exactly (for u < 2^53); = 2^k (m + d), d = c 2^-k, and
  // log(m + d) = log(m) + d / m, 1/m = 1 - f + f^2 - f^3 to 3%, plenty for a term < 2^-53.
  const double c = x - (u - 1.0);
  const double d = c * dfrom(((1023u - k12) & 0xfffu) << 52);  // c 2^-k
  const double corr = sel(u < 0x1p53, d * (1.0 - f * (1.0 - f * (1.0 - f))), 0.0);
  return log_reduced(f, k, corr);
}

}  // namespace detail

// ---- exp, exp2, expm1 -------------------------------------------------------------------

// e^x in float. With fused multiply-adds it stays in float lanes (twice the double lanes, and
// no 64-bit integer work, which AVX2 does not vectorise well: 1.4x torch's time there in
// double): x = n ln2 + r + c with ln2 in two parts (n times the first exact) and c the rounding
// error of r, e^(r + c) = (1 + r) + (r^2 q(r) + c) with 1 + r kept as hi + lo and q the fit of
// expm1_tail_lo, then 2^n as two factors (exp_f32's range handling: overflow to inf, subnormal
// results, NaN through the clamp). Over every float in [-110, 95]: at most 0.77 ulp, in the
// subnormal results, which round twice (exp_f32's plain reduction: 1.02). Without FMA it is
// evaluated in double to 2^-32 and rounded once (<= 0.51 ulp).
#if defined(__FMA__)
namespace detail {
// e^x = 2^n (p + p_lo) for float x in [-104, 89] (clamped; NaN passes): the float-lane
// evaluation of exp below, with the last addition's rounding error kept in p_lo, so that
// p + p_lo is within about 2^-30 of e^x / 2^n. Returns p; n and p_lo by reference.
DC_VM_INLINE float exp_parts(float x, uint32_t& n, float& p_lo) {
  const float xc = sel(x < -104.0f, -104.0f, sel(x > 89.0f, 89.0f, x));
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = xc * 1.44269504f + shifter, fn = t - shifter;
  n = fbits(t) - fbits(shifter);
  // ln2 = 0.693145752 (16 significant bits, so fn times it is exact) + 1.42860677e-06
  const float rh = __builtin_fmaf(-fn, 0.693145752f, xc);  // exact
  const float r = __builtin_fmaf(-fn, 1.42860677e-06f, rh);
  const float c = __builtin_fmaf(-fn, 1.42860677e-06f, rh - r);
  const float q = poly(r, r * r, 0.5000000014286223, 0.16666666682534356, 0.04166645680967788,
                       0.008333310024225292, 0.0013934541928270264, 0.0001989198131397769);
  const float hi = 1.0f + r, lo = (1.0f - hi) + r;
  const float m = lo + __builtin_fmaf(r * r, q, c), p = hi + m;
  p_lo = (hi - p) + m;
  return p;
}
// 2^n for the n of exp_parts as two factors, so that n = 128 and the subnormals come out right.
DC_VM_INLINE float scale2(float p, uint32_t n) {
  const uint32_t n1 = static_cast<uint32_t>(static_cast<int32_t>(n) >> 1), n2 = n - n1;
  return p * ffrom((n1 + 127u) << 23) * ffrom((n2 + 127u) << 23);
}
}  // namespace detail
#endif

DC_VM_INLINE float exp(float x) {
#if defined(__FMA__)
  uint32_t n;
  float p_lo;
  const float p = detail::exp_parts(x, n, p_lo);  // sets n: not inside scale2's argument list
  return detail::scale2(p, n);
#else
  return static_cast<float>(detail::exp_lo(detail::clamp(x, -200.0, 200.0)));
#endif
}

// e^x in double, <= 1 ulp: x = n ln2 + r, e^r = 1 + r + r^2 q(r). 2^n is applied as two
// factors so that n = 1024 and the subnormal results (down to e^-745.13) come out right.
DC_VM_INLINE double exp(double x) {
  double fn, r, c;
  const uint64_t n = detail::reduce_ln2(x, fn, r, c);
  const double p = 1.0 + (r + (detail::expm1_tail(r) + c));
  const uint64_t n1 = static_cast<uint64_t>(static_cast<int64_t>(n) >> 1), n2 = n - n1;
  const double y = p * detail::pow2i(n1) * detail::pow2i(n2);
  return detail::sel(x > 709.782712893384, detail::kInf,
                     detail::sel(x < -745.1332191019412, 0.0, y));
}

// 2^x in float: x = n + r, |r| <= 1/2, 2^r = 1 + r q(r), q of degree 6 (fit error 2^-27.4).
DC_VM_INLINE float exp2(float x) {
  const float shifter = 12582912.0f;  // 1.5 * 2^23
  const float t = x + shifter;
  const uint32_t n = detail::fbits(t) - detail::fbits(shifter);
  const float r = x - (t - shifter);
#if defined(__FMA__)
  using T = float;  // with fused multiply-adds the float evaluation stays within 1 ulp
#else
  using T = double;  // without, r q(r) rounds twice: 1.15 ulp in float
#endif
  const T rt = r, r2 = rt * rt;
  const float p = static_cast<float>(
      T(1) + rt * detail::poly(rt, r2, 0.6931471824645996, 0.24022650718688965,
                               0.05550410971045494, 0.009618056938052177, 0.0013333501992747188,
                               0.00015461444854736328, 1.529732435301412e-05));
  const uint32_t n1 = static_cast<uint32_t>(static_cast<int32_t>(n) >> 1), n2 = n - n1;
  const float y = p * detail::ffrom((n1 + 127u) << 23) * detail::ffrom((n2 + 127u) << 23);
  return detail::sel(x >= 128.0f, INFINITY, detail::sel(x < -150.0f, 0.0f, y));
}

// 2^x in double: x = n + f, |f| <= 1/2, 2^f = e^(f ln2) with f ln2 carried as r + c.
DC_VM_INLINE double exp2(double x) {
  const double t = x + detail::kShift52;
  const uint64_t n = detail::dbits(t) - detail::dbits(detail::kShift52);
  const double f = x - (t - detail::kShift52);  // exact
  const double fh = detail::hi26(f), fl = f - fh;
  const double lh = 0x1.62e42f8p-1, ll = 1.2996506893889889e-08;  // ln2, 26 + 53 bits
  const double a = fh * lh;                                            // exact
  const double b = fl * detail::kLn2 + fh * ll;
  const double r = a + b;
  const double c = (a - r) + b;
  const double p = 1.0 + (r + (detail::expm1_tail(r) + c));
  const uint64_t n1 = static_cast<uint64_t>(static_cast<int64_t>(n) >> 1), n2 = n - n1;
  const double y = p * detail::pow2i(n1) * detail::pow2i(n2);
  return detail::sel(x >= 1024.0, detail::kInf, detail::sel(x < -1075.0, 0.0, y));
}

DC_VM_INLINE float expm1(float x) {
  const double xd = detail::clamp(x, -30.0, 100.0);
  const float y = static_cast<float>(detail::expm1_lo(xd));
  return detail::sel(x == 0.0f, x, y);  // keeps the sign of -0
}

// e^x - 1 in double: e^r - 1 = r + r^2 q(r) + c, then 2 (2^(n-1) - 1/2 + 2^(n-1) (e^r - 1)).
DC_VM_INLINE double expm1(double x) {
  const double xc = detail::clamp(x, -40.0, 709.8);  // -40: e^x < 2^-57
  double fn, r, c;
  const uint64_t n = detail::reduce_ln2(xc, fn, r, c);
  const double e = r + (detail::expm1_tail(r) + c);
  const double h = detail::pow2i(n - 1);
  const double y = ((h - 0.5) + h * e) * 2.0;
  return detail::sel(detail::fabs_d(x) < 0x1p-54, x,
                     detail::sel(x > 709.782712893384, detail::kInf, y));
}

// ---- log, log2, log10, log1p ------------------------------------------------------------

// Special cases of the logarithms: NaN below the domain, -inf at its edge, +inf at +inf, NaN
// in -> NaN out.
template <typename T>
DC_VM_INLINE T log_special(T x, T edge, T y) {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  y = detail::sel(x < edge, nan, y);
  y = detail::sel(x == edge, -inf, y);
  y = detail::sel(x == inf, inf, y);
  return detail::sel(x != x, x, y);
}

// log in float arithmetic (full vector width): x = 2^k (1 + f), 1 + f in [sqrt(1/2), sqrt(2)),
// log(1 + f) = f + t, t = f^2 (-1/2 + f L(f)), L of degree 8 (fit error 2^-30.3 of the
// result). k ln2_hi + f is summed exactly (Fast2Sum: k ln2_hi is exact and, for k != 0,
// larger than |f|), so the only large rounding is the last one: <= 0.6 ulp. log2, log10 and
// log1p share the reduction. Arguments <= 0 give garbage here; log_special replaces it.
namespace detail {
// Returns t, with k and f (exact) as above, for x > 0 finite (subnormals included unless
// `subnormals` is false: log1p's u >= 2^-24 saves the test, 0.1 ns/element).
DC_VM_INLINE float log_reduce_f(float x, float& k, float& f, bool subnormals = true) {
  const bool sub = subnormals & (x < 0x1p-126f);
  const uint32_t u = fbits(sel(sub, x * 0x1p23f, x));
  const uint32_t tmp = u - 0x3f3504f3u;  // bits of sqrt(1/2): the top 9 bits are k
  k = static_cast<float>(static_cast<int32_t>(tmp) >> 23) - sel(sub, 23.0f, 0.0f);
  f = ffrom(u - (tmp & 0xff800000u)) - 1.0f;
  const float f2 = f * f;
  return f2 * (-0.5f + f * poly(f, f2, 0.333333135, -0.250000089, 0.20002073, -0.166679963,
                                0.142203271, -0.124060318, 0.118835688, -0.116714507,
                                0.0675095543));
}
// log(t + t_lo) as log(t) + t_lo / t for t > 0 finite and |t_lo| small against t: k ln2_hi + f
// summed exactly (Fast2Sum, as in log below), t_lo / t added with the small terms before the
// last rounding. log1p, atanh and logit's float lanes call it with their pairs.
DC_VM_INLINE float log_pair_f(float t, float t_lo, bool subnormals = true) {
  float k, f;
  const float poly = log_reduce_f(t, k, f, subnormals);
  const float kh = k * 0.693145752f;  // ln 2 = 0.693145752 (kh exact) + 1.42860677e-06
  const float hi = kh + f;
  const float err = f - (hi - kh);
  return hi + (((poly + k * 1.42860677e-06f) + err) + t_lo / t);
}
#if defined(__FMA__)
// num / (den + den_lo) as q + q_lo, for |den_lo| tiny against den: q rounded, q_lo its exact
// remainder num - den q (one FMA) less q den_lo, over den. atanh's and logit's float lanes.
DC_VM_INLINE float div_pair_f(float num, float den, float den_lo, float& q_lo) {
  const float inv = 1.0f / den, q = num * inv;
  q_lo = (__builtin_fmaf(-den, q, num) - q * den_lo) * inv;
  return q;
}
#endif
// k c_k + log(1 + f) c for log2 (c = log2 e, c_k = 1) and log10 (c = log10 e, c_k =
// log10 2), each constant split as c_hi + c_lo with c_hi of 12 bits (c_k_hi of 16: |k| <= 149
// has 8). g = f + t is rounded with its error e kept (Fast2Sum, |t| < |f|); g's top 12 bits gh
// times c_hi, and k c_k_hi, are exact and summed exactly (Fast2Sum, |k c_k_hi| > |gh c_hi|
// for k != 0), so the rounding error of the small terms scaled by c is all that adds to the
// last rounding. Max 0.78 ulp (log2), 0.71 (log10) over every third float with FMA; 0.89
// (log2) in the test without FMA; rounding t c separately instead of g measured 1.03 ulp.
DC_VM_INLINE float log_scaled_f(float x, float c_hi, float c_lo, float c, float ck_hi,
                                float ck_lo) {
  float k, f;
  const float t = log_reduce_f(x, k, f);
  const float g = f + t;
  const float e = t - (g - f);
  const float gh = ffrom(fbits(g) & 0xfffff000u), gl = g - gh;
  const float a = k * ck_hi, b = gh * c_hi;
  const float hi = a + b;
  const float err = b - (hi - a);
  return hi + ((((gl * c + gh * c_lo) + e * c) + k * ck_lo) + err);
}
}  // namespace detail
DC_VM_INLINE float log(float x) {
  float k, f;
  const float t = detail::log_reduce_f(x, k, f);
  const float kh = k * 0.693145752f;  // ln 2 = 0.693145752 + 1.42860677e-06; kh is exact
  const float hi = kh + f;
  const float err = f - (hi - kh);
  const float y = hi + ((t + k * 1.42860677e-06f) + err);
  return log_special(x, 0.0f, y);
}
DC_VM_INLINE double log(double x) {
  return log_special(x, 0.0, detail::log_core(detail::sel(x > 0.0, x, 1.0)));
}

DC_VM_INLINE float log2(float x) {
  const float y = detail::log_scaled_f(x, 0x1.716p+0f, -1.76052854e-04f, 1.44269502f, 1.0f, 0.0f);
  return log_special(x, 0.0f, y);
}
DC_VM_INLINE float log10(float x) {
  const float y = detail::log_scaled_f(x, 0x1.bccp-2f, -3.16899714e-05f, 0.434294492f,
                                       0x1.3442p-2f, -3.02435546e-06f);
  return log_special(x, 0.0f, y);
}

// log2 and log10 in double: log(1 + f) as f - (f^2/2 - s (f^2/2 + R)) with f multiplied by
// the constant in two exact pieces, so that only the small tail is rounded.
DC_VM_INLINE double log_scaled(double x, double c_hi26, double c_lo, double k_hi, double k_lo) {
  const bool sub = x < 0x1p-1022;
  double k;
  const double f = detail::reduce_log(detail::sel(sub, x * 0x1p54, x), k);
  k = detail::sel(sub, k - 54.0, k);
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double z2 = z * z;
  const double R = z * detail::poly(z, z2, 0.666666666666667, 0.39999999999893016,
                                    0.2857142862890348, 0.22222210659293473,
                                    0.18182923591453207, 0.1533058183634364, 0.14630465387106195);
  const double hfsq = 0.5 * f * f;
  const double tail = s * (hfsq + R) - hfsq;  // log(1 + f) = f + tail
  const double fh = detail::hi26(f), fl = f - fh;
  const double c = c_hi26 + c_lo;
  const double a = k * k_hi, b = fh * c_hi26;  // both exact
  const double hi = a + b;
  const double lo = ((a - hi) + b) + (fl * c + fh * c_lo + tail * c + k * k_lo);
  return hi + lo;
}
DC_VM_INLINE double log2(double x) {
  const double y = log_scaled(detail::sel(x > 0.0, x, 1.0), 0x1.7154760p+0, 1.9259629911266175e-08,
                              1.0, 0.0);
  return log_special(x, 0.0, y);
}
DC_VM_INLINE double log10(double x) {
  const double y = log_scaled(detail::sel(x > 0.0, x, 1.0), 0x1.bcb7b10p-2, 4.798111141615973e-09, 0x1.3441300p-2,
                              7.508597826552624e-08);
  return log_special(x, 0.0, y);
}

// log1p in float: u = 1 + x rounded, log(1 + x) = log(u) + c / u with c = x - (u - 1), the
// rounding error of u, exact for x < 2^24 (u - 1 is exact there, Sterbenz); beyond, c is off
// by at most 1 and c / u < 2^-24 against a result ulp >= 2^-20. c / u adds to the last
// rounding with the small terms. Tiny |x| gives u = 1, c = x: log1p(x) = x. The division
// measured cheaper than 1/u from k and f; x <= -1 gives garbage that log_special replaces.
// Max 0.92 ulp over every third float.
DC_VM_INLINE float log1p(float x) {
  const float u = 1.0f + x;
  const float c = x - (u - 1.0f);
  const float y = detail::log_pair_f(u, c, false);
  return detail::sel(x == 0.0f, x, log_special(x, -1.0f, y));  // keeps the sign of -0
}
DC_VM_INLINE double log1p(double x) {
  const double y = log_special(x, -1.0, detail::log1p_core(detail::sel(x > -1.0, x, 0.0)));
  return detail::sel(detail::fabs_d(x) < 0x1p-54, x, y);
}

// ---- sinh, cosh, tanh ---------------------------------------------------------------------

// With |x| = n ln2 + r: e^|x| = 2^n (cosh r + sinh r), e^-|x| = 2^-n (cosh r - sinh r), so
// sinh|x| = (A - B) cosh r + (A + B) sinh r with A = 2^(n-1), B = 2^(-n-1), and cosh swaps
// the factors. For n = 0, A - B = 0 exactly: no cancellation near 0.
namespace detail {
// float: |x| <= 90 (beyond, the float result is inf anyway).
DC_VM_INLINE void sinh_cosh_lo(double a, double& sh, double& ch) {
  a = sel(a > 90.0, 90.0, a);
  const double t = a * kLog2e + kShift52;
  const double fn = t - kShift52;
  const uint64_t n = dbits(t) - dbits(kShift52);
  const double r = a - fn * kLn2;
  const double z = r * r;
  // cosh r = 1 + z C(z), sinh r = r + r z S(z); degree 2 fits on [0, 0.1225], errors
  // 2^-28.4 and 2^-30 of C and S.
  const double cr = 1.0 + z * poly(z, z * z, 0.5000000014286223, 0.04166645680967788,
                                   0.0013934541928270264);
  const double sr = r + r * z * poly(z, z * z, 0.16666666682534356, 0.008333310024225292,
                                     0.0001989198131397769);
  const double A = pow2i(n - 1), B = pow2i(-n - 1);
  sh = (A - B) * cr + (A + B) * sr;
  ch = (A + B) * cr + (A - B) * sr;
}
// double: a <= 710.5 (sinh and cosh overflow from 710.476), as 2^(n-1) e^r -+ 2^(-n-1) e^-r
// (no cancellation from a >= 1 on; sinh uses a polynomial below). A and B are halved once
// more and the result doubled, so that A stays finite at n = 1025.
DC_VM_INLINE void sinh_cosh_d(double a, double& sh, double& ch) {
  a = sel(a > 710.5, 710.5, a);
  double fn, r, c;
  const uint64_t n = reduce_ln2(a, fn, r, c);
  // e^r and e^-r = 1 + (+-r + r^2 (qe(r^2) +- r qo(r^2)) +- c), q of expm1_tail split into
  // its even and odd coefficients: both for the price of one polynomial.
  const double z = r * r;
  const double z2 = z * z;
  const double qe = poly(z, z2, 0.5000000000000001, 0.04166666666662064, 0.0013888888918939168,
                         2.4801518641395993e-05, 2.7621338669142925e-07);
  const double qo = poly(z, z2, 0.16666666666666669, 0.008333333333329793,
                         0.00019841269864380513, 2.75572664186123e-06, 2.510134692835034e-08);
  const double ep = 1.0 + (r + (z * (qe + r * qo) + c));
  const double em = 1.0 + (-r + (z * (qe - r * qo) - c));
  const double A = pow2i(n - 2);
  const double B = sel(static_cast<int64_t>(n) <= 1020, pow2i(-n - 2), 0.0);
  sh = (A * ep - B * em) * 2.0;
  ch = (A * ep + B * em) * 2.0;
}
}  // namespace detail

DC_VM_INLINE float sinh(float x) {
  double sh, ch;
  detail::sinh_cosh_lo(detail::fabs_d(x), sh, ch);
  return detail::copysign_f(static_cast<float>(sh), x);
}
DC_VM_INLINE float cosh(float x) {
  double sh, ch;
  detail::sinh_cosh_lo(detail::fabs_d(x), sh, ch);
  return static_cast<float>(ch);
}
DC_VM_INLINE double sinh(double x) {
  const double a = detail::fabs_d(x);
  double sh, ch;
  detail::sinh_cosh_d(a, sh, ch);
  // Below 1, n = 1 would cancel (0.75 cosh r + 1.25 sinh r with r < 0): an odd polynomial,
  // x + x^3 S(x^2), degree 6 on [0, 1] (fit error 2^-53.9).
  const double z = a * a;
  const double small =
      a + a * z * detail::poly(z, z * z, 0.16666666666666666, 0.008333333333333299,
                               0.00019841269841324198, 2.7557319191381816e-06,
                               2.5052117695907823e-08, 1.6057679623801638e-10,
                               7.746178593018827e-13);
  return detail::copysign_d(detail::sel(a < 1.0, small, sh), x);
}
DC_VM_INLINE double cosh(double x) {
  double sh, ch;
  detail::sinh_cosh_d(detail::fabs_d(x), sh, ch);
  return ch;
}

// tanh|x| = e / (e + 2), e = expm1(2|x|): no cancellation anywhere, one division.
DC_VM_INLINE float tanh(float x) {
  const double a = detail::fabs_d(x);
  const double e = detail::expm1_lo(detail::sel(a > 10.0, 20.0, 2.0 * a));  // tanh(9.1) rounds to 1
  return detail::copysign_f(static_cast<float>(e / (e + 2.0)), x);
}
DC_VM_INLINE double tanh(double x) {
  const double a = detail::fabs_d(x);
  double fn, r, c;
  const double a2 = detail::sel(a > 20.0, 40.0, 2.0 * a);  // tanh(19.1) rounds to 1
  const uint64_t n = detail::reduce_ln2(a2, fn, r, c);
  const double em = r + (detail::expm1_tail(r) + c);
  const double h = detail::pow2i(n - 1);
  const double e = ((h - 0.5) + h * em) * 2.0;
  const double big = e / (e + 2.0);
  // Below 0.35 the division's rounding would show: x + x^3 T(x^2), degree 8 on [0, 0.1225]
  // (fit error 2^-54).
  const double z = a * a;
  const double z2 = z * z;
  const double small =
      a + a * z * detail::poly(z, z2, -0.3333333333333333, 0.13333333333332845,
                               -0.053968253967190176, 0.02186948844673358, -0.00886323175761739,
                               0.003592038401479678, -0.0014545775399280403,
                               0.0005796641245845887, -0.00019202753283131075);
  return detail::copysign_d(detail::sel(a < 0.35, small, big), x);
}

// ---- asinh, acosh, atanh ------------------------------------------------------------------

// asinh|x| = log1p(a + a^2 / (1 + sqrt(1 + a^2))), which does not cancel near 0.
DC_VM_INLINE float asinh(float x) {
  const double a = detail::fabs_d(x);
  const double ac = detail::sel(a > 1e30, 1e30, a);
  const double y = detail::log1p_lo(ac + ac * ac / (1.0 + std::sqrt(1.0 + ac * ac)));
  const double big = detail::log_lo(detail::sel(a > 1e30, a, 1.0)) + detail::kLn2;  // log(2a)
  const float r = static_cast<float>(detail::sel(a > 1e30, big, y));
  return detail::copysign_f(detail::sel((a == detail::kInf) | (a != a), x, r), x);
}
DC_VM_INLINE double asinh(double x) {
  const double a = detail::fabs_d(x);
  const double ac = detail::clamp(a, 0x1p-28, 0x1p28);
  const double y = detail::log1p_core(ac + ac * ac / (1.0 + std::sqrt(1.0 + ac * ac)));
  const double big = detail::log_core(detail::sel(a > 0x1p28, a, 1.0)) + detail::kLn2;  // log 2a
  const double r = detail::sel(a > 0x1p28, big, detail::sel(a < 0x1p-28, a, y));
  return detail::copysign_d(detail::sel((a == detail::kInf) | (a != a), a, r), x);
}

// acosh x = log1p(t), t = (x - 1) + sqrt((x - 1)(x + 1)); x - 1 is exact near 1.
DC_VM_INLINE float acosh(float x) {
  const double xd = detail::sel(x >= 1.0f, static_cast<double>(x), 1.0);
  const double xc = detail::sel(xd > 1e30, 1e30, xd);
  const double t = (xc - 1.0) + std::sqrt((xc - 1.0) * (xc + 1.0));
  const double y =
      detail::sel(xd > 1e30, detail::log_lo(xd) + detail::kLn2, detail::log1p_lo(t));
  float r = static_cast<float>(y);
  r = detail::sel(x == INFINITY, x, r);
  return detail::sel(x != x, x, detail::sel(x >= 1.0f, r, NAN));
}
DC_VM_INLINE double acosh(double x) {
  const double xd = detail::sel(x >= 1.0, x, 1.0);
  const double xc = detail::sel(xd > 0x1p28, 2.0, xd);
  const double t = (xc - 1.0) + std::sqrt((xc - 1.0) * (xc + 1.0));
  const double y = detail::sel(xd > 0x1p28, detail::log_core(xd) + detail::kLn2,
                               detail::sel(xd == 1.0, 0.0, detail::log1p_core(t)));
  const double r = detail::sel(x == detail::kInf, x, y);
  return detail::sel(x != x, x, detail::sel(x >= 1.0, r, detail::kNaN));
}

// atanh|x| = log1p(2a / (1 - a)) / 2.
DC_VM_INLINE float atanh(float x) {
#if defined(__FMA__)
  // In float lanes: 0.5 log1p(r), r = 2a / (1 - a) with 1 - a exact (a >= 1/2) or kept as a
  // pair, r carried with its remainder, and log1p(r) as log(t) + t_lo / t, t = 1 + r (the form
  // of logit's float lanes). Over every float of [-1, 1]: 0.944 ulp (in double: 0.5). 4M
  // elements in [-0.95, 0.95] under AVX2: 12.3 -> 5.1 ms on one thread, 7.1 -> 2.6 on two.
  const float a = detail::fabs_f(x);
  const float ac = detail::sel(a < 1.0f, a, 0.5f);
  const float w = 1.0f - ac, w_lo = (1.0f - w) - ac;
  float q_lo;
  const float q = detail::div_pair_f(2.0f * ac, w, w_lo, q_lo);
  const float t = 1.0f + q, t_lo = (q - (t - 1.0f)) + q_lo;
  float r = 0.5f * detail::log_pair_f(t, t_lo, false);
  r = detail::sel(a == 1.0f, INFINITY, detail::sel(a > 1.0f, NAN, r));
  return detail::sel(a != a, x, detail::copysign_f(r, x));
#else
  const double a = detail::fabs_d(x);
  const double ac = detail::sel(a < 1.0, a, 0.5);
  float r = static_cast<float>(0.5 * detail::log1p_lo(2.0 * ac / (1.0 - ac)));
  r = detail::sel(a == 1.0, INFINITY, detail::sel(a > 1.0, NAN, r));
  return detail::sel(a != a, x, detail::copysign_f(r, x));
#endif
}
DC_VM_INLINE double atanh(double x) {
  const double a = detail::fabs_d(x);
  const double ac = detail::sel(a < 1.0, detail::sel(a < 0x1p-28, 0x1p-28, a), 0.5);
  double r = 0.5 * detail::log1p_core(2.0 * ac / (1.0 - ac));
  r = detail::sel(a < 0x1p-28, a, r);
  r = detail::sel(a == 1.0, detail::kInf, detail::sel(a > 1.0, detail::kNaN, r));
  return detail::sel(a != a, x, detail::copysign_d(r, x));
}

// ---- pow ----------------------------------------------------------------------------------

// pow in float: |x|^y = e^(y log|x|) in double (log to 1 ulp of double, so y log|x| is good
// to 2^-50 wherever the result is a finite float), then the C special cases by select.
DC_VM_INLINE float pow(float x, float y) {
  using detail::sel;
  // All the tests on x and y are made in double: mixing float and double comparisons in one
  // loop body stops GCC's vectoriser.
  const double xd = x, yd = y;
  const double ax = detail::fabs_d(xd), ay = detail::fabs_d(yd);
  const double lx = detail::log_core(sel((ax > 0.0) & (ax < detail::kInf), ax, 1.0));
  const double w = detail::clamp(yd * lx, -200.0, 200.0);
  double r = detail::exp_lo(w);
  // y an integer? odd? (|y| >= 2^24 is always an even integer)
  const double t = ay + detail::kShift52;
  const bool y_frac = (ay < 0x1p24) & (t - detail::kShift52 != ay);
  // -0.0 where y is an odd integer (t's last bit is y's parity), else +0.0
  const double y_odd = sel((ay < 0x1p24) & (t - detail::kShift52 == ay), detail::dfrom(detail::dbits(t) << 63), 0.0);
  const double inf = detail::kInf;
  // |x| = 0 or inf, y = +-inf: the limits of |x|^y
  r = sel(ax == 0.0, sel(yd < 0.0, inf, 0.0), r);
  r = sel(ax == inf, sel(yd < 0.0, 0.0, inf), r);
  r = sel(ay == inf, sel(ax == 1.0, 1.0, sel((ax < 1.0) ^ (yd > 0.0), inf, 0.0)), r);
  r = sel((xd != xd) | (yd != yd), detail::kNaN, r);
  r = sel((xd < 0.0) & (xd > -inf) & y_frac, detail::kNaN, r);  // x < 0 needs an integer y
  // an odd y keeps the sign of x (of -0 and -inf too)
  r = detail::dfrom(detail::dbits(r) ^ (detail::dbits(y_odd) & detail::dbits(xd)));
  return static_cast<float>(sel((yd == 0.0) | (xd == 1.0), 1.0, r));
}
// Not yet vectorised: double pow needs log x to ~2^-64 (double-double), libm until then.
DC_VM_INLINE double pow(double x, double y) { return std::pow(x, y); }

// ---- erf, erfc ----------------------------------------------------------------------------

// erf and erfc in float, with double only where float would lose accuracy (no tables, so that
// the coefficients are immediate constants: a coefficient table read through a loop stayed a
// memory load inside the kernel loop and stopped its vectorisation).
//   |x| < 0.875: erf x = x + x P(x^2), P of degree 6 (fit error 2^-29.9 of erf x / x); written
//     as x + x P so that the rounding of 2/sqrt(pi) does not show.
//   erf, 0.875 <= |x| < 3.92: 1 - 2^Q(|x|), Q of degree 7 fitted to log2 erfc (error 2^-32.9
//     of erfc, relative to 1); from 3.92 on, erf rounds to 1.
//   erfc, |x| >= 0.875: e^(-x^2) G(1/x) / x, G(t) = erfcx(1/t) / t of degree 12 in t - 0.62
//     on [1/10.13, 1/0.875] (fit error 2^-27.8); e^(-x^2) and the products in double, where
//     x^2 is exact and the subnormal results need no scaling. Below -0.875, erfc = 2 - erfc|x|;
//     below 0.875, (1 - x) - x P(x^2) in double.
namespace detail {
template <typename T>
DC_VM_INLINE T erf_p(T z) {  // erf(a) / a - 1, z = a^2 <= 0.766
  return z * poly(z, z * z, -0.376126289, 0.112836204, -0.0268551167, 0.00519003393,
                  -0.000801289512, 7.79689508e-05) + T(0.128379166f);
}
// erfc a for a in [0.875, 10.13], in double from float parts: e^(-a^2) (a^2 is exact in
// double) and the final products in double; G(t) - G(0.62) in float, where its rounding is
// 2^-27 of G.
DC_VM_INLINE double erfc_big_f(float a) {
  const double ad = a;
  const float tf = 1.0f / a;  // a float division and one Newton step: cheaper than in double
  const double td = static_cast<double>(tf) * (2.0 - ad * static_cast<double>(tf));
  const float u = tf - 0.62f;
  const float gt = u * poly(u, u * u, -0.171567321, -0.00238738908, 0.0736833289, -0.079302378,
                            0.049634628, -0.0088027548, -0.0229409281, 0.0430167168,
                            -0.0700639114, 0.0567089655, 0.0467147119, -0.0760604441);
  return exp_lo(-ad * ad) * (0.490382671 + static_cast<double>(gt)) * td;
}
}  // namespace detail

DC_VM_INLINE float erf(float x) {
  using detail::sel;
  const float a = detail::fabs_f(x);
  const float small = a + a * detail::erf_p(a * a);
  // 1 - 2^Q in double: Q cancels by 4x between its first terms, too much for float.
  const double ab = static_cast<double>(sel(a < 3.92f, a, 3.92f)) - 2.4;
  const double q = detail::poly(ab, ab * ab, -10.5042267, -7.45041895, -1.35685611,
                                -0.0169667676, 0.00346456142, -0.000667426095, 0.000118248085,
                                -2.99041822e-05);  // log2 erfc(a), in [-26, -2.6]
  const double tq = q + detail::kShift52;
  const double rq = q - (tq - detail::kShift52);  // |rq| <= 1/2
  const double e2 = 1.0 + rq * detail::poly(rq, rq * rq, 0.693147182, 0.240226507, 0.0555035919,
                                            0.00961806905, 0.00133911485, 0.000154600493);
  const float big = static_cast<float>(1.0 - e2 * detail::pow2i(detail::dbits(tq) - detail::dbits(detail::kShift52)));
  const float r = sel(a < 0.875f, small, sel(a < 3.92f, big, 1.0f));
  return sel(a != a, x, detail::copysign_f(r, x));
}
// erfc of a float argument as a double, before the final rounding (relative error about
// 2^-30): for callers that scale the result and round once (gelu). NaN for NaN; 0 from 10.13 on.
DC_VM_INLINE double erfc_wide(float x) {
  using detail::sel;
  const float a = detail::fabs_f(x);
  // in double: erf_p cancels by 2x near 0.875, and 1 - x + ... by 3x
  const double xd = x;
  const double small = (1.0 - xd) - xd * detail::erf_p(xd * xd);
  const double c = detail::erfc_big_f(sel(a < 10.13f, sel(a > 0.875f, a, 0.875f), 10.13f));
  const double big = sel(x > 0.0f, c, 2.0 - c);
  return sel(x != x, xd, sel(a < 0.875f, small, sel(x > 10.13f, 0.0, big)));
}
#if defined(__FMA__)
// erfc in float lanes with FMA: the pieces of erfc_wide, the roundings that double absorbed
// carried as float pairs instead.
//   |x| < 0.875: in double, as erfc_wide (in float pairs, erf_p's own cancellation near 0.875
//     left 2.8 ulp).
//   |x| >= 0.875: a^2 = s + sl exactly (FMA); e^(-s) = 2^n (p + p_lo) (exp_parts) and
//     e^(-s - sl) = e^(-s) (1 - sl); 1/a = tf + tf_lo (the division's remainder); G at u =
//     tf - 0.62, plus G'(u) tf_lo, with G(0.62) as two floats. The three factors multiply as
//     pairs (FMA for each product's rounding), so the result rounds once before the 2^n scaling
//     (twice for subnormal results, as exp's do).
// Over every float of [-4, 10.2] against scipy's float64 erfc (ulp judged at max(|erfc|,
// 1e-6), as tests/ulp_cases.py does): 0.956 ulp, where erfc_wide gave 1.227 (both at the
// 0.875 seam, from G's fit). 4M elements in [-3, 3] under AVX2: 14.5 -> 12.5 ms on one thread,
// 7.9 -> 6.5 on two.
DC_VM_INLINE float erfc(float x) {
  using detail::sel;
  const float a = detail::fabs_f(x);
  const double xd = x;  // as erfc_wide: erf_p cancels by 2x near 0.875, 1 - x + ... by 3x
  const float small = static_cast<float>((1.0 - xd) - xd * detail::erf_p(xd * xd));
  const float ac = sel(a < 10.13f, sel(a > 0.875f, a, 0.875f), 10.13f);
  const float s = ac * ac, sl = __builtin_fmaf(ac, ac, -s);
  uint32_t n;
  float p_lo;
  const float p = detail::exp_parts(-s, n, p_lo);
  const float pl = __builtin_fmaf(-p, sl, p_lo);
  const float tf = 1.0f / ac, tf_lo = __builtin_fmaf(-ac, tf, 1.0f) * tf;
  const float u = tf - 0.62f;
  const float gt = u * detail::poly(u, u * u, -0.171567321, -0.00238738908, 0.0736833289,
                                    -0.079302378, 0.049634628, -0.0088027548, -0.0229409281,
                                    0.0430167168, -0.0700639114, 0.0567089655, 0.0467147119,
                                    -0.0760604441);
  const float g0 = 0.490382671f, g0_lo = -3.5620118e-10f;  // G(0.62) as in erfc_big_f
  const float g = g0 + gt, g_lo = ((g0 - g) + gt) + (g0_lo - 0.171567321f * tf_lo);
  const float q = g * tf, q_lo = __builtin_fmaf(g, tf, -q) + __builtin_fmaf(g_lo, tf, g * tf_lo);
  const float y = q * p, y_lo = __builtin_fmaf(q, p, -y) + __builtin_fmaf(q_lo, p, q * pl);
  const float c = detail::scale2(y + y_lo, n);
  const float big = sel(x > 0.0f, c, 2.0f - c);
  return sel(x != x, x, sel(a < 0.875f, small, sel(x > 10.13f, 0.0f, big)));
}
#else
DC_VM_INLINE float erfc(float x) { return static_cast<float>(erfc_wide(x)); }
#endif
// erf and erfc in double, <= 1 and <= 2 ulp (2.5 without FMA).
//   |x| < 0.85: erf x = x + x P(x^2), erfc x = (1 - x) - x P(x^2), P of degree 11 (fit error
//     2^-56.3 of erf x / x).
//   0.85 <= |x| <= 27.3: erfc a = e^(-a^2) G(1/a) / a, G(t) = erfcx(1/t) / t in three pieces
//     (a in [0.85, 1.6), [1.6, 3.5), [3.5, 27.3]), each G(c_i) + a degree-16 polynomial in
//     t - c_i (fit errors 2^-55.8, 2^-57.5, 2^-56.5). a^2 is split exactly and the rounding
//     of 1/a is folded into e^r, so the result rounds about once; erf = 1 - erfc, and
//     erfc(-a) = 2 - erfc a. Beyond 27.3 erfc underflows to 0 (and erf is 1).
// All three pieces are evaluated and only their results selected: selecting each coefficient
// instead (34 selects) made the function too large for GCC 12 to inline the kernel's lambda
// (max-inline-insns-single), so the loop stayed scalar. The coefficients sit in a constexpr
// table read by a fully unrolled loop: the inliner sizes the loop before it is unrolled, and
// the unrolled reads fold to immediates. In the elementwise loop (2^20 doubles in [-3, 6]),
// libm's 12-16 ns/element became about 4 (AVX-512) and 6 (AVX2).
namespace detail {
DC_VM_INLINE double erf_p_d(double z) {  // erf(a) / a - 1, z = a^2 <= 0.7225
  return poly(z, z * z, 0.1283791670955126, -0.3761263890318375, 0.11283791670954685,
              -0.02686617064501726, 0.005223977623916789, -0.0008548326902886471,
              0.00012055326932054655, -1.4925450090912942e-05, 1.6457676496214065e-06,
              -1.6300495998065118e-07, 1.4189584294135369e-08, -8.837207342835496e-10);
}
// G(t) - G(c_i) on piece i, in powers of t - c_i from the constant term up.
DC_HD_TABLE(double, kErfcG, [3][17], {
    {4.525723793047427e-18, -0.16110400256347002, 0.03184306715225753, 0.017233194479253495,
     -0.02789208677786125, 0.022904238307449355, -0.013760939341430418, 0.005549433124210759,
     5.515763202628145e-05, -0.0030211544731025483, 0.003966223510569851,
     -0.0036378282685455812, 0.0026890486384242253, -0.0016239070280570423,
     0.000633908463666232, 0.0004311520029314156, -0.0008652066158452953},
    {8.365051403651968e-18, -0.16318941012495197, -0.05390122491312934, 0.1391419038802737,
     -0.1166654444371169, 0.02660592248950801, 0.08066030974249264, -0.1539127832750553,
     0.15318689488221954, -0.06250474518617112, -0.099974427546444, 0.2783063280007354,
     -0.38736347762542844, 0.34235003455675583, -0.0555897571006267, -0.6482533082333919,
     1.2281392400301736},
    {-4.9196715252068124e-17, -0.08446248044861296, -0.225317595826564, 0.20227807741560974,
     0.1399378636019174, -0.46799184516641396, 0.2238263057568996, 0.8343228721257974,
     -1.7611980363642727, 0.17396393073615016, 5.532841950874665, -10.49437251194303,
     -1.4572097541507296, 47.462016565416754, -90.65196216522422, -65.71510446979694,
     445.1971577644099},
})
// erfc a for a in [0.85, 27.3].
DC_VM_INLINE double erfc_big_d(double a) {
  const double t = 1.0 / a;
  const double u0 = t - 0.9007352941176471, u1 = t - 0.45535714285714285,
               u2 = t - 0.16117216117216115;
  double q0 = DC_TBL(kErfcG)[0][16], q1 = DC_TBL(kErfcG)[1][16], q2 = DC_TBL(kErfcG)[2][16];
DC_UNROLL(32)
  for (int k = 15; k >= 0; --k) {
    q0 = q0 * u0 + DC_TBL(kErfcG)[0][k];
    q1 = q1 * u1 + DC_TBL(kErfcG)[1][k];
    q2 = q2 * u2 + DC_TBL(kErfcG)[2][k];
  }
  // Piece masks from the sign of a - bound: a bool selecting several values was kept in byte
  // lanes, which stopped the vectoriser.
  const uint64_t m0 = static_cast<uint64_t>(static_cast<int64_t>(dbits(a - 1.6)) >> 63);
  const uint64_t m1 = static_cast<uint64_t>(static_cast<int64_t>(dbits(a - 3.5)) >> 63);
  const double g = sel_mask(m0, q0, sel_mask(m1, q1, q2));
  const double g0 =
      sel_mask(m0, 0.4432473966329393, sel_mask(m1, 0.5181720967427915, 0.5571302549336559));
  // a^2 = s + s_lo, s exact; -a^2 = n ln2 + r + c.
  const double h = hi26(a);
  const double s = h * h, s_lo = (a - h) * (a + h);
  const double t0 = -s * kLog2e + kShift52;
  const double fn = t0 - kShift52;
  const uint64_t n = dbits(t0) - dbits(kShift52);
  const double r_hi = -s - fn * kLn2Hi;  // exact
  const double lo = fn * kLn2Lo + s_lo;
  const double r = r_hi - lo;
  // 1/a = t (1 + e), e to 2^-106, folded into e^r.
#if defined(__FMA__)
  const double e = __builtin_fma(-a, t, 1.0);
#else
  // from exact half-width products (Dekker); 1 - ah th is exact, ah th being near 1
  const double ah = hi26(a), al = a - ah, th = hi26(t), tl = t - th;
  const double e = (((1.0 - ah * th) - ah * tl) - al * th) - al * tl;
#endif
  const double c = ((r_hi - r) - lo) + e;
  const double w = r + (expm1_tail(r) + c);  // e^(r + c) - 1
  // t G (1 + w), with t G(c_i) = A + A_lo exact: the large part A is rounded only once.
  const double A = t * g0;
#if defined(__FMA__)
  const double A_lo = __builtin_fma(t, g0, -A);
  const double B = __builtin_fma(t, g, A_lo);
  const double y = A + __builtin_fma(A, w, __builtin_fma(B, w, B));
#else
  const double th2 = hi26(t), tl2 = t - th2, gh = hi26(g0), gl = g0 - gh;
  const double A_lo = ((th2 * gh - A) + th2 * gl + tl2 * gh) + tl2 * gl;
  const double B = t * g + A_lo;
  const double y = A + (A * w + (B + B * w));
#endif
  // 2^n in two factors: the results below 2^-1022 are subnormal
  const uint64_t n1 = static_cast<uint64_t>(static_cast<int64_t>(n) >> 1), n2 = n - n1;
  return y * pow2i(n1) * pow2i(n2);
}
}  // namespace detail

DC_VM_INLINE double erf(double x) {
  using detail::sel;
  const double a = detail::fabs_d(x);
  // scaled by 2^64 so that a subnormal result is rounded once, not twice (1 ulp)
  const double as = a * 0x1p64;
  const double small = (as + as * detail::erf_p_d(a * a)) * 0x1p-64;
  const double big = 1.0 - detail::erfc_big_d(detail::clamp(a, 0.85, 27.3));
  const double r = sel(a < 0.85, small, big);
  return sel(a != a, x, detail::copysign_d(r, x));
}
DC_VM_INLINE double erfc(double x) {
  using detail::sel;
  const double a = detail::fabs_d(x);
  const double small = (1.0 - x) - x * detail::erf_p_d(a * a);
  const double c = sel(a > 27.3, 0.0, detail::erfc_big_d(detail::clamp(a, 0.85, 27.3)));
  const double big = sel(x > 0.0, c, 2.0 - c);
  return sel(x != x, x, sel(a < 0.85, small, big));
}
}  // namespace vm
