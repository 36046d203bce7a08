// The CUDA elementwise kernels: one grid-stride kernel template (Note [CUDA elementwise
// iteration] in kernels/cuda/launch.h) applied to the cpu's own scalar math. The pointwise rows
// of ops/pointwise.def, their fused derivatives and the helpers they call
// (kernels/cpu/vec/vmath.h, pointwise_math.h) are compiled here a second time as device code
// (DC_HD), so each function is written once for both devices; the binary and comparison
// functors are kernels/cuda/half_ops.h's.
//
// dtypes: the pointwise rows, their derivatives, add / sub / mul / div / maximum / minimum /
// relu_grad, add with alpha and the comparisons on float32, float64, bfloat16 and float16
// (integers where the cpu keeps them); a 16-bit operand is read widened to float and the result
// rounded once (Note [16-bit floats in the CUDA kernels] in kernels/cuda/half_storage.h), as the
// cpu runs its float32 kernel on widened chunks. where, fill and the casts on every dtype.
//
// Compiled only; no GPU has run these yet (README, "Devices"). tests/test_cuda.py compares every
// op with the cpu on the device when one is there (bench/gpu_check.sh).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "core/tensor.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/half_ops.h"
#include "kernels/cuda/half_storage.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"
#include "ops/creation.h"

namespace dc::cuda_kernels {
namespace dev {
#include "kernels/cpu/vec/vmath.h"
#include "kernels/cpu/vec/pointwise_math.h"
}  // namespace dev

namespace {

using cpu::BinaryOp;
using cpu::CompareOp;
using cpu::UnaryOp;

template <int N>
struct Ptrs {
  char* p[N];
};

template <int N, typename Apply>
__global__ void elementwise_kernel(int64_t n, OffsetCalc<N> oc, Ptrs<N> ptrs, Apply f) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += step) {
    int64_t off[N];
    oc.get(i, off);
    f(ptrs.p, off);
  }
}

// A 0-d cpu operand (a Python number the op wrapped) is copied to the device.
Tensor on_device(const Tensor& t, Device d) {
  return t.device() == d ? t : ops::to_device(t, d);
}

// Runs `f` over out = operands[0]'s elements; the others broadcast to it.
template <int N, typename Apply>
void launch(const Tensor* const (&operands)[N], Apply f) {
  const Tensor& out = *operands[0];
  const int64_t n = out.numel();
  if (n == 0) return;
  const Device d = out.device();
  Tensor held[N];
  std::vector<int64_t> strides[N];
  int64_t itemsize[N];
  Ptrs<N> ptrs;
  const int64_t R = out.dim();
  for (int k = 0; k < N; ++k) {
    held[k] = on_device(*operands[k], d);
    const Tensor& t = held[k];
    strides[k].assign(R, 0);
    const int64_t r = t.dim();
    for (int64_t j = 0; j < r; ++j)
      if (t.sizes()[j] != 1) strides[k][R - r + j] = t.strides()[j];
    itemsize[k] = static_cast<int64_t>(t.itemsize());
    ptrs.p[k] = static_cast<char*>(t.data_ptr());
  }
  DC_CHECK(R <= kMaxDims, ValueError, "[cuda] elementwise ops take at most ", kMaxDims,
           " dims, got an output of shape ", out.shape_str());
  const OffsetCalc<N> oc = make_offsets<N>(out.sizes(), strides, itemsize);
  const LaunchConfig c = elementwise_launch(n, max_blocks(d));
  elementwise_kernel<N><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(n, oc, ptrs,
                                                                                     f);
  check_launch("elementwise");
}

// ---- the appliers: read the operands at their offsets, write the output -----------------
// Operands are storage types (kernels/cuda/half_storage.h): the op sees them widened (a 16-bit
// float as float, the rest as they are) and its result is rounded once into the output's.

template <typename So, typename Si, typename Op>
struct Unary {
  Op op;
  __device__ void operator()(char* const* p, const int64_t* off) const {
    store_rounded(reinterpret_cast<So*>(p[0] + off[0]),
                  op(load_widened(reinterpret_cast<const Si*>(p[1] + off[1]))));
  }
};
template <typename So, typename S, typename Op>
struct Binary {
  Op op;
  __device__ void operator()(char* const* p, const int64_t* off) const {
    store_rounded(reinterpret_cast<So*>(p[0] + off[0]),
                  op(load_widened(reinterpret_cast<const S*>(p[1] + off[1])),
                     load_widened(reinterpret_cast<const S*>(p[2] + off[2]))));
  }
};

