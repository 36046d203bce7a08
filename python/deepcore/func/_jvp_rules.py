"""Forward-mode derivative rules: one entry per traced op name, the table deepcore.func.jvp
interprets a traced graph with (Note [Forward mode over a trace] in _forward.py).

A rule is ``rule(args, tangents, outputs, call) -> list of output tangents``:
  args      the node's positional arguments in ops.schema order, real tensors filled in
  tangents  mirrors ``args``: a tangent tensor or None (zero) per tensor argument, a list of
            them for Tensor[] arguments, None for everything else
  outputs   the node's results (the primal outputs), a list
  call      ``call(new_args)`` runs the node's op on other arguments (the linear ops' rule:
            the tangent of a linear op is the op applied to the tangent)
It returns one tangent (or None: zero) per output. Rules are written with public deepcore ops
only, so reverse mode differentiates through them (jacrev(jacfwd(f)), grad over jvp).

Names are the traced names (the bindings: ``_cross_entropy``, ``_view``, ``_max_dim``), not the
public names. Ops the registry marks not differentiable have no entry: their tangents are zero.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional

import deepcore as dc

from .._C import Tensor

Rule = Callable[[list, list, list, Callable], List[Optional[Tensor]]]
RULES: Dict[str, Rule] = {}


def _is_t(x) -> bool:
    return isinstance(x, Tensor)


def _fit(t: Optional[Tensor], out: Tensor) -> Optional[Tensor]:
    """t broadcast to out's shape and cast to its dtype (a tangent must look like its primal)."""
    if t is None:
        return None
    if t.dtype != out.dtype:
        t = t.to(out.dtype)
    if tuple(t.shape) != tuple(out.shape):
        t = t.expand(tuple(out.shape))
    return t


def _bshape(a: Tensor, b: Tensor) -> tuple:
    """The broadcast shape of two tensors."""
    sa, sb = tuple(a.shape), tuple(b.shape)
    n = max(len(sa), len(sb))
    sa, sb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    return tuple(max(x, y) if min(x, y) != 0 else 0 for x, y in zip(sa, sb))


def _add(*ts: Optional[Tensor]) -> Optional[Tensor]:
    """The sum of the tangents that are not None (None when all are)."""
    acc = None
    for t in ts:
        if t is not None:
            acc = t if acc is None else acc + t
    return acc


def _f(x, like: Tensor):
    """A mask or an integer tensor as the float dtype of `like`."""
    return x.to(like.dtype)


def _reg(names: str, rule: Rule) -> None:
    for n in names.split():
        RULES[n] = rule


# ---- unary elementwise: (name, d(x, y, *extra) -> dy/dx); tangent = t * dy/dx --------------

_LN2, _LN10 = math.log(2.0), math.log(10.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _gelu_d(x, y, approximate="none"):
    if approximate == "tanh":
        u = _SQRT_2_PI * (x + 0.044715 * x ** 3)
        th = dc.tanh(u)
        return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * _SQRT_2_PI * (1 + 3 * 0.044715 * x * x)
    cdf = 0.5 * (1 + dc.erf(x * (1 / math.sqrt(2.0))))
    return cdf + x * dc.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))


def _softplus_d(x, y, beta=1.0, threshold=20.0):
    return dc.where(x * beta > threshold, dc.ones_like(x), dc.sigmoid(x * beta))


def _mish_d(x, y):
    tsp = dc.tanh(dc.nn.functional.softplus(x))
    return tsp + x * dc.sigmoid(x) * (1 - tsp * tsp)


def _sinc_d(x, y):
    px = math.pi * x
    safe = dc.where(x == 0, dc.ones_like(x), x)
    return dc.where(x == 0, dc.zeros_like(x), (dc.cos(px) - y) / safe)


def _i1_d(x, y):
    safe = dc.where(x == 0, dc.ones_like(x), x)
    return dc.where(x == 0, dc.full_like(x, 0.5), dc.i0(x) - y / safe)


def _logit_d(x, y, eps=None):
    d = 1 / (x * (1 - x))
    if eps is not None:
        d = d * _f((x >= eps) & (x <= 1 - eps), x)
    return d


