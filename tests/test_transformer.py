"""deepcore.nn attention and Transformer modules against torch.nn 2.13.0: each torch module's
state_dict is copied into the deepcore module (the keys must be equal, in order), then the
outputs, the gradient of every input and of every parameter are compared, in float64 with
tight tolerances and in float32 with loose ones. Also: masks of every kind, dropout in train
and eval mode, deep copies, initialisation, and the typed errors naming the module."""
import copy
import math
import re
import warnings

import deepcore as dc
import numpy as np
import pytest
import torch
from deepcore import nn
from deepcore.nn.modules.attention import multi_head_attention_forward

L, S, N, E, H = 5, 7, 3, 8, 2
TOL = {np.float64: dict(rtol=1e-9, atol=1e-10), np.float32: dict(rtol=2e-4, atol=2e-5)}


@pytest.fixture(autouse=True)
def _seed():
    dc.manual_seed(0)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        # torch warns about nested tensors and about mixed bool/float masks; not under test.
        warnings.simplefilter("ignore")
        yield


# ---- harness --------------------------------------------------------------------------------

def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach())


def _ctor_dtype(ftype):
    return (torch.float64, dc.float64) if ftype == np.float64 else (torch.float32, dc.float32)


def build(torch_cls, dc_cls, *args, ftype=np.float64, **kwargs):
    """The torch module and the deepcore one with torch's weights (keys must agree exactly)."""
    tdt, ddt = _ctor_dtype(ftype)
    tm = torch_cls(*args, dtype=tdt, **kwargs).eval()
    dm = dc_cls(*args, dtype=ddt, **kwargs).eval()
    tsd = tm.state_dict()
    assert list(dm.state_dict()) == list(tsd)
    dm.load_state_dict({k: dc.tensor(v.detach().numpy()) for k, v in tsd.items()})
    return tm, dm


def compare(tm, dm, arrays, call, ftype=np.float64, grad=True):
    """``call(module, lib, tensors)`` runs the module on ``tensors`` (built from ``arrays`` in
    each library; floating arrays whose name does not end in ``mask`` require grad) and returns
    a tensor or a tuple (None entries are skipped). Compares outputs, then backpropagates a
    random upstream gradient through every output and compares input and parameter grads."""
    tol = TOL[ftype]
    tens = {}
    for lib, mk in ((torch, torch.tensor), (dc, dc.tensor)):
        tens[lib] = {}
        for name, a in arrays.items():
            rg = grad and a.dtype.kind == "f" and not name.endswith("mask")
            tens[lib][name] = mk(a, requires_grad=rg)
    t_out, d_out = call(tm, torch, tens[torch]), call(dm, dc, tens[dc])
    t_out = t_out if isinstance(t_out, tuple) else (t_out,)
    d_out = d_out if isinstance(d_out, tuple) else (d_out,)
    assert len(t_out) == len(d_out)
    rng = np.random.default_rng(1)
    t_loss, d_loss = 0, 0
    for i, (t, d) in enumerate(zip(t_out, d_out)):
        if t is None:
            assert d is None, f"output {i}: expected None"
            continue
        assert tuple(d.shape) == tuple(t.shape), f"output {i}: {tuple(d.shape)} vs {t.shape}"
        np.testing.assert_allclose(_np(d), _np(t), err_msg=f"output {i}", **tol)
        g = rng.standard_normal(tuple(t.shape)).astype(ftype)
        t_loss = t_loss + (t * torch.tensor(g)).sum()
        d_loss = d_loss + (d * dc.tensor(g)).sum()
    if not grad:
        return d_out
    t_loss.backward()
    d_loss.backward()
    for name, t in tens[torch].items():
        if t.requires_grad:
            d = tens[dc][name]
            np.testing.assert_allclose(_np(d.grad), _np(t.grad), err_msg=f"grad of {name}",
                                       **tol)
    t_params, d_params = dict(tm.named_parameters()), dict(dm.named_parameters())
    assert list(t_params) == list(d_params)
    for name, tp in t_params.items():
        dp = d_params[name]
        assert tp.grad is not None, name
        np.testing.assert_allclose(_np(dp.grad), _np(tp.grad), err_msg=f"grad of {name}", **tol)
    return d_out


