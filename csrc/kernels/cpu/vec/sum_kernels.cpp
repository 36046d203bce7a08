// The float32 row sum of sum_reduce (kernels/cpu/reduce.cpp: SumOp::row), compiled once per ISA
// (Note [Per-ISA kernels]): a plain loop over kSumLanes float lanes vectorises to four
// independent AVX-512 add chains here, where the baseline build of reduce.cpp gets SSE2 and
// one chain per 4 lanes (a third of the L3 bandwidth on a 4M-element sum).
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/reduce.h"

namespace dc::cpu::DC_ISA_NS {

double sum_row_f32(const float* p, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kSumBlock) {
    const int64_t m = std::min(kSumBlock, n - b);
    const float* q = p + b;
    float acc[kSumLanes] = {};
    int64_t i = 0;
    for (; i + kSumLanes <= m; i += kSumLanes)
      for (int64_t j = 0; j < kSumLanes; ++j) acc[j] += q[i + j];
    double block = 0;
    for (int64_t j = 0; j < kSumLanes; ++j) block += static_cast<double>(acc[j]);
    for (; i < m; ++i) block += static_cast<double>(q[i]);
    total += block;
  }
  return total;
}

}  // namespace dc::cpu::DC_ISA_NS
