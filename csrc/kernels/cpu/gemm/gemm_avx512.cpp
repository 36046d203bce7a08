// AVX-512 micro-kernels, transposing pack and epilogue. Layout contract: gemm_kernels.h.
//
// f32: 12 x 32 tile = 12 rows x 2 zmm accumulators (24 registers) + 2 zmm for the B row + 1
// for the broadcast of A. Per k step: 2 loads of B and 12 broadcasts of A (load ports)
// against 24 FMAs (12 cycles on the two FMA ports), so the FMAs are the bottleneck. 14 x 32
// (28 accumulators) measured slower: GCC then rotates accumulators through register moves
// that take the FMA ports. The packed k loop is inline assembly (packed_tile_12), the
// other variants are intrinsics. f64: the same shape in doubles, 12 x 16.
// Edges: the n < NR columns are masked loads/stores (free on AVX-512), rows i >= m skipped.
#include <immintrin.h>

#include <algorithm>

// GCC 12 reports its own _mm512_undefined_ps() inside the intrinsics headers as "maybe
// uninitialized" (a known false positive, GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/cpu/exp_avx512.h"
#include "kernels/cpu/gemm/gemm_kernels.h"
#include "kernels/cpu/gemm/gemm_tile_scalar.h"

namespace dc::cpu::avx512 {
namespace {

struct VecF32 {
  using T = float;
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V load(const T* p) { return _mm512_load_ps(p); }
  static V loadu(const T* p) { return _mm512_loadu_ps(p); }
  static V maskz_loadu(Mask k, const T* p) { return _mm512_maskz_loadu_ps(k, p); }
  static void storeu(T* p, V v) { _mm512_storeu_ps(p, v); }
  static void mask_storeu(T* p, Mask k, V v) { _mm512_mask_storeu_ps(p, k, v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static Mask lanes(int64_t n) { return n >= W ? Mask(0xFFFF) : n <= 0 ? Mask(0) : Mask((1u << n) - 1); }
};

struct VecF64 {
  using T = double;
  using V = __m512d;
  using Mask = __mmask8;
  static constexpr int W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V load(const T* p) { return _mm512_load_pd(p); }
  static V loadu(const T* p) { return _mm512_loadu_pd(p); }
  static V maskz_loadu(Mask k, const T* p) { return _mm512_maskz_loadu_pd(k, p); }
  static void storeu(T* p, V v) { _mm512_storeu_pd(p, v); }
  static void mask_storeu(T* p, Mask k, V v) { _mm512_mask_storeu_pd(p, k, v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static Mask lanes(int64_t n) { return n >= W ? Mask(0xFF) : n <= 0 ? Mask(0) : Mask((1u << n) - 1); }
};

// The k loop of the packed 12-row kernels in inline assembly. Written with intrinsics, GCC 12
// rotates the 24 accumulators through register-to-register moves that take FMA ports
// (123 GFLOP/s instead of 133 with L1-resident panels, peak 145). Fixed registers:
// zmm0-11 and zmm12-23 accumulate the two W-lane halves of rows 0-11, zmm24/25 hold the B
// row, zmm26 the broadcast of A. Computes, with every vector of the tile then stored:
//   tile[i * 2W + j] = sum_{p < k} a[p * 12 + i] * b[p * 2W + j]   (2W * ESZ = 128 bytes)
#define DC_ROW(BCAST, FMA, OFF, CI, DI)                  \
  BCAST " " #OFF "(%[a]), %%zmm26\n\t"                   \
  FMA " %%zmm26, %%zmm24, %%zmm" #CI "\n\t"              \
  FMA " %%zmm26, %%zmm25, %%zmm" #DI "\n\t"
#define DC_K_STEP(BCAST, FMA, ESZ, LOAD)                                          \
  LOAD " (%[b]), %%zmm24\n\t" LOAD " 64(%[b]), %%zmm25\n\t"                        \
  DC_ROW(BCAST, FMA, 0 * ESZ, 0, 12) \
  DC_ROW(BCAST, FMA, 1 * ESZ, 1, 13) \
  DC_ROW(BCAST, FMA, 2 * ESZ, 2, 14) \
  DC_ROW(BCAST, FMA, 3 * ESZ, 3, 15) \
  DC_ROW(BCAST, FMA, 4 * ESZ, 4, 16) \
  DC_ROW(BCAST, FMA, 5 * ESZ, 5, 17) \
  DC_ROW(BCAST, FMA, 6 * ESZ, 6, 18) \
  DC_ROW(BCAST, FMA, 7 * ESZ, 7, 19) \
  DC_ROW(BCAST, FMA, 8 * ESZ, 8, 20) \
  DC_ROW(BCAST, FMA, 9 * ESZ, 9, 21) \
  DC_ROW(BCAST, FMA, 10 * ESZ, 10, 22) \
  DC_ROW(BCAST, FMA, 11 * ESZ, 11, 23) \
  "add $(12 * " #ESZ "), %[a]\n\t"                                                  \
  "add $128, %[b]\n\t"
#define DC_ZERO(R) "vpxord %%zmm" #R ", %%zmm" #R ", %%zmm" #R "\n\t"
#define DC_ROW_STORE(I, CI, DI) "vmovups %%zmm" #CI ", " #I "*128(%[tile])\n\t" \
                                "vmovups %%zmm" #DI ", " #I "*128+64(%[tile])\n\t"
#define DC_PACKED_TILE(BCAST, FMA, ESZ, LOAD)                                                \
  int64_t iters;                                                                            \
  asm volatile(                                                                             \
      DC_ZERO(0) DC_ZERO(1) DC_ZERO(2) DC_ZERO(3) DC_ZERO(4) DC_ZERO(5) DC_ZERO(6)          \
      DC_ZERO(7) DC_ZERO(8) DC_ZERO(9) DC_ZERO(10) DC_ZERO(11) DC_ZERO(12) DC_ZERO(13)      \
      DC_ZERO(14) DC_ZERO(15) DC_ZERO(16) DC_ZERO(17) DC_ZERO(18) DC_ZERO(19) DC_ZERO(20)   \
      DC_ZERO(21) DC_ZERO(22) DC_ZERO(23)                                                   \
      "mov %[k], %[n]\n\t"                                                                  \
      "shr $2, %[n]\n\t"                                                                    \
      "jz 2f\n\t"                                                                           \
      "1:\n\t" DC_K_STEP(BCAST, FMA, ESZ, LOAD) DC_K_STEP(BCAST, FMA, ESZ, LOAD)             \
      DC_K_STEP(BCAST, FMA, ESZ, LOAD) DC_K_STEP(BCAST, FMA, ESZ, LOAD)                     \
      "dec %[n]\n\t"                                                                        \
      "jnz 1b\n\t"                                                                          \
      "2:\n\t"                                                                              \
      "and $3, %[k]\n\t"                                                                    \
      "jz 4f\n\t"                                                                           \
      "3:\n\t" DC_K_STEP(BCAST, FMA, ESZ, LOAD)                                             \
      "dec %[k]\n\t"                                                                        \
      "jnz 3b\n\t"                                                                          \
      "4:\n\t"                                                                              \
      DC_ROW_STORE(0, 0, 12) DC_ROW_STORE(1, 1, 13) DC_ROW_STORE(2, 2, 14)                  \
      DC_ROW_STORE(3, 3, 15) DC_ROW_STORE(4, 4, 16) DC_ROW_STORE(5, 5, 17)                  \
      DC_ROW_STORE(6, 6, 18) DC_ROW_STORE(7, 7, 19) DC_ROW_STORE(8, 8, 20)                  \
      DC_ROW_STORE(9, 9, 21) DC_ROW_STORE(10, 10, 22) DC_ROW_STORE(11, 11, 23)              \
      : [a] "+r"(a), [b] "+r"(b), [k] "+r"(k), [n] "=&r"(iters)                             \
      : [tile] "r"(tile)                                                                    \
      : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",     \
        "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16",       \
        "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",     \
        "xmm26")

void packed_tile_12(int64_t k, const float* a, const float* b, float* tile) {
  DC_PACKED_TILE("vbroadcastss", "vfmadd231ps", 4, "vmovaps");
}
void packed_tile_12(int64_t k, const double* a, const double* b, double* tile) {
  DC_PACKED_TILE("vbroadcastsd", "vfmadd231pd", 8, "vmovapd");
}

#undef DC_PACKED_TILE
#undef DC_ROW_STORE
#undef DC_ZERO
#undef DC_K_STEP
#undef DC_ROW

// c[m, n] (+)= alpha * a(MR, k) b(k, 2W); see gemm_kernels.h. a(i, p) = a[p * kPanel + i]
// when packed (a panel kPanel rows wide, of which this instance computes the first MR),
// a[i * rsa + p] when reading rows of A (rows i >= m then re-read row 0, unstored).
// kPackedB: b is a packed panel (aligned loads, NR per k step); else B is read in place, rows
// ldb apart (masked loads of its n columns).
template <class VT, int MR, bool kPackedA, int kPanel = MR, bool kPackedB = true>
inline void ukernel(int64_t k, const typename VT::T* a, int64_t rsa, const typename VT::T* b,
                    typename VT::T* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                    typename VT::T alpha, typename VT::T beta, int64_t ldb = 0) {
  using T = typename VT::T;
  using V = typename VT::V;
  constexpr int W = VT::W;
  constexpr int NR = 2 * W;
  int64_t row[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) row[i] = kPackedA ? i : (i < m ? i : 0) * rsa;
  const int64_t a_step = kPackedA ? kPanel : 1, b_step = kPackedB ? NR : ldb;
  const typename VT::Mask k0 = VT::lanes(n), k1 = VT::lanes(n - W);  // the tile's n columns

  // Warm the C tile while the FMAs run: it is read (beta != 0) or written right after.
  for (int64_t i = 0; i < m; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * rsc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * rsc + (NR - 1) * csc), _MM_HINT_T0);
  }

  V acc[MR][2];
  if constexpr (kPackedA && kPackedB && MR == 12 && kPanel == 12) {
    alignas(64) T tile[MR * NR];
    packed_tile_12(k, a, b, tile);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = VT::load(tile + i * NR);
      acc[i][1] = VT::load(tile + i * NR + W);
    }
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = VT::zero();
    // One k step: 2 loads of B, MR broadcasts of A, 2 MR FMAs; unrolled by 4 over k.
    auto step = [&]() __attribute__((always_inline)) {
      V b0, b1;
      if constexpr (kPackedB) {
        b0 = VT::load(b), b1 = VT::load(b + W);
      } else {
        b0 = VT::maskz_loadu(k0, b), b1 = VT::maskz_loadu(k1, b + W);
      }
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const V ai = VT::set1(a[row[i]]);
        acc[i][0] = VT::fmadd(ai, b0, acc[i][0]);
        acc[i][1] = VT::fmadd(ai, b1, acc[i][1]);
      }
      a += a_step;
      b += b_step;
    };
    const int64_t k4 = k / 4 * 4;
    for (int64_t p0 = 0; p0 < k4; p0 += 4) {
      step();
      step();
      step();
      step();
    }
    for (int64_t p = k4; p < k; ++p) step();
  }

  const V valpha = VT::set1(alpha), vbeta = VT::set1(beta);
  if (csc == 1) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if (i >= m) break;
      T* ci = c + i * rsc;
      V r0 = VT::mul(valpha, acc[i][0]), r1 = VT::mul(valpha, acc[i][1]);
      if (beta != T(0)) {
        r0 = VT::fmadd(vbeta, VT::maskz_loadu(k0, ci), r0);
        r1 = VT::fmadd(vbeta, VT::maskz_loadu(k1, ci + W), r1);
      }
      VT::mask_storeu(ci, k0, r0);
      VT::mask_storeu(ci + W, k1, r1);
    }
  } else {
    alignas(64) T tile[MR * NR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      VT::storeu(tile + i * NR, acc[i][0]);
      VT::storeu(tile + i * NR + W, acc[i][1]);
    }
    store_tile_scalar<T, NR>(tile, c, rsc, csc, m, n, alpha, beta);
  }
}

// Transposes 16 rows of 16 floats in registers: out[q] lane r = v[r] lane q. Four stages of
// 16 shuffles: 32-bit and 64-bit interleaves inside 128-bit lanes, then two 128-bit lane
// shuffles.
inline void transpose16x16(__m512 v[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  // u[4i + j], 128-bit lane L = rows 4i..4i+3 of column 4L + j.
  for (int i = 0; i < 4; ++i) {
    const __m512d t0 = _mm512_castps_pd(t[4 * i]), t1 = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d t2 = _mm512_castps_pd(t[4 * i + 2]), t3 = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(u[8 * i + j], u[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_f32x4(u[8 * i + j], u[8 * i + 4 + j], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    v[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    v[j + 8] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
  }
}

// Transposes 8 rows of 8 doubles in registers: out[q] lane r = v[r] lane q. A 64-bit
// interleave inside 128-bit lanes, then two rounds of 128-bit lane shuffles.
inline void transpose8x8(__m512d v[8]) {
  __m512d t[8];
  for (int i = 0; i < 4; ++i) {  // t[2i + j], 128-bit lane L = rows 2i, 2i+1 of column 2L + j
    t[2 * i] = _mm512_unpacklo_pd(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_pd(v[2 * i], v[2 * i + 1]);
  }
  for (int j = 0; j < 2; ++j) {
    const __m512d w0 = _mm512_shuffle_f64x2(t[j], t[2 + j], 0x88);
    const __m512d w1 = _mm512_shuffle_f64x2(t[j], t[2 + j], 0xdd);
    const __m512d w2 = _mm512_shuffle_f64x2(t[4 + j], t[6 + j], 0x88);
    const __m512d w3 = _mm512_shuffle_f64x2(t[4 + j], t[6 + j], 0xdd);
    v[j] = _mm512_shuffle_f64x2(w0, w2, 0x88);
    v[4 + j] = _mm512_shuffle_f64x2(w0, w2, 0xdd);
    v[2 + j] = _mm512_shuffle_f64x2(w1, w3, 0x88);
    v[6 + j] = _mm512_shuffle_f64x2(w1, w3, 0xdd);
  }
}
inline void transpose_block(__m512 v[16]) { transpose16x16(v); }
inline void transpose_block(__m512d v[8]) { transpose8x8(v); }

// dst[p * width + r] = src[r * ld + p] in W x W blocks through registers, about 4x faster than
// the scalar gather it replaces (it decides the speed of x @ W^T for a Linear weight W, whose
// pack is not amortized over M).
template <class VT>
void pack_transposed(int64_t k, int64_t rows, const typename VT::T* src, int64_t ld,
                     typename VT::T* dst, int64_t width) {
  constexpr int W = VT::W;
  for (int64_t r0 = 0; r0 < width; r0 += W) {
    const int64_t valid = rows - r0 < 0 ? 0 : rows - r0 > W ? W : rows - r0;
    const typename VT::Mask store_mask = VT::lanes(width - r0);
    for (int64_t p0 = 0; p0 < k; p0 += W) {
      const typename VT::Mask load_mask = VT::lanes(k - p0);
      typename VT::V v[W];
#pragma GCC unroll 16
      for (int r = 0; r < W; ++r)
        v[r] = r < valid ? VT::maskz_loadu(load_mask, src + (r0 + r) * ld + p0) : VT::zero();
      transpose_block(v);
      const int64_t np = k - p0 < W ? k - p0 : W;
      for (int64_t q = 0; q < np; ++q) VT::mask_storeu(dst + (p0 + q) * width + r0, store_mask, v[q]);
    }
  }
}

// Numerical note: gelu_tanh(x) = x * 0.5 * (1 + tanh(u)) = x / (1 + exp(-2u)) for u >= 0 and
// x * e / (1 + e), e = exp(2u), for u < 0: written that way there is no cancellation in
// 1 + tanh(u) for negative x, and exp never overflows.
inline __m512 gelu_tanh(__m512 x) {
  const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  const __m512 u = _mm512_mul_ps(_mm512_set1_ps(float(kGeluTanhScale)),
                                 _mm512_fmadd_ps(_mm512_set1_ps(float(kGeluTanhCubic)), x3, x));
  const __m512 abs2u = _mm512_abs_ps(_mm512_add_ps(u, u));
  const __m512 e = exp_nonpositive_ps(_mm512_sub_ps(_mm512_setzero_ps(), abs2u));  // exp(-2|u|)
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, e));  // sigmoid(2|u|)
  const __mmask16 neg = _mm512_cmp_ps_mask(u, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 sig = _mm512_mask_mul_ps(s, neg, e, s);  // sigmoid(2u) = e * sigmoid(2|u|), u<0
  return _mm512_mul_ps(x, sig);
}

// gelu_erf(x) = x * Phi(x), Phi(x) = 0.5 erfc(-x / sqrt 2). erfc(z), z >= 0, by Abramowitz &
// Stegun 7.1.26 (abs. error <= 1.5e-7): t = 1 / (1 + 0.3275911 z),
// erfc(z) = t (a1 + t (a2 + ... )) exp(-z^2). For x < 0, Phi = 0.5 erfc(|x|/sqrt2) directly, so
// the tail keeps its relative accuracy instead of cancelling in 1 - erf.
inline __m512 gelu_erf(__m512 x) {
  const __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(float(kInvSqrt2)));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), z, one));
  __m512 poly = _mm512_set1_ps(1.061405429f);
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-1.453152027f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(1.421413741f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-0.284496736f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(0.254829592f));
  poly = _mm512_mul_ps(poly, t);
  const __m512 e = exp_nonpositive_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z)));
  const __m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), poly), e);
  const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  const __m512 phi = _mm512_mask_sub_ps(half_erfc, pos, one, half_erfc);
  return _mm512_mul_ps(x, phi);
}

