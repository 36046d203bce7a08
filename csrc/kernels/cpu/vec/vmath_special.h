// vm:: special functions: erfinv, lgamma, digamma, polygamma, i0, i1 (see vmath.h).
//
// Note [Branch-free special functions]
// Each function is computed in double and, for float, rounded once, so the float results are
// within about 1 ulp without a separate float design (except float erfinv, computed in float
// for speed: within 2 ulp). The shape is the same throughout: a
// reduction with a fixed trip count (a recurrence selected per lane) onto one interval where
// a polynomial holds, an asymptotic series for large arguments, and the reflection formula
// (through vm::sinpi / vm::cospi) for negative ones; every branch becomes a select, so all of
// them are evaluated. Polynomial coefficients are near-minimax fits (Chebyshev interpolation
// in mpmath) made for this file; each comment gives the fit's relative error.
// Known limits (measured by tests/cpp/test_vmath_trig.cpp):
// - double lgamma and digamma lose relative accuracy near their zeros on the negative axis
//   (the reflection subtracts nearly equal numbers); float is within 1e-6 absolute there.
// - polygamma sums 12 terms before its asymptotic series, so it is accurate for x > -2 only;
//   `polygamma_needs_slow` reports the rest. n is at most 170 (n! overflows beyond).
// - Where torch differs from the mathematical value at a special point we follow torch:
//   i0(+-inf) = NaN, digamma(-0) = +inf, digamma(-inf) = NaN, polygamma(n, -inf) = NaN.
namespace vm {
namespace special_detail {
using detail::horner;
using detail::round_int;
using detail::sel;

// lgamma(2 + t) / t for |t| <= 1/2: relative error 2^-40.1 (float), 2^-55.5 (double).
DC_HD_TABLE(double, kLgammaF, [13], {
    0.42278433509846713,     0.32246703342004873,   -0.06735230105130044,    0.020580808882117916,
    -0.007385551240791602,   0.0028904958630843014, -0.0011927471573807307,  0.0005098661348137004,
    -0.00022324653987287443, 9.816870450896373e-05, -4.4324684533065815e-05, 2.4487052975853987e-05,
    -1.1296499102214296e-05})
DC_HD_TABLE(double, kLgammaD, [22], {
    0.42278433509846713,     0.3224670334241132,    -0.06735230105319809,    0.020580808427784546,
    -0.0073855510286741114,  0.0028905103307415836, -0.0011927539116954181,  0.0005096695247392805,
    -0.00022315475870367355, 9.945751290176889e-05, -4.492623209360517e-05,  2.05072105479096e-05,
    -9.439541921024715e-06,  4.374892520636031e-06, -2.0388192484564222e-06, 9.549510392959532e-07,
    -4.511181191016309e-07,  2.129692727315228e-07, -9.501416425423385e-08,  4.509983567521808e-08,
    -3.1314285360886705e-08, 1.4963573191192003e-08})
// B_2k / (2k (2k - 1)): Stirling's series for lgamma.
DC_HD_TABLE(double, kStirling, [8], {
    0.08333333333333333,   -0.002777777777777778,  0.0007936507936507937, -0.0005952380952380953,
    0.0008417508417508417, -0.0019175269175269176, 0.00641025641025641,   -0.029550653594771242})
// Its first 4 terms: 2^-45 relative from y = 10 on (float results).
DC_HD_TABLE(double, kStirlingF, [4], {0.08333333333333333, -0.002777777777777778,
                                  0.0007936507936507937, -0.0005952380952380953})
constexpr double kLogPi = 1.1447298858494002, kHalfLog2Pi = 0.9189385332046728;

// lgamma(x) for any x. |x| < 10 moves to 2 + t, t = |x| - round(|x|), by lgamma(y) =
// lgamma(y + 1) - log(y) (at most 2 steps up) or lgamma(y) = lgamma(y - 1) + log(y - 1) (up
// to 8 down); the products go through one log. Above 10, Stirling. x < 0 reflects:
// lgamma(x) = log(pi) - log|x sinpi(x)| - lgamma(-x).
template <int N>
DC_VM_INLINE double lgamma_impl(double x, const double (&q)[N]) {
  const double y = std::fabs(x);
  const bool big = y >= 10.0;
  const double yc = sel(big, 10.0, y);  // NaN stays NaN
  const double r = round_int(yc), k = r - 2.0;
  const double t = yc - r;  // exact, in [-1/2, 1/2]
  double prod = 1.0;
  for (int j = 1; j <= 8; ++j) {
    const double f = yc - j;  // exact
    prod *= sel(j <= k, f, 1.0);
  }
  const double two_up = yc * (yc + 1.0);
  prod = sel(k == -1.0, yc, sel(k == -2.0, two_up, prod));
  const double log_arg = vm::log(sel(big, y, prod));
  const double base = t * horner(t, q);
  const double up = base - log_arg, down = base + log_arg;
  const double near = sel(k < 0.0, up, down);
  const double w = 1.0 / y, w2 = w * w;
  const double stirling =
      (y - 0.5) * (log_arg - 1.0) + ((kHalfLog2Pi - 0.5) + w * horner(w2, DC_TBL(kStirling)));
  const double pos = sel(big, stirling, near);
  // Below 2^-300, lgamma(x) = -log|x| to double precision (and x sinpi(x) would underflow).
  const bool tiny = std::fabs(x) < 0x1p-300;
  const double xsin = std::fabs(x * vm::sinpi(x));
  const double xs = sel(tiny, std::fabs(x), xsin);
  const double log_xs = vm::log(xs);
  const double full = (kLogPi - log_xs) - pos, minus_log = -log_xs;
  const double reflected = sel(xs == 0.0, double(INFINITY), sel(tiny, minus_log, full));
  return sel(std::fabs(x) == INFINITY, double(INFINITY), sel(x < 0.0, reflected, pos));
}

// sin(pi r) / r in r^2 for |r| <= 1/2: relative error 2^-54.5.
DC_HD_TABLE(double, kSinPiR, [9], {
    3.141592653589793,    -5.167712780049969,   2.5501640398773007,
    -0.5992645293189447,  0.0821458865731029,   -0.007370430505916944,
    0.0004662998161898394, -2.1903497074626018e-05, 7.697826768224191e-07})

// lgamma for float arguments: lgamma_impl with the two logs and sinpi merged or shortened
// (7.8 -> 6.5 ns an element in the kernel loop). The reflection still needs ~2^-43 absolute
// near the negative zeros of lgamma (down to -9; at -10 and below the nearest float is
// 1/10! from the pole), so one full-precision log is kept:
// - y < 10: pos = base +- log(prod), reflected = log(pi) - base - log(xs prod^+-1), so one
//   log serves both (xs / prod is |sinpi x| or |sinpi x| / (y + 1) for k < 0);
// - y >= 10: that log takes xs, and Stirling's log(y) only needs 2^-34 (detail::log_lo);
// - |sinpi(x)| by one polynomial: every float from 2^23 up is an integer (sinpi = 0).
// 1 / y (Stirling) and 1 / (y + 1) share one division.
DC_VM_INLINE float lgamma_float(float xf) {
  const double x = xf;
  const double y = std::fabs(x);
  const bool big = y >= 10.0, neg = x < 0.0;
  const double yc = sel(big, 10.0, y);
  const double r = round_int(yc), k = r - 2.0;
  const double t = yc - r;
  double prod = 1.0;
  for (int j = 1; j <= 8; ++j) {
    const double f = yc - j;
    prod *= sel(j <= k, f, 1.0);
  }
  const double two_up = yc * (yc + 1.0);
  prod = sel(k == -1.0, yc, sel(k == -2.0, two_up, prod));
  const double inv = 1.0 / sel(big, y, yc + 1.0);
  const bool frac = y < 0x1p23;
  const double rr = y - round_int(sel(frac, y, 0.0)), rr2 = rr * rr;
  const double sp = sel(frac, std::fabs(rr * horner(rr2, DC_TBL(kSinPiR))), 0.0), xs = y * sp;
  const double ratio = sel(k == -1.0, sp, sp * inv), xs_prod = xs * prod;
  const double refl_arg = sel(k < 0.0, ratio, xs_prod);
  const double log_arg = vm::log(sel(big | neg, sel(big, xs, refl_arg), prod));
  const double base = t * horner(t, DC_TBL(kLgammaF));
  const double up = base - log_arg, down = base + log_arg;
  const double near = sel(k < 0.0, up, down);
  const double log_y = detail::log_lo(sel(big, y, 10.0));
  const double stirling =
      (y - 0.5) * (log_y - 1.0) + ((kHalfLog2Pi - 0.5) + inv * horner(inv * inv, DC_TBL(kStirlingF)));
  const double pos = sel(big, stirling, near);
  const double refl_near = (kLogPi - base) - log_arg, refl_big = (kLogPi - log_arg) - stirling;
  const double reflected = sel(xs == 0.0, double(INFINITY), sel(big, refl_big, refl_near));
  return static_cast<float>(sel(y == INFINITY, double(INFINITY), sel(neg, reflected, pos)));
}

// digamma(x0 + s) / s, x0 = 1.46163... its positive root, for x0 + s in [1, 2]: relative
// error 2^-54.0.
DC_HD_TABLE(double, kDigammaD, [25], {
    0.9676722454476212,     -0.4427631689835921,    0.2584997609556511,     -0.1639427054424061,
    0.10782405069124523,    -0.07219956125649837,   0.04880428816556138,    -0.03316112647297097,
    0.022597648171462245,   -0.015424765939714499,  0.01053879315205164,    -0.0072045343210035305,
    0.004926756858062814,   -0.0033697926833388334, 0.002305382802163756,   -0.0015771169322652348,
    0.0010770609629932597,  -0.0007363047968131446, 0.0005127450196508451,  -0.00035556858791896184,
    0.00021594374926787386, -0.0001278437874808083, 0.00013528299972540283, -0.00013546967989030024,
    5.596002350342592e-05})
constexpr double kDigammaRootHi = 1.4616321449683622, kDigammaRootLo = 9.549995429965697e-17;
// B_2k / (2k): the asymptotic series of digamma.
DC_HD_TABLE(double, kDigammaAsym, [7], {
    0.08333333333333333,  -0.008333333333333333, 0.003968253968253968, -0.004166666666666667,
    0.007575757575757576, -0.021092796092796094, 0.08333333333333333})

// digamma(x): y < 10 moves to z = y - floor(y) + 1 in [1, 2) by digamma(y) = digamma(y - 1) +
// 1 / (y - 1) (up to 8 steps, the fractions summed as one) or digamma(y) = digamma(y + 1) -
// 1 / y; above 10, the asymptotic series. x < 0 reflects: digamma(x) = digamma(1 - x) -
// pi cospi(x) / sinpi(x), NaN at the negative integers (as torch).
template <int N>
DC_VM_INLINE double digamma_impl(double x, const double (&rc)[N]) {
  const bool neg = x < 0.0;
  const double one_minus = 1.0 - x;
  const double y = sel(neg, one_minus, x);
  const bool big = y >= 10.0;
  const double yc = sel(big, 1.5, y);
  const double rounded = round_int(yc), below = rounded - 1.0;
  const double fl = sel(rounded > yc, below, rounded);
  const double k = fl - 1.0;  // -1 .. 8
  const double z_up = yc + 1.0, z_down = yc - k;
  const double z = sel(k < 0.0, z_up, z_down);  // in [1, 2]
  const double s = (z - kDigammaRootHi) - kDigammaRootLo;
  const double base = s * horner(s, rc);
  double num = 0.0, den = 1.0;  // sum of 1 / (y - j), j = 1..k, as num / den
  for (int j = 1; j <= 8; ++j) {
    const double a = yc - j;
    const bool on = j <= k;
    const double num_next = num * a + den, den_next = den * a;
    num = sel(on, num_next, num);
    den = sel(on, den_next, den);
  }
  num = sel(big, 1.0, sel(k < 0.0, -1.0, num));
  den = sel(big, y, sel(k < 0.0, yc, den));  // y = -0 gives +inf, as torch
  const double frac = num / den, w2 = frac * frac;
  const double asym = vm::log(y) - (0.5 * frac + w2 * horner(w2, DC_TBL(kDigammaAsym)));
  const double near = base + frac;
  const double pos = sel(big, asym, near);
  const double sp = vm::sinpi(x);
  const double cot_term = pos - 3.141592653589793 * vm::cospi(x) / sp;
  const double reflected = sel(sp == 0.0, double(NAN), cot_term);
  return sel(neg, reflected, pos);
}

// Power m >= 0 of v, by squaring over the 8 bits of m (m < 256; m is loop-invariant, so the
// selects do not depend on the data).
DC_VM_INLINE double powi(double v, int m) {
  double acc = 1.0;
DC_UNROLL(8)
  for (int b = 0; b < 8; ++b) {
    const double next = acc * v;
    acc = detail::sel_mask(detail::bit_mask(m, b), next, acc);
    v *= v;
  }
  return acc;
}
// B_2j / (2j)!: the Euler-Maclaurin tail of the Hurwitz zeta function.
DC_HD_TABLE(double, kEulerMaclaurin, [8], {
    0.08333333333333333,  -0.001388888888888889,  3.3068783068783067e-05, -8.267195767195768e-07,
    2.08767569878681e-08, -5.284190138687493e-10, 1.3382536530684679e-11, -3.3896802963225829e-13})
constexpr int kZetaTerms = 12;

// polygamma(n, x) = (-1)^(n+1) n! zeta(n + 1, x) for n >= 1: 12 terms of the Hurwitz sum, then
// Euler-Maclaurin at a = x + 12: zeta(s, a) ~ a^(1-s) / (s-1) + a^-s / 2 +
// sum_j B_2j / (2j)! s (s+1) ... (s+2j-2) a^(-s-2j+1).
// What depends on n alone, computed once per loop rather than per element.
struct PolygammaConst {
  int n;
  double fact;  // n!
  double c[8];  // B_2j / (2j)! * s (s+1) ... (s+2j-2), s = n + 1
};
DC_VM_INLINE PolygammaConst polygamma_const(int n) {
  PolygammaConst k{n, 1.0, {}};
  for (int i = 2; i <= n; ++i) k.fact *= i;
  const int s = n + 1;
  double poch = s;
  for (int j = 0; j < 8; ++j) {
    k.c[j] = DC_TBL(kEulerMaclaurin)[j] * poch;
    poch *= double(s + 2 * j + 1) * double(s + 2 * j + 2);
  }
  return k;
}
DC_VM_INLINE double polygamma_eval(const PolygammaConst& k, double x) {
  const int n = k.n, s = n + 1;
  // Unrolled by hand of the compiler: the element loop vectorises only once no inner loop
  // is left in it, and these exceed GCC's own complete-unrolling limits.
  double sum = 0.0;
DC_UNROLL(12)
  for (int i = 0; i < kZetaTerms; ++i) sum += 1.0 / powi(x + i, s);
  const double a = x + kZetaTerms, r = 1.0 / a, r2 = r * r;
  double series = k.c[7];
DC_UNROLL(8)
  for (int j = 6; j >= 0; --j) series = series * r2 + k.c[j];
  const double tail = (1.0 / (s - 1) + r * (0.5 + r * series)) / powi(a, n);
  const double zeta = sum + tail;
  const double sign = n & 1 ? 1.0 : -1.0;
  const bool pole = (x <= 0.0) & (x == round_int(x));  // also -inf
  const double v = sign * k.fact * zeta, zero = sign * 0.0, inf = sign * INFINITY;
  return sel(x == INFINITY, zero, sel(x == -INFINITY, double(NAN), sel(pole, inf, v)));
}
DC_VM_INLINE double polygamma_impl(int n, double x) {
  return polygamma_eval(polygamma_const(n), x);
}

// erfinv: x = a P(w), w = -log(1 - a^2), in three pieces (Giles' form, fitted here): P in
// w - 3.125 for w < 6.25 (relative error 2^-54.5), in sqrt(w) - 3.25 for w < 16 (2^-54.6)
// and in sqrt(w) - 5 up to a = 1 - 2^-53 (w = 36.7; 2^-54.6). No correction step: every
// piece is computed and one selected. From a = 1/2 on, 1 - a^2 is taken as 2d - d^2 with
// d = 1 - a exact: in 1 - a a the rounding of a a would be large against the small result.
// Max 2.5 ulp, near the w = 16 seam.
DC_HD_TABLE(double, kErfinvCentralD, [25], {
    1.6536545626831027, 0.24015818242558834, -0.006033670871426851, -0.0007407025341546431,
    0.00018673420801981186, -1.3882523393957483e-05, -1.3654691758785656e-06, 4.23478816822246e-07,
    -2.907039127564132e-08, -4.1126604371632185e-09, 1.051223377050429e-09, -5.414303283919504e-11,
    -1.2978805369932565e-11, 2.6305268312595183e-12, -8.07192593899004e-14, -4.0020031087558496e-14,
    6.521333511502239e-15, -3.94018812230432e-17, -1.2215637192404172e-16, 1.5510787009902526e-17,
    6.075050702072414e-19, -3.4734793888538036e-19, 1.999259988861535e-20, 3.194015548136271e-21,
    -3.5932028927020693e-22})
DC_HD_TABLE(double, kErfinvMiddleD, [21], {
    3.0838856104922208, 1.0052589676941655, 0.005370914553555033, -0.0037512085082247342,
    0.00249144209795696, -0.0016882755354488555, 0.0009532893415794137, -0.0003550378137852452,
    2.4031512865758357e-05, 6.828711739251955e-05, -4.732068066544697e-05, 1.2465028224217455e-05,
    2.93257845538535e-06, -3.985705945648173e-06, 1.4815977874022539e-06, -2.761716223816241e-08,
    -2.4549818963339823e-07, 1.3158663683192966e-07, -2.091453334773126e-08,
    -1.5305397964152548e-08, 7.680200479077053e-09})
DC_HD_TABLE(double, kErfinvTailD, [19], {
    4.849906401408584, 1.0103004648645455, -0.00013871931837490978, -0.00021503011983176173,
    7.599527795572463e-05, -1.968177065090797e-05, 4.5260539817712815e-06, -9.930296692184754e-07,
    2.2904532246081713e-07, -6.75553063722227e-08, 2.9040258989220123e-08, -1.5256673202852047e-08,
    7.784923370804637e-09, -3.469670973211961e-09, 1.3518911214656604e-09, -4.3846761630243694e-10,
    5.055364219128875e-11, 4.3070321963774864e-11, -1.6197071045640154e-11})
DC_VM_INLINE double erfinv_double(double y) {
  const double a = std::fabs(y);
  const double ac = sel(a < 1.0, a, 0.5);  // keeps the log finite; a >= 1 is replaced below
  const double d = 1.0 - ac;
  const double m_small = 1.0 - ac * ac, m_big = 2.0 * d - d * d;
  const double w = -vm::log(sel(ac < 0.5, m_small, m_big));
  const double sw = std::sqrt(w);
  const double central = horner(w - 3.125, DC_TBL(kErfinvCentralD));
  const double middle = horner(sw - 3.25, DC_TBL(kErfinvMiddleD)), tail = horner(sw - 5.0, DC_TBL(kErfinvTailD));
  double x = ac * sel(w < 6.25, central, sel(w < 16.0, middle, tail));
  x = sel(a == 1.0, double(INFINITY), sel(a < 1.0, x, double(NAN)));
  return std::copysign(x, y);  // NaN stays NaN
}

// erfinv for float results, in float arithmetic (full vector width): the same form with
// two pieces and P of degree 9,
// relative error 2^-27.2, in w - 2.5 for w < 5 and in sqrt(w) - 3 above (to a = 1 - 2^-24,
// w = 15.94).
// 1 - a^2 is exact in double and rounded once; the leading coefficient is split in two
// floats (alone it is off by 2^-24.8). Max 1.95 ulp (float Horner and the log make most).
DC_HD_TABLE(float, kErfinvCentralF, [9], {
    0.24664027905463662f,    -0.004177392875203149f,  -0.001252726391773229f,
    0.00021834938623976644f, -4.9724196894547514e-06f, -3.4639852676333717e-06f,
    4.6813134805534123e-07f, 2.3335967195708108e-08f, -8.931925970244222e-09f})
DC_HD_TABLE(float, kErfinvTailF, [9], {
    1.0016750658410518f,    0.009445743820559802f,  -0.0076391390344015256f,
    0.005682678522078122f,  -0.003587815770102154f, 0.001497222508820111f,
    -7.604790170802735e-05f, -0.0003199266729325994f, 0.00012924175469266932f})
DC_VM_INLINE float erfinv_float(float y) {
  const float a = std::fabs(y);
  const double ad = a;
  const float m = static_cast<float>(1.0 - ad * ad);
  const float w = -vm::log(sel(a < 1.0f, m, 0.5f));  // a >= 1 is replaced below
  const float tc = w - 2.5f, ts = std::sqrt(w) - 3.0f;
  const float central =
      1.5014094114303589f + (-5.0980029975278285e-08f + tc * horner(tc, DC_TBL(kErfinvCentralF)));
  const float tail =
      2.832976818084717f + (-2.3610853716604652e-08f + ts * horner(ts, DC_TBL(kErfinvTailF)));
  float x = a * sel(w < 5.0f, central, tail);
  x = sel(a == 1.0f, float(INFINITY), sel(a < 1.0f, x, float(NAN)));
  return std::copysign(x, y);  // NaN stays NaN
}

// i0: |x| <= 8 a polynomial in t = x^2 / 4 (relative error 2^-37.3 float, 2^-55.0 double);
// above, e^|x| / sqrt|x| times a polynomial in 1 / |x| (2^-32.7, 2^-52.2).
DC_HD_TABLE(double, kI0SmallF, [13], {
    1.000000000005861,     0.9999999998762107,    0.2500000004327697,    0.027777777183973045,
    0.001736111533897476,  6.944426557484554e-05, 1.929060824170048e-06, 3.935881793983763e-08,
    6.162032925775774e-10, 7.502613866109468e-12, 8.109645077326972e-14, 4.4354521629047e-16,
    8.008129540710816e-18})
DC_HD_TABLE(double, kI0SmallD, [23], {1.0,
                                  1.0,
                                  0.25,
                                  0.027777777777777776,
                                  0.001736111111111111,
                                  6.944444444444444e-05,
                                  1.9290123456790124e-06,
                                  3.936759889140842e-08,
                                  6.151187326782565e-10,
                                  7.594058428126622e-12,
                                  7.594058428126635e-14,
                                  6.276081345558939e-16,
                                  4.358389823309684e-18,
                                  2.5789288894603046e-20,
                                  1.315780046500816e-22,
                                  5.84791123569609e-25,
                                  2.2843409553373988e-27,
                                  7.904255707551111e-30,
                                  2.4397672666141356e-32,
                                  6.751717688191627e-35,
                                  1.7058075226461291e-37,
                                  3.5332176280755513e-40,
                                  1.1193380781322778e-42})
DC_HD_TABLE(double, kI0LargeF, [9], {0.39894228039202057, 0.04986779710657781,  0.02804820916012883,
                                 0.02939567428506315, 0.038811152590189385, 0.18897824878454234,
                                 -0.5022600378316464, 1.6179158202816548,   13.801596376461818})
DC_HD_TABLE(double, kI0LargeD, [23], {
    0.3989422804014327,     0.04986778505010138,     0.028050629200526308,  0.029219343433309654,
    0.04476075235844737,    0.08718848829871338,     0.6498655373405138,    -36.191303707146034,
    2379.992719826009,      -116003.22508652722,     4366882.030638348,     -128456787.36916725,
    2977368334.089229,      -54594034117.30243,      792083964019.9021,     -9058765454645.9,
    80994728550058.17,      -558338222939883.56,     2903063962296260.0,    -1.0994172952273044e+16,
    2.8590740304120956e+16, -4.5625549860525896e+16, 3.3678142630566788e+16})

// i1(x) = x / 2 * P(x^2 / 4) for |x| <= 8 (relative error 2^-41.3 float, 2^-54.9 double);
// above, e^|x| / sqrt|x| times a polynomial in 1 / |x| (2^-32.5, 2^-52.0). Odd: the sign of x
// is copied last, so -0 stays -0.
DC_HD_TABLE(double, kI1SmallF, [13], {
    1.0000000000004046,    0.49999999999145645,   0.08333333336320377,   0.0069444444034538425,
    0.00034722225141306756, 1.1574061720788167e-05, 2.75576541588554e-07, 4.920342874452987e-09,
    6.842155095125045e-11, 7.530734908670002e-13, 7.261294476422638e-15, 3.949956497295162e-17,
    5.905300851024598e-19})
DC_HD_TABLE(double, kI1SmallD, [23], {
    1.0,                    0.5,                    0.08333333333333333,    0.006944444444444444,
    0.00034722222222222224, 1.1574074074074073e-05, 2.755731922398589e-07,  4.920949861426052e-09,
    6.834652585313961e-11,  7.594058428126623e-13,  6.903689480115117e-15,  5.230067787965889e-17,
    3.3526075563903877e-19, 1.842092063921186e-21,  8.771866974574793e-24,  3.654944539037958e-26,
    1.3437298681648408e-28, 4.391258370057086e-31,  1.2840684855854501e-33, 3.376400512998614e-36,
    8.112474503481266e-39,  1.6184266849195017e-41, 4.797614339354123e-44})
DC_HD_TABLE(double, kI1LargeF, [9], {0.3989422804105042,   -0.1496033667607767,  -0.04674872881709937,
                                 -0.04107447619505759, -0.05200249115700312, -0.19872029645105382,
                                 0.3097743166315692,   -0.5394092042162402,  -18.19733751648398})
DC_HD_TABLE(double, kI1LargeD, [23], {
    0.39894228040143265,  -0.14960335515045284,   -0.04675104860377485,  -0.04090710030467948,
    -0.05754578806329407, -0.10704400326357605,   -0.7248636724058307,   38.92609645464185,
    -2557.3413150176284,  124327.52529998173,     -4668208.797518015,    136963410.3091928,
    -3166313465.576175,   57910621274.20574,      -838115700349.1146,    9562186385275.068,
    -85298577556528.67,   586711674514151.9,      -3044209698315942.0,   1.1505909762111434e+16,
    -2.9865828662099744e+16, 4.757708828928665e+16, -3.506121169747626e+16})
// i0 (kI1 false) and i1 (kI1 true): the same reduction, i1's series times x / 2, its sign that
// of x.
template <bool kI1, int N1, int N2>
DC_VM_INLINE double i0_i1_impl(double x, const double (&ps)[N1], const double (&pl)[N2]) {
  const double a = std::fabs(x);
  const bool large = a > 8.0;
  const double quarter_sq = 0.25 * a * a;
  const double t = sel(large, 16.0, quarter_sq);
  const double u = 1.0 / sel(large, a, 8.0);
  const double e = vm::exp(0.5 * a);  // e^a as e * e: finite wherever i0 is
  const double asym = e * (e * (horner(u, pl) * std::sqrt(u)));
  double series = horner(t, ps);
  if (kI1) series = (0.5 * a) * series;
  const double v = sel(large, asym, series);
  const double out = sel(a == INFINITY, double(NAN), v);  // torch gives NaN at +-inf
  if (kI1) return std::copysign(out, x);
  return out;
}

}  // namespace special_detail

DC_VM_INLINE float lgamma(float x) { return special_detail::lgamma_float(x); }
DC_VM_INLINE double lgamma(double x) {
  return special_detail::lgamma_impl(x, special_detail::DC_TBL(kLgammaD));
}
// float uses the double polynomial too: the reflection near the negative roots needs the
// absolute accuracy.
DC_VM_INLINE float digamma(float x) {
  return static_cast<float>(special_detail::digamma_impl(x, special_detail::DC_TBL(kDigammaD)));
}
DC_VM_INLINE double digamma(double x) {
  return special_detail::digamma_impl(x, special_detail::DC_TBL(kDigammaD));
}
DC_VM_INLINE float erfinv(float y) { return special_detail::erfinv_float(y); }
DC_VM_INLINE double erfinv(double y) { return special_detail::erfinv_double(y); }
DC_VM_INLINE float i0(float x) {
  return static_cast<float>(
      special_detail::i0_i1_impl<false>(x, special_detail::DC_TBL(kI0SmallF), special_detail::DC_TBL(kI0LargeF)));
}
DC_VM_INLINE double i0(double x) {
  return special_detail::i0_i1_impl<false>(x, special_detail::DC_TBL(kI0SmallD), special_detail::DC_TBL(kI0LargeD));
}
// i1 = d/dx i0.
DC_VM_INLINE float i1(float x) {
  return static_cast<float>(
      special_detail::i0_i1_impl<true>(x, special_detail::DC_TBL(kI1SmallF), special_detail::DC_TBL(kI1LargeF)));
}
DC_VM_INLINE double i1(double x) {
  return special_detail::i0_i1_impl<true>(x, special_detail::DC_TBL(kI1SmallD), special_detail::DC_TBL(kI1LargeD));
}
// n = 0 is digamma. Accurate for x > -2; see polygamma_needs_slow.
DC_VM_INLINE float polygamma(int n, float x) {
  return n == 0 ? digamma(x) : static_cast<float>(special_detail::polygamma_impl(n, x));
}
DC_VM_INLINE double polygamma(int n, double x) {
  return n == 0 ? digamma(x) : special_detail::polygamma_impl(n, x);
}
template <typename T>
DC_VM_INLINE bool polygamma_needs_slow(int n, T x) {
  return (n > 0) & (x < T(-2)) & (x != std::floor(x));  // & : ORed over rows, vectorised
}
}  // namespace vm
