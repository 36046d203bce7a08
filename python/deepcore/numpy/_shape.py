"""Shape manipulation with NumPy's semantics: reshape, transpose, joining and splitting,
broadcasting, tiling and flipping. Each result is a deepcore op (mostly views), so gradients
flow through."""
from __future__ import annotations

import numbers
from typing import List, Optional, Sequence, Tuple, Union

from .. import _C
from .._C import Tensor
from .._composite import roll as _roll
from .._seq import repeat_interleave as _repeat_interleave
from ._util import ArrayLike, Axis, DTypeLike, asarray, normalize_axes, normalize_axis, \
    to_dtype

Shape = Union[int, Sequence[int]]

__all__ = ["reshape", "ravel", "expand_dims", "squeeze", "concatenate", "concat", "stack",
           "hstack", "vstack", "dstack", "column_stack", "split", "array_split", "broadcast_to",
           "broadcast_arrays", "broadcast_shapes", "tile", "repeat", "flip", "fliplr", "flipud",
           "roll", "atleast_1d", "atleast_2d", "atleast_3d", "shape", "ndim", "size",
           "transpose", "permute_dims", "swapaxes", "moveaxis", "take", "take_along_axis"]


def _ints(shape: Shape) -> List[int]:
    return [int(shape)] if isinstance(shape, numbers.Integral) else [int(s) for s in shape]


def reshape(a: ArrayLike, shape: Optional[Shape] = None, order: str = "C", *,
            newshape: Optional[Shape] = None) -> Tensor:
    """``a`` with a new shape (one entry may be -1); ``order='F'`` reads and writes the
    elements with the first index changing fastest."""
    a = asarray(a)
    shape = _ints(newshape if shape is None else shape)
    if order == "C":
        return a.reshape(shape)
    if order == "F":
        return transpose(transpose(a).reshape(shape[::-1]))
    raise ValueError(f"[reshape] order must be 'C' or 'F', got {order!r}")


def ravel(a: ArrayLike, order: str = "C") -> Tensor:
    """``a`` flattened to 1-d."""
    return reshape(a, [-1], order)


def transpose(a: ArrayLike, axes: Optional[Sequence[int]] = None) -> Tensor:
    """``a`` with its axes permuted: reversed, or in the order ``axes``."""
    a = asarray(a)
    if axes is None:
        return a.permute(list(range(a.ndim))[::-1])
    axes = [normalize_axis(x, a.ndim, "transpose") for x in axes]
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"[transpose] axes {axes} are not a permutation of the {a.ndim} axes "
                         f"of shape {tuple(a.shape)}")
    return a.permute(axes)


def permute_dims(a: ArrayLike, axes: Sequence[int]) -> Tensor:
    """``a`` with its axes in the order ``axes`` (the array API's transpose)."""
    return transpose(a, axes)


def swapaxes(a: ArrayLike, axis1: int, axis2: int) -> Tensor:
    """``a`` with two axes interchanged."""
    a = asarray(a)
    return a.transpose(normalize_axis(axis1, a.ndim, "swapaxes"),
                       normalize_axis(axis2, a.ndim, "swapaxes"))


