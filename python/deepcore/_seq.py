"""Ops of sequence models and Transformers composed in Python from differentiable C++ ops:
einsum, baddbmm/addbmm/addmv/addr, repeat_interleave, diagonal/diag_embed,
tril_indices/triu_indices, and multinomial's argument handling.

Note [einsum as batched matmuls]
einsum first takes the diagonal of each labels repeated on one operand and sums out the labels
no other operand and no output needs. Operands are then contracted left to right: for a pair,
each label is a batch label (on both, still needed), a contracted label (on both, no longer
needed), or belongs to one side. Both sides are permuted and reshaped to
(batch, left, contracted) and (batch, contracted, right), and one bmm does the work, so a
contraction runs at GEMM speed and its gradient is bmm's. Size-1 dims broadcast against any
size, as in torch.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import _C
from ._C import Tensor
from .amp.autocast_mode import _cast_inputs
from ._creation import _dt
from ._tensor import _on_device, install_methods, tensor

__all__ = ["multinomial", "einsum", "baddbmm", "addbmm", "addmv", "addr", "repeat_interleave",
           "diagonal", "diag_embed", "tril_indices", "triu_indices"]

_I64 = _C.dtype.int64


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None):
    """num_samples category indices per row of input (1-D or 2-D non-negative weights), drawn
    from deepcore's random stream (reproducible under deepcore.manual_seed), or from
    ``generator``'s own stream when one is given (like rand and randn: a seeded generator
    repeats its draws whatever the global stream has done)."""
    if generator is None:
        return _C._multinomial(input, int(num_samples), bool(replacement))
    from .utils._generator import numpy_rng
    rng = numpy_rng(generator)
    if not isinstance(input, _C.Tensor) or input.dim() not in (1, 2):
        raise ValueError("[multinomial] expected a 1-D or 2-D tensor of weights, got "
                         f"{tuple(getattr(input, 'shape', ()))}")
    w = input.detach().to(_C.dtype.float64).numpy().reshape(-1, input.shape[-1])
    n = w.shape[1]
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"[multinomial] weights of shape {tuple(input.shape)} must be finite "
                         "and non-negative")
    sums = w.sum(axis=1)
    if (sums <= 0).any():
        raise ValueError(f"[multinomial] a row of the weights {tuple(input.shape)} sums to 0")
    num_samples = int(num_samples)
    if num_samples <= 0 or (not replacement and num_samples > int((w > 0).sum(1).min())):
        raise ValueError(f"[multinomial] cannot draw {num_samples} samples "
                         f"{'with' if replacement else 'without'} replacement from "
                         f"{n} categories (weights {tuple(input.shape)})")
    out = np.stack([rng.choice(n, size=num_samples, replace=bool(replacement), p=row / s)
                    for row, s in zip(w, sums)]).astype(np.int64)
    return tensor(out if input.dim() == 2 else out[0])


# ---- einsum -----------------------------------------------------------------------------------

def _parse_term(term, ndim, n_ell, k, equation):
    """Labels of one operand's subscripts: letters, and ('...', i) for ellipsis dim i of the
    n_ell-wide ellipsis block (right-aligned, as broadcasting is)."""
    if term.count("...") > 1:
        raise ValueError(f"[einsum] operand {k} has more than one ellipsis in {equation!r}")
    head, ell, tail = term.partition("...")
    for c in head + tail:
        if not c.isalpha():
            raise ValueError(f"[einsum] invalid subscript {c!r} in {equation!r}: subscripts "
                             f"must be letters in [a-zA-Z]")
    if ell:
        e = ndim - len(head) - len(tail)
        if e < 0:
            raise ValueError(f"[einsum] operand {k} has {ndim} dims, fewer than the "
                             f"{len(head) + len(tail)} subscripts of {term!r} in {equation!r}")
        return list(head) + [("...", n_ell - e + i) for i in range(e)] + list(tail), e
    if len(term) != ndim:
        raise ValueError(f"[einsum] operand {k} has {ndim} dims but {len(term)} subscripts "
                         f"({term!r}) in {equation!r}")
    return list(term), 0


def _take_diagonals(x, labels):
    """Repeated labels on one operand: the diagonal over them, the label kept once (last)."""
    labels = list(labels)
    while True:
        seen = {}
        dup = None
        for i, lab in enumerate(labels):
            if lab in seen:
                dup = (seen[lab], i)
                break
            seen[lab] = i
        if dup is None:
            return x, labels
        p, q = dup
        if x.shape[p] != x.shape[q]:
            raise ValueError(f"[einsum] subscript {labels[p]!r} is repeated on an operand of "
                             f"shape {tuple(x.shape)} with different sizes {x.shape[p]} and "
                             f"{x.shape[q]}")
        lab = labels[p]
        x = diagonal(x, 0, p, q)
        labels = [lb for i, lb in enumerate(labels) if i not in (p, q)] + [lab]


def _sum(x, dims, keepdim=False):
    """Integer sums are int64, as in torch's einsum (which sums out labels with sum)."""
    return _C.sum(x, dims, keepdim)


