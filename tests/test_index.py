"""Indexing ops and Python indexing against PyTorch: forward, backward, gradcheck, bad inputs."""
import numpy as np
import pytest
import torch

import deepcore as dc
from deepcore.autograd import gradcheck

RNG = np.random.default_rng(0)


def _np(t):
    if isinstance(t, np.ndarray):
        return t
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach())


def assert_close(a, b, atol=1e-6):
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert a.dtype == b.dtype or a.dtype.kind == b.dtype.kind, (a.dtype, b.dtype)
    np.testing.assert_allclose(a, b, atol=atol, rtol=1e-6)


def leaves(*arrays):
    """(deepcore leaves, torch leaves) requiring grad for float arrays."""
    d = [dc.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    t = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    return d, t


def check(dc_fn, torch_fn, *arrays, idx=None):
    """Forward and backward (random upstream gradient) of fn(*leaves, *idx) vs torch."""
    d, t = leaves(*arrays)
    idx = idx or []
    rd = dc_fn(*d, *[dc.tensor(i) for i in idx])
    rt = torch_fn(*t, *[torch.tensor(i) for i in idx])
    assert_close(rd, rt)
    if not rt.requires_grad:
        return
    g = RNG.standard_normal(tuple(rt.shape))
    (rd * dc.tensor(g)).sum().backward()
    (rt * torch.tensor(g)).sum().backward()
    for a, b in zip(d, t):
        if b.requires_grad:
            assert_close(a.grad, b.grad if b.grad is not None else torch.zeros_like(b))


def randn(*shape):
    return RNG.standard_normal(shape)


def randint(high, *shape, low=0):
    return RNG.integers(low, high, shape).astype(np.int64)


def transpose_first_last(x):
    return x.transpose(0, -1)


# ---- index_select / index_add ----------------------------------------------------------------

@pytest.mark.parametrize("shape,dim", [((5,), 0), ((4, 6), 1), ((3, 4, 5), -2), ((2, 7, 1), 0)])
@pytest.mark.parametrize("noncontig", [False, True])
def test_index_select(shape, dim, noncontig):
    prep = transpose_first_last if noncontig else (lambda x: x)
    src_shape = shape[::-1] if noncontig else shape
    n = shape[dim]
    idx = randint(n, 9, low=-n)  # negatives wrap; duplicates likely
    check(lambda x, i: dc.index_select(prep(x), dim, i),
          lambda x, i: torch.index_select(prep(x), dim, i % n), randn(*src_shape), idx=[idx])


def test_index_select_int32_empty_and_0d():
    x = randn(4, 3)
    d, t = dc.tensor(x), torch.tensor(x)
    assert_close(d.index_select(0, dc.tensor([3, 1], dtype=dc.int32)), t[[3, 1]])
    assert tuple(d.index_select(1, dc.tensor([], dtype=dc.int64)).shape) == (4, 0)
    assert_close(d.index_select(0, dc.tensor(2)), t.index_select(0, torch.tensor(2)))
    assert_close(dc.index_select(dc.tensor(5.0), 0, dc.tensor([0])), torch.tensor(5.0,
                 dtype=torch.float32))


@pytest.mark.parametrize("alpha", [1, 2.5])
def test_index_add(alpha):
    idx = np.array([0, 2, 2, -1, 0])  # duplicates accumulate
    x, s = randn(4, 3, 2), randn(4, 5, 2)
    check(lambda a, b, i: a.index_add(1, i, b, alpha=alpha),
          lambda a, b, i: a.index_add(1, i % 3, b, alpha=alpha), x, s, idx=[idx])
    # In place on a non-leaf; gradients flow to both inputs.
    check(lambda a, b, i: (a * 1).index_add_(1, i, b, alpha=alpha),
          lambda a, b, i: (a * 1).index_add_(1, i % 3, b, alpha=alpha), x, s, idx=[idx])


# ---- gather / scatter ------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("noncontig", [False, True])
def test_gather(dim, noncontig):
    shape = (4, 5, 6)
    prep = transpose_first_last if noncontig else (lambda x: x)
    n = shape[dim]
    idx_shape = list(shape)
    idx_shape[dim] = 7
    idx_shape[(dim + 1) % 3] -= 1  # smaller than input outside dim is allowed
    idx = randint(n, *idx_shape, low=-n)
    check(lambda x, i: prep(x).gather(dim, i), lambda x, i: prep(x).gather(dim, i % n),
          randn(*shape[::-1] if noncontig else shape), idx=[idx])


def test_take_along_dim():
    x = randn(3, 4, 5)
    idx = randint(4, 1, 6, 5)  # broadcasts over dim 0
    check(lambda a, i: dc.take_along_dim(a, i, dim=1),
          lambda a, i: torch.take_along_dim(a, i, dim=1), x, idx=[idx])
    flat_idx = randint(60, 7)
    check(lambda a, i: dc.take_along_dim(a, i), lambda a, i: torch.take_along_dim(a, i), x,
          idx=[flat_idx])


def _unique_along(shape, dim, n):
    """Index of `shape` whose values along `dim` are distinct (scatter without duplicates)."""
    perm = np.argsort(RNG.random(shape[:dim] + (n,) + shape[dim + 1:]), axis=dim)
    return np.take(perm, np.arange(shape[dim]), axis=dim)


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("inplace", [False, True])
def test_scatter(dim, inplace):
    x = randn(4, 5)
    idx_shape = (3, 2) if dim == 0 else (2, 4)
    idx = _unique_along(idx_shape, dim, x.shape[dim])
    src = randn(*idx_shape)
    if inplace:
        check(lambda a, s, i: (a * 1).scatter_(dim, i, s),
              lambda a, s, i: (a * 1).scatter_(dim, i, s),
              x, src, idx=[idx])
    else:
        check(lambda a, s, i: dc.scatter(a, dim, i, s), lambda a, s, i: torch.scatter(a, dim, i, s),
              x, src, idx=[idx])
    check(lambda a, i: a.scatter(dim, i, 2.5), lambda a, i: a.scatter(dim, i, 2.5), x, idx=[idx])
    check(lambda a, i: dc.scatter(a, dim, i, value=-1.0),
          lambda a, i: torch.scatter(a, dim, i, value=-1.0), x, idx=[idx])


def test_scatter_src_larger_than_index_gets_zero_gradient_outside():
    # torch rejects this gradient shape; deepcore pads the gathered gradient with zeros.
    x, src = dc.tensor(randn(4, 5), requires_grad=True), dc.tensor(randn(4, 5), requires_grad=True)
    idx = dc.tensor(_unique_along((3, 2), 0, 4))
    g = randn(4, 5)
    (dc.scatter(x, 0, idx, src) * dc.tensor(g)).sum().backward()
    expect = np.zeros((4, 5))
    expect[:3, :2] = np.take_along_axis(g[:, :2], idx.numpy(), 0)
    assert_close(src.grad, expect)


@pytest.mark.parametrize("inplace", [False, True])
def test_scatter_add_duplicates(inplace):
    x, src = randn(3, 4), randn(5, 4)
    idx = randint(3, 5, 4)  # many duplicates
    if inplace:
        check(lambda a, s, i: (a * 1).scatter_add_(0, i, s),
              lambda a, s, i: (a * 1).scatter_add_(0, i, s), x, src, idx=[idx])
    else:
        check(lambda a, s, i: a.scatter_add(0, i, s), lambda a, s, i: a.scatter_add(0, i, s),
              x, src, idx=[idx])


def test_scatter_int_and_noncontiguous_self():
    x = np.arange(20).reshape(4, 5)
    d, t = dc.tensor(x).t(), torch.tensor(x).t()  # non-contiguous destination
    idx = np.array([[3, 0, 1, 2]])
    src = np.full((1, 4), 100)
    assert_close(d.scatter(1, dc.tensor(idx), dc.tensor(src)),
                 t.scatter(1, torch.tensor(idx), torch.tensor(src)))
    d2 = dc.tensor(x)
    d2.t().scatter_add_(0, dc.tensor(idx.T[:3].T[:, :3].reshape(1, 3)), dc.tensor(src[:, :3]))
    t2 = torch.tensor(x)
    t2.t().scatter_add_(0, torch.tensor(idx.T[:3].T[:, :3].reshape(1, 3)), torch.tensor(src[:, :3]))
    assert_close(d2, t2)


# ---- masks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("xshape,mshape", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 1))])
def test_masked_fill(xshape, mshape):
    x, m = randn(*xshape), RNG.random(mshape) > 0.5
    check(lambda a, k: a.masked_fill(k, 0.5), lambda a, k: a.masked_fill(k, 0.5), x, idx=[m])
    check(lambda a, k: (a * 1).masked_fill_(k, -2), lambda a, k: (a * 1).masked_fill_(k, -2), x,
          idx=[m])
    # A 0-d value tensor receives the summed gradient of the filled positions.
    check(lambda a, v, k: dc.masked_fill(a, k, v), lambda a, v, k: torch.masked_fill(a, k, v),
          x, np.array(1.5), idx=[m])
    check(lambda a, v, k: (a * 1).masked_fill_(k, v), lambda a, v, k: (a * 1).masked_fill_(k, v),
          x, np.array(1.5), idx=[m])


def test_masked_fill_broadcasts_self_out_of_place_and_casts_value():
    x, m = randn(3, 1), RNG.random((3, 4)) > 0.5
    check(lambda a, k: a.masked_fill(k, 1.0), lambda a, k: a.masked_fill(k, 1.0), x, idx=[m])
    xi = np.arange(6).reshape(2, 3)
    assert_close(dc.tensor(xi).masked_fill(dc.tensor(xi > 2), 7.9),
                 torch.tensor(xi).masked_fill(torch.tensor(xi > 2), 7.9))


@pytest.mark.parametrize("xshape,mshape", [((3, 4), (3, 4)), ((3, 1), (3, 4)), ((5,), ()),
                                           ((), ())])
def test_masked_select(xshape, mshape):
    x, m = randn(*xshape), np.asarray(RNG.random(mshape) > 0.4)
    check(lambda a, k: dc.masked_select(a, k), lambda a, k: torch.masked_select(a, k), x, idx=[m])


@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 4), (2, 3, 4)])
def test_nonzero(shape):
    a = RNG.integers(0, 3, shape) if shape else np.array(2)
    d, t = dc.tensor(a), torch.tensor(a)
    assert_close(dc.nonzero(d), torch.nonzero(t))
    assert_close(d.argwhere(), torch.argwhere(t))
    dt, tt = d.nonzero(as_tuple=True), t.nonzero(as_tuple=True)
    assert len(dt) == len(tt)
    for x, y in zip(dt, tt):
        assert_close(x, y)


