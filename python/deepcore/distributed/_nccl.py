"""The NCCL backend: the collectives and point-to-point operations of deepcore.distributed on
CUDA tensors. CPU tensors keep going through MPI (_collectives.py), as with PyTorch's
``backend="cpu:gloo,cuda:nccl"``.

Note [NCCL process groups]
MPI still starts the ranks and gives each process group its communicator (_groups.py). A group
created with ``backend="nccl"`` (or ``"cuda"``, or ``"cpu:gloo,cuda:nccl"``) also gets an NCCL
communicator: rank 0 of the group makes an ncclUniqueId, the group's MPI communicator broadcasts
its 128 bytes, and every rank calls ncclCommInitRank on its device, its LOCAL rank modulo the
number of devices (the device ``torch.cuda.set_device(local_rank)`` picks; init_process_group
makes it the current device) or ``device_id=``.

NCCL operations are queued on the group's worker thread too (Note [Collectives on a worker
thread], _groups.py), for three reasons: every rank then queues them in the order its program
called them, which NCCL needs (an async all_reduce followed by a send, queued in the other order
on one rank, deadlocks the GPUs); they stay in order with the group's CPU collectives and the
metadata checks (Note [Collective checks], _checks.py), which catch ranks passing different
tensors before NCCL can hang on them; and the caller can time out while NCCL sets up its
connections, which blocks the host. The worker queues each operation on the caller's current
stream of the communicator's device (Note [Streams and events] in core/device_memory.h) and
returns without waiting for the GPU: a blocking call returns once the work is queued, so what the
caller queues next on that stream runs after it, and with ``async_op=True`` the Work records an
event after it, which ``wait()`` makes the caller's current stream wait for (PyTorch's semantics:
the host does not wait for the data); Future callbacks run on the worker with that stream
current, so what they queue runs after the operation too. ``barrier`` is a one-element
all_reduce that the host does wait for, as in PyTorch. Timeouts cover the queueing only: nothing
watches a GPU stuck in NCCL (PyTorch's watchdog thread has no counterpart yet).

NCCL needs contiguous buffers on the communicator's device: a non-contiguous tensor goes through
a contiguous copy made at the call (on the caller's stream), and results are copied back after
the operation on the same stream. Lists (all_gather, reduce_scatter) are packed into one buffer;
reduce_scatter with parts of different sizes runs one ncclReduce per rank, gather and scatter run
on ncclSend/ncclRecv (ncclGather and ncclScatter are recent; deepcore takes NCCL from 2.10 on).

The communicator is one of two implementations of one interface: ``_C._NcclComm`` (cuda/nccl.h,
NCCL loaded at run time; compiled only, no GPU has run it yet: README, "Devices"), and, on the
tests' fake device (Note [The fake device] in csrc/dispatch/fake_device.cpp), ``FakeComm`` below,
which performs each operation at once over mpi4py on host copies of the tensors. Everything above
them (the routing, the unique-id broadcast, the tables, the copies, Work and its events) is shared,
so tests/dist_scripts/nccl_collectives.py exercises it on machines without a GPU.
"""
from __future__ import annotations

import os
import threading
from typing import NamedTuple

import numpy as np

from .. import (
    _C,
    Tensor,
    bfloat16,
    cat,
    cuda,
    empty,
    float16,
    float32,
    float64,
    from_numpy,
    int32,
    int64,
)
from .. import bool as _bool
from . import _checks, _groups, _mpi
from ._runtime import RUNTIME
from ._types import ReduceOp
from ._work import Work

UNIQUE_ID_BYTES = 128


# ---- the library --------------------------------------------------------------------------------

def search_paths() -> list:
    """Where libnccl.so.2 may be: $DEEPCORE_NCCL if set, then the nvidia-nccl wheel's copy (the
    nvidia-nccl-cu13 layout, then the CUDA 13 toolkit wheels'); the loader then tries the soname."""
    paths = [os.environ["DEEPCORE_NCCL"]] if os.environ.get("DEEPCORE_NCCL") else []
    try:
        import nvidia
        roots = list(nvidia.__path__)
    except ImportError:
        roots = []
    for root in roots:
        for rel in ("nccl/lib/libnccl.so.2", "cu13/lib/libnccl.so.2"):
            if os.path.exists(os.path.join(root, rel)):
                paths.append(os.path.join(root, rel))
    return paths


