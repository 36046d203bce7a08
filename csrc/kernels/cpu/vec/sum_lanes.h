// The float-lane row sum of sum_reduce, shared by SumOp::row (reduce.cpp, baseline build: the
// 16-bit inputs) and sum_row_f32 (vec/sum_kernels.cpp, once per ISA: float32). Included inside
// an anonymous namespace, like row_reduce.h, so every includer compiles its own copy.
// The includer provides <algorithm>, <cstdint> and kernels/cpu/reduce.h.
#ifndef DC_SUM_LANES_BODY
#define DC_SUM_LANES_BODY

// sum of value(i) over i < n: Lanes float lanes, flushed to a double total every kSumBlock
// elements, then the block's tail in double.
template <int64_t Lanes, typename Value>
double sum_float_lanes(int64_t n, Value value) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kSumBlock) {
    const int64_t m = std::min(kSumBlock, n - b);
    float acc[Lanes] = {};
    int64_t i = 0;
    for (; i + Lanes <= m; i += Lanes)
      for (int64_t j = 0; j < Lanes; ++j) acc[j] += value(b + i + j);
    // The lanes into 8 double partials (vector adds), then those in order, rather than one
    // chain of Lanes dependent double adds per block (64 add latencies against the block's
    // 4,096 loads; the sum of 4M floats moved within the machine's noise, bench/README.md).
    double part[8] = {};
    for (int64_t j0 = 0; j0 < Lanes; j0 += 8)
      for (int64_t j = 0; j < 8; ++j) part[j] += static_cast<double>(acc[j0 + j]);
    double block = 0;
    for (int64_t j = 0; j < 8; ++j) block += part[j];
    for (; i < m; ++i) block += static_cast<double>(value(b + i));
    total += block;
  }
  return total;
}

// kSumLanes lanes, so that as many independent add chains keep the adder busy; rows shorter
// than kSumShortRow keep 16: their 64 lane totals would cost more to add than the row (the
// 128-element runs of a mean over (0, 2) of 64x128x128).
template <typename Value>
double sum_float_row(int64_t n, Value value) {
  return n < kSumShortRow ? sum_float_lanes<16>(n, value) : sum_float_lanes<kSumLanes>(n, value);
}

#endif  // DC_SUM_LANES_BODY