def test_nonzero_float_nan_and_bool():
    a = np.array([[0.0, np.nan], [-0.0, 2.0]])
    assert_close(dc.nonzero(dc.tensor(a)), torch.nonzero(torch.tensor(a)))
    b = RNG.random((4, 5)) > 0.5
    assert_close(dc.nonzero(dc.tensor(b).t()), torch.nonzero(torch.tensor(b).t()))


# ---- embedding / one_hot ---------------------------------------------------------------------

@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding(padding_idx):
    from deepcore._indexing import embedding_functional
    w = randn(6, 4)
    idx = np.array([[0, 2, 5], [2, 2, 1]])
    check(lambda a, i: embedding_functional(i, a, padding_idx=padding_idx),
          lambda a, i: torch.nn.functional.embedding(i, a, padding_idx=padding_idx), w, idx=[idx])
    pi = -1 if padding_idx is None else padding_idx % 6
    check(lambda a, i: dc.embedding(a, i, pi), lambda a, i: torch.embedding(a, i, pi), w,
          idx=[idx])


def test_embedding_noncontiguous_weight_and_empty_indices():
    w = randn(4, 6)
    check(lambda a, i: dc.embedding(a.t(), i), lambda a, i: torch.embedding(a.t(), i), w,
          idx=[np.array([5, 0, 3])])
    out = dc.embedding(dc.tensor(w), dc.tensor(np.zeros((2, 0), dtype=np.int64)))
    assert tuple(out.shape) == (2, 0, 6)


