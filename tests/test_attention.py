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
    for kw in (dict(dropout_p=0.5), dict(attn_mask=m)):
        assert F.scaled_dot_product_attention(q, q, q, **kw).grad_fn.name() != \
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
    L, H = int(sys.argv[1]), int(sys.argv[2])
    dc.set_num_threads(1)
    def status_kb(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field))
    def inputs(n):
        rng = np.random.default_rng(0)
        return [dc.tensor(rng.standard_normal((1, H, n, 32)).astype(np.float32),
                          requires_grad=True) for _ in range(3)]
    q, k, v = inputs(64)  # load everything once
    F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
    q, k, v = inputs(L)
    base = status_kb("VmRSS:")
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out.sum().backward()
    print(status_kb("VmHWM:") - base)
""")


def test_memory_linear_in_length():
    """Peak RSS growth of forward + backward at L = 4096 stays far below the L x S scores."""
    H = 2

    def growth_bytes(L):
        r = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(L), str(H)], check=True,
                           capture_output=True, text=True, timeout=300)
        return 1024 * int(r.stdout.split()[-1])
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


@pytest.mark.parametrize("hq,hk", [(4, 2), (8, 4)])  # key chunks / one item per slab
def test_thread_count_does_not_change_results(hq, hk):
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s).astype(np.float32)
              for s in ((2, hq, 150, 16), (2, hk, 270, 16), (2, hk, 270, 16))]
    results = []
    before = dc.get_num_threads()
    try:
        for n in (1, 2):
            dc.set_num_threads(n)
            q, k, v = (dc.tensor(a, requires_grad=True) for a in arrays)
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            out.sum().backward()
            results.append([t.detach().numpy().copy() for t in (out, q.grad, k.grad, v.grad)])
    finally:
        dc.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
