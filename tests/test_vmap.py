"""deepcore.func.vmap against torch.func.vmap: batching rules, in_dims/out_dims, nesting,
per-example gradients, randomness, the loop fallback and the errors."""
import warnings

import numpy as np
import optree
import pytest

import deepcore as dc
import deepcore.nn.functional as F
from deepcore.func import functional_call, grad, vjp, vmap

torch = pytest.importorskip("torch")
tfunc = torch.func
TF = torch.nn.functional

RNG = np.random.default_rng(0)


def _arr(*shape, positive=False):
    a = RNG.standard_normal(shape).astype(np.float32)
    return np.abs(a) + 0.1 if positive else a


def _to_np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x.detach().numpy())


def _close(ours, theirs, tol=1e-4):
    lo, lt = (list(v) if isinstance(v, (tuple, list)) else [v] for v in (ours, theirs))
    assert len(lo) == len(lt)
    for a, b in zip(lo, lt):
        a, b = _to_np(a), _to_np(b)
        assert a.shape == b.shape, (a.shape, b.shape)
        if a.dtype == np.bool_ or b.dtype.kind in "iub":
            assert (a == b).all()
        else:
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def check(dc_fn, torch_fn, arrays, in_dims=0, out_dims=0, tol=1e-4):
    """vmap(dc_fn) and torch.func.vmap(torch_fn) on the same numpy inputs."""
    ours = vmap(dc_fn, in_dims=in_dims, out_dims=out_dims)(*[dc.tensor(a) for a in arrays])
    theirs = tfunc.vmap(torch_fn, in_dims=in_dims, out_dims=out_dims)(
        *[torch.tensor(a) for a in arrays])
    _close(ours, theirs, tol)


# ---- ops: (name, deepcore fn, torch fn, per-example input shapes) ----------------------------

UNARY = ["exp", "tanh", "sigmoid", "relu", "sin", "abs", "neg", "square", "erf",
         "floor", "sign", "reciprocal", "expm1"]


@pytest.mark.parametrize("name", UNARY)
def test_unary(name):
    check(getattr(dc, name), getattr(torch, name), [_arr(4, 3, 5)])


def test_unary_positive_and_nn():
    check(lambda x: dc.log(x) + dc.sqrt(x) + dc.rsqrt(x), lambda x: torch.log(x) +
          torch.sqrt(x) + torch.rsqrt(x), [_arr(4, 6, positive=True)])
    check(lambda x: F.gelu(x) + F.softplus(x) + F.leaky_relu(x, 0.2) + F.elu(x) +
          F.hardtanh(x) + x.clamp(min=-0.5, max=0.5),
          lambda x: TF.gelu(x) + TF.softplus(x) + TF.leaky_relu(x, 0.2) + TF.elu(x) +
          TF.hardtanh(x) + x.clamp(min=-0.5, max=0.5), [_arr(3, 7)])


BINARY = [
    ("add", lambda a, b: a + b * 2 - 1),
    ("mul", lambda a, b: a * b / (b.abs() + 1)),
    ("pow", lambda a, b: a.abs() ** 2 + (a.abs() + 1) ** b),
    ("maximum", lambda a, b: (a.maximum(b), a.minimum(b))),
    ("atan2", lambda a, b: a.atan2(b)),
    ("compare", lambda a, b: ((a > b), (a <= b), (a == a))),
]


@pytest.mark.parametrize("name,fn", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shapes,in_dims", [
    (((4, 3), (4, 3)), 0),
    (((4, 3), (3,)), (0, None)),          # unbatched operand of lower rank
    (((4, 3), (4, 2, 3)), 0),             # batched operand of lower rank
    (((4,), (4, 2, 3)), 0),               # logical scalar against a matrix
    (((3, 4), (2, 3)), (1, None)),
])
def test_binary_broadcast(name, fn, shapes, in_dims):
    check(fn, fn, [_arr(*s) for s in shapes], in_dims=in_dims)


def test_where_and_masked_fill():
    check(lambda c, a, b: dc.where(c > 0, a, b), lambda c, a, b: torch.where(c > 0, a, b),
          [_arr(5, 3), _arr(5, 1), _arr(3)], in_dims=(0, 0, None))
    check(lambda x, v: x.masked_fill(x > 0, 1.5) + dc.where(x > 0, x, v),
          lambda x, v: x.masked_fill(x > 0, 1.5) + torch.where(x > 0, x, v),
          [_arr(4, 3), _arr(4)])


