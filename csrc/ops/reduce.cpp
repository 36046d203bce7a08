// Reductions: forward dispatch and derivatives.
//
// Note [Reduction layout]
// A reduction is brought to one of two layouts without copying when possible:
//   rows:    x viewed as (M, K) with the K reduced elements of each output contiguous, or
//   columns: x viewed as (K, M), reduced dims leading (e.g. a bias gradient over the batch):
//            the output row is accumulated K times with a vectorised add.
// Both are cases of one layout, x[O, K, I] (rows: I == 1, columns: O == 1), which the kernels
// (kernels/cpu/reduce.h) take directly: any dense input (contiguous, or a permutation of it such
// as a transpose) whose reduced dims form one run in memory order (size-1 dims ignored) is
// reduced in place, with the output laid out in the same memory order as the input. Anything
// else is first copied into the rows layout (kept dims, then reduced dims).
#include "ops/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/scan.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;

std::vector<bool> reduction_mask(const Tensor& t, const Shape& dims, const char* op) {
  DC_OP_GUARD("reduction_mask", t);
  std::vector<bool> mask(t.dim(), dims.empty());
  for (int64_t d : dims) {
    const int64_t w = wrap_dim_scalar_ok(d, t.dim(), op);
    DC_CHECK(t.dim() == 0 || !mask[w], ValueError, "[", op, "] dim ", w,
             " appears multiple times in the list of dims ", shape_str(dims));
    if (t.dim() > 0) mask[w] = true;
  }
  return mask;
}

Shape reduced_shape(const Shape& in, const std::vector<bool>& mask, bool keepdim) {
  DC_OP_GUARD_FACTORY("reduced_shape");
  Shape out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!mask[i]) out.push_back(in[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

namespace {

// Where a reduction's input lies as x[O, K, I] (Note [Reduction layout]) and where each output
// lands: `out_strides` are the strides of the keepdim-shaped output in a buffer of O * I.
struct Layout {
  Tensor data;  // undefined when the input is empty
  cpu::ReduceDims dims;
  Shape out_strides;
  int64_t out_numel() const { return dims.outer * dims.inner; }
};

// The dims of size > 1 in memory order (outermost first), and whether they tile the memory
// without gaps (a dense tensor in some dim order).
bool memory_order(const Tensor& t, std::vector<int64_t>& order) {
  const Shape& sz = t.sizes();
  const Shape& st = t.strides();
  order.clear();
  for (int64_t i = 0; i < t.dim(); ++i)
    if (sz[i] != 1) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return st[a] > st[b]; });
  int64_t expected = 1;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (st[*it] != expected) return false;
    expected *= sz[*it];
  }
  return true;
}

Layout reduce_layout(const Tensor& t, const std::vector<bool>& mask) {
  const Shape& sz = t.sizes();
  std::vector<int64_t> order;  // dims of size > 1
  Layout L;
  bool dense = memory_order(t, order) && t.numel() > 0;
  if (dense) {
    // Memory order must read kept* reduced* kept*.
    int phase = 0;
    for (int64_t d : order) {
      if (mask[d]) {
        if (phase == 2) { dense = false; break; }
        phase = 1;
        L.dims.reduce *= sz[d];
      } else {
        if (phase == 1) phase = 2;
        (phase == 0 ? L.dims.outer : L.dims.inner) *= sz[d];
      }
    }
  }
  if (dense) {
    L.data = t;
  } else {
    // Rows layout: kept dims (logical order), then reduced dims; copied unless empty.
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return mask[a] != mask[b] ? !mask[a] : a < b;
    });
    L.dims = cpu::ReduceDims{};
    for (int64_t d = 0; d < t.dim(); ++d) (mask[d] ? L.dims.reduce : L.dims.outer) *= sz[d];
    if (t.numel() > 0) {
      Shape perm;
      for (int64_t d = 0; d < t.dim(); ++d) if (!mask[d]) perm.push_back(d);
      for (int64_t d = 0; d < t.dim(); ++d) if (mask[d]) perm.push_back(d);
      autograd::GradModeGuard off(false);
      L.data = contiguous_clone(permute(t, perm));
    }
  }
  // Output strides follow the order in which the kept dims appear in `order`.
  L.out_strides.assign(t.dim(), 1);
  int64_t running = 1;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (mask[*it]) continue;
    L.out_strides[*it] = running;
    running *= sz[*it];
  }
  return L;
}

