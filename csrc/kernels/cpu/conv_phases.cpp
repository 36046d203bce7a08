// The input gradient of a strided convolution as one unit-stride convolution per phase.
//
// Note [Strided input gradient by phases]
// With stride s > 1 (unit dilation, groups == 1), the input pixels split into s_h * s_w phases
// by (ih mod s_h, iw mod s_w), and within one phase the input gradient is a unit-stride
// convolution of gy: for input row ih = s a + r, only the taps kh = t + s m with
// t = (r + ph) mod s reach it, from output row a + e - m (e = (r + ph - t) / s). So phase (r, r')
// is a convolution of gy with the sub-kernel of those taps (flipped and transposed, as in
// backward_input_implicit) and padding M - 1 - e (M taps), computed by the forward pass chosen
// for its shape (an implicit GEMM, or a pointwise GEMM for one tap) into a phase buffer whose
// pixels are then spread into gx at stride s. A 3x3 stride-2 layer gives phases of 1, 2, 2 and
// 4 taps, the same multiply-adds as the convolution, with no col2im. Phases that no tap
// reaches (1x1 stride 2: the odd pixels) are zero. Which shapes take this path: Note
// [Choosing a convolution algorithm] in conv.cpp.
#include "kernels/cpu/conv_common.h"

namespace dc::cpu::conv_detail {
namespace {

// One axis of a phase r of stride s, padding p, kernel k over n input pixels.
struct Axis {
  int64_t taps, first_tap, pad, size;  // sub-kernel taps, its first tap, padding, pixels
};
Axis phase_axis(int64_t r, int64_t s, int64_t p, int64_t k, int64_t n) {
  const int64_t t = (r + p) % s, taps = t < k ? (k - t + s - 1) / s : 0;
  return Axis{taps, t, taps - 1 - (r + p - t) / s, r < n ? (n - r + s - 1) / s : 0};
}

}  // namespace

bool phases_fit(const ConvGeom& g) {
  for (int64_t r = 0; r < g.sh; ++r)
    if (const Axis a = phase_axis(r, g.sh, g.ph, g.KH, g.H); a.taps > 0 && a.pad < 0) return false;
  for (int64_t r = 0; r < g.sw; ++r)
    if (const Axis a = phase_axis(r, g.sw, g.pw, g.KW, g.W); a.taps > 0 && a.pad < 0) return false;
  return true;
}

template <typename T>
void backward_input_phases(const ConvGeom& g, const T* gy, const T* w, T* gx) {
  const int64_t C = g.C, K = g.K, hw = g.H * g.W;
  // Phases no tap reaches: one contiguous zero fill of gx first, rather than a strided pass each.
  bool any_zero = false;
  for (int64_t r = 0; r < g.sh; ++r) any_zero |= phase_axis(r, g.sh, g.ph, g.KH, g.H).taps == 0;
  for (int64_t r = 0; r < g.sw; ++r) any_zero |= phase_axis(r, g.sw, g.pw, g.KW, g.W).taps == 0;
  if (any_zero)
    parallel_for(0, g.N * C * hw, kGrainSize, [&](int64_t b, int64_t e) { std::fill(gx + b, gx + e, T(0)); });
  ScratchBuffer out_buf("conv2d"), wt_buf("conv2d");
  for (int64_t rh = 0; rh < g.sh; ++rh)
    for (int64_t rw = 0; rw < g.sw; ++rw) {
      const Axis ah = phase_axis(rh, g.sh, g.ph, g.KH, g.H), aw = phase_axis(rw, g.sw, g.pw, g.KW, g.W);
      if (ah.size == 0 || aw.size == 0 || ah.taps == 0 || aw.taps == 0) continue;
      const int64_t pix = ah.size * aw.size;
      T* out = out_buf.get<T>(g.N * C * pix);
      ConvGeom t;
      t.N = g.N, t.C = K, t.H = g.OH, t.W = g.OW, t.K = C, t.KH = ah.taps, t.KW = aw.taps;
      t.OH = ah.size, t.OW = aw.size, t.ph = ah.pad, t.pw = aw.pad;
      T* wt = wt_buf.get<T>(C * K * ah.taps * aw.taps);
      flipped_transposed_taps(g, w, ah.taps, ah.first_tap, aw.taps, aw.first_tap, wt);
      forward_by_shape(t, gy, wt, static_cast<const T*>(nullptr), out);
      // gx[n, c, rh + sh a, rw + sw b] = out[n, c, a, b]
      parallel_for(0, g.N * C, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(1, pix)),
                   [&](int64_t b, int64_t e) {
                     for (int64_t nc = b; nc < e; ++nc) {
                       const T* src = out + nc * pix;
                       for (int64_t a = 0; a < ah.size; ++a) {
                         T* dst = gx + nc * hw + (rh + g.sh * a) * g.W + rw;
                         for (int64_t bb = 0; bb < aw.size; ++bb) dst[bb * g.sw] = src[a * aw.size + bb];
                       }
                     }
                   });
    }
}

template void backward_input_phases<float>(const ConvGeom&, const float*, const float*, float*);
template void backward_input_phases<double>(const ConvGeom&, const double*, const double*,
                                            double*);

}  // namespace dc::cpu::conv_detail
