"""Creation functions with PyTorch's signatures (size as varargs or a sequence)."""
from __future__ import annotations

import numbers

import numpy as np

from . import _C
from ._C import Tensor
from ._tensor import _on_device, tensor

_F32 = _C.dtype.float32
_I64 = _C.dtype.int64


def _size(size):
    if len(size) == 1 and not isinstance(size[0], numbers.Integral):
        size = size[0]
        if not hasattr(size, "__iter__"):
            raise TypeError(f"[size] expected a sequence of ints, got {type(size).__name__}")
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = s.item()
        if not isinstance(s, numbers.Integral):
            raise TypeError(f"[size] expected a sequence of ints, got {type(s).__name__}")
        out.append(int(s))
    return out


def _dt(dtype, default=_F32):
    if dtype is None:
        return default
    if isinstance(dtype, _C.dtype):
        return dtype
    if dtype is float:
        return _F32
    if dtype is int:
        return _I64
    if dtype is bool:
        return _C.dtype.bool
    name = str(np.dtype(dtype))
    if name not in _C.dtype.__members__:
        raise TypeError(f"[dtype] unsupported dtype {name}; supported: bool, int32, int64, "
                        "float32, float64")
    return _C.dtype.__members__[name]


def empty(*size, dtype=None, device=None, requires_grad=False, **_):
    with _on_device(device):
        return _C._empty(_size(size), _dt(dtype), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False, **_):
    with _on_device(device):
        return _C._full(_size(size), 0, _dt(dtype), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, **_):
    with _on_device(device):
        return _C._full(_size(size), 1, _dt(dtype), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False, **_):
    with _on_device(device):
        if dtype is None:
            dtype = (_C.dtype.bool if isinstance(fill_value, bool) else
                     _I64 if isinstance(fill_value, numbers.Integral) else _F32)
        return _C._full(_size((size,)), fill_value, _dt(dtype), requires_grad)


def _like(t, dtype):
    return t.dtype if dtype is None else _dt(dtype)


def _like_device(t, device):
    """The *_like factories' device scope: ``device`` if named, else t's own (a cpu tensor,
    the common case, needs no scope and no validation)."""
    if device is None:
        device = None if _C._device_index(t) == 0 else t.device
    return _on_device(device)


def empty_like(t, dtype=None, requires_grad=False, device=None, **_):
    with _like_device(t, device):
        return _C._empty(list(t.shape), _like(t, dtype), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False, device=None, **_):
    with _like_device(t, device):
        return _C._full(list(t.shape), 0, _like(t, dtype), requires_grad)


def ones_like(t, dtype=None, requires_grad=False, device=None, **_):
    with _like_device(t, device):
        return _C._full(list(t.shape), 1, _like(t, dtype), requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False, device=None, **_):
    with _like_device(t, device):
        return _C._full(list(t.shape), fill_value, _like(t, dtype), requires_grad)


def _from_generator(generator, draw, dtype, device, requires_grad=False):
    """A tensor drawn from ``generator``'s own NumPy stream (utils/_generator.py): a seeded
    generator gives the same values every time, whatever the global RNG has done."""
    from .utils._generator import numpy_rng
    arr = draw(numpy_rng(generator))
    return tensor(arr, dtype=dtype, device=device, requires_grad=requires_grad)


def rand(*size, dtype=None, generator=None, device=None, requires_grad=False, **_):
    if generator is not None:
        return _from_generator(generator, lambda g: g.random(_size(size)), _dt(dtype), device,
                               requires_grad)
    with _on_device(device):
        return _C._rand(_size(size), _dt(dtype), requires_grad)


def randn(*size, dtype=None, generator=None, device=None, requires_grad=False, **_):
    if generator is not None:
        return _from_generator(generator, lambda g: g.standard_normal(_size(size)), _dt(dtype),
                               device, requires_grad)
    with _on_device(device):
        return _C._randn(_size(size), _dt(dtype), requires_grad)


def rand_like(t, dtype=None, requires_grad=False, device=None, **_):
    with _like_device(t, device):
        return _C._rand(list(t.shape), _like(t, dtype), requires_grad)


def randn_like(t, dtype=None, requires_grad=False, device=None, **_):
    with _like_device(t, device):
        return _C._randn(list(t.shape), _like(t, dtype), requires_grad)


def randint(low, high=None, size=None, *, dtype=None, generator=None, device=None, **_):
    with _on_device(device):
        if size is None and high is not None and not isinstance(high, numbers.Integral):
            low, high, size = 0, low, high
        elif high is None:
            raise TypeError("[randint] missing required argument 'high' or 'size'")
        if size is None:
            raise TypeError("[randint] missing required argument 'size'")
        if generator is not None:
            return _from_generator(
                generator, lambda g: g.integers(int(low), int(high), _size((size,))),
                _dt(dtype, _I64), device)
        return _C._randint(int(low), int(high), _size((size,)), _dt(dtype, _I64))


def randint_like(t, low, high=None, dtype=None, device=None, **_):
    with _like_device(t, device):
        if high is None:
            low, high = 0, low
        return _C._randint(int(low), int(high), list(t.shape), _like(t, dtype))


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False, **_):
    with _on_device(device):
        if end is None:
            start, end = 0, start
        vals = [start, end, step]
        vals = [v.item() if isinstance(v, Tensor) else v for v in vals]
        if dtype is None:
            dtype = _I64 if all(isinstance(v, numbers.Integral) for v in vals) else _F32
        return _C._arange(float(vals[0]), float(vals[1]), float(vals[2]), _dt(dtype), requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False, **_):
    with _on_device(device):
        return _C._linspace(float(start), float(end), int(steps), _dt(dtype), requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False, **_):
    with _on_device(device):
        return _C._eye(int(n), -1 if m is None else int(m), _dt(dtype), requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False, **_):
    if generator is not None:
        return _from_generator(generator, lambda g: g.permutation(int(n)), _dt(dtype, _I64),
                               device, requires_grad)
    with _on_device(device):
        t = _C._randperm(int(n), _dt(dtype, _I64))
    return t.requires_grad_() if requires_grad else t


def scalar_tensor(value, dtype=None, device=None, **_):
    with _on_device(device):
        return _C._full([], value, _dt(dtype), False)


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but shares memory with a NumPy array or tensor when it can."""
    if isinstance(data, Tensor):
        t = data if dtype is None else _C._to_dtype(data, _dt(dtype), False)
    elif isinstance(data, np.ndarray) and (dtype is None or _dt(dtype) == _dt(data.dtype)):
        try:
            t = _C.from_numpy(data)
        except (TypeError, ValueError):
            t = tensor(data, dtype=dtype)
    else:
        t = tensor(data, dtype=dtype)
    return t if device is None else t.to(device)


asarray = as_tensor


def from_dlpack(ext):
    """Zero-copy import of any object implementing the DLPack protocol (or a capsule)."""
    if hasattr(ext, "__dlpack__"):
        return _C._from_dlpack_capsule(ext.__dlpack__())
    return _C._from_dlpack_capsule(ext)
