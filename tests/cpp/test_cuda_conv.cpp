// The host-side logic of the CUDA convolution and pooling kernels (kernels/cuda/conv_plan.h):
// the three implicit-GEMM maps against a naive 7-loop convolution and its two adjoints, the
// tiled kernel's thread shares run block by block as the kernel runs them (splits and capped
// grids included), the launch plan, and the pooling window rules against the cpu pooling
// kernels, bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/pool.h"
#include "kernels/cuda/conv_plan.h"

namespace dc::cuda_kernels {
namespace {

using cpu::ConvGeom;
using cpu::PoolWindows;

ConvGeom geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
              int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
              int64_t groups) {
  ConvGeom g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.K = K, g.KH = KH, g.KW = KW;
  g.sh = sh, g.sw = sw, g.ph = ph, g.pw = pw, g.dh = dh, g.dw = dw, g.groups = groups;
  g.OH = (H + 2 * ph - dh * (KH - 1) - 1) / sh + 1;
  g.OW = (W + 2 * pw - dw * (KW - 1) - 1) / sw + 1;
  return g;
}

// Awkward geometries: strides 1-3, padding, dilation, groups 1/2/3, odd sizes, 1x1, kernels
// larger than the input (with padding), an input with no rows (all padding), several tiles of
// rows and columns, and weight-gradient reductions long enough to split.
std::vector<ConvGeom> geometries() {
  return {
      geom(2, 3, 5, 7, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1),        // pointwise
      geom(1, 4, 6, 5, 6, 1, 1, 2, 2, 1, 1, 1, 1, 2),        // 1x1, stride 2, padding, groups 2
      geom(2, 3, 7, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1),        // 3x3 same
      geom(2, 6, 9, 11, 9, 3, 3, 2, 2, 1, 1, 1, 1, 3),       // stride 2, groups 3
      geom(1, 2, 13, 10, 3, 5, 3, 3, 2, 2, 1, 2, 1, 1),      // mixed strides, dilation 2
      geom(2, 2, 2, 3, 3, 5, 4, 1, 1, 2, 2, 1, 1, 1),        // kernel larger than the input
      geom(1, 4, 17, 11, 6, 3, 2, 3, 3, 1, 0, 3, 2, 2),      // stride 3, dilation 3, groups 2
      geom(1, 2, 0, 3, 2, 1, 1, 1, 1, 1, 0, 1, 1, 1),        // no rows: every tap is padding
      geom(2, 5, 9, 9, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1),       // 70 rows: two row tiles
      geom(1, 3, 4, 5, 195, 1, 1, 1, 1, 0, 0, 1, 1, 3),      // 65 rows per group
      geom(3, 2, 15, 17, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1),      // 765 pixels: split reduction
      geom(2, 6, 23, 19, 3, 2, 3, 1, 2, 0, 1, 2, 1, 3),      // split, groups 3, Kg 1
      geom(0, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1),        // an empty batch
      geom(2, 34, 5, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1),       // R = 306: a reduction of 20 slices
  };
}

// Small integers: every sum below is exact in double, so the results compare exactly.
std::vector<double> integers(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> u(-3, 3);
  std::vector<double> v(n);
  for (auto& e : v) e = u(rng);
  return v;
}

struct ConvData {
  ConvGeom g;
  std::vector<double> x, w, bias, gy;
  std::vector<double> y_ref, gx_ref, gw_ref;  // the 7 loops
};

ConvData make_data(const ConvGeom& g, std::mt19937& rng) {
  ConvData d;
  d.g = g;
  const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  d.x = integers(g.N * g.C * g.H * g.W, rng);
  d.w = integers(g.K * Cg * g.KH * g.KW, rng);
  d.bias = integers(g.K, rng);
  d.gy = integers(g.N * g.K * g.OH * g.OW, rng);
  d.y_ref.assign(d.gy.size(), 0.0);
  d.gx_ref.assign(d.x.size(), 0.0);
  d.gw_ref.assign(d.w.size(), 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t yi = ((n * g.K + k) * g.OH + oh) * g.OW + ow;
          d.y_ref[yi] = d.bias[k];
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
                const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                const int64_t xi = ((n * g.C + (k / Kg) * Cg + c) * g.H + ih) * g.W + iw;
                const int64_t wi = ((k * Cg + c) * g.KH + kh) * g.KW + kw;
                d.y_ref[yi] += d.w[wi] * d.x[xi];
                d.gx_ref[xi] += d.w[wi] * d.gy[yi];
                d.gw_ref[wi] += d.gy[yi] * d.x[xi];
              }
        }
  return d;
}

