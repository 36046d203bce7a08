// The float32 row sum of sum_reduce (kernels/cpu/reduce.cpp: SumOp::row), compiled once per ISA
// (Note [Per-ISA kernels]): a plain loop over kSumLanes float lanes vectorises to four
// independent AVX-512 add chains here, where the baseline build of reduce.cpp gets SSE2 and
// one chain per 4 lanes (a third of the L3 bandwidth on a 4M-element sum).
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/reduce.h"

namespace dc::cpu::DC_ISA_NS {

namespace {
template <int64_t Lanes>
double sum_row(const float* p, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kSumBlock) {
    const int64_t m = std::min(kSumBlock, n - b);
    const float* q = p + b;
    float acc[Lanes] = {};
    int64_t i = 0;
    for (; i + Lanes <= m; i += Lanes)
      for (int64_t j = 0; j < Lanes; ++j) acc[j] += q[i + j];
    double block = 0;
    for (int64_t j = 0; j < Lanes; ++j) block += static_cast<double>(acc[j]);
    for (; i < m; ++i) block += static_cast<double>(q[i]);
    total += block;
  }
  return total;
}
}  // namespace

// Rows shorter than kSumShortRow keep 16 lanes: their 64 lane totals would cost more to add
// than the row (the 128-element runs of a mean over (0, 2) of 64x128x128).
double sum_row_f32(const float* p, int64_t n) {
  return n < kSumShortRow ? sum_row<16>(p, n) : sum_row<kSumLanes>(p, n);
}

}  // namespace dc::cpu::DC_ISA_NS
