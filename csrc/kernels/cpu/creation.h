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
// out[i] = 1 if a uniform draw u[i] (as uniform_into's) is below p[i], else 0; p has out's dtype
// and either out's numel (contiguous) or one element.
void bernoulli_into(const Tensor& out, const Tensor& p, uint64_t seed, uint64_t start);
void randint_into(const Tensor& out, int64_t low, int64_t high, uint64_t seed, uint64_t start);
// out[i] = the i-th entry of a Fisher-Yates shuffle of 0..n-1 driven by keys (int64, n).
void permutation_into(const Tensor& out, const Tensor& keys);

// Per-ISA builds of the random fills (kernels/cpu/vec/random_kernels.cpp): elements [begin, end)
// of a contiguous fill whose element 0 draws from counter `start`; begin is a multiple of
// random_block_elems(sizeof(T)).
#define DC_RANDOM_FILL_DECLS                                                                    \
  void uniform_fill_f32(float*, int64_t, int64_t, double, double, uint64_t, uint64_t);          \
  void uniform_fill_f64(double*, int64_t, int64_t, double, double, uint64_t, uint64_t);         \
  void normal_fill_f32(float*, int64_t, int64_t, double, double, uint64_t, uint64_t);           \
  void normal_fill_f64(double*, int64_t, int64_t, double, double, uint64_t, uint64_t);          \
  void bernoulli_fill_f32(float*, const float*, int64_t, int64_t, int64_t, uint64_t, uint64_t); \
  void bernoulli_fill_f64(double*, const double*, int64_t, int64_t, int64_t, uint64_t, uint64_t);
namespace avx512 { DC_RANDOM_FILL_DECLS }
namespace avx2 { DC_RANDOM_FILL_DECLS }
namespace generic { DC_RANDOM_FILL_DECLS }
#undef DC_RANDOM_FILL_DECLS

}  // namespace dc::cpu
