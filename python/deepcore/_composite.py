"""Ops composed in Python from differentiable C++ ops (so autograd needs nothing new):
isclose/allclose, clamp_min/clamp_max, lerp, addcmul, addcdiv, nan_to_num, roll, diag,
trace, meshgrid, broadcast_tensors, fliplr/flipud, and the Tensor.new_* constructors."""
from __future__ import annotations

import numbers

from . import _C
from ._C import Tensor
from .amp.autocast_mode import _cast_inputs
from ._creation import _dt, _size
from ._tensor import _on_device, install_methods

__all__ = ["isclose", "allclose", "clamp_min", "clamp_max", "lerp", "addcmul", "addcdiv",
           "nan_to_num", "roll", "diag", "trace", "meshgrid", "broadcast_tensors", "fliplr",
           "flipud"]


def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """|input - other| <= atol + rtol * |other|, elementwise (bool); infinities equal themselves."""
    other = other if isinstance(other, Tensor) else _C._full([], other, input.dtype, False)
    close = _C.le(_C.abs(_C.sub(input, other)), _C.add(_C.mul(_C.abs(other), rtol), atol))
    close = _C.logical_or(close, _C.eq(input, other))
    if equal_nan:
        close = _C.logical_or(close, _C.logical_and(_C.isnan(input), _C.isnan(other)))
    return close


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


def clamp_min(input, min):
    return _C.clamp(input, min, None)


def clamp_max(input, max):
    return _C.clamp(input, None, max)


def lerp(input, end, weight):
    """input + weight * (end - input)."""
    return _C.add(input, _C.mul(weight, _C.sub(end, input)))


def addcmul(input, tensor1, tensor2, *, value=1):
    if isinstance(value, float) and not any(
            t.dtype.is_floating_point for t in (input, tensor1, tensor2) if isinstance(t, Tensor)):
        # torch truncates the value to the integer dtype (0.5 -> 0); refused instead.
        raise TypeError(f"[addcmul] value must not be a floating point number for integer "
                        f"inputs, got {value}")
    return _C.add(input, _C.mul(_C.mul(tensor1, tensor2), value))


def addcdiv(input, tensor1, tensor2, *, value=1):
    return _C.add(input, _C.mul(_C.div(tensor1, tensor2), value))


def nan_to_num(input, nan: float = 0.0, posinf=None, neginf=None):
    return _C._nan_to_num(input, nan, posinf, neginf)


def roll(input, shifts, dims=None):
    """Elements shifted cyclically along dims (flattened when dims is None)."""
    shifts = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(shifts)
    dims = () if dims is None else (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    if not dims:  # no dims (None or empty): one shift of the flattened tensor, as in torch
        if len(shifts) != 1:
            raise ValueError(f"[roll] without dims, shifts must hold one value, got {shifts}")
        return roll(_C.flatten(input, 0, -1), shifts, 0).reshape(tuple(input.shape))
    if len(shifts) != len(dims):
        raise ValueError(f"[roll] shifts {shifts} and dims {dims} must have the same length")
    out = input
    for s, d in zip(shifts, dims):
        n = out.shape[d]
        if n == 0:
            continue
        s %= n
        if s:
            out = _C.cat([_C.narrow(out, d, n - s, s), _C.narrow(out, d, 0, n - s)], d)
    return out


def diag(input, diagonal: int = 0):
    """1-D -> a square matrix with it on the diagonal; 2-D -> the diagonal as 1-D."""
    if input.dim() == 1:
        m = input.shape[0]
        n = m + abs(diagonal)
        with _on_device(input.device):  # the index tensors and the zeros go where input is
            ar = _C._arange(0.0, float(m), 1.0, _C.dtype.int64, False)
            zeros = _C._full([n, n], 0, input.dtype, False)
        rows, cols = _C.add(ar, max(-diagonal, 0)), _C.add(ar, max(diagonal, 0))
        return _C.index_put(zeros, [rows, cols], input)
    if input.dim() != 2:
        raise ValueError(f"[diag] expected a 1-D or 2-D tensor, got shape {tuple(input.shape)}")
    rows, cols = input.shape
    r0, c0 = (0, diagonal) if diagonal >= 0 else (-diagonal, 0)
    length = max(0, min(rows - r0, cols - c0))
    # An empty diagonal goes through index_select too, so it stays attached to input's graph.
    flat = _C.flatten(input, 0, -1)
    first = r0 * cols + c0 if length else 0
    with _on_device(input.device):
        idx = _C._arange(float(first), float(first + length * (cols + 1)), float(cols + 1),
                         _C.dtype.int64, False)
    return _C.index_select(flat, 0, idx)


@_cast_inputs("fp32")  # torch's CPU autocast runs it in float32
def trace(input):
    if input.dim() != 2:
        raise ValueError(f"[trace] expected a 2-D tensor, got shape {tuple(input.shape)}")
    if input.dtype == _C.dtype.bool:
        raise TypeError("[trace] not implemented for bool tensors")
    return _C.sum(diag(input))


def meshgrid(*tensors, indexing: str = "ij"):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"[meshgrid] indexing must be 'ij' or 'xy', got {indexing!r}")
    ts = list(tensors)
    for t in ts:
        if t.dim() > 1:
            raise RuntimeError(f"[meshgrid] expected 0-D or 1-D tensors, got shape {tuple(t.shape)}")
    shape = [t.numel() for t in ts]
    out = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[i] = -1
        out.append(_C._expand(_C._reshape(t, view), shape))
    if indexing == "xy" and len(out) >= 2:  # Cartesian: the first two dims swap
        out = [_C.transpose(o, 0, 1) for o in out]
    return tuple(out)


