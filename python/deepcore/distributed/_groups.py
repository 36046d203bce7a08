"""Process groups: ``init_process_group``, ``new_group``, ``destroy_process_group`` and the
queries (``get_rank``, ``get_world_size``, ...).

Note [Collectives on a worker thread]
Each ProcessGroup owns an MPI communicator and one worker thread that runs the group's
collectives in the order they were called, with MPI's blocking calls (MPI_Allreduce, ...). The
caller gets a Work; ``async_op=False`` waits on it at once. This is the design of PyTorch's own
MPI backend (ProcessGroupMPI), rather than nonblocking MPI_Iallreduce polled with MPI_Test by
the caller, for two measured reasons (100 MB float32 all_reduce, 2 ranks, loopback TCP, Open MPI
4.1, medians of 6):
  * speed: MPI_Iallreduce polled with MPI_Test took 252-261 ms whether the poller slept 0 or
    100 us between tests; the blocking MPI_Allreduce took 221 ms, and 205 ms on a worker thread
    (with Open MPI's shared-memory transport: 201 ms against 93-109 ms). Open MPI's nonblocking
    collectives (libnbc) use simpler algorithms than its blocking ones (coll/tuned).
  * overlap: a nonblocking collective advances only inside MPI calls; nothing calls MPI while
    backward computes, so the reduction of DistributedDataParallel's first buckets would not
    start until its wait. A worker thread sits in MPI (with the GIL released) from the moment
    the bucket is ready.
The caller never blocks in MPI itself, so it can poll for other ranks' failure notices and give
up at its deadline (Note [Failures end every rank], _runtime.py); that needs
MPI_THREAD_MULTIPLE, which Open MPI and MPICH provide. Point-to-point operations do not go
through the worker: a blocking send queued behind another rank's blocking send deadlocks, so
they start at once with MPI_Isend/MPI_Irecv (_collectives.py).
"""
from __future__ import annotations

import os
import queue
import threading
from datetime import timedelta
from typing import List, Optional

from . import _checks
from ._mpi import load
from ._runtime import RUNTIME
from ._types import Backend, DistBackendError
from ._work import Work, seconds, translate_mpi_error

DEFAULT_TIMEOUT = timedelta(minutes=30)

_default: Optional["ProcessGroup"] = None
_group_count = 0
_checks_enabled = os.environ.get("DEEPCORE_DISTRIBUTED_CHECKS", "1").strip().lower() not in (
    "0", "false", "off", "no")


class ProcessGroup:
    """A set of ranks that run collectives together (an MPI communicator); ``rank()`` and
    ``size()`` are this process's rank in it and its number of ranks."""

    def __init__(self, comm, ranks: List[int], timeout_s: float, name: str) -> None:
        self._comm = comm
        self._ranks = list(ranks)       # global ranks, in group-rank order
        self._rank = comm.Get_rank()
        self._size = comm.Get_size()
        self._timeout = timeout_s
        self._name = name
        self._lock = threading.Lock()
        self._seq = 0
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._destroyed = False
        self._nccl = None  # its NCCL communicator, for CUDA tensors (Note [NCCL process groups])

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    def name(self) -> str:
        return self._name

    @property
    def group_name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return (f"ProcessGroup({self._name}, ranks={self._ranks}, rank={self._rank}, "
                f"backend={'nccl' if self._nccl is not None else 'mpi'})")

    # ---- the worker ------------------------------------------------------------------------

    def _submit(self, work: Work, run, rec=None) -> Work:
        """Queues ``run`` (and the metadata check of ``rec``) on the worker; numbers the Work."""
        RUNTIME.check(work._op, self._ranks)
        if self._destroyed:
            raise RuntimeError(f"[{work._op}] process group {self._name} was destroyed")
        with self._lock:
            self._seq += 1
            work._seq = self._seq
            if rec is not None:
                rec[_checks.SEQ] = self._seq
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name=f"deepcore-dist-{self._name}")
                self._thread.start()
            self._queue.put((work, run, rec))
        return work

    def _loop(self) -> None:
        MPI = RUNTIME.MPI
        while True:
            item = self._queue.get()
            if item is None:
                return
            work, run, rec = item
            if RUNTIME.broken is not None:
                work._finish(exc=DistBackendError(
                    f"[{work._op}] rank {RUNTIME.rank}: not started, the process group is "
                    f"unusable: {RUNTIME.broken}"))
                continue
            try:
                if rec is not None:
                    _checks.verify(self, work._op, rec)
                value = run()
            except MPI.Exception as e:
                work._finish(exc=translate_mpi_error(e, work))
            except BaseException as e:  # delivered to the waiter, never lost on this thread
                work._finish(exc=e)
            else:
                work._finish(value=value)

    def _drain(self, op: str) -> None:
        """Waits (within the group's timeout) until everything queued so far has run."""
        if self._thread is None or self._destroyed or RUNTIME.broken is not None:
            return
        marker = Work(op, self, "the operations queued before it")
        with self._lock:
            self._queue.put((marker, lambda: None, None))
        try:
            marker.wait()
        except DistBackendError:
            pass  # the failure is recorded in RUNTIME.broken; the caller decides

    def _stop_worker(self) -> None:
        thread = self._thread
        if thread is not None and RUNTIME.broken is None:
            self._queue.put(None)
            thread.join()
        self._thread = None


