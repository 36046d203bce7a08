// CUDA recurrent time steps: the contracts of kernels/cpu/rnn.h, for the time loop of
// ops/rnn.cpp (Note [RNN layer]).
//   Step kernels: a thread per (row, unit) of a step's [rows, H] (grid-stride over rows * H),
//   running rnn_forward_element / rnn_backward_element (kernels/rnn_cells.h). The gate math is
//   the cpu's own, vm::exp and vm::tanh included, compiled a second time for the device, so the
//   two sides differ only where nvcc fuses a multiply and an add. Neighbouring threads take
//   neighbouring units of a row, so each gate column is read and written coalesced.
//   Per-step GEMMs: no packing. The packed weight is the (K, N) operand copied row-major
//   (K * N elements), the layout the CUDA matmul (gemm.cu) reads coalesced (unit column stride),
//   and rnn_gemm_packed is that matmul, c = a @ packed + beta * c (beta == 0: c is not read),
//   through the cuda kernel table. The copy is paid once per layer call, the product each step.
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/device.h"
#include "core/error.h"
#include "core/tensor.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/rnn.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace rnn_dev {
#include "kernels/cpu/vec/vmath.h"
#include "kernels/rnn_cells.h"
}  // namespace rnn_dev

namespace {

// s.rows x s.hidden elements, each one unit of one row (kernels/rnn_cells.h).
template <typename T>
__global__ void rnn_step_forward_elements(cpu::RnnStepForward s, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += step)
    rnn_dev::rnn_forward_element<T>(s, e);
}

template <typename T>
__global__ void rnn_step_backward_elements(cpu::RnnStepBackward s, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += step)
    rnn_dev::rnn_backward_element<T>(s, e);
}

void cuda_rnn_step_forward(DType dtype, const cpu::RnnStepForward& s) {
  with_float_type(dtype, "rnn", [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    const int64_t n = s.rows * s.hidden;
    const LaunchConfig c = elementwise_launch(n, max_blocks(current_device()));
    if (c.blocks == 0) return;
    rnn_step_forward_elements<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(s, n);
    check_launch("rnn step forward");
  });
}

void cuda_rnn_step_backward(DType dtype, const cpu::RnnStepBackward& s) {
  with_float_type(dtype, "rnn", [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    const int64_t n = s.rows * s.hidden;
    const LaunchConfig c = elementwise_launch(n, max_blocks(current_device()));
    if (c.blocks == 0) return;
    rnn_step_backward_elements<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(s,
                                                                                              n);
    check_launch("rnn step backward");
  });
}

// ---- the per-step GEMM ----------------------------------------------------------------------

// TypeError for anything but float32 / float64, as the cpu's kernels.
void check_float(DType dtype) {
  with_float_type(dtype, "rnn", [](auto*) {});
}

// The packed buffer (1-D, K * N elements) as the row-major (K, N) matrix it holds.
Tensor packed_matrix(const Tensor& packed, int64_t K, int64_t N) {
  DC_CHECK(packed.numel() == K * N, ValueError, "[rnn] a packed weight of ", packed.numel(),
           " elements cannot hold a (", K, ", ", N, ") operand");
  return Tensor::make_view(packed.storage(), {K, N}, {N, 1}, packed.offset(), packed.dtype());
}

// The CUDA table's entry `member` (filled by another file of this backend).
template <typename F>
F cuda_entry(F dispatch::KernelTable::*member, const char* name) {
  F f = dispatch::kernel_table(DeviceType::CUDA).*member;
  DC_CHECK(f != nullptr, NotImplementedError, "[rnn] the cuda backend has no ", name,
           " kernel");
  return f;
}

int64_t cuda_rnn_packed_weight_numel(DType, int64_t K, int64_t N) { return K * N; }

// packed <- b (K, N), any strides.
void cuda_rnn_pack_weight(const Tensor& b, const Tensor& packed) {
  check_float(b.dtype());
  const Tensor dst = packed_matrix(packed, b.sizes()[0], b.sizes()[1]);
  cuda_entry(&dispatch::KernelTable::cast_into, "cast_into")(dst, b);
}

// c (M, N) = a (M, K) @ packed + beta * c.
void cuda_rnn_gemm_packed(const Tensor& a, const Tensor& packed, const Tensor& c, double beta) {
  check_float(a.dtype());
  const Tensor b = packed_matrix(packed, a.sizes()[1], c.sizes()[1]);
  cuda_entry(&dispatch::KernelTable::matmul_into, "matmul_into")(a, b, c, 1.0, beta,
                                                                 cpu::GemmEpilogue{});
}

}  // namespace

void fill_rnn(dispatch::KernelTable& t) {
  t.rnn_step_forward = cuda_rnn_step_forward;
  t.rnn_step_backward = cuda_rnn_step_backward;
  t.rnn_packed_weight_numel = cuda_rnn_packed_weight_numel;
  t.rnn_pack_weight = cuda_rnn_pack_weight;
  t.rnn_gemm_packed = cuda_rnn_gemm_packed;
}

}  // namespace dc::cuda_kernels
