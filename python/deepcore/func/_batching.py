"""Batching rules for deepcore.func.vmap: one entry per op name as the tracer records it.

Note [Batching rules]
vmap interprets a graph traced on one example (see _vmap.py). Every value is carried as a
physical tensor plus its batch dim, which is always 0 (the interpreter moves batch dims to the
front once, at the inputs) or None (the value is the same for every example). A rule gets

    rule(ctx, args, bdims) -> (outputs, out_bdims)

``args`` is the node's argument list in ops.schema order with physical tensors in place of
graph values, ``bdims`` the parallel structure (0 for a batched tensor, None otherwise, a list
for a Tensor[] argument), and ``ctx`` the batch size (``ctx.B``), the node's recorded logical
output shapes (``ctx.out_shapes``), ``ctx.randomness`` and ``ctx.call(args)``, which runs the
node's own op on new arguments. A rule returns physical tensors and 0/None per output. Rules
are only asked when at least one argument is batched, or for a random op; an op without a rule
runs in a loop over the batch (``loop``), and so does a rule for the cases it does not cover
(per-example weights of a convolution, batched indices of index_select, ...). The interpreter
checks every result's logical shape against the trace and casts it to the traced dtype (type
promotion can differ once a 0-d value is 1-d).

The rules lean on three facts: a pointwise op batches by itself once the batched operands'
logical dims are right-aligned (``_align``); an op with ``dim`` arguments batches by shifting
them past the batch dim (``_dims_rule``); and a shape op can reshape to ``[B] + its recorded
logical output shape``, which the trace already knows.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

from .. import _C
from .._C import Tensor

Rule = Callable[..., tuple]
RULES: Dict[str, Rule] = {}


class VmapError(ValueError):
    """An op that cannot run under vmap as called: an in-place write of batched values into an
    unbatched tensor, .backward() or .grad on batched values."""


def _is_t(x) -> bool:
    return isinstance(x, Tensor)


def _batched(b) -> bool:
    if isinstance(b, list):
        return any(x is not None for x in b)
    return b is not None


def _any_batched(bdims) -> bool:
    return any(_batched(b) for b in bdims)


def _lrank(t: Tensor, b) -> int:
    """The logical rank of a physical tensor."""
    return t.dim() - (0 if b is None else 1)


def _ndim(d: int, rank: int, op: str) -> int:
    """A logical dim made non-negative, checked like the op would."""
    r = max(rank, 1)
    if not -r <= d < r:
        raise IndexError(f"[{op}] dim {d} out of range for a tensor of rank {rank} (under vmap)")
    return d % r


def _pad_to(t: Tensor, b, rank: int) -> Tensor:
    """A batched tensor with size-1 logical dims put in front, so its logical rank is ``rank``
    and broadcasting against unbatched operands right-aligns the logical dims."""
    for _ in range(rank - _lrank(t, b)):
        t = t.unsqueeze(1)
    return t


def _materialize(t: Tensor, b, B: int) -> Tensor:
    """``t`` as a batched tensor (expanded, not copied, when it was not)."""
    if b is not None:
        return t
    return t.unsqueeze(0).expand([B] + list(t.shape))


def _align(args: list, bdims: list, positions: Optional[Sequence[int]] = None) -> list:
    """The arguments with every batched tensor (at ``positions``, default all) padded to the
    largest logical rank among the tensor arguments."""
    pos = range(len(args)) if positions is None else positions
    ranks = [_lrank(args[p], bdims[p]) for p in pos if _is_t(args[p])]
    if not ranks:
        return list(args)
    rank = max(ranks)
    out = list(args)
    for p in pos:
        if _is_t(args[p]) and bdims[p] is not None:
            out[p] = _pad_to(args[p], bdims[p], rank)
    return out


def _check_inplace(ctx, args, bdims) -> None:
    if bdims[0] is None and _any_batched(bdims):
        raise VmapError(f"vmap: in-place op '{ctx.name}' writes into a tensor that is the same "
                        "for every example (not batched), but another argument is batched; the "
                        "result would need more elements than the tensor written into")


# ---- pointwise -------------------------------------------------------------------------------

def _pointwise(ctx, args, bdims):
    if ctx.name.endswith("_"):
        _check_inplace(ctx, args, bdims)
    if ctx.name == "masked_fill" and bdims[2] is not None:  # a per-example fill value
        x, mask, value = _align(args, bdims)
        return [_C.where(mask, value, x)], [0]
    outs = ctx.call(_align(args, bdims))
    return outs, [0] * len(outs)


_UNARY = """neg abs exp expm1 exp2 log log2 log10 log1p sqrt rsqrt sin cos tan asin acos atan
sinh cosh tanh asinh acosh atanh sigmoid relu silu erf erfc erfinv lgamma digamma sinc i0
reciprocal square sign floor ceil round trunc mish leaky_relu""".split()
_POINTWISE = _UNARY + [n + "_" for n in _UNARY] + """polygamma special_i1 logit gelu softplus
elu selu celu hardtanh relu6 hardsigmoid hardswish logsigmoid clamp clamp_ clamp_tensor _nan_to_num
softsign tanhshrink _threshold _hardshrink _softshrink logical_not isnan isinf isfinite
add sub mul div pow add_ sub_ mul_ div_ pow_ floor_divide remainder fmod maximum minimum atan2
hypot copysign logaddexp logaddexp2 xlogy nextafter eq ne lt le gt ge logical_and logical_or
logical_xor bitwise_and bitwise_or bitwise_xor where masked_fill masked_fill_ copy_ fill_ zero_
_to_dtype contiguous clone detach alias _set_requires_grad tril triu one_hot""".split()
for _n in _POINTWISE:
    RULES[_n] = _pointwise


# ---- dims shifted past the batch dim ---------------------------------------------------------

def _shift_one(d, rank, op):
    return _ndim(d, rank, op) + 1


def _dims_rule(pos: int, all_if_empty: bool = True) -> Rule:
    """An op of one batched tensor (argument 0) whose argument ``pos`` is a dim, a list of dims
    or None (None, and with ``all_if_empty`` an empty list, mean every dim)."""

    def rule(ctx, args, bdims):
        if _any_batched(bdims[1:]):
            return _loop(ctx, args, bdims)
        x = args[0]
        rank = _lrank(x, 0)
        d = args[pos]
        a = list(args)
        if d is None or (isinstance(d, (list, tuple)) and not d and all_if_empty):
            if rank == 0:  # reducing a logical scalar over "all" dims: per example
                return _loop(ctx, args, bdims)
            if d is None and ctx.name in ("argmax", "argmin"):
                flat = x.reshape([ctx.B, -1])
                a[0], a[pos] = flat, 1
                outs = ctx.call(a)
                return [o.reshape([ctx.B] + list(s)) for o, s in zip(outs, ctx.out_shapes)], \
                    [0] * len(outs)
            a[pos] = list(range(1, rank + 1))
        elif isinstance(d, (list, tuple)):
            a[pos] = [_shift_one(i, rank, ctx.name) for i in d]
        else:
            a[pos] = _shift_one(d, rank, ctx.name)
        outs = ctx.call(a)
        return outs, [0] * len(outs)

    return rule


# op -> the position of its dim argument
for _n, _p in {"sum": 1, "mean": 1, "prod": 1, "amax": 1, "amin": 1, "_max_dim": 1,
               "_min_dim": 1, "argmax": 1, "argmin": 1, "_var": 1, "_std": 1, "logsumexp": 1,
               "_norm": 2, "all": 1, "any": 1, "count_nonzero": 1, "cumsum": 1, "cumprod": 1,
               "logcumsumexp": 1, "softmax": 1, "log_softmax": 1, "_argsort": 1, "select": 1,
               "_slice": 1, "narrow": 1, "split": 2, "chunk": 2, "unbind": 1}.items():
    RULES[_n] = _dims_rule(_p)
RULES["flip"] = _dims_rule(1, all_if_empty=False)  # flip(x, []) flips nothing


def _max_all(ctx, args, bdims):
    flat = args[0].reshape([ctx.B, -1])
    fn = _C._max_dim if ctx.name == "_max_all" else _C._min_dim
    return [fn(flat, 1, False)[0]], [0]


RULES["_max_all"] = RULES["_min_all"] = _max_all


def _transpose(ctx, args, bdims):
    x = args[0]
    rank = _lrank(x, 0)
    return [x.transpose(_shift_one(args[1], rank, ctx.name),
                        _shift_one(args[2], rank, ctx.name))], [0]


RULES["transpose"] = RULES["swapaxes"] = _transpose


def _permute(ctx, args, bdims):
    x = args[0]
    rank = _lrank(x, 0)
    return [x.permute([0] + [_shift_one(d, rank, ctx.name) for d in args[1]])], [0]


RULES["_permute"] = _permute


def _t(ctx, args, bdims):
    x = args[0]
    rank = _lrank(x, 0)
    if ctx.name == "t" and rank < 2:
        return [x], [0]
    return [x.permute([0] + list(range(rank, 0, -1)))], [0]


RULES["t"] = RULES["_T"] = _t


def _unsqueeze(ctx, args, bdims):
    x = args[0]
    return [x.unsqueeze(_ndim(args[1], _lrank(x, 0) + 1, ctx.name) + 1)], [0]


RULES["unsqueeze"] = _unsqueeze


def _to_out_shape(ctx, args, bdims):
    """Ops whose result is a reshape of their input to the recorded logical shape."""
    if _any_batched(bdims[1:]):
        return _loop(ctx, args, bdims)
    return [args[0].reshape([ctx.B] + list(ctx.out_shapes[0]))], [0]


for _n in ("_reshape", "squeeze", "flatten", "unflatten"):
    RULES[_n] = _to_out_shape


def _view(ctx, args, bdims):
    """A view when the physical strides allow one (so writes through it reach the base), as
    the example's view did; else a copy (a batch dim moved by in_dims can prevent it)."""
    shape = [ctx.B] + list(ctx.out_shapes[0])
    try:
        return ctx.call([args[0], shape]), [0]
    except (RuntimeError, ValueError):
        return [args[0].reshape(shape)], [0]


