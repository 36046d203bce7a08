#pragma once
// The naive reference the GEMM tests (test_gemm.cpp, test_gemm_bf16.cpp) compare with: the
// product in double of the operands as the kernel computes with them, then beta * C, the bias
// and the activation, and the check that C's padding was left alone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/gemm/gemm.h"

namespace dc::test {

inline double activate(double x, cpu::GemmActivation act) {
  switch (act) {
    case cpu::GemmActivation::relu: return x < 0 ? 0 : x;
    case cpu::GemmActivation::gelu_tanh:
      return 0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case cpu::GemmActivation::gelu_erf: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    default: return x;
  }
}

// Compares C (got(i, j)) with ref = act(alpha * sum_p a(i, p) b(p, j) + beta * c0(i, j) +
// bias(j)), to within tol(ref, ref_mag), ref_mag the sum of the magnitudes of ref's terms.
// Case has M, N, K, alpha, beta, bias, act and str(). False after the third mismatch.
template <typename Case, typename A, typename B, typename C0, typename Bias, typename Got,
          typename Tol>
bool matches_reference(const Case& c, A a, B b, C0 c0, Bias bias, Got got, Tol tol) {
  // Dense copies, A row-major and B column-major, so the inner loop is contiguous.
  std::vector<double> ad(size_t(c.M * c.K)), bt(size_t(c.K * c.N));
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t p = 0; p < c.K; ++p) ad[size_t(i * c.K + p)] = a(i, p);
  for (int64_t p = 0; p < c.K; ++p)
    for (int64_t j = 0; j < c.N; ++j) bt[size_t(j * c.K + p)] = b(p, j);
  int failures = 0;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      double sum = 0, mag = 0;
      const double* ai = ad.data() + i * c.K;
      const double* bj = bt.data() + j * c.K;
      for (int64_t p = 0; p < c.K; ++p) {
        sum += ai[p] * bj[p];
        mag += std::abs(ai[p] * bj[p]);
      }
      double ref = c.alpha * sum, ref_mag = std::abs(c.alpha) * mag;
      if (c.beta != 0) {
        ref += c.beta * c0(i, j);
        ref_mag += std::abs(c.beta * c0(i, j));
      }
      if (c.bias) {
        ref += bias(j);
        ref_mag += std::abs(bias(j));
      }
      ref = activate(ref, c.act);
      const double t = tol(ref, ref_mag), v = got(i, j);
      if (!(std::abs(v - ref) <= t)) {
        ADD_FAILURE() << c.str() << ": C[" << i << ", " << j << "] = " << v << ", expected "
                      << ref << " (tol " << t << ")";
        if (++failures >= 3) return false;
      }
    }
  }
  return failures == 0;
}

// The padding past C's rows (past its columns when C is column-major, c.tc) is untouched: each
// element now(k) of the buffer equals before(k), NaN included.
template <typename Case, typename Now, typename Before>
bool padding_untouched(const Case& c, Now now, Before before) {
  const int64_t ld = c.tc ? c.M + c.pad : c.N + c.pad;
  for (int64_t outer = 0; outer < (c.tc ? c.N : c.M); ++outer)
    for (int64_t inner = (c.tc ? c.M : c.N); inner < ld; ++inner) {
      const double v = now(outer * ld + inner), v0 = before(outer * ld + inner);
      if (!(v == v0 || (std::isnan(v) && std::isnan(v0)))) {
        ADD_FAILURE() << c.str() << ": padding element overwritten";
        return false;
      }
    }
  return true;
}

}  // namespace dc::test
