"""Creation functions vs PyTorch, and the statistics/reproducibility of the random ones."""
import numpy as np
import pytest
import torch

import deepcore as dc
from helpers import ALL_DTYPES, assert_close, check_op, torch_dtype

SHAPES = [(), (0,), (3,), (2, 3), (2, 0, 4), (1, 1, 1, 5)]


@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
def test_constant_shapes_and_dtypes(name):
    for shape in SHAPES:
        for d in ALL_DTYPES:
            x = getattr(dc, name)(shape, dtype=d)
            t = getattr(torch, name)(shape, dtype=torch_dtype(d))
            assert tuple(x.shape) == tuple(t.shape) and x.dtype == d and x.is_contiguous()
            if name != "empty":
                assert_close(x, t)
    # Varargs and default dtype.
    assert tuple(getattr(dc, name)(2, 3).shape) == (2, 3)
    assert getattr(dc, name)(2).dtype == dc.float32
    x = getattr(dc, name)(2, 3, requires_grad=True)
    assert x.requires_grad and x.is_leaf


def test_full_dtype_inference():
    for value, expected in [(1.5, torch.float32), (2, torch.int64), (True, torch.bool)]:
        x, t = dc.full((2, 3), value), torch.full((2, 3), value)
        assert t.dtype == expected
        assert_close(x, t)
    for d in ALL_DTYPES:
        assert_close(dc.full((3,), 1, dtype=d), torch.full((3,), 1, dtype=torch_dtype(d)))
    assert dc.full((2,), 2 ** 60).tolist() == [2 ** 60] * 2  # exact beyond 2^53


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "empty_like", "rand_like",
                                  "randn_like"])
def test_like_functions(name):
    src = dc.rand(2, 3, dtype=dc.float64).t()  # non-contiguous source: result is contiguous
    x = getattr(dc, name)(src)
    assert tuple(x.shape) == (3, 2) and x.dtype == dc.float64
    y = getattr(dc, name)(src, dtype=dc.float32)
    assert y.dtype == dc.float32
    if name in ("zeros_like", "ones_like"):
        assert_close(x, getattr(torch, name)(torch.zeros(3, 2, dtype=torch.float64)))
    assert_close(dc.full_like(src, 7), torch.full((3, 2), 7, dtype=torch.float64))
    r = dc.randint_like(dc.zeros(100, dtype=dc.int32), 3, 9)
    assert r.dtype == dc.int32 and r.numpy().min() >= 3 and r.numpy().max() < 9


ARANGE_CASES = [(5,), (1, 5), (0, 1, 0.1), (5, 0, -1), (0, 10, 3), (1.5, 4.5), (0, 0),
                (0, 1, 0.3), (-2.5, 2.5, 0.5), (10, 1, -3), (0, 1e-3, 1e-4)]


@pytest.mark.parametrize("args", ARANGE_CASES)
def test_arange(args):
    x, t = dc.arange(*args), torch.arange(*args)
    assert_close(x, t, rtol=1e-6, atol=1e-7)
    for d in [dc.float64, dc.int32, dc.float32]:
        if d == dc.int32 and any(isinstance(a, float) for a in args):
            continue
        assert_close(dc.arange(*args, dtype=d), torch.arange(*args, dtype=torch_dtype(d)))


def test_arange_errors():
    with pytest.raises(ValueError, match="arange"):
        dc.arange(0, 5, 0)
    with pytest.raises(ValueError, match="arange"):
        dc.arange(5, 0, 1)
    with pytest.raises(ValueError, match="arange"):
        dc.arange(0, float("inf"))


@pytest.mark.parametrize("args", [(0, 1, 5), (0, 1, 1), (0, 1, 0), (-3, 3, 7), (1, -1, 4),
                                  (0, 1, 100), (2.5, 2.5, 3)])