RULES["_view"] = _view


def _expand(ctx, args, bdims):
    shape = list(args[1])
    x = _pad_to(args[0], 0, len(shape))
    return [x.expand([ctx.B] + shape)], [0]


def _repeat(ctx, args, bdims):
    shape = list(args[1])
    x = _pad_to(args[0], 0, len(shape))
    return [x.repeat([1] + shape)], [0]


RULES["_expand"] = _expand
RULES["_repeat"] = _repeat


def _cat_stack(ctx, args, bdims):
    ts = [_materialize(t, b, ctx.B) for t, b in zip(args[0], bdims[0])]
    rank = _lrank(ts[0], 0) + (1 if ctx.name == "stack" else 0)
    a = list(args)
    a[0], a[1] = ts, _shift_one(args[1], rank, ctx.name)
    return ctx.call(a), [0]


RULES["cat"] = RULES["stack"] = _cat_stack


def _pad(ctx, args, bdims):
    # constant padding touches the last len(pad)/2 dims only; the other modes check ranks
    if args[2] != "constant" or _any_batched(bdims[1:]):
        return _loop(ctx, args, bdims)
    return ctx.call(args), [0]


RULES["_pad"] = _pad


# ---- indexing ---------------------------------------------------------------------------------

def _gather(ctx, args, bdims):
    """gather / scatter / scatter_add / take_along_dim-like ops: input, dim, index, [src] of one
    rank; everything made batched, the dim shifted."""
    B = ctx.B
    if ctx.name.endswith("_"):
        _check_inplace(ctx, args, bdims)
    a = list(args)
    rank = _lrank(args[0], bdims[0])
    for p in (0, 2, 3):
        if p < len(a) and _is_t(a[p]) and a[p].dim() > 0:
            a[p] = _materialize(a[p], bdims[p], B)
    if len(a) > 3 and _is_t(a[3]) and a[3].dim() == 0 and bdims[3] is not None:
        return _loop(ctx, args, bdims)
    a[1] = _shift_one(args[1], rank, ctx.name)
    return ctx.call(a), [0]


