"""F.scaled_dot_product_attention: the fused kernel (and its routing) against PyTorch.

The op database (tests/opinfo/attention.py) runs the generic checks on small samples; here are
the cases it cannot express: block boundaries of the kernel (64 queries x 64 keys), long
sequences, fully masked rows, which path serves a call (Note [SDPA paths]), second derivatives
against torch, errors, and memory that grows with L, not L^2.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepcore as dc
import deepcore.nn.functional as F

# Scores sum E products, outputs S probabilities: reduction-sized errors (see
# opinfo.core.reduction_tols); float32 gradients go through two more GEMMs.
TOLS = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}
GRAD_TOLS = {np.float32: dict(rtol=1e-3, atol=1e-4), np.float64: dict(rtol=1e-8, atol=1e-10)}


def _pair(a, requires_grad=True):
    return (dc.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def compare(q_shape, k_shape, v_shape=None, mask=None, dtype=np.float64, seed=0,
            check_kernel=True, **kw):
    """Forward and the gradients of q, k, v against torch, with a random upstream gradient."""
    rng = np.random.default_rng(seed)
    v_shape = v_shape or k_shape
    arrays = [rng.standard_normal(s).astype(dtype) for s in (q_shape, k_shape, v_shape)]
    pairs = [_pair(a) for a in arrays]
    dm, tm = (None, None) if mask is None else _pair(mask, requires_grad=False)
    out = F.scaled_dot_product_attention(*(p[0] for p in pairs), attn_mask=dm, **kw)
    ref = TF.scaled_dot_product_attention(*(p[1] for p in pairs), attn_mask=tm, **kw)
    if check_kernel:
        assert out.grad_fn.name() == "scaled_dot_product_attention", "not the fused kernel"
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), **TOLS[dtype])
    g = rng.standard_normal(tuple(ref.shape)).astype(dtype)
    out.backward(dc.tensor(g))
    ref.backward(torch.tensor(g))
    for name, (d, t) in zip("qkv", pairs):
        np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), err_msg=f"d{name}",
                                   **GRAD_TOLS[dtype])


DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L,S", [(1, 1), (1, 7), (7, 1), (7, 33), (33, 65), (65, 130),
                                 (130, 65), (64, 64), (128, 1)])
def test_lengths(L, S, dtype):
    compare((2, 3, L, 16), (2, 3, S, 16), (2, 3, S, 8), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L,S", [(33, 130), (130, 33), (65, 65), (1, 9), (9, 1), (70, 200)])
def test_causal(L, S, dtype):
    compare((2, 2, L, 8), (2, 2, S, 8), is_causal=True, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_shape", [(33, 70), (2, 1, 33, 70), (1, 3, 1, 70), (3, 33, 70),
                                        (1, 70), (2, 3, 33, 70)])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks(kind, mask_shape, dtype):
    rng = np.random.default_rng(1)
    if kind == "bool":
        mask = rng.random(mask_shape) < 0.7
    else:
        mask = rng.standard_normal(mask_shape).astype(dtype)
    compare((2, 3, 33, 16), (2, 3, 70, 16), mask=mask, dtype=dtype)


def test_mask_read_through_strides():
    """A transposed and an expanded mask: the kernel reads both in place."""
    rng = np.random.default_rng(2)
    base = rng.random((70, 33)) < 0.6
    q, k, v = (rng.standard_normal(s) for s in ((2, 3, 33, 8), (2, 3, 70, 8), (2, 3, 70, 8)))
    for make in (lambda lib, m: m.transpose(0, 1),
                 lambda lib, m: m.transpose(0, 1)[None, :1].expand(3, 33, 70)):
        out = F.scaled_dot_product_attention(
            dc.tensor(q), dc.tensor(k), dc.tensor(v), attn_mask=make(dc, dc.tensor(base)))
        ref = TF.scaled_dot_product_attention(
            torch.tensor(q), torch.tensor(k), torch.tensor(v),
            attn_mask=make(torch, torch.tensor(base)))
        np.testing.assert_allclose(out.numpy(), ref.numpy(), **TOLS[np.float64])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hq,hk,causal", [(8, 2, False), (8, 1, True), (6, 3, True),
                                           (16, 8, True)])
def test_gqa(hq, hk, causal, dtype):
    """Below 8 key/value slabs the backward cuts each slab's keys into chunks (partial dq
    summed after); from 8 on, one slab is one work item: (16, 8) takes that path."""
    compare((2, hq, 65, 16), (2, hk, 33, 16), (2, hk, 33, 12), is_causal=causal,
            enable_gqa=True, dtype=dtype)


def test_broadcast_batch_and_scale():
    compare((1, 3, 9, 8), (2, 1, 11, 8), scale=0.7)
    compare((3, 9, 8), (2, 1, 11, 8), is_causal=True)
    compare((9, 8), (11, 8), scale=3.0)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 40, 3, 16))  # (B, L, H, E): heads picked by a transpose
    k = rng.standard_normal((2, 16, 3, 50))  # E before S
    v = rng.standard_normal((2, 3, 50, 24))[..., ::2]  # unit stride lost
    dq, dk, dv = (dc.tensor(a, requires_grad=True) for a in (q, k, v))
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    out = F.scaled_dot_product_attention(dq.transpose(1, 2), dk.permute(0, 2, 3, 1), dv,
                                         is_causal=True)
    ref = TF.scaled_dot_product_attention(tq.transpose(1, 2), tk.permute(0, 2, 3, 1), tv,
                                          is_causal=True)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), **TOLS[np.float64])
    out.sum().backward()
    ref.sum().backward()
    for d, t in ((dq, tq), (dk, tk), (dv, tv)):
        np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), **GRAD_TOLS[np.float64])


def test_long_sequence_float32():
    compare((1, 2, 1024, 64), (1, 2, 1024, 64), is_causal=True, dtype=np.float32)


def test_fully_masked_rows_give_zeros():
    rng = np.random.default_rng(4)
    keep = rng.random((2, 2, 20, 70)) < 0.5
    keep[:, :, 3] = False
    keep[0, 1, 11] = False
    compare((2, 2, 20, 8), (2, 2, 70, 8), mask=keep)
    additive = np.where(keep, 0.0, -np.inf)
    compare((2, 2, 20, 8), (2, 2, 70, 8), mask=additive)
    q = dc.randn(2, 2, 20, 8, dtype=dc.float64, requires_grad=True)
    k = dc.randn(2, 2, 70, 8, dtype=dc.float64)
    out = F.scaled_dot_product_attention(q, k, k, attn_mask=dc.tensor(keep))
    assert (out[:, :, 3] == 0).all().item()
    out.sum().backward()
    assert (q.grad[:, :, 3] == 0).all().item()


@pytest.mark.parametrize("kw", [dict(is_causal=True), dict(enable_gqa=True),
                                dict(mask="bool"), dict(mask="float")])
def test_gradcheck_float64(kw):
    rng = np.random.default_rng(5)
    kw = dict(kw)
    kind = kw.pop("mask", None)
    mask = None
    if kind == "bool":
        mask = dc.tensor(rng.random((6, 7)) < 0.6)
    elif kind == "float":
        mask = dc.tensor(rng.standard_normal((2, 1, 7)))
    hk = 1 if kw.get("enable_gqa") else 2
    q = dc.tensor(rng.standard_normal((1, 2, 6, 3)), requires_grad=True)
    k = dc.tensor(rng.standard_normal((1, hk, 7, 3)), requires_grad=True)
    v = dc.tensor(rng.standard_normal((1, hk, 7, 4)), requires_grad=True)

    def fn(a, b, c):
        return F.scaled_dot_product_attention(a, b, c, attn_mask=mask, **kw)
    assert fn(q, k, v).grad_fn.name() == "scaled_dot_product_attention"
    assert dc.autograd.gradcheck(fn, (q, k, v), eps=1e-6, atol=1e-5, rtol=1e-3)
    assert dc.autograd.gradgradcheck(fn, (q, k, v), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_second_derivative_against_torch():
    """create_graph=True through the fused node: the composite derivative takes over."""
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s) for s in ((2, 4, 9, 5), (2, 2, 11, 5), (2, 2, 11, 3))]
    grads = []
    for lib, fn in ((dc, F), (torch, TF)):
        q, k, v = (lib.tensor(a, requires_grad=True) for a in arrays)
        out = fn.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        gq, gk = lib.autograd.grad((out * out).sum(), (q, k), create_graph=True)
        (gq.square().sum() + (gk * gk).sum()).backward()
        grads.append([t.grad.detach().numpy() for t in (q, k, v)])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_paths():
    """Which implementation serves a call (Note [SDPA paths])."""
    q = dc.randn(2, 3, 5, 4, requires_grad=True)
    m = dc.randn(5, 5, requires_grad=True)
    assert F.scaled_dot_product_attention(q, q, q).grad_fn.name() == \
        "scaled_dot_product_attention"
    # dropout runs inside the kernel (Note [Dropout inside flash attention])
    assert F.scaled_dot_product_attention(q, q, q, dropout_p=0.5).grad_fn.name() == \
        "scaled_dot_product_attention"
    assert F.scaled_dot_product_attention(q, q, q, attn_mask=m).grad_fn.name() != \
        "scaled_dot_product_attention"
    with dc.no_grad():  # a mask that requires grad, but no graph: the kernel
        out = F.scaled_dot_product_attention(q, q, q, attn_mask=m)
    ref = F.scaled_dot_product_attention(q, q, q, attn_mask=m.detach())
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_float_mask_gradient_uses_composite():
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal(s) for s in ((2, 3, 6, 4), (2, 3, 9, 4), (2, 3, 9, 4)))
    mask = rng.standard_normal((3, 6, 9))
    res = []
    for lib, fn in ((dc, F), (torch, TF)):
        m = lib.tensor(mask, requires_grad=True)
        out = fn.scaled_dot_product_attention(lib.tensor(q), lib.tensor(k), lib.tensor(v),
                                              attn_mask=m)
        out.sum().backward()
        res.append(m.grad.numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-9, atol=1e-11)


def _raises(exc, match, *args, fn=F.scaled_dot_product_attention, **kw):
    with pytest.raises(exc, match=match):
        fn(*args, **kw)


def test_errors():
    f32 = lambda *s: dc.randn(*s)  # noqa: E731
    q, k = f32(2, 3, 5, 4), f32(2, 3, 7, 4)
    _raises(ValueError, r"scaled_dot_product_attention.*embedding size.*\(2, 3, 7, 6\)",
            q, f32(2, 3, 7, 6), k)
    _raises(ValueError, r"scaled_dot_product_attention.*sequence length", q, k, f32(2, 3, 6, 4))
    _raises(ValueError, r"scaled_dot_product_attention.*do not broadcast", q, f32(4, 3, 7, 4),
            f32(4, 3, 7, 4))
    _raises(ValueError, r"scaled_dot_product_attention.*attn_mask.*\(5, 6\)", q, k, k,
            attn_mask=dc.ones(5, 6, dtype=dc.bool))
    _raises(TypeError, r"scaled_dot_product_attention.*dtype", q, k.double(), k)
    _raises(TypeError, r"scaled_dot_product_attention.*floating-point", q.long(), k.long(),
            k.long())
    _raises(TypeError, r"scaled_dot_product_attention.*attn_mask", q, k, k,
            attn_mask=dc.ones(5, 7, dtype=dc.float64))
    _raises(ValueError, r"scaled_dot_product_attention.*multiple", f32(2, 4, 5, 4),
            f32(2, 3, 7, 4), f32(2, 3, 7, 4), enable_gqa=True)
    _raises(ValueError, r"scaled_dot_product_attention.*not both", q, k, k,
            attn_mask=dc.ones(5, 7, dtype=dc.bool), is_causal=True)
    _raises(ValueError, r"scaled_dot_product_attention.*at least 2 dims", f32(4), k, k)


def test_kernel_entry_errors():
    """The private op checks its arguments too (it never trusts the front end)."""
    op = dc._C._sdpa_flash
    q, k = dc.randn(2, 3, 5, 4), dc.randn(2, 3, 7, 4)
    _raises(ValueError, r"same leading dims.*\(1, 3, 7, 4\)", q, k, dc.randn(1, 3, 7, 4), None,
            False, 0.5, False, fn=op)
    _raises(ValueError, r"embedding size", q, dc.randn(2, 3, 7, 5), k, None, False, 0.5, False,
            fn=op)
    _raises(ValueError, r"does not broadcast.*\(2, 3, 5, 7\)", q, k, k,
            dc.ones(4, 5, 7, dtype=dc.bool), False, 0.5, False, fn=op)
    _raises(ValueError, r"more dims", q, k, k, dc.ones(1, 2, 3, 5, 7, dtype=dc.bool), False,
            0.5, False, fn=op)
    _raises(ValueError, r"multiple", q, dc.randn(2, 2, 7, 4), dc.randn(2, 2, 7, 4), None,
            False, 0.5, True, fn=op)
    _raises(TypeError, r"float32 or float64", q.long(), k.long(), k.long(), None, False, 0.5,
            False, fn=op)
    _raises(ValueError, r"not both", q, k, k, dc.ones(5, 7, dtype=dc.bool), True, 0.5, False,
            fn=op)


# Peak RSS from /proc (VmHWM): getrusage's ru_maxrss would carry the pre-exec size of the
# forked pytest process over to the child.
_MEMORY_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import deepcore as dc
    import deepcore.nn.functional as F
    L, H, p = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    dc.set_num_threads(1)
    def status_kb(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field))
    def inputs(n):
        rng = np.random.default_rng(0)
        return [dc.tensor(rng.standard_normal((1, H, n, 32)).astype(np.float32),
                          requires_grad=True) for _ in range(3)]
    q, k, v = inputs(64)  # load everything once
    F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p).sum().backward()
    q, k, v = inputs(L)
    base = status_kb("VmRSS:")
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
    out.sum().backward()
    print(status_kb("VmHWM:") - base)
""")


