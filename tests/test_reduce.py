"""Reductions against PyTorch: forward and backward over dims / keepdim / layouts / dtypes /
shapes (size-1 and size-0 dims), finite-difference gradchecks, ties, numerics, bad input."""
import math

import numpy as np
import pytest
import torch

import deepcore as dc

SHAPES = [(), (7,), (3, 5), (2, 3, 4), (4, 1, 5), (3, 0, 2), (1, 1)]
LAYOUTS = ["contiguous", "transposed", "sliced", "expanded"]


def dims_for(ndim, multi=True):
    """dim arguments to try for a tensor of `ndim` dims."""
    out = [None]
    if ndim >= 1:
        out += [0, -1]
    if ndim >= 2:
        out += [1]
        if multi:
            out += [(0, -1)]
    if ndim >= 3 and multi:
        out += [(0, 2), (1, 2), (0, 1, 2)]
    return out


def build(shape, layout, np_dtype, rng, requires_grad=False, values=None):
    """(torch leaf, torch view, deepcore leaf, deepcore view) with the same values and layout.

    The leaf is what gradients land on; the view has `shape` and the requested layout."""
    nd = len(shape)
    if layout == "transposed" and nd >= 2:
        base_shape = tuple(reversed(shape))
    elif layout == "sliced" and nd >= 1:
        base_shape = shape[:-1] + (2 * shape[-1],)
    elif layout == "expanded" and nd >= 1:
        base_shape = (1,) + shape[1:]
    else:
        base_shape = shape
    if values is not None:
        base = np.asarray(values, dtype=np_dtype).reshape(base_shape)
    elif np.issubdtype(np_dtype, np.floating):
        base = rng.standard_normal(base_shape).astype(np_dtype)
    elif np_dtype == np.bool_:
        base = rng.random(base_shape) > 0.4
    else:
        base = rng.integers(-4, 5, base_shape).astype(np_dtype)
    tl = torch.tensor(base, requires_grad=requires_grad)
    dl = dc.tensor(base, requires_grad=requires_grad)

    def view(t, lib):
        if layout == "transposed" and nd >= 2:
            return t.permute(*reversed(range(nd)))
        if layout == "sliced" and nd >= 1:
            return t[..., ::2]
        if layout == "expanded" and nd >= 1:
            return t.expand(*shape)
        return t
    tv, dv = view(tl, torch), view(dl, dc)
    assert tuple(tv.shape) == tuple(dv.shape) == tuple(shape)
    return tl, tv, dl, dv


