"""Flatten and Unflatten."""
from __future__ import annotations

from typing import Sequence, Union

from ..._C import Tensor
from .module import Module, _layer_error

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Flattens dims ``start_dim..end_dim`` into one (keeps the batch dim by default)."""

    __constants__ = ["start_dim", "end_dim"]

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        try:
            return input.flatten(self.start_dim, self.end_dim)
        except IndexError as err:
            raise _layer_error(IndexError, f"{self!r}: input of shape {tuple(input.shape)} has "
                                           f"{input.dim()} dimensions: {err}") from err

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands dim ``dim`` into ``unflattened_size`` (one entry may be -1)."""

    __constants__ = ["dim", "unflattened_size"]

    def __init__(self, dim: int, unflattened_size: Union[Sequence[int], "Tensor"]) -> None:
        super().__init__()
        if isinstance(dim, str):
            raise TypeError("Unflatten: named dimensions are not supported; dim must be an int")
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError("unflattened_size must be tuple of ints, but found type "
                            f"{type(unflattened_size).__name__}")
        for idx, elem in enumerate(unflattened_size):
            if not isinstance(elem, int):
                raise TypeError(f"unflattened_size must be tuple of ints, but found element of "
                                f"type {type(elem).__name__} at pos {idx}")
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input: Tensor) -> Tensor:
        try:
            return input.unflatten(self.dim, list(self.unflattened_size))
        except (ValueError, IndexError, RuntimeError) as err:
            raise _layer_error(type(err), f"{self!r}: cannot unflatten input of shape "
                                          f"{tuple(input.shape)}: {err}") from err

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
