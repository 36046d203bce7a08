#pragma once
// Layer norm and RMS norm over rows of N elements: x[M, N] contiguous (any shape whose numel
// is M * N; N = the product of normalized_shape).
#include "core/tensor.h"

namespace dc::cpu {

// y = (x - mean) * rstd * w + b per row; mean[M], rstd[M] are written for backward.
// rms: mean = 0, rstd = 1 / sqrt(mean(x^2) + eps). w, b: [N] or undefined.
void norm_forward_into(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                       const Tensor& w, const Tensor& b, int64_t N, double eps, bool rms);
// gx (defined = wanted) = rstd * (g*w - [mean(g*w)] - xhat * mean(g*w * xhat)) per row;
// dw = sum_rows g * xhat, db = sum_rows g (each only if defined). Column sums are taken over
// fixed blocks of rows and combined in block order, so they do not depend on the thread count.
void norm_backward_into(const Tensor& gx, const Tensor& dw, const Tensor& db, const Tensor& g,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& w,
                        int64_t N, bool rms);

}  // namespace dc::cpu
