// Creation ops, casts and copies.
#include "ops/creation.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "kernels/cpu/elementwise.h"
#include "ops/ops.h"
#include "ops/registry.h"

namespace dc::ops {

using autograd::GradCtx;

Tensor empty(const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype); }

Tensor full(const Shape& shape, Scalar value, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  cpu::fill_into(t, value.to_double());
  return t;
}
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, Scalar(0), dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, Scalar(1), dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.sizes(), t.dtype()); }
Tensor full_like(const Tensor& t, Scalar value) { return full(t.sizes(), value, t.dtype()); }

Tensor scalar_tensor(Scalar value, DType dtype) {
  Tensor t = Tensor::empty({}, dtype);
  cpu::fill_into(t, value.to_double());
  // int64 values beyond 2^53 do not survive the double: write them exactly.
  if (dtype == DType::Int64 && !value.is_float()) *t.data<int64_t>() = value.to_int();
  return t;
}

Tensor arange(double start, double end, double step, DType dtype) {
  DC_CHECK(step != 0, ValueError, "[arange] step must be nonzero");
  DC_CHECK(std::isfinite(start) && std::isfinite(end), ValueError,
           "[arange] start and end must be finite, got ", start, " and ", end);
  DC_CHECK((end - start) / step >= 0, ValueError, "[arange] upper bound and step are inconsistent: start=",
           start, ", end=", end, ", step=", step);
  const int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  Tensor t = Tensor::empty({n}, dtype);
  DC_DISPATCH_ALL(dtype, "arange", [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(start + i * step);
  });
  return t;
}

Tensor linspace(double start, double end, int64_t steps, DType dtype) {
  DC_CHECK(steps >= 0, ValueError, "[linspace] number of steps must be non-negative, got ", steps);
  Tensor t = Tensor::empty({steps}, dtype);
  const double step = steps > 1 ? (end - start) / (steps - 1) : 0.0;
  DC_DISPATCH_ALL(dtype, "linspace", [&] {
    scalar_t* p = t.data<scalar_t>();
    // Fill from both ends, like PyTorch, so the last value is exactly `end`; a single step
    // is `start` (the loop would give `end`).
    const int64_t half = steps == 1 ? 1 : steps / 2;
    for (int64_t i = 0; i < steps; ++i)
      p[i] = static_cast<scalar_t>(i < half ? start + step * i : end - step * (steps - 1 - i));
  });
  return t;
}

Tensor eye(int64_t n, int64_t m, DType dtype) {
  if (m < 0) m = n;
  DC_CHECK(n >= 0, ValueError, "[eye] n must be non-negative, got ", n);
  Tensor t = zeros({n, m}, dtype);
  DC_DISPATCH_ALL(dtype, "eye", [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = scalar_t(1);
  });
  return t;
}

// ---- random ------------------------------------------------------------------------------

namespace {
// Fills a contiguous tensor: element i gets f(philox(seed, start + i / 4)[i % 4] ...).
template <typename F>
void fill_random(Tensor& t, uint64_t counters_per_4, F&& f) {
  Generator& g = default_generator();
  const int64_t n = t.numel();
  const uint64_t seed = g.seed;
  const uint64_t start = g.reserve(static_cast<uint64_t>((n + 3) / 4) * counters_per_4);
  parallel_for(0, (n + 3) / 4, 2048, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) f(seed, start + blk * counters_per_4, blk * 4, n);
  });
}
}  // namespace

Tensor& uniform_(Tensor& t, double low, double high) {
  DC_CHECK(t.is_contiguous(), ValueError, "[uniform_] needs a contiguous tensor");
  DC_DISPATCH_FLOAT(t.dtype(), "uniform_", [&] {
    scalar_t* p = t.data<scalar_t>();
    fill_random(t, 2, [&](uint64_t seed, uint64_t ctr, int64_t i0, int64_t n) {
      auto r0 = philox(seed, ctr), r1 = philox(seed, ctr + 1);
      for (int k = 0; k < 4 && i0 + k < n; ++k) {
        double u = std::is_same_v<scalar_t, float>
                       ? double(uint_to_unit_float(r0[k]))
                       : uints_to_unit_double(r0[k], r1[k]);
        p[i0 + k] = static_cast<scalar_t>(low + (high - low) * u);
      }
    });
  });
  t.bump_version();
  return t;
}