std::string describe(const ConvGeom& g) {
  return "x (" + std::to_string(g.N) + ", " + std::to_string(g.C) + ", " + std::to_string(g.H) +
         ", " + std::to_string(g.W) + "), w (" + std::to_string(g.K) + ", " +
         std::to_string(g.C / g.groups) + ", " + std::to_string(g.KH) + ", " +
         std::to_string(g.KW) + "), stride (" + std::to_string(g.sh) + ", " +
         std::to_string(g.sw) + "), padding (" + std::to_string(g.ph) + ", " +
         std::to_string(g.pw) + "), dilation (" + std::to_string(g.dh) + ", " +
         std::to_string(g.dw) + "), groups " + std::to_string(g.groups);
}

// out = A @ B of every group through the map's offsets, one plain triple loop; each output
// element must be written exactly once.
template <typename Map>
std::vector<double> naive_gemm(const Map& map, int64_t groups, const std::vector<double>& a,
                               const std::vector<double>& b, const double* bias,
                               int64_t out_numel) {
  const ConvGemmDims d = map.dims();
  std::vector<double> out(out_numel, std::nan(""));
  std::vector<int> writes(out_numel, 0);
  for (int64_t grp = 0; grp < groups; ++grp)
    for (int64_t m = 0; m < d.M; ++m)
      for (int64_t j = 0; j < d.cols; ++j) {
        double acc = bias ? bias[grp * d.M + m] : 0.0;
        for (int64_t r = 0; r < d.R; ++r) {
          const int64_t ai = map.a_offset(grp, r) + m * map.a_row_stride();
          const int64_t bi = map.b_offset(map.column(grp, j), map.row(grp, r));
          EXPECT_TRUE(ai >= 0 && ai < static_cast<int64_t>(a.size()));
          EXPECT_LT(bi, static_cast<int64_t>(b.size()));
          if (bi >= 0) acc += a[ai] * b[bi];
        }
        const int64_t oi = map.out_offset(grp, j) + m * map.out_row_stride();
        EXPECT_TRUE(oi >= 0 && oi < out_numel);
        out[oi] = acc;
        ++writes[oi];
      }
  for (int64_t i = 0; i < out_numel; ++i) EXPECT_EQ(writes[i], 1) << "output " << i;
  return out;
}

