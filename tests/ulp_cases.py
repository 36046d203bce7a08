"""Accuracy cases: every float32 math op and activation, measured in ulp against float64.

One table (`CASES`) says, per op: how deepcore and torch call it, a float64 reference, the
inputs to sample, the special points and the ulp target. test_ulp.py, scripts/ulp_table.py and
scripts/ulp_exhaustive.py all run from it.

Note [Measuring error in ulp]
  error = |got - ref| / ulp(max(|ref|, 1e-6)), with ulp(v) = 2^(floor(log2 v) - 23) (the float32
  spacing of v's binade, never below the subnormal spacing 2^-149). The reference is a float64
  evaluation of the exact function at the float32 input, and `got` is compared with it before
  any rounding to float32, so a correctly rounded result scores at most 0.5.
  - Results smaller than 1e-6 are judged against the ulp at 1e-6 (2^-43): a tail such as
    gelu(-10) ~ -8e-23 is held to an absolute error, not to a relative one nothing needs.
  - Both NaN: 0. One NaN and not the other: inf. A reference of +-inf (log(0), exp(inf)) must
    be met exactly.
  - Past float32's range: a reference beyond +-2^128 stands as +-2^128 and a +-inf result as
    +-2^128, both on FLT_MAX's ulp, so exp(89) = inf scores 0, FLT_MAX there scores 1 and inf
    for a true FLT_MAX - 1 ulp scores 2.
  Only finite inputs are measured; what an op does with NaN, +-inf, +-0 and at its overflow and
  underflow edges is checked against torch float32 instead (`special_class`).

Note [Sampling the float32 line]
  Inputs are taken at a fixed stride in the float32 bit patterns, ordered by value
  (`walk(lo, hi, n)`), so every binade from the denormals to FLT_MAX gets the same number of
  points and both signs are covered. A case walks its `domain` with n points, its `core` (by
  default 1/16 <= |x| <= 32, where most functions leave their linear or saturated tails and do
  their work) with n more, and the whole of its `natural` domain sparsely (n/16) so nothing of
  the float range goes unseen. `domain` is narrower than `natural`
  only where the rest of the line saturates (i0 is inf past 91.9) or where no float32
  algorithm is expected to meet the target (see each note).
  The core walk is what finds rare bad inputs: spread evenly over all 254 binades of each
  sign, 200k points leave ~400 per binade of 2^23 floats, and tanh's 2.19-ulp inputs (one in
  6000 of [1/8, 1/2], found by scripts/ulp_exhaustive.py) go unseen; 200k more in the core
  meet them.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Sequence

import numpy as np
import scipy.special as sp
import torch
import torch.nn.functional as TF

import deepcore as dc
import deepcore.nn.functional as F

F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)        # smallest normal, 2^-126
F32_DENORM_MIN = float(np.float32(2.0 ** -149))
F32_DENORM_MAX = float(np.nextafter(np.float32(F32_TINY), np.float32(0)))
INF, NAN = math.inf, math.nan
ULP_FLOOR = 1e-6  # results below this are measured against the ulp at 1e-6

# ---- the float line --------------------------------------------------------------------------

_INT = {np.dtype(np.float32): (np.int32, 0x7FFFFFFF), np.dtype(np.float64): (np.int64, 2**63 - 1)}


def float_key(x: np.ndarray) -> np.ndarray:
    """Position of each float on the line ordered by value (+0 and -0 both at 0), as int64."""
    x = np.ascontiguousarray(x)
    itype, mag = _INT[x.dtype]
    bits = x.view(itype).astype(np.int64)
    return np.where(bits < 0, -(bits & mag), bits)


def from_key(k: np.ndarray, dtype=np.float32) -> np.ndarray:
    itype, _ = _INT[np.dtype(dtype)]
    k = np.asarray(k, np.int64)
    sign = np.int64(np.iinfo(itype).min)  # the sign bit, as the int type's minimum
    bits = np.where(k < 0, (-k) | sign, k).astype(itype)
    return bits.view(dtype)


def walk(lo: float, hi: float, n: int, dtype=np.float32) -> np.ndarray:
    """About n floats from lo to hi (inclusive) at a fixed stride in the ordered bit patterns."""
    klo, khi = float_key(np.array([lo, hi], dtype))
    if n <= 1 or khi <= klo:
        return np.array([lo], dtype)
    keys = np.clip(np.round(np.linspace(float(klo), float(khi), n)).astype(np.int64), klo, khi)
    keys = keys[np.r_[True, np.diff(keys) != 0]]  # ascending already: drop the repeats
    return from_key(keys, dtype)


def walk_intervals(intervals: Sequence[tuple], n: int, dtype=np.float32) -> np.ndarray:
    """n points over several intervals, shared in proportion to how many floats each holds."""
    lens = [max(1, int(np.diff(float_key(np.array(iv, dtype)))[0])) for iv in intervals]
    total = sum(lens)
    return np.concatenate([walk(lo, hi, max(2, round(n * m / total)), dtype)
                           for (lo, hi), m in zip(intervals, lens)])


def intersect(a: Sequence[tuple], b: Sequence[tuple]) -> list:
    """The intervals common to two lists of closed intervals."""
    out = [(max(lo1, lo2), min(hi1, hi2)) for lo1, hi1 in a for lo2, hi2 in b]
    return [(lo, hi) for lo, hi in out if lo < hi]


def neighbours(points: Sequence[float], k: int = 2) -> np.ndarray:
    """Each float32 point and the k floats on either side of it (edges sit between two floats)."""
    p = np.asarray(points, np.float32)
    fin = p[np.isfinite(p)]
    keys = float_key(fin)[:, None] + np.arange(-k, k + 1)[None, :]
    lim = float_key(np.array([F32_MAX], np.float32))[0]
    keys = np.clip(keys, -lim, lim).ravel()
    return np.concatenate([from_key(keys), p[~np.isfinite(p)]])


def pm(*v: float) -> list:
    return [s * x for x in v for s in (1.0, -1.0)]


WHOLE = ((-F32_MAX, F32_MAX),)
CORE = ((-32.0, -1.0 / 16), (1.0 / 16, 32.0))  # where most functions do their work
NONNEG = ((0.0, F32_MAX),)
UNIT = ((-1.0, 1.0),)
# Present in every unary case's special points.
COMMON_SPECIALS = pm(0.0, INF, F32_DENORM_MIN, F32_DENORM_MAX, F32_TINY, F32_MAX, 1.0, 0.5,
                     2.0, ULP_FLOOR) + [NAN]


# ---- the ulp measure -------------------------------------------------------------------------

def ulp_of(v: np.ndarray, mant_bits: int = 23, min_exp: int = -149) -> np.ndarray:
    """2^(floor(log2 |v|) - mant_bits), floored at 2^min_exp; |v| is taken at least ULP_FLOOR
    and at most the format's max (so 2^128, standing for overflow, shares FLT_MAX's ulp)."""
    top = F32_MAX if mant_bits == 23 else float(np.finfo(np.float64).max)
    mag = np.clip(np.abs(v), ULP_FLOOR, top)
    _, e = np.frexp(mag)  # mag = m * 2^e, m in [0.5, 1): floor(log2 mag) = e - 1
    return np.ldexp(1.0, np.maximum(e - 1 - mant_bits, min_exp))


def ulp_error(got: np.ndarray, ref: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Error of each result in ulps of `dtype`; see Note [Measuring error in ulp]."""
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    err = np.zeros(np.broadcast(got, ref).shape)
    gnan, rnan, rinf = np.isnan(got), np.isnan(ref), np.isinf(ref)
    err[gnan != rnan] = np.inf
    err[rinf & ~gnan & (got != ref)] = np.inf
    fin = ~gnan & ~rnan & ~rinf
    if dtype == np.float32:
        edge, mant, min_exp = 2.0 ** 128, 23, -149
    else:
        edge, mant, min_exp = np.inf, 52, -1074
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.clip(ref[fin], -edge, edge)
        g = got[fin]
        g = np.clip(np.where(np.isinf(g), np.sign(g) * edge, g), -edge, edge)
        err[fin] = np.abs(g - r) / ulp_of(r, mant, min_exp)
    err[np.isnan(err)] = np.inf  # inf - inf where float64 itself overflowed
    return err


