"""default_collate / default_convert: lists of samples into batches, PyTorch's rules.

Tensors stack along a new dim 0; NumPy arrays and NumPy scalars become tensors (then
stack); Python floats become float64, ints int64 and bools bool tensors; strings and bytes
stay lists; dicts, namedtuples, tuples and lists are collated field by field (tuples come
back as lists, as in PyTorch).
"""
from __future__ import annotations

import collections.abc
import copy

import numpy as np

from ... import _C
from ..._C import Tensor

__all__ = ["default_collate", "default_convert"]

_ERR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        "found {}")


def _is_namedtuple(obj) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _array_to_tensor(arr: np.ndarray) -> Tensor:
    if arr.dtype.kind in "SaUO":
        raise TypeError(_ERR.format(arr.dtype))
    # from_numpy shares memory; arrays it can't view (negative strides, byte-swapped) are
    # copied first. Unsupported dtypes raise from_numpy's TypeError naming the dtype.
    if any(s < 0 for s in arr.strides) or not arr.dtype.isnative:
        arr = arr.copy(order="C").astype(arr.dtype.newbyteorder("="), copy=False)
    return _C.from_numpy(arr)


def _stack(batch) -> Tensor:
    return _C.stack(list(batch), 0)


def default_collate(batch):
    """Collates a list of samples into one batch (see the module docstring for the rules)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(batch)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "SaUO":
            raise TypeError(_ERR.format(elem.dtype))
        return _stack([_array_to_tensor(np.asarray(b)) for b in batch])
    if isinstance(elem, np.generic) and not isinstance(elem, (np.str_, np.bytes_)):
        if elem.dtype.kind in "SaUO":
            raise TypeError(_ERR.format(elem.dtype))
        return _array_to_tensor(np.asarray(batch, dtype=elem.dtype))
    if isinstance(elem, bool):
        return _C.from_numpy(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, int):
        # Python ints mixed with bools collate as int64, as torch.tensor([...]) does.
        return _C.from_numpy(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, float):
        return _C.from_numpy(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)  # keeps the mapping's type (OrderedDict, a subclass...)
            clone.update(collated)
            return clone
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [list(s) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return [default_collate(s) for s in transposed]
        try:
            return type(elem)([default_collate(s) for s in transposed])
        except TypeError:
            return [default_collate(s) for s in transposed]
    raise TypeError(_ERR.format(type(elem)))


def default_convert(data):
    """Converts one unbatched sample: NumPy arrays and scalars become tensors, containers are
    converted element by element, anything else is returned as is (``batch_size=None``)."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        if data.dtype.kind in "SaUO":
            return data
        return _array_to_tensor(data)
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        if data.dtype.kind in "SaUO":
            return data
        return _array_to_tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(data[key]) for key in data}
        if isinstance(data, collections.abc.MutableMapping):
            clone = copy.copy(data)
            clone.update(converted)
            return clone
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
