// CUDA flash attention forward on tensor cores, bfloat16 and float16 q, k, v:
// dc::cpu::sdpa_flash_forward's contract (kernels/cpu/attention.h) -- out[batch, L, Ev] in q's
// dtype and lse[batch, L] (+inf and zeros for a row without keys), the slabs read through
// AttentionGeom's offsets, masks (bool, or additive in q's dtype), is_causal (top-left) and the
// dropout draws of Note [Dropout inside flash attention] -- for head sizes E and Ev up to 128.
// attention.cu's sdpa_flash_forward sends 16-bit q, k, v here. The logsumexp is written in the
// dtype of the tensor given for it: float32 (what a backward wants: exp(s - lse) with a
// bfloat16 lse near 10 is off by up to 3 %), or q's dtype, as the op layer allocates it.
//
// Note [Flash attention on tensor cores]
// FlashAttention-2's forward on mma.sync m16n8k16 (sm_80 and later), the float kernels' tiles
// (Note [Flash attention on CUDA] in attention.cu). Plan, layouts and per-lane arithmetic:
// kernels/cuda/attention_tc_plan.h. A block of 4 warps per (slab b, 64-query tile), warp w
// owning query rows 16 w .. 16 w + 15; D = 64 or 128 columns of E and Ev (zero-padded):
//   q[64, D] -> shared memory -> registers (ldmatrix), once: D / 16 A fragments per warp
//   for each 64-key tile up to key_end (causal: the tile's last query), while cp.async copies
//   the next tile's k and v into the other of two buffers:
//     s[16, 64] = q k^T per warp                  (mma, fp32: 8 n-tiles x 4 values per lane)
//     scale, mask, causal triangle: masked scores -inf; with a mask a tile hidden from the whole
//       block is skipped, as in the float kernels
//     online softmax on the accumulators, fp32: a lane holds 16 keys of 2 rows, a row's max and
//       sum reduce over the 4 lanes of a quad (xor shuffles 1, 2):
//       m' = max(m, rowmax s); p = exp(s - m'); l = l exp(m - m') + rowsum p; o *= exp(m - m')
//     dropout zeroes p after the sum (4 Philox counters per lane and row)
//     o[16, D] += p v    (p rounded to 16 bits straight into A fragments: the accumulator and
//                         A layouts put the same (row, key) in the same lane; v by ldmatrix.trans)
//   out = o * factor / l rounded to 16 bits, lse = m + log(l)
// Numerics: q k^T and p v accumulate exact 16-bit products in fp32 (as the cpu's 16-bit GEMMs
// do); m and l are fp32 and sum the unrounded p. So the output's error is that of p's rounding
// (relative 2^-8 in bfloat16, 2^-11 in float16, of sum p |v| / l) plus the output's own:
// tests/cpp/test_cuda_attention_tc.cpp emulates the kernel on the host lane by lane and holds
// it to those bounds against a naive attention in double, and to float accumulation error
// against one that rounds p as the kernel does (on average 1700 times closer in bfloat16, 60 in
// float16).
// Shared memory: 36 KB a block at D = 64, 68 KB at D = 128 (opted in past the 48 KB default);
// k and v copies land one tile ahead. ptxas (sm_80, sm_90) gives no spills and 204-254
// registers a thread: two blocks (8 warps) per SM, the registers being the limit -- q's
// fragments, o and s stay in registers for the whole key loop (up to 32 + 64 + 32 at D = 128).
// E or Ev past 128 raise NotImplementedError (the float32 kernels take any head size). Operands
// whose rows are not on 16 bytes (odd E, sliced rows) are copied element by element into the
// same tiles.
// The cpu has no 16-bit attention kernel to compare with (the op layer sends 16-bit calls to
// the composite path, Note [SDPA paths] in python/deepcore/nn/_attention.py).
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <algorithm>
#include <cstdint>
#include <limits>

#include "core/error.h"
#include "core/tensor.h"
#include "cuda/runtime.h"
#include "kernels/cuda/attention_tc_plan.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/ptx.cuh"