MATMUL = [
    ("mat@mat", ((4, 3, 5), (5, 2)), (0, None)),
    ("mat@mat both", ((4, 3, 5), (4, 5, 2)), 0),
    ("vec@mat", ((4, 5), (5, 2)), (0, None)),
    ("mat@vec", ((3, 5), (4, 5)), (None, 0)),
    ("vec@vec", ((4, 5), (4, 5)), 0),
    ("bmat@mat", ((4, 2, 3, 5), (5, 2)), (0, None)),
    ("mat@bmat", ((3, 5), (4, 2, 5, 6)), (None, 0)),
    ("vec@bmat", ((4, 5), (2, 5, 6)), (0, None)),
]


@pytest.mark.parametrize("name,shapes,in_dims", MATMUL, ids=[m[0] for m in MATMUL])
def test_matmul(name, shapes, in_dims):
    check(lambda a, b: a @ b, lambda a, b: a @ b, [_arr(*s) for s in shapes], in_dims=in_dims)


def test_mm_mv_dot_outer_bmm_addmm_linear():
    check(dc.mm, torch.mm, [_arr(4, 3, 5), _arr(4, 5, 2)])
    check(dc.mv, torch.mv, [_arr(3, 5), _arr(4, 5)], in_dims=(None, 0))
    check(dc.dot, torch.dot, [_arr(4, 5), _arr(5)], in_dims=(0, None))
    check(dc.outer, torch.outer, [_arr(4, 3), _arr(4, 5)])
    check(dc.bmm, torch.bmm, [_arr(4, 2, 3, 5), _arr(2, 5, 6)], in_dims=(0, None))
    check(lambda i, a, b: dc.addmm(i, a, b, beta=0.5, alpha=2.0),
          lambda i, a, b: torch.addmm(i, a, b, beta=0.5, alpha=2.0),
          [_arr(2), _arr(4, 3, 5), _arr(5, 2)], in_dims=(None, 0, None))
    check(F.linear, TF.linear, [_arr(4, 5), _arr(3, 5), _arr(3)], in_dims=(0, None, None))
    check(F.linear, TF.linear, [_arr(2, 5), _arr(4, 3, 5), _arr(4, 3)], in_dims=(None, 0, 0))


REDUCTIONS = [
    ("sum", lambda x: (x.sum(), x.sum(-1), x.sum((0, 2), keepdim=True))),
    ("mean", lambda x: (x.mean(), x.mean(1), x.mean(-1, keepdim=True))),
    ("prod", lambda x: x.prod(1)),
    ("amax", lambda x: (x.amax(-1), x.amin(0))),
    ("max", lambda x: (x.max(), x.max(-1)[0], x.max(1)[1], x.min(0)[0], x.min())),
    ("argmax", lambda x: (x.argmax(-1), x.argmin(1))),
    ("var", lambda x: (x.var(-1), x.std(0), x.var())),
    ("logsumexp", lambda x: x.logsumexp(-1)),
    ("norm", lambda x: (x.norm(), x.norm(dim=-1))),
    ("cumsum", lambda x: x.cumsum(1)),
]


