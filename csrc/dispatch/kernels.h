#pragma once
// The kernel tables: one per device type, each filled by its backend, looked up by the device of
// the op in flight (Note [The dispatcher] in dispatch/dispatcher.h). This list is the one place
// that says which kernels exist; a backend that lacks one leaves its entry null, and calling it
// raises NotImplementedError naming the op, the kernel and the device.
//
//   cpu   kernels/cpu/backend.cpp: every entry (each dispatches on dtype and on the CPU's ISA).
//   meta  dispatch/meta_backend.cpp: kernels that only write their outputs do nothing (the
//         outputs were already allocated with the right shapes, without memory); kernels whose
//         result is a value the op needs answer what lets the op go on (no target is bad, no
//         value out of range); data-dependent ones (nonzero) are absent.
//   cuda  empty until the CUDA backend fills it.
//
// The kernels take Tensors, or raw pointers plus geometry (GEMM, convolution, pooling,
// reductions), as the cpu code defines them; the geometry structs are device-neutral
// descriptions of the work.
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "dispatch/dispatcher.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/creation.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm/gemm.h"
#include "kernels/cpu/index.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/norm_batch.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/scan.h"
#include "kernels/cpu/rnn.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/sort.h"

namespace dc::dispatch {

// _(name, return type, (argument types))
#define DC_KERNELS(_)                                                                          \
  /* elementwise (kernels/cpu/elementwise.h) */                                               \
  _(unary_into, void, (cpu::UnaryOp, const Tensor&, const Tensor&, const double*))            \
  _(unary_backward_into, void,                                                               \
    (cpu::UnaryOp, const Tensor&, const Tensor&, const Tensor&, const double*))               \
  _(binary_into, void, (cpu::BinaryOp, const Tensor&, const Tensor&, const Tensor&))          \
  _(add_scaled_into, void, (const Tensor&, const Tensor&, const Tensor&, double))             \
  _(compare_into, void, (cpu::CompareOp, const Tensor&, const Tensor&, const Tensor&))        \
  _(cast_into, void, (const Tensor&, const Tensor&))                                          \
  _(where_into, void, (const Tensor&, const Tensor&, const Tensor&, const Tensor&))           \
  _(fill_into, void, (const Tensor&, double))                                                 \
  _(all_within, bool, (const Tensor&, double, double))                                        \
  /* creation (kernels/cpu/creation.h) */                                                     \
  _(fill_int64_into, void, (const Tensor&, int64_t))                                          \
  _(arange_into, void, (const Tensor&, double, double))                                       \
  _(linspace_into, void, (const Tensor&, double, double))                                     \
  _(fill_diagonal_into, void, (const Tensor&, double))                                        \
  _(uniform_into, void, (const Tensor&, double, double, uint64_t, uint64_t))                  \
  _(normal_into, void, (const Tensor&, double, double, uint64_t, uint64_t))                   \
  _(bernoulli_into, void, (const Tensor&, const Tensor&, uint64_t, uint64_t))                 \
  _(randint_into, void, (const Tensor&, int64_t, int64_t, uint64_t, uint64_t))                \
  _(permutation_into, void, (const Tensor&, const Tensor&))                                   \
  /* reductions (kernels/cpu/reduce.h) */                                                     \
  _(sum_reduce, void, (DType, DType, const void*, void*, cpu::ReduceDims))                    \
  _(prod_reduce, void, (DType, const void*, void*, cpu::ReduceDims))                          \
  _(minmax_reduce, void, (DType, const void*, void*, int64_t*, cpu::ReduceDims, bool))        \
  _(var_reduce, void, (DType, const void*, void*, cpu::ReduceDims, double, bool))             \
  _(all_any_reduce, void, (DType, const void*, bool*, cpu::ReduceDims, bool))                 \
  _(cumsum_scan, void, (DType, const void*, void*, cpu::ReduceDims))                          \
  _(ordered_sum, double, (const Tensor&))                                                     \
  /* scans and multinomial's search (kernels/cpu/scan.h) */                                 \
  _(cum_scan, void, (cpu::ScanOp, DType, const void*, void*, int64_t*, cpu::ReduceDims))       \
  _(categorical_search, void, (const Tensor&, const Tensor&, const Tensor&))                  \
  /* matmul (kernels/cpu/gemm/gemm.h) */                                                      \
  _(matmul_into, void, (const Tensor&, const Tensor&, const Tensor&, double, double,         \
                        const cpu::GemmEpilogue&))                                            \
  /* convolution and pooling (kernels/cpu/conv.h, pool.h) */                                  \
  _(conv2d_forward, void, (const cpu::ConvGeom&, DType, const void*, const void*,             \
                           const void*, void*))                                               \
  _(conv2d_backward_input, void, (const cpu::ConvGeom&, DType, const void*, const void*,      \
                                  void*))                                                     \
  _(conv2d_backward_weight, void, (const cpu::ConvGeom&, DType, const void*, const void*,     \
                                   void*))                                                    \
  _(max_pool2d_forward, void, (const cpu::PoolWindows&, DType, const void*, void*, int64_t*)) \
  _(avg_pool2d_forward, void, (const cpu::PoolWindows&, DType, const void*, void*))           \
  _(avg_pool2d_backward, void, (const cpu::PoolWindows&, DType, const void*, void*))          \
  /* normalisation, softmax, dropout (kernels/cpu/norm*.h, softmax.h, dropout.h) */           \
  _(norm_forward_into, void, (const Tensor&, const Tensor&, const Tensor&, const Tensor&,     \
                              const Tensor&, const Tensor&, int64_t, double, bool))           \
  _(norm_backward_into, void, (const Tensor&, const Tensor&, const Tensor&, const Tensor&,    \
                               const Tensor&, const Tensor&, const Tensor&, const Tensor&,    \
                               int64_t, bool))                                                \
  _(batch_norm_forward, void, (const cpu::BatchNormShape&, DType, const void*, const void*,   \
                               const void*, double, bool, void*, void*, void*, void*))        \
  _(batch_norm_backward, void, (const cpu::BatchNormShape&, DType, const void*, const void*,  \
                                const void*, const void*, const void*, bool, void*, void*,    \
                                void*))                                                       \
  _(softmax_into, void, (const Tensor&, const Tensor&, int64_t, bool))                        \
  _(softmax_backward_into, void, (const Tensor&, const Tensor&, const Tensor&, int64_t, bool))\
  _(dropout_mask_into, void, (const Tensor&, double, uint64_t, uint64_t))                     \
  /* fused attention (kernels/cpu/attention.h) */                                            \
  _(sdpa_flash_forward, void, (const cpu::AttentionGeom&, const Tensor&, const Tensor&,       \
                               const Tensor&, const Tensor&, const Tensor&, const Tensor&))   \
  _(sdpa_flash_backward, void, (const cpu::AttentionGeom&, const Tensor&, const Tensor&,      \
                                const Tensor&, const Tensor&, const Tensor&, const Tensor&,   \
                                const Tensor&, const Tensor&, const Tensor&, const Tensor&))  \
  _(sdpa_dropout_mask, void, (const cpu::AttentionGeom&, const Tensor&))                      \
  /* recurrent layers: one time step's gates (kernels/cpu/rnn.h) */                           \
  _(rnn_step_forward, void, (DType, const cpu::RnnStepForward&))                              \
  _(rnn_step_backward, void, (DType, const cpu::RnnStepBackward&))                            \
  _(rnn_packed_weight_numel, int64_t, (DType, int64_t, int64_t))                             \
  _(rnn_pack_weight, void, (const Tensor&, const Tensor&))                                    \
  _(rnn_gemm_packed, void, (const Tensor&, const Tensor&, const Tensor&, double))             \
  /* losses (kernels/cpu/loss.h) */                                                           \
  _(first_bad_target, int64_t, (const Tensor&, int64_t, int64_t))                             \
  _(class_loss_forward, double, (const Tensor&, const Tensor&, const Tensor&,                 \
                                 const cpu::ClassTargets&, bool))                             \
  _(class_target_matrix_into, void, (const Tensor&, const cpu::ClassTargets&, int64_t))       \
  _(cross_entropy_backward_into, void, (const Tensor&, const Tensor&, const Tensor&,          \
                                        const cpu::ClassTargets&, const Tensor&))             \
  _(prob_loss_forward, void, (const Tensor&, const Tensor&, const Tensor&, const Tensor&,     \
                              double))                                                        \
  /* indexing (kernels/cpu/index.h) */                                                        \
  _(index_gather, void, (const Tensor&, const Tensor&, const cpu::IndexGeometry&,             \
                         const Tensor&))                                                      \
  _(index_scatter, void, (const Tensor&, const Tensor&, const cpu::IndexGeometry&,            \
                          const Tensor&, bool))                                               \
  _(gather_dim, void, (const Tensor&, const Tensor&, int64_t, const Tensor&))                 \
  _(scatter_dim, void, (const Tensor&, int64_t, const Tensor&, const Tensor&, bool))          \
  _(wrap_index, bool, (const Tensor&, int64_t, bool, int64_t*))                               \
  _(nonzero, Tensor, (const Tensor&))                                                         \
  /* sorting (kernels/cpu/sort.h) */                                                          \
  _(argsort_rows, void, (const Tensor&, const Tensor&, bool))                                 \
  _(select_rows, void, (const Tensor&, const Tensor&, int64_t, bool))                         \
  /* optimizer updates (kernels/cpu/optim.h) */                                               \
  _(sgd_update, void, (DType, const cpu::SgdHyper&, const std::vector<cpu::OptimTensor>&))    \
  _(adam_update, void, (DType, const cpu::AdamHyper&, const std::vector<cpu::OptimTensor>&))  \
  _(rmsprop_update, void, (DType, const cpu::RmspropHyper&,                                   \
                           const std::vector<cpu::OptimTensor>&))                             \
  _(adagrad_update, void, (DType, const cpu::AdagradHyper&,                                   \
                           const std::vector<cpu::OptimTensor>&))

struct KernelTable {
#define DC_KERNEL_ENTRY(name, ret, args) ret(*name) args = nullptr;
  DC_KERNELS(DC_KERNEL_ENTRY)
#undef DC_KERNEL_ENTRY
};

// The table of a device type. The cpu and meta tables are filled on first use; a backend built
// separately (cuda) fills its table through register_backend when it loads.
KernelTable& kernel_table(DeviceType type);
void register_backend(DeviceType type, void (*fill)(KernelTable&));
void fill_meta_kernels(KernelTable& t);  // dispatch/meta_backend.cpp

[[noreturn]] void throw_missing_kernel(const char* kernel);

// The fake cuda device of the tests (Note [The fake device] in dispatch/fake_device.cpp):
// host memory behind untouchable pointers, served by the cpu kernels. RuntimeError when a real
// CUDA backend is loaded.
void set_fake_cuda(bool on);
bool fake_cuda_enabled();
// Bytes held by live fake-device storages, and the most held at once since the last reset.
std::pair<int64_t, int64_t> fake_cuda_allocated();
void reset_fake_cuda_peak();

// The entry `member` of the current device's table; NotImplementedError if it is null.
template <typename F>
F kernel(F KernelTable::*member, const char* name) {
  F f = kernel_table(current_device().type).*member;
  if (!f) throw_missing_kernel(name);
  return f;
}

}  // namespace dc::dispatch

namespace dc::cpu {
void fill_kernels(dispatch::KernelTable& t);  // kernels/cpu/backend.cpp
}

// DC_KERNEL(unary_into)(op, out, in, params): the kernel of the op's device.
#define DC_KERNEL(name) (::dc::dispatch::kernel(&::dc::dispatch::KernelTable::name, #name))