// The output tensor over `buf` (O * I elements): keepdim shape, or reduced dims dropped.
Tensor shape_output(const Tensor& buf, const Tensor& t, const std::vector<bool>& mask,
                    const Layout& L, bool keepdim) {
  Shape sizes, strides;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (mask[d] && !keepdim) continue;
    sizes.push_back(mask[d] ? 1 : t.sizes()[d]);
    strides.push_back(L.out_strides[d]);
  }
  return Tensor::make_view(buf.storage(), sizes, strides, 0, buf.dtype());
}

// Runs `kernel(layout, out_ptr)` for a reduction of `t` over `mask`; an empty reduced extent
// gives `empty_value` (the op's identity, or NaN).
template <class F>
Tensor reduce_op(const Tensor& t, const std::vector<bool>& mask, bool keepdim, DType out_dt,
                 double empty_value, const F& kernel) {
  const Layout L = reduce_layout(t, mask);
  Tensor buf = Tensor::empty({L.out_numel()}, out_dt);
  if (L.out_numel() > 0) {
    if (L.dims.reduce == 0) DC_KERNEL(fill_into)(buf, empty_value);
    else kernel(L, buf.data_ptr());
  }
  return shape_output(buf, t, mask, L, keepdim);
}

// Note [Summing in memory order]
// A sum over dims that are not one run in memory (dims 0 and 2 of a contiguous (A, B, C)) would
// need the reduced dims gathered into rows first: a copy of the whole input. Sums are linear,
// so one run of reduced dims is summed first, in place, into a buffer of partial sums (float32
// for a float32 or 16-bit result, as the float lanes of one pass hold them; float64 or int64
// otherwise), and the rest from that much smaller buffer: one read of the input in memory
// order. The outermost run goes first when it divides the data by 8 or more: its sum is a
// column sum (vector adds of whole rows, A rows of B * C), which runs at memory speed where
// short row sums (rows of C) do not; else the innermost. The dims of that run, or an empty list
// when the reduced dims are already one run (or the input is not dense).
Shape first_reduced_run(const Tensor& t, const std::vector<bool>& mask) {
  const Shape& sz = t.sizes();
  std::vector<int64_t> order;
  if (!memory_order(t, order)) return {};
  int runs = 0;
  bool in_run = false;
  for (int64_t d : order) {
    if (mask[d] && !in_run) ++runs;
    in_run = mask[d];
  }
  if (runs < 2) return {};
  Shape outer_run;
  int64_t outer_size = 1;
  for (int64_t d : order) {
    if (mask[d]) {
      outer_run.push_back(d);
      outer_size *= sz[d];
    } else if (!outer_run.empty()) {
      break;
    }
  }
  if (outer_size >= 8) return outer_run;
  Shape run;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (mask[*it]) run.push_back(*it);
    else if (!run.empty()) break;
  }
  return run;
}

int64_t reduced_count(const Tensor& t, const std::vector<bool>& mask) {
  int64_t n = 1;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (mask[d]) n *= t.sizes()[d];
  return n;
}

// max/min/amax/amin/argmax have no identity: refuse empty reductions like PyTorch.
void check_nonempty(const Tensor& t, const std::vector<bool>& mask, bool all_dims, const char* op) {
  DC_CHECK(!(all_dims && t.numel() == 0), RuntimeError, "[", op,
           "] expected reduction dim to be specified for input.numel() == 0 (input shape ",
           t.shape_str(), "); specify the reduction dim with the 'dim' argument");
  for (int64_t d = 0; d < t.dim(); ++d)
    DC_CHECK(!(mask[d] && t.sizes()[d] == 0), IndexError, "[", op, "] expected reduction dim ", d,
             " to have non-zero size (input shape ", t.shape_str(), ")");
}

Tensor zero_like_scalar() { return wrap_scalar(0.0); }

// Mean of x over the reduced dims, keepdim (for the var/std derivative).
Tensor kept_mean(const Tensor& x, const Shape& dims) { return mean(x, dims, true); }

}  // namespace

// ---- sum, mean, prod --------------------------------------------------------------------------

