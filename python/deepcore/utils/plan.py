"""``deepcore.utils.plan``: a dry run of a model on the meta device.

    p = deepcore.utils.plan(model, (256, 3, 224, 224), train=True)
    print(p)          # a per-layer table, then the totals
    p.flops, p.peak_activation_bytes, p.output_shapes, p.num_parameters

The model's parameters and buffers are swapped for meta tensors of the same shapes for the
duration of the call (and put back afterwards), inputs are meta tensors, and forward (plus
backward for ``train=True``) runs through the ordinary ops: the dispatcher sends every kernel
to the meta backend, which computes shapes and allocates nothing. So the shapes, the FLOPs
(matmul and convolution, counted by the profiler key) and the memory are those of a real step,
without its memory or its time.

Memory: every tensor a meta op creates is counted while it lives (csrc/core/storage.cpp), so
the peak is what a real step would hold at once: activations kept for backward, their
gradients, temporaries and the parameters' gradients. ``peak_activation_bytes`` is that peak
less the parameters and buffers themselves.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import _C
from .._C import Tensor

__all__ = ["plan", "Plan", "LayerPlan"]


@dataclass
class LayerPlan:
    """One leaf module's part of the forward pass."""

    name: str
    kind: str
    output_shapes: List[Tuple[int, ...]]
    num_parameters: int
    flops: float


@dataclass
class Plan:
    output_shapes: Any            # the structure of the model's output, tensors as shape tuples
    num_parameters: int
    trainable_parameters: int
    parameter_bytes: int          # parameters and buffers
    forward_flops: float
    backward_flops: float
    peak_bytes: int               # the most memory held at once, parameters included
    peak_activation_bytes: int    # the same less the parameters and buffers
    train: bool
    layers: List[LayerPlan] = field(default_factory=list)

    @property
    def flops(self) -> float:
        return self.forward_flops + self.backward_flops

    def __str__(self) -> str:
        head = ["Layer (type)", "Output shape", "Param #", "Forward FLOPs"]
        rows = [[f"{lp.name} ({lp.kind})",
                 ", ".join(str(list(s)) for s in lp.output_shapes) or "--",
                 f"{lp.num_parameters:,}", _human(lp.flops) if lp.flops else "--"]
                for lp in self.layers]
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]

        def line(cells):
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths)))
        rule = "=" * len(line(head))
        out = [rule, line(head), rule] + [line(r) for r in rows] + [rule]
        out += [
            f"Output shapes:          {_shapes_str(self.output_shapes)}",
            f"Parameters:             {self.num_parameters:,} "
            f"({self.trainable_parameters:,} trainable; with buffers "
            f"{_human_bytes(self.parameter_bytes)})",
            f"Forward FLOPs:          {_human(self.forward_flops)}",
        ]
        if self.train:
            out.append(f"Backward FLOPs:         {_human(self.backward_flops)}")
        out += [
            f"Peak activation memory: {_human_bytes(self.peak_activation_bytes)}"
            f" ({'forward + backward' if self.train else 'forward'})",
            f"Peak memory:            {_human_bytes(self.peak_bytes)} (parameters included)",
            rule,
        ]
        return "\n".join(out)

    __repr__ = __str__


def _human(flops: float) -> str:
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if flops >= scale:
            return f"{flops / scale:.2f} {unit}FLOPs"
    return f"{flops:.0f} FLOPs"


def _human_bytes(n: int) -> str:
    for scale, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _shapes_str(s: Any) -> str:
    if isinstance(s, tuple) and all(isinstance(d, int) for d in s):
        return str(list(s))
    if isinstance(s, (list, tuple)):
        return "(" + ", ".join(_shapes_str(x) for x in s) + ")"
    if isinstance(s, dict):
        return "{" + ", ".join(f"{k}: {_shapes_str(v)}" for k, v in s.items()) + "}"
    return repr(s)


def _is_shape(x: Any) -> bool:
    return isinstance(x, (tuple, list)) and all(isinstance(d, numbers.Integral) for d in x)


def _meta_inputs(example: Any) -> List[Tensor]:
    """Meta tensors from a shape, a list of shapes, (shape, dtype) pairs or example tensors."""
    from .._creation import empty
    if isinstance(example, Tensor) or _is_shape(example):
        example = [example]
    out = []
    for item in example:
        if isinstance(item, Tensor):
            out.append(empty(*item.shape, dtype=item.dtype, device="meta"))
        elif _is_shape(item):
            out.append(empty(*[int(d) for d in item], device="meta"))
        elif (isinstance(item, tuple) and len(item) == 2 and _is_shape(item[0])
              and isinstance(item[1], _C.dtype)):
            out.append(empty(*[int(d) for d in item[0]], dtype=item[1], device="meta"))
        else:
            raise TypeError("[plan] example_input_shapes must be a shape, a list of shapes, "
                            f"(shape, dtype) pairs or tensors; got {item!r}")
    return out


def _tensors_in(x: Any) -> List[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _tensors_in(v)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _tensors_in(v)]
    return []


