#pragma once
// torch.set_float32_matmul_precision: how float32 matmuls may round. "highest" (the default)
// multiplies in float32; "high" and "medium" let the CUDA GEMM run on tensor cores in TF32
// (operands rounded to 10 mantissa bits, products summed in float32), as torch does on GPUs from
// Ampere on (kernels/cuda/gemm_tc.cu). The cpu GEMM computes in float32 whatever the setting.
// Set from Python (deepcore.set_float32_matmul_precision), read by the kernels at each call.
#include <atomic>

namespace dc {

enum class Float32MatmulPrecision : int { highest = 0, high = 1, medium = 2 };

namespace detail {
inline std::atomic<int>& float32_matmul_precision_slot() {
  static std::atomic<int> precision{0};
  return precision;
}
}  // namespace detail

inline Float32MatmulPrecision float32_matmul_precision() {
  return static_cast<Float32MatmulPrecision>(
      detail::float32_matmul_precision_slot().load(std::memory_order_relaxed));
}
inline void set_float32_matmul_precision(Float32MatmulPrecision p) {
  detail::float32_matmul_precision_slot().store(static_cast<int>(p), std::memory_order_relaxed);
}

}  // namespace dc
