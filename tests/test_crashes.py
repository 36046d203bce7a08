"""Inputs that once took the interpreter down (SIGSEGV, SIGFPE) or silently wrapped a value.

Each probe runs in one worker process that prints the probe's name before running it, so a
regression fails the probe it crashed in instead of killing pytest. The outcome of every probe
is compared with what torch 2.13 does, except where Note [Scalars out of range]
(csrc/core/scalar.h) deliberately raises where torch wraps.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

# name -> (code evaluated with `dc` imported, expected: an exception type name and a message
# fragment, or ("ok", repr of .tolist() / of the value))
PROBES = {
    # A dim on a 0-d tensor used to index an empty sizes() vector (Note [Dims of a 0-d tensor]).
    "flipud_0d": ("dc.flipud(dc.tensor(1.0))", ("RuntimeError", "[flipud]")),
    "fliplr_0d": ("dc.fliplr(dc.tensor(1.0))", ("RuntimeError", "[fliplr]")),
    "unbind_0d": ("dc.unbind(dc.tensor(1.0))", ("IndexError", "[unbind]")),
    "split_0d": ("dc.split(dc.tensor(1.0), 1)", ("IndexError", "[split]")),
    "split_sizes_0d": ("dc.split(dc.tensor(1.0), [1])", ("IndexError", "[split]")),
    "chunk_0d": ("dc.chunk(dc.tensor(1.0), 1)", ("IndexError", "[chunk]")),
    "narrow_0d": ("dc.narrow(dc.tensor(1.0), 0, 0, 1)", ("IndexError", "[narrow]")),
    "unflatten_0d": ("dc.tensor(1.0).unflatten(0, (1,))", ("IndexError", "[unflatten]")),
    "take_along_dim_0d": ("dc.take_along_dim(dc.tensor(1.0), dc.tensor(0), 0)",
                          ("IndexError", "[take_along_dim]")),
    "size_0d": ("dc.tensor(1.0).size(0)", ("IndexError", "[size]")),
    "stride_0d": ("dc.tensor(1.0).stride(-1)", ("IndexError", "[stride]")),
    "flip_0d_dim1": ("dc.tensor(1.0).flip(1)", ("IndexError", "[flip]")),
    "transpose_0d_dim1": ("dc.tensor(1.0).transpose(1, 0)", ("IndexError", "[transpose]")),
    "flatten_0d_dim5": ("dc.tensor(1.0).flatten(0, 5)", ("IndexError", "[flatten]")),
    "argsort_0d_dim3": ("dc.argsort(dc.tensor(1.0), 3)", ("IndexError", "[argsort]")),
    # ... while the ops that accept dim 0 / -1 on a 0-d tensor, like torch, still do.
    "flip_0d": ("dc.tensor(2.0).flip(0)", ("ok", "2.0")),
    "flip_0d_neg": ("dc.tensor(2.0).flip(-1)", ("ok", "2.0")),
    "squeeze_0d": ("dc.tensor(2.0).squeeze(0)", ("ok", "2.0")),
    "squeeze_0d_list": ("dc.tensor(2.0).squeeze((0,))", ("ok", "2.0")),
    "sum_0d": ("dc.tensor(2.0).sum(0)", ("ok", "2.0")),
    "cumsum_0d": ("dc.tensor(2.0).cumsum(-1)", ("ok", "2.0")),
    "transpose_0d": ("dc.tensor(2.0).transpose(0, -1)", ("ok", "2.0")),
    "flatten_0d": ("dc.tensor(2.0).flatten()", ("ok", "[2.0]")),
    # A Python int divisor that wraps to 0 in int32 used to reach the x86 divide (SIGFPE).
    "floordiv_int32_2p62": ("dc.floor_divide(dc.tensor([5], dtype=dc.int32), 2**62)",
                            ("RuntimeError", "[floor_divide] value 4611686018427387904 cannot "
                                             "be converted to type int32 without overflow")),
    "floordiv_int32_1e12": ("dc.tensor([5], dtype=dc.int32) // 10**12",
                            ("RuntimeError", "without overflow")),
    "remainder_int32_2p32": ("dc.tensor([5], dtype=dc.int32) % 2**32",
                             ("RuntimeError", "[remainder]")),
    "fmod_int32_2p32": ("dc.fmod(dc.tensor([5], dtype=dc.int32), 2**32)",
                        ("RuntimeError", "[fmod]")),
    "div_trunc_int32_2p32": ("dc.div(dc.tensor([5], dtype=dc.int32), 2**32, rounding_mode='trunc')",
                             ("RuntimeError", "[div]")),
    # A 0-d int64 tensor does not promote an int32 one: the divisor is checked after the cast.
    "floordiv_int32_0d_tensor": ("dc.tensor([5], dtype=dc.int32) // dc.tensor(2**32)",
                                 ("RuntimeError", "division by zero")),
    "remainder_int32_0d_tensor": ("dc.tensor([5], dtype=dc.int32) % dc.tensor(2**32)",
                                  ("RuntimeError", "division by zero")),
    # INT_MIN / -1 traps on x86; the quotient wraps like torch's, the remainder is 0.
    "int32_min_floordiv": ("dc.tensor([-2**31], dtype=dc.int32) // -1", ("ok", "[-2147483648]")),
    "int32_min_remainder": ("dc.tensor([-2**31], dtype=dc.int32) % -1", ("ok", "[0]")),
    "int32_min_fmod": ("dc.fmod(dc.tensor([-2**31], dtype=dc.int32), -1)", ("ok", "[0]")),
    "int32_min_trunc": ("dc.div(dc.tensor([-2**31], dtype=dc.int32), -1, rounding_mode='trunc')",
                        ("ok", "[-2147483648]")),
    "int64_min_floordiv_scalar": ("dc.tensor([-2**63]) // -1", ("ok", "[-9223372036854775808]")),
    # Out-of-range Python numbers are an error wherever they meet a dtype that cannot hold them.
    "add_int32": ("dc.tensor([5], dtype=dc.int32) + 2**31", ("RuntimeError", "[add] value 2147483648")),
    "lt_int32": ("dc.tensor([5], dtype=dc.int32) < 2**31", ("RuntimeError", "[lt]")),
    "eq_int32": ("dc.tensor([5], dtype=dc.int32) == -2**31 - 1", ("RuntimeError", "[eq]")),
    "bitand_int32": ("dc.tensor([5], dtype=dc.int32) & 2**40", ("RuntimeError", "[bitwise_and]")),
    "pow_int32": ("dc.tensor([5], dtype=dc.int32) ** 2**31", ("RuntimeError", "[pow]")),
    "maximum_int32": ("dc.maximum(dc.tensor([5], dtype=dc.int32), 2**31)",
                      ("RuntimeError", "[maximum]")),
    "where_int32": ("dc.where(dc.tensor([True]), dc.tensor([5], dtype=dc.int32), 2**31)",
                    ("RuntimeError", "[where]")),
    "fill_int32": ("dc.zeros(2, dtype=dc.int32).fill_(2**31)", ("RuntimeError", "[fill_]")),
    "fill_int32_nan": ("dc.zeros(2, dtype=dc.int32).fill_(float('nan'))",
                       ("RuntimeError", "[fill_] value nan")),
    "fill_int64": ("dc.zeros(2, dtype=dc.int64).fill_(2.0**63)", ("RuntimeError", "[fill_]")),
    "fill_float32": ("dc.zeros(2).fill_(1e40)", ("RuntimeError", "type float32 without overflow")),
    "full_int32": ("dc.full((2,), 2**31, dtype=dc.int32)", ("RuntimeError", "[full]")),
    "clamp_int32": ("dc.tensor([5], dtype=dc.int32).clamp(max=2**31)", ("RuntimeError", "[clamp]")),
    "masked_fill_int32": ("dc.tensor([5], dtype=dc.int32).masked_fill(dc.tensor([True]), 2**31)",
                          ("RuntimeError", "[masked_fill]")),
    "masked_fill__int32": ("dc.tensor([5], dtype=dc.int32).masked_fill_(dc.tensor([True]), 2**31)",
                           ("RuntimeError", "[masked_fill_]")),
    "setitem_int32": ("dc.tensor([5], dtype=dc.int32).__setitem__(0, 2**31)",
                      ("RuntimeError", "without overflow")),
    "index_put_int32": ("dc.tensor([5], dtype=dc.int32).index_put_((dc.tensor([0]),), 2**31)",
                        ("RuntimeError", "[index_put_]")),
    "add_alpha_int32": ("dc.add(dc.tensor([5], dtype=dc.int32), 1, alpha=2**31)",
                        ("RuntimeError", "[add]")),
    "add_float_alpha_int": ("dc.add(dc.tensor([5]), 1, alpha=0.5)", ("TypeError", "alpha")),
    "sub_int_alpha": ("dc.sub(dc.tensor([5]), dc.tensor([1]), alpha=2)", ("ok", "[3]")),
    # ... and what fits still works: values torch accepts.
    "add_int32_fits": ("dc.tensor([5], dtype=dc.int32) + (2**31 - 6)", ("ok", "[2147483647]")),
    "add_int64_big": ("dc.tensor([5]) + 2**40", ("ok", "[1099511627781]")),
    "fill_bool_big": ("dc.zeros(2, dtype=dc.bool).fill_(2**31)", ("ok", "[True, True]")),
    "fill_float32_inf": ("dc.zeros(1).fill_(float('inf'))", ("ok", "[inf]")),
    "float32_plus_huge": ("dc.ones(1) + 1e40", ("ok", "[inf]")),
    "int32_plus_float": ("dc.tensor([5], dtype=dc.int32) + 1e10", ("ok", "[10000000000.0]")),
    "fill_int32_float": ("dc.zeros(1, dtype=dc.int32).fill_(2.7)", ("ok", "[2]")),
    "full_int64_exact": ("dc.full((2,), 2**62 + 1, dtype=dc.int64)",
                         ("ok", "[4611686018427387905, 4611686018427387905]")),
    "fill_int64_exact": ("dc.zeros(1, dtype=dc.int64).fill_(-2**63)", ("ok", "[-9223372036854775808]")),
    "int_beyond_int64": ("dc.ones(2) + 2**70", ("ValueError", "int64")),
    # Pool windows divided numel by H * W to count planes: an empty spatial dim was SIGFPE.
    "max_pool1d_empty": ("dc.nn.functional.max_pool1d(dc.zeros(0, 0, 0), 2**40)",
                         ("ValueError", "[max_pool1d]")),
    "max_pool1d_empty_length": ("dc.nn.functional.max_pool1d(dc.zeros(1, 2, 0), 1)",
                                ("ValueError", "[max_pool1d]")),
    # In-place writes into an empty expanded tensor: no element is written twice.
    "empty_expanded_inplace": ("dc.ones(0, 1).expand(0, 2).add_(1)", ("ok", "[]")),
    "clamp__promotes": ("dc.tensor([True]).clamp_(max=2)", ("TypeError", "[clamp_]")),
    "uniform_inf": ("dc.empty(2).uniform_(0.0, float('inf'))", ("ValueError", "[uniform_]")),
    "sin_bool": ("dc.sin(dc.tensor([False]))", ("ok", "[0.0]")),
    "meshgrid_2d": ("dc.meshgrid(dc.ones(2, 2))", ("RuntimeError", "[meshgrid]")),
    "broadcast_tensors_list": ("[tuple(t.shape) for t in dc.broadcast_tensors([dc.ones(2, 1), dc.ones(3)])]",
                               ("ok", "[(2, 3), (2, 3)]")),
}

_WORKER = r"""
import json, sys
import deepcore as dc
probes = json.loads(sys.stdin.read())
for name, code in probes.items():
    print("START", name, flush=True)
    try:
        v = eval(code)
        v = v.tolist() if hasattr(v, "tolist") else v
        out = ["ok", repr(v)]
    except Exception as e:
        out = [type(e).__name__, str(e)]
    print("RESULT", json.dumps([name, out]), flush=True)
"""


@pytest.fixture(scope="module")
def outcomes():
    r = subprocess.run([sys.executable, "-c", _WORKER], capture_output=True, text=True,
                       timeout=300, input=json.dumps({k: v[0] for k, v in PROBES.items()}))
    results, started = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("START "):
            started = line.split()[1]
        elif line.startswith("RESULT "):
            name, out = json.loads(line[7:])
            results[name] = out
    if r.returncode != 0:
        results[started] = ["CRASH", f"exit status {r.returncode}: {r.stderr[-500:]}"]
    return results


@pytest.mark.parametrize("name", list(PROBES))
def test_probe(name, outcomes):
    code, (kind, text) = PROBES[name]
    assert name in outcomes, f"not reached: an earlier probe crashed the worker ({code})"
    got_kind, got_text = outcomes[name]
    assert got_kind != "CRASH", f"{code}: {got_text}"
    assert got_kind == kind, f"{code}: expected {kind} ({text}), got {got_kind}: {got_text}"
    if kind == "ok":
        assert got_text == text, f"{code}: {got_text} != {text}"
    else:
        assert text in got_text, f"{code}: {got_text!r} lacks {text!r}"
