"""Every op of the database in tests/opinfo/, checked against PyTorch and against itself.

One parametrised module, one test per check and op entry:
  forward    every sample, every dtype, contiguous inputs: values, shape and dtype vs torch
  layouts    each array argument transposed / sliced with a step / expanded in turn: the same
             values as on contiguous copies
  grad       gradient parity with torch (float32 contiguous, float64 in every layout); ops the
             registry marks not differentiable must return outputs that do not require grad
  gradcheck  finite differences in float64 on the smallest samples
  gradgrad   second derivatives by finite differences, for the entries marked so
  isa        a cheap forward check under every ISA this CPU runs, the ISA restored afterwards
  meta       shapes and dtypes on the meta device match the CPU result
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

import deepcore as dc
from helpers import assert_close, torch_dtype
from opinfo import OPS, DType, OpInfo, case_id

REGISTRY = {op["name"]: op for op in dc._C._op_registry()}
ISAS = ["generic", "avx2", "avx512"]


def _params(check, pred=lambda info: True, with_dtype=False):
    """One param per entry (and dtype); an entry's known bug for `check` is a strict xfail."""
    out = []
    for info in OPS:
        if not pred(info):
            continue
        marks = []
        if check in info.xfails:
            marks.append(pytest.mark.xfail(strict=True, reason=info.xfails[check]))
        if check in info.skips:
            marks.append(pytest.mark.skip(reason=info.skips[check]))
        if with_dtype:
            out += [pytest.param(info, d, id=f"{case_id(info)}-{str(d).split('.')[-1]}",
                                 marks=marks) for d in info.dtypes]
        else:
            out.append(pytest.param(info, id=case_id(info), marks=marks))
    return out


def _differentiable(info: OpInfo) -> bool:
    return REGISTRY[info.name]["differentiable"] if info.grad is None else info.grad


def _samples(info: OpInfo, dtype):
    """The entry's samples in `dtype`, from an RNG seeded by the test id (reproducible)."""
    return info.samples(np.random.default_rng(zlib.crc32(f"{case_id(info)}-{dtype}".encode())),
                        dtype)


# ---- building arguments -----------------------------------------------------------------------

def _layouts_of(a: np.ndarray, info: OpInfo):
    """The non-contiguous presentations of an array of this shape."""
    out = []
    if a.ndim >= 2 and a.shape[-1] > 1 and a.shape[-2] > 1:
        out.append("transposed")
    if a.ndim >= 1 and a.shape[-1] > 0:
        out.append("strided")
    for d, s in enumerate(a.shape if info.expand else ()):
        if s > 1:
            out.append(("expanded", d))
            break
    return out


def _values(a: np.ndarray, layout):
    """The values an array has in `layout` (expanding repeats the first slice along a dim)."""
    if isinstance(layout, tuple):
        return np.ascontiguousarray(np.broadcast_to(np.take(a, [0], axis=layout[1]), a.shape))
    return a


def _to_lib(lib, base: np.ndarray):
    return dc.tensor(base) if lib is dc else torch.from_numpy(np.array(base, copy=True))


def _make(lib, a: np.ndarray, layout, requires_grad: bool, clone: bool):
    """(leaf, operand): operand has a's values (see _values) presented in `layout`."""
    if layout == "transposed":
        base = np.ascontiguousarray(np.swapaxes(a, -1, -2))
    elif layout == "strided":
        base = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), dtype=a.dtype)
        base[..., 1::2] = a
    elif isinstance(layout, tuple):
        base = np.ascontiguousarray(np.take(a, [0], axis=layout[1]))
    else:
        base = a
    leaf = _to_lib(lib, base)
    if requires_grad:
        leaf.requires_grad_(True)
    # An in-place op may not write into a leaf that requires grad: it writes into a copy.
    t = leaf.clone() if clone else leaf
    if layout == "transposed":
        t = t.transpose(-1, -2)
    elif layout == "strided":
        t = t[..., 1::2]
    elif isinstance(layout, tuple):
        t = t.expand(*a.shape)
    return leaf, t


