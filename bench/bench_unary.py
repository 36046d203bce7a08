"""Unary ops and activations, deepcore vs PyTorch in one run, forward and backward.

    python bench/bench_unary.py                     # every row, the installed deepcore
    python bench/bench_unary.py --quick             # a smaller time budget per row
    python bench/bench_unary.py --only 'gelu|exp'   # rows whose key matches a regex
    PYTHONPATH=build/dev/site python bench/bench_unary.py --json unary.json

The op list is the op registry (`deepcore._C._op_registry()`), not a list kept here: every
row of the unary family, and every single-input elementwise op, whose signature is one tensor
plus parameters that have defaults (or that PARAMS below supplies), and the binary
transcendental ops of BINARY with two tensor inputs. The torch counterpart is looked up by
name in torch, torch.nn.functional, torch.special, in that order. Ops without one, or that are
not elementwise (a `dim` parameter), are listed on a "skipped:" line.

Rows: forward at 4M and 1K float32 elements, backward at 4M (the time of
`autograd.grad(y, x, g, retain_graph=True)` on one graph built beforehand, so only the
backward pass is timed), forward in float64 for the ops training uses, transposed (2048x2048
`.t()`) and permuted (`(64, 256, 256).permute(2, 0, 1)`) inputs for add, mul, exp and gelu,
and `randn` of 1M elements.

Targets (deepcore time / torch time, lower is better for deepcore): 1.0x for every row, 0.8x
for the forward of transcendental ops (TRANSCENDENTAL) at 4M elements. Each ratio is the
median over alternating deepcore/torch samples of the per-pair ratio, so a slow spell of a
shared machine hits both sides of a pair alike; the times are the medians of each side. Both
libraries run with the same thread count. Before timing, each row checks once that deepcore's
output (or gradient) matches torch's on the same input; a row that does not is marked in the
`check` column, since a fast wrong kernel must not look good.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import re
import statistics
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

N_LARGE = 4 * 1024 * 1024
N_SMALL = 1024

# Input domains, so that no row measures NaN handling: uniform(lo, hi), (-3, 3) by default.
# For a binary op, one domain per input.
DOMAINS: dict[tuple[float, float], str] = {
    (0.05, 4.0): "log log2 log10 log1p sqrt rsqrt lgamma digamma polygamma",
    (-0.95, 0.95): "asin acos atanh erfinv",
    (1.05, 4.0): "acosh",
    (0.05, 0.95): "logit",
    (-1.4, 1.4): "tan",  # away from the poles at +-pi/2
}
DEFAULT_DOMAIN = (-3.0, 3.0)
BINARY_DOMAINS = {"pow": ((0.05, 4.0), (-3.0, 3.0)), "xlogy": ((-3.0, 3.0), (0.05, 4.0))}

# Binary ops timed with two tensor inputs (when the registry has them).
BINARY = {"atan2", "hypot", "logaddexp", "xlogy", "copysign", "nextafter", "pow"}
# Parameters for extra rows, or required ones the registry's defaults do not give: one row
# per entry; {} is the default call. Scalar second operands of binary ops in SCALAR_OTHER.
PARAMS: dict[str, list[dict[str, Any]]] = {
    "gelu": [{}, {"approximate": "tanh"}],
    "softplus": [{}, {"beta": 2.0}],
    "clamp": [{"min": -1.0, "max": 1.0}],
    "clamp_min": [{"min": -1.0}],
    "clamp_max": [{"max": 1.0}],
    "threshold": [{"threshold": 0.5, "value": 0.0}],
    "polygamma": [{"n": 1}],
}
SCALAR_OTHER = {"pow": (2.5, 2)}
TRANSCENDENTAL = {
    "exp", "expm1", "exp2", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "asin", "acos",
    "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sigmoid", "silu", "erf", "erfc",
    "erfinv", "mish", "gelu", "softplus", "elu", "celu", "selu", "logsigmoid", "tanhshrink",
    "lgamma", "digamma", "polygamma", "i0", "sinc", "logit", "pow", "atan2", "logaddexp", "xlogy"}
FLOAT64_OPS = ("exp", "log", "tanh", "sigmoid", "gelu", "softplus", "erf")
NOISY = 0.25
TOL = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-12)}


def domain_of(name: str, i: int = 0) -> tuple[float, float]:
    if name in BINARY_DOMAINS:
        return BINARY_DOMAINS[name][i]
    for dom, names in DOMAINS.items():
        if name in names.split():
            return dom
    return DEFAULT_DOMAIN


# ---- the op list, from the registry ---------------------------------------------------------

@dataclass
class Param:
    type: str
    name: str
    has_default: bool


def parse_signature(sig: str) -> tuple[list[Param], str]:
    """'gelu(Tensor input, str approximate="none") -> Tensor' -> parameters, return type."""
    args, ret = sig.split("(", 1)[1].rsplit(") -> ", 1)
    params = []
    for p in (s.strip() for s in args.split(",")):
        if p in ("", "*"):
            continue
        decl, _, _ = p.partition("=")
        typ, name = decl.split()
        params.append(Param(typ, name, "=" in p))
    return params, ret.strip()


@dataclass
class Op:
    name: str
    dc_fn: Callable
    torch_fn: Callable
    params: list[Param]
    inputs: list[str]  # names of the tensor parameters fed with inputs
    differentiable: bool


def _resolve_dc(row: dict) -> Callable | None:
    mod = importlib.import_module(row["module"])
    fn = getattr(mod, row["name"], None)
    if fn is None and "method" in row["variants"]:
        name = row["name"]
        return lambda x, *a, **k: getattr(x, name)(*a, **k)
    return fn


def collect_ops(dc, torch) -> tuple[list[Op], list[str]]:
    F = importlib.import_module("torch.nn.functional")
    special = importlib.import_module("torch.special")
    ops, skipped, inplace = [], [], []
    for row in dc._C._op_registry():
        name, family = row["name"], row["family"]
        if family not in ("unary", "activation", "elementwise"):
            continue
        if row["inplace_of"] or name.endswith("_"):
            inplace.append(name)
            continue
        params, ret = parse_signature(row["signature"])
        supplied = {k for kw in PARAMS.get(name, [{}]) for k in kw}
        inputs = [p.name for p in params if p.type.rstrip("?").startswith("Tensor")
                  and not p.has_default and p.name not in supplied]
        if family == "elementwise" and not (len(inputs) == 1 or name in BINARY):
            continue  # binary arithmetic, comparisons: not this benchmark's subject
        torch_fn = next((getattr(m, name) for m in (torch, F, special)
                         if hasattr(m, name)), None)
        missing = [p.name for p in params if not p.has_default and p.name not in inputs
                   and p.name not in supplied]
        if ret != "Tensor":
            skipped.append(f"{name} (returns {ret})")
        elif any(p.name == "dim" for p in params):
            skipped.append(f"{name} (not elementwise: has a dim parameter)")
        elif len(inputs) != 1 and not (len(inputs) == 2 and name in BINARY):
            skipped.append(f"{name} ({len(inputs)} tensor inputs: {', '.join(inputs)})")
        elif missing:
            skipped.append(f"{name} (required parameters not in PARAMS: {', '.join(missing)})")
        elif torch_fn is None:
            skipped.append(f"{name} (no torch counterpart)")
        elif (dc_fn := _resolve_dc(row)) is None:
            skipped.append(f"{name} (not bound in {row['module']})")
        else:
            ops.append(Op(name, dc_fn, torch_fn, params, inputs, row["differentiable"]))
    if inplace:
        skipped.append(f"{len(inplace)} in-place variants (the kernels of their out-of-place ops)")
    return ops, skipped


def call_args(op: Op, tensors: list, kw: dict) -> tuple[list, dict]:
    """Positional arguments in signature order up to the last input (polygamma(n, input)
    takes its parameter first); the remaining parameters as keywords."""
    kw, args, it = dict(kw), [], iter(tensors)
    last = max(i for i, p in enumerate(op.params) if p.name in op.inputs)
    for p in op.params[:last + 1]:
        args.append(next(it) if p.name in op.inputs else kw.pop(p.name))
    return args, kw


# ---- rows -------------------------------------------------------------------------------------

@dataclass
class Case:
    key: str  # what --only matches: "case size dtype direction"
    case: str
    size: str
    dtype: str
    direction: str
    target: float
    build: Callable  # () -> (deepcore fn, torch fn, check fn returning None or a message)
    result: dict = field(default_factory=dict)


class Inputs:
    """Inputs per (domain, shape, dtype, seed), made once with NumPy and copied into each
    library's own allocator, so both see the same values, in storage each aligns its own way."""

    def __init__(self, dc, torch):
        self.dc, self.torch, self.cache = dc, torch, {}

    def get(self, dom, shape, dtype="float32", seed=0):
        key = (dom, shape, dtype, seed)
        if key not in self.cache:
            rng = np.random.default_rng(zlib.crc32(repr(key).encode()))
            a = rng.uniform(dom[0], dom[1], shape).astype(dtype)
            # No input exactly on a kink (0, +-0.5, +-1, +-3, 6: relu, hardtanh, hardswish,
            # ...), where the two libraries may pick different subgradients.
            a = np.where(a * 2 == np.round(a * 2), np.nextafter(a, np.inf, dtype=a.dtype), a)
            self.cache[key] = (self.dc.from_numpy(a).clone(), self.torch.from_numpy(a).clone())
        return self.cache[key]


