// Creation ops, casts and copies.
#include "ops/creation.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/device_memory.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/elementwise.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;

Tensor empty(const Shape& shape, DType dtype) {
  DC_OP_GUARD_FACTORY("empty");
  return Tensor::empty(shape, dtype);
}

namespace {
// fill_into takes a double: an int64 value beyond 2^53 is copied exactly from a 0-d tensor.
void fill_values(const Tensor& t, const Scalar& value) {
  constexpr int64_t kExact = int64_t(1) << 53;
  if (t.dtype() == DType::Int64 && !value.is_float() &&
      (value.to_int() > kExact || value.to_int() < -kExact)) {
    DC_KERNEL(cast_into)(t, expand(scalar_tensor(value, DType::Int64), t.sizes()));
  } else {
    DC_KERNEL(fill_into)(t, value.to_double());
  }
}
}  // namespace

Tensor full(const Shape& shape, Scalar value, DType dtype) {
  DC_OP_GUARD_FACTORY("full");
  check_scalar_fits(value, dtype, "full");
  Tensor t = Tensor::empty(shape, dtype);
  fill_values(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype) {
  DC_OP_GUARD_FACTORY("zeros");
  return full(shape, Scalar(0), dtype);
}
Tensor ones(const Shape& shape, DType dtype) {
  DC_OP_GUARD_FACTORY("ones");
  return full(shape, Scalar(1), dtype);
}
Tensor zeros_like(const Tensor& t) {
  DC_OP_GUARD("zeros_like", t);
  return zeros(t.sizes(), t.dtype());
}
Tensor ones_like(const Tensor& t) {
  DC_OP_GUARD("ones_like", t);
  return ones(t.sizes(), t.dtype());
}
Tensor full_like(const Tensor& t, Scalar value) {
  DC_OP_GUARD("full_like", t);
  return full(t.sizes(), value, t.dtype());
}

Tensor scalar_tensor(Scalar value, DType dtype) {
  DC_OP_GUARD_FACTORY("scalar_tensor");
  Tensor t = Tensor::empty({}, dtype);
  // int64 values beyond 2^53 do not survive a double: those are written exactly.
  if (dtype == DType::Int64 && !value.is_float()) DC_KERNEL(fill_int64_into)(t, value.to_int());
  else DC_KERNEL(fill_into)(t, value.to_double());
  return t;
}

Tensor arange(double start, double end, double step, DType dtype) {
  DC_OP_GUARD_FACTORY("arange");
  DC_CHECK(step != 0, ValueError, "[arange] step must be nonzero");
  DC_CHECK(std::isfinite(start) && std::isfinite(end), ValueError,
           "[arange] start and end must be finite, got ", start, " and ", end);
  DC_CHECK((end - start) / step >= 0, ValueError, "[arange] upper bound and step are inconsistent: start=",
           start, ", end=", end, ", step=", step);
  const int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  Tensor t = Tensor::empty({n}, dtype);
  DC_KERNEL(arange_into)(t, start, step);
  return t;
}

Tensor linspace(double start, double end, int64_t steps, DType dtype) {
  DC_OP_GUARD_FACTORY("linspace");
  DC_CHECK(steps >= 0, ValueError, "[linspace] number of steps must be non-negative, got ", steps);
  Tensor t = Tensor::empty({steps}, dtype);
  DC_KERNEL(linspace_into)(t, start, end);
  return t;
}

Tensor eye(int64_t n, int64_t m, DType dtype) {
  DC_OP_GUARD_FACTORY("eye");
  if (m < 0) m = n;
  DC_CHECK(n >= 0, ValueError, "[eye] n must be non-negative, got ", n);
  Tensor t = zeros({n, m}, dtype);
  DC_KERNEL(fill_diagonal_into)(t, 1.0);
  return t;
}

// ---- random ------------------------------------------------------------------------------

namespace {
// Fills `t` by kernel(contiguous out, seed, start). A strided `t` (a transposed view, say) is
// filled through a contiguous buffer, so element i in row-major order takes the same draw as
// in a contiguous tensor of that shape.
template <typename K>
void random_fill(Tensor& t, const K& kernel) {
  Generator& g = default_generator();
  const uint64_t seed = g.seed, start = g.reserve(random_fill_counters(t.numel()));
  if (t.is_contiguous()) {
    kernel(t, seed, start);
  } else {
    Tensor buf = Tensor::empty(t.sizes(), t.dtype());
    kernel(buf, seed, start);
    DC_KERNEL(cast_into)(t, buf);
  }
  t.bump_version();
}
}  // namespace

Tensor& uniform_(Tensor& t, double low, double high) {
  DC_OP_GUARD("uniform_", t);
  DC_CHECK(std::isfinite(low) && std::isfinite(high) && low <= high, ValueError,
           "[uniform_] expects finite bounds with from <= to, got from=", low, ", to=", high);
  random_fill(t, [&](const Tensor& out, uint64_t seed, uint64_t start) {
    DC_KERNEL(uniform_into)(out, low, high, seed, start);
  });
  return t;
}

Tensor& normal_(Tensor& t, double mean, double stddev) {
  DC_OP_GUARD("normal_", t);
  DC_CHECK(stddev >= 0, ValueError, "[normal_] std must be non-negative, got ", stddev);
  random_fill(t, [&](const Tensor& out, uint64_t seed, uint64_t start) {
    DC_KERNEL(normal_into)(out, mean, stddev, seed, start);
  });
  return t;
}

Tensor& bernoulli_(Tensor& t, double p) {
  DC_OP_GUARD("bernoulli_", t);
  DC_CHECK(p >= 0.0 && p <= 1.0, ValueError, "[bernoulli_] p must lie in [0, 1], got ", p);
  if (!is_floating(t.dtype())) {  // integers and bool: drawn in float32, then cast (0 or 1)
    Tensor f = Tensor::empty(t.sizes(), DType::Float32);
    bernoulli_(f, p);
    DC_KERNEL(cast_into)(t, f);
    t.bump_version();
    return t;
  }
  const Tensor prob = scalar_tensor(Scalar(p), t.dtype());
  random_fill(t, [&](const Tensor& out, uint64_t seed, uint64_t start) {
    DC_KERNEL(bernoulli_into)(out, prob, seed, start);
  });
  return t;
}

Tensor rand(const Shape& shape, DType dtype) {
  DC_OP_GUARD_FACTORY("rand");
  Tensor t = Tensor::empty(shape, dtype);
  return uniform_(t, 0.0, 1.0);
}

Tensor randn(const Shape& shape, DType dtype) {
  DC_OP_GUARD_FACTORY("randn");
  Tensor t = Tensor::empty(shape, dtype);
  return normal_(t, 0.0, 1.0);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype) {
  DC_OP_GUARD_FACTORY("randint");
  DC_CHECK(high > low, ValueError, "[randint] expected low < high, got low=", low,
           ", high=", high);
  Tensor t = Tensor::empty(shape, dtype);
  Generator& g = default_generator();
  const uint64_t seed = g.seed, start = g.reserve(random_fill_counters(t.numel()));
  DC_KERNEL(randint_into)(t, low, high, seed, start);
  return t;
}

Tensor randperm(int64_t n, DType dtype) {
  DC_OP_GUARD_FACTORY("randperm");
  DC_CHECK(n >= 0, ValueError, "[randperm] n must be non-negative, got ", n);
  // Fisher-Yates driven by one random draw per position.
  Tensor keys = randint(0, INT64_MAX, {n}, DType::Int64);
  Tensor t = Tensor::empty({n}, dtype);
  DC_KERNEL(permutation_into)(t, keys);
  return t;
}

Tensor bernoulli(const Tensor& p) {
  DC_OP_GUARD("bernoulli", p);
  if (!is_floating(p.dtype())) {
    Tensor u = rand(p.sizes(), to_float_dtype(p.dtype()));
    return to_dtype(lt(u, p), p.dtype());
  }
  // A probability outside [0, 1] (or nan) would silently give 0 or 1; torch refuses it too.
  const Tensor pc = contiguous(p);
  DC_CHECK(DC_KERNEL(all_within)(pc, 0.0, 1.0), ValueError, "[bernoulli] probabilities must lie "
           "in [0, 1], got a ", dtype_name(p.dtype()), " tensor of shape ", p.shape_str(),
           " with values outside");
  Tensor out = Tensor::empty(p.sizes(), p.dtype());
  random_fill(out, [&](const Tensor& o, uint64_t seed, uint64_t start) {
    DC_KERNEL(bernoulli_into)(o, pc, seed, start);
  });
  return out;
}

Tensor multinomial(const Tensor& p, int64_t num_samples, bool replacement) {
  DC_OP_GUARD("multinomial", p);
  DC_CHECK(p.dim() == 1 || p.dim() == 2, ValueError, "[multinomial] expected a 1-D or 2-D "
           "tensor of probabilities, got shape ", p.shape_str());
  DC_CHECK(is_floating(p.dtype()), TypeError, "[multinomial] expected floating point "
           "probabilities, got ", dtype_name(p.dtype()), " of shape ", p.shape_str());
  DC_CHECK(num_samples > 0, ValueError, "[multinomial] num_samples must be positive, got ",
           num_samples, " for probabilities of shape ", p.shape_str());
  const int64_t K = p.sizes().back(), R = p.dim() == 2 ? p.sizes()[0] : 1;
  DC_CHECK(K > 0, ValueError, "[multinomial] probabilities of shape ", p.shape_str(),
           " have no categories");
  DC_CHECK(replacement || num_samples <= K, ValueError, "[multinomial] cannot draw ",
           num_samples, " samples without replacement from ", K,
           " categories (probabilities of shape ", p.shape_str(), ")");
  Tensor w;  // float64 weights (R, K), contiguous
  {
    autograd::GradModeGuard off(false);
    w = contiguous_clone(reshape(to_dtype(detach(p), DType::Float64), {R, K}));
  }
  // Every row must be a distribution up to scale (meta tensors have no values to check).
  if (!w.is_meta()) {
    const Tensor w_host = on_host(w);
    const double* v = w_host.data<double>();
    for (int64_t r = 0; r < R; ++r) {
      double total = 0;
      int64_t positive = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double x = v[r * K + k];
        DC_CHECK(std::isfinite(x) && x >= 0, ValueError, "[multinomial] probabilities must be "
                 "finite and non-negative, got ", x, " in row ", r, " of shape ", p.shape_str());
        total += x;
        positive += x > 0;
      }
      DC_CHECK(total > 0, ValueError, "[multinomial] row ", r, " of probabilities of shape ",
               p.shape_str(), " sums to 0");
      DC_CHECK(replacement || positive >= num_samples, ValueError, "[multinomial] cannot draw ",
               num_samples, " samples without replacement from row ", r, " of shape ",
               p.shape_str(), ": only ", positive, " categories have non-zero probability");
    }
  }
  Tensor out;
  if (replacement) {
    // Inverse CDF: one uniform draw per sample, searched in the row's running sum.
    const Tensor cdf = cumsum(w, 1);
    const Tensor u = rand({R, num_samples}, DType::Float64);
    out = Tensor::empty({R, num_samples}, DType::Int64);
    DC_KERNEL(categorical_search)(out, cdf, u);
  } else {
    // Without replacement: the num_samples largest keys w_k / E_k with E_k ~ Exp(1) are a draw
    // of successive sampling (each pick proportional to the remaining weights), as in PyTorch;
    // zero weights get key -1 and are never among them (checked above).
    autograd::GradModeGuard off(false);
    const Tensor u = rand({R, K}, DType::Float64);
    const Tensor e = neg(log1p(neg(u)));  // u in [0, 1): e in [0, inf)
    const Tensor keys = where(gt(w, wrap_scalar(0.0)), div(w, e), wrap_scalar(-1.0));
    out = contiguous_clone(narrow(argsort(keys, 1, true), 1, 0, num_samples));
  }
  return p.dim() == 1 ? reshape(out, {num_samples}) : out;
}

