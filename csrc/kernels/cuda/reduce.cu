// CUDA reductions over the middle dim of a contiguous (outer, reduce, inner) block
// (cpu::ReduceDims, as the cpu's kernels take it): sum (kernels/cuda/half_ops.h's SumOp),
// prod, max / min (with or without the first index), var / std, all / any, and the two whole-
// tensor checks the losses ask the host for (ordered_sum, all_within): the Ops of
// kernels/cuda/reduce_ops.h on segments of K (Note [CUDA reductions and scans] there). A warp
// or thread folds its segment; with K split, a second kernel merges each output's chunk states
// in chunk order.
//
// dtypes, the cpu's: sum from and into every dtype but bool (into), bfloat16 and float16 read
// widened and accumulated in double like the others' floats (Note [16-bit floats in the CUDA
// kernels] in kernels/cuda/half_storage.h), a 16-bit output rounded once; all / any of every
// dtype; prod, max / min of bool, integers, float32 and float64; var / std, ordered_sum and
// all_within of float32 and float64.
//
// Compiled only; no GPU has run these yet (README, "Devices").
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "core/tensor.h"
#include "cuda/runtime.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/half_ops.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce_ops.h"

namespace dc::cuda_kernels {
namespace {

// ---- the Ops of reduce_ops.h ----------------------------------------------------------------

Device this_device() { return Device{DeviceType::CUDA, cuda::current_device()}; }

// The segments a thread works on: with `warp`, one per warp (lane = threadIdx.x % 32, its lanes
// 32 apart along K); else one of its own (lane 0, every position).
struct SegmentWalk {
  int64_t first, step;
  int lane, lanes;
};
__device__ inline SegmentWalk segment_walk(bool warp) {
  const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t id = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (!warp) return {id, threads, 0, 1};
  return {id / 32, threads / 32, static_cast<int>(threadIdx.x % 32), 32};
}

// The state of the lane `delta` above, a 32-bit word at a time (a State is any trivially
// copyable struct); lanes past 31 get their own back, and lane 0 never reads them.
template <typename S>
__device__ inline S shfl_down_state(const S& s, int delta) {
  constexpr int kWords = static_cast<int>((sizeof(S) + 3) / 4);
  unsigned w[kWords] = {};
  memcpy(w, &s, sizeof(S));
  for (int j = 0; j < kWords; ++j) w[j] = __shfl_down_sync(0xffffffffu, w[j], delta);
  S r;
  memcpy(&r, w, sizeof(S));
  return r;
}

// x[O, K, I] -> each segment's state: into part[s] when K is split (plan nk > 1), else stored
// as the output. A warp's lanes fold positions k0 + lane, k0 + lane + 32, ..., then combine by
// shuffles (the Op's merge is order-free, Note [CUDA reductions and scans]).
template <class Op>
__global__ void reduce_segments(Op op, const typename Op::In* x, typename Op::State* part,
                                SplitPlan p) {
  using State = typename Op::State;
  const SegmentWalk w = segment_walk(p.warp);
  const int64_t n = p.segments();
  for (int64_t s = w.first; s < n; s += w.step) {  // the same trip count for a warp's lanes
    const Segment g = segment_at(s, p.nk, p.inner, p.kchunk, p.reduce);
    const typename Op::In* col = x + g.o * p.reduce * p.inner + g.i;
    State st = op.identity();
    for (int64_t k = g.k0 + w.lane; k < g.k1; k += w.lanes) op.add(st, col[k * p.inner], k);
    if (p.warp)
      for (int d = 16; d > 0; d /= 2) op.merge(st, shfl_down_state(st, d));
    if (w.lane == 0) {
      if (part) part[s] = st;
      else op.store(st, g.o * p.inner + g.i);
    }
  }
}

// part[O, nk, I] -> output (o, i): the chunk states merged in chunk order, a thread per output.
template <class Op>
__global__ void merge_chunks(Op op, const typename Op::State* part, SplitPlan p) {
  const int64_t n = p.outer * p.inner;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < n;
       t += step) {
    const typename Op::State* chunks = part + (t / p.inner) * p.nk * p.inner + t % p.inner;
    typename Op::State st = chunks[0];
    for (int64_t c = 1; c < p.nk; ++c) op.merge(st, chunks[c * p.inner]);
    op.store(st, t);
  }
}

template <class Op>
void run_reduce(const Op& op, const void* in, const cpu::ReduceDims& d, const char* name) {
  using State = typename Op::State;
  if (d.outer * d.inner == 0) return;
  DC_CHECK(d.reduce > 0, RuntimeError, "[", name,
           "] internal: an empty reduction reached the cuda kernel (outer ", d.outer,
           ", inner ", d.inner, ")");
  const SplitPlan p = split_plan(d.outer, d.reduce, d.inner);
  const int64_t cap = max_blocks(this_device());
  const bool split = p.nk > 1;
  DeviceBuffer part(split ? static_cast<size_t>(p.segments()) * sizeof(State) : 0);
  State* states = split ? part.as<State>() : nullptr;
  const LaunchConfig c = elementwise_launch(p.segments() * (p.warp ? 32 : 1), cap);
  reduce_segments<<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
      op, static_cast<const typename Op::In*>(in), states, p);
  check_launch(name);
  if (!split) return;
  const LaunchConfig m = elementwise_launch(d.outer * d.inner, cap);
  merge_chunks<<<static_cast<unsigned>(m.blocks), m.threads, 0, stream()>>>(op, states, p);
  check_launch(name);
}

