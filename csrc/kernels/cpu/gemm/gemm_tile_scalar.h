#pragma once
// Scalar pieces shared by every ISA's micro-kernel file: writing an accumulated tile into a C
// with any strides, and the epilogue's activations. Everything here has internal linkage
// (anonymous namespace) on purpose: each ISA file gets its own copy compiled with its own
// flags, so the linker can never substitute an AVX-512 copy into code that runs on any CPU.
#include <cmath>
#include <cstdint>

namespace dc::cpu {
namespace {

// c[i, j] = alpha * acc[i * NR + j] + beta * c[i, j] for i < m, j < n; beta == 0: c not read.
template <typename T, int NR>
inline void store_tile_scalar(const T* acc, T* c, int64_t rsc, int64_t csc, int64_t m,
                              int64_t n, T alpha, T beta) {
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * rsc;
    const T* ai = acc + i * NR;
    if (beta == T(0)) {
      for (int64_t j = 0; j < n; ++j) ci[j * csc] = alpha * ai[j];
    } else {
      for (int64_t j = 0; j < n; ++j) ci[j * csc] = alpha * ai[j] + beta * ci[j * csc];
    }
  }
}

// sqrt(2 / pi) and 1 / sqrt(2), the constants of the two GELU forms.
constexpr double kGeluTanhScale = 0.7978845608028654;
constexpr double kGeluTanhCubic = 0.044715;
constexpr double kInvSqrt2 = 0.7071067811865476;

template <typename T>
inline T activate_scalar(T x, int act) {
  switch (act) {
    case 1:  // relu; written so that NaN propagates like torch.relu
      return x < T(0) ? T(0) : x;
    case 2: {  // gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const T inner = T(kGeluTanhScale) * (x + T(kGeluTanhCubic) * x * x * x);
      return T(0.5) * x * (T(1) + std::tanh(inner));
    }
    case 3:  // gelu_erf: 0.5 x (1 + erf(x / sqrt(2)))
      return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2)));
    default:
      return x;
  }
}

// c[i, j] = act(c[i, j] + bias[i * bias_rs + j * bias_cs]) for i < m, j < n.
template <typename T>
inline void epilogue_scalar(T* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                            const T* bias, int64_t bias_rs, int64_t bias_cs, int act) {
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * rsc;
    for (int64_t j = 0; j < n; ++j) {
      T x = ci[j * csc];
      if (bias) x += bias[i * bias_rs + j * bias_cs];
      ci[j * csc] = activate_scalar(x, act);
    }
  }
}

}  // namespace
}  // namespace dc::cpu