def _hardswish_d(x, y):
    mid = (2 * x + 3) / 6
    return dc.where(x < -3, dc.zeros_like(x), dc.where(x > 3, dc.ones_like(x), mid))


_UNARY = {
    "abs": lambda x, y: dc.sign(x),
    "exp": lambda x, y: y,
    "expm1": lambda x, y: y + 1,
    "exp2": lambda x, y: y * _LN2,
    "log": lambda x, y: 1 / x,
    "log2": lambda x, y: 1 / (x * _LN2),
    "log10": lambda x, y: 1 / (x * _LN10),
    "log1p": lambda x, y: 1 / (1 + x),
    "sqrt": lambda x, y: 0.5 / y,
    "rsqrt": lambda x, y: -0.5 * y * y * y,
    "sin": lambda x, y: dc.cos(x),
    "cos": lambda x, y: -dc.sin(x),
    "tan": lambda x, y: 1 + y * y,
    "asin": lambda x, y: dc.rsqrt(1 - x * x),
    "acos": lambda x, y: -dc.rsqrt(1 - x * x),
    "atan": lambda x, y: 1 / (1 + x * x),
    "sinh": lambda x, y: dc.cosh(x),
    "cosh": lambda x, y: dc.sinh(x),
    "tanh": lambda x, y: 1 - y * y,
    "asinh": lambda x, y: dc.rsqrt(x * x + 1),
    "acosh": lambda x, y: dc.rsqrt(x * x - 1),
    "atanh": lambda x, y: 1 / (1 - x * x),
    "sigmoid": lambda x, y: y * (1 - y),
    "relu": lambda x, y: _f(x > 0, x),
    "silu": lambda x, y: dc.sigmoid(x) * (1 + x * (1 - dc.sigmoid(x))),
    "erf": lambda x, y: _TWO_OVER_SQRT_PI * dc.exp(-x * x),
    "erfc": lambda x, y: -_TWO_OVER_SQRT_PI * dc.exp(-x * x),
    "erfinv": lambda x, y: (math.sqrt(math.pi) / 2) * dc.exp(y * y),
    "lgamma": lambda x, y: dc.digamma(x),
    "digamma": lambda x, y: dc.polygamma(1, x),
    "sinc": _sinc_d,
    "i0": lambda x, y: dc.special_i1(x),
    "special_i1": _i1_d,
    "logit": _logit_d,
    "reciprocal": lambda x, y: -y * y,
    "square": lambda x, y: 2 * x,
    "mish": _mish_d,
    "gelu": _gelu_d,
    "softplus": _softplus_d,
    "leaky_relu": lambda x, y, slope=0.01: dc.where(x > 0, dc.ones_like(x), dc.full_like(x, slope)),
    "elu": lambda x, y, alpha=1.0: dc.where(x > 0, dc.ones_like(x), alpha * dc.exp(x)),
    "selu": lambda x, y: _SELU_SCALE * dc.where(x > 0, dc.ones_like(x),
                                                _SELU_ALPHA * dc.exp(x)),
    "celu": lambda x, y, alpha=1.0: dc.where(x > 0, dc.ones_like(x), dc.exp(x / alpha)),
    "hardtanh": lambda x, y, lo=-1.0, hi=1.0: _f((x > lo) & (x < hi), x),
    "relu6": lambda x, y: _f((x > 0) & (x < 6), x),
    "hardsigmoid": lambda x, y: _f((x > -3) & (x < 3), x) / 6,
    "hardswish": _hardswish_d,
    "logsigmoid": lambda x, y: dc.sigmoid(-x),
    "softsign": lambda x, y: 1 / ((1 + dc.abs(x)) ** 2),
    "tanhshrink": lambda x, y: dc.tanh(x) ** 2,
    "_threshold": lambda x, y, th, value, inplace=False: _f(x > th, x),
    "_hardshrink": lambda x, y, lambd=0.5: _f(dc.abs(x) > lambd, x),
    "_softshrink": lambda x, y, lambd=0.5: _f(dc.abs(x) > lambd, x),
    "_nan_to_num": lambda x, y, *a: _f(dc.isfinite(x), x),
}