def moveaxis(a: ArrayLike, source: Axis, destination: Axis) -> Tensor:
    """``a`` with the axes ``source`` moved to positions ``destination``, the others kept in
    order."""
    a = asarray(a)
    src = [source] if isinstance(source, numbers.Integral) else list(source)
    dst = [destination] if isinstance(destination, numbers.Integral) else list(destination)
    if len(src) != len(dst):
        raise ValueError(f"[moveaxis] source {source!r} and destination {destination!r} need "
                         "the same number of axes")
    src = [normalize_axis(x, a.ndim, "moveaxis") for x in src]
    dst = [normalize_axis(x, a.ndim, "moveaxis") for x in dst]
    order = [i for i in range(a.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return a.permute(order)


def expand_dims(a: ArrayLike, axis: Union[int, Sequence[int]]) -> Tensor:
    """``a`` with size-1 axes inserted at the positions ``axis`` of the result."""
    a = asarray(a)
    n = 1 if isinstance(axis, numbers.Integral) else len(axis)
    axes = normalize_axes(axis, a.ndim + n, "expand_dims")
    shape = list(a.shape)
    for ax in axes:
        shape.insert(ax, 1)
    return a.reshape(shape)


def squeeze(a: ArrayLike, axis: Axis = None) -> Tensor:
    """``a`` without size-1 axes (only those in ``axis`` when given; each must have size 1)."""
    a = asarray(a)
    if axis is None:
        return a.reshape([s for s in a.shape if s != 1])
    axes = normalize_axes(axis, a.ndim, "squeeze")
    for ax in axes:
        if a.shape[ax] != 1:
            raise ValueError(f"[squeeze] cannot select axis {ax} of shape {tuple(a.shape)}: its "
                             "size is not 1")
    return a.reshape([s for i, s in enumerate(a.shape) if i not in axes])


def _arrays(arrays: Sequence[ArrayLike], name: str) -> List[Tensor]:
    out = [asarray(x) for x in arrays]
    if not out:
        raise ValueError(f"[{name}] need at least one array")
    dtype = out[0].dtype
    for t in out[1:]:
        dtype = _C.promote_types(dtype, t.dtype)
    return [t if t.dtype == dtype else t.to(dtype) for t in out]


def concatenate(arrays: Sequence[ArrayLike], axis: Optional[int] = 0,
                dtype: DTypeLike = None) -> Tensor:
    """The arrays joined along an existing ``axis`` (flattened first when None)."""
    ts = _arrays(arrays, "concatenate")
    if axis is None:
        ts = [t.reshape([-1]) for t in ts]
        axis = 0
    if ts[0].ndim == 0:
        raise ValueError("[concatenate] zero-dimensional arrays cannot be concatenated")
    out = _C.cat(ts, normalize_axis(axis, ts[0].ndim, "concatenate"))
    return out if dtype is None else out.to(to_dtype(dtype))


def concat(arrays: Sequence[ArrayLike], /, *, axis: Optional[int] = 0) -> Tensor:
    """The arrays joined along an existing ``axis`` (the array API's concatenate)."""
    return concatenate(arrays, axis)


def stack(arrays: Sequence[ArrayLike], axis: int = 0, dtype: DTypeLike = None) -> Tensor:
    """The arrays (all of one shape) joined along a new ``axis``."""
    ts = _arrays(arrays, "stack")
    out = _C.stack(ts, normalize_axis(axis, ts[0].ndim + 1, "stack"))
    return out if dtype is None else out.to(to_dtype(dtype))


def hstack(tup: Sequence[ArrayLike], dtype: DTypeLike = None) -> Tensor:
    """The arrays joined column-wise (along axis 1; axis 0 for 1-d arrays)."""
    ts = atleast_1d(*tup)
    ts = ts if isinstance(ts, list) else [ts]
    return concatenate(ts, 0 if ts[0].ndim == 1 else 1, dtype)


def vstack(tup: Sequence[ArrayLike], dtype: DTypeLike = None) -> Tensor:
    """The arrays joined row-wise (1-d arrays become rows)."""
    ts = atleast_2d(*tup)
    return concatenate(ts if isinstance(ts, list) else [ts], 0, dtype)


def dstack(tup: Sequence[ArrayLike], dtype: DTypeLike = None) -> Tensor:
    """The arrays joined along the third axis."""
    ts = atleast_3d(*tup)
    return concatenate(ts if isinstance(ts, list) else [ts], 2, dtype)


def column_stack(tup: Sequence[ArrayLike]) -> Tensor:
    """1-d arrays as columns of a 2-d array (2-d arrays joined as they are)."""
    ts = [asarray(x) for x in tup]
    return concatenate([t.reshape([-1, 1]) if t.ndim < 2 else t for t in ts], 1)


def _split_at(a: Tensor, bounds: List[int], axis: int) -> List[Tensor]:
    n = a.shape[axis]
    out = []
    for lo, hi in zip([0] + bounds, bounds + [n]):
        lo, hi = min(max(lo, 0), n), min(max(hi, 0), n)
        out.append(a.narrow(axis, lo, max(hi - lo, 0)))
    return out


def array_split(ary: ArrayLike, indices_or_sections, axis: int = 0) -> List[Tensor]:
    """``ary`` split along ``axis`` into N nearly equal parts, or at the given indices."""
    a = asarray(ary)
    axis = normalize_axis(axis, a.ndim, "array_split")
    if isinstance(indices_or_sections, numbers.Integral):
        k = int(indices_or_sections)
        if k <= 0:
            raise ValueError(f"[array_split] number of sections must be positive, got {k}")
        q, r = divmod(a.shape[axis], k)
        sizes = [q + 1] * r + [q] * (k - r)
        bounds, acc = [], 0
        for s in sizes[:-1]:
            acc += s
            bounds.append(acc)
        return _split_at(a, bounds, axis)
    n = a.shape[axis]
    bounds = [int(i) + n if int(i) < 0 else int(i) for i in indices_or_sections]
    return _split_at(a, bounds, axis)


def split(ary: ArrayLike, indices_or_sections, axis: int = 0) -> List[Tensor]:
    """``ary`` split along ``axis`` into N equal parts (N must divide its length), or at the
    given indices."""
    a = asarray(ary)
    if isinstance(indices_or_sections, numbers.Integral):
        n, k = a.shape[normalize_axis(axis, a.ndim, "split")], int(indices_or_sections)
        if k <= 0 or n % k:
            raise ValueError(f"[split] array split does not result in an equal division: "
                             f"axis {axis} of shape {tuple(a.shape)} into {k} sections")
    return array_split(a, indices_or_sections, axis)


def broadcast_shapes(*shapes: Shape) -> Tuple[int, ...]:
    """The shape that all ``shapes`` broadcast to."""
    shapes = [_ints(s) for s in shapes]
    nd = max((len(s) for s in shapes), default=0)
    out = [1] * nd
    for s in shapes:
        for i, d in enumerate([1] * (nd - len(s)) + s):
            if d != 1 and out[i] not in (1, d):
                raise ValueError(f"[broadcast_shapes] shapes {[tuple(x) for x in shapes]} "
                                 "are not broadcastable")
            out[i] = d if d != 1 else out[i]
    return tuple(out)


def broadcast_to(array: ArrayLike, shape: Shape) -> Tensor:
    """``array`` broadcast (as a view) to ``shape``."""
    a = asarray(array)
    target = _ints(shape)
    broadcast_shapes(a.shape, target)
    if len(target) < a.ndim:
        raise ValueError(f"[broadcast_to] cannot broadcast shape {tuple(a.shape)} to "
                         f"{tuple(target)}")
    return a.expand(target)


def broadcast_arrays(*args: ArrayLike) -> List[Tensor]:
    """The arrays broadcast against each other."""
    ts = [asarray(x) for x in args]
    target = list(broadcast_shapes(*[t.shape for t in ts]))
    return [t.expand(target) for t in ts]


def tile(A: ArrayLike, reps: Shape) -> Tensor:
    """``A`` repeated ``reps`` times along each axis (missing axes count as 1 on either side)."""
    a = asarray(A)
    reps = _ints(reps)
    nd = max(a.ndim, len(reps))
    a = a.reshape([1] * (nd - a.ndim) + list(a.shape))
    return a.repeat([1] * (nd - len(reps)) + reps)


def repeat(a: ArrayLike, repeats, axis: Optional[int] = None, *,
           total_repeat_length: Optional[int] = None) -> Tensor:
    """Each element repeated ``repeats`` times (an int, or one count per element) along
    ``axis`` (of the flattened array when None)."""
    a = asarray(a)
    if axis is None:
        a, axis = a.reshape([-1]), 0
    axis = normalize_axis(axis, a.ndim, "repeat")
    if not isinstance(repeats, numbers.Integral):
        repeats = asarray(repeats)
    return _repeat_interleave(a, repeats, axis, output_size=total_repeat_length)


def flip(m: ArrayLike, axis: Axis = None) -> Tensor:
    """``m`` with the order of elements reversed along ``axis`` (every axis when None)."""
    m = asarray(m)
    axes = normalize_axes(axis, m.ndim, "flip")
    return _C.flip(m, list(axes)) if axes else m


def fliplr(m: ArrayLike) -> Tensor:
    """``m`` reversed along axis 1."""
    return flip(m, 1)


def flipud(m: ArrayLike) -> Tensor:
    """``m`` reversed along axis 0."""
    return flip(m, 0)


def roll(a: ArrayLike, shift, axis: Axis = None) -> Tensor:
    """``a`` shifted circularly by ``shift`` along ``axis`` (the flattened array when None)."""
    a = asarray(a)
    if axis is None:
        return _roll(a.reshape([-1]), int(shift), 0).reshape(list(a.shape))
    if isinstance(axis, numbers.Integral):
        return _roll(a, int(shift), normalize_axis(axis, a.ndim, "roll"))
    shifts = [int(shift)] * len(axis) if isinstance(shift, numbers.Integral) else list(shift)
    return _roll(a, shifts, [normalize_axis(x, a.ndim, "roll") for x in axis])


def _atleast(arys, make):
    out = [make(asarray(x)) for x in arys]
    return out[0] if len(out) == 1 else out


def atleast_1d(*arys: ArrayLike):
    """Each input with at least one axis (scalars become shape (1,))."""
    return _atleast(arys, lambda t: t.reshape([1]) if t.ndim == 0 else t)


def atleast_2d(*arys: ArrayLike):
    """Each input with at least two axes ((N,) becomes (1, N))."""
    return _atleast(arys, lambda t: t.reshape([1] * (2 - t.ndim) + list(t.shape))
                    if t.ndim < 2 else t)


def atleast_3d(*arys: ArrayLike):
    """Each input with at least three axes ((N,) becomes (1, N, 1); (M, N) becomes
    (M, N, 1))."""
    def make(t):
        if t.ndim == 0:
            return t.reshape([1, 1, 1])
        if t.ndim == 1:
            return t.reshape([1, t.shape[0], 1])
        if t.ndim == 2:
            return t.reshape(list(t.shape) + [1])
        return t
    return _atleast(arys, make)


def shape(a: ArrayLike) -> Tuple[int, ...]:
    """The shape of ``a`` as a tuple."""
    return tuple(asarray(a).shape)


def ndim(a: ArrayLike) -> int:
    """The number of axes of ``a``."""
    return asarray(a).ndim


def size(a: ArrayLike, axis: Optional[int] = None) -> int:
    """The number of elements of ``a`` (along ``axis`` when given)."""
    a = asarray(a)
    return a.numel() if axis is None else a.shape[normalize_axis(axis, a.ndim, "size")]


def take(a: ArrayLike, indices: ArrayLike, axis: Optional[int] = None) -> Tensor:
    """Elements of ``a`` at ``indices`` along ``axis`` (of the flattened array when None);
    the result has the shape of ``indices`` in place of that axis."""
    a = asarray(a)
    idx = asarray(indices)
    if axis is None:
        a, axis = a.reshape([-1]), 0
    axis = normalize_axis(axis, a.ndim, "take")
    flat = _C.index_select(a, axis, idx.reshape([-1]))
    shp = list(a.shape[:axis]) + list(idx.shape) + list(a.shape[axis + 1:])
    return flat.reshape(shp)


def take_along_axis(arr: ArrayLike, indices: ArrayLike, axis: Optional[int]) -> Tensor:
    """Values of ``arr`` at ``indices`` matched along ``axis`` (as from ``argsort``)."""
    a = asarray(arr)
    idx = asarray(indices)
    if axis is None:
        return _C.take_along_dim(a.reshape([-1]), idx.reshape([-1]), 0)
    return _C.take_along_dim(a, idx, normalize_axis(axis, a.ndim, "take_along_axis"))
