"""Identity, Linear, Bilinear."""
from __future__ import annotations

import math
from typing import Any

from ..._C import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._factory import register_weight_bias, reset_fan_in_uniform
from .module import Module, _layer_error

__all__ = ["Identity", "Linear", "Bilinear"]


def _features_error(layer: Module, name: str, input: Any, expected: int) -> BaseException:
    shape = tuple(input.shape) if hasattr(input, "shape") else ()
    if not shape:
        return _layer_error(ValueError, f"{layer!r}: {name} must have at least 1 dimension, "
                                        "got a 0-d tensor")
    return _layer_error(ValueError, f"{layer!r}: {name} {shape} has {shape[-1]} features, "
                                    f"expected {expected}")


class Identity(Module):
    """Returns its input; accepts (and ignores) any constructor arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features).

    Initialisation (PyTorch's): W ~ kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)),
    and b ~ U(-1/sqrt(in), 1/sqrt(in)).
    """

    __constants__ = ["in_features", "out_features"]
    in_features: int
    out_features: int
    weight: Parameter

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        register_weight_bias(self, (out_features, in_features), out_features, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_fan_in_uniform(self)

    def forward(self, input: Tensor) -> Tensor:
        try:
            return F.linear(input, self.weight, self.bias)
        except ValueError as err:
            shape = tuple(getattr(input, "shape", ()))
            if not shape or shape[-1] != self.in_features:
                raise _features_error(self, "input", input, self.in_features) from err
            raise

    def _short_description(self) -> str:
        return f"Linear {self.in_features}->{self.out_features}"

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Bilinear(Module):
    """y = x1^T A x2 + b with A of shape (out_features, in1_features, in2_features).

    Initialisation (PyTorch's): A and b ~ U(-1/sqrt(in1_features), 1/sqrt(in1_features)).
    """

    __constants__ = ["in1_features", "in2_features", "out_features"]

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        register_weight_bias(self, (out_features, in1_features, in2_features), out_features,
                             bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.in1_features <= 0:
            raise ValueError(f"in1_features must be > 0, but got (in1_features="
                             f"{self.in1_features})")
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        s1, s2 = tuple(input1.shape), tuple(input2.shape)
        if not s1 or s1[-1] != self.in1_features:
            raise _features_error(self, "input1", input1, self.in1_features)
        if not s2 or s2[-1] != self.in2_features:
            raise _features_error(self, "input2", input2, self.in2_features)
        if s1[:-1] != s2[:-1]:
            raise _layer_error(ValueError, f"{self!r}: input1 {s1} and input2 {s2} must have "
                                           "the same batch dimensions")
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
