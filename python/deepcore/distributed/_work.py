"""``Work``, the handle an operation returns with ``async_op=True`` (and ``isend``/``irecv``),
and ``Future``, what ``Work.get_future()`` returns.

Two kinds of operation complete a Work: collectives, run on their group's worker thread (Note
[Collectives on a worker thread], _groups.py), which finishes the Work when MPI returns; and
point-to-point sends and receives, started at once with MPI_Isend/MPI_Irecv and finished by
whichever thread polls them. Either way a waiter sleeps in short slices, polling for the failure
notices of other ranks (Note [Failures end every rank], _runtime.py) until its deadline: the
Work's group timeout counted from when the operation was started, or ``wait(timeout)`` from now.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any, Callable, List, Optional

from ._runtime import PEER_EXIT_GRACE_S, RUNTIME
from ._types import DistBackendError, DistMismatchError, DistTimeoutError

_SLICE_S = 0.05          # how often a waiter looks for notices while a worker runs its operation
_SPIN_S = 0.0005         # point-to-point waits spin this long on MPI_Test before sleeping
_MAX_SLEEP_S = 0.001


def seconds(timeout, where: str) -> float:
    """A timeout given as a timedelta or a number of seconds, in seconds (> 0)."""
    if isinstance(timeout, timedelta):
        s = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        s = float(timeout)
    else:
        raise TypeError(f"[{where}] timeout must be a datetime.timedelta or a number of seconds, "
                        f"got {type(timeout).__name__}")
    if not s > 0:
        raise ValueError(f"[{where}] timeout must be positive, got {timeout!r}")
    return s


def format_seconds(s: float) -> str:
    return f"{s:g} s"


class Future:
    """PyTorch's ``torch.futures.Future`` for distributed work: ``wait()``, ``value()``,
    ``done()``, ``then(callback)``. Callbacks run on the thread that completes the operation."""

    def __init__(self, work: Optional["Work"] = None) -> None:
        self._work = work               # the operation this future ends with, for wait()
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._value: Any = None
        self._exc: Optional[BaseException] = None
        self._callbacks: List[Callable[["Future"], None]] = []

    def done(self) -> bool:
        if not self._event.is_set() and self._work is not None:
            self._work.is_completed()
        return self._event.is_set()

    def wait(self):
        if self._work is not None:
            self._work.wait()
        self._event.wait()
        return self.value()

    def value(self):
        if not self._event.is_set():
            raise RuntimeError("[Future.value] the future has not completed; call wait() first")
        if self._exc is not None:
            raise self._exc
        return self._value

    def then(self, callback: Callable[["Future"], Any]) -> "Future":
        chained = Future(self._work)

        def run(fut: "Future") -> None:
            try:
                chained._complete(callback(fut), None)
            except BaseException as e:  # the chained future carries the callback's error
                chained._complete(None, e)
        self.add_done_callback(run)
        return chained

    def add_done_callback(self, callback: Callable[["Future"], None]) -> None:
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def _complete(self, value, exc: Optional[BaseException]) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._value, self._exc = value, exc
            callbacks, self._callbacks = self._callbacks, []
            self._event.set()
        for cb in callbacks:
            cb(self)


class Work:
    """The handle of one operation: ``wait(timeout=None)``, ``is_completed()``,
    ``is_success()``, ``exception()``, ``result()``, ``source_rank()``, ``get_future()``."""

    def __init__(self, op: str, group, desc: str, tensors=()) -> None:
        self._op = op
        self._group = group
        self._desc = desc                # what it moves, for messages: "float32 (4, 3)"
        self._tensors = list(tensors)    # what result() returns; also keeps the memory alive
        self._seq = 0                    # its number among its group's collectives (1, 2, ...)
        self._started = time.monotonic()
        self._value: Any = None          # recv's source rank, the objects of object collectives
        self._future = Future(self)
        # The global ranks it needs: it fails if one of them ends first (Note [Failures end
        # every rank], _runtime.py).
        self._peers = group._ranks
        self._peer_gone_deadline = None
        self._request = None             # point-to-point: the MPI request callers poll
        self._on_request_done: Optional[Callable] = None
        self._poll_lock = threading.Lock()

    def __repr__(self) -> str:
        state = "completed" if self._future._event.is_set() else "pending"
        return f"Work({self._what()}, {state})"

    # ---- the public API ----------------------------------------------------------------------

    def wait(self, timeout=None) -> bool:
        """Blocks until the operation completes; raises its error. ``timeout`` (a timedelta or
        seconds, from now) replaces the group's timeout (counted from when the operation was
        called) for this wait; running past it raises DistTimeoutError."""
        if not self._future._event.is_set():
            if self._request is None and threading.current_thread() is self._group._thread:
                raise RuntimeError(
                    f"[{self._op}] waiting for {self._what()} on its group's worker thread (in a "
                    "Future callback) would wait forever: the worker runs it only after the "
                    "callback returns. Wait outside the callback")
            if timeout is None:
                limit = self._group._timeout
                deadline = self._started + limit
            else:
                limit = seconds(timeout, f"{self._op} Work.wait")
                deadline = time.monotonic() + limit
            if self._request is not None:
                self._wait_request(deadline, limit)
            else:
                self._wait_worker(deadline, limit)
        if self._future._exc is not None:
            raise self._future._exc
        return True

    def is_completed(self) -> bool:
        if not self._future._event.is_set() and self._request is not None:
            self._test_request()
        return self._future._event.is_set()

    def is_success(self) -> bool:
        return self.is_completed() and self._future._exc is None

    def exception(self) -> Optional[BaseException]:
        return self._future._exc if self.is_completed() else None

    def result(self) -> list:
        return list(self._tensors)

    def source_rank(self) -> int:
        """The global rank a completed receive came from."""
        if self._op not in ("recv", "irecv"):
            raise RuntimeError(f"[Work.source_rank] only receives have a source rank, this Work "
                               f"is {self._op}")
        self.wait()
        return self._value

    def get_future(self) -> Future:
        return self._future

    # ---- completion --------------------------------------------------------------------------

    def _finish(self, value=None, exc: Optional[BaseException] = None) -> None:
        self._value = value
        self._future._complete(None if exc is not None else self.result(), exc)

    def _what(self) -> str:
        seq = f" #{self._seq}" if self._seq else ""
        return f"{self._op}{seq} on group {self._group._name} ({self._desc})"

    def _timed_out(self, limit: float) -> None:
        text = f"timed out after {format_seconds(limit)} in {self._what()}"
        RUNTIME.fail(text, timeout=True)
        exc = DistTimeoutError(
            f"[{self._op}] rank {RUNTIME.rank}: {text}: another rank of the group did not join "
            "it in time, or is stuck. The process group is unusable from now on")
        self._future._complete(None, exc)
        raise exc

    def _check_peers(self) -> None:
        """Raises if the process groups became unusable, or if a rank this operation needs
        ended and the operation did not complete within PEER_EXIT_GRACE_S after."""
        RUNTIME.poll()
        if RUNTIME.broken is not None and not self._future._event.is_set():
            cls = DistTimeoutError if RUNTIME.broken_by_timeout else DistBackendError
            exc = cls(f"[{self._op}] rank {RUNTIME.rank}: stopped waiting for {self._what()}: "
                      f"{RUNTIME.broken}. The process group is unusable from now on")
            self._future._complete(None, exc)
            raise exc
        gone = RUNTIME.gone(self._peers)
        if not gone:
            return
        now = time.monotonic()
        if self._peer_gone_deadline is None:
            self._peer_gone_deadline = now + PEER_EXIT_GRACE_S
        elif now >= self._peer_gone_deadline and not self._future._event.is_set():
            text = (f"rank {gone[0]} ended (its program exited, or it destroyed its process "
                    f"groups) while {self._what()} waited for it")
            RUNTIME.fail(text, timeout=False)
            exc = DistBackendError(f"[{self._op}] rank {RUNTIME.rank}: {text}. The process "
                                   "group is unusable from now on")
            self._future._complete(None, exc)
            raise exc

    def _wait_worker(self, deadline: float, limit: float) -> None:
        event = self._future._event
        while True:
            remaining = deadline - time.monotonic()
            if event.wait(min(_SLICE_S, max(remaining, 0.0))):
                return
            self._check_peers()
            if time.monotonic() >= deadline:
                self._timed_out(limit)

    def _wait_request(self, deadline: float, limit: float) -> None:
        spin_until = time.monotonic() + _SPIN_S
        sleep = 0.00002
        next_poll = 0.0
        while not self._test_request():
            now = time.monotonic()
            if now >= next_poll:
                self._check_peers()
                next_poll = now + 0.01
            if now >= deadline:
                self._timed_out(limit)
            if now >= spin_until:
                time.sleep(sleep)
                sleep = min(sleep * 2, _MAX_SLEEP_S)

    def _test_request(self) -> bool:
        if self._future._event.is_set():
            return True
        if not self._poll_lock.acquire(blocking=False):
            return False  # another thread is testing it
        try:
            if self._future._event.is_set():
                return True
            MPI = RUNTIME.MPI
            status = MPI.Status()
            try:
                done = self._request.Test(status)
            except MPI.Exception as e:
                self._finish(exc=translate_mpi_error(e, self))
                return True
            if done:
                try:
                    self._finish(value=self._on_request_done(status))
                except (DistMismatchError, DistBackendError) as e:
                    self._finish(exc=e)
            return done
        finally:
            self._poll_lock.release()


def translate_mpi_error(e, work: Work) -> BaseException:
    """An mpi4py error as DistBackendError (or DistMismatchError for a message too long for the
    receive buffer), naming the operation."""
    MPI = RUNTIME.MPI
    try:
        cls = e.Get_error_class()
        text = e.Get_error_string()
    except Exception:  # not every MPI error carries a class
        cls, text = None, str(e)
    if cls == MPI.ERR_TRUNCATE:
        return DistMismatchError(f"[{work._op}] rank {RUNTIME.rank}: the message is larger than "
                                 f"the receive buffer ({work._desc}): the sender's tensor has "
                                 "more elements")
    return DistBackendError(f"[{work._op}] rank {RUNTIME.rank}: MPI reported an error in "
                            f"{work._what()}: {text}")
