#!/usr/bin/env python3
"""Print the accuracy table of README.md: each op's max error in float32 ulp, measured as
tests/test_ulp.py measures it (tests/ulp_cases.py, Note [Measuring error in ulp]) on ten times
the samples, with torch float32's max on the same inputs for comparison.

    PYTHONPATH=build/dev/site python scripts/ulp_table.py                 # every op, ~2M each
    PYTHONPATH=build/dev/site python scripts/ulp_table.py --ops exp,gelu,pow --samples 500000
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import numpy as np  # noqa: E402

import deepcore as dc  # noqa: E402
from ulp_cases import CASES, CASES_BY_NAME, measure  # noqa: E402


def _fmt_ulp(v: float) -> str:
    if v == np.inf:
        return "inf"
    return f"{v:.3f}" if v < 10 else f"{v:.3g}"


def _fmt_input(xs: tuple) -> str:
    return ", ".join(f"{np.float32(v)!s}" for v in xs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", help="comma-separated case names (default: all); "
                    f"one of {', '.join(c.name for c in CASES)}")
    ap.add_argument("--samples", type=int, default=2_000_000, help="per op (default 2M)")
    ap.add_argument("--isa", choices=["avx512", "avx2", "generic"],
                    help="run deepcore's CPU kernels with this instruction set")
    ap.add_argument("--no-torch", action="store_true", help="leave out the torch column")
    args = ap.parse_args(argv)

    if args.isa:
        dc._C._set_isa(args.isa)
    names = args.ops.split(",") if args.ops else [c.name for c in CASES]
    unknown = [n for n in names if n not in CASES_BY_NAME]
    if unknown:
        ap.error(f"unknown ops: {', '.join(unknown)}")

    head = ["op", "max ulp", "target", "worst input", "samples"]
    if not args.no_torch:
        head.append("torch float32")
    rows, failing = [], []
    t0 = time.time()
    for name in names:
        case = CASES_BY_NAME[name]
        label = (name if not case.note else f"{name} ({case.note})").replace("|", "\\|")
        if case.missing():
            rows.append([label, "not built", f"{case.target:g}", "", ""]
                        + ([] if args.no_torch else [""]))
            continue
        xs = case.inputs(args.samples)
        r = measure(case, xs)
        over = r.max_ulp > case.target
        if over:
            failing.append(name)
        row = [label, ("**" + _fmt_ulp(r.max_ulp) + "**") if over else _fmt_ulp(r.max_ulp),
               f"{case.target:g}", _fmt_input(r.worst_input), f"{r.samples:,}"]
        if not args.no_torch:
            row.append(_fmt_ulp(measure(case, xs, run=case.run_torch).max_ulp))
        rows.append(row)
        print(f"  {name}: {_fmt_ulp(r.max_ulp)} ulp ({time.time() - t0:.0f} s)", file=sys.stderr)

    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i in (0, 3) else "--:" for i in range(len(head))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nfloat32, {dc._C._active_isa()} kernels; max ulp in bold is over its target.",
          file=sys.stderr)
    if failing:
        print(f"over target: {', '.join(failing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