@pytest.mark.parametrize("name,fn", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reductions(name, fn):
    check(fn, fn, [_arr(4, 3, 5, 2)])


def test_softmax():
    check(lambda x: (dc.softmax(x, -1), dc.log_softmax(x, 0)),
          lambda x: (torch.softmax(x, -1), torch.log_softmax(x, 0)), [_arr(4, 3, 5)])


SHAPE = [
    ("reshape", lambda x: (x.reshape(15), x.reshape(-1, 3), x.view(5, 3))),
    ("permute", lambda x: (x.permute(1, 0), x.transpose(0, 1), x.t(), x.T)),
    ("unsqueeze", lambda x: (x.unsqueeze(0), x.unsqueeze(-1), x[None].squeeze(0),
                             x.unsqueeze(1).squeeze())),
    ("expand", lambda x: (x.unsqueeze(1).expand(3, 4, 5), x.expand(2, 3, 5))),
    ("flatten", lambda x: x.unsqueeze(0).flatten()),
    ("select", lambda x: (x[0], x[:, 1], x[1:3], x[:, ::2], x.narrow(1, 1, 2))),
    ("split", lambda x: (*x.split(2, 1), *x.chunk(3, 0), *x.unbind(1))),
    ("flip", lambda x: x.flip([0])),
    ("contiguous", lambda x: (x.t().contiguous(), x.clone(), x.detach())),
]


@pytest.mark.parametrize("name,fn", SHAPE, ids=[s[0] for s in SHAPE])
def test_shape_ops(name, fn):
    check(fn, fn, [_arr(4, 3, 5)])  # the same method calls in both libraries


def test_cat_stack():
    check(lambda x: (dc.cat([x, x * 2], 1), dc.stack([x, x + 1], 0), dc.stack([x, x], -1)),
          lambda x: (torch.cat([x, x * 2], 1), torch.stack([x, x + 1], 0),
                     torch.stack([x, x], -1)), [_arr(4, 3, 5)])


def test_cat_with_unbatched_and_dtype_conversion():
    check(lambda x, y: dc.cat([x, y], 0).to(dc.float64).float(),
          lambda x, y: torch.cat([x, y], 0).double().float(), [_arr(4, 3), _arr(2)],
          in_dims=(0, None))


def test_index_select_gather():
    idx = np.array([2, 0, 1])
    check(lambda x: x.index_select(1, dc.tensor(idx)),
          lambda x: x.index_select(1, torch.tensor(idx)), [_arr(4, 3, 3)])
    check(lambda x, i: x.gather(1, i), lambda x, i: x.gather(1, i),
          [_arr(4, 3, 5), RNG.integers(0, 5, (4, 3, 2))])
    check(lambda x: x.topk(2)[0] + x.sort(-1)[0][..., :2],
          lambda x: x.topk(2)[0] + x.sort(-1)[0][..., :2], [_arr(4, 3, 5)])


def test_advanced_indexing():
    i1, i2 = np.array([0, 2]), np.array([1, 4])
    for f in (lambda x, m: x[m.tensor(i1)], lambda x, m: x[:, m.tensor(i2)],
              lambda x, m: x[m.tensor(i1), :, m.tensor(i1)],  # separated: dims go first
              lambda x, m: x[:, m.tensor(i1), m.tensor(i2)]):
        check(lambda x: f(x, dc), lambda x: f(x, torch), [_arr(4, 3, 5, 6)])


def test_index_assignment():
    def f(x, v, m):
        x = x.clone()
        x[m.tensor([0, 2])] = 1.0
        x[:, 1] = v[0]
        x[m.tensor([0, 1]), m.tensor([1, 2])] += v[1:3]
        return x
    check(lambda x, v: f(x, v, dc), lambda x, v: f(x, v, torch), [_arr(4, 3, 4), _arr(4, 3)])
    check(lambda x, v: f(x, v, dc), lambda x, v: f(x, v, torch), [_arr(4, 3, 4), _arr(3)],
          in_dims=(0, None))


def test_conv_pool_layer_norm():
    x, w, b = _arr(5, 2, 3, 8, 8), _arr(4, 3, 3, 3), _arr(4)
    check(lambda x, w, b: F.max_pool2d(F.conv2d(x, w, b, padding=1), 2),
          lambda x, w, b: TF.max_pool2d(TF.conv2d(x, w, b, padding=1), 2), [x, w, b],
          in_dims=(0, None, None))
    check(lambda x, w: F.avg_pool2d(F.conv2d(x, w), 2),  # one example is an unbatched (C,H,W)
          lambda x, w: TF.avg_pool2d(TF.conv2d(x, w), 2), [x[:, 0], w], in_dims=(0, None))
    check(lambda x: F.layer_norm(x, [6]), lambda x: TF.layer_norm(x, [6]), [_arr(4, 3, 6)])


def test_norms_attention_and_index_ops():
    x, w, b = _arr(4, 6, 3, 5), _arr(3), _arr(3)
    check(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
          lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True), [x, w, b],
          in_dims=(0, None, None))
    rm, rv = _arr(3), _arr(3, positive=True)
    check(lambda x, m, v: F.batch_norm(x, m, v, training=False),
          lambda x, m, v: TF.batch_norm(x, m, v, training=False), [x, rm, rv],
          in_dims=(0, None, None))
    check(lambda x: (F.group_norm(x, 1), F.instance_norm(x)),
          lambda x: (TF.group_norm(x, 1), TF.instance_norm(x)), [x])
    q = _arr(4, 2, 5, 8)
    check(F.scaled_dot_product_attention, TF.scaled_dot_product_attention, [q, q * 2, q + 1])
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
          lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True),
          [q, q[0], q[0]], in_dims=(0, None, None))
    check(lambda x, i: dc.take_along_dim(x, i, 1), lambda x, i: torch.take_along_dim(x, i, 1),
          [_arr(4, 3, 5), RNG.integers(0, 5, (4, 3, 2))])
    check(lambda x, s: x.index_add(1, dc.tensor([0, 2]), s),
          lambda x, s: x.index_add(1, torch.tensor([0, 2]), s), [_arr(4, 3, 5), _arr(4, 3, 2)])


