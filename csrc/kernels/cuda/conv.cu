// CUDA 2-D convolution: kernels/cpu/conv.h's contract (contiguous NCHW x (N, C, H, W), w
// (K, C / groups, KH, KW), y (N, K, OH, OW); strides, padding, dilation, groups, bias) for
// float32, float64, bfloat16 and float16. Every pass is one implicit GEMM per group (Note [CUDA
// convolution as implicit GEMM] in kernels/cuda/conv_plan.h): gemm.cu's tiled kernel, 64 x 64
// tiles of the output per block of 256 threads, 4 x 4 per thread, the reduction staged through
// shared memory in slices of 16, with the operand loads asking the pass's map for each
// element's address (or a zero: padding, or a gap between strides). Groups, and the weight
// gradient's reduction splits, run over grid.z. Sums are in T, as the cpu's GEMM-based
// algorithms sum.
//
// bfloat16 and float16 follow the cpu's Note [16-bit convolution]: the operands are widened to
// float32 copies (exactly), the float32 pass runs, and its result is rounded once: float32
// accumulation of exact products. The copies cost scratch memory (4 bytes an element of the
// operands and the result) and two light passes; widening inside the tile loads instead would
// need conv_plan.h's loaders to read another type than they stage.
//
// Known costs of this plain kernel: a group with few output channels (depthwise: Kg = 1) fills
// one row of each 64-row tile; the input gradient of a strided convolution multiplies the
// zeros between the strides (1 - 1 / (sh sw) of its B operand).
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "cuda/runtime.h"
#include "kernels/cpu/conv.h"
#include "kernels/cuda/conv_plan.h"
#include "kernels/cuda/half_storage.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace {

// out (groups x M x cols, per split) = A @ B of each group, split `split` summing only its
// part of the reduction, [plan.chunk_begin(split), plan.chunk_end(split, R)), and writing its
// partial sums whole at out + split * split_stride (split_stride 0 when there is one split).
// Block (x, y, z) takes column tiles x, x + grid.x, ..., row tiles y, y + grid.y, ... and
// (group, split) pairs z, z + grid.z, ...: the loop bounds are the same for every thread of a
// block, so each __syncthreads is reached by all of them. The threads' shares of the loads, the
// products and the stores are conv_plan.h's (the host tests run them).
template <typename T, typename Map>
__global__ void __launch_bounds__(kConvThreads)
    conv_gemm_tiled(Map map, ConvGemmPlan plan, int64_t groups, const T* a, const T* b,
                    const T* bias, T* out, int64_t split_stride) {
  __shared__ T As[kConvSlice][kConvTileM + 1];
  __shared__ T Bs[kConvSlice][kConvTileN];
  const ConvGemmDims d = map.dims();
  const int tid = threadIdx.x;
  for (int64_t z = blockIdx.z; z < groups * plan.splits; z += gridDim.z) {
    const int64_t grp = z / plan.splits, split = z % plan.splits;
    const int64_t r_begin = plan.chunk_begin(split), r_end = plan.chunk_end(split, d.R);
    for (int64_t row_tile = blockIdx.y; row_tile < plan.row_tiles; row_tile += gridDim.y) {
      const int64_t m0 = row_tile * kConvTileM;
      for (int64_t col_tile = blockIdx.x; col_tile < plan.col_tiles; col_tile += gridDim.x) {
        const int64_t n0 = col_tile * kConvTileN;
        const int64_t j = n0 + b_load_column(tid);
        const bool col_inside = j < d.cols;
        const typename Map::Column column = map.column(grp, col_inside ? j : 0);
        T acc[4][4] = {};
        for (int64_t k0 = r_begin; k0 < r_end; k0 += kConvSlice) {
          load_a_slice(map, d, a, grp, m0, k0, r_end, tid, As);
          load_b_slice(map, b, grp, column, col_inside, k0, r_end, tid, Bs);
          __syncthreads();
          multiply_slice<T>(As, Bs, tid, acc);
          __syncthreads();  // the next slice overwrites As and Bs
        }
        store_tile(map, d, grp, m0, n0, tid, acc, bias, out + split * split_stride);
      }
    }
  }
}

