"""Finite-difference gradient checks (float64), like torch.autograd.gradcheck."""
from __future__ import annotations

import numpy as np

from .. import _C
from .._C import Tensor


class GradcheckError(RuntimeError):
    pass


def _flat_outputs(fn, inputs):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor)]


def _numpy(t):
    return np.array(_C._to_numpy(_C.contiguous(t.detach()), True), dtype=np.float64)


def gradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, check_undefined_grad: bool = True,
              nondet_tol: float = 0.0, **_ignored) -> bool:
    """Compares analytical gradients of ``fn`` with central finite differences.

    Inputs that require grad should be float64; every output element's vector-Jacobian product
    is compared with the numerical Jacobian row.
    """
    from .. import no_grad
    from . import grad as autograd_grad

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff_idx:
        raise ValueError("[gradcheck] at least one input must require grad")
    for i in diff_idx:
        if inputs[i].dtype != _C.dtype.float64:
            import warnings
            warnings.warn(f"[gradcheck] input {i} is {inputs[i].dtype}, not float64: the check "
                          "may fail from rounding alone", stacklevel=2)
    outputs = _flat_outputs(fn, inputs)
    # Numerical Jacobians: perturb each input element on a contiguous copy.
    for i in diff_idx:
        x = inputs[i]
        base = _numpy(x)
        flat = base.reshape(-1)
        numeric = [np.zeros((flat.size, o.numel())) for o in outputs]
        for k in range(flat.size):
            vals = []
            for sign in (1, -1):
                pert = flat.copy()
                pert[k] += sign * eps
                xi = _C.from_numpy(pert.reshape(base.shape).astype(_C_np(x.dtype)))
                args = list(inputs)
                args[i] = xi
                with no_grad():
                    vals.append([_numpy(o).reshape(-1) for o in _flat_outputs(fn, args)])
            for j in range(len(outputs)):
                numeric[j][k] = (vals[0][j] - vals[1][j]) / (2 * eps)
        # Analytical: one vjp per output element.
        for j, o in enumerate(outputs):
            if not o.requires_grad:
                if np.any(numeric[j] != 0):
                    return _fail(raise_exception, f"output {j} does not require grad but the "
                                 f"numerical gradient w.r.t. input {i} is nonzero")
                continue
            analytic = np.zeros((flat.size, o.numel()))
            for e in range(o.numel()):
                go = np.zeros(o.numel())
                go[e] = 1.0
                gt = _C.from_numpy(go.reshape(tuple(o.shape)).astype(_C_np(o.dtype)))
                (g,) = autograd_grad([o], [x], [gt], retain_graph=True, allow_unused=True)
                if g is not None:
                    analytic[:, e] = _numpy(g).reshape(-1)
            if not np.allclose(analytic, numeric[j], atol=atol, rtol=rtol):
                worst = np.abs(analytic - numeric[j]).max()
                return _fail(raise_exception,
                             f"[gradcheck] Jacobian mismatch for output {j} with respect to input "
                             f"{i} (max abs difference {worst:.3e})\nnumerical:\n{numeric[j]}\n"
                             f"analytical:\n{analytic}")
    return True


def _C_np(dt):
    return {_C.dtype.float32: np.float32, _C.dtype.float64: np.float64}.get(dt, np.float64)


def _fail(raise_exception, msg):
    if raise_exception:
        raise GradcheckError(msg)
    return False


def gradgradcheck(fn, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, **_ignored) -> bool:
    """gradcheck of the gradient itself (second derivatives through create_graph=True)."""
    from . import grad as autograd_grad
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    outs = _flat_outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [_C.from_numpy(rng.standard_normal(tuple(o.shape)).astype(np.float64))
                        for o in outs]

    diff_pos = [k for k, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def first_grad(*xs):
        from .. import enable_grad
        # gradcheck evaluates this on perturbed copies under no_grad: the first gradient still
        # needs a graph, so re-enable grad and make the perturbed inputs require it.
        xs = list(xs)
        for k in diff_pos:
            if not xs[k].requires_grad:
                xs[k] = xs[k].detach().requires_grad_(True)
        with enable_grad():
            outs_ = _flat_outputs(fn, xs)
            d = [xs[k] for k in diff_pos]
            gs = autograd_grad(outs_, d, list(grad_outputs), create_graph=True,
                               allow_unused=True)
        return tuple(g for g in gs if g is not None)

    del diff
    return gradcheck(first_grad, inputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