def broadcast_tensors(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = ()
    for t in tensors:
        shape = _broadcast(shape, tuple(t.shape))
    return tuple(_C._expand(t, list(shape)) for t in tensors)


def _broadcast(a, b):
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            raise ValueError(f"[broadcast_tensors] shapes {a} and {b} cannot be broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


def fliplr(input):
    if input.dim() < 2:
        raise RuntimeError(f"[fliplr] input must be at least 2-D, got shape {tuple(input.shape)}")
    return _C.flip(input, [1])


def flipud(input):
    if input.dim() < 1:
        raise RuntimeError(f"[flipud] input must be at least 1-D, got shape {tuple(input.shape)}")
    return _C.flip(input, [0])


# ---- Tensor methods --------------------------------------------------------------------------

def _new(fill):
    def method(self, *size, dtype=None, device=None, requires_grad=False, **_):
        with _on_device(self.device if device is None else device):
            t = _C._full(_size(size), fill, self.dtype if dtype is None else _dt(dtype), False)
        return t.requires_grad_() if requires_grad else t
    return method


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False, **_):
    with _on_device(self.device if device is None else device):
        t = _C._full(_size((size,)), fill_value, self.dtype if dtype is None else _dt(dtype),
                     False)
    return t.requires_grad_() if requires_grad else t


def _new_empty(self, *size, dtype=None, device=None, requires_grad=False, **_):
    with _on_device(self.device if device is None else device):
        t = _C._empty(_size(size), self.dtype if dtype is None else _dt(dtype), False)
    return t.requires_grad_() if requires_grad else t


def _new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    from ._tensor import tensor
    return tensor(data, dtype=self.dtype if dtype is None else dtype,
                  device=self.device if device is None else device, requires_grad=requires_grad)


def _new_legacy(self, *args, device=None):
    """``t.new(*sizes)`` / ``t.new(data)``: the pre-0.4 constructor with ``t``'s dtype and
    device (older scripts write ``weight.new(nlayers, bsz, nhid).zero_()``)."""
    if all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        return _new_empty(self, *(args or (0,)), device=device)
    if len(args) == 1:
        return _new_tensor(self, args[0], device=device)
    raise TypeError("new(): expected sizes (ints) or one sequence of data")


def _install():
    T = Tensor
    T.new = _new_legacy
    T.new_zeros = _new(0)
    T.new_ones = _new(1)
    T.new_full = _new_full
    T.new_empty = _new_empty
    T.new_tensor = _new_tensor
    install_methods(globals())  # Python functions bind as methods as they are
    T.type = _type


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "int32": "IntTensor",
               "int64": "LongTensor", "bool": "BoolTensor"}


def _type(self, dtype=None):
    """t.type() -> 'deepcore.FloatTensor'; t.type(dtype) converts like to(dtype)."""
    if dtype is None:
        return f"deepcore.{_TYPE_NAMES[self.dtype.name]}"
    if isinstance(dtype, str):  # 'torch.LongTensor', as torch names the legacy types
        names = {v: k for k, v in _TYPE_NAMES.items()}
        dtype = getattr(_C.dtype, names[dtype.rsplit(".", 1)[-1]])
    dtype = getattr(dtype, "dtype", dtype)  # deepcore.LongTensor and the other legacy types
    return self.to(dtype)


_install()