def test_losses():
    y = RNG.integers(0, 5, (6, 3))
    for red in ("mean", "sum", "none"):
        check(lambda x, t: F.cross_entropy(x, t, reduction=red),
              lambda x, t: TF.cross_entropy(x, t, reduction=red), [_arr(6, 3, 5), y])
        check(lambda x, t: F.nll_loss(F.log_softmax(x, -1), t, reduction=red),
              lambda x, t: TF.nll_loss(TF.log_softmax(x, -1), t, reduction=red),
              [_arr(6, 3, 5), y])
        check(lambda x, t: F.mse_loss(x, t, reduction=red),
              lambda x, t: TF.mse_loss(x, t, reduction=red), [_arr(6, 4), _arr(4)],
              in_dims=(0, None))
    # one example is a single (C,) row; ignore_index, class weights and label smoothing
    y1 = np.array([1, 2, 0, 4, 3, 1])
    check(lambda x, t: F.cross_entropy(x, t), lambda x, t: TF.cross_entropy(x, t),
          [_arr(6, 5), y1])
    yi = y.copy()
    yi[0, 1] = -100
    w = np.abs(_arr(5)) + 0.5
    check(lambda x, t, w: F.cross_entropy(x, t, weight=w),
          lambda x, t, w: TF.cross_entropy(x, t, weight=w), [_arr(6, 3, 5), yi, w],
          in_dims=(0, 0, None))
    check(lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
          lambda x, t: TF.cross_entropy(x, t, label_smoothing=0.1), [_arr(6, 3, 5), yi])


def test_factories_inside():
    check(lambda x: x + dc.zeros_like(x) + dc.ones(x.shape[-1]) * dc.arange(3.0),
          lambda x: x + torch.zeros_like(x) + torch.ones(x.shape[-1]) * torch.arange(3.0),
          [_arr(4, 3)])


def test_inplace_on_batched():
    a = _arr(4, 3)
    x = dc.tensor(a)
    out = vmap(lambda x: x.clone().mul_(2).add_(1))(x)
    _close(out, torch.tensor(a) * 2 + 1)
    np.testing.assert_array_equal(x.numpy(), a)  # the input untouched
    with pytest.raises(ValueError, match="in-place"):
        vmap(lambda x, y: y.add_(x), in_dims=(0, None))(x, dc.zeros(3))


# ---- in_dims / out_dims ------------------------------------------------------------------------

def test_in_dims_negative_and_none():
    check(lambda x, y: x * y, lambda x, y: x * y, [_arr(3, 5), _arr(3)], in_dims=(-1, None))
    check(lambda x, y: x + y.sum(), lambda x, y: x + y.sum(), [_arr(3, 5), _arr(2, 5)],
          in_dims=(1, 1), out_dims=-1)


def test_pytree_inputs_and_outputs():
    p = {"a": _arr(4, 3), "b": _arr(3)}
    xs = _arr(5, 3)

    def f(p, x, scale):
        return {"y": p["a"] @ x * scale, "z": (x.sum(), p["b"] * 2)}

    ours = vmap(f, in_dims=({"a": None, "b": 0}, 0, None), out_dims=({"y": 1, "z": 0}))(
        {"a": dc.tensor(p["a"]), "b": dc.tensor(np.stack([p["b"]] * 5))}, dc.tensor(xs), 3.0)
    theirs = tfunc.vmap(f, in_dims=({"a": None, "b": 0}, 0, None), out_dims=({"y": 1, "z": 0}))(
        {"a": torch.tensor(p["a"]), "b": torch.tensor(np.stack([p["b"]] * 5))},
        torch.tensor(xs), 3.0)
    _close(ours["y"], theirs["y"])
    _close(ours["z"], theirs["z"])


def test_out_dims_none_and_unbatched_output():
    x = dc.tensor(_arr(4, 3))
    c = dc.tensor(_arr(3))
    y, k = vmap(lambda x: (x * 2, c + 1), out_dims=(0, None))(x)
    assert tuple(y.shape) == (4, 3) and tuple(k.shape) == (3,)
    k = vmap(lambda x: c + 1)(x)  # unbatched output with an int out_dim: expanded
    assert tuple(k.shape) == (4, 3)
    with pytest.raises(ValueError, match="out_dim"):
        vmap(lambda x: x * 2, out_dims=None)(x)


