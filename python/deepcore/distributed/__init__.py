"""``deepcore.distributed``: PyTorch's ``torch.distributed`` API on MPI for CPU tensors, and on
NCCL for CUDA tensors (``init_process_group("nccl")``, _nccl.py).

    import deepcore as dc
    import deepcore.distributed as dist

    dist.init_process_group("mpi")          # the ranks `deepcore run` or `mpirun` started
    t = dc.ones(4) * (dist.get_rank() + 1)
    dist.all_reduce(t)                      # in place, on every rank: 1 + 2 + ... + world size
    work = dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True)
    work.wait()
    dist.destroy_process_group()

Launch: ``deepcore run --nproc 4 train.py --epochs 3`` (deepcore/distributed/run.py) or
``mpirun -np 4 python train.py``. Needs mpi4py (``pip install 'deepcore[distributed]'``) and an
MPI library (``apt-get install openmpi-bin libopenmpi-dev``); importing this package does not
load MPI, ``init_process_group`` does.

Where things are: process groups and the worker thread that runs each group's collectives in
order (Note [Collectives on a worker thread]): _groups.py; the collectives and point-to-point
operations on tensors, and how tensors reach MPI without copies: _collectives.py; CUDA tensors
on NCCL (Note [NCCL process groups]): _nccl.py; object collectives: _objects.py; Work and its
timeouts: _work.py; the check that every rank called the same collective with the same dtypes
and shapes (Note [Collective checks]): _checks.py; what happens when a rank fails or times out
(Note [Failures end every rank]): _runtime.py.

Measured with tests/dist_scripts/bench_allreduce.py (2 ranks, loopback TCP, Open MPI 4.1.4, 2
cores shared with other jobs, load average ~7, so times vary by +-30% from run to run): a 100 MB
float32 ``all_reduce`` runs at bare mpi4py's speed, 0.91-1.08x of ``MPI_Allreduce`` on the same
buffer over four runs (async + wait: 0.96-1.33x); a 1-element one takes ~60 us against MPI's
~10 us (the hand-off to the worker thread and back), plus ~40 us with the collective checks.

Limits: CPU tensors of float32, float64, int32, int64 and bool; CUDA tensors of those and
float16 and bfloat16 (NCCL, loaded at run time from the nvidia-nccl-cu13 wheel or $DEEPCORE_NCCL;
compiled only, no GPU has run it yet: README, "Devices"). A rank that ends with
``sys.exit()`` (or returns) while the others wait in a collective leaves them waiting until
their timeout, since MPI_Finalize on the ending rank waits for them: end a failing rank with an
exception, which ends every rank at once.
"""
from __future__ import annotations

from ._collectives import (all_gather, all_gather_into_tensor, all_reduce, barrier, broadcast,
                           gather, irecv, isend, recv, reduce, reduce_scatter,
                           reduce_scatter_tensor, scatter, send)
from ._groups import (GroupMember, ProcessGroup, destroy_process_group, get_backend,
                      get_collective_checks, get_global_rank, get_group_rank,
                      get_process_group_ranks, get_rank, get_world_size, group,
                      init_process_group, is_available, is_gloo_available, is_initialized,
                      is_mpi_available, is_nccl_available, new_group, set_collective_checks)
from ._objects import all_gather_object, broadcast_object_list, gather_object
from ._types import (Backend, DistBackendError, DistError, DistMismatchError, DistTimeoutError,
                     ReduceOp)
from ._work import Future, Work

__all__ = [
    "init_process_group", "destroy_process_group", "is_initialized", "is_available",
    "is_mpi_available", "is_nccl_available", "is_gloo_available", "new_group", "group",
    "GroupMember", "ProcessGroup", "get_rank", "get_world_size", "get_backend",
    "get_process_group_ranks", "get_global_rank", "get_group_rank",
    "set_collective_checks", "get_collective_checks",
    "all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor",
    "reduce_scatter", "reduce_scatter_tensor", "gather", "scatter", "barrier",
    "send", "recv", "isend", "irecv",
    "all_gather_object", "broadcast_object_list", "gather_object",
    "ReduceOp", "Backend", "Work", "Future",
    "DistError", "DistBackendError", "DistTimeoutError", "DistMismatchError",
]
