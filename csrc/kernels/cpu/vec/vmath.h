// Vector math: branch-free float32 and float64 versions of the transcendental functions, in
// namespace `vm` (vm::tanh(x)). Written with selects instead of branches and without calls,
// so that a plain loop over an array compiles to SIMD code for each ISA. Included only by
// csrc/kernels/cpu/vec/*.cpp, inside the per-ISA namespace (Note [Per-ISA kernels]), and by
// the C++ tests; the includer provides <cmath>, <cstdint>, <cstring> and <limits> first.
//
// Accuracy of each function is measured by tests/cpp/test_vmath_*.cpp (ulp against a
// higher-precision reference) and, on the ops, by tests/test_ulp.py.
#include "kernels/cpu/vec/scalar_math.h"
#include "kernels/cpu/vec/vmath_detail.h"
#include "kernels/cpu/vec/vmath_exp.h"
#include "kernels/cpu/vec/vmath_trig.h"
#include "kernels/cpu/vec/vmath_special.h"

namespace vm {
// c ? a : b for kernels built on the vm:: functions, as a bit-mask select (see detail::sel):
// with a ternary between computed values GCC 12 leaves such a loop unvectorised.
DC_HD inline float select(bool c, float a, float b) { return detail::sel(c, a, b); }
DC_HD inline double select(bool c, double a, double b) { return detail::sel(c, a, b); }
}  // namespace vm
#undef DC_VM_INLINE