// ---- the pointwise rows (ops/pointwise.def), as device functors -------------------------

#define DC_POINTWISE(name, keeps_int, saves, forward, derivative, fused)          \
  struct name##_fwd {                                                              \
    template <typename T>                                                          \
    __device__ T operator()(T x) const {                                           \
      using namespace dev;                                                         \
      return forward;                                                              \
    }                                                                              \
  };                                                                               \
  struct name##_bwd {                                                              \
    template <typename T>                                                          \
    __device__ T operator()(T g, T x) const {                                      \
      using namespace dev;                                                         \
      [[maybe_unused]] const T y = x;                                              \
      return fused;                                                                \
    }                                                                              \
  };                                                                               \
  constexpr bool name##_keeps_int = keeps_int;
#include "ops/pointwise.def"

template <typename T, typename Op>
void unary_as(const Tensor& out, const Tensor& in) {
  const Tensor* ops[2] = {&out, &in};
  launch<2>(ops, Unary<T, T, Op>{Op{}});
}
template <typename T, typename Op>
void binary_as(const Tensor& out, const Tensor& a, const Tensor& b) {
  const Tensor* ops[3] = {&out, &a, &b};
  launch<3>(ops, Binary<T, T, Op>{Op{}});
}

[[noreturn]] void no_kernel(const char* what, const char* op, DType dt) {
  DC_THROW(NotImplementedError, "[", dispatch::current_op_name(), "] no cuda kernel for ", what,
           " ", op, " on ", dtype_name(dt), " yet");
}

// Float rows, and integer ones for the rows that keep integers (a template, so that the
// integer instantiation of a float-only row is never compiled). The 16-bit floats run the
// float32 row on widened values.
template <bool KeepsInt, typename Op>
bool unary_row(const Tensor& out, const Tensor& in) {
  switch (out.dtype()) {
    case DType::Float32: unary_as<float, Op>(out, in); return true;
    case DType::Float64: unary_as<double, Op>(out, in); return true;
    case DType::BFloat16: unary_as<Bf16Bits, Op>(out, in); return true;
    case DType::Float16: unary_as<F16Bits, Op>(out, in); return true;
    default: break;
  }
  if constexpr (KeepsInt) {
    if (out.dtype() == DType::Int32) return unary_as<int32_t, Op>(out, in), true;
    if (out.dtype() == DType::Int64) return unary_as<int64_t, Op>(out, in), true;
  }
  return false;
}

void cuda_unary_into(UnaryOp op, const Tensor& out, const Tensor& in, const double* params) {
  bool done = false;
  switch (op) {
#define DC_POINTWISE(name, ...)                                    \
  case UnaryOp::name:                                              \
    done = unary_row<name##_keeps_int, name##_fwd>(out, in);       \
    break;
#include "ops/pointwise.def"
    default:
      break;
  }
  if (!done) no_kernel("unary", cpu::unary_op_name(op), out.dtype());
}

void cuda_unary_backward_into(UnaryOp op, const Tensor& out, const Tensor& grad,
                              const Tensor& saved, const double* params) {
  const DType dt = out.dtype();
  switch (op) {
#define DC_POINTWISE(name, ...)                                           \
  case UnaryOp::name:                                                     \
    if (!is_floating(dt)) break;                                          \
    return with_storage_type(dt, cpu::unary_op_name(op), [&](auto* s) {   \
      binary_as<std::remove_pointer_t<decltype(s)>, name##_bwd>(out, grad, saved); \
    });
#include "ops/pointwise.def"
    default:
      break;
  }
  no_kernel("the derivative of", cpu::unary_op_name(op), dt);
}

// ---- binary, compare, cast, where, fill ------------------------------------------------
// The functors (AddOp ... ReluGradOp, AddScaled, CompareFn) are kernels/cuda/half_ops.h's.

template <typename Op>
bool arith(const Tensor& out, const Tensor& a, const Tensor& b, bool ints) {
  switch (out.dtype()) {
    case DType::Float32: binary_as<float, Op>(out, a, b); return true;
    case DType::Float64: binary_as<double, Op>(out, a, b); return true;
    case DType::BFloat16: binary_as<Bf16Bits, Op>(out, a, b); return true;
    case DType::Float16: binary_as<F16Bits, Op>(out, a, b); return true;
    case DType::Int32: if (ints) binary_as<int32_t, Op>(out, a, b); return ints;
    case DType::Int64: if (ints) binary_as<int64_t, Op>(out, a, b); return ints;
    default: return false;
  }
}

