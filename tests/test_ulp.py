"""Accuracy in ulp: every float32 math op and activation against a float64 reference, its
special values (NaN, +-inf, +-0, denormals, overflow and underflow edges, branch points)
against torch float32, and the float64 kernels of the common ops against torch float64.

The cases, the ulp measure and the sampling are in ulp_cases.py (Note [Measuring error in
ulp], Note [Sampling the float32 line]); scripts/ulp_table.py prints the README table from the
same cases with ten times the samples, scripts/ulp_exhaustive.py tries all 2^32 inputs.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepcore as dc
import deepcore.nn.functional as F
from ulp_cases import (CASES, CLASS_NAMES, F32_MAX, UlpCase, describe, measure, neighbours,
                       special_class, special_mismatch, ulp_error, walk, walk_intervals)

SAMPLES = 200_000  # per op over its domain, and as many again in its core


def _require(case: UlpCase) -> None:
    reason = case.missing()
    assert not reason, reason


def _args(xs) -> str:
    return "(" + ", ".join(repr(float(x)) for x in xs) + ")"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_max_ulp(case):
    _require(case)
    r = measure(case, case.inputs(SAMPLES))
    if r.max_ulp <= case.target:
        return
    at = tuple(np.array([v], np.float32) for v in r.worst_input)
    t = case.run_torch(*at)
    t_ulp = ulp_error(t, case.run_ref(*at))[0]
    pytest.fail(f"{describe(r)}; torch float32 gives {float(t[0])!r} ({t_ulp:.3g} ulp) there")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_special_values(case):
    """NaN, +-inf and +-0 (with the sign of zero) where torch float32 has them, with the
    allowances of `special_mismatch` where torch is itself a rounding away from the exact
    result."""
    _require(case)
    xs = case.specials()
    got, want, ref = case.run_dc(*xs), case.run_torch(*xs), case.run_ref(*xs)
    bad = np.flatnonzero(special_mismatch(got, want, ref, case.target))
    cg, ct = special_class(got), special_class(want)
    lines = [f"  x = {_args(x[i] for x in xs)}: deepcore {float(got[i])!r} "
             f"({CLASS_NAMES[cg[i]]}), torch {float(want[i])!r} ({CLASS_NAMES[ct[i]]}), "
             f"exact {float(ref[i])!r}" for i in bad[:12]]
    assert not len(bad), (f"{case.name}: {len(bad)} of {len(cg)} special inputs differ from "
                          "torch float32:\n" + "\n".join(lines))


def _to_float(v) -> float:
    try:
        return float(v)
    except OverflowError:  # an mpf past float64's range
        return math.copysign(math.inf, float(v > 0) - 0.5)


def _negzero(x):
    return (x == 0) & np.signbit(x)  # mpmath has no -0: the special-value test covers it


def _reference_points(case: UlpCase) -> tuple:
    if case.arity == 2:
        a, b = case.sample(48)
        pairs = np.array(case.special_pairs, np.float32).reshape(-1, 2)
        xs = (np.concatenate([a, pairs[:, 0]]), np.concatenate([b, pairs[:, 1]]))
        keep = np.isfinite(xs[0]) & np.isfinite(xs[1]) & ~_negzero(xs[0]) & ~_negzero(xs[1])
        return tuple(x[keep] for x in xs)
    x = np.concatenate([walk_intervals(case.domain, 48), neighbours(case.edges, 1)])
    inside = np.zeros(x.shape, bool)
    for lo, hi in case.domain:
        inside |= (x >= lo) & (x <= hi)
    return (x[inside & np.isfinite(x) & ~_negzero(x)],)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reference_against_mpmath(case):
    """The float64 references are themselves within 1/1000 ulp of a 256-bit evaluation (they
    avoid the cancellations a float64 formula would bring: gelu's 1 + erf(x), sinc's pi*x)."""
    import mpmath
    xs = _reference_points(case)
    exact = np.full(len(xs[0]), np.nan)
    with mpmath.workprec(256):
        for i, args in enumerate(zip(*xs)):
            try:
                exact[i] = _to_float(case.mp(*[mpmath.mpf(float(a)) for a in args]))
            except (ZeroDivisionError, ValueError, TypeError):
                exact[i] = np.nan  # a pole or a complex result: judged by the special values
    ok = ~np.isnan(exact)
    err = ulp_error(case.run_ref(*xs)[ok], exact[ok])
    i = int(np.argmax(err))
    assert err[i] <= 1e-3, (f"{case.name}: reference off by {err[i]:.3g} ulp at "
                            f"{_args(x[ok][i] for x in xs)}: float64 "
                            f"{case.run_ref(*xs)[ok][i]!r}, mpmath {exact[ok][i]!r}")


# ---- float64 ---------------------------------------------------------------------------------

def _mp_gelu(x):
    import mpmath
    if abs(x) > 64:  # x, or below 1e-890 (mpmath's erfc overflows for |x| past ~1e154)
        return x if x > 0 else mpmath.mpf(0)
    return x / 2 * mpmath.erfc(-x / mpmath.sqrt(2))


F64_MAX = float(np.finfo(np.float64).max)
# name: (deepcore, torch float64 or None, mpmath reference or None, domain)
FLOAT64 = {
    "exp": (dc.exp, torch.exp, None, (-F64_MAX, F64_MAX)),
    "expm1": (dc.expm1, torch.expm1, None, (-F64_MAX, F64_MAX)),
    "log": (dc.log, torch.log, None, (0.0, F64_MAX)),
    "log1p": (dc.log1p, torch.log1p, None, (-1.0, F64_MAX)),
    "tanh": (dc.tanh, torch.tanh, None, (-F64_MAX, F64_MAX)),
    "sigmoid": (dc.sigmoid, torch.sigmoid, None, (-F64_MAX, F64_MAX)),
    "erf": (dc.erf, torch.erf, None, (-F64_MAX, F64_MAX)),
    "softplus": (F.softplus, TF.softplus, None, (-F64_MAX, F64_MAX)),
    # torch float64 gelu computes 1 + erf(x / sqrt 2), which cancels for x < -1: the exact
    # value is the reference, on fewer points.
    "gelu": (F.gelu, None, _mp_gelu, (-F64_MAX, F64_MAX)),
}


@pytest.mark.parametrize("name", list(FLOAT64))
def test_float64_ulp(name):
    """Within 4 float64 ulps (with the same 1e-6 floor) of torch float64, or of the exact value."""
    fn, tfn, mpfn, (lo, hi) = FLOAT64[name]
    x = walk(lo, hi, 3000 if mpfn else 100_000, np.float64)
    got = fn(dc.from_numpy(x)).numpy()
    assert got.dtype == np.float64
    if mpfn is None:
        ref = tfn(torch.from_numpy(x)).numpy()
    else:
        import mpmath
        with mpmath.workprec(256):
            ref = np.array([_to_float(mpfn(mpmath.mpf(float(v)))) for v in x])
    err = ulp_error(got, ref, np.float64)
    i = int(np.argmax(err))
    assert err[i] <= 4, (f"{name} float64: {err[i]:.3g} ulp at x = {x[i]!r}: "
                         f"got {got[i]!r}, ref {ref[i]!r}")


def test_ulp_measure():
    """The measure itself: binade edges, the 1e-6 floor, NaN and inf, overflow."""
    one = np.float32(1.0)
    below = np.nextafter(one, np.float32(0))
    assert ulp_error(np.array([below], np.float32), np.array([1.0]))[0] == 0.5  # 2^-24 / 2^-24
    assert ulp_error(np.array([np.nextafter(one, np.float32(2))]), np.array([1.0]))[0] == 1
    assert ulp_error(np.array([0.0], np.float32), np.array([-8e-23]))[0] < 1e-9
    assert ulp_error(np.array([0.0], np.float32), np.array([2.0 ** -43]))[0] == 1
    assert ulp_error(np.array([np.nan], np.float32), np.array([np.nan]))[0] == 0
    assert ulp_error(np.array([np.nan], np.float32), np.array([1.0]))[0] == np.inf
    assert ulp_error(np.array([1.0], np.float32), np.array([np.nan]))[0] == np.inf
    assert ulp_error(np.array([F32_MAX], np.float32), np.array([np.inf]))[0] == np.inf
    assert ulp_error(np.array([np.inf], np.float32), np.array([1e300]))[0] == 0
    assert ulp_error(np.array([F32_MAX], np.float32), np.array([1e300]))[0] == 1
    x = walk(-F32_MAX, F32_MAX, 1000)
    assert np.all(np.diff(x) > 0) and x[0] == -F32_MAX and x[-1] == F32_MAX
