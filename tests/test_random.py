"""Random fills (Note [Random streams] in csrc/core/rng.h): thread-count independence,
statistics with bounds from the sample size, float64, strided outputs, tiny sizes, bernoulli's
exact ends. The C++ side (tests/cpp/test_random.cpp) checks the bits against scalar Philox."""
import math

import numpy as np
import pytest

import deepcore as dc

DTYPES = [dc.float32, dc.float64]
FILLS = {
    "rand": lambda n, d: dc.rand(n, dtype=d),
    "randn": lambda n, d: dc.randn(n, dtype=d),
    "uniform_": lambda n, d: dc.empty(n, dtype=d).uniform_(-1.0, 3.0),
    "normal_": lambda n, d: dc.empty(n, dtype=d).normal_(2.0, 0.5),
    "bernoulli": lambda n, d: dc.bernoulli(dc.full((n,), 0.3, dtype=d)),
}


@pytest.fixture(autouse=True)
def _restore_threads():
    saved = dc.get_num_threads()
    yield
    dc.set_num_threads(saved)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", sorted(FILLS))
def test_same_bits_for_any_thread_count(fn, dtype):
    make = FILLS[fn]
    runs = []
    for threads in (1, 2):
        dc.set_num_threads(threads)
        dc.manual_seed(99)
        runs.append([make(n, dtype).numpy() for n in (100003, 17, 65)])
    for a, b in zip(*runs):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", sorted(FILLS))
@pytest.mark.parametrize("n", [0, 1, 3, 17])
def test_tiny_sizes(fn, dtype, n):
    x = FILLS[fn](n, dtype).numpy()
    assert x.shape == (n,) and np.all(np.isfinite(x))


def test_offset_advances_deterministically():
    dc.manual_seed(5)
    a = dc.randn(3)
    b = dc.rand(70, dtype=dc.float64)
    dc.manual_seed(5)
    assert dc.randn(3).tolist() == a.tolist()
    assert dc.rand(70, dtype=dc.float64).tolist() == b.tolist()
    # A fill never reuses a counter of the previous one: consecutive draws differ.
    dc.manual_seed(5)
    assert dc.rand(1).item() != dc.rand(1).item()


def _ks_statistic(x, cdf):
    x = np.sort(x)
    n = len(x)
    c = cdf(x)
    return max(np.max(np.arange(1, n + 1) / n - c), np.max(c - np.arange(n) / n))


# Kolmogorov-Smirnov at significance ~1e-6: sqrt(-ln(alpha / 2) / 2) / sqrt(n).
def _ks_bound(n):
    return math.sqrt(-math.log(0.5e-6) / 2) / math.sqrt(n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_randn_distribution(dtype):
    dc.manual_seed(11)
    n = 400_000
    x = dc.randn(n, dtype=dtype).numpy().astype(np.float64)
    se = 1 / math.sqrt(n)  # standard error of the mean; 6 of them is ~1e-9 two-sided
    assert abs(x.mean()) < 6 * se
    assert abs(x.var() - 1) < 6 * math.sqrt(2) * se
    phi = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))))
    assert _ks_statistic(x[:100_000], phi) < _ks_bound(100_000)
    # Tails exist and are the right size: P(|z| > 3) = 0.0027.
    p3 = np.mean(np.abs(x) > 3)
    assert abs(p3 - 0.0027) < 6 * math.sqrt(0.0027 / n)
    # The two halves of a Box-Muller pair (elements j and j + 16) are independent.
    blk = 64 if dtype == dc.float32 else 32
    m = x[: n // blk * blk].reshape(-1, blk)
    for a, b in [(m[:, :16], m[:, 16:32])]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 6 / math.sqrt(a.size)
        assert abs(np.corrcoef(a.ravel() ** 2, b.ravel() ** 2)[0, 1]) < 6 / math.sqrt(a.size)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rand_distribution(dtype):
    dc.manual_seed(12)
    x = dc.rand(100_000, dtype=dtype).numpy().astype(np.float64)
    assert x.min() >= 0 and x.max() < 1
    assert _ks_statistic(x, lambda v: v) < _ks_bound(len(x))
    # float64 draws carry 53 bits: values off the float32 grid occur.
    if dtype == dc.float64:
        assert np.any(x != x.astype(np.float32))


def test_normal_on_transposed_view():
    dc.manual_seed(13)
    base = dc.zeros(300, 200, dtype=dc.float64)
    view = base.t()
    view.normal_(1.0, 2.0)
    v = base.numpy()
    assert abs(v.mean() - 1) < 6 * 2 / math.sqrt(v.size) and abs(v.std() - 2) < 0.05
    # Element i of the view in row-major order takes the draw a contiguous fill gives it.
    dc.manual_seed(13)
    ref = dc.empty(200, 300, dtype=dc.float64).normal_(1.0, 2.0).numpy()
    np.testing.assert_array_equal(view.numpy(), ref)
    u = dc.zeros(40, 30).t()
    u.uniform_(-1.0, 1.0)
    assert u.numpy().min() >= -1 and u.numpy().max() < 1 and np.all(u.numpy() != 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_exact_ends_and_rate(dtype):
    dc.manual_seed(14)
    n = 100_003
    assert np.all(dc.bernoulli(dc.zeros(n, dtype=dtype)).numpy() == 0)
    assert np.all(dc.bernoulli(dc.ones(n, dtype=dtype)).numpy() == 1)
    p = np.linspace(0, 1, n).astype(np.float32 if dtype == dc.float32 else np.float64)
    b = dc.bernoulli(dc.from_numpy(p))
    assert b.dtype == dtype and set(np.unique(b.numpy())) <= {0.0, 1.0}
    # Sum of independent Bernoulli(p_i): mean sum(p), variance sum(p(1-p)).
    var = float(np.sum(p * (1 - p)))
    assert abs(b.numpy().sum() - p.sum()) < 6 * math.sqrt(var)
    # A strided probability tensor gives the draws of its contiguous copy.
    q = dc.from_numpy(np.full((50, 40), 0.5, dtype=p.dtype)).t()
    dc.manual_seed(15)
    s = dc.bernoulli(q).numpy()
    dc.manual_seed(15)
    np.testing.assert_array_equal(s, dc.bernoulli(q.contiguous()).numpy())