def _sum_labels(x, labels, drop):
    dims = [i for i, lab in enumerate(labels) if lab in drop]
    if not dims:
        return x, labels
    return _sum(x, dims), [lab for lab in labels if lab not in drop]


def _contract(a, la, b, lb, keep):
    """The pair contraction of Note [einsum as batched matmuls]; returns (result, labels)."""
    # A label on one side only and needed by nothing later is summed out first.
    a, la = _sum_labels(a, la, {lab for lab in la if lab not in lb and lab not in keep})
    b, lb = _sum_labels(b, lb, {lab for lab in lb if lab not in la and lab not in keep})
    sa = dict(zip(la, a.shape))
    sb = dict(zip(lb, b.shape))
    batch = [lab for lab in la if lab in sb and lab in keep]
    contracted = [lab for lab in la if lab in sb and lab not in keep]
    left = [lab for lab in la if lab not in sb]
    right = [lab for lab in lb if lab not in sa]
    # A contracted label of size 1 on one side: sum the other side over it first.
    for lab in contracted:
        if sa[lab] == 1 and sb[lab] != 1:
            b = _sum(b, [lb.index(lab)], True)
            sb[lab] = 1
        elif sb[lab] == 1 and sa[lab] != 1:
            a = _sum(a, [la.index(lab)], True)
            sa[lab] = 1
    bsizes = [max(sa[lab], sb[lab]) for lab in batch]
    lsizes = [sa[lab] for lab in left]
    rsizes = [sb[lab] for lab in right]
    csizes = [sa[lab] for lab in contracted]
    B, L, R, C = (math.prod(s) for s in (bsizes, lsizes, rsizes, csizes))
    a = _C._permute(a, [la.index(lab) for lab in batch + left + contracted])
    b = _C._permute(b, [lb.index(lab) for lab in batch + contracted + right])
    # Broadcast batch labels of size 1.
    a = _C._expand(a, bsizes + lsizes + csizes)
    b = _C._expand(b, bsizes + csizes + rsizes)
    if a.dtype != b.dtype:  # an integer side already summed to int64
        dt = _C.result_type(a, b)
        a, b = a.to(dt), b.to(dt)
    out = _C.bmm(_C._reshape(a, [B, L, C]), _C._reshape(b, [B, C, R]))
    return _C._reshape(out, bsizes + lsizes + rsizes), batch + left + right


