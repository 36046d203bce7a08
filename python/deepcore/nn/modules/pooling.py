"""MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d (torch.nn's names,
arguments, defaults and repr) on the pooling ops of csrc/ops/pool.cpp."""
from __future__ import annotations

from typing import Any, Optional

from ..._C import Tensor
from .. import _functional_conv as F
from .module import Module, _layer_error

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool2d",
           "AdaptiveMaxPool2d"]


def _check_rank(layer: Module, input: Any, spatial: int) -> None:
    """Pools take batched (N, C, *spatial) or unbatched (C, *spatial) input."""
    if not isinstance(input, Tensor):
        raise _layer_error(TypeError, f"{layer!r}: expected a deepcore.Tensor input, got "
                                      f"{type(input).__name__}")
    if input.dim() not in (spatial + 1, spatial + 2):
        raise _layer_error(ValueError, f"{layer!r}: expected a {spatial + 1}-D (unbatched) or "
                                       f"{spatial + 2}-D (batched) input, got input of shape "
                                       f"{tuple(input.shape)}")


def _explain(layer: Module, input: Tensor, err: BaseException) -> BaseException:
    return _layer_error(type(err), f"{layer!r}: cannot apply to input of shape "
                                   f"{tuple(input.shape)}: {err.args[0]}")


class _MaxPoolNd(Module):
    __constants__ = ["kernel_size", "stride", "padding", "dilation", "return_indices",
                     "ceil_mode"]
    _spatial = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return ("kernel_size={kernel_size}, stride={stride}, padding={padding}"
                ", dilation={dilation}, ceil_mode={ceil_mode}".format(**self.__dict__))

    def forward(self, input: Tensor):
        _check_rank(self, input, self._spatial)
        pool = F.max_pool2d if self._spatial == 2 else F.max_pool1d
        try:
            return pool(input, self.kernel_size, self.stride, self.padding, self.dilation,
                        ceil_mode=self.ceil_mode, return_indices=self.return_indices)
        except (ValueError, RuntimeError) as err:
            raise _explain(self, input, err) from err


class MaxPool1d(_MaxPoolNd):
    """Max over sliding windows of (N, C, L) or (C, L) input; ``return_indices`` also returns
    the flat argmax positions (for MaxUnpool)."""

    _spatial = 1


class MaxPool2d(_MaxPoolNd):
    """Max over sliding windows of (N, C, H, W) or (C, H, W) input; stride defaults to
    kernel_size; ``return_indices`` also returns the flat argmax positions within each plane."""

    _spatial = 2


class AvgPool1d(Module):
    """Mean over sliding windows of (N, C, L) or (C, L) input."""

    __constants__ = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"]

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__()
        single = (lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v,))
        self.kernel_size = single(kernel_size)
        self.stride = single(stride if stride is not None else kernel_size)
        self.padding = single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input: Tensor) -> Tensor:
        _check_rank(self, input, 1)
        try:
            return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding,
                                self.ceil_mode, self.count_include_pad)
        except (ValueError, RuntimeError) as err:
            raise _explain(self, input, err) from err


class AvgPool2d(Module):
    """Mean over sliding windows of (N, C, H, W) or (C, H, W) input; ``divisor_override``
    replaces the window size as the divisor."""

    __constants__ = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                     "divisor_override"]

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Optional[int] = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input: Tensor) -> Tensor:
        _check_rank(self, input, 2)
        try:
            return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding,
                                self.ceil_mode, self.count_include_pad, self.divisor_override)
        except (ValueError, RuntimeError) as err:
            raise _explain(self, input, err) from err


class AdaptiveAvgPool2d(Module):
    """Averages (N, C, H, W) or (C, H, W) input down to ``output_size`` (int, pair, or a pair
    with None entries that keep the input's size) with PyTorch's window boundaries."""

    __constants__ = ["output_size"]

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input: Tensor) -> Tensor:
        _check_rank(self, input, 2)
        try:
            return F.adaptive_avg_pool2d(input, self.output_size)
        except (ValueError, RuntimeError) as err:
            raise _explain(self, input, err) from err


class AdaptiveMaxPool2d(Module):
    """Max over PyTorch's adaptive windows down to ``output_size``; ``return_indices`` also
    returns the flat argmax positions within each plane."""

    __constants__ = ["output_size", "return_indices"]

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input: Tensor):
        _check_rank(self, input, 2)
        try:
            return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)
        except (ValueError, RuntimeError) as err:
            raise _explain(self, input, err) from err
