"""The registry and the public API agree, and every registered op has cases in tests/opinfo/.

Both directions: every public callable of deepcore, deepcore.nn.functional and deepcore.Tensor
that computes on tensors is a registered op (or an alias of one, or on the allow-list of
helpers below), and every registered op is reachable from Python and has OpInfo entries, which
tests/test_ops.py runs through every check. Plus ISA coverage.
"""
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deepcore as dc
import deepcore.nn.functional as F
import opinfo

TESTS = Path(__file__).parent

# Other names for registered ops (torch's and numpy's spellings, conversion shorthands).
ALIASES = {
    "absolute": "abs", "arctan2": "atan2", "clip": "clamp", "concat": "cat",
    "concatenate": "cat", "divide": "div", "true_divide": "div", "multiply": "mul",
    "negative": "neg", "subtract": "sub", "greater": "gt", "less": "lt",
    # Tensor conversions and *_as forms: the op they call with another tensor's dtype/shape.
    "double": "to", "float": "to", "int": "to", "long": "to", "bool": "to", "cpu": "to",
    "cuda": "to", "type": "to", "type_as": "to", "expand_as": "expand", "reshape_as": "reshape",
    "view_as": "view",
    # Tensor.new_*: creation ops taking the dtype of self.
    "new_empty": "empty", "new_full": "full", "new_ones": "ones", "new_zeros": "zeros",
    "new_tensor": "to", "new": "empty",
}

# Public callables that are not ops: they compute nothing on tensor data, or they are how a
# tensor enters and leaves the library. Everything else public must be registered.
NOT_OPS = {
    # Making tensors from Python / numpy / DLPack data, and saving them.
    "tensor", "as_tensor", "asarray", "from_numpy", "from_dlpack", "numpy", "tolist", "item",
    "save", "load",
    # Transforms of functions and modules (deepcore.jit / deepcore.compile).
    "jit", "compile", "vmap",
    # Host memory placement for GPU copies and stream bookkeeping (deepcore.cuda), not
    # computation.
    "pin_memory", "is_pinned", "record_stream",
    # Library state: dtypes, threads, seeds, grad mode, build information.
    "get_default_dtype", "promote_types", "get_num_threads", "set_num_threads",
    "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
    "is_grad_enabled", "show_config", "get_float32_matmul_precision",
    "set_float32_matmul_precision", "is_autocast_enabled", "get_autocast_dtype",
    # Metadata queries answered from sizes and strides, never from the data.
    "is_tensor", "is_floating_point", "is_contiguous", "numel", "nelement", "dim",
    "ndimension", "size", "stride", "storage_offset", "element_size", "data_ptr",
    # Autograd graph handling, not computation.
    "backward", "register_hook", "register_post_accumulate_grad_hook", "retain_grad",
    "requires_grad_", "detach", "detach_",
    # Tensor.equal returns a Python bool (eq then all): a composite that should be registered
    # like allclose; listed here until it is.
    "equal",
    # A whole module's forward (nn.MultiheadAttention's) in functional form: it composes
    # registered ops (linear, scaled_dot_product_attention, softmax) and is tested with the
    # module in tests/test_transformer.py.
    "multi_head_attention_forward",
}


def _registry():
    return dc._C._op_registry()


def _registered_name(name):
    try:
        return opinfo.registry_name(ALIASES.get(name, name))
    except KeyError:
        return None


def _public_routines(namespace):
    for name in dir(namespace):
        if name.startswith("_"):
            continue
        value = getattr(namespace, name, None)
        if inspect.isroutine(value) or type(value).__name__ == "instancemethod":
            yield name


def test_registry_is_well_formed():
    ops = _registry()
    assert len(ops) > 100
    names = [op["name"] for op in ops]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"ops registered twice: {sorted(dupes)}"
    for op in ops:
        assert op["cpu"] is True, f"{op['name']} has no CPU kernel"
        assert isinstance(op["differentiable"], bool), op
        assert op["family"], op
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", op["name"]), op


@pytest.mark.parametrize("where", ["deepcore", "deepcore.nn.functional", "deepcore.Tensor"])
def test_every_public_op_is_registered(where):
    namespace = {"deepcore": dc, "deepcore.nn.functional": F, "deepcore.Tensor": dc.Tensor}[where]
    missing = sorted(n for n in _public_routines(namespace)
                     if n not in NOT_OPS and _registered_name(n) is None)
    assert not missing, (f"public callables of {where} that are neither registered ops, "
                         f"aliases nor listed in NOT_OPS: {missing}")
    stale = sorted(n for n in ALIASES if _registered_name(n) is None)
    assert not stale, f"aliases of ops that are not registered: {stale}"


