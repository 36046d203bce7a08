#pragma once
// Which SIMD instruction set the CPU kernels use. See Note [Per-ISA kernels] in CMakeLists.txt.
#include <string>

namespace dc::cpu {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

// The best ISA this CPU supports (cpuid), capped by DEEPCORE_CPU_ISA if set.
Isa detected_isa();
// The ISA kernels dispatch to now; starts as detected_isa().
Isa active_isa();
// Forces kernels to an ISA (tests use this to cover every path on one machine).
// Throws ValueError if the CPU cannot run it.
void set_active_isa(Isa isa);
const char* isa_name(Isa isa);
Isa isa_from_name(const std::string& name);

// The active ISA's one of a function's three per-ISA builds.
template <typename Fn>
Fn for_active_isa(Fn generic, Fn avx2, Fn avx512) {
  switch (active_isa()) {
    case Isa::avx512: return avx512;
    case Isa::avx2: return avx2;
    default: return generic;
  }
}

}  // namespace dc::cpu
