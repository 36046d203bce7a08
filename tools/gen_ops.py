#!/usr/bin/env python3
"""Generates what csrc/ops/ops.schema implies: the pybind11 op bindings, the op registry table
and the typed deepcore/_C.pyi. Standard library only: CMake runs it at build time.

    python tools/gen_ops.py --bindings OUT.cpp --registry OUT.cpp   # what the build runs
    python tools/gen_ops.py --pyi python/deepcore/_C.pyi            # scripts/gen_stubs.sh

The schema format and the steps to add an op are in CONTRIBUTING.md ("The op schema").
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "csrc" / "ops" / "ops.schema"
STUB_BASE = ROOT / "tools" / "stubs" / "_C_base.pyi"

FAMILIES = {"creation", "elementwise", "unary", "shape", "reduce", "index", "linalg", "conv",
            "pool", "norm", "loss", "softmax", "attention", "dropout", "sort", "optim", "rnn"}
VARIANTS = ("function", "method", "inplace")
FLAGS = {"manual", "python", "nn", "requires_grad", "nogil", "half", "widen"}
KEYS = {"bind", "cpp", "nogil", "amp"}
AMP_POLICIES = {"lower", "fp32", "promote"}
# Families whose kernels compute bfloat16 and float16 themselves (Note [Precision policies] in
# csrc/dispatch/precision.h); a row of another family says so with `half`, a row of these that
# does not with `widen`.
HALF_FAMILIES = {"creation", "elementwise", "unary", "shape", "index"}


class SchemaError(Exception):
    pass


@dataclass
class Arg:
    type: str          # without the alias annotation: Tensor, int[]?, ...
    name: str
    default: str | None
    kw_only: bool
    mutable: bool      # Tensor(a!): written in place

    @property
    def optional(self) -> bool:
        return self.type.endswith("?")

    @property
    def base(self) -> str:
        return self.type.rstrip("?")


@dataclass
class Op:
    line: int
    signature: str
    name: str
    args: list[Arg]
    returns: str
    family: str
    differentiable: bool
    variants: list[str]
    flags: set[str] = field(default_factory=set)
    options: dict[str, str] = field(default_factory=dict)
    call: str | None = None

    @property
    def internal(self) -> bool:
        """A private helper of the Python layer (_view, _max_dim, ...), not a public op."""
        return self.name.startswith("_")

    @property
    def binding(self) -> str | None:
        """The name of the op's C++ binding in deepcore._C (None: written in Python)."""
        if "python" in self.flags:
            return None
        return self.options.get("bind", self.name)

    @property
    def generated(self) -> bool:
        return self.binding is not None and "manual" not in self.flags

    @property
    def label(self) -> str:
        """The name errors carry: [max_pool2d] for the private _max_pool2d."""
        return self.name.lstrip("_")

    @property
    def cpp(self) -> str:
        return self.options.get("cpp", self.name.lstrip("_"))

    @property
    def half_kernels(self) -> bool:
        """Whether the op computes bfloat16 / float16 itself (else it runs widened)."""
        if "half" in self.flags:
            return True
        return self.family in HALF_FAMILIES and "widen" not in self.flags

    @property
    def amp(self) -> str:
        """The autocast cast policy: none, lower, fp32 or promote."""
        return self.options.get("amp", "none")


# ---- parsing -------------------------------------------------------------------------------

_SIG = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\((?P<args>.*)\)\s*->\s*(?P<ret>.+)$")
_ARG = re.compile(r"^(?P<type>[A-Za-z]+(?:\(a!\))?(?:\[\])?\??(?:\[\])?)\s+(?P<name>[a-z_][a-z0-9_]*)"
                  r"(?:\s*=\s*(?P<default>.+))?$")
TYPES = {"Tensor", "TensorLike", "LongTensor", "Scalar", "int", "float", "bool", "str",
         "ScalarType", "Device", "Generator", "Any"}


