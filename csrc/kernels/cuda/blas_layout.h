#pragma once
// Note [Row-major matmul on a column-major BLAS]
// matmul_into takes C[b] = A[b] @ B[b] on operands addressed by element strides (batch, row,
// column); cuBLAS takes column-major matrices, each with a leading dimension and an optional
// transpose. A strided matrix is column-major with ld = column stride when its row stride is 1,
// and is the transpose of a column-major matrix with ld = row stride when its column stride is
// 1; other layouts (both strides > 1) cannot be passed without a copy, and the call falls back
// to deepcore's own kernel. When C is row-major the product is computed as C^T = B^T A^T, so that
// C^T is column-major: the two operands swap places and each one's transpose flag flips. A dim of
// extent 1 leaves its stride free (torch gives such dims any stride), so it is chosen to fit.
// This header is plain C++: tests/cpp/test_cuda_blas_layout.cpp checks the plans against a naive
// column-major GEMM run on the same memory.
#include <algorithm>
#include <climits>
#include <cstdint>

namespace dc::cuda_kernels {

struct StridedMatrix {
  int64_t rows = 0, cols = 0;
  int64_t batch = 0, row = 0, col = 0;  // element strides
};

// How one matrix sits in memory for a column-major BLAS.
struct ColumnMajor {
  bool ok = false;
  bool transposed = false;  // memory holds the matrix's transpose, column-major
  int64_t ld = 0;
};

inline ColumnMajor column_major(const StridedMatrix& m) {
  ColumnMajor r;
  // column-major: consecutive rows are adjacent, columns ld apart
  if ((m.row == 1 || m.rows <= 1) && (m.cols <= 1 || m.col >= std::max<int64_t>(1, m.rows))) {
    r.ok = true;
    r.ld = m.cols <= 1 ? std::max<int64_t>(1, m.rows) : m.col;
    return r;
  }
  // row-major: the transpose of a column-major matrix with ld = row stride
  if ((m.col == 1 || m.cols <= 1) && (m.rows <= 1 || m.row >= std::max<int64_t>(1, m.cols))) {
    r.ok = true;
    r.transposed = true;
    r.ld = m.rows <= 1 ? std::max<int64_t>(1, m.cols) : m.row;
  }
  return r;
}

// The arguments of cublasGemmStridedBatchedEx (op(X): 'N' or 'T' as a flag) for
// C[b] = A[b] @ B[b], A (M x K), B (K x N), C (M x N). `first`/`second` say which of A and B
// is BLAS's A and B operand (swapped when C is row-major).
struct BlasGemmPlan {
  bool ok = false;
  bool swap = false;              // BLAS computes C^T = B^T A^T: its A is our B
  bool trans_first = false, trans_second = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t ld_first = 0, ld_second = 0, ldc = 0;
  int64_t stride_first = 0, stride_second = 0, stride_c = 0;
};

inline BlasGemmPlan plan_blas_gemm(const StridedMatrix& a, const StridedMatrix& b,
                                   const StridedMatrix& c, int64_t batch) {
  BlasGemmPlan p;
  const ColumnMajor ca = column_major(a), cb = column_major(b), cc = column_major(c);
  if (!ca.ok || !cb.ok || !cc.ok) return p;
  if (batch > 1 && c.batch == 0) return p;  // every batch would write the same C
  p.swap = cc.transposed;
  p.ldc = cc.ld;
  p.stride_c = c.batch;
  if (!p.swap) {  // C = A B, column-major
    p.m = c.rows, p.n = c.cols, p.k = a.cols;
    p.trans_first = ca.transposed, p.ld_first = ca.ld, p.stride_first = a.batch;
    p.trans_second = cb.transposed, p.ld_second = cb.ld, p.stride_second = b.batch;
  } else {  // C^T = B^T A^T: the memory of a row-major X is X^T column-major, so flags flip
    p.m = c.cols, p.n = c.rows, p.k = a.cols;
    p.trans_first = !cb.transposed, p.ld_first = cb.ld, p.stride_first = b.batch;
    p.trans_second = !ca.transposed, p.ld_second = ca.ld, p.stride_second = a.batch;
  }
  // the 32-bit interface: sizes, leading dimensions and the batch count must fit an int
  const int64_t big = std::max({p.m, p.n, p.k, p.ld_first, p.ld_second, p.ldc, batch});
  p.ok = big <= INT_MAX;
  return p;
}

}  // namespace dc::cuda_kernels
