"""Custom differentiable ops written in Python: subclass Function, define forward/backward."""
from __future__ import annotations

from .. import _C
from .._C import Tensor


class FunctionCtx:
    """The ``ctx`` passed to forward/backward."""

    def __init__(self):
        self._saved = ()
        self._released = False
        self._name = "Function"
        self.needs_input_grad = ()
        self._non_differentiable = set()
        self.materialize_grads = True

    def save_for_backward(self, *tensors):
        self._saved = tuple(tensors)

    @property
    def saved_tensors(self):
        if self._released:
            raise RuntimeError(
                f"[autograd] {self._name}: trying to backward through the graph a second time "
                "(or to use saved tensors after they were freed). Pass retain_graph=True to the "
                "first backward() if you need to backward through the graph again.")
        return self._saved

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool):
        self.materialize_grads = value

    def mark_dirty(self, *tensors):
        pass


class Function:
    """Base class of custom ops: ``MyOp.apply(*args)`` runs forward and records backward.

    ``forward(ctx, *args)`` computes outputs (no graph is recorded inside it);
    ``backward(ctx, *grad_outputs)`` returns one gradient (or None) per forward argument.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must implement forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("Function subclasses must implement backward")

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with _C_no_grad():
            outputs = cls.forward(ctx, *args)
        is_tuple = isinstance(outputs, tuple)
        outs = outputs if is_tuple else (outputs,)
        if _C.is_grad_enabled() and any(ctx.needs_input_grad):
            # Outputs that alias an input get a fresh alias, so the input keeps its history.
            fresh = []
            for o in outs:
                if isinstance(o, Tensor) and any(o is a for a in args if isinstance(a, Tensor)):
                    o = _C._view(o.detach(), list(o.shape))
                fresh.append(o)
            outs = tuple(fresh)
            diff = [o for o in outs if isinstance(o, Tensor) and id(o) not in
                    ctx._non_differentiable and o.dtype.is_floating_point]

            def run_backward(grads):
                grads = list(grads)
                by_id = {id(o): g for o, g in zip(diff, grads)}
                full = tuple(by_id.get(id(o)) if isinstance(o, Tensor) else None for o in outs)
                result = cls.backward(ctx, *full)
                if not isinstance(result, tuple):
                    result = (result,)
                if len(result) != len(args):
                    raise RuntimeError(
                        f"[autograd] {cls.__name__}.backward returned {len(result)} gradients, "
                        f"expected {len(args)} (one per forward argument)")
                return [r if isinstance(a, Tensor) and a.requires_grad else None
                        for r, a in zip(result, args)]

            ctx._name = cls.__name__
            _C._make_function_node(cls.__name__, run_backward,
                                   [a if isinstance(a, Tensor) else None for a in args], diff,
                                   lambda: setattr(ctx, "_released", True))
        return outs if is_tuple else outs[0]


class _C_no_grad:
    def __enter__(self):
        self.prev = _C.is_grad_enabled()
        _C._set_grad_enabled(False)

    def __exit__(self, *exc):
        _C._set_grad_enabled(self.prev)