for _n in ("gather", "scatter", "scatter_", "scatter_add", "scatter_add_"):
    RULES[_n] = _gather


def _index_select(ctx, args, bdims):
    if bdims[2] is not None or (len(args) > 3 and _any_batched(bdims[3:])):
        return _loop(ctx, args, bdims)
    a = list(args)
    a[1] = _shift_one(args[1], _lrank(args[0], 0), ctx.name)
    return ctx.call(a), [0]


RULES["index_select"] = _index_select


def _index(ctx, args, bdims):
    """index(input, indices): advanced indexing of a batched input by unbatched integer
    indices; the batch dim is a full slice in front."""
    idx = args[1]
    if bdims[0] is None or _batched(bdims[1]) or any(
            t is not None and (t.dtype.is_floating_point or t.dtype == _C.dtype.bool)
            for t in idx):
        return _loop(ctx, args, bdims)
    out = ctx.call([args[0], [None] + list(idx)])[0]
    used = [k for k, t in enumerate(idx) if t is not None]
    if used and used[-1] - used[0] + 1 != len(used):
        # separated advanced indices put their dims first, before the batch dim
        k = max(t.dim() for t in idx if t is not None)
        order = list(range(out.dim()))
        order.insert(0, order.pop(k))
        out = out.permute(order)
    return [out], [0]