_paths_given = False


def library() -> tuple:
    """(loaded, the path it was loaded from or where it was looked for, NCCL_VERSION_CODE)."""
    global _paths_given
    if not cuda._BUILT:
        return False, "deepcore was built without CUDA", 0
    if not _paths_given:
        _C._nccl_search_paths(search_paths())
        _paths_given = True
    return tuple(_C._nccl_where())


def is_available() -> bool:
    """A CUDA build with NCCL loadable, or the fake device (whose stand-in needs no library)."""
    return cuda._fake() or library()[0]


def require(op: str, backend) -> None:
    """Raises RuntimeError unless NCCL can run here: a CUDA build, a device and the library."""
    if cuda._fake():
        return
    where = f"[{op}] backend {str(backend)!r}"
    if not cuda._BUILT:
        raise RuntimeError(f"{where}: deepcore was built without CUDA, and NCCL moves CUDA "
                           "tensors; use backend='mpi' for CPU tensors, or build deepcore with "
                           "CUDA (DEEPCORE_CUDA=1 pip install .)")
    if cuda.device_count() == 0:
        raise RuntimeError(f"{where}: no CUDA device: deepcore was built with CUDA, but the "
                           "driver reports no device on this machine")
    loaded, text, _ = library()
    if not loaded:
        raise RuntimeError(f"{where}: NCCL (libnccl.so.2) {text}\nInstall it with pip install "
                           "nvidia-nccl-cu13, or set DEEPCORE_NCCL to the path of libnccl.so.2")


# ---- the tables ---------------------------------------------------------------------------------

class NcclDType(NamedTuple):
    code: int        # in the check records: apart from the MPI backend's codes, so a rank that
    name: str        # passes a CPU tensor where another passes a CUDA one is told so
    wide: type       # what FakeComm computes in (NCCL itself reduces 16-bit floats as they are)
    floating: bool


# The dtypes NCCL moves (cuda/nccl.cpp maps each to its ncclDataType_t; bool travels as uint8).
DTYPES = {
    float32: NcclDType(101, "cuda float32", np.float32, True),
    float64: NcclDType(102, "cuda float64", np.float64, True),
    int32: NcclDType(103, "cuda int32", np.int32, False),
    int64: NcclDType(104, "cuda int64", np.int64, False),
    _bool: NcclDType(105, "cuda bool", np.uint8, False),
    float16: NcclDType(106, "cuda float16", np.float32, True),
    bfloat16: NcclDType(107, "cuda bfloat16", np.float32, True),
}
_mpi.DTYPE_NAMES.update({d.code: d.name for d in DTYPES.values()})  # for the checks' messages

# ncclRedOp_t (nccl.h). On bool (uint8 0/1) "or" is MAX and "and" is MIN; a SUM would overflow
# past 1 in uint8 arithmetic after 255 ranks and is no bool either way.
SUM, PROD, MAX, MIN, AVG = range(5)
_OPS = {ReduceOp.SUM: SUM, ReduceOp.PRODUCT: PROD, ReduceOp.MAX: MAX, ReduceOp.MIN: MIN,
        ReduceOp.AVG: AVG}
_BOOL_OPS = {ReduceOp.SUM: MAX, ReduceOp.MAX: MAX, ReduceOp.BOR: MAX, ReduceOp.PRODUCT: MIN,
             ReduceOp.MIN: MIN, ReduceOp.BAND: MIN}


def reduce_op(where: str, op, dtype: NcclDType) -> int:
    """The ncclRedOp_t of ``op`` on ``dtype``; the same rules as the MPI backend's where NCCL
    can follow them (it has no bitwise reductions, and no exclusive or on bool)."""
    if not isinstance(op, ReduceOp):
        raise TypeError(f"[{where}] op must be a deepcore.distributed.ReduceOp, got {op!r}")
    if op is ReduceOp.PREMUL_SUM:
        raise NotImplementedError(f"[{where}] ReduceOp.PREMUL_SUM is not supported; multiply "
                                  "the tensor, then use ReduceOp.SUM")
    if dtype.name == "cuda bool":
        if op not in _BOOL_OPS:
            raise TypeError(f"[{where}] ReduceOp.{op.name} is not supported by NCCL on bool "
                            "tensors")
        return _BOOL_OPS[op]
    if op not in _OPS:
        raise TypeError(f"[{where}] ReduceOp.{op.name}: NCCL has no bitwise reductions "
                        f"({dtype.name} tensor)")
    if op is ReduceOp.AVG and not dtype.floating:
        raise TypeError(f"[{where}] ReduceOp.AVG needs a floating-point tensor, got "
                        f"{dtype.name}; reduce with ReduceOp.SUM and divide as you need")
    return _OPS[op]


