"""16-bit floats (bfloat16, float16) and autocast, checked against PyTorch.

  dtypes      itemsize, names and repr, finfo, the promotion table, casts between every pair of
              dtypes bit for bit on awkward values, NumPy (ml_dtypes), DLPack, safetensors
  ops         every OpInfo entry drawn in float32, run with its floating inputs in bfloat16 and
              in float16: result dtypes exactly, values and gradients within the bounds of
              Note [16-bit tolerances]
  autocast    the same entries under deepcore.autocast and torch.autocast (bfloat16), with
              float32 and with 16-bit inputs: result and gradient dtypes exactly, values within
              a few roundings; nesting, the decorator, errors, a model's gradients
  GradScaler  float16 gradients that underflow unscaled, and the scale's steps against torch's

Known deepcore failures are strict xfails (KNOWN and the marked tests), each with its reason.
"""
from __future__ import annotations

import zlib

import ml_dtypes
import numpy as np
import pytest
import safetensors.torch
import torch
import torch.nn.functional as TF

import deepcore as dc
import deepcore.nn.functional as F
from deepcore import nn
from helpers import torch_dtype
from opinfo import OPS, DType, OpInfo, case_id
from test_ops import REGISTRY, _samples

HALVES = {"bfloat16": (dc.bfloat16, torch.bfloat16), "float16": (dc.float16, torch.float16)}
# Significand bits after the binary point, and the exponent of the smallest normal number.
FORMAT = {"bfloat16": (7, -126), "float16": (10, -14)}
EPS32 = 2.0 ** -23

_T2D = {torch.bool: dc.bool, torch.int32: dc.int32, torch.int64: dc.int64,
        torch.float32: dc.float32, torch.float64: dc.float64, torch.bfloat16: dc.bfloat16,
        torch.float16: dc.float16}


def _f64(x) -> np.ndarray:
    """A deepcore or torch tensor's values as float64 (integers and bools included)."""
    if isinstance(x, dc.Tensor):
        x = x.detach()
        return (x.to(dc.float64) if x.dtype.is_floating_point else x).numpy().astype(np.float64)
    x = x.detach()
    return (x.double() if x.is_floating_point() else x).numpy().astype(np.float64)


def _ulp(x: np.ndarray, half: str) -> np.ndarray:
    """The spacing of the 16-bit type at |x| (subnormals: the smallest spacing)."""
    m, emin = FORMAT[half]
    e = np.floor(np.log2(np.maximum(np.abs(x), 2.0 ** emin)))
    return np.exp2(e - m)


# Note [16-bit tolerances]
# Both libraries compute a 16-bit op in float32 and round the result once, so a result is
# judged against the exact value: torch run in float64 on the same 16-bit-rounded inputs
# (`ref`). deepcore may be as far from it as torch is, plus one rounding of the 16-bit type:
#     |dc - ref| <= |torch - ref| + ulp16(ref) + 16 eps32 S + k eps16 S
# |torch - ref| carries what torch loses itself (a sum in another order, intermediates rounded
# to 16 bits inside its attention or pooling kernels); ulp16(ref) is the rounding the two may
# take differently when their float32 values straddle a rounding boundary. S is the largest
# magnitude in the result (forward: and in its inputs); 16 eps32 S covers float32 arithmetic
# on intermediates of that size where a result cancels to near zero (x - logsumexp in
# log_softmax). k eps16 S covers deepcore's own roundings of intermediates to 16 bits, each
# off by at most eps16 S / 2: k = 0 for an op that rounds once; COMPOSED for an op written in
# Python on other ops (the registry's "python" mark) and for every gradient, whose formulas
# are written with differentiable ops; ROUNDS_INTERMEDIATES for the C++ ops that round
# intermediates where torch rounds once (a difference from torch worth knowing, allowed here).
COMPOSED = 4
ROUNDS_INTERMEDIATES = {  # op: (extra roundings, what is rounded)
    "addmm": (1, "the product mat1 @ mat2 is rounded before input is added"),
    "index_add": (COMPOSED, "each source row is added in 16 bits, rounding per duplicate index"),
    "scatter_add": (COMPOSED, "each source element is added in 16 bits, rounding per duplicate"),
    # The optimizer entries take two steps; the state (momentum, averages) is kept in the
    # parameter's 16-bit dtype between them, as torch keeps it, and rounds there.
    **{op: (2, "the optimizer state and the parameter are rounded to 16 bits after each of "
                "the two steps")
       for op in ("sgd_step", "adam_step", "rmsprop_step", "adagrad_step")},
}
ROUNDS_INTERMEDIATES.update({f"{k}_": v for k, v in list(ROUNDS_INTERMEDIATES.items())
                             if k != "addmm"})


# Ops whose 16-bit result is defined by the format itself, not a rounded real function (the
# next representable value; inf replaced by the type's largest finite value), so the float64
# reference does not apply: equal to torch's bit for bit.
EXACT = {"nextafter", "nan_to_num"}


def _roundings(info: OpInfo) -> int:
    """Extra 16-bit roundings deepcore takes in this op's forward (Note [16-bit tolerances])."""
    if info.name in ROUNDS_INTERMEDIATES:
        return ROUNDS_INTERMEDIATES[info.name][0]
    return COMPOSED if REGISTRY[info.name]["python"] else 0


def _judge(d: np.ndarray, t: np.ndarray, r: np.ndarray, half: str, scale: float, k: float,
           msg: str) -> None:
    """deepcore d, torch t, exact r (float64 arrays of one shape); see Note [16-bit tolerances]."""
    assert d.shape == t.shape, f"{msg}: shape {d.shape} != torch {t.shape}"
    special = ~np.isfinite(t)
    np.testing.assert_array_equal(d[special], t[special], err_msg=f"{msg}: inf/NaN positions")
    fin = ~special
    d, t, r = d[fin], t[fin], np.where(np.isfinite(r[fin]), r[fin], t[fin])
    assert np.isfinite(d).all(), f"{msg}: deepcore non-finite where torch is finite"
    eps16 = 2.0 ** -FORMAT[half][0]
    allowed = np.abs(t - r) + _ulp(r, half) + (16 * EPS32 + k * eps16) * scale
    bad = np.abs(d - r) > allowed
    if bad.any():
        i = np.flatnonzero(bad)[:5]
        raise AssertionError(f"{msg}: {bad.sum()} of {bad.size} values off: deepcore {d[i]}, "
                             f"torch {t[i]}, exact {r[i]}, allowed {allowed[i]}")


