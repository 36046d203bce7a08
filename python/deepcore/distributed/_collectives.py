"""The tensor collectives and point-to-point operations, with PyTorch's signatures. CUDA
tensors go to the NCCL backend (_nccl.py) once the group and the roots are resolved; what
follows is about CPU tensors and MPI.

Tensors are handed to MPI through ``tensor.detach().numpy()``, which shares the tensor's memory:
a contiguous CPU tensor is reduced, broadcast or received in place with no copy. A
non-contiguous one goes through a contiguous copy, and results are copied back into it when the
operation completes; an expanded tensor (a stride of 0, its elements sharing memory) cannot take
a result and raises ValueError. ``all_gather``, ``gather``, ``scatter`` and ``reduce_scatter``
take lists of tensors, which are packed into (or unpacked from) one buffer; the ``*_tensor``
forms work on one flat buffer and copy nothing.

Like PyTorch: ``src``/``dst`` are global ranks (``group_src``/``group_dst`` ranks in the group);
on a rank outside ``group`` a collective does nothing and returns None; with ``async_op=True``
a collective returns a Work, and the tensors must not be touched until ``wait()``.
"""
from __future__ import annotations

import threading
from typing import List, Optional

import numpy as np

from .. import Tensor
from . import _checks, _groups, _nccl
from ._groups import ProcessGroup, resolve
from ._mpi import DTYPES, DType, reduce_op
from ._runtime import RUNTIME
from ._types import DistMismatchError, ReduceOp
from ._work import Work


def _dtype(op: str, t, arg: str) -> DType:
    if not isinstance(t, Tensor):
        raise TypeError(f"[{op}] {arg} must be a deepcore Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise NotImplementedError(f"[{op}] {arg} is on {t.device}: the MPI backend moves CPU "
                                  "tensors (CUDA ones go through NCCL, every tensor of the call "
                                  "on the device)")
    info = DTYPES.get(t.dtype)
    if info is None:
        raise TypeError(f"[{op}] {arg} has dtype {t.dtype}; the MPI backend supports float32, "
                        "float64, int32, int64 and bool")
    return info


def _describe(t: Tensor) -> str:
    return f"{DTYPES[t.dtype].name} {tuple(t.shape)}"


class _Buf:
    """A tensor's memory as a contiguous NumPy array for MPI: the tensor itself when it is
    contiguous, else a copy that ``finish()`` writes back (for tensors that take a result)."""

    __slots__ = ("array", "_view")

    def __init__(self, t: Tensor, op: str, arg: str, write: bool) -> None:
        view = t.detach().numpy()
        self._view = None
        if view.flags.c_contiguous:
            self.array = view
            return
        if write and any(st == 0 and n > 1 for st, n in zip(view.strides, view.shape)):
            raise ValueError(f"[{op}] {arg} ({_describe(t)}) is an expanded view whose elements "
                             f"share memory, so it cannot hold a result; pass {arg}.clone()")
        self.array = np.ascontiguousarray(view)
        if write:
            self._view = view

    def finish(self) -> None:
        if self._view is not None:
            np.copyto(self._view, self.array)


def _writable_view(t: Tensor, op: str, arg: str):
    view = t.detach().numpy()
    if any(st == 0 and n > 1 for st, n in zip(view.strides, view.shape)):
        raise ValueError(f"[{op}] {arg} ({_describe(t)}) is an expanded view whose elements "
                         "share memory, so it cannot hold a result; pass a clone()")
    return view


def _group(op: str, group) -> Optional[ProcessGroup]:
    pg = resolve(group, op)
    if pg is not None:
        RUNTIME.check(op)  # collectives check their group's ranks again as they are queued
    return pg


def _root(op: str, pg: ProcessGroup, rank, group_rank, arg: str, default0: bool) -> int:
    """The group rank named by a global ``src``/``dst`` or by ``group_src``/``group_dst``."""
    if group_rank is not None:
        if rank is not None:
            raise ValueError(f"[{op}] pass {arg} or group_{arg}, not both")
        if not 0 <= int(group_rank) < pg._size:
            raise ValueError(f"[{op}] group_{arg}={group_rank} is outside group {pg._name} of "
                             f"size {pg._size}")
        return int(group_rank)
    if rank is None:
        if not default0:
            raise ValueError(f"[{op}] pass {arg} (a global rank) or group_{arg}")
        rank = 0  # PyTorch's default: global rank 0
    rank = int(rank)
    if rank not in pg._ranks:
        raise ValueError(f"[{op}] {arg}={rank} is not a rank of group {pg._name} (global ranks "
                         f"{pg._ranks})")
    return pg._ranks.index(rank)


