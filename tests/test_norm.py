"""batch_norm / group_norm / instance_norm against torch: forward, backward (fused kernel and
the composite path under create_graph), running-statistics updates, gradcheck, errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepcore as dc
import deepcore.nn.functional as F
from helpers import assert_close, check_op, gradcheck_op


@pytest.mark.parametrize("shape", [(4, 3), (3, 5, 7), (2, 3, 5, 4), (1, 2, 3, 3)])
def test_batch_norm_training_matches_torch(shape):
    C = shape[1]
    # torch 2.13's CPU batch_norm backward reads a non-contiguous weight as if it were
    # contiguous (wrong grad_input), so the oracle gets a contiguous copy.
    check_op(lambda x, w, b: F.batch_norm(x, None, None, w, b, True, 0.1, 1e-5),
             lambda x, w, b: TF.batch_norm(x, None, None, w.contiguous(), b, True, 0.1, 1e-5),
             [(shape, (C,), (C,))], rtol=1e-4, atol=1e-5, grad_rtol=1e-3, grad_atol=1e-4)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5, 4)])
def test_batch_norm_eval_matches_torch(shape):
    C = shape[1]
    rng = np.random.default_rng(0)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)

    def fn(lib, F_):
        return lambda x, w, b: F_.batch_norm(x, lib.tensor(rm, dtype=x.dtype),
                                             lib.tensor(rv, dtype=x.dtype), w.contiguous(), b,
                                             False)
    check_op(fn(dc, F), fn(torch, TF), [(shape, (C,), (C,))], rtol=1e-5, atol=1e-5,
             grad_rtol=1e-4, grad_atol=1e-5)


def test_batch_norm_without_affine_and_running_stats_update():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4, 3, 5)) * 3 + 2
    stats = {}
    for lib, F_ in ((dc, F), (torch, TF)):
        rm, rv = lib.zeros(4, dtype=lib.float64), lib.ones(4, dtype=lib.float64)
        xt = lib.tensor(x, requires_grad=True)
        y = F_.batch_norm(xt, rm, rv, training=True, momentum=0.3)
        (y * y * y).sum().backward()
        stats[lib.__name__] = (y, rm, rv, xt.grad)
    for a, e in zip(stats["deepcore"], stats["torch"]):
        assert_close(a, e, rtol=1e-9, atol=1e-9)


def test_batch_norm_double_backward_matches_torch():
    rng = np.random.default_rng(2)
    xs, ws, bs = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal(3), rng.standard_normal(3)
    res = []
    for lib, F_ in ((dc, F), (torch, TF)):
        x, w, b = (lib.tensor(v, requires_grad=True) for v in (xs, ws, bs))
        y = F_.batch_norm(x, None, None, w, b, True)
        gx, gw = lib.autograd.grad((y ** 3).sum(), [x, w], create_graph=True)
        g2 = lib.autograd.grad((gx ** 2).sum() + (gw ** 2).sum(), [x, w, b], allow_unused=True)
        res.append([gx, gw, *[g for g in g2 if g is not None]])
    for a, e in zip(*res):
        assert_close(a, e, rtol=1e-8, atol=1e-9)


def test_batch_norm_gradcheck():
    assert gradcheck_op(lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
                        [(3, 2, 2, 3), (2,), (2,)])


@pytest.mark.parametrize("shape,groups", [((2, 6, 4, 5), 3), ((3, 4, 7), 2), ((2, 4, 3, 3), 1),
                                          ((2, 4, 3, 3), 4)])
def test_group_norm_matches_torch(shape, groups):
    C = shape[1]
    check_op(lambda x, w, b: F.group_norm(x, groups, w, b),
             lambda x, w, b: TF.group_norm(x, groups, w, b), [(shape, (C,), (C,))],
             rtol=1e-4, atol=1e-5, grad_rtol=1e-3, grad_atol=1e-4)
    assert gradcheck_op(lambda x: F.group_norm(x, groups), [(1,) + shape[1:]])


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (3, 2, 7)])
def test_instance_norm_matches_torch(shape):
    C = shape[1]
    check_op(lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
             lambda x, w, b: TF.instance_norm(x, weight=w, bias=b), [(shape, (C,), (C,))],
             rtol=1e-4, atol=1e-5, grad_rtol=1e-3, grad_atol=1e-4)


def test_instance_norm_running_stats():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 4, 5)) + 1
    out = {}
    for lib, F_ in ((dc, F), (torch, TF)):
        rm, rv = lib.zeros(2, dtype=lib.float64), lib.ones(2, dtype=lib.float64)
        y = F_.instance_norm(lib.tensor(x), rm, rv, use_input_stats=True, momentum=0.2)
        y2 = F_.instance_norm(lib.tensor(x), rm, rv, use_input_stats=False)
        out[lib.__name__] = (y, rm, rv, y2)
    for a, e in zip(out["deepcore"], out["torch"]):
        assert_close(a, e, rtol=1e-9, atol=1e-9)


def test_norm_errors_name_the_op():
    with pytest.raises(ValueError, match=r"\[batch_norm\] expected more than 1 value"):
        F.batch_norm(dc.zeros(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"\[batch_norm\] expected weight of shape \(3,\)"):
        F.batch_norm(dc.zeros(2, 3), None, None, dc.ones(4), training=True)
    with pytest.raises(ValueError, match=r"\[batch_norm\] running_mean and running_var are "):
        F.batch_norm(dc.zeros(2, 3), None, None, training=False)
    with pytest.raises(ValueError, match=r"\[group_norm\].*divisible by num_groups=4"):
        F.group_norm(dc.zeros(2, 6, 3), 4)
    with pytest.raises(ValueError, match=r"\[instance_norm\]"):
        F.instance_norm(dc.zeros(2, 3))
