"""parameters_to_vector / vector_to_parameters: one flat vector <-> a list of parameters."""
from __future__ import annotations

from typing import Iterable

from ... import _C
from ..._C import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """The parameters flattened and concatenated (differentiable, like PyTorch's)."""
    return _C.cat([_C._reshape(p, [-1]) for p in parameters], 0)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Points each parameter's data at its slice of ``vec`` (PyTorch's ``param.data = ...``)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected deepcore.Tensor, but got: {type(vec).__name__}")
    pointer = 0
    for param in parameters:
        n = param.numel()
        param._set_data(_C._reshape(_C.narrow(vec.detach(), 0, pointer, n), list(param.shape)))
        pointer += n
