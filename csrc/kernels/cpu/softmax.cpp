#include "kernels/cpu/softmax.h"

#include <algorithm>

#include "core/parallel.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/nn_rows.h"
#include "kernels/cpu/reduce.h"

namespace dc::cpu {

namespace {
template <void (*Fill)(NnRowTable&)>
const NnRowTable& table() {
  static const NnRowTable t = [] {
    NnRowTable x;
    Fill(x);
    return x;
  }();
  return t;
}

// Columns per block in the strided (dim != last) path: wide enough to vectorise, small enough
// that the two per-column accumulators stay on the stack.
constexpr int64_t kColBlock = 64;

using Geometry = cpu::ReduceDims;  // x as [outer, n = reduce, inner] around dim

// Calls row(offset) for every [n] row (inner == 1) or block(offset, width) for every column
// block of every [n, inner] slab, in parallel with a grain of about kGrainSize elements.
template <typename Row, typename Block>
void for_each_line(const Geometry& g, const Row& row, const Block& block) {
  if (g.reduce == 0 || g.outer == 0 || g.inner == 0) return;
  if (g.inner == 1) {
    parallel_for(0, g.outer, std::max<int64_t>(1, kGrainSize / g.reduce), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) row(r * g.reduce);
    });
    return;
  }
  const int64_t blocks = (g.inner + kColBlock - 1) / kColBlock;
  parallel_for(0, g.outer * blocks, std::max<int64_t>(1, kGrainSize / (g.reduce * kColBlock)),
               [&](int64_t b, int64_t e) {
                 for (int64_t t = b; t < e; ++t) {
                   const int64_t o = t / blocks, c0 = (t % blocks) * kColBlock;
                   block(o * g.reduce * g.inner + c0, std::min(kColBlock, g.inner - c0));
                 }
               });
}
}  // namespace

const NnRowTable& nn_row_table() {
  switch (active_isa()) {
    case Isa::avx512: return table<avx512::fill_nn_rows>();
    case Isa::avx2: return table<avx2::fill_nn_rows>();
    default: return table<generic::fill_nn_rows>();
  }
}

void softmax_into(const Tensor& y, const Tensor& x, int64_t dim, bool log) {
  const Geometry g = cpu::ReduceDims::around(x.sizes(), dim);
  DC_DISPATCH_FLOAT(x.dtype(), log ? "log_softmax" : "softmax", [&] {
    const auto& f = nn_rows<scalar_t>();
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    for_each_line(
        g, [&](int64_t off) { f.softmax(xp + off, yp + off, g.reduce, log); },
        [&](int64_t off, int64_t width) {
          scalar_t work[2 * kColBlock];
          f.softmax_cols(xp + off, yp + off, g.reduce, g.inner, width, log, work);
        });
  });
}

void softmax_backward_into(const Tensor& gx, const Tensor& g, const Tensor& y, int64_t dim,
                           bool log) {
  const Geometry geo = cpu::ReduceDims::around(y.sizes(), dim);
  DC_DISPATCH_FLOAT(y.dtype(), log ? "log_softmax_backward" : "softmax_backward", [&] {
    const auto& f = nn_rows<scalar_t>();
    const scalar_t* gp = g.data<scalar_t>();
    const scalar_t* yp = y.data<scalar_t>();
    scalar_t* op = gx.data<scalar_t>();
    for_each_line(
        geo, [&](int64_t off) { f.softmax_backward(gp + off, yp + off, op + off, geo.reduce, log); },
        [&](int64_t off, int64_t width) {
          scalar_t work[kColBlock];
          f.softmax_backward_cols(gp + off, yp + off, op + off, geo.reduce, geo.inner, width, log,
                                  work);
        });
  });
}

}  // namespace dc::cpu
