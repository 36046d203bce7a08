"""Datasets: map-style (``__getitem__`` + ``__len__``) and iterable-style (``__iter__``),
with PyTorch's names and semantics."""
from __future__ import annotations

import bisect
import math
import warnings
from typing import Iterable, List, Sequence, Union

import numpy as np

from ... import _C
from ..._C import Tensor
from .._generator import rng_for

__all__ = [
    "Dataset", "IterableDataset", "TensorDataset", "StackDataset", "ConcatDataset",
    "ChainDataset", "Subset", "random_split",
]


class Dataset:
    """A map from keys (usually ``0 .. len - 1``) to samples. Subclasses define
    ``__getitem__`` and, for the default samplers, ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples. With ``num_workers > 0`` every worker iterates its own copy;
    use ``get_worker_info()`` inside ``__iter__`` to give each worker a shard."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other: "Dataset") -> "ChainDataset":
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Sample ``i`` is ``tuple(t[i] for t in tensors)``; all tensors share their first dim.

    The DataLoader batches it by one gather per tensor (see ``_fetch_batch``) instead of
    indexing and stacking sample by sample.
    """

    def __init__(self, *tensors: Tensor):
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"[TensorDataset] expected deepcore tensors, got {type(t).__name__}")
            if t.dim() == 0:
                raise ValueError("[TensorDataset] tensors must have at least one dimension")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) > 1:
            raise ValueError(
                f"[TensorDataset] size mismatch between tensors: first dimensions are {sizes}, "
                "expected them all equal")
        self.tensors = tuple(tensors)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0] if self.tensors else 0

    def _fetch_batch(self, indices: np.ndarray) -> list:
        # One gather per tensor: out[b, ...] = t[indices[b], ...].
        idx = _C.from_numpy(np.ascontiguousarray(indices, dtype=np.int64))
        return [_C.index_select(t, 0, idx) for t in self.tensors]


class StackDataset(Dataset):
    """Sample ``i`` is ``tuple(d[i] for d in args)`` or ``{k: d[i] for k, d in kwargs}``."""

    def __init__(self, *args: Dataset, **kwargs: Dataset):
        if args and kwargs:
            raise ValueError("[StackDataset] pass datasets either as positional or as keyword "
                             "arguments, not both")
        datasets = list(args) or list(kwargs.values())
        if not datasets:
            raise ValueError("[StackDataset] at least one dataset is required")
        lengths = [len(d) for d in datasets]
        if len(set(lengths)) > 1:
            raise ValueError(f"[StackDataset] size mismatch between datasets: lengths {lengths}")
        self._length = lengths[0]
        self.datasets = tuple(args) if args else dict(kwargs)

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length


class ConcatDataset(Dataset):
    """The datasets one after the other; ``cumulative_sizes[i]`` ends dataset ``i``."""

    @staticmethod
    def cumsum(sequence) -> List[int]:
        out, total = [], 0
        for d in sequence:
            total += len(d)
            out.append(total)
        return out

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("[ConcatDataset] datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("[ConcatDataset] does not support IterableDataset; "
                                "use ChainDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int):
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise ValueError(
                    f"[ConcatDataset] absolute value of index {idx} should not exceed "
                    f"dataset length {n}")
            idx += n
        if idx >= n:
            raise IndexError(f"[ConcatDataset] index {idx} is out of range for length {n}")
        i = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[i - 1] if i > 0 else 0
        return self.datasets[i][idx - start]


class ChainDataset(IterableDataset):
    """Iterable datasets chained one after the other."""

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError("[ChainDataset] only supports IterableDataset")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: List[int]) -> list:
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


def _lengths_from_fractions(fractions: Sequence[float], n: int) -> List[int]:
    lengths = [int(math.floor(n * f)) for f in fractions]
    # Hand out what flooring left over one by one, first subsets first (PyTorch's rule).
    for i in range(n - sum(lengths)):
        lengths[i % len(lengths)] += 1
    for i, length in enumerate(lengths):
        if length == 0:
            warnings.warn(f"Length of split at index {i} is 0. This might result in an empty "
                          "dataset.", stacklevel=3)
    return lengths


def random_split(dataset: Dataset, lengths: Sequence[Union[int, float]],
                 generator=None) -> List[Subset]:
    """Splits ``dataset`` into non-overlapping random subsets of the given lengths.

    ``lengths`` may be fractions summing to 1. Without ``generator`` the permutation is drawn
    from deepcore's global RNG, so ``dc.manual_seed`` makes it reproducible.
    """
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        if any(f < 0 or f > 1 for f in lengths):
            raise ValueError(f"[random_split] fractions must be in [0, 1], got {list(lengths)}")
        lengths = _lengths_from_fractions(lengths, n)
    if any(int(x) != x or x < 0 for x in lengths):
        raise ValueError(f"[random_split] lengths must be non-negative integers or fractions "
                         f"summing to 1, got {list(lengths)}")
    lengths = [int(x) for x in lengths]
    if sum(lengths) != n:
        raise ValueError(
            f"[random_split] sum of input lengths ({sum(lengths)}) does not equal the length of "
            f"the input dataset ({n})")
    perm = rng_for(generator).permutation(n).tolist()
    out, offset = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[offset:offset + length]))
        offset += length
    return out


def _batch_fetcher(dataset):
    """A function ``indices (int64 array) -> batch`` that gathers a whole batch at once, equal
    to ``default_collate([dataset[i] for i in indices])``; None where no such shortcut exists.

    Only datasets whose ``__getitem__`` is TensorDataset's own qualify (a subclass overriding
    it may return anything), possibly behind Subsets.
    """
    if (isinstance(dataset, TensorDataset)
            and type(dataset).__getitem__ is TensorDataset.__getitem__):
        return dataset._fetch_batch if dataset.tensors else None
    if isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__:
        inner = _batch_fetcher(dataset.dataset)
        if inner is None:
            return None
        try:
            mapping = np.asarray(dataset.indices, dtype=np.int64)
        except (TypeError, ValueError):
            return None
        if mapping.ndim != 1:
            return None
        return lambda indices: inner(mapping[indices])
    return None
