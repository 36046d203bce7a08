// The tensor-core matmul: C[b] = act(alpha * A[b] @ B[b] + beta * C[b] + bias), with
// A[b] (M, K), B[b] (K, N), C[b] (M, N) at any element strides, on mma.sync (sm_80 and later):
//   bfloat16, float16   m16n8k16 on the 16-bit values, float32 accumulation, C rounded once
//                       (to nearest even) after the epilogue, which runs in float: the numerics
//                       of the cpu's 16-bit GEMMs (kernels/cpu/gemm/gemm_bf16.h, matmul.cpp);
//   float32             m16n8k8 in TF32 (operands rounded by cvt.rna.tf32.f32, float32
//                       accumulation), only when the float32 matmul precision allows it
//                       (core/matmul_precision.h); gemm.cu routes it here.
// A 128 x 128 tile of C per block of 8 warps, each 64 x 32; the K loop runs over 64-byte slices
// of K (32 16-bit values, 16 floats) staged in shared memory twice over, the next slice copied by
// cp.async while the current one is multiplied. Layouts, fragments and the warp map: Note
// [Tensor-core GEMM layouts] in kernels/cuda/mma_layout.h, whose functions this kernel calls and
// tests/cpp/test_cuda_mma.cpp emulates on the host.
//
// Operands. An operand contiguous along K, or along M (A) / N (B), is tiled along that dim and
// copied 16 bytes at a time by cp.async when its address and strides are multiples of 16 bytes;
// the copies past an edge of the operand zero-fill (cp.async's src-size). Any other operand
// (strided, or unaligned, like a row-major A with K = 130) is read one element at a time by the
// same threads into the same tiles: slower, never wrong. Edges of C are guarded stores.
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "core/tensor.h"
#include "cuda/runtime.h"
#include "kernels/cpu/gemm/gemm.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/mma_layout.h"
#include "kernels/cuda/ptx.cuh"

