// vdpbf16ps micro-kernel, packing and bfloat16 store of the bf16 GEMM. Layout and blocking:
// Note [bf16 GEMM] in gemm_bf16.cpp; contracts in gemm_bf16.h.
//
// vdpbf16ps acc, x, y adds x.bf16[2l] * y.bf16[2l] + x.bf16[2l + 1] * y.bf16[2l + 1] to the
// float32 lane l of acc: two k steps per instruction, one instruction per cycle on Zen 4 (twice
// the multiply-adds of vfmadd231ps zmm). The packs therefore store each line (a row of A, a
// column of B) as 32-bit words of two consecutive-k bfloat16 values, k padded to even.
//
// Numerical pitfall: vdpbf16ps and vcvtne2ps2bf16 treat subnormal inputs (|x| < 2^-126) as
// zero and flush subnormal results, whatever MXCSR says; values that small are lost on this
// path only. Rounding is to nearest even, as dc::float_to_bf16_bits.
#include <immintrin.h>

#include <algorithm>

// GCC 12 reports its own _mm512_undefined_*() inside the intrinsics headers as "maybe
// uninitialized" (a known false positive, GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "core/half.h"
#include "kernels/cpu/gemm/gemm_bf16.h"
#include "kernels/cpu/gemm/gemm_kernels.h"
#include "kernels/cpu/gemm/gemm_tile_scalar.h"

