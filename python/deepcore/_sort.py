"""sort / argsort / topk / kthvalue / msort, PyTorch's signatures. The C++ engine computes the
permutation (a stable sort per row, NaN largest); values are gathered from the input, so they
carry gradients through gather's derivative."""
from __future__ import annotations

from . import _C
from ._C import Tensor
from ._reduce import return_types
from ._tensor import install_methods

__all__ = ["sort", "argsort", "topk", "kthvalue", "msort"]


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    return _C._argsort(input, dim, descending)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    if input.dim() == 0:
        return return_types.sort(input.clone(), _C._full([], 0, _C.dtype.int64, False))
    idx = _C._argsort(input, dim, descending)
    return return_types.sort(_C.gather(input, dim, idx), idx)


def msort(input: Tensor):
    return sort(input, 0).values


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    size = input.shape[dim] if input.dim() else 1
    if not 0 <= k <= size:
        raise IndexError(f"[topk] k ({k}) is out of range for dimension {dim} of size {size}")
    if input.dim() == 0:
        return sort(input)
    idx = _C._topk_indices(input, k, dim, largest)
    return return_types.topk(_C.gather(input, dim, idx), idx)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    size = input.shape[dim] if input.dim() else 1
    if not 1 <= k <= size:
        raise IndexError(f"[kthvalue] k ({k}) is out of range for dimension {dim} of size {size}")
    if input.dim() == 0:
        return return_types.kthvalue(input.clone(), _C._full([], 0, _C.dtype.int64, False))
    idx = _C.narrow(_C._topk_indices(input, k, dim, False), dim, k - 1, 1)
    values = _C.gather(input, dim, idx)
    if not keepdim:
        values, idx = _C.squeeze(values, dim), _C.squeeze(idx, dim)
    return return_types.kthvalue(values, idx)


install_methods(globals())