namespace dc::cuda_kernels {
namespace {

namespace tc = flash_tc;

constexpr const char* kOp = "scaled_dot_product_attention";
constexpr unsigned kFullWarp = 0xffffffffu;

// The call's device operands: 16-bit q, k, v at element offsets per slab (AttentionGeom).
struct TcOperands {
  const uint16_t* q;
  const uint16_t* k;
  const uint16_t* v;
  const void* mask;  // null without one
  const int64_t* q_off;
  const int64_t* k_off;
  const int64_t* v_off;
  const int64_t* m_off;   // null without a mask
  int q_vec, k_vec, v_vec;  // cp.async copies (flash_tc::vector_rows), else element loads
  void* out;                // [batch, L, Ev], q's dtype
  void* lse;                // [batch, L]
  int lse_f32;              // lse in float32, else in q's dtype
};

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800

using ptx::cp_async_16;
using ptx::cp_async_commit;
using ptx::cp_async_wait;
using ptx::ldmatrix_x4;

// A row's max and sum over the 4 lanes of a quad (the lanes that hold it); every lane of the
// warp calls them, in uniform control flow.
__device__ __forceinline__ float quad_max(float v) {
  for (int o = 1; o < 4; o *= 2) v = max_ignoring_nan(v, __shfl_xor_sync(kFullWarp, v, o));
  return v;
}
__device__ __forceinline__ float quad_sum(float v) {
  for (int o = 1; o < 4; o *= 2) v += __shfl_xor_sync(kFullWarp, v, o);
  return v;
}

// tile[0 : 64, 0 : D] = rows [0, rows) x columns [0, cols) of an operand at src (rows rs
// apart), zeros elsewhere: this thread's chunks (flash_tc::chunk_coord), by cp.async or by
// element loads. The copies complete at the caller's cp_async_wait.
// Unrolled by 4, not fully: fully unrolled, the compiler keeps every chunk's addresses live
// across the key loop (ptxas then spills at D = 128 in bfloat16; by 4: none, sm_80 and sm_90).
template <int D>
__device__ __forceinline__ void load_tile(uint16_t* tile, const uint16_t* src, int64_t rs,
                                          int rows, int64_t cols, int vec, int tid) {
#pragma unroll 4
  for (int i = 0; i < tc::chunks_per_thread(D); ++i) {
    const mma::TileCoord c = tc::chunk_coord(D, tid + i * tc::kThreads);
    const int valid = tc::chunk_valid(c.row, c.k, rows, cols);
    uint16_t* dst = tile + tc::tile_offset(D, c.row, c.k);
    if (vec) {
      // src-size 0 reads nothing; the address given must still be a valid one
      cp_async_16(dst, valid > 0 ? src + c.row * rs + c.k : src, 2 * valid);
    } else {
      const uint16_t* from = src + c.row * rs + c.k;
      uint32_t w[4];
#pragma unroll
      for (int e = 0; e < 4; ++e)
        w[e] = uint32_t(2 * e < valid ? from[2 * e] : 0) |
               uint32_t(2 * e + 1 < valid ? from[2 * e + 1] : 0) << 16;
      *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
    }
  }
}

#endif  // __CUDA_ARCH__ >= 800

// out[b, i0 : i0 + 64, :] and lse[b, i0 : i0 + 64] per item (Note [Flash attention on tensor
// cores]). Lane (g, t) = (lane / 4, lane % 4) of warp w holds query rows 16 w + g and
// 16 w + g + 8, keys (and output columns) 8 ni + 2 t, 8 ni + 2 t + 1 (flash_tc::acc_coord).
template <int Kind, int D>
__global__ void __launch_bounds__(tc::kThreads)
    flash_forward_tc(AttentionDims d, tc::Grid grid, TcOperands in) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int NS = tc::kScoreTiles, NO = D / 8, KS = D / 16;
  extern __shared__ __align__(16) uint16_t smem[];
  uint16_t* const k_tiles = smem;                          // [2][64][D + 8]
  uint16_t* const v_tiles = smem + 2 * tc::tile_elems(D);  // [2][64][D + 8]
  uint16_t* const q_tile = v_tiles + tc::tile_elems(D);    // v's second buffer, before tile 1
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const float ninf = -std::numeric_limits<float>::infinity();
  const float scale = static_cast<float>(d.scale), factor = static_cast<float>(d.factor);
  const int e_steps = tc::steps16(d.E), v_steps = tc::steps16(d.Ev);
  const int64_t items = grid.items();
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const tc::Item it = tc::decode_query_tile(item, grid.tiles);
    const int64_t b = it.slab, i0 = it.tile * tc::kBlockQ;
    const int nq = static_cast<int>(min64(tc::kBlockQ, d.L - i0));
    const uint16_t* q = in.q + in.q_off[b] + i0 * d.q_rs;
    const uint16_t* k = in.k + in.k_off[b];
    const uint16_t* v = in.v + in.v_off[b];
    const void* mask = in.m_off ? mask_slab<uint16_t>(d, in.mask, in.m_off[b]) : nullptr;
    const int64_t kend = key_end(d, i0), key_tiles = ceil_div(kend, tc::kBlockK);

