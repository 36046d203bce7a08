"""Matrix products (matmul semantics, mm/bmm/mv/dot/outer/addmm/linear) and the two reductions
the core ships with (sum, mean), forward and backward vs PyTorch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepcore as dc
from helpers import INT_DTYPES, assert_close, check_op, gradcheck_op

# GEMM accumulation order differs from torch's: float32 needs a looser tolerance.
MM_TOL = dict(rtol=1e-4, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-4)

MATMUL_SHAPES = [
    ((3,), (3,)),              # dot
    ((2, 3), (3,)),            # mv
    ((3,), (3, 4)),            # vector @ matrix
    ((2, 3), (3, 4)),          # mm
    ((5, 2, 3), (3, 4)),       # batch folded into rows
    ((5, 2, 3), (3,)),         # batched matrix @ vector
    ((3,), (5, 3, 4)),         # vector @ batch
    ((2, 3), (5, 3, 4)),       # matrix broadcast over b's batch
    ((5, 2, 3), (5, 3, 4)),    # bmm
    ((2, 1, 2, 3), (5, 3, 4)), # broadcast batch dims
    ((0, 3), (3, 4)),          # empty rows
    ((2, 0), (0, 4)),          # K = 0: zeros
    ((17, 33), (33, 19)),      # sizes off every tile width
]


def test_matmul_semantics():
    check_op(dc.matmul, torch.matmul, MATMUL_SHAPES, **MM_TOL)
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, MATMUL_SHAPES[:5], **MM_TOL)


def test_matmul_larger_and_strided():
    # Big enough for the blocked GEMM paths; check_op adds transposed and sliced operands.
    check_op(dc.matmul, torch.matmul, [((70, 130), (130, 66)), ((3, 40, 50), (3, 50, 20))],
             dtypes=[dc.float32], **MM_TOL, grad=False)
    check_op(dc.matmul, torch.matmul, [((70, 130), (130, 66))], dtypes=[dc.float64], grad=True)


def test_matmul_integer():
    check_op(dc.matmul, torch.matmul, MATMUL_SHAPES[:9], dtypes=INT_DTYPES, low=-3, high=3,
             grad=False)


@pytest.mark.parametrize("name", ["mm", "bmm", "mv", "dot", "outer"])
def test_products(name):
    shapes = {"mm": [((2, 3), (3, 4)), ((1, 5), (5, 1)), ((33, 17), (17, 9))],
              "bmm": [((3, 2, 4), (3, 4, 5)), ((1, 1, 1), (1, 1, 1))],
              "mv": [((2, 3), (3,)), ((40, 31), (31,))],
              "dot": [((5,), (5,)), ((0,), (0,)), ((100,), (100,))],
              "outer": [((3,), (4,)), ((1,), (5,))]}[name]
    check_op(getattr(dc, name), getattr(torch, name), shapes, **MM_TOL)
    check_op(lambda a, b: getattr(a, name)(b), lambda a, b: getattr(a, name)(b), shapes[:1],
             noncontig=False, **MM_TOL)


def test_addmm():
    check_op(dc.addmm, torch.addmm, [((2, 4), (2, 3), (3, 4)), ((4,), (2, 3), (3, 4)),
                                     ((), (2, 3), (3, 4))], **MM_TOL)
    check_op(lambda i, a, b: dc.addmm(i, a, b, beta=0.5, alpha=2.0),
             lambda i, a, b: torch.addmm(i, a, b, beta=0.5, alpha=2.0),
             [((2, 4), (2, 3), (3, 4))], **MM_TOL)
    # beta=0 ignores the input, even NaN in it.
    x = dc.full((2, 4), float("nan"))
    out = dc.addmm(x, dc.ones(2, 3), dc.ones(3, 4), beta=0)
    assert out.tolist() == [[3.0] * 4] * 2


def test_linear():
    check_op(dc.linear if hasattr(dc, "linear") else dc._C.linear, TF.linear,
             [((4, 3), (5, 3), (5,)), ((2, 4, 3), (5, 3), (5,)), ((3,), (5, 3), (5,)),
              ((0, 3), (5, 3), (5,)), ((7, 19), (33, 19), (33,))], **MM_TOL)
    check_op(lambda x, w: dc._C.linear(x, w), TF.linear, [((4, 3), (5, 3)), ((2, 2, 3), (5, 3))],
             **MM_TOL)


def test_linear_integer():
    check_op(dc._C.linear, TF.linear, [((4, 3), (5, 3), (5,))], dtypes=INT_DTYPES, low=-3,
             high=3, grad=False)


@pytest.mark.parametrize("name", ["matmul", "mm", "bmm", "mv", "dot", "outer", "addmm", "linear"])
def test_linalg_gradcheck(name):
    fn = {"matmul": (dc.matmul, [(2, 2, 3), (3, 2)]), "mm": (dc.mm, [(2, 3), (3, 2)]),
          "bmm": (dc.bmm, [(2, 2, 3), (2, 3, 2)]), "mv": (dc.mv, [(2, 3), (3,)]),
          "dot": (dc.dot, [(4,), (4,)]), "outer": (dc.outer, [(2,), (3,)]),
          "addmm": (dc.addmm, [(2,), (2, 3), (3, 2)]),
          "linear": (dc._C.linear, [(2, 3), (4, 3), (4,)])}[name]
    assert gradcheck_op(fn[0], fn[1])


def test_matmul_double_backward():
    a = np.random.default_rng(0).standard_normal((3, 4))
    b = np.random.default_rng(1).standard_normal((4, 2))
    res = []
    for lib, mk in [(dc, lambda v: dc.tensor(v, requires_grad=True)),
                    (torch, lambda v: torch.tensor(v, requires_grad=True))]:
        x, w = mk(a), mk(b)
        y = (lib.matmul(lib.tanh(lib.matmul(x, w)), w.t()) ** 2).sum()
        (gx,) = lib.autograd.grad(y, [x], create_graph=True)
        (gw,) = lib.autograd.grad((gx * gx).sum(), [w])
        res.append((gx, gw))
    assert_close(res[0][0], res[1][0])
    assert_close(res[0][1], res[1][1])


def test_linalg_errors():
    with pytest.raises(ValueError, match=r"\[matmul\].*\(2, 3\).*\(4, 5\)"):
        dc.matmul(dc.ones(2, 3), dc.ones(4, 5))
    with pytest.raises(ValueError, match=r"matmul.*\(5, 2, 3\).*\(5, 4, 2\)"):
        dc.ones(5, 2, 3) @ dc.ones(5, 4, 2)
    with pytest.raises(ValueError, match="matmul"):
        dc.matmul(dc.ones(()), dc.ones(3))
    with pytest.raises(ValueError, match="matmul"):
        dc.ones(2, 2, 3) @ dc.ones(3, 3, 2)  # batch 2 vs 3 cannot broadcast
    with pytest.raises(TypeError, match="mm"):
        dc.mm(dc.ones(2, 3), dc.ones(3, 2, dtype=dc.float64))
    with pytest.raises(ValueError, match="mm"):
        dc.mm(dc.ones(3), dc.ones(3, 2))
    with pytest.raises(ValueError, match="bmm"):
        dc.bmm(dc.ones(2, 2, 3), dc.ones(3, 3, 2))
    with pytest.raises(ValueError, match="dot"):
        dc.dot(dc.ones(3), dc.ones(4))
    with pytest.raises(ValueError, match="linear"):
        dc._C.linear(dc.ones(2, 3), dc.ones(4, 5))
    with pytest.raises(ValueError, match="linear"):
        dc._C.linear(dc.ones(2, 3), dc.ones(4, 3), dc.ones(5))
    with pytest.raises(TypeError, match="matmul"):
        dc.matmul(dc.ones(2, 2, dtype=dc.bool), dc.ones(2, 2, dtype=dc.bool))


# ---- sum / mean ---------------------------------------------------------------------------------

REDUCE_CASES = [
    (None, False), (0, False), (-1, True), ((0, 2), False), ((0, 2), True), ((1,), True),
    ((-1, 0), False),
]


@pytest.mark.parametrize("dim,keepdim", REDUCE_CASES)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean(name, dim, keepdim):
    def f(lib):
        def run(x):
            fn = getattr(lib, name)
            return fn(x) if dim is None else fn(x, dim, keepdim=keepdim)
        return run
    check_op(f(dc), f(torch), [((3, 4, 5),), ((2, 1, 7),), ((4, 0, 3),)], rtol=1e-5, atol=1e-5)


def test_sum_mean_edge_cases():
    check_op(lambda x: x.sum(), lambda x: x.sum(), [((),), ((1031,),), ((64, 513),)],
             rtol=1e-5, atol=1e-4)
    check_op(lambda x: x.sum(0), lambda x: x.sum(0), [((),)])
    check_op(lambda x: x.mean((0, 1)), lambda x: x.mean((0, 1)), [((33, 65, 3),)], rtol=1e-5,
             atol=1e-6)
    # Integer and bool sums accumulate in int64; dtype= casts first.
    check_op(lambda x: x.sum(1), lambda x: x.sum(1), [((3, 4),)],
             dtypes=[dc.bool, dc.int32, dc.int64], grad=False)
    check_op(lambda x: dc.sum(x, dtype=dc.float64), lambda x: torch.sum(x, dtype=torch.float64),
             [((3, 4),)], dtypes=[dc.int32, dc.float32])
    check_op(lambda x: dc.mean(x, 0, dtype=dc.float64),
             lambda x: torch.mean(x, 0, dtype=torch.float64), [((3, 4),)], dtypes=[dc.float32])
    with pytest.raises(TypeError, match="mean"):
        dc.mean(dc.ones(3, dtype=dc.int64))
    with pytest.raises(IndexError, match="sum"):
        dc.ones(2, 3).sum(2)
    with pytest.raises(ValueError, match="sum"):
        dc.ones(2, 3).sum((0, 0))


def test_sum_large_thread_independent():
    x = dc.rand(300, 1001)
    dc.set_num_threads(1)
    a = [x.sum().item(), x.sum(0).numpy().copy(), x.sum(1).numpy().copy()]
    dc.set_num_threads(2)
    b = [x.sum().item(), x.sum(0).numpy(), x.sum(1).numpy()]
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    assert abs(a[0] - x.numpy().astype(np.float64).sum()) < 1e-2


def test_sum_mean_gradcheck():
    assert gradcheck_op(lambda x: x.sum((0, 2), keepdim=True), [(2, 3, 2)])
    assert gradcheck_op(lambda x: x.mean(1), [(2, 3, 2)])
    assert gradcheck_op(lambda x: (x.sum(0) * x.mean(0)).sum(), [(3, 2)])


COVERED_OPS = {"matmul", "mm", "bmm", "mv", "dot", "outer", "addmm", "linear", "sum", "mean"}
