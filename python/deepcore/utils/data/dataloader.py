"""DataLoader: batches from a dataset, in this process or in worker processes.

PyTorch's arguments, defaults, errors and iteration order. See Note [DataLoader workers]
in _worker.py for the process side and Note [TensorDataset fast path] for batching.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import sys
import time
import warnings
import weakref
from typing import Callable, Optional

from ..._C import Tensor
from .._generator import draw_seed
from . import _worker
from ._collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader"]

# Seconds to wait for a worker to exit before terminating it.
_JOIN_TIMEOUT = 5.0


class _InfiniteConstantSampler(Sampler):
    """Yields None forever: an iterable dataset decides where its stream ends."""

    def __iter__(self):
        while True:
            yield None


def _default_context():
    # fork starts workers in milliseconds and shares the dataset copy-on-write; it is safe
    # here because workers never enter an OpenMP region (Note [DataLoader workers]).
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class DataLoader:
    """Iterates over ``dataset`` in batches.

    Arguments, defaults and semantics are PyTorch's: ``batch_size=1``, ``shuffle=False``,
    ``sampler`` / ``batch_sampler``, ``num_workers=0`` (worker processes when > 0),
    ``collate_fn`` (``default_collate``, or ``default_convert`` when ``batch_size=None``),
    ``drop_last``, ``timeout``, ``worker_init_fn``, ``generator``, ``prefetch_factor``
    (batches in flight per worker, default 2), ``persistent_workers``. ``pin_memory`` is
    accepted and does nothing (there is no accelerator memory to stage into); ``in_order`` is
    accepted and batches always arrive in sampler order.
    """

    _LOCKED = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
               "persistent_workers")
    __initialized = False

    def __init__(self, dataset, batch_size: Optional[int] = 1, shuffle: Optional[bool] = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0,
                 collate_fn: Optional[Callable] = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True):
        if num_workers < 0:
            raise ValueError("[DataLoader] num_workers option should be non-negative; use "
                             "num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("[DataLoader] timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "[DataLoader] prefetch_factor option could only be specified in "
                "multiprocessing. let num_workers > 0 to enable multiprocessing, otherwise set "
                "prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 1:
            # PyTorch accepts 0, which never sends a batch to a worker: an empty epoch.
            raise ValueError("[DataLoader] prefetch_factor option should be a positive integer, "
                             f"got {prefetch_factor}")
        if persistent_workers and num_workers == 0:
            raise ValueError("[DataLoader] persistent_workers option needs num_workers > 0")

        self._is_iterable = isinstance(dataset, IterableDataset)
        if self._is_iterable:
            if shuffle not in (False, None):
                raise ValueError("[DataLoader] DataLoader with IterableDataset: expected "
                                 f"unspecified shuffle option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("[DataLoader] DataLoader with IterableDataset: expected "
                                 f"unspecified sampler option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("[DataLoader] DataLoader with IterableDataset: expected "
                                 "unspecified batch_sampler option, but got "
                                 f"batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("[DataLoader] sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("[DataLoader] batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("[DataLoader] batch_size=None option disables auto-batching and is "
                             "mutually exclusive with drop_last")

        if sampler is None:
            if self._is_iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        if collate_fn is None:
            collate_fn = default_collate if batch_sampler is not None else default_convert

        if isinstance(multiprocessing_context, str):
            multiprocessing_context = multiprocessing.get_context(multiprocessing_context)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        from ... import cuda as _cuda
        if pin_memory and not _cuda.is_available():
            # As torch on a machine without a GPU: nothing to pin for, so the flag is dropped.
            warnings.warn("[DataLoader] pin_memory=True but deepcore has no CUDA device; "
                          "batches stay in pageable memory", UserWarning, stacklevel=2)
            pin_memory = False
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._iterator = None
        self.__initialized = True

    def __setattr__(self, name, value):
        if self.__initialized and name in self._LOCKED:
            raise ValueError(f"{name} attribute should not be set after "
                             f"{type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _get_iterator(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        return _MultiProcessIter(self)

    def __iter__(self):
        if self.persistent_workers and self.num_workers > 0:
            if self._iterator is None:
                self._iterator = self._get_iterator()
            else:
                self._iterator._reset(self)
            return self._iterator
        return self._get_iterator()

    def __len__(self) -> int:
        if self._is_iterable:
            n = len(self.dataset)  # TypeError when the stream has no length, as in PyTorch
            if self.batch_size is not None:
                if self.drop_last:
                    return n // self.batch_size
                return (n + self.batch_size - 1) // self.batch_size
            return n
        return len(self._index_sampler)


class _BaseIter:
    def __init__(self, loader: DataLoader):
        # A weak reference: the loader holds a persistent iterator, and a cycle would leave
        # shutdown to the cycle collector, which finalizes the queues first.
        self._loader_ref = weakref.ref(loader)
        self._dataset = loader.dataset
        self._is_iterable = loader._is_iterable
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._collate_fn = loader.collate_fn
        self._pin = loader.pin_memory
        self._index_sampler = loader._index_sampler
        self._num_yielded = 0
        # Drawn before the sampler's own seed, in every mode, so a seeded run sees the same
        # order with or without workers.
        self._base_seed = draw_seed(loader.generator)
        self._sampler_iter = self._make_sampler_iter()

    def _make_sampler_iter(self):
        sampler = self._index_sampler
        if isinstance(sampler, BatchSampler):
            arrays = sampler._iter_arrays()
            if arrays is not None:
                return arrays
        return iter(sampler)

    def _next_index(self):
        return next(self._sampler_iter)

    def __iter__(self):
        return self

    def __len__(self) -> int:
        loader = self._loader_ref()
        return len(loader) if loader is not None else len(self._index_sampler)


def _pin_memory(data):
    """``pin_memory=True``: every tensor of a batch moved to page-locked memory, through dicts,
    lists, tuples and named tuples; other objects with a ``pin_memory()`` method pin themselves,
    as in torch."""
    if isinstance(data, Tensor):
        return data.pin_memory()
    if isinstance(data, dict):
        return type(data)((k, _pin_memory(v)) for k, v in data.items())
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_pin_memory(v) for v in data))
    if isinstance(data, (list, tuple)):
        return type(data)(_pin_memory(v) for v in data)
    if hasattr(data, "pin_memory"):
        return data.pin_memory()
    return data


class _SingleProcessIter(_BaseIter):
    def __init__(self, loader: DataLoader):
        super().__init__(loader)
        self._fetcher = _worker.create_fetcher(self._is_iterable, self._dataset,
                                               self._auto_collation, self._collate_fn,
                                               self._drop_last)

    def __next__(self):
        index = self._next_index()
        data = self._fetcher.fetch(index)
        self._num_yielded += 1
        return _pin_memory(data) if self._pin else data


class _MultiProcessIter(_BaseIter):
    """Workers fetch batches; results are re-ordered into sampler order (task indices)."""

    def __init__(self, loader: DataLoader):
        super().__init__(loader)
        self._num_workers = loader.num_workers
        self._prefetch_factor = loader.prefetch_factor
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        ctx = loader.multiprocessing_context or _default_context()
        self._shutdown = False
        self._workers_done_event = ctx.Event()
        self._data_queue = ctx.Queue()
        self._index_queues = []
        self._workers = []
        parent_pid = os.getpid()
        try:
            for i in range(self._num_workers):
                index_queue = ctx.Queue()
                index_queue.cancel_join_thread()  # never block exit on an unread queue
                w = ctx.Process(
                    target=_worker.worker_loop,
                    args=(self._is_iterable, self._dataset, index_queue, self._data_queue,
                          self._workers_done_event, self._auto_collation, self._collate_fn,
                          self._drop_last, self._base_seed, loader.worker_init_fn, i,
                          self._num_workers, parent_pid),
                    daemon=True)
                w.start()
                self._index_queues.append(index_queue)
                self._workers.append(w)
        except BaseException:
            self._shutdown_workers()
            raise
        self._reset(loader, first_iter=True)

    def _reset(self, loader: DataLoader, first_iter: bool = False):
        if not first_iter:
            self._sampler_iter = self._make_sampler_iter()
        self._num_yielded = 0
        self._send_idx = 0       # next task index to send
        self._rcvd_idx = 0       # next task index to return
        self._task_info = {}     # task idx -> (worker_id,) or (worker_id, data) when early
        self._tasks_outstanding = 0
        self._workers_status = [True] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        if not first_iter:
            # Persistent workers: start a new epoch; results still queued from an abandoned
            # epoch arrive before each worker's acknowledgement and are dropped.
            for q in self._index_queues:
                q.put(_worker._ResumeIteration())
            acks = 0
            while acks < self._num_workers:
                idx, _ = self._get_data()
                if isinstance(idx, _worker._ResumeIteration):
                    acks += 1
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def _try_put_index(self):
        try:
            index = self._next_index()
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker_id = next(self._worker_cycle)
            if self._workers_status[worker_id]:
                break
        else:
            return  # every worker has exhausted its iterable dataset
        self._index_queues[worker_id].put((self._send_idx, index))
        self._task_info[self._send_idx] = (worker_id,)
        self._tasks_outstanding += 1
        self._send_idx += 1

    def _get_data(self):
        """Next (task idx, payload) from any worker; watches timeout and dead workers."""
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait = _worker.STATUS_CHECK_INTERVAL
            if deadline is not None:
                wait = min(wait, max(deadline - time.monotonic(), 0.0))
            try:
                return self._data_queue.get(timeout=wait)
            except queue.Empty:
                pass
            if deadline is not None and time.monotonic() >= deadline:
                self._shutdown_workers(join_timeout=0.5)  # they are stuck: don't wait long
                raise RuntimeError(
                    f"[DataLoader] timed out after {self._timeout} seconds waiting for a batch")
            dead = [w for w in self._workers if not w.is_alive()]
            if dead:
                desc = ", ".join(f"pid {w.pid}, exit code {w.exitcode}" for w in dead)
                self._shutdown_workers(join_timeout=0.5)
                raise RuntimeError(f"[DataLoader] worker ({desc}) exited unexpectedly")

    def __next__(self):
        while True:
            # Skip tasks of workers whose iterable ran out: their results never come.
            while self._rcvd_idx < self._send_idx:
                info = self._task_info[self._rcvd_idx]
                if len(info) == 2 or self._workers_status[info[0]]:
                    break
                del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration

            if len(self._task_info[self._rcvd_idx]) == 2:
                data = self._task_info.pop(self._rcvd_idx)[1]
                return self._process(data)

            idx, payload = self._get_data()
            if isinstance(idx, _worker._ResumeIteration):
                continue
            self._tasks_outstanding -= 1
            data = _worker._deserialize(payload)
            if isinstance(data, _worker._IterableDatasetStopIteration):
                self._workers_status[data.worker_id] = False
                self._try_put_index()
                continue
            if idx != self._rcvd_idx:
                self._task_info[idx] += (data,)  # early: keep it until its turn
            else:
                del self._task_info[idx]
                return self._process(data)

    def _process(self, data):
        self._rcvd_idx += 1
        self._try_put_index()
        if isinstance(data, _worker.ExceptionWrapper):
            if not self._persistent:
                self._shutdown_workers()
            data.reraise()
        self._num_yielded += 1
        return _pin_memory(data) if self._pin else data

    def _shutdown_workers(self, join_timeout: float = _JOIN_TIMEOUT):
        if self._shutdown:
            return
        self._shutdown = True
        try:
            self._workers_done_event.set()
            for q in self._index_queues:
                try:
                    q.put(None)
                except (OSError, ValueError):
                    pass
            for w in self._workers:
                w.join(timeout=join_timeout)
                if w.is_alive():
                    w.terminate()
                    w.join(timeout=1.0)
        finally:
            for q in self._index_queues:
                q.close()
            self._data_queue.cancel_join_thread()
            self._data_queue.close()

    def __del__(self):
        try:
            self._shutdown_workers()
        except Exception:
            pass