def to_numpy(t) -> np.ndarray:
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def compare(d, t, dtype: str) -> str | None:
    d, t = to_numpy(d), to_numpy(t)
    if d.shape != t.shape:
        return f"shape {d.shape} vs {t.shape}"
    if d.dtype != t.dtype:
        return f"dtype {d.dtype} vs {t.dtype}"
    if d.dtype.kind in "biu":
        return None if np.array_equal(d, t) else "values differ"
    rtol, atol = TOL.get(dtype, TOL["float32"])
    close = np.isclose(d, t, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    i = np.flatnonzero(~close.ravel())[0]
    return f"{(~close).sum()} differ, e.g. {d.ravel()[i]:.6g} vs {t.ravel()[i]:.6g}"


def forward_case(op, label, kw, scalar, inputs, n, dtype, target):
    def build():
        shape = (n,)
        pairs = [inputs.get(domain_of(op.name, i), shape, dtype, seed=i)
                 for i in range(len(op.inputs) if scalar is None else 1)]
        dargs, dkw = call_args(op, [p[0] for p in pairs] + ([scalar] if scalar is not None
                                                            else []), kw)
        targs, tkw = call_args(op, [p[1] for p in pairs] + ([scalar] if scalar is not None
                                                            else []), kw)

        def dfn():
            return op.dc_fn(*dargs, **dkw)

        def tfn():
            return op.torch_fn(*targs, **tkw)
        return dfn, tfn, lambda: compare(dfn(), tfn(), dtype)
    return Case("", label, size_label(n), dtype, "fwd", target, build)


def backward_case(op, label, kw, scalar, inputs, dc, torch, target):
    def build():
        shape, n_in = (N_LARGE,), len(op.inputs) if scalar is None else 1
        pairs = [inputs.get(domain_of(op.name, i), shape, "float32", seed=i)
                 for i in range(n_in)]
        gd, gt = inputs.get((-1.0, 1.0), shape, "float32", seed=99)
        sides = []
        for lib, side, g in ((dc, 0, gd), (torch, 1, gt)):
            xs = [p[side].detach().requires_grad_() for p in pairs]
            fn = op.dc_fn if side == 0 else op.torch_fn
            args, akw = call_args(op, xs + ([scalar] if scalar is not None else []), kw)
            y = fn(*args, **akw)
            grad = lib.autograd.grad

            def run(y=y, xs=xs, g=g, grad=grad):
                return grad(y, xs, g, retain_graph=True)
            sides.append(run)

        def check():
            errs = [compare(a, b, "float32") for a, b in zip(sides[0](), sides[1]())]
            return next((e for e in errs if e), None)
        return sides[0], sides[1], check
    return Case("", label, size_label(N_LARGE), "float32", "bwd", target, build)


def size_label(n: int) -> str:
    return f"{n >> 20}M" if n >= 1 << 20 else f"{n >> 10}K"


def op_cases(ops, inputs, dc, torch) -> list[Case]:
    cases = []
    for op in ops:
        variants = [(kw, None) for kw in PARAMS.get(op.name, [{}])]
        if len(op.inputs) == 2:
            variants += [({}, s) for s in SCALAR_OTHER.get(op.name, ())]
        for kw, scalar in variants:
            if len(op.inputs) == 2:
                label = f"{op.name}(x, {scalar if scalar is not None else 'y'})"
            else:
                label = op.name + (f"({', '.join(f'{k}={v!r}' for k, v in kw.items())})"
                                   if kw else "")
            # pow(x, 2) is a multiply, not a transcendental function
            trans = 0.8 if op.name in TRANSCENDENTAL and not isinstance(scalar, int) else 1.0
            cases.append(forward_case(op, label, kw, scalar, inputs, N_LARGE, "float32", trans))
            cases.append(forward_case(op, label, kw, scalar, inputs, N_SMALL, "float32", 1.0))
            if op.differentiable:
                cases.append(backward_case(op, label, kw, scalar, inputs, dc, torch, 1.0))
            if op.name in FLOAT64_OPS and not kw:
                cases.append(forward_case(op, label, kw, scalar, inputs, N_LARGE, "float64",
                                          trans))
    return cases


def layout_cases(ops, inputs, dc, torch) -> list[Case]:
    """Transposed and permuted inputs, and randn."""
    by_name = {op.name: op for op in ops}
    cases = []

    def case(label, size, dfn_of, tfn_of, tensors, target=1.0):
        def build():
            d = [v[0] for v in tensors()]
            t = [v[1] for v in tensors()]
            return (lambda: dfn_of(*d)), (lambda: tfn_of(*t)), \
                lambda: compare(dfn_of(*d), tfn_of(*t), "float32")
        cases.append(Case("", label, size, "float32", "fwd", target, build))

    sq = (2048, 2048)
    two = lambda: [inputs.get(DEFAULT_DOMAIN, sq, seed=0), inputs.get(DEFAULT_DOMAIN, sq, seed=1)]
    case("add(A.t(), 1)", "2048x2048", lambda a, b: a.t() + 1, lambda a, b: a.t() + 1, two)
    case("add(A.t(), B.t())", "2048x2048", lambda a, b: a.t() + b.t(),
         lambda a, b: a.t() + b.t(), two)
    case("add(A.t(), B)", "2048x2048", lambda a, b: a.t() + b, lambda a, b: a.t() + b, two)
    case("mul(A.t(), B.t())", "2048x2048", lambda a, b: a.t() * b.t(),
         lambda a, b: a.t() * b.t(), two)
    for name in ("exp", "gelu"):
        if name in by_name:
            op = by_name[name]
            case(f"{name}(A.t())", "2048x2048", lambda a, b, op=op: op.dc_fn(a.t()),
                 lambda a, b, op=op: op.torch_fn(a.t()), two)
    cube = lambda: [inputs.get(DEFAULT_DOMAIN, (64, 256, 256), seed=0)]
    case("add(P, 1), P = (64,256,256).permute(2,0,1)", "4M",
         lambda p: p.permute(2, 0, 1) + 1, lambda p: p.permute(2, 0, 1) + 1, cube)
    if "exp" in by_name:
        op = by_name["exp"]
        case("exp(P), P = (64,256,256).permute(2,0,1)", "4M",
             lambda p: op.dc_fn(p.permute(2, 0, 1)), lambda p: op.torch_fn(p.permute(2, 0, 1)),
             cube)

    def randn_build():
        def check():
            a = to_numpy(dc.randn(1 << 20)).astype(np.float64)
            if a.dtype != np.float64 or abs(a.mean()) > 0.01 or abs(a.std() - 1) > 0.01:
                return f"mean {a.mean():.4f}, std {a.std():.4f}"
            return None
        return (lambda: dc.randn(1 << 20)), (lambda: torch.randn(1 << 20)), check
    cases.append(Case("", "randn", "1M", "float32", "fwd", 1.0, randn_build))
    return cases


# ---- timing -----------------------------------------------------------------------------------

def _per_call(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def paired(dfn, tfn, budget: float, repeats: int, settle: float) -> dict[str, float]:
    """Median deepcore and torch seconds per call, the median per-pair ratio, and its spread
    (interquartile range over the median).

    Each sample is a batch of calls sized to take about budget / (2 repeats); the two sides
    alternate sample by sample, the order flipping each pair. Before a batch of calls of
    100 us or more (large enough to run on several threads) it sleeps `settle` seconds, so
    the other library's OpenMP workers, which spin for a while after a parallel region, do
    not take a core from it."""
    per_sample = budget / (2 * repeats)
    counts = []
    for fn in (dfn, tfn):
        # Calls per sample from the fastest of a few single calls (the row's check has
        # warmed both up): on a loaded machine any one call may include a preemption, and a
        # count made from it would leave a sample of one call, all noise.
        ts = [_per_call(fn, 1)]
        while len(ts) < 5 and sum(ts) < per_sample:
            ts.append(_per_call(fn, 1))
        counts.append((max(1, round(per_sample / min(ts))), settle if min(ts) >= 1e-4 else 0))
    td, tt, ratios = [], [], []
    for i in range(repeats):
        order = ((0, dfn), (1, tfn)) if i % 2 == 0 else ((1, tfn), (0, dfn))
        got = [0.0, 0.0]
        for side, fn in order:
            n, pause = counts[side]
            time.sleep(pause)
            got[side] = _per_call(fn, n)
        td.append(got[0])
        tt.append(got[1])
        ratios.append(got[0] / got[1])
    q1, med, q3 = statistics.quantiles(ratios, n=4)
    return {"deepcore_s": statistics.median(td), "torch_s": statistics.median(tt),
            "ratio": statistics.median(ratios), "spread": (q3 - q1) / med}


def fmt_ms(s: float) -> str:
    ms = s * 1e3
    return f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}" if ms >= 1 else f"{ms:.3f}" \
        if ms >= 0.01 else f"{ms:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller time budget per row")
    parser.add_argument("--only", metavar="REGEX",
                        help="rows whose 'case size dtype direction' matches, e.g. 'gelu.*bwd'")
    parser.add_argument("--threads", type=int, default=2, help="threads for both libraries")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args()

    import deepcore as dc
    import torch
    dc.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    budget, repeats, settle = (0.05, 5, 0.002) if args.quick else (0.4, 9, 0.003)

    ops, skipped = collect_ops(dc, torch)
    inputs = Inputs(dc, torch)
    cases = op_cases(ops, inputs, dc, torch)
    cases += layout_cases(ops, inputs, dc, torch)
    for c in cases:
        c.key = f"{c.case} {c.size} {c.dtype} {c.direction}"
    if args.only:
        cases = [c for c in cases if re.search(args.only, c.key)]

    print(f"deepcore {dc.__version__} (kernels: {dc._C._active_isa()}) vs torch "
          f"{torch.__version__}, {args.threads} threads each, {len(ops)} ops from the registry, "
          f"{len(cases)} rows{' (--quick)' if args.quick else ''}\n", flush=True)
    t_start, errors, progress = time.perf_counter(), [], sys.stderr.isatty()
    for i, c in enumerate(cases):
        if progress:
            print(f"\r[{i + 1}/{len(cases)}] {c.key:<70}", end="", file=sys.stderr, flush=True)
        try:
            dfn, tfn, check = c.build()
            problem = check()
            timing = paired(dfn, tfn, budget, repeats, settle)
        except Exception as e:  # noqa: BLE001 - one op that fails must not end the run
            errors.append(f"{c.key}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
            continue
        c.result = {**timing, "meets_target": timing["ratio"] <= c.target,
                    "check": problem or "ok"}
    if progress:
        print(f"\r{'':<90}\r", end="", file=sys.stderr)

    done = sorted((c for c in cases if c.result), key=lambda c: -c.result["ratio"])
    print("| case | size | dtype | dir | deepcore ms | torch ms | ratio | target | mark | check |")
    print("|---|---|---|---|---:|---:|---:|---:|---|---|")
    for c in done:
        r = c.result
        mark = ", ".join(m for m, on in (("MISS", not r["meets_target"]),
                                         ("noisy", r["spread"] > NOISY)) if on)
        print(f"| {c.case} | {c.size} | {c.dtype} | {c.direction} | {fmt_ms(r['deepcore_s'])} | "
              f"{fmt_ms(r['torch_s'])} | {r['ratio']:.2f}x | {c.target:.1f}x | "
              f"{mark} | "
              f"{'ok' if r['check'] == 'ok' else 'DIFFERS: ' + r['check']} |")
    met = sum(c.result["meets_target"] for c in done)
    wrong = sum(c.result["check"] != "ok" for c in done)
    noisy = sum(c.result["spread"] > NOISY for c in done)
    gmean = math.exp(statistics.fmean(math.log(c.result["ratio"]) for c in done)) if done else 0
    print(f"\n{met} of {len(done)} rows meet their target; geometric mean ratio {gmean:.2f}x; "
          f"{wrong} rows with outputs that differ from torch; {noisy} noisy rows "
          f"(interquartile range of the pair ratios over {NOISY:.0%} of the median); "
          f"{time.perf_counter() - t_start:.0f} s")
    if errors:
        print("errors: " + "; ".join(errors))
    if skipped:
        print("skipped: " + "; ".join(skipped))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"deepcore": dc.__version__, "torch": torch.__version__,
                       "threads": args.threads, "quick": args.quick,
                       "rows": [{"case": c.case, "size": c.size, "dtype": c.dtype,
                                 "direction": c.direction, "target": c.target, **c.result}
                                for c in done],
                       "errors": errors, "skipped": skipped}, f, indent=1)


if __name__ == "__main__":
    main()