@pytest.mark.parametrize("num_classes", [-1, 7])
def test_one_hot(num_classes):
    a = RNG.integers(0, 5, (3, 4))
    from deepcore._indexing import one_hot
    r = one_hot(dc.tensor(a), num_classes)
    assert r.dtype == dc.int64
    assert_close(r, torch.nn.functional.one_hot(torch.tensor(a), num_classes))
    assert tuple(one_hot(dc.tensor(np.zeros(0, np.int64)), 3).shape) == (0, 3)


# ---- Python indexing -------------------------------------------------------------------------

IDX_LIST = np.array([0, 2, -1, 2])
GETITEM_CASES = [
    2, -1, slice(1, 4), slice(None, None, 2), slice(-3, -1), slice(5, 1), None, Ellipsis,
    (Ellipsis, 1), (None, slice(None), None), (1, None, slice(0, 3, 2)), True, False,
    [0, 2, 2], [[0], [3]], [], IDX_LIST, (slice(None), IDX_LIST), (IDX_LIST, slice(None), IDX_LIST),
    (IDX_LIST, 1, IDX_LIST), (1, slice(None), [0, 2]), (slice(None), [[0], [1]], [1, 2, 3]),
    (slice(1, None), [0, 1], 0), ([0, 1], None, [1, 2]), (Ellipsis, [0, 1]), (True, [0, 1]),
    ([[1, 2], [0, 0]], slice(None), slice(None, None, 3)), (slice(None), [0, 1], None),
    (np.int64(1), [0, 1]), (slice(None, None, 2), slice(None), [-1]),
]


