"""OpInfo entries: softmax, losses, normalisation, convolution, padding, pooling, sort,
dropout and the optimizer steps."""
from __future__ import annotations

import numpy as np
import torch.nn.functional as TF

import deepcore.nn.functional as F
from helpers import np_dtype
from .core import F32, F64, NUMERIC, DType, Sample, add, arr, away, both, idx, reduction_tols
from .elementwise import _same_shape_dtype, _ties
from .tensor_ops import _RED_TOLS, reduce_samples

# ---- softmax, losses, normalisation ---------------------------------------------------------

for _n in ("softmax", "log_softmax"):
    add(_n, reduce_samples(((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1), ((), 0), ((0, 3), 1),
                           ((2, 257), 1), ((3, 4), 1, {"dtype": DType(F64)}), low=-10, high=10),
        tols=_RED_TOLS, gradgrad=True, op=getattr(F, _n), ref=getattr(TF, _n))


def _probs(rng, shape, d):
    p = rng.uniform(0.1, 1.0, size=shape)
    return (p / p.sum(-1, keepdims=True)).astype(np_dtype(d))


def _ce_samples(rng, d):
    return [Sample(arr(rng, (5, 4), d), idx(rng, (5,), 4)),
            Sample(arr(rng, (5, 4), d), idx(rng, (5,), 4), reduction="sum"),
            Sample(arr(rng, (5, 4), d), idx(rng, (5,), 4), reduction="none"),
            Sample(arr(rng, (5, 4), d), idx(rng, (5,), 4), weight=arr(rng, (4,), d, 0.5, 2)),
            Sample(arr(rng, (5, 4), d), np.array([0, 1, -100, 3, 1]), desc="ignore_index"),
            Sample(arr(rng, (2, 4, 3), d), idx(rng, (2, 3), 4), desc="spatial"),
            Sample(arr(rng, (5, 4), d), _probs(rng, (5, 4), d), desc="probabilities"),
            Sample(arr(rng, (5, 4), d), idx(rng, (5,), 4), label_smoothing=0.1)]


add("cross_entropy", _ce_samples, gradgrad=True, layouts=(0,), grad_args=(0, 1))
# An unbatched (1-d) input, strided in the layouts check: the kernels read dense rows.
add("cross_entropy", lambda rng, d: [Sample(arr(rng, (4,), d), np.array(2), desc="unbatched")],
    layouts=(0,))
add("nll_loss", lambda rng, d: [
    Sample(arr(rng, (5, 4), d, -3, 0), idx(rng, (5,), 4)),
    Sample(arr(rng, (5, 4), d, -3, 0), idx(rng, (5,), 4), reduction="none"),
    Sample(arr(rng, (5, 4), d, -3, 0), idx(rng, (5,), 4), weight=arr(rng, (4,), d, 0.5, 2)),
    Sample(arr(rng, (5, 4), d), np.array([0, 1, -100, 3, 1]), reduction="sum"),
    Sample(arr(rng, (2, 4, 3), d), idx(rng, (2, 3), 4))], layouts=(0,), grad_args=(0,))


def pointwise_loss(name, t_lo=-2.0, t_hi=2.0, x_lo=-2.0, x_hi=2.0, extra=(), gradgrad=False):
    def gen(rng, d):
        out = []
        for s in [(3, 4), (), (0, 3), (37,)]:
            for red in ("mean", "sum", "none"):
                out.append(Sample(arr(rng, s, d, x_lo, x_hi), arr(rng, s, d, t_lo, t_hi),
                                  reduction=red))
        out += [Sample(arr(rng, (3, 4), d, x_lo, x_hi), arr(rng, (3, 4), d, t_lo, t_hi), **k)
                for k in extra]
        return out
    add(name, gen, gradgrad=gradgrad, tols=reduction_tols(40), grad_tols=reduction_tols(40))


pointwise_loss("mse_loss", gradgrad=True)
pointwise_loss("l1_loss")
pointwise_loss("smooth_l1_loss", extra=[{"beta": 0.5}, {"beta": 0.0}])
pointwise_loss("huber_loss", extra=[{"delta": 0.5}, {"delta": 2.0}])
pointwise_loss("binary_cross_entropy", 0.0, 1.0, 0.05, 0.95)
pointwise_loss("binary_cross_entropy_with_logits", 0.0, 1.0, -4, 4)
pointwise_loss("kl_div", 0.05, 1.0, -3, 0, extra=[{"reduction": "batchmean"},
                                                  {"log_target": True}])
# A weight (or pos_weight) that requires grad is refused by both (test_nn_functional.py).
add("binary_cross_entropy", lambda rng, d: [
    Sample(arr(rng, (3, 4), d, 0.05, 0.95), arr(rng, (3, 4), d, 0, 1),
           weight=arr(rng, (4,), d, 0.5, 2))], grad_args=(0, 1))
add("binary_cross_entropy_with_logits", lambda rng, d: [
    Sample(arr(rng, (3, 4), d, -4, 4), arr(rng, (3, 4), d, 0, 1), weight=arr(rng, (4,), d, 0.5, 2),
           pos_weight=arr(rng, (4,), d, 0.5, 2))], grad_args=(0, 1))

_NORM_TOLS = {F32: (1e-4, 1e-5), F64: (1e-9, 1e-11)}  # a mean and variance over the group


def _bn_samples(rng, d):
    def stats(c):
        return arr(rng, (c,), d, -0.5, 0.5), arr(rng, (c,), d, 0.5, 2)
    out = []
    for shape in [(4, 3), (4, 3, 5), (2, 3, 4, 5)]:
        m, v = stats(3)
        w, b = arr(rng, (3,), d), arr(rng, (3,), d)
        out.append(Sample(arr(rng, shape, d), m, v, w, b, True, 0.1, 1e-5))
        out.append(Sample(arr(rng, shape, d), m, v, w, b, False, 0.1, 1e-5, desc="eval"))
        out.append(Sample(arr(rng, shape, d), None, None, training=True, desc="no stats"))
    return out


# Weight and bias stay contiguous: torch 2.13's CPU batch_norm backward gives a wrong input
# gradient for a strided weight (deepcore agrees with the contiguous case there).
add("batch_norm", _bn_samples, tols=_NORM_TOLS, grad_tols=_NORM_TOLS, layouts=(0,),
    grad_args=(0, 3, 4),
    gradgrad=True)
add("layer_norm", lambda rng, d: [
    Sample(arr(rng, (3, 4), d), (4,), arr(rng, (4,), d), arr(rng, (4,), d)),
    Sample(arr(rng, (2, 3, 4), d), (3, 4), arr(rng, (3, 4), d), arr(rng, (3, 4), d)),
    Sample(arr(rng, (2, 3, 4), d), (4,), desc="no affine"),
    Sample(arr(rng, (0, 4), d), (4,)),
    Sample(arr(rng, (3, 300), d), (300,), eps=1e-3)],
    tols=_NORM_TOLS, grad_tols=_NORM_TOLS, gradgrad=True)
add("rms_norm", lambda rng, d: [
    Sample(arr(rng, (3, 4), d), (4,), arr(rng, (4,), d)),
    Sample(arr(rng, (2, 3, 4), d), (3, 4), arr(rng, (3, 4), d), 1e-3),
    Sample(arr(rng, (2, 3, 4), d), (4,), desc="no weight"),
    Sample(arr(rng, (0, 4), d), (4,)),
    Sample(arr(rng, (3, 300), d), (300,))],
    tols=_NORM_TOLS, grad_tols=_NORM_TOLS)
add("group_norm", lambda rng, d: [
    Sample(arr(rng, (2, 6, 5), d), 3, arr(rng, (6,), d), arr(rng, (6,), d)),
    Sample(arr(rng, (2, 4, 3, 3), d), 2),
    Sample(arr(rng, (3, 4), d), 4, arr(rng, (4,), d), arr(rng, (4,), d), 1e-3)],
    tols=_NORM_TOLS, grad_tols=_NORM_TOLS)
add("instance_norm", lambda rng, d: [
    Sample(arr(rng, (2, 3, 5), d)),
    Sample(arr(rng, (2, 3, 4, 4), d), weight=arr(rng, (3,), d), bias=arr(rng, (3,), d)),
    Sample(arr(rng, (2, 3, 5), d), arr(rng, (3,), d, -0.5, 0.5), arr(rng, (3,), d, 0.5, 2),
           desc="running stats")],
    tols=_NORM_TOLS, grad_tols=_NORM_TOLS, layouts=(0, 3, 4),
    grad_args=(0, "weight", "bias"))


# ---- convolution, padding, pooling ----------------------------------------------------------

_CONV_TOLS = reduction_tols(200)
add("conv1d", lambda rng, d: [
    Sample(arr(rng, (2, 3, 9), d), arr(rng, (4, 3, 3), d), arr(rng, (4,), d)),
    Sample(arr(rng, (2, 4, 10), d), arr(rng, (6, 2, 3), d), None, 2, 1, 2, 2, desc="groups"),
    Sample(arr(rng, (3, 8), d), arr(rng, (2, 3, 1), d), desc="unbatched"),
    Sample(arr(rng, (1, 2, 7), d), arr(rng, (2, 2, 3), d), padding="same")],
    tols=_CONV_TOLS, grad_tols=_CONV_TOLS)
add("conv2d", lambda rng, d: [
    Sample(arr(rng, (2, 3, 6, 5), d), arr(rng, (4, 3, 3, 3), d), arr(rng, (4,), d)),
    Sample(arr(rng, (1, 4, 7, 7), d), arr(rng, (4, 2, 3, 2), d), None, (2, 1), (1, 0), (1, 2), 2,
           desc="groups"),
    Sample(arr(rng, (1, 3, 5, 5), d), arr(rng, (6, 1, 3, 3), d), arr(rng, (6,), d), 1, 1, 1, 3,
           desc="depthwise"),
    Sample(arr(rng, (2, 2, 5, 4), d), arr(rng, (3, 2, 1, 1), d), desc="1x1"),
    Sample(arr(rng, (1, 16, 9, 9), d), arr(rng, (8, 16, 3, 3), d), arr(rng, (8,), d))],
    tols=_CONV_TOLS, grad_tols=_CONV_TOLS, gradgrad=True)
add("conv_transpose1d", lambda rng, d: [
    Sample(arr(rng, (2, 3, 6), d), arr(rng, (3, 4, 3), d), arr(rng, (4,), d)),
    Sample(arr(rng, (2, 4, 5), d), arr(rng, (4, 2, 3), d), None, 2, 1, 1, 2, desc="groups"),
    Sample(arr(rng, (1, 2, 5), d), arr(rng, (2, 2, 3), d), None, 2, 0, 0, 1, 2,
           desc="dilation")],
    tols=_CONV_TOLS, grad_tols=_CONV_TOLS)
add("conv_transpose2d", lambda rng, d: [
    Sample(arr(rng, (2, 3, 4, 5), d), arr(rng, (3, 4, 3, 3), d), arr(rng, (4,), d)),
    Sample(arr(rng, (1, 4, 4, 4), d), arr(rng, (4, 2, 3, 2), d), None, 2, 1, (1, 0), 2,
           desc="groups"),
    Sample(arr(rng, (1, 2, 3, 3), d), arr(rng, (2, 3, 2, 2), d), None, 1, 0, 0, 1, 2,
           desc="dilation")],
    tols=_CONV_TOLS, grad_tols=_CONV_TOLS)
add("pad", lambda rng, d: [
    Sample(arr(rng, (2, 3, 4), d), (1, 2)),
    Sample(arr(rng, (2, 3, 4), d), (1, 0, 2, 1), value=1.5),
    Sample(arr(rng, (2, 3, 4), d), (0, -1, 1, 0), desc="negative"),
    Sample(arr(rng, (1, 2, 4, 5), d), (2, 1, 1, 2), mode="reflect"),
    Sample(arr(rng, (1, 2, 4, 5), d), (2, 1, 1, 2), mode="replicate"),
    Sample(arr(rng, (1, 2, 4, 5), d), (2, 1, 1, 2), mode="circular"),
    Sample(arr(rng, (2, 3, 5), d), (2, 1), mode="reflect")])

for _n, _shape, _calls in [
        ("max_pool1d", (2, 3, 9), [(3,), (2, 1), (3, 2, 1), (3, 1, 0, 2), (2, 2, 0, 1, True)]),
        ("max_pool2d", (2, 3, 7, 6), [(3,), (2, 1), ((3, 2), 2, 1), (2, 1, 0, 2),
                                      (3, 2, 1, 1, True)]),
        ("avg_pool1d", (2, 3, 9), [(3,), (2, 1), (3, 2, 1), (3, 2, 1, True), (3, 2, 1, False,
                                                                             False)]),
        ("avg_pool2d", (2, 3, 7, 6), [(3,), (2, 1), ((3, 2), 2, 1), (3, 2, 1, True),
                                      (3, 2, 1, False, False), (2, 2, 0, False, True, 3)])]:
    def _gen(rng, d, _shape=_shape, _calls=_calls):
        out = [Sample(arr(rng, _shape, d), *c) for c in _calls]
        out.append(Sample(arr(rng, _shape[1:], d), 2, desc="unbatched"))
        if _n.startswith("max"):
            out.append(Sample(arr(rng, _shape, d), 2, return_indices=True))
        return out
    add(_n, _gen)
add("adaptive_avg_pool2d", lambda rng, d: [
    Sample(arr(rng, (2, 3, 7, 6), d), (3, 2)), Sample(arr(rng, (2, 3, 5, 5), d), 1),
    Sample(arr(rng, (3, 4, 4), d), (5, 3)), Sample(arr(rng, (1, 2, 6, 6), d), (None, 3))])
add("adaptive_max_pool2d", lambda rng, d: [
    Sample(arr(rng, (2, 3, 7, 6), d), (3, 2)), Sample(arr(rng, (2, 3, 5, 5), d), 1),
    Sample(arr(rng, (3, 4, 4), d), (2, 3), True)])


# ---- sort, dropout, optimizers ------------------------------------------------------------

def _distinct(rng, shape, dtype):
    """No ties: an unstable sort has one right answer."""
    n = int(np.prod(shape))
    return np.asarray(rng.permutation(n).reshape(shape) - n // 2, np_dtype(dtype))


add("argsort", reduce_samples(((3, 4),), ((3, 4), 0), ((2, 3, 4), -1, True), ((),), ((0, 3),),
                              ((257,),), init=_distinct), dtypes=NUMERIC)
add("argsort", reduce_samples(((5, 9), {"dim": 1, "stable": True}),
                              ((17,), {"dim": 0, "stable": True, "descending": True}),
                              init=lambda r, s, d: _ties(r, s, d, 0)), dtypes=NUMERIC)


def _dropout_support(actual, expected, args):
    """Each element is dropped (0) or kept and scaled by 1 / (1 - p)."""
    _same_shape_dtype(actual, expected, args)
    x, p = args[0].detach().numpy(), args[1]
    a = actual.detach().numpy()
    kept = a != 0
    np.testing.assert_allclose(a[kept], x[kept] / (1 - p), rtol=1e-6)


add("dropout", lambda rng, d: [
    Sample(away(rng, (3, 4), d), 0.0), Sample(away(rng, (3, 4), d), 1.0),
    Sample(away(rng, (3, 4), d), 0.5, False, desc="eval"), Sample(away(rng, (0, 3), d), 0.3),
    Sample(away(rng, (200,), d), 0.3, check=_dropout_support, grad=False)],
    op=F.dropout, ref=TF.dropout)


def optimizer_step(cls_name, **hp):
    """Two steps of an optimizer on one parameter with fixed gradients; returns the parameter.

    The C++ op updates the parameter and its state in place; the optimizer class is how the
    library calls it, so both sides run the same public code path.
    """
    def run(lib, p, g1, g2):
        param = (lib.nn.Parameter if hasattr(lib.nn, "Parameter") else lib.tensor)(p.clone())
        opt = getattr(lib.optim, cls_name)([param], **hp)
        for g in (g1, g2):
            param.grad = g.clone()
            opt.step()
        return param.detach().clone()
    return run


_OPTIM = {
    "sgd_step": [("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True,
                                                     weight_decay=0.01)),
                 ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5, maximize=True))],
    "adam_step": [("Adam", dict(lr=0.01)), ("Adam", dict(lr=0.01, amsgrad=True,
                                                         weight_decay=0.1)),
                  ("AdamW", dict(lr=0.01, weight_decay=0.1))],
    "rmsprop_step": [("RMSprop", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, momentum=0.9,
                                                                  centered=True))],
    "adagrad_step": [("Adagrad", dict(lr=0.1)), ("Adagrad", dict(lr=0.1, lr_decay=0.01,
                                                                 weight_decay=0.1))],
}
for _n, _variants in _OPTIM.items():
    for _cls, _hp in _variants:
        _fn = optimizer_step(_cls, **_hp)
        add(_n, lambda rng, d: [Sample(*(arr(rng, s, d) for _ in range(3))) for s in
                                [(3, 4), (37,), ()]],
            **both(_fn), grad=False, gradcheck=False, tols={F32: (1e-5, 1e-6)},
            meta=False, layouts=(),
            skips={"meta": "optimizer steps update state in place; not a shape function",
                   "layouts": "parameters and gradients are contiguous leaves"})