Tensor sum(const Tensor& t, const Shape& dims, bool keepdim, std::optional<DType> dtype) {
  DC_OP_GUARD("sum", t);
  const auto mask = reduction_mask(t, dims, "sum");
  const DType out_dt = dtype ? *dtype : (is_floating(t.dtype()) ? t.dtype() : DType::Int64);
  DC_CHECK(out_dt != DType::Bool, TypeError, "[sum] dtype=bool is not supported");
  if (const Shape run = first_reduced_run(t, mask); !run.empty()) {
    Shape rest;
    for (int64_t d = 0; d < t.dim(); ++d)
      if (mask[d] && std::find(run.begin(), run.end(), d) == run.end()) rest.push_back(d);
    // The partial sums in float32 for a float32 or 16-bit result (as float lanes would hold
    // them), in float64 or int64 otherwise.
    const DType acc = !is_floating(out_dt)       ? DType::Int64
                      : out_dt == DType::Float64 ? DType::Float64
                                                 : DType::Float32;
    const Tensor r = sum(sum(t, run, true, acc), rest, true, out_dt);
    return keepdim ? r : reshape(r, reduced_shape(t.sizes(), mask, false));
  }
  Tensor out = reduce_op(t, mask, keepdim, out_dt, 0.0, [&](const Layout& L, void* o) {
    DC_KERNEL(sum_reduce)(t.dtype(), out_dt, L.data.data_ptr(), o, L.dims);
  });
  if (is_floating(t.dtype()) && is_floating(out_dt) && autograd::any_requires_grad({&t})) {
    const Shape in_shape = t.sizes(), kept = reduced_shape(t.sizes(), mask, true);
    const DType in_dt = t.dtype();
    autograd::record("sum", {t}, {out}, [in_shape, kept, in_dt](GradCtx& g) -> tensor_list {
      return {to_dtype(expand(reshape(g.grad(), kept), in_shape), in_dt)};
    });
  }
  return out;
}

Tensor mean(const Tensor& t, const Shape& dims, bool keepdim) {
  DC_OP_GUARD("mean", t);
  DC_CHECK(is_floating(t.dtype()), TypeError, "[mean] could not infer output dtype: input dtype "
           "must be floating point, got ", dtype_name(t.dtype()));
  const auto mask = reduction_mask(t, dims, "mean");
  Tensor s = sum(t, dims, keepdim);
  return div(s, wrap_scalar(static_cast<double>(reduced_count(t, mask))));
}

Tensor prod(const Tensor& t, const Shape& dims, bool keepdim) {
  DC_OP_GUARD("prod", t);
  const auto mask = reduction_mask(t, dims, "prod");
  const DType out_dt = is_floating(t.dtype()) ? t.dtype() : DType::Int64;
  const Tensor in = t.dtype() == out_dt ? t : to_dtype(detach(t), out_dt);
  Tensor out = reduce_op(in, mask, keepdim, out_dt, 1.0, [&](const Layout& L, void* o) {
    DC_KERNEL(prod_reduce)(out_dt, L.data.data_ptr(), o, L.dims);
  });
  if (autograd::any_requires_grad({&t})) {
    const Shape in_shape = t.sizes(), kept = reduced_shape(t.sizes(), mask, true);
    // d prod / d x_j = product of the other elements, computed without dividing by zero:
    // with P = product of the non-zero elements and Z = product of the zero ones (0, but
    // carrying their derivative), a non-zero x_j gets P * Z / x_j; a zero x_j gets P times the
    // product of the other zeros: 1 if it is alone, the other zero if there are two (written
    // as sum(zeros) - x_j so that create_graph still sees it), 0 if more.
    autograd::record("prod", {t}, {out}, [in_shape, kept, dims](GradCtx& g) -> tensor_list {
      const Tensor x = g.saved(0);
      const Tensor z = eq(x, wrap_scalar(0.0));
      const Tensor one = wrap_scalar(1.0), zero = wrap_scalar(0.0);
      const Tensor x_safe = where(z, one, x);
      const Tensor p_nz = prod(x_safe, dims, true);
      const Tensor p_z = prod(where(z, x, one), dims, true);
      const Tensor n_z = sum(to_dtype(z, x.dtype()), dims, true);
      const Tensor others_zero =
          where(eq(n_z, one), one, where(eq(n_z, wrap_scalar(2.0)), sum(where(z, x, zero), dims, true) - x, zero));
      const Tensor dx = where(z, p_nz * others_zero, p_nz * p_z / x_safe);
      return {expand(reshape(g.grad(), kept), in_shape) * dx};
    }, {t});
  }
  return out;
}

// ---- amax / amin / max / min -----------------------------------------------------------------

