"""Collectives on Python objects: ``all_gather_object``, ``broadcast_object_list``,
``gather_object``.

Objects travel pickled, as in PyTorch. The bytes unpickled here come only from this program's
own peer ranks over MPI, in the same run, never from a file or the network at large; anything
that must be read from disk goes through deepcore.load (safetensors), which runs no code.
"""
from __future__ import annotations

import pickle
from typing import Any, List, Optional

import numpy as np

from ._collectives import _group, _launch, _record, _root
from ._runtime import RUNTIME


def _dumps(obj) -> np.ndarray:
    return np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8)


def _loads(buf: np.ndarray):
    return pickle.loads(buf.tobytes())  # noqa: S301  (a peer rank of this program, see above)


def _displacements(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)


def all_gather_object(object_list: List[Any], obj: Any, group=None) -> None:
    """Fills ``object_list`` (one slot per rank of the group) with every rank's ``obj``."""
    op = "all_gather_object"
    pg = _group(op, group)
    if pg is None:
        return
    if not isinstance(object_list, list) or len(object_list) != pg._size:
        raise ValueError(f"[{op}] object_list must be a list of {pg._size} slots (the group "
                         f"size), got {type(object_list).__name__} of length "
                         f"{len(object_list) if hasattr(object_list, '__len__') else '?'}")
    data = _dumps(obj)
    comm, MPI = pg._comm, RUNTIME.MPI

    def run():
        sizes = np.empty(pg._size, dtype=np.int64)
        comm.Allgather([np.array([data.size], dtype=np.int64), MPI.INT64_T],
                       [sizes, MPI.INT64_T])
        displs = _displacements(sizes)
        out = np.empty(int(sizes.sum()), dtype=np.uint8)
        comm.Allgatherv([data, MPI.BYTE], [out, (sizes, displs), MPI.BYTE])
        return [_loads(out[d:d + n]) for d, n in zip(displs, sizes)]
    work = _launch(pg, op, f"{data.size} pickled bytes", [], run, _record(op), async_op=True)
    work.wait()
    object_list[:] = work._value


def broadcast_object_list(object_list: List[Any], src: Optional[int] = None, group=None,
                          device=None, group_src: Optional[int] = None) -> None:
    """Replaces the items of ``object_list`` on every rank with those of rank ``src`` (default
    0); the lists must have the same length on every rank."""
    op = "broadcast_object_list"
    pg = _group(op, group)
    if pg is None:
        return
    if not isinstance(object_list, list):
        raise TypeError(f"[{op}] object_list must be a list, got {type(object_list).__name__}")
    root = _root(op, pg, src, group_src, "src", default0=True)
    is_root = pg._rank == root
    data = _dumps(list(object_list)) if is_root else None
    comm, MPI = pg._comm, RUNTIME.MPI

    def run():
        n = np.array([data.size if is_root else 0], dtype=np.int64)
        comm.Bcast([n, MPI.INT64_T], root=root)
        buf = data if is_root else np.empty(int(n[0]), dtype=np.uint8)
        comm.Bcast([buf, MPI.BYTE], root=root)
        return None if is_root else _loads(buf)
    work = _launch(pg, op, f"a list of {len(object_list)}", [], run, _record(op, root=root),
                   async_op=True)
    work.wait()
    if not is_root:
        objs = work._value
        if len(objs) != len(object_list):
            raise ValueError(f"[{op}] rank {RUNTIME.rank}: object_list has {len(object_list)} "
                             f"slots but rank {pg._ranks[root]} broadcast {len(objs)} objects")
        object_list[:] = objs


def gather_object(obj: Any, object_gather_list: Optional[List[Any]] = None,
                  dst: Optional[int] = None, group=None, group_dst: Optional[int] = None) -> None:
    """Fills ``object_gather_list`` on rank ``dst`` (default 0) with every rank's ``obj``."""
    op = "gather_object"
    pg = _group(op, group)
    if pg is None:
        return
    root = _root(op, pg, dst, group_dst, "dst", default0=True)
    is_root = pg._rank == root
    if is_root and (not isinstance(object_gather_list, list)
                    or len(object_gather_list) != pg._size):
        raise ValueError(f"[{op}] the destination rank must pass object_gather_list, a list of "
                         f"{pg._size} slots (the group size)")
    if not is_root and object_gather_list is not None:
        raise ValueError(f"[{op}] object_gather_list must not be given on ranks other than dst")
    data = _dumps(obj)
    comm, MPI = pg._comm, RUNTIME.MPI

    def run():
        sizes = np.empty(pg._size, dtype=np.int64) if is_root else None
        comm.Gather([np.array([data.size], dtype=np.int64), MPI.INT64_T],
                    [sizes, MPI.INT64_T] if is_root else None, root=root)
        if not is_root:
            comm.Gatherv([data, MPI.BYTE], None, root=root)
            return None
        displs = _displacements(sizes)
        out = np.empty(int(sizes.sum()), dtype=np.uint8)
        comm.Gatherv([data, MPI.BYTE], [out, (sizes, displs), MPI.BYTE], root=root)
        return [_loads(out[d:d + n]) for d, n in zip(displs, sizes)]
    work = _launch(pg, op, f"{data.size} pickled bytes", [], run, _record(op, root=root),
                   async_op=True)
    work.wait()
    if is_root:
        object_gather_list[:] = work._value