def test_kwargs_not_mapped_and_cache():
    calls = []

    def f(x, *, bias):
        calls.append(1)
        return x + bias

    g = vmap(f)
    x, b = dc.tensor(_arr(4, 3)), dc.tensor(_arr(3))
    for _ in range(3):
        _close(g(x, bias=b), torch.tensor(x.numpy()) + torch.tensor(b.numpy()))
    assert len(calls) == 1  # traced once, replayed after
    g(dc.tensor(_arr(6, 3)), bias=b)  # another batch size: same trace
    assert len(calls) == 1
    g(dc.tensor(_arr(6, 2)), bias=dc.tensor(_arr(2)))
    assert len(calls) == 2


def test_module_guards_retrace():
    m = dc.nn.Sequential(dc.nn.Linear(3, 3), dc.nn.Dropout(0.5))
    f = vmap(m, randomness="different")
    x = dc.randn(4, 3)
    f(x)
    m.eval()  # the cached graph has dropout in training mode: traced again
    _close(f(x), m(x))
    m[0].weight = dc.nn.Parameter(dc.zeros(3, 3))  # a new parameter object: traced again
    _close(f(x), m(x))


def test_writes_through_views():
    def g(t):
        t.view(2, 2).add_(1)
        t[0].mul_(3)
        return t
    x = dc.zeros(3, 4)
    _close(vmap(g)(x), torch.tensor([[3.0, 1, 1, 1]] * 3))
    _close(x, torch.tensor([[3.0, 1, 1, 1]] * 3))  # the caller's tensor, as in eager


def test_chunk_size():
    check_x = _arr(7, 3)
    out = vmap(lambda x: dc.tanh(x).sum(), chunk_size=3)(dc.tensor(check_x))
    _close(out, torch.tanh(torch.tensor(check_x)).sum(-1))


# ---- composition ----------------------------------------------------------------------------

def test_nested_vmap():
    a, b = _arr(2, 3, 4), _arr(3, 4, 5)

    def f(x, y):
        return (x @ y).sum() + x.mean()

    ours = vmap(vmap(f, in_dims=(0, None)), in_dims=(None, 0))(dc.tensor(a), dc.tensor(b))
    theirs = tfunc.vmap(tfunc.vmap(f, in_dims=(0, None)), in_dims=(None, 0))(
        torch.tensor(a), torch.tensor(b))
    _close(ours, theirs)
    check(vmap(vmap(dc.sin)), tfunc.vmap(tfunc.vmap(torch.sin)), [_arr(2, 3, 4)])


def _mlp_loss(p, x, y):
    h = F.relu(F.linear(x, p["w1"], p["b1"]))
    return F.cross_entropy(F.linear(h, p["w2"], p["b2"]).unsqueeze(0), y.unsqueeze(0))


def test_per_example_gradients():
    p = {"w1": dc.randn(8, 4), "b1": dc.randn(8), "w2": dc.randn(3, 8), "b2": dc.randn(3)}
    xs, ys = dc.randn(6, 4), dc.tensor([0, 1, 2, 0, 1, 2])
    per = vmap(grad(_mlp_loss), in_dims=(None, 0, 0))(p, xs, ys)
    for i in range(6):
        gi = grad(_mlp_loss)(p, xs[i], ys[i])
        for k in p:
            assert tuple(per[k].shape) == (6,) + tuple(p[k].shape)
            np.testing.assert_allclose(per[k][i].numpy(), gi[k].numpy(), rtol=1e-5, atol=1e-6)
    assert all(t.grad is None for t in p.values())


def test_per_example_gradients_match_torch():
    p = {k: _arr(*s) for k, s in {"w1": (8, 4), "b1": (8,), "w2": (3, 8), "b2": (3,)}.items()}
    xs, ys = _arr(5, 4), RNG.integers(0, 3, 5)

    def tloss(p, x, y):
        h = TF.relu(TF.linear(x, p["w1"], p["b1"]))
        return TF.cross_entropy(TF.linear(h, p["w2"], p["b2"]).unsqueeze(0), y.unsqueeze(0))

    ours = vmap(grad(_mlp_loss), in_dims=(None, 0, 0))(
        {k: dc.tensor(v) for k, v in p.items()}, dc.tensor(xs), dc.tensor(ys))
    theirs = tfunc.vmap(tfunc.grad(tloss), in_dims=(None, 0, 0))(
        {k: torch.tensor(v) for k, v in p.items()}, torch.tensor(xs), torch.tensor(ys))
    for k in p:
        _close(ours[k], theirs[k], tol=1e-5)