def einsum(equation, *operands):
    """torch.einsum(equation, *operands) (or a list of operands): implicit or explicit output,
    ellipsis, repeated subscripts (diagonals, traces), any number of operands."""
    if not isinstance(equation, str):
        raise TypeError(f"[einsum] expected an equation string first, got "
                        f"{type(equation).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for k, op in enumerate(operands):
        if not isinstance(op, Tensor):
            raise TypeError(f"[einsum] operand {k} must be a Tensor, got {type(op).__name__}")
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"[einsum] {equation!r} has {len(terms)} operand subscripts but "
                         f"{len(operands)} operands were given")
    n_ell = 0
    for term, op in zip(terms, operands):
        if "..." in term:
            n_ell = max(n_ell, op.dim() - len(term.replace("...", "")))
    labels = []
    for k, (term, op) in enumerate(zip(terms, operands)):
        labels.append(_parse_term(term, op.dim(), n_ell, k, equation)[0])
    counts = {}
    for ls in labels:
        for lab in set(ls):
            counts[lab] = counts.get(lab, 0) + 1
    ell_labels = [("...", i) for i in range(n_ell)]
    if arrow:
        if rhs.count("...") > 1:
            raise ValueError(f"[einsum] the output of {equation!r} has more than one ellipsis")
        head, ell, tail = rhs.partition("...")
        for c in head + tail:
            if not c.isalpha():
                raise ValueError(f"[einsum] invalid output subscript {c!r} in {equation!r}")
        # Without '...' in the output, ellipsis dims are summed (as in torch).
        out = list(head) + ([lab for lab in ell_labels if lab in counts] if ell else []) + \
            list(tail)
        for lab in out:
            if lab not in counts:
                raise ValueError(f"[einsum] output subscript {lab!r} of {equation!r} does not "
                                 f"appear in the inputs")
        if len(set(out)) != len(out):
            raise ValueError(f"[einsum] output subscripts of {equation!r} repeat a letter")
    else:
        singles = sorted(lab for lab, n in counts.items()
                         if isinstance(lab, str) and n == 1
                         and sum(ls.count(lab) for ls in labels) == 1)
        out = [lab for lab in ell_labels if lab in counts] + singles
    # Sizes agree (or are 1) across operands.
    sizes = {}
    for k, (ls, op) in enumerate(zip(labels, operands)):
        for lab, n in zip(ls, op.shape):
            m = sizes.get(lab)
            if m is not None and m != n and m != 1 and n != 1:
                name = "..." if isinstance(lab, tuple) else lab
                raise ValueError(f"[einsum] subscript {name!r} has size {n} in operand {k} "
                                 f"(shape {tuple(op.shape)}) but size {m} before, in "
                                 f"{equation!r}")
            sizes[lab] = n if m is None or m == 1 else m
    xs = []
    for k, (op, ls) in enumerate(zip(operands, labels)):
        x, ls = _take_diagonals(op, ls)
        others = {lab for j, o in enumerate(labels) if j != k for lab in o}
        x, ls = _sum_labels(x, ls, {lab for lab in ls if lab not in out and lab not in others})
        xs.append((x, ls))
    x, ls = xs[0]
    for t in range(1, len(xs)):
        keep = set(out)
        for _, later in xs[t + 1:]:
            keep.update(later)
        x, ls = _contract(x, ls, xs[t][0], xs[t][1], keep)
    # Labels still present but not in the output (one operand), then the output order.
    x, ls = _sum_labels(x, ls, {lab for lab in ls if lab not in out})
    x = _C._permute(x, [ls.index(lab) for lab in out])
    return x


# ---- matmul with accumulation -----------------------------------------------------------------

def _accumulate(name, input, product, beta, alpha):
    """beta * input + alpha * product; input is ignored when beta == 0 (NaN in it too)."""
    if product.dtype != _C.dtype.bool and any(isinstance(s, bool) for s in (beta, alpha)):
        raise TypeError(f"[{name}] boolean beta and alpha are only supported for bool results, "
                        f"got a {product.dtype.name} product of shape {tuple(product.shape)}")
    if alpha != 1:
        product = _C.mul(product, alpha)
    if beta == 0:
        shape = list(product.shape)
        _C._expand(input, shape)  # it must still broadcast
        if not input.requires_grad:
            return product
        # Its values are ignored (NaN too), but it gets a zero gradient like in torch.
        with _on_device(product.device):
            keep = _C._full(shape, True, _C.dtype.bool, False)
        return _C.where(keep, product, input)
    if beta != 1:
        input = _C.mul(input, beta)
    out = _C.add(input, product)
    if tuple(out.shape) != tuple(product.shape):
        raise ValueError(f"[{name}] input of shape {tuple(input.shape)} does not broadcast to "
                         f"the product's shape {tuple(product.shape)}")
    return out