def test_linspace(args):
    assert_close(dc.linspace(*args), torch.linspace(*args), rtol=1e-6, atol=1e-7)
    assert_close(dc.linspace(*args, dtype=dc.float64),
                 torch.linspace(*args, dtype=torch.float64))
    x = dc.linspace(*args)
    if args[2] > 0:
        assert x[0].item() == args[0]
    if args[2] > 1:
        assert x[-1].item() == args[1]  # filled from both ends: the last value is exact


def test_linspace_integer_and_errors():
    assert_close(dc.linspace(0, 10, 5, dtype=dc.int64), torch.linspace(0, 10, 5,
                                                                       dtype=torch.int64))
    with pytest.raises(ValueError, match="linspace"):
        dc.linspace(0, 1, -1)


@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2), (0,), (1, 1)])
def test_eye(args):
    for d in ALL_DTYPES:
        assert_close(dc.eye(*args, dtype=d), torch.eye(*args, dtype=torch_dtype(d)))
    with pytest.raises(ValueError, match="eye"):
        dc.eye(-1)


def test_tensor_scalar_tensor_as_tensor():
    for data in [1, 2.5, True, [1, 2], [[1.0, 2.0], [3.0, 4.0]], [True, False], [], [[1], [2]],
                 [1, 2.5], [True, 2]]:
        assert_close(dc.tensor(data), torch.tensor(data), msg=repr(data))
    assert_close(dc.scalar_tensor(3), torch.scalar_tensor(3))
    arr = np.arange(4.0)
    a = dc.as_tensor(arr)
    arr[0] = 10
    assert a[0].item() == 10.0, "as_tensor shares NumPy memory when it can"
    b = dc.as_tensor(arr, dtype=dc.float32)
    arr[1] = 20
    assert b[1].item() == 1.0, "a dtype change copies"
    c = dc.tensor(arr)
    arr[2] = 30
    assert c[2].item() == 2.0, "tensor() always copies"


def test_creation_errors():
    with pytest.raises(ValueError, match="empty"):
        dc.empty(-1)
    with pytest.raises(ValueError):
        dc.zeros(2, -3)
    with pytest.raises(TypeError, match="size"):
        dc.zeros(2.5)
    with pytest.raises(RuntimeError, match="device"):
        dc.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="floating point"):
        dc.zeros(2, dtype=dc.int64, requires_grad=True)
    assert dc.zeros(2, device="cpu").device == dc.device("cpu")


def test_copy_to_dtype_clone_creation_registry_ops():
    # copy_/to/clone/contiguous/fill_/zero_ are creation-family ops; compare with torch.
    check_op(lambda x: x.to(dc.float64), lambda x: x.to(torch.float64), [((3, 4),)],
             dtypes=[dc.float32])
    check_op(lambda x: x.to(dc.float32), lambda x: x.to(torch.float32), [((3, 4),)],
             dtypes=[dc.float64])
    check_op(lambda x: x.double().float(), lambda x: x.double().float(), [((3, 4),)])
    for src in ALL_DTYPES:
        for dst in ALL_DTYPES:
            check_op(lambda x: x.to(dst), lambda x: x.to(torch_dtype(dst)), [((3, 4),)],
                     dtypes=[src], low=-3, high=3, grad=False)
    check_op(lambda a, b: a.clone().copy_(b), lambda a, b: a.clone().copy_(b),
             [((3, 4), (4,)), ((3, 4), ())])
    x = dc.tensor([1.7, -1.7, 2.5])
    assert x.to(dc.int64).tolist() == [1, -1, 2]  # truncation toward zero, like torch
    assert x.to(dc.float32, copy=True) is not x
    assert x.to(dc.float32) is x


# ---- random ------------------------------------------------------------------------------------

def test_rand_statistics():
    dc.manual_seed(0)
    for d in [dc.float32, dc.float64]:
        x = dc.rand(200000, dtype=d).numpy()
        assert x.dtype == np.dtype(str(d).split(".")[1])
        assert x.min() >= 0.0 and x.max() < 1.0
        assert abs(x.mean() - 0.5) < 0.005 and abs(x.std() - 12 ** -0.5) < 0.005
        counts = np.histogram(x, bins=20, range=(0, 1))[0]
        chi2 = ((counts - len(x) / 20) ** 2 / (len(x) / 20)).sum()
        assert chi2 < 45, f"rand looks non-uniform: chi2={chi2}"  # 19 dof, p ~ 1e-3
        assert len(np.unique(x[:10000])) > 9990