def test_per_example_gradients_of_a_module():
    m = dc.nn.Sequential(dc.nn.Linear(4, 8), dc.nn.Tanh(), dc.nn.Linear(8, 3))
    params = {k: v.detach() for k, v in m.named_parameters()}

    def loss(p, x, y):
        out = functional_call(m, p, (x.unsqueeze(0),))
        return F.cross_entropy(out, y.unsqueeze(0))

    xs, ys = dc.randn(7, 4), dc.tensor([0, 1, 2, 2, 1, 0, 1])
    per = vmap(grad(loss), in_dims=(None, 0, 0))(params, xs, ys)
    for i in (0, 6):
        gi = grad(loss)(params, xs[i], ys[i])
        for k in params:
            np.testing.assert_allclose(per[k][i].numpy(), gi[k].numpy(), rtol=1e-5, atol=1e-6)


def test_jacobian_rows_through_vjp():
    x = dc.tensor(_arr(3))
    _, vjp_fn = vjp(lambda x: dc.sin(x) * 2, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one backward pass per row (loop fallback)
        jac = vmap(vjp_fn)(dc.eye(3))[0]
    np.testing.assert_allclose(jac.numpy(), np.diag(2 * np.cos(x.numpy())), atol=1e-6)


def test_grad_wrt_a_captured_tensor():
    w = dc.tensor(_arr(3)).requires_grad_()
    x = dc.tensor(_arr(4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one backward pass per example (loop fallback)
        g = vmap(lambda x: dc.autograd.grad((x * w).sin().sum(), [w])[0])(x)
    ref = [dc.autograd.grad((x[i] * w).sin().sum(), [w])[0] for i in range(4)]
    _close(g, torch.tensor(np.stack([r.numpy() for r in ref])), tol=1e-6)


def test_jit_of_vmap():
    f = dc.jit(vmap(lambda x, w: dc.tanh(x @ w).sum(), in_dims=(0, None)))
    x, w = dc.tensor(_arr(5, 3)), dc.tensor(_arr(3, 4))
    for _ in range(3):
        out = f(x, w)
    _close(out, torch.tanh(torch.tensor(x.numpy()) @ torch.tensor(w.numpy())).sum(-1))
    assert f.num_traces == 1


def test_nested_vmap_of_grad_matches_torch():
    def loss(p, x, y, m):
        fm = F if m is dc else TF
        h = fm.relu(fm.linear(x, p["w1"], p["b1"]))
        z = fm.linear(h, p["w2"]).unsqueeze(0)
        return (fm.cross_entropy(z, y.unsqueeze(0), label_smoothing=0.1) + (h ** 2).mean() +
                m.softmax(z, -1).var())

    p = {"w1": _arr(8, 4), "b1": _arr(8), "w2": _arr(3, 8)}
    xs, ys = _arr(2, 5, 4), RNG.integers(0, 3, (2, 5))
    dims = (None, 0, 0)
    ours = vmap(vmap(grad(lambda p, x, y: loss(p, x, y, dc)), in_dims=dims), in_dims=dims)(
        {k: dc.tensor(v) for k, v in p.items()}, dc.tensor(xs), dc.tensor(ys))
    theirs = tfunc.vmap(tfunc.vmap(tfunc.grad(lambda p, x, y: loss(p, x, y, torch)),
                                   in_dims=dims), in_dims=dims)(
        {k: torch.tensor(v) for k, v in p.items()}, torch.tensor(xs), torch.tensor(ys))
    for k in p:
        _close(ours[k], theirs[k], tol=1e-5)


def test_grad_of_vmap():
    w = dc.tensor(_arr(3)).requires_grad_()
    x = dc.tensor(_arr(5, 3))
    g = grad(lambda w: vmap(lambda x: (x * w).sin().sum(), in_dims=0)(x).sum())(w)
    tw = torch.tensor(w.detach().numpy()).requires_grad_()
    torch.sin(torch.tensor(x.numpy()) * tw).sum().backward()
    _close(g, tw.grad)


# ---- randomness -----------------------------------------------------------------------------

def test_randomness_modes():
    x = dc.zeros(6, 200)
    with pytest.raises(ValueError, match="random"):
        vmap(lambda x: x + dc.randn(200))(x)
    with pytest.raises(ValueError, match="random"):
        vmap(lambda x: F.dropout(x, 0.5))(x)
    same = vmap(lambda x: x + dc.randn(200), randomness="same")(x).numpy()
    assert (same == same[0]).all()
    diff = vmap(lambda x: x + dc.randn(200), randomness="different")(x).numpy()
    assert not (diff == diff[0]).all(axis=1)[1:].any()
    nested = vmap(vmap(lambda x: x + dc.randn(()), randomness="different"),
                  randomness="different")(dc.zeros(3, 4)).numpy()
    assert len(np.unique(nested)) == 12
    ones = dc.ones(6, 200)
    d_same = vmap(lambda x: F.dropout(x, 0.5), randomness="same")(ones).numpy()
    assert (d_same == d_same[0]).all() and set(np.unique(d_same)) <= {0.0, 2.0}
    d_diff = vmap(lambda x: F.dropout(x, 0.5), randomness="different")(ones).numpy()
    assert not (d_diff == d_diff[0]).all(axis=1)[1:].any()
    ints = vmap(lambda x: x + dc.randint(0, 1000, (200,)), randomness="different")(
        dc.zeros(6, 200, dtype=dc.int64)).numpy()
    assert not (ints == ints[0]).all(axis=1)[1:].any()
    probs = dc.full((6, 200), 0.5)
    coins = vmap(dc.bernoulli, randomness="same")(probs).numpy()
    assert (coins == coins[0]).all()
    coins = vmap(dc.bernoulli, randomness="different")(probs).numpy()
    assert not (coins == coins[0]).all(axis=1)[1:].any()
    # without random ops, eval-mode dropout is fine under 'error'
    _close(vmap(lambda x: F.dropout(x, 0.5, training=False))(ones), torch.ones(6, 200))


# ---- fallback -------------------------------------------------------------------------------

def test_fallback_warns_once_and_is_right():
    from deepcore.func import _vmap
    _vmap._warned_ops.discard("_cummax")
    a = _arr(4, 3, 5)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = vmap(lambda x: dc.cummax(x, 1)[0] * 2)(dc.tensor(a))
        vmap(lambda x: dc.cummax(x, 0)[0])(dc.tensor(a))
    msgs = [str(w.message) for w in rec if "no batching rule" in str(w.message)]
    assert len(msgs) == 1 and "'_cummax'" in msgs[0] and "loop" in msgs[0]
    _close(out, torch.cummax(torch.tensor(a), 2)[0] * 2)


# ---- errors ---------------------------------------------------------------------------------

def test_errors():
    x, y = dc.randn(3, 4), dc.randn(5, 4)
    with pytest.raises(ValueError, match=r"same size in the mapped dimension.*\[3, 5\]"):
        vmap(lambda a, b: a + b)(x, y)
    with pytest.raises(ValueError, match=r"in_dim=2 for input 0.*dimensionality 2"):
        vmap(lambda a: a, in_dims=2)(x)
    with pytest.raises(ValueError, match="in_dims"):
        vmap(lambda a, b: a + b, in_dims=(0,))(x, x)
    with pytest.raises(ValueError, match="non-Tensor"):
        vmap(lambda a, n: a * n, in_dims=(0, 0))(x, 3)
    with pytest.raises(ValueError, match="at least one input"):
        vmap(lambda a: a, in_dims=None)(x)
    with pytest.raises(ValueError, match="randomness"):
        vmap(lambda a: a, randomness="sometimes")
    with pytest.raises(dc.GraphBreakError, match="vmap"):
        vmap(lambda a: a * 2 if a.sum().item() > 0 else a)(x)


# ---- the OpInfo database --------------------------------------------------------------------

def _same(a, b) -> bool:
    la, lb = optree.tree_leaves(a, none_is_leaf=True), optree.tree_leaves(b, none_is_leaf=True)
    return len(la) == len(lb) and all(
        not isinstance(x, dc.Tensor) or np.array_equal(x.detach().numpy(), y.detach().numpy(),
                                                       equal_nan=True) for x, y in zip(la, lb))


def _opinfo_vmap(info, sample, rng, only_first, B=3):
    """vmap of the op over float inputs batched along a new dim 0 (example 0 the sample, the
    others scaled by 0.9..1.1 so domains hold) against the op run on each example. With
    ``only_first``, the other float inputs stay unbatched (in_dims None)."""
    from helpers import put_tensors, tensor_paths
    from test_ops import Built
    d = Built(dc, info, sample)
    ints = only_first == "ints"
    only_first = only_first is True
    leaves = tensor_paths(d, lambda path, x: ints or x.dtype.is_floating_point)
    if not leaves:
        return "no float input"
    paths = [p for p, _ in leaves]

    def fd(*xs):
        a, k = put_tensors(d, paths, [x.clone() if info.inplace else x for x in xs])
        return info.op(*a, **k)

    ex = [x for _, x in leaves]
    if not _same(fd(*ex), fd(*ex)):
        return "random"
    batched = [dc.stack([x] + [x * dc.tensor(rng.uniform(0.9, 1.1, tuple(x.shape)).astype(
        np.float32)) if x.dtype.is_floating_point else x.clone() for _ in range(B - 1)])
        if k == 0 or not only_first else x for k, x in enumerate(ex)]
    in_dims = tuple(0 if k == 0 or not only_first else None for k in range(len(ex)))
    try:
        ref = [fd(*[x[i] if d == 0 else x for x, d in zip(batched, in_dims)])
               for i in range(B)]
    except ValueError:
        return "perturbed example out of the op's domain"
    if any(not isinstance(v, dc.Tensor) for v in optree.tree_leaves(ref[0], none_is_leaf=True)):
        return "non-tensor output"
    try:
        ours = vmap(fd, in_dims=in_dims)(*batched)
    except ValueError as e:
        if "random operation" in str(e):
            return "random"
        raise
    lo = optree.tree_leaves(ours, none_is_leaf=True)
    per = [optree.tree_leaves(r, none_is_leaf=True) for r in ref]
    for k, o in enumerate(lo):
        want = np.stack([p[k].detach().numpy() for p in per])
        got = o.detach().numpy()
        assert got.shape == want.shape, f"{info.name}: shape {got.shape} != {want.shape}"
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, equal_nan=True,
                                   err_msg=f"{info.name} {sample!r}")
    return "ok"


def test_opinfo_vmap(capsys):
    """vmap against a loop over examples for every float32 OpInfo sample (two an entry), with
    every float input batched, with only the first, and with integer inputs (indices, targets)
    batched too; ops that fall back to the loop are listed, not failed."""
    from opinfo import OPS
    from test_ops import REGISTRY, _samples
    rng = np.random.default_rng(5)
    counts, failures, fallbacks = {}, [], set()
    from deepcore.func import _vmap
    warned = set(_vmap._warned_ops)
    _vmap._warned_ops.clear()  # so every op that falls back warns here once
    skipped = {}
    for info in OPS:
        if dc.float32 not in info.dtypes or REGISTRY[info.name]["family"] == "optim":
            continue  # optimizer steps write .grad and state: not functions of one example
        samples = [s for s in _samples(info, dc.float32) if s.check is None and not s.xfail][:2]
        for sample, only_first in [(s, f) for s in samples for f in (False, True, "ints")]:
            with warnings.catch_warnings(record=True) as rec:
                warnings.simplefilter("always")
                try:
                    res = _opinfo_vmap(info, sample, rng, only_first)
                except dc.GraphBreakError:
                    res = "graph break"
                except AssertionError as e:
                    failures.append(f"{info.name} {sample!r} {only_first}: {str(e)[:300]}")
                    break
                except Exception as e:  # noqa: BLE001  (reported below with the op's name)
                    failures.append(f"{info.name} {sample!r} {only_first}: "
                                    f"{type(e).__name__}: {str(e)[:300]}")
                    break
            fallbacks.update(str(w.message).split("'")[1] for w in rec
                             if "no batching rule" in str(w.message))
            counts[res] = counts.get(res, 0) + 1
            if res != "ok":
                skipped.setdefault(res, set()).add(info.name)
    _vmap._warned_ops.update(warned)
    with capsys.disabled():
        print(f"\n[opinfo vmap] results: {counts}")
        print(f"[opinfo vmap] skipped: { {k: sorted(v) for k, v in skipped.items()} }")
        print(f"[opinfo vmap] loop fallback ({len(fallbacks)}): {sorted(fallbacks)}")
        for f in failures:
            print("[opinfo vmap] FAIL", f)
    assert not failures, f"{len(failures)} vmap mismatches: " + "\n".join(failures)
