// matmul_into: the Tensor-level entry of the GEMM (one kernel-table entry, dispatch/kernels.h),
// choosing the float32 / float64 GEMM and its batched form, with a plain loop for integer dtypes.
#include <vector>

#include "core/tensor.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm/gemm.h"
#include "kernels/cpu/gemm/gemm_bf16.h"

namespace dc::cpu {

namespace {

// Strides of a 2-D operand usable by the GEMM (which reads any strides). Zero-size dims keep
// their stride meaningless, so normalise them.
int64_t rs(const Tensor& t) { return t.strides()[t.dim() - 2]; }
int64_t cs(const Tensor& t) { return t.strides()[t.dim() - 1]; }

template <typename T>
void naive_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa,
                const T* B, int64_t rsb, int64_t csb, T* C, int64_t rsc, int64_t csc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += A[i * rsa + k * csa] * B[k * rsb + j * csb];
      C[i * rsc + j * csc] = acc;
    }
}

// float16: the float32 GEMM on float copies of the operands, rounded once into C. Products of
// 16-bit floats are exact in float32, so this is the 16-bit GEMM's numerics with float32
// accumulation, as torch computes it on CPUs. (bfloat16 has a GEMM of its own, gemm_bf16.h.)
void matmul_widened(const Tensor& a, const Tensor& b, const Tensor& c, double alpha, double beta,
                    const GemmEpilogue& ep);

}  // namespace

void matmul_into(const Tensor& a, const Tensor& b, const Tensor& c, double alpha, double beta,
                 const GemmEpilogue& ep) {
  const bool batched = a.dim() == 3;
  const int64_t batch = batched ? a.sizes()[0] : 1;
  const int64_t M = a.sizes()[a.dim() - 2], K = a.sizes()[a.dim() - 1], N = b.sizes()[b.dim() - 1];
  const int64_t sa = batched ? a.strides()[0] : 0, sb = batched ? b.strides()[0] : 0,
                sc = batched ? c.strides()[0] : 0;
  switch (a.dtype()) {
    case DType::Float32:
      if (!batched)
        gemm_f32(M, N, K, float(alpha), a.data<float>(), rs(a), cs(a), b.data<float>(), rs(b),
                      cs(b), float(beta), c.data<float>(), rs(c), cs(c), ep);
      else
        gemm_batched_f32(batch, M, N, K, float(alpha), a.data<float>(), sa, rs(a), cs(a),
                              b.data<float>(), sb, rs(b), cs(b), float(beta), c.data<float>(), sc,
                              rs(c), cs(c));
      return;
    case DType::Float64:
      if (!batched)
        gemm_f64(M, N, K, alpha, a.data<double>(), rs(a), cs(a), b.data<double>(), rs(b),
                      cs(b), beta, c.data<double>(), rs(c), cs(c), ep);
      else
        gemm_batched_f64(batch, M, N, K, alpha, a.data<double>(), sa, rs(a), cs(a),
                              b.data<double>(), sb, rs(b), cs(b), beta, c.data<double>(), sc,
                              rs(c), cs(c));
      return;
    case DType::BFloat16:
      if (!batched)
        gemm_bf16(M, N, K, float(alpha), a.data<BFloat16>(), true, rs(a), cs(a),
                  b.data<BFloat16>(), true, rs(b), cs(b), float(beta), c.data<BFloat16>(), true,
                  rs(c), cs(c), ep);
      else
        gemm_batched_bf16(batch, M, N, K, float(alpha), a.data<BFloat16>(), true, sa, rs(a),
                          cs(a), b.data<BFloat16>(), true, sb, rs(b), cs(b), float(beta),
                          c.data<BFloat16>(), true, sc, rs(c), cs(c));
      return;
    case DType::Float16:
      return matmul_widened(a, b, c, alpha, beta, ep);
    default:
      DC_DISPATCH_ALL(a.dtype(), "matmul", [&] {
        if constexpr (std::is_same_v<scalar_t, bool>) {
          DC_THROW(TypeError, "[matmul] not implemented for bool tensors");
        } else {
          for (int64_t i = 0; i < batch; ++i)
            naive_gemm<scalar_t>(M, N, K, a.data<scalar_t>() + i * sa, rs(a), cs(a),
                                 b.data<scalar_t>() + i * sb, rs(b), cs(b),
                                 c.data<scalar_t>() + i * sc, rs(c), cs(c));
        }
      });
  }
}

namespace {

Tensor widened(const Tensor& t) {
  Tensor w = Tensor::empty(t.sizes(), DType::Float32);
  cast_into(w, t);
  return w;
}

void matmul_widened(const Tensor& a, const Tensor& b, const Tensor& c, double alpha, double beta,
                    const GemmEpilogue& ep) {
  const Tensor c32 = beta != 0.0 ? widened(c) : Tensor::empty(c.sizes(), DType::Float32);
  GemmEpilogue ep32 = ep;
  std::vector<float> bias;
  if (ep.bias) {
    const int64_t N = c.sizes().back();
    bias.resize(static_cast<size_t>(N));
    for (int64_t j = 0; j < N; ++j) bias[j] = float(static_cast<const Half*>(ep.bias)[j]);
    ep32.bias = bias.data();
  }
  matmul_into(widened(a), widened(b), c32, alpha, beta, ep32);
  cast_into(c, c32);
}

}  // namespace

}  // namespace dc::cpu