inline __m512 activate(__m512 x, int act) {
  switch (act) {
    case 1: {  // relu; NaN propagates (max returns its second operand when either is NaN)
      return _mm512_max_ps(_mm512_setzero_ps(), x);
    }
    case 2: return gelu_tanh(x);
    case 3: return gelu_erf(x);
    default: return x;
  }
}


// The 16 lane sums of v[0..15] as one vector, lane i = sum of v[i]: pairs of vectors are
// interleaved and added within 128-bit blocks (interleaving floats, then float pairs), then blocks are
// exchanged and added twice. 45 operations for 16 sums instead of 16 separate reductions.
inline __m512 reduce16(const __m512 v[16]) {
  __m512 s[8], u[4];
  for (int p = 0; p < 8; ++p)
    s[p] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * p], v[2 * p + 1]),
                         _mm512_unpackhi_ps(v[2 * p], v[2 * p + 1]));
  for (int p = 0; p < 4; ++p) {
    const __m512d a = _mm512_castps_pd(s[2 * p]), b = _mm512_castps_pd(s[2 * p + 1]);
    u[p] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  const __m512 w0 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88),
                                  _mm512_shuffle_f32x4(u[0], u[1], 0xdd));
  const __m512 w1 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x88),
                                  _mm512_shuffle_f32x4(u[2], u[3], 0xdd));
  return _mm512_add_ps(_mm512_shuffle_f32x4(w0, w1, 0x88), _mm512_shuffle_f32x4(w0, w1, 0xdd));
}

}  // namespace

