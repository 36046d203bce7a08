"""deepcore.nn.init against torch.nn.init 2.13.0: deterministic functions exactly, random ones
by their distribution (bounds, mean, std over ~1e6 draws) and reproducibility under
manual_seed."""
import math

import deepcore as dc
import numpy as np
import pytest
import torch
from deepcore import nn
from deepcore.nn import init


@pytest.fixture(autouse=True)
def _seed():
    # Statistical checks run on fixed draws so a run can't fail by chance.
    dc.manual_seed(0)
    torch.manual_seed(0)


def _np(t):
    return np.asarray(t.detach())


def big(*shape, dtype=None):
    return nn.Parameter(dc.zeros(*shape) if dtype is None else dc.zeros(*shape, dtype=dtype))


@pytest.mark.parametrize("nonlinearity,param", [
    ("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None),
    ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
    ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-12)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", "x")


@pytest.mark.parametrize("shape", [(3, 4), (8, 3, 5, 5), (2, 6, 7), (1, 1)])
def test_fan_in_fan_out_matches_torch(shape):
    assert (init._calculate_fan_in_and_fan_out(dc.zeros(*shape))
            == torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape)))


def test_fan_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(dc.zeros(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(dc.zeros(3, 4), mode="fan_avg")


def test_functions_return_the_tensor_and_keep_leaf():
    p = big(20, 30)
    for fn, args in [(init.uniform_, ()), (init.normal_, ()), (init.constant_, (0.3,)),
                     (init.ones_, ()), (init.zeros_, ()), (init.eye_, ()),
                     (init.xavier_uniform_, ()), (init.xavier_normal_, ()),
                     (init.kaiming_uniform_, ()), (init.kaiming_normal_, ()),
                     (init.trunc_normal_, ()), (init.orthogonal_, ()),
                     (init.sparse_, (0.5,))]:
        out = fn(p, *args)
        assert out is p, fn.__name__
        assert p.is_leaf and p.requires_grad and p.grad_fn is None, fn.__name__


def test_constant_ones_zeros_eye_dirac_exact():
    t = dc.zeros(3, 5)
    np.testing.assert_array_equal(_np(init.constant_(t, 2.5)), np.full((3, 5), 2.5))
    np.testing.assert_array_equal(_np(init.ones_(t)), np.ones((3, 5)))
    np.testing.assert_array_equal(_np(init.zeros_(t)), np.zeros((3, 5)))
    for shape in [(3, 5), (5, 3), (4, 4)]:
        np.testing.assert_array_equal(_np(init.eye_(dc.zeros(*shape))),
                                      torch.nn.init.eye_(torch.zeros(*shape)).numpy())
    with pytest.raises(ValueError):
        init.eye_(dc.zeros(2, 2, 2))
    for shape, groups in [((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((4, 2, 3, 3, 3), 1),
                          ((2, 5, 4, 4), 1)]:
        np.testing.assert_array_equal(
            _np(init.dirac_(dc.ones(*shape), groups)),
            torch.nn.init.dirac_(torch.ones(*shape), groups).numpy())
    with pytest.raises(ValueError):
        init.dirac_(dc.zeros(3, 3))


def test_uniform_and_normal_statistics():
    u = _np(init.uniform_(big(1000, 1000), -2.0, 3.0))
    assert u.min() >= -2.0 and u.max() <= 3.0
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.std() - 5 / math.sqrt(12)) < 0.01
    n = _np(init.normal_(big(1000, 1000), 1.5, 0.5))
    assert abs(n.mean() - 1.5) < 0.005 and abs(n.std() - 0.5) < 0.005


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_statistics(gain):
    t = big(600, 1400)
    std = gain * math.sqrt(2.0 / (600 + 1400))
    a = math.sqrt(3) * std
    u = _np(init.xavier_uniform_(t, gain=gain))
    assert u.min() >= -a and u.max() <= a and u.max() > 0.99 * a
    assert abs(u.std() - std) < 0.01 * std
    n = _np(init.xavier_normal_(t, gain=gain))
    assert abs(n.std() - std) < 0.01 * std and abs(n.mean()) < 0.01 * std


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity,a", [("relu", 0), ("leaky_relu", 0.1),
                                            ("leaky_relu", math.sqrt(5)), ("tanh", 0)])
def test_kaiming_statistics(mode, nonlinearity, a):
    t = big(400, 100, 5, 5)  # conv-shaped: fan_in = 2500, fan_out = 10000
    fan = 2500 if mode == "fan_in" else 10000
    std = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3) * std
    u = _np(init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nonlinearity))
    assert u.min() >= -bound and u.max() <= bound and u.max() > 0.99 * bound
    assert abs(u.std() - std) < 0.01 * std
    n = _np(init.kaiming_normal_(t, a=a, mode=mode, nonlinearity=nonlinearity))
    assert abs(n.std() - std) < 0.01 * std and abs(n.mean()) < 0.01 * std