// The tiled kernel on the host: the grid's blocks one by one, each block's 256 thread shares
// of the loads, then of the products (the kernel's __syncthreads between), then of the stores;
// partial sums of a split reduction summed in split order as sum_splits does.
template <typename Map>
std::vector<double> tiled_like_kernel(const Map& map, ConvGemmPlan plan, int64_t groups,
                                      const std::vector<double>& a, const std::vector<double>& b,
                                      const double* bias, int64_t out_numel) {
  const ConvGemmDims d = map.dims();
  std::vector<double> out(out_numel, std::nan(""));
  if (plan.grid_x == 0) return out;
  const int64_t split_stride = plan.splits > 1 ? out_numel : 0;
  std::vector<double> partial(plan.splits > 1 ? plan.splits * out_numel : 0, std::nan(""));
  double* target = plan.splits > 1 ? partial.data() : out.data();
  double As[kConvSlice][kConvTileM + 1], Bs[kConvSlice][kConvTileN];
  for (int64_t bz = 0; bz < plan.grid_z; ++bz)
    for (int64_t by = 0; by < plan.grid_y; ++by)
      for (int64_t bx = 0; bx < plan.grid_x; ++bx)
        for (int64_t z = bz; z < groups * plan.splits; z += plan.grid_z) {
          const int64_t grp = z / plan.splits, split = z % plan.splits;
          const int64_t r_begin = plan.chunk_begin(split), r_end = plan.chunk_end(split, d.R);
          for (int64_t rt = by; rt < plan.row_tiles; rt += plan.grid_y)
            for (int64_t ct = bx; ct < plan.col_tiles; ct += plan.grid_x) {
              const int64_t m0 = rt * kConvTileM, n0 = ct * kConvTileN;
              double acc_t[kConvThreads][4][4] = {};
              for (int64_t k0 = r_begin; k0 < r_end; k0 += kConvSlice) {
                for (double(&row)[kConvTileM + 1] : As) std::fill(row, row + kConvTileM + 1, 7.5);
                for (double(&row)[kConvTileN] : Bs) std::fill(row, row + kConvTileN, 7.5);
                for (int tid = 0; tid < kConvThreads; ++tid) {
                  const int64_t j = n0 + b_load_column(tid);
                  const bool inside = j < d.cols;
                  load_a_slice(map, d, a.data(), grp, m0, k0, r_end, tid, As);
                  load_b_slice(map, b.data(), grp, map.column(grp, inside ? j : 0), inside, k0,
                               r_end, tid, Bs);
                }
                for (int tid = 0; tid < kConvThreads; ++tid)
                  multiply_slice<double>(As, Bs, tid, acc_t[tid]);
              }
              for (int tid = 0; tid < kConvThreads; ++tid)
                store_tile(map, d, grp, m0, n0, tid, acc_t[tid], bias,
                           target + split * split_stride);
            }
        }
  if (plan.splits > 1)
    for (int64_t e = 0; e < out_numel; ++e) {
      double s = partial[e];
      for (int64_t k = 1; k < plan.splits; ++k) s += partial[k * out_numel + e];
      out[e] = s;
    }
  return out;
}

void expect_same(const std::vector<double>& got, const std::vector<double>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(got[i], want[i]) << what << " at " << i;  // NaN: an element never written
}

TEST(CudaConvPlan, NaiveGemmThroughTheMapsIsTheConvolutionAndItsAdjoints) {
  std::mt19937 rng(11);
  for (const ConvGeom& g : geometries()) {
    SCOPED_TRACE(describe(g));
    const ConvData d = make_data(g, rng);
    const ConvShape s = conv_shape(g);
    expect_same(naive_gemm(ConvForwardMap{s}, g.groups, d.w, d.x, d.bias.data(),
                           static_cast<int64_t>(d.y_ref.size())),
                d.y_ref, "forward");
    expect_same(naive_gemm(ConvGradInputMap{s}, g.groups, d.w, d.gy, nullptr,
                           static_cast<int64_t>(d.gx_ref.size())),
                d.gx_ref, "grad input");
    expect_same(naive_gemm(ConvGradWeightMap{s}, g.groups, d.gy, d.x, nullptr,
                           static_cast<int64_t>(d.gw_ref.size())),
                d.gw_ref, "grad weight");
  }
}