def _split_top(s: str) -> list[str]:
    out, depth, cur, quote = [], 0, [], None
    for ch in s:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def parse_signature(sig: str, where: str = "") -> tuple[str, list[Arg], str]:
    m = _SIG.match(sig.strip())
    if not m:
        raise SchemaError(f"{where}: cannot parse signature {sig!r}")
    args, kw = [], False
    for part in _split_top(m["args"]):
        if part == "*":
            kw = True
            continue
        a = _ARG.match(part)
        if not a:
            raise SchemaError(f"{where}: cannot parse argument {part!r}")
        t = a["type"]
        mutable = "(a!)" in t
        t = t.replace("(a!)", "")
        base = t.replace("[]", "").rstrip("?")
        if base not in TYPES:
            raise SchemaError(f"{where}: unknown type {t!r} of {a['name']!r}")
        args.append(Arg(t, a["name"], a["default"], kw, mutable))
    names = [a.name for a in args]
    if len(set(names)) != len(names):
        raise SchemaError(f"{where}: repeated argument name in {sig!r}")
    seen_default = False
    for a in args:
        if a.default is not None:
            seen_default = True
        elif seen_default and not a.kw_only:
            raise SchemaError(f"{where}: {a.name!r} has no default but follows one that does")
    return m["name"], args, m["ret"].strip().replace("(a!)", "")


def parse(text: str) -> list[Op]:
    ops, names = [], set()
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"ops.schema:{no}"
        cols = [c.strip() for c in line.split(" | ")]
        if len(cols) not in (2, 3):
            raise SchemaError(f"{where}: expected 'signature | family grad ... [| call]'")
        sig = cols[0]
        name, args, ret = parse_signature(sig, where)
        words = cols[1].split()
        if len(words) < 2 or words[0] not in FAMILIES or words[1] not in ("grad", "nograd"):
            raise SchemaError(f"{where}: expected '<family> grad|nograd' after the signature, "
                              f"families: {sorted(FAMILIES)}")
        op = Op(no, re.sub(r"\s+", " ", sig), name, args, ret, words[0], words[1] == "grad", [])
        for w in words[2:]:
            if w in VARIANTS:
                op.variants.append(w)
            elif "=" in w and w.split("=", 1)[0] in KEYS:
                k, v = w.split("=", 1)
                op.options[k] = v
            elif w in FLAGS:
                op.flags.add(w)
            else:
                raise SchemaError(f"{where}: unknown word {w!r}")
        if op.options.get("amp", "lower") not in AMP_POLICIES:
            raise SchemaError(f"{where}: amp= takes one of {sorted(AMP_POLICIES)}")
        if len(cols) == 3:
            op.call = cols[2]
        if name in names:
            raise SchemaError(f"{where}: {name} is defined twice")
        names.add(name)
        if "inplace" in op.variants:
            if op.call:
                raise SchemaError(f"{where}: an inplace variant needs the plain call; give "
                                  f"{name}_ a row of its own")
            names.add(name + "_")
        if op.internal and op.variants:
            raise SchemaError(f"{where}: a private helper has no public variants")
        if "requires_grad" in op.flags and (not args or args[-1].name != "requires_grad"):
            raise SchemaError(f"{where}: requires_grad needs a last 'bool requires_grad' argument")
        ops.append(op)
    return ops


def load(path: Path = SCHEMA) -> list[Op]:
    return parse(path.read_text())


# ---- C++ bindings ---------------------------------------------------------------------------

_RESERVED = {"std"}


def ident(name: str) -> str:
    return name + "_" if name in _RESERVED else name