namespace {

Tensor extreme(const Tensor& t, const Shape& dims, bool keepdim, bool is_max, const char* op) {
  const auto mask = reduction_mask(t, dims, op);
  check_nonempty(t, mask, dims.empty(), op);
  Tensor out = reduce_op(t, mask, keepdim, t.dtype(), 0.0, [&](const Layout& L, void* o) {
    DC_KERNEL(minmax_reduce)(t.dtype(), L.data.data_ptr(), o, nullptr, L.dims, is_max);
  });
  if (autograd::any_requires_grad({&t})) {
    // The gradient is split evenly among the elements equal to the result (NaN counts as
    // equal to a NaN result), like PyTorch's amax/amin and full max()/min().
    const Shape kept = reduced_shape(t.sizes(), mask, true);
    autograd::record(op, {t}, {out}, [kept, dims](GradCtx& g) -> tensor_list {
      const Tensor x = g.saved(0), r = reshape(g.saved(1), kept);
      const Tensor hit = logical_or(eq(x, r), logical_and(isnan(x), isnan(r)));
      const Tensor count = sum(to_dtype(hit, x.dtype()), dims, true);
      return {where(hit, reshape(g.grad(), kept) / count, zero_like_scalar())};
    }, {t, out});
  }
  return out;
}

std::pair<Tensor, Tensor> extreme_dim(const Tensor& t, int64_t dim, bool keepdim, bool is_max,
                                      const char* op) {
  const int64_t d = wrap_dim_scalar_ok(dim, t.dim(), op);
  const auto mask = reduction_mask(t, {d}, op);
  check_nonempty(t, mask, false, op);
  const Layout L = reduce_layout(t, mask);
  Tensor vbuf = Tensor::empty({L.out_numel()}, t.dtype());
  Tensor ibuf = Tensor::empty({L.out_numel()}, DType::Int64);
  if (L.out_numel() > 0)
    DC_KERNEL(minmax_reduce)(t.dtype(), L.data.data_ptr(), vbuf.data_ptr(),
                             static_cast<int64_t*>(ibuf.data_ptr()), L.dims, is_max);
  Tensor values = shape_output(vbuf, t, mask, L, keepdim);
  Tensor indices = shape_output(ibuf, t, mask, L, keepdim);
  if (autograd::any_requires_grad({&t})) {
    // The gradient goes to the selected element only: a one-hot mask along `d` built by
    // comparing positions with the indices (keeps create_graph working: it is a where()).
    const Shape kept = reduced_shape(t.sizes(), mask, true);
    const int64_t n = t.dim() == 0 ? 1 : t.sizes()[d];
    const int64_t nd = t.dim();
    autograd::record(op, {t}, {values}, [kept, n, d, nd](GradCtx& g) -> tensor_list {
      if (nd == 0) return {reshape(g.grad(), {})};
      Shape pos_shape(nd, 1);
      pos_shape[d] = n;
      const Tensor pos = reshape(arange(0, static_cast<double>(n), 1, DType::Int64), pos_shape);
      const Tensor hit = eq(pos, reshape(g.saved(0), kept));
      return {where(hit, reshape(g.grad(), kept), zero_like_scalar())};
    }, {indices});
  }
  return {values, indices};
}

Tensor arg_extreme(const Tensor& t, std::optional<int64_t> dim, bool keepdim, bool is_max,
                   const char* op) {
  DC_CHECK(t.dtype() != DType::Bool, TypeError, "[", op, "] does not support bool input");
  if (dim) {
    autograd::GradModeGuard off(false);
    return extreme_dim(t, *dim, keepdim, is_max, op).second;
  }
  DC_CHECK(t.numel() > 0, IndexError, "[", op,
           "] expected reduction dim to be specified for input.numel() == 0 (input shape ",
           t.shape_str(), ")");
  // The index is into the flattened (logical, row-major) tensor, so the data must be too.
  const Tensor x = t.is_contiguous() ? t : contiguous_clone(t);
  Tensor values = Tensor::empty({1}, t.dtype());
  Tensor index = Tensor::empty({}, DType::Int64);
  DC_KERNEL(minmax_reduce)(t.dtype(), x.data_ptr(), values.data_ptr(),
                           static_cast<int64_t*>(index.data_ptr()),
                           cpu::ReduceDims{1, t.numel(), 1}, is_max);
  if (!keepdim) return index;
  return Tensor::make_view(index.storage(), Shape(t.dim(), 1), Shape(t.dim(), 1), 0,
                           DType::Int64);
}

}  // namespace

Tensor amax(const Tensor& t, const Shape& dims, bool keepdim) {
  DC_OP_GUARD("amax", t);
  return extreme(t, dims, keepdim, true, "amax");
}
Tensor amin(const Tensor& t, const Shape& dims, bool keepdim) {
  DC_OP_GUARD("amin", t);
  return extreme(t, dims, keepdim, false, "amin");
}
Tensor max_all(const Tensor& t) {
  DC_OP_GUARD("max_all", t);
  return extreme(t, {}, false, true, "max");
}
Tensor min_all(const Tensor& t) {
  DC_OP_GUARD("min_all", t);
  return extreme(t, {}, false, false, "min");
}
std::pair<Tensor, Tensor> max_dim(const Tensor& t, int64_t dim, bool keepdim) {
  DC_OP_GUARD("max_dim", t);
  return extreme_dim(t, dim, keepdim, true, "max");
}
std::pair<Tensor, Tensor> min_dim(const Tensor& t, int64_t dim, bool keepdim) {
  DC_OP_GUARD("min_dim", t);
  return extreme_dim(t, dim, keepdim, false, "min");
}
Tensor argmax(const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
  DC_OP_GUARD("argmax", t);
  return arg_extreme(t, dim, keepdim, true, "argmax");
}
Tensor argmin(const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
  DC_OP_GUARD("argmin", t);
  return arg_extreme(t, dim, keepdim, false, "argmin");
}