// ---- aliases and copies --------------------------------------------------------------------

Tensor alias(const Tensor& t) {
  DC_OP_GUARD("alias", t);
  Tensor a = Tensor::make_view(t.storage(), t.sizes(), t.strides(), t.offset(), t.dtype());
  a.impl()->base = t.impl()->base;
  return a;
}

Tensor detach(const Tensor& t) {
  DC_OP_GUARD("detach", t);
  return alias(t);
}

Tensor contiguous_clone(const Tensor& t) {
  DC_OP_GUARD("contiguous_clone", t);
  Tensor out = Tensor::empty(t.sizes(), t.dtype());
  DC_KERNEL(cast_into)(out, t);
  return out;
}

Tensor clone(const Tensor& t) {
  DC_OP_GUARD("clone", t);
  Tensor out = contiguous_clone(t);
  autograd::record("clone", {t}, {out}, [](GradCtx& g) -> tensor_list { return {g.grad()}; });
  return out;
}

Tensor contiguous(const Tensor& t) {
  DC_OP_GUARD("contiguous", t);
  return t.is_contiguous() ? t : clone(t);
}

// Tensor.to(device). Moving onto meta keeps shape and dtype and drops the values; nothing comes
// back from meta (there are no values to copy), as in torch. Between the cpu and a device with
// memory the values are copied densely: a strided source is made contiguous on its own device
// first. The derivative moves the gradient back to the source device.
Tensor to_device(const Tensor& t, Device device, bool non_blocking) {
  DC_OP_GUARD("to_device", t);
  const Device from = t.device();
  device = resolve_device(device, "[to]");
  if (from == device) return t;
  DC_CHECK(!from.is_meta(), NotImplementedError, "[to] cannot copy a tensor of shape ",
           t.shape_str(), " out of the meta device: meta tensors have no data");
  Tensor out = Tensor::empty(t.sizes(), t.dtype(), device);
  if (!device.is_meta() && t.numel() > 0) {
    const Tensor src = t.is_contiguous() ? t : contiguous_clone(t);
    const DeviceMemory* m = device_memory(device.type == DeviceType::CPU ? from.type : device.type);
    m->copy(out.data_ptr(), device, src.data_ptr(), from,
            static_cast<size_t>(src.numel()) * src.itemsize(), non_blocking);
    // the copy may still be reading src's pinned memory: keep it from reuse until it has run
    if (non_blocking && src.storage()->pinned && m->pinned_used)
      m->pinned_used(*src.storage(), current_stream(device.index));
  }
  autograd::record("to", {t}, {out},
                   [from](GradCtx& g) -> tensor_list { return {to_device(g.grad(), from)}; });
  return out;
}

