"""Loading mpi4py, and the tables from deepcore dtypes and ReduceOps to MPI's.

``import deepcore.distributed`` never loads MPI: importing ``mpi4py.MPI`` initializes the MPI
library, which only ``init_process_group`` should do.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import bool as _bool
from .. import float32, float64, int32, int64
from ._types import ReduceOp

INSTALL_HINT = ("the MPI backend needs mpi4py (pip install 'deepcore[distributed]') and an MPI "
                "library (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev)")

_MPI = None


def load(where: str):
    """The ``mpi4py.MPI`` module, importing (and so initializing MPI) on first use."""
    global _MPI
    if _MPI is not None:
        return _MPI
    try:
        import mpi4py
    except ImportError:
        raise RuntimeError(f"[{where}] {INSTALL_HINT}") from None
    # Collectives run on a worker thread while the caller polls for failures of other ranks
    # (Note [Collectives on a worker thread], _groups.py): MPI_THREAD_MULTIPLE. This only takes
    # effect when nothing imported mpi4py.MPI before; init_process_group checks what was given.
    mpi4py.rc.thread_level = "multiple"
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as e:
        raise RuntimeError(f"[{where}] mpi4py is installed but cannot load its MPI library "
                           f"({e}); {INSTALL_HINT}") from None
    _MPI = MPI
    return MPI


def loaded():
    """``mpi4py.MPI`` if init_process_group loaded it, else None."""
    return _MPI


class DType(NamedTuple):
    code: int        # in the metadata records of Note [Collective checks]
    name: str        # for messages: "float32"
    numpy: type
    mpi_name: str    # attribute of mpi4py.MPI
    floating: bool

    def mpi(self):
        return getattr(_MPI, self.mpi_name)


DTYPES = {
    float32: DType(1, "float32", np.float32, "FLOAT", True),
    float64: DType(2, "float64", np.float64, "DOUBLE", True),
    int32: DType(3, "int32", np.int32, "INT32_T", False),
    int64: DType(4, "int64", np.int64, "INT64_T", False),
    _bool: DType(5, "bool", np.bool_, "C_BOOL", False),
}
DTYPE_NAMES = {d.code: d.name for d in DTYPES.values()}

# ReduceOp -> (MPI op on numbers, MPI op on bool); None: not defined for that kind.
_OPS = {
    ReduceOp.SUM: ("SUM", "LOR"),
    ReduceOp.AVG: ("SUM", None),
    ReduceOp.PRODUCT: ("PROD", "LAND"),
    ReduceOp.MIN: ("MIN", "LAND"),
    ReduceOp.MAX: ("MAX", "LOR"),
    ReduceOp.BAND: ("BAND", "LAND"),
    ReduceOp.BOR: ("BOR", "LOR"),
    ReduceOp.BXOR: ("BXOR", "LXOR"),
}
OP_CODES = {op: i for i, op in enumerate(ReduceOp, start=1)}
OP_NAMES = {i: op.name for op, i in OP_CODES.items()}


def reduce_op(where: str, op, dtype: DType):
    """(the MPI op, whether to divide by the group size afterwards) for ``op`` on ``dtype``."""
    if not isinstance(op, ReduceOp):
        raise TypeError(f"[{where}] op must be a deepcore.distributed.ReduceOp, got {op!r}")
    if op is ReduceOp.PREMUL_SUM:
        raise NotImplementedError(f"[{where}] ReduceOp.PREMUL_SUM is not supported by the MPI "
                                  "backend; multiply the tensor, then use ReduceOp.SUM")
    number, logical = _OPS[op]
    if dtype.name == "bool":
        if logical is None:
            raise TypeError(f"[{where}] ReduceOp.{op.name} is not defined for bool tensors")
        return getattr(_MPI, logical), False
    if op is ReduceOp.AVG and not dtype.floating:
        raise TypeError(f"[{where}] ReduceOp.AVG needs a floating-point tensor, got "
                        f"{dtype.name}; reduce with ReduceOp.SUM and divide as you need")
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and dtype.floating:
        raise TypeError(f"[{where}] ReduceOp.{op.name} needs an integer or bool tensor, got "
                        f"{dtype.name}")
    return getattr(_MPI, number), op is ReduceOp.AVG