RULES["index"] = _index


def _index_put(ctx, args, bdims):
    """index_put(input, indices, values, accumulate) with unbatched integer indices next to
    each other: the batch dim is a full slice in front, values padded to the indexed rank."""
    x, idx, values = args[0], args[1], args[2]
    used = [k for k, t in enumerate(idx) if t is not None]
    if _batched(bdims[1]) or not used or used[-1] - used[0] + 1 != len(used) or any(
            t is not None and (t.dtype.is_floating_point or t.dtype == _C.dtype.bool)
            for t in idx):
        return _loop(ctx, args, bdims)
    if ctx.name.endswith("_"):
        _check_inplace(ctx, args, bdims)
    else:
        x = _materialize(x, bdims[0], ctx.B).contiguous()
    if _is_t(values) and bdims[2] is not None:
        rank = _lrank(args[0], bdims[0]) - len(used) + max(idx[k].dim() for k in used)
        values = _pad_to(values, 0, rank)
    return ctx.call([x, [None] + list(idx), values] + list(args[3:])), [0]


RULES["index_put"] = RULES["index_put_"] = _index_put


def _index_add(ctx, args, bdims):
    """index_add(input, dim, index, source, alpha) with an unbatched index."""
    if bdims[2] is not None:
        return _loop(ctx, args, bdims)
    if ctx.name.endswith("_"):
        _check_inplace(ctx, args, bdims)
    a = list(args)
    a[0] = _materialize(args[0], bdims[0], ctx.B)
    a[3] = _materialize(args[3], bdims[3], ctx.B)
    a[1] = _shift_one(args[1], _lrank(args[0], bdims[0]), ctx.name)
    return ctx.call(a), [0]


RULES["index_add"] = RULES["index_add_"] = _index_add