Tensor& normal_(Tensor& t, double mean, double stddev) {
  DC_CHECK(t.is_contiguous(), ValueError, "[normal_] needs a contiguous tensor");
  DC_CHECK(stddev >= 0, ValueError, "[normal_] std must be non-negative, got ", stddev);
  DC_DISPATCH_FLOAT(t.dtype(), "normal_", [&] {
    scalar_t* p = t.data<scalar_t>();
    fill_random(t, 2, [&](uint64_t seed, uint64_t ctr, int64_t i0, int64_t n) {
      auto r0 = philox(seed, ctr), r1 = philox(seed, ctr + 1);
      // Box-Muller on pairs (u1, u2) -> two normals.
      for (int k = 0; k < 4; k += 2) {
        const double u1 = 1.0 - uints_to_unit_double(r0[k], r1[k]);  // (0, 1]
        const double u2 = uints_to_unit_double(r0[k + 1], r1[k + 1]);
        const double rad = std::sqrt(-2.0 * std::log(u1));
        const double z0 = rad * std::cos(2 * M_PI * u2), z1 = rad * std::sin(2 * M_PI * u2);
        if (i0 + k < n) p[i0 + k] = static_cast<scalar_t>(mean + stddev * z0);
        if (i0 + k + 1 < n) p[i0 + k + 1] = static_cast<scalar_t>(mean + stddev * z1);
      }
    });
  });
  t.bump_version();
  return t;
}

Tensor rand(const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  return uniform_(t, 0.0, 1.0);
}

Tensor randn(const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  return normal_(t, 0.0, 1.0);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype) {
  DC_CHECK(high > low, ValueError, "[randint] expected low < high, got low=", low,
           ", high=", high);
  Tensor t = Tensor::empty(shape, dtype);
  const uint64_t range = static_cast<uint64_t>(high - low);
  DC_DISPATCH_ALL(dtype, "randint", [&] {
    scalar_t* p = t.data<scalar_t>();
    fill_random(t, 2, [&](uint64_t seed, uint64_t ctr, int64_t i0, int64_t n) {
      auto r0 = philox(seed, ctr), r1 = philox(seed, ctr + 1);
      for (int k = 0; k < 4 && i0 + k < n; ++k) {
        const uint64_t r = (static_cast<uint64_t>(r0[k]) << 32) | r1[k];
        p[i0 + k] = static_cast<scalar_t>(low + static_cast<int64_t>(r % range));
      }
    });
  });
  return t;
}

Tensor randperm(int64_t n, DType dtype) {
  DC_CHECK(n >= 0, ValueError, "[randperm] n must be non-negative, got ", n);
  // Fisher-Yates driven by one random draw per position.
  Tensor keys = randint(0, INT64_MAX, {n}, DType::Int64);
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  const int64_t* k = keys.data<int64_t>();
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[k[i] % (i + 1)]);
  Tensor t = Tensor::empty({n}, dtype);
  DC_DISPATCH_ALL(dtype, "randperm", [&] {
    for (int64_t i = 0; i < n; ++i) t.data<scalar_t>()[i] = static_cast<scalar_t>(perm[i]);
  });
  return t;
}

Tensor bernoulli(const Tensor& p) {
  Tensor u = rand(p.sizes(), to_float_dtype(p.dtype()));
  return to_dtype(lt(u, p), p.dtype());
}

// ---- aliases and copies --------------------------------------------------------------------

Tensor alias(const Tensor& t) {
  Tensor a = Tensor::make_view(t.storage(), t.sizes(), t.strides(), t.offset(), t.dtype());
  a.impl()->base = t.impl()->base;
  return a;
}

