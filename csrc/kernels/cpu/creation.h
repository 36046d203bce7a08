#pragma once
// Kernels of the creation ops (csrc/ops/creation.cpp): sequences, the identity's diagonal and the
// random fills. Outputs are contiguous and allocated by the op; the random fills draw from the
// Philox stream at (seed, start), two counters per block of four elements, so the values do not
// depend on the thread count.
#include <cstdint>

#include "core/tensor.h"

namespace dc::cpu {

void fill_int64_into(const Tensor& out, int64_t value);  // exact for any int64
void arange_into(const Tensor& out, double start, double step);  // out[i] = start + i * step
// Filled from both ends, like PyTorch, so the last value is exactly `end`; one step is `start`.
void linspace_into(const Tensor& out, double start, double end);
void fill_diagonal_into(const Tensor& out, double value);  // out (n, m): out[i, i] = value
void uniform_into(const Tensor& out, double low, double high, uint64_t seed, uint64_t start);
void normal_into(const Tensor& out, double mean, double stddev, uint64_t seed, uint64_t start);
void randint_into(const Tensor& out, int64_t low, int64_t high, uint64_t seed, uint64_t start);
// out[i] = the i-th entry of a Fisher-Yates shuffle of 0..n-1 driven by keys (int64, n).
void permutation_into(const Tensor& out, const Tensor& keys);

}  // namespace dc::cpu