void cuda_binary_into(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  bool done = false;
  switch (op) {
    case BinaryOp::add: done = arith<AddOp>(out, a, b, true); break;
    case BinaryOp::sub: done = arith<SubOp>(out, a, b, true); break;
    case BinaryOp::mul: done = arith<MulOp>(out, a, b, true); break;
    case BinaryOp::div: done = arith<DivOp>(out, a, b, false); break;
    case BinaryOp::maximum: done = arith<MaxOp>(out, a, b, true); break;
    case BinaryOp::minimum: done = arith<MinOp>(out, a, b, true); break;
    case BinaryOp::relu_grad: done = arith<ReluGradOp>(out, a, b, false); break;
    default: break;
  }
  if (!done) no_kernel("binary", cpu::binary_op_name(op), out.dtype());
}

// out = a + alpha b; a 16-bit dtype takes alpha as float, as the cpu's float32 kernel does.
template <typename S>
void add_scaled_as(const Tensor* const (&ops)[3], double alpha) {
  using T = compute_type<S>;
  launch<3>(ops, Binary<S, S, AddScaled<T>>{{static_cast<T>(alpha)}});
}

void cuda_add_scaled_into(const Tensor& out, const Tensor& a, const Tensor& b, double alpha) {
  const Tensor* ops[3] = {&out, &a, &b};
  switch (out.dtype()) {
    case DType::Float32: return add_scaled_as<float>(ops, alpha);
    case DType::Float64: return add_scaled_as<double>(ops, alpha);
    case DType::BFloat16: return add_scaled_as<Bf16Bits>(ops, alpha);
    case DType::Float16: return add_scaled_as<F16Bits>(ops, alpha);
    case DType::Int32:
      return launch<3>(ops, Binary<int32_t, int32_t, AddScaled<int32_t>>{{int32_t(alpha)}});
    case DType::Int64:
      return launch<3>(ops, Binary<int64_t, int64_t, AddScaled<int64_t>>{{int64_t(alpha)}});
    default: no_kernel("add", "alpha", out.dtype());
  }
}

template <int Cmp>
void compare_as(const Tensor& out, const Tensor& a, const Tensor& b) {
  const Tensor* ops[3] = {&out, &a, &b};
  switch (a.dtype()) {
    case DType::Bool: return launch<3>(ops, Binary<bool, bool, CompareFn<Cmp>>{});
    case DType::Int32: return launch<3>(ops, Binary<bool, int32_t, CompareFn<Cmp>>{});
    case DType::Int64: return launch<3>(ops, Binary<bool, int64_t, CompareFn<Cmp>>{});
    case DType::Float32: return launch<3>(ops, Binary<bool, float, CompareFn<Cmp>>{});
    case DType::Float64: return launch<3>(ops, Binary<bool, double, CompareFn<Cmp>>{});
    case DType::BFloat16: return launch<3>(ops, Binary<bool, Bf16Bits, CompareFn<Cmp>>{});
    case DType::Float16: return launch<3>(ops, Binary<bool, F16Bits, CompareFn<Cmp>>{});
    default: no_kernel("comparison", "", a.dtype());
  }
}

void cuda_compare_into(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
    case CompareOp::eq: return compare_as<0>(out, a, b);
    case CompareOp::ne: return compare_as<1>(out, a, b);
    case CompareOp::lt: return compare_as<2>(out, a, b);
    case CompareOp::le: return compare_as<3>(out, a, b);
    case CompareOp::gt: return compare_as<4>(out, a, b);
    default: return compare_as<5>(out, a, b);
  }
}

// Casts convert as the cpu's cast loops do: as static_cast, except to bool (nonzero); a 16-bit
// float goes through float both ways (an int64 or a double rounds to float first, then to 16
// bits, as the cpu's BFloat16(float) / Half(float) constructors take it); the same dtype copies
// the bits (a NaN keeps its payload), so the storage is moved as it is, not widened.
template <typename To, typename Ti>
struct Cast {
  __device__ void operator()(char* const* p, const int64_t* off) const {
    const Ti x = *reinterpret_cast<const Ti*>(p[1] + off[1]);
    To* o = reinterpret_cast<To*>(p[0] + off[0]);
    if constexpr (std::is_same_v<To, Ti>) *o = x;
    else if constexpr (std::is_same_v<To, bool>) *o = widen_value(x) != compute_type<Ti>(0);
    else *o = round_value<To>(static_cast<compute_type<To>>(widen_value(x)));
  }
};