def assert_close(d, t, rtol=None, atol=None):
    assert tuple(d.shape) == tuple(t.shape), (d.shape, t.shape)
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (d.dtype, t.dtype)
    dn = np.asarray(d.detach().numpy())
    tn = t.detach().numpy()
    if tn.dtype == np.float32:
        rtol, atol = rtol or 1e-5, atol or 1e-5
    else:
        rtol, atol = rtol or 1e-10, atol or 1e-10
    if tn.dtype.kind in "fc":
        np.testing.assert_allclose(dn, tn, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(dn, tn)


def kw(dim, keepdim):
    return {} if dim is None else {"dim": dim, "keepdim": keepdim}


# op name -> (torch fn, deepcore fn, accepts tuple dims, dtypes, differentiable)
def _prod_torch(x, dim=None, keepdim=False):
    if dim is None:
        return torch.prod(x)
    dims = sorted([d % x.dim() for d in dim] if isinstance(dim, tuple) else [dim % max(x.dim(), 1)],
                  reverse=True)
    for d in dims:
        x = torch.prod(x, d, keepdim=keepdim) if x.dim() else torch.prod(x)
    return x


def _vnorm(x, p, dim=None, keepdim=False):
    # torch.norm with a numeric p is the vector norm (a 'fro' 3-tuple is refused by torch.norm).
    return torch.linalg.vector_norm(x, ord=p, dim=dim, keepdim=keepdim)


OPS = {
    "sum": (lambda x, **k: torch.sum(x, **k), lambda x, **k: dc.sum(x, **k), True),
    "mean": (lambda x, **k: torch.mean(x, **k), lambda x, **k: dc.mean(x, **k), True),
    "prod": (_prod_torch, lambda x, **k: dc.prod(x, **k), True),
    "amax": (lambda x, **k: torch.amax(x, **k), lambda x, **k: dc.amax(x, **k), True),
    "amin": (lambda x, **k: torch.amin(x, **k), lambda x, **k: dc.amin(x, **k), True),
    "var": (lambda x, **k: torch.var(x, **k), lambda x, **k: dc.var(x, **k), True),
    "std": (lambda x, **k: torch.std(x, **k), lambda x, **k: dc.std(x, **k), True),
    "var_c0": (lambda x, **k: torch.var(x, correction=0, **k),
               lambda x, **k: dc.var(x, correction=0, **k), True),
    "std_unbiased_false": (lambda x, **k: torch.std(x, unbiased=False, **k),
                           lambda x, **k: dc.std(x, unbiased=False, **k), True),
    "logsumexp": (lambda x, dim=None, keepdim=False: torch.logsumexp(
        x, dim=tuple(range(x.dim())) if dim is None else dim, keepdim=keepdim),
        lambda x, dim=None, keepdim=False: dc.logsumexp(
        x, dim=tuple(range(x.dim())) if dim is None else dim, keepdim=keepdim), True),
    "norm2": (lambda x, **k: _vnorm(x, 2, **k), lambda x, **k: dc.norm(x, **k), True),
    "norm1": (lambda x, **k: _vnorm(x, 1, **k), lambda x, **k: dc.norm(x, p=1, **k), True),
    "norm3": (lambda x, **k: _vnorm(x, 3, **k), lambda x, **k: dc.norm(x, p=3, **k), True),
    "norm1.5": (lambda x, **k: _vnorm(x, 1.5, **k), lambda x, **k: dc.norm(x, p=1.5, **k),
                True),
    "norm0.5": (lambda x, **k: _vnorm(x, 0.5, **k), lambda x, **k: dc.norm(x, p=0.5, **k),
                True),
    "norm_inf": (lambda x, **k: _vnorm(x, math.inf, **k),
                 lambda x, **k: dc.norm(x, p=math.inf, **k), True),
    "norm_-inf": (lambda x, **k: _vnorm(x, -math.inf, **k),
                  lambda x, **k: dc.norm(x, p=-math.inf, **k), True),
    "norm0": (lambda x, **k: _vnorm(x, 0, **k), lambda x, **k: dc.norm(x, p=0, **k), True),
    "all": (lambda x, **k: torch.all(x, **k), lambda x, **k: dc.all(x, **k), True),
    "any": (lambda x, **k: torch.any(x, **k), lambda x, **k: dc.any(x, **k), True),
    "count_nonzero": (lambda x, dim=None, keepdim=False: torch.count_nonzero(x, dim=dim),
                      lambda x, dim=None, keepdim=False: dc.count_nonzero(x, dim=dim), True),
}
DIFFERENTIABLE = {"sum", "mean", "prod", "amax", "amin", "var", "std", "var_c0",
                  "std_unbiased_false", "logsumexp", "norm2", "norm1", "norm3", "norm1.5",
                  "norm0.5", "norm_inf", "norm_-inf"}
FLOAT_ONLY = {"mean", "var", "std", "var_c0", "std_unbiased_false", "norm2", "norm1", "norm3",
              "norm1.5", "norm0.5", "norm_inf", "norm_-inf", "norm0"}
NO_IDENTITY = {"amax", "amin", "norm_inf", "norm_-inf"}  # raise on an empty reduction


def _run(fn, x, **k):
    try:
        return fn(x, **k), None
    except Exception as e:  # noqa: BLE001 - compared with torch below
        return None, e


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(OPS))
def test_forward_backward_vs_torch(name, shape, layout):
    tfn, dfn, _ = OPS[name]
    rng = np.random.default_rng(abs(hash((name, shape, layout))) % 2**32)
    dtypes = [np.float32, np.float64] if name in FLOAT_ONLY else [np.float32, np.float64, np.int64,
                                                                  np.int32, np.bool_]
    for np_dtype in dtypes:
        for dim in dims_for(len(shape)):
            for keepdim in (False, True):
                if dim is None and keepdim and name != "logsumexp":
                    continue
                if name == "count_nonzero" and keepdim:
                    continue
                grad = name in DIFFERENTIABLE and np.issubdtype(np_dtype, np.floating)
                # std's gradient at a constant row (an expanded dim) is 0 here, as in torch only
                # when its std rounds to exactly 0: too ill-conditioned to compare.
                grad = grad and not (name.startswith("std") and layout == "expanded")
                tl, tv, dl, dv = build(shape, layout, np_dtype, rng, requires_grad=grad)
                tout, terr = _run(tfn, tv, **kw(dim, keepdim))
                dout, derr = _run(dfn, dv, **kw(dim, keepdim))
                ctx = f"{name} {np_dtype.__name__} dim={dim} keepdim={keepdim}"
                if terr is not None:
                    assert derr is not None, f"{ctx}: torch raised {terr!r}, deepcore did not"
                    continue
                assert derr is None, f"{ctx}: deepcore raised {derr!r}"
                assert_close(dout, tout)
                if grad:
                    g = rng.standard_normal(tuple(tout.shape)).astype(np_dtype)
                    tout.backward(torch.tensor(g))
                    dout.backward(dc.tensor(g))
                    assert_close(dl.grad, tl.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4), (4, 1, 5), (3, 0, 2)], ids=str)