Tensor on_host(const Tensor& t) {
  DC_OP_GUARD("on_host", t);
  if (t.device().type == DeviceType::CPU) return t;
  autograd::GradModeGuard off(false);
  return to_device(t, Device());
}

Tensor to_dtype(const Tensor& t, DType dtype, bool copy) {
  DC_OP_GUARD("to_dtype", t);
  if (t.dtype() == dtype && !copy) return t;
  Tensor out = Tensor::empty(t.sizes(), dtype);
  DC_KERNEL(cast_into)(out, t);
  if (is_floating(dtype) && is_floating(t.dtype())) {
    const DType from = t.dtype();
    autograd::record("to", {t}, {out},
                     [from](GradCtx& g) -> tensor_list { return {to_dtype(g.grad(), from)}; });
  }
  return out;
}

// Note [In-place on views]
// Writing in place through a view changes its base too, so autograd must see the write on the
// base. When a write through view V of base B needs autograd (grad mode on and B, V or the
// written values require grad), copy_ rewires the graph like PyTorch's CopySlices:
//   B.grad_fn = copy_slices(B's old history, src): the gradient of B passes through outside
//               V's region; inside it goes to src (summed to src's shape) instead;
//   V.grad_fn = a view of the new B, so later uses of V see the write.
// Every grad-recording in-place op funnels through copy_ (they compute out of place and copy
// in), so this is the one place the rule lives. Limits: B must be contiguous (views of views
// are handled because TensorImpl::base is always the root), a view of a leaf that requires
// grad is refused (as in PyTorch), and double backward through the region copy is refused
// rather than silently wrong. Views of B taken before the write keep their old history.
void check_inplace(const Tensor& t, const char* op, bool values_require_grad) {
  // An expanded dimension makes several elements share one memory location: the result of an
  // in-place write would depend on the order of the writes (PyTorch refuses it too).
  for (int64_t d = 0; d < t.dim(); ++d)
    DC_CHECK(t.strides()[d] != 0 || t.sizes()[d] <= 1 || t.numel() == 0, RuntimeError, "[", op,
             "] unsupported operation: several elements of the written-to tensor (shape ",
             t.shape_str(), ", strides ", shape_str(t.strides()),
             ") share memory locations; call clone() before writing in place");
  if (!autograd::grad_enabled()) return;
  DC_CHECK(!(t.is_leaf() && t.requires_grad()), RuntimeError, "[", op,
           "] a leaf tensor that requires grad (shape ", t.shape_str(),
           ") is used in an in-place operation; do it under no_grad() or on a clone()");
  if (!t.impl()->base) return;
  const Tensor base(t.impl()->base);
  if (!(base.requires_grad() || t.requires_grad() || values_require_grad)) return;
  DC_CHECK(!(base.is_leaf() && base.requires_grad()), RuntimeError, "[", op,
           "] a view (shape ", t.shape_str(), ") of a leaf tensor that requires grad (shape ",
           base.shape_str(), ") is used in an in-place operation; do it under no_grad() or on "
           "a clone()");
  DC_CHECK(base.is_contiguous(), RuntimeError, "[", op, "] in-place write through a view of a "
           "non-contiguous tensor (shape ", base.shape_str(), ") that takes part in autograd is "
           "not supported; call contiguous() on the base first");
}