// ---- var / std --------------------------------------------------------------------------------

namespace {

Tensor var_std(const Tensor& t, const Shape& dims, double correction, bool keepdim,
               bool take_sqrt) {
  const char* op = take_sqrt ? "std" : "var";
  DC_CHECK(is_floating(t.dtype()), TypeError, "[", op, "] expected a floating-point input, got ",
           dtype_name(t.dtype()), " (std and var only support floating point dtypes)");
  const auto mask = reduction_mask(t, dims, op);
  Tensor out = reduce_op(t, mask, keepdim, t.dtype(), std::numeric_limits<double>::quiet_NaN(),
                         [&](const Layout& L, void* o) {
                           DC_KERNEL(var_reduce)(t.dtype(), L.data.data_ptr(), o, L.dims, correction,
                                           take_sqrt);
                         });
  if (autograd::any_requires_grad({&t})) {
    // var' = 2 / (N - correction) * grad * (x - mean(x)); std' = var'(grad / (2 std)), with
    // the gradient at std == 0 set to 0 like PyTorch.
    const Shape kept = reduced_shape(t.sizes(), mask, true);
    const double scale = 2.0 / (static_cast<double>(reduced_count(t, mask)) - correction);
    autograd::record(op, {t}, {out}, [kept, dims, scale, take_sqrt](GradCtx& g) -> tensor_list {
      const Tensor x = g.saved(0);
      Tensor gk = reshape(g.grad(), kept);
      if (take_sqrt) {
        const Tensor r = reshape(g.saved(1), kept);
        const Tensor is_zero = eq(r, wrap_scalar(0.0));
        gk = where(is_zero, zero_like_scalar(), gk / (where(is_zero, wrap_scalar(1.0), r) * 2.0));
      }
      return {scale * gk * (x - kept_mean(x, dims))};
    }, {t, out});
  }
  return out;
}

}  // namespace

Tensor var(const Tensor& t, const Shape& dims, double correction, bool keepdim) {
  DC_OP_GUARD("var", t);
  return var_std(t, dims, correction, keepdim, false);
}
Tensor std(const Tensor& t, const Shape& dims, double correction, bool keepdim) {
  DC_OP_GUARD("std", t);
  return var_std(t, dims, correction, keepdim, true);
}

// ---- logsumexp, norm --------------------------------------------------------------------------

Tensor logsumexp(const Tensor& t, const Shape& dims, bool keepdim) {
  DC_OP_GUARD("logsumexp", t);
  // Integer inputs are promoted to the default float, like PyTorch.
  const Tensor x = is_floating(t.dtype()) ? t : to_dtype(t, kDefaultFloat);
  const auto mask = reduction_mask(x, dims, "logsumexp");
  const Shape kept = reduced_shape(x.sizes(), mask, true);
  const Shape out_shape = reduced_shape(x.sizes(), mask, keepdim);
  Tensor out;
  {
    autograd::GradModeGuard off(false);
    if (reduced_count(x, mask) == 0 || x.numel() == 0) {
      out = full(out_shape, -std::numeric_limits<double>::infinity(), x.dtype());
    } else {
      // Subtract the max so exp() cannot overflow; an infinite max (a row of -inf, or a +inf
      // element) is not subtracted, so -inf rows give -inf and +inf gives +inf, not NaN.
      const Tensor m = amax(x, dims, true);
      const Tensor m_safe = where(isinf(m), zero_like_scalar(), m);
      const Tensor s = sum(exp(x - m_safe), dims, true);
      out = contiguous_clone(reshape(log(s) + m_safe, out_shape));
    }
  }
  if (autograd::any_requires_grad({&x})) {
    autograd::record("logsumexp", {x}, {out}, [kept](GradCtx& g) -> tensor_list {
      const Tensor xs = g.saved(0), r = reshape(g.saved(1), kept);
      return {reshape(g.grad(), kept) * exp(xs - r)};
    }, {x, out});
  }
  return out;
}

