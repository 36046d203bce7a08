#pragma once
// Reduction kernels over the two layouts of Note [Reduction layout] (csrc/ops/reduce.cpp).
#include <cstdint>

#include "core/dtype.h"

namespace dc::cpu {

// out[m] = sum_k in[m * K + k]; float sums are blocked (8 partial accumulators per block of
// 1024, block totals added in double) so error grows like log(K), not K.
void sum_rows(DType dtype, const void* in, void* out, int64_t M, int64_t K);
// out[m] = sum_k in[k * M + m]
void sum_columns(DType dtype, const void* in, void* out, int64_t K, int64_t M);

}  // namespace dc::cpu