// With the grid as planned and with grids capped to a block or two per dim, so that every
// block walks several tiles and several (group, split) pairs.
TEST(CudaConvPlan, TiledThreadSharesComputeTheConvolutionAndItsAdjoints) {
  std::mt19937 rng(12);
  bool split_seen = false;
  for (const ConvGeom& g : geometries()) {
    SCOPED_TRACE(describe(g));
    const ConvData d = make_data(g, rng);
    const ConvShape s = conv_shape(g);
    const ConvForwardMap fwd{s};
    const ConvGradInputMap gin{s};
    const ConvGradWeightMap gwt{s};
    const ConvGemmPlan pf = plan_conv_gemm(fwd.dims(), g.groups, 0);
    const ConvGemmPlan pi = plan_conv_gemm(gin.dims(), g.groups, 0);
    const ConvGemmPlan pw = plan_conv_gemm(gwt.dims(), g.groups, kWeightGradTargetBlocks);
    EXPECT_EQ(pf.splits, 1);
    EXPECT_EQ(pi.splits, 1);
    split_seen |= pw.splits > 1;
    for (int cap = 0; cap < 2; ++cap) {
      auto capped = [cap](ConvGemmPlan p) {
        if (cap && p.grid_x) p.grid_x = 1, p.grid_y = 1, p.grid_z = std::min<int64_t>(p.grid_z, 2);
        return p;
      };
      const int64_t ny = static_cast<int64_t>(d.y_ref.size());
      const int64_t nx = static_cast<int64_t>(d.gx_ref.size());
      const int64_t nw = static_cast<int64_t>(d.gw_ref.size());
      expect_same(tiled_like_kernel(fwd, capped(pf), g.groups, d.w, d.x, d.bias.data(), ny),
                  d.y_ref, "forward");
      expect_same(tiled_like_kernel(gin, capped(pi), g.groups, d.w, d.gy, nullptr, nx),
                  d.gx_ref, "grad input");
      expect_same(tiled_like_kernel(gwt, capped(pw), g.groups, d.gy, d.x, nullptr, nw),
                  d.gw_ref, "grad weight");
    }
  }
  EXPECT_TRUE(split_seen) << "no geometry split the weight gradient's reduction";
}

TEST(CudaConvPlan, SplitsPartitionTheReductionIntoWholeSlices) {
  for (int64_t M : {1, 6, 64, 65, 300})
    for (int64_t cols : {1, 27, 64, 147, 5000})
      for (int64_t R : {0, 1, 15, 16, 511, 512, 777, 4096, 401408, 10000019})
        for (int64_t groups : {1, 3, 70000})
          for (int64_t target : {0, 16, 512}) {
            SCOPED_TRACE("M " + std::to_string(M) + " cols " + std::to_string(cols) + " R " +
                         std::to_string(R) + " groups " + std::to_string(groups) + " target " +
                         std::to_string(target));
            const ConvGemmPlan p = plan_conv_gemm({M, cols, R}, groups, target);
            EXPECT_EQ(p.row_tiles, (M + 63) / 64);
            EXPECT_EQ(p.col_tiles, (cols + 63) / 64);
            EXPECT_TRUE(p.grid_x >= 1 && p.grid_x <= p.col_tiles && p.grid_x <= kMaxGridX);
            EXPECT_TRUE(p.grid_y >= 1 && p.grid_y <= p.row_tiles && p.grid_y <= kMaxGridYZ);
            EXPECT_TRUE(p.grid_z >= 1 && p.grid_z <= groups * p.splits && p.grid_z <= kMaxGridYZ);
            ASSERT_GE(p.splits, 1);
            if (target == 0) {
              EXPECT_EQ(p.splits, 1);
            }
            if (p.splits == 1) {
              EXPECT_EQ(p.chunk_begin(0), 0);
              EXPECT_EQ(p.chunk_end(0, R), R);
              continue;
            }
            EXPECT_EQ(p.chunk % kConvSlice, 0);
            EXPECT_GE(p.chunk, kMinSplitChunk);
            // consecutive, none empty, the last ending at R
            for (int64_t s = 0; s < p.splits; ++s) {
              EXPECT_LT(p.chunk_begin(s), p.chunk_end(s, R));
              if (s > 0) {
                EXPECT_EQ(p.chunk_begin(s), p.chunk_end(s - 1, R));
              }
            }
            EXPECT_EQ(p.chunk_end(p.splits - 1, R), R);
            // enough blocks, not many more than the target
            const int64_t tiles = p.row_tiles * p.col_tiles * groups;
            EXPECT_LT(tiles, target);
            EXPECT_LE(tiles * (p.splits - 1), target);
          }
  // a 3 -> 64 7x7 stem at batch 32 on 112x112: 3 tiles, split about 170 ways
  const ConvGemmPlan stem =
      plan_conv_gemm({64, 3 * 49, 32 * 112 * 112}, 1, kWeightGradTargetBlocks);
  EXPECT_GE(stem.splits * 3, kWeightGradTargetBlocks / 2);
  // an empty output launches nothing
  EXPECT_EQ(plan_conv_gemm({0, 5, 5}, 1, 512).grid_x, 0);
  EXPECT_EQ(plan_conv_gemm({5, 0, 5}, 1, 512).grid_x, 0);
}