def _max_abs(arrays) -> float:
    vals = [np.abs(a[np.isfinite(a)]).max() for a in arrays if a.size and np.isfinite(a).any()]
    return float(max(vals, default=0.0))


# ---- building a sample three ways -------------------------------------------------------------

def _float_leaves(x) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype == np.float32
    if isinstance(x, (list, tuple)):
        return any(_float_leaves(v) for v in x)
    return False


def _mode(sample) -> str | None:
    """How a float32 sample becomes a 16-bit one: its float32 arrays ("arrays"), or for a
    factory without array inputs its float32 dtype argument ("factory"); None: neither."""
    values = list(sample.args) + list(sample.kwargs.values())
    if _float_leaves(values):
        return "arrays"
    if any(isinstance(v, DType) and v.dtype == dc.float32 for v in values):
        return "factory"
    return None


class Built:
    """One sample's arguments in deepcore ("dc"), in torch ("torch") and in torch float64 ("ref").

    half: the float32 arrays become that 16-bit dtype (the float64 copy holds the same rounded
    values); None keeps them float32 (autocast). leaves: slot -> {side: leaf} for the floating
    arrays that require grad."""

    def __init__(self, info: OpInfo, sample, half: str | None, grad: bool):
        self.leaves: dict = {}
        self.args, self.kwargs = {}, {}
        factory = _mode(sample) == "factory" and half is not None
        for side in ("dc", "torch", "ref"):
            def conv(x, slot, side=side):
                if isinstance(x, np.ndarray):
                    return self._array(info, x, slot, side, half, grad)
                if isinstance(x, DType):
                    if factory and x.dtype == dc.float32:
                        return {"dc": HALVES[half][0], "torch": HALVES[half][1],
                                "ref": torch.float64}[side]
                    return x.dtype if side == "dc" else torch_dtype(x.dtype)
                if isinstance(x, list):
                    return [conv(v, slot + (j,)) for j, v in enumerate(x)]
                if isinstance(x, tuple) and any(isinstance(v, np.ndarray) for v in x):
                    return tuple(conv(v, slot + (j,)) for j, v in enumerate(x))
                return x
            self.args[side] = [conv(a, (k,)) for k, a in enumerate(sample.args)]
            self.kwargs[side] = {k: conv(v, (k,)) for k, v in sample.kwargs.items()}

    def _array(self, info, x, slot, side, half, grad):
        if side == "dc":
            t = dc.tensor(x)
            if half is not None and x.dtype == np.float32:
                t = t.to(HALVES[half][0])
        else:
            t = torch.from_numpy(np.array(x, copy=True))
            if half is not None and x.dtype == np.float32:
                t = t.to(HALVES[half][1])
            if side == "ref" and t.is_floating_point():
                t = t.double()
        wants = (grad and x.dtype == np.float32 and
                 (info.grad_args is None or slot[0] in info.grad_args))
        if wants:
            t.requires_grad_(True)
            self.leaves.setdefault(slot, {})[side] = t
            if info.inplace and slot[0] == 0:  # an in-place op writes into a copy of the leaf
                t = t.clone()
        return t

    def call(self, info: OpInfo, side: str):
        fn = info.op if side == "dc" else info.ref
        return fn(*self.args[side], **self.kwargs[side])

    def floats(self, side: str) -> list:
        """The floating tensor arguments on one side."""
        out = []

        def walk(x):
            if isinstance(x, (dc.Tensor, torch.Tensor)):
                if x.dtype.is_floating_point:
                    out.append(x)
            elif isinstance(x, (list, tuple)):
                for v in x:
                    walk(v)
        walk(self.args[side])
        walk(list(self.kwargs[side].values()))
        return out


