"""What runs inside a DataLoader worker process, and what crosses the process boundary.

Note [DataLoader workers]
A worker owns a copy of the dataset (inherited by fork, or pickled for spawn), reads
``(task_idx, indices)`` from its own index queue, fetches and collates the batch, and puts
``(task_idx, payload)`` on the shared result queue. The main process reorders results by
``task_idx``. Details that keep this robust:

- The worker pickles each result itself (``_serialize``) and puts bytes on the queue. A
  multiprocessing queue pickles in a background thread that only *prints* errors, so an
  unpicklable batch would otherwise vanish and leave the main process waiting forever.
- deepcore tensors cross as NumPy arrays (``_reduce_tensor``) and are rebuilt with
  ``from_numpy`` without another copy; the reducer is registered with multiprocessing's
  ForkingPickler only, so plain ``pickle`` still refuses tensors.
- Workers run deepcore with one thread: the engine uses OpenMP, whose thread pool does not
  survive ``fork``, and N workers x M threads would oversubscribe the cores anyway.
- A worker polls its queue with a timeout so it notices when the main process has died or
  has set the done event, and on shutdown cancels the join of its result-queue feeder
  thread, which could otherwise block forever on a pipe nobody reads.
"""
from __future__ import annotations

import os
import pickle
import queue
import random
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import Any, Optional

import numpy as np

from ... import _C
from ..._C import Tensor
from ._collate import default_collate
from .dataset import _batch_fetcher

__all__ = ["WorkerInfo", "get_worker_info"]

# How often (seconds) the main process checks that its workers are alive while it waits.
STATUS_CHECK_INTERVAL = 5.0
# How often (seconds) an idle worker checks that its parent lives and hasn't asked it to stop.
WORKER_POLL_INTERVAL = 1.0


class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker: id, num_workers, seed, dataset."""

    __initialized = False

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.__keys = tuple(kwargs.keys())
        self.__initialized = True

    def __setattr__(self, key, val):
        if self.__initialized:
            raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")
        return super().__setattr__(key, val)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__keys)
        return f"{type(self).__name__}({items})"


_worker_info: Optional[WorkerInfo] = None


def get_worker_info() -> Optional[WorkerInfo]:
    """In a DataLoader worker: its ``WorkerInfo`` (``id``, ``num_workers``, ``seed``,
    ``dataset`` = this worker's copy). In the main process: None."""
    return _worker_info


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process with its formatted
    traceback and re-raised there as the same type (like PyTorch's ExceptionWrapper)."""

    def __init__(self, exc_info=None, where: str = "in background"):
        if exc_info is None:
            exc_info = sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where
        try:  # the type must be importable in the main process; RuntimeError otherwise
            pickle.loads(pickle.dumps(self.exc_type))
        except Exception:
            self.exc_type = RuntimeError

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)  # KeyError repr()s its message; keep newlines
        try:
            exception = self.exc_type(msg)
        except Exception:
            # Constructors that need other arguments: fall back to RuntimeError.
            raise RuntimeError(msg) from None
        raise exception


class _KeyErrorMessage(str):
    def __repr__(self):
        return self


@dataclass(frozen=True)
class _IterableDatasetStopIteration:
    worker_id: int


@dataclass(frozen=True)
class _ResumeIteration:
    """Starts a new epoch in persistent workers; echoed back as an acknowledgement."""


# ---- tensors across processes ------------------------------------------------------------------

def _rebuild_tensor(array: np.ndarray, requires_grad: bool) -> Tensor:
    if not array.flags.writeable:
        array = array.copy()
    t = _C.from_numpy(array)
    return t.requires_grad_(True) if requires_grad else t


def _reduce_tensor(t: Tensor):
    array = _C._to_numpy(t.detach(), True)  # a view; NumPy pickles just the viewed elements
    return _rebuild_tensor, (array, bool(t.requires_grad))


ForkingPickler.register(Tensor, _reduce_tensor)


def _serialize(obj) -> bytes:
    return bytes(ForkingPickler.dumps(obj, pickle.HIGHEST_PROTOCOL))


def _deserialize(payload: bytes):
    return pickle.loads(payload)


# ---- fetchers: indices -> batch -----------------------------------------------------------------

class _MapFetcher:
    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        # Note [TensorDataset fast path]: default_collate of TensorDataset samples is exactly
        # one gather per tensor with the batch's index array.
        self.batch_fn = (_batch_fetcher(dataset)
                         if auto_collation and collate_fn is default_collate else None)

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if self.batch_fn is not None:
            arr = index if isinstance(index, np.ndarray) else np.asarray(index)
            if arr.ndim == 1 and arr.size and arr.dtype.kind in "iu":
                return self.batch_fn(arr)
        if isinstance(index, np.ndarray):
            index = index.tolist()
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            data = getitems(index)
        else:
            data = [self.dataset[i] for i in index]
        return self.collate_fn(data)


class _IterableFetcher:
    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool):
        self.iterator = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.iterator))
        data = []
        for _ in index:
            try:
                data.append(next(self.iterator))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def create_fetcher(is_iterable: bool, dataset, auto_collation, collate_fn, drop_last):
    cls = _IterableFetcher if is_iterable else _MapFetcher
    return cls(dataset, auto_collation, collate_fn, drop_last)


# ---- the worker process --------------------------------------------------------------------------

def _seed_worker(seed: int, base_seed: int, worker_id: int) -> None:
    random.seed(seed)
    _C.manual_seed(seed & ((1 << 64) - 1))
    np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))


def worker_loop(is_iterable: bool, dataset, index_queue, data_queue, done_event,
                auto_collation: bool, collate_fn, drop_last: bool, base_seed: int,
                init_fn, worker_id: int, num_workers: int, parent_pid: int) -> None:
    global _worker_info
    try:
        _C.set_num_threads(1)
        seed = base_seed + worker_id
        _seed_worker(seed, base_seed, worker_id)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed,
                                  dataset=dataset)
        where = f"in DataLoader worker process {worker_id}"
        init_error: Any = None
        fetcher = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = create_fetcher(is_iterable, dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            init_error = ExceptionWrapper(where=where)

        iteration_end = False
        while True:
            if os.getppid() != parent_pid:
                break  # the main process died: nobody will read our results
            try:
                task = index_queue.get(timeout=WORKER_POLL_INTERVAL)
            except queue.Empty:
                if done_event.is_set():
                    break  # shutdown whose None never arrived (a queue finalized early)
                continue
            if task is None:
                break  # shutdown request
            if isinstance(task, _ResumeIteration):
                data_queue.put((task, None))
                iteration_end = False
                if init_error is None:
                    try:
                        fetcher = create_fetcher(is_iterable, dataset, auto_collation,
                                                 collate_fn, drop_last)
                    except Exception:
                        init_error = ExceptionWrapper(where=where)
                continue
            if done_event.is_set() or iteration_end:
                continue  # draining: the main process no longer wants results
            idx, index = task
            if init_error is not None:
                data, init_error = init_error, None
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if not is_iterable:
                        data = ExceptionWrapper(where=where)
                    else:
                        data = _IterableDatasetStopIteration(worker_id)
                        iteration_end = True
                except Exception:
                    data = ExceptionWrapper(where=where)
            try:
                payload = _serialize(data)
            except Exception:
                payload = _serialize(ExceptionWrapper(where=f"{where} while sending a batch"))
            data_queue.put((idx, payload))
            del data, payload, task, index  # don't hold the last batch while waiting
    except KeyboardInterrupt:
        pass  # the main process handles Ctrl-C
    if done_event.is_set():
        data_queue.cancel_join_thread()
        data_queue.close()
