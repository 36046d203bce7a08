"""``finfo`` / ``iinfo``: the numerical limits of a dtype, as ``torch.finfo`` reports them.

Attention code masks with ``torch.finfo(scores.dtype).min`` and clamps with ``.eps`` or
``.tiny``; the values come from NumPy's description of the same IEEE / two's-complement type.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from . import _C


class finfo:  # noqa: N801  (torch's name)
    def __init__(self, type: _C.dtype | None = None) -> None:  # noqa: A002
        if type is None:
            from . import get_default_dtype
            type = get_default_dtype()  # noqa: A001
        if not isinstance(type, _C.dtype) or not type.is_floating_point:
            raise TypeError(f"torch.finfo() requires a floating point input type, got {type}")
        # deepcore's dtype names are NumPy's; bfloat16's description is ml_dtypes'
        info = ml_dtypes.finfo(ml_dtypes.bfloat16) if type.name == "bfloat16" else \
            np.finfo(type.name)
        self.dtype = type.name
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801  (torch's name)
    def __init__(self, type: _C.dtype) -> None:  # noqa: A002
        if not isinstance(type, _C.dtype) or type.name not in ("int32", "int64"):
            raise TypeError(f"torch.iinfo() requires an integer input type, got {type}")
        info = np.iinfo(type.name)
        self.dtype = type.name
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"