def _take_along_dim(ctx, args, bdims):
    if args[2] is None:  # over the flattened input
        return _loop(ctx, args, bdims)
    rank = _lrank(args[0], bdims[0])
    a = _align(args, bdims, (0, 1))
    a[0] = _materialize(a[0], bdims[0], ctx.B)
    a[1] = _materialize(a[1], bdims[1], ctx.B)
    a[2] = _shift_one(args[2], rank, ctx.name)
    return ctx.call(a), [0]


RULES["take_along_dim"] = _take_along_dim


def _embedding(ctx, args, bdims):
    if bdims[0] is not None:  # per-example tables
        return _loop(ctx, args, bdims)
    return ctx.call(args), [0]


RULES["embedding"] = _embedding


# ---- linear algebra ---------------------------------------------------------------------------

def _matmul_phys(a: Tensor, ab, b: Tensor, bb) -> Tensor:
    """Logical ``a @ b`` on physical tensors with batch dims ab / bb (0 or None)."""
    ra, rb = _lrank(a, ab), _lrank(b, bb)
    if ra == 1 and rb == 1:
        return (_pad_to(a, ab, 1) * _pad_to(b, bb, 1)).sum(-1)
    squeeze = []
    if ra == 1:
        a, ra = a.unsqueeze(-2), 2
        squeeze.append(-2)
    if rb == 1:
        b, rb = b.unsqueeze(-1), 2
        squeeze.append(-1)
    r = max(ra, rb)
    if ab is not None:
        a = _pad_to(a, ab, r)
    if bb is not None:
        b = _pad_to(b, bb, r)
    out = a.matmul(b)
    for d in squeeze:
        out = out.squeeze(d)
    return out


def _matmul(ctx, args, bdims):
    return [_matmul_phys(args[0], bdims[0], args[1], bdims[1])], [0]


for _n in ("matmul", "mm", "bmm", "mv", "dot"):
    RULES[_n] = _matmul


def _outer(ctx, args, bdims):
    a, b = args[0].unsqueeze(-1), args[1]
    a = _pad_to(a, bdims[0], 2) if bdims[0] is not None else a
    b = _pad_to(b, bdims[1], 2) if bdims[1] is not None else b
    return [a * b], [0]


RULES["outer"] = _outer


def _addmm(ctx, args, bdims):
    inp, m1, m2 = args[0], args[1], args[2]
    beta, alpha = args[3], args[4]
    prod = _matmul_phys(m1, bdims[1], m2, bdims[2])
    pb = 0 if (bdims[1] is not None or bdims[2] is not None) else None
    if alpha != 1:
        prod = prod * alpha
    if beta == 0:
        return [_materialize(prod, pb, ctx.B)], [0]
    base = inp * beta if beta != 1 else inp
    x, y = _align([base, prod], [bdims[0], pb])
    return [x + y], [0]


RULES["addmm"] = _addmm


def _linear(ctx, args, bdims):
    x, w, bias = args[0], args[1], args[2]
    if bdims[1] is None and (bias is None or bdims[2] is None):
        return ctx.call(args), [0]  # linear maps the last dim, leading dims are free
    out = _matmul_phys(x, bdims[0], w.transpose(-1, -2), bdims[1])
    if bias is not None:
        out, bias = _align([out, bias], [0, bdims[2]])
        out = out + bias
    return [out], [0]


RULES["linear"] = _linear


# ---- normalization, convolution, pooling -------------------------------------------------------

def _last_dims(ctx, args, bdims):
    """Ops over the trailing dims with unbatched parameters (layer_norm, rms_norm)."""
    if _any_batched(bdims[1:]):
        return _loop(ctx, args, bdims)
    return ctx.call(args), [0]


RULES["layer_norm"] = RULES["rms_norm"] = _last_dims


