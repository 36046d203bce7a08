// CUDA scans along the middle dim of a contiguous (outer, K, inner) block, out shaped like in:
// cumsum (cpu::cumsum_scan), and cumprod, cummax / cummin with the position each value came
// from, and logcumsumexp (cpu::cum_scan). The Ops are kernels/cuda/reduce_ops.h's (Note [CUDA
// reductions and scans]).
//
// A column (inner > 1, or a row shorter than a warp) is one thread's, scanned in order: the
// cpu's own order, so its sums round as the cpu's do. A row is a warp's, 32 elements a step:
// each lane folds its element into a state of its own, the warp scans the 32 states by
// shuffles (Hillis-Steele, always merging the earlier state in front of the later one, since
// cummax's merge depends on order), and the carry of the steps before is merged in front of
// every lane's prefix. With K split (few outputs, long K), the chunks' totals are taken first
// (the same walk, storing nothing), a thread per output column turns its chunk totals into
// carries in chunk order, and every chunk is scanned again from its carry.
//
// Compiled only; no GPU has run these yet (README, "Devices").
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "cuda/runtime.h"
#include "kernels/cpu/scan.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce_ops.h"

namespace dc::cuda_kernels {
namespace {

// The segments a thread works on: with `warp`, one per warp (lane = threadIdx.x % 32); else
// one of its own (lane 0).
struct SegmentWalk {
  int64_t first, step;
  int lane;
};
__device__ inline SegmentWalk segment_walk(bool warp) {
  const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t id = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (!warp) return {id, threads, 0};
  return {id / 32, threads / 32, static_cast<int>(threadIdx.x % 32)};
}

// A state (any trivially copyable struct) through a warp shuffle, a 32-bit word at a time.
template <typename S, typename Shuffle>
__device__ inline S shuffle_state(const S& s, Shuffle shuffle) {
  constexpr int kWords = static_cast<int>((sizeof(S) + 3) / 4);
  unsigned w[kWords] = {};
  memcpy(w, &s, sizeof(S));
  for (int j = 0; j < kWords; ++j) w[j] = shuffle(w[j]);
  S r;
  memcpy(&r, w, sizeof(S));
  return r;
}
// The state of the lane `delta` below (lanes under delta get their own back, and ignore it).
template <typename S>
__device__ inline S shfl_up_state(const S& s, int delta) {
  return shuffle_state(s, [delta](unsigned v) { return __shfl_up_sync(0xffffffffu, v, delta); });
}
// Lane `from`'s state, on every lane.
template <typename S>
__device__ inline S shfl_from_state(const S& s, int from) {
  return shuffle_state(s, [from](unsigned v) { return __shfl_sync(0xffffffffu, v, from); });
}

// x[O, K, I] scanned segment by segment (split_plan). kStore: out gets every prefix, each
// segment starting from its carry part[s] (part null: no split, every carry the identity).
// !kStore: part[s] gets the segment's total and nothing else is written.
template <class Op, bool kStore>
__global__ void scan_segments(Op op, const typename Op::In* x, typename Op::State* part,
                              SplitPlan p) {
  using State = typename Op::State;
  const SegmentWalk w = segment_walk(p.warp);
  const int64_t n = p.segments();
  for (int64_t s = w.first; s < n; s += w.step) {  // the same trip count for a warp's lanes
    const Segment g = segment_at(s, p.nk, p.inner, p.kchunk, p.reduce);
    const int64_t base = g.o * p.reduce * p.inner + g.i;  // position (o, 0, i)
    const typename Op::In* col = x + base;
    State carry = kStore && part ? part[s] : op.identity();
    if (!p.warp) {
      for (int64_t k = g.k0; k < g.k1; ++k) {
        op.add(carry, col[k * p.inner], k);
        if constexpr (kStore) op.store(carry, base + k * p.inner);
      }
    } else {
      // A row (inner == 1): 32 positions a step, lane l on k0 + l.
      for (int64_t k0 = g.k0; k0 < g.k1; k0 += 32) {
        const int64_t k = k0 + w.lane;
        State e = op.identity();
        if (k < g.k1) op.add(e, col[k], k);
        for (int d = 1; d < 32; d *= 2) {
          const State before = shfl_up_state(e, d);
          if (w.lane >= d) {
            State m = before;
            op.merge(m, e);
            e = m;
          }
        }
        State prefix = carry;
        op.merge(prefix, e);
        if constexpr (kStore) {
          if (k < g.k1) op.store(prefix, base + k);
        }
        carry = shfl_from_state(prefix, 31);  // lanes past the end hold the identity
      }
    }
    if constexpr (!kStore) {
      if (w.lane == 0) part[s] = carry;
    }
  }
}

// part[O, nk, I]: each output column's chunk totals -> the carry into each chunk (the merge of
// the totals before it, in order), a thread per column.
template <class Op>
__global__ void chunk_carries(Op op, typename Op::State* part, SplitPlan p) {
  const int64_t n = p.outer * p.inner;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < n;
       t += step) {
    typename Op::State* chunks = part + (t / p.inner) * p.nk * p.inner + t % p.inner;
    typename Op::State run = op.identity();
    for (int64_t c = 0; c < p.nk; ++c) {
      const typename Op::State total = chunks[c * p.inner];
      chunks[c * p.inner] = run;
      op.merge(run, total);
    }
  }
}

template <class Op>
void run_scan(const Op& op, const void* in, const cpu::ReduceDims& d, const char* name) {
  using State = typename Op::State;
  if (d.outer * d.reduce * d.inner == 0) return;
  const SplitPlan p = split_plan(d.outer, d.reduce, d.inner);
  const int64_t cap = max_blocks(Device{DeviceType::CUDA, cuda::current_device()});
  const auto* x = static_cast<const typename Op::In*>(in);
  const bool split = p.nk > 1;
  DeviceBuffer part(split ? static_cast<size_t>(p.segments()) * sizeof(State) : 0);
  State* carries = split ? part.as<State>() : nullptr;
  const LaunchConfig c = elementwise_launch(p.segments() * (p.warp ? 32 : 1), cap);
  const unsigned blocks = static_cast<unsigned>(c.blocks);
  if (split) {
    scan_segments<Op, false><<<blocks, c.threads, 0, stream()>>>(op, x, carries, p);
    check_launch(name);
    const LaunchConfig m = elementwise_launch(d.outer * d.inner, cap);
    chunk_carries<<<static_cast<unsigned>(m.blocks), m.threads, 0, stream()>>>(op, carries, p);
    check_launch(name);
  }
  scan_segments<Op, true><<<blocks, c.threads, 0, stream()>>>(op, x, carries, p);
  check_launch(name);
}

void cuda_cumsum_scan(DType dtype, const void* in, void* out, cpu::ReduceDims d) {
  with_value_type(dtype, "cumsum", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    if constexpr (std::is_same_v<T, bool>)
      DC_THROW(TypeError, "[cumsum] bool is not a valid accumulator dtype");
    else
      run_scan(CumArithOp<T, false>{static_cast<T*>(out)}, in, d, "cumsum");
  });
}