def _record(op: str, **fields):
    return _checks.record(op, **fields) if _groups._checks_enabled else None


def _launch(pg: ProcessGroup, op: str, desc: str, tensors, run, rec, async_op: bool):
    if not async_op and threading.current_thread() is pg._thread:
        raise RuntimeError(f"[{op}] a blocking {op} inside a Future callback (which runs on the "
                           f"worker thread of group {pg._name}) would wait forever: the worker "
                           "runs it only after the callback returns. Use async_op=True")
    work = Work(op, pg, desc, tensors)
    pg._submit(work, run, rec)
    if async_op:
        return work
    work.wait()
    return None


def _same_as(op: str, ref: Tensor, ref_info: DType, tensors, arg: str, count: int,
             same_shape: bool = True) -> None:
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"[{op}] {arg} must be a list of tensors, got {type(tensors).__name__}")
    if len(tensors) != count:
        raise ValueError(f"[{op}] {arg} must hold {count} tensors (one per rank of the group), "
                         f"got {len(tensors)}")
    for i, t in enumerate(tensors):
        info = _dtype(op, t, f"{arg}[{i}]")
        if info is not ref_info or (same_shape and tuple(t.shape) != tuple(ref.shape)):
            raise ValueError(f"[{op}] {arg}[{i}] is {_describe(t)}, expected {_describe(ref)} "
                             "like the tensor argument")


# ---- collectives -------------------------------------------------------------------------------

