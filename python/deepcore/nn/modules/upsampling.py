"""Upsample, UpsamplingNearest2d, UpsamplingBilinear2d (torch.nn's arguments and repr) on
deepcore.nn.functional.interpolate."""
from __future__ import annotations

from typing import Any, Optional

from ..._C import Tensor
from .. import _functional_conv as F
from .module import Module, _layer_error

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


class Upsample(Module):
    """Resizes (N, C, L) or (N, C, H, W) input to ``size`` or by ``scale_factor`` with
    'nearest', 'linear' or 'bilinear' interpolation."""

    __constants__ = ["size", "scale_factor", "mode", "align_corners", "name",
                     "recompute_scale_factor"]

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: Optional[bool] = None,
                 recompute_scale_factor: Optional[bool] = None) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        try:
            return F.interpolate(input, self.size, self.scale_factor, self.mode,
                                 self.align_corners,
                                 recompute_scale_factor=self.recompute_scale_factor)
        except ValueError as err:
            shape = tuple(getattr(input, "shape", ()))
            raise _layer_error(ValueError, f"{self!r}: cannot apply to input of shape "
                                           f"{shape}: {err.args[0]}") from err

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = "scale_factor=" + repr(self.scale_factor)
        else:
            info = "size=" + repr(self.size)
        info += ", mode=" + repr(self.mode)
        return info


class UpsamplingNearest2d(Upsample):
    """Upsample(mode='nearest') for 4-D input."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Upsample(mode='bilinear', align_corners=True) for 4-D input."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