    // The pipeline: every thread commits one group per step (empty when it has nothing to
    // copy), so waiting for all but the newest group means the current tile has landed; the
    // barrier at the end of a step keeps a buffer from being refilled while a warp reads it.
    load_tile<D>(q_tile, q, d.q_rs, nq, d.E, in.q_vec, tid);
    cp_async_commit();
    if (key_tiles > 0) {
      const int nk = static_cast<int>(min64(tc::kBlockK, kend));
      load_tile<D>(k_tiles, k, d.k_rs, nk, d.E, in.k_vec, tid);
      load_tile<D>(v_tiles, v, d.v_rs, nk, d.Ev, in.v_vec, tid);
    }
    cp_async_commit();
    cp_async_wait<1>();  // q has landed
    __syncthreads();
    uint32_t qf[KS][4] = {};
#pragma unroll
    for (int ks = 0; ks < KS; ++ks)
      if (ks < e_steps)
        ldmatrix_x4<false>(qf[ks], q_tile + tc::q_ldmatrix_offset(D, warp, ks, lane));
    __syncthreads();  // q's buffer is free for key tile 1

    float o[NO][4] = {}, m[2] = {ninf, ninf}, l[2] = {0.0f, 0.0f};
    for (int64_t t = 0; t < key_tiles; ++t) {
      const int64_t j0 = t * tc::kBlockK;
      const int nk = static_cast<int>(min64(tc::kBlockK, kend - j0));
      if (t + 1 < key_tiles) {
        const int64_t j1 = j0 + tc::kBlockK;
        const int n1 = static_cast<int>(min64(tc::kBlockK, kend - j1));
        const int next = static_cast<int>((t + 1) & 1) * tc::tile_elems(D);
        load_tile<D>(k_tiles + next, k + j1 * d.k_rs, d.k_rs, n1, d.E, in.k_vec, tid);
        load_tile<D>(v_tiles + next, v + j1 * d.v_rs, d.v_rs, n1, d.Ev, in.v_vec, tid);
      }
      cp_async_commit();
      cp_async_wait<1>();
      __syncthreads();  // tile t has landed, for every thread's copies
      const int cur = static_cast<int>(t & 1) * tc::tile_elems(D);
      const uint16_t* ktile = k_tiles + cur;
      const uint16_t* vtile = v_tiles + cur;

      float s[NS][4] = {};
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
        if (ks >= e_steps) continue;  // the same in every lane: columns past E are zeros
#pragma unroll
        for (int nj = 0; nj < NS / 2; ++nj) {
          uint32_t r[4];
          ldmatrix_x4<false>(r, ktile + tc::k_ldmatrix_offset(D, nj, ks, lane));
          ptx::mma_16x8x16<Kind == tc::kBf16>(s[2 * nj], qf[ks], r[0], r[1]);
          ptx::mma_16x8x16<Kind == tc::kBf16>(s[2 * nj + 1], qf[ks], r[2], r[3]);
        }
      }
      bool visible = false;
#pragma unroll
      for (int ni = 0; ni < NS; ++ni)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const mma::Coord c = tc::acc_coord(warp, ni, lane, i);
          s[ni][i] = tc::tile_score<Kind>(d, s[ni][i], scale, mask, i0, nq, j0, nk, c.row, c.col);
          visible = visible || s[ni][i] > ninf;
        }
      // skips_hidden_tiles is the same for the whole grid: the barrier is reached by all or
      // none. It also ends a skipped step: every warp is done reading the buffer.
      if (skips_hidden_tiles(d) && __syncthreads_or(visible) == 0) continue;