def _fold_rule(spatial: int) -> Rule:
    """conv / pool ops on (N, C, *spatial) or unbatched (C, *spatial) inputs, with unbatched
    weights: the batch dim folds into N (or serves as N)."""

    def rule(ctx, args, bdims):
        if _any_batched(bdims[1:]):
            return _loop(ctx, args, bdims)
        x = args[0]
        if _lrank(x, 0) == spatial + 1:
            return ctx.call(args), [0] * len(ctx.out_shapes)
        a = list(args)
        a[0] = x.reshape([-1] + list(x.shape[2:]))
        outs = ctx.call(a)
        return [o.reshape([ctx.B] + list(s)) for o, s in zip(outs, ctx.out_shapes)], \
            [0] * len(outs)

    return rule


for _n, _k in {"conv1d": 1, "conv2d": 2, "conv_transpose1d": 1, "conv_transpose2d": 2,
               "_max_pool1d": 1, "_max_pool2d": 2, "avg_pool1d": 1, "avg_pool2d": 2,
               "_avg_pool1d": 1, "_avg_pool2d": 2, "_adaptive_avg_pool2d": 2,
               "_adaptive_max_pool2d": 2}.items():
    RULES[_n] = _fold_rule(_k)


def _fold_n(ctx, args, bdims, tensor_params):
    """Per-sample normalizations of (N, C, *): the batch folds into N."""
    if any(bdims[p] is not None for p in tensor_params) or _lrank(args[0], 0) < 2:
        return _loop(ctx, args, bdims)
    a = list(args)
    x = args[0]
    a[0] = x.reshape([-1] + list(x.shape[2:]))
    return [ctx.call(a)[0].reshape(list(x.shape))], [0]


def _batch_norm(ctx, args, bdims):
    """_batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps):
    in eval mode the batch folds into N; in training mode without running statistics each
    example's channels become channels of their own (statistics over N and space, per
    example), with the affine parameters repeated."""
    x, rm, rv, w, b, training = args[:6]
    if any(bdims[p] is not None for p in (1, 2, 3, 4)) or _lrank(x, 0) < 2:
        return _loop(ctx, args, bdims)
    if not training:
        return _fold_n(ctx, args, bdims, (1, 2, 3, 4))
    if rm is not None or rv is not None:
        return _loop(ctx, args, bdims)  # running statistics: one update per example
    B, N, C = x.shape[0], x.shape[1], x.shape[2]
    rest = list(x.shape[3:])
    xt = x.transpose(0, 1).reshape([N, B * C] + rest)
    a = list(args)
    a[0] = xt
    a[3] = w.repeat([B]) if w is not None else None
    a[4] = b.repeat([B]) if b is not None else None
    out = ctx.call(a)[0].reshape([N, B, C] + rest).transpose(0, 1)
    return [out], [0]


RULES["_batch_norm"] = _batch_norm
RULES["_group_norm"] = lambda ctx, args, bdims: _fold_n(ctx, args, bdims, (2, 3))


def _instance_norm(ctx, args, bdims):
    if args[1] is not None or args[2] is not None or not args[5]:
        return _loop(ctx, args, bdims)
    return _fold_n(ctx, args, bdims, (3, 4))


RULES["_instance_norm"] = _instance_norm


def _sdpa(ctx, args, bdims):
    """_sdpa_flash(q, k, v, mask, ...): attention maps the last two dims, so with every
    operand batched the batch folds into the leading dim."""
    B = ctx.B
    q, k, v, mask = (_materialize(args[p], bdims[p], B) if _is_t(args[p]) else args[p]
                     for p in range(4))
    if _lrank(q, 0) < 3 or _lrank(k, 0) != _lrank(q, 0) or \
            (mask is not None and _lrank(mask, 0) != _lrank(q, 0)):
        return _loop(ctx, args, bdims)

    def fold(t):
        return t.reshape([-1] + list(t.shape[2:]))

    a = list(args)
    a[0], a[1], a[2] = fold(q), fold(k), fold(v)
    if mask is not None:
        a[3] = fold(mask.expand(list(q.shape[:2]) + list(mask.shape[2:])))
    return [ctx.call(a)[0].reshape([B] + list(ctx.out_shapes[0]))], [0]