class Built:
    """A sample's arguments in one library; `leaves` maps a slot to its grad leaf."""

    def __init__(self, lib, info: OpInfo, sample, layouts=None, grad=False, meta=False):
        self.leaves = {}
        layouts = layouts or {}

        def conv(x, slot):
            if isinstance(x, np.ndarray):
                top = slot[0]
                wants = (grad and x.dtype.kind == "f" and
                         (info.grad_args is None or top in info.grad_args))
                clone = info.inplace and top == 0 and wants
                leaf, t = _make(lib, x, layouts.get(slot, "contig"), wants, clone)
                if wants:
                    self.leaves[slot] = leaf
                return t.to("meta") if meta else t
            if isinstance(x, DType):
                return x.dtype if lib is dc else torch_dtype(x.dtype)
            if isinstance(x, list):
                return [conv(v, slot + (j,)) for j, v in enumerate(x)]
            if isinstance(x, tuple) and any(isinstance(v, np.ndarray) for v in x):
                return tuple(conv(v, slot + (j,)) for j, v in enumerate(x))
            return x
        self.args = [conv(a, (k,)) for k, a in enumerate(sample.args)]
        self.kwargs = {k: conv(v, (k,)) for k, v in sample.kwargs.items()}

    def call(self, fn):
        return fn(*self.args, **self.kwargs)


def _slots(sample, info: OpInfo):
    """(slot, array) for every array argument that may be laid out non-contiguously."""
    out = []

    def walk(x, slot):
        if isinstance(x, np.ndarray):
            if info.layouts is None or slot[0] in info.layouts:
                out.append((slot, x))
        elif isinstance(x, (list, tuple)):
            for j, v in enumerate(x):
                walk(v, slot + (j,))
    for k, a in enumerate(sample.args):
        walk(a, (k,))
    for k, v in sample.kwargs.items():
        walk(v, (k,))
    return out


def _with_values(sample, slot, values):
    """A copy of `sample` whose array at `slot` is replaced."""
    def put(x, path):
        if not path:
            return values
        if isinstance(x, list):
            return [put(v, path[1:]) if j == path[0] else v for j, v in enumerate(x)]
        return tuple(put(v, path[1:]) if j == path[0] else v for j, v in enumerate(x))
    args, kwargs = list(sample.args), dict(sample.kwargs)
    if isinstance(slot[0], int):
        args[slot[0]] = put(args[slot[0]], slot[1:])
    else:
        kwargs[slot[0]] = put(kwargs[slot[0]], slot[1:])
    new = type(sample).__new__(type(sample))
    new.__dict__.update(sample.__dict__, args=tuple(args), kwargs=kwargs)
    return new


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _compare(info: OpInfo, actual, expected, msg, grads=False):
    table = info.grad_tols if grads else info.tols
    for i, (a, e) in enumerate(zip(_outputs(actual), _outputs(expected))):
        dt = getattr(a, "dtype", None)
        r, t = table.get(dt, (None, None)) if dt is not None else (None, None)
        assert_close(a, e, rtol=r, atol=t, msg=f"{msg} output {i}")
    assert len(_outputs(actual)) == len(_outputs(expected)), msg


def _known_bug(sample, fn):
    """Runs fn; a sample marked with a known bug must raise (strict: fixed bugs show up)."""
    if not sample.xfail:
        return fn()
    try:
        fn()
    except Exception:  # noqa: BLE001  (the bug's error, whatever its type)
        return None
    pytest.fail(f"known bug no longer reproduces, update tests/opinfo/: {sample.xfail}")


def _run_forward(info: OpInfo, sample, msg, layouts=None):
    _known_bug(sample, lambda: _forward_once(info, sample, msg, layouts))


def _forward_once(info: OpInfo, sample, msg, layouts=None):
    d, t = Built(dc, info, sample, layouts), Built(torch, info, sample, layouts)
    expected = t.call(info.ref)
    actual = d.call(info.op)
    if sample.check is not None:
        sample.check(actual, expected, d.args)
    else:
        _compare(info, actual, expected, msg)
    if info.inplace:
        assert actual is d.args[0], f"{msg}: an in-place op must return its input"


# ---- forward --------------------------------------------------------------------------------