@pytest.mark.parametrize("index", GETITEM_CASES, ids=[repr(c)[:40] for c in GETITEM_CASES])
def test_getitem_forward_backward(index):
    x = randn(4, 5, 6)
    check(lambda a: a[index], lambda a: a[index], x)


@pytest.mark.parametrize("kind", ["bool_full", "bool_partial", "bool_then_slice", "int_tensor",
                                  "int32_tensor", "zero_d_tensor", "zero_d_bool", "noncontig"])
def test_getitem_tensor_indices(kind):
    x = randn(4, 5, 6)
    if kind == "bool_full":
        m = x > 0
        check(lambda a, k: a[k], lambda a, k: a[k], x, idx=[m])
    elif kind == "bool_partial":
        m = RNG.random((4, 5)) > 0.5
        check(lambda a, k: a[:, None][:, 0][k], lambda a, k: a[:, None][:, 0][k], x, idx=[m])
    elif kind == "bool_then_slice":
        m = RNG.random(4) > 0.3
        check(lambda a, k: a[k, 1:], lambda a, k: a[k, 1:], x, idx=[m])
    elif kind == "int_tensor":
        i = randint(5, 3, 2, low=-5)
        check(lambda a, k: a[:, k, 2:4], lambda a, k: a[:, k, 2:4], x, idx=[i])
    elif kind == "int32_tensor":
        i = np.array([3, 0], dtype=np.int32)
        check(lambda a, k: a[k], lambda a, k: a[k], x, idx=[i])
    elif kind == "zero_d_tensor":
        check(lambda a, k: a[k, :, k], lambda a, k: a[k, :, k], x, idx=[np.array(3)])
    elif kind == "zero_d_bool":
        check(lambda a, k: a[k], lambda a, k: a[k], x, idx=[np.array(True)])
    else:
        i = np.array([1, 0, 1])
        check(lambda a, k: a.transpose(0, 2)[k, ::2, k], lambda a, k: a.transpose(0, 2)[k, ::2, k],
              x, idx=[i])


