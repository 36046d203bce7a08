"""Samplers: which dataset keys to fetch, in which order (PyTorch's names and defaults).

Random samplers draw one epoch's indices at once with NumPy (``_epoch_indices``) and the
DataLoader's fast path slices that array into batches, so no Python loop touches each index.
An epoch longer than ``_CHUNK`` indices is drawn ``_CHUNK`` at a time (``_epoch_chunks``):
training loops ask for an endless stream with ``RandomSampler(ds, replacement=True,
num_samples=int(1e10))``, which as one array would need 80 GB.
"""
from __future__ import annotations

import numbers
import itertools
from typing import Iterator, List, Optional, Sequence

import numpy as np

from .._generator import rng_for

_CHUNK = 1 << 20  # indices drawn at once when an epoch is longer (8 MB of int64)

__all__ = [
    "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
    "WeightedRandomSampler", "BatchSampler",
]


class Sampler:
    """Base class: ``__iter__`` yields dataset keys; ``__len__`` is optional."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def _epoch_indices(self) -> Optional[np.ndarray]:
        """One epoch of integer indices as an int64 array (consuming the same randomness as
        ``__iter__``), or None when the sampler cannot produce them up front."""
        return None

    def _epoch_chunks(self) -> Optional[Iterator[np.ndarray]]:
        """One epoch of integer indices as consecutive int64 arrays, or None (as
        ``_epoch_indices``). The randomness is drawn when this is called, not when the chunks
        are read, so the order does not depend on when iteration starts."""
        arr = self._epoch_indices()
        return None if arr is None else iter((arr,))


def _check_positive_int(value, name: str, owner: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"[{owner}] {name} should be a positive integer value, "
                         f"but got {name}={value!r}")


def _check_bool(value, name: str, owner: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"[{owner}] {name} should be a boolean value, but got {name}={value!r}")


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source):
        self.data_source = data_source

    def _epoch_indices(self) -> np.ndarray:
        return np.arange(len(self.data_source), dtype=np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation (repeated to ``num_samples`` if larger), or ``num_samples``
    uniform draws with replacement. A fresh permutation every epoch."""

    def __init__(self, data_source, replacement: bool = False,
                 num_samples: Optional[int] = None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        _check_bool(replacement, "replacement", "RandomSampler")
        _check_positive_int(self.num_samples, "num_samples", "RandomSampler")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _epoch_indices(self) -> np.ndarray:
        n = len(self.data_source)
        rng = rng_for(self.generator)
        if self.replacement:
            return rng.integers(0, n, size=self.num_samples, dtype=np.int64)
        full, rest = divmod(self.num_samples, n)
        parts = [rng.permutation(n) for _ in range(full)]
        if rest:
            parts.append(rng.permutation(n)[:rest])
        return np.concatenate(parts).astype(np.int64, copy=False) if parts else \
            np.empty(0, np.int64)

    def _epoch_chunks(self) -> Iterator[np.ndarray]:
        if self.num_samples <= _CHUNK:
            return iter((self._epoch_indices(),))
        return self._lazy_chunks(rng_for(self.generator))

    def _lazy_chunks(self, rng) -> Iterator[np.ndarray]:
        n, left = len(self.data_source), self.num_samples
        while left > 0:
            if self.replacement:
                k = min(_CHUNK, left)
                yield rng.integers(0, n, size=k, dtype=np.int64)
            else:
                k = min(n, left)
                yield rng.permutation(n)[:k].astype(np.int64, copy=False)
            left -= k

    def __iter__(self) -> Iterator[int]:
        return itertools.chain.from_iterable(c.tolist() for c in self._epoch_chunks())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order, without replacement."""

    def __init__(self, indices: Sequence[int], generator=None):
        self.indices = indices
        self.generator = generator

    def _int_indices(self) -> Optional[np.ndarray]:
        try:
            arr = np.asarray(self.indices)
        except (TypeError, ValueError):
            return None
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            return None  # keys that are not plain integers: __iter__ yields them as given
        return arr.astype(np.int64, copy=False)

    def _epoch_indices(self) -> Optional[np.ndarray]:
        arr = self._int_indices()
        if arr is None:
            return None
        return arr[rng_for(self.generator).permutation(len(arr))]

    def __iter__(self) -> Iterator:
        arr = self._epoch_indices()
        if arr is not None:
            return iter(arr.tolist())
        perm = rng_for(self.generator).permutation(len(self.indices)).tolist()
        return (self.indices[i] for i in perm)

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator=None):
        _check_positive_int(num_samples, "num_samples", "WeightedRandomSampler")
        _check_bool(replacement, "replacement", "WeightedRandomSampler")
        w = np.asarray(weights.tolist() if hasattr(weights, "tolist") else weights,
                       dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"[WeightedRandomSampler] weights should be a 1d sequence but "
                             f"given weights have shape {tuple(w.shape)}")
        if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("[WeightedRandomSampler] weights must be finite, non-negative and "
                             "not all zero")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(
                f"[WeightedRandomSampler] cannot draw {num_samples} samples without replacement "
                f"from {np.count_nonzero(w)} non-zero weights")
        self.weights = w
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = generator

    def _epoch_indices(self) -> np.ndarray:
        rng = rng_for(self.generator)
        p = self.weights / self.weights.sum()
        return rng.choice(len(p), size=self.num_samples, replace=self.replacement,
                          p=p).astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[int]:
        return iter(self._epoch_indices().tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the keys of ``sampler`` into lists of ``batch_size`` (the last one shorter
    unless ``drop_last``)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        _check_positive_int(batch_size, "batch_size", "BatchSampler")
        _check_bool(drop_last, "drop_last", "BatchSampler")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def _iter_arrays(self) -> Optional[Iterator[np.ndarray]]:
        """Batches as int64 arrays when the sampler can produce its epoch's indices as arrays."""
        if type(self).__iter__ is not BatchSampler.__iter__:
            return None  # a subclass decides its own batches
        fn = getattr(self.sampler, "_epoch_chunks", None)
        chunks = fn() if fn is not None else None
        if chunks is None:
            return None
        return self._slices(chunks)

    def _slices(self, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        bs = self.batch_size
        rest = np.empty(0, np.int64)  # the tail of a chunk, completed by the next one
        for arr in chunks:
            if len(rest):
                arr = np.concatenate([rest, arr])
            stop = len(arr) - len(arr) % bs
            for i in range(0, stop, bs):
                yield arr[i:i + bs]
            rest = arr[stop:]
        if len(rest) and not self.drop_last:
            yield rest

    def __iter__(self) -> Iterator[List]:
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