def _unary(d):
    def rule(args, tans, outs, call):
        t = tans[0]
        if t is None:
            return [None]
        return [_fit(t * d(args[0], outs[0], *args[1:]), outs[0])]
    return rule


for _name, _d in _UNARY.items():
    _reg(_name, _unary(_d))
_reg("neg", lambda a, t, o, c: [None if t[0] is None else -t[0]])
_reg("polygamma", lambda a, t, o, c: [None if t[1] is None
                                      else t[1] * dc.polygamma(a[0] + 1, a[1])])
# Piecewise constant: the derivative is zero wherever it exists.
_reg("sign floor ceil round trunc", lambda a, t, o, c: [None])


def _clamp(args, tans, outs, call):
    x, lo, hi = args[0], args[1], args[2]
    t = tans[0] if tans[0] is not None else None
    tlo, thi = tans[1], tans[2]
    if t is None and tlo is None and thi is None:
        return [None]
    y = outs[0]
    z = dc.zeros_like(y)
    t = _fit(t, y) if t is not None else z
    m = x
    if lo is not None:
        tl = _fit(tlo, y) if tlo is not None else z
        t = dc.where(x < lo, tl, t)
        m = dc.maximum(x, lo) if _is_t(lo) else dc.clamp(x, min=lo)
    if hi is not None:
        th = _fit(thi, y) if thi is not None else z
        t = dc.where(m > hi, th, t)
    return [t]


_reg("clamp clamp_ clamp_tensor", _clamp)


# ---- binary elementwise ---------------------------------------------------------------------

def _binary(fn):
    """fn(a, b, ta, tb, y, *rest) with ta/tb possibly None; result fitted to y."""
    def rule(args, tans, outs, call):
        if tans[0] is None and tans[1] is None:
            return [None]
        return [_fit(fn(args[0], args[1], tans[0], tans[1], outs[0], *args[2:]), outs[0])]
    return rule


def _mul_t(t, f):
    return None if t is None else t * f


def _pow(a, b, ta, tb, y):
    out = None
    if ta is not None:
        # b * a^(b-1), zero where b == 0 (0 * inf at a == 0 otherwise)
        d = dc.where(b == 0, dc.zeros_like(y), b * a ** (b - 1)) if _is_t(b) else \
            (b * a ** (b - 1) if b != 0 else dc.zeros_like(y))
        out = ta * d
    if tb is not None:
        out = _add(out, tb * dc.where(y == 0, dc.zeros_like(y), y * dc.log(a)))
    return out


def _minmax(pick_a):
    def fn(a, b, ta, tb, y):
        ta = dc.zeros_like(y) if ta is None else _fit(ta, y)
        tb = dc.zeros_like(y) if tb is None else _fit(tb, y)
        wa = pick_a(a, b)
        return dc.where(a == b, (ta + tb) / 2, dc.where(wa, ta, tb))
    return fn


def _sel(cond, t, y):
    return dc.where(cond, t if t is not None else dc.zeros_like(y), dc.zeros_like(y))


_reg("add add_", _binary(lambda a, b, ta, tb, y, alpha=1: _add(ta, _mul_t(tb, alpha)
                                                                if alpha != 1 else tb)))
_reg("sub sub_", _binary(lambda a, b, ta, tb, y, alpha=1: _add(ta, _mul_t(tb, -alpha))))
_reg("mul mul_", _binary(lambda a, b, ta, tb, y: _add(_mul_t(ta, b), _mul_t(tb, a))))


def _div(a, b, ta, tb, y, rounding_mode=None):
    if rounding_mode is not None:
        return dc.zeros_like(y)
    return _add(_mul_t(ta, 1 / b) if _is_t(b) else ta / b, _mul_t(tb, -y / b))


