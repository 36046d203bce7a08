#pragma once
// reduce.cu's schedule replayed on the host through the same rules and split plan
// (kernels/cuda/reduce_ops.h): what test_cuda_reduce.cpp and test_cuda_half.cpp compare with the
// cpu kernels.
#include <array>
#include <cstdint>
#include <memory>

#include "kernels/cpu/reduce.h"
#include "kernels/cuda/reduce_ops.h"

namespace dc::cuda_kernels {

// reduce.cu: reduce_segments (a warp's lane l folds positions k0 + l, k0 + l + 32, ...; then
// the shfl_down tree, in which lane l merges lane l + d's state, its own past lane 31) and,
// with K split, merge_chunks.
template <class Op>
void emulate_reduce(const Op& op, const typename Op::In* x, const cpu::ReduceDims& d) {
  using State = typename Op::State;
  if (d.outer * d.inner == 0) return;
  const SplitPlan p = split_plan(d.outer, d.reduce, d.inner);
  const bool split = p.nk > 1;
  std::unique_ptr<State[]> part(new State[split ? p.segments() : 1]);
  for (int64_t s = 0; s < p.segments(); ++s) {
    const Segment g = segment_at(s, p.nk, p.inner, p.kchunk, p.reduce);
    const typename Op::In* col = x + g.o * p.reduce * p.inner + g.i;
    State st = op.identity();
    if (!p.warp) {
      for (int64_t k = g.k0; k < g.k1; ++k) op.add(st, col[k * p.inner], k);
    } else {
      std::array<State, 32> lane;
      for (int l = 0; l < 32; ++l) {
        lane[l] = op.identity();
        for (int64_t k = g.k0 + l; k < g.k1; k += 32) op.add(lane[l], col[k], k);
      }
      for (int dd = 16; dd > 0; dd /= 2) {
        const std::array<State, 32> before = lane;
        for (int l = 0; l < 32; ++l) op.merge(lane[l], before[l + dd < 32 ? l + dd : l]);
      }
      st = lane[0];
    }
    if (split) part[s] = st;
    else op.store(st, g.o * p.inner + g.i);
  }
  if (!split) return;
  for (int64_t t = 0; t < d.outer * d.inner; ++t) {
    const State* chunks = part.get() + (t / p.inner) * p.nk * p.inner + t % p.inner;
    State st = chunks[0];
    for (int64_t c = 1; c < p.nk; ++c) op.merge(st, chunks[c * p.inner]);
    op.store(st, t);
  }
}

}  // namespace dc::cuda_kernels
