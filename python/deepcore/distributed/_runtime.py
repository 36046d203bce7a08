"""The per-process state under every process group: which rank this is, whether a failure left
the process groups unusable, telling the other ranks about it, and ending the program.

Note [Failures end every rank]
A rank that stops taking part in collectives would otherwise leave the others waiting forever.
Four rules keep a failure from becoming a hang:
  * An uncaught exception on any rank prints its traceback, every line prefixed ``[rankN]: ``,
    then calls MPI_Abort, which ends every rank of the job (the ``sys.excepthook`` installed by
    init_process_group).
  * A wait that passes its deadline (the group's timeout, or ``Work.wait(timeout)``) raises
    DistTimeoutError naming the operation, the rank and the timeout, marks this process's groups
    unusable, and sends a one-line notice of it to every other rank over a communicator of its
    own. Every wait polls for such notices, so a rank waiting in any operation, or starting a
    new one, raises DistTimeoutError too, naming the rank that timed out.
  * A rank that ends normally (its program exits, or it destroys the default group) tells the
    others so. A rank waiting on an operation that needs it gives the operation PEER_EXIT_GRACE_S
    more (the ended rank did its part of everything it called; the rest may still be in flight),
    then raises DistBackendError naming the rank that ended; a new operation that needs it raises
    at once. Without this, a rank that calls sys.exit() while others wait would leave them waiting
    for their whole timeout, since MPI_Finalize on the ending rank waits for them.
  * A process that exits with its groups unusable (its worker thread may still sit in an MPI call
    that will never complete, and MPI_Finalize would hang on it) tells the others it is exiting,
    gives them up to EXIT_GRACE_S to report their own errors and exit too, then calls MPI_Abort.
Notices are plain UTF-8 text (an exit notice: one int64, the init_process_group count, so that
one from before a destroy and a new init is not taken for a new one); nothing is unpickled or
evaluated.
"""
from __future__ import annotations

import atexit
import sys
import threading
import time
import traceback
from typing import Optional

import numpy as np

from ._types import DistBackendError, DistTimeoutError

_TAG_FAILED = 1
_TAG_EXITING = 2
_NOTICE_BYTES = 2048
EXIT_GRACE_S = 5.0
PEER_EXIT_GRACE_S = 5.0