bool inplace_into_view_needs_history(const Tensor& t, bool values_require_grad) {
  if (!autograd::grad_enabled() || !t.impl()->base) return false;
  return Tensor(t.impl()->base).requires_grad() || t.requires_grad() || values_require_grad;
}

namespace {
// See Note [In-place on views]. Called after the data of `dst` (a view) has been written.
void record_copy_slices(const Tensor& dst, const Tensor& src) {
  Tensor base(dst.impl()->base);
  const Shape vs = dst.sizes(), vst = dst.strides(), src_shape = src.sizes(),
              bshape = base.sizes();
  const int64_t voff = dst.offset() - base.offset();
  autograd::record("copy_slices", {base, src}, {base},
                   [vs, vst, voff, src_shape](GradCtx& g) -> tensor_list {
                     DC_CHECK(!autograd::grad_enabled(), NotImplementedError,
                              "[copy_] double backward through an in-place write into a view is "
                              "not supported");
                     Tensor gb = contiguous_clone(g.grad());
                     Tensor region = Tensor::make_view(gb.storage(), vs, vst, voff, gb.dtype());
                     Tensor gsrc;
                     if (g.needs(1)) gsrc = sum_to(contiguous_clone(region), src_shape);
                     DC_KERNEL(fill_into)(region, 0.0);
                     return {gb, gsrc};
                   });
  autograd::record("view_of_copy_slices", {base}, {dst},
                   [vs, vst, voff, bshape](GradCtx& g) -> tensor_list {
                     DC_CHECK(!autograd::grad_enabled(), NotImplementedError,
                              "[copy_] double backward through an in-place write into a view is "
                              "not supported");
                     Tensor z = zeros(bshape, g.grad().dtype());
                     DC_KERNEL(cast_into)(Tensor::make_view(z.storage(), vs, vst, voff, z.dtype()),
                                    g.grad());
                     return {z};
                   });
}
}  // namespace