def _memory_growth_bytes(L, H, dropout_p=0.0):
    r = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(L), str(H), str(dropout_p)],
                       check=True, capture_output=True, text=True, timeout=300)
    return 1024 * int(r.stdout.split()[-1])


def test_memory_linear_in_length():
    """Peak RSS growth of forward + backward at L = 4096 stays far below the L x S scores."""
    H = 2
    growth_bytes = lambda L: _memory_growth_bytes(L, H)  # noqa: E731
    L = 4096
    scores = H * L * L * 4  # one float32 score matrix per head: 128 MiB
    linear = 12 * H * L * 32 * 4  # q, k, v, out, their grads, dout, lse: about 12 slabs
    grown = growth_bytes(L)
    assert grown < scores / 4, f"grew {grown / 2**20:.1f} MiB; the scores take " \
        f"{scores / 2**20:.0f} MiB"
    assert grown < 4 * linear + 8 * 2**20, grown


@pytest.mark.parametrize("q_shape,k_shape,v_shape", [
    ((2, 3, 5, 0), (2, 3, 7, 0), (2, 3, 7, 4)), ((2, 3, 0, 4), (2, 3, 7, 4), (2, 3, 7, 4)),
    ((2, 3, 5, 4), (2, 3, 0, 4), (2, 3, 0, 4)), ((0, 3, 5, 4), (0, 3, 7, 4), (0, 3, 7, 4)),
    ((2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 0))])