def special_class(v: np.ndarray) -> np.ndarray:
    """What the special-value check compares: 0 finite non-zero, 1 NaN, 2 +inf, 3 -inf, 4 +0,
    5 -0."""
    v = np.asarray(v)
    c = np.zeros(v.shape, np.int8)
    c[np.isnan(v)] = 1
    c[np.isposinf(v)] = 2
    c[np.isneginf(v)] = 3
    c[(v == 0) & ~np.signbit(v)] = 4
    c[(v == 0) & np.signbit(v)] = 5
    return c


CLASS_NAMES = ["finite", "nan", "+inf", "-inf", "+0", "-0"]


def special_mismatch(got: np.ndarray, want: np.ndarray, ref: np.ndarray,
                     target: float) -> np.ndarray:
    """Where deepcore's NaN / inf / signed-zero behaviour differs from torch float32's (`want`).

    Three allowances, each for a place where torch has no better claim than the exact value:
    - the class of the correctly rounded result (float32 of the float64 `ref`) is accepted;
    - at an overflow or underflow edge, a finite result where torch has inf or 0 (or the
      reverse) is accepted when it is within the target in ulp: lgamma(4.0850034e36) may be
      FLT_MAX or inf, pow(2, -150) 0 or 2^-149. A NaN, or the sign of a zero, is never excused;
    - where the exact result is zero and torch's is not (torch's sinc(1) is -2.8e-8), a zero of
      either sign is accepted;
    - a zero with the sign of a non-zero exact result is accepted: gelu(-14) is -1.1e-43, which
      deepcore's tail rounds to -0 and torch gives as -0 with AVX-512, +0 with AVX2. Its sign is
      right, and whether its size is, the accuracy test judges.
    """
    with np.errstate(over="ignore"):
        exact = np.asarray(ref, np.float64).astype(np.float32)
    cg, ct, ce = special_class(got), special_class(want), special_class(exact)
    ok = (cg == ct) | (cg == ce)
    finite_vs_edge = ((cg == 0) & (ct >= 2)) | ((cg >= 2) & (ct == 0))  # no NaN on either side
    ok |= finite_vs_edge & np.isfinite(ref) & (ulp_error(got, ref) <= target)
    ok |= (cg >= 4) & (ce >= 4) & (ct < 4)
    ok |= ((cg == 4) & (ref > 0)) | ((cg == 5) & (ref < 0))
    return ~ok


