#pragma once
// Batch normalisation kernels over contiguous x (N, C, S) (S = product of the spatial dims, 1
// for (N, C) input); statistics per channel over N * S elements, accumulated in double.
// x, y, dy and dx have `dtype`; weight, bias, mean, rstd, var_biased, dweight and dbias have
// `dtype` too, except float32 for bfloat16 and float16 data (torch's mixed batch norm).
#include <cstdint>

#include "core/dtype.h"

namespace dc::cpu {

struct BatchNormShape {
  int64_t N = 0, C = 0, S = 1;
};

// Training: mean (C) and rstd = 1 / sqrt(biased var + eps) (C) from the batch, var_biased (C)
// the biased variance (for the running-variance update). Eval (training == false): mean and
// rstd are inputs (from the running statistics) and var_biased is unused.
// y = (x - mean) * rstd * weight + bias; weight / bias may be nullptr (1 / 0).
void batch_norm_forward(const BatchNormShape& s, DType dtype, const void* x, const void* weight,
                        const void* bias, double eps, bool training, void* mean, void* rstd,
                        void* var_biased, void* y);
// dx, dweight, dbias (each may be nullptr when not wanted) from dy, x and the mean / rstd used
// in the forward. Training adds the terms through the batch statistics.
void batch_norm_backward(const BatchNormShape& s, DType dtype, const void* dy, const void* x,
                         const void* mean, const void* rstd, const void* weight, bool training,
                         void* dx, void* dweight, void* dbias);

}  // namespace dc::cpu
