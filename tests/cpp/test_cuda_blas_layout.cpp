// Note [Row-major matmul on a column-major BLAS] (kernels/cuda/blas_layout.h): the arguments
// planned for cuBLAS, run through a naive column-major GEMM that follows the BLAS definition on
// the same memory, give the row-major product, for every mix of layouts.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/cuda/blas_layout.h"

namespace dc::cuda_kernels {
namespace {

// X[i, j] of a column-major matrix with leading dimension ld, op applied.
double at(const std::vector<double>& mem, int64_t base, bool trans, int64_t ld, int64_t i,
          int64_t j) {
  return trans ? mem[base + j + i * ld] : mem[base + i + j * ld];
}

// cublasGemmStridedBatchedEx's definition: C[b] = op(A[b]) op(B[b]), column-major.
void blas_gemm(const BlasGemmPlan& p, int64_t batch, const std::vector<double>& first,
               const std::vector<double>& second, std::vector<double>& c) {
  for (int64_t q = 0; q < batch; ++q)
    for (int64_t i = 0; i < p.m; ++i)
      for (int64_t j = 0; j < p.n; ++j) {
        double s = 0;
        for (int64_t l = 0; l < p.k; ++l)
          s += at(first, q * p.stride_first, p.trans_first, p.ld_first, i, l) *
               at(second, q * p.stride_second, p.trans_second, p.ld_second, l, j);
        c[q * p.stride_c + i + j * p.ldc] = s;
      }
}

enum Layout { kRowMajor, kColMajor, kRowPadded, kColPadded, kBothStrided };

// A rows x cols matrix per batch in `layout`, its memory and strides (batch stride 0 when
// broadcast).
StridedMatrix lay_out(int64_t rows, int64_t cols, int64_t batch, Layout layout, bool broadcast,
                      std::vector<double>& mem, std::mt19937& rng) {
  StridedMatrix m{rows, cols, 0, 0, 0};
  int64_t per = 0;
  switch (layout) {
    case kRowMajor: m.row = cols, m.col = 1, per = rows * cols; break;
    case kColMajor: m.row = 1, m.col = rows, per = rows * cols; break;
    case kRowPadded: m.row = cols + 3, m.col = 1, per = rows * (cols + 3); break;
    case kColPadded: m.row = 1, m.col = rows + 2, per = (rows + 2) * cols; break;
    case kBothStrided: m.row = 2 * cols, m.col = 2, per = 2 * rows * cols; break;
  }
  m.batch = broadcast ? 0 : per;
  mem.assign(static_cast<size_t>(per * (broadcast ? 1 : batch)) + 1, 0.0);
  std::uniform_real_distribution<double> u(-1, 1);
  for (double& v : mem) v = u(rng);
  return m;
}

double elem(const std::vector<double>& mem, const StridedMatrix& m, int64_t b, int64_t i,
            int64_t j) {
  return mem[b * m.batch + i * m.row + j * m.col];
}

TEST(CudaBlasLayout, PlansGiveTheRowMajorProduct) {
  std::mt19937 rng(7);
  const int64_t dims[][3] = {{1, 1, 1}, {1, 5, 3}, {4, 1, 2}, {3, 7, 1}, {5, 6, 9}, {17, 3, 8}};
  int planned = 0, refused = 0;
  for (const auto& d : dims)
    for (int la = 0; la < 5; ++la)
      for (int lb = 0; lb < 5; ++lb)
        for (int lc = 0; lc < 4; ++lc)
          for (int64_t batch : {1, 3})
            for (bool bcast : {false, true}) {
              const int64_t M = d[0], K = d[1], N = d[2];
              std::vector<double> am, bm, cm;
              const StridedMatrix a = lay_out(M, K, batch, Layout(la), bcast, am, rng);
              const StridedMatrix b = lay_out(K, N, batch, Layout(lb), false, bm, rng);
              const StridedMatrix c = lay_out(M, N, batch, Layout(lc), false, cm, rng);
              const BlasGemmPlan p = plan_blas_gemm(a, b, c, batch);
              const bool strided = (la == kBothStrided && M > 1 && K > 1) ||
                                   (lb == kBothStrided && K > 1 && N > 1);
              if (!p.ok) {
                EXPECT_TRUE(strided) << "refused a plannable layout " << la << lb << lc;
                ++refused;
                continue;
              }
              ++planned;
              std::vector<double> out = cm;
              blas_gemm(p, batch, p.swap ? bm : am, p.swap ? am : bm, out);
              for (int64_t q = 0; q < batch; ++q)
                for (int64_t i = 0; i < M; ++i)
                  for (int64_t j = 0; j < N; ++j) {
                    double want = 0;
                    for (int64_t l = 0; l < K; ++l)
                      want += elem(am, a, q, i, l) * elem(bm, b, q, l, j);
                    ASSERT_NEAR(elem(out, c, q, i, j), want, 1e-12)
                        << "M K N " << M << " " << K << " " << N << " layouts " << la << lb
                        << lc << " batch " << batch << " broadcast " << bcast;
                  }
            }
  EXPECT_GT(planned, 1000);
  EXPECT_GT(refused, 0);
}

TEST(CudaBlasLayout, RefusesWhatTheBlasCannotTake) {
  // a column-strided C would need a copy; a broadcast C would be written by every batch
  const StridedMatrix a{4, 4, 16, 4, 1}, b{4, 4, 16, 4, 1};
  EXPECT_FALSE(plan_blas_gemm(a, b, StridedMatrix{4, 4, 32, 8, 2}, 2).ok);
  EXPECT_FALSE(plan_blas_gemm(a, b, StridedMatrix{4, 4, 0, 4, 1}, 2).ok);
  EXPECT_TRUE(plan_blas_gemm(a, b, StridedMatrix{4, 4, 0, 4, 1}, 1).ok);
  // sizes past the 32-bit interface
  const int64_t big = int64_t(1) << 31;
  EXPECT_FALSE(plan_blas_gemm(StridedMatrix{1, big, 0, big, 1}, StridedMatrix{big, 1, 0, 1, 1},
                              StridedMatrix{1, 1, 0, 1, 1}, 1)
                   .ok);
}

}  // namespace
}  // namespace dc::cuda_kernels