_reg("div div_", _binary(_div))
_reg("pow pow_", _binary(_pow))
_reg("remainder", _binary(lambda a, b, ta, tb, y: _add(ta, _mul_t(tb, -dc.floor(a / b)))))
_reg("fmod", _binary(lambda a, b, ta, tb, y: _add(ta, _mul_t(tb, -dc.trunc(a / b)))))
_reg("maximum", _binary(_minmax(lambda a, b: a > b)))
_reg("minimum", _binary(_minmax(lambda a, b: a < b)))
_reg("atan2", _binary(lambda a, b, ta, tb, y: _add(_mul_t(ta, b), _mul_t(tb, -a)) /
                      (a * a + b * b)))
_reg("hypot", _binary(lambda a, b, ta, tb, y: _add(_mul_t(ta, a), _mul_t(tb, b)) / y))
_reg("copysign", _binary(lambda a, b, ta, tb, y: _mul_t(
    ta, dc.where(a == 0, dc.zeros_like(y), y / dc.where(a == 0, dc.ones_like(y), a)))))
_reg("logaddexp", _binary(lambda a, b, ta, tb, y: _add(_mul_t(ta, dc.exp(a - y)),
                                                       _mul_t(tb, dc.exp(b - y)))))
_reg("logaddexp2", _binary(lambda a, b, ta, tb, y: _add(_mul_t(ta, 2 ** (a - y)),
                                                        _mul_t(tb, 2 ** (b - y)))))
_reg("xlogy", _binary(lambda a, b, ta, tb, y: _add(
    _mul_t(ta, dc.where(a == 0, dc.zeros_like(y), dc.log(b))), _mul_t(tb, a / b))))


def _where(args, tans, outs, call):
    if tans[1] is None and tans[2] is None:
        return [None]
    y = outs[0]
    z = dc.zeros_like(y)
    return [dc.where(args[0], z if tans[1] is None else _fit(tans[1], y),
                     z if tans[2] is None else _fit(tans[2], y))]


_reg("where", _where)


# ---- linear and bilinear ops: the op itself applied to tangents -----------------------------

def _zero_of(x):
    if _is_t(x):
        return dc.zeros_like(x)
    if isinstance(x, list):
        return [_zero_of(v) for v in x]
    if isinstance(x, bool):
        return x
    if isinstance(x, (int, float)):
        return type(x)(0)
    return x


def linear(*positions: int) -> Rule:
    """The rule of an op linear jointly in the arguments at `positions` (a Tensor[] argument
    counts its elements): op(args with tangents there, zeros where a tangent is missing, and a
    Python number there, like masked_fill's value, replaced by 0)."""
    def rule(args, tans, outs, call):
        def has(p):
            t = tans[p]
            return any(v is not None for v in t) if isinstance(t, list) else t is not None
        if not any(has(p) for p in positions if p < len(args)):
            return [None] * len(outs)
        new = list(args)
        for p in positions:
            if p >= len(args) or args[p] is None:
                continue
            if isinstance(args[p], list):
                new[p] = [dc.zeros_like(a) if t is None else _fit(t, a) if _is_t(a) else t
                          for a, t in zip(args[p], tans[p])]
            elif tans[p] is not None:
                new[p] = tans[p] if not _is_t(args[p]) else tans[p].to(args[p].dtype)
            else:
                new[p] = _zero_of(args[p])
        res = call(new)
        return [r if _is_t(r) and r.dtype.is_floating_point else None for r in res]
    return rule


def bilinear(p: int, q: int, bias: Optional[int] = None) -> Rule:
    """op(args) bilinear in (p, q) plus, optionally, linear in a bias argument:
    op(tp, q, tbias) + op(p, tq, no bias)."""
    def rule(args, tans, outs, call):
        tp, tq = tans[p], tans[q]
        tb = tans[bias] if bias is not None else None
        if tp is None and tq is None and tb is None:
            return [None]
        y = outs[0]
        out = None
        if tp is not None or tb is not None:
            new = list(args)
            new[p] = dc.zeros_like(args[p]) if tp is None else tp
            if bias is not None and args[bias] is not None:
                new[bias] = tb if tb is not None else None
            out = call(new)[0]
        if tq is not None:
            new = list(args)
            new[q] = tq
            if bias is not None:
                new[bias] = None
            out = _add(out, call(new)[0])
        return [_fit(out, y)]
    return rule


