"""OpInfo entries: shape, reductions, linalg and indexing."""
from __future__ import annotations

import numpy as np
import torch.nn.functional as TF

import deepcore.nn.functional as F
from helpers import np_dtype
from .core import (
    ALL, BOOL, F64, FLOATS, I64, NUMERIC, UNARY_SHAPES, DType, Sample, add, arr, away, both, idx,
    method, reduction_tols,
)
from .elementwise import _ties

# ---- shape --------------------------------------------------------------------------------

def shape_samples(*calls, dtype_override=None):
    """calls: (input shape, *extra args) tuples; the input is drawn in the sample's dtype."""
    def gen(rng, dtype):
        return [Sample(arr(rng, c[0], dtype), *c[1:]) for c in calls]
    return gen


add("view", shape_samples(((3, 4), (4, 3)), ((3, 4), (-1,)), ((2, 3, 4), (6, -1)), ((), (1,)),
                          ((0, 3), (3, 0))),
    op=method("view"), ref=method("view"), dtypes=ALL,
    layouts=(), skips={"layouts": "view of a non-contiguous tensor is an error, as in torch"})
add("reshape", shape_samples(((3, 4), (4, 3)), ((3, 4), (-1,)), ((2, 3, 4), (6, -1)),
                             ((), (1,)), ((0, 3), (3, 0, 1))), dtypes=ALL)
add("permute", shape_samples(((2, 3, 4), (2, 0, 1)), ((3, 4), (1, 0)), ((), ()),
                             ((2, 0, 3), (1, 2, 0))), dtypes=ALL)
add("transpose", shape_samples(((2, 3, 4), 0, 2), ((3, 4), -1, -2), ((5,), 0, 0)), dtypes=ALL)
add("t", shape_samples(((3, 4),), ((5,),), ((),)), dtypes=ALL)
add("expand", shape_samples(((3, 1), (3, 4)), ((4,), (2, 3, 4)), ((), (2, 2)),
                            ((1, 4), (-1, 4))), op=method("expand"), ref=method("expand"),
    dtypes=ALL)
add("squeeze", shape_samples(((3, 1, 4, 1),), ((3, 1, 4), 1), ((1,),), ((3, 4), 0), ((),)),
    dtypes=ALL)
add("unsqueeze", shape_samples(((3, 4), 0), ((3, 4), -1), ((), 0), ((0, 2), 1)), dtypes=ALL)
add("flatten", shape_samples(((2, 3, 4),), ((2, 3, 4), 1), ((2, 3, 4, 5), 1, 2), ((),)),
    dtypes=ALL)
add("unflatten", shape_samples(((2, 12), 1, (3, 4)), ((6,), 0, (2, -1))), dtypes=ALL)
add("select", shape_samples(((3, 4), 0, 1), ((2, 3, 4), -1, -1), ((5,), 0, 2)), dtypes=ALL)
add("narrow", shape_samples(((3, 6), 1, 1, 3), ((5,), 0, 0, 0), ((4, 5), 0, 2, 2)), dtypes=ALL)
add("split", shape_samples(((7, 4), 3), ((7, 4), [2, 5]), ((3, 8), 4, 1), ((0, 2), 1)),
    dtypes=ALL)
add("chunk", shape_samples(((7, 4), 3), ((3, 8), 4, 1), ((5,), 5)), dtypes=ALL)
add("unbind", shape_samples(((3, 4),), ((2, 3, 4), 1), ((3,),)), dtypes=ALL)


def _cat_samples(rng, d):
    return [Sample([arr(rng, (2, 3), d), arr(rng, (4, 3), d)]),
            Sample([arr(rng, (2, 3), d), arr(rng, (2, 1), d), arr(rng, (2, 5), d)], 1),
            Sample([arr(rng, (0, 3), d), arr(rng, (2, 3), d)]),
            Sample([arr(rng, (3,), d)], -1)]