def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduces ``tensor`` across the group, in place, on every rank."""
    pg = _group("all_reduce", group)
    if pg is None:
        return None
    if _nccl.on_cuda(tensor):
        return _nccl.all_reduce(pg, tensor, op, async_op)
    info = _dtype("all_reduce", tensor, "tensor")
    mpi_op, divide = reduce_op("all_reduce", op, info)
    buf = _Buf(tensor, "all_reduce", "tensor", write=True)
    comm, MPI = pg._comm, RUNTIME.MPI

    def run():
        comm.Allreduce(MPI.IN_PLACE, [buf.array, info.mpi()], mpi_op)
        if divide:
            buf.array /= pg._size
        buf.finish()
    rec = _record("all_reduce", dtype=info, shape=tensor.shape, redop=op)
    return _launch(pg, "all_reduce", _describe(tensor), [tensor], run, rec, async_op)


def broadcast(tensor: Tensor, src: Optional[int] = None, group=None, async_op: bool = False,
              group_src: Optional[int] = None):
    """Copies ``tensor`` of rank ``src`` into ``tensor`` on every other rank."""
    pg = _group("broadcast", group)
    if pg is None:
        return None
    root = _root("broadcast", pg, src, group_src, "src", default0=False)
    if _nccl.on_cuda(tensor):
        return _nccl.broadcast(pg, tensor, root, async_op)
    info = _dtype("broadcast", tensor, "tensor")
    buf = _Buf(tensor, "broadcast", "tensor", write=pg._rank != root)
    comm = pg._comm

    def run():
        comm.Bcast([buf.array, info.mpi()], root=root)
        buf.finish()
    rec = _record("broadcast", dtype=info, shape=tensor.shape, root=root)
    return _launch(pg, "broadcast", _describe(tensor), [tensor], run, rec, async_op)


def reduce(tensor: Tensor, dst: Optional[int] = None, op: ReduceOp = ReduceOp.SUM, group=None,
           async_op: bool = False, group_dst: Optional[int] = None):
    """Reduces ``tensor`` across the group into ``tensor`` of rank ``dst`` (default 0)."""
    pg = _group("reduce", group)
    if pg is None:
        return None
    root = _root("reduce", pg, dst, group_dst, "dst", default0=True)
    if _nccl.on_cuda(tensor):
        return _nccl.reduce(pg, tensor, root, op, async_op)
    info = _dtype("reduce", tensor, "tensor")
    mpi_op, divide = reduce_op("reduce", op, info)
    is_root = pg._rank == root
    buf = _Buf(tensor, "reduce", "tensor", write=is_root)
    comm, MPI = pg._comm, RUNTIME.MPI

    def run():
        if is_root:
            comm.Reduce(MPI.IN_PLACE, [buf.array, info.mpi()], mpi_op, root=root)
            if divide:
                buf.array /= pg._size
            buf.finish()
        else:
            comm.Reduce([buf.array, info.mpi()], None, mpi_op, root=root)
    rec = _record("reduce", dtype=info, shape=tensor.shape, root=root, redop=op)
    return _launch(pg, "reduce", _describe(tensor), [tensor], run, rec, async_op)


def all_gather(tensor_list: List[Tensor], tensor: Tensor, group=None, async_op: bool = False):
    """Fills ``tensor_list[i]`` with ``tensor`` of group rank i, on every rank."""
    pg = _group("all_gather", group)
    if pg is None:
        return None
    if _nccl.on_cuda(tensor):
        return _nccl.all_gather(pg, tensor_list, tensor, async_op)
    info = _dtype("all_gather", tensor, "tensor")
    _same_as("all_gather", tensor, info, tensor_list, "tensor_list", pg._size)
    views = [_writable_view(t, "all_gather", f"tensor_list[{i}]")
             for i, t in enumerate(tensor_list)]
    src = _Buf(tensor, "all_gather", "tensor", write=False)
    comm = pg._comm

    def run():
        out = np.empty((pg._size, src.array.size), dtype=info.numpy)
        comm.Allgather([src.array, info.mpi()], [out, info.mpi()])
        for view, row in zip(views, out):
            np.copyto(view, row.reshape(view.shape))
    rec = _record("all_gather", dtype=info, shape=tensor.shape)
    return _launch(pg, "all_gather", _describe(tensor), list(tensor_list), run, rec, async_op)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None,
                           async_op: bool = False):
    """Concatenates ``input_tensor`` of every rank, in group-rank order, into
    ``output_tensor`` (``size()`` times as many elements, stacked or concatenated on dim 0)."""
    op = "all_gather_into_tensor"
    pg = _group(op, group)
    if pg is None:
        return None
    if _nccl.on_cuda(input_tensor):
        return _nccl.all_gather_into_tensor(pg, output_tensor, input_tensor, async_op)
    info = _dtype(op, input_tensor, "input_tensor")
    if _dtype(op, output_tensor, "output_tensor") is not info or (
            output_tensor.numel() != pg._size * input_tensor.numel()):
        raise ValueError(f"[{op}] output_tensor is {_describe(output_tensor)}; it must have the "
                         f"dtype of input_tensor ({_describe(input_tensor)}) and {pg._size} "
                         "(the group size) times its elements")
    out = _Buf(output_tensor, op, "output_tensor", write=True)
    src = _Buf(input_tensor, op, "input_tensor", write=False)
    send = src.array.copy() if np.shares_memory(src.array, out.array) else src.array
    comm = pg._comm

    def run():
        comm.Allgather([send, info.mpi()], [out.array, info.mpi()])
        out.finish()
    rec = _record(op, dtype=info, shape=input_tensor.shape)
    return _launch(pg, op, _describe(input_tensor), [output_tensor], run, rec, async_op)


def reduce_scatter(output: Tensor, input_list: List[Tensor], op: ReduceOp = ReduceOp.SUM,
                   group=None, async_op: bool = False):
    """Reduces ``input_list[i]`` across the group into ``output`` of group rank i."""
    name = "reduce_scatter"
    pg = _group(name, group)
    if pg is None:
        return None
    if _nccl.on_cuda(output):
        return _nccl.reduce_scatter(pg, output, input_list, op, async_op)
    info = _dtype(name, output, "output")
    _same_as(name, output, info, input_list, "input_list", pg._size, same_shape=False)
    if tuple(input_list[pg._rank].shape) != tuple(output.shape):
        raise ValueError(f"[{name}] input_list[{pg._rank}] is {_describe(input_list[pg._rank])}"
                         f" but this rank's output is {_describe(output)}: they must match")
    mpi_op, divide = reduce_op(name, op, info)
    counts = [t.numel() for t in input_list]
    send = np.concatenate([t.detach().numpy().reshape(-1) for t in input_list])
    out = _Buf(output, name, "output", write=True)
    comm = pg._comm

    def run():
        comm.Reduce_scatter([send, info.mpi()], [out.array, info.mpi()], recvcounts=counts,
                            op=mpi_op)
        if divide:
            out.array /= pg._size
        out.finish()
    rec = _record(name, dtype=info, shape=output.shape, redop=op,
                  extra=_checks.shape_crc([t.shape for t in input_list]))
    return _launch(pg, name, _describe(output), [output], run, rec, async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,
                          group=None, async_op: bool = False):
    """Reduces ``input`` (``size()`` equal chunks) across the group; chunk i lands in ``output``
    of group rank i."""
    name = "reduce_scatter_tensor"
    pg = _group(name, group)
    if pg is None:
        return None
    if _nccl.on_cuda(input):
        return _nccl.reduce_scatter_tensor(pg, output, input, op, async_op)
    info = _dtype(name, input, "input")
    if _dtype(name, output, "output") is not info or input.numel() != pg._size * output.numel():
        raise ValueError(f"[{name}] input is {_describe(input)} and output {_describe(output)}: "
                         f"they must share a dtype, and input must hold {pg._size} (the group "
                         "size) times output's elements")
    mpi_op, divide = reduce_op(name, op, info)
    out = _Buf(output, name, "output", write=True)
    src = _Buf(input, name, "input", write=False)
    send = src.array.copy() if np.shares_memory(src.array, out.array) else src.array
    comm = pg._comm

    def run():
        comm.Reduce_scatter_block([send, info.mpi()], [out.array, info.mpi()], op=mpi_op)
        if divide:
            out.array /= pg._size
        out.finish()
    rec = _record(name, dtype=info, shape=input.shape, redop=op)
    return _launch(pg, name, _describe(input), [output], run, rec, async_op)


def gather(tensor: Tensor, gather_list: Optional[List[Tensor]] = None, dst: Optional[int] = None,
           group=None, async_op: bool = False, group_dst: Optional[int] = None):
    """Fills ``gather_list[i]`` on rank ``dst`` (default 0) with ``tensor`` of group rank i."""
    pg = _group("gather", group)
    if pg is None:
        return None
    root = _root("gather", pg, dst, group_dst, "dst", default0=True)
    if _nccl.on_cuda(tensor):
        return _nccl.gather(pg, tensor, gather_list, root, async_op)
    info = _dtype("gather", tensor, "tensor")
    is_root = pg._rank == root
    if is_root:
        if gather_list is None:
            raise ValueError("[gather] the destination rank must pass gather_list")
        _same_as("gather", tensor, info, gather_list, "gather_list", pg._size)
        views = [_writable_view(t, "gather", f"gather_list[{i}]")
                 for i, t in enumerate(gather_list)]
    elif gather_list:
        raise ValueError("[gather] gather_list must not be given on ranks other than dst")
    src = _Buf(tensor, "gather", "tensor", write=False)
    comm = pg._comm

    def run():
        if not is_root:
            comm.Gather([src.array, info.mpi()], None, root=root)
            return
        out = np.empty((pg._size, src.array.size), dtype=info.numpy)
        comm.Gather([src.array, info.mpi()], [out, info.mpi()], root=root)
        for view, row in zip(views, out):
            np.copyto(view, row.reshape(view.shape))
    rec = _record("gather", dtype=info, shape=tensor.shape, root=root)
    results = list(gather_list) if is_root else [tensor]
    return _launch(pg, "gather", _describe(tensor), results, run, rec, async_op)


def scatter(tensor: Tensor, scatter_list: Optional[List[Tensor]] = None,
            src: Optional[int] = None, group=None, async_op: bool = False,
            group_src: Optional[int] = None):
    """Fills ``tensor`` of group rank i with ``scatter_list[i]`` of rank ``src`` (default 0)."""
    pg = _group("scatter", group)
    if pg is None:
        return None
    root = _root("scatter", pg, src, group_src, "src", default0=True)
    if _nccl.on_cuda(tensor):
        return _nccl.scatter(pg, tensor, scatter_list, root, async_op)
    info = _dtype("scatter", tensor, "tensor")
    is_root = pg._rank == root
    send = None
    if is_root:
        if scatter_list is None:
            raise ValueError("[scatter] the source rank must pass scatter_list")
        _same_as("scatter", tensor, info, scatter_list, "scatter_list", pg._size)
        send = np.concatenate([t.detach().numpy().reshape(-1) for t in scatter_list])
    elif scatter_list:
        raise ValueError("[scatter] scatter_list must not be given on ranks other than src")
    out = _Buf(tensor, "scatter", "tensor", write=True)
    comm = pg._comm

    def run():
        comm.Scatter([send, info.mpi()] if is_root else None, [out.array, info.mpi()],
                     root=root)
        out.finish()
    rec = _record("scatter", dtype=info, shape=tensor.shape, root=root)
    return _launch(pg, "scatter", _describe(tensor), [tensor], run, rec, async_op)


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Waits until every rank of the group reaches it (with NCCL: every rank's device)."""
    pg = _group("barrier", group)
    if pg is None:
        return None
    if pg._nccl is not None:
        return _nccl.barrier(pg, async_op)
    comm = pg._comm
    return _launch(pg, "barrier", "no tensors", [], comm.Barrier, _record("barrier"), async_op)