def _outputs(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _differentiable(info: OpInfo) -> bool:
    return REGISTRY[info.name]["differentiable"] if info.grad is None else bool(info.grad)


def _half_samples(info: OpInfo) -> list:
    return [s for s in _samples(info, dc.float32) if not s.xfail and _mode(s) is not None]


# Entries whose float32 samples can be run in 16 bits: id -> entry.
ENTRIES = {case_id(i): i for i in OPS if dc.float32 in i.dtypes and _half_samples(i)}


# ---- dtypes ----------------------------------------------------------------------------------

DTYPES = {"bool": (dc.bool, torch.bool), "int32": (dc.int32, torch.int32),
          "int64": (dc.int64, torch.int64), "bfloat16": (dc.bfloat16, torch.bfloat16),
          "float16": (dc.float16, torch.float16), "float32": (dc.float32, torch.float32),
          "float64": (dc.float64, torch.float64)}

# Values that stress a conversion, as float64 (each source dtype holds its own rounding of them).
FLOAT_EDGES = [
    0.0, -0.0, 1.0, -1.0, 0.1, 0.5, -0.5, 2.5, -2.5, 1 / 3, np.nan, np.inf, -np.inf,
    # float16: its largest finite value, values that round down to it, the tie at 65520 that
    # rounds to inf, and beyond
    65504.0, 65519.0, 65519.996, 65520.0, -65520.0, 65536.0, 1e5,
    # float16 subnormals: the smallest, half of it (a tie: to even, 0), ties at 1.5 and 2.5 of
    # it (to 2 both), the largest, the smallest normal, and below half the smallest
    2.0 ** -24, 2.0 ** -25, -2.0 ** -25, 1.5 * 2.0 ** -24, 2.5 * 2.0 ** -24,
    2.0 ** -14 - 2.0 ** -24, 2.0 ** -14, 2.0 ** -26,
    # bfloat16 subnormals and normals at both ends; float32's largest rounds to inf in bfloat16
    2.0 ** -133, 2.0 ** -134, 1.5 * 2.0 ** -133, 2.0 ** -126, 2.0 ** -127,
    3.3895313892515355e38, 3.39e38, 3.4e38, 1e39, -1e39,
    # ties at 1 of bfloat16 (2^-8) and float16 (2^-11), to even, and just past them
    1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11,
    1 + 2.0 ** -8 + 2.0 ** -20, 1 - 2.0 ** -9,
    # float32 subnormals
    2.0 ** -149, 2.0 ** -150, 1e-40,
    # integers that 16-bit types round (257: a bfloat16 tie, 2049: a float16 tie) and large ones
    257.0, 259.0, 2049.0, 2051.0, 2.0 ** 24 + 1, 2.0 ** 31 - 1, -2.0 ** 31, 2.0 ** 31,
    2.0 ** 40 + 2.0 ** 16, 1e20,
    # past a tie by less than float32 holds: torch rounds float64 to float32, then to 16 bits
    # (1.0 here; NumPy and ml_dtypes round once, to the value above the tie)
    1 + 2.0 ** -11 + 2.0 ** -40, 1 + 2.0 ** -8 + 2.0 ** -40, 1 + 2.0 ** -24 + 2.0 ** -60,
]
INT_EDGES = [0, 1, -1, 7, 255, 256, 257, 259, 2049, 2051, 65504, 65519, 65520, -65520, 65536,
             2 ** 24 + 1, 2 ** 31 - 1, -2 ** 31, 2 ** 53 + 1, 2 ** 32 + 2 ** 24 + 1,
             2 ** 40 + 2 ** 32 + 1, 2 ** 62 + 2 ** 39 + 1, -2 ** 63, 2 ** 63 - 1]


def _edge_source(name: str) -> torch.Tensor:
    d = DTYPES[name][1]
    if d == torch.bool:
        return torch.tensor([False, True, True, False])
    if d.is_floating_point:
        return torch.tensor(FLOAT_EDGES, dtype=torch.float64).to(d)
    info = torch.iinfo(d)
    return torch.tensor([v for v in INT_EDGES if info.min <= v <= info.max], dtype=d)


def _np_of(t: torch.Tensor) -> np.ndarray:
    """A torch tensor as a NumPy array of the same dtype (bfloat16 through ml_dtypes)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _bits(a: np.ndarray) -> np.ndarray:
    """Floating arrays as their bit patterns; others as they are."""
    if a.dtype.kind == "f" or a.dtype == ml_dtypes.bfloat16:
        return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])
    return a


def test_dtype_basics():
    for name in ("bfloat16", "float16"):
        d, t = HALVES[name]
        assert d.itemsize == t.itemsize == 2 and d.is_floating_point
        assert str(d) == f"deepcore.{name}" and d.name == name
        x = dc.ones(3, 2, dtype=d)
        assert x.dtype == d and x.element_size() == 2 and x.is_floating_point()
        assert dc.zeros(2, dtype=d).dtype == dc.tensor([1.0], dtype=d).dtype == d
    assert dc.half == dc.float16 and dc.half is dc.float16
    assert dc.bfloat16 != dc.float16 and len({dc.bfloat16, dc.float16, dc.float32}) == 3


@pytest.mark.parametrize("half", HALVES)
def test_finfo_matches_torch(half):
    a, b = dc.finfo(HALVES[half][0]), torch.finfo(HALVES[half][1])
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(a, field) == getattr(b, field), field


def test_tensor_repr_like_torch():
    # 16-bit values printed as torch prints them: 0.1 as bfloat16's 0.1001, the extremes of
    # each format in scientific notation, integers without decimals
    cases = [[1.0, 2.5], [0.1, -3.0, 10.0], [1 / 3], [float("nan"), float("inf"), -1.5],
             [65504.0, 6e-8], [[1.5, -2.0], [0.125, 8.0]], [1.0, 2.0], [100.0, 3.0]]
    for half, (d, t) in HALVES.items():
        for vals in cases + ([[3e38, 1.0]] if half == "bfloat16" else []):
            want = repr(torch.tensor(vals).to(t)).replace("torch.", "deepcore.")
            assert repr(dc.tensor(vals).to(d)) == want
        assert repr(dc.tensor(1.5, dtype=d)) == f"tensor(1.5000, dtype=deepcore.{half})"
    assert repr(dc.tensor([1.0, 2.5], dtype=dc.bfloat16)) == \
        "tensor([1.0000, 2.5000], dtype=deepcore.bfloat16)"


def test_promote_types_table():
    for a, (da, ta) in DTYPES.items():
        for b, (db, tb) in DTYPES.items():
            assert dc.promote_types(da, db) == _T2D[torch.promote_types(ta, tb)], (a, b)


def test_result_type_with_scalars_and_zero_dim():
    """A 16-bit tensor keeps its dtype against Python numbers and 0-d tensors of its category;
    two 16-bit formats meet in float32."""
    def pairs(lib, d16, other16):
        vec = lib.tensor([1.0, 2.0], dtype=d16)
        return [(vec, 2.5), (vec, 2), (vec, True), (lib.tensor([1, 2]), lib.tensor(1.5, dtype=d16)),
                (vec, lib.tensor(1.0)), (vec, lib.tensor(1.0, dtype=lib.float64)),
                (vec, lib.tensor([1.0], dtype=other16)), (vec, lib.tensor([1.0])),
                (lib.tensor(1.0, dtype=d16), lib.tensor([1, 2])),
                (vec, lib.tensor(1.0, dtype=other16))]
    for (d, t), (d2, t2) in [(HALVES["bfloat16"], HALVES["float16"]),
                             (HALVES["float16"], HALVES["bfloat16"])]:
        for (xa, ya), (xb, yb) in zip(pairs(dc, d, d2), pairs(torch, t, t2)):
            want = _T2D[torch.result_type(xb, yb)]
            assert dc.result_type(xa, ya) == want, (xa, ya)
            assert (xa + ya).dtype == want and (ya * xa).dtype == want, (xa, ya)


@pytest.mark.parametrize("src", list(DTYPES))
def test_casts_bit_exact(src):
    """src -> every dtype on awkward values, against torch bit for bit (NaN: as NaN). Float to
    integer conversions of NaN, inf and out-of-range values are undefined, and left out."""
    ts = _edge_source(src)
    ds = dc.tensor(_np_of(ts))
    assert ds.dtype == DTYPES[src][0]
    np.testing.assert_array_equal(_bits(ds.numpy()), _bits(_np_of(ts)))
    for dst, (dd, td) in DTYPES.items():
        keep = np.ones(ts.shape[0], bool)
        if ts.is_floating_point() and not td.is_floating_point and td != torch.bool:
            v, info = ts.double().numpy(), torch.iinfo(td)
            with np.errstate(invalid="ignore"):
                keep = np.isfinite(v) & (np.trunc(v) >= info.min) & (np.trunc(v) <= info.max)
        idx = np.flatnonzero(keep)
        want = ts[torch.from_numpy(idx)].to(td)
        got = ds[dc.tensor(idx)].to(dd)
        assert got.dtype == dd
        wb, gb = _bits(_np_of(want)), _bits(got.numpy())
        if td.is_floating_point:
            nan = torch.isnan(want).numpy()
            np.testing.assert_array_equal(dc.isnan(got).numpy(), nan, err_msg=f"{src}->{dst}")
            wb, gb = wb[~nan], gb[~nan]
        np.testing.assert_array_equal(gb, wb, err_msg=f"{src} -> {dst} of {ts[idx]}")


@pytest.mark.parametrize("half", HALVES)
def test_numpy_round_trips(half):
    d = HALVES[half][0]
    np_dt = np.float16 if half == "float16" else ml_dtypes.bfloat16
    a = _np_of(_edge_source(half)).copy()
    assert a.dtype == np_dt
    shared = dc.from_numpy(a)
    copied = dc.tensor(a)
    assert shared.dtype == copied.dtype == dc.asarray(a).dtype == d
    np.testing.assert_array_equal(_bits(shared.numpy()), _bits(a))
    np.testing.assert_array_equal(_bits(copied.numpy()), _bits(a))
    a[0] = 7.0  # from_numpy shares memory, tensor copies
    assert shared[0].item() == 7.0 and copied[0].item() == 0.0
    out = shared.numpy()
    assert out.dtype == np_dt and np.shares_memory(out, a)
    assert np.asarray(shared).dtype == np_dt
    # a strided 16-bit view goes out with its strides
    m = dc.tensor(np.arange(12, dtype=np.float32).reshape(3, 4)).to(d)
    assert m.t().numpy().strides == (2, 8)
    np.testing.assert_array_equal(m.t().numpy().astype(np.float32),
                                  np.arange(12, dtype=np.float32).reshape(3, 4).T)
    assert dc.tensor([1.0, 2.5], dtype=d).tolist() == [1.0, 2.5]
    assert dc.tensor(2.5, dtype=d).item() == 2.5


@pytest.mark.parametrize("half", HALVES)
def test_dlpack_with_torch(half):
    d, t = HALVES[half]
    src = _edge_source(half)
    x = dc.from_dlpack(src)
    assert x.dtype == d
    np.testing.assert_array_equal(_bits(x.numpy()), _bits(_np_of(src)))
    src[0] = 3.0  # zero-copy: the deepcore tensor sees torch's write
    assert x[0].item() == 3.0
    y = dc.tensor(_np_of(src))
    back = torch.from_dlpack(y)
    assert back.dtype == t
    np.testing.assert_array_equal(_bits(_np_of(back)), _bits(y.numpy()))
    back[1] = -5.0
    assert y[1].item() == -5.0


@pytest.mark.parametrize("half", HALVES)
def test_safetensors_round_trip_and_torch_files(half, tmp_path):
    d, t = HALVES[half]
    src = _edge_source(half)
    x = dc.tensor(_np_of(src))
    path = tmp_path / "ours.safetensors"
    dc.save({"x": x, "m": x[:12].reshape(3, 4)}, path)
    back = dc.load(path)
    assert back["x"].dtype == back["m"].dtype == d and tuple(back["m"].shape) == (3, 4)
    np.testing.assert_array_equal(_bits(back["x"].numpy()), _bits(x.numpy()))
    # torch reads what deepcore wrote, and deepcore what torch wrote
    theirs = safetensors.torch.load_file(str(path))
    assert theirs["x"].dtype == t
    np.testing.assert_array_equal(_bits(_np_of(theirs["x"])), _bits(x.numpy()))
    path = tmp_path / "torch.safetensors"
    safetensors.torch.save_file({"w": src.reshape(-1, 1).contiguous(), "f32": src.float()},
                                str(path))
    loaded = dc.load(path)
    assert loaded["w"].dtype == d and loaded["f32"].dtype == dc.float32
    np.testing.assert_array_equal(_bits(loaded["w"].numpy()), _bits(_np_of(src.reshape(-1, 1))))


# ---- ops in 16 bits against torch ---------------------------------------------------------------

def _compare_outputs(info, sample, b, outs_d, outs_t, outs_r, half, k, msg):
    """Result dtypes and shapes exactly; values by Note [16-bit tolerances] with k roundings."""
    assert len(outs_d) == len(outs_t), f"{msg}: {len(outs_d)} results, torch has {len(outs_t)}"
    for i, (a, e) in enumerate(zip(outs_d, outs_t)):
        where = f"{msg} output {i}"
        if not isinstance(e, torch.Tensor):
            assert a == e, f"{where}: {a!r} != torch {e!r}"
            continue
        assert isinstance(a, dc.Tensor), f"{where}: expected a tensor, got {type(a).__name__}"
        assert a.dtype == _T2D[e.dtype], f"{where}: dtype {a.dtype} != torch {e.dtype}"
        assert tuple(a.shape) == tuple(e.shape), f"{where}: shape {tuple(a.shape)} != {e.shape}"
        if sample.check is not None:
            continue
        if not e.is_floating_point() or info.name in EXACT:
            np.testing.assert_array_equal(_f64(a), _f64(e), err_msg=where)
            continue
        r = _f64(outs_r[i])
        scale = _max_abs([r] + [_f64(x) for x in b.floats("ref")])
        _judge(_f64(a), _f64(e), r, half, scale, k, where)
    if sample.check is not None and _check_holds(sample, outs_t, b.args["dc"]):
        sample.check(_unpack(outs_d), _unpack(outs_t), b.args["dc"])


def _unpack(outs: list):
    return outs[0] if len(outs) == 1 else outs


def _as_dc(t: torch.Tensor) -> dc.Tensor:
    """A torch tensor's values as a deepcore tensor of the same dtype."""
    t = t.detach()
    if t.dtype in (torch.bfloat16, torch.float16):
        return dc.tensor(t.float().numpy()).to(_T2D[t.dtype])
    return dc.tensor(t.numpy())


def _check_holds(sample, outs_t, dc_args) -> bool:
    """Whether a sample's check of a random result accepts torch's own 16-bit result. A check
    written with float32 tolerances may not; then only the result's shape and dtype are
    compared."""
    try:
        sample.check(_unpack([_as_dc(t) for t in outs_t]), _unpack(outs_t), dc_args)
    except AssertionError:
        return False
    return True


def _upstream(rng, out: torch.Tensor) -> torch.Tensor:
    """A random upstream gradient in the output's dtype (torch); deepcore gets the same values."""
    u = rng.standard_normal(tuple(out.shape)).astype(np.float32)
    return torch.from_numpy(u).to(out.dtype)


def _compare_grads(b, outs_d, outs_t, outs_r, rng, half, msg) -> str | None:
    """Backward through the three results with the same upstream gradient; each leaf's
    gradient has the leaf's dtype, as torch's, and values by Note [16-bit tolerances] with
    COMPOSED roundings. Returns torch's refusal, if torch cannot differentiate."""
    live = [i for i, e in enumerate(outs_t) if isinstance(e, torch.Tensor) and e.requires_grad]
    if not live:
        return None
    for i in live:
        assert outs_d[i].requires_grad, f"{msg}: output {i} does not require grad"
    ups = [_upstream(rng, outs_t[i]) for i in live]
    try:
        torch.autograd.backward([outs_t[i] for i in live], ups)
    except Exception as e:  # noqa: BLE001  (torch's own limits, reported as the skip)
        return f"backward: {type(e).__name__}: {str(e)[:160]}"
    torch.autograd.backward([outs_r[i] for i in live],
                            [u.to(outs_r[i].dtype) for i, u in zip(live, ups)])
    try:
        dc.autograd.backward([outs_d[i] for i in live],
                             [dc.tensor(u.float().numpy()).to(outs_d[i].dtype)
                              for i, u in zip(live, ups)])
    except Exception as e:  # noqa: BLE001  (raised where torch is not: the failure)
        raise AssertionError(f"{msg}: deepcore's backward raises {type(e).__name__}: {e}") from e
    for slot, leaf in b.leaves.items():
        where = f"gradient of input {slot}, {msg}"
        dg, tg, rg = leaf["dc"].grad, leaf["torch"].grad, leaf["ref"].grad
        if tg is None:
            assert dg is None or not np.any(_f64(dg)), f"{where}: torch has none"
            continue
        assert dg is not None, f"{where}: deepcore has none"
        assert dg.dtype == leaf["dc"].dtype and tg.dtype == leaf["torch"].dtype, \
            f"{where}: dtype {dg.dtype}, torch's {tg.dtype}; the leaf is {leaf['dc'].dtype}"
        r = _f64(rg)
        _judge(_f64(dg), _f64(tg), r, half, _max_abs([r]), COMPOSED, where)
    return None


def _autocast(lib, half: str, enabled: bool):
    return lib.autocast("cpu", dtype=HALVES[half][0 if lib is dc else 1], enabled=enabled)


def _run(info: OpInfo, half: str, mode: str):
    """Every sample of the entry, forward and (where differentiable) backward, in one mode:
      16bit       the float32 inputs in `half`, no autocast
      autocast    float32 inputs under deepcore.autocast / torch.autocast to `half`
      autocast16  inputs in `half` under autocast (the fp32 and promote policies widen them)
    Under autocast the two libraries may cast operands at different points (deepcore inside
    composed ops, torch at the ops it lists): values are allowed COMPOSED roundings."""
    rng = np.random.default_rng(zlib.crc32(f"{case_id(info)}-{half}-{mode}".encode()))
    inputs16, auto = mode != "autocast", mode != "16bit"
    k = COMPOSED if auto else _roundings(info)
    refusals, samples = [], _half_samples(info)
    for sample in samples:
        msg = (f"{info.name} {sample!r}{' in ' + half if inputs16 else ''}"
               f"{' under autocast to ' + half if auto else ''}")
        want_grad = _differentiable(info) and sample.grad and sample.check is None
        b = Built(info, sample, half if inputs16 else None, grad=want_grad)
        try:
            with _autocast(torch, half, auto):
                expected = b.call(info, "torch")
        except Exception as e:  # noqa: BLE001  (torch's own limits, reported as the skip)
            refusals.append(f"{type(e).__name__}: {str(e)[:160]}")
            continue
        try:
            with _autocast(dc, half, auto):
                actual = b.call(info, "dc")
        except Exception as e:  # noqa: BLE001  (raised where torch is not: the failure)
            raise AssertionError(f"{msg}: deepcore raises {type(e).__name__}: {e}") from e
        if info.inplace:
            assert actual is b.args["dc"][0], f"{msg}: an in-place op must return its input"
        outs_d, outs_t = _outputs(actual), _outputs(expected)
        outs_r = _outputs(b.call(info, "ref")) if sample.check is None else outs_t
        _compare_outputs(info, sample, b, outs_d, outs_t, outs_r, half, k, msg)
        if want_grad:
            refusal = _compare_grads(b, outs_d, outs_t, outs_r, rng, half, msg)
            if refusal:
                refusals.append(refusal)
    if refusals and len(refusals) >= len(samples):
        pytest.skip("the torch reference raises on every sample: " + refusals[0])


# Known deepcore failures: (entry id, check, dtype or None for both) -> reason; the checks are
# _run's modes. Each is a strict xfail, so a fix shows up as an unexpected pass.
KNOWN: dict = {}


def _known(ids, checks, reason):
    for cid in ids:
        for check in checks:
            KNOWN[(cid, check, None)] = reason


_known(["einsum"], ["autocast"],
       "an outer product ('i,j->ij') goes through matmul and is lowered; torch's einsum "
       "multiplies there and stays float32")


def _params(check, halves=tuple(HALVES)):
    out = []
    for cid, info in ENTRIES.items():
        for half in halves:
            reason = KNOWN.get((cid, check, half)) or KNOWN.get((cid, check, None))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(info, half, id=f"{cid}-{half}", marks=marks))
    return out


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("params", ["float32", "same"])
@pytest.mark.parametrize("half", HALVES)
def test_batch_norm_on_16bit_data_like_torch(half, params, training):
    # 16-bit data with float32 statistics and float32 or 16-bit parameters (autocast leaves
    # batch_norm alone, so a model under autocast feeds it bfloat16 activations and its own
    # float32 weights): values, gradients, their dtypes and the running statistics as torch's.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5, 7)).astype(np.float32) * 3 + 1
    g = rng.standard_normal(x.shape).astype(np.float32)
    pdt = "float32" if params == "float32" else half
    w, b = np.array([1.5, -0.5, 2.0], np.float32), np.array([0.25, 0.0, -1.0], np.float32)
    d = dc.nn.BatchNorm2d(3)
    t = torch.nn.BatchNorm2d(3)
    for m, lib in ((d, dc), (t, torch)):
        m.weight.data = lib.tensor(w)
        m.bias.data = lib.tensor(b)
        m.running_mean.data = lib.tensor(np.array([0.5, -1.0, 2.0], np.float32))
        m.to(getattr(lib, pdt))
        m.train(training)
    dx = dc.tensor(x).to(HALVES[half][0]).requires_grad_()
    tx = torch.tensor(x).to(HALVES[half][1]).requires_grad_()
    dy, ty = d(dx), t(tx)
    dy.backward(dc.tensor(g).to(dy.dtype))
    ty.backward(torch.tensor(g).to(ty.dtype))
    ulp = float(torch.finfo(HALVES[half][1]).eps)
    pairs = [(dy.detach(), ty.detach()), (dx.grad, tx.grad), (d.weight.grad, t.weight.grad),
             (d.bias.grad, t.bias.grad), (d.running_mean, t.running_mean),
             (d.running_var, t.running_var)]
    for a, e in pairs:
        assert str(a.dtype).split(".")[-1] == str(e.dtype).split(".")[-1]
        ev = e.float().numpy()
        # float32 statistics: one rounding of the result; 16-bit parameters: torch may round
        # its statistics too, a few ulps of the result's scale
        tol = (1 if params == "float32" else 4) * ulp * max(1.0, float(np.abs(ev).max()))
        np.testing.assert_allclose(a.float().numpy(), ev, rtol=0, atol=tol)