def test_randn_statistics():
    dc.manual_seed(1)
    for d in [dc.float32, dc.float64]:
        x = dc.randn(200001, dtype=d).numpy().astype(np.float64)  # odd size: Box-Muller tail
        assert abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01
        assert abs(np.mean(x ** 3)) < 0.03 and abs(np.mean(x ** 4) - 3) < 0.06
        assert np.all(np.isfinite(x))
        # Pairs produced together must not be correlated.
        assert abs(np.corrcoef(x[0:-1:2], x[1::2])[0, 1]) < 0.01
    y = dc.empty(10000, dtype=dc.float64)
    assert y.normal_(3.0, 0.5) is y
    assert abs(y.mean().item() - 3) < 0.02 and abs(y.numpy().std() - 0.5) < 0.02
    y.uniform_(-2, 4)
    assert y.numpy().min() >= -2 and y.numpy().max() < 4


def test_randint_statistics():
    dc.manual_seed(2)
    x = dc.randint(-3, 4, (70000,))
    assert x.dtype == dc.int64
    v = x.numpy()
    assert v.min() == -3 and v.max() == 3
    counts = np.bincount(v + 3)
    assert np.all(np.abs(counts - 10000) < 500)
    assert dc.randint(5, (3, 4)).shape == (3, 4)
    assert dc.randint(0, 2, (5,), dtype=dc.int32).dtype == dc.int32
    with pytest.raises(ValueError, match="randint"):
        dc.randint(3, 3, (2,))


def test_randperm_and_bernoulli():
    dc.manual_seed(3)
    p = dc.randperm(1000)
    assert sorted(p.tolist()) == list(range(1000)) and p.tolist() != list(range(1000))
    b = dc.bernoulli(dc.full((100000,), 0.3))
    assert b.dtype == dc.float32 and set(np.unique(b.numpy())) <= {0.0, 1.0}
    assert abs(b.mean().item() - 0.3) < 0.01


@pytest.mark.parametrize("fn", ["rand", "randn", "randint", "randperm"])
def test_random_reproducible_and_thread_independent(fn):
    make = {"rand": lambda: dc.rand(50001), "randn": lambda: dc.randn(50001),
            "randint": lambda: dc.randint(0, 1000, (50001,)),
            "randperm": lambda: dc.randperm(5000)}[fn]
    dc.set_num_threads(1)
    dc.manual_seed(1234)
    a1, a2 = make().numpy(), make().numpy()
    dc.set_num_threads(2)
    dc.manual_seed(1234)
    b1, b2 = make().numpy(), make().numpy()
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2), "consecutive draws must differ"
    dc.manual_seed(4321)
    assert not np.array_equal(make().numpy(), a1), "another seed gives other numbers"


def test_rng_state_roundtrip():
    dc.manual_seed(5)
    state = dc.get_rng_state()
    a = dc.rand(10)
    dc.set_rng_state(state)
    b = dc.rand(10)
    assert a.tolist() == b.tolist()
    assert dc.initial_seed() == 5


COVERED_OPS = {"empty", "zeros", "ones", "full", "arange", "linspace", "eye", "rand", "randn",
               "randint", "randperm", "uniform_", "normal_", "bernoulli", "clone", "contiguous",
               "to", "copy_", "fill_", "zero_"}


def test_zeros_and_full_overwrite_a_reused_large_block():
    # Large freed blocks are cached and handed out again uninitialised (Note [Large-block
    # cache]): creation ops must still write every element.
    for _ in range(3):
        a = dc.full((1 << 19,), 7.0)
        del a
        z = dc.zeros(1 << 19)
        assert not np.any(z.numpy())
        del z
        o = dc.ones((512, 1024))
        assert np.all(o.numpy() == 1.0)
        del o