_reg("_view _reshape _permute _expand _repeat transpose swapaxes t _T squeeze unsqueeze "
     "flatten unflatten _slice select narrow split chunk unbind flip tril triu clone "
     "contiguous _to_dtype as_strided sum mean cumsum index_select gather take_along_dim "
     "masked_select embedding index _avg_pool1d _avg_pool2d _adaptive_avg_pool2d "
     "_upsample_nearest _upsample_linear nll_loss _nll_loss roll movedim",
     linear(0))
_reg("cat stack avg_pool2d", linear(0))
_reg("_pad", linear(0, 3))
_reg("masked_fill masked_fill_ index_put index_put_", linear(0, 2))
_reg("scatter scatter_", linear(0, 3, 4))
_reg("scatter_add scatter_add_ index_add index_add_", linear(0, 3))
_reg("matmul mm bmm mv dot outer", bilinear(0, 1))
_reg("linear conv1d conv2d conv_transpose1d conv_transpose2d", bilinear(0, 1, 2))


def _addmm(args, tans, outs, call):
    inp, m1, m2, beta, alpha = args
    ti, t1, t2 = tans[0], tans[1], tans[2]
    mm = _add(None if t1 is None else t1 @ m2, None if t2 is None else m1 @ t2)
    return [_fit(_add(None if ti is None else beta * ti,
                      None if mm is None else alpha * mm), outs[0])]


_reg("addmm", _addmm)
_reg("_set_requires_grad", lambda a, t, o, c: [t[0]])
_reg("detach", lambda a, t, o, c: [None])
_reg("fill_ zero_", lambda a, t, o, c: [None])
_reg("copy_", lambda a, t, o, c: [_fit(t[1], o[0])])


# ---- reductions -----------------------------------------------------------------------------

def _dims(dim, ndim: int) -> List[int]:
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(ndim))
    dim = [dim] if isinstance(dim, int) else list(dim)
    return sorted(d % max(ndim, 1) for d in dim)


def _keep(y: Tensor, dims: List[int], keepdim: bool) -> Tensor:
    """A reduced result with its reduced dims back as size 1 (for broadcasting)."""
    if keepdim:
        return y
    for d in dims:
        y = y.unsqueeze(d)
    return y


def _rsum(x: Tensor, dims: List[int], keepdim: bool) -> Tensor:
    return x.sum(dims, keepdim=keepdim) if dims else x


def _extreme(args, tans, outs, call, dim=None, keepdim=False):
    """amax/amin/max()/min(): the tangent spread evenly over the tied extremes, as torch."""
    x, t, y = args[0], tans[0], outs[0]
    if t is None:
        return [None]
    dims = _dims(dim, x.dim())
    mask = _f(x == _keep(y, dims, keepdim), x)
    return [_rsum(t * mask, dims, keepdim) / _rsum(mask, dims, keepdim)]


_reg("amax amin", lambda a, t, o, c: _extreme(a, t, o, c, a[1], a[2]))
_reg("_max_all _min_all", lambda a, t, o, c: _extreme(a, t, o, c))


def _extreme_dim(args, tans, outs, call):
    x, dim, keepdim = args
    t = tans[0]
    if t is None:
        return [None, None]
    if x.dim() == 0:
        return [t, None]
    idx = _keep(outs[1], [dim % x.dim()], keepdim)
    g = t.gather(dim, idx)
    return [g if keepdim else g.squeeze(dim), None]


_reg("_max_dim _min_dim", _extreme_dim)
_reg("_cummax _cummin", lambda a, t, o, c: [None if t[0] is None
                                            else t[0].gather(a[1], o[1]), None])


def _var_t(x, t, dims, correction, keepdim):
    n = 1
    for d in dims:
        n *= x.shape[d]
    mu = x.mean(dims, keepdim=True) if dims else x
    return 2 * _rsum(t * (x - mu), dims, keepdim) / max(n - correction, 0)