@pytest.mark.parametrize("half", HALVES)
def test_uniform_stays_below_its_upper_bound(half):
    # A float32 draw within half a 16-bit ulp of `to` rounds up to `to`; about 2,600 of these
    # 2M draws would, and uniform_'s interval is half-open.
    dt = getattr(dc, half)
    for t in (dc.empty(2_000_000, dtype=dt), dc.empty(1000, 2000, dtype=dt).t()):
        v = t.uniform_(-1.0, 2.0).float().numpy()
        assert v.min() >= -1.0 and v.max() < 2.0, (v.min(), v.max())
    v = dc.rand(2_000_000, dtype=dt).float().numpy()
    assert v.min() >= 0.0 and v.max() < 1.0


@pytest.mark.parametrize("info,half", _params("16bit"))
def test_op_16bit(info, half):
    _run(info, half, "16bit")


@pytest.mark.parametrize("info,half", _params("autocast", ("bfloat16",)))
def test_autocast_op(info, half):
    _run(info, half, "autocast")


@pytest.mark.parametrize("info,half", _params("autocast16", ("bfloat16",)))
def test_autocast_op_16bit_inputs(info, half):
    _run(info, half, "autocast16")


# ---- autocast semantics -----------------------------------------------------------------------

def _autocast_trace(lib, full: bool = False) -> list:
    """(enabled, autocast dtype, matmul result dtype) at each level of nested contexts. Unless
    `full`, each context names its dtype and the dtype is read only while enabled."""
    a, b = lib.ones(3, 4), lib.ones(4, 2)

    def state():
        on = lib.is_autocast_enabled("cpu")
        return (on, str(lib.get_autocast_dtype("cpu")).split(".")[-1] if on or full else None,
                str(lib.matmul(a, b).dtype).split(".")[-1])
    out = [state()]
    with lib.autocast("cpu", dtype=lib.bfloat16):
        out.append(state())
        with lib.autocast("cpu", dtype=lib.float16):
            out.append(state())
            with lib.autocast("cpu", dtype=lib.float16, enabled=False):
                out.append(state())
                with lib.autocast("cpu", dtype=lib.bfloat16):
                    out.append(state())
                out.append(state())
            if full:  # no dtype: the enclosing context's
                with lib.autocast("cpu"):
                    out.append(state())
                with lib.autocast("cpu", enabled=False):
                    out.append(state())
            out.append(state())
        out.append(state())
    out.append(state())
    return out