# ---- point to point ----------------------------------------------------------------------------

def _peer(op: str, pg: ProcessGroup, rank, group_rank, arg: str) -> int:
    peer = _root(op, pg, rank, group_rank, arg, default0=False)
    if peer == pg._rank:
        verb = "send to" if arg == "dst" else "receive from"
        raise ValueError(f"[{op}] rank {pg._ranks[peer]} cannot {verb} itself")
    return peer


def _tag(op: str, tag) -> int:
    if not isinstance(tag, int) or isinstance(tag, bool) or tag < 0:
        raise ValueError(f"[{op}] tag must be an int >= 0, got {tag!r}")
    return tag


def _isend(op: str, tensor, dst, group, tag, group_dst) -> Optional[Work]:
    pg = _group(op, group)
    if pg is None:
        return None
    peer = _peer(op, pg, dst, group_dst, "dst")
    if _nccl.on_cuda(tensor):
        _tag(op, tag)  # checked, and unused: NCCL has no tags
        return _nccl.point_to_point(pg, op, tensor, peer, is_send=True)
    info = _dtype(op, tensor, "tensor")
    RUNTIME.check(op, [pg._ranks[peer]])
    buf = _Buf(tensor, op, "tensor", write=False)
    work = Work(op, pg, f"{_describe(tensor)} to rank {pg._ranks[peer]}", [tensor])
    work._peers = [pg._ranks[peer]]
    work._on_request_done = lambda status, keep=buf: None
    work._request = pg._comm.Isend([buf.array, info.mpi()], dest=peer, tag=_tag(op, tag))
    return work


