#include "kernels/cpu/optim.h"

#include <algorithm>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/isa.h"

namespace dc::cpu {

namespace {
template <void (*Fill)(OptimTable&)>
const OptimTable& table() {
  static const OptimTable t = [] {
    OptimTable x;
    Fill(x);
    return x;
  }();
  return t;
}

int dtype_slot(DType dtype, const char* op) {
  DC_CHECK(dtype == DType::Float32 || dtype == DType::Float64, TypeError, "[", op,
           "] parameters must be float32 or float64, got ", dtype_name(dtype));
  return dtype == DType::Float32 ? 0 : 1;
}

// Note [Multi-tensor parallel schedule]
// The tensors of a group are laid end to end as one range of elements, and that range is
// split among threads, so 60 small tensors cost one parallel region instead of 60, and a
// big tensor is shared by all threads. Each element's update depends only on its own
// inputs, so the split cannot change any result.
template <typename H>
void run_multi(OptimKernel<H> kernel, const H& h, const std::vector<OptimTensor>& ts) {
  std::vector<int64_t> starts(ts.size() + 1, 0);
  for (size_t i = 0; i < ts.size(); ++i) starts[i + 1] = starts[i] + ts[i].numel;
  const int64_t total = starts.back();
  parallel_for(0, total, kGrainSize, [&](int64_t b, int64_t e) {
    // The last tensor starting at or before b (empty tensors share a start with the next).
    size_t i = static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), b) -
                                   starts.begin()) - 1;
    for (; i < ts.size() && starts[i] < e; ++i) {
      const int64_t lo = std::max(b, starts[i]) - starts[i];
      const int64_t hi = std::min(e, starts[i + 1]) - starts[i];
      if (hi > lo) kernel(h, ts[i], lo, hi);
    }
  });
}
}  // namespace

const OptimTable& optim_table() {
  switch (active_isa()) {
    case Isa::avx512: return table<avx512::fill_optim>();
    case Isa::avx2: return table<avx2::fill_optim>();
    default: return table<generic::fill_optim>();
  }
}

void sgd_update(DType dtype, const SgdHyper& h, const std::vector<OptimTensor>& ts) {
  run_multi(optim_table().sgd[dtype_slot(dtype, "sgd")], h, ts);
}
void adam_update(DType dtype, const AdamHyper& h, const std::vector<OptimTensor>& ts) {
  run_multi(optim_table().adam[dtype_slot(dtype, "adam")], h, ts);
}
void rmsprop_update(DType dtype, const RmspropHyper& h, const std::vector<OptimTensor>& ts) {
  run_multi(optim_table().rmsprop[dtype_slot(dtype, "rmsprop")], h, ts);
}
void adagrad_update(DType dtype, const AdagradHyper& h, const std::vector<OptimTensor>& ts) {
  run_multi(optim_table().adagrad[dtype_slot(dtype, "adagrad")], h, ts);
}

}  // namespace dc::cpu