// Note [Dot-product GEMM]: for products whose A rows and B columns both run along k with unit
// stride, and that are narrow (x @ W^T for a classifier's 10 outputs), the packed kernels
// waste lanes or pay a transposing pack as dear as the FMAs. Here each C element is a dot
// product along k, 16 lanes at a time, for blocks of 4 rows x 4 columns (16 accumulators; 8
// loads per 16 FMAs), reduced across lanes once per block (reduce16). Rows and columns past
// the edge repeat the last one and are not stored.
void gemm_dot_f32(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                  const float* B, int64_t csb, float beta, float* C, int64_t rsc, int64_t csc) {
  for (int64_t i0 = 0; i0 < M; i0 += 4)
    for (int64_t j0 = 0; j0 < N; j0 += 4) {
      const float* a[4];
      const float* b[4];
      for (int r = 0; r < 4; ++r) a[r] = A + std::min<int64_t>(i0 + r, M - 1) * rsa;
      for (int c = 0; c < 4; ++c) b[c] = B + std::min<int64_t>(j0 + c, N - 1) * csb;
      __m512 acc[16];
      for (int q = 0; q < 16; ++q) acc[q] = _mm512_setzero_ps();
      for (int64_t k = 0; k < K; k += 16) {  // the last chunk's missing lanes load as zero
        const __mmask16 lanes = VecF32::lanes(K - k);
        __m512 av[4], bv[4];
        for (int r = 0; r < 4; ++r) av[r] = _mm512_maskz_loadu_ps(lanes, a[r] + k);
        for (int c = 0; c < 4; ++c) bv[c] = _mm512_maskz_loadu_ps(lanes, b[c] + k);
        for (int r = 0; r < 4; ++r)
          for (int c = 0; c < 4; ++c) acc[r * 4 + c] = _mm512_fmadd_ps(av[r], bv[c], acc[r * 4 + c]);
      }
      alignas(64) float sums[16];
      _mm512_store_ps(sums, _mm512_mul_ps(reduce16(acc), _mm512_set1_ps(alpha)));
      const int64_t rows = std::min<int64_t>(4, M - i0), cols = std::min<int64_t>(4, N - j0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          float* cp = C + (i0 + r) * rsc + (j0 + c) * csc;
          *cp = beta == 0.0f ? sums[r * 4 + c] : sums[r * 4 + c] + beta * *cp;
        }
    }
}

