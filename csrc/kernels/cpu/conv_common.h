#pragma once
// What the convolution algorithms (conv_<algo>.cpp) share: the GEMM call, the implicit-im2col
// segment pack, the batch-part sum of the weight gradients, the flipped weights of the input
// gradients, and each algorithm's entry points (instantiated for float and double in its file;
// conv.cpp calls the one choose_algo picks).
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "core/scratch.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/conv_pack.h"
#include "kernels/cpu/gemm/gemm.h"
#include "kernels/cpu/gemm/gemm_bf16.h"
#include "kernels/cpu/isa.h"

namespace dc::cpu::conv_detail {

// Work below this many multiply-adds stays on one thread.
constexpr int64_t kMinFlopsPerTask = int64_t(1) << 18;

inline void gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                 int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
                 int64_t rsc, int64_t csc) {
  gemm_f32(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}
inline void gemm(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa,
                 int64_t csa, const double* B, int64_t rsb, int64_t csb, double beta, double* C,
                 int64_t rsc, int64_t csc) {
  gemm_f64(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

// The GEMM of a convolution: the bf16 GEMM for float32 operands holding bfloat16 values
// (ConvGeom::bf16_gemm: products exact in float32, so only the speed changes), else the
// float GEMM of T.
inline void gemm(const ConvGeom& g, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t rsa, int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta,
                 float* C, int64_t rsc, int64_t csc) {
  if (g.bf16_gemm)
    gemm_bf16(M, N, K, alpha, A, false, rsa, csa, B, false, rsb, csb, beta, C, false, rsc, csc);
  else
    gemm_f32(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}
inline void gemm(const ConvGeom&, int64_t M, int64_t N, int64_t K, double alpha,
                 const double* A, int64_t rsa, int64_t csa, const double* B, int64_t rsb,
                 int64_t csb, double beta, double* C, int64_t rsc, int64_t csc) {
  gemm_f64(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div_signed(int64_t a, int64_t b) { return -floor_div(-a, b); }
inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// The B pack of the implicit GEMM and of the channels-last weight gradient, kept per thread
// (core/scratch.h): the items of a dynamic schedule would otherwise allocate it once each.
extern thread_local ScratchBuffer tl_conv_bpack;

// The active ISA's segment pack and row pack (conv_pack.h).
template <typename T>
auto conv_pack_segment() {
  if constexpr (std::is_same_v<T, float>)
    return for_active_isa(&generic::conv_pack_segment_f32, &avx2::conv_pack_segment_f32,
                          &avx512::conv_pack_segment_f32);
  else
    return for_active_isa(&generic::conv_pack_segment_f64, &avx2::conv_pack_segment_f64,
                          &avx512::conv_pack_segment_f64);
}
template <typename T>
auto conv_pack_rows() {
  if constexpr (std::is_same_v<T, float>)
    return for_active_isa(&generic::conv_pack_rows_f32, &avx2::conv_pack_rows_f32,
                          &avx512::conv_pack_rows_f32);
  else
    return for_active_isa(&generic::conv_pack_rows_f64, &avx2::conv_pack_rows_f64,
                          &avx512::conv_pack_rows_f64);
}

// Columns [j, j + len) of an im2col block: consecutive output pixels of one output row of one
// image, whose kernel tap (0, 0) reads input pixel (ih0, iw0 + t * sw) of img (Cg, H, W).
template <typename T>
struct ColSegment {
  int64_t j, len;
  const T* img;
  int64_t ih0, iw0;
};

// Writes rows [pc, pc + kc) of the im2col columns of a segment: dst[(p - pc) * ld + sg.j + t],
// through the active ISA's segment pack (conv_pack.h). Holds that pack's per-tap tables. Used
// by the im2col tiles (conv_im2col.cpp) and the implicit GEMM's B panels (conv_implicit.cpp).
template <typename T>
class SegmentPacker {
 public:
  explicit SegmentPacker(const ConvGeom& g)
      : g_(g), kk_(g.KH * g.KW), off_(kk_), lo_(kk_), hi_(kk_), pack_(conv_pack_segment<T>()) {}

  void operator()(const ColSegment<T>& sg, int64_t pc, int64_t kc, T* dst, int64_t ld) {
    // Per kernel tap: where its row segment starts and which columns are inside the image
    // (iw + t * sw in [0, W) for t in [lo, hi)).
    for (int64_t kh = 0, tap = 0; kh < g_.KH; ++kh)
      for (int64_t kw = 0; kw < g_.KW; ++kw, ++tap) {
        const int64_t ih = sg.ih0 + kh * g_.dh, iw = sg.iw0 + kw * g_.dw;
        const bool row_in = ih >= 0 && ih < g_.H;
        const int64_t lo = row_in ? std::clamp<int64_t>(ceil_div_signed(-iw, g_.sw), 0, sg.len) : 0;
        off_[tap] = row_in ? ih * g_.W + iw : 0;
        lo_[tap] = static_cast<int32_t>(lo);
        hi_[tap] = static_cast<int32_t>(
            row_in ? std::clamp<int64_t>(ceil_div_signed(g_.W - iw, g_.sw), lo, sg.len) : 0);
      }
    const int64_t hw = g_.H * g_.W;
    pack_(kc, kk_, pc % kk_, sg.img + pc / kk_ * hw, hw, off_.data(), lo_.data(), hi_.data(),
          g_.sw, sg.len, dst + sg.j, ld);
  }

 private:
  const ConvGeom& g_;
  int64_t kk_;
  std::vector<int64_t> off_;
  std::vector<int32_t> lo_, hi_;
  decltype(conv_pack_segment<T>()) pack_;
};

// Batch parts summed separately by the weight gradients (pointwise, im2col, channels-last):
// each part sums its images in order into its own buffer, and the parts are added in index
// order at the end, so the result is bit-identical whatever the number of threads. At most
// kWeightParts parts, whose buffers take at most kWeightPartsBytes.
constexpr int64_t kWeightParts = 8;
constexpr int64_t kWeightPartsBytes = int64_t(64) << 20;

// part(0)[j] += part(1)[j] + ... + part(parts - 1)[j], added in index order, so each element's
// sum order is fixed whatever the threads.
template <typename T, typename PartPtr>
void add_parts_in_order(int64_t parts, int64_t size, PartPtr part) {
  if (parts < 2) return;
  T* dst = part(0);
  parallel_for(0, size, kGrainSize, [&](int64_t b, int64_t e) {
    for (int64_t i = 1; i < parts; ++i) {
      const T* src = part(i);
      for (int64_t j = b; j < e; ++j) dst[j] += src[j];
    }
  });
}

// gw (K, ckk) = the sum of run_part(dst, n0, n1) over `parts` consecutive runs of images, each
// overwriting its own (K, ckk) buffer (gw itself for part 0), the parts on the threads and
// then added in order. One part runs alone on the calling thread, its GEMMs threading
// themselves.
template <typename T, typename RunPart>
void weight_grad_by_parts(const ConvGeom& g, int64_t parts, T* gw, RunPart&& run_part) {
  if (parts == 1) {
    run_part(gw, int64_t(0), g.N);
    return;
  }
  const int64_t wsize = g.K * g.ckk();
  std::vector<T> buf((parts - 1) * wsize);
  auto part_ptr = [&](int64_t i) { return i == 0 ? gw : buf.data() + (i - 1) * wsize; };
  parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      run_part(part_ptr(i), g.N * i / parts, g.N * (i + 1) / parts);
  });
  add_parts_in_order<T>(parts, wsize, part_ptr);
}

// Parts of the pointwise and im2col weight gradients: kWeightParts when the batch and the
// memory cap allow.
inline int64_t weight_parts(const ConvGeom& g, int64_t elem) {
  const int64_t wsize = g.K * g.ckk();
  const int64_t cap = std::max<int64_t>(1, kWeightPartsBytes / std::max<int64_t>(1, wsize * elem));
  return std::min({g.N, kWeightParts, cap});
}

// Calls run(begin, end) on ranges of the (image, group) items of the input gradient, item it
// being image it / groups, group it % groups. Neighbouring tiles of one image overlap in gx
// (col2im), so an item is a whole image's group; with fewer items than threads they run one
// after the other on the calling thread and the GEMM itself threads.
template <typename Run>
void for_image_groups(const ConvGeom& g, Run&& run) {
  const int64_t items = g.N * g.groups;
  const int64_t flops = g.Kg() * g.ckk() * g.OH * g.OW;
  if (items < get_num_threads() && flops >= kMinFlopsPerTask) {
    run(int64_t(0), items);
    return;
  }
  parallel_for(0, items, std::max<int64_t>(1, kMinFlopsPerTask / std::max<int64_t>(1, flops)),
               run);
}

// The weights of an input-gradient convolution: the taps h0 + sh i (i < th) and w0 + sw j
// (j < tw) of each kernel, flipped, with input and output channels swapped per group:
//   wt[grp][c][k][i][j] = w[grp Kg + k][c][h0 + sh (th - 1 - i)][w0 + sw (tw - 1 - j)].
// The whole kernel (th = KH, h0 = 0, unit stride) for the implicit input gradient, one
// phase's taps for the input gradient by phases. Defined in conv_implicit.cpp.
template <typename T>
void flipped_transposed_taps(const ConvGeom& g, const T* w, int64_t th, int64_t h0, int64_t tw,
                             int64_t w0, T* wt);

// The input gradient of a unit-stride convolution as a forward convolution of gy with the
// flipped, transposed weights (conv_implicit.cpp).
ConvGeom input_gradient_as_conv(const ConvGeom& g);

// With unit stride the input gradient is a convolution of gy with w transposed and flipped,
// w'[g][c][k][kh][kw] = w[g][k][c][KH-1-kh][KW-1-kw]: forward(geometry, gy, w', nullptr, gx)
// computes it (the implicit GEMM, Winograd).
template <typename T, typename Forward>
void input_gradient_by_forward(const ConvGeom& g, const T* gy, const T* w, T* gx,
                               Forward&& forward) {
  ScratchBuffer wt_buf("conv2d");
  T* wt = wt_buf.get<T>(g.K * g.ckk());
  flipped_transposed_taps(g, w, g.KH, 0, g.KW, 0, wt);
  forward(input_gradient_as_conv(g), gy, wt, static_cast<const T*>(nullptr), gx);
}
// Whether no phase of a strided input gradient needs a negative padding, i.e. starts before
// gy's first row or column (conv_phases.cpp); those shapes are left to im2col.
bool phases_fit(const ConvGeom& g);

// ---- the algorithms, one file each; none checks that it applies (conv_algo_applies) ---------

// conv_pointwise.cpp
template <typename T> void forward_pointwise(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);
template <typename T> void backward_input_pointwise(const ConvGeom& g, const T* gy, const T* w, T* gx);
template <typename T> void backward_weight_pointwise(const ConvGeom& g, const T* gy, const T* x, T* gw);
// conv_im2col.cpp
template <typename T> void forward_im2col(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);
template <typename T> void backward_input_im2col(const ConvGeom& g, const T* gy, const T* w, T* gx);
template <typename T> void backward_weight_im2col(const ConvGeom& g, const T* gy, const T* x, T* gw);
// conv_implicit.cpp
template <typename T> void forward_implicit(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);
template <typename T> void backward_input_implicit(const ConvGeom& g, const T* gy, const T* w, T* gx);
// conv_phases.cpp
template <typename T> void backward_input_phases(const ConvGeom& g, const T* gy, const T* w, T* gx);
// conv_channels_last.cpp
template <typename T> void backward_weight_channels_last(const ConvGeom& g, const T* gy, const T* x, T* gw);
// conv_winograd.cpp
bool winograd_applies(const ConvGeom& g);  // forward; the input gradient also needs 2 - ph >= 0
template <typename T> void forward_winograd(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);
template <typename T> void backward_input_winograd(const ConvGeom& g, const T* gy, const T* w, T* gx);
template <typename T> void backward_weight_winograd(const ConvGeom& g, const T* gy, const T* x, T* gw);
// F(4x4, 3x3): the same contract (ConvAlgo::Winograd4)
template <typename T> void forward_winograd4(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);
template <typename T> void backward_input_winograd4(const ConvGeom& g, const T* gy, const T* w, T* gx);
template <typename T> void backward_weight_winograd4(const ConvGeom& g, const T* gy, const T* x, T* gw);
// conv.cpp: the forward pass by the algorithm chosen for the shape alone, never the override
// (the phases' convolutions are internal steps, not the forward pass a test forces).
template <typename T> void forward_by_shape(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);

}  // namespace dc::cpu::conv_detail
