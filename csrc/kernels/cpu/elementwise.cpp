#include "kernels/cpu/elementwise.h"

#include "kernels/cpu/isa.h"

namespace dc::cpu {

#define DC_NAME_ENTRY(name) #name,
const char* unary_op_name(UnaryOp op) {
  static const char* names[] = {
#define DC_POINTWISE(name, ...) #name,
#include "ops/pointwise.def"
      DC_UNARY_OTHER_OPS(DC_NAME_ENTRY)};
  return names[static_cast<int>(op)];
}
const char* binary_op_name(BinaryOp op) {
  static const char* names[] = {DC_BINARY_OPS(DC_NAME_ENTRY)};
  return names[static_cast<int>(op)];
}
#undef DC_NAME_ENTRY

namespace {
template <void (*Fill)(ElementwiseTable&)>
const ElementwiseTable& table() {
  static const ElementwiseTable t = [] {
    ElementwiseTable x;
    Fill(x);
    return x;
  }();
  return t;
}
}  // namespace

const ElementwiseTable& elementwise_table() {
  switch (active_isa()) {
    case Isa::avx512: return table<avx512::fill_elementwise>();
    case Isa::avx2: return table<avx2::fill_elementwise>();
    default: return table<generic::fill_elementwise>();
  }
}

}  // namespace dc::cpu

namespace dc::cpu {
namespace {
constexpr const char* kCompareNames[] = {"eq", "ne", "lt", "le", "gt", "ge"};

void run(LoopFn fn, const tensor_list& operands, const double* params) {
  run_loop(make_iter(operands[0].sizes(), operands), fn, params);
}

// The kernel of `row` for `dt`; bfloat16 and float16 use float32's (`widened` says so).
LoopFn pick(const LoopFn* row, DType dt, bool& widened) {
  widened = is_reduced_float(dt);
  return row[static_cast<int>(widened ? DType::Float32 : dt)];
}

// Runs fn over the operands, widening those of the 16-bit dtype `dt` (Note [Reduced-precision
// compute] in loops.cpp).
void run_maybe_widened(LoopFn fn, bool widened, DType dt, const tensor_list& operands,
                       const double* params) {
  if (!widened) return run(fn, operands, params);
  uint32_t mask = 0;
  for (size_t i = 0; i < operands.size(); ++i)
    if (operands[i].dtype() == dt) mask |= 1u << i;
  run_loop_widened(make_iter(operands[0].sizes(), operands), fn, params, dt, mask);
}
}  // namespace

void unary_into(UnaryOp op, const Tensor& out, const Tensor& in, const double* params) {
  bool w;
  LoopFn fn = pick(elementwise_table().unary[static_cast<int>(op)], in.dtype(), w);
  DC_CHECK(fn, TypeError, "[", unary_op_name(op), "] not implemented for dtype ",
           dtype_name(in.dtype()));
  run_maybe_widened(fn, w, in.dtype(), {out, in}, params);
}

void unary_backward_into(UnaryOp op, const Tensor& out, const Tensor& grad, const Tensor& saved,
                         const double* params) {
  bool w;
  LoopFn fn = pick(elementwise_table().unary_backward[static_cast<int>(op)], grad.dtype(), w);
  DC_CHECK(fn, TypeError, "[", unary_op_name(op), "] has no fused derivative for dtype ",
           dtype_name(grad.dtype()));
  run_maybe_widened(fn, w, grad.dtype(), {out, grad, saved}, params);
}

namespace {
// nextafter on a 16-bit float steps to the neighbouring 16-bit value: its result is defined by
// the format, so it cannot be computed in float32 and rounded (Note [Reduced-precision
// compute]). The bit patterns of one sign are ordered like the values.
template <typename H>
void nextafter_16bit(char** d, const int64_t* s, int64_t n, const double*) {
  for (int64_t i = 0; i < n; ++i) {
    const H hx = *reinterpret_cast<const H*>(d[1] + i * s[1]);
    const H hy = *reinterpret_cast<const H*>(d[2] + i * s[2]);
    const float x = float(hx), y = float(hy);
    H r;
    if (x != x || y != y) {
      r = H(x + y);  // NaN
    } else if (x == y) {
      r = hy;
    } else if (x == 0.0f) {
      r = H::from_bits(static_cast<uint16_t>((hy.x & 0x8000u) | 1u));  // smallest subnormal
    } else {
      const bool away = (x < y) == (x > 0.0f);  // away from zero: the magnitude grows
      r = H::from_bits(static_cast<uint16_t>(away ? hx.x + 1 : hx.x - 1));
    }
    *reinterpret_cast<H*>(d[0] + i * s[0]) = r;
  }
}
}  // namespace

void binary_into(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  if (op == BinaryOp::nextafter && is_reduced_float(a.dtype()))
    return run(a.dtype() == DType::BFloat16 ? nextafter_16bit<BFloat16> : nextafter_16bit<Half>,
               {out, a, b}, nullptr);
  bool w;
  LoopFn fn = pick(elementwise_table().binary[static_cast<int>(op)], a.dtype(), w);
  DC_CHECK(fn, TypeError, "[", binary_op_name(op), "] not implemented for dtype ",
           dtype_name(a.dtype()));
  run_maybe_widened(fn, w, a.dtype(), {out, a, b}, nullptr);
}

void add_scaled_into(const Tensor& out, const Tensor& a, const Tensor& b, double alpha) {
  bool w;
  LoopFn fn = pick(elementwise_table().add_scaled, a.dtype(), w);
  DC_CHECK(fn, TypeError, "[add] alpha is not supported for dtype ", dtype_name(a.dtype()));
  run_maybe_widened(fn, w, a.dtype(), {out, a, b}, &alpha);
}

void compare_into(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  bool w;
  LoopFn fn = pick(elementwise_table().compare[static_cast<int>(op)], a.dtype(), w);
  DC_CHECK(fn, TypeError, "[", kCompareNames[static_cast<int>(op)],
           "] not implemented for dtype ", dtype_name(a.dtype()));
  run_maybe_widened(fn, w, a.dtype(), {out, a, b}, nullptr);
}

void cast_into(const Tensor& out, const Tensor& in) {
  LoopFn fn = elementwise_table().cast[static_cast<int>(out.dtype())][static_cast<int>(in.dtype())];
  run(fn, {out, in}, nullptr);
}

void cast_strided(DType to, void* dst, int64_t dst_stride, DType from, const void* src,
                  int64_t src_stride, int64_t n) {
  char* io[2] = {static_cast<char*>(dst), static_cast<char*>(const_cast<void*>(src))};
  const int64_t st[2] = {dst_stride, src_stride};
  elementwise_table().cast[static_cast<int>(to)][static_cast<int>(from)](io, st, n, nullptr);
}

void where_into(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  run(elementwise_table().where[static_cast<int>(out.dtype())], {out, cond, a, b}, nullptr);
}

void fill_into(const Tensor& out, double value) {
  LoopFn fn =
      elementwise_table().unary[static_cast<int>(UnaryOp::fill)][static_cast<int>(out.dtype())];
  run(fn, {out, out}, &value);
}

}  // namespace dc::cpu