def test_empty_dims(q_shape, k_shape, v_shape):
    compare(q_shape, k_shape, v_shape)


@pytest.mark.parametrize("dropout_p", [0.0, 0.3])
@pytest.mark.parametrize("hq,hk", [(4, 2), (8, 4)])  # key chunks / one item per slab
def test_thread_count_does_not_change_results(hq, hk, dropout_p):
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s).astype(np.float32)
              for s in ((2, hq, 150, 16), (2, hk, 270, 16), (2, hk, 270, 16))]
    results = []
    before = dc.get_num_threads()
    try:
        for n in (1, 2):
            dc.set_num_threads(n)
            q, k, v = (dc.tensor(a, requires_grad=True) for a in arrays)
            dc.manual_seed(0)
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True,
                                                 dropout_p=dropout_p)
            out.sum().backward()
            results.append([t.detach().numpy().copy() for t in (out, q.grad, k.grad, v.grad)])
    finally:
        dc.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ---- dropout inside the kernel (Note [Dropout inside flash attention]) ----------------------

def _recover_dropout_mask(shape_q, shape_k, p, seed, **kw):
    """The kernel's keep mask (..., L, S) as 0/1, drawn under manual_seed(seed): with q = k = 0
    every visible key has probability 1 / (visible keys), and v = the identity of size S puts
    key j's dropped-and-scaled probability in output column j. The mask depends on the slab,
    the query row and the key only, not on E, Ev or the values, so a second call with the same
    seed and the same leading dims and lengths draws the same mask."""
    *qb, L, E = shape_q
    *kb, S, _ = shape_k
    q = dc.zeros(*qb, L, E, dtype=dc.float64)
    k = dc.zeros(*kb, S, E, dtype=dc.float64)
    eye = dc.tensor(np.broadcast_to(np.eye(S), (*kb, S, S)).copy())
    dc.manual_seed(seed)
    out = F.scaled_dot_product_attention(q, k, eye, dropout_p=p, is_causal=False,
                                         enable_gqa=kw.get("enable_gqa", False)).numpy()
    kept = out * S * (1 - p)
    np.testing.assert_allclose(kept, np.round(kept), atol=1e-12)  # only 0 and 1 / (1 - p) / S
    return np.round(kept)


