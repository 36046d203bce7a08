"""``DistributedDataParallel``: data-parallel training over a ``deepcore.distributed`` process
group, as ``torch.nn.parallel.DistributedDataParallel``.

    dist.init_process_group("mpi")
    model = DistributedDataParallel(model)           # rank 0's weights and buffers everywhere
    loss_fn(model(x_shard), y_shard).backward()      # .grad = the mean over all ranks
    optimizer.step()

Each process runs the model on its share of the global batch; after ``backward()`` every
process holds the gradient averaged over the processes, so identical optimizer steps keep the
replicas identical. ``no_sync()`` skips the averaging (gradient accumulation),
``find_unused_parameters=True`` allows parameters that take no part in a step's loss, and with
``broadcast_buffers=True`` (the default) rank 0's buffers (BatchNorm running statistics) are
copied to every process before each training forward.

Note [DDP gradient buckets]
Averaging one parameter at a time would pay a collective's latency per parameter, and
averaging everything after backward would leave the network idle while backward computes.
So the parameters are grouped into buckets of about ``bucket_cap_mb`` megabytes (flat
buffers, one dtype each) in *reverse* registration order -- the order backward usually
produces their gradients -- and a bucket's all-reduce is launched (``async_op=True``) from the
autograd post-accumulate-grad hook of the parameter that completes it, while backward goes on
computing the gradients of earlier layers. The end-of-backward callback
(``Variable._execution_engine.queue_callback``) launches whatever is left, waits for every
bucket, divides by the world size and writes the averages back into ``.grad``.

- Buckets are launched strictly in index order on every rank (a bucket that fills early waits
  for its predecessors): MPI matches collectives by order, so two ranks whose backward passes
  finish parameters in different orders must still issue the same sequence of all-reduces.
- The first bucket is capped at 1 MB, as PyTorch's is: its all-reduce starts as soon as the
  last layers' gradients exist, instead of after 25 MB of them.
- deepcore.distributed runs each collective on its group's worker thread, in MPI with the
  GIL released, and backward releases the GIL while the engine runs: a launched bucket is
  reduced while backward computes (bench/README.md, "Data-parallel training", has the
  figures, and what this overlap can and cannot win on a machine with no idle core).
- The reduction is SUM then ``div_(world_size)``, as ``ReduceOp.AVG`` is defined; with two
  ranks the halving is exact, so a step matches single-process training on the concatenated
  batch up to the summation order inside the loss.
- A parameter whose hook did not run by the end of backward got no gradient. Without
  ``find_unused_parameters`` that is an error naming the parameters (after the launched
  buckets complete, so no collective is left half-done). With it, the parameter's current
  ``.grad`` (zeros when it has none) joins its bucket, and one extra all-reduce of a
  used-parameter mask tells which parameters no rank used: those keep ``.grad`` as it was
  (``None`` stays ``None``), as PyTorch's do.
"""
from __future__ import annotations

import contextlib
from typing import Dict, List, Sequence, Tuple

from ..modules.module import Module

__all__ = ["DistributedDataParallel"]

_MB = 1024 * 1024
_FIRST_BUCKET_BYTES = 1 * _MB  # PyTorch's dist._DEFAULT_FIRST_BUCKET_BYTES


def _dist():
    from ... import distributed
    return distributed


class _Bucket:
    """One flat buffer holding the gradients of ``params`` (indices into the parameter list)
    at ``offsets``; ``pending`` counts the gradients still to arrive in this backward."""

    __slots__ = ("index", "params", "offsets", "numels", "buffer", "pending", "work", "nbytes")

    def __init__(self, index: int, params: List[int], sizes: List[int], dtype, device,
                 element_size: int):
        from ... import zeros
        self.index = index
        self.params = params
        self.numels = sizes
        self.offsets = []
        total = 0
        for n in sizes:
            self.offsets.append(total)
            total += n
        self.buffer = zeros(total, dtype=dtype, device=device)
        self.nbytes = total * element_size
        self.pending = len(params)
        self.work = None