def test_autocast_nesting_like_torch():
    got = _autocast_trace(dc)
    assert got == _autocast_trace(torch)
    assert got[0] == (False, None, "float32") and got[1] == (True, "bfloat16", "bfloat16")
    assert got[3] == (False, None, "float32") and got[-1] == got[0]
    assert dc.amp.autocast is dc.autocast
    assert dc.amp.is_autocast_enabled is dc.is_autocast_enabled
    assert dc.get_autocast_dtype("cpu") == dc.bfloat16 == _T2D[torch.get_autocast_dtype("cpu")]
    with dc.autocast("cpu"):
        assert dc.get_autocast_dtype("cpu") == dc.bfloat16


def test_autocast_dtype_inherited_like_torch():
    assert _autocast_trace(dc, full=True) == _autocast_trace(torch, full=True)


def test_autocast_decorator_and_exceptions():
    a, b = dc.ones(3, 4), dc.ones(4, 2)

    @dc.autocast("cpu", dtype=dc.float16)
    def f16_matmul(x, y):
        assert dc.get_autocast_dtype("cpu") == dc.float16
        return dc.matmul(x, y)

    @dc.amp.autocast("cpu")
    def fails(x):
        dc.matmul(x, x)  # (3, 4) @ (3, 4)
    assert f16_matmul.__name__ == "f16_matmul"
    assert f16_matmul(a, b).dtype == dc.float16 and not dc.is_autocast_enabled()
    with dc.autocast("cpu"):
        assert f16_matmul(a, b).dtype == dc.float16
        assert dc.matmul(a, b).dtype == dc.bfloat16  # the decorator restored the enclosing state
        with pytest.raises(KeyError), dc.autocast("cpu", dtype=dc.float16):
            {}["missing"]
        assert dc.is_autocast_enabled() and dc.get_autocast_dtype("cpu") == dc.bfloat16
        with pytest.raises(ValueError, match="matmul"), dc.autocast("cpu", enabled=False):
            fails(a)
        assert dc.is_autocast_enabled() and dc.matmul(a, b).dtype == dc.bfloat16
    with pytest.raises(ValueError, match="matmul"):
        fails(a)
    assert not dc.is_autocast_enabled() and dc.matmul(a, b).dtype == dc.float32


