"""LayerNorm and RMSNorm over the trailing ``normalized_shape`` dims."""
from __future__ import annotations

import numbers
from typing import Any, List, Optional, Sequence, Tuple, Union

from ..._C import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._factory import empty_param_data, register_affine
from .module import Module, _layer_error

__all__ = ["LayerNorm", "RMSNorm"]

_shape_t = Union[int, List[int], Tuple[int, ...]]


def _as_shape(normalized_shape: _shape_t) -> Tuple[int, ...]:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(normalized_shape)


def _check_trailing(layer: Module, input: Any, shape: Sequence[int], err: BaseException) -> None:
    """Raises the layer's own error when the input's trailing dims are the problem."""
    in_shape = tuple(getattr(input, "shape", ()))
    n = len(shape)
    if len(in_shape) < n or in_shape[len(in_shape) - n:] != tuple(shape):
        raise _layer_error(ValueError, f"{layer!r}: input {in_shape} must end in "
                                       f"normalized_shape {tuple(shape)}") from err


class LayerNorm(Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing dims; weight = 1,
    bias = 0 at initialisation."""

    __constants__ = ["normalized_shape", "eps", "elementwise_affine"]
    normalized_shape: Tuple[int, ...]
    eps: float
    elementwise_affine: bool

    def __init__(self, normalized_shape: _shape_t, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        register_affine(self, elementwise_affine, bias, self.normalized_shape, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        try:
            return F.layer_norm(input, list(self.normalized_shape), self.weight, self.bias,
                                self.eps)
        except ValueError as err:
            _check_trailing(self, input, self.normalized_shape, err)
            raise

    def _short_description(self) -> str:
        return f"LayerNorm {self.normalized_shape}"

    def extra_repr(self) -> str:
        return ("{normalized_shape}, eps={eps}, elementwise_affine={elementwise_affine}, "
                "bias={use_bias}".format(**self.__dict__, use_bias=self.bias is not None))


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) * weight over the trailing dims (eps=None: the dtype's
    machine epsilon, as PyTorch); weight = 1 at initialisation."""

    __constants__ = ["normalized_shape", "eps", "elementwise_affine"]
    normalized_shape: Tuple[int, ...]
    eps: Optional[float]
    elementwise_affine: bool

    def __init__(self, normalized_shape: _shape_t, eps: Optional[float] = None,
                 elementwise_affine: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(empty_param_data(self.normalized_shape, device, dtype))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        try:
            return F.rms_norm(x, list(self.normalized_shape), self.weight, self.eps)
        except ValueError as err:
            _check_trailing(self, x, self.normalized_shape, err)
            raise

    def _short_description(self) -> str:
        return f"RMSNorm {self.normalized_shape}"

    def extra_repr(self) -> str:
        return ("{normalized_shape}, eps={eps}, "
                "elementwise_affine={elementwise_affine}".format(**self.__dict__))
