#pragma once
// Reduction and scan kernels over the (O, K, I) layout of Note [Reduction layout]
// (csrc/ops/reduce.cpp): the input is contiguous as x[O, K, I] and the K axis is reduced,
// out[o * I + i] = reduce_k x[(o * K + k) * I + i]. Rows are I == 1, columns are O == 1.
// Every kernel gives bit-identical results on any number of threads (Note [Deterministic
// reduction schedule] in reduce.cpp). K must be > 0 (the op layer fills empty reductions).
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace dc::cpu {

struct ReduceDims {
  int64_t outer = 1, reduce = 1, inner = 1;

  // A tensor of `sizes` seen as [outer, reduce, inner] around dim d (scans and softmax walk it
  // so, on every device); a 0-d tensor is one element.
  static ReduceDims around(const std::vector<int64_t>& sizes, int64_t d) {
    ReduceDims rd;
    for (int64_t i = 0; i < static_cast<int64_t>(sizes.size()); ++i) {
      if (i < d) rd.outer *= sizes[i];
      else if (i == d) rd.reduce = sizes[i];
      else rd.inner *= sizes[i];
    }
    return rd;
  }
};

// out = sum over K. `in` of any dtype, `out` of any non-bool dtype (the op casts: sum of ints
// is int64, sum(dtype=...)). Float results accumulate in double (float32 input: in blocks of
// float lanes whose totals are added in double), so error grows like log(K), not K; integer
// sums wrap around like PyTorch's.
void sum_reduce(DType in_dtype, DType out_dtype, const void* in, void* out, ReduceDims d);

// A float32 row sum as sum_reduce adds a row of float32 into float32: kSumLanes float lanes
// (16 for rows shorter than kSumShortRow) flushed to a double total every kSumBlock elements,
// then the block's tail. Compiled per ISA (vec/sum_kernels.cpp).
constexpr int64_t kSumBlock = 4096;
constexpr int64_t kSumLanes = 64;
constexpr int64_t kSumShortRow = 1024;
namespace avx512 { double sum_row_f32(const float* p, int64_t n); }
namespace avx2 { double sum_row_f32(const float* p, int64_t n); }
namespace generic { double sum_row_f32(const float* p, int64_t n); }
// Columns reduced together (their states stay in L1): the column kernels take at most this many.
constexpr int64_t kInnerTile = 1024;
// The max (is_max) or min of a row of n >= 1, and of each of ncols <= kInnerTile columns over
// nrows >= 1 rows `stride` apart, into st; NaN wins. Compiled per ISA (vec/extreme_kernels.cpp).
#define DC_DECLARE_EXTREME(isa)                                                                \
  namespace isa {                                                                              \
  float extreme_row_f32(const float* p, int64_t n, bool is_max);                               \
  double extreme_row_f64(const double* p, int64_t n, bool is_max);                             \
  void extreme_cols_f32(const float* p, int64_t nrows, int64_t stride, int64_t ncols,          \
                        bool is_max, float* st);                                               \
  void extreme_cols_f64(const double* p, int64_t nrows, int64_t stride, int64_t ncols,         \
                        bool is_max, double* st);                                              \
  }
DC_DECLARE_EXTREME(avx512)
DC_DECLARE_EXTREME(avx2)
DC_DECLARE_EXTREME(generic)
#undef DC_DECLARE_EXTREME
// out = product over K; in and out of one dtype (floats multiply in double).
void prod_reduce(DType dtype, const void* in, void* out, ReduceDims d);
// values = max (is_max) or min over K; NaN wins, like PyTorch. `indices` (may be null) get the
// position along K of the first element equal to the result (the first NaN for NaN).
void minmax_reduce(DType dtype, const void* in, void* values, int64_t* indices, ReduceDims d,
                   bool is_max);
// Variance with divisor max(0, K - correction), or its square root; float dtypes. Two passes
// in double per chunk of K, chunks merged with Chan's update (numerically stable).
void var_reduce(DType dtype, const void* in, void* out, ReduceDims d, double correction,
                bool take_sqrt);
// out(bool) = all (is_all) or any of (x != 0) over K; any input dtype.
void all_any_reduce(DType dtype, const void* in, bool* out, ReduceDims d, bool is_all);
// Inclusive scan along K: out[o, k, i] = sum_{j <= k} in[o, j, i]; one dtype (floats
// accumulate in double); out is contiguous like in.
void cumsum_scan(DType dtype, const void* in, void* out, ReduceDims d);

// The two historical entry points, kept for callers outside the reduction family.
// out[m] = sum_k in[m * K + k]
void sum_rows(DType dtype, const void* in, void* out, int64_t M, int64_t K);
// out[m] = sum_k in[k * M + m]
void sum_columns(DType dtype, const void* in, void* out, int64_t K, int64_t M);

}  // namespace dc::cpu