@pytest.mark.parametrize("which", ["max", "min"])
def test_max_min_dim_vs_torch(which, shape, layout):
    rng = np.random.default_rng(len(shape) * 7 + len(layout))
    for np_dtype in (np.float32, np.float64, np.int64, np.bool_):
        grad = np.issubdtype(np_dtype, np.floating)
        for dim in dims_for(len(shape), multi=False):
            for keepdim in (False, True):
                tl, tv, dl, dv = build(shape, layout, np_dtype, rng, requires_grad=grad)
                if dim is None:
                    if keepdim:
                        continue
                    tout, terr = _run(getattr(torch, which), tv)
                    dout, derr = _run(getattr(dc, which), dv)
                else:
                    tout, terr = _run(lambda x: getattr(x, which)(dim, keepdim), tv)
                    dout, derr = _run(lambda x: getattr(x, which)(dim, keepdim), dv)
                if terr is not None:
                    assert derr is not None and type(derr) is type(terr), (terr, derr)
                    assert which in str(derr)
                    continue
                assert derr is None, derr
                if dim is None:
                    assert_close(dout, tout)
                    tsum, dsum = tout, dout
                else:
                    assert_close(dout.values, tout.values)
                    assert_close(dout.indices, tout.indices)
                    v, i = dout
                    assert v is dout[0] and i is dout.indices
                    tsum, dsum = tout.values, dout.values
                if grad:
                    g = rng.standard_normal(tuple(tsum.shape)).astype(np_dtype)
                    tsum.backward(torch.tensor(g))
                    dsum.backward(dc.tensor(g))
                    assert_close(dl.grad, tl.grad)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4), (3, 0, 2)], ids=str)
@pytest.mark.parametrize("which", ["argmax", "argmin"])
def test_argmax_argmin_vs_torch(which, shape, layout):
    rng = np.random.default_rng(3)
    for np_dtype in (np.float32, np.float64, np.int32, np.int64):
        for dim in dims_for(len(shape), multi=False):
            for keepdim in (False, True):
                _, tv, _, dv = build(shape, layout, np_dtype, rng)
                tout, terr = _run(lambda x: getattr(torch, which)(x, dim=dim, keepdim=keepdim), tv)
                dout, derr = _run(lambda x: getattr(dc, which)(x, dim=dim, keepdim=keepdim), dv)
                if terr is not None:
                    assert derr is not None and type(derr) is type(terr), (terr, derr)
                    continue
                assert derr is None, derr
                assert_close(dout, tout)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4), (3, 0, 2), (1, 17)], ids=str)
def test_cumsum_vs_torch(shape, layout):
    rng = np.random.default_rng(5)
    for np_dtype in (np.float32, np.float64, np.int32, np.int64, np.bool_):
        grad = np.issubdtype(np_dtype, np.floating)
        for dim in range(-len(shape), max(len(shape), 1)):
            tl, tv, dl, dv = build(shape, layout, np_dtype, rng, requires_grad=grad)
            tout, dout = torch.cumsum(tv, dim), dv.cumsum(dim)
            assert_close(dout, tout)
            if grad:
                g = rng.standard_normal(tuple(tout.shape)).astype(np_dtype)
                tout.backward(torch.tensor(g))
                dout.backward(dc.tensor(g))
                assert_close(dl.grad, tl.grad)