Tensor detach(const Tensor& t) { return alias(t); }

Tensor contiguous_clone(const Tensor& t) {
  Tensor out = Tensor::empty(t.sizes(), t.dtype());
  cpu::cast_into(out, t);
  return out;
}

Tensor clone(const Tensor& t) {
  Tensor out = contiguous_clone(t);
  autograd::record("clone", {t}, {out}, [](GradCtx& g) -> tensor_list { return {g.grad()}; });
  return out;
}

Tensor contiguous(const Tensor& t) { return t.is_contiguous() ? t : clone(t); }

Tensor to_dtype(const Tensor& t, DType dtype, bool copy) {
  if (t.dtype() == dtype && !copy) return t;
  Tensor out = Tensor::empty(t.sizes(), dtype);
  cpu::cast_into(out, t);
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
    DC_CHECK(t.strides()[d] != 0 || t.sizes()[d] <= 1, RuntimeError, "[", op,
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
                     cpu::fill_into(region, 0.0);
                     return {gb, gsrc};
                   });
  autograd::record("view_of_copy_slices", {base}, {dst},
                   [vs, vst, voff, bshape](GradCtx& g) -> tensor_list {
                     DC_CHECK(!autograd::grad_enabled(), NotImplementedError,
                              "[copy_] double backward through an in-place write into a view is "
                              "not supported");
                     Tensor z = zeros(bshape, g.grad().dtype());
                     cpu::cast_into(Tensor::make_view(z.storage(), vs, vst, voff, z.dtype()),
                                    g.grad());
                     return {z};
                   });
}
}  // namespace

Tensor& copy_(Tensor& dst, const Tensor& src) {
  check_inplace(dst, "copy_", src.requires_grad());
  DC_CHECK(broadcast_shapes(dst.sizes(), src.sizes(), "copy_") == dst.sizes(), ValueError,
           "[copy_] source of shape ", src.shape_str(), " cannot be broadcast to destination ",
           dst.shape_str());
  // Overlapping memory (x[1:] = x[:-1]) must read everything before writing.
  Tensor s = src.storage() == dst.storage() ? contiguous_clone(src) : src;
  cpu::cast_into(dst, s);
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
  check_inplace(t, "fill_");
  const bool view_of_grad = t.impl()->base && autograd::grad_enabled() &&
                            Tensor(t.impl()->base).requires_grad();
  // With autograd involved, copy_ records the history (Note [In-place on views]).
  if (view_of_grad || autograd::any_requires_grad({&t})) return copy_(t, scalar_tensor(value, t.dtype()));
  cpu::fill_into(t, value.to_double());
  t.bump_version();
  return t;
}

Tensor& zero_(Tensor& t) { return fill_(t, Scalar(0)); }

DC_REGISTER_OPS(
    {"clone", "creation", Grad::differentiable},
    {"contiguous", "creation", Grad::differentiable},
    {"to", "creation", Grad::differentiable},
    {"copy_", "creation", Grad::differentiable},
    {"fill_", "creation", Grad::differentiable},
    {"zero_", "creation", Grad::differentiable},
    {"empty", "creation", Grad::not_differentiable},
    {"zeros", "creation", Grad::not_differentiable},
    {"ones", "creation", Grad::not_differentiable},
    {"full", "creation", Grad::not_differentiable},
    {"arange", "creation", Grad::not_differentiable},
    {"linspace", "creation", Grad::not_differentiable},
    {"eye", "creation", Grad::not_differentiable},
    {"rand", "creation", Grad::not_differentiable},
    {"randn", "creation", Grad::not_differentiable},
    {"randint", "creation", Grad::not_differentiable},
    {"randperm", "creation", Grad::not_differentiable},
    {"uniform_", "creation", Grad::not_differentiable},
    {"normal_", "creation", Grad::not_differentiable},
    {"bernoulli", "creation", Grad::not_differentiable});

}  // namespace dc::ops
