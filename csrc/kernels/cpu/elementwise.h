#pragma once
// Kernel tables for elementwise ops, one per ISA (filled by csrc/kernels/cpu/vec/*.cpp).
// Which op has which kernel is listed here, in one place.
#include "core/dtype.h"
#include "kernels/cpu/loops.h"

namespace dc::cpu {

// out = f(in). Floating kernels only for the math functions; the op layer casts ints first.
// The pointwise ops' kernels are the rows of ops/pointwise.def (enumerated first); these are
// the others: kernels with parameters, the two forms of gelu, fill, and logical_not (bool out).
#define DC_UNARY_OTHER_OPS(_)                                                              \
  _(gelu_erf) _(gelu_tanh) _(softplus) _(leaky_relu) _(elu) _(polygamma) _(logit)         \
  _(threshold) _(hardshrink) _(softshrink) _(nan_to_num) _(clamp) _(logical_not) _(fill)

// out = f(a, b), all three of one dtype.
#define DC_BINARY_OPS(_)                                                                    \
  _(add) _(sub) _(mul) _(div) _(floor_divide) _(remainder) _(pow) _(maximum) _(minimum)     \
  _(atan2) _(hypot) _(copysign) _(logaddexp) _(logaddexp2) _(xlogy) _(nextafter) _(fmod)   \
  _(logical_and) _(logical_or) _(logical_xor) _(bitwise_and) _(bitwise_or) \
  _(bitwise_xor) _(relu_grad)

// out(bool) = f(a, b) with a, b of one dtype.
#define DC_COMPARE_OPS(_) _(eq) _(ne) _(lt) _(le) _(gt) _(ge)

#define DC_ENUM_ENTRY(name) name,
enum class UnaryOp : int {
#define DC_POINTWISE(name, ...) name,
#include "ops/pointwise.def"
  DC_UNARY_OTHER_OPS(DC_ENUM_ENTRY) kCount
};
enum class BinaryOp : int { DC_BINARY_OPS(DC_ENUM_ENTRY) kCount };
enum class CompareOp : int { DC_COMPARE_OPS(DC_ENUM_ENTRY) kCount };
#undef DC_ENUM_ENTRY

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

struct ElementwiseTable {
  LoopFn unary[static_cast<int>(UnaryOp::kCount)][kNumDTypes] = {};
  // The fused derivatives: grad_in = f'(saved) * grad_out in one pass, where saved is what the
  // op keeps for backward (its input or its output, pointwise.def). Floating dtypes only;
  // null for the ops without one (clamp, fill, logical_not). Operands: out, grad_out, saved.
  LoopFn unary_backward[static_cast<int>(UnaryOp::kCount)][kNumDTypes] = {};
  LoopFn binary[static_cast<int>(BinaryOp::kCount)][kNumDTypes] = {};
  LoopFn compare[static_cast<int>(CompareOp::kCount)][kNumDTypes] = {};
  LoopFn cast[kNumDTypes][kNumDTypes] = {};  // [to][from]; also plain strided copy
  LoopFn where[kNumDTypes] = {};             // out = cond(bool) ? a : b
  // out = a + alpha * b (alpha = params[0]); axpy-like fused update, used by add(alpha=).
  LoopFn add_scaled[kNumDTypes] = {};
};

// The table of the active ISA (see kernels/cpu/isa.h).
const ElementwiseTable& elementwise_table();

namespace avx512 { void fill_elementwise(ElementwiseTable& t); }
namespace avx2 { void fill_elementwise(ElementwiseTable& t); }
namespace generic { void fill_elementwise(ElementwiseTable& t); }

}  // namespace dc::cpu

namespace dc::cpu {

// Run a table kernel over `out`'s shape; inputs broadcast to it and already have the kernel's
// dtype. TypeError naming `opname` if no kernel exists for the dtype.
void unary_into(UnaryOp op, const Tensor& out, const Tensor& in, const double* params = nullptr);
// out = op's derivative at `saved` times `grad`, all three of one floating dtype.
void unary_backward_into(UnaryOp op, const Tensor& out, const Tensor& grad, const Tensor& saved,
                         const double* params = nullptr);
void binary_into(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
void add_scaled_into(const Tensor& out, const Tensor& a, const Tensor& b, double alpha);
void compare_into(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b);
void cast_into(const Tensor& out, const Tensor& in);  // any dtypes; also plain copies
// n values at src (dtype `from`, src_stride bytes apart) cast into dst (dtype `to`, dst_stride
// bytes apart) by the active ISA's cast kernel: for loops that convert raw memory in chunks.
void cast_strided(DType to, void* dst, int64_t dst_stride, DType from, const void* src,
                  int64_t src_stride, int64_t n);
void where_into(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
void fill_into(const Tensor& out, double value);

}  // namespace dc::cpu
