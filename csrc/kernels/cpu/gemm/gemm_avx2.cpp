// AVX2 + FMA micro-kernels and epilogue. Layout contract: gemm_kernels.h.
//
// f32: 6 x 16 tile = 6 rows x 2 ymm accumulators (12 registers) + 2 ymm of B + 1 broadcast of
// A: 15 of 16 registers. Per k step 12 FMAs (6 cycles on two FMA ports) against 2 loads and
// 6 broadcasts. f64: the same shape in doubles, 6 x 8.
// Edges: a tile with n < NR goes through a stack tile and the scalar store (AVX2 masked
// stores are slow and rare here); rows i >= m are skipped.
#include <immintrin.h>

#include "kernels/cpu/gemm/gemm_kernels.h"
#include "kernels/cpu/gemm/gemm_tile_scalar.h"

namespace dc::cpu::avx2 {
namespace {

struct VecF32 {
  using T = float;
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V load(const T* p) { return _mm256_load_ps(p); }
  static V loadu(const T* p) { return _mm256_loadu_ps(p); }
  static void storeu(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};

struct VecF64 {
  using T = double;
  using V = __m256d;
  static constexpr int W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V load(const T* p) { return _mm256_load_pd(p); }
  static V loadu(const T* p) { return _mm256_loadu_pd(p); }
  static void storeu(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
};

// c[m, n] (+)= alpha * a(MR, k) b(k, 2W); see gemm_kernels.h. a(i, p) = a[p * MR + i] when
// packed, a[i * rsa + p] when reading rows of A (rows i >= m then re-read row 0, unstored).
template <class VT, int MR, bool kPackedA>
inline void ukernel(int64_t k, const typename VT::T* a, int64_t rsa, const typename VT::T* b,
                    typename VT::T* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                    typename VT::T alpha, typename VT::T beta) {
  using T = typename VT::T;
  using V = typename VT::V;
  constexpr int W = VT::W;
  constexpr int NR = 2 * W;
  int64_t row[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) row[i] = kPackedA ? i : (i < m ? i : 0) * rsa;
  const int64_t a_step = kPackedA ? MR : 1;

  for (int64_t i = 0; i < m; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * rsc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * rsc + (NR - 1) * csc), _MM_HINT_T0);
  }

  V acc[MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = VT::zero();
  // Not unrolled over k: with 16 registers, GCC hoists the extra B loads of an unrolled body
  // and spills accumulators to the stack.
  for (int64_t p = 0; p < k; ++p, a += a_step, b += NR) {
    const V b0 = VT::load(b), b1 = VT::load(b + W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = VT::set1(a[row[i]]);
      acc[i][0] = VT::fmadd(ai, b0, acc[i][0]);
      acc[i][1] = VT::fmadd(ai, b1, acc[i][1]);
    }
  }

  if (csc == 1 && n == NR) {
    const V valpha = VT::set1(alpha), vbeta = VT::set1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if (i >= m) break;
      T* ci = c + i * rsc;
      V r0 = VT::mul(valpha, acc[i][0]), r1 = VT::mul(valpha, acc[i][1]);
      if (beta != T(0)) {
        r0 = VT::fmadd(vbeta, VT::loadu(ci), r0);
        r1 = VT::fmadd(vbeta, VT::loadu(ci + W), r1);
      }
      VT::storeu(ci, r0);
      VT::storeu(ci + W, r1);
    }
  } else {
    alignas(32) T tile[MR * NR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      VT::storeu(tile + i * NR, acc[i][0]);
      VT::storeu(tile + i * NR + W, acc[i][1]);
    }
    store_tile_scalar<T, NR>(tile, c, rsc, csc, m, n, alpha, beta);
  }
}

// Lane mask for the first n (0..8) of 8 lanes, for maskload/maskstore.
inline __m256i lanes8(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < 0 ? 0 : n > 8 ? 8 : n)), idx);
}

// Transposes 8 rows of 8 floats in registers: v[q] lane r = input v[r] lane q.
inline void transpose8x8(__m256 v[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    u[4 * h] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
    u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
    u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    v[j + 4] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

// exp(x) for x <= 0: 2^j * exp(r), j = round(x / ln 2), |r| <= ln2 / 2, Cephes polynomial.
// 2^j is built in the exponent bits; inputs are clamped at -87 so j + 127 stays a normal.
inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 j = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(j, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(j, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i bits = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(j), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

inline __m256 abs_ps(__m256 x) {
  return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}

// Same formulas and numerical notes as the AVX-512 versions (gemm_avx512.cpp).
inline __m256 gelu_tanh(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 u = _mm256_mul_ps(_mm256_set1_ps(float(kGeluTanhScale)),
                                 _mm256_fmadd_ps(_mm256_set1_ps(float(kGeluTanhCubic)), x3, x));
  const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_setzero_ps(), abs_ps(_mm256_add_ps(u, u))));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e));
  const __m256 neg = _mm256_cmp_ps(u, _mm256_setzero_ps(), _CMP_LT_OQ);
  return _mm256_mul_ps(x, _mm256_blendv_ps(s, _mm256_mul_ps(e, s), neg));
}

