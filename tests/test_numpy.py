"""deepcore.numpy against NumPy (values, shapes, dtypes) and torch (gradients), the
explicit-key deepcore.random, jax.nn's names in deepcore.nn, and JAX's seed example."""
import math

import numpy as np
import pytest
import torch

import deepcore as dc
import deepcore.numpy as jnp
import deepcore.random  # noqa: F401  (deepcore.random as an attribute of the package)
from deepcore import random as jr

RNG = np.random.default_rng(0)


def _np_dtype(d):
    return {dc.float32: np.float32, dc.float64: np.float64, dc.int32: np.int32,
            dc.int64: np.int64, dc.bool: np.bool_}[d]


def close(got, want, rtol=1e-5, atol=1e-6, dtype=None):
    """got is a deepcore tensor equal (to float32 rounding) to want, with want's shape."""
    assert isinstance(got, dc.Tensor), type(got)
    want = np.asarray(want)
    assert tuple(got.shape) == want.shape, (tuple(got.shape), want.shape)
    if dtype is not None:
        assert got.dtype == dtype, got.dtype
    np.testing.assert_allclose(got.detach().numpy().astype(np.float64), want.astype(np.float64),
                               rtol=rtol, atol=atol)


def check_grad(dc_fn, torch_fn, *arrays, rtol=1e-4, atol=1e-5):
    """d/dx sum(f(x) * w) from deepcore.autograd.grad and torch.autograd.grad agree."""
    xs = [dc.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = dc_fn(*xs), torch_fn(*ts)
    close(out, tout.detach().numpy(), rtol, atol)
    w = RNG.standard_normal(tuple(tout.shape)).astype(np.float32)
    got = dc.autograd.grad(dc.sum(out * dc.tensor(w)), xs)
    want = torch.autograd.grad((tout * torch.tensor(w)).sum(), ts)
    for g, t in zip(got, want):
        close(g, t.numpy(), rtol, atol)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ---- creation ---------------------------------------------------------------------------------

CREATION = [
    (lambda m: m.zeros((2, 3)), None),
    (lambda m: m.ones(4), None),
    (lambda m: m.full((2, 2), 7), dc.int64),
    (lambda m: m.full((2, 2), 2.5), dc.float32),
    (lambda m: m.zeros_like(m.ones((2, 3), dtype=m.int32)), dc.int32),
    (lambda m: m.ones_like(m.zeros(3)), dc.float32),
    (lambda m: m.full_like(m.zeros((2, 1)), 3.0), dc.float32),
    (lambda m: m.empty_like(m.zeros((2, 1))).shape, None),
    (lambda m: m.arange(5), dc.int64),
    (lambda m: m.arange(10.0), dc.float32),
    (lambda m: m.arange(1, 2, 0.25), dc.float32),
    (lambda m: m.arange(5, 0, -2), dc.int64),
    (lambda m: m.linspace(0, 1, 5), dc.float32),
    (lambda m: m.linspace(0, 1, 4, endpoint=False), dc.float32),
    (lambda m: m.linspace(2, 3, 5, retstep=True)[1], None),
    (lambda m: m.eye(3), dc.float32),
    (lambda m: m.eye(3, 4, k=1), dc.float32),
    (lambda m: m.eye(4, 3, k=-2), dc.float32),
    (lambda m: m.identity(2), dc.float32),
    (lambda m: m.tri(3, 4, k=1), dc.float32),
    (lambda m: m.tril(m.arange(12).reshape(3, 4), -1), dc.int64),
    (lambda m: m.triu(m.arange(12).reshape(3, 4), 1), dc.int64),
    (lambda m: m.array([[1, 2], [3, 4]]), dc.int64),
    (lambda m: m.array([1.5, 2.0]), dc.float32),
    (lambda m: m.array(3.0), dc.float32),
    (lambda m: m.array([1, 2], ndmin=3), dc.int64),
    (lambda m: m.asarray(np.arange(3.0)), dc.float64),
    (lambda m: m.asarray([True, False]), dc.bool),
]


@pytest.mark.parametrize("i", range(len(CREATION)))
def test_creation_matches_numpy(i):
    make, dtype = CREATION[i]
    got, want = make(jnp), make(np)
    if isinstance(want, (tuple, float)):
        assert tuple(got) == want if isinstance(want, tuple) else math.isclose(got, want)
        return
    close(got, want, dtype=dtype)


def test_meshgrid_indexing_and_sparse():
    x, y = np.arange(3.0), np.arange(4.0)
    for indexing in ("xy", "ij"):
        for sparse in (False, True):
            got = jnp.meshgrid(jnp.asarray(x), jnp.asarray(y), indexing=indexing, sparse=sparse)
            for g, w in zip(got, np.meshgrid(x, y, indexing=indexing, sparse=sparse)):
                close(g, w)


def test_array_of_tensors_and_asarray_sharing():
    a = dc.tensor([1.0, 2.0], requires_grad=True)
    stacked = jnp.array([a, a * 2])
    (g,) = dc.autograd.grad(jnp.sum(stacked), [a])
    close(g, [3.0, 3.0])
    assert jnp.asarray(a) is a  # asarray shares; array copies
    assert jnp.array(a) is not a
    assert jnp.zeros(3, dtype=np.float64).dtype == jnp.float64
    assert jnp.ones(2, dtype="int32").dtype == jnp.int32


# ---- elementwise -------------------------------------------------------------------------------

POSITIVE = RNG.uniform(0.2, 0.9, (3, 4)).astype(np.float32)  # inside every domain below
UNARY = ["abs", "negative", "positive", "sqrt", "square", "exp", "exp2", "expm1", "log",
         "log2", "log10", "log1p", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh",
         "cosh", "tanh", "arcsinh", "arctanh", "sign", "floor", "ceil", "trunc",
         "reciprocal", "isnan", "isinf", "isfinite", "logical_not"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_matches_numpy(name):
    x = POSITIVE * 2 - 0.9 if name not in ("sqrt", "log", "log2", "log10", "arccosh") \
        else POSITIVE
    close(getattr(jnp, name)(x), getattr(np, name)(x), rtol=2e-6)


def test_arccosh_round_and_integer_inputs():
    close(jnp.arccosh(POSITIVE + 1), np.arccosh(POSITIVE + 1), rtol=2e-6)
    halves = np.array([0.5, 1.5, 2.5, -0.5, 1.25], np.float32)
    close(jnp.round(halves), np.round(halves))
    close(jnp.round(np.array([1.234, -5.678], np.float32), 1), [1.2, -5.7], atol=1e-6)
    close(jnp.sqrt(np.array([4, 9])), [2.0, 3.0], dtype=dc.float32)
    close(jnp.divide(np.array([1, 3]), 2), [0.5, 1.5], dtype=dc.float32)


@pytest.mark.parametrize("name", ["sin", "exp", "log", "tanh", "arctan", "sqrt", "arcsinh",
                                  "log1p", "expm1", "square", "abs", "reciprocal"])
def test_unary_gradient_matches_torch(name):
    check_grad(getattr(jnp, name), getattr(torch, name), POSITIVE)


BINARY = ["add", "subtract", "multiply", "divide", "true_divide", "power", "maximum",
          "minimum", "arctan2", "logaddexp", "hypot", "equal", "not_equal", "less",
          "less_equal", "greater", "greater_equal", "logical_and", "logical_or",
          "logical_xor", "floor_divide", "remainder", "heaviside"]


@pytest.mark.parametrize("name", BINARY)
def test_binary_matches_numpy_with_broadcasting(name):
    a = np.round(POSITIVE * 4, 1) - 1
    b = np.round(POSITIVE[0] * 3, 1)
    if name == "power":
        a = np.abs(a)  # a negative base to a fractional power is NaN
    close(getattr(jnp, name)(a, b), getattr(np, name)(a, b), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "power",
                                  "maximum", "arctan2", "logaddexp", "hypot"])
def test_binary_gradient_matches_torch(name):
    torch_fn = torch.pow if name == "power" else getattr(torch, name)
    check_grad(getattr(jnp, name), torch_fn, POSITIVE + 0.1, POSITIVE[1:2] + 0.5)


def test_scalars_are_weakly_typed():
    x = jnp.ones(3)
    assert jnp.multiply(x, 2.5).dtype == jnp.float32
    assert jnp.maximum(0, x).dtype == jnp.float32
    assert jnp.add(jnp.arange(3), 1).dtype == jnp.int64
    assert jnp.add(jnp.arange(3), 0.5).dtype == jnp.float32
    close(jnp.add(1, 2), 3)
    close(jnp.power(2.0, jnp.arange(3.0)), [1.0, 2.0, 4.0])


def test_clip_where_and_heaviside():
    x = np.linspace(-2, 2, 9).astype(np.float32)
    close(jnp.clip(x, -1, 0.5), np.clip(x, -1, 0.5))
    close(jnp.clip(x, max=0.5), np.clip(x, None, 0.5))
    close(jnp.where(x > 0, x, 0.0), np.where(x > 0, x, 0.0))
    for got, want in zip(jnp.where(x > 0), np.where(x > 0)):
        close(got, want)
    close(jnp.heaviside(x, 0.5), np.heaviside(x, 0.5))
    xt = dc.tensor(x, requires_grad=True)
    (g,) = dc.autograd.grad(jnp.sum(jnp.clip(xt, -1, 0.5) * 3), [xt])
    close(g, np.where((x >= -1) & (x <= 0.5), 3.0, 0.0))  # torch's clamp: 1 at the bounds


# ---- reductions ----------------------------------------------------------------------------

X3 = RNG.standard_normal((2, 3, 4)).astype(np.float32)
AXES = [None, 0, 1, -1, (0, 2), (), (2, 0, 1)]
REDUCTIONS = ["sum", "mean", "prod", "max", "min", "amax", "amin", "std", "var", "all", "any"]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_axis_keepdims(name, axis, keepdims):
    x = X3 > 0 if name in ("all", "any") else X3
    close(getattr(jnp, name)(x, axis=axis, keepdims=keepdims),
          getattr(np, name)(x, axis=axis, keepdims=keepdims), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("name", ["argmax", "argmin", "cumsum", "cumprod"])
def test_index_and_cumulative_reductions(name, axis):
    close(getattr(jnp, name)(X3, axis=axis), getattr(np, name)(X3, axis=axis), rtol=1e-5)


def test_reduction_options():
    close(jnp.argmax(X3, axis=1, keepdims=True), np.argmax(X3, axis=1, keepdims=True))
    close(jnp.var(X3, axis=(0, 1), ddof=1), np.var(X3, axis=(0, 1), ddof=1), rtol=1e-5)
    close(jnp.std(X3, ddof=1), np.std(X3, ddof=1), rtol=1e-5)
    close(jnp.sum(X3, axis=1, initial=2.0), np.sum(X3, axis=1, initial=2.0), rtol=1e-5)
    mask = X3 > 0
    close(jnp.sum(X3, axis=2, where=mask), np.sum(X3, axis=2, where=mask), rtol=1e-5)
    close(jnp.max(X3, axis=0, initial=0.5), np.max(X3, axis=0, initial=0.5))
    close(jnp.mean(np.arange(6).reshape(2, 3), axis=0), [1.5, 2.5, 3.5], dtype=dc.float32)
    assert jnp.sum(np.array([True, True, False])).item() == 2
    close(jnp.average(X3, axis=1, weights=np.array([1.0, 2.0, 3.0], np.float32)),
          np.average(X3, axis=1, weights=[1.0, 2.0, 3.0]), rtol=1e-5)
    close(jnp.ptp(X3, axis=1), np.ptp(X3, axis=1))
    with pytest.raises(ValueError, match="axis 3 is out of bounds"):
        jnp.sum(X3, axis=3)
    with pytest.raises(NotImplementedError, match="out="):
        jnp.sum(X3, out=X3)


@pytest.mark.parametrize("name,torch_fn", [
    ("sum", lambda t: t.sum(dim=(0, 2), keepdim=True)),
    ("mean", lambda t: t.mean(dim=(0, 2), keepdim=True)),
    ("prod", lambda t: t.prod(dim=0).prod(dim=1).reshape(1, 3, 1)),
    ("max", lambda t: t.amax(dim=(0, 2), keepdim=True)),
    ("var", lambda t: t.var(dim=(0, 2), keepdim=True, correction=0)),
    ("std", lambda t: t.std(dim=(0, 2), keepdim=True, correction=0)),
])
def test_reduction_gradient_matches_torch(name, torch_fn):
    check_grad(lambda x: getattr(jnp, name)(x, axis=(0, 2), keepdims=True), torch_fn,
               X3 * 0.5 + 1.5)


def test_cumsum_gradient_matches_torch():
    check_grad(lambda x: jnp.cumprod(x, axis=1), lambda t: torch.cumprod(t, 1), X3 + 2)
    check_grad(lambda x: jnp.cumsum(x), lambda t: torch.cumsum(t.reshape(-1), 0), X3)


# ---- products and linear algebra -------------------------------------------------------------

DOT_SHAPES = [((), (2, 3)), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
              ((2, 3, 4), (4,)), ((4,), (2, 4, 3)), ((2, 3, 4), (5, 4, 6)), ((2, 3), (2, 3, 2))]


@pytest.mark.parametrize("sa,sb", DOT_SHAPES, ids=str)
def test_dot_matches_numpy(sa, sb):
    a, b = randn(*sa), randn(*sb)
    close(jnp.dot(a, b), np.dot(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sa,sb", DOT_SHAPES[1:5] + DOT_SHAPES[7:8], ids=str)
def test_dot_gradient_matches_torch(sa, sb):
    def torch_dot(a, b):
        if a.ndim >= 2 and b.ndim >= 3:
            return torch.tensordot(a, b, dims=([a.ndim - 1], [b.ndim - 2]))
        return torch.matmul(a, b)
    check_grad(jnp.dot, torch_dot, randn(*sa), randn(*sb))


def test_products_match_numpy():
    a, b = randn(2, 3), randn(2, 3)
    m, v = randn(3, 4), randn(4)
    batch = randn(5, 2, 3)
    close(jnp.matmul(batch, m), np.matmul(batch, m), rtol=1e-5, atol=1e-5)
    close(jnp.vdot(a, b), np.vdot(a, b), rtol=1e-5)
    close(jnp.inner(a, b), np.inner(a, b), rtol=1e-5)
    close(jnp.inner(v, v), np.inner(v, v), rtol=1e-5)
    close(jnp.outer(a, v), np.outer(a, v), rtol=1e-5)
    t1, t2 = randn(2, 3, 4), randn(3, 4, 5)
    close(jnp.tensordot(t1, t2), np.tensordot(t1, t2), rtol=1e-5, atol=1e-5)
    t3 = randn(4, 2)
    close(jnp.tensordot(t1, t3, axes=1), np.tensordot(t1, t3, axes=1), rtol=1e-5, atol=1e-5)
    close(jnp.tensordot(t1, t3, axes=0), np.tensordot(t1, t3, axes=0), rtol=1e-5)
    close(jnp.tensordot(t1, t2, axes=([1, 2], [0, 1])), np.tensordot(t1, t2, ([1, 2], [0, 1])),
          rtol=1e-5, atol=1e-5)
    close(jnp.tensordot(t1, t2, axes=([1], [0])), np.tensordot(t1, t2, ([1], [0])),
          rtol=1e-5, atol=1e-5)
    close(jnp.einsum("ij,kj->ik", a, b), np.einsum("ij,kj->ik", a, b), rtol=1e-5)
    close(jnp.einsum("bij,jk->bik", batch, m), np.einsum("bij,jk->bik", batch, m), rtol=1e-5,
          atol=1e-5)
    sq = randn(4, 4)
    close(jnp.trace(sq), np.trace(sq), rtol=1e-5)
    close(jnp.trace(sq, offset=1), np.trace(sq, offset=1), rtol=1e-5)
    close(jnp.trace(t1, axis1=1, axis2=2), np.trace(t1, axis1=1, axis2=2), rtol=1e-5)
    close(jnp.diag(sq, k=-1), np.diag(sq, k=-1))
    close(jnp.diag(v, k=1), np.diag(v, k=1))
    close(jnp.diagonal(t1, 0, 1, 2), np.diagonal(t1, 0, 1, 2))
    close(jnp.kron(a, sq[:2, :2]), np.kron(a, sq[:2, :2]), rtol=1e-5)
    v1, v2 = randn(3), randn(3)
    close(jnp.cross(v1, v2), np.cross(v1, v2), rtol=1e-5, atol=1e-6)
    c1, c2 = randn(4, 3), randn(4, 3)
    close(jnp.cross(c1, c2), np.cross(c1, c2), rtol=1e-5, atol=1e-6)


def test_tensordot_and_einsum_gradients_match_torch():
    check_grad(lambda a, b: jnp.tensordot(a, b, axes=([1, 2], [0, 1])),
               lambda a, b: torch.tensordot(a, b, dims=([1, 2], [0, 1])),
               randn(2, 3, 4), randn(3, 4, 5))
    check_grad(lambda a, b: jnp.einsum("ij,jk->ik", a, b),
               lambda a, b: torch.einsum("ij,jk->ik", a, b), randn(2, 3), randn(3, 4))
    check_grad(jnp.outer, torch.outer, randn(3), randn(4))


@pytest.mark.parametrize("x,kwargs", [
    (randn(5), {}), (randn(5), {"ord": 1}), (randn(5), {"ord": 2}),
    (randn(5), {"ord": np.inf}), (randn(5), {"ord": -np.inf}), (randn(5), {"ord": 3}),
    (randn(5), {"ord": 0}), (randn(3, 4), {}), (randn(3, 4), {"ord": "fro"}),
    (randn(3, 4), {"ord": 1}), (randn(3, 4), {"ord": np.inf}), (randn(3, 4), {"ord": -1}),
    (randn(3, 4), {"axis": 1}), (randn(3, 4), {"axis": 0, "ord": 1, "keepdims": True}),
    (randn(2, 3, 4), {"axis": (2, 1), "ord": 1}), (randn(2, 3, 4), {"axis": (1, 2)}),
    (randn(2, 3, 4), {}),
], ids=lambda v: str(v) if isinstance(v, dict) else str(v.shape))
def test_norm_matches_numpy(x, kwargs):
    close(jnp.linalg.norm(x, **kwargs), np.linalg.norm(x, **kwargs), rtol=1e-5, atol=1e-6)


def test_norm_gradient_and_limits():
    check_grad(jnp.linalg.norm, torch.linalg.norm, randn(3, 4))
    check_grad(lambda x: jnp.linalg.norm(x, axis=1),
               lambda t: torch.linalg.vector_norm(t, dim=1), randn(3, 4))
    with pytest.raises(NotImplementedError, match="singular values"):
        jnp.linalg.norm(randn(3, 3), ord=2)


# ---- shape -------------------------------------------------------------------------------------

A = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
SHAPE_CASES = [
    lambda m: m.reshape(A, (4, -1)),
    lambda m: m.reshape(A, (6, 4), order="F"),
    lambda m: m.ravel(A),
    lambda m: m.expand_dims(A, 1),
    lambda m: m.expand_dims(A, (0, -1)),
    lambda m: m.squeeze(A[:1, :, :1]),
    lambda m: m.squeeze(A[:1, :, :1], axis=2),
    lambda m: m.transpose(A),
    lambda m: m.transpose(A, (1, 0, 2)),
    lambda m: m.swapaxes(A, 0, 2),
    lambda m: m.moveaxis(A, 0, -1),
    lambda m: m.moveaxis(A, [0, 1], [-1, 0]),
    lambda m: m.concatenate([A, A], axis=1),
    lambda m: m.concatenate([A, A[:1]]),
    lambda m: m.concatenate([A, A], axis=None),
    lambda m: m.stack([A, A], axis=-1),
    lambda m: m.hstack([A[0, 0], A[1, 0]]),
    lambda m: m.hstack([A[0], A[1]]),
    lambda m: m.vstack([A[0, 0], A[1, 0]]),
    lambda m: m.dstack([A[0], A[1]]),
    lambda m: m.column_stack([A[0, 0], A[1, 0]]),
    lambda m: m.broadcast_to(A[0, :1], (5, 3, 4)),
    lambda m: m.tile(A[0, 0], 2),
    lambda m: m.tile(A[0], (2, 1, 2)),
    lambda m: m.tile(A, (2,)),
    lambda m: m.repeat(A[0], 2),
    lambda m: m.repeat(A[0], 2, axis=1),
    lambda m: m.repeat(A[0, 0], [1, 0, 2, 1], axis=0),
    lambda m: m.flip(A),
    lambda m: m.flip(A, (0, 2)),
    lambda m: m.fliplr(A[0]),
    lambda m: m.flipud(A[0]),
    lambda m: m.roll(A, 5),
    lambda m: m.roll(A, -1, axis=1),
    lambda m: m.roll(A, (1, 2), axis=(0, 2)),
    lambda m: m.atleast_1d(A[0, 0, 0]),
    lambda m: m.atleast_2d(A[0, 0]),
    lambda m: m.atleast_3d(A[0, 0]),
    lambda m: m.atleast_3d(A[0]),
    lambda m: m.take(A, np.array([[0, 2], [3, 1]]), axis=2),
    lambda m: m.take(A, np.array([5, 0])),
    lambda m: m.take_along_axis(A, np.argsort(-A, axis=1), axis=1),
]


@pytest.mark.parametrize("i", range(len(SHAPE_CASES)))
def test_shape_functions_match_numpy(i):
    close(SHAPE_CASES[i](jnp), SHAPE_CASES[i](np))


def test_split_and_queries():
    for sections in (3, [1, 4], [-2]):
        got, want = jnp.split(np.arange(6.0), sections), np.split(np.arange(6.0), sections)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            close(g, w)
    for g, w in zip(jnp.array_split(A, 3, axis=2), np.array_split(A, 3, axis=2)):
        close(g, w)
    with pytest.raises(ValueError, match="equal division"):
        jnp.split(np.arange(5.0), 2)
    with pytest.raises(ValueError, match="size is not 1"):
        jnp.squeeze(A, axis=0)
    assert jnp.shape(A) == (2, 3, 4) and jnp.ndim(A) == 3 and jnp.size(A) == 24
    assert jnp.size(A, 1) == 3 and jnp.shape(3.0) == ()
    for g, w in zip(jnp.broadcast_arrays(A[0, :, :1], A[1, :1]), np.broadcast_arrays(
            A[0, :, :1], A[1, :1])):
        close(g, w)


def test_shape_gradients_match_torch():
    check_grad(lambda x: jnp.tile(jnp.moveaxis(x, 0, -1), (2, 1, 1)),
               lambda t: torch.tile(torch.movedim(t, 0, -1), (2, 1, 1)), A)
    check_grad(lambda x, y: jnp.concatenate([jnp.roll(x, 3), y], axis=1),
               lambda s, t: torch.cat([torch.roll(s, 3), t], 1), A, A[:, :1])
    check_grad(lambda x: jnp.stack(jnp.split(x, 2, axis=2), axis=0),
               lambda t: torch.stack(torch.split(t, 2, dim=2), 0), A)
    check_grad(lambda x: jnp.repeat(jnp.flip(x, 1), 2, axis=0),
               lambda t: torch.repeat_interleave(torch.flip(t, (1,)), 2, 0), A)


# ---- dtypes and constants -----------------------------------------------------------------------

def test_dtypes_and_constants():
    assert (jnp.float32, jnp.float64, jnp.int32, jnp.int64, jnp.bool_) == \
        (dc.float32, dc.float64, dc.int32, dc.int64, dc.bool)
    assert jnp.pi == np.pi and jnp.e == np.e and jnp.inf == np.inf and math.isnan(jnp.nan)
    assert jnp.newaxis is None
    assert jnp.ones((2, 3))[:, jnp.newaxis].shape == (2, 1, 3)
    assert jnp.arange(3, dtype=jnp.float64).dtype == jnp.float64
    assert jnp.astype(jnp.arange(3), jnp.float32).dtype == jnp.float32
    assert jnp.issubdtype(jnp.float32, jnp.floating)
    assert not jnp.issubdtype(jnp.int32, jnp.floating)
    assert isinstance(jnp.zeros(2), jnp.ndarray)
    for name in jnp.__all__:
        obj = getattr(jnp, name)
        if callable(obj) and not isinstance(obj, type) and not isinstance(obj, dc.dtype):
            assert obj.__doc__, name


# ---- deepcore.random -------------------------------------------------------------------------

def test_keys_are_values():
    k = jr.PRNGKey(0)
    assert k.shape == (2,) and k.dtype == dc.int64 and k.tolist() == [0, 0]
    assert jr.PRNGKey(42).tolist() == [0, 42]
    assert jr.PRNGKey(2 ** 32 + 7).tolist() == [1, 7]
    assert jr.key(5).tolist() == jr.PRNGKey(5).tolist()
    before = k.tolist()
    jr.normal(k, (10,))
    jr.split(k)
    assert k.tolist() == before
    with pytest.raises(TypeError, match="expected a key"):
        jr.normal(dc.tensor([1.0, 2.0]))


@pytest.mark.parametrize("sampler", [
    lambda k: jr.normal(k, (1000,)),
    lambda k: jr.uniform(k, (7, 3), minval=-2, maxval=5),
    lambda k: jr.randint(k, (50,), 0, 1000),
    lambda k: jr.bernoulli(k, 0.3, (100,)),
    lambda k: jr.permutation(k, 20),
    lambda k: jr.categorical(k, jnp.zeros((5, 10))),
    lambda k: jr.choice(k, 10, (4,), replace=False),
    lambda k: jr.normal(k, (), dtype=jnp.float64),
])
def test_same_key_same_numbers_regardless_of_global_seed(sampler):
    k = jr.PRNGKey(1234)
    dc.manual_seed(1)
    first = sampler(k).numpy().copy()
    dc.manual_seed(2)
    dc.randn(10)
    second = sampler(jr.PRNGKey(1234)).numpy()
    np.testing.assert_array_equal(first, second)
    other = sampler(jr.PRNGKey(1235)).numpy()
    assert first.shape == other.shape
    if first.size > 1:
        assert not np.array_equal(first, other)


def test_split_and_fold_in_give_independent_streams():
    k = jr.PRNGKey(0)
    ks = jr.split(k, 4)
    assert ks.shape == (4, 2) and ks.dtype == dc.int64
    assert len({tuple(x) for x in ks.tolist()} | {tuple(k.tolist())}) == 5
    a, b = jr.split(k)
    assert jr.split(k)[0].tolist() == a.tolist()  # deterministic
    n = 100_000
    samples = [jr.normal(x, (n,)).numpy().astype(np.float64) for x in (k, a, b)]
    samples.append(jr.normal(jr.fold_in(k, 1), (n,)).numpy().astype(np.float64))
    samples.append(jr.normal(jr.fold_in(k, 2), (n,)).numpy().astype(np.float64))
    corr = np.corrcoef(np.stack(samples))
    # |r| of independent streams has standard error 1/sqrt(n) = 0.0032; 0.02 is over 6 of them.
    assert np.all(np.abs(corr[np.triu_indices(len(samples), 1)]) < 0.02)
    assert jr.fold_in(k, 1).tolist() != jr.fold_in(k, 2).tolist()
    assert jr.fold_in(k, 1).tolist() == jr.fold_in(jr.PRNGKey(0), 1).tolist()


def test_sample_statistics():
    n = 100_000
    k1, k2, k3, k4 = jr.split(jr.PRNGKey(7), 4)
    x = jr.normal(k1, (n,)).numpy().astype(np.float64)
    assert x.dtype == np.float64 and jr.normal(k1, (2, 3)).dtype == dc.float32
    # standard errors: mean 1/sqrt(n) = 0.0032, variance sqrt(2/n) = 0.0045
    assert abs(x.mean()) < 0.02 and abs(x.var() - 1) < 0.03
    u = jr.uniform(k2, (n,)).numpy().astype(np.float64)
    # standard errors: mean 0.29/sqrt(n) = 0.0009, variance 0.00024
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.006 and abs(u.var() - 1 / 12) < 0.0015
    w = jr.uniform(k2, (n,), minval=-3.0, maxval=-1.0).numpy()
    assert w.min() >= -3 and w.max() < -1
    r = jr.randint(k3, (n,), -5, 5).numpy()
    assert r.min() == -5 and r.max() == 4 and r.dtype == np.int64
    assert np.all(np.abs(np.bincount(r + 5) / n - 0.1) < 0.006)  # SE 0.00095
    bern = jr.bernoulli(k4, 0.3, (n,)).numpy()
    assert bern.dtype == np.bool_ and abs(bern.mean() - 0.3) < 0.01  # SE 0.0014
    logits = np.log(np.array([0.1, 0.2, 0.7], np.float32))
    cats = jr.categorical(k1, logits, shape=(n,)).numpy()
    assert np.all(np.abs(np.bincount(cats, minlength=3) / n - [0.1, 0.2, 0.7]) < 0.01)


def test_permutation_choice_and_shapes():
    k = jr.PRNGKey(3)
    assert sorted(jr.permutation(k, 10).tolist()) == list(range(10))
    x = dc.tensor(A, requires_grad=True)
    p = jr.permutation(k, x, axis=1)
    assert sorted(p[0, :, 0].tolist()) == A[0, :, 0].tolist()
    (g,) = dc.autograd.grad(jnp.sum(p * 2), [x])
    close(g, np.full(A.shape, 2.0))
    ind = jr.permutation(k, A[0], axis=1, independent=True).numpy()
    assert np.array_equal(np.sort(ind, axis=1), A[0])
    c = jr.choice(k, A[0], (5,), axis=1)
    assert c.shape == (3, 5)
    assert set(c.numpy().ravel().tolist()) <= set(A[0].ravel().tolist())
    assert sorted(jr.choice(k, 6, (6,), replace=False).tolist()) == list(range(6))
    assert jr.categorical(k, jnp.zeros((4, 3)), axis=0).shape == (3,)
    assert jr.categorical(k, jnp.zeros((4, 3)), shape=(2, 4)).shape == (2, 4)
    assert jr.gumbel(k, (3,)).shape == (3,) and jr.exponential(k, 2).numpy().min() > 0


def test_torch_random_functions_kept():
    with jr.fork_rng():
        jr.manual_seed(3)
        a = dc.rand(3).tolist()
    jr.manual_seed(3)
    assert dc.rand(3).tolist() == a
    state = jr.get_rng_state()
    b = dc.rand(2).tolist()
    jr.set_rng_state(state)
    assert dc.rand(2).tolist() == b and jr.initial_seed() == 3


# ---- deepcore.nn: jax.nn's functions ------------------------------------------------------------

def test_nn_has_jax_activations():
    x = randn(3, 4)
    t = torch.tensor(x)
    close(dc.nn.sigmoid(dc.tensor(x)), torch.sigmoid(t).numpy())
    close(dc.nn.relu(dc.tensor(x)), torch.relu(t).numpy())
    close(dc.nn.softmax(dc.tensor(x), axis=0), torch.softmax(t, 0).numpy())
    close(dc.nn.softmax(dc.tensor(x)), torch.softmax(t, -1).numpy())
    close(dc.nn.log_softmax(dc.tensor(x), axis=0), torch.log_softmax(t, 0).numpy())
    close(dc.nn.gelu(dc.tensor(x)), torch.nn.functional.gelu(t, approximate="tanh").numpy())
    close(dc.nn.gelu(dc.tensor(x), approximate=False), torch.nn.functional.gelu(t).numpy())
    close(dc.nn.tanh(dc.tensor(x)), torch.tanh(t).numpy())
    close(dc.nn.softplus(dc.tensor(x)), torch.nn.functional.softplus(t).numpy())
    close(dc.nn.silu(dc.tensor(x)), torch.nn.functional.silu(t).numpy())
    assert dc.nn.ReLU is not dc.nn.relu and dc.nn.functional.softmax is not dc.nn.softmax


# ---- the JAX seed example ---------------------------------------------------------------------

def test_jax_seed_example_grads_match_torch():
    import deepcore as jax
    import deepcore.numpy as jnp
    from deepcore.func import grad

    def predict(params, x):
        w1, b1, w2, b2 = params
        h = jnp.maximum(0, jnp.dot(x, w1) + b1)  # ReLU
        return jax.nn.sigmoid(jnp.dot(h, w2) + b2)

    def loss(params, x, y):
        preds = predict(params, x)
        return jnp.mean((preds - y) ** 2)

    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (10,))
    y = jnp.array(1.0)
    params = [
        jax.random.normal(key, (10, 5)), jnp.zeros(5),
        jax.random.normal(key, (5, 1)), jnp.zeros(1)
    ]
    grads = grad(loss)(params, x, y)

    tp = [torch.tensor(p.numpy(), requires_grad=True) for p in params]
    tx, ty = torch.tensor(x.numpy()), torch.tensor(1.0)
    h = torch.clamp(tx @ tp[0] + tp[1], min=0)
    tloss = ((torch.sigmoid(h @ tp[2] + tp[3]) - ty) ** 2).mean()
    want = torch.autograd.grad(tloss, tp)
    assert len(grads) == 4
    for g, w, p in zip(grads, want, params):
        assert g.shape == p.shape
        close(g, w.numpy(), rtol=1e-4, atol=1e-6)
    assert float(jnp.linalg.norm(grads[0])) > 0