def _shapes_of(x: Any) -> Any:
    if isinstance(x, Tensor):
        return tuple(x.shape)
    if isinstance(x, (list, tuple)):
        return type(x)(_shapes_of(v) for v in x) if not hasattr(x, "_fields") else \
            tuple(_shapes_of(v) for v in x)
    if isinstance(x, dict):
        return {k: _shapes_of(v) for k, v in x.items()}
    return x


class _MetaSwap:
    """Swaps every parameter and buffer of a module for a meta tensor of the same shape, dtype
    and requires_grad, and puts the originals back on exit (whatever happened)."""

    def __init__(self, model) -> None:
        self.model = model
        self.saved: List[Tuple[Any, str, str, Any]] = []

    def __enter__(self) -> "_MetaSwap":
        from ..nn.parameter import Parameter
        from .._creation import empty
        try:
            for mod in self.model.modules():
                for name, p in list(mod._parameters.items()):
                    if p is None:
                        continue
                    self.saved.append((mod, "_parameters", name, p))
                    meta = empty(*p.shape, dtype=p.dtype, device="meta")
                    mod._parameters[name] = Parameter(meta, p.requires_grad)
                for name, b in list(mod._buffers.items()):
                    if b is None:
                        continue
                    self.saved.append((mod, "_buffers", name, b))
                    mod._buffers[name] = empty(*b.shape, dtype=b.dtype, device="meta")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for mod, where, name, original in reversed(self.saved):
            getattr(mod, where)[name] = original
        self.saved.clear()


def plan(model, example_input_shapes: Any, train: bool = True) -> Plan:
    """Output shapes, parameter count, FLOPs and peak memory of one forward (and, with
    ``train=True``, backward) pass of ``model``, without allocating tensor memory.

    ``example_input_shapes``: the shape of the input, e.g. ``(256, 3, 224, 224)``; a list of
    shapes for several inputs; ``(shape, dtype)`` pairs; or example tensors (their shapes and
    dtypes are used, never their values). The loss for backward is the sum of every output.
    """
    from ..autograd.grad_mode import set_grad_enabled
    from ..profiler import profile, record_function

    params = {id(p): p for p in model.parameters()}
    num_params = sum(p.numel() for p in params.values())
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    was_training = model.training
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    handles = []
    ranges: Dict[int, Any] = {}
    layer_outputs: Dict[str, List[Tuple[int, ...]]] = {}

    def pre_hook(name):
        def hook(module, args):
            r = record_function(name)
            r.__enter__()
            ranges[id(module)] = r
        return hook

    def post_hook(name):
        def hook(module, args, output):
            layer_outputs[name] = [tuple(t.shape) for t in _tensors_in(output)]
            r = ranges.pop(id(module), None)
            if r is not None:
                r.__exit__(None, None, None)
        return hook

    live0, _ = _C._meta_memory()
    try:
        model.train(train)
        with _MetaSwap(model):
            for name, m in leaves:
                handles.append(m.register_forward_pre_hook(pre_hook(name or "model")))
                handles.append(m.register_forward_hook(post_hook(name or "model")))
            param_bytes = _C._meta_memory()[0] - live0
            _C._reset_meta_peak()
            with set_grad_enabled(train):
                inputs = _meta_inputs(example_input_shapes)
                with profile() as fwd:
                    out = model(*inputs)
                outs = _tensors_in(out)
                backward_flops = 0.0
                if train:
                    grad_outs = [t for t in outs if t.requires_grad]
                    if not grad_outs:
                        raise ValueError("[plan] train=True but no output of the model requires "
                                         "grad: nothing to run backward through")
                    with profile() as bwd:
                        loss = grad_outs[0].sum()
                        for t in grad_outs[1:]:
                            loss = loss + t.sum()
                        loss.backward()
                    backward_flops = sum(e.flops for e in bwd.events())
            _, peak = _C._meta_memory()
            output_shapes = _shapes_of(out)
            del out, outs, inputs
    finally:
        for h in handles:
            h.remove()
        for r in ranges.values():
            r.__exit__(None, None, None)
        model.train(was_training)

    events = fwd.events()
    forward_flops = sum(e.flops for e in events if not e.is_user_annotation)
    # A leaf module's FLOPs: the ops that ran inside its range.
    spans = [(e.name, e.start_us, e.start_us + e.cpu_time_total) for e in events
             if e.is_user_annotation]
    layer_flops: Dict[str, float] = {}
    for e in events:
        if e.is_user_annotation or not e.flops:
            continue
        for name, lo, hi in spans:
            if lo <= e.start_us <= hi:
                layer_flops[name] = layer_flops.get(name, 0.0) + e.flops
                break
    layers = [LayerPlan(name=name or "model", kind=type(m).__name__,
                        output_shapes=layer_outputs.get(name or "model", []),
                        num_parameters=sum(p.numel() for p in m.parameters(recurse=False)),
                        flops=layer_flops.get(name or "model", 0.0))
              for name, m in leaves if (name or "model") in layer_outputs]
    peak_bytes = peak - live0
    return Plan(output_shapes=output_shapes, num_parameters=num_params,
                trainable_parameters=trainable, parameter_bytes=param_bytes,
                forward_flops=forward_flops, backward_flops=backward_flops,
                peak_bytes=peak_bytes, peak_activation_bytes=peak_bytes - param_bytes,
                train=train, layers=layers)