# ---- the two communicators ----------------------------------------------------------------------

class RealNccl:
    """NCCL itself (cuda/nccl.h): the communicator is ``_C._NcclComm``, which meets its peers
    through the unique id alone (the MPI communicator is not used)."""

    @staticmethod
    def unique_id() -> bytes:
        return _C._nccl_unique_id()

    @staticmethod
    def open(unique_id: bytes, nranks: int, rank: int, device: int, mpi_comm):
        return _C._NcclComm(unique_id, nranks, rank, device)


class FakeNccl:
    """The fake device's stand-in: any 128 bytes make an id, and the communicator is a
    duplicate of the group's MPI communicator."""

    @staticmethod
    def unique_id() -> bytes:
        return os.urandom(UNIQUE_ID_BYTES)

    @staticmethod
    def open(unique_id: bytes, nranks: int, rank: int, device: int, mpi_comm):
        return FakeComm(unique_id, nranks, rank, device, mpi_comm)


class FakeComm:
    """``_C._NcclComm``'s interface over mpi4py, on the fake device: every operation reads its
    tensors' values to the host, moves them with the MPI call that does what NCCL's does, and
    writes the result back, before it returns (the fake device's streams are always idle).
    16-bit floats are reduced in float32 and rounded once; bool travels as uint8, as in NCCL.
    Host copies would hide buffers that overlap where NCCL cannot work in place: those raise,
    as NCCL's result would be wrong, after the operation, so that the ranks stay in step."""

    def __init__(self, unique_id: bytes, nranks: int, rank: int, device: int, mpi_comm) -> None:
        if len(unique_id) != UNIQUE_ID_BYTES:
            raise ValueError(f"[nccl] a unique id has {UNIQUE_ID_BYTES} bytes, got "
                             f"{len(unique_id)}")
        if (mpi_comm.Get_size(), mpi_comm.Get_rank()) != (nranks, rank):
            raise ValueError(f"[nccl] rank {rank} of {nranks} does not match the MPI "
                             f"communicator's rank {mpi_comm.Get_rank()} of {mpi_comm.Get_size()}")
        comm = mpi_comm.Dup()
        # NCCL's ranks meet through the id; ranks holding different ids would never meet.
        if len(set(comm.allgather(bytes(unique_id)))) != 1:
            comm.Free()
            raise RuntimeError(f"[nccl] ncclCommInitRank (rank {rank} of {nranks}): the ranks "
                               "hold different unique ids")
        self._comm = comm
        self._sends = []               # (request, buffer) of sends still in flight
        self.device, self.rank, self.size = device, rank, nranks

    # The tensors here are contiguous buffers on the device (the routing made them so).
    @staticmethod
    def _host(t: Tensor) -> np.ndarray:
        h = t.detach().cpu()
        if h.dtype in (float16, bfloat16):
            h = h.float()
        return np.ascontiguousarray(h.numpy().reshape(-1), dtype=DTYPES[t.dtype].wide)

    @staticmethod
    def _store(t: Tensor, values: np.ndarray) -> None:
        if t.dtype == _bool:
            values = values != 0
        t.detach().copy_(from_numpy(np.ascontiguousarray(values).reshape(tuple(t.shape))))

    def _in_place(self, what: str, a: Tensor, b: Tensor, chunk: int, run) -> None:
        """Runs ``run()``, then raises if its buffers overlapped other than in place: NCCL reads
        its send buffer while it writes its receive buffer, so they may overlap only with ``a``
        at element ``chunk`` * rank of ``b`` (the same buffer when chunk is 0)."""
        at = b.data_ptr() + chunk * self.rank * b.element_size()
        overlap = _overlaps(a, b) and a.data_ptr() != at
        run()
        if overlap:
            raise RuntimeError(f"[nccl] {what}: the send and receive buffers overlap other "
                               "than in place")

    def _empty(self, t: Tensor, count: int) -> np.ndarray:
        return np.empty(count, dtype=DTYPES[t.dtype].wide)

    def _mpi_op(self, op: int):
        MPI = RUNTIME.MPI
        return {SUM: MPI.SUM, PROD: MPI.PROD, MAX: MPI.MAX, MIN: MPI.MIN, AVG: MPI.SUM}[op]

    def _average(self, values: np.ndarray, op: int) -> None:
        if op == AVG:
            values /= self.size

    def all_reduce(self, send: Tensor, recv: Tensor, op: int, stream: int) -> None:
        def run():
            values = self._host(send)
            self._comm.Allreduce(RUNTIME.MPI.IN_PLACE, values, op=self._mpi_op(op))
            self._average(values, op)
            self._store(recv, values)
        self._in_place("ncclAllReduce", send, recv, 0, run)

    def broadcast(self, send: Tensor, recv: Tensor, root: int, stream: int) -> None:
        def run():
            values = self._host(send) if self.rank == root else self._empty(recv, recv.numel())
            self._comm.Bcast(values, root=root)
            if self.rank != root or recv is not send:
                self._store(recv, values)
        self._in_place("ncclBroadcast", send, recv, 0, run)

    def reduce(self, send: Tensor, recv: Tensor, op: int, root: int, stream: int) -> None:
        def run():
            values = self._host(send)
            if self.rank != root:
                self._comm.Reduce(values, None, op=self._mpi_op(op), root=root)
                return
            self._comm.Reduce(RUNTIME.MPI.IN_PLACE, values, op=self._mpi_op(op), root=root)
            self._average(values, op)
            self._store(recv, values)
        self._in_place("ncclReduce", send, recv, 0, run)

    def all_gather(self, send: Tensor, recv: Tensor, stream: int) -> None:
        def run():
            values = self._empty(recv, recv.numel())
            self._comm.Allgather(self._host(send), values)
            self._store(recv, values)
        self._in_place("ncclAllGather", send, recv, send.numel(), run)

    def reduce_scatter(self, send: Tensor, recv: Tensor, op: int, stream: int) -> None:
        def run():
            values = self._empty(recv, recv.numel())
            self._comm.Reduce_scatter_block(self._host(send), values, op=self._mpi_op(op))
            self._average(values, op)
            self._store(recv, values)
        self._in_place("ncclReduceScatter", recv, send, recv.numel(), run)

    def send(self, t: Tensor, peer: int, stream: int) -> None:
        # Started, not waited for: NCCL's send is queued on a stream and returns.
        self._sends = [(req, buf) for req, buf in self._sends if not req.Test()]
        values = self._host(t)
        self._sends.append((self._comm.Isend(values, dest=peer), values))

    def recv(self, t: Tensor, peer: int, stream: int) -> None:
        values = self._empty(t, t.numel())
        self._comm.Recv(values, source=peer)
        self._store(t, values)

    def destroy(self) -> None:
        RUNTIME.MPI.Request.Waitall([req for req, _ in self._sends])
        self._sends = []
        self._comm.Free()

    def abort(self) -> None:
        self._sends = []  # the peers may be gone: nothing is waited for or freed