def test_dropout_is_deterministic_under_manual_seed():
    rng = np.random.default_rng(10)
    arrays = [rng.standard_normal((2, 3, 100, 16)).astype(np.float32) for _ in range(3)]
    runs = []
    for seed in (4, 4, 5):
        q, k, v = (dc.tensor(a, requires_grad=True) for a in arrays)
        dc.manual_seed(seed)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.2, is_causal=True)
        out.sum().backward()
        runs.append([t.detach().numpy().copy() for t in (out, q.grad, k.grad, v.grad)])
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][0], runs[2][0])  # another seed, another mask
    # consecutive calls draw new masks: the generator advances
    dc.manual_seed(4)
    q, k, v = (dc.tensor(a) for a in arrays)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.2).numpy()
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.2).numpy()
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_statistics(p):
    """Kept fraction within 5 binomial standard deviations; the mean output is v's mean."""
    B, H, L, S = 2, 3, 130, 200  # partial key blocks of 128 and Philox blocks of 64
    keep = _recover_dropout_mask((B, H, L, 8), (B, H, S, 8), p, seed=11)
    n = keep.size
    assert abs(keep.sum() - n * (1 - p)) < 5 * np.sqrt(n * p * (1 - p)), keep.mean()
    # every slab and row draws its own mask (no counter shared between them)
    flat = keep.reshape(B * H * L, S)
    assert len({r.tobytes() for r in flat}) > 0.99 * len(flat)
    # inverted scaling: with uniform attention, out = mean over keys of mask * v / (1 - p)
    rng = np.random.default_rng(12)
    v = rng.uniform(1, 2, (B, H, S, 4))
    dc.manual_seed(13)
    out = F.scaled_dot_product_attention(dc.zeros(B, H, L, 8, dtype=dc.float64),
                                         dc.zeros(B, H, S, 8, dtype=dc.float64), dc.tensor(v),
                                         dropout_p=p).numpy()
    # each output is a sum of S independent terms mask * v / ((1 - p) S); its variance is
    # below E[v^2] p / ((1 - p) S), and the B H L rows average independently
    std = np.sqrt((v ** 2).mean() * p / ((1 - p) * S) / (B * H * L))
    assert abs(out.mean() - v.mean()) < 5 * std + 1e-12, (out.mean(), v.mean())