def test_integer_and_bool_dtypes_like_torch():
    i = [[1, 2, 3], [4, 0, 6]]
    for data, dt in ((i, torch.int32), (i, torch.int64), ([[True, False], [True, True]], torch.bool)):
        t = torch.tensor(data, dtype=dt)
        d = dc.tensor(t.numpy())
        assert_close(d.sum(), t.sum())
        assert_close(d.prod(), t.prod())
        assert_close(d.cumsum(0), t.cumsum(0))
        assert_close(dc.logsumexp(d, 0), torch.logsumexp(t, 0))  # promoted to float32
        assert_close(d.amax(), t.amax())
        assert_close(d.max(), t.max())
        assert_close(d.all(1), t.all(1))
        assert_close(dc.count_nonzero(d, 0), torch.count_nonzero(t, 0))
    d = dc.tensor(i)
    assert_close(dc.sum(d, dtype=dc.float64), torch.sum(torch.tensor(i), dtype=torch.float64))
    assert_close(dc.mean(d, dtype=dc.float32), torch.mean(torch.tensor(i), dtype=torch.float32))
    for op in ("mean", "var", "std", "norm"):
        with pytest.raises(TypeError, match=op):
            getattr(d, op)()
    with pytest.raises(TypeError, match="argmax"):
        dc.tensor([True, False]).argmax()


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE) + ["max_dim", "min_dim", "max_all",
                                                           "cumsum", "prod_zero", "prod_two_zeros"])
def test_gradcheck(name):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4)) + 0.1
    if name == "prod_zero":
        x[1, 2] = 0.0
    if name == "prod_two_zeros":
        x[1, 2] = x[1, 0] = 0.0
    if name.startswith("norm"):
        x[0, 0] = 0.0 if name in ("norm1.5", "norm3") else x[0, 0]
    t = dc.tensor(x, dtype=dc.float64, requires_grad=True)
    if name == "max_dim":
        fns = [lambda a: a.max(1).values, lambda a: a.max(0, keepdim=True)[0]]
    elif name == "min_dim":
        fns = [lambda a: a.min(1).values]
    elif name == "max_all":
        fns = [lambda a: a.max(), lambda a: a.min()]
    elif name == "cumsum":
        fns = [lambda a: a.cumsum(0), lambda a: a.cumsum(-1)]
    elif name.startswith("prod_"):
        fns = [lambda a: a.prod(), lambda a: a.prod(1), lambda a: a.prod(0, keepdim=True)]
    else:
        _, dfn, _ = OPS[name]
        fns = [lambda a: dfn(a), lambda a: dfn(a, dim=1), lambda a: dfn(a, dim=(0, 1),
                                                                          keepdim=True)]
    for fn in fns:
        assert dc.autograd.gradcheck(fn, (t,))


def _hvp(lib, x_np, fn, v_np):
    """d/dx <grad fn(x), v> via create_graph (a Hessian-vector product)."""
    x = lib.tensor(x_np, dtype=lib.float64, requires_grad=True)
    (g,) = lib.autograd.grad(fn(x), (x,), create_graph=True)
    (h,) = lib.autograd.grad((g * lib.tensor(v_np, dtype=lib.float64)).sum(), (x,))
    return h.numpy()


