"""Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d (torch.nn's names, arguments, defaults,
initialisation, repr and state_dict keys) on the functional ops of csrc/ops/conv.cpp."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

from ..._C import Tensor
from .. import functional as F
from ._factory import register_weight_bias, reset_fan_in_uniform
from .module import Module, _layer_error

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_VALID_PADDING_STRINGS = {"same", "valid"}
_VALID_PADDING_MODES = {"zeros", "reflect", "replicate", "circular"}


def _ntuple(value: Any, n: int) -> Tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,) * n


class _ConvNd(Module):
    """Shared state of the convolutions: weight (out, in/groups, *k) or, transposed,
    (in, out/groups, *k); optional bias (out,)."""

    __constants__ = ["stride", "padding", "dilation", "groups", "padding_mode",
                     "output_padding", "in_channels", "out_channels", "kernel_size"]
    _spatial: int = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Tuple[int, ...],
                 stride: Tuple[int, ...], padding: Union[str, Tuple[int, ...]],
                 dilation: Tuple[int, ...], transposed: bool,
                 output_padding: Tuple[int, ...], groups: int, bias: bool, padding_mode: str,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups != 0:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups "
                             f"({groups})")
        if out_channels % groups != 0:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if isinstance(padding, str):
            if padding not in _VALID_PADDING_STRINGS:
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of "
                                 f"{_VALID_PADDING_STRINGS}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 "convolutions")
        if padding_mode not in _VALID_PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_VALID_PADDING_MODES}, but "
                             f"got padding_mode='{padding_mode}'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad's argument for the non-zero padding modes: last dim first, (left, right) each.
        if isinstance(padding, str):
            pads = [0, 0] * len(kernel_size)
            if padding == "same":
                for d, k, i in zip(dilation, kernel_size, range(len(kernel_size) - 1, -1, -1)):
                    total = d * (k - 1)
                    pads[2 * i] = total // 2
                    pads[2 * i + 1] = total - total // 2
            self._reversed_padding_repeated_twice: List[int] = pads
        else:
            self._reversed_padding_repeated_twice = [p for p in reversed(padding)
                                                     for _ in range(2)]
        if transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        register_weight_bias(self, shape, out_channels, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_fan_in_uniform(self)

    def extra_repr(self) -> str:
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.padding):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if not hasattr(self, "padding_mode"):
            self.padding_mode = "zeros"

    def _check_input(self, input: Any, err: Optional[BaseException] = None) -> None:
        """Raises the layer's own error for a wrong rank or channel count (called before the
        op for the cheap checks, and after an op error to explain it in the layer's terms)."""
        if not isinstance(input, Tensor):
            raise _layer_error(TypeError, f"{self!r}: expected a deepcore.Tensor input, got "
                                          f"{type(input).__name__}")
        shape = tuple(input.shape)
        nd = self._spatial
        if len(shape) not in (nd + 1, nd + 2):
            raise _layer_error(ValueError, f"{self!r}: expected a {nd + 1}-D (unbatched) or "
                                           f"{nd + 2}-D (batched) input, got input of shape "
                                           f"{shape}") from err
        c = shape[len(shape) - nd - 1]
        if c != self.in_channels:
            raise _layer_error(ValueError, f"{self!r}: expected input with {self.in_channels} "
                                           f"channels, got input of shape {shape}") from err

    def _short_description(self) -> str:
        return f"{type(self).__name__} {self.in_channels}->{self.out_channels}"


class _Conv(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        n = self._spatial
        kernel_size_ = _ntuple(kernel_size, n)
        stride_ = _ntuple(stride, n)
        padding_ = padding if isinstance(padding, str) else _ntuple(padding, n)
        dilation_ = _ntuple(dilation, n)
        super().__init__(in_channels, out_channels, kernel_size_, stride_, padding_, dilation_,
                         False, _ntuple(0, n), groups, bias, padding_mode, device, dtype)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        conv = F.conv2d if self._spatial == 2 else F.conv1d
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, self.padding_mode)
            return conv(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        try:
            return self._conv_forward(input, self.weight, self.bias)
        except ValueError as err:
            if getattr(err, "_dc_layer_error", False):
                raise
            shape = tuple(input.shape)
            raise _layer_error(ValueError, f"{self!r}: cannot apply to input of shape {shape}: "
                                           f"{err.args[0]}") from err


class Conv1d(_Conv):
    """1-D convolution over (N, C_in, L) or (C_in, L) input; weight (C_out, C_in/groups, k)."""

    _spatial = 1


class Conv2d(_Conv):
    """2-D convolution over (N, C_in, H, W) or (C_in, H, W) input; weight
    (C_out, C_in/groups, kH, kW). padding: int, pair, 'valid' or 'same' (stride 1 only);
    padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'."""

    _spatial = 2


class _ConvTransposeNd(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f"{type(self).__name__}")
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple, got "
                             f"{padding!r}")
        n = self._spatial
        super().__init__(in_channels, out_channels, _ntuple(kernel_size, n), _ntuple(stride, n),
                         _ntuple(padding, n), _ntuple(dilation, n), True,
                         _ntuple(output_padding, n), groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input: Tensor, output_size: Optional[Sequence[int]]
                        ) -> Tuple[int, ...]:
        """output_padding, or the one that makes the output exactly ``output_size`` (which may
        include the batch and channel dims), checked against the reachable range."""
        if output_size is None:
            return self.output_padding
        nd = self._spatial
        non_spatial = 2 if input.dim() == nd + 2 else 1
        output_size = list(output_size)
        if len(output_size) == non_spatial + nd:
            output_size = output_size[non_spatial:]
        if len(output_size) != nd:
            raise _layer_error(ValueError, f"{self!r}: for {input.dim()}D input, output_size "
                                           f"must have {nd} or {non_spatial + nd} elements "
                                           f"(got {len(output_size)})")
        in_sizes = tuple(input.shape)[non_spatial:]
        min_sizes = [(in_sizes[d] - 1) * self.stride[d] - 2 * self.padding[d]
                     + self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in range(nd)]
        max_sizes = [min_sizes[d] + self.stride[d] - 1 for d in range(nd)]
        for size, lo, hi in zip(output_size, min_sizes, max_sizes):
            if size < lo or size > hi:
                raise _layer_error(ValueError, f"{self!r}: requested an output size of "
                                               f"{output_size}, but valid sizes range from "
                                               f"{min_sizes} to {max_sizes} (for an input of "
                                               f"{in_sizes})")
        return tuple(output_size[d] - min_sizes[d] for d in range(nd))

    def forward(self, input: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        self._check_input(input)
        output_padding = self._output_padding(input, output_size)
        conv = F.conv_transpose2d if self._spatial == 2 else F.conv_transpose1d
        try:
            return conv(input, self.weight, self.bias, self.stride, self.padding,
                        output_padding, self.groups, self.dilation)
        except ValueError as err:
            raise _layer_error(ValueError, f"{self!r}: cannot apply to input of shape "
                                           f"{tuple(input.shape)}: {err.args[0]}") from err


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution (the gradient of Conv1d w.r.t. its input); weight
    (C_in, C_out/groups, k)."""

    _spatial = 1


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution (the gradient of Conv2d w.r.t. its input); weight
    (C_in, C_out/groups, kH, kW). ``forward(input, output_size=None)``: output_size picks the
    output_padding that gives exactly that size."""

    _spatial = 2