def _truncnorm_moments(mean, std, a, b):
    alpha, beta = (a - mean) / std, (b - mean) / std

    def pdf(x):
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def cdf(x):
        return (1 + math.erf(x / math.sqrt(2))) / 2

    z = cdf(beta) - cdf(alpha)
    m = mean + std * (pdf(alpha) - pdf(beta)) / z
    var = std ** 2 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z
                      - ((pdf(alpha) - pdf(beta)) / z) ** 2)
    return m, math.sqrt(var)


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04),
                                          (1.0, 2.0, 0.0, 5.0), (0.0, 1.0, 1.0, 3.0),
                                          (0.0, 1.0, -0.1, 0.1)])
def test_trunc_normal_statistics(mean, std, a, b):
    x = _np(init.trunc_normal_(big(1000, 1000), mean, std, a, b))
    assert x.min() >= a and x.max() <= b and np.all(np.isfinite(x))
    m, s = _truncnorm_moments(mean, std, a, b)
    assert abs(x.mean() - m) < 0.01 * s and abs(x.std() - s) < 0.01 * s
    # The same distribution as torch's: compare histograms.
    ref = torch.nn.init.trunc_normal_(torch.empty(1000, 1000), mean, std, a, b).numpy()
    h1, edges = np.histogram(x, bins=20, range=(a, b))
    h2, _ = np.histogram(ref, bins=edges)
    np.testing.assert_allclose(h1 / x.size, h2 / ref.size, atol=3e-3)


def test_trunc_normal_float64():
    x = init.trunc_normal_(dc.zeros(500, 500, dtype=dc.float64), std=0.5)
    assert x.dtype == dc.float64 and abs(_np(x).std() - _truncnorm_moments(0, 0.5, -2, 2)[1]) < 0.01


@pytest.mark.parametrize("shape", [(50, 30), (30, 50), (40, 40), (16, 4, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal(shape, gain):
    q = _np(init.orthogonal_(dc.zeros(*shape), gain=gain)).reshape(shape[0], -1).astype(
        np.float64)
    rows, cols = q.shape
    gram = q.T @ q if rows >= cols else q @ q.T
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-5)
    with pytest.raises(ValueError):
        init.orthogonal_(dc.zeros(4))


def test_orthogonal_is_haar_distributed():
    # Folding sign(diag(R)) into Q makes it uniform on O(n): E[Q_ii] = 0, E[Q_ij^2] = 1/n.
    diag = []
    for _ in range(200):
        diag.append(np.diag(_np(init.orthogonal_(dc.zeros(8, 8)))))
    diag = np.array(diag)
    assert abs(diag.mean()) < 0.05 and abs((diag ** 2).mean() - 1 / 8) < 0.02


def test_sparse():
    t = init.sparse_(dc.zeros(100, 40), sparsity=0.3, std=0.5)
    x = _np(t)
    assert np.all((x == 0).sum(0) == 30)
    nz = x[x != 0]
    assert abs(nz.std() - 0.5) < 0.05
    with pytest.raises(ValueError):
        init.sparse_(dc.zeros(3), 0.1)


def test_reproducible_under_manual_seed():
    fns = [lambda t: init.uniform_(t), lambda t: init.normal_(t),
           lambda t: init.xavier_uniform_(t), lambda t: init.kaiming_normal_(t),
           lambda t: init.trunc_normal_(t), lambda t: init.orthogonal_(t),
           lambda t: init.sparse_(t, 0.2)]
    for fn in fns:
        dc.manual_seed(7)
        a = _np(fn(dc.zeros(10, 12))).copy()
        dc.manual_seed(7)
        b = _np(fn(dc.zeros(10, 12))).copy()
        c = _np(fn(dc.zeros(10, 12))).copy()
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_zero_element_and_generator():
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(dc.zeros(0, 3))
    with pytest.raises(NotImplementedError, match="manual_seed"):
        init.uniform_(dc.zeros(2), generator=object())