@pytest.mark.parametrize("zeros", [0, 1, 2, 3])
def test_prod_double_backward_with_zeros(zeros):
    rng = np.random.default_rng(zeros)
    x = rng.uniform(0.5, 2.0, (2, 5))
    x[0, :zeros] = 0.0
    if zeros:
        x[1, 5 - zeros:] = 0.0
    v = rng.standard_normal((2, 5))
    for f in (lambda a: a.prod(1).sum(), lambda a: a.prod()):
        np.testing.assert_allclose(_hvp(dc, x, f, v), _hvp(torch, x, f, v), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op", ["var", "std", "logsumexp", "norm", "amax"])
def test_double_backward_vs_torch(op):
    rng = np.random.default_rng(2)
    x, v = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    fn = {"var": lambda a: a.var(1).sum(), "std": lambda a: (a.std(0) ** 2).sum(),
          "logsumexp": lambda a: a.logsumexp(1).sum(), "norm": lambda a: a.norm(dim=1).sum(),
          "amax": lambda a: (a.amax(1) ** 2).sum()}[op]
    np.testing.assert_allclose(_hvp(dc, x, fn, v), _hvp(torch, x, fn, v), rtol=1e-9, atol=1e-12)


def test_ties_split_gradient_evenly():
    data = [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [5.0, -1.0, 5.0]]
    for fn in (lambda a: a.amax(1), lambda a: a.amin(0), lambda a: a.max(), lambda a: a.min(),
               lambda a: a.max(1).values, lambda a: a.min(0).values, lambda a: a.norm(p=math.inf, dim=1)):
        t = torch.tensor(data, requires_grad=True)
        d = dc.tensor(data, requires_grad=True)
        fn(t).sum().backward()
        fn(d).sum().backward()
        assert_close(d.grad, t.grad)
    d = dc.tensor(data)
    assert d.max(1).indices.tolist() == [1, 0, 0]
    assert d.argmin(1).tolist() == [0, 0, 1]


def test_nan_and_inf_handling():
    nan, inf = float("nan"), float("inf")
    data = [[1.0, nan, 3.0], [-inf, -inf, -inf], [inf, 1.0, 2.0], [0.0, 0.0, 0.0]]
    t, d = torch.tensor(data), dc.tensor(data)
    for fn in (lambda a: a.amax(1), lambda a: a.max(1).values, lambda a: a.max(1).indices,
               lambda a: a.argmin(1), lambda a: a.logsumexp(1), lambda a: a.sum(1),
               lambda a: a.norm(dim=1), lambda a: a.var(1), lambda a: a.prod(1),
               lambda a: a.cumsum(1), lambda a: a.any(1), lambda a: a.all(1)):
        assert_close(fn(d), fn(t))
    # Norm and std at 0 have a zero (sub)gradient, like torch.
    for fn in (lambda a: a.norm(), lambda a: a.std(), lambda a: a.norm(p=3)):
        t0, d0 = torch.zeros(4, requires_grad=True), dc.zeros(4, requires_grad=True)
        fn(t0).backward()
        fn(d0).backward()
        assert_close(d0.grad, t0.grad)
    # logsumexp of an all -inf row: value -inf, gradient like torch.
    t1 = torch.tensor([[-inf, -inf], [0.0, 1.0]], requires_grad=True)
    d1 = dc.tensor([[-inf, -inf], [0.0, 1.0]], requires_grad=True)
    t1.logsumexp(1).sum().backward()
    d1.logsumexp(1).sum().backward()
    assert_close(d1.grad, t1.grad)


def test_empty_reductions():
    e_t, e_d = torch.empty(0, 3), dc.empty(0, 3)
    for fn in (lambda a: a.sum(), lambda a: a.prod(), lambda a: a.mean(), lambda a: a.sum(0),
               lambda a: a.prod(0), lambda a: a.mean(0), lambda a: a.var(0), lambda a: a.std(),
               lambda a: a.all(), lambda a: a.any(0), lambda a: a.logsumexp(0),
               lambda a: a.norm(), lambda a: a.amax(1), lambda a: a.max(1).values,
               lambda a: a.argmax(1), lambda a: a.cumsum(0), lambda a: a.count_nonzero()):
        assert_close(fn(e_d), fn(e_t))
    with pytest.raises(IndexError, match=r"max.*non-zero size"):
        e_d.max(0)
    with pytest.raises(RuntimeError, match="max"):
        e_d.max()
    with pytest.raises(IndexError, match="amax"):
        e_d.amax(0)
    with pytest.raises(IndexError, match="argmax"):
        e_d.argmax()
    with pytest.raises(RuntimeError, match="norm"):
        e_d.norm(p=math.inf)
    with pytest.raises(RuntimeError, match="aminmax"):
        dc.aminmax(e_d)


@pytest.mark.parametrize("op", ["sum", "mean", "prod", "amax", "amin", "var", "std", "logsumexp",
                                "all", "any", "norm", "count_nonzero", "argmax", "argmin",
                                "cumsum", "max", "min"])
def test_bad_dim_names_op(op):
    x = dc.ones(2, 3)
    with pytest.raises(IndexError, match=op):
        getattr(dc, op)(x, dim=2)
    if op not in ("argmax", "argmin", "cumsum", "max", "min"):
        with pytest.raises(ValueError, match=rf"\[{op}\].*multiple times"):
            getattr(dc, op)(x, dim=(0, -2))


def test_signatures_and_overloads():
    a = dc.tensor([[1.0, 5.0], [4.0, 2.0]])
    b = dc.tensor([[3.0, 3.0], [3.0, 3.0]])
    assert dc.max(a, b).tolist() == [[3.0, 5.0], [4.0, 3.0]]
    assert a.min(b).tolist() == [[1.0, 3.0], [3.0, 2.0]]
    assert dc.max(a, other=b).tolist() == [[3.0, 5.0], [4.0, 3.0]]
    r = dc.max(a, dim=1, keepdim=True)
    assert type(r).__name__ == "max" and r._fields == ("values", "indices")
    assert r.values.shape == (2, 1) and r.indices.tolist() == [[1], [0]]
    mn, mx = dc.aminmax(a)
    assert (mn.item(), mx.item()) == (1.0, 5.0)
    assert dc.aminmax(a, dim=0).max.tolist() == [4.0, 5.0]
    # var/std: unbiased positional, dim positional, correction keyword.
    t = torch.tensor(a.numpy())
    assert_close(a.var(False), t.var(False))
    assert_close(a.var(1, True, True), t.var(1, True, True))
    assert_close(a.std(0, correction=0), t.std(0, correction=0))
    assert_close(dc.var_mean(a, 1)[0], torch.var_mean(t, 1)[0])
    assert_close(dc.std_mean(a)[1], torch.std_mean(t)[1])
    assert_close(a.norm(p="fro", dim=(0, 1)), t.norm(p="fro", dim=(0, 1)))
    assert_close(a.norm(dtype=dc.float64), t.norm(dtype=torch.float64))
    assert_close(dc.prod(a, 1, dtype=dc.float64), torch.prod(t, 1, dtype=torch.float64))
    assert_close(dc.cumsum(a, 0, dtype=dc.float64), torch.cumsum(t, 0, dtype=torch.float64))
    assert_close(a.all(()), t.all(()))
    assert_close(a.sum([0, 1]), t.sum([0, 1]))
    assert_close(dc.amax(a), torch.amax(t))
    assert_close(dc.tensor([1, 2]).max(0).values, torch.tensor([1, 2]).max(0).values)
    with pytest.raises(ValueError, match="norm"):
        a.norm(p="nuc")
    assert a.equal(dc.tensor([[1.0, 5.0], [4.0, 2.0]]))


def test_float32_sum_is_accurate_and_thread_independent():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(2_999_997) + 1.0).astype(np.float32)
    exact = float(np.sum(x.astype(np.float64)))
    d = dc.tensor(x)
    n = dc.get_num_threads()
    try:
        for threads in (1, 2, 3):
            dc.set_num_threads(threads)
            s = d.sum().item()
            assert abs(s - exact) <= 1e-6 * abs(exact)
        # One bit pattern per expression whatever the thread count.
        for expr in (lambda: d.sum().item(), lambda: d.reshape(3, -1).var(1).tolist(),
                     lambda: d.reshape(-1, 3).sum(0).tolist(),
                     lambda: d.reshape(7, -1).norm(dim=1).tolist(),
                     lambda: d.reshape(-1, 7).amax(0).tolist()):
            values = []
            for threads in (1, 2, 4):
                dc.set_num_threads(threads)
                values.append(expr())
            assert values[0] == values[1] == values[2]
    finally:
        dc.set_num_threads(n)