def test_registered_ops_are_reachable_from_python():
    for op in _registry():
        n = op["name"]
        reachable = (hasattr(dc, n) or hasattr(dc.Tensor, n) or hasattr(dc._C, n) or
                     hasattr(dc._C, "_" + n) or hasattr(F, n))
        assert reachable, f"{n} ({op['family']}) is registered but not exposed"


def test_every_registered_op_has_database_cases():
    names = {op["name"] for op in _registry()}
    missing = sorted(names - set(opinfo.OPS_BY_NAME))
    assert not missing, f"registered ops without an OpInfo entry in tests/opinfo/: {missing}"
    unknown = sorted(set(opinfo.OPS_BY_NAME) - names)
    assert not unknown, f"tests/opinfo/ has entries for ops that are not registered: {unknown}"
    for info in opinfo.OPS:
        n = sum(len(info.samples(np.random.default_rng(0), d))
                for d in info.dtypes)
        assert n > 0, f"{opinfo.case_id(info)} has no samples"


def test_differentiable_marks():
    marks = {op["name"]: op["differentiable"] for op in _registry()}
    for n in ["add", "mul", "exp", "matmul", "linear", "view", "cat", "sum", "mean", "clone"]:
        assert marks[n], n
    for n in ["eq", "floor_divide", "logical_and", "rand", "arange", "isnan"]:
        assert not marks[n], n


# ---- every ISA computes the same thing -----------------------------------------------------------

_ISA_PROBE = r"""
import numpy as np, torch, deepcore as dc, sys
sys.path.insert(0, {tests!r})
from helpers import check_op
assert dc._C._active_isa() == {isa!r}, dc._C._active_isa()
shapes = [((1031,), (1031,)), ((7, 33), (33,)), ((17, 5), ())]
for f, tf in [(dc.add, torch.add), (dc.mul, torch.mul), (dc.div, torch.div),
              (dc.maximum, torch.maximum), (dc.atan2, torch.atan2)]:
    check_op(f, tf, shapes)
check_op(dc.eq, torch.eq, shapes, init=lambda rng, s, d, k: rng.integers(0, 2, s).astype("f4"),
         dtypes=[dc.float32], grad=False)
for f, tf in [(dc.exp, torch.exp), (dc.sigmoid, torch.sigmoid), (dc.tanh, torch.tanh),
              (dc.gelu, torch.nn.functional.gelu), (dc.silu, torch.nn.functional.silu)]:
    check_op(f, tf, [((1031,),), ((5, 67),)], low=-20, high=20)
check_op(dc.matmul, torch.matmul, [((33, 17), (17, 9))], rtol=1e-4, atol=1e-5, grad_rtol=1e-4,
         grad_atol=1e-4)
check_op(lambda x: x.sum(0), lambda x: x.sum(0), [((70, 3),)], rtol=1e-5, atol=1e-5)
print("ok", dc._C._active_isa())
"""


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_elementwise_under_each_isa(isa):
    order = ["generic", "avx2", "avx512"]
    if order.index(isa) > order.index(_hardware_isa()):
        pytest.skip(f"this CPU cannot run {isa}")
    env = dict(os.environ, DEEPCORE_CPU_ISA=isa)
    r = subprocess.run([sys.executable, "-c", _ISA_PROBE.format(tests=str(TESTS), isa=isa)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == f"ok {isa}"


def _hardware_isa():
    env = {k: v for k, v in os.environ.items() if k != "DEEPCORE_CPU_ISA"}
    r = subprocess.run([sys.executable, "-c", "import deepcore; print(deepcore._C._detected_isa())"],
                       capture_output=True, text=True, env=env, timeout=120)
    return r.stdout.strip() or "generic"


def test_set_isa_switches_and_validates():
    before = dc._C._active_isa()
    try:
        dc._C._set_isa("generic")
        assert dc._C._active_isa() == "generic"
        x = dc.linspace(-5, 5, 1001)
        generic = dc.exp(x).numpy().copy()
        dc._C._set_isa(before)
        diff = abs(dc.exp(x).numpy() - generic).max()
        assert diff <= 1e-6 * abs(generic).max()
    finally:
        dc._C._set_isa(before)
    with pytest.raises(ValueError, match="ISA"):
        dc._C._set_isa("sse9")
