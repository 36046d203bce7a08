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


def register_affine(module, affine: bool, bias: bool, shape: Sequence[int], device: Any = None,
                    dtype: Any = None) -> None:
    """A normalisation layer's ``weight`` and ``bias`` Parameters of ``shape`` (filled by its
    reset_parameters), registered as None when ``affine`` (or ``bias``) is off, like PyTorch."""
    from ..parameter import Parameter
    if not affine:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)
        return
    module.weight = Parameter(empty_param_data(shape, device, dtype))
    if bias:
        module.bias = Parameter(empty_param_data(shape, device, dtype))
    else:
        module.register_parameter("bias", None)