def _var(args, tans, outs, call):
    x, dim, correction, keepdim = args
    if tans[0] is None:
        return [None]
    return [_var_t(x, tans[0], _dims(dim, x.dim()), correction, keepdim)]


def _std(args, tans, outs, call):
    x, dim, correction, keepdim = args
    if tans[0] is None:
        return [None]
    return [_var_t(x, tans[0], _dims(dim, x.dim()), correction, keepdim) / (2 * outs[0])]


_reg("_var", _var)
_reg("_std", _std)


def _logsumexp(args, tans, outs, call):
    x, dim, keepdim = args
    if tans[0] is None:
        return [None]
    dims = _dims(dim, x.dim())
    return [_rsum(tans[0] * dc.exp(x - _keep(outs[0], dims, keepdim)), dims, keepdim)]


_reg("logsumexp", _logsumexp)


def _norm(args, tans, outs, call):
    x, p, dim, keepdim = args
    t, y = tans[0], outs[0]
    if t is None:
        return [None]
    dims = _dims(dim, x.dim())
    if p == 0:
        return [None]
    if math.isinf(p):
        ax = dc.abs(x)
        mask = _f(ax == _keep(y, dims, keepdim), x)
        return [_rsum(t * dc.sign(x) * mask, dims, keepdim) / _rsum(mask, dims, keepdim)]
    if p == 1:
        return [_rsum(t * dc.sign(x), dims, keepdim)]
    yk = _keep(y, dims, keepdim)
    safe = dc.where(yk == 0, dc.ones_like(yk), yk)
    if p == 2:
        num = _rsum(t * x, dims, keepdim)
    else:
        num = _rsum(t * dc.sign(x) * dc.abs(x) ** (p - 1), dims, keepdim)
        safe = safe ** (p - 1)
    safe = safe if keepdim else _rsum(safe, [], keepdim).reshape(tuple(y.shape))
    return [dc.where(y == 0, dc.zeros_like(y), num / safe)]


_reg("_norm", _norm)


def _exclusive_prod(x: Tensor, d: int) -> Tensor:
    """Along dim d, the product of every other element (exact with zeros, unlike y / x)."""
    n = x.shape[d]
    one = dc.ones_like(x.narrow(d, 0, 1))
    left = dc.cat([one, dc.cumprod(x.narrow(d, 0, n - 1), d)], d) if n > 1 else one
    xr = dc.flip(x, [d])
    right = dc.cat([one, dc.cumprod(xr.narrow(d, 0, n - 1), d)], d) if n > 1 else one
    return left * dc.flip(right, [d])


def _prod(args, tans, outs, call):
    x, dim, keepdim, dtype = args
    t, y = tans[0], outs[0]
    if t is None:
        return [None]
    if dtype is not None:
        x, t = x.to(dtype), t.to(dtype)
    if x.dim() == 0:
        return [t]
    dims = _dims(dim, x.dim())
    if len(dims) == x.dim() and len(dims) != 1:
        xs, ts = x.reshape(-1), t.reshape(-1)
        r = (ts * _exclusive_prod(xs, 0)).sum()
        return [r.reshape(tuple(y.shape))]
    r = t
    for d in reversed(dims):
        r = (r * _exclusive_prod(x, d)).sum(d, keepdim=True)
        x = x.prod(d, keepdim=True)
    return [r.reshape(tuple(y.shape))]


_reg("prod", _prod)
_reg("cumprod", lambda a, t, o, c: [None if t[0] is None else
                                    _cumprod_t(a[0], t[0], a[1], a[2], o[0])])