SETITEM_CASES = [
    (1, 5.0), (slice(1, 3), np.arange(6.0)), ((Ellipsis, 0), -1.0), (None, 2.0),
    ((slice(None), [0, 2]), 3.0), ([0, 0, 3], np.ones((3, 5, 6))),
    ((IDX_LIST, slice(None), IDX_LIST), np.arange(5.0)[None, :]),
    ((1, slice(None), [0, -1]), np.array([7.0, 8.0])),
    ((slice(None, None, 2), [1, 3]), np.array([[1.0], [2.0]])[:, :, None] * np.ones(6)),
    (True, 4.0), (False, 4.0), ([], 1.0),
]


@pytest.mark.parametrize("index,value", SETITEM_CASES, ids=[repr(c[0])[:40] for c in SETITEM_CASES])
def test_setitem(index, value):
    x = randn(4, 5, 6)
    d, t = dc.tensor(x), torch.tensor(x)
    vd = value if np.isscalar(value) else dc.tensor(value)
    vt = value if np.isscalar(value) else torch.tensor(value)
    d[index] = vd
    t[index] = vt
    assert_close(d, t)


def test_setitem_masks_and_lists():
    x = randn(4, 5)
    d, t = dc.tensor(x), torch.tensor(x)
    m = x > 0.2
    d[dc.tensor(m)] = 0.0
    t[torch.tensor(m)] = 0.0
    d[np.array([1, 3]), 1:3] = dc.tensor([[9.0, 8.0]])
    t[np.array([1, 3]), 1:3] = torch.tensor([[9.0, 8.0]], dtype=torch.float64)
    rows = x[:, 0] > 0
    d[dc.tensor(rows), 1:] = -5
    t[torch.tensor(rows), 1:] = -5
    d[[0, 1]] = [[1.0] * 5, [2.0] * 5]
    t[[0, 1]] = torch.tensor([[1.0] * 5, [2.0] * 5], dtype=torch.float64)
    assert_close(d, t)
    # Values are cast to the destination dtype; overlapping source is read before writing.
    di, ti = dc.tensor(np.arange(10)), torch.tensor(np.arange(10))
    di[[1, 2]] = dc.tensor([1.7, 2.2])
    ti[[1, 2]] = torch.tensor([1.7, 2.2]).long()
    di[1:] = di[:-1].clone()
    ti[1:] = ti[:-1].clone()
    assert_close(di, ti)


def test_setitem_gradients_through_index_put_on_nonleaf():
    x, v = randn(4, 5), randn(2, 5)
    idx = np.array([3, 0])

    def run(lib, a, b, i):
        y = a * 2
        y[i] = b
        y2 = y * 1
        y2[:, [1, 3]] = 0.0  # the full slice is no view: index_put_ on y2 itself
        return y2 * y2

    check(lambda a, b, i: run(dc, a, b, i), lambda a, b, i: run(torch, a, b, i), x, v, idx=[idx])


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put(accumulate):
    x = randn(4, 5, 3)
    i0 = np.array([0, 3, 3, -1]) if accumulate else np.array([0, 3, 1, 2])
    i1 = np.array([[1], [4]])  # broadcasts with i0 to (2, 4)
    v = randn(4, 3)  # broadcasts to the (2, 4, 3) result
    check(lambda a, b, p, q: dc.index_put(a, (p, q), b, accumulate),
          lambda a, b, p, q: torch.index_put(a, (p % 4, q), b, accumulate), x, v, idx=[i0, i1])
    # Indexed dims separated by a full slice (None here); in place on a non-leaf. torch takes no
    # None, so its side spells the slice as a broadcast arange.
    q = np.array([0, 2, 2, 1])
    check(lambda a, b, p, q: (a * 1).index_put_((p, None, q), b, accumulate=accumulate),
          lambda a, b, p, q: (a * 1).index_put_((p[:, None] % 4, torch.arange(5)[None, :],
                                                 q[:, None]), b, accumulate=accumulate),
          x, randn(5), idx=[i0, q])


