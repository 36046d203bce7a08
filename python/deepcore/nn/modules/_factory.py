"""Parameter allocation shared by the layers: PyTorch's ``device=``/``dtype=`` factory kwargs."""
from __future__ import annotations

from typing import Any, Sequence

from ... import _C
from ..._C import Tensor


def empty_param_data(shape: Sequence[int], device: Any = None, dtype: Any = None) -> Tensor:
    """Uninitialised storage for a parameter (the layer's reset_parameters fills it)."""
    from ..._tensor import _on_device
    if dtype is None:
        from ... import get_default_dtype
        dtype = get_default_dtype()
    with _on_device(device):
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


def register_weight_bias(module, weight_shape: Sequence[int], bias_size: int, bias: bool,
                         device: Any = None, dtype: Any = None) -> None:
    """A layer's ``weight`` Parameter of ``weight_shape`` and, when ``bias``, a ``bias`` of
    ``bias_size`` (else registered as None, like PyTorch); reset_parameters fills them."""
    from ..parameter import Parameter
    module.weight = Parameter(empty_param_data(weight_shape, device, dtype))
    if bias:
        module.bias = Parameter(empty_param_data((bias_size,), device, dtype))
    else:
        module.register_parameter("bias", None)


def reset_fan_in_uniform(module) -> None:
    """PyTorch's Linear/Conv initialisation: kaiming_uniform_(a=sqrt(5)) for the weight, which
    is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias from the same bound (0 if fan_in is 0)."""
    import math

    from .. import init
    init.kaiming_uniform_(module.weight, a=math.sqrt(5))
    if module.bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(module.weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(module.bias, -bound, bound)