class group:
    """``group.WORLD``: the default process group once init_process_group has run."""
    WORLD: Optional[ProcessGroup] = None


_group_namespace = group


class _NonGroupMember:
    def __repr__(self) -> str:
        return "GroupMember.NON_GROUP_MEMBER"


class GroupMember:
    """``GroupMember.WORLD`` (the default group) and ``GroupMember.NON_GROUP_MEMBER``, what
    ``new_group`` returns on ranks outside the new group."""
    WORLD: Optional[ProcessGroup] = None
    NON_GROUP_MEMBER = _NonGroupMember()


def _not_initialized(op: str) -> RuntimeError:
    return RuntimeError(f"[{op}] the default process group has not been initialized: call "
                        "deepcore.distributed.init_process_group() first")


def default_group(op: str) -> ProcessGroup:
    if _default is None:
        raise _not_initialized(op)
    return _default


def resolve(group, op: str) -> Optional[ProcessGroup]:
    """The ProcessGroup a ``group=`` argument names; None where this rank is not a member."""
    if group is None:
        return default_group(op)
    if group is GroupMember.NON_GROUP_MEMBER:
        default_group(op)
        return None
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"[{op}] group must be a ProcessGroup from new_group() (or None for the "
                        f"default group), got {type(group).__name__}")
    if group._destroyed:
        raise RuntimeError(f"[{op}] process group {group._name} was destroyed")
    return group


def _resolve_backend(backend, op: str) -> bool:
    """Whether ``backend`` asks for NCCL (CUDA tensors) besides MPI (CPU tensors, always there):
    "mpi", "gloo" (Gloo's job is what the MPI backend does), "nccl", "cuda", or PyTorch's
    per-device form "cpu:gloo,cuda:nccl". RuntimeError when NCCL cannot run here."""
    name = "mpi" if backend is None else str(Backend(backend))
    nccl = False
    for part in name.split(","):
        device, _, impl = part.strip().rpartition(":")
        if impl in ("mpi", "gloo", "undefined") and device in ("", "cpu"):
            continue
        if impl in ("nccl", "cuda") and device in ("", "cuda"):
            nccl = True
            continue
        raise ValueError(f"[{op}] unknown backend {backend!r}: deepcore supports 'mpi' ('gloo' "
                         "runs on it), 'nccl' (CUDA tensors), or both as 'cpu:gloo,cuda:nccl'")
    if nccl:
        from . import _nccl  # here, not at the top: _nccl imports this module
        _nccl.require(op, name)
    return nccl


