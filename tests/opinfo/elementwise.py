"""OpInfo entries: elementwise binary and unary ops, activations, creation."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as TF

from helpers import INT_DTYPES, np_dtype
from .core import (
    ALL, BOOL, F32, F64, FLOATS, I32, I64, NUMERIC, PAIRS, UNARY_SHAPES, DType, Sample, add, arr,
    away, method, off_half,
)

# ---- elementwise binary -------------------------------------------------------------------

def _num_den(rng, shape, dtype, k):
    if k == 1:
        return away(rng, shape, dtype)
    return arr(rng, shape, dtype, -4, 4)


def _pow_init(rng, shape, dtype, k):
    if dtype in INT_DTYPES:
        return arr(rng, shape, dtype, 0, 3)
    return arr(rng, shape, dtype, 0.5, 2.0) if k == 0 else arr(rng, shape, dtype, -2, 2)


def _plain(rng, shape, dtype, k):
    return arr(rng, shape, dtype)


def _ties(rng, shape, dtype, k):
    """Small integer values (as any dtype) so comparisons meet ties."""
    return np.asarray(rng.integers(-2, 3, size=shape), np_dtype(dtype))


def _positive_second(rng, shape, dtype, k):
    return arr(rng, shape, dtype) if k == 0 else arr(rng, shape, dtype, 0.3, 3.0)


def binary_samples(init=_plain, scalar=2.5, int_scalar=3, **kwargs):
    def gen(rng, dtype):
        out = [Sample(init(rng, a, dtype, 0), init(rng, b, dtype, 1), **kwargs) for a, b in PAIRS]
        s = scalar if dtype.is_floating_point else int_scalar
        if scalar is not None and s is not None:
            out.append(Sample(init(rng, (3, 4), dtype, 0), s, **kwargs))
        return out
    return gen


BINARY = {  # name: (init, int dtypes too, gradgrad)
    "add": (_plain, True, False), "sub": (_plain, True, False), "mul": (_plain, True, True),
    "div": (_num_den, True, True), "remainder": (_num_den, True, False),
    "fmod": (_num_den, True, False), "pow": (_pow_init, True, True),
    "maximum": (_plain, True, False), "minimum": (_plain, True, False),
    "atan2": (_plain, False, True), "hypot": (_plain, False, True),
    "copysign": (_plain, False, False), "logaddexp": (_plain, False, True),
    "logaddexp2": (_plain, False, False), "xlogy": (_positive_second, False, True),
}
for _n, (_init, _ints, _gg) in BINARY.items():
    _no_scalar = ("maximum", "minimum", "atan2", "hypot", "logaddexp", "logaddexp2")
    add(_n, binary_samples(_init, scalar=None if _n in _no_scalar else 1.5),
        dtypes=NUMERIC if _ints else FLOATS, gradgrad=_gg)
# xlogy is 0 wherever x is 0, whatever y (NaN aside); torch has no derivative for nextafter.
add("xlogy", lambda rng, d: [Sample(np.array([0.0, 0.0, 2.0, -1.5], np_dtype(d)),
                                    np.array([0.0, 3.0, 0.5, np.nan], np_dtype(d)),
                                    desc="zeros and NaN", grad=False)], grad=False,
    gradcheck=False)
add("nextafter", binary_samples(scalar=None), dtypes=FLOATS, grad=False, gradcheck=False)
add("nextafter", lambda rng, d: [Sample(np.array([0.0, 1.0, -0.0, np.inf, 1.0], np_dtype(d)),
                                        np.array([1.0, 2.0, -1.0, 0.0, np.nan], np_dtype(d)),
                                        desc="edges")], dtypes=FLOATS, grad=False,
    gradcheck=False)
add("add", binary_samples(scalar=None, alpha=2.5), dtypes=FLOATS)  # alpha=
add("div", binary_samples(_num_den, scalar=None, rounding_mode="floor"), dtypes=NUMERIC,
    grad=False)  # torch has no derivative for a rounded division

for _n in ("eq", "ne", "lt", "le", "gt", "ge", "floor_divide"):
    add(_n, binary_samples(_num_den if _n == "floor_divide" else _ties, scalar=1.0,
                           int_scalar=1), dtypes=NUMERIC)
for _n in ("logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
           "bitwise_xor"):
    add(_n, binary_samples(_ties, scalar=None), dtypes=(BOOL, I32, I64) +
        (() if _n.startswith("bitwise") else (F32,)))
add("logical_not", lambda rng, d: [Sample(_ties(rng, s, d, 0)) for s in UNARY_SHAPES],
    dtypes=ALL)


def _special(rng, shape, dtype):
    if dtype in INT_DTYPES:
        return arr(rng, shape, dtype, -5, 5)
    vals = np.array([0.0, np.nan, np.inf, -np.inf, 1.5, -2.0])
    return np.asarray(rng.choice(vals, size=shape), np_dtype(dtype))


for _n in ("isnan", "isinf", "isfinite"):
    add(_n, lambda rng, d: [Sample(_special(rng, s, d)) for s in UNARY_SHAPES], dtypes=NUMERIC)


def _where_samples(rng, dtype):
    shapes = [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (4,)), ((2, 3, 4), (4,), ()),
              ((4,), (2, 1, 4), (1,)), ((0, 2), (2,), (0, 2))]
    out = [Sample(arr(rng, c, BOOL), arr(rng, a, dtype), arr(rng, b, dtype)) for c, a, b in shapes]
    out.append(Sample(arr(rng, (3, 4), BOOL), arr(rng, (3, 4), dtype), 0.5, desc="scalar other"))
    return out


add("where", _where_samples, dtypes=NUMERIC, gradgrad=True)


def _inplace_binary(init=_plain, scalar=1.5, **kwargs):
    def gen(rng, dtype):
        out = [Sample(init(rng, (3, 4), dtype, 0), init(rng, b, dtype, 1), **kwargs)
               for b in [(3, 4), (4,), (3, 1), ()]]
        out.append(Sample(init(rng, (37,), dtype, 0), init(rng, (37,), dtype, 1), **kwargs))
        if scalar is not None:
            out.append(Sample(init(rng, (2, 3), dtype, 0), scalar, **kwargs))
        return out
    return gen


for _n, _init in [("add_", _plain), ("sub_", _plain), ("mul_", _plain), ("div_", _num_den),
                  ("pow_", _pow_init)]:
    add(_n, _inplace_binary(_init), inplace=True, op=method(_n), ref=method(_n))
add("sub_", _inplace_binary(scalar=None, alpha=-0.5), inplace=True, op=method("sub_"),
    ref=method("sub_"))
add("add_", _inplace_binary(scalar=None), inplace=True, op=method("add_"), ref=method("add_"),
    dtypes=(I32, I64), grad=False)


# ---- unary --------------------------------------------------------------------------------

def unary_samples(low=-2.0, high=2.0, init=None, shapes=UNARY_SHAPES, **kwargs):
    def gen(rng, dtype):
        out = []
        for s in shapes:
            x = init(rng, s, dtype) if init else arr(rng, s, dtype, low, high)
            out.append(Sample(x, **kwargs))
        return out
    return gen


_away = lambda rng, s, d: away(rng, s, d)  # noqa: E731
# name: (low, high, init, integer inputs accepted, gradgrad, torch callable if not torch.<name>)
UNARY = {
    "neg": (-2, 2, None, True, False, None), "abs": (-2, 2, _away, True, False, None),
    "exp": (-5, 5, None, True, True, None), "expm1": (-3, 3, None, True, False, None),
    "exp2": (-5, 5, None, True, True, None),
    "log": (0.1, 4, None, True, True, None), "log2": (0.1, 4, None, True, False, None),
    "log10": (0.1, 4, None, True, False, None), "log1p": (-0.5, 3, None, True, False, None),
    "sqrt": (0.1, 4, None, True, True, None), "rsqrt": (0.1, 4, None, True, False, None),
    "sin": (-4, 4, None, True, True, None), "cos": (-4, 4, None, True, False, None),
    "tan": (-1.2, 1.2, None, True, False, None), "asin": (-0.9, 0.9, None, True, False, None),
    "acos": (-0.9, 0.9, None, True, False, None), "atan": (-3, 3, None, True, False, None),
    "sinh": (-3, 3, None, True, False, None), "cosh": (-3, 3, None, True, False, None),
    "tanh": (-3, 3, None, True, True, None), "sigmoid": (-6, 6, None, True, True, None),
    "asinh": (-3, 3, None, True, False, None), "acosh": (1.1, 4, None, True, False, None),
    "atanh": (-0.9, 0.9, None, True, False, None),
    "erfc": (-2.5, 2.5, None, True, True, None), "erfinv": (-0.9, 0.9, None, True, True, None),
    "lgamma": (0.1, 4, None, True, True, None), "digamma": (0.1, 4, None, True, False, None),
    "sinc": (-3, 3, _away, True, True, None), "i0": (-3, 3, None, True, False, None),
    "special_i1": (-3, 3, None, True, False, torch.special.i1),
    "softsign": (-3, 3, None, False, True, TF.softsign),
    "tanhshrink": (-3, 3, None, False, True, TF.tanhshrink),
    "relu": (-2, 2, _away, True, False, None), "silu": (-6, 6, None, False, True, TF.silu),
    "erf": (-2.5, 2.5, None, True, False, None),
    "reciprocal": (-2, 2, _away, False, True, None), "square": (-2, 2, None, True, False, None),
    "sign": (-2, 2, _away, True, False, None),
    "floor": (-3, 3, lambda r, s, d: off_half(r, s, d), True, False, None),
    "ceil": (-3, 3, lambda r, s, d: off_half(r, s, d), True, False, None),
    "round": (-3, 3, lambda r, s, d: off_half(r, s, d), True, False, None),
    "trunc": (-3, 3, lambda r, s, d: off_half(r, s, d), True, False, None),
    "mish": (-6, 6, None, False, False, TF.mish),
    "selu": (-3, 3, _away, False, False, TF.selu),
    "relu6": (-3, 9, _away, False, False, TF.relu6),
    "hardsigmoid": (-5, 5, lambda r, s, d: away(r, s, d, 0.5, 4), False, False, TF.hardsigmoid),
    "hardswish": (-5, 5, lambda r, s, d: away(r, s, d, 0.5, 4), False, False, TF.hardswish),
    "logsigmoid": (-30, 30, None, False, False, TF.logsigmoid),
}
# Integer inputs: ops that keep the dtype (abs, floor...) or promote to float32 like torch.
_INT_RANGES = {"asin": (0, 1), "acos": (0, 1), "reciprocal": (1, 4), "atanh": (0, 1),
               "erfinv": (0, 1)}
for _n, (_lo, _hi, _init, _ints, _gg, _tf) in UNARY.items():
    _dt = FLOATS + ((I32, I64) if _ints else ())
    _ilo, _ihi = _INT_RANGES.get(_n, (1, 4) if _lo > 0 else (-3, 3))

    def _gen(rng, dtype, _lo=_lo, _hi=_hi, _init=_init, _ilo=_ilo, _ihi=_ihi):
        if dtype in INT_DTYPES:
            return [Sample(arr(rng, s, dtype, _ilo, _ihi)) for s in UNARY_SHAPES]
        return unary_samples(_lo, _hi, _init)(rng, dtype)
    # hardsigmoid: torch's float64 backward multiplies by the float32 constant 1/6.
    add(_n, _gen, dtypes=_dt, gradgrad=_gg, ref=_tf,
        grad_tols={F64: (1e-7, 1e-11)} if _n == "hardsigmoid" else {})

add("round", lambda rng, d: [Sample(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.5], np_dtype(d)),
                                    desc="halves round to even", grad=False)],
    grad=False, gradcheck=False)

# Activations with parameters (functional in torch).
_ACT = {
    "gelu": [dict(), dict(approximate="tanh")],
    "softplus": [dict(), dict(beta=2.0, threshold=3.0)],
    "leaky_relu": [dict(), dict(negative_slope=0.2)],
    "elu": [dict(), dict(alpha=0.5)],
    "celu": [dict(alpha=1.5)],
    "hardtanh": [dict(), dict(min_val=-0.5, max_val=1.5)],
}
for _n, _kws in _ACT.items():
    def _gen(rng, dtype, _kws=_kws):
        return [Sample(away(rng, s, dtype, 0.1, 3), **k) for k in _kws for s in UNARY_SHAPES]
    add(_n, _gen, gradgrad=_n == "gelu")
# torch's float64 polygamma(n >= 1) is good to about 5e-10 (mpmath); deepcore's to 1e-15.
add("polygamma", lambda rng, d: [Sample(n, arr(rng, s, d, 0.3, 4)) for n in (0, 1, 2, 3)
                                 for s in UNARY_SHAPES[:3]], dtypes=FLOATS,
    tols={F64: (2e-9, 1e-12)}, grad_tols={F64: (2e-9, 1e-12)})
add("logit", lambda rng, d: [Sample(arr(rng, s, d, 0.05, 0.95)) for s in UNARY_SHAPES] +
    [Sample(arr(rng, (3, 4), d, 0.25, 0.75), eps=0.3)], dtypes=FLOATS)


def _clamp_samples(rng, dtype):
    def x(s):
        return off_half(rng, s, dtype) if dtype.is_floating_point else arr(rng, s, dtype, -4, 4)
    out = [Sample(x(s), -0.55, 0.85) for s in UNARY_SHAPES]
    out += [Sample(x((3, 4)), min=-0.4), Sample(x((3, 4)), max=0.3), Sample(x((3, 4)), 1.0, 0.0)]
    if dtype.is_floating_point:
        out.append(Sample(x((3, 4)), arr(rng, (4,), dtype, -1.9, -0.1),
                          arr(rng, (3, 1), dtype, 0.1, 1.9), desc="tensor bounds"))
    return out


add("clamp", _clamp_samples, dtypes=NUMERIC)
# Where x equals a tensor bound, torch passes the whole gradient to x (clamp is the identity
# on the closed interval), not half to each as maximum/minimum do at ties.
add("clamp", lambda rng, d: [Sample(np.array([0.7, -1.0, 0.2, 1.5], np_dtype(d)),
                                    np.array([0.7, -2.0, 0.0, 0.0], np_dtype(d)),
                                    np.array([2.0, -1.0, 1.0, 1.5], np_dtype(d)), desc="ties")],
    gradcheck=False)
for _n in ("relu_", "sigmoid_", "tanh_", "exp_"):
    add(_n, unary_samples(init=_away), inplace=True, op=method(_n),
        ref=method(_n))
add("clamp_", lambda rng, d: [Sample(off_half(rng, s, d), -0.55, 0.85) for s in UNARY_SHAPES[:3]],
    inplace=True, op=method("clamp_"), ref=method("clamp_"))


# ---- creation -----------------------------------------------------------------------------

def _same_shape_dtype(actual, expected, args):
    assert tuple(actual.shape) == tuple(expected.shape), (actual.shape, expected.shape)
    assert str(actual.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]


def _in_range(lo, hi, integral=False):
    def check(actual, expected, args):
        _same_shape_dtype(actual, expected, args)
        v = actual.numpy()
        assert v.size == 0 or (v.min() >= lo and v.max() < hi), (v.min(), v.max())
        if integral:
            np.testing.assert_array_equal(v, np.round(v))
    return check


def _factory_samples(*calls, check=None):
    def gen(rng, dtype):
        return [Sample(*c, dtype=DType(dtype), check=check) for c in calls]
    return gen


_SIZES = [((2, 3),), ((0,),), ((),), ((1, 1, 5),), (2, 3)]
add("empty", _factory_samples(*_SIZES, check=_same_shape_dtype), dtypes=ALL, factory=True)
add("zeros", _factory_samples(*_SIZES), dtypes=ALL, factory=True)
add("ones", _factory_samples(*_SIZES), dtypes=ALL, factory=True)
add("full", _factory_samples(((2, 3), 1), ((0,), 1), ((), 1), ((1, 5), 0)), dtypes=ALL,
    factory=True)
add("arange", _factory_samples((5,), (1, 5), (0, 10, 3), (5, 0, -1), (0, 0)), dtypes=NUMERIC,
    factory=True)
add("arange", _factory_samples((0, 1, 0.1), (-2.5, 2.5, 0.5), (1.5, 4.5)), tols={F32: (1e-6, 1e-7)},
    factory=True)
add("linspace", _factory_samples((0, 1, 5), (-3, 3, 7), (1, -1, 4), (0, 1, 1), (0, 1, 0)),
    tols={F32: (1e-6, 1e-7)}, factory=True)
add("eye", _factory_samples((3,), (2, 4), (4, 2), (0,)), dtypes=ALL, factory=True)
add("rand", _factory_samples(*_SIZES, check=_in_range(0, 1)), factory=True)
add("randn", _factory_samples(*_SIZES, check=_same_shape_dtype), factory=True)
add("randint", _factory_samples((0, 5, (3, 4)), (-3, 3, (40,)), (2, (0,)),
                                check=_in_range(-3, 5, integral=True)),
    dtypes=(I64, I32, F32), factory=True)


def _is_permutation(actual, expected, args):
    _same_shape_dtype(actual, expected, args)
    np.testing.assert_array_equal(np.sort(actual.numpy()), np.arange(actual.shape[0]))


add("randperm", _factory_samples((7,), (1,), (0,), check=_is_permutation), dtypes=(I64, I32),
    factory=True)
add("uniform_", lambda rng, d: [
    Sample(arr(rng, s, d), -1.0, 2.0, check=_in_range(-1, 2)) for s in UNARY_SHAPES],
    op=method("uniform_"), ref=method("uniform_"), inplace=True)
def _bernoulli_check(p):
    def check(actual, expected, args):
        _same_shape_dtype(actual, expected, args)
        v = actual.numpy().astype(np.float64)
        assert np.isin(v, (0.0, 1.0)).all(), v
        if p in (0.0, 1.0):
            np.testing.assert_array_equal(v, np.full(v.shape, p))
    return check


add("bernoulli_", lambda rng, d: [
    Sample(arr(rng, s, d), p, check=_bernoulli_check(p)) for s in UNARY_SHAPES
    for p in (0.0, 1.0, 0.3)],
    op=method("bernoulli_"), ref=method("bernoulli_"), inplace=True, dtypes=ALL)
add("normal_", lambda rng, d: [
    Sample(arr(rng, s, d), 1.0, 0.5, check=_same_shape_dtype) for s in UNARY_SHAPES],
    op=method("normal_"), ref=method("normal_"), inplace=True)
# p in {0, 1} makes bernoulli deterministic; p in (0, 1) is checked for its support.
add("bernoulli", lambda rng, d: [Sample(arr(rng, s, BOOL).astype(np_dtype(d))) for s in
                                 UNARY_SHAPES] +
    [Sample(arr(rng, (50,), d, 0.2, 0.8), check=_in_range(0, 1.5, integral=True))])
# contiguous of a contiguous tensor, to() the same dtype and dropout with p=0 or training=False
# return their input itself: gradcheck then asks autograd.grad(x, x, g), which is g.
add("clone", unary_samples(), dtypes=ALL)
add("contiguous", unary_samples(), dtypes=ALL)
add("to", lambda rng, d: [Sample(arr(rng, s, d), DType(t)) for s in UNARY_SHAPES[:3]
                          for t in (F64, I64, BOOL)], dtypes=ALL)
# Rounding to float32 is far coarser than gradcheck's float64 step (1e-6): no finite differences.
add("to", lambda rng, d: [Sample(arr(rng, s, d), DType(F32)) for s in UNARY_SHAPES[:3]],
    dtypes=ALL, gradcheck=False)
add("copy_", lambda rng, d: [Sample(arr(rng, (3, 4), d), arr(rng, s, d))
                             for s in [(3, 4), (4,), (3, 1), ()]], inplace=True, dtypes=ALL)
add("fill_", lambda rng, d: [Sample(arr(rng, s, d), 1) for s in UNARY_SHAPES],
    inplace=True,
    dtypes=ALL)
add("zero_", lambda rng, d: [Sample(arr(rng, s, d)) for s in UNARY_SHAPES],
    inplace=True,
    dtypes=ALL)