namespace dc::cuda_kernels {
namespace {

using mma::kMajorK;
using mma::kMajorRow;

enum MmaKind : int { kBf16 = 0, kF16 = 1, kTf32 = 2 };

// The element as the kernel moves it: the 16 bits of a bfloat16/float16, or a float.
template <int Kind>
using Elem = std::conditional_t<Kind == kTf32, float, uint16_t>;

struct TcOperand {
  const void* p;
  int64_t batch, row, k;  // element strides: between batches, along M (A) or N (B), along K
  int vector;             // cp.async copies (mma::plan_operand), else element loads
  int major;              // the tile layout, which the launch makes a template argument
};

struct TcArgs {
  int64_t M, N, K;
  TcOperand a, b;
  void* c;
  int64_t c_batch, c_row, c_col;
  const void* bias;  // N values in C's dtype, or nullptr
  float alpha, beta;
  int relu;
  int64_t z0;  // the batch of blockIdx.z == 0
};

template <int Kind>
__device__ __forceinline__ float to_float(Elem<Kind> x) {
  if constexpr (Kind == kBf16) return bf16_bits_to_float(x);
  else if constexpr (Kind == kF16) return f16_bits_to_float(x);
  else return x;
}
template <int Kind>
__device__ __forceinline__ Elem<Kind> from_float(float x) {
  if constexpr (Kind == kBf16) return float_to_bf16_bits(x);
  else if constexpr (Kind == kF16) return float_to_f16_bits(x);
  else return x;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800

using ptx::cp_async_16;
using ptx::cp_async_commit;
using ptx::cp_async_wait;
using ptx::ldmatrix_x4;
using ptx::mma_16x8x8_tf32;
using ptx::to_tf32;

// Copies the tile of rows [row0, row0 + 128) x k [k0, k0 + BK) of one operand (rows x K, at
// base) into shared memory: this thread's chunks (mma::chunk_coord), zeros past the edges.
template <typename E, int Major>
__device__ __forceinline__ void load_tile(E* tile, const E* base, const TcOperand& op,
                                          int64_t row0, int64_t k0, int64_t rows, int64_t K,
                                          int tid) {
  constexpr int kE = sizeof(E), kV = mma::chunk_elems(kE);
#pragma unroll
  for (int i = 0; i < mma::kChunksPerThread; ++i) {
    const mma::TileCoord c = mma::chunk_coord(Major, kE, tid + i * mma::kThreads);
    const int64_t row = row0 + c.row, k = k0 + c.k;
    const int valid = mma::chunk_valid(Major, kE, row, k, rows, K);
    E* dst = tile + mma::tile_offset(Major, kE, c.row, c.k);
    if (op.vector) {
      // src-size 0 reads nothing; the address given must still be a valid one
      cp_async_16(dst, valid > 0 ? base + row * op.row + k * op.k : base, valid * kE);
    } else {
      union {
        uint4 v;
        E e[kV];
      } chunk;
#pragma unroll
      for (int e = 0; e < kV; ++e) {
        const int64_t r = Major == kMajorK ? row : row + e;
        const int64_t kk = Major == kMajorK ? k + e : k;
        chunk.e[e] = e < valid ? base[r * op.row + kk * op.k] : E(0);
      }
      *reinterpret_cast<uint4*>(dst) = chunk.v;
    }
  }
}

// acc += this warp's share of one stage: A tile (128 x BK) times B tile (BK x 128).
template <int Kind, int AMajor, int BMajor>
__device__ __forceinline__ void multiply_stage(float (&acc)[mma::kMTiles][mma::kNTiles][4],
                                               const Elem<Kind>* As, const Elem<Kind>* Bs,
                                               int warp, int lane) {
  constexpr int kBK = mma::block_k(sizeof(Elem<Kind>));
  if constexpr (Kind == kTf32) {
#pragma unroll
    for (int ks = 0; ks < kBK / 8; ++ks) {
      uint32_t af[mma::kMTiles][4], bf[mma::kNTiles][2];
#pragma unroll
      for (int mi = 0; mi < mma::kMTiles; ++mi)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          af[mi][i] = to_tf32(As[mma::a_tf32_offset(AMajor, warp, mi, ks, lane, i)]);
#pragma unroll
      for (int ni = 0; ni < mma::kNTiles; ++ni)
#pragma unroll
        for (int i = 0; i < 2; ++i)
          bf[ni][i] = to_tf32(Bs[mma::b_tf32_offset(BMajor, warp, ni, ks, lane, i)]);
#pragma unroll
      for (int mi = 0; mi < mma::kMTiles; ++mi)
#pragma unroll
        for (int ni = 0; ni < mma::kNTiles; ++ni) mma_16x8x8_tf32(acc[mi][ni], af[mi], bf[ni]);
    }
  } else {
#pragma unroll
    for (int ks = 0; ks < kBK / 16; ++ks) {
      uint32_t af[mma::kMTiles][4], bf[mma::kNTiles][2];
#pragma unroll
      for (int mi = 0; mi < mma::kMTiles; ++mi)
        ldmatrix_x4<AMajor == kMajorRow>(af[mi],
                                         As + mma::a_ldmatrix_offset(AMajor, warp, mi, ks, lane));
#pragma unroll
      for (int nj = 0; nj < mma::kNTiles / 2; ++nj) {
        uint32_t r[4];
        ldmatrix_x4<BMajor == kMajorRow>(r,
                                         Bs + mma::b_ldmatrix_offset(BMajor, warp, nj, ks, lane));
        bf[2 * nj][0] = r[0];
        bf[2 * nj][1] = r[1];
        bf[2 * nj + 1][0] = r[2];
        bf[2 * nj + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < mma::kMTiles; ++mi)
#pragma unroll
        for (int ni = 0; ni < mma::kNTiles; ++ni) ptx::mma_16x8x16<Kind == kBf16>(acc[mi][ni], af[mi], bf[ni][0], bf[ni][1]);
    }
  }
}

#endif  // __CUDA_ARCH__ >= 800

// One block: C[z][m0 : m0 + 128, n0 : n0 + 128] with m0 = 128 blockIdx.x, n0 = 128 blockIdx.y,
// z = z0 + blockIdx.z. Shared memory: [stage][A, B] tiles of mma::kStageBytes each (40 KiB, two
// blocks per SM).
template <int Kind, int AMajor, int BMajor>
__global__ void __launch_bounds__(mma::kThreads, 2) gemm_mma(TcArgs p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using E = Elem<Kind>;
  constexpr int kBK = mma::block_k(sizeof(E));
  constexpr int kTileElems = mma::kStageBytes / sizeof(E);
  __shared__ __align__(16) E smem[mma::kStages][2][kTileElems];

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t z = p.z0 + blockIdx.z;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * mma::kBlockM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * mma::kBlockN;
  const E* A = static_cast<const E*>(p.a.p) + z * p.a.batch;
  const E* B = static_cast<const E*>(p.b.p) + z * p.b.batch;

  float acc[mma::kMTiles][mma::kNTiles][4];
#pragma unroll
  for (int mi = 0; mi < mma::kMTiles; ++mi)
#pragma unroll
    for (int ni = 0; ni < mma::kNTiles; ++ni)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[mi][ni][i] = 0.0f;

  // The pipeline: slice kt + 1 is in flight while slice kt is multiplied. Every thread commits
  // one group per iteration (empty past the last slice, or with element loads), so waiting for
  // all but the newest group means slice kt has landed; the barrier after the multiply keeps a
  // stage from being refilled while a warp still reads it.
  const int64_t slices = (p.K + kBK - 1) / kBK;
  if (slices > 0) {
    load_tile<E, AMajor>(smem[0][0], A, p.a, m0, 0, p.M, p.K, tid);
    load_tile<E, BMajor>(smem[0][1], B, p.b, n0, 0, p.N, p.K, tid);
  }
  cp_async_commit();
  for (int64_t kt = 0; kt < slices; ++kt) {
    if (kt + 1 < slices) {
      const int next = static_cast<int>((kt + 1) & 1);
      load_tile<E, AMajor>(smem[next][0], A, p.a, m0, (kt + 1) * kBK, p.M, p.K, tid);
      load_tile<E, BMajor>(smem[next][1], B, p.b, n0, (kt + 1) * kBK, p.N, p.K, tid);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const int cur = static_cast<int>(kt & 1);
    multiply_stage<Kind, AMajor, BMajor>(acc, smem[cur][0], smem[cur][1], warp, lane);
    __syncthreads();
  }

  // Epilogue: each accumulator to its C element (mma::c_position), guarded at the edges.
  E* C = static_cast<E*>(p.c) + z * p.c_batch;
  const E* bias = static_cast<const E*>(p.bias);
#pragma unroll
  for (int mi = 0; mi < mma::kMTiles; ++mi)
#pragma unroll
    for (int ni = 0; ni < mma::kNTiles; ++ni)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const mma::Coord pos = mma::c_position(warp, mi, ni, lane, i);
        const int64_t row = m0 + pos.row, col = n0 + pos.col;
        if (row >= p.M || col >= p.N) continue;
        E* c = C + row * p.c_row + col * p.c_col;
        const float old = p.beta != 0.0f ? to_float<Kind>(*c) : 0.0f;
        const float b = bias ? to_float<Kind>(bias[col]) : 0.0f;
        *c = from_float<Kind>(
            mma::epilogue_value(acc[mi][ni][i], p.alpha, p.beta, old, bias != nullptr, b, p.relu));
      }
#endif
}

// The strides of operand t (2-D or 3-D) whose rows run along dim row_dim of the matrix -- M
// (0) for A, N (1) for B -- and its plan.
TcOperand operand(const Tensor& t, int row_dim, int64_t rows, int64_t K, int64_t batch) {
  const bool batched = t.dim() == 3;
  const int off = batched ? 1 : 0;
  TcOperand o{};
  o.p = t.data_ptr();
  o.batch = batched ? t.strides()[0] : 0;
  o.row = t.strides()[off + row_dim];
  o.k = t.strides()[off + 1 - row_dim];
  const mma::OperandPlan plan =
      mma::plan_operand(static_cast<int>(t.itemsize()), rows, K, batch, o.row, o.k, o.batch,
                        reinterpret_cast<uintptr_t>(o.p));
  o.vector = plan.vector ? 1 : 0;
  o.major = plan.major;
  return o;
}

template <int Kind, int AMajor, int BMajor>
void launch(TcArgs args, const mma::GridPlan& g, int64_t batch) {
  for (int64_t z0 = 0; z0 < batch; z0 += g.batch_per_launch) {
    args.z0 = z0;
    const int64_t zs = batch - z0 < g.batch_per_launch ? batch - z0 : g.batch_per_launch;
    const dim3 grid(static_cast<unsigned>(g.m_blocks), static_cast<unsigned>(g.n_blocks),
                    static_cast<unsigned>(zs));
    gemm_mma<Kind, AMajor, BMajor><<<grid, mma::kThreads, 0, stream()>>>(args);
    check_launch("matmul (tensor cores)");
  }
}

template <int Kind>
void launch_kind(const TcArgs& args, const mma::GridPlan& g, int64_t batch) {
  const bool a_k = args.a.major == kMajorK, b_k = args.b.major == kMajorK;
  if (a_k && b_k) return launch<Kind, kMajorK, kMajorK>(args, g, batch);
  if (a_k) return launch<Kind, kMajorK, kMajorRow>(args, g, batch);
  if (b_k) return launch<Kind, kMajorRow, kMajorK>(args, g, batch);
  launch<Kind, kMajorRow, kMajorRow>(args, g, batch);
}

}  // namespace

bool tensor_core_mma_available(Device d) {
  return cuda::compute_capability(d.index < 0 ? cuda::current_device() : d.index) >= 80;
}

// a[(B,) M, K] @ b[(B,) K, N] into c[(B,) M, N] (dtypes all bfloat16, all float16, or all
// float32 for TF32), any strides; matmul_into's contract (kernels/cpu/gemm/gemm.h).
void matmul_tensor_cores(const Tensor& a, const Tensor& b, const Tensor& c, double alpha,
                         double beta, const cpu::GemmEpilogue& epi) {
  const bool batched = c.dim() == 3;
  const int off = batched ? 1 : 0;
  const int64_t batch = batched ? c.sizes()[0] : 1;
  const int64_t M = c.sizes()[off], N = c.sizes()[off + 1];
  // alpha == 0 reads neither A nor B (their NaNs do not reach C), as the cpu GEMM
  const int64_t K = alpha == 0.0 ? 0 : a.sizes()[off + 1];
  const mma::GridPlan g = mma::plan_grid(M, N, batch, batched ? c.strides()[0] : 0);
  if (g.m_blocks == 0) return;
  DC_CHECK(tensor_core_mma_available(c.device()), NotImplementedError, "[",
           dispatch::current_op_name(), "] no cuda matmul for ", dtype_name(c.dtype()),
           " below compute capability 8.0 (the tensor-core kernel needs sm_80)");
  DC_CHECK(g.n_blocks <= 65535, ValueError, "[", dispatch::current_op_name(),
           "] cuda grid too large for an output of shape ", c.shape_str());
  TcArgs args{};
  args.M = M;
  args.N = N;
  args.K = K;
  args.a = operand(a, 0, M, K, batch);
  args.b = operand(b, 1, N, K, batch);
  args.c = c.data_ptr();
  args.c_batch = batched ? c.strides()[0] : 0;
  args.c_row = c.strides()[off];
  args.c_col = c.strides()[off + 1];
  args.bias = epi.bias;
  args.alpha = static_cast<float>(alpha);
  args.beta = static_cast<float>(beta);
  args.relu = epi.act == cpu::GemmActivation::relu ? 1 : 0;
  switch (c.dtype()) {
    case DType::BFloat16: return launch_kind<kBf16>(args, g, batch);
    case DType::Float16: return launch_kind<kF16>(args, g, batch);
    case DType::Float32: return launch_kind<kTf32>(args, g, batch);
    default: break;
  }
  DC_THROW(TypeError, "[", dispatch::current_op_name(), "] no tensor-core matmul for ",
           dtype_name(c.dtype()));
}

}  // namespace dc::cuda_kernels
