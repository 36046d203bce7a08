"""Elementwise ops vs PyTorch: binary ops, scalars, type promotion, comparisons, logical ops,
where, unary math, activations, clamp and the in-place variants."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepcore as dc
from helpers import (ALL_DTYPES, BROADCAST_PAIRS, FLOAT_DTYPES, INT_DTYPES, assert_close,
                     check_op, gradcheck_op, np_dtype, torch_dtype)


def _nonzero(rng, shape, dtype, k):
    """Values in +-[0.5, 2]: safe divisors, away from the discontinuities of floor/remainder."""
    if dtype in INT_DTYPES:
        v = rng.integers(1, 6, size=shape) * rng.choice([-1, 1], size=shape)
        return v.astype(np_dtype(dtype))
    v = rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return v.astype(np_dtype(dtype))


def _num_den(rng, shape, dtype, k):
    return (_nonzero(rng, shape, dtype, k) if k == 1 else
            (rng.uniform(-4, 4, size=shape) if dtype.is_floating_point
             else rng.integers(-9, 10, size=shape)).astype(np_dtype(dtype)))


def _pow_init(rng, shape, dtype, k):
    if k == 0:  # positive bases keep x ** y real
        return rng.uniform(0.5, 2.0, size=shape).astype(np_dtype(dtype)) \
            if dtype.is_floating_point else rng.integers(0, 4, size=shape).astype(np_dtype(dtype))
    return rng.uniform(-2, 2, size=shape).astype(np_dtype(dtype)) \
        if dtype.is_floating_point else rng.integers(0, 4, size=shape).astype(np_dtype(dtype))


# name -> (deepcore fn, torch fn, init or None, integer dtypes supported)
BINARY = {
    "add": (dc.add, torch.add, None, True),
    "sub": (dc.sub, torch.sub, None, True),
    "mul": (dc.mul, torch.mul, None, True),
    "div": (dc.div, torch.div, _num_den, True),
    "remainder": (dc.remainder, torch.remainder, _num_den, True),
    "fmod": (dc.fmod, torch.fmod, _num_den, True),
    "pow": (dc.pow, torch.pow, _pow_init, True),
    "maximum": (dc.maximum, torch.maximum, None, True),
    "minimum": (dc.minimum, torch.minimum, None, True),
    "atan2": (dc.atan2, torch.atan2, None, False),
}
NONDIFF_BINARY = {
    "floor_divide": (dc.floor_divide, torch.floor_divide, _num_den),
    "eq": (dc.eq, torch.eq, None),
    "ne": (dc.ne, torch.ne, None),
    "lt": (dc.lt, torch.lt, None),
    "le": (dc.le, torch.le, None),
    "gt": (dc.gt, torch.gt, None),
    "ge": (dc.ge, torch.ge, None),
}
LOGICAL = {
    "logical_and": (dc.logical_and, torch.logical_and),
    "logical_or": (dc.logical_or, torch.logical_or),
    "logical_xor": (dc.logical_xor, torch.logical_xor),
    "bitwise_and": (dc.bitwise_and, torch.bitwise_and),
    "bitwise_or": (dc.bitwise_or, torch.bitwise_or),
    "bitwise_xor": (dc.bitwise_xor, torch.bitwise_xor),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_float(name):
    f, tf, init, _ = BINARY[name]
    check_op(f, tf, BROADCAST_PAIRS, init=init)


@pytest.mark.parametrize("name", sorted(n for n, v in BINARY.items() if v[3]))
def test_binary_int(name):
    f, tf, init, _ = BINARY[name]
    check_op(f, tf, BROADCAST_PAIRS[:5], dtypes=INT_DTYPES, init=init, low=-5, high=5)


@pytest.mark.parametrize("name", sorted(NONDIFF_BINARY))
def test_binary_nondifferentiable(name):
    f, tf, init = NONDIFF_BINARY[name]
    # Small integer-valued floats make ties, which is where comparisons go wrong.
    tie_init = init or (lambda rng, s, d, k: rng.integers(-2, 3, size=s).astype(np_dtype(d)))
    check_op(f, tf, BROADCAST_PAIRS, dtypes=FLOAT_DTYPES + INT_DTYPES, init=tie_init, grad=False)


@pytest.mark.parametrize("name", sorted(LOGICAL))
def test_logical_and_bitwise(name):
    f, tf = LOGICAL[name]
    dtypes = [dc.bool, dc.int32, dc.int64] + ([] if "bitwise" in name else [dc.float32])
    check_op(f, tf, BROADCAST_PAIRS[:6], dtypes=dtypes, low=-3, high=3, grad=False)


def test_logical_not():
    check_op(dc.logical_not, torch.logical_not, [((3, 4),), ((5,),), ((),)],
             dtypes=ALL_DTYPES, low=-1, high=1, grad=False)
    check_op(lambda x: ~x, lambda x: ~x, [((3, 4),)], dtypes=[dc.bool], grad=False)


def test_isnan_isinf_isfinite():
    vals = [0.0, float("nan"), float("inf"), -float("inf"), 1.5, -2.0]
    for d in FLOAT_DTYPES:
        x = dc.tensor(vals, dtype=d)
        tx = torch.tensor(vals, dtype=torch_dtype(d))
        for name in ["isnan", "isinf", "isfinite"]:
            assert_close(getattr(dc, name)(x), getattr(torch, name)(tx), msg=name)
    xi = dc.tensor([1, 2, 3])
    ti = torch.tensor([1, 2, 3])
    for name in ["isnan", "isinf", "isfinite"]:
        assert_close(getattr(dc, name)(xi), getattr(torch, name)(ti), msg=name)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (4,)),
                                    ((2, 3, 4), (4,), ()), ((4,), (2, 1, 4), (1,))])
def test_where(shapes):
    def init(rng, shape, dtype, k):
        return rng.random(shape) < 0.5 if k == 0 else rng.uniform(-2, 2, shape).astype(
            np_dtype(dtype))
    for dts in [(dc.bool, dc.float32, dc.float32), (dc.bool, dc.float64, dc.float64),
                (dc.bool, dc.float32, dc.float64), (dc.bool, dc.int64, dc.float32)]:
        check_op(dc.where, torch.where, [shapes], dtypes=[dts], init=init)
    # Python scalars as either branch.
    check_op(lambda c, a: dc.where(c, a, 0.5), lambda c, a: torch.where(c, a, 0.5),
             [shapes[:2]], dtypes=[(dc.bool, dc.float32)], init=init)
    check_op(lambda c, b: dc.where(c, 2, b), lambda c, b: torch.where(c, 2, b),
             [shapes[:2]], dtypes=[(dc.bool, dc.float64)], init=init)


# ---- scalar operands and type promotion --------------------------------------------------------

OPERATORS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "floor_divide": lambda a, b: a // b,
    "remainder": lambda a, b: a % b,
    "pow": lambda a, b: a ** b,
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "ge": lambda a, b: a >= b,
}
SCALARS = [2, -3, 2.5, True, False]


@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_python_scalar_operands(op):
    f = OPERATORS[op]
    cases = []
    for s in SCALARS:
        if op in ("div", "floor_divide", "remainder") and s in (0, False):
            continue
        if op == "pow" and isinstance(s, int) and s < 0:
            continue
        if op == "pow" and isinstance(s, bool):
            continue  # torch's PowBackward asserts on a bool exponent
        cases += [((3, 4), s), (s, (3, 4)), ((), s)]
    init = _pow_init if op == "pow" else _nonzero
    for dt in [dc.float32, dc.float64, dc.int64, dc.int32, dc.bool]:
        if dt == dc.bool and op in ("sub", "div", "floor_divide", "remainder", "pow"):
            continue
        if op == "sub":  # torch refuses a bool on either side, Python bools included
            cases = [c for c in cases if not any(isinstance(v, bool) for v in c)]
        dcases = cases
        if dt in INT_DTYPES + (dc.bool,) and op == "pow":
            dcases = [c for c in cases if not isinstance(c[0], float)]  # float ** int tensor ok
        for case in dcases:
            # torch has no derivative for floor_divide, nor for remainder(number, tensor).
            grad = dt.is_floating_point and op != "floor_divide" and not (
                op == "remainder" and not isinstance(case[0], tuple))
            check_op(f, f, [case], dtypes=[dt], init=init if dt != dc.bool else None,
                     grad=grad, noncontig=False)


@pytest.mark.parametrize("op", ["add", "mul", "div", "maximum", "eq", "lt", "where_", "sub"])
def test_type_promotion_matrix(op):
    """Every pair of dtypes, including 0-d tensors (which promote like scalars within a kind)."""
    fn = {"add": (dc.add, torch.add), "mul": (dc.mul, torch.mul), "div": (dc.div, torch.div),
          "maximum": (dc.maximum, torch.maximum), "eq": (dc.eq, torch.eq), "lt": (dc.lt, torch.lt),
          "sub": (dc.sub, torch.sub),
          "where_": (lambda a, b: dc.where(a > b, a, b), lambda a, b: torch.where(a > b, a, b))}[op]
    for da in ALL_DTYPES:
        for db in ALL_DTYPES:
            if op == "sub" and dc.bool in (da, db):
                with pytest.raises(TypeError, match="sub"):
                    dc.sub(dc.ones(2, dtype=da), dc.ones(2, dtype=db))
                continue
            for shapes in [((3,), (3,)), ((3,), ()), ((), (2, 3)), ((), ())]:
                check_op(fn[0], fn[1], [shapes], dtypes=[(da, db)], init=_nonzero,
                         grad=False, noncontig=False)


def test_result_type_matches_torch():
    samples = []
    for d in ALL_DTYPES:
        samples.append((f"t_{d}", dc.ones(2, dtype=d), torch.ones(2, dtype=torch_dtype(d))))
        samples.append((f"z_{d}", dc.ones((), dtype=d), torch.ones((), dtype=torch_dtype(d))))
    for s in [True, 3, 2.5]:
        samples.append((repr(s), s, s))
    for na, a, ta in samples:
        for nb, b, tb in samples:
            if not isinstance(a, dc.Tensor) and not isinstance(b, dc.Tensor):
                continue
            expected = torch.result_type(ta, tb)
            got = dc.result_type(a, b)
            assert got == {torch.bool: dc.bool, torch.int32: dc.int32, torch.int64: dc.int64,
                           torch.float32: dc.float32, torch.float64: dc.float64}[expected], \
                f"result_type({na}, {nb}) = {got}, torch {expected}"


def test_sub_bool_raises_and_int_division_promotes():
    for a, b in [(dc.tensor([True]), dc.tensor([False])), (dc.tensor([True]), 1),
                 (True, dc.tensor([1.0])), (dc.tensor([1, 2]), dc.tensor([True, False]))]:
        with pytest.raises(TypeError, match="sub"):
            a - b
    out = dc.tensor([3, 4]) / dc.tensor([2, 8])
    assert out.dtype == dc.float32
    assert out.tolist() == [1.5, 0.5]


def test_div_rounding_modes():
    def init(rng, shape, dtype, k):
        return _num_den(rng, shape, dtype, k)
    for mode in ["trunc", "floor"]:
        check_op(lambda a, b: dc.div(a, b, rounding_mode=mode),
                 lambda a, b: torch.div(a, b, rounding_mode=mode),
                 BROADCAST_PAIRS[:4], dtypes=FLOAT_DTYPES + INT_DTYPES, init=init, grad=False)


def test_integer_edge_values():
    a = dc.tensor([7, -7, 7, -7, 0])
    b = dc.tensor([2, 2, -2, -2, 3])
    ta, tb = torch.tensor(a.tolist()), torch.tensor(b.tolist())
    assert_close(a // b, ta // tb)
    assert_close(a % b, ta % tb)
    assert_close(dc.fmod(a, b), torch.fmod(ta, tb))
    assert_close(a ** dc.tensor([0, 1, 2, 3, 4]), ta ** torch.tensor([0, 1, 2, 3, 4]))
    big = dc.tensor([2 ** 62, -2 ** 62])
    assert (big + 1).tolist() == [2 ** 62 + 1, -2 ** 62 + 1]


def test_nan_propagation():
    nan = float("nan")
    x = dc.tensor([nan, 1.0, -1.0])
    y = dc.tensor([0.0, nan, 2.0])
    tx, ty = torch.tensor([nan, 1.0, -1.0]), torch.tensor([0.0, nan, 2.0])
    for name in ["maximum", "minimum"]:
        assert_close(getattr(dc, name)(x, y), getattr(torch, name)(tx, ty), msg=name)
    assert_close(dc.relu(x), torch.relu(tx))
    assert_close(dc.clamp(x, -0.5, 0.5), torch.clamp(tx, -0.5, 0.5))
    assert_close(dc.exp(dc.tensor([nan, float("inf"), -float("inf")])),
                 torch.exp(torch.tensor([nan, float("inf"), -float("inf")])))


def test_maximum_ties_split_gradient():
    check_op(dc.maximum, torch.maximum, [((4, 5), (4, 5)), ((4, 5), (5,))],
             init=lambda rng, s, d, k: rng.integers(-1, 2, size=s).astype(np_dtype(d)))
    check_op(dc.minimum, torch.minimum, [((4, 5), (4, 5))],
             init=lambda rng, s, d, k: rng.integers(-1, 2, size=s).astype(np_dtype(d)))


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "atan2", "maximum",
                                  "remainder", "fmod", "where"])
def test_binary_gradcheck(name):
    if name == "where":
        cond = dc.tensor([[True, False, True], [False, True, False]])
        assert gradcheck_op(lambda a, b: dc.where(cond, a, b), [(2, 3), (3,)])
        return
    f, _, init, _ = BINARY[name]
    assert gradcheck_op(f, [(2, 3), (3,)], init=init)
    assert gradcheck_op(lambda a: f(a, 1.5), [(2, 3)], init=init)


def test_add_sub_alpha():
    check_op(lambda a, b: dc.add(a, b, alpha=2.5), lambda a, b: torch.add(a, b, alpha=2.5),
             BROADCAST_PAIRS[:4])
    check_op(lambda a, b: dc.sub(a, b, alpha=-3), lambda a, b: torch.sub(a, b, alpha=-3),
             BROADCAST_PAIRS[:4])
    check_op(lambda a, b: dc.add(a, b, alpha=3), lambda a, b: torch.add(a, b, alpha=3),
             BROADCAST_PAIRS[:2], dtypes=INT_DTYPES)


# ---- unary math ------------------------------------------------------------------------------

def _away_from_zero(rng, shape, dtype, k):
    return _nonzero(rng, shape, dtype, k)


def _away_from_half(rng, shape, dtype, k):
    # round/floor/ceil: avoid values within 1e-3 of the rounding boundaries.
    v = rng.integers(-5, 6, size=shape) + rng.choice([0.2, 0.7, -0.3, 0.5], size=shape)
    return v.astype(np_dtype(dtype))


# name -> (deepcore fn, torch fn, low, high, init, keeps integer dtype)
UNARY = {
    "neg": (dc.neg, torch.neg, -2, 2, None, True),
    "abs": (dc.abs, torch.abs, -2, 2, _away_from_zero, True),
    "exp": (dc.exp, torch.exp, -5, 5, None, False),
    "expm1": (dc.expm1, torch.expm1, -3, 3, None, False),
    "log": (dc.log, torch.log, 0.1, 4, None, False),
    "log2": (dc.log2, torch.log2, 0.1, 4, None, False),
    "log10": (dc.log10, torch.log10, 0.1, 4, None, False),
    "log1p": (dc.log1p, torch.log1p, -0.5, 3, None, False),
    "sqrt": (dc.sqrt, torch.sqrt, 0.1, 4, None, False),
    "rsqrt": (dc.rsqrt, torch.rsqrt, 0.1, 4, None, False),
    "sin": (dc.sin, torch.sin, -4, 4, None, False),
    "cos": (dc.cos, torch.cos, -4, 4, None, False),
    "tan": (dc.tan, torch.tan, -1.2, 1.2, None, False),
    "asin": (dc.asin, torch.asin, -0.9, 0.9, None, False),
    "acos": (dc.acos, torch.acos, -0.9, 0.9, None, False),
    "atan": (dc.atan, torch.atan, -3, 3, None, False),
    "sinh": (dc.sinh, torch.sinh, -3, 3, None, False),
    "cosh": (dc.cosh, torch.cosh, -3, 3, None, False),
    "tanh": (dc.tanh, torch.tanh, -3, 3, None, False),
    "sigmoid": (dc.sigmoid, torch.sigmoid, -6, 6, None, False),
    "relu": (dc.relu, torch.relu, -2, 2, _away_from_zero, True),
    "silu": (dc.silu, TF.silu, -6, 6, None, False),
    "erf": (dc.erf, torch.erf, -2.5, 2.5, None, False),
    "reciprocal": (dc.reciprocal, torch.reciprocal, -2, 2, _away_from_zero, False),
    "square": (dc.square, torch.square, -2, 2, None, True),
    "sign": (dc.sign, torch.sign, -2, 2, _away_from_zero, True),
    "floor": (dc.floor, torch.floor, -3, 3, _away_from_half, True),
    "ceil": (dc.ceil, torch.ceil, -3, 3, _away_from_half, True),
    "round": (dc.round, torch.round, -3, 3, _away_from_half, True),
    "trunc": (dc.trunc, torch.trunc, -3, 3, _away_from_half, True),
    "mish": (dc.mish, TF.mish, -6, 6, None, False),
}
UNARY_SHAPES = [((3, 4),), ((2, 3, 5),), ((),), ((0, 3),), ((1031,),)]


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name):
    f, tf, lo, hi, init, _ = UNARY[name]
    check_op(f, tf, UNARY_SHAPES, low=lo, high=hi, init=init)
    if name in ("silu", "mish"):
        return  # functional only in torch
    # Methods are the same functions.
    check_op(lambda x: getattr(x, name)(), lambda x: getattr(x, name)(), [((2, 3),)], low=lo,
             high=hi, init=init, noncontig=False)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_integer_input(name):
    f, tf, lo, hi, init, keeps = UNARY[name]
    if name in ("silu", "mish"):  # torch has no integer kernels for these; deepcore promotes
        x = dc.tensor([[-2, 0, 3]])
        assert_close(f(x), tf(torch.tensor([[-2.0, 0.0, 3.0]])))
        return
    lo_i, hi_i = (1, 4) if lo > 0 else (0, 1) if name in ("asin", "acos") else (-3, 3)
    if name == "reciprocal":
        lo_i = 1
    # Integer inputs either keep their dtype (abs, neg, floor...) or become float32 like torch.
    check_op(f, tf, [((3, 4),)], dtypes=INT_DTYPES, low=lo_i, high=hi_i, grad=False,
             noncontig=False, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sin", "tanh", "sigmoid", "silu", "erf",
                                  "atan", "reciprocal", "mish", "asin", "cosh", "expm1", "abs",
                                  "rsqrt", "tan", "log1p", "square", "neg"])
def test_unary_gradcheck(name):
    f, _, lo, hi, init, _ = UNARY[name]
    assert gradcheck_op(f, [(2, 3)], low=lo, high=hi, init=init)


def test_relu_double_backward_matches_torch():
    # relu's gradient is one fused op (relu_backward) that is itself differentiable in g.
    xv = np.array([[-1.5, 0.0, 2.0], [0.5, -0.25, 3.0]])
    x, tx = dc.tensor(xv, requires_grad=True), torch.tensor(xv, requires_grad=True)
    outs = []
    for lib, t in ((dc, x), (torch, tx)):
        y = lib.relu(t * t * t)
        (g,) = lib.autograd.grad(y.sum(), [t], create_graph=True)
        (gg,) = lib.autograd.grad((g * g).sum(), [t])
        outs.append((g, gg))
    assert_close(outs[0][0], outs[1][0].detach())
    assert_close(outs[0][1], outs[1][1])


def test_exp_sigmoid_extremes():
    vals = [-200.0, -104.0, -88.0, -87.0, -10.0, 0.0, 10.0, 88.0, 88.7, 89.0, 200.0]
    x, tx = dc.tensor(vals), torch.tensor(vals)
    assert_close(dc.exp(x), torch.exp(tx), rtol=2e-6, atol=1e-37)
    assert_close(dc.sigmoid(x), torch.sigmoid(tx))
    assert_close(dc.silu(x), TF.silu(tx))
    assert_close(dc.softplus(x), TF.softplus(tx))
    assert_close(dc.mish(x), TF.mish(tx), rtol=1e-5, atol=1e-6)
    # gelu's tail: 0.5 x erfc(-x / sqrt 2) keeps its digits where 1 + erf(x / sqrt 2) cancels.
    import math
    xs = [-3.0, -4.5, -5.0, -6.0]
    want = [0.5 * v * math.erfc(-v / math.sqrt(2)) for v in xs]
    np.testing.assert_allclose(dc.gelu(dc.tensor(xs)).numpy(), want, rtol=3e-6)
    np.testing.assert_allclose(dc.gelu(dc.tensor(xs, dtype=dc.float64)).numpy(), want,
                               rtol=1e-13)
    # Dense sweep: float32 exp within a couple of ulps over its whole finite range.
    xs = np.linspace(-87, 88.5, 200001, dtype=np.float32)
    np.testing.assert_allclose(dc.exp(dc.from_numpy(xs)).numpy(), np.exp(xs.astype(np.float64)),
                               rtol=3e-7)


# ---- activations ------------------------------------------------------------------------------

ACTIVATIONS = {
    "gelu": (dc.gelu, TF.gelu, -4, 4),
    "gelu_tanh": (lambda x: dc.gelu(x, approximate="tanh"),
                  lambda x: TF.gelu(x, approximate="tanh"), -4, 4),
    "softplus": (dc.softplus, TF.softplus, -25, 25),
    "softplus_beta": (lambda x: dc.softplus(x, beta=2.0, threshold=3.0),
                      lambda x: TF.softplus(x, beta=2.0, threshold=3.0), -4, 4),
    "leaky_relu": (dc.leaky_relu, TF.leaky_relu, -2, 2),
    "leaky_relu_slope": (lambda x: dc.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), -2, 2),
    "elu": (dc.elu, TF.elu, -3, 3),
    "elu_alpha": (lambda x: dc.elu(x, alpha=0.5), lambda x: TF.elu(x, alpha=0.5), -3, 3),
    "selu": (dc.selu, TF.selu, -3, 3),
    "celu": (lambda x: dc.celu(x, alpha=1.5), lambda x: TF.celu(x, alpha=1.5), -3, 3),
    "hardtanh": (lambda x: dc.hardtanh(x, -0.5, 1.5), lambda x: TF.hardtanh(x, -0.5, 1.5), -3, 3),
    "relu6": (dc.relu6, TF.relu6, -3, 9),
    "hardsigmoid": (dc.hardsigmoid, TF.hardsigmoid, -5, 5),
    "hardswish": (dc.hardswish, TF.hardswish, -5, 5),
    "logsigmoid": (dc.logsigmoid, TF.logsigmoid, -30, 30),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(name):
    f, tf, lo, hi = ACTIVATIONS[name]
    # torch's float64 hardsigmoid backward multiplies by the float32 constant 1/6.
    grad_rtol = 1e-7 if name == "hardsigmoid" else None
    check_op(f, tf, UNARY_SHAPES, low=lo, high=hi, grad_rtol=grad_rtol)


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "softplus_beta", "elu_alpha", "selu",
                                  "celu", "logsigmoid", "leaky_relu_slope"])
def test_activation_gradcheck(name):
    f, _, lo, hi = ACTIVATIONS[name]
    init = lambda rng, s, d, k: _nonzero(rng, s, d, k) * 1.5  # noqa: E731  away from kinks
    assert gradcheck_op(f, [(2, 3)], init=init)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="gelu"):
        dc.gelu(dc.ones(2), approximate="fast")


CLAMPS = {
    "both": (lambda x: dc.clamp(x, -0.5, 0.7), lambda x: torch.clamp(x, -0.5, 0.7)),
    "min_only": (lambda x: dc.clamp(x, min=-0.3), lambda x: torch.clamp(x, min=-0.3)),
    "max_only": (lambda x: dc.clamp(x, max=0.4), lambda x: torch.clamp(x, max=0.4)),
    "min_above_max": (lambda x: dc.clamp(x, 1.0, 0.0), lambda x: torch.clamp(x, 1.0, 0.0)),
    "method": (lambda x: x.clamp(min=0), lambda x: x.clamp(min=0)),
    "clip": (lambda x: dc.clip(x, -1, 1), lambda x: torch.clip(x, -1, 1)),
}


@pytest.mark.parametrize("name", sorted(CLAMPS))
def test_clamp(name):
    f, tf = CLAMPS[name]
    check_op(f, tf, UNARY_SHAPES, init=lambda rng, s, d, k: rng.uniform(-2, 2, s).astype(
        np_dtype(d)))


def test_clamp_integer_and_tensor_bounds():
    check_op(lambda x: dc.clamp(x, -1, 2), lambda x: torch.clamp(x, -1, 2), [((4, 5),)],
             dtypes=INT_DTYPES, low=-4, high=4, grad=False)
    # A float bound promotes an integer tensor to the default float, like torch.
    check_op(lambda x: dc.clamp(x, -1.5, 2), lambda x: torch.clamp(x, -1.5, 2), [((4, 5),)],
             dtypes=INT_DTYPES, low=-4, high=4, grad=False)
    check_op(lambda x, lo, hi: dc.clamp(x, lo, hi), lambda x, lo, hi: torch.clamp(x, lo, hi),
             [((3, 4), (4,), (3, 1))],
             init=lambda rng, s, d, k: (rng.uniform(-2, 2, s) + [0, -1, 1][k]).astype(
                 np_dtype(d)))
    with pytest.raises(ValueError, match="clamp"):
        dc.clamp(dc.ones(2))


def test_clamp_gradcheck():
    init = lambda rng, s, d, k: _nonzero(rng, s, d, k)  # noqa: E731
    assert gradcheck_op(lambda x: dc.clamp(x, -1.0, 1.0), [(3, 4)], init=init)
    assert gradcheck_op(lambda x: dc.clamp(x, min=0.0), [(3, 4)], init=init)


# ---- in-place variants ------------------------------------------------------------------------

INPLACE = {
    "add_": (lambda a, b: a.add_(b), None),
    "add_alpha": (lambda a, b: a.add_(b, alpha=2.0), None),
    "sub_": (lambda a, b: a.sub_(b), None),
    "sub_alpha": (lambda a, b: a.sub_(b, alpha=-0.5), None),
    "mul_": (lambda a, b: a.mul_(b), None),
    "div_": (lambda a, b: a.div_(b), _nonzero),
    "pow_": (lambda a, b: a.pow_(b), _pow_init),
    "iadd": (lambda a, b: a.__iadd__(b), None),
    "isub": (lambda a, b: a.__isub__(b), None),
    "imul": (lambda a, b: a.__imul__(b), None),
    "itruediv": (lambda a, b: a.__itruediv__(b), _nonzero),
    "relu_": (lambda a, b: a.relu_(), None),
    "sigmoid_": (lambda a, b: a.sigmoid_(), None),
    "tanh_": (lambda a, b: a.tanh_(), None),
    "exp_": (lambda a, b: a.exp_(), None),
    "clamp_": (lambda a, b: a.clamp_(-0.5, 0.5), None),
    "dc.relu_": (lambda a, b: dc.relu_(a) if isinstance(a, dc.Tensor) else torch.relu_(a), None),
    "sin_": (lambda a, b: a.sin_(), None),
    "log_": (lambda a, b: a.abs_().add_(0.5).log_(), None),
    "square_": (lambda a, b: a.square_(), None),
    "fill_": (lambda a, b: a.fill_(1.5), None),
    "zero_": (lambda a, b: a.zero_(), None),
    "copy_": (lambda a, b: a.copy_(b), None),
    "leaky_relu_": (lambda a, b: dc.leaky_relu_(a, 0.1) if isinstance(a, dc.Tensor)
                    else TF.leaky_relu_(a, 0.1), None),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_matches_out_of_place(name):
    f, init = INPLACE[name]
    rng = np.random.default_rng(3)
    for d in FLOAT_DTYPES:
        for sa, sb in [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), ())]:
            a_np = (init(rng, sa, d, 0) if init else rng.uniform(-2, 2, sa)).astype(np_dtype(d))
            b_np = (init(rng, sb, d, 1) if init else rng.uniform(-2, 2, sb)).astype(np_dtype(d))
            # Without autograd: the result is written into `a` itself.
            a, ta = dc.tensor(a_np), torch.tensor(a_np)
            v0 = a._version()
            r = f(a, dc.tensor(b_np))
            f(ta, torch.tensor(b_np))
            assert r is a, f"{name} must return its input"
            assert_close(a, ta, msg=name)
            assert a._version() > v0, f"{name} must bump the version counter"
            # With autograd, on a non-leaf: same values and the same gradients as torch.
            x, tx = dc.tensor(a_np, requires_grad=True), torch.tensor(a_np, requires_grad=True)
            y, ty = dc.tensor(b_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
            h, th = x * 1.5, tx * 1.5
            f(h, y)
            f(th, ty)
            assert_close(h, th, msg=name)
            g = rng.standard_normal(sa).astype(np_dtype(d))
            (h * dc.tensor(g)).sum().backward()
            (th * torch.tensor(g)).sum().backward()
            assert_close(x.grad, tx.grad, rtol=1e-4, atol=1e-5, msg=f"{name} grad x")
            if ty.grad is not None:
                assert_close(y.grad, ty.grad, rtol=1e-4, atol=1e-5, msg=f"{name} grad y")
            else:
                assert y.grad is None or not np.any(y.grad.numpy())


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_on_leaf_requiring_grad_raises(name):
    f, _ = INPLACE[name]
    x = dc.rand(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        f(x, dc.rand(3, 4))
    with dc.no_grad():  # allowed under no_grad, like torch
        f(x, dc.rand(3, 4) + 0.5)


def test_inplace_dtype_rules():
    i = dc.tensor([1, 2, 3])
    with pytest.raises(TypeError, match="div_"):
        i.div_(2)
    with pytest.raises(TypeError, match="add_"):
        i.add_(1.5)
    with pytest.raises(TypeError):
        i.exp_()
    i.add_(2)  # int + int stays int
    assert i.tolist() == [3, 4, 5] and i.dtype == dc.int64
    f = dc.tensor([1.0, 2.0])
    f.add_(dc.tensor([1, 1]))  # int into float is fine
    assert f.tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="add_"):
        dc.ones(3).add_(dc.ones(2, 3))  # the result may not broadcast beyond the destination


def test_inplace_aliasing_operand():
    a = dc.arange(6.0).reshape(2, 3)
    ta = torch.arange(6.0).reshape(2, 3)
    a.add_(a.t().t())
    ta.add_(ta.t().t())
    assert_close(a, ta)
    b = dc.arange(5.0)
    tb = torch.arange(5.0)
    b[1:].copy_(b[:-1])
    tb[1:] = tb[:-1].clone()
    assert_close(b, tb)


def test_inplace_through_view_changes_base():
    base = dc.zeros(3, 4)
    v = base[1]
    v.add_(2.0)
    base[:, 0].mul_(0.0)
    expected = torch.zeros(3, 4)
    expected[1] += 2.0
    expected[:, 0] *= 0.0
    assert_close(base, expected)
    assert base._version() == v._version()  # one counter per storage


def test_where_requires_bool_condition():
    with pytest.raises(TypeError, match="where"):
        dc.where(dc.ones(3), dc.ones(3), dc.zeros(3))


# Ops these tests cover (tests/test_registry.py checks the registry against it).
COVERED_OPS = (set(BINARY) | set(NONDIFF_BINARY) | set(LOGICAL) | set(UNARY) |
               {"logical_not", "isnan", "isinf", "isfinite", "where", "gelu", "softplus",
                "leaky_relu", "elu", "selu", "celu", "hardtanh", "relu6", "hardsigmoid",
                "hardswish", "logsigmoid", "clamp", "add_", "sub_", "mul_", "div_", "pow_",
                "relu_", "sigmoid_", "tanh_", "exp_", "clamp_", "fill_", "zero_", "copy_",
                "result_type"})


def test_hardtanh_family_gradient_is_zero_at_the_bounds_like_torch():
    # hardtanh / relu6 / hardsigmoid pass the gradient only strictly inside (min, max);
    # clamp passes it on the closed interval.
    vals = [-2.0, -1.0, 0.0, 0.5, 1.0, 6.0, 7.0, -3.0, 3.0]
    grads = []
    for lib in (dc, torch):
        x = lib.tensor(vals, requires_grad=True)
        F = lib.nn.functional
        (F.hardtanh(x) + F.relu6(x) + F.hardsigmoid(x) + x.clamp(-1, 1)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)