// ---- pooling ---------------------------------------------------------------------------------

// The windows ops/pool.cpp builds for a sliding pool (torch's output size and clipping) and for
// an adaptive one, with the average's divisors.
int64_t pooled_size(int64_t L, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = L + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (o - 1) * s >= L + p) --o;
  return o;
}

void sliding_taps(int64_t O, int64_t L, int64_t k, int64_t s, int64_t p, int64_t d,
                  bool include_pad, std::vector<int64_t>& first, std::vector<int64_t>& count,
                  std::vector<double>& div) {
  first.resize(O), count.resize(O), div.resize(O);
  for (int64_t o = 0; o < O; ++o) {
    const int64_t start = o * s - p;
    const int64_t lo = start < 0 ? (-start + d - 1) / d : 0;
    const int64_t hi = std::min(k, (L - start + d - 1) / d);
    first[o] = start + lo * d, count[o] = std::max<int64_t>(0, hi - lo);
    div[o] = static_cast<double>(include_pad ? std::min(start + k, L + p) - start : count[o]);
  }
}

PoolWindows sliding(int64_t planes, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh,
                    int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, bool ceil_mode,
                    bool include_pad, double divisor_override) {
  PoolWindows p;
  p.planes = planes, p.H = H, p.W = W, p.dh = dh, p.dw = dw;
  p.OH = pooled_size(H, kh, sh, ph, dh, ceil_mode);
  p.OW = pooled_size(W, kw, sw, pw, dw, ceil_mode);
  sliding_taps(p.OH, H, kh, sh, ph, dh, include_pad, p.h0, p.hn, p.hdiv);
  sliding_taps(p.OW, W, kw, sw, pw, dw, include_pad, p.w0, p.wn, p.wdiv);
  p.divisor_override = divisor_override;
  return p;
}

PoolWindows adaptive(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  PoolWindows p;
  p.planes = planes, p.H = H, p.W = W, p.OH = OH, p.OW = OW;
  auto taps = [](int64_t O, int64_t L, std::vector<int64_t>& first, std::vector<int64_t>& count,
                 std::vector<double>& div) {
    first.resize(O), count.resize(O), div.resize(O);
    for (int64_t o = 0; o < O; ++o) {
      const int64_t s = o * L / O, e = ((o + 1) * L + O - 1) / O;
      first[o] = s, count[o] = e - s, div[o] = static_cast<double>(e - s);
    }
  };
  taps(OH, H, p.h0, p.hn, p.hdiv);
  taps(OW, W, p.w0, p.wn, p.wdiv);
  return p;
}

std::vector<PoolWindows> pool_cases() {
  return {
      sliding(3, 8, 8, 2, 2, 2, 2, 0, 0, 1, 1, false, true, 0),   // the common 2x2 pool
      sliding(2, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1, false, true, 0),   // padding, odd sizes
      sliding(2, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1, true, false, 0),   // ceil mode, exclude padding
      sliding(1, 11, 6, 3, 2, 3, 1, 1, 1, 2, 3, true, true, 0),   // dilation, stride 3
      sliding(2, 5, 5, 4, 4, 1, 1, 2, 2, 1, 1, false, true, 3),   // divisor override
      sliding(1, 1, 13, 1, 5, 1, 2, 0, 2, 1, 1, true, false, 0),  // one row (a 1-D pool)
      adaptive(2, 10, 7, 3, 4),                                  // overlapping windows
      adaptive(1, 3, 5, 7, 6),                                   // more outputs than inputs
      sliding(0, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, false, true, 0),  // no planes
  };
}