def _param_and_local(a: Arg, op: Op, self_arg: bool) -> tuple[str, str | None]:
    """The lambda parameter, and the local that converts it (None when pybind11 does)."""
    n, lab, t = ident(a.name), op.label, a.type
    if self_arg or t == "Tensor":
        return (f"Tensor& {n}" if a.mutable else f"const Tensor& {n}"), None
    simple = {"int": "int64_t", "float": "double", "bool": "bool", "str": "const std::string&",
              "int?": "std::optional<int64_t>", "float?": "std::optional<double>",
              "bool?": "std::optional<bool>", "str?": "std::optional<std::string>",
              "Tensor[]": "const std::vector<Tensor>&"}
    if t in simple:
        return f"{simple[t]} {n}", None
    conv = {
        "TensorLike": ("py::handle", f"const Tensor {n} = to_tensor({n}_obj, \"{lab}\");"),
        "Tensor?": ("py::object", f"const Tensor {n} = {n}_obj.is_none() ? Tensor() : "
                    f"to_tensor({n}_obj, \"{lab}\");"),
        "LongTensor": ("py::handle", f"const Tensor {n} = to_index_tensor({n}_obj, \"{lab}\");"),
        "LongTensor?[]": ("py::handle", f"const tensor_list {n} = to_index_list({n}_obj, "
                          f"\"{lab}\");"),
        "Scalar": ("py::handle", f"const Scalar {n} = to_scalar({n}_obj, \"{lab}\");"),
        "Scalar?": ("py::object", f"std::optional<Scalar> {n};\n"
                    f"    if (!{n}_obj.is_none()) {n} = to_scalar({n}_obj, \"{lab}\");"),
        "int[]": ("py::handle", f"const Shape {n} = to_shape({n}_obj, \"{lab}\");"),
        "int[]?": ("py::object", f"const Shape {n} = {n}_obj.is_none() ? Shape{{}} : "
                   f"to_shape({n}_obj, \"{lab}\");"),
        "ScalarType": ("py::handle", f"const DType {n} = to_dtype_arg({n}_obj);"),
        "ScalarType?": ("py::object", f"std::optional<DType> {n};\n"
                        f"    if (!{n}_obj.is_none()) {n} = to_dtype_arg({n}_obj);"),
    }
    if t not in conv:
        raise SchemaError(f"ops.schema:{op.line}: {op.name}: type {t} has no C++ binding")
    ptype, local = conv[t]
    return f"{ptype} {n}_obj", local


def _py_default(a: Arg, op: Op) -> str:
    d = a.default
    if d == "None":
        return "py::none()"
    if d in ("True", "False"):
        return d.lower()
    if d == "()":
        return "py::tuple()"
    if re.fullmatch(r"-?\d+", d):
        return f"{d}.0" if a.base == "float" else d
    if re.fullmatch(r"-?[\d.]+(e-?\d+)?", d):
        return d
    if re.fullmatch(r"\"[^\"]*\"", d):
        return d
    raise SchemaError(f"ops.schema:{op.line}: {op.name}: default {d!r} has no C++ form")


def _pyargs(args: list[Arg], op: Op) -> str:
    out, kw = [], False
    for a in args:
        if a.kw_only and not kw:
            out.append("py::kw_only()")
            kw = True
        s = f'py::arg("{a.name}")'
        if a.default is not None:
            s += f" = {_py_default(a, op)}"
        out.append(s)
    return "".join(", " + s for s in out)


def _call_expr(op: Op, cpp: str, inplace: bool) -> str:
    """The C++ call of the op on its arguments (each named after the schema's)."""
    call_args = [ident(a.name) for a in op.args]
    if "requires_grad" in op.flags:
        call_args = call_args[:-1]
    call = op.call if op.call and not inplace else f"ops::{cpp}({', '.join(call_args)})"
    if "requires_grad" in op.flags:
        call = f"set_requires_grad({call}, requires_grad)"
    return call