def rand(*shape, ftype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(ftype)


def bool_mask(shape, seed):
    """Random True (= masked out) entries, never in column 0, so no row is fully masked."""
    m = np.random.default_rng(seed).random(shape) < 0.4
    m[..., 0] = False
    return m


def float_mask(shape, seed, ftype=np.float64):
    """Additive: random values, with -inf where bool_mask would mask."""
    f = np.random.default_rng(seed + 100).standard_normal(shape).astype(ftype)
    f[bool_mask(shape, seed)] = -np.inf
    return f


def make_mask(kind, shape, seed, ftype=np.float64):
    if kind is None:
        return None
    return bool_mask(shape, seed) if kind == "bool" else float_mask(shape, seed, ftype)


# ---- MultiheadAttention ---------------------------------------------------------------------

# (id, constructor kwargs, which inputs are shared, key_padding_mask kind, attn_mask kind,
#  forward kwargs)
MHA_CASES = [
    ("self", {}, "qkv", None, None, {}),
    ("self-noweights", {}, "qkv", None, None, dict(need_weights=False)),
    ("self-perhead", {}, "qkv", None, None, dict(average_attn_weights=False)),
    ("cross-kv", {}, "kv", None, None, {}),
    ("cross-separate", {}, None, None, None, dict(need_weights=False)),
    ("kdim-vdim", dict(kdim=6, vdim=4), None, "bool", "2d-bool", {}),
    ("kdim-vdim-noweights", dict(kdim=6, vdim=4), None, "bool", None,
     dict(need_weights=False)),
    ("nobias", dict(bias=False), "qkv", None, "2d-float", {}),
    ("bias-kv", dict(add_bias_kv=True), "kv", "bool", "3d-bool", {}),
    ("bias-kv-noweights", dict(add_bias_kv=True), "kv", "float", "2d-float",
     dict(need_weights=False)),
    ("zero-attn", dict(add_zero_attn=True), "kv", "float", "3d-float",
     dict(average_attn_weights=False)),
    ("bias-kv-zero-attn", dict(add_bias_kv=True, add_zero_attn=True), None, "bool",
     "2d-bool", dict(need_weights=False)),
    ("batch-first", dict(batch_first=True), "qkv", "bool", "3d-float", {}),
    ("batch-first-cross", dict(batch_first=True, kdim=6, vdim=6), "kv", "float", "2d-bool",
     dict(need_weights=False)),
    ("kpm-bool", {}, "kv", "bool", None, dict(need_weights=False)),
    ("kpm-float", {}, "kv", "float", None, {}),
    ("am-2d-bool", {}, "qkv", None, "2d-bool", dict(need_weights=False)),
    ("am-3d-bool", {}, "kv", None, "3d-bool", dict(need_weights=False)),
    ("am-3d-float", {}, "kv", None, "3d-float", dict(need_weights=False)),
    ("both-bool", {}, "kv", "bool", "3d-bool", dict(average_attn_weights=False)),
    ("both-mixed", {}, "kv", "bool", "2d-float", dict(need_weights=False)),
]


def _mha_arrays(ctor, shared, kpm, am, ftype=np.float64, batched=True):
    kdim, vdim = ctor.get("kdim", E), ctor.get("vdim", E)
    bf = ctor.get("batch_first", False) and batched
    src = L if shared == "qkv" else S

    def seq(length, feat, seed):
        if not batched:
            return rand(length, feat, ftype=ftype, seed=seed)
        return rand(N, length, feat, ftype=ftype, seed=seed) if bf else \
            rand(length, N, feat, ftype=ftype, seed=seed)

    arrays = {"query": seq(L, E, 1)}
    if shared is None:
        arrays["key"], arrays["value"] = seq(src, kdim, 2), seq(src, vdim, 3)
    elif shared == "kv":
        arrays["key"] = seq(src, kdim, 2)
    nb = N if batched else 1
    if kpm:
        arrays["key_padding_mask"] = make_mask(kpm, (nb, src) if batched else (src,), 4, ftype)
    if am:
        rank, kind = am.split("-")
        shape = (L, src) if rank == "2d" else ((nb * H, L, src) if batched else (H, L, src))
        arrays["attn_mask"] = make_mask(kind, shape, 5, ftype)
    return arrays


def _mha_call(shared, fwd):
    def call(m, lib, t):
        q = t["query"]
        k = q if shared == "qkv" else t["key"]
        v = k if shared in ("qkv", "kv") else t["value"]
        return m(q, k, v, key_padding_mask=t.get("key_padding_mask"),
                 attn_mask=t.get("attn_mask"), **fwd)
    return call


@pytest.mark.parametrize("case", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_mha_matches_torch(case):
    _, ctor, shared, kpm, am, fwd = case
    tm, dm = build(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H, **ctor)
    compare(tm, dm, _mha_arrays(ctor, shared, kpm, am), _mha_call(shared, fwd))


@pytest.mark.parametrize("shared,kpm,am,fwd", [
    ("qkv", None, None, {}),
    ("kv", "bool", "3d-bool", dict(need_weights=False)),
    (None, "float", "2d-float", dict(average_attn_weights=False)),
])
def test_mha_unbatched_matches_torch(shared, kpm, am, fwd):
    ctor = dict(batch_first=True)  # ignored for unbatched input, as in torch
    tm, dm = build(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H, **ctor)
    compare(tm, dm, _mha_arrays(ctor, shared, kpm, am, batched=False), _mha_call(shared, fwd))


@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("kpm", [None, "bool"])
def test_mha_is_causal_with_mask_matches_torch(need_weights, kpm):
    tm, dm = build(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H)
    arrays = {"query": rand(L, N, E, seed=1),
              "attn_mask": np.triu(np.ones((L, L), dtype=bool), 1)}
    if kpm:
        arrays["key_padding_mask"] = make_mask(kpm, (N, L), 4)

    def call(m, lib, t):
        q = t["query"]
        return m(q, q, q, attn_mask=t["attn_mask"], key_padding_mask=t.get("key_padding_mask"),
                 need_weights=need_weights, is_causal=True)
    compare(tm, dm, arrays, call)


def test_mha_fully_padded_sequence_matches_torch():
    """A batch entry whose keys are all padding attends to nothing: zeros, zero gradients."""
    tm, dm = build(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H)
    kpm = bool_mask((N, S), 4)
    kpm[1] = True
    arrays = {"query": rand(L, N, E, seed=1), "key": rand(S, N, E, seed=2),
              "key_padding_mask": kpm}
    out = compare(tm, dm, arrays, _mha_call("kv", dict(need_weights=False)))
    assert not np.any(_np(out[0])[:, 1] - _np(dm.out_proj.bias))


@pytest.mark.parametrize("case", ["self", "bias-kv", "batch-first", "kdim-vdim"])
def test_mha_float32_matches_torch(case):
    _, ctor, shared, kpm, am, fwd = next(c for c in MHA_CASES if c[0] == case)
    tm, dm = build(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H,
                   ftype=np.float32, **ctor)
    compare(tm, dm, _mha_arrays(ctor, shared, kpm, am, ftype=np.float32),
            _mha_call(shared, fwd), ftype=np.float32)


def test_mha_forward_functional_matches_torch():
    """F.multi_head_attention_forward with separate weights and static keys/values."""
    rng = np.random.default_rng(7)
    arr = {n: rng.standard_normal(s) for n, s in [
        ("query", (L, N, E)), ("key", (S, N, 6)), ("value", (S, N, 6)),
        ("q_proj_weight", (E, E)), ("k_proj_weight", (E, 6)), ("v_proj_weight", (E, 6)),
        ("in_proj_bias", (3 * E,)), ("out_proj_weight", (E, E)), ("out_proj_bias", (E,)),
        ("static_k", (N * H, S + 1, E // H)), ("static_v", (N * H, S + 1, E // H))]}
    arr["key_padding_mask"] = bool_mask((N, S + 1), 3)
    for need_weights in (True, False):
        outs = {}
        grads = {}
        for lib, fn in ((torch, torch.nn.functional.multi_head_attention_forward),
                        (dc, multi_head_attention_forward)):
            t = {k: lib.tensor(v, requires_grad=v.dtype.kind == "f") for k, v in arr.items()}
            out, w = fn(t["query"], t["key"], t["value"], E, H, None, t["in_proj_bias"], None,
                        None, False, 0.0, t["out_proj_weight"], t["out_proj_bias"],
                        training=False, key_padding_mask=t["key_padding_mask"],
                        need_weights=need_weights, use_separate_proj_weight=True,
                        q_proj_weight=t["q_proj_weight"], k_proj_weight=t["k_proj_weight"],
                        v_proj_weight=t["v_proj_weight"], static_k=t["static_k"],
                        static_v=t["static_v"])
            loss = out.sum() + (w.sum() if w is not None else 0)
            loss.backward()
            outs[lib] = (out, w)
            grads[lib] = {k: v.grad for k, v in t.items() if v.grad is not None}
        for a, b in zip(outs[dc], outs[torch]):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(_np(a), _np(b), **TOL[np.float64])
        assert sorted(grads[dc]) == sorted(grads[torch])
        for k, g in grads[torch].items():
            np.testing.assert_allclose(_np(grads[dc][k]), _np(g), err_msg=k, **TOL[np.float64])


def test_mha_init_and_deepcopy():
    m = nn.MultiheadAttention(E, H, add_bias_kv=True)
    assert not np.any(_np(m.in_proj_bias)) and not np.any(_np(m.out_proj.bias))
    bound = math.sqrt(6.0 / (E + 3 * E))  # xavier_uniform_ over the packed (3E, E) weight
    assert np.all(np.abs(_np(m.in_proj_weight)) <= bound)
    assert np.std(_np(m.in_proj_weight)) > bound / 3
    assert np.any(_np(m.bias_k)) and tuple(m.bias_k.shape) == (1, 1, E)
    sep = nn.MultiheadAttention(E, H, kdim=6, vdim=4, bias=False)
    assert [k for k, _ in sep.named_parameters()] == [
        k for k, _ in torch.nn.MultiheadAttention(E, H, kdim=6, vdim=4,
                                                  bias=False).named_parameters()]
    assert sep.in_proj_weight is None and sep.in_proj_bias is None
    c = copy.deepcopy(m)
    assert c.in_proj_weight is not m.in_proj_weight
    np.testing.assert_array_equal(_np(c.in_proj_weight), _np(m.in_proj_weight))
    with dc.no_grad():
        c.in_proj_weight.fill_(0.0)
    assert np.any(_np(m.in_proj_weight))
    assert repr(m) == repr(torch.nn.MultiheadAttention(E, H, add_bias_kv=True))


def test_mha_dropout_train_and_eval():
    tm, dm = build(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H, dropout=0.5)
    x = dc.tensor(rand(L, N, E))
    for need_weights in (True, False):
        dm.train()
        a, _ = dm(x, x, x, need_weights=need_weights)
        b, _ = dm(x, x, x, need_weights=need_weights)
        assert not np.allclose(_np(a), _np(b))
        dm.eval()
        a, _ = dm(x, x, x, need_weights=need_weights)
        b, _ = dm(x, x, x, need_weights=need_weights)
        np.testing.assert_array_equal(_np(a), _np(b))
        tx = torch.tensor(rand(L, N, E))
        np.testing.assert_allclose(_np(a), _np(tm(tx, tx, tx)[0]), **TOL[np.float64])


# ---- Transformer layers ---------------------------------------------------------------------

def _activation(kind, lib):
    if kind == "callable":
        return lib.nn.functional.silu
    return kind


LAYER_CASES = [(nf, act, bf) for nf in (False, True) for act in ("relu", "gelu", "callable")
               for bf in (False, True) if (act == "relu" or not bf)]


def _build_layer(torch_cls, dc_cls, norm_first, act, batch_first):
    """An encoder or decoder layer pair for LAYER_CASES, deepcore's with torch's weights."""
    kw = dict(dim_feedforward=16, norm_first=norm_first, batch_first=batch_first)
    tm = torch_cls(E, H, activation=_activation(act, torch), dtype=torch.float64, **kw).eval()
    dm = dc_cls(E, H, activation=_activation(act, dc), dtype=dc.float64, **kw).eval()
    assert list(dm.state_dict()) == list(tm.state_dict())
    dm.load_state_dict({k: dc.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    return tm, dm


@pytest.mark.parametrize("norm_first,act,batch_first", LAYER_CASES)
def test_encoder_layer_matches_torch(norm_first, act, batch_first):
    tm, dm = _build_layer(torch.nn.TransformerEncoderLayer, nn.TransformerEncoderLayer, norm_first,
                          act, batch_first)
    src = rand(N, L, E, seed=1) if batch_first else rand(L, N, E, seed=1)
    arrays = {"src": src, "src_mask": float_mask((L, L), 2),
              "src_key_padding_mask": bool_mask((N, L), 3)}

    def call(m, lib, t):
        return m(t["src"], src_mask=t["src_mask"],
                 src_key_padding_mask=t["src_key_padding_mask"])
    compare(tm, dm, arrays, call)


@pytest.mark.parametrize("norm_first,act,batch_first", LAYER_CASES)
def test_decoder_layer_matches_torch(norm_first, act, batch_first):
    tm, dm = _build_layer(torch.nn.TransformerDecoderLayer, nn.TransformerDecoderLayer, norm_first,
                          act, batch_first)
    shape = (lambda n, s: (n, s, E)) if batch_first else (lambda n, s: (s, n, E))
    arrays = {"tgt": rand(*shape(N, L), seed=1), "memory": rand(*shape(N, S), seed=2),
              "tgt_mask": np.triu(np.ones((L, L), dtype=bool), 1),
              "memory_mask": float_mask((L, S), 4),
              "tgt_key_padding_mask": bool_mask((N, L), 5),
              "memory_key_padding_mask": bool_mask((N, S), 6)}

    def call(m, lib, t):
        return m(t["tgt"], t["memory"], **{k: v for k, v in t.items() if k.endswith("mask")})
    compare(tm, dm, arrays, call)


def test_encoder_layer_unbatched_matches_torch():
    tm, dm = build(torch.nn.TransformerEncoderLayer, nn.TransformerEncoderLayer, E, H,
                   dim_feedforward=16)
    compare(tm, dm, {"src": rand(L, E), "src_key_padding_mask": bool_mask((L,), 1)},
            lambda m, lib, t: m(t["src"], src_key_padding_mask=t["src_key_padding_mask"]))


@pytest.mark.parametrize("mask_kind", ["causal", "causal-bool", "causal-kpm", "float-kpm",
                                       "is_causal"])
def test_encoder_stack_matches_torch(mask_kind):
    def make(lib, mod):
        layer = mod.TransformerEncoderLayer(E, H, 16, dtype=lib.float64)
        return mod.TransformerEncoder(layer, 2, norm=mod.LayerNorm(E, dtype=lib.float64))
    tm, dm = make(torch, torch.nn).eval(), make(dc, nn).eval()
    assert list(dm.state_dict()) == list(tm.state_dict())
    assert "layers.1.self_attn.in_proj_weight" in dm.state_dict()
    dm.load_state_dict({k: dc.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    arrays = {"src": rand(L, N, E, seed=1)}
    kw = {}
    if mask_kind == "causal-bool":  # detected as causal too (torch canonicalises it first)
        arrays["mask"] = np.triu(np.ones((L, L), dtype=bool), 1)
    elif mask_kind.startswith("causal") or mask_kind == "is_causal":
        arrays["mask"] = torch.nn.Transformer.generate_square_subsequent_mask(
            L, dtype=torch.float64).numpy()
    else:
        arrays["mask"] = float_mask((L, L), 2)
    if mask_kind.endswith("kpm"):
        arrays["src_key_padding_mask"] = bool_mask((N, L), 3)
    if mask_kind == "is_causal":
        kw["is_causal"] = True
    compare(tm, dm, arrays, lambda m, lib, t: m(
        t["src"], mask=t["mask"], src_key_padding_mask=t.get("src_key_padding_mask"), **kw))


def test_decoder_stack_matches_torch():
    def make(lib, mod):
        layer = mod.TransformerDecoderLayer(E, H, 16, norm_first=True, dtype=lib.float64)
        return mod.TransformerDecoder(layer, 2, norm=mod.LayerNorm(E, dtype=lib.float64))
    tm, dm = make(torch, torch.nn).eval(), make(dc, nn).eval()
    assert list(dm.state_dict()) == list(tm.state_dict())
    dm.load_state_dict({k: dc.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    arrays = {"tgt": rand(L, N, E, seed=1), "memory": rand(S, N, E, seed=2),
              "tgt_mask": torch.nn.Transformer.generate_square_subsequent_mask(
                  L, dtype=torch.float64).numpy(),
              "memory_key_padding_mask": bool_mask((N, S), 3)}
    compare(tm, dm, arrays, lambda m, lib, t: m(
        t["tgt"], t["memory"], tgt_mask=t["tgt_mask"],
        memory_key_padding_mask=t["memory_key_padding_mask"]))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("ftype", [np.float64, np.float32])
def test_transformer_matches_torch(batch_first, ftype):
    tm, dm = build(torch.nn.Transformer, nn.Transformer, E, H, 2, 2, 16,
                   batch_first=batch_first, ftype=ftype)
    shape = (lambda n, s: (n, s, E)) if batch_first else (lambda n, s: (s, n, E))
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(
        L, dtype=_ctor_dtype(ftype)[0]).numpy()
    arrays = {"src": rand(*shape(N, S), ftype=ftype, seed=1),
              "tgt": rand(*shape(N, L), ftype=ftype, seed=2),
              "src_mask": bool_mask((S, S), 3), "tgt_mask": tgt_mask,
              "memory_mask": bool_mask((L, S), 4),
              "src_key_padding_mask": bool_mask((N, S), 5),
              "tgt_key_padding_mask": bool_mask((N, L), 6),
              "memory_key_padding_mask": bool_mask((N, S), 5)}
    compare(tm, dm, arrays, lambda m, lib, t: m(
        t["src"], t["tgt"], **{k: v for k, v in t.items() if k.endswith("mask")}),
        ftype=ftype)


def test_transformer_structure_init_and_mask():
    dm = nn.Transformer(E, H, 2, 1, 16)
    tm = torch.nn.Transformer(E, H, 2, 1, 16)
    assert list(dm.state_dict()) == list(tm.state_dict())
    assert [tuple(v.shape) for v in dm.state_dict().values()] == \
        [tuple(v.shape) for v in tm.state_dict().values()]
    for name, p in dm.named_parameters():
        if p.dim() > 1:  # xavier_uniform_ everywhere
            fan_out, fan_in = p.shape[0], p.shape[1]
            assert np.all(np.abs(_np(p)) <= math.sqrt(6.0 / (fan_in + fan_out)) + 1e-7), name
    a, b = dm.encoder.layers[0], dm.encoder.layers[1]
    assert a.linear1.weight is not b.linear1.weight  # deep copies, as torch's _get_clones
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    np.testing.assert_array_equal(_np(mask),
                                  torch.nn.Transformer.generate_square_subsequent_mask(4))
    assert mask.dtype == dc.float32
    assert nn.Transformer.generate_square_subsequent_mask(3, dtype=dc.float64).dtype == \
        dc.float64
    c = copy.deepcopy(dm)
    assert list(c.state_dict()) == list(dm.state_dict())
    assert c.decoder.layers[0].multihead_attn.out_proj.weight is not \
        dm.decoder.layers[0].multihead_attn.out_proj.weight


def test_transformer_dropout_train_and_eval():
    m = nn.TransformerEncoderLayer(E, H, 16, dropout=0.3)
    x = dc.tensor(rand(L, N, E, ftype=np.float32))
    m.train()
    assert not np.allclose(_np(m(x)), _np(m(x)))
    m.eval()
    np.testing.assert_array_equal(_np(m(x)), _np(m(x)))
    t = nn.Transformer(E, H, 1, 1, 16, dropout=0.3)
    y = dc.tensor(rand(L, N, E, ftype=np.float32, seed=2))
    assert not np.allclose(_np(t(x, y)), _np(t(x, y)))
    t.eval()
    np.testing.assert_array_equal(_np(t(x, y)), _np(t(x, y)))


# ---- errors ---------------------------------------------------------------------------------

def test_error_embed_dim_not_divisible():
    with pytest.raises(ValueError, match=r"MultiheadAttention.*embed_dim 10.*num_heads 3"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="MultiheadAttention"):
        nn.TransformerEncoderLayer(10, 4)


def test_error_wrong_mask_shapes():
    m = nn.MultiheadAttention(E, H)
    x = dc.randn(L, N, E)
    with pytest.raises(ValueError, match=re.escape(
            "MultiheadAttention(embed_dim=8, num_heads=2): the 2-D attn_mask is (4, 5), but "
            "should be (5, 5)")):
        m(x, x, x, attn_mask=dc.zeros(4, 5, dtype=dc.bool))
    with pytest.raises(ValueError, match=re.escape("(6, 5, 5)")) as info:
        m(x, x, x, attn_mask=dc.zeros(N, L, L, dtype=dc.bool))
    assert "(3, 5, 5)" in str(info.value)
    with pytest.raises(ValueError, match=r"MultiheadAttention.*key_padding_mask \(3, 4\).*"
                                         r"\(3, 5\)"):
        m(x, x, x, key_padding_mask=dc.zeros(N, 4, dtype=dc.bool))
    with pytest.raises(ValueError, match="attn_mask"):
        m(x, x, x, attn_mask=dc.zeros(L, dtype=dc.bool))
    with pytest.raises(TypeError, match=r"MultiheadAttention.*int64"):
        m(x, x, x, attn_mask=dc.zeros(L, L, dtype=dc.int64))
    layer = nn.TransformerEncoderLayer(E, H, 16)
    with pytest.raises(ValueError, match=r"^TransformerEncoderLayer\.self_attn: "
                                         r"MultiheadAttention.*attn_mask is \(2, 2\)"):
        layer(x, src_mask=dc.zeros(2, 2))
    t = nn.Transformer(E, H, 1, 1, 16)
    with pytest.raises(ValueError, match=r"^Transformer\.decoder\.layers\.0\.multihead_attn: "
                                         r".*\(5, 4\)"):
        t(x, x, memory_mask=dc.zeros(L, 4))


def test_error_wrong_input_dims():
    m = nn.MultiheadAttention(E, H, kdim=6, vdim=4)
    q, k, v = dc.randn(L, N, E), dc.randn(S, N, 6), dc.randn(S, N, 4)
    with pytest.raises(ValueError, match=r"MultiheadAttention.*query \(5, 3, 7\) has 7 "
                                         r"features, expected embed_dim=8"):
        m(dc.randn(L, N, 7), k, v)
    with pytest.raises(ValueError, match=r"key \(7, 3, 8\) has 8 features, expected kdim=6"):
        m(q, dc.randn(S, N, E), v)
    with pytest.raises(ValueError, match=r"query \(5, 2, 8\) and key \(7, 3, 6\)"):
        m(dc.randn(L, 2, E), k, v)
    with pytest.raises(ValueError, match=r"query should be unbatched 2-D .* \(2, 5, 3, 8\)"):
        m(dc.randn(2, L, N, E), k, v)
    with pytest.raises(ValueError, match=r"key and value must be 3-D"):
        m(q, dc.randn(S, 6), v)
    with pytest.raises(TypeError, match=r"MultiheadAttention.*float64.*float64.*float64.*"
                                        r"weights \(deepcore.float32\)"):
        m(q.double(), k.double(), v.double())
    with pytest.raises(RuntimeError, match="is_causal=True needs attn_mask"):
        m(q, k, v, is_causal=True)
    t = nn.Transformer(E, H, 1, 1, 16)
    with pytest.raises(ValueError, match=r"Transformer d_model=8.*src \(5, 3, 6\)"):
        t(dc.randn(L, N, 6), dc.randn(L, N, E))
    with pytest.raises(ValueError, match=r"batch size of src \(5, 3, 8\) and tgt \(5, 2, 8\)"):
        t(dc.randn(L, N, E), dc.randn(L, 2, E))
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, 16), 2)
    with pytest.raises(ValueError, match=r"^TransformerEncoder\.layers\.0\.self_attn: .*"
                                         r"query \(5, 3, 6\)"):
        enc(dc.randn(L, N, 6))
    with pytest.raises(ValueError, match="activation should be relu/gelu, not 'tanh'"):
        nn.TransformerEncoderLayer(E, H, activation="tanh")