class Runtime:
    def __init__(self) -> None:
        self.MPI = None
        self.rank = 0
        self.size = 1
        # A duplicate of COMM_WORLD carrying the notices only. Made once and never freed: a
        # notice nobody received yet would otherwise match a receive posted on a later
        # communicator that MPI gave the same context.
        self.ctrl = None
        self.active = False              # between init_process_group and its destroy
        self.generation = 0              # how many times init_process_group ran
        self.broken: Optional[str] = None  # what made the process groups unusable
        self.broken_by_timeout = False
        self._notice_req = None
        self._notice_buf = bytearray(_NOTICE_BYTES)
        self._notice_lock = threading.Lock()
        self._announced = False
        self._exits = {}                 # generation -> global ranks that ended in it
        self._exit_req = None
        self._exit_buf = np.zeros(1, dtype=np.int64)
        self._exit_announced = False
        self._pending_sends = []         # (request, buffer): buffers live until the send ends
        self._hooks_installed = False
        self._previous_excepthook = None
        self.groups = []                 # live ProcessGroups, the default group first

    # ---- lifetime ----------------------------------------------------------------------------

    def start(self, MPI) -> None:
        self.MPI = MPI
        world = MPI.COMM_WORLD
        self.rank, self.size = world.Get_rank(), world.Get_size()
        if self.ctrl is None:
            self.ctrl = world.Dup()
            self.ctrl.Set_errhandler(MPI.ERRORS_RETURN)
            self._notice_req = self._post(self._notice_buf, MPI.BYTE, _TAG_FAILED)
            self._exit_req = self._post(self._exit_buf, MPI.INT64_T, _TAG_EXITING)
        self.generation += 1
        self._exit_announced = False
        self.active = True
        if not self._hooks_installed:
            self._hooks_installed = True
            self._previous_excepthook = sys.excepthook
            sys.excepthook = self._excepthook
            # Registered after mpi4py's import, so it runs before mpi4py finalizes MPI.
            atexit.register(self._at_exit)

    def _post(self, buf, datatype, tag):
        return self.ctrl.Irecv([buf, datatype], source=self.MPI.ANY_SOURCE, tag=tag)

    def stop(self) -> None:
        """Tells the peers this rank left (destroy_process_group on the default group)."""
        self.active = False
        if self.broken is None:
            self.announce_exit()
            self._finish_sends()

    # ---- failures ----------------------------------------------------------------------------

    def poll(self) -> None:
        """Takes in the failure and exit notices of peers that arrived (cheap: MPI_Tests)."""
        if self.ctrl is None:
            return
        if not self._notice_lock.acquire(blocking=False):
            return  # another thread is polling right now
        try:
            MPI = self.MPI
            status = MPI.Status()
            while self._notice_req.Test(status):
                n = status.Get_count(MPI.BYTE)
                text = bytes(self._notice_buf[:n]).decode("utf-8", "replace")
                self._notice_req = self._post(self._notice_buf, MPI.BYTE, _TAG_FAILED)
                kind, _, text = text.partition(":")
                if self.broken is None:
                    self.broken = f"rank {status.Get_source()} reported: {text}"
                    self.broken_by_timeout = kind == "timeout"
            while self._exit_req.Test(status):
                generation = int(self._exit_buf[0])
                self._exits.setdefault(generation, set()).add(status.Get_source())
                self._exit_req = self._post(self._exit_buf, MPI.INT64_T, _TAG_EXITING)
        finally:
            self._notice_lock.release()

    def _finish_sends(self) -> None:
        """Completes the notices sent (small messages, which complete as soon as they are
        buffered; bounded all the same, in case a peer is gone)."""
        reqs = [req for req, _ in self._pending_sends]
        deadline = time.monotonic() + 1.0
        try:
            while not self.MPI.Request.Testall(reqs) and time.monotonic() < deadline:
                time.sleep(0.001)
        except self.MPI.Exception:
            pass  # a peer that is gone cannot take its notice; nothing else to do
        self._pending_sends.clear()

    def gone(self, ranks) -> list:
        """Those of ``ranks`` (global) that said they ended since init_process_group."""
        exited = self._exits.get(self.generation, ())
        return [r for r in ranks if r in exited and r != self.rank]

    def check(self, op: str, ranks=()) -> None:
        """Raises if the process groups are unusable, or if one of ``ranks`` (global), which
        the operation needs, has ended (after polling for notices)."""
        self.poll()
        if self.broken is not None:
            cls = DistTimeoutError if self.broken_by_timeout else DistBackendError
            raise cls(f"[{op}] rank {self.rank}: the process group is unusable: {self.broken}. "
                      "End the program (an uncaught exception ends every rank)")
        gone = self.gone(ranks)
        if gone:
            raise DistBackendError(f"[{op}] rank {self.rank}: rank {gone[0]} has ended (its "
                                   "program exited, or it destroyed its process groups), so "
                                   f"{op} cannot complete")

    def fail(self, text: str, *, timeout: bool) -> None:
        """Marks the groups unusable and tells every other rank why (once)."""
        if self.broken is None:
            self.broken = f"rank {self.rank} {text}"
            self.broken_by_timeout = timeout
        if self._announced or self.ctrl is None:
            return
        self._announced = True
        data = (("timeout:" if timeout else "error:") + f"{text}").encode()[:_NOTICE_BYTES]
        self._send_all(data, self.MPI.BYTE, _TAG_FAILED)

    def announce_exit(self) -> None:
        """Tells every other rank that this one ended (once per init_process_group)."""
        if self._exit_announced or self.ctrl is None:
            return
        self._exit_announced = True
        self._send_all(np.array([self.generation], dtype=np.int64), self.MPI.INT64_T,
                       _TAG_EXITING)

    def _send_all(self, data, datatype, tag) -> None:
        for peer in set(range(self.size)) - {self.rank} - set(self.gone(range(self.size))):
            req = self.ctrl.Isend([data, datatype], dest=peer, tag=tag)
            self._pending_sends.append((req, data))

    # ---- ending the program ------------------------------------------------------------------

    def _excepthook(self, etype, value, tb) -> None:
        try:
            if self._previous_excepthook not in (None, sys.__excepthook__):
                self._previous_excepthook(etype, value, tb)
            else:
                text = "".join(traceback.format_exception(etype, value, tb))
                prefix = f"[rank{self.rank}]: "
                sys.stderr.write("".join(prefix + line + "\n" for line in text.splitlines()))
            _flush()
        finally:
            MPI = self.MPI
            if self.size > 1 and MPI is not None and not MPI.Is_finalized():
                MPI.COMM_WORLD.Abort(1)

    def _at_exit(self) -> None:
        MPI = self.MPI
        if MPI is None or MPI.Is_finalized():
            return
        if self.broken is None and self.active:
            # Let queued operations finish (bounded by each group's timeout) before MPI ends.
            for pg in list(self.groups):
                pg._drain("exit")
                if self.broken is not None:
                    break
        if self.broken is None:
            for pg in list(self.groups):
                pg._stop_worker()
            self.announce_exit()
            self._finish_sends()
            with self._notice_lock:  # no receive may be left pending when MPI finalizes
                for req in (self._notice_req, self._exit_req):
                    req.Cancel()
                    req.Wait()
            return
        _flush()
        self.announce_exit()
        deadline = time.monotonic() + EXIT_GRACE_S
        while time.monotonic() < deadline and len(self.gone(range(self.size))) < self.size - 1:
            time.sleep(0.01)
            self.poll()
        sys.stderr.write(f"[rank{self.rank}]: deepcore.distributed: exiting with unusable "
                         f"process groups ({self.broken}); ending every rank\n")
        _flush()
        MPI.COMM_WORLD.Abort(1)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed or replaced stream must not hide the original error
            pass


RUNTIME = Runtime()