def test_column_sum_bias_gradient_accuracy():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((200_000, 3)) + 100.0).astype(np.float32)
    exact = x.astype(np.float64).sum(0)
    np.testing.assert_allclose(dc.tensor(x).sum(0).numpy(), exact, rtol=1e-6)
    v = dc.tensor(x).var(0).numpy()
    np.testing.assert_allclose(v, x.astype(np.float64).var(0, ddof=1), rtol=1e-4)


def test_reductions_do_not_copy_contiguous_rows_or_columns():
    # Outputs of a transposed reduction keep the input's memory order (no copy of the input).
    x = dc.randn(64, 32)
    assert x.T.sum(0).is_contiguous()
    y = dc.randn(4, 5, 6).permute(2, 0, 1)  # dense, not contiguous
    assert_close(y.sum(1), torch.tensor(y.numpy()).sum(1))
    assert_close(y.amax((1, 2)), torch.tensor(y.numpy()).amax((1, 2)))


def test_registry_lists_reductions():
    reg = {op["name"]: op for op in dc._C._op_registry() if op["family"] == "reduce"}
    for name in ("sum", "mean", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "var",
                 "std", "logsumexp", "all", "any", "norm", "cumsum", "count_nonzero"):
        assert name in reg, name
        assert hasattr(dc, name) and hasattr(dc.Tensor, name)
    assert reg["var"]["differentiable"] and not reg["argmax"]["differentiable"]
