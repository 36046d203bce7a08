// vm:: exponential, logarithmic, hyperbolic and error functions (see vmath.h).
// PLACEHOLDER BODIES: libm calls, to be replaced by the vectorisable versions.
namespace vm {
#define DC_VM_SHIM(name)                                          \
  inline float name(float x) { return std::name(x); }            \
  inline double name(double x) { return std::name(x); }
DC_VM_SHIM(exp) DC_VM_SHIM(exp2) DC_VM_SHIM(expm1) DC_VM_SHIM(log) DC_VM_SHIM(log2)
DC_VM_SHIM(log10) DC_VM_SHIM(log1p) DC_VM_SHIM(sinh) DC_VM_SHIM(cosh) DC_VM_SHIM(tanh)
DC_VM_SHIM(asinh) DC_VM_SHIM(acosh) DC_VM_SHIM(atanh) DC_VM_SHIM(erf) DC_VM_SHIM(erfc)
#undef DC_VM_SHIM
inline float pow(float x, float y) { return std::pow(x, y); }
inline double pow(double x, double y) { return std::pow(x, y); }
}  // namespace vm
