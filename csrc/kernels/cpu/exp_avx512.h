#pragma once
// exp(x) of 16 floats for x <= 0, for code compiled with AVX-512 (the GEMM's GELU/tanh
// epilogues in gemm/gemm_avx512.cpp, the softmax sums in the avx512 copy of vec/nn_rows.cpp).
// exp(x) = 2^j exp(r) with j = round(x / ln 2), |r| <= ln2 / 2 (ln 2 split in two), exp(r) by
// exp_f32's degree-6 polynomial (vec/scalar_math.h), and 2^j applied by vscalefps, which is
// exact and rounds into the subnormals and to 0 by itself; about 2 ulp. Below -104 exp(x)
// rounds to 0 in float, so x is clamped there; a NaN stays NaN (maxps returns its second
// operand when one is NaN).
#include <immintrin.h>

namespace dc::cpu {

inline __m512 exp_nonpositive_ps(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
  const __m512 j = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(j, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(j, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, j);
}

}  // namespace dc::cpu