// ---- sum ----------------------------------------------------------------------------------

template <typename In>
void sum_from(DType out_dtype, const void* in, void* out, const cpu::ReduceDims& d) {
  auto run = [&](auto* type) {
    using Out = std::remove_pointer_t<decltype(type)>;
    run_reduce(SumOp<In, Out>{static_cast<Out*>(out)}, in, d, "sum");
  };
  switch (out_dtype) {
    case DType::Bool: DC_THROW(TypeError, "[sum] bool is not a valid accumulator dtype");
    case DType::Int32: return run(static_cast<int32_t*>(nullptr));
    case DType::Int64: return run(static_cast<int64_t*>(nullptr));
    default: return with_storage_type(out_dtype, "sum", run);
  }
}

void cuda_sum_reduce(DType in_dtype, DType out_dtype, const void* in, void* out,
                     cpu::ReduceDims d) {
  auto from = [&](auto* type) {
    sum_from<std::remove_pointer_t<decltype(type)>>(out_dtype, in, out, d);
  };
  switch (in_dtype) {
    case DType::Bool: return from(static_cast<bool*>(nullptr));
    case DType::Int32: return from(static_cast<int32_t*>(nullptr));
    case DType::Int64: return from(static_cast<int64_t*>(nullptr));
    default: return with_storage_type(in_dtype, "sum", from);
  }
}

void cuda_prod_reduce(DType dtype, const void* in, void* out, cpu::ReduceDims d) {
  with_value_type(dtype, "prod", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    if constexpr (std::is_same_v<T, bool>)
      DC_THROW(TypeError, "[prod] bool is not a valid accumulator dtype");
    else
      run_reduce(ProdOp<T>{static_cast<T*>(out)}, in, d, "prod");
  });
}

void cuda_minmax_reduce(DType dtype, const void* in, void* values, int64_t* indices,
                        cpu::ReduceDims d, bool is_max) {
  const char* name = is_max ? "max" : "min";
  with_value_type(dtype, name, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    T* v = static_cast<T*>(values);
    if (is_max) run_reduce(ExtremeOp<T, true>{v, indices}, in, d, name);
    else run_reduce(ExtremeOp<T, false>{v, indices}, in, d, name);
  });
}

void cuda_var_reduce(DType dtype, const void* in, void* out, cpu::ReduceDims d,
                     double correction, bool take_sqrt) {
  const char* name = take_sqrt ? "std" : "var";
  with_float_type(dtype, name, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    run_reduce(VarOp<T>{static_cast<T*>(out), correction, take_sqrt}, in, d, name);
  });
}

void cuda_all_any_reduce(DType dtype, const void* in, bool* out, cpu::ReduceDims d,
                         bool is_all) {
  const char* name = is_all ? "all" : "any";
  auto run = [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    if (is_all) run_reduce(AllAnyOp<T, true>{out}, in, d, name);
    else run_reduce(AllAnyOp<T, false>{out}, in, d, name);
  };
  // The 16-bit floats need no arithmetic here: zero or not is in their bits.
  if (dtype == DType::Float16) return run(static_cast<F16Bits*>(nullptr));
  if (dtype == DType::BFloat16) return run(static_cast<Bf16Bits*>(nullptr));
  with_value_type(dtype, name, run);
}

// The whole tensor as one row: the split plan fixes the order of the additions from the size
// alone, so the total is the same on every run and every GPU.
double cuda_ordered_sum(const Tensor& t) {
  double total = 0;
  with_float_type(t.dtype(), "sum", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    if (t.numel() == 0) return;
    DeviceBuffer out(sizeof(double));
    run_reduce(SumToDoubleOp<T>{out.as<double>()}, t.data_ptr(), cpu::ReduceDims{1, t.numel(), 1},
               "sum");
    total = read_back<double>(out.get(), "sum");
  });
  return total;
}

bool cuda_all_within(const Tensor& t, double lo, double hi) {
  bool ok = true;
  with_float_type(t.dtype(), "all_within", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    if (t.numel() == 0) return;
    DeviceBuffer out(sizeof(bool));
    run_reduce(WithinOp<T>{out.as<bool>(), static_cast<T>(lo), static_cast<T>(hi)}, t.data_ptr(),
               cpu::ReduceDims{1, t.numel(), 1}, "all_within");
    ok = read_back<bool>(out.get(), "all_within");
  });
  return ok;
}

}  // namespace

// The scans are the reduction family's too (cpu::cumsum_scan sits in kernels/cpu/reduce.h):
// their entries are filled with these.
void fill_scan(dispatch::KernelTable& t);  // scan.cu

void fill_reduce(dispatch::KernelTable& t) {
  t.sum_reduce = cuda_sum_reduce;
  t.prod_reduce = cuda_prod_reduce;
  t.minmax_reduce = cuda_minmax_reduce;
  t.var_reduce = cuda_var_reduce;
  t.all_any_reduce = cuda_all_any_reduce;
  t.ordered_sum = cuda_ordered_sum;
  t.all_within = cuda_all_within;
  fill_scan(t);
}

}  // namespace dc::cuda_kernels
