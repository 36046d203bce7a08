// Matrix products: forward through the GEMM (csrc/kernels/cpu/gemm), derivatives as products.
#include "ops/linalg.h"

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;

namespace {

// 2 * batch * M * N * K for a[(B,) M, K] @ b[(B,) K, N].
double matmul_flops(const Tensor& a, const Tensor& b) {
  const int64_t batch = a.dim() == 3 ? a.sizes()[0] : 1;
  return 2.0 * batch * a.sizes()[a.dim() - 2] * a.sizes()[a.dim() - 1] * b.sizes()[b.dim() - 1];
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  DC_CHECK(a.dtype() == b.dtype(), TypeError, "[", op, "] expected both operands to have the same "
           "dtype, but got ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
}

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("mm", a, b);
  DC_CHECK(a.dim() == 2 && b.dim() == 2, ValueError, "[mm] expected 2-D tensors, got shapes ",
           a.shape_str(), " and ", b.shape_str());
  DC_CHECK(a.sizes()[1] == b.sizes()[0], ValueError, "[matmul] shapes ", a.shape_str(), " and ",
           b.shape_str(), " cannot be multiplied: ", a.sizes()[1], " != ", b.sizes()[0]);
  check_same_dtype(a, b, "mm");
  Tensor out = Tensor::empty({a.sizes()[0], b.sizes()[1]}, a.dtype());
  dispatch::add_flops(matmul_flops(a, b));
  DC_KERNEL(matmul_into)(a, b, out, 1.0, 0.0, {});
  if (autograd::any_requires_grad({&a, &b})) {
    autograd::record(
        "mm", {a, b}, {out},
        [](GradCtx& g) -> tensor_list {
          return {g.needs(0) ? mm(g.grad(), t_(g.saved(1))) : Tensor(),
                  g.needs(1) ? mm(t_(g.saved(0)), g.grad()) : Tensor()};
        },
        {a, b});
  }
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("bmm", a, b);
  DC_CHECK(a.dim() == 3 && b.dim() == 3, ValueError, "[bmm] expected 3-D tensors, got shapes ",
           a.shape_str(), " and ", b.shape_str());
  DC_CHECK(a.sizes()[0] == b.sizes()[0], ValueError, "[bmm] batch sizes differ: ", a.shape_str(),
           " and ", b.shape_str());
  DC_CHECK(a.sizes()[2] == b.sizes()[1], ValueError, "[matmul] shapes ", a.shape_str(), " and ",
           b.shape_str(), " cannot be multiplied: ", a.sizes()[2], " != ", b.sizes()[1]);
  check_same_dtype(a, b, "bmm");
  Tensor out = Tensor::empty({a.sizes()[0], a.sizes()[1], b.sizes()[2]}, a.dtype());
  dispatch::add_flops(matmul_flops(a, b));
  DC_KERNEL(matmul_into)(a, b, out, 1.0, 0.0, {});
  if (autograd::any_requires_grad({&a, &b})) {
    autograd::record(
        "bmm", {a, b}, {out},
        [](GradCtx& g) -> tensor_list {
          return {g.needs(0) ? bmm(g.grad(), transpose(g.saved(1), 1, 2)) : Tensor(),
                  g.needs(1) ? bmm(transpose(g.saved(0), 1, 2), g.grad()) : Tensor()};
        },
        {a, b});
  }
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("matmul", a, b);
  DC_CHECK(a.dim() > 0 && b.dim() > 0, ValueError, "[matmul] both arguments need at least 1 "
           "dimension, got shapes ", a.shape_str(), " and ", b.shape_str());
  if (a.dim() == 1 && b.dim() == 1) return dot(a, b);
  if (a.dim() == 2 && b.dim() == 1) return mv(a, b);
  if (a.dim() == 1 && b.dim() == 2) return squeeze_dim(mm(unsqueeze(a, 0), b), 0);
  if (a.dim() == 2 && b.dim() == 2) return mm(a, b);
  const int64_t k_a = a.sizes().back();
  const int64_t k_b = b.dim() == 1 ? b.sizes()[0] : b.sizes()[b.dim() - 2];
  DC_CHECK(k_a == k_b, ValueError, "[matmul] shapes ", a.shape_str(), " and ", b.shape_str(),
           " cannot be multiplied: ", k_a, " != ", k_b);
  if (b.dim() <= 2) {
    // (..., n, k) @ (k, m): fold the batch into the rows of one GEMM.
    const bool vec = b.dim() == 1;
    Tensor bb = vec ? unsqueeze(b, 1) : b;
    // The row count is spelled out: with k == 0, -1 could not be inferred.
    int64_t rows = 1;
    for (int64_t i = 0; i + 1 < a.dim(); ++i) rows *= a.sizes()[i];
    Tensor flat = reshape(a, {rows, k_a});
    Tensor r = mm(flat, bb);
    Shape out_shape(a.sizes().begin(), a.sizes().end() - 1);
    if (!vec) out_shape.push_back(bb.sizes()[1]);
    return reshape(r, out_shape);
  }
  // Batched with broadcasting of the batch dims.
  Tensor aa = a.dim() == 1 ? unsqueeze(a, 0) : a;
  Shape ba(aa.sizes().begin(), aa.sizes().end() - 2), bbs(b.sizes().begin(), b.sizes().end() - 2);
  Shape batch = broadcast_shapes(ba, bbs, "matmul");
  const int64_t n = aa.sizes()[aa.dim() - 2], m = b.sizes().back();
  Shape ea = batch, eb = batch;
  ea.insert(ea.end(), {n, k_a});
  eb.insert(eb.end(), {k_b, m});
  const int64_t nb = numel_of(batch);
  Tensor a3 = reshape(expand(aa, ea), {nb, n, k_a});
  Tensor b3 = reshape(expand(b, eb), {nb, k_b, m});
  Tensor r = bmm(a3, b3);
  Shape out_shape = batch;
  if (a.dim() > 1) out_shape.push_back(n);
  out_shape.push_back(m);
  return reshape(r, out_shape);
}

Tensor mv(const Tensor& a, const Tensor& v) {
  DC_OP_GUARD("mv", a, v);
  DC_CHECK(a.dim() == 2 && v.dim() == 1, ValueError, "[mv] expected a matrix and a vector, got ",
           a.shape_str(), " and ", v.shape_str());
  DC_CHECK(a.sizes()[1] == v.sizes()[0], ValueError, "[matmul] shapes ", a.shape_str(), " and ",
           v.shape_str(), " cannot be multiplied: ", a.sizes()[1], " != ", v.sizes()[0]);
  return squeeze_dim(mm(a, unsqueeze(v, 1)), 1);
}

Tensor dot(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("dot", a, b);
  DC_CHECK(a.dim() == 1 && b.dim() == 1, ValueError, "[dot] expected 1-D tensors, got ",
           a.shape_str(), " and ", b.shape_str());
  DC_CHECK(a.sizes()[0] == b.sizes()[0], ValueError, "[dot] inconsistent tensor sizes: ",
           a.shape_str(), " and ", b.shape_str());
  check_same_dtype(a, b, "dot");
  return reshape(mm(unsqueeze(a, 0), unsqueeze(b, 1)), {});
}

Tensor outer(const Tensor& a, const Tensor& b) {
  DC_OP_GUARD("outer", a, b);
  DC_CHECK(a.dim() == 1 && b.dim() == 1, ValueError, "[outer] expected 1-D tensors, got ",
           a.shape_str(), " and ", b.shape_str());
  return mul(unsqueeze(a, 1), unsqueeze(b, 0));
}

Tensor addmm(const Tensor& input, const Tensor& a, const Tensor& b, double beta, double alpha) {
  DC_OP_GUARD("addmm", input, a, b);
  Tensor prod = mm(a, b);
  Tensor scaled = alpha == 1.0 ? prod : prod * alpha;
  if (beta == 0.0) {  // input is ignored (even NaN), but must broadcast
    broadcast_shapes(input.sizes(), scaled.sizes(), "addmm");
    return scaled;
  }
  return add(scaled, beta == 1.0 ? input : input * beta);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  DC_OP_GUARD("linear", x, weight, bias);
  // A 1-D weight is one output feature with the dim dropped: (*, in) @ (in) -> (*).
  if (weight.dim() == 1 && !bias.defined()) return matmul(x, weight);
  DC_CHECK(weight.dim() == 2, ValueError, "[linear] weight must be 2-D, got ", weight.shape_str());
  DC_CHECK(x.dim() >= 1 && x.sizes().back() == weight.sizes()[1], ValueError, "[linear] input ",
           x.shape_str(), " has ", x.dim() ? x.sizes().back() : 0, " features, expected ",
           weight.sizes()[1], " (weight ", weight.shape_str(), ")");
  check_same_dtype(x, weight, "linear");
  const int64_t in = weight.sizes()[1], outf = weight.sizes()[0];
  if (bias.defined()) {
    DC_CHECK(bias.dim() == 1 && bias.sizes()[0] == outf, ValueError, "[linear] bias ",
             bias.shape_str(), " does not match ", outf, " output features");
    check_same_dtype(x, bias, "linear");
  }
  Tensor x2;
  {
    autograd::GradModeGuard off(false);
    int64_t rows = 1;  // spelled out: with in == 0, -1 could not be inferred
    for (int64_t i = 0; i + 1 < x.dim(); ++i) rows *= x.sizes()[i];
    x2 = x.dim() == 2 ? x : reshape(x, {rows, in});
  }
  Tensor out2 = Tensor::empty({x2.sizes()[0], outf}, x.dtype());
  Tensor wt = Tensor::make_view(weight.storage(), {in, outf},
                                {weight.strides()[1], weight.strides()[0]}, weight.offset(),
                                weight.dtype());
  Tensor bias_c = bias.defined() && !bias.is_contiguous() ? contiguous_clone(bias) : Tensor();
  cpu::GemmEpilogue ep;
  if (bias.defined()) ep.bias = bias.is_contiguous() ? bias.data_ptr() : bias_c.data_ptr();
  if (is_floating(x.dtype())) {
    dispatch::add_flops(matmul_flops(x2, wt));
    DC_KERNEL(matmul_into)(x2, wt, out2, 1.0, 0.0, ep);
  } else {
    dispatch::add_flops(matmul_flops(x2, wt));
    DC_KERNEL(matmul_into)(x2, wt, out2, 1.0, 0.0, {});
    if (bias.defined()) out2 = add(out2, bias);
  }
  Shape out_shape(x.sizes().begin(), x.sizes().end() - 1);
  out_shape.push_back(outf);
  Tensor out = x.dim() == 2 ? out2
                            : Tensor::make_view(out2.storage(), out_shape,
                                                contiguous_strides(out_shape), 0, out2.dtype());
  if (autograd::any_requires_grad({&x, &weight, &bias})) {
    const Shape xs = x.sizes();
    autograd::record(
        "linear", {x, weight, bias}, {out},
        [xs, in, outf](GradCtx& g) -> tensor_list {
          Tensor g2 = reshape(g.grad(), {-1, outf});
          Tensor gx, gw, gb;
          if (g.needs(0)) gx = reshape(mm(g2, g.saved(1)), xs);
          if (g.needs(1)) gw = mm(t_(g2), reshape(g.saved(0), {-1, in}));
          if (g.needs(2)) gb = sum(g2, {0});
          return {gx, gw, gb};
        },
        {x, weight});
  }
  return out;
}

}  // namespace dc::ops