def _assign_buckets(params: Sequence, cap_bytes: int, first_cap_bytes: int) -> List[List[int]]:
    """Parameter indices grouped into buckets: reverse order, one dtype/device per bucket, a
    bucket closed once it holds ``cap`` bytes (``first_cap`` for each dtype's first)."""
    open_: Dict[Tuple[str, str], List[int]] = {}
    size: Dict[Tuple[str, str], int] = {}
    closed_count: Dict[Tuple[str, str], int] = {}
    buckets: List[List[int]] = []
    for i in reversed(range(len(params))):
        p = params[i]
        key = (str(p.dtype), str(p.device))
        open_.setdefault(key, []).append(i)
        size[key] = size.get(key, 0) + p.numel() * p.element_size()
        cap = first_cap_bytes if closed_count.get(key, 0) == 0 else cap_bytes
        if size[key] >= cap:
            buckets.append(open_.pop(key))
            size[key] = 0
            closed_count[key] = closed_count.get(key, 0) + 1
    buckets.extend(b for b in open_.values() if b)
    # Launch order follows backward's order: the bucket whose first parameter comes last in
    # the module goes first.
    buckets.sort(key=lambda b: -b[0])
    return buckets


class DistributedDataParallel(Module):
    """Wraps ``module`` for data-parallel training; see the module docstring and Note [DDP
    gradient buckets]. Arguments follow ``torch.nn.parallel.DistributedDataParallel``:
    ``device_ids`` / ``output_device`` are accepted for compatibility (the module computes on
    the device its parameters are on); ``static_graph`` is a hint PyTorch uses to skip
    bookkeeping and changes nothing here; ``check_reduction`` is deprecated there and ignored."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb=None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"[DistributedDataParallel] module must be an nn.Module, got "
                            f"{type(module).__name__}")
        if isinstance(module, DistributedDataParallel):
            raise TypeError("[DistributedDataParallel] the module is already wrapped in "
                            "DistributedDataParallel")
        dist = _dist()
        if not dist.is_initialized():
            raise RuntimeError("[DistributedDataParallel] the default process group has not "
                               "been initialized: call deepcore.distributed."
                               "init_process_group('mpi') first")
        if gradient_as_bucket_view:
            raise NotImplementedError("[DistributedDataParallel] gradient_as_bucket_view=True is "
                                      "not supported: gradients are copied into the buckets")
        if bucket_cap_mb is None:
            bucket_cap_mb = 25
        if not isinstance(bucket_cap_mb, (int, float)) or bucket_cap_mb <= 0:
            raise ValueError(f"[DistributedDataParallel] bucket_cap_mb must be a positive "
                             f"number, got {bucket_cap_mb!r}")
        self.module = module
        self.device_ids = None if device_ids is None else list(device_ids)
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = bool(broadcast_buffers)
        self.process_group = process_group
        self.bucket_bytes_cap = int(bucket_cap_mb * _MB)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.gradient_as_bucket_view = False
        self.static_graph = bool(static_graph)
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self.world_size = dist.get_world_size(process_group)
        self.rank = dist.get_rank(process_group)
        self._src = _group_src(dist, process_group)

        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._param_names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._buffers_list = [b for _, b in module.named_buffers()]
        self._verify_same_model(module)
        self._sync_module_states()

        cap = self.bucket_bytes_cap
        groups = _assign_buckets(self._params, cap, min(_FIRST_BUCKET_BYTES, cap))
        self._buckets: List[_Bucket] = []
        self._slot: List[Tuple[int, int]] = [(0, 0)] * len(self._params)  # param -> (bucket, k)
        for b_index, group in enumerate(groups):
            p0 = self._params[group[0]]
            bucket = _Bucket(b_index, group, [self._params[i].numel() for i in group],
                             p0.dtype, p0.device, p0.element_size())
            self._buckets.append(bucket)
            for k, i in enumerate(group):
                self._slot[i] = (b_index, k)

        # Per-backward state (reset by _open_round / _finalize).
        self._expect_hooks = False
        self._round_open = False
        self._ready = [False] * len(self._params)
        self._next_bucket = 0
        # False defers every launch to the end of backward: the same work without overlap, the
        # baseline bench/bench_distributed.py measures the overlap against.
        self._overlap = True
        self._hook_handles = [p.register_post_accumulate_grad_hook(self._make_hook(i))
                              for i, p in enumerate(self._params)]

    # ---- construction ------------------------------------------------------------------------
    def _verify_same_model(self, module: Module) -> None:
        """Every rank must wrap the same architecture: the (name, shape, dtype) lists of the
        parameters and buffers are compared with rank 0's."""
        dist = _dist()
        mine = [(n, tuple(t.shape), str(t.dtype)) for n, t in
                list(module.named_parameters()) + list(module.named_buffers())]
        every: List = [None] * self.world_size
        dist.all_gather_object(every, mine, group=self.process_group)
        reference = every[0]
        for rank, theirs in enumerate(every):
            if theirs == reference:
                continue
            if len(theirs) != len(reference):
                raise ValueError(f"[DistributedDataParallel] rank {rank}'s module has "
                                 f"{len(theirs)} parameters and buffers, rank 0's has "
                                 f"{len(reference)}: every rank must wrap the same model")
            for a, b in zip(reference, theirs):
                if a != b:
                    raise ValueError(f"[DistributedDataParallel] rank {rank}'s module differs "
                                     f"from rank 0's: {b[0]!r} has shape {b[1]} {b[2]} there, "
                                     f"{a[0]!r} has shape {a[1]} {a[2]} on rank 0")

    def _sync_module_states(self) -> None:
        """Parameters and buffers from rank 0, one broadcast per dtype."""
        from ...autograd.grad_mode import no_grad
        with no_grad():
            self._broadcast_coalesced([p for _, p in self.module.named_parameters()] +
                                      self._buffers_list)

    def _broadcast_coalesced(self, tensors: List) -> None:
        if self.world_size == 1 or not tensors:
            return
        from ... import cat
        dist = _dist()
        by_key: Dict[Tuple[str, str], List] = {}
        for t in tensors:
            by_key.setdefault((str(t.dtype), str(t.device)), []).append(t)
        for group in by_key.values():
            flat = cat([t.detach().reshape(-1) for t in group])
            dist.broadcast(flat, self._src, group=self.process_group)
            offset = 0
            for t in group:
                n = t.numel()
                t.detach().copy_(flat[offset:offset + n].view(tuple(t.shape)))
                offset += n

    def _sync_buffers(self) -> None:
        from ...autograd.grad_mode import no_grad
        with no_grad():
            self._broadcast_coalesced(self._buffers_list)

    # ---- forward -----------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        from ... import is_grad_enabled
        if self.require_forward_param_sync and self.broadcast_buffers and self._buffers_list:
            self._sync_buffers()
        sync = is_grad_enabled() and self.require_backward_grad_sync
        # The next backward averages gradients only if this forward ran outside no_sync() with
        # grad enabled; the forward after it syncs buffers on the same condition (PyTorch's).
        self._expect_hooks = sync
        self.require_forward_param_sync = sync
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes of forwards run inside this context accumulate ``.grad`` locally;
        the first backward after it averages the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    # ---- backward: hooks, buckets, the end-of-backward callback -------------------------------
    def _make_hook(self, index: int):
        def hook(param):
            self._on_grad_ready(index)
        return hook

    def _open_round(self) -> None:
        from ...autograd import Variable
        Variable._execution_engine.queue_callback(self._finalize)
        self._round_open = True
        self._ready = [False] * len(self._params)
        self._next_bucket = 0
        for b in self._buckets:
            b.pending = len(b.params)
            b.work = None

    def _on_grad_ready(self, index: int) -> None:
        if not self._expect_hooks:
            return
        if not self._round_open:
            self._open_round()
        if self._ready[index]:
            raise RuntimeError(f"[DistributedDataParallel] parameter "
                               f"{self._param_names[index]!r} received its gradient twice in "
                               "one backward pass")
        self._mark_ready(index)
        if self._overlap:
            self._launch_ready_buckets()

    def _mark_ready(self, index: int) -> None:
        b_index, k = self._slot[index]
        bucket = self._buckets[b_index]
        view = bucket.buffer[bucket.offsets[k]:bucket.offsets[k] + bucket.numels[k]]
        grad = self._params[index].grad
        if grad is None:
            view.zero_()
        else:
            view.copy_(grad.detach().reshape(-1))
        self._ready[index] = True
        bucket.pending -= 1

    def _launch_ready_buckets(self) -> None:
        dist = _dist()
        while self._next_bucket < len(self._buckets):
            bucket = self._buckets[self._next_bucket]
            if bucket.pending:
                return
            bucket.work = dist.all_reduce(bucket.buffer, op=dist.ReduceOp.SUM,
                                          group=self.process_group, async_op=True)
            self._next_bucket += 1

    def _finalize(self) -> None:
        self._round_open = False
        self._expect_hooks = False
        missing = [i for i, r in enumerate(self._ready) if not r]
        used = None
        if missing and not self.find_unused_parameters:
            self._wait_launched()
            names = ", ".join(f"{self._param_names[i]!r} {tuple(self._params[i].shape)}"
                              for i in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise RuntimeError(
                f"[DistributedDataParallel] {len(missing)} parameter(s) received no gradient "
                f"in this backward pass on rank {self.rank}: {names}{more}. Every parameter "
                "must take part in computing the loss; if some legitimately do not, construct "
                "DistributedDataParallel(..., find_unused_parameters=True)")
        if self.find_unused_parameters:
            from ... import tensor
            unused = set(missing)
            used = tensor([0.0 if i in unused else 1.0 for i in range(len(self._params))])
            for i in missing:
                self._mark_ready(i)
        self._launch_ready_buckets()
        if used is not None:
            # Which parameters any rank used: queued behind the buckets, needed before any
            # gradient is written back.
            dist = _dist()
            dist.all_reduce(used, op=dist.ReduceOp.SUM, group=self.process_group)
            used = used.tolist()
        # Bucket by bucket, so writing one back overlaps the all-reduce of the next.
        for bucket in self._buckets:
            bucket.work.wait()
            if self.world_size > 1:
                bucket.buffer.div_(self.world_size)
            for k, i in enumerate(bucket.params):
                if used is not None and used[i] == 0.0:
                    continue  # no rank used it: .grad stays as it was
                p = self._params[i]
                avg = bucket.buffer[bucket.offsets[k]:bucket.offsets[k] + bucket.numels[k]]
                avg = avg.view(tuple(p.shape))
                if p.grad is None:
                    p.grad = avg.clone()
                else:
                    p.grad.copy_(avg)

    def _wait_launched(self) -> None:
        for bucket in self._buckets[:self._next_bucket]:
            bucket.work.wait()

    def _remove_autograd_hooks(self) -> None:
        """Unregisters the gradient hooks: the module trains on its own again."""
        for h in self._hook_handles:
            h.remove()
        self._hook_handles = []

    def extra_repr(self) -> str:
        return (f"world_size={self.world_size}, buckets={len(self._buckets)}, "
                f"bucket_cap_mb={self.bucket_bytes_cap / _MB:g}, "
                f"find_unused_parameters={self.find_unused_parameters}")


def _group_src(dist, group) -> int:
    """The global rank of ``group``'s rank 0 (the source of every broadcast)."""
    return 0 if group is None else int(dist.get_global_rank(group, 0))