def test_autocast_matmul_operator():
    a, b = dc.ones(3, 4), dc.ones(4, 2)
    with dc.autocast("cpu"):
        assert (a @ b).dtype == dc.bfloat16
        assert (np.ones((3, 4), np.float32) @ b).dtype == dc.bfloat16


def test_autocast_bad_arguments():
    for bad in (dc.float32, dc.float64, dc.int32):
        with pytest.raises(ValueError, match="dtype"):
            dc.autocast("cpu", dtype=bad)
    for bad in ("tpu", "gpu", "cpux"):
        with pytest.raises(ValueError, match="device_type"):
            dc.autocast(bad)
    with pytest.raises(ValueError, match="device_type"):
        dc.get_autocast_dtype("tpu")
    assert not dc.is_autocast_enabled()


def test_autocast_leaves_float64_alone():
    """float64 is never cast, by any policy (as in torch)."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in [(2, 3, 5, 5), (4, 3, 3, 3), (4,), (6, 4), (2, 4)]]

    def run(lib, fn):
        x, w, b, m, v = [dc.tensor(a) if lib is dc else torch.from_numpy(a) for a in arrays]
        return {"matmul": lib.matmul(m, m.T), "linear": fn.linear(m, m[:3]),
                "conv2d": fn.conv2d(x, w, b), "mse_loss": fn.mse_loss(v, v * 2),
                "cat": lib.cat([v, v]), "softmax": fn.softmax(m, 1)}
    plain = run(dc, F)
    with dc.autocast("cpu"):
        got = run(dc, F)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = run(torch, TF)
    for name, t in want.items():
        assert got[name].dtype == plain[name].dtype == dc.float64 == _T2D[t.dtype], name
        np.testing.assert_allclose(_f64(got[name]), _f64(t), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_autocast_promote_and_fp32_with_mixed_inputs():
    """cat / stack widen mixed 16-bit and float32 inputs to float32; a loss given bfloat16
    computes in float32; as torch does under autocast."""
    def run(lib, F):
        x32 = lib.ones(2, 3)
        x16 = lib.ones(2, 3).to(lib.bfloat16)
        h16 = lib.ones(2, 3).to(lib.float16)
        with lib.autocast("cpu", dtype=lib.bfloat16):
            return [str(t.dtype).split(".")[-1] for t in (
                lib.cat([x16, x32]), lib.stack([x32, x16]),
                lib.cat([x16, x16]), F.mse_loss(x16, x16),
                F.cross_entropy(x16, lib.zeros(2).long()),
                F.linear(x32, x16), lib.matmul(h16, x32.T), x16 + x32, x16.prod())]
    assert run(dc, F) == run(torch, TF)


def _conv_net(lib, weights=None):
    """Conv2d -> ReLU -> Flatten -> Linear; with `weights` (NumPy arrays by name) loaded."""
    model = lib.nn.Sequential(lib.nn.Conv2d(3, 4, 3, padding=1), lib.nn.ReLU(),
                              lib.nn.Flatten(), lib.nn.Linear(4 * 6 * 6, 5))
    if weights is not None:
        conv = dc.tensor if lib is dc else torch.from_numpy
        model.load_state_dict({k: conv(v) for k, v in weights.items()})
    return model


def test_model_under_autocast_matches_torch():
    rng = np.random.default_rng(11)
    torch.manual_seed(0)
    weights = {k: v.detach().numpy().copy() for k, v in _conv_net(torch).state_dict().items()}
    x = rng.standard_normal((8, 3, 6, 6)).astype(np.float32)
    y = rng.standard_normal((8, 5)).astype(np.float32)
    results = {}
    for lib, fn in ((dc, F), (torch, TF)):
        model = _conv_net(lib, weights)
        conv = dc.tensor if lib is dc else torch.from_numpy
        with lib.autocast("cpu", dtype=lib.bfloat16):
            out = model(conv(x))
            loss = fn.mse_loss(out, conv(y))
        assert str(out.dtype).endswith("bfloat16") and str(loss.dtype).endswith("float32")
        loss.backward()
        results[lib] = (out, loss, {k: p.grad for k, p in model.named_parameters()})
    (out_d, loss_d, g_d), (out_t, loss_t, g_t) = results[dc], results[torch]
    eps = 2.0 ** -FORMAT["bfloat16"][0]
    # Both round the same operands to bfloat16 and each product once: outputs within an ulp,
    # the loss and gradients within a few bfloat16 roundings at their scale.
    np.testing.assert_allclose(_f64(out_d), _f64(out_t), rtol=eps,
                               atol=eps * _max_abs([_f64(out_t)]))
    np.testing.assert_allclose(loss_d.item(), loss_t.item(), rtol=COMPOSED * eps)
    for name, tg in g_t.items():
        dg = g_d[name]
        assert dg.dtype == dc.float32 and tg.dtype == torch.float32, name
        np.testing.assert_allclose(_f64(dg), _f64(tg), rtol=eps,
                                   atol=COMPOSED * eps * _max_abs([_f64(tg)]), err_msg=name)


# ---- float16 and GradScaler -------------------------------------------------------------------

def _linear(lib, weights, dtype=None):
    model = lib.nn.Linear(*weights["weight"].shape[::-1])
    conv = lib.tensor if lib is dc else torch.from_numpy
    model.load_state_dict({k: conv(v) for k, v in weights.items()})
    return model.to(dtype) if dtype is not None else model


def _linear_weights(rng, n_in, n_out):
    return {"weight": rng.uniform(-0.5, 0.5, (n_out, n_in)).astype(np.float32),
            "bias": rng.uniform(-0.5, 0.5, n_out).astype(np.float32)}


def test_grad_scaler_keeps_small_float16_gradients():
    """A float16 model's gradients of a loss scaled down to 1e-9 flush to zero (float16's
    smallest subnormal is 6e-8); scaled by 2**16 they survive, equal to torch's."""
    rng = np.random.default_rng(5)
    weights = _linear_weights(rng, 6, 3)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    grads = {}
    for lib in (dc, torch):
        model = _linear(lib, weights, lib.float16)
        xs = (dc.tensor(x) if lib is dc else torch.from_numpy(x)).to(lib.float16)
        (model(xs).float().sum() * 1e-9).backward()
        assert str(model.weight.grad.dtype).endswith("float16")
        assert not np.any(_f64(model.weight.grad)) and not np.any(_f64(model.bias.grad))
        model.zero_grad()
        scaler = lib.amp.GradScaler("cpu")
        assert scaler.get_scale() == 2.0 ** 16
        scaler.scale(model(xs).float().sum() * 1e-9).backward()
        grads[lib] = [_f64(model.weight.grad), _f64(model.bias.grad)]
        assert all(np.all(g != 0) for g in grads[lib])
    for d, t in zip(grads[dc], grads[torch]):
        # float32 sums of the same float16 products, rounded once: within an ulp
        np.testing.assert_allclose(d, t, rtol=2.0 ** -FORMAT["float16"][0], atol=0)


