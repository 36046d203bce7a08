// Helpers shared by vmath_exp.h, vmath_trig.h and vmath_special.h (see vmath.h): bit casts,
// bit-mask selects, polynomial evaluation. Needs scalar_math.h (bit_cast) included before it.
//
// Every helper is forced inline: the loop that calls a vm:: function vectorises only if its
// whole body ends up inside the loop, and GCC's size heuristics would otherwise keep the
// larger functions out of line. DC_VM_INLINE is #undef'd at the end of vmath.h.
#define DC_VM_INLINE DC_HD inline __attribute__((always_inline))
namespace vm {
namespace detail {

DC_VM_INLINE uint64_t dbits(double x) { return bit_cast<uint64_t>(x); }
DC_VM_INLINE double dfrom(uint64_t u) { return bit_cast<double>(u); }
DC_VM_INLINE uint32_t fbits(float x) { return bit_cast<uint32_t>(x); }
DC_VM_INLINE float ffrom(uint32_t u) { return bit_cast<float>(u); }

DC_VM_INLINE double copysign_d(double mag, double sgn) {  // mag >= 0 or NaN
  return dfrom(dbits(mag) | (dbits(sgn) & 0x8000000000000000ull));
}
DC_VM_INLINE float copysign_f(float mag, float sgn) {
  return ffrom(fbits(mag) | (fbits(sgn) & 0x80000000u));
}
DC_VM_INLINE double fabs_d(double x) { return dfrom(dbits(x) & 0x7fffffffffffffffull); }
DC_VM_INLINE float fabs_f(float x) { return ffrom(fbits(x) & 0x7fffffffu); }

// c ? a : b, as a bit mask. GCC 12 does not vectorise a ternary between computed values in a
// loop that mixes float and double lanes with 64-bit integer ones ("control flow in loop"),
// and may sink the computation of the unused side into a branch, whose conditional FP
// operation (which may trap) then keeps the loop from being if-converted; the blend uses both
// sides unconditionally. Conditions combine with & and |, not && and ||, for the same reason.
DC_VM_INLINE double sel(bool c, double a, double b) {
  const uint64_t m = 0 - static_cast<uint64_t>(c);
  return dfrom((dbits(a) & m) | (dbits(b) & ~m));
}
DC_VM_INLINE float sel(bool c, float a, float b) {
  const uint32_t m = 0 - static_cast<uint32_t>(c);
  return ffrom((fbits(a) & m) | (fbits(b) & ~m));
}
// The same with the condition as a mask (all ones or zero), for conditions computed from
// integer bits: converting an int to bool is an operation GCC 12 does not vectorise.
DC_VM_INLINE double sel_mask(uint64_t m, double a, double b) {
  return dfrom((dbits(a) & m) | (dbits(b) & ~m));
}
DC_VM_INLINE uint64_t bit_mask(int32_t v, int bit) {  // all ones where bit `bit` of v is set
  return uint64_t(0) - static_cast<uint64_t>((v >> bit) & 1);
}
// x clamped to [lo, hi] as a double; NaN stays NaN.
DC_VM_INLINE double clamp(double x, double lo, double hi) {
  return sel(x < lo, lo, sel(x > hi, hi, x));
}

constexpr double kShift52 = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
// Nearest integer for |y| < 2^51 (ties to even), without a call.
DC_VM_INLINE double round_int(double y) { return (y + kShift52) - kShift52; }

// Polynomial c0 + c1 x + c2 x^2 + ... with the coefficients as arguments, evaluated in pairs,
// (c0 + c1 x) + x^2 (c2 + c3 x) + ..., which halves the dependency chain of Horner's rule at
// the same cost.
template <typename T>
DC_VM_INLINE T poly(T, T, double c0) {
  return static_cast<T>(c0);
}
template <typename T>
DC_VM_INLINE T poly(T x, T, double c0, double c1) {
  return static_cast<T>(c0) + static_cast<T>(c1) * x;
}
template <typename T, typename... C>
DC_VM_INLINE T poly(T x, T x2, double c0, double c1, C... rest) {
  return (static_cast<T>(c0) + static_cast<T>(c1) * x) + x2 * poly<T>(x, x2, rest...);
}
// The same with the coefficients in a table (c[0] first), by Horner's rule: for functions
// templated on their table (float and double fits). Unrolled explicitly: GCC peels at most 16
// iterations by itself, and a loop left inside the element loop stops its vectorisation.
template <typename T, int N>
DC_VM_INLINE T horner(T t, const T (&c)[N]) {
  T p = c[N - 1];
DC_UNROLL(32)
  for (int i = N - 2; i >= 0; --i) p = p * t + c[i];
  return p;
}

}  // namespace detail
}  // namespace vm