def _lambda(op: Op, name: str, cpp: str, method: bool, inplace: bool) -> tuple[str, str]:
    params, locals_ = [], []
    for i, a in enumerate(op.args):
        self_arg = method and i == 0
        if inplace and i == 0:
            a = Arg("Tensor", a.name, a.default, a.kw_only, True)
        p, loc = _param_and_local(a, op, self_arg)
        params.append(p)
        if loc:
            locals_.append(loc)
    call = _call_expr(op, cpp, inplace)
    body = []
    if _traced(op):
        # Note [Traced graphs] (csrc/jit/graph.h): while tracing, the call (argument conversion
        # included: it may make tensors) is recorded with its converted arguments.
        body.append(f"    jit::Record rec_({_op_var(name)});")
    elif op.returns.strip() not in ("()", "None"):
        # No tensor result to record (result_type): the conversions are not ops of the graph.
        body.append("    jit::Record quiet_(-1);")
    body += [f"    {loc}" for loc in locals_]
    work = op.options.get("nogil")
    if "nogil" in op.flags or work:
        if not work:
            first = next((a for a in op.args if a.base in ("Tensor", "TensorLike")), None)
            if first is None:
                raise SchemaError(f"ops.schema:{op.line}: {op.name}: nogil needs a tensor")
            work = f"{ident(first.name)}.numel()"
        body.append(f"    ReleaseIfLarge gil({work});")
    step = _precision_step(op, call, inplace)
    if step:
        body.append(step)
    if _traced(op):
        boxed = ", ".join(f"jit::IValue({ident(a.name)})" for a in op.args)
        body.append(f"    if (rec_) {{\n"
                    f"      auto r_ = {call};\n"
                    f"      rec_.finish({{{boxed}}}, jit::as_outputs(r_));\n"
                    f"      return r_;\n    }}")
    body.append(f"    return {call};")
    lam = "[](" + ", ".join(params) + ") {\n" + "\n".join(body) + "\n  }"
    return lam, _pyargs(op.args[1:] if method else op.args, op)


_PRECISION_ARGS = {"Tensor": "Tensor", "TensorLike": "Tensor", "Tensor?": "Tensor",
                   "Tensor[]": "std::vector<Tensor>"}


def _precision_step(op: Op, call: str, inplace: bool) -> str | None:
    """Note [Precision policies] (csrc/dispatch/precision.h): the autocast casts and the float32
    fallback, before the call. None for ops it can never apply to."""
    targs = [a for a in op.args if a.type in _PRECISION_ARGS]
    if not targs or op.returns.strip() in ("()", "None"):
        return None
    if op.half_kernels and op.amp == "none":
        return None
    policy = f"dispatch::CastPolicy::{op.amp}"
    half = "true" if op.half_kernels else "false"
    names = ", ".join(ident(a.name) for a in targs)
    params = ", ".join(f"{_PRECISION_ARGS[a.type]} {ident(a.name)}" for a in targs)
    writes = "true" if (inplace or (op.args and op.args[0].mutable)) else "false"
    return (f"    if (dispatch::precision::needed({policy}, {half}, {names})) {{\n"
            f"      return dispatch::precision::call({policy}, {half}, {writes},\n"
            f"          [&]({params}) {{ return {call}; }}, {names});\n    }}")


_IVALUE_TYPES = {
    "Tensor": "Tensor", "TensorLike": "Tensor", "LongTensor": "Tensor", "Tensor?": "Tensor",
    "Tensor[]": "tensor_list", "LongTensor?[]": "tensor_list", "Scalar": "Scalar",
    "Scalar?": "std::optional<Scalar>", "int[]": "Shape", "int[]?": "Shape",
    "ScalarType": "DType", "ScalarType?": "std::optional<DType>", "int": "int64_t",
    "float": "double", "bool": "bool", "str": "std::string", "int?": "std::optional<int64_t>",
    "float?": "std::optional<double>", "bool?": "std::optional<bool>",
    "str?": "std::optional<std::string>",
}


# Ops that draw random numbers: replaying them must draw again, so they are never folded or
# dropped.
_RANDOM = re.compile(r"rand|bernoulli|multinomial|normal|uniform|dropout|rrelu")


def _traced(op: Op) -> bool:
    """Ops whose calls the tracer records: the ones that return tensors."""
    return op.returns.strip() in ("Tensor", "(Tensor, Tensor)", "Tensor[]")


def _op_var(name: str) -> str:
    return f"k_op_{name}"


def _invoker(op: Op, name: str, cpp: str, inplace: bool) -> str:
    """The boxed form of a call (jit::Invoker), which replays a traced node."""
    lines = [f"tensor_list invoke_{name}(jit::Stack& s) {{"]
    for i, a in enumerate(op.args):
        lines.append(f"  auto& {ident(a.name)} = std::get<{_IVALUE_TYPES[a.type]}>(s[{i}]);")
    call = _call_expr(op, cpp, inplace)
    lines.append(f"  return jit::as_outputs({call});")
    lines.append("}")
    pure = not inplace and not any(a.mutable for a in op.args) and op.family != "optim" \
        and not _RANDOM.search(op.name) and not any(a.name.startswith("running_")
                                                    for a in op.args)
    effect = "jit::Effect::None" if pure else "jit::Effect::Writes"
    lines.append(f'const int {_op_var(name)} = jit::register_op("{name}", &invoke_{name}, '
                 f'{effect});')
    return "\n".join(lines)