Tensor norm(const Tensor& t, double p, const Shape& dims, bool keepdim) {
  DC_OP_GUARD("norm", t);
  DC_CHECK(is_floating(t.dtype()), TypeError, "[norm] expected a floating-point input, got ",
           dtype_name(t.dtype()));
  const auto mask = reduction_mask(t, dims, "norm");
  const bool p_inf = std::isinf(p);
  DC_CHECK(!(p_inf && reduced_count(t, mask) == 0 && t.numel() == 0), RuntimeError,
           "[norm] cannot compute the ", p, " norm of an empty reduction (input shape ",
           t.shape_str(), "): the operation has no identity");
  Tensor out;
  {
    autograd::GradModeGuard off(false);
    if (p == 2) out = sqrt(sum(square(t), dims, keepdim));
    else if (p == 1) out = sum(abs(t), dims, keepdim);
    else if (p_inf && p > 0) out = amax(abs(t), dims, keepdim);
    else if (p_inf) out = amin(abs(t), dims, keepdim);
    else if (p == 0) out = sum(to_dtype(ne(t, zero_like_scalar()), t.dtype()), dims, keepdim);
    else out = pow(sum(pow(abs(t), wrap_scalar(p)), dims, keepdim), wrap_scalar(1.0 / p));
  }
  if (autograd::any_requires_grad({&t})) {
    // PyTorch's norm_backward, case by case; at norm == 0 the gradient is 0 (a subgradient).
    const Shape kept = reduced_shape(t.sizes(), mask, true);
    autograd::record("norm", {t}, {out}, [kept, dims, p](GradCtx& g) -> tensor_list {
      const Tensor x = g.saved(0), nk = reshape(g.saved(1), kept);
      const Tensor gk = reshape(g.grad(), kept);
      const Tensor zero = zero_like_scalar(), one = wrap_scalar(1.0);
      const Tensor n_zero = eq(nk, zero);
      const Tensor n_safe = where(n_zero, one, nk);
      if (p == 0) return {zeros_like(x)};
      if (p == 1) return {sign(x) * gk};
      if (p == 2) return {gk * where(n_zero, zero, x / n_safe)};
      if (std::isinf(p)) {
        const Tensor ax = abs(x);
        const Tensor hit = logical_or(eq(ax, nk), isnan(ax));
        const Tensor count = sum(to_dtype(hit, x.dtype()), dims, true);
        return {sign(x) * where(hit, gk / count, zero)};
      }
      if (p < 1) {
        const Tensor x_zero = eq(x, zero);
        const Tensor scaled = sign(x) * where(x_zero, zero, pow(abs(where(x_zero, one, x)), wrap_scalar(p - 1)));
        return {scaled * gk * pow(nk, wrap_scalar(1 - p))};
      }
      const Tensor scale = where(n_zero, zero, gk / pow(n_safe, wrap_scalar(p - 1)));
      if (p < 2) return {sign(x) * pow(abs(x), wrap_scalar(p - 1)) * scale};
      return {x * pow(abs(x), wrap_scalar(p - 2)) * scale};
    }, {t, out});
  }
  return out;
}

// ---- all / any / count_nonzero / cumsum -------------------------------------------------------

Tensor all(const Tensor& t, const Shape& dims, bool keepdim) {
  DC_OP_GUARD("all", t);
  const auto mask = reduction_mask(t, dims, "all");
  return reduce_op(t, mask, keepdim, DType::Bool, 1.0, [&](const Layout& L, void* o) {
    DC_KERNEL(all_any_reduce)(t.dtype(), L.data.data_ptr(), static_cast<bool*>(o), L.dims, true);
  });
}

Tensor any(const Tensor& t, const Shape& dims, bool keepdim) {
  DC_OP_GUARD("any", t);
  const auto mask = reduction_mask(t, dims, "any");
  return reduce_op(t, mask, keepdim, DType::Bool, 0.0, [&](const Layout& L, void* o) {
    DC_KERNEL(all_any_reduce)(t.dtype(), L.data.data_ptr(), static_cast<bool*>(o), L.dims, false);
  });
}

Tensor count_nonzero(const Tensor& t, const Shape& dims) {
  DC_OP_GUARD("count_nonzero", t);
  reduction_mask(t, dims, "count_nonzero");  // validates dims with this op's name
  autograd::GradModeGuard off(false);
  const Tensor nz = t.dtype() == DType::Bool ? t : ne(t, wrap_scalar(Scalar(int64_t(0))));
  return sum(nz, dims, false, DType::Int64);
}