namespace dc::cpu::avx512bf16 {
namespace {

constexpr int MR = kGemmMrBf16, NR = kGemmNrBf16;

inline __mmask16 lanes16(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}
inline __mmask32 lanes32(int64_t n) {
  return n >= 32 ? __mmask32(0xFFFFFFFFu) : n <= 0 ? __mmask32(0) : __mmask32((1u << n) - 1);
}

// The k loop of the 12 x 32 tile in inline assembly (with intrinsics GCC 12 rotates the
// accumulators through 23 register moves per k pair, as it does for the float32 kernel in
// gemm_avx512.cpp). Fixed registers: zmm0-11 and zmm12-23 accumulate columns 0-15 and 16-31
// of rows 0-11, zmm24/25 hold the k pair's B row (32 columns x 2 k), zmm26 the broadcast A
// pair. Per k pair: 2 loads of B, 12 broadcasts, 24 vdpbf16ps (24 cycles). Computes
//   acc[i, j] = sum_{q < kp} dot2(a[q * 12 + i], b[q * 32 + j])
// and then either stores it to tile[i * 32 + j] (k_loop_12x32) or, for a whole tile of a C
// with unit column stride, updates C from the registers: c[i * rsc + j] = alpha * acc + beta *
// c (k_loop_12x32_c; beta == 0: not read) or, for a bfloat16 C, c = bf16(alpha * acc)
// (k_loop_12x32_c16). Skipping the tile's 24 stores and reloads raised a replay of the
// macro-kernel at KC = 256 from 213-225 to 227-230 GFLOP/s.
#define DC_BF_ROW(I, CI, DI)                          \
  "vpbroadcastd " #I "*4(%[a]), %%zmm26\n\t"          \
  "vdpbf16ps %%zmm26, %%zmm24, %%zmm" #CI "\n\t"      \
  "vdpbf16ps %%zmm26, %%zmm25, %%zmm" #DI "\n\t"
#define DC_BF_K_STEP                                                                   \
  "vmovdqa64 (%[b]), %%zmm24\n\t"                                                     \
  "vmovdqa64 64(%[b]), %%zmm25\n\t"                                                   \
  DC_BF_ROW(0, 0, 12) DC_BF_ROW(1, 1, 13) DC_BF_ROW(2, 2, 14) DC_BF_ROW(3, 3, 15)     \
  DC_BF_ROW(4, 4, 16) DC_BF_ROW(5, 5, 17) DC_BF_ROW(6, 6, 18) DC_BF_ROW(7, 7, 19)     \
  DC_BF_ROW(8, 8, 20) DC_BF_ROW(9, 9, 21) DC_BF_ROW(10, 10, 22) DC_BF_ROW(11, 11, 23) \
  "add $48, %[a]\n\t"                                                                 \
  "add $128, %[b]\n\t"
#define DC_BF_ZERO(R) "vpxord %%zmm" #R ", %%zmm" #R ", %%zmm" #R "\n\t"
#define DC_BF_K_LOOP                                                                          \
  DC_BF_ZERO(0) DC_BF_ZERO(1) DC_BF_ZERO(2) DC_BF_ZERO(3) DC_BF_ZERO(4) DC_BF_ZERO(5)         \
  DC_BF_ZERO(6) DC_BF_ZERO(7) DC_BF_ZERO(8) DC_BF_ZERO(9) DC_BF_ZERO(10) DC_BF_ZERO(11)       \
  DC_BF_ZERO(12) DC_BF_ZERO(13) DC_BF_ZERO(14) DC_BF_ZERO(15) DC_BF_ZERO(16) DC_BF_ZERO(17)   \
  DC_BF_ZERO(18) DC_BF_ZERO(19) DC_BF_ZERO(20) DC_BF_ZERO(21) DC_BF_ZERO(22) DC_BF_ZERO(23)   \
  "mov %[k], %[n]\n\t"                                                                        \
  "shr $2, %[n]\n\t"                                                                          \
  "jz 2f\n\t"                                                                                 \
  "1:\n\t" DC_BF_K_STEP DC_BF_K_STEP DC_BF_K_STEP DC_BF_K_STEP                                \
  "dec %[n]\n\t"                                                                              \
  "jnz 1b\n\t"                                                                                \
  "2:\n\t"                                                                                    \
  "and $3, %[k]\n\t"                                                                          \
  "jz 4f\n\t"                                                                                 \
  "3:\n\t" DC_BF_K_STEP                                                                       \
  "dec %[k]\n\t"                                                                              \
  "jnz 3b\n\t"                                                                                \
  "4:\n\t"
#define DC_BF_CLOBBERS                                                                       \
  "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",     \
      "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",        \
      "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26"
#define DC_BF_STORE(I, CI, DI)                     \
  "vmovaps %%zmm" #CI ", " #I "*128(%[tile])\n\t" \
  "vmovaps %%zmm" #DI ", " #I "*128+64(%[tile])\n\t"
// C row update, alpha in zmm24 and beta in zmm25; the row pointer then moves on by rsc.
#define DC_BF_C_BETA(CI, DI)                           \
  "vmulps %%zmm24, %%zmm" #CI ", %%zmm" #CI "\n\t"     \
  "vmulps %%zmm24, %%zmm" #DI ", %%zmm" #DI "\n\t"     \
  "vfmadd231ps (%[c]), %%zmm25, %%zmm" #CI "\n\t"      \
  "vfmadd231ps 64(%[c]), %%zmm25, %%zmm" #DI "\n\t"    \
  "vmovups %%zmm" #CI ", (%[c])\n\t"                   \
  "vmovups %%zmm" #DI ", 64(%[c])\n\t"                 \
  "add %[rsc], %[c]\n\t"
#define DC_BF_C(CI, DI)                                \
  "vmulps %%zmm24, %%zmm" #CI ", %%zmm" #CI "\n\t"     \
  "vmulps %%zmm24, %%zmm" #DI ", %%zmm" #DI "\n\t"     \
  "vmovups %%zmm" #CI ", (%[c])\n\t"                   \
  "vmovups %%zmm" #DI ", 64(%[c])\n\t"                 \
  "add %[rsc], %[c]\n\t"

void k_loop_12x32(int64_t kp, const uint32_t* a, const uint32_t* b, float* tile) {
  int64_t iters;
  asm volatile(DC_BF_K_LOOP
               DC_BF_STORE(0, 0, 12) DC_BF_STORE(1, 1, 13) DC_BF_STORE(2, 2, 14)
               DC_BF_STORE(3, 3, 15) DC_BF_STORE(4, 4, 16) DC_BF_STORE(5, 5, 17)
               DC_BF_STORE(6, 6, 18) DC_BF_STORE(7, 7, 19) DC_BF_STORE(8, 8, 20)
               DC_BF_STORE(9, 9, 21) DC_BF_STORE(10, 10, 22) DC_BF_STORE(11, 11, 23)
               : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kp), [n] "=&r"(iters)
               : [tile] "r"(tile)
               : DC_BF_CLOBBERS);
}

void k_loop_12x32_c(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t rsc,
                    float alpha, float beta) {
  int64_t iters;
  const int64_t rsc_bytes = rsc * int64_t(sizeof(float)), has_beta = beta != 0.0f;
  asm volatile(DC_BF_K_LOOP
               "vbroadcastss %[alpha], %%zmm24\n\t"
               "vbroadcastss %[beta], %%zmm25\n\t"
               "test %[has_beta], %[has_beta]\n\t"
               "jz 5f\n\t"
               DC_BF_C_BETA(0, 12) DC_BF_C_BETA(1, 13) DC_BF_C_BETA(2, 14) DC_BF_C_BETA(3, 15)
               DC_BF_C_BETA(4, 16) DC_BF_C_BETA(5, 17) DC_BF_C_BETA(6, 18) DC_BF_C_BETA(7, 19)
               DC_BF_C_BETA(8, 20) DC_BF_C_BETA(9, 21) DC_BF_C_BETA(10, 22) DC_BF_C_BETA(11, 23)
               "jmp 6f\n\t"
               "5:\n\t"
               DC_BF_C(0, 12) DC_BF_C(1, 13) DC_BF_C(2, 14) DC_BF_C(3, 15) DC_BF_C(4, 16)
               DC_BF_C(5, 17) DC_BF_C(6, 18) DC_BF_C(7, 19) DC_BF_C(8, 20) DC_BF_C(9, 21)
               DC_BF_C(10, 22) DC_BF_C(11, 23)
               "6:\n\t"
               : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kp), [n] "=&r"(iters), [c] "+r"(c)
               : [rsc] "r"(rsc_bytes), [has_beta] "r"(has_beta), [alpha] "m"(alpha),
                 [beta] "m"(beta)
               : DC_BF_CLOBBERS);
}