// The last panel of a block with few rows (the 4 rows left of 64 output channels after five
// 12-row panels) runs a 4- or 8-row instance on the zero-padded panel: a third or two thirds
// of the 12-row kernel's multiply-adds.
void gemm_ukernel_f32(int64_t k, const float* a, const float* b, float* c, int64_t rsc,
                      int64_t csc, int64_t m, int64_t n, float alpha, float beta) {
  if (m <= 4) {
    ukernel<VecF32, 4, true, kGemmMrF32>(k, a, 0, b, c, rsc, csc, m, n, alpha, beta);
  } else if (m <= 8) {
    ukernel<VecF32, 8, true, kGemmMrF32>(k, a, 0, b, c, rsc, csc, m, n, alpha, beta);
  } else {
    ukernel<VecF32, kGemmMrF32, true>(k, a, 0, b, c, rsc, csc, m, n, alpha, beta);
  }
}
void gemm_ukernel_f64(int64_t k, const double* a, const double* b, double* c, int64_t rsc,
                      int64_t csc, int64_t m, int64_t n, double alpha, double beta) {
  ukernel<VecF64, kGemmMrF64, true>(k, a, 0, b, c, rsc, csc, m, n, alpha, beta);
}
// Reading A in place, a short tile (few rows of C: a matrix-vector product, the last rows of
// a block) runs a 4- or 8-row instance instead of computing 12 rows and storing m.
void gemm_ukernel_rows_f32(int64_t k, const float* a, int64_t rsa, const float* b, float* c,
                           int64_t rsc, int64_t csc, int64_t m, int64_t n, float alpha,
                           float beta) {
  if (m <= 4) {
    ukernel<VecF32, 4, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
  } else if (m <= 8) {
    ukernel<VecF32, 8, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
  } else if (m <= 10) {  // a 10-class classifier's logits, transposed (x @ W^T)
    ukernel<VecF32, 10, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
  } else {
    ukernel<VecF32, kGemmMrF32, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
  }
}
// Both operands in place: rows of A (unit column stride) and rows of B with step ldb.
void gemm_ukernel_rows_b_f32(int64_t k, const float* a, int64_t rsa, const float* b, int64_t ldb,
                             float* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                             float alpha, float beta) {
  if (m <= 4) {
    ukernel<VecF32, 4, false, 4, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta, ldb);
  } else if (m <= 8) {
    ukernel<VecF32, 8, false, 8, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta, ldb);
  } else {
    ukernel<VecF32, kGemmMrF32, false, kGemmMrF32, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha,
                                                           beta, ldb);
  }
}
void gemm_ukernel_rows_f64(int64_t k, const double* a, int64_t rsa, const double* b, double* c,
                           int64_t rsc, int64_t csc, int64_t m, int64_t n, double alpha,
                           double beta) {
  if (m <= 4) {
    ukernel<VecF64, 4, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
  } else if (m <= 8) {
    ukernel<VecF64, 8, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
  } else {
    ukernel<VecF64, kGemmMrF64, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
  }
}

