"""OpInfo entries: composites, ops written in terms of other ops."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as TF

import deepcore.nn.functional as F
from .core import (
    ALL, BOOL, F32, F64, FLOATS, I32, I64, NUMERIC, OPS, REGISTRY, UNARY_SHAPES, DType, Sample,
    add, arr, away, idx, method, off_half, reduction_tols,
)
from .elementwise import UNARY, _away, _in_range, _same_shape_dtype, _special, _ties, unary_samples
from .tensor_ops import _RED_TOLS, reduce_samples, shape_samples
from .nn import _distinct

# ---- composites: ops written in terms of other ops, registered with their signature ----------
# Each is still one public callable with torch's semantics, so it gets the same checks.

def _add_if_registered(name, samples, **kw):
    """Composites appear in registries that list Python-level ops; older ones lack them."""
    if name in REGISTRY:
        add(name, samples, **kw)


# Every in-place variant the schema lists is a registry row of its own (sin_, dropout_, ...);
# each runs on its out-of-place op's domain.
_added = {info.name for info in OPS}
for _n, (_lo, _hi, _init, *_rest) in UNARY.items():
    if _n + "_" not in _added:
        # torch has no Tensor.silu_ / mish_: there the in-place form is F.<op>(inplace=True).
        _ref = (method(_n + "_") if hasattr(torch.Tensor, _n + "_") else
                (lambda x, _n=_n: getattr(TF, _n)(x, inplace=True)))
        # torch has no derivative for asinh_, acosh_ and atanh_ to compare with.
        _add_if_registered(_n + "_", unary_samples(_lo, _hi, _init),
                           inplace=True, op=method(_n + "_"), ref=_ref,
                           **({"grad": False} if _n in ("asinh", "acosh", "atanh") else {}))
_add_if_registered("leaky_relu_", unary_samples(init=_away), inplace=True,
                   op=lambda x: F.leaky_relu_(x), ref=lambda x: TF.leaky_relu_(x))
# p=0 keeps every element, so both libraries agree; the clone lets a leaf go in place.
_add_if_registered("dropout_", lambda rng, d: [Sample(away(rng, (3, 4), d), 0.0, True)],
                   op=lambda x, p, t: F.dropout(x.clone(), p, t, inplace=True),
                   ref=lambda x, p, t: TF.dropout(x.clone(), p, t, inplace=True))


for _n in ("addcmul", "addcdiv"):
    _add_if_registered(_n, lambda rng, d, _n=_n: [
        Sample(arr(rng, (3, 4), d), arr(rng, (3, 4), d), away(rng, (3, 4), d)),
        Sample(arr(rng, (3, 4), d), arr(rng, (4,), d), away(rng, (3, 1), d), value=0.5),
        Sample(arr(rng, (), d), arr(rng, (2, 3), d), away(rng, (), d))], gradgrad=False)
_add_if_registered("lerp", lambda rng, d: [
    Sample(arr(rng, (3, 4), d), arr(rng, (3, 4), d), 0.3),
    Sample(arr(rng, (3, 4), d), arr(rng, (4,), d), arr(rng, (3, 4), d, 0, 1))])
for _n in ("isclose", "allclose"):
    _add_if_registered(_n, lambda rng, d: [
        Sample(x := arr(rng, (3, 4), d), x + np.asarray(rng.choice([0, 1e-9, 1e-3], (3, 4)),
                                                       x.dtype)),
        Sample(x := _special(rng, (5,), d), x, equal_nan=True),
        Sample(arr(rng, (3, 4), d), arr(rng, (4,), d), rtol=0.5, atol=0.5)], dtypes=FLOATS,
        **({"skips": {"meta": "allclose returns a Python bool computed from the values"}}
           if _n == "allclose" else {}))
_add_if_registered("clamp_min", lambda rng, d: [Sample(off_half(rng, s, d), 0.25)
                                                for s in UNARY_SHAPES[:3]])
_add_if_registered("clamp_max", lambda rng, d: [Sample(off_half(rng, s, d), 0.25)
                                                for s in UNARY_SHAPES[:3]])
_add_if_registered("nan_to_num", lambda rng, d: [
    Sample(_special(rng, (3, 4), d)), Sample(_special(rng, (7,), d), 1.0, 5.0, -5.0)],
    grad=False, gradcheck=False)  # torch's gradient is defined at finite inputs only
# off_half keeps values 0.1 or more from the kinks at +-0.5 and at threshold 0.1.
for _n, _extra in (("hardshrink", ()), ("softshrink", ()), ("threshold", (0.1, 20.0))):
    _add_if_registered(_n, lambda rng, d, _extra=_extra: [
        Sample(off_half(rng, s, d), *_extra) for s in UNARY_SHAPES[:3]], dtypes=FLOATS)
_add_if_registered("glu", lambda rng, d: [
    Sample(arr(rng, (4, 6), d)), Sample(arr(rng, (2, 4, 3), d), 1), Sample(arr(rng, (6,), d))],
    dtypes=FLOATS)
_add_if_registered("prelu", lambda rng, d: [
    Sample(away(rng, (2, 3, 4), d), arr(rng, (3,), d)),
    Sample(away(rng, (5, 3), d), arr(rng, (1,), d))], dtypes=FLOATS)
_add_if_registered("bilinear", lambda rng, d: [
    Sample(arr(rng, (4, 3), d), arr(rng, (4, 5), d), arr(rng, (2, 3, 5), d), arr(rng, (2,), d)),
    Sample(arr(rng, (2, 3, 3), d), arr(rng, (2, 3, 5), d), arr(rng, (2, 3, 5), d))],
    dtypes=FLOATS, tols={F32: (1e-5, 1e-5)})
_add_if_registered("softmin", reduce_samples(((3, 4), 1), ((2, 3, 4), 0), ((0, 3), 1)),
                   tols=_RED_TOLS)
_add_if_registered("aminmax", reduce_samples(((3, 4),), ((3, 4), {"dim": 1}),
                                             ((2, 3, 4), {"dim": -1, "keepdim": True})),
                   dtypes=NUMERIC)
for _n in ("var_mean", "std_mean"):
    _add_if_registered(_n, reduce_samples(((3, 4),), ((3, 4), 1), ((2, 3, 4), (0, 2), True),
                                          ((3, 4), 1, {"correction": 0})), tols=_RED_TOLS)
_add_if_registered("trace", reduce_samples(((3, 4),), ((4, 4),)), dtypes=NUMERIC)
# The trace of an empty matrix still requires grad (with a zero gradient), as in torch.
_add_if_registered("trace", reduce_samples(((0, 2),)), dtypes=NUMERIC)
_add_if_registered("sort", reduce_samples(((3, 4),), ((3, 4), 0), ((2, 3, 4), -1, True),
                                          ((0, 3),), init=_distinct), dtypes=NUMERIC)
_add_if_registered("msort", reduce_samples(((3, 4),), ((5,),), init=_distinct), dtypes=NUMERIC)
_add_if_registered("topk", reduce_samples(((3, 5), 2), ((3, 5), 2, 0), ((17,), 3, 0, False),
                                          init=_distinct), dtypes=NUMERIC)
_add_if_registered("kthvalue", reduce_samples(((3, 5), 2), ((3, 5), 1, 0, True),
                                              init=_distinct), dtypes=NUMERIC)
_add_if_registered("argwhere", lambda rng, d: [Sample(_ties(rng, s, d, 0)) for s in
                                               UNARY_SHAPES], dtypes=ALL, meta=False)
_add_if_registered("broadcast_to", shape_samples(((3, 1), (3, 4)), ((4,), (2, 3, 4)),
                                                 ((), (2,))), dtypes=ALL)
_add_if_registered("broadcast_tensors", lambda rng, d: [
    Sample(arr(rng, (3, 1), d), arr(rng, (4,), d)),
    Sample(arr(rng, (), d), arr(rng, (2, 3), d), arr(rng, (1, 3), d))], dtypes=ALL)
_add_if_registered("meshgrid", lambda rng, d: [
    Sample(arr(rng, (3,), d), arr(rng, (4,), d), indexing="ij"),
    Sample(arr(rng, (3,), d), arr(rng, (2,), d), indexing="xy")], dtypes=NUMERIC)
_add_if_registered("diag", shape_samples(((4,),), ((4,), 1), ((3, 4),), ((3, 4), -1)),
                   dtypes=NUMERIC)
for _n in ("fliplr", "flipud"):
    _add_if_registered(_n, shape_samples(((3, 4),), ((2, 3, 4),)), dtypes=ALL)
_add_if_registered("roll", shape_samples(((3, 4), 1), ((3, 4), (1, -2), (0, 1)), ((5,), 7, 0)),
                   dtypes=ALL)
_add_if_registered("swapaxes", shape_samples(((2, 3, 4), 0, 2), ((3, 4), -1, 0)), dtypes=ALL)
for _n in ("zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"):
    _check = {"empty_like": _same_shape_dtype, "randn_like": _same_shape_dtype,
              "rand_like": _in_range(0, 1)}.get(_n)
    _add_if_registered(_n, lambda rng, d, _check=_check: [
        Sample(arr(rng, s, d), check=_check) for s in UNARY_SHAPES] + [
        Sample(arr(rng, (2, 3), d), dtype=DType(F64), check=_check)],
        dtypes=FLOATS if _n in ("rand_like", "randn_like") else ALL)
_add_if_registered("full_like", lambda rng, d: [Sample(arr(rng, s, d), 1) for s in UNARY_SHAPES],
                   dtypes=ALL)
_add_if_registered("randint_like", lambda rng, d: [
    Sample(arr(rng, s, d), 3, 9, check=_in_range(3, 9, integral=True)) for s in UNARY_SHAPES],
    dtypes=NUMERIC)
_add_if_registered("scalar_tensor", lambda rng, d: [Sample(1, dtype=DType(d)),
                                                    Sample(-2, dtype=DType(d))],
                   dtypes=NUMERIC, factory=True)
_add_if_registered("result_type", lambda rng, d: [
    Sample(arr(rng, (3,), d), arr(rng, (), F64)), Sample(arr(rng, (3,), d), 2.5),
    Sample(arr(rng, (3,), d), arr(rng, (2,), I64))],
    dtypes=ALL, layouts=(), meta=False,
    skips={"meta": "returns a dtype, not a tensor", "layouts": "returns a dtype"},
    ref=lambda a, b: {torch.bool: BOOL, torch.int32: I32, torch.int64: I64,
                                 torch.float32: F32, torch.float64: F64}[torch.result_type(a, b)])
_add_if_registered("dropout2d", lambda rng, d: [
    Sample(away(rng, (2, 3, 4, 4), d), 0.0), Sample(away(rng, (2, 3, 4, 4), d), 0.5, False),
    Sample(away(rng, (2, 3, 4, 4), d), 1.0)])
_add_if_registered("dropout1d", lambda rng, d: [
    Sample(away(rng, (2, 3, 5), d), 0.0), Sample(away(rng, (2, 3, 5), d), 0.5, False),
    Sample(away(rng, (3, 5), d), 1.0)])
_add_if_registered("dropout3d", lambda rng, d: [
    Sample(away(rng, (2, 3, 2, 2, 2), d), 0.0), Sample(away(rng, (2, 3, 2, 2, 2), d), 0.5, False),
    Sample(away(rng, (2, 3, 2, 2, 2), d), 1.0)])
for _n in ("interpolate", "upsample"):
    _add_if_registered(_n, lambda rng, d, _n=_n: [
        Sample(arr(rng, (1, 2, 4, 5), d), scale_factor=2),
        Sample(arr(rng, (1, 2, 4, 5), d), size=(6, 7)),
        Sample(arr(rng, (1, 2, 4, 5), d), size=(7, 9), mode="bilinear", align_corners=False),
        Sample(arr(rng, (1, 2, 4, 5), d), size=(7, 9), mode="bilinear", align_corners=True),
        Sample(arr(rng, (2, 3, 6), d), scale_factor=2, mode="linear", align_corners=False)],
        tols={F32: (1e-5, 1e-5)})


# ---- sequence-model ops: scans, multinomial, einsum, accumulating matmuls, repeats ----------
from .tensor_ops import _MM_TOLS, pair_samples  # noqa: E402

_SCAN = (((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1), ((), 0), ((0, 3), 1), ((40,), 0))
# Products of 40 factors in [0.7, 1.3] stay O(1); reduction_tols(40) covers their rounding.
add("cumprod", reduce_samples(*_SCAN, init=lambda r, s, d: away(r, s, d, 0.7, 1.3)),
    dtypes=NUMERIC, tols=reduction_tols(40), grad_tols=reduction_tols(40), gradgrad=True)
# Zeros (about a third of the entries, several per row): the gradient's special case. cumprod is
# linear in each entry, so finite differences stay exact at zeros.
add("cumprod", reduce_samples(((4, 6), 1), ((6, 3), 0), ((2, 3, 5), -1),
                              init=lambda r, s, d: arr(r, s, d, -1, 1).round() * 1.5),
    dtypes=FLOATS, gradgrad=True, expand=False)
add("cumprod", reduce_samples(((3, 4), 1, {"dtype": DType(F64)})))
for _n in ("cummax", "cummin"):
    add(_n, reduce_samples(((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1), ((), 0), ((0, 3), 1),
                           ((40,), 0), init=_distinct), dtypes=NUMERIC)
    # Ties: torch and deepcore both report the last index of equal values.
    add(_n, reduce_samples(((4, 6), 1), ((9,), 0), init=lambda r, s, d: _ties(r, s, d, 0)),
        dtypes=NUMERIC, gradcheck=False)  # finite differences are undefined at ties
add("logcumsumexp", reduce_samples(((3, 4), 1), ((2, 3, 4), 0), ((2, 3, 4), -1), ((), 0),
                                   ((0, 3), 1), ((257,), 0), low=-30, high=30),
    tols=_RED_TOLS, grad_tols=_RED_TOLS, gradgrad=True)


def _multinomial_check(replacement):
    """Random result: shape, dtype, support (no zero-weight category) and, without replacement,
    distinct samples per row."""
    def check(actual, expected, args):
        assert tuple(actual.shape) == tuple(expected.shape), (actual.shape, expected.shape)
        assert str(actual.dtype).split(".")[-1] == "int64"
        if actual.is_meta:
            return
        w = np.asarray(args[0]).reshape(-1, np.asarray(args[0]).shape[-1])
        v = actual.numpy().reshape(w.shape[0], -1)
        for row, ws in zip(v, w):
            assert (ws[row] > 0).all(), (row, ws)
            if not replacement:
                assert len(set(row.tolist())) == len(row), row
    return check


def _weights(rng, shape, d, zero_frac=0.3):
    w = arr(rng, shape, d, 0.1, 1.0)
    w[rng.random(shape) < zero_frac] = 0
    w[..., 0] = 0.5  # every row keeps some weight
    return w


add("multinomial", lambda rng, d: [
    Sample(arr(rng, (6,), d, 0.1, 1.0), 4, check=_multinomial_check(False)),
    Sample(arr(rng, (6,), d, 0.1, 1.0), 20, True, check=_multinomial_check(True)),
    Sample(_weights(rng, (3, 8), d, 0.2), 2, check=_multinomial_check(False)),
    Sample(_weights(rng, (3, 8), d), 9, replacement=True, check=_multinomial_check(True)),
    Sample(arr(rng, (4, 5), d, 0.1, 1.0), 5, check=_multinomial_check(False))],
    layouts=(0,))
add("einsum", lambda rng, d: [
    Sample("ij,jk->ik", arr(rng, (3, 4), d), arr(rng, (4, 5), d)),
    Sample("ij,jk", arr(rng, (3, 4), d), arr(rng, (4, 5), d), desc="implicit"),
    Sample("bij,bjk->bik", arr(rng, (2, 3, 4), d), arr(rng, (2, 4, 5), d)),
    Sample("bhqd,bhkd->bhqk", arr(rng, (2, 3, 4, 5), d), arr(rng, (2, 3, 6, 5), d)),
    Sample("...ij,...jk->...ik", arr(rng, (2, 3, 4), d), arr(rng, (4, 2), d)),
    Sample("ii->i", arr(rng, (4, 4), d)), Sample("ii", arr(rng, (4, 4), d), desc="trace"),
    Sample("i,j->ij", arr(rng, (3,), d), arr(rng, (4,), d)),
    Sample("ij->", arr(rng, (3, 4), d)), Sample("ij->ji", arr(rng, (3, 4), d)),
    Sample("bn,anm,bm->ba", arr(rng, (2, 3), d), arr(rng, (5, 3, 4), d), arr(rng, (2, 4), d)),
    Sample("iij,jk->ik", arr(rng, (3, 3, 4), d), arr(rng, (4, 2), d)),
    Sample("ij,ij->i", arr(rng, (3, 1), d), arr(rng, (3, 4), d), desc="broadcast"),
    Sample("i...->...", arr(rng, (3, 2, 4), d)),
    Sample("ij,jk->ik", [arr(rng, (2, 3), d), arr(rng, (3, 2), d)], desc="list")],
    dtypes=NUMERIC, tols=_MM_TOLS, grad_tols=_MM_TOLS, gradgrad=True)
add("baddbmm", pair_samples(((2, 3, 5), (2, 3, 4), (2, 4, 5)), ((5,), (2, 3, 4), (2, 4, 5)),
                            ((3, 9, 1), (3, 9, 70), (3, 70, 5))),
    dtypes=NUMERIC, tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("baddbmm", pair_samples(((2, 3, 5), (2, 3, 4), (2, 4, 5)), beta=0.5, alpha=2.0),
    tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("baddbmm", pair_samples(((2, 3, 5), (2, 3, 4), (2, 4, 5)), beta=0, alpha=-1.0),
    tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("addbmm", pair_samples(((3, 5), (2, 3, 4), (2, 4, 5)), ((5,), (4, 3, 17), (4, 17, 5))),
    dtypes=NUMERIC, tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("addbmm", pair_samples(((3, 5), (2, 3, 4), (2, 4, 5)), beta=0.5, alpha=2.0),
    tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("addmv", pair_samples(((3,), (3, 4), (4,)), ((1,), (17, 70), (70,))),
    dtypes=NUMERIC, tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("addmv", pair_samples(((3,), (3, 4), (4,)), beta=0.5, alpha=2.0), tols=_MM_TOLS,
    grad_tols=_MM_TOLS)
add("addr", pair_samples(((3, 4), (3,), (4,)), ((4,), (3,), (4,))), dtypes=NUMERIC)
add("addr", pair_samples(((3, 4), (3,), (4,)), beta=0.5, alpha=2.0))
add("repeat_interleave", reduce_samples(((3, 4), 2), ((3, 4), 2, 1), ((2, 3, 4), 3, -2),
                                        ((3,), 0), ((), 3), ((3, 4), 2, 0, {"output_size": 6})),
    dtypes=ALL)
add("repeat_interleave", lambda rng, d: [
    Sample(arr(rng, (3, 4), d), np.array([1, 0, 2]), 0),
    Sample(arr(rng, (3, 4), d), np.array([2, 1, 3, 0]), 1, output_size=6),
    Sample(arr(rng, (2, 3), d), np.array([2]), desc="one count, flattened")],
    dtypes=ALL, layouts=(0,), meta=False, skips={"meta": "tensor repeats size the result"})
add("repeat_interleave", lambda rng, d: [Sample(np.array([2, 0, 3, 1])), Sample(np.array([1]))],
    dtypes=(I64,), meta=False, grad=False, skips={"meta": "the counts size the result"})
add("diagonal", shape_samples(((4, 4),), ((3, 5), 1), ((3, 5), -2), ((2, 3, 4), 0, 1, 2),
                              ((2, 3, 4), 1, -1, 0), ((3, 5), 7)), dtypes=ALL)
add("diag_embed", shape_samples(((3,),), ((2, 3),), ((2, 3), 1), ((2, 3), -1, 0, 2),
                                ((2, 3), 0, -1, 0)), dtypes=ALL)
for _n in ("tril_indices", "triu_indices"):
    add(_n, lambda rng, d: [Sample(3, 3), Sample(4, 5, 1), Sample(5, 4, -2), Sample(0, 3),
                            Sample(3, 3, dtype=DType(I32))],
        dtypes=(I64,), factory=True)
# Bags from a 2-D input (one per row) or 1-D indices with offsets, with an empty bag.
add("embedding_bag", lambda rng, d: [
    Sample(idx(rng, (3, 4), 6), arr(rng, (6, 5), d)),
    Sample(idx(rng, (3, 4), 6), arr(rng, (6, 5), d), mode="max"),
    Sample(idx(rng, (3, 4), 6), arr(rng, (6, 5), d), mode="sum", padding_idx=2),
    Sample(idx(rng, (7,), 6), arr(rng, (6, 3), d), np.array([0, 2, 2, 5]), mode="sum"),
    Sample(idx(rng, (7,), 6), arr(rng, (6, 3), d), np.array([0, 2, 2, 5])),
    Sample(idx(rng, (7,), 6), arr(rng, (6, 3), d), np.array([0, 3, 3, 6]), mode="max"),
    Sample(idx(rng, (7,), 6), arr(rng, (6, 3), d), np.array([0, 3, 7]),
           include_last_offset=True, padding_idx=0),
    Sample(idx(rng, (7,), 6), arr(rng, (6, 3), d), np.array([0, 1, 4]), mode="sum",
           per_sample_weights=arr(rng, (7,), d))],
    # expand=False: constant offsets leave indices outside every bag, which torch's backward
    # still gives a gradient (its forward leaves them out).
    meta=False, expand=False, skips={"meta": "the offsets and padding entries lay out the bags"})
