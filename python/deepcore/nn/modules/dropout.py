"""Dropout, Dropout1d/2d/3d (whole channels)."""
from __future__ import annotations

from ..._C import Tensor
from .. import functional as F
from .module import Module, _layer_error

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


class _DropoutNd(Module):
    __constants__ = ["p", "inplace"]
    p: float
    inplace: bool

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zeroes each element with probability ``p`` in training mode and scales the rest by
    1/(1-p); the identity in eval mode."""

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)


def _channel_dropout(module: _DropoutNd, input: Tensor, feature_dims: int) -> Tensor:
    """F.dropout1d / 2d / 3d, with the input's rank checked here so an error names the layer."""
    if not module.training or module.p == 0:
        return input
    nd = input.dim()
    if nd not in (feature_dims + 1, feature_dims + 2):
        raise _layer_error(ValueError, f"{module!r}: expected a {feature_dims + 1}-D "
                                       f"(unbatched) or {feature_dims + 2}-D (batched) input, "
                                       f"got shape {tuple(input.shape)}")
    fn = (F.dropout1d, F.dropout2d, F.dropout3d)[feature_dims - 1]
    return fn(input, module.p, module.training, module.inplace)


class Dropout1d(_DropoutNd):
    """Zeroes whole channels of (N, C, L) or (C, L) input."""

    def forward(self, input: Tensor) -> Tensor:
        return _channel_dropout(self, input, 1)


class Dropout2d(_DropoutNd):
    """Zeroes whole channels of (N, C, H, W) or (C, H, W) input."""

    def forward(self, input: Tensor) -> Tensor:
        return _channel_dropout(self, input, 2)


class Dropout3d(_DropoutNd):
    """Zeroes whole channels of (N, C, D, H, W) or (C, D, H, W) input."""

    def forward(self, input: Tensor) -> Tensor:
        return _channel_dropout(self, input, 3)
