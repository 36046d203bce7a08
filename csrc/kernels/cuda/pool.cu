// CUDA 2-D pooling: kernels/cpu/pool.h's contract for float32 and float64. x is (planes, H, W),
// y (planes, OH, OW), contiguous; output (oh, ow) reads rows h0[oh] + i dh (i < hn[oh]) and
// columns w0[ow] + j dw (j < wn[ow]), windows the op built on the host (max, average and
// adaptive pools differ only in them). The windows travel to the device packed in one buffer
// per call (pack_pool_windows, pack_tap_lists in kernels/cuda/conv_plan.h).
//
//   max forward  a thread per output: the cpu's first maximum, last NaN, -inf / -1 when empty
//   avg forward  a thread per output: the window's sum in the cpu's order, times 1 / divisor
//   avg backward a thread per input element gathers gy over the windows that tap it, in the
//                order the cpu's scatter adds them: no atomics, and the cpu's rounding
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "cuda/runtime.h"
#include "kernels/cpu/pool.h"
#include "kernels/cuda/conv_plan.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace {

struct PlaneSizes {
  int64_t H, W, OH, OW, dh, dw;
};

// y, idx (planes, OH, OW); windows packed by pack_pool_windows.
template <typename T>
__global__ void max_pool_outputs(const T* x, T* y, int64_t* idx, const int64_t* windows,
                                 int64_t outputs, PlaneSizes s) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < outputs;
       e += step) {
    const int64_t ow = e % s.OW, rest = e / s.OW;
    const int64_t oh = rest % s.OH, plane = rest / s.OH;
    max_pool_window(x + plane * s.H * s.W, s.W, s.dh, s.dw,
                    packed_pool_window(windows, s.OH, s.OW, oh, ow), y + e, idx + e);
  }
}

// y (planes, OH, OW); divisors hdiv (OH) | wdiv (OW), nullptr when divisor_override > 0.
template <typename T>
__global__ void avg_pool_outputs(const T* x, T* y, const int64_t* windows, const double* divisors,
                                 double divisor_override, int64_t outputs, PlaneSizes s) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < outputs;
       e += step) {
    const int64_t ow = e % s.OW, rest = e / s.OW;
    const int64_t oh = rest % s.OH, plane = rest / s.OH;
    const T scale = avg_pool_scale<T>(divisor_override, divisors ? divisors[oh] : 0.0,
                                      divisors ? divisors[s.OH + ow] : 0.0);
    y[e] = avg_pool_window(x + plane * s.H * s.W, s.W, s.dh, s.dw,
                           packed_pool_window(windows, s.OH, s.OW, oh, ow), scale);
  }
}

// gx (planes, H, W) from gy (planes, OH, OW); lists packed by pack_tap_lists (offsets of the
// parts in `at`), divisors as avg_pool_outputs.
template <typename T>
__global__ void avg_pool_input_grads(const T* gy, T* gx, const int64_t* lists, TapListParts at,
                                     const double* divisors, double divisor_override,
                                     int64_t inputs, PlaneSizes s) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const double* hdiv = divisors;
  const double* wdiv = divisors ? divisors + s.OH : nullptr;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < inputs;
       e += step) {
    const int64_t w = e % s.W, rest = e / s.W;
    const int64_t h = rest % s.H, plane = rest / s.H;
    gx[e] = avg_pool_input_grad(gy + plane * s.OH * s.OW, s.OW, row_taps(lists, at, h),
                                col_taps(lists, at, w), divisor_override, hdiv, wdiv);
  }
}

// Whether every window's taps first[o] + i step (i < count[o]) lie in [0, L).
bool taps_inside(const std::vector<int64_t>& first, const std::vector<int64_t>& count,
                 int64_t step, int64_t L) {
  for (size_t o = 0; o < first.size(); ++o)
    if (count[o] < 0 || (count[o] > 0 && (first[o] < 0 || first[o] + (count[o] - 1) * step >= L)))
      return false;
  return true;
}

