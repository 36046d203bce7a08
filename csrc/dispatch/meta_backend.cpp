// The meta backend (dispatch/kernels.h): outputs are allocated with their shapes and no memory,
// so a kernel that only writes its outputs has nothing to do.
#include "dispatch/kernels.h"

namespace dc::dispatch {
namespace {

template <typename F>
struct Skip {
  static constexpr bool applies = false;
};
template <typename... Args>
struct Skip<void (*)(Args...)> {
  static constexpr bool applies = true;
  static void run(Args...) {}
};
template <typename F>
void skip_if_void(F& entry) {
  if constexpr (Skip<F>::applies) entry = &Skip<F>::run;
}

// Value-returning kernels answer so that the op goes on: meta tensors have no values to check
// (targets, ranges) or to sum, and the op's result is a meta tensor whatever the number.
int64_t no_bad_target(const Tensor&, int64_t, int64_t) { return -1; }
bool indices_in_range(const Tensor&, int64_t, bool, int64_t*) { return true; }
bool within(const Tensor&, double, double) { return true; }
double unit_weight_sum(const Tensor&, const Tensor&, const Tensor&, const cpu::ClassTargets&,
                       bool) {
  return 1.0;
}
double zero_sum(const Tensor&) { return 0.0; }
int64_t no_packed_weight(DType, int64_t, int64_t) { return 0; }  // the packing kernels skip

}  // namespace

void fill_meta_kernels(KernelTable& t) {
#define DC_META_KERNEL(name, ret, args) skip_if_void(t.name);
  DC_KERNELS(DC_META_KERNEL)
#undef DC_META_KERNEL
  t.first_bad_target = &no_bad_target;
  t.all_within = &within;
  t.wrap_index = &indices_in_range;
  t.class_loss_forward = &unit_weight_sum;
  t.ordered_sum = &zero_sum;
  t.rnn_packed_weight_numel = &no_packed_weight;
  // nonzero stays null: its output shape depends on the values.
}

}  // namespace dc::dispatch
