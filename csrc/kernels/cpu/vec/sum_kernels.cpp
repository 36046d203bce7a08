// The float32 row sum of sum_reduce (kernels/cpu/reduce.cpp: SumOp::row), compiled once per ISA
// (Note [Per-ISA kernels]): the loop of sum_lanes.h vectorises to four independent AVX-512 add
// chains here, where the baseline build of reduce.cpp gets SSE2 and one chain per 4 lanes (a
// third of the L3 bandwidth on a 4M-element sum).
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