# ---- gradcheck, higher order, saved indices --------------------------------------------------

def _f64(*shape):
    return dc.tensor(randn(*shape), requires_grad=True)


GRADCHECKS = {
    "index_select": (lambda x: dc.index_select(x, 1, dc.tensor([2, 0, 2])), [(3, 4)]),
    "index_add": (lambda x, s: x.index_add(0, dc.tensor([1, 1, 0]), s, alpha=2.0),
                  [(2, 3), (3, 3)]),
    "gather": (lambda x: x.gather(1, dc.tensor([[0, 0, 2], [1, 2, 2]])), [(2, 3)]),
    "take_along_dim": (lambda x: dc.take_along_dim(x, dc.tensor([[1], [0]]), 1), [(2, 3)]),
    "scatter": (lambda x, s: dc.scatter(x, 1, dc.tensor([[2, 0]]), s), [(2, 3), (1, 2)]),
    "scatter_add": (lambda x, s: dc.scatter_add(x, 0, dc.tensor([[1, 1, 0]]), s), [(2, 3), (1, 3)]),
    "masked_fill": (lambda x, v: x.masked_fill(dc.tensor([True, False, True]), v), [(2, 3), ()]),
    "masked_select": (lambda x: x.masked_select(dc.tensor([[True], [False]])), [(2, 3)]),
    # No padding_idx: its row is read but gets no gradient, which finite differences would see.
    "embedding": (lambda w: dc.embedding(w, dc.tensor([[0, 2], [2, 1]])), [(3, 2)]),
    "index": (lambda x: x[dc.tensor([1, 1, 0]), :, dc.tensor([0, 2, 2])], [(2, 3, 3)]),
    "index_put": (lambda x, v: dc.index_put(x, (dc.tensor([0, 0, 1]),), v, True), [(2, 3), (3,)]),
    "index_put_": (lambda x, v: (x * 1).index_put_((dc.tensor([1]), dc.tensor([2])), v),
                   [(2, 3), ()]),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_gradcheck(name):
    fn, shapes = GRADCHECKS[name]
    assert gradcheck(fn, [_f64(*s) for s in shapes])


@pytest.mark.parametrize("name", ["index", "gather", "index_select", "embedding", "masked_fill"])
def test_double_backward_matches_torch(name):
    x = randn(3, 4)
    i = np.array([2, 0, 2])
    ops = {
        "index": (lambda a: a[dc.tensor(i)], lambda a: a[torch.tensor(i)]),
        "gather": (lambda a: a.gather(1, dc.tensor(np.tile(i, (3, 1)))),
                   lambda a: a.gather(1, torch.tensor(np.tile(i, (3, 1))))),
        "index_select": (lambda a: a.index_select(1, dc.tensor(i)),
                         lambda a: a.index_select(1, torch.tensor(i))),
        "embedding": (lambda a: dc.embedding(a, dc.tensor(i), 0),
                      lambda a: torch.embedding(a, torch.tensor(i), 0)),
        "masked_fill": (lambda a: a.masked_fill(dc.tensor(x > 0), 1.0),
                        lambda a: a.masked_fill(torch.tensor(x > 0), 1.0)),
    }
    fd, ft = ops[name]
    (d,), (t,) = leaves(x)
    (gd,) = dc.autograd.grad((fd(d) ** 3).sum(), [d], create_graph=True)
    (gt,) = torch.autograd.grad((ft(t) ** 3).sum(), [t], create_graph=True)
    assert_close(gd, gt)
    (gd * gd).sum().backward()
    (gt * gt).sum().backward()
    assert_close(d.grad, t.grad)


def test_gradient_uses_the_index_seen_in_forward():
    x = dc.tensor(randn(4), requires_grad=True)
    idx = dc.tensor([0, 1])
    y = x[idx]
    idx.fill_(3)  # changing the index afterwards must not move the gradient
    y.sum().backward()
    assert_close(x.grad, np.array([1.0, 1.0, 0.0, 0.0]))


def test_registry_lists_the_index_family():
    reg = {op["name"]: op for op in dc._C._op_registry() if op["family"] == "index"}
    for name in ["index_select", "index_add", "index_add_", "gather", "take_along_dim", "scatter",
                 "scatter_", "scatter_add", "scatter_add_", "masked_fill", "masked_fill_",
                 "masked_select", "embedding", "index", "index_put", "index_put_"]:
        assert reg[name]["differentiable"], name
    assert not reg["nonzero"]["differentiable"] and not reg["one_hot"]["differentiable"]
    for name in reg:
        assert hasattr(dc._C, name) or reg[name]["python"], name


# ---- bad input -------------------------------------------------------------------------------

X = dc.tensor(np.arange(12.0).reshape(3, 4))
OUT_OF_RANGE = {
    "index_select": lambda: X.index_select(1, dc.tensor([0, 4])),
    "index_add": lambda: X.index_add(0, dc.tensor([-4]), dc.tensor(np.ones((1, 4)))),
    "gather": lambda: X.gather(1, dc.tensor([[7]])),
    "scatter": lambda: X.scatter(0, dc.tensor([[3]]), 1.0),
    "scatter_add": lambda: X.scatter_add(1, dc.tensor([[-5]]),
                                         dc.tensor([[1.0]], dtype=dc.float64)),
    "embedding": lambda: dc.embedding(X, dc.tensor([0, -1])),
    "one_hot": lambda: dc._C.one_hot(dc.tensor([0, 5]), 3),
    "index": lambda: X[dc.tensor([0, 3])],
    "index_put": lambda: dc.index_put(X, (dc.tensor([1]), dc.tensor([4])), dc.tensor(1.0)),
}


@pytest.mark.parametrize("op", sorted(OUT_OF_RANGE))
def test_out_of_range_raises_index_error_naming_the_op(op):
    with pytest.raises(IndexError, match=rf"\[{op}\].*out of bounds for dimension \d with size \d"):
        OUT_OF_RANGE[op]()


def test_out_of_range_message_has_value_dim_and_size():
    with pytest.raises(IndexError, match=r"\[gather\] index 7 is out of bounds for dimension 1 "
                                         r"with size 4"):
        X.gather(1, dc.tensor([[7]]))
    with pytest.raises(IndexError, match=r"index 5 is out of bounds for dimension 0 with size 3"):
        X[5]
    with pytest.raises(IndexError, match=r"\[index\] index -4 is out of bounds"):
        X[dc.tensor([-4])]


FLOAT_INDEX = {
    "index_select": lambda f: X.index_select(0, f),
    "gather": lambda f: X.gather(0, f.reshape(1, 1)),
    "scatter_add": lambda f: X.scatter_add(0, f.reshape(1, 1), dc.tensor([[1.0]])),
    "embedding": lambda f: dc.embedding(X, f),
    "one_hot": lambda f: dc._C.one_hot(f),
    "index": lambda f: X[f],
    "index_put_": lambda f: X.clone().index_put_((f,), dc.tensor(1.0)),
}


@pytest.mark.parametrize("op", sorted(FLOAT_INDEX))
def test_float_index_is_refused(op):
    with pytest.raises((TypeError, IndexError), match=r"\[(%s|index)\]" % op):
        FLOAT_INDEX[op](dc.tensor([1.0]))


@pytest.mark.parametrize("fn,exc,pattern", [
    (lambda: X.gather(0, dc.tensor([0, 1])), ValueError, r"\[gather\].*same|\[gather\].*dims"),
    (lambda: X.gather(1, dc.tensor(np.zeros((4, 1), np.int64))), ValueError, r"\[gather\].*larger"),
    (lambda: X.scatter(1, dc.tensor([[0]]), dc.tensor([1.0], dtype=dc.float64)), ValueError,
     r"\[scatter\].*same number of dims"),
    (lambda: X.scatter(1, dc.tensor([[0]]), dc.tensor([[1]])), TypeError, r"\[scatter\].*dtype"),
    (lambda: X.index_select(0, dc.tensor([[0]])), IndexError, r"\[index_select\].*1-D"),
    (lambda: X.index_add(0, dc.tensor([0]), dc.tensor(np.ones((2, 4)))), ValueError,
     r"\[index_add\]"),
    (lambda: X.masked_fill(dc.tensor([1, 0, 1, 0]), 1.0), TypeError, r"\[masked_fill\].*bool"),
    (lambda: X.masked_fill(dc.tensor([True] * 4), dc.tensor([1.0])), ValueError, r"0-d"),
    (lambda: X.clone().masked_fill_(dc.tensor(np.ones((2, 3, 4), bool)), 1.0), ValueError,
     r"\[masked_fill_\]"),
    (lambda: X[dc.tensor([True, False])], IndexError, r"shape of the mask"),
    (lambda: X[dc.tensor([0, 1]), dc.tensor([0, 1, 2])], IndexError, r"broadcast"),
    (lambda: X[0, 0, 0], IndexError, r"too many indices"),
    (lambda: X[::-1], ValueError, r"step"),
    (lambda: X["a"], IndexError, r"valid indices"),
    (lambda: dc.index_put(X, (dc.tensor([0, 1]),), dc.tensor(np.ones((3, 4)))), ValueError,
     r"\[index_put\].*shape mismatch"),
    (lambda: dc.embedding(dc.tensor(np.ones(3)), dc.tensor([0])), ValueError,
     r"\[embedding\].*2-D"),
    (lambda: dc._C.one_hot(dc.tensor(np.zeros(0, np.int64))), ValueError, r"\[one_hot\]"),
    (lambda: dc.tensor([1.0]).expand(3).index_put_((dc.tensor([0]),), dc.tensor(2.0)),
     RuntimeError, r"share memory"),
])
def test_bad_input(fn, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn()


def test_inplace_autograd_rules():
    leaf = dc.tensor(randn(3, 4), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        leaf[dc.tensor([0])] = 1.0
    # Writes through a view of a graph tensor rewire the base's history (CopySlices).
    base = randn(3, 4)
    for lib, x in ((dc, dc.tensor(base, requires_grad=True)),
                   (torch, torch.tensor(base, requires_grad=True))):
        y = x * 2
        y[0][lib.tensor([1, 3])] = x[1, :2] * 5
        y[2].masked_fill_(y[2] > 0, 0.5)
        (y * y).sum().backward()
        if lib is dc:
            dc_grad = x.grad.numpy()
        else:
            np.testing.assert_allclose(dc_grad, x.grad.numpy(), rtol=1e-5)
    with dc.no_grad():
        leaf[dc.tensor([0]), 1] = 7.0
    assert leaf.detach().numpy()[0, 1] == 7.0


def test_large_inputs_take_the_parallel_paths():
    x = randn(300, 257)
    i = randint(300, 70000, low=-300)
    check(lambda a, k: a[k], lambda a, k: a[k], x, idx=[i])  # backward: accumulate, many dups
    g = randint(257, 300, 400)
    check(lambda a, k: a.gather(1, k), lambda a, k: a.gather(1, k), x, idx=[g])
    m = RNG.random((300, 257)) > 0.5
    check(lambda a, k: a[k], lambda a, k: a[k], x, idx=[m])