def gen_invokers(ops: list[Op]) -> list[str]:
    out = ["namespace {", "using namespace dc::ops;", ""]
    for op in ops:
        if not op.generated or not _traced(op):
            continue
        out.append(_invoker(op, op.binding, op.cpp, False))
        if "inplace" in op.variants:
            out.append(_invoker(op, op.binding + "_", op.cpp + "_", True))
    out += ["}  // namespace", ""]
    return out


def gen_bindings(ops: list[Op]) -> str:
    out = [
        "// Generated by tools/gen_ops.py from csrc/ops/ops.schema. Do not edit.",
        '#include "ops/ops.h"',
        '#include "python/common.h"',
        '#include "jit/graph.h"',
        '#include "dispatch/precision.h"',
        "",
        "namespace dc::py_bind {",
        "",
        *gen_invokers(ops),
        "// Every op row of the schema not marked manual. Method variants are C++ methods of",
        "// Tensor: a Python wrapper around the module function would cost about 0.5 us a call.",
        "void bind_ops(py::module_& m) {",
        "  using namespace dc::ops;",
        '  py::object cls = m.attr("Tensor");',
    ]
    for op in ops:
        if not op.generated:
            continue
        b = op.binding
        out.append(f"  // {op.signature}")
        lam, pa = _lambda(op, b, op.cpp, False, False)
        out.append(f'  m.def("{b}", {lam}{pa});')
        if "method" in op.variants:
            lam, pa = _lambda(op, b, op.cpp, True, False)
            out.append(f'  cls.attr("{b}") = py::cpp_function({lam}, py::name("{b}"), '
                       f"py::is_method(cls){pa});")
        if "inplace" in op.variants:
            lam, pa = _lambda(op, b + "_", op.cpp + "_", False, True)
            out.append(f'  m.def("{b}_", {lam}{pa});')
            lam, pa = _lambda(op, b + "_", op.cpp + "_", True, True)
            out.append(f'  cls.attr("{b}_") = py::cpp_function({lam}, py::name("{b}_"), '
                       f"py::is_method(cls){pa});")
    out += ["}", "", "}  // namespace dc::py_bind", ""]
    return "\n".join(out)


# ---- registry -------------------------------------------------------------------------------