def test_dropout_causal_normalises_over_every_visible_key():
    """Softmax before dropout: row i of a causal call keeps 1 / ((1 - p)(i + 1)) per kept key,
    nothing above the diagonal; a bool mask hides its keys the same way."""
    L, S, p = 70, 70, 0.4
    eye = dc.tensor(np.broadcast_to(np.eye(S), (1, 2, S, S)).copy())
    z = dc.zeros(1, 2, L, 8, dtype=dc.float64)
    dc.manual_seed(21)
    out = F.scaled_dot_product_attention(z, z, eye, dropout_p=p, is_causal=True).numpy()
    keep = _recover_dropout_mask((1, 2, L, 8), (1, 2, S, 8), p, seed=21)
    tri = np.tril(np.ones((L, S)))
    want = keep * tri / (1 - p) / tri.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-15)
    mask = np.random.default_rng(22).random((L, S)) < 0.5
    mask[:, 0] = True
    dc.manual_seed(21)
    out = F.scaled_dot_product_attention(z, z, eye, attn_mask=dc.tensor(mask),
                                         dropout_p=p).numpy()
    want = keep * mask / (1 - p) / mask.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kw", [dict(), dict(is_causal=True), dict(mask="bool"),
                                dict(mask="float"), dict(enable_gqa=True)])
