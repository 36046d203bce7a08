// CUDA sums over the middle dim of a contiguous (outer, reduce, inner) block (cpu::ReduceDims,
// as the cpu's sum_reduce takes it). With inner == 1 each row is one warp's: lanes stride
// through the row, then combine by shuffles. Otherwise each thread sums one (outer, inner)
// column, neighbouring threads on neighbouring columns, so the loads coalesce. Floating sums
// accumulate in double (as the cpu's do), integer sums in int64 (wrapping like torch's).
//
// Compiled only; no GPU has run these yet (README, "Devices").
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace {

template <typename Ti>
using Acc = std::conditional_t<std::is_floating_point_v<Ti>, double, int64_t>;

template <typename Ti, typename To>
__global__ void sum_rows_warp(const Ti* in, To* out, int64_t rows, int64_t K) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
       r < rows; r += warps) {
    Acc<Ti> s = 0;
    const Ti* row = in + r * K;
    for (int64_t k = lane; k < K; k += 32) s += static_cast<Acc<Ti>>(row[k]);
    for (int o = 16; o > 0; o /= 2) s += __shfl_down_sync(0xffffffffu, s, o);
    if (lane == 0) out[r] = static_cast<To>(s);
  }
}

template <typename Ti, typename To>
__global__ void sum_columns(const Ti* in, To* out, int64_t outer, int64_t K, int64_t inner) {
  const int64_t n = outer * inner;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n; j += step) {
    const int64_t o = j / inner, i = j % inner;
    const Ti* col = in + o * K * inner + i;
    Acc<Ti> s = 0;
    for (int64_t k = 0; k < K; ++k) s += static_cast<Acc<Ti>>(col[k * inner]);
    out[j] = static_cast<To>(s);
  }
}

template <typename Ti, typename To>
void sum_as(const void* in, void* out, cpu::ReduceDims d) {
  const Device dev{DeviceType::CUDA, -1};
  const ReduceLaunch l = reduce_launch(d.outer, d.reduce, d.inner, max_blocks(dev));
  if (l.blocks == 0) return;
  const auto* x = static_cast<const Ti*>(in);
  auto* y = static_cast<To*>(out);
  if (l.warp_per_row)
    sum_rows_warp<<<static_cast<unsigned>(l.blocks), l.threads, 0, stream()>>>(x, y, d.outer,
                                                                              d.reduce);
  else
    sum_columns<<<static_cast<unsigned>(l.blocks), l.threads, 0, stream()>>>(x, y, d.outer,
                                                                            d.reduce, d.inner);
  check_launch("sum");
}

template <typename Ti>
void sum_from(DType out_dtype, const void* in, void* out, cpu::ReduceDims d) {
  switch (out_dtype) {
    case DType::Int32: return sum_as<Ti, int32_t>(in, out, d);
    case DType::Int64: return sum_as<Ti, int64_t>(in, out, d);
    case DType::Float32: return sum_as<Ti, float>(in, out, d);
    case DType::Float64: return sum_as<Ti, double>(in, out, d);
    default: break;
  }
  DC_THROW(TypeError, "[sum] no cuda sum into ", dtype_name(out_dtype));
}

void cuda_sum_reduce(DType in_dtype, DType out_dtype, const void* in, void* out,
                     cpu::ReduceDims d) {
  switch (in_dtype) {
    case DType::Bool: return sum_from<bool>(out_dtype, in, out, d);
    case DType::Int32: return sum_from<int32_t>(out_dtype, in, out, d);
    case DType::Int64: return sum_from<int64_t>(out_dtype, in, out, d);
    case DType::Float32: return sum_from<float>(out_dtype, in, out, d);
    case DType::Float64: return sum_from<double>(out_dtype, in, out, d);
    default: break;
  }
  DC_THROW(TypeError, "[sum] no cuda sum of ", dtype_name(in_dtype));
}

}  // namespace

void fill_reduce(dispatch::KernelTable& t) { t.sum_reduce = cuda_sum_reduce; }

}  // namespace dc::cuda_kernels