@_cast_inputs("lower")  # torch's CPU autocast lists it (Note [Precision policies])
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (batch1 @ batch2), batch by batch."""
    return _accumulate("baddbmm", input, _C.bmm(batch1, batch2), beta, alpha)


@_cast_inputs("lower")
def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * sum_b batch1[b] @ batch2[b], as one (n, B*m) @ (B*m, p) GEMM."""
    if batch1.dim() != 3 or batch2.dim() != 3:
        raise ValueError(f"[addbmm] batch1 and batch2 must be 3-D, got shapes "
                         f"{tuple(batch1.shape)} and {tuple(batch2.shape)}")
    bs, n, m = batch1.shape
    bs2, m2, p = batch2.shape
    if bs != bs2 or m != m2:
        raise ValueError(f"[addbmm] shapes {tuple(batch1.shape)} and {tuple(batch2.shape)} "
                         f"cannot be multiplied batch by batch")
    a = _C._reshape(_C._permute(batch1, [1, 0, 2]), [n, bs * m])
    b = _C._reshape(batch2, [bs * m, p])
    return _accumulate("addbmm", input, _C.mm(a, b), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    """beta * input + alpha * (mat @ vec)."""
    return _accumulate("addmv", input, _C.mv(mat, vec), beta, alpha)


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """beta * input + alpha * outer(vec1, vec2)."""
    return _accumulate("addr", input, _C.outer(vec1, vec2), beta, alpha)


# ---- repeat_interleave, diagonal, diag_embed, tril/triu_indices --------------------------------

def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each element (or slice along dim) repeated; repeats is an int or a tensor with one count
    per slice. repeat_interleave(counts) alone gives arange(len(counts)) repeated by counts."""
    if repeats is None:  # repeat_interleave(repeats_tensor)
        counts = input
        if counts.dim() != 1:
            raise ValueError(f"[repeat_interleave] repeats must be 1-D, got shape "
                             f"{tuple(counts.shape)}")
        with _on_device(counts.device):
            ar = _C._arange(0.0, float(counts.shape[0]), 1.0, _I64, False)
        return repeat_interleave(ar, counts, 0, output_size=output_size)
    if dim is None:
        input = _C.flatten(input, 0, -1)
        dim = 0
    nd = max(input.dim(), 1)
    if not -nd <= dim < nd:
        raise IndexError(f"[repeat_interleave] dim {dim} is out of range for a tensor of shape "
                         f"{tuple(input.shape)}")
    if input.dim() == 0:
        input = _C._reshape(input, [1])
    dim %= nd
    n = input.shape[dim]
    if isinstance(repeats, Tensor) and repeats.numel() == 1 and repeats.dim() <= 1:
        repeats = int(repeats.item()) if not repeats.dtype.is_floating_point else repeats
    if isinstance(repeats, numbers.Integral) and not isinstance(repeats, bool):
        r = int(repeats)
        if r < 0:
            raise ValueError(f"[repeat_interleave] repeats must be non-negative, got {r}")
        if output_size is not None and output_size != n * r:
            raise ValueError(f"[repeat_interleave] output_size {output_size} does not match "
                             f"the {n * r} elements repeats={r} gives for shape "
                             f"{tuple(input.shape)}")
        # (.., n, ..) -> (.., n, r, ..) by a stride-0 view, then merged: one copy, no gather.
        shape = list(input.shape)
        x = _C.unsqueeze(input, dim + 1)
        x = _C._expand(x, shape[:dim + 1] + [r] + shape[dim + 1:])
        return _C._reshape(x, shape[:dim] + [n * r] + shape[dim + 1:])
    if not isinstance(repeats, Tensor):
        raise TypeError(f"[repeat_interleave] repeats must be an int or a tensor, got "
                        f"{type(repeats).__name__}")
    if repeats.dtype not in (_I64, _C.dtype.int32) or repeats.dim() != 1:
        raise ValueError(f"[repeat_interleave] repeats must be a 1-D integer tensor, got "
                         f"{repeats.dtype.name} of shape {tuple(repeats.shape)}")
    if repeats.shape[0] != n:
        raise ValueError(f"[repeat_interleave] repeats has {repeats.shape[0]} entries but dim "
                         f"{dim} of shape {tuple(input.shape)} has {n}")
    counts = repeats.cpu().numpy().astype(np.int64)
    if (counts < 0).any():
        raise ValueError(f"[repeat_interleave] repeats must be non-negative, got "
                         f"{counts.tolist()}")
    total = int(counts.sum())
    if output_size is not None and output_size != total:
        raise ValueError(f"[repeat_interleave] output_size {output_size} does not match the "
                         f"sum of repeats, {total}")
    idx = tensor(np.repeat(np.arange(n, dtype=np.int64), counts), device=input.device)
    return _C.index_select(input, dim, idx)


def _wrap(d, nd, name):
    if not -nd <= d < nd:
        raise IndexError(f"[{name}] dim {d} is out of range for {nd} dims")
    return d % nd


def diagonal(input, offset: int = 0, dim1: int = 0, dim2: int = 1):
    """The diagonal of the (dim1, dim2) planes (offset above / below the main one), as the last
    dim of the result."""
    nd = input.dim()
    if nd < 2:
        raise ValueError(f"[diagonal] expected at least 2 dims, got shape {tuple(input.shape)}")
    d1, d2 = _wrap(dim1, nd, "diagonal"), _wrap(dim2, nd, "diagonal")
    if d1 == d2:
        raise ValueError(f"[diagonal] dim1 and dim2 must differ, both are {d1}")
    rest = [i for i in range(nd) if i not in (d1, d2)]
    x = _C._permute(input, rest + [d1, d2])
    rows, cols = input.shape[d1], input.shape[d2]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    length = max(0, min(rows - r0, cols - c0))
    batch = [input.shape[i] for i in rest]
    x = _C._reshape(x, batch + [rows * cols])
    first = r0 * cols + c0 if length else 0
    with _on_device(input.device):
        idx = _C._arange(float(first), float(first + length * (cols + 1)), float(cols + 1),
                         _I64, False)
    return _C.index_select(x, len(batch), idx)


def diag_embed(input, offset: int = 0, dim1: int = -2, dim2: int = -1):
    """Matrices (in dims dim1, dim2 of the result) with input's last dim on their diagonal."""
    if input.dim() < 1:
        raise ValueError("[diag_embed] expected at least 1 dim, got a 0-d tensor")
    nd = input.dim() + 1
    d1, d2 = _wrap(dim1, nd, "diag_embed"), _wrap(dim2, nd, "diag_embed")
    if d1 == d2:
        raise ValueError(f"[diag_embed] dim1 and dim2 must differ, both are {d1}")
    n = input.shape[-1]
    m = n + abs(offset)
    batch = list(input.shape[:-1])
    with _on_device(input.device):
        ar = _C._arange(0.0, float(n), 1.0, _I64, False)
        zeros = _C._full([m, m] + batch, 0, input.dtype, False)
    rows, cols = _C.add(ar, max(-offset, 0)), _C.add(ar, max(offset, 0))
    vals = _C._permute(input, [input.dim() - 1] + list(range(input.dim() - 1)))
    out = _C.index_put(zeros, [rows, cols], vals)  # (m, m, *batch)
    perm = [0] * nd
    others = iter(range(2, nd))
    for i in range(nd):
        perm[i] = 0 if i == d1 else 1 if i == d2 else next(others)
    return _C._permute(out, perm)


def _tril_count(row, col, offset):
    """Elements (r, c) of a row x col matrix with c <= r + offset, in Python ints."""
    if row <= 0 or col <= 0:
        return 0
    r0 = max(0, -offset)
    if r0 >= row:
        return 0
    split = min(row, max(r0, col - offset - 1))  # rows before it hold r + offset + 1 < col
    partial = (split - r0) * ((r0 + offset + 1) + (split + offset)) // 2
    return partial + (row - split) * col


def _tri_indices(name, row, col, offset, dtype, device, lower):
    if row < 0 or col < 0:
        raise ValueError(f"[{name}] row and col must be non-negative, got {row} and {col}")
    # Offsets beyond the matrix mean all or nothing: clamped, so no int64 arithmetic overflows.
    offset = max(-row - 1, min(col + 1, offset))
    n = _tril_count(row, col, offset) if lower else _tril_count(col, row, -offset)
    if n > (1 << 56):
        raise ValueError(f"[{name}] the triangle of a {row} x {col} matrix (offset {offset}) "
                         f"has {n} elements: too many to index")
    # Only the rows that hold part of the triangle are enumerated, so the work and memory are
    # those of the result (numpy's tril_indices builds the whole row x col mask).
    if lower:  # row r holds columns [0, min(col, r + offset + 1))
        r0, r1 = max(0, -offset), row if col > 0 else 0
        rows = np.arange(min(r0, r1), r1, dtype=np.int64)
        first = np.zeros_like(rows)
        counts = np.minimum(col, rows + offset + 1)
    else:  # row r holds columns [max(0, r + offset), col)
        rows = np.arange(0, max(0, min(row, col - offset)), dtype=np.int64)
        first = np.maximum(0, rows + offset)
        counts = col - first
    r = np.repeat(rows, counts)
    starts = np.cumsum(counts) - counts
    c = np.arange(r.size, dtype=np.int64) - np.repeat(starts - first, counts)
    data = np.stack([r, c]).reshape(2, -1)
    return tensor(data, dtype=_dt(dtype, _I64), device=device)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, **_):
    """The (2, N) row and column indices of the lower triangle of a row x col matrix."""
    return _tri_indices("tril_indices", row, col, offset, dtype, device, True)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, **_):
    """The (2, N) row and column indices of the upper triangle of a row x col matrix."""
    return _tri_indices("triu_indices", row, col, offset, dtype, device, False)


install_methods(globals())