def _implementation():
    return FakeNccl if cuda._fake() else RealNccl


# ---- process groups -----------------------------------------------------------------------------

def local_device(op: str, device_id=None) -> int:
    """The device of this rank's communicators: ``device_id`` (an index, "cuda:1" or a
    deepcore.device), else the LOCAL rank modulo the number of devices."""
    count = cuda.device_count()
    if device_id is None:
        return int(os.environ.get("LOCAL_RANK", "0")) % max(count, 1)
    index = cuda._index(device_id)
    if not 0 <= index < count:
        raise ValueError(f"[{op}] device_id={device_id!r}: this machine has {count} CUDA "
                         "device(s)")
    return index


def attach(pg, op: str, device: int, make_current: bool = False) -> None:
    """Gives ``pg`` its NCCL communicator on ``device`` (Note [NCCL process groups]), and makes
    ``device`` this thread's current one if asked (the default group's). Every rank of the group
    calls it at the same point: rank 0 makes the id, the group's MPI communicator broadcasts it,
    every rank opens its end; on the group's worker, within the group's timeout."""
    impl = _implementation()
    if make_current:
        cuda.set_device(device)

    def run():
        uid = np.zeros(UNIQUE_ID_BYTES, dtype=np.uint8)
        if pg._rank == 0:
            uid[:] = np.frombuffer(impl.unique_id(), dtype=np.uint8)
        pg._comm.Bcast(uid, root=0)
        return impl.open(uid.tobytes(), pg._size, pg._rank, device, pg._comm)
    work = Work(op, pg, f"NCCL communicator on cuda:{device}")
    pg._submit(work, run).wait()
    pg._nccl = work._value