RULES["_sdpa_flash"] = _sdpa


# ---- losses: reduction='none', then reduce per example ------------------------------------------

def _reduce_per_example(loss: Tensor, reduction: str, denom=None) -> Tensor:
    dims = list(range(1, loss.dim()))
    total = loss.sum(dims) if dims else loss
    if reduction == "sum":
        return total
    if denom is None:
        n = 1
        for s in loss.shape[1:]:
            n *= s
        return total / n
    return total / denom


def _pointwise_loss(red_pos: int, tensor_pos: Sequence[int]) -> Rule:
    def rule(ctx, args, bdims):
        red = args[red_pos]
        a = _align(args, bdims, tensor_pos)
        a[0] = _materialize(a[0], bdims[0], ctx.B)  # input and target: one shape
        if _is_t(a[1]):
            a[1] = _materialize(a[1], bdims[1], ctx.B)
        if red == "none":
            return ctx.call(a), [0]
        a[red_pos] = "none"
        loss = ctx.call(a)[0]
        if red == "batchmean":
            shape = args[0].shape[1:] if bdims[0] is not None else args[0].shape
            n = shape[0] if len(shape) else 1
            return [_reduce_per_example(loss, "sum") / n], [0]
        return [_reduce_per_example(loss, red)], [0]

    return rule


RULES["_mse_loss"] = _pointwise_loss(2, (0, 1))
RULES["_l1_loss"] = _pointwise_loss(2, (0, 1))
RULES["_smooth_l1_loss"] = _pointwise_loss(2, (0, 1))
RULES["_huber_loss"] = _pointwise_loss(2, (0, 1))
RULES["_kl_div"] = _pointwise_loss(2, (0, 1))
RULES["_binary_cross_entropy"] = _pointwise_loss(3, (0, 1, 2))
RULES["_binary_cross_entropy_with_logits"] = _pointwise_loss(3, (0, 1, 2, 4))


def _class_loss(ctx, args, bdims):
    """_nll_loss(input, target, weight, ignore_index, reduction) and _cross_entropy(..., 
    label_smoothing): input (N, C, *) or (C,), target (N, *) or () of class indices (or, for
    cross_entropy, probabilities of the input's shape). Examples fold into N."""
    x, tgt, w, ignore, red = args[:5]
    smoothing = args[5] if len(args) > 5 else 0.0
    if bdims[2] is not None or (w is not None and red == "mean" and smoothing):
        return _loop(ctx, args, bdims)
    B = ctx.B
    x = _materialize(x, bdims[0], B)
    probs = tgt.dtype.is_floating_point
    tgt = _materialize(tgt, bdims[1], B)
    lr = _lrank(x, 0)
    if lr >= 2:  # (B, N, C, *) -> (B*N, C, *)
        xf = x.reshape([-1] + list(x.shape[2:]))
        tf = tgt.reshape([-1] + list(tgt.shape[2:]))
    else:        # (B, C): the batch serves as N
        xf, tf = x, tgt
    a = list(args)
    a[0], a[1], a[4] = xf, tf, "none"
    loss = ctx.call(a)[0]
    per = [B] + list(x.shape[1:2]) + list(x.shape[3:]) if lr >= 2 else [B]
    loss = loss.reshape(per)
    if red == "none":
        return [loss.reshape([B] + list(ctx.out_shapes[0]))], [0]
    if red == "sum":
        return [_reduce_per_example(loss, "sum")], [0]
    if probs:
        return [_reduce_per_example(loss, "mean")], [0]
    t = tgt.reshape(per)
    keep = t.ne(ignore)
    if w is None:
        denom = keep.to(loss.dtype).sum(list(range(1, t.dim()))) if t.dim() > 1 else \
            keep.to(loss.dtype)
    else:
        safe = t.masked_fill(keep.logical_not(), 0)
        wt = w.index_select(0, safe.reshape([-1])).reshape(per) * keep.to(w.dtype)
        denom = wt.sum(list(range(1, t.dim()))) if t.dim() > 1 else wt
    return [_reduce_per_example(loss, "sum", None) / denom], [0]


