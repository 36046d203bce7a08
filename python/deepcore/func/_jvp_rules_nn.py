"""Forward-mode rules of the neural-network ops: normalisation, pooling, dropout and the
losses (the rest of the table is _jvp_rules.py, which documents a rule's signature)."""
from __future__ import annotations

from typing import List

import deepcore as dc

from .._C import Tensor
from ._jvp_rules import Rule, _add, _bshape, _f, _fit, _is_t, _reg, linear


# ---- normalisation --------------------------------------------------------------------------

def _normalize_t(x: Tensor, t: Tensor, dims: List[int], eps: float):
    """(xhat, d xhat) for xhat = (x - mean) / sqrt(var + eps) over dims (biased var):
    d xhat = rstd * (t - mean(t) - xhat * mean(xhat * t))."""
    mu = x.mean(dims, keepdim=True)
    rstd = dc.rsqrt(((x - mu) ** 2).mean(dims, keepdim=True) + eps)
    xhat = (x - mu) * rstd
    if t is None:
        return xhat, None
    return xhat, rstd * (t - t.mean(dims, keepdim=True) - xhat * (xhat * t).mean(dims, keepdim=True))


def _affine_t(xhat, txhat, w, tw, b, tb, shape_w):
    """Tangent of xhat * w + b (w, b broadcast by shape_w)."""
    view = (lambda a: a.reshape(shape_w)) if shape_w is not None else (lambda a: a)
    out = txhat
    if w is not None and out is not None:
        out = out * view(w)
    return _add(out, None if tw is None else xhat * view(tw), None if tb is None else view(tb))


def _layer_norm(args, tans, outs, call):
    x, shape, w, b, eps = args
    tx, tw, tb = tans[0], tans[2], tans[3]
    if tx is None and tw is None and tb is None:
        return [None]
    n = len(shape) if isinstance(shape, (list, tuple)) else 1
    dims = list(range(x.dim() - n, x.dim()))
    xhat, txhat = _normalize_t(x, tx, dims, eps)
    return [_fit(_affine_t(xhat, txhat, w, tw, b, tb, None), outs[0])]


def _rms_norm(args, tans, outs, call):
    x, shape, w, eps = args
    tx, tw = tans[0], tans[2]
    if tx is None and tw is None:
        return [None]
    if eps is None:
        eps = dc.finfo(x.dtype).eps
    n = len(shape) if isinstance(shape, (list, tuple)) else 1
    dims = list(range(x.dim() - n, x.dim()))
    xr = x * dc.rsqrt((x * x).mean(dims, keepdim=True) + eps)
    txr = None
    if tx is not None:
        r = dc.rsqrt((x * x).mean(dims, keepdim=True) + eps)
        txr = r * (tx - xr * (xr * tx).mean(dims, keepdim=True))
    return [_fit(_affine_t(xr, txr, w, tw, None, None, None), outs[0])]


def _channel_shape(x):
    return [1, x.shape[1]] + [1] * (x.dim() - 2)


def _group_norm(args, tans, outs, call):
    x, groups, w, b, eps = args
    tx, tw, tb = tans[0], tans[2], tans[3]
    if tx is None and tw is None and tb is None:
        return [None]
    n = x.shape[0]
    xg = x.reshape(n, groups, -1)
    xhat, txhat = _normalize_t(xg, None if tx is None else tx.reshape(n, groups, -1), [2], eps)
    xhat = xhat.reshape(tuple(x.shape))
    txhat = None if txhat is None else txhat.reshape(tuple(x.shape))
    return [_fit(_affine_t(xhat, txhat, w, tw, b, tb, _channel_shape(x)), outs[0])]


def _running_stats_norm(batch_stats: bool):
    """batch_norm (statistics over the batch and space) and instance_norm (over space): with
    the input's statistics (training / use_input_stats, or no running statistics) or the
    running ones, then the affine map."""
    def rule(args, tans, outs, call):
        x, rm, rv, w, b, use_input_stats, _momentum, eps = args
        tx, tw, tb = tans[0], tans[3], tans[4]
        if tx is None and tw is None and tb is None:
            return [None]
        cs = _channel_shape(x)
        if use_input_stats or rm is None:
            dims = ([0] if batch_stats else []) + list(range(2, x.dim()))
            xhat, txhat = _normalize_t(x, tx, dims, eps)
        else:
            rstd = dc.rsqrt(rv.reshape(cs) + eps)
            xhat = (x - rm.reshape(cs)) * rstd
            txhat = None if tx is None else tx * rstd
        return [_fit(_affine_t(xhat, txhat, w, tw, b, tb, cs), outs[0])]
    return rule