      RowRescale<float> step[2];
      float sum[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        step[h] = online_rescale(m[h], quad_max(tc::lane_row_max(s, h)));
        sum[h] = quad_sum(tc::lane_row_exp(s, h, step[h]));
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if (step[h].dead) continue;  // nothing seen yet: m, l and o stay
        if (d.dropout) {
          const int64_t row = b * d.L + i0 + tc::acc_coord(warp, 0, lane, 2 * h).row;
          tc::lane_dropout(d, s, h, row, j0, lane);
        }
        tc::lane_row_update(o, m[h], l[h], h, step[h], sum[h]);
      }

#pragma unroll
      for (int kk = 0; kk < tc::kKeySteps; ++kk) {
        uint32_t a[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) a[j] = tc::p_register<Kind>(s, kk, j);
#pragma unroll
        for (int nj = 0; nj < KS; ++nj) {
          if (nj >= v_steps) continue;  // the same in every lane
          uint32_t r[4];
          ldmatrix_x4<true>(r, vtile + tc::v_ldmatrix_offset(D, kk, nj, lane));
          ptx::mma_16x8x16<Kind == tc::kBf16>(o[2 * nj], a, r[0], r[1]);
          ptx::mma_16x8x16<Kind == tc::kBf16>(o[2 * nj + 1], a, r[2], r[3]);
        }
      }
      __syncthreads();  // the next step's copies refill this buffer
    }

#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = tc::acc_coord(warp, 0, lane, 2 * h).row;
      if (r >= nq) continue;
      const int64_t row = b * d.L + i0 + r;
      uint16_t* out = static_cast<uint16_t*>(in.out) + row * d.Ev;
#pragma unroll
      for (int ni = 0; ni < NO; ++ni)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int c = tc::acc_coord(warp, ni, lane, 2 * h + e).col;
          if (c < d.Ev) out[c] = tc::to_bits<Kind>(row_output(o[ni][2 * h + e], l[h], factor));
        }
      if (lane % 4 == 0) {
        const float lse = row_lse(m[h], l[h]);
        if (in.lse_f32)
          static_cast<float*>(in.lse)[row] = lse;
        else
          static_cast<uint16_t*>(in.lse)[row] = tc::to_bits<Kind>(lse);
      }
    }
  }
#endif
}

template <int Kind, int D>
void launch(const AttentionDims& d, const tc::Grid& grid, const TcOperands& in, Device device) {
  const auto kernel = flash_forward_tc<Kind, D>;
  constexpr size_t smem = tc::smem_bytes(D);
  if constexpr (smem > 48 * 1024) {
    // The opt-in belongs to the kernel on the current device; setting it is a host-side write,
    // so it is set on every launch rather than tracked per device.
    const cudaError_t e = cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    DC_CHECK(e == cudaSuccess, RuntimeError, "[", kOp, "] cannot give the tensor-core attention ",
             "kernel ", smem, " bytes of shared memory: ", cudaGetErrorString(e));
  }
  const int64_t blocks = std::min<int64_t>(grid.items(), std::max<int64_t>(max_blocks(device), 1));
  kernel<<<static_cast<unsigned>(blocks), tc::kThreads, smem, stream()>>>(d, grid, in);
  check_launch("sdpa_flash_forward (tensor cores)");
}

