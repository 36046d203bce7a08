// vm:: trigonometric functions and their inverses (see vmath.h).
// PLACEHOLDER BODIES: libm calls, to be replaced by the vectorisable versions.
namespace vm {
#define DC_VM_SHIM(name)                                          \
  inline float name(float x) { return std::name(x); }            \
  inline double name(double x) { return std::name(x); }
DC_VM_SHIM(sin) DC_VM_SHIM(cos) DC_VM_SHIM(tan) DC_VM_SHIM(asin) DC_VM_SHIM(acos)
DC_VM_SHIM(atan)
#undef DC_VM_SHIM
inline float atan2(float y, float x) { return std::atan2(y, x); }
inline double atan2(double y, double x) { return std::atan2(y, x); }
// sin(pi x) and cos(pi x), exact at the integers and half-integers.
inline float sinpi(float x) { return static_cast<float>(std::sin(M_PI * static_cast<double>(x))); }
inline double sinpi(double x) { return std::sin(M_PI * x); }
inline float cospi(float x) { return static_cast<float>(std::cos(M_PI * static_cast<double>(x))); }
inline double cospi(double x) { return std::cos(M_PI * x); }
}  // namespace vm
