"""deepcore.optim.lr_scheduler against torch.optim.lr_scheduler: identical lr sequences."""
import math
import warnings

import deepcore as dc
import numpy as np
import pytest
import torch
from deepcore import optim
from deepcore.optim import lr_scheduler as dsched
from torch.optim import lr_scheduler as tsched


def make_opts(name="SGD", lrs=(0.1, 0.01), **kwargs):
    tgroups = [dict(params=[torch.zeros(2, requires_grad=True)], lr=lr) for lr in lrs]
    dgroups = [dict(params=[dc.zeros(2, requires_grad=True)], lr=lr) for lr in lrs]
    return (getattr(torch.optim, name)(tgroups, **kwargs),
            getattr(optim, name)(dgroups, **kwargs))


def trace(opt, sched, steps, metrics=None, keys=("lr",)):
    out = [[[g[k] for k in keys] for g in opt.param_groups] + [list(sched.get_last_lr())]]
    for i in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        out.append([[g[k] for k in keys] for g in opt.param_groups] + [list(sched.get_last_lr())])
    return out


def assert_same(a, b):
    fa = np.array([x for row in a for x in _flatten(row)], dtype=np.float64)
    fb = np.array([x for row in b for x in _flatten(row)], dtype=np.float64)
    assert fa.shape == fb.shape
    np.testing.assert_allclose(fb, fa, rtol=1e-12, atol=1e-15)


def _flatten(x):
    if isinstance(x, (list, tuple)):
        for y in x:
            yield from _flatten(y)
    else:
        yield float(x)


SCHEDULERS = [
    ("StepLR", lambda m, o: m.StepLR(o, step_size=7, gamma=0.5), 100),
    ("MultiStepLR", lambda m, o: m.MultiStepLR(o, milestones=[10, 30, 30, 80], gamma=0.3), 120),
    ("ExponentialLR", lambda m, o: m.ExponentialLR(o, gamma=0.97), 150),
    ("CosineAnnealingLR", lambda m, o: m.CosineAnnealingLR(o, T_max=40, eta_min=1e-4), 200),
    ("LambdaLR", lambda m, o: m.LambdaLR(o, lambda e: 1.0 / (1 + 0.1 * e)), 100),
    ("LambdaLR-list", lambda m, o: m.LambdaLR(o, [lambda e: 0.95 ** e, lambda e: 1 + e]), 60),
    ("MultiplicativeLR", lambda m, o: m.MultiplicativeLR(o, lambda e: 0.98), 100),
    ("LinearLR", lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=17),
     60),
    ("LinearLR-default", lambda m, o: m.LinearLR(o), 20),
    ("ConstantLR", lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=12), 40),
    ("PolynomialLR", lambda m, o: m.PolynomialLR(o, total_iters=30, power=2.0), 50),
    ("CosineAnnealingWarmRestarts",
     lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-3), 120),
    ("OneCycleLR", lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.1], total_steps=100), 100),
    ("OneCycleLR-linear-3phase",
     lambda m, o: m.OneCycleLR(o, max_lr=0.5, epochs=10, steps_per_epoch=9, pct_start=0.25,
                               anneal_strategy="linear", three_phase=True), 90),
    ("SequentialLR-warmup",
     lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=5),
                                     m.CosineAnnealingLR(o, T_max=45)], milestones=[5]), 80),
    ("SequentialLR-3",
     lambda m, o: m.SequentialLR(o, [m.ConstantLR(o, factor=0.1, total_iters=2),
                                     m.ExponentialLR(o, gamma=0.9),
                                     m.StepLR(o, step_size=4, gamma=0.5)], milestones=[3, 20]),
     60),
    ("ChainedScheduler",
     lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.1, total_iters=2),
                                      m.ExponentialLR(o, gamma=0.9)]), 30),
]


@pytest.mark.parametrize("make,steps", [(s[1], s[2]) for s in SCHEDULERS],
                         ids=[s[0] for s in SCHEDULERS])
def test_lr_sequence_matches_torch(make, steps):
    topt, dopt = make_opts("SGD", momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = trace(topt, make(tsched, topt), steps, keys=("lr", "momentum"))
        dr = trace(dopt, make(dsched, dopt), steps, keys=("lr", "momentum"))
    assert_same(tr, dr)
    lrs = [row[0][0] for row in dr]
    assert len(set(lrs)) > 1  # the schedule actually changed the lr


def test_one_cycle_cycles_adam_betas():
    topt, dopt = make_opts("Adam", lrs=(0.01, 0.02))
    def make(m, o):
        return m.OneCycleLR(o, max_lr=0.1, total_steps=60, base_momentum=0.8, max_momentum=0.9)

    tr = trace(topt, make(tsched, topt), 60, keys=("lr", "betas"))
    dr = trace(dopt, make(dsched, dopt), 60, keys=("lr", "betas"))
    assert_same(tr, dr)
    assert dopt.param_groups[0]["betas"][1] == 0.999
    assert {row[0][1][0] for row in dr} > {0.9, 0.8}
    s = dsched.OneCycleLR(make_opts("Adam")[1], max_lr=0.1, total_steps=5)
    for _ in range(5):
        s.optimizer.step()
        s.step()
    with pytest.raises(ValueError, match="Tried to step 6 times"):
        s.step()


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(mode="min", factor=0.5, patience=2, cooldown=1, min_lr=0.004),
    dict(mode="max", factor=0.3, patience=1, threshold=0.05, threshold_mode="abs"),
    dict(mode="max", patience=0, threshold=0.01, threshold_mode="rel", min_lr=[1e-3, 1e-5]),
    dict(mode="min", factor=0.5, patience=0, eps=0.02),
])
def test_reduce_on_plateau_matches_torch(kwargs):
    rng = np.random.default_rng(0)
    metrics = list(np.concatenate([np.linspace(1.0, 0.5, 15), 0.5 + 0.01 * rng.random(40),
                                   np.linspace(0.5, 0.2, 10), np.full(40, 0.2)]))
    topt, dopt = make_opts("SGD")
    tr = trace(topt, tsched.ReduceLROnPlateau(topt, **kwargs), len(metrics), metrics)
    dr = trace(dopt, dsched.ReduceLROnPlateau(dopt, **kwargs), len(metrics), metrics)
    assert_same(tr, dr)
    assert dopt.param_groups[0]["lr"] < 0.1