@pytest.mark.parametrize("info,dtype", _params("forward", with_dtype=True))
def test_forward(info, dtype):
    for sample in _samples(info, dtype):
        _run_forward(info, sample, f"{info.name} {sample!r}")


# ---- layouts --------------------------------------------------------------------------------

@pytest.mark.parametrize("info,dtype", _params("layouts", with_dtype=True))
def test_layouts(info, dtype):
    n = 0
    for sample in _samples(info, dtype):
        if sample.check is not None or sample.xfail:
            continue  # random results; known bugs are expected in test_forward
        for slot, a in _slots(sample, info):
            for layout in _layouts_of(a, info):
                if info.inplace and slot == (0,) and isinstance(layout, tuple):
                    continue  # writing into an expanded tensor is an error, as in torch
                plain = _with_values(sample, slot, _values(a, layout))
                expected = Built(dc, info, plain).call(info.op)
                got = Built(dc, info, plain, {slot: layout}).call(info.op)
                _compare(info, got, expected, f"{info.name} {sample!r} arg {slot} {layout}")
                n += 1
    if n == 0:
        pytest.skip("no sample has an array argument that can be laid out differently")


# ---- gradients ------------------------------------------------------------------------------

def _grad_once(info: OpInfo, sample, layouts, rng, msg):
    d = Built(dc, info, sample, layouts, grad=True)
    t = Built(torch, info, sample, layouts, grad=True)
    expected, actual = t.call(info.ref), d.call(info.op)
    pairs = [(a, e) for a, e in zip(_outputs(actual), _outputs(expected))
             if isinstance(e, torch.Tensor) and e.requires_grad]
    if not pairs:
        return 0
    for a, _ in pairs:
        assert a.requires_grad, f"{msg}: deepcore output does not require grad"
    ups = [rng.standard_normal(tuple(e.shape)).astype(e.detach().numpy().dtype) for _, e in pairs]
    torch.autograd.backward([e for _, e in pairs], [torch.from_numpy(u) for u in ups])
    dc.autograd.backward([a for a, _ in pairs], [dc.tensor(u) for u in ups])
    for slot, leaf in d.leaves.items():
        tleaf = t.leaves[slot]
        if tleaf.grad is None:
            assert leaf.grad is None or not np.any(leaf.grad.numpy()), \
                f"{msg}: input {slot} got a gradient, torch has none"
            continue
        assert leaf.grad is not None, f"{msg}: input {slot} has no gradient"
        _compare(info, leaf.grad, tleaf.grad, f"grad of input {slot}, {msg}", grads=True)
    return 1


@pytest.mark.parametrize("info", _params("grad", lambda i: i.grad is not False))
def test_grad(info):
    if not REGISTRY[info.name]["differentiable"]:
        # Not differentiable: outputs do not require grad, whatever the inputs do (in-place
        # ops return their input, which keeps its history).
        for dtype in [d for d in info.dtypes if d.is_floating_point]:
            for sample in _samples(info, dtype):
                if sample.xfail:
                    continue
                built = Built(dc, info, sample, grad=True)
                out = built.call(info.op)
                for o in _outputs(out):
                    if info.inplace and o is built.args[0]:
                        continue
                    assert not getattr(o, "requires_grad", False), \
                        f"{info.name} {sample!r}: not differentiable, yet its output requires grad"
        return
    n = 0
    rng = np.random.default_rng(7)
    for dtype in [d for d in info.dtypes if d.is_floating_point]:
        for sample in _samples(info, dtype):
            if not sample.grad or sample.xfail:
                continue
            variants = [{}]
            if dtype == dc.float64:
                variants += [{slot: lay} for slot, a in _slots(sample, info)
                             for lay in _layouts_of(a, info)
                             if not (info.inplace and slot == (0,) and isinstance(lay, tuple))]
            for layouts in variants:
                s = sample
                for slot, lay in layouts.items():
                    s = _with_values(s, slot, _values(dict(_slots(sample, info))[slot], lay))
                n += _grad_once(info, s, layouts, rng, f"{info.name} {sample!r} {layouts}")
    assert n, f"{info.name}: no sample produced an output that requires grad"


