// vm:: trigonometric functions and their inverses (see vmath.h).
//
// Note [Branch-free trigonometry]
// float: every function computes in double and rounds once at the end, so a short
// polynomial (relative error 2^-32 or better) leaves the result within 1 ulp. (Where FMA is
// available, the sin and cos kernels call sin_lanes / cos_lanes instead, Note [Float-lane
// sine and cosine], and asin and acos evaluate in float lanes, over asin_lanes.)
// sin, cos and tan reduce by Cody-Waite: x - q pi/2 with pi/2 in four pieces, the first
// three short enough that q * piece is exact. That holds for |x| < 2^28 (float) and 2^20
// (double); above, the result is wrong, and `sin_needs_slow` (cos_, tan_) says so, so that a
// kernel sends those elements to libm. A full-range reduction was tried: Payne-Hanek with a
// per-exponent table of 2/pi * 2^e mod 4 (6 KiB for float, right to 0.503 ulp up to
// FLT_MAX) vectorises only through gathers, and GCC 12 emits no gathers for the generic
// tuning the kernels are built with; a gather-free version has to multiply and reduce all
// eight 24-bit pieces of 2/pi for every element (~130 double operations, several times the
// rest of the function).
// The inverse functions and sinpi/cospi are exact reductions plus a polynomial, for both types.
// Polynomial coefficients are near-minimax fits (Chebyshev interpolation in mpmath) made for
// this file; each comment gives the fit's relative error.
namespace vm {
namespace trig_detail {
using detail::bit_mask;
using detail::dbits;
using detail::dfrom;
using detail::fbits;
using detail::horner;
using detail::round_int;
using detail::sel;
using detail::sel_mask;

// -v where the sign bit `neg` (0 or 1 in bit 63) is set.
DC_VM_INLINE double flip(double v, uint64_t neg) { return dfrom(dbits(v) ^ neg); }
// sin and cos of r in [-pi/4, pi/4]: relative error 2^-35.6 and 2^-31.8 (float results).
DC_HD_TABLE(double, kSinF, [4], {-0.1666666666385529, 0.008333331874710208, -0.00019840086735384846,
                             2.724992580305979e-06})
DC_HD_TABLE(double, kCosF, [4], {-0.49999999969119313, 0.04166665064451703, -0.0013887589155600576,
                             2.4463788293265746e-05})
// The same for double results: 2^-57.1 and 2^-60.6.
DC_HD_TABLE(double, kSinD, [7], {-0.16666666666666666,    0.008333333333333331,
                             -0.00019841269841265065, 2.7557319219339167e-06,
                             -2.5052106232447578e-08, 1.6058531618986147e-10,
                             -7.586697117706918e-13})
DC_HD_TABLE(double, kCosD, [7], {-0.5,
                             0.04166666666666664,
                             -0.0013888888888880775,
                             2.480158729369346e-05,
                             -2.7557315566341895e-07,
                             2.0875886738047052e-09,
                             -1.1367998654022494e-11})

enum class TrigFn { kSin, kCos, kTan };

// Above this |x| the float reduction loses accuracy (sin_needs_slow).
constexpr float kTrigFastLimitF32 = 268435456.0f;  // 2^28

template <TrigFn fn>
DC_VM_INLINE float trig_f32(float x) {
  const uint32_t bits = fbits(x);
  const double a = std::fabs(static_cast<double>(x));
  const double ac = sel(a < kTrigFastLimitF32, a, 0.0);  // keeps q in range (and NaN out)
  const double qd = round_int(ac * 0.63661977236758138);
  // pi/2 = P1 + P2 + P3 + P4; P1..P3 have 25 bits, so q * Pi is exact for q < 2^28. The first
  // difference is exact (Sterbenz), the others round relative to what is left.
  const double P1 = 1.5707963109016418, P2 = 1.5893254712295857e-08, P3 = 6.123233932053594e-17,
               P4 = 6.36831716351095e-25;
  const double r = ((ac - qd * P1) - qd * P2) - (qd * P3 + qd * P4);
  const int32_t q = static_cast<int32_t>(qd) & 3;
  const double t = r * r;
  const double s = r + r * t * horner(t, DC_TBL(kSinF));
  const double c = 1.0 + t * horner(t, DC_TBL(kCosF));
  double v;
  if (fn == TrigFn::kTan) {
    const double num = sel_mask(bit_mask(q, 0), -c, s), den = sel_mask(bit_mask(q, 0), s, c);
    v = num / den;
  } else {
    const int32_t k = fn == TrigFn::kCos ? q + 1 : q;
    v = sel_mask(bit_mask(k, 0), c, s);
    v = sel_mask(bit_mask(k, 1), -v, v);
  }
  if (fn != TrigFn::kCos) v = flip(v, static_cast<uint64_t>(bits >> 31) << 63);
  const float out = static_cast<float>(v), nan = x - x;
  return sel((bits & 0x7f800000u) == 0x7f800000u, nan, out);  // inf, NaN -> NaN
}

// Above this |x| the double reduction below loses accuracy.
constexpr double kTrigFastLimitF64 = 1048576.0;  // 2^20

template <TrigFn fn>
DC_VM_INLINE double trig_f64(double x) {
  const uint64_t neg = dbits(x) & (uint64_t(1) << 63);
  const double a = std::fabs(x);
  const double ac = sel(a < kTrigFastLimitF64, a, 0.0);  // keeps q in range (and NaN out)
  const double qd = round_int(ac * 0.63661977236758138);
  // pi/2 = P1 + P2 + P3 + P4; P1..P3 have 33 bits, so q * Pi is exact for q < 2^20.
  const double P1 = 1.5707963267341256, P2 = 6.077100506303966e-11, P3 = 2.0222662487111665e-21,
               P4 = 8.4784276603689e-32;
  const double r1 = ac - qd * P1;  // exact (Sterbenz)
  const double b2 = -qd * P2, r2 = r1 + b2;
  const double e2 = (r1 - (r2 - (r2 - r1))) + (b2 - (r2 - r1));  // TwoSum error
  const double b3 = -qd * P3, r3 = r2 + b3;
  const double e3 = (r2 - (r3 - (r3 - r2))) + (b3 - (r3 - r2));
  const double lo0 = (e2 + e3) - qd * P4;
  const double rh = r3 + lo0, rl = lo0 - (rh - r3);  // r = rh + rl, |rl| <= ulp(rh) / 2
  const int32_t q = static_cast<int32_t>(qd) & 3;
  const double t = rh * rh;
  const double s = rh + (rh * t * horner(t, DC_TBL(kSinD)) + rl * (1.0 - 0.5 * t));
  const double c = 1.0 + (t * horner(t, DC_TBL(kCosD)) - rh * rl);
  double v;
  if (fn == TrigFn::kTan) {
    const double num = sel_mask(bit_mask(q, 0), -c, s), den = sel_mask(bit_mask(q, 0), s, c);
    v = num / den;
  } else {
    const int32_t k = fn == TrigFn::kCos ? q + 1 : q;
    v = sel_mask(bit_mask(k, 0), c, s);
    v = sel_mask(bit_mask(k, 1), -v, v);
  }
  if (fn != TrigFn::kCos) v = flip(v, neg);
  const double nan = x - x;
  return sel(a == INFINITY, nan, sel(x != x, x, v));
}

// sinpi/cospi share a reduction: x = n/2 + r with |r| <= 1/4, exact in double.
// sin(pi r) and cos(pi r): relative error 2^-37.6 and 2^-41.5 (float), 2^-54.2 and 2^-54.9.
DC_HD_TABLE(double, kSinPiF, [5], {3.1415926535762, -5.167712769174363, 2.55016264722018,
                               -0.5992020808609594, 0.08100162742091639})
DC_HD_TABLE(double, kCosPiF, [5], {-4.934802200541116, 4.058712123565546, -1.3352624037680343,
                               0.23531426158549898, -0.02550705018979102})
DC_HD_TABLE(double, kSinPiD, [8], {
    3.141592653589793,   -5.16771278004997,     2.5501640398773415,     -0.5992645293202978,
    0.08214588658005621, -0.007370429884712669, 0.00046628272951211076, -2.1717401400090533e-05})
DC_HD_TABLE(double, kCosPiD, [8], {-4.934802200544679,     4.0587121264167685,    -1.3352627688545888,
                               0.23533063035880689,    -0.025806891384587305, 0.0019295741241061913,
                               -0.0001046345989636836, 4.268505646755225e-06})

// sin(pi a) (or cos) for a >= 0 finite; `odd` says whether a >= 2^52 is an odd integer.
template <bool kCos, int NS, int NC>
DC_VM_INLINE double sincospi_abs(double a, bool odd, const double (&ps)[NS],
                                       const double (&pc)[NC]) {
  const bool big = a >= 4503599627370496.0;  // 2^52: a is an integer
  const double reduced = a - 2.0 * round_int(0.5 * a);
  const double a2 = sel(big, odd ? 1.0 : 0.0, reduced);  // in [-1, 1]
  const double n = round_int(2.0 * a2);
  const double r = a2 - 0.5 * n;  // exact, in [-1/4, 1/4]
  const double t = r * r;
  const double s = r * horner(t, ps);
  const double c = 1.0 + t * horner(t, pc);
  const int32_t k = static_cast<int32_t>(n) + (kCos ? 1 : 0);
  double v = sel_mask(bit_mask(k, 0), c, s);
  v = sel_mask(bit_mask(k, 1), -v, v);
  return v + 0.0;  // -0 -> +0: sinpi(+n) = +0, cospi(n + 1/2) = +0
}

// atan(u) for |u| <= tan(pi/8): relative error 2^-33.5 (float), 2^-58.2 (double).
DC_HD_TABLE(double, kAtanF, [6], {-0.333333332792548,  0.19999977258688387,  -0.14284151193628614,
                              0.11071365021884794, -0.08624676145249494, 0.050481385120797445})
DC_HD_TABLE(double, kAtanD, [12], {-0.3333333333333333,  0.19999999999999804,   -0.14285714285659828,
                               0.11111111105155447,  -0.09090908753500877,  0.07692296375032143,
                               -0.06666424885738255, 0.05878928997834775,   -0.05230454270650244,
                               0.04551593220626549,  -0.034570561981427744, 0.016285756855221028})
// asin(x) for |x| <= 1/2: relative error 2^-34.0 (float), 2^-57.4 (double).
DC_HD_TABLE(double, kAsinF, [7], {0.16666666686085643,  0.07499992404401838,  0.04464766388813485,
                              0.030269138728589183, 0.023611817008891752, 0.010574415516912909,
                              0.030974540371355073})
DC_HD_TABLE(double, kAsinD, [13], {0.16666666666666669,  0.07499999999998433,  0.04464285714635543,
                               0.030381944138531247, 0.02237217294214989,  0.017352392720869973,
                               0.013971212973552933, 0.011479177415184906, 0.01032281435018578,
                               0.005457506718640358, 0.01740087944269402,  -0.014851887071247204,
                               0.028757851367421566})
constexpr double kPio2Hi = 1.5707963267948966, kPio2Lo = 6.123233995736766e-17;
constexpr double kPio4Hi = 0.78539816339744828, kPio4Lo = 3.061616997868383e-17;

// atan2 of ay >= 0, ax >= 0 (the first quadrant), as base + atan(num / den) with one
// division: ay/ax <= tan(pi/8): atan(ay/ax); <= tan(3pi/8): pi/4 + atan((ay-ax)/(ay+ax));
// above: pi/2 + atan(-ax/ay). Both zero give 0 and both infinite pi/4, through u = 0.
template <int N>
DC_VM_INLINE double atan2_first_quadrant(double ay, double ax, const double (&pa)[N]) {
  const bool degenerate = (ay == ax) & ((ay == 0.0) | (ay == INFINITY));
  const bool small = (ay <= 0.41421356237309503 * ax) & !(degenerate & (ay != 0.0));
  const bool mid = ay <= 2.4142135623730949 * ax;
  const double diff = ay - ax, sum = ay + ax;
  double num = sel(small, ay, sel(mid, diff, -ax));
  double den = sel(small, ax, sel(mid, sum, ay));
  num = sel(degenerate, 0.0, num);
  den = sel(degenerate, 1.0, den);
  const double u = num / den, t = u * u;
  const double hi = sel(small, 0.0, sel(mid, kPio4Hi, kPio2Hi));
  const double lo = sel(small, 0.0, sel(mid, kPio4Lo, kPio2Lo));
  return hi + (u + (u * t * horner(t, pa) + lo));
}

// asin(s) for 0 <= s <= 1/2 as head + tail: |x| <= 1/2 gives s = |x| directly, above it
// s = sqrt((1 - |x|) / 2) and asin(|x|) = pi/2 - 2 asin(s), acos(x) = 2 asin(s) or pi minus
// that. The head has 26 bits, so pi/2 - 2 * head is exact and the tail carries the rest.
template <int N>
DC_VM_INLINE double asin_abs(double a, const double (&pa)[N], bool& outer, double& head) {
  outer = a > 0.5;
  const double half_gap = 0.5 * (1.0 - a), a2 = a * a;  // the first exact for a >= 1/2
  const double z = sel(outer, half_gap, a2);
  const double root = std::sqrt(sel(half_gap < 0.0, 0.0, half_gap));
  const double s = sel(outer, root, a);
  head = dfrom(dbits(s) & ~uint64_t(0x7ffffff));
  return (s - head) + s * z * horner(z, pa);
}


#if defined(__FMA__)
// Note [Float-lane sine and cosine]
// With FMA, the sin and cos kernels evaluate float32 in float lanes (twice the lanes of the
// double evaluation above) for |x| < 2^17; a row with a larger element runs trig_f32 (the
// kernel tests the row first, `lanes_need_wide`). The reduction keeps x - q pi/2 as a float
// pair rh + rl:
//   pi/2 = C1 + C2 + C3 (24 bits each; the rest is 2^-76). r1 = x - q C1 is exact in one FMA:
//   q C1 and x are multiples of 2^-23 (x >= 1; x < 1 gives q <= 1 and multiples of 2^-24) and
//   |r1| < 1. q C2 is kept as an exact product pair and subtracted by TwoSum; q C3 and the
//   roundings go into the low part, so that even the floats nearest a multiple of pi/2 keep
//   their relative accuracy.
// sin(rh + rl) = rh + (rh t S(t) + rl (1 - t/2)), t = rh^2; cos(rh + rl) = w + ew + t^2 C(t)
// - t_err/2 - rl rh with w + ew = 1 - t/2 exactly (Fast2Sum) and t_err the rounding of t.
// S and C are kSinF and kCosF in float. Only the last addition rounds at the result's scale;
// the rest is the rounding of the small term (up to 0.08 of the result). Over every float of
// |x| < 2^17 against double sin and cos: 0.789 ulp (sin), 0.790 ulp (cos), where the double
// evaluation gives 0.5. 4M elements on two AVX2 threads: 1.54x -> 0.82-0.88x torch's time.
constexpr float kTrigFloatLaneLimit = 131072.0f;  // 2^17
template <bool kCos>
DC_VM_INLINE float sincos_lanes(float x) {
  using detail::ffrom;
  const uint32_t bits = fbits(x);
  const float a = detail::fabs_f(x);
  const float ac = sel(a < kTrigFloatLaneLimit, a, 0.0f);  // keeps q in range (and NaN out)
  const float shifter = 12582912.0f;                        // 1.5 * 2^23
  const float tq = ac * 0.636619747f + shifter, q = tq - shifter;
  const float C1 = 1.57079637f, C2 = -4.37113900e-08f, C3 = -1.71512451e-15f;
  const float r1 = __builtin_fmaf(-q, C1, ac);  // exact
  const float ph = q * C2, pl = __builtin_fmaf(q, C2, -ph);
  const float s = r1 - ph, bb = s - r1;
  const float e = (r1 - (s - bb)) + (-ph - bb);  // s + e = r1 - ph exactly
  const float lo = (e - pl) - q * C3;
  const float rh = s + lo, rl = lo - (rh - s);
  const float t = rh * rh;
  const float sn = rh + __builtin_fmaf(rh * t, detail::poly(t, t * t, -0.166666672f, 0.00833333191f,
                                                           -0.000198400865f, 2.72499259e-06f),
                                       rl * __builtin_fmaf(-0.5f, t, 1.0f));
  const float t_err = __builtin_fmaf(rh, rh, -t);
  const float h = 0.5f * t, w = 1.0f - h, ew = (1.0f - w) - h;
  const float tail = (t * t) * detail::poly(t, t * t, 0.0416666493f, -0.00138875889f,
                                            2.44637894e-05f);
  const float cs = w + (ew + (tail - __builtin_fmaf(0.5f, t_err, rl * rh)));
  const uint32_t k = fbits(tq) + (kCos ? 1u : 0u);  // the low bits hold q
  const uint32_t odd = 0u - (k & 1u), neg = (k & 2u) << 30;
  uint32_t v = (fbits(cs) & odd) | (fbits(sn) & ~odd);
  v ^= neg;
  if (!kCos) v ^= bits & 0x80000000u;
  const float out = ffrom(v), nan = x - x;
  return sel((bits & 0x7f800000u) == 0x7f800000u, nan, out);  // inf, NaN -> NaN
}
#endif
}  // namespace trig_detail

DC_VM_INLINE float sin(float x) {
  return trig_detail::trig_f32<trig_detail::TrigFn::kSin>(x);
}
DC_VM_INLINE float cos(float x) {
  return trig_detail::trig_f32<trig_detail::TrigFn::kCos>(x);
}
DC_VM_INLINE float tan(float x) {
  return trig_detail::trig_f32<trig_detail::TrigFn::kTan>(x);
}
#if defined(__FMA__)
// Float-lane sin and cos for |x| < 2^17 (Note [Float-lane sine and cosine]): the kernels call
// these on rows where `lanes_need_wide` is false for every element.
DC_VM_INLINE float sin_lanes(float x) { return trig_detail::sincos_lanes<false>(x); }
DC_VM_INLINE float cos_lanes(float x) { return trig_detail::sincos_lanes<true>(x); }
DC_VM_INLINE bool lanes_need_wide(float x) {
  const float a = std::fabs(x);
  return (a >= trig_detail::kTrigFloatLaneLimit) & (a != INFINITY);
}
#endif
DC_VM_INLINE double sin(double x) {
  return trig_detail::trig_f64<trig_detail::TrigFn::kSin>(x);
}
DC_VM_INLINE double cos(double x) {
  return trig_detail::trig_f64<trig_detail::TrigFn::kCos>(x);
}
DC_VM_INLINE double tan(double x) {
  return trig_detail::trig_f64<trig_detail::TrigFn::kTan>(x);
}
// Right for |x| < 2^28 (float) and 2^20 (double) only: see Note [Branch-free trigonometry].
// Inf and NaN are handled (NaN) by the fast path.
// `&`, not `&&`: a kernel ORs this over a row, a loop GCC vectorises only without branches.
DC_VM_INLINE bool sin_needs_slow(float x) {
  const float a = std::fabs(x);
  return (a >= trig_detail::kTrigFastLimitF32) & (a != INFINITY);
}
DC_VM_INLINE bool sin_needs_slow(double x) {
  const double a = std::fabs(x);
  return (a >= trig_detail::kTrigFastLimitF64) & (a != INFINITY);
}
DC_VM_INLINE bool cos_needs_slow(float x) { return sin_needs_slow(x); }
DC_VM_INLINE bool cos_needs_slow(double x) { return sin_needs_slow(x); }
DC_VM_INLINE bool tan_needs_slow(float x) { return sin_needs_slow(x); }
DC_VM_INLINE bool tan_needs_slow(double x) { return sin_needs_slow(x); }

DC_VM_INLINE float atan(float x) {
  const double a = std::fabs(static_cast<double>(x));
  const double v = trig_detail::atan2_first_quadrant(a, 1.0, trig_detail::DC_TBL(kAtanF));
  return std::copysign(static_cast<float>(v), x);
}
DC_VM_INLINE double atan(double x) {
  const double v = trig_detail::atan2_first_quadrant(std::fabs(x), 1.0, trig_detail::DC_TBL(kAtanD));
  return detail::sel(x != x, x, std::copysign(v, x));
}

DC_VM_INLINE float atan2(float y, float x) {
  const double ay = std::fabs(static_cast<double>(y)), ax = std::fabs(static_cast<double>(x));
  double v = trig_detail::atan2_first_quadrant(ay, ax, trig_detail::DC_TBL(kAtanF));
  const double pi_minus = 3.1415926535897931 - v;
  v = detail::sel_mask(
      detail::bit_mask(static_cast<int32_t>(detail::fbits(x)), 31), pi_minus, v);
  const float out = std::copysign(static_cast<float>(v), y), nan = x + y;
  return detail::sel(x != x, nan, detail::sel(y != y, nan, out));
}
DC_VM_INLINE double atan2(double y, double x) {
  double ay = std::fabs(y), ax = std::fabs(x);
  // Halve both when ay + ax could overflow; the ratio is what matters.
  const double scale =
      detail::sel(ay > 0x1p1000, 0.25, detail::sel(ax > 0x1p1000, 0.25, 1.0));
  ay *= scale;
  ax *= scale;
  double v = trig_detail::atan2_first_quadrant(ay, ax, trig_detail::DC_TBL(kAtanD));
  // pi - v with pi in two pieces (pi = 2 * (kPio2Hi + kPio2Lo)).
  const double pi_minus = 2.0 * trig_detail::kPio2Hi + (2.0 * trig_detail::kPio2Lo - v);
  v = detail::sel_mask(uint64_t(0) - (detail::dbits(x) >> 63), pi_minus, v);
  const double out = std::copysign(v, y), nan = x + y;
  return detail::sel(x != x, nan, detail::sel(y != y, nan, out));
}

#if defined(__FMA__)
// asin and acos in float lanes with FMA (twice the lanes of the double evaluation, whose
// square root is the slowest part): asin(s) = s + s z P(z) as a pair A + A_lo, with s = |x|,
// z = s^2 for |x| <= 1/2, and s = sqrt(z) plus its rounding s_lo (the exact remainder over 2s)
// for z = (1 - |x|) / 2 (exact) above. pi/2 and pi are float pairs; each difference with them
// is a TwoSum, so the result rounds about once.
//   asin: A (|x| <= 1/2); pi/2 - 2 A (above). acos: pi/2 - x - x z P(z) (|x| <= 1/2); 2 A
//   (x > 1/2); pi - 2 A (x < -1/2).
// Over every float of [-1, 1] against double: asin 0.635 ulp, acos 0.623 (the double
// evaluation: 0.50 for both; without s_lo, 1.07). 4M elements under AVX2: acos 9.2 -> 6.6 ms
// on one thread, asin 4.0-4.4 -> 2.45 ms on two.
namespace trig_detail {
DC_VM_INLINE float asin_lanes(float a, bool& outer, float& lo) {
  outer = a > 0.5f;
  const float half_gap = 0.5f * (1.0f - a);  // exact for a >= 1/2
  const float root = std::sqrt(sel(half_gap < 0.0f, 0.0f, half_gap));
  const float inv2 = 0.5f / sel(root > 0.0f, root, 1.0f);
  const float root_lo = __builtin_fmaf(-root, root, half_gap) * inv2;
  const float s = sel(outer, root, a), s_lo = sel(outer, root_lo, 0.0f);
  const float z = sel(outer, half_gap, a * a);
  const float small = s * z * detail::poly(z, z * z, 0.166666672f, 0.0749999210f, 0.0446476638f,
                                           0.0302691385f, 0.0236118175f, 0.0105744153f,
                                           0.0309745409f);
  const float tail = s_lo + small, hi = s + tail;
  lo = (s - hi) + tail;
  return hi;
}
// c_hi + c_lo - v (v >= 0 below c_hi) with the difference's rounding carried: one rounding.
DC_VM_INLINE float minus_pair(float c_hi, float c_lo, float v, float v_lo) {
  const float d = c_hi - v, bb = d - c_hi;
  const float e = (c_hi - (d - bb)) + (-v - bb);
  return d + (e + (c_lo - v_lo));
}
}  // namespace trig_detail
#endif
DC_VM_INLINE float asin(float x) {
#if defined(__FMA__)
  bool outer;
  float lo;
  const float a = detail::fabs_f(x);
  const float A = trig_detail::asin_lanes(a, outer, lo);
  const float reflected =
      trig_detail::minus_pair(1.57079637f, -4.37113883e-08f, 2.0f * A, 2.0f * lo);
  const float out = detail::copysign_f(detail::sel(outer, reflected, A), x);
  const float nan = (x - x) / (x - x);
  return detail::sel(a > 1.0f, nan, out);
#else
  const double a = std::fabs(static_cast<double>(x));
  bool outer;
  double head;
  const double s = trig_detail::asin_abs(a, trig_detail::DC_TBL(kAsinF), outer, head) + head;
  const double reflected = trig_detail::kPio2Hi - 2.0 * s;
  const double v = detail::sel(outer, reflected, s);
  const float out = std::copysign(static_cast<float>(v), x), nan = (x - x) / (x - x);
  return detail::sel(a > 1.0, nan, out);
#endif
}
DC_VM_INLINE double asin(double x) {
  const double a = std::fabs(x);
  bool outer;
  double head;
  const double tail = trig_detail::asin_abs(a, trig_detail::DC_TBL(kAsinD), outer, head);
  const double reflected =
      (trig_detail::kPio2Hi - 2.0 * head) + (trig_detail::kPio2Lo - 2.0 * tail);
  const double direct = head + tail;
  const double v = detail::sel(outer, reflected, direct);
  const double out = std::copysign(v, x), nan = (x - x) / (x - x);
  return detail::sel(a > 1.0, nan, out);
}
// acos(x) = pi/2 - asin(x) for |x| <= 1/2; 2 asin(sqrt((1 - x) / 2)) above; pi minus that below.
DC_VM_INLINE float acos(float x) {
#if defined(__FMA__)
  bool outer;
  float lo;
  const float a = detail::fabs_f(x);
  const float A = trig_detail::asin_lanes(a, outer, lo);
  // |x| <= 1/2: pi/2 - (x + x z P(z)), the small term taken from asin_lanes' pair
  const float mid = trig_detail::minus_pair(1.57079637f, -4.37113883e-08f, x,
                                            detail::copysign_f((A - a) + lo, x));
  const float below = trig_detail::minus_pair(3.14159274f, -8.74227766e-08f, 2.0f * A, 2.0f * lo);
  const float v = detail::sel(outer, detail::sel(x < 0.0f, below, 2.0f * A), mid);
  const float nan = (x - x) / (x - x);
  return detail::sel(a > 1.0f, nan, v);
#else
  const double a = std::fabs(static_cast<double>(x));
  bool outer;
  double head;
  const double s = trig_detail::asin_abs(a, trig_detail::DC_TBL(kAsinF), outer, head) + head;
  const bool neg = x < 0;
  const double twice = 2.0 * s, pi_minus = 3.1415926535897931 - twice;
  const double mid = trig_detail::kPio2Hi - detail::sel(neg, -s, s);
  const double v = detail::sel(outer, detail::sel(neg, pi_minus, twice), mid);
  const float out = static_cast<float>(v), nan = (x - x) / (x - x);
  return detail::sel(a > 1.0, nan, out);
#endif
}
DC_VM_INLINE double acos(double x) {
  const double a = std::fabs(x);
  bool outer;
  double head;
  const double tail = trig_detail::asin_abs(a, trig_detail::DC_TBL(kAsinD), outer, head);
  const double s = head + tail, sx = detail::sel(x < 0, -s, s);
  const double pi_hi = 2.0 * trig_detail::kPio2Hi, pi_lo = 2.0 * trig_detail::kPio2Lo;
  const double pi_minus = (pi_hi - 2.0 * head) + (pi_lo - 2.0 * tail), twice = 2.0 * s;
  const double mid = trig_detail::kPio2Hi + (trig_detail::kPio2Lo - sx);
  const double v = detail::sel(outer, detail::sel(x < 0, pi_minus, twice), mid);
  const double nan = (x - x) / (x - x);
  return detail::sel(a > 1.0, nan, v);
}

// sin(pi x) and cos(pi x), exact at the integers and half-integers: sinpi(n) = +-0 with the
// sign of x, cospi(n + 1/2) = +0. Odd in x and even in x respectively; inf and NaN give NaN.
DC_VM_INLINE float sinpi(float x) {
  const uint32_t bits = detail::fbits(x);
  const double a = std::fabs(static_cast<double>(x));
  double v = trig_detail::sincospi_abs<false>(a, false, trig_detail::DC_TBL(kSinPiF), trig_detail::DC_TBL(kCosPiF));
  v = trig_detail::flip(v, static_cast<uint64_t>(bits >> 31) << 63);
  const float out = static_cast<float>(v), nan = x - x;
  return detail::sel((bits & 0x7f800000u) == 0x7f800000u, nan, out);
}
DC_VM_INLINE float cospi(float x) {
  const uint32_t bits = detail::fbits(x);
  const double a = std::fabs(static_cast<double>(x));
  const double v =
      trig_detail::sincospi_abs<true>(a, false, trig_detail::DC_TBL(kSinPiF), trig_detail::DC_TBL(kCosPiF));
  const float out = static_cast<float>(v), nan = x - x;
  return detail::sel((bits & 0x7f800000u) == 0x7f800000u, nan, out);
}
DC_VM_INLINE double sinpi(double x) {
  const uint64_t bits = detail::dbits(x);
  const double a = std::fabs(x);
  const bool odd = ((bits >> 52) & 0x7ff) == 1075 && (bits & 1);  // 2^52 <= a < 2^53
  double v = trig_detail::sincospi_abs<false>(a, odd, trig_detail::DC_TBL(kSinPiD), trig_detail::DC_TBL(kCosPiD));
  v = trig_detail::flip(v, bits & (uint64_t(1) << 63));
  const double nan = x - x;
  return detail::sel((bits & 0x7ff0000000000000u) == 0x7ff0000000000000u, nan, v);
}
DC_VM_INLINE double cospi(double x) {
  const uint64_t bits = detail::dbits(x);
  const double a = std::fabs(x);
  const bool odd = ((bits >> 52) & 0x7ff) == 1075 && (bits & 1);
  const double v =
      trig_detail::sincospi_abs<true>(a, odd, trig_detail::DC_TBL(kSinPiD), trig_detail::DC_TBL(kCosPiD));
  const double nan = x - x;
  return detail::sel((bits & 0x7ff0000000000000u) == 0x7ff0000000000000u, nan, v);
}
}  // namespace vm