Tensor cumsum(const Tensor& t, int64_t dim) {
  DC_OP_GUARD("cumsum", t);
  const int64_t d = wrap_dim_scalar_ok(dim, t.dim(), "cumsum");
  const DType out_dt = is_floating(t.dtype()) ? t.dtype() : DType::Int64;
  Tensor x = t.dtype() == out_dt ? t : to_dtype(detach(t), out_dt);
  if (!x.is_contiguous()) x = contiguous_clone(x);
  // x[O, K, I] with K = the scanned dim.
  cpu::ReduceDims rd;
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i < d) rd.outer *= t.sizes()[i];
    else if (i == d) rd.reduce = t.sizes()[i];
    else rd.inner *= t.sizes()[i];
  }
  Tensor out = Tensor::empty(t.sizes(), out_dt);
  DC_KERNEL(cumsum_scan)(out_dt, x.data_ptr(), out.data_ptr(), rd);
  if (autograd::any_requires_grad({&t})) {
    // d cumsum: each input feeds every later output, so the gradient is a reversed cumsum.
    const bool scalar = t.dim() == 0;
    autograd::record("cumsum", {t}, {out}, [d, scalar](GradCtx& g) -> tensor_list {
      if (scalar) return {g.grad()};
      return {flip(cumsum(flip(g.grad(), {d}), d), {d})};
    });
  }
  return out;
}


// ---- cumprod / cummax / cummin / logcumsumexp --------------------------------------------------

namespace {

// Runs the scan kernel on t (cast to out_dt, contiguous); indices too for cummax/cummin.
std::pair<Tensor, Tensor> run_scan(cpu::ScanOp op, const Tensor& t, int64_t d, DType out_dt,
                                   bool with_indices) {
  Tensor x;
  {
    autograd::GradModeGuard off(false);
    x = t.dtype() == out_dt ? detach(t) : to_dtype(detach(t), out_dt);
    if (!x.is_contiguous()) x = contiguous_clone(x);
  }
  Tensor out = Tensor::empty(t.sizes(), out_dt);
  Tensor idx = with_indices ? Tensor::empty(t.sizes(), DType::Int64) : Tensor();
  DC_KERNEL(cum_scan)(op, out_dt, x.data_ptr(), out.data_ptr(),
                      with_indices ? static_cast<int64_t*>(idx.data_ptr()) : nullptr,
                      cpu::ReduceDims::around(t.sizes(), d));
  return {out, idx};
}

// sum_{j >= k} x[j] along d: the adjoint of cumsum.
Tensor reverse_cumsum(const Tensor& x, int64_t d) { return flip(cumsum(flip(x, {d}), d), {d}); }

// dL/dx_k = sum_{j >= k} g_j prod_{l <= j, l != k} x_l, one k at a time: O(n^2) along d but
// made of products only, so it differentiates again at zeros (Note [cumprod gradient]).
Tensor cumprod_backward_smooth(const Tensor& x, const Tensor& y, const Tensor& g, int64_t d) {
  const int64_t n = x.sizes()[d];
  tensor_list parts;
  for (int64_t k = 0; k < n; ++k) {
    // omitted[j - k] = prod_{l <= j, l != k} x_l for j >= k
    const Tensor until = k > 0 ? narrow(y, d, k - 1, 1) : ones_like(narrow(x, d, 0, 1));
    Tensor omitted = until;
    if (k + 1 < n) {
      const Tensor from = cumprod(narrow(x, d, k + 1, n - k - 1), d);
      omitted = cat({until, k > 0 ? mul(until, from) : from}, d);
    }
    parts.push_back(sum(mul(narrow(g, d, k, n - k), omitted), {d}, true));
  }
  return cat(parts, d);
}

}  // namespace