def _stack_samples(rng, d):
    return [Sample([arr(rng, (2, 3), d), arr(rng, (2, 3), d)]),
            Sample([arr(rng, (2, 3), d), arr(rng, (2, 3), d), arr(rng, (2, 3), d)], 2),
            Sample([arr(rng, (), d), arr(rng, (), d)]),
            Sample([arr(rng, (0, 3), d)], 1)]


add("cat", _cat_samples, dtypes=ALL)
add("stack", _stack_samples, dtypes=ALL)
add("flip", shape_samples(((3, 4), (0,)), ((2, 3, 4), (0, 2)), ((5,), (-1,)), ((), ())),
    dtypes=ALL)
add("repeat", shape_samples(((2, 3), (2, 1)), ((3,), (2, 2)), ((), (3,)), ((2, 0), (1, 2))),
    op=method("repeat"), ref=method("repeat"), dtypes=ALL)
add("tril", shape_samples(((4, 5),), ((4, 5), 1), ((2, 3, 3), -1), ((0, 3),)), dtypes=NUMERIC)
add("triu", shape_samples(((4, 5),), ((4, 5), 1), ((2, 3, 3), -1), ((0, 3),)), dtypes=NUMERIC)
add("as_strided", shape_samples(((3, 4), (2, 2), (1, 2)), ((12,), (3, 3), (3, 1), 1),
                                ((3, 4), (4, 3), (1, 4))),
    layouts=(), skips={"layouts": "as_strided addresses the storage, not the logical layout",
                       # Registered not differentiable: refuses inputs that require grad.
                       "grad": "deepcore's as_strided raises on inputs that require grad"})


# ---- reductions ---------------------------------------------------------------------------

def reduce_samples(*calls, low=-2.0, high=2.0, init=None):
    def gen(rng, dtype):
        out = []
        for c in calls:
            shape, rest = c[0], c[1:]
            kw = rest[-1] if rest and isinstance(rest[-1], dict) else {}
            rest = rest[:-1] if kw else rest
            x = init(rng, shape, dtype) if init else arr(rng, shape, dtype, low, high)
            out.append(Sample(np.asarray(x).astype(np_dtype(dtype)), *rest, **kw))
        return out
    return gen


_RED = [((3, 4),), ((3, 4), 1), ((2, 3, 4), (0, 2)), ((2, 3, 4), -1, True), ((),), ((0, 3),),
        ((0, 3), 1), ((257,),)]
_RED_NONEMPTY = [c for c in _RED if 0 not in c[0]]
_RED_TOLS = reduction_tols(257)
add("sum", reduce_samples(*_RED), dtypes=NUMERIC, tols=_RED_TOLS, gradgrad=True)
add("sum", reduce_samples(((3, 4), 1, {"dtype": DType(F64)})), tols=_RED_TOLS)
add("mean", reduce_samples(*_RED_NONEMPTY, ((0, 3), 1)), tols=_RED_TOLS, gradgrad=True)
add("prod", reduce_samples(((3, 4),), ((3, 4), 1), ((2, 3, 4), -1, True), ((),), ((0, 3), 1),
                           ((30,),), init=lambda r, s, d: away(r, s, d, 0.7, 1.3)),
    dtypes=NUMERIC, tols=reduction_tols(30))
add("prod", reduce_samples(((3, 4), 1), init=lambda r, s, d: arr(r, s, d, -1, 1).round()),
    dtypes=FLOATS, gradcheck=False)  # zeros: the product rule's special case
for _n in ("amax", "amin"):
    add(_n, reduce_samples(((3, 4),), ((3, 4), 1), ((2, 3, 4), (0, 2)), ((2, 3, 4), -1, True),
                           ((),), ((0, 3), 1), ((257,),)), dtypes=NUMERIC)
for _n in ("max", "min"):
    add(_n, reduce_samples(((3, 4),), ((3, 4), 1), ((2, 3, 4), -1, True), ((),), ((0, 3), 1),
                           ((257,),), ((3, 4), {"dim": 0})), dtypes=NUMERIC)
for _n in ("argmax", "argmin"):
    add(_n, reduce_samples(((3, 4),), ((3, 4), 1), ((2, 3, 4), -1, True), ((),), ((257,),)),
        dtypes=NUMERIC)
    add(_n, reduce_samples(((3, 4), 1), ((9,),), init=lambda r, s, d: _ties(r, s, d, 0)),
        dtypes=NUMERIC)  # ties: the first index wins, as in torch