_reg("layer_norm", _layer_norm)
_reg("rms_norm _rms_norm", _rms_norm)
_reg("_group_norm", _group_norm)
_reg("_batch_norm", _running_stats_norm(batch_stats=True))
_reg("_instance_norm", _running_stats_norm(batch_stats=False))


# ---- pooling with indices, dropout ----------------------------------------------------------

def _max_pool(nsp: int) -> Rule:
    """Max pooling over nsp spatial dims: the tangent at each window's argmax (the indices are
    flat positions within each (batch, channel) plane, as in torch)."""
    def rule(args, tans, outs, call):
        t = tans[0]
        if t is None:
            return [None, None]
        vals, idx = outs[0], outs[1]
        ft = t.flatten(t.dim() - nsp) if nsp > 1 else t
        fi = idx.flatten(idx.dim() - nsp) if nsp > 1 else idx
        return [ft.gather(ft.dim() - 1, fi).reshape(tuple(vals.shape)), None]
    return rule


_reg("_max_pool1d", _max_pool(1))
_reg("_max_pool2d _adaptive_max_pool2d", _max_pool(2))


def _dropout(args, tans, outs, call):
    p, train = args[1], args[2]
    t = tans[0]
    if t is None:
        return [None]
    if not train or p == 0:
        return [t]
    if p >= 1:
        return [None]
    # The mask is the recomputed result's nonzeros (an exact zero input drops its tangent).
    return [t * _f(outs[0] != 0, t) / (1 - p)]


_reg("dropout dropout_", _dropout)


# ---- losses ---------------------------------------------------------------------------------

def _reduce(loss: Tensor, reduction: str, batch: int = 1) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "batchmean":
        return loss.sum() / batch
    return loss.mean()


def _pair_loss(d_input, d_target=None):
    """Elementwise losses l(x, y) reduced: tangent reduce(dl/dx tx + dl/dy ty)."""
    def rule(args, tans, outs, call):
        x, y, reduction = args[0], args[1], args[2]
        tx, ty = tans[0], tans[1]
        if tx is None and ty is None:
            return [None]
        y = y if _is_t(y) else dc.tensor(y, dtype=x.dtype)
        extra = args[3:]
        t = _add(None if tx is None else tx * d_input(x, y, *extra),
                 None if ty is None else ty * (d_target(x, y, *extra) if d_target
                                              else -d_input(x, y, *extra)))
        shape = _bshape(x, y)
        return [_reduce(t.expand(shape) if tuple(t.shape) != tuple(shape) else t, reduction,
                        x.shape[0] if x.dim() else 1)]
    return rule


_reg("_mse_loss", _pair_loss(lambda x, y: 2 * (x - y)))
_reg("_l1_loss", _pair_loss(lambda x, y: dc.sign(x - y)))
_reg("_smooth_l1_loss", _pair_loss(lambda x, y, beta=1.0: dc.where(
    dc.abs(x - y) < beta, (x - y) / beta, dc.sign(x - y)) if beta > 0 else dc.sign(x - y)))
_reg("_huber_loss", _pair_loss(lambda x, y, delta=1.0: dc.where(
    dc.abs(x - y) < delta, x - y, delta * dc.sign(x - y))))


def _kl_div(args, tans, outs, call):
    x, y, reduction, log_target = args
    tx, ty = tans[0], tans[1]
    if tx is None and ty is None:
        return [None]
    if log_target:
        ey = dc.exp(y)
        t = _add(None if tx is None else -tx * ey, None if ty is None else ty * ey * (y - x + 1))
    else:
        t = _add(None if tx is None else -tx * y,
                 None if ty is None else ty * dc.where(y > 0, dc.log(dc.where(
                     y > 0, y, dc.ones_like(y))) + 1 - x, dc.zeros_like(y)))
    shape = _bshape(x, y)
    t = t.expand(shape) if tuple(t.shape) != tuple(shape) else t
    return [_reduce(t, reduction, x.shape[0] if x.dim() else 1)]


_reg("_kl_div", _kl_div)