// bfloat16 C row: the two halves rounded into one zmm (columns 0-15 low, from CI) and stored.
#define DC_BF_C16(CI, DI)                                          \
  "vmulps %%zmm24, %%zmm" #CI ", %%zmm" #CI "\n\t"                \
  "vmulps %%zmm24, %%zmm" #DI ", %%zmm" #DI "\n\t"                \
  "vcvtne2ps2bf16 %%zmm" #CI ", %%zmm" #DI ", %%zmm" #CI "\n\t"   \
  "vmovdqu16 %%zmm" #CI ", (%[c])\n\t"                            \
  "add %[rsc], %[c]\n\t"

void k_loop_12x32_c16(int64_t kp, const uint32_t* a, const uint32_t* b, uint16_t* c,
                      int64_t rsc, float alpha) {
  int64_t iters;
  const int64_t rsc_bytes = rsc * int64_t(sizeof(uint16_t));
  asm volatile(DC_BF_K_LOOP
               "vbroadcastss %[alpha], %%zmm24\n\t"
               DC_BF_C16(0, 12) DC_BF_C16(1, 13) DC_BF_C16(2, 14) DC_BF_C16(3, 15)
               DC_BF_C16(4, 16) DC_BF_C16(5, 17) DC_BF_C16(6, 18) DC_BF_C16(7, 19)
               DC_BF_C16(8, 20) DC_BF_C16(9, 21) DC_BF_C16(10, 22) DC_BF_C16(11, 23)
               : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kp), [n] "=&r"(iters), [c] "+r"(c)
               : [rsc] "r"(rsc_bytes), [alpha] "m"(alpha)
               : DC_BF_CLOBBERS);
}

#undef DC_BF_C16
#undef DC_BF_C
#undef DC_BF_C_BETA
#undef DC_BF_CLOBBERS
#undef DC_BF_K_LOOP
#undef DC_BF_STORE
#undef DC_BF_ZERO
#undef DC_BF_K_STEP
#undef DC_BF_ROW

