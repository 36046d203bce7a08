#include "kernels/cpu/isa.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

namespace dc::cpu {
namespace {

Isa hardware_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
  return Isa::generic;
}

Isa initial_isa() {
  Isa hw = hardware_isa();
  if (const char* env = std::getenv("DEEPCORE_CPU_ISA")) {
    Isa wanted = isa_from_name(env);
    if (static_cast<int>(wanted) < static_cast<int>(hw)) return wanted;
  }
  return hw;
}

std::atomic<int>& active() {
  static std::atomic<int> isa{static_cast<int>(initial_isa())};
  return isa;
}

}  // namespace

Isa detected_isa() {
  static const Isa isa = initial_isa();
  return isa;
}

Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  DC_CHECK(static_cast<int>(isa) <= static_cast<int>(hardware_isa()), ValueError,
           "[set_isa] this CPU cannot run ", isa_name(isa), " kernels (best: ",
           isa_name(hardware_isa()), ")");
  active().store(static_cast<int>(isa));
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

Isa isa_from_name(const std::string& name) {
  if (name == "avx512") return Isa::avx512;
  if (name == "avx2") return Isa::avx2;
  if (name == "generic") return Isa::generic;
  DC_THROW(ValueError, "[set_isa] unknown ISA '", name, "': expected avx512, avx2 or generic");
}

}  // namespace dc::cpu