def test_dropout_gradients_match_composite_with_the_same_mask(kw):
    """float64: forward and the fused backward against torch's composite formula with the
    kernel's own mask (recovered as in _recover_dropout_mask; gradcheck cannot hold the random
    mask fixed). Key blocks of 128 and query blocks of 64 are crossed."""
    kw = dict(kw)
    kind = kw.pop("mask", None)
    p, seed = 0.3, 31
    hk = 1 if kw.get("enable_gqa") else 3
    sq, sk, sv = (2, 3, 70, 8), (2, hk, 150, 8), (2, hk, 150, 5)
    rng = np.random.default_rng(32)
    mask = None
    if kind == "bool":
        mask = rng.random((70, 150)) < 0.7
    elif kind == "float":
        mask = rng.standard_normal((3, 70, 150))
    keep = _recover_dropout_mask(sq, sk, p, seed, **kw)
    arrays = [rng.standard_normal(s) for s in (sq, sk, sv)]
    q, k, v = (dc.tensor(a, requires_grad=True) for a in arrays)
    dc.manual_seed(seed)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=p,
                                         attn_mask=None if mask is None else dc.tensor(mask),
                                         **kw)
    assert out.grad_fn.name() == "scaled_dot_product_attention", "not the fused kernel"
    g = rng.standard_normal(tuple(out.shape))
    out.backward(dc.tensor(g))
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in arrays)
    kk, vv = tk, tv
    if kw.get("enable_gqa"):
        kk, vv = tk.repeat_interleave(3, -3), tv.repeat_interleave(3, -3)
    s = tq @ kk.transpose(-2, -1) / np.sqrt(8)
    if kw.get("is_causal"):
        s = s.masked_fill(~torch.ones(70, 150, dtype=torch.bool).tril(), -np.inf)
    if kind == "bool":
        s = s.masked_fill(~torch.tensor(mask), -np.inf)
    elif kind == "float":
        s = s + torch.tensor(mask)
    ref = (torch.softmax(s, -1) * torch.tensor(keep) / (1 - p)) @ vv
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), **TOLS[np.float64])
    for name, d, t in zip("qkv", (q, k, v), (tq, tk, tv)):
        np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), err_msg=f"d{name}",
                                   **GRAD_TOLS[np.float64])


