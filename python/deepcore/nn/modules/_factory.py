"""Parameter allocation shared by the layers: PyTorch's ``device=``/``dtype=`` factory kwargs."""
from __future__ import annotations

from typing import Any, Sequence

from ... import _C
from ..._C import Tensor


def empty_param_data(shape: Sequence[int], device: Any = None, dtype: Any = None) -> Tensor:
    """Uninitialised storage for a parameter (the layer's reset_parameters fills it)."""
    if device is not None:
        from ..._tensor import _check_device
        _check_device(device)
    if dtype is None:
        from ... import get_default_dtype
        dtype = get_default_dtype()
    return _C._empty([int(s) for s in shape], dtype, False)
