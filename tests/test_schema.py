"""The op schema (csrc/ops/ops.schema) is what Python sees: every row parses, every binding
takes the schema's argument names, every variant exists, and the checked-in _C.pyi is what
tools/gen_ops.py makes of it."""
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest

import deepcore as dc
import deepcore.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent


def _gen_ops():
    spec = importlib.util.spec_from_file_location("gen_ops", ROOT / "tools" / "gen_ops.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_ops"] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


gen_ops = _gen_ops()
ROWS = dc._C._op_registry(True)


def _names(sig):
    return [a.name for a in gen_ops.parse_signature(sig)[1]]


def test_every_registry_row_has_a_signature_that_parses():
    schema = gen_ops.load()
    inplace = sum("inplace" in op.variants for op in schema)
    assert len(ROWS) == len(schema) + inplace
    for op in ROWS:
        name, args, _ = gen_ops.parse_signature(op["signature"], op["name"])
        assert name == op["name"], op
        assert set(op["variants"]) <= {"function", "method", "inplace"}, op
    public = dc._C._op_registry()
    assert not any(op["name"].startswith("_") for op in public)
    assert {op["name"] for op in public} < {op["name"] for op in ROWS}


def _pybind_arg_names(fn, method=False):
    # pybind11's docstring starts with "name(arg: type = default, ...) -> ret".
    first = fn.__doc__.strip().splitlines()[0]
    inner = first[first.index("(") + 1:first.rindex(") ->")]
    names = re.findall(r"(?:^|, )(\*|[A-Za-z_]\w*)(?=: |, |$)", inner)
    return [n for n in names if n != "*"][1 if method else 0:]


@pytest.mark.parametrize("op", [op for op in ROWS if op["binding"]], ids=lambda op: op["name"])
def test_bindings_take_the_schema_argument_names(op):
    expected = _names(op["signature"])
    fn = getattr(dc._C, op["binding"])
    assert _pybind_arg_names(fn) == expected, fn.__doc__
    if "inplace" in op["variants"]:
        assert _pybind_arg_names(getattr(dc._C, op["binding"] + "_")) == expected
    method = dc.Tensor.__dict__.get(op["name"]) if "method" in op["variants"] else None
    if op["generated"] and method is not None and op["binding"] == op["name"]:
        assert _pybind_arg_names(method, method=True) == expected[1:], method.__doc__


# Python functions: the rows written in Python, and the Tensor methods written in Python over a
# binding of another name (bind=, as nan_to_num).
@pytest.mark.parametrize("op", [op for op in ROWS if op["python"] or (
    op["binding"] != op["name"] and "method" in op["variants"])], ids=lambda op: op["name"])
def test_python_ops_take_the_schema_argument_names(op):
    home = F if op["module"] == "deepcore.nn.functional" else dc
    fn = getattr(home, op["name"]) if "function" in op["variants"] else getattr(dc.Tensor,
                                                                                op["name"])
    params = [p.name for p in inspect.signature(fn).parameters.values()
              if p.kind is not inspect.Parameter.VAR_KEYWORD]
    expected = _names(op["signature"])
    if params and params[0] == "self":
        expected = ["self"] + expected[1:]
    assert params == expected


def test_every_variant_exists():
    missing = []
    for op in dc._C._op_registry():
        n = op["name"]
        home = F if op["module"] == "deepcore.nn.functional" else dc
        if "function" in op["variants"] and not hasattr(home, n):
            missing.append(f"{op['module']}.{n}")
        if "method" in op["variants"] and not hasattr(dc.Tensor, n):
            missing.append(f"Tensor.{n}")
        if "inplace" in op["variants"]:
            if not hasattr(dc.Tensor, n + "_"):
                missing.append(f"Tensor.{n}_")
            if "function" in op["variants"] and not hasattr(dc._C, n + "_"):
                missing.append(f"_C.{n}_")
    assert not missing


def test_hot_ops_are_cpp_methods():
    # A Python wrapper would add ~0.5 us to every call (bench/compare.py).
    for n in ["add", "sub", "mul", "div", "sum", "mean", "matmul", "exp", "relu", "tanh",
              "add_", "mul_", "exp_"]:
        assert type(dc.Tensor.__dict__[n]).__name__ == "instancemethod", n


def test_every_public_C_function_is_an_op_or_in_the_base_stub():
    text = (ROOT / "tools" / "stubs" / "_C_base.pyi").read_text()
    bound = {op["binding"] for op in ROWS if op["binding"]}
    bound |= {b + "_" for op in ROWS if op["binding"] and "inplace" in op["variants"]
              for b in [op["binding"]]}
    for n in dir(dc._C):
        if n.startswith("__") or n in bound:
            continue
        assert re.search(rf"^(def|class) {n}\b", text, re.M), f"_C.{n} is neither in " \
            "csrc/ops/ops.schema nor in tools/stubs/_C_base.pyi"


def test_stub_is_generated_and_up_to_date():
    stub = (ROOT / "python" / "deepcore" / "_C.pyi").read_text()
    assert "arg0" not in stub
    expected = gen_ops.gen_pyi(gen_ops.load(), (ROOT / "tools" / "stubs" / "_C_base.pyi").read_text())
    assert stub == expected, "python/deepcore/_C.pyi is stale: run scripts/gen_stubs.sh"
    compile(stub, "_C.pyi", "exec")


def test_schema_errors_name_the_line():
    with pytest.raises(gen_ops.SchemaError, match="ops.schema:1"):
        gen_ops.parse("add(Tensor input) -> Tensor | nosuchfamily grad\n")
    with pytest.raises(gen_ops.SchemaError, match="unknown type"):
        gen_ops.parse("add(Tensr input) -> Tensor | elementwise grad\n")
    with pytest.raises(gen_ops.SchemaError, match="defined twice"):
        gen_ops.parse("abs(Tensor input) -> Tensor | unary grad inplace\n"
                      "abs_(Tensor input) -> Tensor | unary grad\n")
