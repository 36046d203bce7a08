"""``DistributedSampler``: the share of a dataset one of ``num_replicas`` processes reads.

Without ``num_replicas`` / ``rank`` the sampler asks the default process group of
``deepcore.distributed`` for them, as PyTorch's does. It splits indices exactly as PyTorch's:
shuffle with ``seed + epoch`` (``set_epoch``), pad by repeating indices (or drop the tail with
``drop_last``) to a multiple of ``num_replicas``, then take every ``num_replicas``-th index
from ``rank``. Every replica must use the same ``seed``: the replicas then partition one
permutation, and ``set_epoch(e)`` (called by every replica at the start of epoch ``e``)
gives each epoch its own.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np

from .sampler import Sampler

__all__ = ["DistributedSampler"]


def _group_rank_and_size():
    try:
        from ... import distributed as dist
    except ImportError:
        dist = None
    if dist is None or not dist.is_initialized():
        raise ValueError("DistributedSampler: pass num_replicas and rank, or call "
                         "deepcore.distributed.init_process_group() first so they can be read "
                         "from the default process group")
    return dist.get_rank(), dist.get_world_size()


class DistributedSampler(Sampler):
    def __init__(self, dataset, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            group_rank, group_size = _group_rank_and_size()
            num_replicas = group_size if num_replicas is None else num_replicas
            rank = group_rank if rank is None else rank
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive integer, "
                             f"got {num_replicas!r}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = int(seed)

    def _indices(self) -> np.ndarray:
        """This replica's indices for the current epoch (int64)."""
        n = len(self.dataset)
        if self.shuffle:
            from ... import randperm
            from .._generator import Generator
            g = Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = randperm(n, generator=g).numpy().astype(np.int64)
        else:
            indices = np.arange(n, dtype=np.int64)
        if not self.drop_last:
            padding = self.total_size - n
            if padding > 0:
                indices = np.concatenate([indices, np.resize(indices, padding)])
        else:
            indices = indices[:self.total_size]
        return indices[self.rank:self.total_size:self.num_replicas]

    def _epoch_chunks(self):
        # BatchSampler slices this array instead of iterating index by index.
        return iter([self._indices()])

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch the next iteration shuffles for: call it on every replica at the
        start of each epoch, or every epoch repeats the first one's order."""
        self.epoch = int(epoch)