def _bce(args, tans, outs, call):
    x, y, w, reduction = args
    tx, ty, tw = tans[0], tans[1], tans[2]
    if tx is None and ty is None and tw is None:
        return [None]
    y = y if _is_t(y) else dc.tensor(y, dtype=x.dtype)
    t = _add(None if tx is None else tx * (x - y) / dc.clamp(x * (1 - x), min=1e-12),
             None if ty is None else ty * (dc.log1p(-x).clamp(min=-100) -
                                           dc.log(x).clamp(min=-100)))
    if w is not None and t is not None:
        t = t * w
    if tw is not None:
        base = -(y * dc.log(x).clamp(min=-100) + (1 - y) * dc.log1p(-x).clamp(min=-100))
        t = _add(t, tw * base)
    return [_reduce(_fit(t, dc.broadcast_tensors(x, y)[0]), reduction)]


def _bce_logits(args, tans, outs, call):
    x, y, w, reduction, pw = args
    tx, ty, tw, tpw = tans[0], tans[1], tans[2], tans[4]
    if all(t is None for t in (tx, ty, tw, tpw)):
        return [None]
    y = y if _is_t(y) else dc.tensor(y, dtype=x.dtype)
    ls_pos, ls_neg = dc.nn.functional.logsigmoid(x), dc.nn.functional.logsigmoid(-x)
    s = dc.sigmoid(x)
    p = 1 if pw is None else pw
    # l = -w (p y logsig(x) + (1 - y) logsig(-x))
    t = _add(None if tx is None else -tx * (p * y * (1 - s) - (1 - y) * s),
             None if ty is None else -ty * (p * ls_pos - ls_neg),
             None if tpw is None else -tpw * y * ls_pos)
    if w is not None and t is not None:
        t = t * w
    if tw is not None:
        t = _add(t, -tw * (p * y * ls_pos + (1 - y) * ls_neg))
    return [_reduce(_fit(t, dc.broadcast_tensors(x, y)[0]), reduction)]


_reg("_binary_cross_entropy", _bce)
_reg("_binary_cross_entropy_with_logits", _bce_logits)


def _cross_entropy(args, tans, outs, call):
    """cross_entropy(x, target) = L(log_softmax(x)) with L linear in the log-probabilities for
    class targets (nll_loss plus the label-smoothing term), bilinear in (log-probs, target)
    for probability targets; the tangent is L applied to the log-probabilities' tangent."""
    x, target, w, ignore_index, reduction, eps = args
    tx, tt = tans[0], tans[1]
    if tans[2] is not None:
        raise NotImplementedError("jvp: no forward rule for '_cross_entropy' with respect to "
                                  "weight")
    if tx is None and tt is None:
        return [None]
    cdim = 1 if x.dim() > 1 else 0
    C = x.shape[cdim]
    ls = dc.log_softmax(x, cdim)
    tls = None if tx is None else tx - (tx * dc.exp(ls)).sum(cdim, keepdim=True)
    wshape = [1] * x.dim()
    wshape[cdim] = C
    wv = None if w is None else w.reshape(wshape)
    if _is_t(target) and target.dtype.is_floating_point:  # class probabilities
        q = target * (1 - eps) + eps / C
        tq = None if tt is None else tt * (1 - eps)
        per = _add(None if tls is None else tls * q, None if tq is None else tq * ls)
        if wv is not None:
            per = per * wv
        per = -per.sum(cdim)
        return [_reduce(per, reduction)]  # mean: over the per-sample losses, as torch
    if tls is None:
        return [None]
    target = target if _is_t(target) else dc.tensor(target)
    out = dc.nn.functional.nll_loss(tls, target, weight=w, ignore_index=ignore_index,
                                    reduction=reduction)
    if eps:
        valid = _f(target != ignore_index, tls)
        smooth = -((tls * wv) if wv is not None else tls).sum(cdim) * valid
        if reduction == "mean":
            if w is not None:
                safe_t = dc.where(target != ignore_index, target, dc.zeros_like(target))
                denom = (w[safe_t] * valid).sum()
            else:
                denom = valid.sum()
            smooth = smooth.sum() / denom
        else:
            smooth = _reduce(smooth, reduction)
        out = (1 - eps) * out + (eps / C) * smooth
    return [out]


_reg("_cross_entropy", _cross_entropy)
_reg("_nll_loss", linear(0))
