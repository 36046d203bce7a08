"""Names every part of deepcore.distributed shares: ReduceOp, Backend and the error classes."""
from __future__ import annotations

import enum


class ReduceOp(enum.Enum):
    """How ``all_reduce``, ``reduce`` and ``reduce_scatter`` combine the ranks' values.

    ``AVG`` is ``SUM`` followed by a division by the group size, so it needs a floating-point
    tensor. On bool tensors ``SUM``/``MAX``/``BOR`` are a logical or, ``PRODUCT``/``MIN``/``BAND``
    a logical and, ``BXOR`` an exclusive or (what PyTorch's backends compute for bool)."""
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"
    PREMUL_SUM = "premul_sum"

    def __repr__(self) -> str:
        return f"ReduceOp.{self.name}"


class Backend(str):
    """A backend name, lower-cased (PyTorch's ``Backend``). deepcore has the ``mpi`` backend
    for CPU tensors (``gloo`` runs on it) and ``nccl`` for CUDA tensors (_nccl.py)."""
    UNDEFINED = "undefined"
    GLOO = "gloo"
    NCCL = "nccl"
    MPI = "mpi"

    def __new__(cls, name: str):
        if not isinstance(name, str):
            raise TypeError(f"Backend: the name must be a string, got {type(name).__name__}")
        return super().__new__(cls, name.lower())


class DistError(RuntimeError):
    """Base class of the errors deepcore.distributed raises (PyTorch's ``DistError``)."""


class DistBackendError(DistError):
    """MPI reported an error, or a failure on some rank left the process group unusable."""


class DistTimeoutError(DistBackendError, TimeoutError):
    """An operation waited longer than its timeout, here or on a peer rank. Also a
    ``TimeoutError``, so ``except TimeoutError`` catches it."""


class DistMismatchError(DistError, ValueError):
    """The ranks called different collectives, or passed tensors whose dtypes or shapes differ
    where they must agree. Raised on every rank of the group, which stays usable."""


for _cls in (ReduceOp, Backend, DistError, DistBackendError, DistTimeoutError, DistMismatchError):
    _cls.__module__ = "deepcore.distributed"  # tracebacks name the public path
del _cls