def _gradcheck_samples(info: OpInfo, k: int):
    """The k smallest non-empty float64 samples (finite differences cost two calls an element)."""
    def size(s):
        return sum(a.size for _, a in _slots(s, info))
    cands = [s for s in _samples(info, dc.float64) if s.grad and s.check is None and not s.xfail]
    cands = [s for s in cands if size(s) > 0] or cands
    big_enough = [s for s in cands if size(s) >= 4]
    return sorted(big_enough or cands, key=size)[:k]


def _flat_call(info: OpInfo, sample):
    """(fn, inputs) for gradcheck: fn takes the float64 leaves as flat positional tensors."""
    built = Built(dc, info, sample, grad=True)
    slots = list(built.leaves)
    inputs = [built.leaves[s] for s in slots]

    def fn(*xs):
        def sub(x, slot):
            if slot in slots:
                v = xs[slots.index(slot)]
                return v.clone() if info.inplace and slot == (0,) else v
            if isinstance(x, list):
                return [sub(v, slot + (j,)) for j, v in enumerate(x)]
            if isinstance(x, tuple):
                return tuple(sub(v, slot + (j,)) for j, v in enumerate(x))
            return x
        args = [sub(a, (k,)) for k, a in enumerate(built.args)]
        kwargs = {k: sub(v, (k,)) for k, v in built.kwargs.items()}
        out = info.op(*args, **kwargs)
        return tuple(o for o in _outputs(out)
                     if isinstance(o, dc.Tensor) and o.dtype.is_floating_point)
    return fn, inputs


def _needs_grad(info):
    return (info.gradcheck if info.gradcheck is not None else
            info.grad is not False and REGISTRY[info.name]["differentiable"])


@pytest.mark.parametrize("info", _params("gradcheck", _needs_grad))
def test_gradcheck(info):
    for sample in _gradcheck_samples(info, 2):
        fn, inputs = _flat_call(info, sample)
        if not inputs:
            continue
        assert dc.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3), sample


@pytest.mark.parametrize("info", _params("gradgrad", lambda i: i.gradgrad))
def test_gradgradcheck(info):
    for sample in _gradcheck_samples(info, 1):
        fn, inputs = _flat_call(info, sample)
        assert dc.autograd.gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3), sample


# ---- every ISA --------------------------------------------------------------------------------

def _supported_isas():
    return ISAS[:ISAS.index(dc._C._detected_isa()) + 1]


@pytest.mark.parametrize("info", _params("isa"))
def test_isa_sweep(info):
    dtype = info.dtypes[0] if dc.float32 not in info.dtypes else dc.float32
    samples = _samples(info, dtype)[:3]
    before = dc._C._active_isa()
    try:
        for isa in _supported_isas():
            dc._C._set_isa(isa)
            for sample in samples:
                _run_forward(info, sample, f"{info.name} {sample!r} under {isa}")
    finally:
        dc._C._set_isa(before)
    assert dc._C._active_isa() == before


# ---- the meta device --------------------------------------------------------------------------

def _meta_available() -> bool:
    try:
        return dc.empty(1, device="meta").device.type == "meta"
    except Exception:  # noqa: BLE001  (any failure means: not in this build)
        return False


META = _meta_available()


@pytest.mark.parametrize("info", _params("meta"))
def test_meta(info):
    if not META:
        pytest.skip("this build has no meta device (deepcore.empty(1, device='meta') fails)")
    if not info.meta:
        pytest.skip("output shape depends on the data")
    for dtype in info.dtypes:
        for sample in _samples(info, dtype):
            if sample.xfail:
                continue
            cpu = Built(dc, info, sample).call(info.op)
            m = Built(dc, info, sample, meta=True)
            if info.factory:
                m.kwargs["device"] = "meta"
            out = m.call(info.op)
            for i, (o, c) in enumerate(zip(_outputs(out), _outputs(cpu))):
                if not isinstance(c, dc.Tensor):
                    continue
                msg = f"{info.name} {sample!r} output {i}"
                assert o.device.type == "meta", f"{msg}: on {o.device}"
                assert tuple(o.shape) == tuple(c.shape), f"{msg}: {o.shape} vs cpu {c.shape}"
                assert o.dtype == c.dtype, f"{msg}: {o.dtype} vs cpu {c.dtype}"
