// The weight gradient (groups == 1) from a channels-last copy of the input.
//
// Note [Weight gradient in channels-last]
// The weight gradient reduces over the pixels, gw (K, C KH KW) = gy (K, P) @ im2col(x)^T, and
// the pixels are the unit-stride axis of both NCHW operands, while the micro-kernel wants
// its panels k-major (for each pixel, MR values of A and NR of B). Through im2col that is a
// transpose of every im2col element: KH*KW times the image. With groups == 1 it is done once
// instead: x is transposed into a zero-padded channels-last copy xt (H + 2 ph, W + 2 pw, C per
// image), and the columns are ordered (kh, kw, c), so row t of a B micro-panel (pixel t, NR
// columns of one tap) is NR consecutive floats of xt: the pack is one vector copy per pixel
// (conv_pack_rows), with stride, dilation and padding all folded into each pixel's offset. A
// is gy, transposed into its micro-panels straight from NCHW (gemm_blocks().transpose). The
// product comes out as (K, KH, KW, C) and is permuted to (K, C, KH, KW) at the end.
// Blocking: images are taken in chunks of at least KC pixels, each cut into K slices of equal
// depth; per slice all of A is packed (it stays in L2), then each B panel is packed into L1
// just before all K rows use it. With a single column block (big images: many batch parts),
// each work item transposes its own chunk of x and packs its own A right before using them,
// so they are still in cache; with several column blocks (small deep-layer images) every block
// reads all of x and gy, so both are transposed once for the whole batch up front.
// The batch is cut into parts of about kPixelsPerWeightPart pixels (a number fixed by the
// shape, never by the thread count); each part sums its pixels in order into its own buffer,
// and the parts are added in index order at the end, so the result is bit-identical whatever
// the number of threads. Work items are (part, column block); the column blocks only split
// the work, not the sums. Which shapes take this path: Note [Choosing a convolution
// algorithm] in conv.cpp.
#include "kernels/cpu/conv_common.h"