void cuda_cum_scan(cpu::ScanOp op, DType dtype, const void* in, void* out, int64_t* indices,
                   cpu::ReduceDims d) {
  static const char* names[] = {"cumprod", "cummax", "cummin", "logcumsumexp"};
  const char* name = names[static_cast<int>(op)];
  with_value_type(dtype, name, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    T* y = static_cast<T*>(out);
    switch (op) {
      case cpu::ScanOp::Prod:
        if constexpr (std::is_same_v<T, bool>)
          DC_THROW(TypeError, "[cumprod] bool is not a valid accumulator dtype");
        else
          run_scan(CumArithOp<T, true>{y}, in, d, name);
        break;
      case cpu::ScanOp::Max: run_scan(CumExtremeOp<T, true>{y, indices}, in, d, name); break;
      case cpu::ScanOp::Min: run_scan(CumExtremeOp<T, false>{y, indices}, in, d, name); break;
      case cpu::ScanOp::LogSumExp:
        if constexpr (!std::is_floating_point_v<T>)
          DC_THROW(TypeError, "[logcumsumexp] expects a floating point input, got ",
                   dtype_name(dtype));
        else
          run_scan(CumLogSumExpOp<T>{y}, in, d, name);
        break;
    }
  });
}

}  // namespace

void fill_scan(dispatch::KernelTable& t) {
  t.cumsum_scan = cuda_cumsum_scan;
  t.cum_scan = cuda_cum_scan;
}

}  // namespace dc::cuda_kernels