void gemm_pack_transposed_f32(int64_t k, int64_t rows, const float* src, int64_t ld,
                              float* dst, int64_t width) {
  pack_transposed<VecF32>(k, rows, src, ld, dst, width);
}
void gemm_pack_transposed_f64(int64_t k, int64_t rows, const double* src, int64_t ld,
                              double* dst, int64_t width) {
  pack_transposed<VecF64>(k, rows, src, ld, dst, width);
}

// f32 rows with unit column stride run 16 lanes at a time (tail masked); everything else, and
// f64 (whose GELU needs the accuracy of std::erf/std::tanh), goes through the scalar loop.
void gemm_epilogue_f32(float* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                       const float* bias, int64_t bias_rs, int64_t bias_cs, int act) {
  if (csc != 1 || (bias && bias_cs != 1 && bias_cs != 0)) {
    epilogue_scalar(c, rsc, csc, m, n, bias, bias_rs, bias_cs, act);
    return;
  }
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * rsc;
    const float* bi = bias ? bias + i * bias_rs : nullptr;
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 mask = VecF32::lanes(n - j);
      __m512 x = _mm512_maskz_loadu_ps(mask, ci + j);
      if (bi) {
        x = _mm512_add_ps(x, bias_cs == 0 ? _mm512_set1_ps(*bi) : _mm512_maskz_loadu_ps(mask, bi + j));
      }
      _mm512_mask_storeu_ps(ci + j, mask, activate(x, act));
    }
  }
}

void gemm_epilogue_f64(double* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                       const double* bias, int64_t bias_rs, int64_t bias_cs, int act) {
  if (csc != 1 || act > 1 || (bias && bias_cs != 1 && bias_cs != 0)) {
    epilogue_scalar(c, rsc, csc, m, n, bias, bias_rs, bias_cs, act);
    return;
  }
  for (int64_t i = 0; i < m; ++i) {
    double* ci = c + i * rsc;
    const double* bi = bias ? bias + i * bias_rs : nullptr;
    for (int64_t j = 0; j < n; j += 8) {
      const __mmask8 mask = VecF64::lanes(n - j);
      __m512d x = _mm512_maskz_loadu_pd(mask, ci + j);
      if (bi) {
        x = _mm512_add_pd(x, bias_cs == 0 ? _mm512_set1_pd(*bi) : _mm512_maskz_loadu_pd(mask, bi + j));
      }
      if (act == 1) x = _mm512_max_pd(_mm512_setzero_pd(), x);
      _mm512_mask_storeu_pd(ci + j, mask, x);
    }
  }
}

}  // namespace dc::cpu::avx512
