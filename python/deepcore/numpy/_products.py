"""Products and contractions with NumPy's semantics: dot, matmul, vdot, inner, outer,
tensordot, einsum, and the diagonal helpers trace, diag and diagonal."""
from __future__ import annotations

import numbers
from typing import Sequence, Tuple, Union

from .. import _C
from .._C import Tensor
from .._composite import diag as _diag
from .._seq import diagonal as _diagonal, einsum as _einsum
from ._shape import moveaxis
from ._util import ArrayLike, DTypeLike, asarray, normalize_axis, operands, to_dtype

__all__ = ["dot", "matmul", "vdot", "inner", "outer", "tensordot", "einsum", "trace", "diag",
           "diagonal", "kron", "cross"]


def _pair(a: ArrayLike, b: ArrayLike) -> Tuple[Tensor, Tensor]:
    a, b = operands(a, b)
    return asarray(a), asarray(b)


def matmul(x1: ArrayLike, x2: ArrayLike, /) -> Tensor:
    """The matrix product, broadcasting over leading (batch) axes; a 1-D operand is a vector."""
    a, b = _pair(x1, x2)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"[matmul] operands must be at least 1-d, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}; use multiply for scalars")
    return _C.matmul(a, b)


def dot(a: ArrayLike, b: ArrayLike) -> Tensor:
    """NumPy's dot: a product for scalars, the inner product of two vectors, the matrix
    product of matrices, and for N-d arrays a sum over the last axis of ``a`` and the
    second-to-last of ``b``."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        return _C.matmul(a, b)
    if a.ndim == 1:
        return _C.matmul(a, b)
    return tensordot(a, b, ([a.ndim - 1], [b.ndim - 2]))


def vdot(a: ArrayLike, b: ArrayLike, /) -> Tensor:
    """The inner product of the flattened arrays."""
    a, b = _pair(a, b)
    if a.numel() != b.numel():
        raise ValueError(f"[vdot] sizes differ: shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return _C.dot(a.reshape([-1]), b.reshape([-1]))


def inner(a: ArrayLike, b: ArrayLike, /) -> Tensor:
    """The sum product over the last axes of ``a`` and ``b`` (a product for scalars)."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return tensordot(a, b, ([a.ndim - 1], [b.ndim - 1]))


def outer(a: ArrayLike, b: ArrayLike, /) -> Tensor:
    """The outer product of the flattened arrays: ``out[i, j] = a[i] * b[j]``."""
    a, b = _pair(a, b)
    return a.reshape([-1, 1]) * b.reshape([1, -1])


Axes = Union[int, Sequence[int], Sequence[Sequence[int]]]


def _contraction_axes(axes: Axes, a: Tensor, b: Tensor) -> Tuple[list, list]:
    if isinstance(axes, numbers.Integral):
        n = int(axes)
        if n < 0 or n > min(a.ndim, b.ndim):
            raise ValueError(f"[tensordot] axes={n} out of range for shapes {tuple(a.shape)} "
                             f"and {tuple(b.shape)}")
        return list(range(a.ndim - n, a.ndim)), list(range(n))
    axes_a, axes_b = axes
    axes_a = [axes_a] if isinstance(axes_a, numbers.Integral) else list(axes_a)
    axes_b = [axes_b] if isinstance(axes_b, numbers.Integral) else list(axes_b)
    if len(axes_a) != len(axes_b):
        raise ValueError(f"[tensordot] axes {axes!r}: both sides need the same number of axes")
    return ([normalize_axis(x, a.ndim, "tensordot") for x in axes_a],
            [normalize_axis(x, b.ndim, "tensordot") for x in axes_b])


def tensordot(a: ArrayLike, b: ArrayLike, axes: Axes = 2) -> Tensor:
    """The sum of products over the given axes: the last ``axes`` of ``a`` with the first of
    ``b``, or the pairs ``(axes_a, axes_b)``; computed as one matrix product."""
    a, b = _pair(a, b)
    ca, cb = _contraction_axes(axes, a, b)
    for i, j in zip(ca, cb):
        if a.shape[i] != b.shape[j]:
            raise ValueError(f"[tensordot] shapes {tuple(a.shape)} and {tuple(b.shape)}: axis "
                             f"{i} ({a.shape[i]}) does not match axis {j} ({b.shape[j]})")
    free_a = [i for i in range(a.ndim) if i not in ca]
    free_b = [j for j in range(b.ndim) if j not in cb]
    k = 1
    for i in ca:
        k *= a.shape[i]
    # out[free_a, free_b] = a[free_a, K] @ b[K, free_b]
    am = a.permute(free_a + ca).reshape([-1, k])
    bm = b.permute(cb + free_b).reshape([k, -1])
    out_shape = [a.shape[i] for i in free_a] + [b.shape[j] for j in free_b]
    return _C.matmul(am, bm).reshape(out_shape)


def einsum(subscripts: str, *operands: ArrayLike, optimize=None, precision=None) -> Tensor:
    """Einstein summation over the operands, as ``numpy.einsum`` (``optimize`` is accepted and
    ignored: deepcore contracts pairwise, left to right)."""
    return _einsum(subscripts, *[asarray(x) for x in operands])


def diagonal(a: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The ``offset``-th diagonal over ``axis1`` and ``axis2``, as the last axis."""
    return _diagonal(asarray(a), int(offset), int(axis1), int(axis2))


def trace(a: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1,
          dtype: DTypeLike = None) -> Tensor:
    """The sum along the ``offset``-th diagonal over ``axis1`` and ``axis2``."""
    d = diagonal(a, offset, axis1, axis2)
    if dtype is not None:
        d = d.to(to_dtype(dtype))
    return _C.sum(d, [d.ndim - 1], False)


def diag(v: ArrayLike, k: int = 0) -> Tensor:
    """The ``k``-th diagonal of a matrix, or the matrix with vector ``v`` on that diagonal."""
    v = asarray(v)
    if v.ndim not in (1, 2):
        raise ValueError(f"[diag] input must be 1-d or 2-d, got shape {tuple(v.shape)}")
    return _diag(v, int(k))


def kron(a: ArrayLike, b: ArrayLike) -> Tensor:
    """The Kronecker product: blocks ``a[i, j] * b``."""
    a, b = _pair(a, b)
    nd = max(a.ndim, b.ndim)
    sa = [1] * (nd - a.ndim) + list(a.shape)
    sb = [1] * (nd - b.ndim) + list(b.shape)
    # out[i0, j0, i1, j1, ...] = a[i0, i1, ...] * b[j0, j1, ...], then merge each (i, j) pair
    ea = a.reshape([x for s in sa for x in (s, 1)])
    eb = b.reshape([x for s in sb for x in (1, s)])
    return (ea * eb).reshape([x * y for x, y in zip(sa, sb)])


def cross(a: ArrayLike, b: ArrayLike, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis=None) -> Tensor:
    """The cross product of 3-vectors along the given axes (broadcast elsewhere)."""
    a, b = _pair(a, b)
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = moveaxis(a, axisa, -1), moveaxis(b, axisb, -1)
    if a.shape[-1] != 3 or b.shape[-1] != 3:
        raise ValueError(f"[cross] both vectors need 3 components, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    a0, a1, a2 = (a[..., i] for i in range(3))
    b0, b1, b2 = (b[..., i] for i in range(3))
    c = _C.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)
    return moveaxis(c, -1, axisc)
