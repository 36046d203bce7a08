"""Ops composed in Python (deepcore/_composite.py) against PyTorch, forward and backward."""
import numpy as np
import pytest
import torch

import deepcore as dc


def _pair(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrs = [rng.standard_normal(s) for s in shapes]
    return ([dc.tensor(a, requires_grad=True) for a in arrs],
            [torch.tensor(a, requires_grad=True) for a in arrs])


@pytest.mark.parametrize("name,fn", [
    ("clamp_min", lambda lib, x: lib.clamp_min(x, 0.1)),
    ("clamp_max", lambda lib, x: x.clamp_max(-0.2)),
    ("lerp", lambda lib, x: lib.lerp(x, x * 2 + 1, 0.3)),
    ("addcmul", lambda lib, x: lib.addcmul(x, x, x.exp(), value=0.5)),
    ("addcdiv", lambda lib, x: lib.addcdiv(x, x, x.exp(), value=-2)),
    ("roll", lambda lib, x: lib.roll(x, 2, 1)),
    ("roll2", lambda lib, x: lib.roll(x, (1, -3), (0, 1))),
    ("roll_flat", lambda lib, x: lib.roll(x, 5)),
    ("diag", lambda lib, x: lib.diag(x)),
    ("diag_k", lambda lib, x: lib.diag(x, -1)),
    ("diag_vec", lambda lib, x: lib.diag(x[0], 2)),
    ("trace", lambda lib, x: lib.trace(x)),
    ("fliplr", lambda lib, x: lib.fliplr(x)),
    ("flipud", lambda lib, x: x.flipud()),
])
def test_composite_forward_backward(name, fn):
    (d,), (t,) = _pair((4, 5))
    dy, ty = fn(dc, d), fn(torch, t)
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    dy.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_isclose_allclose_nan_to_num():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 1e-9, 2.0])
    b = np.array([1.0 + 1e-7, np.nan, np.inf, 1.0, 0.0, 2.1])
    for equal_nan in (False, True):
        np.testing.assert_array_equal(
            dc.isclose(dc.tensor(a), dc.tensor(b), equal_nan=equal_nan).numpy(),
            torch.isclose(torch.tensor(a), torch.tensor(b), equal_nan=equal_nan).numpy())
    assert dc.allclose(dc.tensor([1.0, 2.0]), dc.tensor([1.0, 2.0 + 1e-9]))
    assert not dc.tensor([1.0]).allclose(dc.tensor([1.1]))
    for kw in ({}, {"nan": 1.5, "posinf": 9.0, "neginf": -9.0}):
        np.testing.assert_array_equal(dc.nan_to_num(dc.tensor(a), **kw).numpy(),
                                      torch.nan_to_num(torch.tensor(a), **kw).numpy())


def test_meshgrid_and_broadcast_tensors():
    x, y = np.arange(3.0), np.arange(4.0)
    for indexing in ("ij", "xy"):
        ds = dc.meshgrid(dc.tensor(x), dc.tensor(y), indexing=indexing)
        ts = torch.meshgrid(torch.tensor(x), torch.tensor(y), indexing=indexing)
        for d, t in zip(ds, ts):
            np.testing.assert_array_equal(d.numpy(), t.numpy())
    a, b = dc.broadcast_tensors(dc.ones(3, 1), dc.zeros(4))
    assert tuple(a.shape) == tuple(b.shape) == (3, 4)
    with pytest.raises(ValueError, match="broadcast_tensors"):
        dc.broadcast_tensors(dc.ones(3), dc.ones(4))


def test_new_constructors_keep_dtype():
    t = dc.ones(2, dtype=dc.float64)
    assert t.new_zeros(3, 4).dtype == dc.float64 and tuple(t.new_zeros((3, 4)).shape) == (3, 4)
    assert t.new_ones(2).numpy().tolist() == [1.0, 1.0]
    assert t.new_full((2,), 7).numpy().tolist() == [7.0, 7.0]
    assert t.new_empty(5).shape == (5,)
    assert t.new_tensor([1, 2]).dtype == dc.float64
    assert t.new_zeros(2, dtype=dc.int64).dtype == dc.int64
    assert t.new_ones(2, requires_grad=True).requires_grad
    assert dc.ones(1).type() == "deepcore.FloatTensor"
    assert dc.ones(1).type(dc.float64).dtype == dc.float64