template <int Kind>
void launch_kind(int D, const AttentionDims& d, const tc::Grid& grid, const TcOperands& in,
                 Device device) {
  if (D == 64) return launch<Kind, 64>(d, grid, in, device);
  launch<Kind, 128>(d, grid, in, device);
}

}  // namespace

// 16-bit q, k, v (attention.cu's sdpa_flash_forward has checked the geometry and the dtypes of
// k, v and the mask against q's).
void sdpa_flash_forward_tensor_cores(const cpu::AttentionGeom& g, const Tensor& q,
                                     const Tensor& k, const Tensor& v, const Tensor& mask,
                                     const Tensor& out, const Tensor& lse) {
  const DType dt = q.dtype();
  DC_CHECK(dt == DType::BFloat16 || dt == DType::Float16, TypeError, "[", kOp,
           "] the tensor-core kernel takes bfloat16 or float16, got ", dtype_name(dt));
  DC_CHECK(out.dtype() == dt && (lse.dtype() == dt || lse.dtype() == DType::Float32), TypeError,
           "[", kOp, "] with ", dtype_name(dt), " inputs the output must be ", dtype_name(dt),
           " and the logsumexp float32 or ", dtype_name(dt), ", got ", dtype_name(out.dtype()),
           " and ", dtype_name(lse.dtype()));
  const int D = tc::head_dim(g.E, g.Ev);
  DC_CHECK(D > 0, NotImplementedError, "[", kOp, "] the cuda ", dtype_name(dt),
           " kernel takes head sizes up to ", tc::kMaxHeadDim, ", got query/key ", g.E,
           " and value ", g.Ev, " (float32 inputs take any)");
  const AttentionDims d = attention_dims(g);
  const tc::Grid grid = tc::query_tile_grid(d);
  if (grid.items() == 0) return;  // launch nothing
  const Device device = q.device();
  DC_CHECK(cuda::compute_capability(device.index < 0 ? cuda::current_device() : device.index) >=
               80,
           NotImplementedError, "[", kOp, "] no cuda ", dtype_name(dt),
           " attention below compute capability 8.0 (the tensor-core kernel needs sm_80)");
  std::vector<DeviceBuffer> keep;
  keep.push_back(upload(g.q_off));
  keep.push_back(upload(g.k_off));
  keep.push_back(upload(g.v_off));
  TcOperands in{};
  in.q = static_cast<const uint16_t*>(q.data_ptr());
  in.k = static_cast<const uint16_t*>(k.data_ptr());
  in.v = static_cast<const uint16_t*>(v.data_ptr());
  in.q_off = keep[0].as<int64_t>();
  in.k_off = keep[1].as<int64_t>();
  in.v_off = keep[2].as<int64_t>();
  if (g.mask != cpu::AttentionMask::none) {
    keep.push_back(upload(g.m_off));
    in.mask = mask.data_ptr();
    in.m_off = keep.back().as<int64_t>();
  }
  const auto addr = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()); };
  in.q_vec = tc::vector_rows(addr(q), g.q_off, g.q_rs, g.L, g.E) ? 1 : 0;
  in.k_vec = tc::vector_rows(addr(k), g.k_off, g.k_rs, g.S, g.E) ? 1 : 0;
  in.v_vec = tc::vector_rows(addr(v), g.v_off, g.v_rs, g.S, g.Ev) ? 1 : 0;
  in.out = out.data_ptr();
  in.lse = lse.data_ptr();
  in.lse_f32 = lse.dtype() == DType::Float32 ? 1 : 0;
  if (dt == DType::BFloat16)
    launch_kind<tc::kBf16>(D, d, grid, in, device);
  else
    launch_kind<tc::kF16>(D, d, grid, in, device);
}

}  // namespace dc::cuda_kernels