// For the max: few distinct values (ties), NaNs and infinities. For the averages: values
// whose sums and products round, so that a different order or rounding shows.
template <typename T>
std::vector<T> pool_input(int64_t n, std::mt19937& rng, bool specials) {
  std::uniform_int_distribution<int> u(-3, 3), pick(0, 15);
  std::uniform_real_distribution<double> real(-1, 1);
  std::vector<T> v(n);
  for (auto& e : v) {
    if (!specials) {
      e = static_cast<T>(real(rng));
      continue;
    }
    e = static_cast<T>(u(rng));
    const int p = pick(rng);
    if (p == 0) e = std::numeric_limits<T>::quiet_NaN();
    if (p == 1) e = -std::numeric_limits<T>::infinity();
  }
  return v;
}

template <typename T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0 || (a != a && b != b);
}

template <typename T>
void check_pool_case(const PoolWindows& p, std::mt19937& rng, DType dtype) {
  const int64_t in_n = p.planes * p.H * p.W, out_n = p.planes * p.OH * p.OW;
  const std::vector<int64_t> windows = pack_pool_windows(p);
  ASSERT_EQ(static_cast<int64_t>(windows.size()), 2 * (p.OH + p.OW));
  for (int64_t oh = 0; oh < p.OH; ++oh)
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const PoolWindow win = packed_pool_window(windows.data(), p.OH, p.OW, oh, ow);
      ASSERT_TRUE(win.h0 == p.h0[oh] && win.hn == p.hn[oh] && win.w0 == p.w0[ow] &&
                  win.wn == p.wn[ow]);
    }

  // max: as pool.cu's thread for output e
  const std::vector<T> x = pool_input<T>(in_n, rng, true);
  std::vector<T> y_ref(out_n), y(out_n);
  std::vector<int64_t> i_ref(out_n), idx(out_n);
  cpu::max_pool2d_forward(p, dtype, x.data(), y_ref.data(), i_ref.data());
  for (int64_t e = 0; e < out_n; ++e) {
    const int64_t ow = e % p.OW, oh = (e / p.OW) % p.OH, plane = e / (p.OW * p.OH);
    max_pool_window(x.data() + plane * p.H * p.W, p.W, p.dh, p.dw,
                    packed_pool_window(windows.data(), p.OH, p.OW, oh, ow), &y[e], &idx[e]);
    ASSERT_TRUE(same_bits(y[e], y_ref[e])) << "max at " << e << ": " << y[e] << " vs " << y_ref[e];
    ASSERT_EQ(idx[e], i_ref[e]) << "argmax at " << e;
  }

  // average forward
  const std::vector<T> xa = pool_input<T>(in_n, rng, false);
  cpu::avg_pool2d_forward(p, dtype, xa.data(), y_ref.data());
  for (int64_t e = 0; e < out_n; ++e) {
    const int64_t ow = e % p.OW, oh = (e / p.OW) % p.OH, plane = e / (p.OW * p.OH);
    const T scale = avg_pool_scale<T>(p.divisor_override, p.hdiv[oh], p.wdiv[ow]);
    y[e] = avg_pool_window(xa.data() + plane * p.H * p.W, p.W, p.dh, p.dw,
                           packed_pool_window(windows.data(), p.OH, p.OW, oh, ow), scale);
    ASSERT_TRUE(same_bits(y[e], y_ref[e])) << "average at " << e;
  }

  // average backward: the gather through the packed tap lists, a thread per input element
  const std::vector<T> gy = pool_input<T>(out_n, rng, false);
  std::vector<T> gx_ref(in_n), gx(in_n);
  cpu::avg_pool2d_backward(p, dtype, gy.data(), gx_ref.data());
  const PackedTapLists lists = pack_tap_lists(p);
  std::vector<double> divisors = p.hdiv;
  divisors.insert(divisors.end(), p.wdiv.begin(), p.wdiv.end());
  for (int64_t e = 0; e < in_n; ++e) {
    const int64_t w = e % p.W, h = (e / p.W) % p.H, plane = e / (p.W * p.H);
    gx[e] = avg_pool_input_grad(gy.data() + plane * p.OH * p.OW, p.OW,
                                row_taps(lists.data.data(), lists.at, h),
                                col_taps(lists.data.data(), lists.at, w), p.divisor_override,
                                divisors.data(), divisors.data() + p.OH);
    ASSERT_TRUE(same_bits(gx[e], gx_ref[e])) << "average gradient at " << e;
  }
}

