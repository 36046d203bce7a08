#pragma once
// Matrix products; all go through the GEMM in csrc/kernels/cpu/gemm.
#include "core/tensor.h"

namespace dc::ops {

Tensor matmul(const Tensor& a, const Tensor& b);  // PyTorch semantics (1-D, 2-D, batched)
Tensor mm(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);
Tensor mv(const Tensor& a, const Tensor& v);
Tensor dot(const Tensor& a, const Tensor& b);
Tensor outer(const Tensor& a, const Tensor& b);
// beta * input + alpha * (a @ b)
Tensor addmm(const Tensor& input, const Tensor& a, const Tensor& b, double beta = 1,
             double alpha = 1);
// x @ weight.T + bias (bias may be undefined)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace dc::ops