def test_grad_scaler_refuses_float16_gradients():
    model = nn.Linear(3, 2).to(dc.float16)
    scaler = dc.amp.GradScaler("cpu")
    scaler.scale(model(dc.ones(2, 3).to(dc.float16)).float().sum()).backward()
    with pytest.raises(ValueError, match="FP16 gradients"):
        scaler.unscale_(dc.optim.SGD(model.parameters(), lr=0.1))


def _scaled_training(lib, weights, x, factors):
    """SGD on float32 parameters under float16 autocast with a GradScaler. Per step: the scale
    after update(), whether a gradient was inf/NaN once unscaled, and the largest finite
    gradient; the step must leave the parameters alone when one was."""
    model = _linear(lib, weights)
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    scaler = lib.amp.GradScaler("cpu", init_scale=2.0 ** 16, growth_interval=2)
    xs = dc.tensor(x) if lib is dc else torch.from_numpy(x)
    trace = []
    for f in factors:
        opt.zero_grad()
        with lib.autocast("cpu", dtype=lib.float16):
            out = model(xs)
        before = [_f64(p) for p in model.parameters()]
        scaler.scale(out.float().sum() * f).backward()
        scaler.unscale_(opt)
        grads = [_f64(p.grad) for p in model.parameters()]
        found_inf = not all(np.isfinite(g).all() for g in grads)
        scaler.step(opt)
        scaler.update()
        after = [_f64(p) for p in model.parameters()]
        if found_inf:
            assert all(np.array_equal(a, b) for a, b in zip(after, before)), "stepped on inf"
        trace.append((scaler.get_scale(), found_inf, _max_abs(grads)))
    return trace, [_f64(p) for p in model.parameters()]