TEST(CudaPoolPlan, WindowRulesMatchTheCpuKernelsBitForBit) {
  std::mt19937 rng(5);
  for (const PoolWindows& p : pool_cases()) {
    SCOPED_TRACE("planes " + std::to_string(p.planes) + ", " + std::to_string(p.H) + "x" +
                 std::to_string(p.W) + " -> " + std::to_string(p.OH) + "x" + std::to_string(p.OW));
    for (int trial = 0; trial < 3; ++trial) {
      check_pool_case<float>(p, rng, DType::Float32);
      check_pool_case<double>(p, rng, DType::Float64);
    }
  }
}

// An empty window (what the op refuses, but the contract defines): -inf and index -1; a window
// of NaNs: the last NaN; a window of -inf: the first.
TEST(CudaPoolPlan, MaxWindowEdgeCases) {
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  const std::vector<double> x = {1, nan, 2, nan, -inf, -inf, 5, 5, 0};  // 3 x 3
  double y = 0;
  int64_t idx = 0;
  max_pool_window(x.data(), 3, 1, 1, PoolWindow{0, 0, 0, 3}, &y, &idx);
  EXPECT_TRUE(y == -inf && idx == -1);
  max_pool_window(x.data(), 3, 1, 1, PoolWindow{0, 2, 0, 2}, &y, &idx);  // 1 nan / nan -inf
  EXPECT_TRUE(std::isnan(y) && idx == 3);
  max_pool_window(x.data(), 3, 1, 1, PoolWindow{1, 1, 1, 2}, &y, &idx);  // -inf -inf
  EXPECT_TRUE(y == -inf && idx == 4);
  max_pool_window(x.data(), 3, 1, 1, PoolWindow{2, 1, 0, 3}, &y, &idx);  // 5 5 0: the first 5
  EXPECT_TRUE(y == 5 && idx == 6);
  max_pool_window(x.data(), 3, 2, 2, PoolWindow{0, 2, 0, 2}, &y, &idx);  // 1 2 5 0, dilated
  EXPECT_TRUE(y == 5 && idx == 6);
}

TEST(CudaPoolPlan, TapListsHoldEveryWindowOfEveryPosition) {
  for (const PoolWindows& p : pool_cases()) {
    for (int axis = 0; axis < 2; ++axis) {
      const auto& first = axis ? p.w0 : p.h0;
      const auto& count = axis ? p.wn : p.hn;
      const int64_t step = axis ? p.dw : p.dh, L = axis ? p.W : p.H;
      const TapLists t = windows_tapping(first, count, step, L);
      ASSERT_EQ(static_cast<int64_t>(t.offsets.size()), L + 1);
      for (int64_t l = 0; l < L; ++l) {
        std::vector<int64_t> want;  // the windows tapping l, by brute force, ascending
        for (int64_t o = 0; o < static_cast<int64_t>(first.size()); ++o)
          for (int64_t i = 0; i < count[o]; ++i)
            if (first[o] + i * step == l) want.push_back(o);
        const std::vector<int64_t> got(t.outputs.begin() + t.offsets[l],
                                       t.outputs.begin() + t.offsets[l + 1]);
        EXPECT_EQ(got, want) << "axis " << axis << " position " << l;
      }
    }
  }
}

}  // namespace
}  // namespace dc::cuda_kernels
