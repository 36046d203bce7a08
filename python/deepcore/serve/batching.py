"""Dynamic batching: concurrent requests are merged into one forward pass.

Note [Dynamic batching]
Requests arrive on the event loop; the model runs on one worker thread, so the loop keeps
accepting, parsing and answering while a batch computes (deepcore's kernels release the GIL).
``submit`` puts (arrays, rows, future) on a thread-safe queue and awaits the future. The worker
takes the oldest request, then keeps taking requests until the batch holds ``max_batch_size``
rows or ``max_delay_ms`` has passed since it took the first one -- requests already queued
(because the previous batch was computing) join at once, so under load batches fill without
waiting. Only requests whose per-row shapes agree are merged (a sequence model's requests of
different lengths run in separate batches); a request that does not fit waits, in order, for
the next batch. The batch is concatenated along dimension 0, run once, split back by row
counts, and each part is handed to its own request's future through
``loop.call_soon_threadsafe``. A request larger than ``max_batch_size`` runs alone.

If a merged batch fails (one request's token id out of range, say), each request of it is run
again on its own, so only the bad one gets the error. ``max_batch_size=1`` turns merging off;
requests still run on the worker thread, one at a time.

``close`` lets the worker finish every request already queued (the graceful-shutdown drain),
then stops it; ``submit`` refuses new work from then on.
"""
from __future__ import annotations

import asyncio
import collections
import queue
import threading
import time
from typing import Callable, Deque, List, Optional, Sequence, Tuple

import numpy as np

from .protocol import RequestError

__all__ = ["DynamicBatcher"]

_STOP = object()


class _Item:
    __slots__ = ("arrays", "rows", "key", "future", "loop", "queued_at")

    def __init__(self, arrays, future, loop):
        self.arrays = arrays
        self.rows = int(arrays[0].shape[0])
        self.key = tuple((a.dtype.str,) + a.shape[1:] for a in arrays)
        self.future = future
        self.loop = loop
        self.queued_at = time.perf_counter()


def _deliver(future: asyncio.Future, result, error) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DynamicBatcher:
    """Runs ``run_batch(arrays) -> outputs`` (lists of NumPy arrays, dimension 0 the batch) on
    a worker thread, merging concurrent requests (Note [Dynamic batching]).

    ``on_batch(rows, requests, seconds)`` and ``on_queue(seconds)`` report to the metrics."""

    def __init__(self, run_batch: Callable[[List[np.ndarray]], List[np.ndarray]],
                 max_batch_size: int = 32, max_delay_ms: float = 2.0,
                 on_batch: Optional[Callable[[int, int, float], None]] = None,
                 on_queue: Optional[Callable[[float], None]] = None,
                 name: str = "model"):
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or \
                max_batch_size < 1:
            raise ValueError(f"[serve] max_batch_size must be an integer >= 1, got "
                             f"{max_batch_size!r}")
        if not max_delay_ms >= 0:
            raise ValueError(f"[serve] max_delay_ms must be >= 0, got {max_delay_ms!r}")
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_delay = float(max_delay_ms) / 1000.0
        self.on_batch = on_batch
        self.on_queue = on_queue
        self.name = name
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._pending: Deque[_Item] = collections.deque()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    # ---- event-loop side ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._closed

    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("[serve] the batcher was closed; it cannot start again")
            self._start_locked()

    def _start_locked(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, daemon=True,
                                            name=f"deepcore-serve-{self.name}")
            self._thread.start()

    async def submit(self, arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
        """The model's outputs for this request's rows."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:  # no request slips in behind the stop marker
            if self._closed:
                raise RequestError("the server is shutting down", status=503)
            self._start_locked()  # servers that skip the ASGI lifespan start it here
            self._queue.put(_Item(list(arrays), future, loop))
        return await future

    def close(self, timeout: Optional[float] = None) -> bool:
        """Finishes the queued requests, then stops the worker; True when it has stopped."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # ---- worker thread ------------------------------------------------------------------------

    def _take(self, timeout: Optional[float]):
        """The next queued item (blocking up to ``timeout``; None: forever), or None."""
        try:
            if timeout is None:
                return self._queue.get()
            if timeout <= 0:
                return self._queue.get_nowait()
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _gather(self, first: _Item, stopping: bool) -> Tuple[List[_Item], bool]:
        """``first`` plus compatible requests (Note [Dynamic batching]); returns the batch and
        whether the stop marker was seen."""
        batch, rows = [first], first.rows
        if self.max_batch_size == 1 or rows >= self.max_batch_size:
            return batch, stopping
        # Requests set aside earlier come first, in order.
        kept: Deque[_Item] = collections.deque()
        full = False
        while self._pending:
            item = self._pending.popleft()
            if item.key == first.key and not full and rows + item.rows <= self.max_batch_size:
                batch.append(item)
                rows += item.rows
            else:
                full = full or item.key == first.key  # no later request may overtake it
                kept.append(item)
        self._pending = kept
        deadline = time.perf_counter() + self.max_delay
        while rows < self.max_batch_size and not full:
            item = self._take(0 if stopping else deadline - time.perf_counter())
            if item is None:
                break
            if item is _STOP:
                stopping = True  # flush what is queued now, without waiting
                continue
            if item.key == first.key and rows + item.rows <= self.max_batch_size:
                batch.append(item)
                rows += item.rows
            else:
                self._pending.append(item)
                if item.key == first.key:
                    break  # full: the next batch starts with it
        return batch, stopping

    def _work(self) -> None:
        stopping = False
        while True:
            if self._pending:
                first = self._pending.popleft()
            else:
                first = self._take(0 if stopping else None)
                if first is None:
                    return  # stopping, and nothing is left
                if first is _STOP:
                    stopping = True
                    continue
            batch, stopping = self._gather(first, stopping)
            if self.on_queue is not None:
                now = time.perf_counter()
                for item in batch:
                    self.on_queue(now - item.queued_at)
            self._run(batch)

    def _run(self, batch: List[_Item]) -> None:
        start = time.perf_counter()
        rows = sum(item.rows for item in batch)
        try:
            if len(batch) == 1:
                merged = batch[0].arrays
            else:
                merged = [np.concatenate([item.arrays[i] for item in batch])
                          for i in range(len(batch[0].arrays))]
            outputs = self.run_batch(merged)
            for i, out in enumerate(outputs):
                if out.ndim == 0 or out.shape[0] != rows:
                    raise RuntimeError(f"[serve] model '{self.name}' output {i} has shape "
                                       f"{tuple(out.shape)} for a batch of {rows} rows; "
                                       "dimension 0 of every output must be the batch")
        except Exception as e:  # noqa: BLE001 -- every error goes back to its request
            if len(batch) > 1:
                for item in batch:  # find the request that caused it
                    self._run([item])
                return
            self._report(rows, 1, start)
            item = batch[0]
            self._call(item, None, e)
            return
        self._report(rows, len(batch), start)
        offset = 0
        for item in batch:
            part = [o[offset:offset + item.rows] for o in outputs]
            offset += item.rows
            self._call(item, part, None)

    def _report(self, rows: int, requests: int, start: float) -> None:
        if self.on_batch is not None:
            self.on_batch(rows, requests, time.perf_counter() - start)

    @staticmethod
    def _call(item: _Item, result, error) -> None:
        try:
            item.loop.call_soon_threadsafe(_deliver, item.future, result, error)
        except RuntimeError:
            pass  # the event loop is closed: nobody is waiting any more
