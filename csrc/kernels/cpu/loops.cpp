#include "kernels/cpu/loops.h"

#include <utility>

#include "core/parallel.h"
#include "kernels/cpu/elementwise.h"

namespace dc::cpu {

StridedIter make_iter(const Shape& shape, const tensor_list& operands) {
  StridedIter it;
  it.ntensors = static_cast<int>(operands.size());
  const int nd = static_cast<int>(shape.size());
  DC_CHECK(nd <= 16, ValueError, "[elementwise] tensors with more than 16 dimensions (got ", nd,
           ") are not supported");
  // Reverse the dims so index 0 is the innermost; broadcast strides are 0.
  for (int t = 0; t < it.ntensors; ++t) {
    const Tensor& op = operands[t];
    it.data[t] = static_cast<char*>(op.data_ptr());
    const int od = static_cast<int>(op.dim());
    const int64_t isz = static_cast<int64_t>(op.itemsize());
    for (int d = 0; d < nd; ++d) {
      const int src = od - 1 - d;  // dim of the operand aligned with reversed dim d
      int64_t st = 0;
      if (src >= 0 && op.sizes()[src] != 1) st = op.strides()[src] * isz;
      it.strides[t][d] = st;
    }
  }
  for (int d = 0; d < nd; ++d) it.shape[d] = shape[nd - 1 - d];
  // Innermost first in memory order, as the output is laid out (Note [Output layout] in
  // core/tensor.cpp): the first operand, the output, with distinct non-zero strides decides.
  auto inner_than = [&](int d, int e) {
    for (int t = 0; t < it.ntensors; ++t) {
      const int64_t a = it.strides[t][d], b = it.strides[t][e];
      if (a != 0 && b != 0 && a != b) return a < b;
    }
    return false;
  };
  int perm[16];
  for (int d = 0; d < nd; ++d) perm[d] = d;
  for (int i = 1; i < nd; ++i)
    for (int j = i; j > 0 && inner_than(perm[j], perm[j - 1]); --j) std::swap(perm[j], perm[j - 1]);
  bool permuted = false;
  for (int d = 0; d < nd; ++d) permuted |= perm[d] != d;
  if (permuted) {
    StridedIter src = it;
    for (int d = 0; d < nd; ++d) {
      it.shape[d] = src.shape[perm[d]];
      for (int t = 0; t < it.ntensors; ++t) it.strides[t][d] = src.strides[t][perm[d]];
    }
  }
  // Drop size-1 dims, then merge dims i and i+1 where every operand steps contiguously.
  int out = 0;
  for (int d = 0; d < nd; ++d) {
    if (it.shape[d] == 1) continue;
    if (out > 0) {
      bool mergeable = true;
      for (int t = 0; t < it.ntensors; ++t)
        if (it.strides[t][out - 1] * it.shape[out - 1] != it.strides[t][d]) mergeable = false;
      if (mergeable) {
        it.shape[out - 1] *= it.shape[d];
        continue;
      }
    }
    it.shape[out] = it.shape[d];
    for (int t = 0; t < it.ntensors; ++t) it.strides[t][out] = it.strides[t][d];
    ++out;
  }
  if (out == 0) {  // a single element
    it.shape[0] = 1;
    for (int t = 0; t < it.ntensors; ++t) it.strides[t][0] = 0;
    out = 1;
  }
  it.ndim = out;
  it.numel = 1;
  for (int d = 0; d < it.ndim; ++d) it.numel *= it.shape[d];
  return it;
}

namespace {

// Calls body(ptrs, inner_strides, n) on the rows covering elements [begin, end), in linear
// (row-major over the merged dims) order.
template <typename Body>
void run_range(const StridedIter& it, int64_t begin, int64_t end, const Body& body) {
  int64_t idx[16] = {0};
  int64_t rem = begin;
  for (int d = 0; d < it.ndim; ++d) {
    idx[d] = rem % it.shape[d];
    rem /= it.shape[d];
  }
  char* ptrs[kMaxOperands];
  int64_t inner[kMaxOperands];
  for (int t = 0; t < it.ntensors; ++t) inner[t] = it.strides[t][0];
  int64_t pos = begin;
  while (pos < end) {
    for (int t = 0; t < it.ntensors; ++t) {
      char* p = it.data[t];
      for (int d = 0; d < it.ndim; ++d) p += idx[d] * it.strides[t][d];
      ptrs[t] = p;
    }
    const int64_t n = std::min(it.shape[0] - idx[0], end - pos);
    body(ptrs, inner, n);
    pos += n;
    idx[0] += n;
    for (int d = 0; d < it.ndim - 1 && idx[d] >= it.shape[d]; ++d) {
      idx[d] = 0;
      idx[d + 1]++;
    }
  }
}

template <typename Body>
void run_all(const StridedIter& it, bool parallel, const Body& body) {
  if (it.numel == 0) return;
  if (!parallel) {
    run_range(it, 0, it.numel, body);
    return;
  }
  parallel_for(0, it.numel, kGrainSize,
               [&](int64_t b, int64_t e) { run_range(it, b, e, body); });
}

// Note [Reduced-precision compute]
// bfloat16 and float16 elementwise ops run the float32 kernel: each row is cut into chunks of
// kChunk elements, the 16-bit operands of a chunk are converted into float buffers on the stack,
// the float32 kernel runs on the buffers (and on the other operands in place: a bool condition,
// a bool result), and the result is rounded back once. That is how torch computes them too
// (load as float, compute, round), so results agree to the rounding of the float32 math. A
// broadcast operand (stride 0) is converted once per chunk. The conversions are the cast
// kernels of the elementwise table, vectorised per ISA (a scalar loop here made a bfloat16 add
// 9x slower than its float32 kernel).
template <typename H>
void run_widened_rows(const StridedIter& it, LoopFn fn, const double* params, uint32_t widen,
                      bool parallel) {
  constexpr int64_t kChunk = 1024;
  constexpr DType f32 = DType::Float32, h = dtype_of<H>::value;
  run_all(it, parallel, [&](char** ptrs, const int64_t* inner, int64_t n) {
    alignas(64) float buf[kMaxOperands][kChunk];
    char* p[kMaxOperands];
    int64_t s[kMaxOperands];
    for (int64_t b = 0; b < n; b += kChunk) {
      const int64_t m = std::min(kChunk, n - b);
      for (int t = 0; t < it.ntensors; ++t) {
        char* at = ptrs[t] + b * inner[t];
        if (!(widen >> t & 1u)) {
          p[t] = at;
          s[t] = inner[t];
          continue;
        }
        p[t] = reinterpret_cast<char*>(buf[t]);
        s[t] = inner[t] == 0 ? 0 : static_cast<int64_t>(sizeof(float));
        // The output is read only when it is also an input (then it has another operand).
        if (t > 0) cast_strided(f32, p[t], sizeof(float), h, at, inner[t], inner[t] == 0 ? 1 : m);
      }
      fn(p, s, m, params);
      if (widen & 1u)
        cast_strided(h, ptrs[0] + b * inner[0], inner[0], f32, p[0], sizeof(float), m);
    }
  });
}

}  // namespace

void run_loop(const StridedIter& it, LoopFn fn, const double* params, bool parallel) {
  run_all(it, parallel,
          [&](char** ptrs, const int64_t* inner, int64_t n) { fn(ptrs, inner, n, params); });
}

void run_loop_widened(const StridedIter& it, LoopFn fn, const double* params, DType half,
                      uint32_t widen, bool parallel) {
  if (half == DType::BFloat16) run_widened_rows<BFloat16>(it, fn, params, widen, parallel);
  else run_widened_rows<Half>(it, fn, params, widen, parallel);
}

}  // namespace dc::cpu