// out[e] = the sum over s < splits of partial[s n + e], s ascending: the same order on every
// run.
template <typename T>
__global__ void sum_splits(const T* partial, int64_t splits, int64_t n, T* out) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += step) {
    T s = partial[e];
    for (int64_t k = 1; k < splits; ++k) s += partial[k * n + e];
    out[e] = s;
  }
}

Device current_cuda_device() { return Device{DeviceType::CUDA, cuda::current_device()}; }

// Runs one pass: the tiled GEMM straight into `out`, or, when the plan splits the reduction,
// into a scratch buffer of partial outputs summed into `out` in split order.
template <typename T, typename Map>
void run_conv_gemm(const Map& map, int64_t groups, int64_t split_target, const T* a, const T* b,
                   const T* bias, T* out, const char* what) {
  const ConvGemmDims d = map.dims();
  const ConvGemmPlan plan = plan_conv_gemm(d, groups, split_target);
  if (plan.grid_x == 0) return;  // an empty output
  const dim3 grid(static_cast<unsigned>(plan.grid_x), static_cast<unsigned>(plan.grid_y),
                  static_cast<unsigned>(plan.grid_z));
  if (plan.splits == 1) {
    conv_gemm_tiled<T, Map><<<grid, kConvThreads, 0, stream()>>>(map, plan, groups, a, b, bias,
                                                                 out, 0);
    check_launch(what);
    return;
  }
  const int64_t n = groups * d.M * d.cols;  // the whole output, every group
  DeviceBuffer partial(static_cast<size_t>(plan.splits * n) * sizeof(T));
  conv_gemm_tiled<T, Map><<<grid, kConvThreads, 0, stream()>>>(map, plan, groups, a, b, bias,
                                                               partial.as<T>(), n);
  check_launch(what);
  const LaunchConfig c = elementwise_launch(n, max_blocks(current_cuda_device()));
  sum_splits<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
      partial.as<T>(), plan.splits, n, out);
  check_launch(what);
}

void check_geometry(const cpu::ConvGeom& g) {
  DC_CHECK(g.groups > 0 && g.C % g.groups == 0 && g.K % g.groups == 0, ValueError, "[",
           dispatch::current_op_name(), "] channels (input ", g.C, ", output ", g.K,
           ") must be divisible by groups=", g.groups);
  DC_CHECK(g.sh > 0 && g.sw > 0 && g.dh > 0 && g.dw > 0, ValueError, "[",
           dispatch::current_op_name(), "] stride (", g.sh, ", ", g.sw, ") and dilation (", g.dh,
           ", ", g.dw, ") must be positive");
}

// ---- 16-bit operands (Note [16-bit convolution] of the cpu) ------------------------------

template <typename S>
__global__ void widen_copy(const S* in, float* out, int64_t n) {
  DC_GRID_STRIDE(i, n) out[i] = load_widened(in + i);
}

template <typename S>
__global__ void round_copy(const float* in, S* out, int64_t n) {
  DC_GRID_STRIDE(i, n) store_rounded(out + i, in[i]);
}

// The n elements of one operand of a pass, as the float32 kernel reads them: p itself for a
// float or double S, else a float32 copy widened from S (nothing for a null p: no bias).
template <typename S>
class PassOperand {
 public:
  PassOperand(const void* p, int64_t n, const char* what)
      : wide_(is_half_storage_v<S> && p ? static_cast<size_t>(n) * sizeof(float) : 0) {
    if constexpr (is_half_storage_v<S>) {
      if (!p) return;
      data_ = wide_.as<float>();
      const LaunchConfig c = elementwise_launch(n, max_blocks(current_cuda_device()));
      if (c.blocks == 0) return;
      widen_copy<S><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
          static_cast<const S*>(p), wide_.as<float>(), n);
      check_launch(what);
    } else {
      data_ = static_cast<const S*>(p);
    }
  }
  const compute_type<S>* get() const { return data_; }

 private:
  DeviceBuffer wide_;
  const compute_type<S>* data_ = nullptr;
};