def test_reduce_on_plateau_accepts_tensor_metric_and_validates():
    _, dopt = make_opts("SGD")
    s = dsched.ReduceLROnPlateau(dopt, patience=0)
    s.step(dc.tensor(1.0))
    s.step(dc.tensor(2.0))
    assert dopt.param_groups[0]["lr"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        dsched.ReduceLROnPlateau(dopt, factor=1.5)
    with pytest.raises(ValueError, match="mode avg is unknown"):
        dsched.ReduceLROnPlateau(dopt, mode="avg")
    with pytest.raises(ValueError, match="expected 2 min_lrs"):
        dsched.ReduceLROnPlateau(dopt, min_lr=[0.1])


def test_closed_form_with_epoch_argument_matches_torch():
    for make in [lambda m, o: m.StepLR(o, 3, 0.5), lambda m, o: m.MultiStepLR(o, [2, 5], 0.1),
                 lambda m, o: m.CosineAnnealingLR(o, 10), lambda m, o: m.ExponentialLR(o, 0.9),
                 lambda m, o: m.LinearLR(o, 0.5, 1.0, 4), lambda m, o: m.PolynomialLR(o, 8)]:
        topt, dopt = make_opts()
        ts, ds = make(tsched, topt), make(dsched, dopt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in [3, 7, 1, 9, 4]:
                topt.step(), dopt.step()
                ts.step(epoch)
                ds.step(epoch)
                assert ds.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)


@pytest.mark.parametrize("idx", [0, 3, 12, 14, 16])
def test_scheduler_state_dict_round_trip(idx):
    _, make, _ = SCHEDULERS[idx]
    _, dopt = make_opts("SGD", momentum=0.9)
    sched = make(dsched, dopt)
    for _ in range(20):
        dopt.step()
        sched.step()
    sd, osd = sched.state_dict(), dopt.state_dict()
    assert sd.get("last_epoch", 20) == 20 and "optimizer" not in sd
    _, dopt2 = make_opts("SGD", momentum=0.9)
    sched2 = make(dsched, dopt2)
    dopt2.load_state_dict(osd)
    sched2.load_state_dict(sd)
    assert sched2.get_last_lr() == sched.get_last_lr()
    for _ in range(25):
        dopt.step(), dopt2.step()
        sched.step(), sched2.step()
        assert [g["lr"] for g in dopt2.param_groups] == [g["lr"] for g in dopt.param_groups]


def test_base_class_bookkeeping():
    _, dopt = make_opts()
    s = dsched.StepLR(dopt, step_size=2)
    assert s.last_epoch == 0 and s.base_lrs == [0.1, 0.01]
    assert [g["initial_lr"] for g in dopt.param_groups] == [0.1, 0.01]
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        s.step()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        dsched.StepLR(object(), 2)
    _, fresh = make_opts()
    with pytest.raises(KeyError, match="initial_lr"):
        dsched.StepLR(fresh, 2, last_epoch=3)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        dsched.LambdaLR(fresh, [lambda e: 1.0])
    with pytest.raises(ValueError, match="number of milestone points"):
        dsched.SequentialLR(fresh, [dsched.StepLR(fresh, 2)], milestones=[3])


def test_cosine_matches_closed_form_values():
    _, dopt = make_opts(lrs=(1.0,))
    s = dsched.CosineAnnealingLR(dopt, T_max=10, eta_min=0.0)
    for epoch in range(1, 11):
        dopt.step()
        s.step()
        assert s.get_last_lr()[0] == pytest.approx((1 + math.cos(math.pi * epoch / 10)) / 2,
                                                   abs=1e-12)


def test_scheduler_drives_optimizer_updates():
    # The lr a scheduler writes into param_groups is the one the next step uses.
    p = dc.zeros(1, requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    s = dsched.MultiStepLR(opt, milestones=[1], gamma=0.5)
    for expected in [-1.0, -1.5]:
        p.grad = dc.ones(1)
        opt.step()
        s.step()
        assert p.item() == pytest.approx(expected)