// 32 consecutive values src[off], ..., src[off + 31] as bfloat16, those from n on zero (the
// masked loads never touch them).
template <bool kBf16>
inline __m512i load32(const void* src, int64_t off, int64_t n) {
  if constexpr (kBf16) {
    return _mm512_maskz_loadu_epi16(lanes32(n), static_cast<const uint16_t*>(src) + off);
  } else {
    const float* s = static_cast<const float*>(src) + off;
    const __m512 lo = _mm512_maskz_loadu_ps(lanes16(n), s);
    const __m512 hi = _mm512_maskz_loadu_ps(lanes16(n - 16), s + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // lo's 16 values first
  }
}

// Transposes 16 rows of 16 32-bit words in registers: out[q] word r = v[r] word q. 32-bit and
// 64-bit interleaves inside 128-bit lanes, then two rounds of 128-bit lane shuffles.
inline void transpose16x16(__m512i v[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_i32x4(u[8 * i + j], u[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_i32x4(u[8 * i + j], u[8 * i + 4 + j], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    v[j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0x88);
    v[j + 8] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0xdd);
  }
}

// Lines contiguous along k (a row-major A, a transposed B such as a Linear weight): each
// line's k pairs are already the words of the panel, so the pack is a transpose of 32-bit
// words, 16 lines x 16 pairs at a time.
template <bool kBf16>
void pack_k_contiguous(int64_t k, int64_t rows, const void* src, int64_t ld, uint32_t* dst,
                       int64_t width) {
  for (int64_t r0 = 0; r0 < width; r0 += 16) {
    const int64_t valid = std::clamp<int64_t>(rows - r0, 0, 16);
    const __mmask16 store_mask = lanes16(width - r0);
    for (int64_t p0 = 0; p0 < k; p0 += 32) {
      __m512i v[16];
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r)
        v[r] = r < valid ? load32<kBf16>(src, (r0 + r) * ld + p0, k - p0) : _mm512_setzero_si512();
      transpose16x16(v);
      const int64_t nq = std::min<int64_t>(16, (k - p0 + 1) / 2);
      uint32_t* d = dst + p0 / 2 * width + r0;
      for (int64_t q = 0; q < nq; ++q) _mm512_mask_storeu_epi32(d + q * width, store_mask, v[q]);
    }
  }
}

// Lines contiguous across the panels (a row-major B, a transposed A): the k-lines 2q and
// 2q + 1 are interleaved 16 bits at a time into the panels' words, 32 lines per step. The
// loops take 8 k pairs (16 k-lines) across all panels at a time: the source is then read in
// short runs of whole lines, and each panel receives 1 KB in order. Packing 512 columns x
// 1024 k of a 1024-wide B from L3: 0.077 ns per element, against 0.089 panel by panel and
// 0.104 one k pair at a time across all panels.
template <bool kBf16>
void pack_r_contiguous(int64_t k, int64_t lines, const void* src, int64_t ks, uint32_t* dst,
                       int64_t width) {
  // Word l of `lo` = (x0[l], x1[l]) and of `hi` = (x0[16 + l], x1[16 + l]) (vpermt2w indices
  // from 32 on pick the second source).
  alignas(64) static constexpr uint16_t kLo[32] = {0, 32, 1, 33, 2,  34, 3,  35, 4,  36, 5,
                                                   37, 6, 38, 7, 39, 8,  40, 9,  41, 10, 42,
                                                   11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  alignas(64) static constexpr uint16_t kHi[32] = {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21,
                                                   53, 22, 54, 23, 55, 24, 56, 25, 57, 26, 58,
                                                   27, 59, 28, 60, 29, 61, 30, 62, 31, 63};
  const __m512i idx_lo = _mm512_load_si512(kLo), idx_hi = _mm512_load_si512(kHi);
  const int64_t kp = (k + 1) / 2, panel_words = kp * width;
  for (int64_t q0 = 0; q0 < kp; q0 += 8) {
    for (int64_t l0 = 0; l0 < lines; l0 += width) {
      for (int64_t q = q0; q < std::min(kp, q0 + 8); ++q) {
        const bool odd_end = 2 * q + 1 >= k;
        uint32_t* panel = dst + l0 / width * panel_words + q * width;
        for (int64_t r0 = 0; r0 < width; r0 += 32) {
          const int64_t valid = std::clamp<int64_t>(lines - l0 - r0, 0, 32);
          const __mmask16 m0 = lanes16(width - r0), m1 = lanes16(width - r0 - 16);
          const __m512i x0 = load32<kBf16>(src, 2 * q * ks + l0 + r0, valid);
          const __m512i x1 = odd_end ? _mm512_setzero_si512()
                                     : load32<kBf16>(src, (2 * q + 1) * ks + l0 + r0, valid);
          _mm512_mask_storeu_epi32(panel + r0, m0, _mm512_permutex2var_epi16(x0, idx_lo, x1));
          if (m1) {
            _mm512_mask_storeu_epi32(panel + r0 + 16, m1,
                                     _mm512_permutex2var_epi16(x0, idx_hi, x1));
          }
        }
      }
    }
  }
}

// Any strides: one value at a time.
template <bool kBf16>
void pack_strided(int64_t k, int64_t rows, const void* src, int64_t rs, int64_t ks, uint32_t* dst,
                  int64_t width) {
  uint16_t* d = reinterpret_cast<uint16_t*>(dst);
  const int64_t kp = (k + 1) / 2;
  for (int64_t q = 0; q < kp; ++q)
    for (int64_t r = 0; r < width; ++r)
      for (int64_t t = 0; t < 2; ++t) {
        const int64_t p = 2 * q + t;
        uint16_t v = 0;
        if (r < rows && p < k) {
          const int64_t at = r * rs + p * ks;
          v = kBf16 ? static_cast<const uint16_t*>(src)[at]
                    : float_to_bf16_bits(static_cast<const float*>(src)[at]);
        }
        d[(q * width + r) * 2 + t] = v;
      }
}

inline __m512 bf16x16_to_f32(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

}  // namespace

void gemm_bf16_pack(int64_t k, int64_t lines, const void* src, bool src_bf16, int64_t rs,
                    int64_t ks, uint32_t* dst, int64_t width) {
  if (ks != 1 && rs == 1) {
    src_bf16 ? pack_r_contiguous<true>(k, lines, src, ks, dst, width)
             : pack_r_contiguous<false>(k, lines, src, ks, dst, width);
    return;
  }
  const int64_t panel_words = (k + 1) / 2 * width;
  for (int64_t l0 = 0; l0 < lines; l0 += width, dst += panel_words) {
    const int64_t rows = std::min(width, lines - l0);
    const void* s = static_cast<const char*>(src) + l0 * rs * (src_bf16 ? 2 : 4);
    if (ks == 1) {
      src_bf16 ? pack_k_contiguous<true>(k, rows, s, rs, dst, width)
               : pack_k_contiguous<false>(k, rows, s, rs, dst, width);
    } else {
      src_bf16 ? pack_strided<true>(k, rows, s, rs, ks, dst, width)
               : pack_strided<false>(k, rows, s, rs, ks, dst, width);
    }
  }
}

void gemm_bf16_ukernel(int64_t k, const uint32_t* a, const uint32_t* b, float* c, int64_t rsc,
                       int64_t csc, int64_t m, int64_t n, float alpha, float beta) {
  // Warm the C tile while the dot products run: it is read (beta != 0) or written right after.
  for (int64_t i = 0; i < m; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * rsc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * rsc + (NR - 1) * csc), _MM_HINT_T0);
  }
  if (m == MR && n == NR && csc == 1) {
    k_loop_12x32_c((k + 1) / 2, a, b, c, rsc, alpha, beta);
    return;
  }
  alignas(64) float tile[MR * NR];
  k_loop_12x32((k + 1) / 2, a, b, tile);
  if (csc != 1) {
    store_tile_scalar<float, NR>(tile, c, rsc, csc, m, n, alpha, beta);
    return;
  }
  const __mmask16 k0 = lanes16(n), k1 = lanes16(n - 16);
  const __m512 valpha = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * rsc;
    __m512 r0 = _mm512_mul_ps(valpha, _mm512_load_ps(tile + i * NR));
    __m512 r1 = _mm512_mul_ps(valpha, _mm512_load_ps(tile + i * NR + 16));
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(k0, ci), r0);
      r1 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(k1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, k0, r0);
    _mm512_mask_storeu_ps(ci + 16, k1, r1);
  }
}