namespace dc::cpu::conv_detail {
namespace {

// Pixels summed per batch part (see the Note).
constexpr int64_t kPixelsPerWeightPart = 4096;

thread_local ScratchBuffer tl_conv_apack("conv2d"), tl_conv_xt("conv2d");

}  // namespace

template <typename T>
void backward_weight_channels_last(const ConvGeom& g, const T* gy, const T* x, T* gw) {
  const GemmBlocks<T> gb = gemm_blocks<T>();
  const int64_t mr = gb.mr, nr = gb.nr, C = g.C, K = g.K, kk = g.KH * g.KW;
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W, P = g.N * ohw;
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, ncols = kk * C;
  // Columns are (tap, c); column j of a pixel sits col_off[j] after the pixel's tap (0, 0).
  std::vector<int64_t> col_off(ncols);
  for (int64_t j = 0; j < ncols; ++j) {
    const int64_t tap = j / C, kh = tap / g.KW, kw = tap % g.KW;
    col_off[j] = (kh * g.dh * Wp + kw * g.dw) * C + j % C;
  }
  const int64_t parts = std::clamp<int64_t>(
      std::min(P / kPixelsPerWeightPart,
               kWeightPartsBytes / std::max<int64_t>(1, K * ncols * int64_t(sizeof(T)))),
      1, std::min(g.N, kWeightParts));
  // Column blocks (whole micro-panels, at most NC): about four items per thread. They only
  // split the work; every element's sum is the same whatever the blocks.
  const int64_t nt = get_num_threads();
  const int64_t want = std::max<int64_t>(1, (4 * nt + parts - 1) / parts);
  const int64_t ncb = std::clamp(round_up((ncols + want - 1) / want, nr), nr, std::max(nr, gb.nc / nr * nr));
  const int64_t nblk = (ncols + ncb - 1) / ncb;

  // x in channels-last with its zero padding: images [n0, n0 + nb) into dst (nb, Hp, Wp, C).
  auto transpose_x = [&](int64_t n0, int64_t nb, T* dst) {
    for (int64_t n = n0; n < n0 + nb; ++n) {
      T* xn = dst + (n - n0) * Hp * Wp * C;
      std::fill(xn, xn + g.ph * Wp * C, T(0));
      std::fill(xn + (g.ph + g.H) * Wp * C, xn + Hp * Wp * C, T(0));
      for (int64_t ih = 0; ih < g.H; ++ih) {
        T* row = xn + (ih + g.ph) * Wp * C;
        std::fill(row, row + g.pw * C, T(0));
        std::fill(row + (g.pw + g.W) * C, row + Wp * C, T(0));
        gb.transpose(g.W, C, x + n * C * hw + ih * g.W, hw, row + g.pw * C, C);
      }
    }
  };
  // Images per chunk: enough pixels for one K slice. With one column block, each item
  // transposes its own chunks just before using them (they stay in L2); with several, every
  // block reads all of x, so it is transposed once for the whole batch first.
  const int64_t nbc = std::clamp<int64_t>((gb.kc + ohw - 1) / ohw, 1, g.N);
  ScratchBuffer xt_buf("conv2d");
  T* xt_all = nblk > 1 ? xt_buf.get<T>(g.N * Hp * Wp * C) : nullptr;
  if (xt_all)
    parallel_for(0, g.N, 1, [&](int64_t begin, int64_t end) {
      transpose_x(begin, end - begin, xt_all + begin * Hp * Wp * C);
    });
  // A micro-panels of gy's pixels [q0, q0 + kc): panel i0 / mr at dst + i0 * panel_stride,
  // transposed from NCHW one image's run of pixels at a time.
  auto pack_gy = [&](int64_t q0, int64_t kc, T* dst, int64_t panel_stride) {
    for (int64_t i0 = 0; i0 < K; i0 += mr)
      for (int64_t t = 0; t < kc;) {
        const int64_t q = q0 + t, len = std::min(kc - t, ohw - q % ohw);
        gb.transpose(len, std::min(mr, K - i0), gy + (q / ohw * K + i0) * ohw + q % ohw, ohw,
                     dst + i0 * panel_stride + t * mr, mr);
        t += len;
      }
  };
  // With several column blocks every block needs all of A: pack it once for the whole batch
  // (panel i0 / mr at a_all + i0 * P). With one, each item packs its own slices while they
  // are in cache.
  ScratchBuffer a_all_buf("conv2d");
  T* a_all = nblk > 1 ? a_all_buf.get<T>(round_up(K, mr) * P) : nullptr;
  if (a_all)
    parallel_for(0, g.N, 1, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) pack_gy(n * ohw, ohw, a_all + n * ohw * mr, P);
    });

  ScratchBuffer sums_buf("conv2d");
  T* sums = sums_buf.get<T>(parts * K * ncols);
  auto run_item = [&](int64_t it) {
    const int64_t part = it / nblk, j0 = it % nblk * ncb, nc = std::min(ncb, ncols - j0);
    const int64_t q_begin = g.N * part / parts * ohw, q_end = g.N * (part + 1) / parts * ohw;
    T* cpart = sums + part * K * ncols + j0;
    T* bpanel = tl_conv_bpack.get<T>(gb.kc * nr);
    T* apack = a_all ? nullptr : tl_conv_apack.get<T>(round_up(K, mr) * gb.kc);
    T* xt_local = xt_all ? nullptr : tl_conv_xt.get<T>(nbc * Hp * Wp * C);
    std::vector<int64_t> base(gb.kc);
    const auto pack_rows = conv_pack_rows<T>();
    for (int64_t c0 = q_begin; c0 < q_end; c0 += nbc * ohw) {
      // One chunk of images, its pixels cut into K slices of equal depth.
      const int64_t n0 = c0 / ohw, nb = std::min(nbc, q_end / ohw - n0), c1 = c0 + nb * ohw;
      const T* xt = xt_all ? xt_all + n0 * Hp * Wp * C : xt_local;
      if (!xt_all) transpose_x(n0, nb, xt_local);
      const int64_t slices = (c1 - c0 + gb.kc - 1) / gb.kc, kcs = (c1 - c0 + slices - 1) / slices;
      for (int64_t q0 = c0; q0 < c1; q0 += kcs) {
        const int64_t kc = std::min(kcs, c1 - q0);
        const T beta = q0 == q_begin ? T(0) : T(1);
        for (int64_t t = 0; t < kc; ++t) {
          const int64_t q = q0 + t, img = q / ohw - n0, oh = q % ohw / g.OW, ow = q % g.OW;
          base[t] = ((img * Hp + oh * g.sh) * Wp + ow * g.sw) * C;
        }
        // All of A (K x kc, in L2), then one B panel at a time, packed into L1 just before the
        // K rows use it.
        if (!a_all) pack_gy(q0, kc, apack, kc);
        const T* a = a_all ? a_all + q0 * mr : apack;
        const int64_t a_stride = a_all ? P : kc;
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t n = std::min(nr, nc - jr), j = j0 + jr;
          if (n == nr && col_off[j + nr - 1] - col_off[j] == nr - 1) {  // one run of channels
            pack_rows(kc, xt + col_off[j], base.data(), bpanel, nr);
          } else {
            for (int64_t t = 0; t < kc; ++t)
              for (int64_t jj = 0; jj < nr; ++jj)
                bpanel[t * nr + jj] = jj < n ? xt[base[t] + col_off[j + jj]] : T(0);
          }
          for (int64_t ir = 0; ir < K; ir += mr)
            gb.ukernel(kc, a + ir * a_stride, bpanel, cpart + ir * ncols + jr, ncols, 1,
                       std::min(mr, K - ir), n, T(1), beta);
        }
      }
    }
  };
  parallel_items(0, parts * nblk, run_item);

  // The parts summed into part 0, then gw[k, c, kh, kw] = sums[k, (kh, kw), c].
  add_parts_in_order<T>(parts, K * ncols, [&](int64_t i) { return sums + i * K * ncols; });
  parallel_for(0, K, std::max<int64_t>(1, kGrainSize / ncols), [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) gb.transpose(C, kk, sums + k * ncols, C, gw + k * ncols, kk);
  });
}

template void backward_weight_channels_last<float>(const ConvGeom&, const float*, const float*,
                                                   float*);
template void backward_weight_channels_last<double>(const ConvGeom&, const double*,
                                                    const double*, double*);

}  // namespace dc::cpu::conv_detail
