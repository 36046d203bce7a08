// Pointwise convolutions (1x1 kernel, unit stride, no padding) as plain GEMMs on the NCHW data.
//
// Note [Pointwise convolution as GEMM]
// With a 1x1 kernel, unit stride and no padding the im2col matrix of an image is the image
// itself: x[n, g] (Cg, H*W) is already the GEMM's B operand, read in place with its row stride,
// and each pass is one product per image and group:
//     forward      y[n, g] (Kg, HW)  = w[g] (Kg, Cg) @ x[n, g] (Cg, HW)
//     grad input   gx[n, g] (Cg, HW) = w[g]^T (Cg, Kg) @ gy[n, g] (Kg, HW)
//     grad weight  gw[g] (Kg, Cg)   += gy[n, g] (Kg, HW) @ x[n, g]^T (HW, Cg)
// with no copy at all. On small images (the deep layers of a CNN) those per-image products
// are too skinny, and the implicit GEMM over the whole batch wins (Note [Choosing a
// convolution algorithm] in conv.cpp).
// Threading: forward items are (n, g, column tile), all independent; the input gradient's
// items are whole (n, g) images (for_image_groups); the weight gradient sums the batch in
// parts (weight_grad_by_parts), so its result does not depend on the thread count.
#include "kernels/cpu/conv_common.h"

namespace dc::cpu::conv_detail {

template <typename T>
void forward_pointwise(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W, ckk = g.ckk(), Kg = g.Kg(), G = g.groups;
  // Column tiles of at most 4096 pixels: enough items to share out on big images.
  const int64_t P = std::min<int64_t>(ohw, 4096);
  const int64_t tiles = ohw ? (ohw + P - 1) / P : 0;
  const int64_t items = g.N * G * tiles;
  const int64_t grain = std::max<int64_t>(1, kMinFlopsPerTask / std::max<int64_t>(1, Kg * ckk * P));
  parallel_for(0, items, grain, [&](int64_t begin, int64_t end) {
    for (int64_t it = begin; it < end; ++it) {
      const int64_t t = it % tiles, ng = it / tiles, grp = ng % G, n = ng / G;
      const int64_t p0 = t * P, pn = std::min(P, ohw - p0);
      const T* xg = x + (n * g.C + grp * g.Cg()) * hw;
      T* yt = y + (n * g.K + grp * Kg) * ohw + p0;
      gemm(g, Kg, pn, ckk, T(1), w + grp * Kg * ckk, ckk, 1, xg + p0, hw, 1, T(0), yt, ohw, 1);
      if (bias)
        for (int64_t k = 0; k < Kg; ++k) {
          const T b = bias[grp * Kg + k];
          for (int64_t p = 0; p < pn; ++p) yt[k * ohw + p] += b;
        }
    }
  });
}

template <typename T>
void backward_input_pointwise(const ConvGeom& g, const T* gy, const T* w, T* gx) {
  const int64_t hw = g.H * g.W, ckk = g.ckk(), Kg = g.Kg();
  for_image_groups(g, [&](int64_t begin, int64_t end) {
    for (int64_t it = begin; it < end; ++it) {
      const int64_t n = it / g.groups, grp = it % g.groups;
      // gx (Cg, HW) = w^T (Cg, Kg) @ gy (Kg, HW), written in place
      gemm(g, ckk, hw, Kg, T(1), w + grp * Kg * ckk, 1, ckk, gy + (n * g.K + grp * Kg) * hw, hw, 1,
           T(0), gx + (n * g.C + grp * g.Cg()) * hw, hw, 1);
    }
  });
}

template <typename T>
void backward_weight_pointwise(const ConvGeom& g, const T* gy, const T* x, T* gw) {
  const int64_t hw = g.H * g.W, ckk = g.ckk(), Kg = g.Kg();
  weight_grad_by_parts(g, weight_parts(g, sizeof(T)), gw, [&](T* part, int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T beta = n == n0 ? T(0) : T(1);  // the part's first image overwrites
        // B (HW, Cg) = x^T read through strides
        gemm(g, Kg, ckk, hw, T(1), gy + (n * g.K + grp * Kg) * hw, hw, 1,
             x + (n * g.C + grp * g.Cg()) * hw, 1, hw, beta, part + grp * Kg * ckk, ckk, 1);
      }
  });
}

#define DC_INSTANTIATE(T)                                                                     \
  template void forward_pointwise<T>(const ConvGeom&, const T*, const T*, const T*, T*);     \
  template void backward_input_pointwise<T>(const ConvGeom&, const T*, const T*, T*);        \
  template void backward_weight_pointwise<T>(const ConvGeom&, const T*, const T*, T*);
DC_INSTANTIATE(float)
DC_INSTANTIATE(double)
#undef DC_INSTANTIATE

}  // namespace dc::cpu::conv_detail