for _n in ("var", "std"):
    add(_n, reduce_samples(((3, 4),), ((3, 4), 1), ((2, 3, 4), (0, 2), {"keepdim": True}),
                           ((3, 4), 1, {"correction": 0}), ((3, 4), 0, {"unbiased": False}),
                           ((257,),)), tols=_RED_TOLS, grad_tols=reduction_tols(257),
        gradgrad=_n == "var", expand=_n != "std")  # std's gradient is singular on constants
add("logsumexp", reduce_samples(((3, 4), 1), ((2, 3, 4), (0, 2)), ((2, 3, 4), -1, True),
                                ((0, 3), 1), ((257,), 0), low=-30, high=30), tols=_RED_TOLS,
    gradgrad=True)
add("norm", reduce_samples(((3, 4),), ((3, 4), 2, 1), ((3, 4), 1, 0), ((2, 3, 4), "fro", (0, 2)),
                           ((3, 4), float("inf"), 1), ((3, 4), 3, 1, True), ((257,),),
                           init=lambda r, s, d: away(r, s, d)), tols=_RED_TOLS,
    grad_tols=reduction_tols(257))
for _n in ("all", "any"):
    add(_n, reduce_samples(((3, 4),), ((3, 4), 1), ((2, 3, 4), -1, True), ((),), ((0, 3),),
                           ((0, 3), 1), init=lambda r, s, d: _ties(r, s, d, 0) % 2 + (r.random(
                               s) < 0.9)), dtypes=ALL)
add("count_nonzero", reduce_samples(((3, 4),), ((3, 4), 1), ((2, 3, 4), (0, 2)), ((),),
                                    ((0, 3),), init=lambda r, s, d: _ties(r, s, d, 0)),
    dtypes=ALL)