def detach(pg) -> None:
    """Ends ``pg``'s NCCL communicator (its worker has stopped): destroyed after the work queued
    on it, or aborted when a failure left the process groups unusable."""
    comm, pg._nccl = pg._nccl, None
    if comm is None:
        return
    if RUNTIME.broken is None:
        comm.destroy()
    else:
        comm.abort()


# ---- tensors, Work and the worker ---------------------------------------------------------------

def on_cuda(t) -> bool:
    """Whether ``t`` is a CUDA tensor, which the collectives route here."""
    return isinstance(t, Tensor) and t.device.type == "cuda"


def _comm(pg, op: str):
    if pg._nccl is None:
        raise RuntimeError(f"[{op}] CUDA tensors need an NCCL process group, and group "
                           f"{pg._name} was created with backend 'mpi': pass backend='nccl' (or "
                           "'cpu:gloo,cuda:nccl') to init_process_group or new_group")
    return pg._nccl


def _dtype(op: str, t, arg: str, device: int) -> NcclDType:
    if not isinstance(t, Tensor):
        raise TypeError(f"[{op}] {arg} must be a deepcore Tensor, got {type(t).__name__}")
    if t.device.type != "cuda" or t.device.index != device:
        raise ValueError(f"[{op}] {arg} is on {t.device}, but this rank's NCCL communicator is "
                         f"on cuda:{device}: every tensor of a CUDA collective must be there")
    info = DTYPES.get(t.dtype)
    if info is None:
        raise TypeError(f"[{op}] {arg} has dtype {t.dtype}, which NCCL does not move")
    return info


def _describe(t: Tensor) -> str:
    return f"{DTYPES[t.dtype].name} {tuple(t.shape)}"


def _record(op: str, **fields):
    return _checks.record(op, **fields) if _groups._checks_enabled else None


def _same_as(op: str, ref: Tensor, info: NcclDType, tensors, arg: str, count: int,
             device: int, same_shape: bool = True) -> None:
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"[{op}] {arg} must be a list of tensors, got {type(tensors).__name__}")
    if len(tensors) != count:
        raise ValueError(f"[{op}] {arg} must hold {count} tensors (one per rank of the group), "
                         f"got {len(tensors)}")
    for i, t in enumerate(tensors):
        if _dtype(op, t, f"{arg}[{i}]", device) is not info or (
                same_shape and tuple(t.shape) != tuple(ref.shape)):
            raise ValueError(f"[{op}] {arg}[{i}] is {_describe(t)}, expected {_describe(ref)} "
                             "like the tensor argument")


class _Operand:
    """A tensor as NCCL takes it: ``buf`` is the tensor itself when it is contiguous, else a
    contiguous copy made now, on the caller's stream; ``finish()`` (on the worker, on the same
    stream) copies a result back into the tensor."""

    __slots__ = ("_copy_back", "buf", "tensor")

    def __init__(self, t: Tensor, op: str, arg: str, write: bool) -> None:
        self.tensor = t.detach()
        if write and any(st == 0 and n > 1 for st, n in zip(t.stride(), t.shape)):
            raise ValueError(f"[{op}] {arg} ({_describe(t)}) is an expanded view whose elements "
                             f"share memory, so it cannot hold a result; pass {arg}.clone()")
        contiguous = self.tensor.is_contiguous()
        self.buf = self.tensor if contiguous else self.tensor.contiguous()
        self._copy_back = write and not contiguous

    def finish(self) -> None:
        if self._copy_back:
            self.tensor.copy_(self.buf)


def _overlaps(a: Tensor, b: Tensor) -> bool:
    if a.numel() == 0 or b.numel() == 0:
        return False
    pa, pb = a.data_ptr(), b.data_ptr()
    return pa < pb + b.nbytes and pb < pa + a.nbytes