template <typename To>
void cast_to(const Tensor& out, const Tensor& in) {
  const Tensor* ops[2] = {&out, &in};
  switch (in.dtype()) {
    case DType::Bool: return launch<2>(ops, Cast<To, bool>{});
    case DType::Int32: return launch<2>(ops, Cast<To, int32_t>{});
    case DType::Int64: return launch<2>(ops, Cast<To, int64_t>{});
    case DType::Float32: return launch<2>(ops, Cast<To, float>{});
    case DType::Float64: return launch<2>(ops, Cast<To, double>{});
    case DType::BFloat16: return launch<2>(ops, Cast<To, Bf16Bits>{});
    case DType::Float16: return launch<2>(ops, Cast<To, F16Bits>{});
    default: no_kernel("cast from", "", in.dtype());
  }
}

void cuda_cast_into(const Tensor& out, const Tensor& in) {
  switch (out.dtype()) {
    case DType::Bool: return cast_to<bool>(out, in);
    case DType::Int32: return cast_to<int32_t>(out, in);
    case DType::Int64: return cast_to<int64_t>(out, in);
    case DType::Float32: return cast_to<float>(out, in);
    case DType::Float64: return cast_to<double>(out, in);
    case DType::BFloat16: return cast_to<Bf16Bits>(out, in);
    case DType::Float16: return cast_to<F16Bits>(out, in);
    default: no_kernel("cast to", "", out.dtype());
  }
}

// where and fill move storage: a 16-bit value is copied as its bits.
template <typename T>
struct Where {
  __device__ void operator()(char* const* p, const int64_t* off) const {
    *reinterpret_cast<T*>(p[0] + off[0]) = *reinterpret_cast<const bool*>(p[1] + off[1])
                                               ? *reinterpret_cast<const T*>(p[2] + off[2])
                                               : *reinterpret_cast<const T*>(p[3] + off[3]);
  }
};

void cuda_where_into(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  const Tensor* ops[4] = {&out, &cond, &a, &b};
  switch (out.dtype()) {
    case DType::Bool: return launch<4>(ops, Where<bool>{});
    case DType::Int32: return launch<4>(ops, Where<int32_t>{});
    case DType::Int64: return launch<4>(ops, Where<int64_t>{});
    case DType::Float32: return launch<4>(ops, Where<float>{});
    case DType::Float64: return launch<4>(ops, Where<double>{});
    case DType::BFloat16: return launch<4>(ops, Where<Bf16Bits>{});
    case DType::Float16: return launch<4>(ops, Where<F16Bits>{});
    default: no_kernel("where", "", out.dtype());
  }
}

template <typename T>
struct Fill {
  T value;
  __device__ void operator()(char* const* p, const int64_t* off) const {
    *reinterpret_cast<T*>(p[0] + off[0]) = value;
  }
};

template <typename T>
void fill_as(const Tensor& out, T v) {
  const Tensor* ops[1] = {&out};
  launch<1>(ops, Fill<T>{v});
}

void cuda_fill_into(const Tensor& out, double v) {
  switch (out.dtype()) {
    case DType::Bool: return fill_as<bool>(out, v != 0.0);
    case DType::Int32: return fill_as<int32_t>(out, static_cast<int32_t>(v));
    case DType::Int64: return fill_as<int64_t>(out, static_cast<int64_t>(v));
    case DType::Float32: return fill_as<float>(out, static_cast<float>(v));
    case DType::Float64: return fill_as<double>(out, v);
    // through float, as the cpu's fill_loop<BFloat16> takes static_cast<BFloat16>(double)
    case DType::BFloat16: return fill_as(out, round_value<Bf16Bits>(static_cast<float>(v)));
    case DType::Float16: return fill_as(out, round_value<F16Bits>(static_cast<float>(v)));
    default: no_kernel("fill", "", out.dtype());
  }
}

void cuda_fill_int64_into(const Tensor& out, int64_t v) {
  if (out.dtype() == DType::Int64) return fill_as<int64_t>(out, v);
  cuda_fill_into(out, static_cast<double>(v));
}

}  // namespace

void fill_elementwise(dispatch::KernelTable& t) {
  t.unary_into = cuda_unary_into;
  t.unary_backward_into = cuda_unary_backward_into;
  t.binary_into = cuda_binary_into;
  t.add_scaled_into = cuda_add_scaled_into;
  t.compare_into = cuda_compare_into;
  t.cast_into = cuda_cast_into;
  t.where_into = cuda_where_into;
  t.fill_into = cuda_fill_into;
  t.fill_int64_into = cuda_fill_int64_into;
}

}  // namespace dc::cuda_kernels
