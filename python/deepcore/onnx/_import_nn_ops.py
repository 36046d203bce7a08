"""ONNX operators, continued from _import_ops: convolution, pooling, normalisation, the
recurrent layers, and the calls of deepcore's functions (Note [deepcore functions in ONNX] in
_exporter.py). Importing this module registers their builders in _import_ops' tables."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .. import _C
from .._C import Tensor
from ._import_ops import (NP_DTYPES, NodeSpec, _int_tensor, _ints, _norm_axis, _on_device_of,
                          _torch_pads, function, op)

# ---- convolution and pooling ------------------------------------------------------------------

_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _spatial(spec: NodeSpec, n: Optional[int]) -> Dict[str, Any]:
    """The window attributes shared by Conv, ConvTranspose and the pools, checked at load."""
    auto_pad = spec.attr("auto_pad", "NOTSET")
    if auto_pad not in _AUTO_PADS:
        raise spec.invalid(f"auto_pad='{auto_pad}' (expected one of {', '.join(_AUTO_PADS)})")
    kernel = spec.attr("kernel_shape")
    n = len(kernel) if kernel else n
    if n is not None and n not in (1, 2):
        raise spec.unsupported(f"{n}-D windows (deepcore runs 1-D and 2-D convolution and "
                               "pooling)")
    pads = spec.attr("pads")
    if pads is not None and auto_pad != "NOTSET" and any(pads):
        raise spec.invalid(f"explicit pads {pads} together with auto_pad='{auto_pad}'")
    return {"auto_pad": auto_pad, "kernel": kernel, "pads": pads,
            "strides": spec.attr("strides"), "dilations": spec.attr("dilations")}


def _window_pads(a: Dict[str, Any], sizes: Sequence[int], kernel: Sequence[int],
                 strides: Sequence[int], dilations: Sequence[int]) -> List[int]:
    """ONNX pads [begin..., end...] for one call: explicit, or from auto_pad SAME_* / VALID."""
    n = len(kernel)
    if a["auto_pad"] in ("SAME_UPPER", "SAME_LOWER"):
        lo, hi = [], []
        for size, k, s, d in zip(sizes, kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            lo.append(small if a["auto_pad"] == "SAME_UPPER" else big)
            hi.append(total - lo[-1])
        return lo + hi
    if a["auto_pad"] == "VALID" or a["pads"] is None:
        return [0] * (2 * n)
    return list(a["pads"])


@op("Conv", attrs=("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"))
def _conv(spec: NodeSpec):
    w_shape = spec.shapes[1]
    a = _spatial(spec, len(w_shape) - 2 if w_shape else None)
    group = spec.attr("group", 1)

    def run(x, w, b=None):
        n = w.dim() - 2
        if n not in (1, 2) or x.dim() != n + 2:
            raise NotImplementedError(f"[onnx] Conv: input {tuple(x.shape)} and weight "
                                      f"{tuple(w.shape)}: deepcore runs 1-D and 2-D convolution")
        kernel, strides = list(w.shape[2:]), a["strides"] or [1] * n
        dil = a["dilations"] or [1] * n
        pads = _window_pads(a, list(x.shape[2:]), kernel, strides, dil)
        fn = _C.conv2d if n == 2 else _C.conv1d
        if pads[:n] == pads[n:]:
            return fn(x, w, b, strides, pads[:n], dil, group)
        return fn(_C._pad(x, _torch_pads(pads), "constant", 0.0), w, b, strides, [0] * n, dil,
                  group)
    return run


@op("ConvTranspose", attrs=("auto_pad", "dilations", "group", "kernel_shape", "output_padding",
                            "output_shape", "pads", "strides"))
def _conv_transpose(spec: NodeSpec):
    w_shape = spec.shapes[1]
    a = _spatial(spec, len(w_shape) - 2 if w_shape else None)
    group, out_shape = spec.attr("group", 1), spec.attr("output_shape")

    def run(x, w, b=None):
        n = w.dim() - 2
        if n not in (1, 2) or x.dim() != n + 2:
            raise NotImplementedError(f"[onnx] ConvTranspose: input {tuple(x.shape)} and weight "
                                      f"{tuple(w.shape)}: deepcore runs 1-D and 2-D convolution")
        kernel, strides = list(w.shape[2:]), a["strides"] or [1] * n
        dil, opad = a["dilations"] or [1] * n, spec.attr("output_padding") or [0] * n
        sizes = list(x.shape[2:])
        full = [s * (i - 1) + p + (k - 1) * d + 1
                for i, k, s, d, p in zip(sizes, kernel, strides, dil, opad)]
        if out_shape is not None or a["auto_pad"] in ("SAME_UPPER", "SAME_LOWER"):
            target = list(out_shape)[-n:] if out_shape is not None else \
                [i * s for i, s in zip(sizes, strides)]
            total = [f - t for f, t in zip(full, target)]
            if any(t < 0 for t in total):
                raise ValueError(f"[onnx] ConvTranspose: output_shape {target} is larger than "
                                 f"the full output {full}")
            upper = a["auto_pad"] == "SAME_UPPER"
            lo = [t // 2 if upper else t - t // 2 for t in total]
            pads = lo + [t - low for t, low in zip(total, lo)]
        else:
            pads = [0] * (2 * n) if a["auto_pad"] == "VALID" or a["pads"] is None else a["pads"]
        fn = _C.conv_transpose2d if n == 2 else _C.conv_transpose1d
        if pads[:n] == pads[n:]:
            return fn(x, w, b, strides, list(pads[:n]), opad, group, dil)
        y = fn(x, w, b, strides, [0] * n, opad, group, dil)
        for i in range(n):  # asymmetric padding crops the full output
            y = _C._slice(y, 2 + i, pads[i], full[i] - pads[i + n], 1)
        return y
    return run


def _fits_native(pads: List[int], kernel: Sequence[int], n: int) -> bool:
    """deepcore's pools take symmetric padding of at most half the window."""
    return pads[:n] == pads[n:] and all(p <= k // 2 for p, k in zip(pads[:n], kernel))


@op("MaxPool", attrs=("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                      "storage_order", "strides"))
def _max_pool(spec: NodeSpec):
    a = _spatial(spec, None)
    if not a["kernel"]:
        raise spec.invalid("attribute 'kernel_shape' is required")
    if spec.n_out > 1 and spec.out_used[1]:
        raise spec.unsupported("the Indices output")
    kernel, n, ceil = list(a["kernel"]), len(a["kernel"]), bool(spec.attr("ceil_mode", 0))
    strides, dil = a["strides"] or [1] * n, a["dilations"] or [1] * n
    fn = _C._max_pool2d if n == 2 else _C._max_pool1d

    def run(x):
        pads = _window_pads(a, list(x.shape[2:]), kernel, strides, dil)
        if _fits_native(pads, kernel, n):
            y = fn(x, kernel, strides, pads[:n], dil, ceil)[0]
        else:  # -inf padding never wins a max
            y = fn(_C._pad(x, _torch_pads(pads), "constant", -math.inf), kernel, strides,
                   [0] * n, dil, ceil)[0]
        return (y, None) if spec.n_out > 1 else y
    return run


@op("AveragePool", attrs=("auto_pad", "ceil_mode", "count_include_pad", "dilations",
                          "kernel_shape", "pads", "strides"))
def _avg_pool(spec: NodeSpec):
    a = _spatial(spec, None)
    if not a["kernel"]:
        raise spec.invalid("attribute 'kernel_shape' is required")
    kernel, n, ceil = list(a["kernel"]), len(a["kernel"]), bool(spec.attr("ceil_mode", 0))
    if a["dilations"] and any(d != 1 for d in a["dilations"]):
        raise spec.unsupported(f"dilations {a['dilations']} (deepcore's average pool has none)")
    strides, include = a["strides"] or [1] * n, bool(spec.attr("count_include_pad", 0))
    fn = _C._avg_pool2d if n == 2 else _C._avg_pool1d
    extra = (None,) if n == 2 else ()  # avg_pool2d's divisor_override

    def run(x):
        pads = _window_pads(a, list(x.shape[2:]), kernel, strides, [1] * n)
        if _fits_native(pads, kernel, n):
            return fn(x, kernel, strides, pads[:n], ceil, include, *extra)
        tp = _torch_pads(pads)
        y = fn(_C._pad(x, tp, "constant", 0.0), kernel, strides, [0] * n, ceil, True, *extra)
        if include:
            return y
        # mean over the real elements only: divide by the pooled share of ones
        ones = _on_device_of(_C._full([1, 1] + list(x.shape[2:]), 1.0, x.dtype, False), x)
        share = fn(_C._pad(ones, tp, "constant", 0.0), kernel, strides, [0] * n, ceil, True,
                   *extra)
        return _C.div(y, share)
    return run


@op("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(spec: NodeSpec):
    fn = _C.mean if spec.op == "GlobalAveragePool" else _C.amax

    def run(x):
        if spec.op == "GlobalAveragePool" and x.dim() == 4:
            # deepcore's adaptive pool kernel, which adaptive_avg_pool2d(x, 1) ran: the same
            # mean, summed in its order
            return _C._adaptive_avg_pool2d(x, [1, 1])
        return fn(x, list(range(2, x.dim())), True)
    return run


_COORDS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")
_NEAREST = {"round_prefer_floor": lambda v: np.ceil(v - 0.5), "round_prefer_ceil":
            lambda v: np.floor(v + 0.5), "floor": np.floor, "ceil": np.ceil}


def _resize_source(n_in: int, n_out: int, scale: float, coord: str) -> np.ndarray:
    """Source coordinate of every output position along one axis (the ONNX formulas)."""
    x = np.arange(n_out, dtype=np.float64)
    if coord == "align_corners":
        return x * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros_like(x)
    if coord == "asymmetric":
        return x / scale
    if coord == "pytorch_half_pixel" and n_out == 1:
        return np.zeros_like(x)
    return (x + 0.5) / scale - 0.5


@op("Resize", attrs=("antialias", "axes", "coordinate_transformation_mode", "cubic_coeff_a",
                     "exclude_outside", "extrapolation_value", "keep_aspect_ratio_policy",
                     "mode", "nearest_mode"))
def _resize(spec: NodeSpec):
    mode = spec.attr("mode", "nearest")
    coord = spec.attr("coordinate_transformation_mode", "half_pixel")
    nearest = spec.attr("nearest_mode", "round_prefer_floor")
    if mode not in ("nearest", "linear"):
        raise spec.unsupported(f"mode='{mode}' (deepcore resizes with 'nearest' and 'linear')")
    if coord not in _COORDS:
        raise spec.unsupported(f"coordinate_transformation_mode='{coord}'")
    if nearest not in _NEAREST:
        raise spec.invalid(f"nearest_mode='{nearest}'")
    for key, default in (("antialias", 0), ("exclude_outside", 0),
                         ("keep_aspect_ratio_policy", "stretch")):
        if spec.attr(key, default) != default:
            raise spec.unsupported(f"{key}={spec.attr(key)!r}")
    axes_attr = spec.attr("axes")
    cache: Dict[tuple, tuple] = {}  # per (axis length in, out, scale): source indices, weights

    def plan(n_in: int, n_out: int, scale: float, like: Tensor) -> tuple:
        key = (n_in, n_out, scale, str(like.device), like.dtype)
        if key not in cache:
            src = _resize_source(n_in, n_out, scale, coord)
            if mode == "nearest":
                idx = np.clip(_NEAREST[nearest](src), 0, n_in - 1).astype(np.int64)
                cache[key] = (_int_tensor(idx.tolist(), like), None, None)
            else:
                lo = np.floor(src)
                lam = (src - lo).astype(NP_DTYPES[like.dtype])
                i0, i1 = (np.clip(v, 0, n_in - 1).astype(np.int64) for v in (lo, lo + 1))
                cache[key] = (_int_tensor(i0.tolist(), like), _int_tensor(i1.tolist(), like),
                              _on_device_of(_C.from_numpy(lam), like))
        return cache[key]

    def run(x, roi=None, scales=None, sizes=None):
        rank = x.dim()
        axes = [_norm_axis(a, rank, "Resize") for a in axes_attr] if axes_attr else \
            list(range(rank))
        shape = list(x.shape)
        if sizes is not None and sizes.numel():
            outs = _ints(sizes)
            factors = [o / shape[a] for o, a in zip(outs, axes)]
        elif scales is not None and scales.numel():
            factors = [float(v) for v in scales.tolist()]
            outs = [math.floor(shape[a] * f) for a, f in zip(axes, factors)]
        else:
            raise ValueError("[onnx] Resize: needs 'scales' or 'sizes'")
        if len(outs) != len(axes):
            raise ValueError(f"[onnx] Resize: {len(outs)} sizes/scales for input of shape "
                             f"{tuple(shape)} and axes {axes}")
        for a, n_out, f in zip(axes, outs, factors):
            if n_out == shape[a] and f == 1.0:
                continue  # every coordinate mode maps an unscaled axis onto itself
            i0, i1, lam = plan(shape[a], n_out, f, x)
            if mode == "nearest":
                x = _C.index_select(x, a, i0)
                continue
            lam = _C._reshape(lam, [n_out] + [1] * (rank - a - 1))
            lo = _C.index_select(x, a, i0)
            x = _C.add(lo, _C.mul(_C.sub(_C.index_select(x, a, i1), lo), lam))
        return x
    return run


# ---- normalisation ------------------------------------------------------------------------------

@op("BatchNormalization", attrs=("epsilon", "momentum", "training_mode"))
def _batch_norm(spec: NodeSpec):
    eps = spec.attr("epsilon", 1e-5)
    if spec.attr("training_mode", 0) or spec.n_out > 1 and any(spec.out_used[1:]):
        raise spec.unsupported("training_mode=1 (running-statistics outputs); export the model "
                               "in eval mode")
    return lambda x, scale, b, mean, var: _C._batch_norm(x, mean, var, scale, b, False, 0.0, eps)


@op("InstanceNormalization", attrs=("epsilon",))
def _instance_norm(spec: NodeSpec):
    eps = spec.attr("epsilon", 1e-5)
    return lambda x, scale, b: _C._instance_norm(x, None, None, scale, b, True, 0.0, eps)


@op("LayerNormalization", attrs=("axis", "epsilon", "stash_type"), since=17)
def _layer_norm(spec: NodeSpec):
    axis, eps = spec.attr("axis", -1), spec.attr("epsilon", 1e-5)
    stats = spec.n_out > 1 and any(spec.out_used[1:])

    def run(x, scale, b=None):
        a = _norm_axis(axis, x.dim(), "LayerNormalization")
        shape = list(x.shape[a:])
        if list(scale.shape) == shape and (b is None or list(b.shape) == shape):
            y = _C.layer_norm(x, shape, scale, b, eps)
        else:  # scale/bias that only broadcast to the normalised shape
            y = _C.mul(_C.layer_norm(x, shape, None, None, eps), scale)
            y = y if b is None else _C.add(y, b)
        if spec.n_out == 1:
            return y
        if not stats:
            return (y,) + (None,) * (spec.n_out - 1)
        dims = list(range(a, x.dim()))
        mean = _C.mean(x, dims, True)
        inv_std = _C.rsqrt(_C.add(_C._var(x, dims, 0.0, True), eps))
        return (y, mean, inv_std)[:spec.n_out]
    return run


@op("GroupNormalization", attrs=("epsilon", "num_groups", "stash_type"), since=18)
def _group_norm(spec: NodeSpec):
    eps, groups = spec.attr("epsilon", 1e-5), spec.attr("num_groups")
    if groups is None:
        raise spec.invalid("attribute 'num_groups' is required")
    per_group = spec.opset < 21  # opset 18-20: scale and bias hold one value per group

    def run(x, scale, b):
        if per_group:
            c = x.shape[1]
            scale, b = (_C._reshape(_C._expand(_C._reshape(t, [groups, 1]),
                                               [groups, c // groups]), [c]) for t in (scale, b))
        return _C._group_norm(x, groups, scale, b, eps)
    return run


@op("LpNormalization", attrs=("axis", "p"))
def _lp_norm(spec: NodeSpec):
    axis, p = spec.attr("axis", -1), spec.attr("p", 2)
    if p not in (1, 2):
        raise spec.invalid(f"p={p} (expected 1 or 2)")
    return lambda x: _C.div(x, _C._norm(x, float(p), [axis], True))


# ---- recurrent layers ---------------------------------------------------------------------------

# ONNX gate order -> deepcore's (PyTorch's): LSTM iofc -> ifco, GRU zrh -> rzh.
_RNN_GATES = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}
_RNN_ACTS = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"]}


@op("LSTM", "GRU", "RNN", attrs=("activation_alpha", "activation_beta", "activations", "clip",
                                 "direction", "hidden_size", "input_forget", "layout",
                                 "linear_before_reset"), foldable=False)
def _rnn(spec: NodeSpec):
    kind = spec.op
    direction = spec.attr("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise spec.invalid(f"direction='{direction}'")
    nd = 2 if direction == "bidirectional" else 1
    for key in ("clip", "activation_alpha", "activation_beta"):
        if key in spec.attrs:
            raise spec.unsupported(f"attribute '{key}'")
    if kind != "GRU" and "linear_before_reset" in spec.attrs:
        raise spec.invalid("attribute 'linear_before_reset' belongs to GRU")
    if spec.attr("input_forget", 0):
        raise spec.unsupported("input_forget=1 (coupled input and forget gates)")
    acts = [s.lower() for s in spec.attr("activations", [])]
    mode = {"LSTM": "LSTM", "GRU": "GRU"}.get(kind, "RNN_TANH")
    if kind == "RNN":
        if acts and (set(acts) - {"tanh", "relu"} or len(set(acts)) > 1):
            raise spec.unsupported(f"activations {acts} (deepcore's RNN uses Tanh or Relu)")
        mode = "RNN_RELU" if acts and acts[0] == "relu" else "RNN_TANH"
    elif acts and acts != _RNN_ACTS[kind] * nd:
        raise spec.unsupported(f"activations {acts} (deepcore runs the default "
                               f"{_RNN_ACTS[kind]})")
    if kind == "LSTM" and spec.has(7):  # peepholes: only all-zero ones (what exporters emit)
        p = spec.consts[7] if spec.consts[7] is not None else spec.initial[7]
        if p is None or bool(_C.any(_C.ne(p, 0.0)).item()):
            raise spec.unsupported("peephole weights P")
    hidden, layout = spec.attr("hidden_size"), spec.attr("layout", 0)
    lbr = bool(spec.attr("linear_before_reset", 0))
    order = _RNN_GATES[kind]
    cache: Dict[tuple, Tensor] = {}  # gate-reordering index per (hidden size, device)

    def reorder(t: Tensor, h: int) -> Tensor:
        key = (h, str(t.device))
        if key not in cache:
            rows = [c * h + j for c in order for j in range(h)]
            cache[key] = _int_tensor(rows, t)
        return _C.index_select(t, 0, cache[key])

    def run(x, w, r, b=None, lens=None, h0=None, c0=None, p=None):
        if layout:
            x = _C.transpose(x, 0, 1)
        steps, batch = x.shape[0], x.shape[1]
        h = hidden or r.shape[-1]
        pack = None if lens is None else _packing(_ints(lens), steps, batch, kind)
        if h0 is not None and layout:
            h0 = _C.transpose(h0, 0, 1)
        if c0 is not None and layout:
            c0 = _C.transpose(c0, 0, 1)
        g = len(order) * h
        outs, hs, cs = [], [], []
        for d in range(nd):
            b_ih = b_hh = None
            if b is not None:
                bd = _C.select(b, 0, d)
                b_ih, b_hh = reorder(_C.narrow(bd, 0, 0, g), h), reorder(_C.narrow(bd, 0, g, g), h)
            zeros = None if h0 is not None and (c0 is not None or kind != "LSTM") else \
                _on_device_of(_C._full([batch, h], 0.0, x.dtype, False), x)
            hd = _C.select(h0, 0, d) if h0 is not None else zeros
            cd = None if kind != "LSTM" else (_C.select(c0, 0, d) if c0 is not None else zeros)
            args = (reorder(_C.select(w, 0, d), h), reorder(_C.select(r, 0, d), h), b_ih, b_hh,
                    None)
            reverse = direction == "reverse" or d == 1
            if pack is None:
                res = _C._rnn_layer(x, hd, cd, *args, None, mode, reverse, lbr)
            else:
                res = _run_packed(x, hd, cd, args, pack, mode, reverse, lbr)
            outs.append(res[0])
            hs.append(res[1])
            if kind == "LSTM":
                cs.append(res[2])
        y = _C.stack(outs, 1)                                   # (T, D, B, H)
        y_h = _C.stack(hs, 0)                                   # (D, B, H)
        y_c = _C.stack(cs, 0) if cs else None
        if layout:
            y = _C._permute(y, [2, 0, 1, 3])                    # (B, T, D, H)
            y_h = _C.transpose(y_h, 0, 1)
            y_c = _C.transpose(y_c, 0, 1) if y_c is not None else None
        results = (y, y_h, y_c)[:spec.n_out]
        return results if spec.n_out > 1 else y
    return run


def _packing(lens: List[int], steps: int, batch: int, kind: str) -> Optional[tuple]:
    """sequence_lens -> (rows of x in packed order, active sequences longest first, batch size
    of each step), or None when every sequence runs the full length."""
    if len(lens) != batch or any(not 0 <= n <= steps for n in lens):
        raise ValueError(f"[onnx] {kind}: sequence_lens {lens} must hold one length in "
                         f"[0, {steps}] per sequence of the batch of {batch}")
    if all(n == steps for n in lens):
        return None
    active = sorted((j for j in range(batch) if lens[j] > 0), key=lambda j: -lens[j])
    sizes = [sum(1 for j in active if lens[j] > t) for t in range(max(lens, default=0))]
    rows = [t * batch + active[k] for t, n in enumerate(sizes) for k in range(n)]
    return rows, active, sizes


def _run_packed(x: Tensor, hd: Tensor, cd: Optional[Tensor], args: tuple, pack: tuple,
                mode: str, reverse: bool, lbr: bool) -> List[Tensor]:
    """One direction over sequences of different lengths: deepcore's packed-sequence form
    (longest first, Note [RNN layer] in csrc/ops/rnn.cpp). Padded steps give zeros in Y, a
    sequence's Y_h / Y_c is its last step's state, and a sequence of length 0 gives zeros
    there too (as onnxruntime; ONNX leaves it open)."""
    rows, active, sizes = pack
    steps, batch, h = x.shape[0], x.shape[1], hd.shape[-1]
    y = _on_device_of(_C._full([steps * batch, h], 0.0, x.dtype, False), x)
    state = _on_device_of(_C._full([batch, h], 0.0, x.dtype, False), x)
    if not active:
        return [_C._reshape(y, [steps, batch, h]), state] + ([state] if cd is not None else [])
    rows_t, active_t = _int_tensor(rows, x), _int_tensor(active, x)
    data = _C.index_select(_C._reshape(x, [steps * batch, x.shape[2]]), 0, rows_t)
    res = _C._rnn_layer(data, _C.index_select(hd, 0, active_t),
                        None if cd is None else _C.index_select(cd, 0, active_t), *args, sizes,
                        mode, reverse, lbr)
    y = _C.index_put(y, [rows_t], res[0], False)
    out = [_C._reshape(y, [steps, batch, h]), _C.index_put(state, [active_t], res[1], False)]
    if cd is not None:
        out.append(_C.index_put(state, [active_t], res[2], False))
    return out


# ---- deepcore's functions -----------------------------------------------------------------------
# Calls of the functions deepcore.onnx.export writes where an op's standard expansion rounds
# differently from deepcore's kernel (Note [deepcore functions in ONNX] in _exporter.py): each
# runs the kernel the exported model ran, with the arguments the call's attributes carry.

_UNARY_FUNCTIONS = {
    "Silu": _C.silu, "Mish": _C.mish, "LogSigmoid": _C.logsigmoid, "Tanhshrink": _C.tanhshrink,
    "Expm1": _C.expm1, "Log1p": _C.log1p, "Log2": _C.log2, "Log10": _C.log10, "Exp2": _C.exp2,
    "Erfc": _C.erfc, "Remainder": _C.remainder,
}
for _name, _fn in _UNARY_FUNCTIONS.items():
    function(_name)(lambda spec, fn=_fn: fn)
function("Gelu")(lambda spec: lambda x: _C.gelu(x, "none"))
function("GeluTanh")(lambda spec: lambda x: _C.gelu(x, "tanh"))


@function("ScaledDotProductAttention", "ScaledDotProductAttentionCausal",
          "ScaledDotProductAttentionBoolMask", "ScaledDotProductAttentionAdditiveMask",
          attrs=("scale",))
def _attention(spec: NodeSpec):
    from ..nn.functional import scaled_dot_product_attention as sdpa
    scale, causal = float(spec.attr("scale")), spec.op.endswith("Causal")
    mask = "bool" if spec.op.endswith("BoolMask") else \
        "additive" if spec.op.endswith("AdditiveMask") else None
    n = 4 if mask else 3
    if len(spec.present) != n or not all(spec.present):
        raise spec.invalid(f"takes {n} inputs (query, key, value{', mask' if mask else ''}), "
                           f"got {sum(spec.present)} of {len(spec.present)}")
    if mask is None:
        return lambda q, k, v: sdpa(q, k, v, None, 0.0, causal, scale)

    def run(q, k, v, m):
        if (m.dtype == _C.dtype.bool) != (mask == "bool"):
            raise TypeError(f"[onnx] {spec.op}: the mask must be "
                            f"{'bool' if mask == 'bool' else 'floating point'}, got {m.dtype} "
                            f"of shape {tuple(m.shape)}")
        return sdpa(q, k, v, m, 0.0, False, scale)
    return run


@function("Var", "Std", attrs=("axes", "correction", "keepdims"))
def _variance(spec: NodeSpec):
    fn = _C._std if spec.op == "Std" else _C._var
    axes, correction = list(spec.attr("axes")), float(spec.attr("correction"))
    keep = bool(spec.attr("keepdims"))
    return lambda x: fn(x, axes, correction, keep)


@function("RmsNorm", attrs=("axes", "epsilon"))
def _rms_norm(spec: NodeSpec):
    axes, eps = list(spec.attr("axes")), float(spec.attr("epsilon"))
    n = len(axes)
    if not n or axes != list(range(-n, 0)):
        raise spec.unsupported(f"axes {axes} (RmsNorm normalises the trailing axes -n..-1)")
    return lambda x, scale: _C.rms_norm(x, list(x.shape[x.dim() - n:]), scale, eps)


@function("GroupNorm", attrs=("num_groups", "epsilon"))
def _group_norm_function(spec: NodeSpec):
    groups, eps = int(spec.attr("num_groups")), float(spec.attr("epsilon"))
    return lambda x, scale, b: _C._group_norm(x, groups, scale, b, eps)


@function("BatchNormBatchStats", attrs=("epsilon",))
def _batch_stats(spec: NodeSpec):
    eps = float(spec.attr("epsilon"))
    return lambda x, scale, b: _C._batch_norm(x, None, None, scale, b, True, 0.0, eps)