def _send_buffer(send: Tensor, whole: Tensor, part: Tensor, rank: int, part_numel: int) -> Tensor:
    """``send`` as all_gather and reduce_scatter may take it: NCCL works in place when the
    part (the smaller operand) is rank's chunk of the whole; any other overlap would read what
    the operation writes, so the input is copied."""
    at = whole.data_ptr() + rank * part_numel * whole.element_size()
    if _overlaps(part, whole) and part.data_ptr() != at:
        return send.clone()
    return send


class CudaWork(Work):
    """The Work of an operation queued on a CUDA stream. ``wait()`` waits on the host until the
    group's worker has queued it, then makes the caller's current stream wait for the event
    recorded after it (``async_op=True``); for barrier the host waits for the event itself.
    ``is_completed()`` also asks the event."""

    def __init__(self, op: str, group, desc: str, tensors, device: int, host_wait: bool) -> None:
        super().__init__(op, group, desc, tensors)
        self._device = device
        self._host_wait = host_wait
        self._event = None               # set by the worker before the Work completes

    def wait(self, timeout=None) -> bool:
        super().wait(timeout)
        event = self._event
        if event is not None:
            if self._host_wait:
                event.synchronize()
            else:
                event.wait(cuda.current_stream(self._device))
        return True

    def is_completed(self) -> bool:
        return super().is_completed() and (self._event is None or self._event.query())


def _launch(pg, comm, op: str, desc: str, tensors, body, rec, async_op: bool, peers=None,
            host_wait: bool = False):
    """Queues ``body(comm, stream handle)`` on ``pg``'s worker, which runs it with the caller's
    current stream of the communicator's device as its own, and records an event after it where
    a Work will wait for it (Note [NCCL process groups])."""
    if not async_op and threading.current_thread() is pg._thread:
        raise RuntimeError(f"[{op}] a blocking {op} inside a Future callback (which runs on the "
                           f"worker thread of group {pg._name}) would wait forever: the worker "
                           "runs it only after the callback returns. Use async_op=True")
    device = comm.device
    stream = cuda.current_stream(device)
    work = CudaWork(op, pg, desc, tensors, device, host_wait)
    if peers is not None:
        work._peers = peers
    record = async_op or host_wait

    def run():
        # The worker thread's own current device and stream, left set: the Future callbacks
        # that run on the worker when the Work completes queue their ops after this one.
        cuda.set_device(device)
        cuda.set_stream(stream)
        value = body(comm, stream.cuda_stream)
        if record:
            event = cuda.Event()
            event.record(stream)
            work._event = event
        return value
    pg._submit(work, run, rec)
    if async_op:
        return work
    work.wait()
    return None


# ---- the operations (called by _collectives.py for CUDA tensors; group and roots resolved) ------

def all_reduce(pg, tensor: Tensor, op: ReduceOp, async_op: bool):
    name = "all_reduce"
    comm = _comm(pg, name)
    info = _dtype(name, tensor, "tensor", comm.device)
    nccl_op = reduce_op(name, op, info)
    t = _Operand(tensor, name, "tensor", write=True)

    def body(c, s):
        c.all_reduce(t.buf, t.buf, nccl_op, s)
        t.finish()
    rec = _record(name, dtype=info, shape=tensor.shape, redop=op)
    return _launch(pg, comm, name, _describe(tensor), [tensor], body, rec, async_op)


def broadcast(pg, tensor: Tensor, root: int, async_op: bool):
    name = "broadcast"
    comm = _comm(pg, name)
    info = _dtype(name, tensor, "tensor", comm.device)
    t = _Operand(tensor, name, "tensor", write=pg._rank != root)

    def body(c, s):
        c.broadcast(t.buf, t.buf, root, s)
        t.finish()
    rec = _record(name, dtype=info, shape=tensor.shape, root=root)
    return _launch(pg, comm, name, _describe(tensor), [tensor], body, rec, async_op)


def reduce(pg, tensor: Tensor, root: int, op: ReduceOp, async_op: bool):
    name = "reduce"
    comm = _comm(pg, name)
    info = _dtype(name, tensor, "tensor", comm.device)
    nccl_op = reduce_op(name, op, info)
    t = _Operand(tensor, name, "tensor", write=pg._rank == root)

    def body(c, s):
        c.reduce(t.buf, t.buf, nccl_op, root, s)  # NCCL writes the result on the root only
        t.finish()
    rec = _record(name, dtype=info, shape=tensor.shape, root=root, redop=op)
    return _launch(pg, comm, name, _describe(tensor), [tensor], body, rec, async_op)