inline __m256 gelu_erf(__m256 x) {
  const __m256 z = _mm256_mul_ps(abs_ps(x), _mm256_set1_ps(float(kInvSqrt2)));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), z, one));
  __m256 poly = _mm256_set1_ps(1.061405429f);
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-1.453152027f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592f));
  poly = _mm256_mul_ps(poly, t);
  const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(z, z)));
  const __m256 half_erfc = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), poly), e);
  const __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  return _mm256_mul_ps(x, _mm256_blendv_ps(half_erfc, _mm256_sub_ps(one, half_erfc), pos));
}

inline __m256 activate(__m256 x, int act) {
  switch (act) {
    case 1: return _mm256_max_ps(_mm256_setzero_ps(), x);  // NaN propagates
    case 2: return gelu_tanh(x);
    case 3: return gelu_erf(x);
    default: return x;
  }
}

}  // namespace

void gemm_ukernel_f32(int64_t k, const float* a, const float* b, float* c, int64_t rsc,
                      int64_t csc, int64_t m, int64_t n, float alpha, float beta) {
  ukernel<VecF32, kGemmMrF32, true>(k, a, 0, b, c, rsc, csc, m, n, alpha, beta);
}
void gemm_ukernel_f64(int64_t k, const double* a, const double* b, double* c, int64_t rsc,
                      int64_t csc, int64_t m, int64_t n, double alpha, double beta) {
  ukernel<VecF64, kGemmMrF64, true>(k, a, 0, b, c, rsc, csc, m, n, alpha, beta);
}
void gemm_ukernel_rows_f32(int64_t k, const float* a, int64_t rsa, const float* b, float* c,
                           int64_t rsc, int64_t csc, int64_t m, int64_t n, float alpha,
                           float beta) {
  ukernel<VecF32, kGemmMrF32, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
}
void gemm_ukernel_rows_f64(int64_t k, const double* a, int64_t rsa, const double* b, double* c,
                           int64_t rsc, int64_t csc, int64_t m, int64_t n, double alpha,
                           double beta) {
  ukernel<VecF64, kGemmMrF64, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
}

// 8 x 8 blocks through registers; see the AVX-512 version for why this pack matters.
void gemm_pack_transposed_f32(int64_t k, int64_t rows, const float* src, int64_t ld,
                              float* dst, int64_t width) {
  for (int64_t r0 = 0; r0 < width; r0 += 8) {
    const int64_t valid = rows - r0 < 0 ? 0 : rows - r0 > 8 ? 8 : rows - r0;
    const __m256i store_mask = lanes8(width - r0);
    const bool full_store = width - r0 >= 8;
    for (int64_t p0 = 0; p0 < k; p0 += 8) {
      const bool full_load = k - p0 >= 8;
      const __m256i load_mask = lanes8(k - p0);
      __m256 v[8];
      for (int r = 0; r < 8; ++r) {
        const float* s = src + (r0 + r) * ld + p0;
        v[r] = r >= valid   ? _mm256_setzero_ps()
               : full_load ? _mm256_loadu_ps(s)
                           : _mm256_maskload_ps(s, load_mask);
      }
      transpose8x8(v);
      const int64_t np = k - p0 < 8 ? k - p0 : 8;
      for (int64_t q = 0; q < np; ++q) {
        float* d = dst + (p0 + q) * width + r0;
        if (full_store) {
          _mm256_storeu_ps(d, v[q]);
        } else {
          _mm256_maskstore_ps(d, store_mask, v[q]);
        }
      }
    }
  }
}

// f32 rows with unit column stride run 8 lanes at a time and the tail through a stack
// buffer; everything else, and f64 GELU (which needs std::erf/std::tanh accuracy), is scalar.
void gemm_epilogue_f32(float* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                       const float* bias, int64_t bias_rs, int64_t bias_cs, int act) {
  if (csc != 1 || (bias && bias_cs != 1 && bias_cs != 0)) {
    epilogue_scalar(c, rsc, csc, m, n, bias, bias_rs, bias_cs, act);
    return;
  }
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * rsc;
    const float* bi = bias ? bias + i * bias_rs : nullptr;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      __m256 x = _mm256_loadu_ps(ci + j);
      if (bi) x = _mm256_add_ps(x, bias_cs == 0 ? _mm256_set1_ps(*bi) : _mm256_loadu_ps(bi + j));
      _mm256_storeu_ps(ci + j, activate(x, act));
    }
    if (j < n) {
      alignas(32) float buf[8] = {};
      for (int64_t t = j; t < n; ++t) buf[t - j] = ci[t] + (bi ? bi[bias_cs * t] : 0.0f);
      _mm256_store_ps(buf, activate(_mm256_load_ps(buf), act));
      for (int64_t t = j; t < n; ++t) ci[t] = buf[t - j];
    }
  }
}

void gemm_epilogue_f64(double* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                       const double* bias, int64_t bias_rs, int64_t bias_cs, int act) {
  epilogue_scalar(c, rsc, csc, m, n, bias, bias_rs, bias_cs, act);
}

}  // namespace dc::cpu::avx2
