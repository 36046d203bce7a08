"""Recurrent layers against PyTorch: nn.RNN / LSTM / GRU and the cells built from the same
state_dict, outputs, final states and the gradients of inputs, initial states and every
parameter; packed sequences; float64 finite differences of the C++ op; dropout; errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import to_numpy

import deepcore as dc

# float64 forward is exact up to summation order; gradients go through T steps of it.
TOL64 = dict(rtol=1e-9, atol=1e-11)
# float32: the recurrence compounds rounding over the steps.
TOL32 = dict(rtol=2e-4, atol=2e-5)

KINDS = {
    "RNN_TANH": (torch.nn.RNN, dc.nn.RNN, dict(nonlinearity="tanh")),
    "RNN_RELU": (torch.nn.RNN, dc.nn.RNN, dict(nonlinearity="relu")),
    "LSTM": (torch.nn.LSTM, dc.nn.LSTM, {}),
    "GRU": (torch.nn.GRU, dc.nn.GRU, {}),
}


def close(a, b, tol, msg=""):
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), err_msg=msg, **tol)


def make_pair(kind, *args, dtype=torch.float64, seed=0, **kwargs):
    tcls, dcls, extra = KINDS[kind]
    torch.manual_seed(seed)
    tm = tcls(*args, **extra, **kwargs).to(dtype)
    dm = dcls(*args, **extra, **kwargs, dtype=dc.float64 if dtype == torch.float64 else dc.float32)
    assert [n for n, _ in dm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    return tm, dm


def leaf_pair(arr):
    return torch.tensor(arr, requires_grad=True), dc.tensor(arr).requires_grad_()


def flat_results(out, hidden):
    """output, h_n[, c_n] as a list (output.data for packed results)."""
    res = [out.data if hasattr(out, "batch_sizes") else out]
    res += list(hidden) if isinstance(hidden, tuple) else [hidden]
    return res


def compare_run(tm, dm, t_in, d_in, t_hx, d_hx, leaves, tol, seed=1):
    """Forward both, compare results, backpropagate the same random weights of every result and
    compare the gradients of `leaves` (pairs) and of every parameter."""
    t_res = flat_results(*tm(t_in, t_hx))
    d_res = flat_results(*dm(d_in, d_hx))
    assert len(t_res) == len(d_res)
    rng = np.random.default_rng(seed)
    t_loss, d_loss = 0, 0
    for i, (t, d) in enumerate(zip(t_res, d_res)):
        assert tuple(d.shape) == tuple(t.shape), f"result {i}: {d.shape} vs {t.shape}"
        close(d, t, tol, f"result {i}")
        w = rng.standard_normal(tuple(t.shape))
        t_loss = t_loss + (t * torch.tensor(w, dtype=t.dtype)).sum()
        d_loss = d_loss + (d * dc.tensor(w.astype(to_numpy(d).dtype))).sum()
    t_loss.backward()
    d_loss.backward()
    for i, (t, d) in enumerate(leaves):
        close(d.grad, t.grad, tol, f"grad of input {i}")
    dparams = dict(dm.named_parameters())
    for name, p in tm.named_parameters():
        close(dparams[name].grad, p.grad, tol, f"grad of {name}")


def states(kind, layers, batch, hidden, proj=0, rng=None, dtype=np.float64):
    """Initial states as (torch hx, deepcore hx, leaf pairs)."""
    real = proj or hidden
    shape = (layers, batch, real) if batch is not None else (layers, real)
    th, dh = leaf_pair(rng.standard_normal(shape).astype(dtype))
    if kind != "LSTM":
        return th, dh, [(th, dh)]
    cshape = shape[:-1] + (hidden,)
    tc, dcc = leaf_pair(rng.standard_normal(cshape).astype(dtype))
    return (th, tc), (dh, dcc), [(th, dh), (tc, dcc)]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (1, True), (2, True)])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("given_h0", [False, True])
def test_matches_torch(kind, layers, bidirectional, batch_first, given_h0):
    T, B, I, H = 5, 3, 4, 6
    tm, dm = make_pair(kind, I, H, num_layers=layers, bidirectional=bidirectional,
                       batch_first=batch_first)
    rng = np.random.default_rng(0)
    shape = (B, T, I) if batch_first else (T, B, I)
    tx, dx = leaf_pair(rng.standard_normal(shape))
    leaves = [(tx, dx)]
    thx = dhx = None
    if given_h0:
        thx, dhx, more = states(kind, layers * (2 if bidirectional else 1), B, H, rng=rng)
        leaves += more
    compare_run(tm, dm, tx, dx, thx, dhx, leaves, TOL64)


@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("given_h0", [False, True])
def test_lstm_proj_size(layers, bidirectional, given_h0):
    T, B, I, H, P = 4, 3, 5, 7, 3
    tm, dm = make_pair("LSTM", I, H, num_layers=layers, bidirectional=bidirectional,
                       proj_size=P)
    rng = np.random.default_rng(1)
    tx, dx = leaf_pair(rng.standard_normal((T, B, I)))
    leaves = [(tx, dx)]
    thx = dhx = None
    if given_h0:
        thx, dhx, more = states("LSTM", layers * (2 if bidirectional else 1), B, H, P, rng)
        leaves += more
    compare_run(tm, dm, tx, dx, thx, dhx, leaves, TOL64)


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_bias_and_float32(kind):
    T, B, I, H = 6, 4, 3, 5
    rng = np.random.default_rng(2)
    tm, dm = make_pair(kind, I, H, num_layers=2, bias=False)
    assert not any("bias" in n for n, _ in dm.named_parameters())
    tx, dx = leaf_pair(rng.standard_normal((T, B, I)))
    compare_run(tm, dm, tx, dx, None, None, [(tx, dx)], TOL64)
    tm, dm = make_pair(kind, I, H, num_layers=2, bidirectional=True, dtype=torch.float32)
    tx, dx = leaf_pair(rng.standard_normal((T, B, I)).astype(np.float32))
    compare_run(tm, dm, tx, dx, None, None, [(tx, dx)], TOL32)


@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_and_non_contiguous(kind):
    T, I, H = 5, 4, 6
    rng = np.random.default_rng(3)
    tm, dm = make_pair(kind, I, H, num_layers=2, bidirectional=True)
    tx, dx = leaf_pair(rng.standard_normal((T, I)))
    thx, dhx, more = states(kind, 4, None, H, rng=rng)
    compare_run(tm, dm, tx, dx, thx, dhx, [(tx, dx)] + more, TOL64)
    # (B, T, I) read through a transposed, strided view
    tm, dm = make_pair(kind, I, H, batch_first=True)
    base = rng.standard_normal((T, 2 * I, 3))
    tb, db = leaf_pair(base)
    tv, dv = tb[:, ::2].permute(2, 0, 1), db[:, ::2].permute(2, 0, 1)
    assert not dv.is_contiguous()
    compare_run(tm, dm, tv, dv, None, None, [(tb, db)], TOL64)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequences(kind, enforce_sorted, bidirectional):
    from torch.nn.utils import rnn as trnn

    from deepcore.nn.utils import rnn as drnn
    T, B, I, H = 6, 4, 3, 5
    lengths = [6, 4, 4, 1] if enforce_sorted else [2, 6, 1, 4]
    rng = np.random.default_rng(4)
    tm, dm = make_pair(kind, I, H, num_layers=2, bidirectional=bidirectional, batch_first=True)
    tx, dx = leaf_pair(rng.standard_normal((B, T, I)))
    tp = trnn.pack_padded_sequence(tx, lengths, batch_first=True, enforce_sorted=enforce_sorted)
    dp = drnn.pack_padded_sequence(dx, dc.tensor(np.array(lengths)), batch_first=True,
                                   enforce_sorted=enforce_sorted)
    assert dp.batch_sizes.tolist() == tp.batch_sizes.tolist()
    for a, b in ((dp.sorted_indices, tp.sorted_indices),
                 (dp.unsorted_indices, tp.unsorted_indices)):
        assert (a is None and b is None) or a.tolist() == b.tolist()
    close(dp.data, tp.data, TOL64)
    thx, dhx, more = states(kind, 4 if bidirectional else 2, B, H, rng=rng)
    compare_run(tm, dm, tp, dp, thx, dhx, [(tx, dx)] + more, TOL64)
    # padded round trip
    t_out, _ = tm(tp, thx)
    d_out, _ = dm(dp, dhx)
    assert isinstance(d_out, drnn.PackedSequence)
    tpad, tlen = trnn.pad_packed_sequence(t_out, batch_first=True, padding_value=-1.0,
                                          total_length=8)
    dpad, dlen = drnn.pad_packed_sequence(d_out, batch_first=True, padding_value=-1.0,
                                          total_length=8)
    assert dlen.tolist() == tlen.tolist()
    close(dpad, tpad, TOL64)


def test_sequence_utils():
    from torch.nn.utils import rnn as trnn

    from deepcore.nn.utils import rnn as drnn
    rng = np.random.default_rng(5)
    arrs = [rng.standard_normal((n, 2)) for n in (3, 5, 2)]
    for bf in (False, True):
        for side in ("right", "left"):
            t = trnn.pad_sequence([torch.tensor(a) for a in arrs], batch_first=bf,
                                  padding_value=7.0, padding_side=side)
            d = drnn.pad_sequence([dc.tensor(a) for a in arrs], batch_first=bf,
                                  padding_value=7.0, padding_side=side)
            close(d, t, TOL64)
    for enforce in (False,):
        t = trnn.pack_sequence([torch.tensor(a) for a in arrs], enforce_sorted=enforce)
        d = drnn.pack_sequence([dc.tensor(a) for a in arrs], enforce_sorted=enforce)
        close(d.data, t.data, TOL64)
        assert d.batch_sizes.tolist() == t.batch_sizes.tolist()
        for a, b in zip(drnn.unpack_sequence(d), arrs):
            close(a, b, TOL64)
    with pytest.raises(ValueError, match="sorted in decreasing order"):
        drnn.pack_sequence([dc.tensor(a) for a in arrs])
    with pytest.raises(ValueError, match="total_length"):
        drnn.pad_packed_sequence(drnn.pack_sequence([dc.tensor(arrs[1])]), total_length=2)
    packed = drnn.pack_sequence([dc.tensor(a) for a in arrs], enforce_sorted=False)
    moved = packed.to(dc.float32)
    assert isinstance(moved, drnn.PackedSequence) and moved.data.dtype == dc.float32
    assert moved.sorted_indices.tolist() == packed.sorted_indices.tolist()


@pytest.mark.parametrize("kind", ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("given_h0", [True, False])
def test_cells(kind, batched, given_h0):
    tcls, dcls = {"RNN_TANH": (torch.nn.RNNCell, dc.nn.RNNCell),
                  "RNN_RELU": (torch.nn.RNNCell, dc.nn.RNNCell),
                  "LSTM": (torch.nn.LSTMCell, dc.nn.LSTMCell),
                  "GRU": (torch.nn.GRUCell, dc.nn.GRUCell)}[kind]
    extra = {"nonlinearity": "relu"} if kind == "RNN_RELU" else {}
    torch.manual_seed(0)
    I, H, B = 4, 5, 3
    tm = tcls(I, H, **extra).double()
    dm = dcls(I, H, **extra, dtype=dc.float64)
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(6)
    tx, dx = leaf_pair(rng.standard_normal((B, I) if batched else (I,)))
    leaves = [(tx, dx)]
    thx = dhx = None
    if given_h0:
        hshape = (B, H) if batched else (H,)
        th, dh = leaf_pair(rng.standard_normal(hshape))
        leaves.append((th, dh))
        thx, dhx = th, dh
        if kind == "LSTM":
            tc, dcc = leaf_pair(rng.standard_normal(hshape))
            leaves.append((tc, dcc))
            thx, dhx = (th, tc), (dh, dcc)
    t_res = tm(tx, thx)
    d_res = dm(dx, dhx)
    t_res = list(t_res) if isinstance(t_res, tuple) else [t_res]
    d_res = list(d_res) if isinstance(d_res, tuple) else [d_res]
    t_loss, d_loss = 0, 0
    for t, d in zip(t_res, d_res):
        close(d, t, TOL64)
        w = rng.standard_normal(tuple(t.shape))
        t_loss = t_loss + (t * torch.tensor(w)).sum()
        d_loss = d_loss + (d * dc.tensor(w)).sum()
    t_loss.backward()
    d_loss.backward()
    for t, d in leaves:
        close(d.grad, t.grad, TOL64)
    dparams = dict(dm.named_parameters())
    for name, p in tm.named_parameters():
        close(dparams[name].grad, p.grad, TOL64, name)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_isa_and_thread_count(kind):
    """The gate kernels are compiled once per ISA and the step GEMM splits its columns over
    threads: each combination against torch, in float32 at a size that takes the threaded path."""
    isas = ["generic", "avx2", "avx512"]
    isas = isas[:isas.index(dc._C._detected_isa()) + 1]
    before = dc._C._active_isa()
    T, B, I, H = 3, 33, 16, 128  # the step GEMM: 2 * 33 * 128 * 32 flops per column panel
    rng = np.random.default_rng(10)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    tm, dm = make_pair(kind, I, H, bidirectional=True, dtype=torch.float32)
    try:
        for isa in isas:
            dc._C._set_isa(isa)
            for threads in (1, 2):
                dc.set_num_threads(threads)
                tx, dx = leaf_pair(x)
                dm.zero_grad()
                tm.zero_grad()
                compare_run(tm, dm, tx, dx, None, None, [(tx, dx)], TOL32)
    finally:
        dc._C._set_isa(before)


# ---- the C++ op --------------------------------------------------------------------------

def _gru_reset_before_reference(x, h0, w_ih, w_hh, b_ih, b_hh):
    """Keras' reset_after=False GRU in numpy: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)."""
    H = h0.shape[-1]
    h, outs = h0, []
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(x.shape[0]):
        gi = x[t] @ w_ih.T + b_ih
        r = sig(gi[:, :H] + h @ w_hh[:H].T + b_hh[:H])
        z = sig(gi[:, H:2 * H] + h @ w_hh[H:2 * H].T + b_hh[H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + (r * h) @ w_hh[2 * H:].T + b_hh[2 * H:])
        h = (1 - z) * n + z * h
        outs.append(h)
    return np.stack(outs), h


@pytest.mark.parametrize("reverse", [False, True])
def test_gru_reset_before_forward(reverse):
    T, B, I, H = 5, 3, 4, 6
    rng = np.random.default_rng(7)
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    w_ih, w_hh = rng.standard_normal((3 * H, I)), rng.standard_normal((3 * H, H))
    b_ih, b_hh = rng.standard_normal(3 * H), rng.standard_normal(3 * H)
    ref_out, ref_h = _gru_reset_before_reference(x[::-1] if reverse else x, h0, w_ih, w_hh,
                                                 b_ih, b_hh)
    if reverse:
        ref_out = ref_out[::-1]
    out, hn = dc._C._rnn_layer(*(dc.tensor(np.ascontiguousarray(a)) for a in (x, h0)), None,
                               *(dc.tensor(a) for a in (w_ih, w_hh, b_ih, b_hh)), None, None,
                               "GRU", reverse, False)
    close(out, ref_out, TOL64)
    close(hn, ref_h, TOL64)


def _op_case(mode, packed, reverse, proj, lbr, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    G = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    T, B, I, H = 3, 3, 2, 3
    P = 2 if proj else H
    batch_sizes = [3, 2, 1] if packed else None
    x = rng.standard_normal((6, I) if packed else (T, B, I))
    args = [x, rng.standard_normal((B, P)),
            rng.standard_normal((B, H)) if mode == "LSTM" else None,
            rng.standard_normal((G * H, I)) * 0.5, rng.standard_normal((G * H, P)) * 0.5,
            rng.standard_normal(G * H) if bias else None,
            rng.standard_normal(G * H) if bias else None,
            rng.standard_normal((P, H)) * 0.5 if proj else None]
    tensors = [None if a is None else dc.tensor(a).requires_grad_() for a in args]

    def fn(*ts):
        return tuple(dc._C._rnn_layer(*ts, batch_sizes, mode, reverse, lbr))
    return fn, tensors


@pytest.mark.parametrize("mode,proj,lbr", [("LSTM", False, True), ("LSTM", True, True),
                                           ("GRU", False, True), ("GRU", False, False),
                                           ("RNN_TANH", False, True), ("RNN_RELU", False, True)])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_op_gradcheck(mode, proj, lbr, packed, reverse):
    fn, tensors = _op_case(mode, packed, reverse, proj, lbr)
    inputs = [t for t in tensors]
    assert dc.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_op_without_bias_gradcheck():
    fn, tensors = _op_case("GRU", True, True, False, False, bias=False)
    assert dc.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_double_backward_raises():
    fn, tensors = _op_case("LSTM", False, False, False, True)
    out = fn(*tensors)[0].sum()
    with pytest.raises(NotImplementedError, match="double backward"):
        dc.autograd.grad(out, [tensors[0]], create_graph=True)


def test_saved_tensors():
    fn, tensors = _op_case("GRU", False, False, False, True)
    out = fn(*tensors)[0].sum()
    (g1,) = dc.autograd.grad(out, [tensors[3]], retain_graph=True)
    (g2,) = dc.autograd.grad(out, [tensors[3]])
    close(g1, g2, dict(rtol=0, atol=0))
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        dc.autograd.grad(out, [tensors[3]])
    out = fn(*tensors)[0].sum()
    with dc.no_grad():
        tensors[4].mul_(2)  # weight_hh changed in place after the forward
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        out.backward()


def test_op_errors():
    fn, tensors = _op_case("LSTM", False, False, False, True)
    x, hx, cx, w_ih, w_hh, b_ih, b_hh, _ = tensors
    with pytest.raises(ValueError, match=r"\[_rnn_layer\] LSTM: expected hidden state hx of "
                                         r"shape \(3, 3\), got \(2, 3\)"):
        dc._C._rnn_layer(x, hx[:2], cx, w_ih, w_hh, b_ih, b_hh, None, None, "LSTM")
    with pytest.raises(ValueError, match="unknown mode 'lstm'"):
        dc._C._rnn_layer(x, hx, cx, w_ih, w_hh, b_ih, b_hh, None, None, "lstm")
    with pytest.raises(ValueError, match="non-increasing"):
        dc._C._rnn_layer(x.reshape(9, 2), hx, cx, w_ih, w_hh, b_ih, b_hh, None, [3, 1, 2, 3],
                         "LSTM")
    with pytest.raises(ValueError, match="sum to 6 but the packed input has 9 rows"):
        dc._C._rnn_layer(x.reshape(9, 2), hx, cx, w_ih, w_hh, b_ih, b_hh, None, [3, 2, 1],
                         "LSTM")
    with pytest.raises(TypeError, match="dtype"):
        dc._C._rnn_layer(x.float(), hx, cx, w_ih, w_hh, b_ih, b_hh, None, None, "LSTM")


# ---- modules: dropout, errors, API ---------------------------------------------------------

def test_dropout_between_layers():
    dc.manual_seed(0)
    m = dc.nn.LSTM(8, 64, num_layers=2, dropout=0.5, dtype=dc.float64)
    x = dc.tensor(np.random.default_rng(8).standard_normal((4, 16, 8)))
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    close(a, b, dict(rtol=0, atol=0))  # eval: deterministic, no dropout
    m1 = dc.nn.LSTM(8, 64, num_layers=1, dtype=dc.float64)
    m1.load_state_dict({k: v for k, v in m.state_dict().items() if k.endswith("l0")})
    m.train()
    c, _ = m(x)
    d, _ = m(x)
    assert not np.allclose(to_numpy(c), to_numpy(d))  # train: a fresh mask each call
    # The layer-1 input is layer 0's output with about half its units zeroed and the rest
    # scaled by 2: feed the masked output to layer 1 directly and recover the same result.
    out0, _ = m1(x)
    drop = dc.nn.functional.dropout
    dc.manual_seed(123)
    c, _ = m(x)
    dc.manual_seed(123)
    masked = drop(out0, 0.5, True)
    zero_frac = float((to_numpy(masked) == 0).mean())
    assert 0.45 < zero_frac < 0.55
    l1 = dc.nn.LSTM(64, 64, dtype=dc.float64)
    l1.load_state_dict({k.replace("l1", "l0"): v for k, v in m.state_dict().items()
                        if k.endswith("l1")})
    ref, _ = l1(masked)
    close(c, ref, TOL64)


def test_dropout_warning_and_validation():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        dc.nn.GRU(3, 4, dropout=0.2)
    with pytest.raises(ValueError, match="dropout"):
        dc.nn.GRU(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="proj_size"):
        dc.nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        dc.nn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="nonlinearity"):
        dc.nn.RNN(3, 4, nonlinearity="sigmoid")


def test_module_errors():
    m = dc.nn.LSTM(10, 20, num_layers=2)
    x = dc.randn(5, 3, 10)
    with pytest.raises(ValueError, match=r"LSTM\(10, 20\): expected hidden state of shape "
                                         r"\(2, 3, 20\), got \(1, 3, 20\)"):
        m(x, (dc.zeros(1, 3, 20), dc.zeros(2, 3, 20)))
    with pytest.raises(ValueError, match=r"LSTM\(10, 20\): expected cell state of shape "
                                         r"\(2, 3, 20\), got \(2, 3, 21\)"):
        m(x, (dc.zeros(2, 3, 20), dc.zeros(2, 3, 21)))
    with pytest.raises(ValueError, match=r"LSTM\(10, 20\): input of shape \(5, 3, 7\) has 7 "
                                         r"features, expected input_size=10"):
        m(dc.randn(5, 3, 7))
    with pytest.raises(ValueError, match=r"LSTM\(10, 20\): expected input to be 2D .* got 4D"):
        m(dc.randn(5, 3, 10, 1))
    g = dc.nn.GRU(4, 6)
    with pytest.raises(ValueError, match=r"GRU\(4, 6\): for unbatched 2-D input, hidden state"):
        g(dc.randn(5, 4), dc.zeros(1, 1, 6))
    cell = dc.nn.GRUCell(4, 6)
    with pytest.raises(ValueError, match=r"GRUCell\(4, 6\): expected hidden state of shape "
                                         r"\(3, 6\), got \(2, 6\)"):
        cell(dc.randn(3, 4), dc.zeros(2, 6))
    with pytest.raises(ValueError, match=r"GRUCell\(4, 6\): expected input to be 1D or 2D"):
        cell(dc.randn(2, 3, 4))
    # inside a model the error names where it happened
    seq = dc.nn.Sequential(dc.nn.Linear(3, 4), dc.nn.GRU(5, 6))
    with pytest.raises(ValueError, match=r"Sequential\.1: GRU\(5, 6\): input of shape"):
        seq(dc.randn(2, 3, 3))


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_module_api():
    m = dc.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
    t = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    for (n, p), (_, q) in zip(m.named_parameters(), t.named_parameters()):
        assert tuple(p.shape) == tuple(q.shape), n
        bound = 1 / np.sqrt(6)
        v = to_numpy(p)
        assert v.min() >= -bound and v.max() <= bound and v.std() > bound / 4, n
    assert repr(m) == repr(t)
    assert repr(dc.nn.GRU(3, 4, batch_first=True, dropout=0.1, num_layers=2)) == \
        repr(torch.nn.GRU(3, 4, batch_first=True, dropout=0.1, num_layers=2))
    for kw in (dict(nonlinearity="relu"), dict(bias=False)):
        assert repr(dc.nn.RNNCell(3, 4, **kw)) == repr(torch.nn.RNNCell(3, 4, **kw))
        assert repr(dc.nn.RNN(3, 4, **kw)) == repr(torch.nn.RNN(3, 4, **kw))
    m.flatten_parameters()
    assert len(m.all_weights) == 4 and len(m.all_weights[0]) == 5
    # torch's state_dict loads into deepcore and back
    t.load_state_dict({k: torch.tensor(to_numpy(v)) for k, v in m.state_dict().items()})
    x = np.random.default_rng(9).standard_normal((3, 2, 4)).astype(np.float32)
    close(m(dc.tensor(x))[0], t(torch.tensor(x))[0], TOL32)
    import deepcore.nn as dnn
    for name in ("RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"):
        assert hasattr(dnn, name)


def test_meta_device():
    m = dc.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3, device="meta")
    out, (h, c) = m(dc.empty(5, 2, 4, device="meta"))
    assert (out.device.type, tuple(out.shape)) == ("meta", (5, 2, 6))
    assert tuple(h.shape) == (4, 2, 3) and tuple(c.shape) == (4, 2, 6)
    out.sum().backward()
    assert tuple(m.weight_hr_l1_reverse.grad.shape) == (3, 6)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_weight_deeper_than_one_gemm_slice(kind):
    """The step GEMMs' packed weight is cut into K slices (192 deep in float64): the backward
    product over 4 * 68 (LSTM) or 3 * 68 (GRU) gate columns spans two of them, and 68 units
    leave a ragged last column panel."""
    T, B, I, H = 3, 13, 8, 68
    rng = np.random.default_rng(11)
    tm, dm = make_pair(kind, I, H, bidirectional=True)
    tx, dx = leaf_pair(rng.standard_normal((T, B, I)))
    thx, dhx, more = states(kind, 2, B, H, rng=rng)
    compare_run(tm, dm, tx, dx, thx, dhx, [(tx, dx)] + more, TOL64)
