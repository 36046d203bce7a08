"""The pre-0.4 typed constructors, ``torch.FloatTensor(2, 3)``, ``torch.LongTensor([1, 2])``.

Older training scripts build tensors with them (``torch.LongTensor(ntokens)`` filled in a
loop) and test dtypes with ``isinstance(x, torch.LongTensor)``. Sizes give an uninitialised
tensor of that dtype; a sequence, array or tensor gives a copy converted to it.
"""
from __future__ import annotations

import numbers

from . import _C
from ._C import Tensor


class _LegacyTensorType(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype

    def __repr__(cls) -> str:
        return f"<class 'deepcore.{cls.__name__}'>"


def _new(cls, *args, device=None):
    from ._creation import empty
    from ._tensor import tensor
    if all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in args):
        return empty(args or (0,), dtype=cls.dtype, device=device)
    if len(args) == 1:
        return tensor(args[0], dtype=cls.dtype, device=device)
    raise TypeError(f"{cls.__name__}(): expected sizes (ints) or one sequence of data, got "
                    f"{tuple(type(a).__name__ for a in args)}")


def _legacy(name: str, dtype: _C.dtype) -> type:
    return _LegacyTensorType(name, (), {"dtype": dtype, "__new__": _new,
                                        "__doc__": f"``{name}(*sizes)`` / ``{name}(data)``: "
                                                   f"a {dtype.name} tensor."})


FloatTensor = _legacy("FloatTensor", _C.dtype.float32)
DoubleTensor = _legacy("DoubleTensor", _C.dtype.float64)
IntTensor = _legacy("IntTensor", _C.dtype.int32)
LongTensor = _legacy("LongTensor", _C.dtype.int64)
BoolTensor = _legacy("BoolTensor", _C.dtype.bool)
