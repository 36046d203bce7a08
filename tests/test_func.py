"""deepcore.func's reverse-mode transforms against torch.func."""
from collections import namedtuple

import numpy as np
import pytest
import torch
import torch.func as tf

import deepcore as dc
import deepcore.nn as nn
from deepcore.func import functional_call, grad, value_and_grad, vjp

TOL = dict(rtol=1e-12, atol=1e-12)  # float64 throughout: the same formulas, a few roundings


def _pair(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrs = [rng.standard_normal(s) for s in shapes]
    return [dc.tensor(a) for a in arrs], [torch.tensor(a) for a in arrs]


def _close(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **TOL)


def f_ours(a, b):
    return (a.sin() * b).sum() + (a * a * b.exp()).mean()


def f_torch(a, b):
    return (a.sin() * b).sum() + (a * a * b.exp()).mean()


@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1, 0), -1])
def test_grad_matches_torch_func(argnums):
    ours, theirs = _pair((3, 4), (3, 4))
    got = grad(f_ours, argnums=argnums)(*ours)
    want = tf.grad(f_torch, argnums=argnums)(*theirs)
    if isinstance(argnums, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w)
    else:
        _close(got, want)


def test_value_and_grad_with_aux():
    ours, theirs = _pair((5,), (5,))

    def fo(a, b):
        return (a * b).sum(), {"norm": a.norm()}

    def ft(a, b):
        return (a * b).sum(), {"norm": a.norm()}

    (v, aux), g = value_and_grad(fo, argnums=(0, 1), has_aux=True)(*ours)
    (tv, taux), tg = tf.grad_and_value(ft, argnums=(0, 1), has_aux=True)(*theirs)[::-1]
    _close(v, tv)
    _close(aux["norm"], taux["norm"])
    for a, b in zip(g, tg):
        _close(a, b)
    gg, aux2 = grad(fo, has_aux=True)(*ours)
    _close(gg, tg[0])
    assert not v.requires_grad and not g[0].requires_grad


def test_nested_grad_gives_higher_derivatives():
    x = dc.tensor([0.3, -1.2, 2.0], dtype=dc.float64)
    xt = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)

    def f(a):
        return (a.sin() * a).sum()

    second = grad(lambda a: grad(f)(a).sum())(x)
    want = tf.grad(lambda a: tf.grad(lambda b: (b.sin() * b).sum())(a).sum())(xt)
    _close(second, want)
    third = grad(lambda a: grad(lambda b: grad(f)(b).sum())(a).sum())(x)
    want3 = -3 * xt.sin() - xt * xt.cos()  # d3/dx3 of x sin x
    _close(third, want3)


def test_pytree_arguments_keep_their_structure():
    Params = namedtuple("Params", ["w", "b"])
    ours, theirs = _pair((4, 3), (3,), (2, 4), seed=1)

    def loss(p, x):
        return ((x.matmul(p["layer"].w) + p["layer"].b) ** 2).sum() + (p["scale"][0] * 0).sum()

    def loss_t(p, x):
        return ((x @ p["layer"].w + p["layer"].b) ** 2).sum() + (p["scale"][0] * 0).sum()

    p = {"layer": Params(ours[0], ours[1]), "scale": [dc.ones(1, dtype=dc.float64)]}
    pt = {"layer": Params(theirs[0], theirs[1]), "scale": [torch.ones(1, dtype=torch.float64)]}
    g = grad(loss)(p, ours[2])
    gt = tf.grad(loss_t)(pt, theirs[2])
    assert isinstance(g["layer"], Params) and isinstance(g["scale"], list)
    _close(g["layer"].w, gt["layer"].w)
    _close(g["layer"].b, gt["layer"].b)
    _close(g["scale"][0], gt["scale"][0])


def test_grad_leaves_dot_grad_alone_and_composes_with_backward():
    w = dc.tensor([1.0, 2.0], dtype=dc.float64, requires_grad=True)
    g = grad(lambda a: (a * a).sum())(w)
    assert w.grad is None
    _close(g, torch.tensor([2.0, 4.0], dtype=torch.float64))
    # An outer backward differentiates through the transform (the gradient penalty pattern).
    grad(lambda a: (a ** 3).sum())(w).sum().backward()
    _close(w.grad, torch.tensor([6.0, 12.0], dtype=torch.float64))