// The windows must describe the sizes they claim and stay inside the input: the kernels (and
// the tap lists built on the host) index with them unchecked.
void check_windows(const cpu::PoolWindows& p, bool averages) {
  const auto oh = static_cast<size_t>(p.OH), ow = static_cast<size_t>(p.OW);
  DC_CHECK(p.h0.size() == oh && p.hn.size() == oh && p.w0.size() == ow && p.wn.size() == ow,
           ValueError, "[", dispatch::current_op_name(), "] pooling windows for output (", p.OH,
           ", ", p.OW, ") have ", p.h0.size(), " rows and ", p.w0.size(), " columns");
  DC_CHECK(p.dh > 0 && p.dw > 0 && taps_inside(p.h0, p.hn, p.dh, p.H) &&
               taps_inside(p.w0, p.wn, p.dw, p.W),
           ValueError, "[", dispatch::current_op_name(), "] pooling windows reach outside the (",
           p.H, ", ", p.W, ") input");
  if (averages && p.divisor_override <= 0)
    DC_CHECK(p.hdiv.size() == oh && p.wdiv.size() == ow, ValueError, "[",
             dispatch::current_op_name(), "] average pooling for output (", p.OH, ", ", p.OW,
             ") has ", p.hdiv.size(), " row and ", p.wdiv.size(), " column divisors");
}

PlaneSizes plane_sizes(const cpu::PoolWindows& p) { return {p.H, p.W, p.OH, p.OW, p.dh, p.dw}; }

int64_t blocks_for(int64_t n) {
  return elementwise_launch(n, max_blocks(Device{DeviceType::CUDA, cuda::current_device()}))
      .blocks;
}

// The divisors hdiv | wdiv on the device; an empty buffer (nullptr) under divisor_override.
DeviceBuffer upload_divisors(const cpu::PoolWindows& p) {
  std::vector<double> d;
  if (p.divisor_override <= 0) {
    d = p.hdiv;
    d.insert(d.end(), p.wdiv.begin(), p.wdiv.end());
  }
  return upload(d);
}

void cuda_max_pool2d_forward(const cpu::PoolWindows& p, DType dtype, const void* x, void* y,
                             int64_t* idx) {
  check_windows(p, false);
  with_float_type(dtype, dispatch::current_op_name(), [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    const int64_t outputs = p.planes * p.OH * p.OW;
    if (outputs == 0) return;
    const DeviceBuffer windows = upload(pack_pool_windows(p));
    max_pool_outputs<T><<<static_cast<unsigned>(blocks_for(outputs)), 256, 0, stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(y), idx, windows.as<int64_t>(), outputs,
        plane_sizes(p));
    check_launch("max_pool2d_forward");
  });
}

void cuda_avg_pool2d_forward(const cpu::PoolWindows& p, DType dtype, const void* x, void* y) {
  check_windows(p, true);
  with_float_type(dtype, dispatch::current_op_name(), [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    const int64_t outputs = p.planes * p.OH * p.OW;
    if (outputs == 0) return;
    const DeviceBuffer windows = upload(pack_pool_windows(p));
    const DeviceBuffer divisors = upload_divisors(p);
    avg_pool_outputs<T><<<static_cast<unsigned>(blocks_for(outputs)), 256, 0, stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(y), windows.as<int64_t>(),
        divisors.as<double>(), p.divisor_override, outputs, plane_sizes(p));
    check_launch("avg_pool2d_forward");
  });
}

void cuda_avg_pool2d_backward(const cpu::PoolWindows& p, DType dtype, const void* gy, void* gx) {
  check_windows(p, true);
  with_float_type(dtype, dispatch::current_op_name(), [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    const int64_t inputs = p.planes * p.H * p.W;
    if (inputs == 0) return;
    const PackedTapLists lists = pack_tap_lists(p);
    const DeviceBuffer list_data = upload(lists.data);
    const DeviceBuffer divisors = upload_divisors(p);
    avg_pool_input_grads<T><<<static_cast<unsigned>(blocks_for(inputs)), 256, 0, stream()>>>(
        static_cast<const T*>(gy), static_cast<T*>(gx), list_data.as<int64_t>(), lists.at,
        divisors.as<double>(), p.divisor_override, inputs, plane_sizes(p));
    check_launch("avg_pool2d_backward");
  });
}

}  // namespace

void fill_pool(dispatch::KernelTable& t) {
  t.max_pool2d_forward = cuda_max_pool2d_forward;
  t.avg_pool2d_forward = cuda_avg_pool2d_forward;
  t.avg_pool2d_backward = cuda_avg_pool2d_backward;
}

}  // namespace dc::cuda_kernels