def init_process_group(backend=None, init_method=None, timeout=None, world_size: int = -1,
                       rank: int = -1, store=None, group_name: str = "", pg_options=None,
                       device_id=None) -> None:
    """Joins the processes MPI started (``deepcore run`` or ``mpirun``) into the default group.

    ``world_size`` and ``rank``, when given, must be what MPI says. ``timeout`` (default 30
    minutes) bounds every wait on the group's operations (Note [Failures end every rank]). With
    ``backend="nccl"`` CUDA tensors go through NCCL on ``device_id`` (default: the LOCAL rank
    modulo the number of devices), which becomes the current device (Note [NCCL process
    groups], _nccl.py)."""
    global _default
    if _default is not None:
        raise RuntimeError("[init_process_group] trying to initialize the default process group "
                           "twice")
    nccl = _resolve_backend(backend, "init_process_group")
    if init_method not in (None, "env://"):
        raise ValueError(f"[init_process_group] init_method={init_method!r}: the MPI backend "
                         "meets its peers through mpirun; launch with `deepcore run --nproc N "
                         "script.py` or `mpirun -np N python script.py` and leave init_method "
                         "unset")
    if store is not None:
        raise ValueError("[init_process_group] store=: the MPI backend meets its peers through "
                         "mpirun and takes no store")
    timeout_s = seconds(DEFAULT_TIMEOUT if timeout is None else timeout, "init_process_group")
    RUNTIME.check("init_process_group")  # no fresh start after a failure: MPI may be stuck
    MPI = load("init_process_group")
    if MPI.Query_thread() < MPI.THREAD_MULTIPLE:
        raise RuntimeError(
            "[init_process_group] the MPI library gave thread level "
            f"{MPI.Query_thread()} < MPI_THREAD_MULTIPLE ({MPI.THREAD_MULTIPLE}); "
            "deepcore.distributed needs it. Do not import mpi4py.MPI before "
            "init_process_group with another mpi4py.rc.thread_level, and use an MPI built with "
            "thread support (Open MPI >= 3, MPICH)")
    world = MPI.COMM_WORLD
    size, me = world.Get_size(), world.Get_rank()
    for name, given, actual in (("world_size", world_size, size), ("rank", rank, me)):
        if given is not None and given != -1 and int(given) != actual:
            raise ValueError(f"[init_process_group] {name}={given}, but MPI started this process "
                             f"as rank {me} of {size}")
    for var, actual in (("WORLD_SIZE", size), ("RANK", me)):
        if os.environ.get(var, str(actual)) != str(actual):
            raise ValueError(
                f"[init_process_group] the environment says {var}={os.environ[var]}, but MPI "
                f"started this process as rank {me} of {size}: launch the ranks with "
                "`deepcore run --nproc N script.py` or `mpirun -np N python script.py`")
    local = world.Split_type(MPI.COMM_TYPE_SHARED)
    local_rank, local_size = local.Get_rank(), local.Get_size()
    local.Free()
    for var, value in (("RANK", me), ("WORLD_SIZE", size), ("LOCAL_RANK", local_rank),
                       ("LOCAL_WORLD_SIZE", local_size)):
        os.environ.setdefault(var, str(value))
    comm = world.Dup()
    comm.Set_errhandler(MPI.ERRORS_RETURN)
    RUNTIME.start(MPI)
    pg = ProcessGroup(comm, list(range(size)), timeout_s, group_name or "WORLD")
    RUNTIME.groups = [pg]
    _default = pg
    group.WORLD = GroupMember.WORLD = pg
    if nccl:
        from . import _nccl
        _nccl.attach(pg, "init_process_group", _nccl.local_device("init_process_group", device_id),
                     make_current=True)


def is_initialized() -> bool:
    return _default is not None


