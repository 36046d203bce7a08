"""Dropout, Dropout1d/2d/3d (whole channels)."""
from __future__ import annotations

from ... import _C
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
    """Drops whole channels: one Bernoulli draw per (N, C), broadcast over the feature dims.
    Accepts batched (N, C, *features) or unbatched (C, *features) input."""
    if not module.training or module.p == 0:
        return input
    nd = input.dim()
    if nd not in (feature_dims + 1, feature_dims + 2):
        raise _layer_error(ValueError, f"{module!r}: expected a {feature_dims + 1}-D "
                                       f"(unbatched) or {feature_dims + 2}-D (batched) input, "
                                       f"got shape {tuple(input.shape)}")
    mask_shape = list(input.shape[:nd - feature_dims]) + [1] * feature_dims
    if module.p == 1:
        keep = _C._full(mask_shape, 0.0, input.dtype, False)
    else:
        probs = _C._full(mask_shape, 1.0 - module.p, input.dtype, False)
        keep = _C.mul(_C.bernoulli(probs), 1.0 / (1.0 - module.p))
    if module.inplace:
        return _C.mul_(input, keep)
    return _C.mul(input, keep)


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