# ---- the case ------------------------------------------------------------------------------

@dataclasses.dataclass
class UlpCase:
    """One op (with fixed keyword arguments) and how to judge its float32 accuracy.

    op: "exp" (an attribute of deepcore) or "F.gelu" (of deepcore.nn.functional); looked up
      at run time, so an op still being written makes its cases skip, not the module fail.
    ref: float64 arrays -> float64 array, the exact function (limits where it has one).
    torch_fn: the same call in torch, whose float32 NaN/inf/zero behaviour is the spec.
    mp: the exact function on mpmath numbers, used to check `ref` itself on a few points.
    note: where the measured range is narrower than the op's domain (shown in the table).
    domain / core / natural: intervals sampled densely / more densely / sparsely (Note
      [Sampling the float32 line]); for a binary op, `sample(n)` draws the pairs instead.
    edges: branch points, overflow and underflow edges; each is tried with its neighbours.
    """

    name: str
    op: str
    ref: Callable
    torch_fn: Callable
    target: float
    kwargs: dict = dataclasses.field(default_factory=dict)
    mp: Optional[Callable] = None
    domain: Sequence[tuple] = WHOLE
    natural: Sequence[tuple] = WHOLE
    core: Sequence[tuple] = CORE
    edges: Sequence[float] = ()
    arity: int = 1
    sample: Optional[Callable[[int], tuple]] = None
    special_pairs: Sequence[tuple] = ()
    note: str = ""

    def dc_fn(self) -> Optional[Callable]:
        mod, _, attr = self.op.rpartition(".")
        fn = getattr(F if mod == "F" else dc, attr, None)
        if fn is None:
            return None
        return lambda *a: fn(*a, **self.kwargs)

    def missing(self) -> str:
        """Why the op cannot run ('' when it can): it is absent from deepcore."""
        return "" if self.dc_fn() is not None else f"{self.op}: no such op in deepcore"

    def run_dc(self, *xs: np.ndarray) -> np.ndarray:
        fn = self.dc_fn()
        return fn(*[dc.from_numpy(np.ascontiguousarray(x)) for x in xs]).numpy()

    def run_torch(self, *xs: np.ndarray) -> np.ndarray:
        return self.torch_fn(*[torch.from_numpy(np.ascontiguousarray(x)) for x in xs]).numpy()

    def run_ref(self, *xs: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(self.ref(*[np.asarray(x, np.float64) for x in xs]), np.float64)

    def inputs(self, n: int) -> tuple:
        """The measured inputs: n samples plus the finite special points inside the domain."""
        if self.arity == 2:
            xs = self.sample(n)
            sa, sb = self.specials()
            fin = np.isfinite(sa) & np.isfinite(sb)
            return tuple(np.concatenate([x, s[fin]]) for x, s in zip(xs, (sa, sb)))
        core = intersect(self.core, self.domain)
        x = np.concatenate([walk_intervals(self.domain, n),
                            walk_intervals(core, n) if core else np.zeros(0, np.float32),
                            walk_intervals(self.natural, max(2, n // 16))])
        s = self.specials()[0]
        inside = np.zeros(s.shape, bool)
        for lo, hi in self.natural:
            inside |= (s >= lo) & (s <= hi)
        return (np.concatenate([x, s[inside & np.isfinite(s)]]),)

    def specials(self) -> tuple:
        if self.arity == 2:
            base = np.array(pm(0.0, INF, 1.0, 2.0, 0.5, F32_DENORM_MIN, F32_MAX) + [NAN],
                            np.float32)
            a, b = np.meshgrid(base, base, indexing="ij")
            extra = np.array(self.special_pairs, np.float32).reshape(-1, 2)
            return (np.concatenate([a.ravel(), extra[:, 0]]),
                    np.concatenate([b.ravel(), extra[:, 1]]))
        return (np.concatenate([np.array(COMMON_SPECIALS, np.float32),
                                neighbours(self.edges)]),)


# ---- float64 references -------------------------------------------------------------------

SQRT1_2 = 0.7071067811865476
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _sinpi(x):
    """sin(pi x) without the rounding of pi * x: reduce to r = x - n in [-1/2, 1/2] first."""
    n = np.round(x)
    r = x - n  # exact for a float32 x held in float64
    sign = np.where(np.fmod(np.abs(n), 2) == 1, -1.0, 1.0)
    return np.where(np.isinf(x), np.nan, sign * np.sin(np.pi * r))


def _sinc(x):
    out = _sinpi(x) / (np.pi * x)
    out = np.where(out == 0, 0.0, out)  # sin(pi n) / (pi n) has no sign: +0 at the integers
    out = np.where(x == 0, 1.0, out)
    return np.where(np.isinf(x), 0.0, out)


def _gelu(x):
    return 0.5 * x * sp.erfc(-x * SQRT1_2)  # no 1 + erf(x) cancellation in the negative tail


def _gelu_tanh(x):
    # 0.5 x (1 + tanh(u)) = x * sigmoid(2u): again no cancellation for x << 0.
    u = 0.7978845608028654 * (x + 0.044715 * x ** 3)
    return x * sp.expit(2 * u)


def _elu(x, alpha=1.0, scale=1.0):
    return scale * np.where(x > 0, x, alpha * np.expm1(x))


def _celu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(x / alpha))


def _softplus(beta):
    return lambda x: np.logaddexp(0.0, beta * x) / beta


def _mish(x):
    return x * np.tanh(np.logaddexp(0.0, x))


def _tanhshrink(x):
    # Below |x| = 2^-10 the series x^3/3 - 2x^5/15 is exact to float64 rounding; above it the
    # subtraction loses at most 2^20 of float64's 2^52 precision, far below a float32 ulp.
    t = np.where(np.abs(x) < 2.0 ** -10, x ** 3 / 3 - 2 * x ** 5 / 15, x - np.tanh(x))
    return np.where(np.isinf(x), x, t)


def _hardsigmoid(x):
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _logit(x):
    return np.log(x) - np.log1p(-x)


def _digamma(x):
    # torch's convention: -inf at +0 (and +inf at -0, as psi's reflection gives), NaN at the
    # negative integers.
    out = sp.psi(x)
    out = np.where(x == 0, np.where(np.signbit(x), np.inf, -np.inf), out)
    return np.where((x < 0) & (x == np.floor(x)), np.nan, out)


def _lgamma(x):
    return np.where(np.isneginf(x), np.inf, sp.gammaln(x))  # log|Gamma(-inf)|: torch says inf


def _xlogy(x, y):
    return np.where((x == 0) & ~np.isnan(y), 0.0, x * np.log(y))


# ---- mpmath references (checking the float64 ones) -------------------------------------

def _mp():
    import mpmath
    return mpmath


def _mp_sinc(x):
    m = _mp()
    return m.mpf(1) if x == 0 else m.sinpi(x) / (m.pi * x)


def _mp_lgamma(x):
    m = _mp()
    return m.re(m.loggamma(x))


def _mp_softplus(beta):
    def f(x):
        m = _mp()
        return m.log1p(m.exp(beta * x)) / beta
    return f


def _mp_elu(alpha=1.0, scale=1.0):
    def f(x):
        m = _mp()
        return scale * (x if x > 0 else alpha * m.expm1(x))
    return f


def _mp_celu(alpha):
    def f(x):
        m = _mp()
        return x if x > 0 else alpha * m.expm1(x / alpha)
    return f


def _mp_gelu_tanh(x):
    m = _mp()
    u = m.sqrt(2 / m.pi) * (x + m.mpf(0.044715) * x ** 3)
    return x / (1 + m.exp(-2 * u))


# ---- binary samplers ------------------------------------------------------------------------

def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _shuffled(x: np.ndarray, seed: int) -> np.ndarray:
    return x[_rng(seed).permutation(len(x))]


def _f32(v) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(v, np.float64).astype(np.float32)


def _keep_finite(a, b):
    m = np.isfinite(a) & np.isfinite(b)
    return a[m], b[m]


def _pow_sample(n):
    """Half: x over (0, max] with y chosen so that x^y falls anywhere from 2^-150 to 2^128 (the
    pairs that neither saturate nor give 1); a quarter: unrelated x and y over the whole line;
    a quarter: negative x with integral y, even and odd."""
    x = walk(F32_DENORM_MIN, F32_MAX, n // 2)
    t = _rng(1).uniform(-150, 128, len(x))
    y = _f32(t / np.log2(x.astype(np.float64)))
    a1, b1 = _keep_finite(x, y)
    a2 = walk(-F32_MAX, F32_MAX, n // 4)
    b2 = _shuffled(walk(-F32_MAX, F32_MAX, len(a2)), 2)
    a3 = walk(-F32_MAX, -F32_DENORM_MIN, n // 4)
    b3 = _rng(3).integers(-40, 41, len(a3)).astype(np.float32)
    return np.concatenate([a1, a2, a3]), np.concatenate([b1, b2, b3])


def _ratio_sample(n, seed):
    """Half: unrelated pairs; half: b = a * s with |s| in [2^-40, 2^40], both signs (atan2 and
    hypot turn on the ratio of their arguments)."""
    a1 = walk(-F32_MAX, F32_MAX, n // 2)
    b1 = _shuffled(walk(-F32_MAX, F32_MAX, len(a1)), seed)
    a2 = walk(-F32_MAX, F32_MAX, n // 2)
    s = _shuffled(np.concatenate([walk(2.0 ** -40, 2.0 ** 40, n // 4),
                                  walk(-2.0 ** 40, -2.0 ** -40, n // 4)]), seed + 1)[:len(a2)]
    s = np.resize(s, len(a2))
    a2, b2 = _keep_finite(a2, _f32(a2.astype(np.float64) * s))
    return np.concatenate([a1, a2]), np.concatenate([b1, b2])


def _logaddexp_sample(n):
    """Half unrelated pairs; half b = a + d with |d| <= 200 (where both terms count)."""
    a1 = walk(-F32_MAX, F32_MAX, n // 2)
    b1 = _shuffled(walk(-F32_MAX, F32_MAX, len(a1)), 11)
    a2 = walk(-1e5, 1e5, n // 2)
    d = _rng(12).uniform(-200, 200, len(a2))
    a2, b2 = _keep_finite(a2, _f32(a2 + d))
    return np.concatenate([a1, a2]), np.concatenate([b1, b2])


def _xlogy_sample(n):
    """Half: x over the whole line, y over [0, max]; half: y near 1, where log(y) ~ 0."""
    a1 = walk(-F32_MAX, F32_MAX, n // 2)
    b1 = _shuffled(walk(0.0, F32_MAX, len(a1)), 21)
    a2 = _shuffled(walk(-1e30, 1e30, n // 2), 22)
    b2 = np.resize(walk(0.5, 2.0, n // 2), len(a2))
    return np.concatenate([a1, a2]), np.concatenate([b1, b2])


# ---- the table ------------------------------------------------------------------------------

def _t(fn, **kw):
    return lambda *a: fn(*a, **kw)


def _mpf(name):
    return lambda x: getattr(_mp(), name)(x)


LN_MAX = 88.72284   # exp overflows above log(FLT_MAX)
LN_TINY = -87.33654  # exp(x) drops below the smallest normal
LN_DENORM = -103.27893  # exp(x) = 2^-149
LN_HALF_DENORM = -103.97208  # below, exp(x) rounds to 0
EXP_EDGES = [LN_MAX, 89.0, LN_TINY, LN_DENORM, LN_HALF_DENORM, -104.0]

CASES: list[UlpCase] = [
    # -- exponentials and logarithms (target 1 for exp and log; 2 for the rest of the family,
    #    which the issue puts with neither; they share exp's and log's kernels)
    UlpCase("exp", "exp", np.exp, torch.exp, 1, mp=_mpf("exp"), edges=EXP_EDGES),
    UlpCase("exp2", "exp2", np.exp2, torch.exp2, 1, mp=lambda x: _mp().power(2, x),
            edges=[128.0, 127.99, -126.0, -149.0, -150.0, 64.0]),
    UlpCase("expm1", "expm1", np.expm1, torch.expm1, 1, mp=_mpf("expm1"),
            edges=EXP_EDGES + pm(1e-8, 1e-4, 0.5, 0.25) + [-17.328680, -88.0]),
    UlpCase("log", "log", np.log, torch.log, 1, mp=_mpf("log"), domain=NONNEG, natural=NONNEG,
            edges=[1.0, 0.0, F32_DENORM_MIN, F32_TINY, math.e, 0.5, 2.0, F32_MAX]),
    UlpCase("log2", "log2", np.log2, torch.log2, 1, mp=lambda x: _mp().log(x, 2),
            domain=NONNEG, natural=NONNEG, edges=[1.0, 2.0, 0.5, F32_DENORM_MIN, 2.0 ** 100]),
    UlpCase("log10", "log10", np.log10, torch.log10, 1, mp=lambda x: _mp().log(x, 10),
            domain=NONNEG, natural=NONNEG, edges=[1.0, 10.0, 0.1, 1e10, F32_DENORM_MIN]),
    UlpCase("log1p", "log1p", np.log1p, torch.log1p, 1, mp=_mpf("log1p"),
            domain=((-1.0, F32_MAX),), natural=((-1.0, F32_MAX),),
            edges=[-1.0, 0.0, 1e-8, -1e-8, -0.5, 0.4142135, -0.2928932, 1.0, 1e30]),
    UlpCase("sqrt", "sqrt", np.sqrt, torch.sqrt, 1, mp=_mpf("sqrt"), domain=NONNEG,
            natural=NONNEG, edges=[0.0, F32_DENORM_MIN, F32_TINY, 1.0, 2.0, 4.0, F32_MAX]),
    # Two roundings, the root's and the quotient's, as torch's: within 1.5 ulp.
    UlpCase("rsqrt", "rsqrt", lambda x: 1.0 / np.sqrt(x), torch.rsqrt, 2,
            mp=lambda x: 1 / _mp().sqrt(x), domain=NONNEG, natural=NONNEG,
            edges=[0.0, F32_DENORM_MIN, F32_TINY, 1.0, 4.0, F32_MAX]),
    UlpCase("sigmoid", "sigmoid", sp.expit, torch.sigmoid, 1,
            mp=lambda x: 1 / (1 + _mp().exp(-x)),
            edges=pm(*EXP_EDGES) + pm(16.635532, 17.328680, 1e-8)),
    # -- trigonometric (2): the whole float range, so argument reduction is measured too
    UlpCase("sin", "sin", np.sin, torch.sin, 2, mp=_mpf("sin"),
            edges=pm(math.pi, math.pi / 2, 2 * math.pi, 1e4, 105414350.0, 2.0 ** 23, 2.0 ** 24,
                     1e22, 1e30, 1e-4)),
    UlpCase("cos", "cos", np.cos, torch.cos, 2, mp=_mpf("cos"),
            edges=pm(math.pi, math.pi / 2, 3 * math.pi / 2, 1e4, 2.0 ** 24, 1e22, 1e-4)),
    UlpCase("tan", "tan", np.tan, torch.tan, 2, mp=_mpf("tan"),
            edges=pm(math.pi / 4, math.pi / 2, math.pi, 3 * math.pi / 2, 1e4, 2.0 ** 24, 1e22,
                     1e-4)),
    UlpCase("asin", "asin", np.arcsin, torch.asin, 2, mp=_mpf("asin"), domain=UNIT,
            natural=UNIT, edges=pm(1.0, 0.5, 1e-4, 0.70710677)),
    UlpCase("acos", "acos", np.arccos, torch.acos, 2, mp=_mpf("acos"), domain=UNIT,
            natural=UNIT, edges=pm(1.0, 0.5, 1e-4, 0.70710677)),
    UlpCase("atan", "atan", np.arctan, torch.atan, 2, mp=_mpf("atan"),
            edges=pm(1.0, 0.4142135, 2.4142137, 1e-4, 1e8, 2.0 ** 24)),
    # -- hyperbolic (2)
    UlpCase("sinh", "sinh", np.sinh, torch.sinh, 2, mp=_mpf("sinh"),
            edges=pm(89.415985, 89.5, LN_MAX, 1e-4, 0.5, 1.0, 9.0)),
    UlpCase("cosh", "cosh", np.cosh, torch.cosh, 2, mp=_mpf("cosh"),
            edges=pm(89.415985, 89.5, LN_MAX, 1e-4, 0.5, 1.0, 9.0)),
    UlpCase("tanh", "tanh", np.tanh, torch.tanh, 2, mp=_mpf("tanh"),
            edges=pm(9.010913, 8.317766, 0.55, 0.625, 1e-4, 1e-8, 20.0, 88.0)),
    UlpCase("asinh", "asinh", np.arcsinh, torch.asinh, 2, mp=_mpf("asinh"),
            edges=pm(1e-4, 0.5, 1.0, 2.0, 2.0 ** 12, 2.0 ** 64, 1e30)),
    UlpCase("acosh", "acosh", np.arccosh, torch.acosh, 2, mp=_mpf("acosh"),
            domain=((1.0, F32_MAX),), natural=((1.0, F32_MAX),),
            edges=[1.0, 1.0000001, 1.5, 2.0, 2.0 ** 12, 2.0 ** 64, 1e30, 0.5]),
    UlpCase("atanh", "atanh", np.arctanh, torch.atanh, 2, mp=_mpf("atanh"), domain=UNIT,
            natural=UNIT, edges=pm(1.0, 0.5, 1e-4, 0.99999994)),
    # -- error function (2; erfinv 4)
    UlpCase("erf", "erf", sp.erf, torch.erf, 2, mp=_mpf("erf"),
            edges=pm(0.84375, 1.25, 2.857143, 3.9192059, 6.0, 1e-4, 1e-8)),
    UlpCase("erfc", "erfc", sp.erfc, torch.erfc, 2, mp=_mpf("erfc"),
            edges=pm(0.5, 0.84375, 1.25, 2.857143, 3.9192059) + [9.194, 10.0, 10.05, 10.06]),
    UlpCase("erfinv", "erfinv", sp.erfinv, torch.erfinv, 4, mp=_mpf("erfinv"), domain=UNIT,
            natural=UNIT, edges=pm(1.0, 0.99999994, 0.7, 0.5, 1e-4, 1e-8)),
    # -- gamma family (4). Note: between the poles on the negative axis lgamma and digamma
    #    cross zero; there the result is the difference of two O(1) terms of the reflection
    #    formula and no float32 kernel (torch's included, thousands of ulps) keeps it within a
    #    few ulps, so the ulp targets cover x > 0; the negative axis, its poles and its
    #    integers are checked against torch as special values.
    UlpCase("lgamma", "lgamma", _lgamma, torch.lgamma, 4, mp=_mp_lgamma, domain=NONNEG,
            natural=NONNEG,
            edges=[1.0, 2.0, 0.0, 0.5, 3.0, 1e-8, 4.0850034e36, 4.0850037e36, 1e30, 10.0, 7.0]
            + [-1.0, -2.0, -100.0, -2.4570549, -0.5, -1e-8, -4194304.5],
            note="x > 0"),
    UlpCase("digamma", "digamma", _digamma, torch.digamma, 4, mp=_mpf("digamma"),
            domain=NONNEG, natural=NONNEG,
            edges=[1.4616321, 1.0, 2.0, 0.0, 1e-8, 0.5, 6.0, 10.0, 1e30]
            + [-1.0, -2.0, -0.5, -1.5, -1e-8, -100.0],
            note="x > 0"),
    # -- activations
    # 4 ulp: float32 evaluated in float lanes for speed (Note [GELU accuracy]); edges at its
    # pieces (|x| = 1, 7, 13).
    UlpCase("gelu", "F.gelu", _gelu, TF.gelu, 4,
            mp=lambda x: x / 2 * _mp().erfc(-x / _mp().sqrt(2)),
            edges=pm(1e-4, 1.0, 3.0, 5.5, 7.0, 10.0, 13.0, 13.2, 14.0, 20.0, 1e4)),
    UlpCase("gelu_tanh", "F.gelu", _gelu_tanh, _t(TF.gelu, approximate="tanh"), 2,
            kwargs={"approximate": "tanh"}, mp=_mp_gelu_tanh,
            edges=pm(1e-4, 1.0, 3.0, 5.5, 10.0, 13.2, 20.0, 1e4)),
    UlpCase("silu", "F.silu", lambda x: x * sp.expit(x), TF.silu, 2,
            mp=lambda x: x / (1 + _mp().exp(-x)), edges=pm(*EXP_EDGES) + pm(1e-4, 1.0, 20.0)),
    UlpCase("softplus", "F.softplus", _softplus(1.0), TF.softplus, 2, mp=_mp_softplus(1),
            edges=pm(20.0, 1e-4, 1.0, 16.0) + EXP_EDGES),
    UlpCase("softplus_beta2", "F.softplus", _softplus(2.0), _t(TF.softplus, beta=2.0), 2,
            kwargs={"beta": 2.0}, mp=_mp_softplus(2),
            edges=pm(10.0, 20.0, 1e-4, 1.0, 44.36142, 51.98604)),
    UlpCase("mish", "F.mish", _mish, TF.mish, 2,
            mp=lambda x: x * _mp().tanh(_mp().log1p(_mp().exp(x))),
            edges=pm(1e-4, 1.0, 9.0, 20.0, 88.0) + EXP_EDGES),
    UlpCase("logsigmoid", "F.logsigmoid", lambda x: -np.logaddexp(0.0, -x), TF.logsigmoid, 2,
            mp=lambda x: -_mp().log1p(_mp().exp(-x)), edges=pm(*EXP_EDGES) + pm(1e-4, 20.0)),
    UlpCase("elu", "F.elu", _elu, TF.elu, 2, mp=_mp_elu(),
            edges=pm(1e-8, 1e-4, 0.5) + [-17.328680, -20.0, -88.0, -104.0]),
    UlpCase("selu", "F.selu", lambda x: _elu(x, SELU_ALPHA, SELU_SCALE), TF.selu, 2,
            mp=_mp_elu(SELU_ALPHA, SELU_SCALE),
            edges=pm(1e-8, 1e-4, 0.5) + [-17.328680, -20.0, -88.0, -104.0]),
    UlpCase("celu", "F.celu", _celu, TF.celu, 2, mp=_mp_celu(1.0),
            edges=pm(1e-8, 1e-4, 0.5) + [-17.328680, -20.0, -88.0, -104.0]),
    UlpCase("celu_alpha2", "F.celu", lambda x: _celu(x, 2.0), _t(TF.celu, alpha=2.0), 2,
            kwargs={"alpha": 2.0}, mp=_mp_celu(2.0),
            edges=pm(1e-8, 1e-4, 0.5) + [-34.65736, -40.0, -176.0, -208.0]),
    UlpCase("softsign", "F.softsign", lambda x: x / (1.0 + np.abs(x)), TF.softsign, 2,
            mp=lambda x: x / (1 + abs(x)), edges=pm(1e-8, 1.0, 2.0 ** 24, 1e30)),
    UlpCase("tanhshrink", "F.tanhshrink", _tanhshrink, TF.tanhshrink, 2,
            mp=lambda x: x - _mp().tanh(x), edges=pm(1e-8, 1e-4, 0.1, 0.55, 9.010913, 1e30)),
    # Three roundings (x + 3, the product, the division), as torch's: within 2 ulp.
    UlpCase("hardswish", "F.hardswish", lambda x: x * _hardsigmoid(x), TF.hardswish, 2,
            mp=lambda x: x * min(max(x + 3, 0), 6) / 6, edges=pm(3.0, 1e-8, 1.5, 1e30)),
    UlpCase("hardsigmoid", "F.hardsigmoid", _hardsigmoid, TF.hardsigmoid, 1,
            mp=lambda x: min(max(x + 3, 0), 6) / 6, edges=pm(3.0, 1e-8, 1.5, 1e30)),
    UlpCase("sinc", "sinc", _sinc, torch.sinc, 2, mp=_mp_sinc,
            edges=pm(1e-8, 1e-4, 0.5, 1.0, 2.0, 2.5, 1000.5, 2.0 ** 22 + 0.5, 2.0 ** 23, 1e30)),
    UlpCase("logit", "logit", _logit, torch.logit, 2,
            mp=lambda x: _mp().log(x / (1 - x)), domain=((0.0, 1.0),), natural=((0.0, 1.0),),
            edges=[0.0, 1.0, 0.5, 1e-8, 0.99999994, 0.25, 0.75, -0.5, 1.5]),
    UlpCase("i0", "i0", sp.i0, torch.i0, 4, mp=lambda x: _mp().besseli(0, x),
            domain=((-100.0, 100.0),), edges=pm(1e-8, 1.0, 8.0, 30.0, 91.9, 92.0, 100.0),
            note="dense on |x| <= 100"),
    # -- binary: 2-D samples
    UlpCase("pow", "pow", np.power, torch.pow, 2, arity=2, sample=_pow_sample,
            mp=lambda x, y: _mp().power(x, y) if x >= 0 or y == int(y) else _mp().nan,
            special_pairs=[(-8.0, 1.0 / 3), (-2.0, 3.0), (-2.0, 2.0), (-0.0, -3.0), (-0.0, -2.0),
                           (-0.0, 3.0), (1.0, NAN), (NAN, 0.0), (-1.0, INF), (-1.0, -INF),
                           (2.0, 128.0), (2.0, 127.99999), (2.0, -149.0), (2.0, -150.0),
                           (0.5, 150.0), (-INF, 3.0), (-INF, -3.0), (-INF, 2.0)]),
    UlpCase("atan2", "atan2", np.arctan2, torch.atan2, 2, arity=2,
            sample=lambda n: _ratio_sample(n, 31), mp=lambda y, x: _mp().atan2(y, x),
            special_pairs=[(1e-45, F32_MAX), (F32_MAX, 1e-45), (1.0, -1.0), (-0.0, -1.0)]),
    UlpCase("hypot", "hypot", np.hypot, torch.hypot, 2, arity=2,
            sample=lambda n: _ratio_sample(n, 41), mp=lambda x, y: _mp().hypot(x, y),
            special_pairs=[(INF, NAN), (NAN, -INF), (F32_MAX, F32_MAX), (3e38, 1e38),
                           (1e-45, 1e-45), (3.0, 4.0)]),
    UlpCase("logaddexp", "logaddexp", np.logaddexp, torch.logaddexp, 2, arity=2,
            sample=_logaddexp_sample,
            mp=lambda x, y: _mp().log(_mp().exp(x) + _mp().exp(y)),
            special_pairs=[(INF, INF), (-INF, -INF), (INF, -INF), (88.7, 88.7), (-200.0, -200.0),
                           (1e30, 1e30), (0.0, -0.0)]),
    UlpCase("xlogy", "xlogy", _xlogy, torch.xlogy, 2, arity=2, sample=_xlogy_sample,
            mp=lambda x, y: 0 if x == 0 else x * _mp().log(y),
            special_pairs=[(0.0, 0.0), (0.0, NAN), (0.0, INF), (NAN, 0.0), (1.0, 0.0),
                           (-1.0, 0.0), (2.0, 1.0), (F32_MAX, F32_MAX)]),
]

CASES_BY_NAME = {c.name: c for c in CASES}
assert len(CASES_BY_NAME) == len(CASES), "duplicate case names"


# ---- one measurement ------------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    name: str
    max_ulp: float
    target: float
    worst_input: tuple
    got: float
    ref: float
    samples: int


def measure(case: UlpCase, xs: tuple, run=None) -> Result:
    """Max ulp of `run` (default: the deepcore op) over the inputs xs, and where it happens."""
    got = (run or case.run_dc)(*xs)
    ref = case.run_ref(*xs)
    err = ulp_error(got, ref)
    i = int(np.argmax(err)) if err.size else 0
    return Result(case.name, float(err[i]) if err.size else 0.0, case.target,
                  tuple(float(x[i]) for x in xs), float(got[i]), float(ref[i]), int(err.size))


def describe(r: Result) -> str:
    args = ", ".join(f"{v!r} ({np.float32(v).view(np.uint32):#010x})" for v in r.worst_input)
    return (f"{r.name}: max {r.max_ulp:.3g} ulp > target {r.target:g} at x = ({args}): "
            f"got {r.got!r}, ref {r.ref!r} ({r.samples} samples)")