void gemm_bf16_ukernel_c16(int64_t k, const uint32_t* a, const uint32_t* b, uint16_t* c,
                           int64_t rsc, int64_t csc, int64_t m, int64_t n, float alpha) {
  if (m == MR && n == NR && csc == 1) {
    k_loop_12x32_c16((k + 1) / 2, a, b, c, rsc, alpha);
    return;
  }
  alignas(64) float tile[MR * NR];
  k_loop_12x32((k + 1) / 2, a, b, tile);
  const __m512 valpha = _mm512_set1_ps(alpha);
  for (int i = 0; i < MR * NR; i += 16)
    _mm512_store_ps(tile + i, _mm512_mul_ps(valpha, _mm512_load_ps(tile + i)));
  gemm_bf16_store(tile, NR, c, rsc, csc, m, n, 0.0f, nullptr, 0, 0, 0);
}

void gemm_bf16_store(float* w, int64_t ldw, uint16_t* c, int64_t rsc, int64_t csc, int64_t m,
                     int64_t n, float beta, const uint16_t* bias, int64_t bias_rs,
                     int64_t bias_cs, int act) {
  const __m512 vbeta = _mm512_set1_ps(beta);
  // w += beta * c + bias, 16 columns at a time (strided c and bias one value at a time).
  if (beta != 0.0f || bias) {
    for (int64_t i = 0; i < m; ++i) {
      float* wi = w + i * ldw;
      const uint16_t* ci = c + i * rsc;
      const uint16_t* bi = bias ? bias + i * bias_rs : nullptr;
      for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 mask = lanes16(n - j);
        __m512 x = _mm512_maskz_loadu_ps(mask, wi + j);
        if (beta != 0.0f) {
          __m512 cv;
          if (csc == 1) {
            cv = bf16x16_to_f32(_mm256_maskz_loadu_epi16(mask, ci + j));
          } else {
            alignas(64) uint16_t g[16] = {};
            for (int64_t l = 0; l < std::min<int64_t>(16, n - j); ++l) g[l] = ci[(j + l) * csc];
            cv = bf16x16_to_f32(_mm256_load_si256(reinterpret_cast<const __m256i*>(g)));
          }
          x = _mm512_fmadd_ps(vbeta, cv, x);
        }
        if (bi) {
          __m512 bv;
          if (bias_cs == 0) {
            bv = _mm512_set1_ps(bf16_bits_to_float(*bi));
          } else if (bias_cs == 1) {
            bv = bf16x16_to_f32(_mm256_maskz_loadu_epi16(mask, bi + j));
          } else {
            alignas(64) uint16_t g[16] = {};
            for (int64_t l = 0; l < std::min<int64_t>(16, n - j); ++l) g[l] = bi[(j + l) * bias_cs];
            bv = bf16x16_to_f32(_mm256_load_si256(reinterpret_cast<const __m256i*>(g)));
          }
          x = _mm512_add_ps(x, bv);
        }
        _mm512_mask_storeu_ps(wi + j, mask, x);
      }
    }
  }
  if (act != 0) avx512::gemm_epilogue_f32(w, ldw, 1, m, n, nullptr, 0, 0, act);
  for (int64_t i = 0; i < m; ++i) {
    const float* wi = w + i * ldw;
    uint16_t* ci = c + i * rsc;
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 mask = lanes16(n - j);
      const __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, wi + j));
      if (csc == 1) {
        _mm256_mask_storeu_epi16(ci + j, mask, h);
      } else {
        alignas(32) uint16_t s[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(s), h);
        for (int64_t l = 0; l < std::min<int64_t>(16, n - j); ++l) ci[(j + l) * csc] = s[l];
      }
    }
  }
}

}  // namespace dc::cpu::avx512bf16