def all_gather(pg, tensor_list, tensor: Tensor, async_op: bool):
    name = "all_gather"
    comm = _comm(pg, name)
    info = _dtype(name, tensor, "tensor", comm.device)
    _same_as(name, tensor, info, tensor_list, "tensor_list", pg._size, comm.device)
    outs = [_Operand(t, name, f"tensor_list[{i}]", write=True)
            for i, t in enumerate(tensor_list)]
    src = _Operand(tensor, name, "tensor", write=False)
    # (size, numel): row i is rank i's tensor; allocated on the caller's stream.
    rows = _empty((pg._size, tensor.numel()), tensor.dtype, comm.device)

    def body(c, s):
        c.all_gather(src.buf, rows, s)
        for out, row in zip(outs, rows):
            out.tensor.copy_(row.reshape(tuple(out.tensor.shape)))
    rec = _record(name, dtype=info, shape=tensor.shape)
    return _launch(pg, comm, name, _describe(tensor), list(tensor_list), body, rec, async_op)


def all_gather_into_tensor(pg, output: Tensor, input: Tensor, async_op: bool):
    name = "all_gather_into_tensor"
    comm = _comm(pg, name)
    info = _dtype(name, input, "input_tensor", comm.device)
    if _dtype(name, output, "output_tensor", comm.device) is not info or (
            output.numel() != pg._size * input.numel()):
        raise ValueError(f"[{name}] output_tensor is {_describe(output)}; it must have the "
                         f"dtype of input_tensor ({_describe(input)}) and {pg._size} (the group "
                         "size) times its elements")
    out = _Operand(output, name, "output_tensor", write=True)
    src = _Operand(input, name, "input_tensor", write=False)
    send = _send_buffer(src.buf, out.buf, src.buf, pg._rank, input.numel())

    def body(c, s):
        c.all_gather(send, out.buf, s)
        out.finish()
    rec = _record(name, dtype=info, shape=input.shape)
    return _launch(pg, comm, name, _describe(input), [output], body, rec, async_op)


def reduce_scatter(pg, output: Tensor, input_list, op: ReduceOp, async_op: bool):
    name = "reduce_scatter"
    comm = _comm(pg, name)
    info = _dtype(name, output, "output", comm.device)
    _same_as(name, output, info, input_list, "input_list", pg._size, comm.device,
             same_shape=False)
    if tuple(input_list[pg._rank].shape) != tuple(output.shape):
        raise ValueError(f"[{name}] input_list[{pg._rank}] is {_describe(input_list[pg._rank])}"
                         f" but this rank's output is {_describe(output)}: they must match")
    nccl_op = reduce_op(name, op, info)
    out = _Operand(output, name, "output", write=True)
    # Every rank holds the same list of shapes (the checks compare them), so every rank takes
    # the same branch.
    if all(t.numel() == output.numel() for t in input_list):
        send = cat([t.detach().reshape(-1) for t in input_list])

        def body(c, s):
            c.reduce_scatter(send, out.buf, nccl_op, s)
            out.finish()
    else:
        parts = [_Operand(t, name, f"input_list[{i}]", write=False).buf
                 for i, t in enumerate(input_list)]

        def body(c, s):
            for r, part in enumerate(parts):  # part r reduced onto rank r
                c.reduce(part, out.buf if r == pg._rank else part, nccl_op, r, s)
            out.finish()
    rec = _record(name, dtype=info, shape=output.shape, redop=op,
                  extra=_checks.shape_crc([t.shape for t in input_list]))
    return _launch(pg, comm, name, _describe(output), [output], body, rec, async_op)


def reduce_scatter_tensor(pg, output: Tensor, input: Tensor, op: ReduceOp, async_op: bool):
    name = "reduce_scatter_tensor"
    comm = _comm(pg, name)
    info = _dtype(name, input, "input", comm.device)
    if _dtype(name, output, "output", comm.device) is not info or (
            input.numel() != pg._size * output.numel()):
        raise ValueError(f"[{name}] input is {_describe(input)} and output {_describe(output)}: "
                         f"they must share a dtype, and input must hold {pg._size} (the group "
                         "size) times output's elements")
    nccl_op = reduce_op(name, op, info)
    out = _Operand(output, name, "output", write=True)
    src = _Operand(input, name, "input", write=False)
    send = _send_buffer(src.buf, src.buf, out.buf, pg._rank, output.numel())

    def body(c, s):
        c.reduce_scatter(send, out.buf, nccl_op, s)
        out.finish()
    rec = _record(name, dtype=info, shape=input.shape, redop=op)
    return _launch(pg, comm, name, _describe(input), [output], body, rec, async_op)