def is_available() -> bool:
    """Whether mpi4py is installed (MPI itself loads in init_process_group)."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


def is_mpi_available() -> bool:
    return is_available()


def is_nccl_available() -> bool:
    """Whether deepcore was built with CUDA and NCCL loads (or the tests' fake device is on)."""
    from . import _nccl
    return _nccl.is_available()


def is_gloo_available() -> bool:
    return False


def new_group(ranks=None, timeout=None, backend=None, pg_options=None,
              use_local_synchronization: bool = False, group_desc=None):
    """A ProcessGroup of the given global ranks (sorted, as PyTorch does), on an MPI
    communicator of its own. Every rank of the default group must call it, with the same
    ranks; ranks outside the group get ``GroupMember.NON_GROUP_MEMBER``. It has an NCCL
    communicator (on the default group's device) when ``backend`` asks for one, or, with no
    ``backend``, when the default group has one."""
    global _group_count
    world = default_group("new_group")
    nccl = world._nccl is not None if backend is None else _resolve_backend(backend, "new_group")
    members = list(range(world._size)) if ranks is None else [int(r) for r in ranks]
    bad = [r for r in members if not 0 <= r < world._size]
    if bad:
        raise ValueError(f"[new_group] ranks {bad} are outside the default group of size "
                         f"{world._size}")
    if len(set(members)) != len(members):
        raise ValueError(f"[new_group] ranks {list(ranks)} contain duplicates")
    members.sort()
    if not members:
        raise ValueError("[new_group] ranks must not be empty")
    timeout_s = world._timeout if timeout is None else seconds(timeout, "new_group")
    MPI = RUNTIME.MPI

    def run():
        mpi_group = world._comm.Get_group()
        sub = mpi_group.Incl(members)
        try:
            return world._comm.Create(sub)
        finally:
            sub.Free()
            mpi_group.Free()
    work = Work("new_group", world, f"ranks {members}")
    rec = (_checks.record("new_group", extra=_checks.shape_crc([members]))
           if _checks_enabled else None)
    world._submit(work, run, rec).wait()
    _group_count += 1
    comm = work._value
    if comm == MPI.COMM_NULL:
        return GroupMember.NON_GROUP_MEMBER
    comm.Set_errhandler(MPI.ERRORS_RETURN)
    pg = ProcessGroup(comm, members, timeout_s, group_desc or f"group{_group_count}")
    RUNTIME.groups.append(pg)
    if nccl:
        from . import _nccl
        device = (world._nccl.device if world._nccl is not None
                  else _nccl.local_device("new_group"))
        _nccl.attach(pg, "new_group", device)
    return pg


def destroy_process_group(group=None) -> None:
    """Destroys ``group``, or with no argument every group (after which init_process_group may
    run again). Waits for the group's queued operations first."""
    global _default, _group_count
    if group is None or group is _default:
        if _default is None:
            raise _not_initialized("destroy_process_group")
        doomed = list(reversed(RUNTIME.groups))
    else:
        pg = resolve(group, "destroy_process_group")
        if pg is None:
            return
        doomed = [pg]
    for pg in doomed:
        pg._drain("destroy_process_group")
        pg._stop_worker()
        pg._destroyed = True
        if pg._nccl is not None:
            from . import _nccl
            _nccl.detach(pg)
        if RUNTIME.broken is None:
            pg._comm.Free()
        RUNTIME.groups.remove(pg)
    if _default is not None and _default._destroyed:
        _default = None
        _group_namespace.WORLD = GroupMember.WORLD = None
        _group_count = 0
        RUNTIME.stop()


def get_rank(group=None) -> int:
    """This process's rank in ``group`` (default: the default group); -1 outside it."""
    pg = resolve(group, "get_rank")
    return -1 if pg is None else pg._rank


def get_world_size(group=None) -> int:
    pg = resolve(group, "get_world_size")
    return -1 if pg is None else pg._size


def get_backend(group=None) -> str:
    pg = resolve(group, "get_backend")
    return Backend.NCCL if pg is not None and pg._nccl is not None else Backend.MPI


def get_process_group_ranks(group) -> List[int]:
    pg = resolve(group, "get_process_group_ranks")
    if pg is None:
        raise ValueError("[get_process_group_ranks] this rank is not in the group")
    return list(pg._ranks)


def get_global_rank(group, group_rank: int) -> int:
    pg = resolve(group, "get_global_rank")
    if pg is None or not 0 <= group_rank < pg._size:
        raise ValueError(f"[get_global_rank] group rank {group_rank} is not in group "
                         f"{getattr(pg, '_name', '?')}")
    return pg._ranks[group_rank]


def get_group_rank(group, global_rank: int) -> int:
    pg = resolve(group, "get_group_rank")
    if pg is None or global_rank not in pg._ranks:
        raise ValueError(f"[get_group_rank] global rank {global_rank} is not in group "
                         f"{getattr(pg, '_name', '?')}")
    return pg._ranks.index(global_rank)


def set_collective_checks(enabled: bool) -> None:
    """Turns the metadata check before every collective on or off (Note [Collective checks]).
    Call it the same way on every rank, between collectives."""
    global _checks_enabled
    _checks_enabled = bool(enabled)


def get_collective_checks() -> bool:
    return _checks_enabled