def test_dropout_create_graph_uses_the_same_mask():
    """The composite derivative (create_graph=True) materialises the kernel's mask: its first
    derivatives equal the fused backward's, and its second derivatives torch's composite
    formula with that mask."""
    p, seed = 0.25, 41
    sq, sk = (2, 2, 9, 5), (2, 2, 11, 5)
    keep = _recover_dropout_mask(sq, sk, p, seed)
    rng = np.random.default_rng(42)
    arrays = [rng.standard_normal(s) for s in (sq, sk, (2, 2, 11, 3))]
    grads = []
    for create_graph in (False, True):
        q, k, v = (dc.tensor(a, requires_grad=True) for a in arrays)
        dc.manual_seed(seed)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        grads.append(dc.autograd.grad((out * out).sum(), (q, k, v), create_graph=create_graph))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    gq, gk, gv = grads[1]
    (gq.square().sum() + (gk * gv.sum()).sum()).backward()
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in arrays)
    s = (tq @ tk.transpose(-2, -1) / np.sqrt(5)).masked_fill(
        ~torch.ones(9, 11, dtype=torch.bool).tril(), -np.inf)
    tout = (torch.softmax(s, -1) * torch.tensor(keep) / (1 - p)) @ tv
    tg = torch.autograd.grad((tout * tout).sum(), (tq, tk, tv), create_graph=True)
    (tg[0].square().sum() + (tg[1] * tg[2].sum()).sum()).backward()
    for d, t in zip((q, k, v), (tq, tk, tv)):
        np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_dropout_one_gives_zeros_and_zero_gradients():
    q, k, v = (dc.randn(2, 2, 9, 4, dtype=dc.float64, requires_grad=True) for _ in range(3))
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=1.0, is_causal=True)
    assert out.grad_fn.name() == "scaled_dot_product_attention"
    np.testing.assert_array_equal(out.detach().numpy(), 0.0)
    out.backward(dc.randn(2, 2, 9, 4, dtype=dc.float64))
    for t in (q, k, v):
        np.testing.assert_array_equal(t.grad.numpy(), 0.0)


def test_dropout_zero_is_the_plain_kernel():
    """dropout_p = 0 draws nothing from the generator and gives the plain kernel's bits; the
    op's entry checks the probability."""
    q, k, v = (dc.randn(2, 2, 70, 8) for _ in range(3))
    state = dc.get_rng_state().numpy().copy()
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0).numpy()
    np.testing.assert_array_equal(dc.get_rng_state().numpy(), state)
    b = dc._C._sdpa_flash(q, k, v, None, False, 1 / np.sqrt(8), False).numpy()
    np.testing.assert_array_equal(a, b)
    F.scaled_dot_product_attention(q, k, v, dropout_p=0.1)
    assert not np.array_equal(dc.get_rng_state().numpy(), state)
    _raises(ValueError, r"dropout_p must be in \[0, 1\], got 1.5", q, k, v, None, False, 0.5,
            False, 1.5, fn=dc._C._sdpa_flash)


def test_dropout_memory_linear_in_length():
    """With dropout the kernel still stores no L x S tensor (the mask is recomputed)."""
    H, L = 2, 2048
    grown = _memory_growth_bytes(L, H, dropout_p=0.1)
    scores = H * L * L * 4  # 32 MiB
    linear = 12 * H * L * 32 * 4
    assert grown < scores / 4, f"grew {grown / 2**20:.1f} MiB; the scores take " \
        f"{scores / 2**20:.0f} MiB"
    assert grown < 4 * linear + 8 * 2**20, grown
