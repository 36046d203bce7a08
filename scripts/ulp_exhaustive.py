#!/usr/bin/env python3
"""Every float32 input of a unary op: the max error in ulp over all 2^32 bit patterns, measured
as tests/test_ulp.py measures it (tests/ulp_cases.py, Note [Measuring error in ulp]), and the
inputs whose NaN / inf / signed-zero result differs from torch float32's (with the allowances
of ulp_cases.special_mismatch). Hours per op; never run by CI.

The bit patterns go in chunks of 2^chunk_bits (default 2^24: 256 chunks); --start/--stop pick a
chunk range, so a run can be split or resumed. Chunks 0..127 hold +0 to +inf and the positive
NaNs, 128..255 the negative side.

    PYTHONPATH=build/dev/site python scripts/ulp_exhaustive.py --ops exp,log
    PYTHONPATH=build/dev/site python scripts/ulp_exhaustive.py --ops tanh --start 60 --stop 64
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import deepcore as dc  # noqa: E402
from ulp_cases import CASES, CASES_BY_NAME, special_mismatch, ulp_error  # noqa: E402


class Tally:
    """The running result of one op over the chunks seen so far."""

    def __init__(self, case):
        self.case = case
        self.max_ulp, self.worst, self.got, self.ref = 0.0, np.float32(0), 0.0, 0.0
        self.measured = 0
        self.over = 0  # inputs over the target
        self.class_diffs, self.class_example = 0, None

    def add(self, x: np.ndarray, torch64: bool, check_torch: bool) -> None:
        case = self.case
        got = case.run_dc(x)
        with np.errstate(all="ignore"):
            if torch64:  # faster where scipy is slow; torch float64 is itself ~1 ulp (of float64)
                ref = case.torch_fn(torch.from_numpy(x.astype(np.float64))).numpy()
            else:
                ref = case.run_ref(x)
        inside = np.isfinite(x)
        dom = np.zeros(x.shape, bool)
        for lo, hi in case.natural:
            dom |= (x >= lo) & (x <= hi)
        m = inside & dom
        err = ulp_error(got[m], ref[m])
        self.measured += int(m.sum())
        if err.size:
            self.over += int((err > case.target).sum())
            i = int(np.argmax(err))
            if err[i] > self.max_ulp:
                self.max_ulp, self.worst = float(err[i]), x[m][i]
                self.got, self.ref = float(got[m][i]), float(ref[m][i])
        if check_torch:
            want = case.run_torch(x)
            bad = np.flatnonzero(special_mismatch(got, want, ref, case.target))
            self.class_diffs += len(bad)
            if len(bad) and self.class_example is None:
                i = bad[0]
                self.class_example = (x[i], got[i], want[i])


def chunk(c: int, bits: int) -> np.ndarray:
    lo = np.uint64(c) << np.uint64(bits)
    return (np.arange(1 << bits, dtype=np.uint64) + lo).astype(np.uint32).view(np.float32)


def main(argv=None) -> int:
    unary = [c.name for c in CASES if c.arity == 1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", required=True,
                    help=f"comma-separated unary case names: {', '.join(unary)}")
    ap.add_argument("--chunk-bits", type=int, default=24, help="2^bits inputs per chunk")
    ap.add_argument("--start", type=int, default=0, help="first chunk (default 0)")
    ap.add_argument("--stop", type=int, help="one past the last chunk (default: all)")
    ap.add_argument("--torch-ref", action="store_true",
                    help="use torch float64 as the reference (faster for the gamma family; "
                         "not for gelu, whose float64 tail in torch cancels)")
    ap.add_argument("--no-torch", action="store_true",
                    help="skip the special-value comparison with torch float32")
    ap.add_argument("--isa", choices=["avx512", "avx2", "generic"])
    args = ap.parse_args(argv)

    if args.isa:
        dc._C._set_isa(args.isa)
    names = args.ops.split(",")
    bad = [n for n in names if n not in unary]
    if bad:
        ap.error(f"not a unary case: {', '.join(bad)}")
    missing = [n for n in names if CASES_BY_NAME[n].missing()]
    if missing:
        ap.error(f"op not built: {', '.join(missing)}")
    if not 8 <= args.chunk_bits <= 28:
        ap.error("--chunk-bits must be in 8..28")
    n_chunks = 1 << (32 - args.chunk_bits)
    stop = n_chunks if args.stop is None else min(args.stop, n_chunks)
    if not 0 <= args.start < stop:
        ap.error(f"empty chunk range {args.start}..{stop} (of {n_chunks})")

    tallies = {n: Tally(CASES_BY_NAME[n]) for n in names}
    t0 = time.time()
    for k, c in enumerate(range(args.start, stop)):
        x = chunk(c, args.chunk_bits)
        for t in tallies.values():
            t.add(x, args.torch_ref, not args.no_torch)
        el = time.time() - t0
        eta = el / (k + 1) * (stop - c - 1)
        status = "  ".join(f"{n} {t.max_ulp:.3g}" for n, t in tallies.items())
        print(f"chunk {c}/{n_chunks} [{float(x[0])!r} .. {float(x[-1])!r}]  max ulp: {status}  "
              f"({el:.0f} s, {eta:.0f} s left)", file=sys.stderr, flush=True)

    print(f"chunks {args.start}..{stop - 1} of {n_chunks} ({dc._C._active_isa()} kernels)")
    print("| op | max ulp | target | worst input | got | ref | inputs | over target "
          "| special values unlike torch |")
    print("|---|--:|--:|---|--:|--:|--:|--:|---|")
    for n, t in tallies.items():
        bits = f"{np.float32(t.worst).view(np.uint32):#010x}"
        ex = "" if t.class_example is None else \
            " (e.g. x = {!r}: {!r}, torch {!r})".format(*map(float, t.class_example))
        print(f"| {n} | {t.max_ulp:.3g} | {t.case.target:g} | {float(t.worst)!r} ({bits}) "
              f"| {t.got!r} | {t.ref!r} | {t.measured:,} | {t.over:,} "
              f"| {'-' if args.no_torch else t.class_diffs}{ex} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