Tensor cumprod(const Tensor& t, int64_t dim) {
  DC_OP_GUARD("cumprod", t);
  const int64_t d = wrap_dim_scalar_ok(dim, t.dim(), "cumprod");
  const DType out_dt = is_floating(t.dtype()) ? t.dtype() : DType::Int64;
  Tensor out = run_scan(cpu::ScanOp::Prod, t, d, out_dt, false).first;
  if (autograd::any_requires_grad({&t})) {
    // Note [cumprod gradient]
    // dL/dx_i = sum_{j >= i} g_j out_j / x_i holds only while x_i != 0; PyTorch's three cases:
    //   - no zeros: that formula, O(n);
    //   - zeros, plain backward: along each slice let z be the first zero. Before z the formula
    //     is exact (out_j = 0 for j >= z); at z the gradient is sum_{j >= z} g_j out'_j, out'
    //     the cumprod with x_z replaced by 1; after z it is 0 (every product holding x_i holds
    //     x_z = 0 too). O(n), but its masks are constant in x, so its own derivative is wrong
    //     at zeros;
    //   - zeros, backward building a graph (create_graph): cumprod_backward_smooth, O(n^2),
    //     products only, so second derivatives are right at zeros too.
    const bool scalar = t.dim() == 0;
    autograd::record("cumprod", {t}, {out}, [d, scalar](GradCtx& g) -> tensor_list {
      const Tensor x = g.saved(0), y = g.saved(1), gy = g.grad();
      if (scalar) return {gy};
      const Tensor zero = eq(x, wrap_scalar(0.0));
      bool has_zero = false;
      if (!x.is_meta()) {  // meta tensors have no values: the shapes are the same either way
        autograd::GradModeGuard off(false);
        has_zero = on_host(any(zero)).data<bool>()[0];
      }
      if (!has_zero) return {reverse_cumsum(gy * y, d) / x};
      if (autograd::grad_enabled()) return {cumprod_backward_smooth(x, y, gy, d)};
      const Tensor zeros_so_far = cumsum(zero, d);
      const Tensor before = eq(zeros_so_far, wrap_scalar(int64_t(0)));
      const Tensor first_zero = logical_and(zero, eq(zeros_so_far, wrap_scalar(int64_t(1))));
      const Tensor one = wrap_scalar(1.0), nothing = zero_like_scalar();
      const Tensor head = where(before, reverse_cumsum(gy * y, d) / where(before, x, one), nothing);
      const Tensor y1 = cumprod(where(first_zero, one, x), d);
      return {head + where(first_zero, reverse_cumsum(gy * y1, d), nothing)};
    }, {t, out});
  }
  return out;
}

namespace {
std::pair<Tensor, Tensor> cum_extreme(const Tensor& t, int64_t dim, bool is_max) {
  const char* op = is_max ? "cummax" : "cummin";
  const int64_t d = wrap_dim_scalar_ok(dim, t.dim(), op);
  auto [out, idx] = run_scan(is_max ? cpu::ScanOp::Max : cpu::ScanOp::Min, t, d, t.dtype(), true);
  if (autograd::any_requires_grad({&t})) {
    // Each output is a copy of the input element at its index: the gradient scatters back.
    autograd::record(op, {t}, {out}, [d](GradCtx& g) -> tensor_list {
      const Tensor x = g.saved(0), i = g.saved(1);
      if (x.dim() == 0) return {g.grad()};
      return {scatter_add(zeros_like(x), d, i, g.grad())};
    }, {t, idx});
  }
  return {out, idx};
}
}  // namespace

std::pair<Tensor, Tensor> cummax(const Tensor& t, int64_t dim) {
  DC_OP_GUARD("cummax", t);
  return cum_extreme(t, dim, true);
}
std::pair<Tensor, Tensor> cummin(const Tensor& t, int64_t dim) {
  DC_OP_GUARD("cummin", t);
  return cum_extreme(t, dim, false);
}

Tensor logcumsumexp(const Tensor& t, int64_t dim) {
  DC_OP_GUARD("logcumsumexp", t);
  DC_CHECK(is_floating(t.dtype()), TypeError, "[logcumsumexp] expected a floating point input, "
           "got ", dtype_name(t.dtype()), " of shape ", t.shape_str());
  const int64_t d = wrap_dim_scalar_ok(dim, t.dim(), "logcumsumexp");
  Tensor out = run_scan(cpu::ScanOp::LogSumExp, t, d, t.dtype(), false).first;
  if (autograd::any_requires_grad({&t})) {
    // dL/dx_i = sum_{j >= i} g_j exp(x_i - out_j). Summed in log space, with the positive and
    // negative parts of g apart (logs of non-positive numbers are -inf), so nothing overflows:
    //   exp(x_i + reverse_logcumsumexp(log g+ - out))
    //     - exp(x_i + reverse_logcumsumexp(log g- - out)).
    autograd::record("logcumsumexp", {t}, {out}, [d](GradCtx& g) -> tensor_list {
      const Tensor x = g.saved(0), y = g.saved(1), gy = g.grad();
      if (x.dim() == 0) return {gy};
      const Tensor ninf = wrap_scalar(-std::numeric_limits<double>::infinity());
      const Tensor nothing = zero_like_scalar();
      // The -inf entries are set by where, after the subtraction of out: as -inf - out they
      // would pass a gradient of -1 on to out in double backward, though they do not depend
      // on it.
      auto part = [&](const Tensor& pos_mask, const Tensor& mag) {
        const Tensor lg = log(where(pos_mask, mag, wrap_scalar(1.0))) - y;
        const Tensor r = flip(logcumsumexp(flip(where(pos_mask, lg, ninf), {d}), d), {d});
        return exp(x + r);
      };
      const Tensor pos = gt(gy, nothing), neg = lt(gy, nothing);
      return {part(pos, gy) - part(neg, -gy)};
    }, {t, out});
  }
  return out;
}

}  // namespace dc::ops