def test_vjp_matches_torch_func():
    ours, theirs = _pair((3,), (3,), seed=2)

    def fo(a, b):
        return {"p": a * b, "q": (a.exp() + b).sum()}

    def ft(a, b):
        return {"p": a * b, "q": (a.exp() + b).sum()}

    out, fn = vjp(fo, *ours)
    tout, tfn = tf.vjp(ft, *theirs)
    _close(out["p"], tout["p"])
    ct, tct = _pair((3,), (), seed=3)
    got = fn({"p": ct[0], "q": ct[1]})
    want = tfn({"p": tct[0], "q": tct[1]})
    assert len(got) == 2
    for a, b in zip(got, want):
        _close(a, b)
    with pytest.raises(ValueError, match="structure"):
        fn(ct[0])
    with pytest.raises(ValueError, match="shape"):
        fn({"p": dc.zeros(4, dtype=dc.float64), "q": ct[1]})


def test_vjp_with_aux_and_unused_input():
    ours, _ = _pair((2,), (2,))
    out, fn, aux = vjp(lambda a, b: (a * 2, "tag"), *ours, has_aux=True)
    assert aux == "tag"
    ga, gb = fn(dc.ones(2, dtype=dc.float64))
    assert ga.tolist() == [2.0, 2.0] and gb.tolist() == [0.0, 0.0]


def test_functional_call_matches_torch_and_restores_the_module():
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    m.load_state_dict({k: dc.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(4)
    new = {k: rng.standard_normal(tuple(v.shape)).astype(np.float32)
           for k, v in tm.state_dict().items()}
    x = rng.standard_normal((5, 3)).astype(np.float32)
    before = m[0].weight.detach().numpy().copy()
    got = functional_call(m, {k: dc.tensor(v) for k, v in new.items()}, (dc.tensor(x),))
    want = tf.functional_call(tm, {k: torch.tensor(v) for k, v in new.items()},
                              (torch.tensor(x),))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(m[0].weight.detach().numpy(), before)
    assert isinstance(m[0].weight, nn.Parameter)

    # Per-parameter gradients of a functional loss, as torch.func users write them.
    params = {k: v.detach() for k, v in m.named_parameters()}
    g = grad(lambda p: functional_call(m, p, (dc.tensor(x),)).pow(2).sum())(params)
    tparams = {k: v.detach() for k, v in tm.named_parameters()}
    tg = tf.grad(lambda p: tf.functional_call(tm, p, (torch.tensor(x),)).pow(2).sum())(tparams)
    for k in tg:
        np.testing.assert_allclose(g[k].numpy(), tg[k].numpy(), rtol=1e-4, atol=1e-5)


def test_functional_call_ties_weights_and_checks_names():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 3)
            self.head = nn.Linear(3, 5, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, idx):
            return self.head(self.emb(idx))

    m = Tied()
    w = dc.ones(5, 3)
    out = functional_call(m, {"emb.weight": w}, (dc.tensor([1, 2]),))
    assert out.tolist() == [[3.0] * 5, [3.0] * 5]  # the head used the same replacement
    with pytest.raises(ValueError, match="no parameter or buffer named"):
        functional_call(m, {"nope": w}, (dc.tensor([1]),))
    with pytest.raises(ValueError, match="strict=True"):
        functional_call(m, {}, (dc.tensor([1]),), strict=True)


def test_errors_name_the_transform():
    with pytest.raises(TypeError, match="scalar"):
        grad(lambda a: a * 2)(dc.ones(3))
    with pytest.raises(TypeError, match="floating-point"):
        grad(lambda a: a.sum())(dc.tensor([1, 2]))
    with pytest.raises(ValueError, match="argnums"):
        grad(lambda a: a.sum(), argnums=3)(dc.ones(2))
    with pytest.raises(TypeError, match="has_aux"):
        grad(lambda a: a.sum(), has_aux=True)(dc.ones(2))