def gather(pg, tensor: Tensor, gather_list, root: int, async_op: bool):
    name = "gather"
    comm = _comm(pg, name)
    info = _dtype(name, tensor, "tensor", comm.device)
    is_root = pg._rank == root
    slots = []
    if is_root:
        if gather_list is None:
            raise ValueError("[gather] the destination rank must pass gather_list")
        _same_as(name, tensor, info, gather_list, "gather_list", pg._size, comm.device)
        slots = [_Operand(t, name, f"gather_list[{i}]", write=True)
                 for i, t in enumerate(gather_list)]
    elif gather_list:
        raise ValueError("[gather] gather_list must not be given on ranks other than dst")
    src = _Operand(tensor, name, "tensor", write=False)

    def body(c, s):
        if not is_root:
            c.send(src.buf, root, s)
            return
        for r, slot in enumerate(slots):  # one receive after another, in rank order
            if r == root:
                slot.buf.copy_(src.buf)
            else:
                c.recv(slot.buf, r, s)
            slot.finish()
    rec = _record(name, dtype=info, shape=tensor.shape, root=root)
    results = list(gather_list) if is_root else [tensor]
    return _launch(pg, comm, name, _describe(tensor), results, body, rec, async_op)


def scatter(pg, tensor: Tensor, scatter_list, root: int, async_op: bool):
    name = "scatter"
    comm = _comm(pg, name)
    info = _dtype(name, tensor, "tensor", comm.device)
    is_root = pg._rank == root
    parts = []
    if is_root:
        if scatter_list is None:
            raise ValueError("[scatter] the source rank must pass scatter_list")
        _same_as(name, tensor, info, scatter_list, "scatter_list", pg._size, comm.device)
        parts = [_Operand(t, name, f"scatter_list[{i}]", write=False).buf
                 for i, t in enumerate(scatter_list)]
    elif scatter_list:
        raise ValueError("[scatter] scatter_list must not be given on ranks other than src")
    out = _Operand(tensor, name, "tensor", write=True)

    def body(c, s):
        if is_root:
            for r, part in enumerate(parts):
                if r == root:
                    out.buf.copy_(part)
                else:
                    c.send(part, r, s)
        else:
            c.recv(out.buf, root, s)
        out.finish()
    rec = _record(name, dtype=info, shape=tensor.shape, root=root)
    return _launch(pg, comm, name, _describe(tensor), [tensor], body, rec, async_op)


def barrier(pg, async_op: bool):
    """A one-element all_reduce that the host waits for, as PyTorch's NCCL barrier: every rank's
    device has reached it when it returns (or its Work's wait() does)."""
    comm = _comm(pg, "barrier")
    one = _empty((1,), float32, comm.device)

    def body(c, s):
        c.all_reduce(one, one, SUM, s)
    return _launch(pg, comm, "barrier", "no tensors", [], body, _record("barrier"), async_op,
                   host_wait=True)


def point_to_point(pg, op: str, tensor: Tensor, peer: int, is_send: bool) -> CudaWork:
    """isend/irecv (send/recv wait on the Work) with the group rank ``peer``. NCCL matches a
    pair's sends and receives in order and has no tags."""
    comm = _comm(pg, op)
    _dtype(op, tensor, "tensor", comm.device)
    t = _Operand(tensor, op, "tensor", write=not is_send)
    other = pg._ranks[peer]

    def body(c, s):
        if is_send:
            c.send(t.buf, peer, s)
            return None
        c.recv(t.buf, peer, s)
        t.finish()
        return other  # Work.source_rank()
    desc = f"{_describe(tensor)} {'to' if is_send else 'from'} rank {other}"
    return _launch(pg, comm, op, desc, [tensor], body, None, True, peers=[other])


def _empty(shape, dtype, device: int) -> Tensor:
    return empty(*shape, dtype=dtype, device=f"cuda:{device}")