def test_grad_scaler_steps_like_torch():
    """The upstream gradient of the float16 output is factor * scale: 1e-4 * 2**16 fits in
    float16, 1.0 * 2**16 overflows to inf; 1e-9 would flush to zero unscaled. Overflowing
    steps are skipped and halve the scale; every second clean step doubles it: the same scales,
    skips and parameters as torch."""
    rng = np.random.default_rng(9)
    weights = _linear_weights(rng, 8, 4)
    x = rng.uniform(-1, 1, (5, 8)).astype(np.float32)
    factors = [1e-4, 1.0, 1e-4, 1e-4, 1e-4, 1.0, 1.0, 1e-4, 1e-4, 1e-9]
    got, params_d = _scaled_training(dc, weights, x, factors)
    want, params_t = _scaled_training(torch, weights, x, factors)
    assert [(s, k) for s, k, _ in got] == [(s, k) for s, k, _ in want]
    scales = [2.0 ** 16] + [s for s, _, _ in want]
    steps = [b / a for a, b in zip(scales, scales[1:])]
    assert 0.5 in steps and 2.0 in steps  # the sequence both backed off and grew
    assert any(k for _, k, _ in want) and not all(k for _, k, _ in want)
    assert 0 < got[-1][2] < 1e-7  # the 1e-9 step's gradients survived the float16 backward
    # Each applied step's gradient went through float16 products rounded once: an ulp apart.
    bound = sum(0.1 * 2.0 ** -FORMAT["float16"][0] * g for _, skipped, g in want if not skipped)
    for d, t in zip(params_d, params_t):
        np.testing.assert_allclose(d, t, rtol=0, atol=bound + 16 * EPS32 * _max_abs([t]))


def test_module_half_and_bfloat16():
    model = nn.Linear(3, 2)
    assert model.half() is model and model.weight.dtype == dc.float16
    assert model.bfloat16() is model and model.bias.dtype == dc.bfloat16
