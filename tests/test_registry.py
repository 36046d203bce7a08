"""Every registered op has a CPU kernel, a derivative mark and a test; plus ISA coverage.

Ops of the core families must appear in the COVERED_OPS tables of the test modules that run
them through check_op. Ops of other families (reduce, index, nn, ...) must be mentioned by
tests/test_<family>.py, which must exist.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np  # noqa: F401
import pytest

import deepcore as dc
import test_autograd  # noqa: F401  (imported so a broken module fails here too)
import test_creation
import test_elementwise
import test_linalg
import test_shape

TESTS = Path(__file__).parent
CORE_FAMILIES = {"creation", "elementwise", "unary", "shape", "linalg"}
COVERED = (test_creation.COVERED_OPS | test_elementwise.COVERED_OPS | test_shape.COVERED_OPS |
           test_linalg.COVERED_OPS)


def _registry():
    return dc._C._op_registry()


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


def test_registered_ops_are_reachable_from_python():
    for op in _registry():
        n = op["name"]
        reachable = (hasattr(dc, n) or hasattr(dc.Tensor, n) or hasattr(dc._C, n) or
                     hasattr(dc._C, "_" + n) or _in_nn_functional(n))
        assert reachable, f"{n} ({op['family']}) is registered but not exposed"


def _in_nn_functional(name):
    try:
        import deepcore.nn.functional as F
    except ImportError:
        return False
    return hasattr(F, name)


def test_differentiable_marks():
    marks = {op["name"]: op["differentiable"] for op in _registry()}
    for n in ["add", "mul", "exp", "matmul", "linear", "view", "cat", "sum", "mean", "clone"]:
        assert marks[n], n
    for n in ["eq", "floor_divide", "logical_and", "rand", "arange", "isnan"]:
        assert not marks[n], n


def test_core_ops_are_covered_by_check_op_tables():
    missing = sorted(op["name"] for op in _registry()
                     if op["family"] in CORE_FAMILIES and op["name"] not in COVERED)
    assert not missing, f"ops without a check_op test: {missing}"


def test_other_families_have_a_test_file_mentioning_each_op():
    problems = []
    for op in _registry():
        fam, name = op["family"], op["name"]
        if fam in CORE_FAMILIES or name in COVERED:
            continue
        # A family's tests live in tests/test_<family>.py or tests/test_<family>_*.py.
        paths = sorted(TESTS.glob(f"test_{fam}.py")) + sorted(TESTS.glob(f"test_{fam}_*.py"))
        if fam in {"softmax", "loss", "dropout", "norm"}:  # tested with the rest of nn.functional
            paths.append(TESTS / "test_nn_functional.py")
        if not paths:
            problems.append(f"{name}: no tests/test_{fam}*.py")
        elif not any(re.search(rf"\b{re.escape(name)}\b", p.read_text()) for p in paths):
            problems.append(f"{name}: not mentioned in {[p.name for p in paths]}")
    assert not problems, "\n".join(problems)


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
