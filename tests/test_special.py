"""deepcore.special against torch.special: the same names, values and gradients."""
import numpy as np
import pytest
import torch

import deepcore as dc
import deepcore.special as S

RNG = np.random.default_rng(5)
X = RNG.uniform(-3, 3, (4, 5)).astype(np.float32)
P = RNG.uniform(0.05, 0.95, (4, 5)).astype(np.float32)
POS = RNG.uniform(0.2, 4, (4, 5)).astype(np.float32)

CASES = [  # name, input, extra args
    ("expit", X, ()), ("logit", P, ()), ("erf", X, ()), ("erfc", X, ()),
    ("erfinv", P * 2 - 1, ()), ("gammaln", POS, ()), ("digamma", POS, ()), ("psi", POS, ()),
    ("sinc", X, ()), ("log1p", POS, ()), ("expm1", X, ()), ("exp2", X, ()),
    ("ndtr", X, ()), ("log_ndtr", X, ()), ("entr", P, ()), ("round", X, ()), ("i0", X, ()), ("i1", X, ()),
]


@pytest.mark.parametrize("name,x,extra", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients(name, x, extra):
    t = torch.tensor(x, requires_grad=True)
    d = dc.tensor(x, requires_grad=True)
    expected = getattr(torch.special, name)(t, *extra)
    got = getattr(S, name)(d, *extra)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=2e-6,
                               atol=1e-6)
    if name == "round":
        return
    expected.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_two_argument_functions():
    y = torch.tensor(POS)
    np.testing.assert_allclose(S.xlogy(dc.tensor(X), dc.tensor(POS)).numpy(),
                               torch.special.xlogy(torch.tensor(X), y).numpy(), rtol=2e-6,
                               atol=1e-6)
    for n in (1, 2, 3):
        np.testing.assert_allclose(S.polygamma(n, dc.tensor(POS)).numpy(),
                                   torch.special.polygamma(n, y).numpy(), rtol=1e-5)
    np.testing.assert_allclose(S.logit(dc.tensor(P), 0.2).numpy(),
                               torch.special.logit(torch.tensor(P), 0.2).numpy(), rtol=2e-6)
    for f in ("logsumexp", "softmax", "log_softmax"):
        np.testing.assert_allclose(getattr(S, f)(dc.tensor(X), 1).numpy(),
                                   getattr(torch.special, f)(torch.tensor(X), 1).numpy(),
                                   rtol=2e-6, atol=1e-6)