def _irecv(op: str, tensor, src, group, tag, group_src) -> Optional[Work]:
    pg = _group(op, group)
    if pg is None:
        return None
    if _nccl.on_cuda(tensor):
        if src is None and group_src is None:
            raise ValueError(f"[{op}] NCCL receives from one rank: pass src (or group_src)")
        _tag(op, tag)  # checked, and unused: NCCL has no tags
        return _nccl.point_to_point(pg, op, tensor, _peer(op, pg, src, group_src, "src"),
                                    is_send=False)
    info = _dtype(op, tensor, "tensor")
    MPI = RUNTIME.MPI
    if src is None and group_src is None:
        peer, sender, peers = MPI.ANY_SOURCE, "any rank", []
    else:
        peer = _peer(op, pg, src, group_src, "src")
        sender, peers = f"rank {pg._ranks[peer]}", [pg._ranks[peer]]
    RUNTIME.check(op, peers)
    buf = _Buf(tensor, op, "tensor", write=True)
    work = Work(op, pg, f"{_describe(tensor)} from {sender}", [tensor])
    work._peers = peers

    def done(status):
        got, want = status.Get_count(MPI.BYTE), buf.array.nbytes
        source = pg._ranks[status.Get_source()]
        if got != want:
            raise DistMismatchError(
                f"[{op}] rank {RUNTIME.rank}: received {got} bytes from rank {source} into "
                f"{_describe(tensor)} ({want} bytes): the sender's tensor has a different size "
                "or dtype")
        buf.finish()
        return source
    work._on_request_done = done
    work._request = pg._comm.Irecv([buf.array, info.mpi()], source=peer, tag=_tag(op, tag))
    return work


def isend(tensor: Tensor, dst: Optional[int] = None, group=None, tag: int = 0,
          group_dst: Optional[int] = None) -> Optional[Work]:
    """Starts sending ``tensor`` to global rank ``dst``; returns a Work."""
    return _isend("isend", tensor, dst, group, tag, group_dst)


def irecv(tensor: Tensor, src: Optional[int] = None, group=None, tag: int = 0,
          group_src: Optional[int] = None) -> Optional[Work]:
    """Starts receiving into ``tensor`` from global rank ``src`` (None: any rank); returns a
    Work whose ``source_rank()`` says who sent it."""
    return _irecv("irecv", tensor, src, group, tag, group_src)


def send(tensor: Tensor, dst: Optional[int] = None, group=None, tag: int = 0,
         group_dst: Optional[int] = None) -> None:
    """Sends ``tensor`` to global rank ``dst`` and waits until the send completes."""
    work = _isend("send", tensor, dst, group, tag, group_dst)
    if work is not None:
        work.wait()


def recv(tensor: Tensor, src: Optional[int] = None, group=None, tag: int = 0,
         group_src: Optional[int] = None) -> int:
    """Receives into ``tensor`` from global rank ``src`` (None: any rank); returns the sender's
    global rank (-1 outside the group)."""
    work = _irecv("recv", tensor, src, group, tag, group_src)
    if work is None:
        return -1
    work.wait()
    return work._value