def _cumprod_t(x, t, dim, dtype, y):
    # y_i = prod_{j<=i} x_j, so dy_i = sum_{j<=i} t_j prod_{k<=i, k!=j} x_k. Without zeros that
    # is y_i * cumsum(t / x)_i; with zeros, the (n, n) form: cumprod of x with x_j set to 1.
    if dtype is not None:
        x, t = x.to(dtype), t.to(dtype)
    if x.dim() == 0:
        return t
    if not bool((x == 0).any()):
        return y * dc.cumsum(t / x, dim)
    d = dim % x.dim()
    n = x.shape[d]
    xm, tm = x.transpose(d, -1), t.transpose(d, -1)              # (..., n)
    eye = dc.eye(n, dtype=dc.bool)                           # [j, i]
    xs = dc.where(eye, dc.ones_like(xm).unsqueeze(-2), xm.unsqueeze(-2).expand(
        *xm.shape[:-1], n, n))                               # (..., j, i): x with x_j = 1
    m = dc.cumprod(xs, -1) * dc.ones(n, n, dtype=dc.bool).triu().to(x.dtype)  # j <= i
    return (tm.unsqueeze(-1) * m).sum(-2).transpose(d, -1)


def _logcumsumexp(args, tans, outs, call):
    # dy_i = sum_{j<=i} t_j exp(x_j - y_i): an (n, n) weight matrix, every exponent <= 0
    x, dim = args
    t, y = tans[0], outs[0]
    if t is None:
        return [None]
    if x.dim() == 0:
        return [t]
    d = dim % x.dim()
    n = x.shape[d]
    xm, tm, ym = x.transpose(d, -1), t.transpose(d, -1), y.transpose(d, -1)
    keep = dc.ones(n, n, dtype=dc.bool).triu()              # [j, i]: j <= i
    e = xm.unsqueeze(-1) - ym.unsqueeze(-2)                  # (..., j, i)
    e = dc.where(keep, e, dc.full_like(e, float("-inf")))
    w = dc.nan_to_num(dc.exp(e), nan=0.0)
    return [(tm.unsqueeze(-1) * w).sum(-2).transpose(d, -1)]


_reg("logcumsumexp", _logcumsumexp)


# ---- softmax --------------------------------------------------------------------------------

def _softmax(args, tans, outs, call):
    x, dim, _ = args
    t, y = tans[0], outs[0]
    if t is None:
        return [None]
    t = t.to(y.dtype)
    return [y * (t - (t * y).sum(dim, keepdim=True))]


def _log_softmax(args, tans, outs, call):
    x, dim, _ = args
    t, y = tans[0], outs[0]
    if t is None:
        return [None]
    t = t.to(y.dtype)
    return [t - (t * dc.exp(y)).sum(dim, keepdim=True)]


_reg("softmax", _softmax)
_reg("log_softmax", _log_softmax)


def _sdpa(args, tans, outs, call):
    q, k, v, mask, is_causal, scale, gqa = args[:7]
    dropout_p = args[7] if len(args) > 7 else 0.0
    tq, tk, tv, tm = tans[0], tans[1], tans[2], tans[3]
    if all(t is None for t in (tq, tk, tv, tm)):
        return [None]
    if dropout_p:
        raise NotImplementedError("jvp: no forward rule for '_sdpa_flash' with dropout_p > 0")
    if gqa and k.shape[-3] != q.shape[-3]:
        rep = q.shape[-3] // k.shape[-3]
        k, v = (dc.repeat_interleave(a, rep, -3) for a in (k, v))
        tk, tv = (None if a is None else dc.repeat_interleave(a, rep, -3) for a in (tk, tv))
    s = (q @ k.transpose(-2, -1)) * scale
    if is_causal:
        L, S = q.shape[-2], k.shape[-2]
        keep = dc.ones(L, S, dtype=dc.bool).tril()
        s = s.masked_fill(~keep, float("-inf"))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == dc.bool else s + mask
    p = dc.softmax(s, -1)
    ts = _add(None if tq is None else (tq @ k.transpose(-2, -1)) * scale,
              None if tk is None else (q @ tk.transpose(-2, -1)) * scale,
              None if tm is None or mask.dtype == dc.bool else tm)
    out = None if tv is None else p @ tv
    if ts is not None:
        tp = p * (ts - (ts * p).sum(-1, keepdim=True))
        tp = dc.where(p == 0, dc.zeros_like(tp), tp)
        out = _add(out, tp @ v)
    return [_fit(out, outs[0])]


_reg("_sdpa_flash", _sdpa)


from . import _jvp_rules_nn  # noqa: E402,F401  (registers the nn ops' rules)
