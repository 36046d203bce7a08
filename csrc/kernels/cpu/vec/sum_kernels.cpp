// The float32 row sum of sum_reduce (kernels/cpu/reduce.cpp: SumOp::row), compiled once per ISA
// (Note [Per-ISA kernels]): the loop of sum_lanes.h vectorises to four independent AVX-512 add
// chains here, SSE2 in the baseline build of reduce.cpp. A sum of 4M floats from L3 (a C++
// loop of 3,000 calls, one run) took 140-145 us on two threads against 165-177 us for the
// baseline build of the same loop; on one thread both read at the same ~60 GB/s.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/reduce.h"

namespace dc::cpu::DC_ISA_NS {
namespace {
#include "kernels/cpu/vec/sum_lanes.h"
}  // namespace

double sum_row_f32(const float* p, int64_t n) {
  return sum_float_row(n, [p](int64_t i) { return p[i]; });
}

}  // namespace dc::cpu::DC_ISA_NS