Tensor& copy_(Tensor& dst, const Tensor& src_arg) {
  DC_OP_GUARD("copy_", dst);
  // A source on another device (loading cpu weights into a cuda model) is moved first; the
  // move is differentiable, so the gradient goes back to the source's device.
  const bool moves = src_arg.device() != dst.device() &&
                     !(src_arg.dim() == 0 && src_arg.device().type == DeviceType::CPU);
  const Tensor src = moves ? to_device(src_arg, dst.device()) : src_arg;
  check_inplace(dst, "copy_", src.requires_grad());
  check_wrapped_fits(src, dst.dtype(), "copy_");  // x[i] = 2**40 into int32 is an error
  DC_CHECK(broadcast_shapes(dst.sizes(), src.sizes(), "copy_") == dst.sizes(), ValueError,
           "[copy_] source of shape ", src.shape_str(), " cannot be broadcast to destination ",
           dst.shape_str());
  // Overlapping memory (x[1:] = x[:-1]) must read everything before writing.
  Tensor s = src.storage() == dst.storage() ? contiguous_clone(src) : src;
  DC_KERNEL(cast_into)(dst, s);
  dst.bump_version();
  const bool base_needs_grad = dst.impl()->base && autograd::grad_enabled() &&
                              Tensor(dst.impl()->base).requires_grad();
  if (dst.impl()->base && (base_needs_grad || autograd::any_requires_grad({&dst, &src}))) {
    record_copy_slices(dst, src);
  } else if (autograd::any_requires_grad({&dst, &src})) {
    const Shape src_shape = src.sizes();
    autograd::record("copy_", {dst, src}, {dst}, [src_shape](GradCtx& g) -> tensor_list {
      return {g.needs(0) ? zeros_like(g.grad()) : Tensor(),
              g.needs(1) ? sum_to(g.grad(), src_shape) : Tensor()};
    });
  }
  return dst;
}

Tensor& fill_(Tensor& t, Scalar value) {
  DC_OP_GUARD("fill_", t);
  check_inplace(t, "fill_");
  check_scalar_fits(value, t.dtype(), "fill_");
  const bool view_of_grad = t.impl()->base && autograd::grad_enabled() &&
                            Tensor(t.impl()->base).requires_grad();
  // With autograd involved, copy_ records the history (Note [In-place on views]).
  if (view_of_grad || autograd::any_requires_grad({&t})) return copy_(t, scalar_tensor(value, t.dtype()));
  fill_values(t, value);
  t.bump_version();
  return t;
}

Tensor& zero_(Tensor& t) {
  DC_OP_GUARD("zero_", t);
  return fill_(t, Scalar(0));
}

}  // namespace dc::ops
