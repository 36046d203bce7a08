"""Note [Collective checks]
MPI cannot tell that ranks called different collectives, or passed tensors of different shapes:
the call hangs, fails with a message about byte counts, or silently mixes data. So before each
collective's data moves, its worker thread allgathers a fixed record of ``RECORD`` int64s from
every rank of the group: which collective, its number among the group's collectives, the dtype
and shape, the root and the reduce op. Every rank then holds the same records and reaches the
same verdict, so a mismatch raises DistMismatchError on every rank, naming each rank's value
("rank 0: float32 (4,); rank 1: float32 (5,)"), and no data collective starts: the group stays
usable.

The check costs one small MPI_Allgather per collective (measured on 2 ranks over loopback TCP:
see the module docstring of deepcore.distributed). ``set_collective_checks(False)``, or
``DEEPCORE_DISTRIBUTED_CHECKS=0`` in the environment, turns it off; every rank must make the same
choice, since the record's allgather is itself a collective.

Point-to-point operations are not checked this way (a receive does not know its sender in
advance); a receive whose message has a different size raises DistMismatchError on the receiver.
"""
from __future__ import annotations

import zlib

import numpy as np

from ._mpi import DTYPE_NAMES, OP_CODES, OP_NAMES
from ._runtime import RUNTIME
from ._types import DistMismatchError

# The record: (field, meaning); dims beyond MAX_DIMS are folded into SHAPE_CRC.
OP, SEQ, DTYPE, NDIM, NUMEL, ROOT, REDOP, EXTRA, SHAPE_CRC = range(9)
MAX_DIMS = 15
RECORD = 9 + MAX_DIMS

COLLECTIVES = ("all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor",
               "reduce_scatter", "reduce_scatter_tensor", "gather", "scatter", "barrier",
               "all_gather_object", "broadcast_object_list", "gather_object", "new_group")
_CODES = {name: i for i, name in enumerate(COLLECTIVES, start=1)}

# Which parts of the record every rank must agree on, per collective.
_AGREE = {
    "all_reduce": ("tensor", "redop"),
    "broadcast": ("tensor", "root"),
    "reduce": ("tensor", "root", "redop"),
    "all_gather": ("tensor",),
    "all_gather_into_tensor": ("tensor",),
    "reduce_scatter": ("dtype", "redop", "extra"),
    "reduce_scatter_tensor": ("tensor", "redop"),
    "gather": ("tensor", "root"),
    "scatter": ("tensor", "root"),
    "barrier": (),
    "all_gather_object": (),
    "broadcast_object_list": ("root",),
    "gather_object": ("root",),
    "new_group": ("extra",),
}


def _shape_key(shape) -> tuple:
    shape = tuple(int(d) for d in shape)
    return (len(shape), int(np.prod(shape, dtype=np.int64))) + shape[:MAX_DIMS]


def shape_crc(shapes) -> int:
    """A stable 32-bit digest of a list of shapes (the ranks' Python hashes differ); dims beyond
    MAX_DIMS count through the number of dims and elements only."""
    return zlib.crc32(repr([_shape_key(s) for s in shapes]).encode())


def record(op: str, dtype=None, shape=(), root: int = -1, redop=None, extra: int = 0):
    rec = np.zeros(RECORD, dtype=np.int64)
    rec[OP] = _CODES[op]
    rec[ROOT] = root
    rec[REDOP] = OP_CODES[redop] if redop is not None else 0
    rec[EXTRA] = extra
    if dtype is not None:
        shape = tuple(int(d) for d in shape)
        rec[DTYPE] = dtype.code
        rec[NDIM] = len(shape)
        rec[NUMEL] = int(np.prod(shape, dtype=np.int64))
        rec[9:9 + min(len(shape), MAX_DIMS)] = shape[:MAX_DIMS]
        if len(shape) > MAX_DIMS:
            rec[SHAPE_CRC] = zlib.crc32(repr(shape).encode())
    return rec


def _tensor_text(r) -> str:
    ndim = int(r[NDIM])
    dims = [int(d) for d in r[9:9 + min(ndim, MAX_DIMS)]]
    if ndim > MAX_DIMS:
        dims.append(f"... {ndim} dims")
    shape = "(" + ", ".join(str(d) for d in dims) + ("," if ndim == 1 else "") + ")"
    return f"{DTYPE_NAMES.get(int(r[DTYPE]), '?')} {shape}"


def _listing(recs, text) -> str:
    return "; ".join(f"rank {i}: {text(r)}" for i, r in enumerate(recs))


def verify(pg, op: str, rec: np.ndarray) -> None:
    """Runs on the group's worker thread: gathers every rank's record and raises
    DistMismatchError (the same one on every rank) if they disagree."""
    MPI = RUNTIME.MPI
    recs = np.empty((pg._size, RECORD), dtype=np.int64)
    pg._comm.Allgather([rec, MPI.INT64_T], [recs, MPI.INT64_T])
    where = f"[{op}] rank {RUNTIME.rank}: the ranks of group {pg._name}"
    seq = int(rec[SEQ])
    if len(set(recs[:, OP].tolist())) > 1 or len(set(recs[:, SEQ].tolist())) > 1:
        raise DistMismatchError(
            f"{where} called different collectives: "
            + _listing(recs, lambda r: f"{COLLECTIVES[int(r[OP]) - 1]} #{int(r[SEQ])}")
            + ". Every rank must call the same collectives in the same order")
    agree = _AGREE[op]
    if "tensor" in agree and len({tuple(r[DTYPE:NUMEL + 1]) + tuple(r[SHAPE_CRC:])
                                  for r in recs.tolist()}) > 1:
        raise DistMismatchError(
            f"{where} passed different tensors to {op} #{seq}: {_listing(recs, _tensor_text)}. "
            "Every rank must pass the same dtype and shape")
    if "dtype" in agree and len(set(recs[:, DTYPE].tolist())) > 1:
        raise DistMismatchError(
            f"{where} passed tensors of different dtypes to {op} #{seq}: "
            f"{_listing(recs, _tensor_text)}")
    if "root" in agree and len(set(recs[:, ROOT].tolist())) > 1:
        raise DistMismatchError(
            f"{where} named different roots for {op} #{seq}: "
            + _listing(recs, lambda r: f"rank {pg._ranks[int(r[ROOT])]}")
            + " (global ranks). Every rank must name the same one")
    if "redop" in agree and len(set(recs[:, REDOP].tolist())) > 1:
        raise DistMismatchError(
            f"{where} passed different reduce ops to {op} #{seq}: "
            + _listing(recs, lambda r: f"ReduceOp.{OP_NAMES[int(r[REDOP])]}"))
    if "extra" in agree and len(set(recs[:, EXTRA].tolist())) > 1:
        what = "ranks lists" if op == "new_group" else "input_list shapes"
        raise DistMismatchError(f"{where} passed different {what} to {op} #{seq}")