RULES["_nll_loss"] = RULES["_cross_entropy"] = _class_loss


# ---- random ops ------------------------------------------------------------------------------

RANDOM = {"_rand", "_randn", "_randint", "_randperm", "_multinomial", "bernoulli",
          "bernoulli_", "uniform_", "normal_", "dropout", "dropout_"}


def is_random(name: str, args: list) -> bool:
    if name in ("dropout", "dropout_"):
        return bool(args[2]) and args[1] > 0
    if name == "_sdpa_flash":
        return args[7] > 0
    return name in RANDOM


def _factory_random(ctx, args, bdims):
    """_rand/_randn(size, ...) and _randint(low, high, size, ...): 'different' draws all
    examples at once; _randperm draws one permutation per example."""
    if ctx.randomness == "same":
        return ctx.call(args), [None]
    a = list(args)
    if ctx.name == "_randperm":
        return [_C.stack([ctx.call(args)[0] for _ in range(ctx.B)], 0)], [0]
    p = 2 if ctx.name == "_randint" else 0
    a[p] = [ctx.B] + list(args[p])
    return ctx.call(a), [0]


for _n in ("_rand", "_randn", "_randint", "_randperm"):
    RULES[_n] = _factory_random


def _random_like(ctx, args, bdims):
    """Ops drawing one number per element of their first argument (bernoulli, dropout, and the
    in-place fills)."""
    x, b = args[0], bdims[0]
    inplace = ctx.name.endswith("_")
    if ctx.randomness == "same":
        if b is None:
            return ctx.call(args), [None]
        if ctx.name == "bernoulli":
            u = _C._rand(list(x.shape[1:]), x.dtype, False)
            return [u.lt(x).to(x.dtype)], [0]
        if ctx.name == "dropout":
            ones = _C._full(list(x.shape[1:]), 1.0, x.dtype, False)
            return [x * ctx.call([ones] + list(args[1:]))[0]], [0]
        if inplace:  # draw one logical sample, write it into every example
            tmp = _C._empty(list(x.shape[1:]), x.dtype, False)
            ctx.call([tmp] + list(args[1:]))
            return [x.copy_(tmp)], [0]
        return _loop(ctx, args, bdims)
    if b is None:
        if inplace:
            raise VmapError(f"vmap: randomness='different' asks '{ctx.name}' for different "
                            "numbers per example, but it writes into a tensor that is the same "
                            "for every example (not batched)")
        args = [_materialize(x, None, ctx.B).contiguous()] + list(args[1:])
    return ctx.call(args), [0]


for _n in ("bernoulli", "bernoulli_", "uniform_", "normal_", "dropout", "dropout_"):
    RULES[_n] = _random_like


# ---- the fallback --------------------------------------------------------------------------

def _loop(ctx, args, bdims):
    """The op run once per example and the results stacked (what an op without a rule gets)."""
    B = ctx.B
    if ctx.name.endswith("_"):
        _check_inplace(ctx, args, bdims)
    per: List[list] = []
    for i in range(B):
        a = []
        for x, b in zip(args, bdims):
            if isinstance(x, list) and isinstance(b, list):
                a.append([t.select(0, i) if bb is not None else t for t, bb in zip(x, b)])
            else:
                a.append(x.select(0, i) if b is not None else x)
        per.append(ctx.call(a))
    if ctx.name.endswith("_") and bdims and bdims[0] is not None:
        return [args[0]], [0]
    outs = [None if per[0][k] is None else _C.stack([p[k] for p in per], 0)
            for k in range(len(per[0]))]
    return outs, [None if o is None else 0 for o in outs]


loop = _loop