def _cstr(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gen_registry(ops: list[Op]) -> str:
    out = [
        "// Generated by tools/gen_ops.py from csrc/ops/ops.schema. Do not edit.",
        '#include "ops/registry.h"',
        "",
        "namespace dc::ops {",
        "",
        "const std::vector<OpInfo>& op_registry() {",
        "  static const std::vector<OpInfo> table = {",
    ]
    def row(name, sig, variants, binding, op, inplace_of=""):
        grad = "Grad::differentiable" if op.differentiable else "Grad::not_differentiable"
        return (f"      {{{_cstr(name)}, {_cstr(op.family)}, {grad}, true, false, {_cstr(sig)}, "
                f"{_cstr(' '.join(variants))}, {_cstr(binding)}, "
                f"{'true' if op.generated else 'false'}, {'true' if 'nn' in op.flags else 'false'}, "
                f"{_cstr(inplace_of)}}},")

    for op in ops:
        out.append(row(op.name, op.signature, op.variants, op.binding or "", op))
        # An inplace variant is also a row of its own: tests and tools look ops up by name.
        if "inplace" in op.variants:
            sig = op.name + "_" + op.signature[len(op.name):]
            out.append(row(op.name + "_", sig, [v for v in op.variants if v != "inplace"],
                           op.binding + "_", op, op.name))
    out += ["  };", "  return table;", "}", "", "}  // namespace dc::ops", ""]
    return "\n".join(out)


# ---- stubs ----------------------------------------------------------------------------------

_PYI = {"Tensor": "Tensor", "TensorLike": "TensorLike", "LongTensor": "TensorLike",
        "Scalar": "Number", "int": "int", "float": "float", "bool": "bool", "str": "str",
        "ScalarType": "DTypeLike", "Device": "typing.Any", "Generator": "typing.Any",
        "Any": "typing.Any"}


def _pyi_type(t: str) -> str:
    opt = t.endswith("?")
    base = t.rstrip("?")
    if base == "int[]":
        s = "int | typing.Sequence[int]"
    elif base.endswith("?[]"):
        s = f"typing.Sequence[{_PYI[base[:-3]]} | None]"
    elif base.endswith("[]"):
        s = f"typing.Sequence[{_PYI[base[:-2]]}]"
    else:
        s = _PYI[base]
    return f"{s} | None" if opt else s


def _pyi_ret(r: str) -> str:
    r = r.strip()
    if r in ("()", "None"):
        return "None"
    if r.startswith("("):
        return "tuple[" + ", ".join(_pyi_ret(x) for x in _split_top(r[1:-1])) + "]"
    if r.endswith("[]"):
        return f"list[{_pyi_ret(r[:-2])}]"
    return {"Tensor": "Tensor", "ScalarType": "dtype", "bool": "bool", "int": "int",
            "float": "float", "Any": "typing.Any"}.get(r, "typing.Any")


def _pyi_args(args: list[Arg], self_arg: bool) -> str:
    out, kw = (["self"] if self_arg else []), False
    for a in args:
        if a.kw_only and not kw:
            out.append("*")
            kw = True
        s = f"{a.name}: {_pyi_type(a.type)}"
        if a.default is not None:
            s += " = " + ("..." if a.default not in ("None", "True", "False") and
                          not re.fullmatch(r"-?[\d.]+(e-?\d+)?|\"[^\"]*\"", a.default)
                          else a.default)
        out.append(s)
    return ", ".join(out)


def gen_pyi(ops: list[Op], base: str) -> str:
    funcs, methods = [], []
    for op in sorted(ops, key=lambda o: o.binding or o.name):
        doc = f'    """{op.signature}"""'
        if op.binding:
            funcs += [f"def {op.binding}({_pyi_args(op.args, False)}) -> {_pyi_ret(op.returns)}:",
                      doc]
            if "inplace" in op.variants:
                funcs += [f"def {op.binding}_({_pyi_args(op.args, False)}) -> "
                          f"{_pyi_ret(op.returns)}:", doc]
        if "method" in op.variants:
            methods += [f"    def {op.name}({_pyi_args(op.args[1:], True)}) -> "
                        f"{_pyi_ret(op.returns)}:", "    " + doc]
        if "inplace" in op.variants:
            methods += [f"    def {op.name}_({_pyi_args(op.args[1:], True)}) -> "
                        f"{_pyi_ret(op.returns)}:", "    " + doc]
    text = base.replace("    # @generated-methods\n", "\n".join(methods) + "\n")
    text = text.replace("# @generated-functions\n", "\n".join(funcs) + "\n")
    header = ("# Generated by tools/gen_ops.py from csrc/ops/ops.schema and "
              "tools/stubs/_C_base.pyi.\n# Do not edit: run scripts/gen_stubs.sh.\n")
    return header + text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--schema", type=Path, default=SCHEMA)
    p.add_argument("--bindings", type=Path, help="write the pybind11 bindings here")
    p.add_argument("--registry", type=Path, help="write the registry table here")
    p.add_argument("--pyi", type=Path, help="write the _C stub here")
    args = p.parse_args(argv)
    try:
        ops = load(args.schema)
        outputs = []
        if args.bindings:
            outputs.append((args.bindings, gen_bindings(ops)))
        if args.registry:
            outputs.append((args.registry, gen_registry(ops)))
        if args.pyi:
            outputs.append((args.pyi, gen_pyi(ops, STUB_BASE.read_text())))
    except SchemaError as e:
        print(f"gen_ops.py: {e}", file=sys.stderr)
        return 1
    for path, text in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unchanged outputs keep their timestamps, so nothing recompiles for a comment edit.
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
