// The precision step of the op bindings: Note [Precision policies] in dispatch/precision.h.
#include "dispatch/precision.h"

#include "ops/creation.h"

namespace dc::dispatch {

namespace {
thread_local DType tls_autocast_dtype = DType::BFloat16;
}  // namespace

void set_autocast(bool enabled, DType dtype) {
  DC_CHECK(dtype == DType::BFloat16 || dtype == DType::Float16, ValueError,
           "[autocast] dtype must be deepcore.bfloat16 or deepcore.float16, got ",
           dtype_name(dtype));
  tls_autocast_dtype = dtype;
  if (enabled) detail::tls.keys |= key_bit(Key::Autocast);
  else detail::tls.keys &= ~key_bit(Key::Autocast);
}

bool autocast_enabled() { return key_active(Key::Autocast); }
DType autocast_dtype() { return tls_autocast_dtype; }

namespace precision {

void ArgDtypes::note(const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype())) return;
  if (is_reduced_float(t.dtype()) && !any_reduced) {
    any_reduced = true;
    first_reduced = t.dtype();
  }
  widest = any_float ? promote_types(widest, t.dtype()) : t.dtype();
  any_float = true;
}

Plan make_plan(CastPolicy policy, bool half_kernels, ArgDtypes seen) {
  Plan plan;
  if (policy != CastPolicy::none && key_active(Key::Autocast) && seen.any_float) {
    plan.autocast = true;
    switch (policy) {
      case CastPolicy::lower: plan.cast_to = autocast_dtype(); break;
      case CastPolicy::fp32: plan.cast_to = DType::Float32; break;
      default: plan.cast_to = seen.widest; break;
    }
    // What the op sees after the cast decides the fallback below (float64 is never cast, so
    // only a 16-bit target leaves 16-bit arguments).
    seen.any_reduced = is_reduced_float(plan.cast_to);
    seen.first_reduced = plan.cast_to;
  }
  if (!half_kernels && seen.any_reduced) {
    plan.widen = true;
    plan.round_to = seen.first_reduced;
  }
  return plan;
}

Tensor apply(const Plan& plan, const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype())) return t;
  Tensor x = t;
  if (plan.autocast && x.dtype() != DType::Float64 && x.dtype() != plan.cast_to)
    x = ops::to_dtype(x, plan.cast_to);
  if (plan.widen && is_reduced_float(x.dtype())) x = ops::to_dtype(x, DType::Float32);
  return x;
}

Tensor round_back(const Plan& plan, const Tensor& t) {
  if (!plan.widen || !t.defined() || t.dtype() != DType::Float32) return t;
  return ops::to_dtype(t, plan.round_to);
}

Tensor write_back(const Tensor& original, const Tensor& result) {
  if (result.defined() && result.dtype() == DType::Float32 &&
      is_reduced_float(original.dtype()) && !result.is_same(original)) {
    Tensor dst = original;
    ops::copy_(dst, result);
    return dst;
  }
  return result;
}

}  // namespace precision
}  // namespace dc::dispatch