add("cumsum", reduce_samples(((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1), ((), 0), ((0, 3), 1),
                             ((257,), 0)), dtypes=NUMERIC, tols=_RED_TOLS, gradgrad=True)


# ---- linalg -------------------------------------------------------------------------------

def pair_samples(*pairs, low=-1.0, high=1.0, **kwargs):
    def gen(rng, dtype):
        return [Sample(*(arr(rng, s, dtype, low, high) for s in p), **kwargs) for p in pairs]
    return gen


_MM_TOLS = reduction_tols(70)
add("matmul", pair_samples(((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)),
                           ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((0, 4), (4, 3)),
                           ((3, 0), (0, 2)), ((33, 70), (70, 17))),
    dtypes=NUMERIC, tols=_MM_TOLS, grad_tols=_MM_TOLS, gradgrad=True)
add("mm", pair_samples(((3, 4), (4, 5)), ((0, 4), (4, 3)), ((33, 70), (70, 17))),
    dtypes=NUMERIC, tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("bmm", pair_samples(((2, 3, 4), (2, 4, 5)), ((0, 3, 4), (0, 4, 2)), ((3, 9, 70), (3, 70, 5))),
    dtypes=NUMERIC, tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("mv", pair_samples(((3, 4), (4,)), ((0, 4), (4,)), ((17, 70), (70,))), dtypes=NUMERIC,
    tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("dot", pair_samples(((4,), (4,)), ((0,), (0,)), ((70,), (70,))), dtypes=NUMERIC,
    tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("outer", pair_samples(((4,), (3,)), ((0,), (3,)), ((37,), (5,))), dtypes=NUMERIC)
add("addmm", pair_samples(((3, 5), (3, 4), (4, 5)), ((5,), (3, 4), (4, 5)),
                          ((17, 9), (17, 70), (70, 9))), tols=_MM_TOLS, grad_tols=_MM_TOLS)
add("addmm", pair_samples(((3, 5), (3, 4), (4, 5)), beta=0.5, alpha=2.0), tols=_MM_TOLS,
    grad_tols=_MM_TOLS)
add("linear", pair_samples(((3, 4), (5, 4)), ((2, 3, 4), (5, 4), (5,)), ((4,), (5, 4), (5,)),
                           ((0, 4), (5, 4)), ((9, 70), (17, 70), (17,))),
    tols=_MM_TOLS, grad_tols=_MM_TOLS, gradgrad=True)


# ---- indexing -----------------------------------------------------------------------------

def _perm_index(rng, shape, dim):
    """Indices along `dim` that are a permutation within every slice: no duplicate targets."""
    out = np.empty(shape, dtype=np.int64)
    moved = np.moveaxis(out, dim, -1)
    for pos in np.ndindex(moved.shape[:-1]):
        moved[pos] = rng.permutation(moved.shape[-1])
    return out


add("index_select", lambda rng, d: [
    Sample(arr(rng, (4, 5), d), 0, idx(rng, (6,), 4)),
    Sample(arr(rng, (4, 5), d), 1, idx(rng, (3,), 5)),
    Sample(arr(rng, (2, 3, 4), d), -1, idx(rng, (0,), 4)),
    Sample(arr(rng, (), d), 0, np.zeros((1,), np.int64))], dtypes=NUMERIC)
for _n, _alpha in (("index_add", {}), ("index_add", {"alpha": 2.0})):
    add(_n, lambda rng, d, _alpha=_alpha: [
        Sample(arr(rng, (4, 5), d), 0, idx(rng, (6,), 4), arr(rng, (6, 5), d), **_alpha),
        Sample(arr(rng, (4, 5), d), 1, idx(rng, (3,), 5), arr(rng, (4, 3), d), **_alpha)])
add("index_add_", lambda rng, d: [
    Sample(arr(rng, (4, 5), d), 0, idx(rng, (6,), 4), arr(rng, (6, 5), d)),
    Sample(arr(rng, (4, 5), d), 1, idx(rng, (3,), 5), arr(rng, (4, 3), d), alpha=-1.0)],
    inplace=True, op=method("index_add_"), ref=method("index_add_"))
add("gather", lambda rng, d: [
    Sample(arr(rng, (4, 5), d), 0, idx(rng, (3, 5), 4)),
    Sample(arr(rng, (4, 5), d), 1, idx(rng, (4, 7), 5)),
    Sample(arr(rng, (2, 3, 4), d), -1, idx(rng, (2, 3, 0), 4))], dtypes=NUMERIC)
add("take_along_dim", lambda rng, d: [
    Sample(arr(rng, (4, 5), d), idx(rng, (4, 3), 5), 1),
    Sample(arr(rng, (4, 5), d), idx(rng, (2, 5), 4), 0)], dtypes=NUMERIC)
add("take_along_dim", lambda rng, d: [Sample(arr(rng, (4, 5), d), idx(rng, (7,), 20))],
    dtypes=NUMERIC, layouts=(),  # dim=None: torch's backward views a non-contiguous input
    skips={"layouts": "torch's backward of take_along_dim(dim=None) fails on strided inputs"})
# scatter writes one source value per target: permutation indices keep that deterministic.
for _n, _ip in (("scatter", False), ("scatter_", True)):
    add(_n, lambda rng, d: [
        Sample(arr(rng, (4, 5), d), 0, _perm_index(rng, (4, 5), 0), arr(rng, (4, 5), d)),
        # A source larger than the index: torch's backward cannot do it (shape error).
        Sample(arr(rng, (4, 5), d), 1, _perm_index(rng, (4, 5), 1)[:, :3], arr(rng, (4, 6), d),
               grad=False),
        Sample(arr(rng, (4, 5), d), 1, _perm_index(rng, (4, 5), 1)[:, :3], arr(rng, (4, 3), d)),
        Sample(arr(rng, (4, 5), d), 1, _perm_index(rng, (4, 5), 1), 1.5, desc="value")],
        inplace=_ip, op=method(_n) if _ip else None, ref=method(_n) if _ip else None,
        layouts=(0, 3))
for _n, _ip in (("scatter_add", False), ("scatter_add_", True)):
    add(_n, lambda rng, d: [
        Sample(arr(rng, (4, 5), d), 0, idx(rng, (6, 5), 4), arr(rng, (6, 5), d)),
        Sample(arr(rng, (4, 5), d), 1, idx(rng, (4, 3), 5), arr(rng, (4, 6), d), grad=False),
        Sample(arr(rng, (4, 5), d), 1, idx(rng, (4, 3), 5), arr(rng, (4, 3), d))],
        inplace=_ip, op=method(_n) if _ip else None, ref=method(_n) if _ip else None)
for _n, _ip in (("masked_fill", False), ("masked_fill_", True)):
    add(_n, (lambda rng, d: [
        Sample(arr(rng, (3, 4), d), arr(rng, (3, 4), BOOL), 1.5),
        Sample(arr(rng, (3, 4), d), arr(rng, (4,), BOOL), -2),
        Sample(arr(rng, (3, 4), d), arr(rng, (3, 1), BOOL), arr(rng, (), d), desc="0-d value"),
        Sample(arr(rng, (0, 4), d), arr(rng, (0, 4), BOOL), 0.5)]),
        inplace=_ip, op=method(_n) if _ip else None, ref=method(_n) if _ip else None)
add("masked_select", lambda rng, d: [
    Sample(arr(rng, (3, 4), d), arr(rng, (3, 4), BOOL)),
    Sample(arr(rng, (3, 4), d), arr(rng, (4,), BOOL)),
    Sample(arr(rng, (4,), d), arr(rng, (3, 4), BOOL)),
    Sample(arr(rng, (0, 4), d), arr(rng, (0, 4), BOOL))], dtypes=NUMERIC, meta=False)
# Embedding rows are gathered by index; repeated indices accumulate into the weight gradient.
add("embedding", lambda rng, d: [
    Sample(idx(rng, (3, 4), 6), arr(rng, (6, 5), d)),
    Sample(idx(rng, (7,), 6), arr(rng, (6, 3), d)),
    Sample(idx(rng, (2, 5), 6), arr(rng, (6, 3), d), padding_idx=2),
    Sample(idx(rng, (0,), 6), arr(rng, (6, 3), d))],
    op=F.embedding, ref=TF.embedding)
# index: advanced indexing, reached through __getitem__ with index tensors.
add("index", lambda rng, d: [
    Sample(arr(rng, (4, 5), d), (idx(rng, (3,), 4),)),
    Sample(arr(rng, (4, 5), d), (idx(rng, (2, 3), 4), idx(rng, (3,), 5))),
    Sample(arr(rng, (4, 5, 2), d), (idx(rng, (6,), 4), idx(rng, (6,), 5))),
    Sample(arr(rng, (4, 5), d), (arr(rng, (4,), BOOL),), desc="bool mask")],
    **both(lambda lib, x, i: x[i]), dtypes=NUMERIC, meta=False,
    skips={"meta": "a bool mask index has a data-dependent size"})
for _n in ("index_put", "index_put_"):
    add(_n, lambda rng, d: [
        Sample(arr(rng, (4, 5), d), (_perm_index(rng, (4,), 0)[:3],), arr(rng, (3, 5), d)),
        Sample(arr(rng, (4, 5), d), (idx(rng, (6,), 4), idx(rng, (6,), 5)), arr(rng, (6,), d),
               True, desc="accumulate"),
        Sample(arr(rng, (4, 5), d), (np.array([0, 2]), np.array([1, 3])), arr(rng, (), d))],
        inplace=_n.endswith("_"), layouts=(0,), op=method(_n), ref=method(_n))
add("nonzero", lambda rng, d: [Sample(_ties(rng, s, d, 0)) for s in UNARY_SHAPES], dtypes=ALL,
    meta=False)
add("one_hot", lambda rng, d: [Sample(idx(rng, (3, 4), 5), 5), Sample(idx(rng, (7,), 3)),
                               Sample(idx(rng, (0,), 3), 3)], dtypes=(I64,),
    op=F.one_hot, ref=TF.one_hot, skips={"meta": "num_classes=-1 reads the data"})