// The n-element result of a pass: the float32 kernel writes get(); finish() rounds it into p
// for a 16-bit S (a float or double S is written in place).
template <typename S>
class PassResult {
 public:
  PassResult(void* p, int64_t n)
      : p_(p), n_(n), wide_(is_half_storage_v<S> ? static_cast<size_t>(n) * sizeof(float) : 0) {}
  compute_type<S>* get() const {
    if constexpr (is_half_storage_v<S>) return wide_.as<float>();
    else return static_cast<S*>(p_);
  }
  void finish(const char* what) const {
    if constexpr (is_half_storage_v<S>) {
      const LaunchConfig c = elementwise_launch(n_, max_blocks(current_cuda_device()));
      if (c.blocks == 0) return;
      round_copy<S><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
          wide_.as<float>(), static_cast<S*>(p_), n_);
      check_launch(what);
    }
  }

 private:
  void* p_;
  int64_t n_;
  DeviceBuffer wide_;
};

int64_t x_numel(const cpu::ConvGeom& g) { return g.N * g.C * g.H * g.W; }
int64_t y_numel(const cpu::ConvGeom& g) { return g.N * g.K * g.OH * g.OW; }
int64_t w_numel(const cpu::ConvGeom& g) { return g.K * g.ckk(); }

void cuda_conv2d_forward(const cpu::ConvGeom& g, DType dtype, const void* x, const void* w,
                         const void* bias, void* y) {
  check_geometry(g);
  const char* what = "conv2d_forward";
  with_storage_type(dtype, dispatch::current_op_name(), [&](auto* s) {
    using S = std::remove_pointer_t<decltype(s)>;
    const PassOperand<S> xs(x, x_numel(g), what), ws(w, w_numel(g), what), bs(bias, g.K, what);
    const PassResult<S> ys(y, y_numel(g));
    run_conv_gemm(ConvForwardMap{conv_shape(g)}, g.groups, 0, ws.get(), xs.get(), bs.get(),
                  ys.get(), what);
    ys.finish(what);
  });
}

void cuda_conv2d_backward_input(const cpu::ConvGeom& g, DType dtype, const void* gy,
                                const void* w, void* gx) {
  check_geometry(g);
  const char* what = "conv2d_backward_input";
  with_storage_type(dtype, dispatch::current_op_name(), [&](auto* s) {
    using S = std::remove_pointer_t<decltype(s)>;
    const PassOperand<S> gys(gy, y_numel(g), what), ws(w, w_numel(g), what);
    const PassResult<S> gxs(gx, x_numel(g));
    run_conv_gemm(ConvGradInputMap{conv_shape(g)}, g.groups, 0, ws.get(), gys.get(),
                  static_cast<const compute_type<S>*>(nullptr), gxs.get(), what);
    gxs.finish(what);
  });
}

void cuda_conv2d_backward_weight(const cpu::ConvGeom& g, DType dtype, const void* gy,
                                 const void* x, void* gw) {
  check_geometry(g);
  const char* what = "conv2d_backward_weight";
  with_storage_type(dtype, dispatch::current_op_name(), [&](auto* s) {
    using S = std::remove_pointer_t<decltype(s)>;
    const PassOperand<S> gys(gy, y_numel(g), what), xs(x, x_numel(g), what);
    const PassResult<S> gws(gw, w_numel(g));
    run_conv_gemm(ConvGradWeightMap{conv_shape(g)}, g.groups, kWeightGradTargetBlocks, gys.get(),
                  xs.get(), static_cast<const compute_type<S>*>(nullptr), gws.get(), what);
    gws.finish(what);
  });
}

}  // namespace

void fill_conv(dispatch::KernelTable& t) {
  t.conv2d_forward = cuda_conv2d_forward;
  t.conv2d_backward_input = cuda_conv2d_backward_input;
  t.conv2d_backward_weight = cuda_conv2d_backward_weight;
}

}  // namespace dc::cuda_kernels
