"""deepcore.nn modules against torch.nn 2.13.0: same weights in, same outputs and gradients
out; state_dict keys, repr, hooks, modes, dtype conversion, clipping and error messages."""
import copy
import math
import re
from collections import OrderedDict

import deepcore as dc
import numpy as np
import pytest
import torch
from deepcore import nn

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed():
    dc.manual_seed(0)
    torch.manual_seed(0)


# ---- helpers --------------------------------------------------------------------------------

def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach())


def copy_torch_weights(tmod, dmod):
    """torch state_dict -> numpy -> deepcore (strict: the keys must agree)."""
    sd = {k: dc.tensor(v.detach().numpy()) for k, v in tmod.state_dict().items()}
    result = dmod.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []


def check_layer(tmod, dmod, *inputs, atol=1e-5, rtol=1e-4, grad_inputs=True):
    """Forward and backward of the same layer in both frameworks (weights copied from torch):
    outputs, input grads and parameter grads must match."""
    copy_torch_weights(tmod, dmod)
    t_in, d_in = [], []
    for x in inputs:
        floating = x.dtype.kind == "f"
        t_in.append(torch.tensor(x, requires_grad=grad_inputs and floating))
        d_in.append(dc.tensor(x, requires_grad=grad_inputs and floating))
    t_out = tmod(*t_in)
    d_out = dmod(*d_in)
    np.testing.assert_allclose(_np(d_out), _np(t_out), atol=atol, rtol=rtol)
    if not t_out.requires_grad:
        return
    g = RNG.standard_normal(tuple(t_out.shape)).astype(_np(t_out).dtype)
    t_out.backward(torch.tensor(g))
    d_out.backward(dc.tensor(g))
    for t, d in zip(t_in, d_in):
        if t.requires_grad:
            np.testing.assert_allclose(_np(d.grad), _np(t.grad), atol=atol, rtol=rtol)
    t_params = dict(tmod.named_parameters())
    d_params = dict(dmod.named_parameters())
    assert sorted(t_params) == sorted(d_params)
    for name, tp in t_params.items():
        dp = d_params[name]
        if tp.grad is None:
            assert dp.grad is None or not np.any(_np(dp.grad)), name
        else:
            np.testing.assert_allclose(_np(dp.grad), _np(tp.grad), atol=atol, rtol=rtol,
                                       err_msg=name)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ---- layers vs torch ------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7), (7,)])
def test_linear_matches_torch(bias, shape):
    check_layer(torch.nn.Linear(7, 4, bias=bias), nn.Linear(7, 4, bias=bias), randn(*shape))


def test_bilinear_matches_torch():
    check_layer(torch.nn.Bilinear(3, 5, 4), nn.Bilinear(3, 5, 4), randn(6, 3), randn(6, 5))
    check_layer(torch.nn.Bilinear(3, 5, 4, bias=False), nn.Bilinear(3, 5, 4, bias=False),
                randn(2, 6, 3), randn(2, 6, 5))


def test_identity_flatten_unflatten():
    x = randn(2, 3, 4, 5)
    check_layer(torch.nn.Identity(7, k=1), nn.Identity(7, k=1), x)
    check_layer(torch.nn.Flatten(), nn.Flatten(), x)
    check_layer(torch.nn.Flatten(0, 2), nn.Flatten(0, 2), x)
    check_layer(torch.nn.Flatten(-2), nn.Flatten(-2), x)
    check_layer(torch.nn.Unflatten(1, (3, 4)), nn.Unflatten(1, (3, 4)), randn(2, 12, 5))
    check_layer(torch.nn.Unflatten(-1, (2, -1)), nn.Unflatten(-1, (2, -1)), randn(2, 12))
    with pytest.raises(TypeError):
        nn.Unflatten(1, 12)


@pytest.mark.parametrize("kwargs", [{}, {"elementwise_affine": False}, {"bias": False},
                                    {"eps": 1e-3}])
def test_layer_norm_matches_torch(kwargs):
    t = torch.nn.LayerNorm(6, **kwargs)
    d = nn.LayerNorm(6, **kwargs)
    if t.weight is not None:  # non-trivial affine parameters
        with torch.no_grad():
            t.weight.uniform_(0.5, 1.5)
            if t.bias is not None:
                t.bias.uniform_(-1, 1)
    check_layer(t, d, randn(4, 6))
    check_layer(torch.nn.LayerNorm([3, 6], **kwargs), nn.LayerNorm([3, 6], **kwargs),
                randn(2, 3, 6))


@pytest.mark.parametrize("eps", [None, 1e-2])
def test_rms_norm_matches_torch(eps):
    t = torch.nn.RMSNorm([2, 5], eps=eps)
    with torch.no_grad():
        t.weight.uniform_(0.5, 1.5)
    check_layer(t, nn.RMSNorm([2, 5], eps=eps), randn(3, 2, 5))
    check_layer(torch.nn.RMSNorm(5, elementwise_affine=False),
                nn.RMSNorm(5, elementwise_affine=False), randn(4, 5))


def test_embedding_matches_torch():
    idx = RNG.integers(0, 10, size=(3, 4))
    idx[0, 0] = 2
    check_layer(torch.nn.Embedding(10, 5), nn.Embedding(10, 5), idx)
    check_layer(torch.nn.Embedding(10, 5, padding_idx=2), nn.Embedding(10, 5, padding_idx=2),
                idx)
    check_layer(torch.nn.Embedding(10, 5, padding_idx=-8), nn.Embedding(10, 5, padding_idx=-8),
                idx)


def test_embedding_padding_row_zero_and_no_grad():
    dc.manual_seed(1)
    e = nn.Embedding(6, 3, padding_idx=4)
    assert e.padding_idx == 4
    assert np.all(_np(e.weight)[4] == 0) and np.all(_np(e.weight)[[0, 1, 2, 3, 5]] != 0)
    e(dc.tensor([4, 1, 4])).sum().backward()
    g = _np(e.weight.grad)
    assert np.all(g[4] == 0) and np.all(g[1] == 1)
    assert e.extra_repr() == "6, 3, padding_idx=4"


def test_embedding_from_pretrained():
    w = dc.tensor(randn(4, 3))
    e = nn.Embedding.from_pretrained(w)
    assert not e.weight.requires_grad
    np.testing.assert_array_equal(_np(e(dc.tensor([3, 0]))), _np(w)[[3, 0]])
    e2 = nn.Embedding.from_pretrained(w, freeze=False, padding_idx=0)
    assert e2.weight.requires_grad and e2.padding_idx == 0
    with pytest.raises(ValueError):
        nn.Embedding.from_pretrained(dc.tensor(randn(4)))


ACTIVATIONS = [
    ("ReLU", {}), ("ReLU6", {}), ("GELU", {}), ("GELU", {"approximate": "tanh"}),
    ("SiLU", {}), ("Sigmoid", {}), ("Tanh", {}), ("Softmax", {"dim": 1}),
    ("Softmax", {"dim": -1}), ("LogSoftmax", {"dim": 1}), ("Softmin", {"dim": 0}),
    ("LeakyReLU", {}), ("LeakyReLU", {"negative_slope": 0.2}), ("ELU", {}),
    ("ELU", {"alpha": 0.5}), ("CELU", {"alpha": 1.5}), ("SELU", {}), ("Softplus", {}),
    ("Softplus", {"beta": 2.0, "threshold": 1.0}), ("Hardtanh", {}),
    ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("Mish", {}), ("Hardsigmoid", {}),
    ("Hardswish", {}), ("LogSigmoid", {}), ("Softsign", {}), ("Tanhshrink", {}),
    ("GLU", {}), ("GLU", {"dim": 0}), ("Hardshrink", {}), ("Softshrink", {"lambd": 0.3}),
    ("Threshold", {"threshold": 0.1, "value": -2.0}), ("Softmax2d", {}),
]


@pytest.mark.parametrize("name,kwargs", ACTIVATIONS)
def test_activation_matches_torch(name, kwargs):
    x = randn(4, 6, 4) * 3
    check_layer(getattr(torch.nn, name)(**kwargs), getattr(nn, name)(**kwargs), x)
    assert repr(getattr(nn, name)(**kwargs)) == repr(getattr(torch.nn, name)(**kwargs))


@pytest.mark.parametrize("name", ["ReLU", "SiLU", "LeakyReLU", "ELU", "CELU", "SELU",
                                  "Hardtanh", "ReLU6", "Mish", "Hardsigmoid", "Hardswish"])
def test_inplace_activation(name):
    x = randn(3, 5) * 3
    ref = getattr(torch.nn, name)()(torch.tensor(x)).numpy()
    d = dc.tensor(x)
    out = getattr(nn, name)(inplace=True)(d)
    np.testing.assert_allclose(_np(d), ref, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(_np(out), ref, atol=1e-6, rtol=1e-5)
    assert repr(getattr(nn, name)(inplace=True)) == repr(getattr(torch.nn, name)(inplace=True))


@pytest.mark.parametrize("num_parameters", [1, 6])
def test_prelu_matches_torch(num_parameters):
    t = torch.nn.PReLU(num_parameters, init=0.1)
    d = nn.PReLU(num_parameters, init=0.1)
    check_layer(t, d, randn(2, 6, 3))
    assert repr(d) == repr(t)


LOSSES = [
    ("MSELoss", {}, "reg"), ("MSELoss", {"reduction": "sum"}, "reg"), ("L1Loss", {}, "reg"),
    ("L1Loss", {"reduction": "none"}, "reg"), ("SmoothL1Loss", {"beta": 0.5}, "reg"),
    ("HuberLoss", {"delta": 0.7}, "reg"), ("BCELoss", {}, "prob"),
    ("BCEWithLogitsLoss", {}, "logit"), ("KLDivLoss", {"reduction": "batchmean"}, "kl"),
    ("KLDivLoss", {"reduction": "sum", "log_target": True}, "kl"),
    ("CrossEntropyLoss", {}, "class"), ("CrossEntropyLoss", {"label_smoothing": 0.1}, "class"),
    ("CrossEntropyLoss", {"ignore_index": 1, "reduction": "sum"}, "class"),
    ("NLLLoss", {}, "logclass"),
]


def _loss_inputs(kind):
    x = randn(5, 4)
    if kind == "reg":
        return x, randn(5, 4)
    if kind == "prob":
        return 1 / (1 + np.exp(-x)), RNG.random((5, 4)).astype(np.float32)
    if kind == "logit":
        return x, RNG.random((5, 4)).astype(np.float32)
    if kind == "kl":
        p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
        return np.log(p).astype(np.float32), np.log(RNG.dirichlet(np.ones(4), 5)).astype(
            np.float32)
    if kind == "class":
        return x, RNG.integers(0, 4, size=5)
    if kind == "logclass":
        return x - np.log(np.exp(x).sum(1, keepdims=True)), RNG.integers(0, 4, size=5)
    raise AssertionError(kind)


@pytest.mark.parametrize("name,kwargs,kind", LOSSES)
def test_loss_module_matches_torch(name, kwargs, kind):
    x, y = _loss_inputs(kind)
    if kind == "kl" and not kwargs.get("log_target"):
        y = np.exp(y).astype(np.float32)
    check_layer(getattr(torch.nn, name)(**kwargs), getattr(nn, name)(**kwargs), x, y,
                grad_inputs=True)


def test_weighted_losses_register_weight_buffer():
    w = randn(4) ** 2 + 0.1
    x, y = _loss_inputs("class")
    check_layer(torch.nn.CrossEntropyLoss(weight=torch.tensor(w)),
                nn.CrossEntropyLoss(weight=dc.tensor(w)), x, y)
    xl, yl = _loss_inputs("logclass")
    check_layer(torch.nn.NLLLoss(weight=torch.tensor(w)), nn.NLLLoss(weight=dc.tensor(w)), xl, yl)
    pw = randn(4) ** 2
    check_layer(torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw)),
                nn.BCEWithLogitsLoss(pos_weight=dc.tensor(pw)), *_loss_inputs("logit"))
    bw = RNG.random((5, 4)).astype(np.float32)
    check_layer(torch.nn.BCELoss(weight=torch.tensor(bw)), nn.BCELoss(weight=dc.tensor(bw)),
                *_loss_inputs("prob"))
    loss = nn.CrossEntropyLoss(weight=dc.tensor(w))
    assert list(loss.state_dict()) == list(torch.nn.CrossEntropyLoss(
        weight=torch.tensor(w)).state_dict()) == ["weight"]
    assert list(nn.MSELoss().state_dict()) == []
    assert nn.BCEWithLogitsLoss(pos_weight=dc.tensor(pw)).pos_weight is not None
    with pytest.warns(UserWarning):
        assert nn.MSELoss(size_average=False).reduction == "sum"


# ---- default initialisation ------------------------------------------------------------------

def test_linear_default_init_distribution():
    dc.manual_seed(0)
    lin = nn.Linear(800, 600)
    w, b = _np(lin.weight), _np(lin.bias)
    bound = 1 / math.sqrt(800)
    assert w.shape == (600, 800) and b.shape == (600,)
    assert w.min() >= -bound and w.max() <= bound
    assert w.min() < -0.99 * bound and w.max() > 0.99 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert b.min() >= -bound and b.max() <= bound
    assert abs(b.std() - bound / math.sqrt(3)) < 0.1 * bound


def test_bilinear_and_embedding_and_norm_default_init():
    dc.manual_seed(0)
    bl = nn.Bilinear(50, 40, 300)
    bound = 1 / math.sqrt(50)
    w = _np(bl.weight)
    assert w.min() >= -bound and w.max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    e = _np(nn.Embedding(1000, 500).weight)
    assert abs(e.mean()) < 0.01 and abs(e.std() - 1) < 0.01
    ln = nn.LayerNorm(7)
    assert np.all(_np(ln.weight) == 1) and np.all(_np(ln.bias) == 0)
    assert np.all(_np(nn.RMSNorm(7).weight) == 1)
    assert np.all(_np(nn.PReLU().weight) == np.float32(0.25))


def test_init_reproducible_under_manual_seed():
    def build():
        return nn.Sequential(nn.Linear(5, 4), nn.Embedding(7, 3), nn.Bilinear(2, 3, 4))
    dc.manual_seed(123)
    a = build()
    dc.manual_seed(123)
    b = build()
    c = build()
    for (ka, va), (kb, vb), (_, vc) in zip(a.state_dict().items(), b.state_dict().items(),
                                           c.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(_np(va), _np(vb))
        assert not np.array_equal(_np(va), _np(vc))


def test_parameter_dtype_and_device_kwargs():
    lin = nn.Linear(3, 2, dtype=dc.float64, device="cpu")
    assert lin.weight.dtype == dc.float64 and lin.bias.dtype == dc.float64
    with pytest.raises(RuntimeError):
        nn.Linear(3, 2, device="cuda")


# ---- Parameter / Buffer ----------------------------------------------------------------------

def test_parameter_basics():
    t = dc.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert isinstance(p, dc.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf
    assert repr(p) == str(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    p.data.mul_(2)  # shares storage with t, as in PyTorch
    np.testing.assert_array_equal(_np(t), [2.0, 4.0])
    q = nn.Parameter(dc.tensor([1.0]), requires_grad=False)
    assert not q.requires_grad
    assert nn.Parameter().shape == (0,)
    y = (dc.tensor([3.0], requires_grad=True) * 2)
    assert nn.Parameter(y).is_leaf
    d = copy.deepcopy(p)
    assert isinstance(d, nn.Parameter) and d is not p and d.requires_grad
    np.testing.assert_array_equal(_np(d), _np(p))


def test_data_setter_swaps_storage_keeping_identity():
    p = nn.Parameter(dc.ones(2, 3))
    new = dc.zeros(4, dtype=dc.float64)
    p.data = new
    assert isinstance(p, nn.Parameter) and p.requires_grad and tuple(p.shape) == (4,)
    assert p.dtype == dc.float64
    new.fill_(5.0)  # p now looks at new's storage, as in PyTorch
    np.testing.assert_array_equal(_np(p), np.full(4, 5.0))
    np.testing.assert_array_equal(_np(nn.functional.embedding(dc.tensor([1]), dc.eye(3))),
                                  [[0.0, 1.0, 0.0]])


def test_buffer_class_registers():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Buffer(dc.ones(2))
            self.b = nn.Buffer(dc.zeros(1), persistent=False)
            self.c = dc.zeros(3)  # a plain tensor attribute is neither
    m = M()
    assert [k for k, _ in m.named_buffers()] == ["a", "b"]
    assert list(m.state_dict()) == ["a"]
    assert "c" not in dict(m.named_buffers())


# ---- Module: registration, traversal, state_dict ---------------------------------------------

def make_composite(lib):
    """The same model written against torch.nn or deepcore.nn."""
    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.proj = lib.Linear(6, 6)
            self.register_buffer("running", lib_zeros(lib, 6))
            self.register_buffer("scratch", lib_zeros(lib, 2), persistent=False)
            self.layers = lib.ModuleList([lib.Linear(6, 6), lib.Tanh(), lib.Linear(6, 6)])
            self.heads = lib.ModuleDict({"b": lib.Linear(6, 2), "a": lib.Linear(6, 3)})
            self.scale = lib.Parameter(lib_ones(lib, 1))
            self.plist = lib.ParameterList([lib.Parameter(lib_ones(lib, 2))])
            self.pdict = lib.ParameterDict({"z": lib.Parameter(lib_ones(lib, 3))})

        def forward(self, x):
            x = self.proj(x) * self.scale
            for layer in self.layers:
                x = layer(x)
            return self.heads["a"](x + self.running)

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.embed = lib.Embedding(11, 6, padding_idx=0)
            self.seq = lib.Sequential(lib.Linear(6, 6), lib.LayerNorm(6), lib.GELU(),
                                      lib.Dropout(0.1))
            self.block = Block()

        def forward(self, idx):
            return self.block(self.seq(self.embed(idx)))
    return Net()


def lib_zeros(lib, n):
    return (torch if lib is torch.nn else dc).zeros(n)


def lib_ones(lib, n):
    return (torch if lib is torch.nn else dc).ones(n)


def test_composite_state_dict_keys_repr_and_forward_match_torch():
    tm, dm = make_composite(torch.nn), make_composite(nn)
    tsd, dsd = tm.state_dict(), dm.state_dict()
    assert list(dsd) == list(tsd)
    assert isinstance(dsd, OrderedDict)
    for k in tsd:
        assert tuple(dsd[k].shape) == tuple(tsd[k].shape), k
        assert not dsd[k].requires_grad
    assert [k for k, _ in dm.named_parameters()] == [k for k, _ in tm.named_parameters()]
    assert [k for k, _ in dm.named_buffers()] == [k for k, _ in tm.named_buffers()]
    assert [k for k, _ in dm.named_modules()] == [k for k, _ in tm.named_modules()]
    assert [k for k, _ in dm.named_children()] == [k for k, _ in tm.named_children()]
    norm = re.compile(r"torch\.|deepcore\.")
    assert norm.sub("", repr(dm)) == norm.sub("", repr(tm))
    tm.eval()
    dm.eval()
    check_layer(tm, dm, RNG.integers(0, 11, size=(3, 4)))


def test_nested_repr_matches_torch():
    def build(lib):
        return lib.Sequential(OrderedDict([
            ("fc1", lib.Linear(4, 8)), ("act", lib.ReLU(inplace=True)),
            ("blocks", lib.ModuleList([lib.Linear(8, 8) for _ in range(3)] + [lib.Tanh()])),
            ("inner", lib.Sequential(lib.Flatten(), lib.Unflatten(1, (2, 4)),
                                     lib.LeakyReLU(0.2), lib.Softmax(dim=-1))),
            ("d", lib.ModuleDict({"x": lib.Identity(), "y": lib.Dropout(0.3)})),
            ("ln", lib.LayerNorm([2, 4], eps=1e-6, bias=False)),
            ("empty", lib.ModuleList()),
        ]))
    assert repr(build(nn)) == repr(build(torch.nn))
    assert repr(nn.Linear(2, 3, bias=False)) == repr(torch.nn.Linear(2, 3, bias=False))
    assert repr(nn.Bilinear(2, 3, 4)) == repr(torch.nn.Bilinear(2, 3, 4))
    assert repr(nn.Embedding(5, 2, padding_idx=1)) == repr(torch.nn.Embedding(5, 2, padding_idx=1))
    assert repr(nn.RMSNorm(3)) == repr(torch.nn.RMSNorm(3))
    assert repr(nn.CrossEntropyLoss()) == repr(torch.nn.CrossEntropyLoss())


def test_load_state_dict_copies_in_place():
    tm, dm = make_composite(torch.nn), make_composite(nn)
    before = {k: v for k, v in dm.named_parameters()}
    ids = {k: id(v) for k, v in before.items()}
    copy_torch_weights(tm, dm)
    for k, p in dm.named_parameters():
        assert id(p) == ids[k] and p.requires_grad and p.is_leaf
        np.testing.assert_array_equal(_np(p), tm.state_dict()[k].numpy())
    np.testing.assert_array_equal(_np(dm.block.running), np.zeros(6))
    # assign=True takes the given tensors instead of copying into the existing ones.
    lin = nn.Linear(2, 2)
    w, b = dc.ones(2, 2), dc.zeros(2)
    lin.load_state_dict({"weight": w, "bias": b}, assign=True)
    lin.weight.data.mul_(3)
    np.testing.assert_array_equal(_np(w), np.full((2, 2), 3.0))
    assert isinstance(lin.weight, nn.Parameter) and lin.weight.requires_grad


def test_load_state_dict_strict_errors_match_torch():
    tm, dm = make_composite(torch.nn), make_composite(nn)
    tsd = tm.state_dict()
    bad = OrderedDict((k, v) for k, v in tsd.items() if k != "block.proj.bias")
    bad["block.extra"] = torch.zeros(1)
    bad["nothere.weight"] = torch.zeros(1)
    dbad = OrderedDict((k, dc.tensor(v.numpy())) for k, v in bad.items())
    with pytest.raises(RuntimeError) as t_err:
        tm.load_state_dict(bad)
    with pytest.raises(RuntimeError) as d_err:
        dm.load_state_dict(dbad)
    assert str(d_err.value) == str(t_err.value)
    assert 'Missing key(s) in state_dict: "block.proj.bias"' in str(d_err.value)
    assert '"nothere.weight", "block.extra"' in str(d_err.value)
    t_res = tm.load_state_dict(bad, strict=False)
    d_res = dm.load_state_dict(dbad, strict=False)
    assert d_res.missing_keys == t_res.missing_keys == ["block.proj.bias"]
    assert d_res.unexpected_keys == t_res.unexpected_keys
    assert type(d_res).__name__ == type(t_res).__name__
    assert repr(dm.load_state_dict(dm.state_dict())) == "<All keys matched successfully>"


def test_load_state_dict_shape_mismatch_names_key_and_shapes():
    dm = nn.Sequential(nn.Linear(3, 4))
    sd = dm.state_dict()
    sd["0.weight"] = dc.zeros(5, 3)
    with pytest.raises(RuntimeError) as err:
        dm.load_state_dict(sd)
    msg = str(err.value)
    assert "Error(s) in loading state_dict for Sequential" in msg
    assert "size mismatch for 0.weight" in msg
    assert "[5, 3]" in msg and "[4, 3]" in msg
    # Non-strict still reports shape mismatches (as PyTorch).
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        dm.load_state_dict(sd, strict=False)
    with pytest.raises(TypeError):
        dm.load_state_dict([1, 2])


def test_state_dict_prefix_keep_vars_and_detached():
    m = nn.Sequential(nn.Linear(2, 2))
    sd = m.state_dict(prefix="model.")
    assert list(sd) == ["model.0.weight", "model.0.bias"]
    assert sd["model.0.weight"] is not m[0].weight and not sd["model.0.weight"].requires_grad
    kv = m.state_dict(keep_vars=True)
    assert kv["0.weight"] is m[0].weight
    # Detached tensors share storage with the parameters, as in PyTorch.
    sd["model.0.bias"].fill_(3.0)
    np.testing.assert_array_equal(_np(m[0].bias), [3.0, 3.0])


def test_named_parameters_options_and_tied_weights():
    def build(lib):
        m = lib.Sequential(lib.Linear(3, 3), lib.Linear(3, 3))
        m[1].weight = m[0].weight
        return m
    tm, dm = build(torch.nn), build(nn)
    for kwargs in [{}, {"remove_duplicate": False}, {"prefix": "p"}, {"recurse": False}]:
        assert ([k for k, _ in dm.named_parameters(**kwargs)]
                == [k for k, _ in tm.named_parameters(**kwargs)]), kwargs
    assert len(list(dm.parameters())) == 3
    assert [k for k, _ in dm.named_parameters(recurse=False)] == []
    assert [k for k, _ in dm[0].named_parameters(recurse=False)] == ["weight", "bias"]
    assert list(dm.state_dict()) == list(tm.state_dict())


def test_setattr_getattr_delattr_dir():
    m = nn.Module()
    m.w = nn.Parameter(dc.ones(2))
    m.sub = nn.Linear(2, 2)
    m.register_buffer("buf", dc.zeros(2))
    m.plain = 5
    assert m.w is m._parameters["w"] and m.sub is m._modules["sub"] and m.buf is m._buffers["buf"]
    assert "w" not in m.__dict__ and m.plain == 5
    with pytest.raises(TypeError, match="cannot assign 'deepcore.Tensor' as parameter 'w'"):
        m.w = dc.ones(2)
    m.w = None
    assert m.w is None and list(m.named_parameters(recurse=False)) == []
    m.buf = dc.ones(3)  # a tensor assigned to a buffer name stays a buffer
    assert tuple(m._buffers["buf"].shape) == (3,)
    with pytest.raises(TypeError):
        m.sub = 3
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nope'"):
        _ = m.nope
    for name in ["w", "sub", "buf", "plain"]:
        assert name in dir(m)
    del m.sub, m.buf, m.w, m.plain
    assert list(m.named_modules()) == [("", m)] and list(m.buffers()) == []
    with pytest.raises(KeyError):
        m.register_parameter("a.b", None)
    with pytest.raises(KeyError):
        m.add_module("", nn.Linear(1, 1))
    with pytest.raises(TypeError):
        m.register_buffer("x", 3)

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(dc.ones(1))
    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_get_submodule_parameter_apply_requires_grad():
    m = make_composite(nn)
    assert m.get_submodule("block.layers.2") is m.block.layers[2]
    assert m.get_parameter("block.heads.a.bias") is m.block.heads["a"].bias
    assert m.get_buffer("block.running") is m.block.running
    with pytest.raises(AttributeError):
        m.get_submodule("block.nope")
    with pytest.raises(AttributeError):
        m.get_parameter("block.running")
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 6
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    m.requires_grad_()
    assert all(p.requires_grad for p in m.parameters())
    with pytest.raises(NotImplementedError, match="missing the required \"forward\""):
        nn.Module()(1)


def test_module_deepcopy_is_independent():
    m = make_composite(nn)
    c = copy.deepcopy(m)
    for (_, p), (_, q) in zip(m.named_parameters(), c.named_parameters()):
        assert p is not q and isinstance(q, nn.Parameter) and q.requires_grad
        np.testing.assert_array_equal(_np(p), _np(q))
    c.block.proj.weight.data.fill_(0.0)
    assert np.any(_np(m.block.proj.weight) != 0)


# ---- containers -----------------------------------------------------------------------------

def test_sequential_behaviour():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    s = nn.Sequential(a, b, c)
    assert len(s) == 3 and s[0] is a and s[-1] is c and s[-3] is a
    assert list(s) == [a, b, c]
    sl = s[1:]
    assert isinstance(sl, nn.Sequential) and list(sl) == [b, c]
    assert list(sl._modules) == ["1", "2"]  # torch keeps the original keys
    with pytest.raises(IndexError):
        s[3]
    named = nn.Sequential(OrderedDict([("first", a), ("act", b)]))
    assert named.first is a and list(named.state_dict()) == ["first.weight", "first.bias"]
    s2 = nn.Sequential(nn.Linear(2, 2))
    s2.append(nn.ReLU()).extend([nn.Tanh()])
    s2.insert(1, nn.Sigmoid())
    assert [type(m).__name__ for m in s2] == ["Linear", "Sigmoid", "ReLU", "Tanh"]
    del s2[1]
    assert list(s2._modules) == ["0", "1", "2"] and isinstance(s2[1], nn.ReLU)
    s2[2] = nn.GELU()
    assert isinstance(s2[2], nn.GELU)
    assert len(s2 + nn.Sequential(nn.ReLU())) == 4
    x = dc.tensor(randn(4, 2))
    np.testing.assert_allclose(_np(s(x)), _np(c(b(a(x)))))


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and isinstance(layers[-1], nn.Linear)
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh()])
    layers.insert(0, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Identity", "Linear", "Linear", "Linear",
                                                  "ReLU", "Tanh"]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    assert len(list(layers.parameters())) == 6
    with pytest.raises(TypeError):
        layers.extend(5)
    assert repr(nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])) == repr(
        torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)]))
    d = nn.ModuleDict({"b": nn.Linear(1, 1), "a": nn.ReLU()})
    assert list(d.keys()) == ["b", "a"] and "a" in d and len(d) == 2
    d.update([("c", nn.Tanh())])
    d["e"] = nn.Identity()
    assert list(d) == ["b", "a", "c", "e"]
    assert isinstance(d.pop("a"), nn.ReLU) and "a" not in d
    assert [k for k, _ in d.items()] == ["b", "c", "e"] and len(list(d.values())) == 3


def test_parameter_list_and_dict_match_torch():
    tl = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2, 3)), torch.zeros(4)])
    dl = nn.ParameterList([nn.Parameter(dc.ones(2, 3)), dc.zeros(4)])
    assert isinstance(dl[1], nn.Parameter) and dl[1].requires_grad
    assert [k for k, _ in dl.named_parameters()] == [k for k, _ in tl.named_parameters()]
    norm = re.compile(r"torch\.|deepcore\.")
    assert norm.sub("", repr(dl)) == norm.sub("", repr(tl))
    dl.append(dc.ones(1))
    assert len(dl) == 3 and list(dl.state_dict()) == ["0", "1", "2"]
    td = torch.nn.ParameterDict({"b": torch.nn.Parameter(torch.ones(2)), "a": torch.ones(3)})
    dd = nn.ParameterDict({"b": nn.Parameter(dc.ones(2)), "a": dc.ones(3)})
    assert list(dd.keys()) == list(td.keys())
    assert list(dd.state_dict()) == list(td.state_dict())
    assert isinstance(dd["a"], nn.Parameter) and "a" in dd and len(dd) == 2
    dd["c"] = dc.zeros(1)
    assert dd.pop("b").shape == (2,) and list(dd) == ["a", "c"]
    with pytest.raises(RuntimeError):
        dd()


# ---- hooks, modes, gradients, dtype ----------------------------------------------------------

def test_forward_hooks():
    lin = nn.Linear(3, 2)
    calls = []

    def pre(mod, args):
        calls.append("pre")
        return (args[0] * 0,)

    def post(mod, args, out):
        calls.append("post")
        return out + 1

    h1 = lin.register_forward_pre_hook(pre)
    h2 = lin.register_forward_hook(post)
    out = lin(dc.tensor(randn(4, 3)))
    np.testing.assert_allclose(_np(out), np.broadcast_to(_np(lin.bias) + 1, (4, 2)), rtol=1e-6)
    assert calls == ["pre", "post"]
    h1.remove()
    h2.remove()
    x = dc.tensor(randn(4, 3))
    np.testing.assert_allclose(_np(lin(x)), _np(x) @ _np(lin.weight).T + _np(lin.bias),
                               rtol=1e-5, atol=1e-6)
    assert calls == ["pre", "post"]
    order = []
    lin.register_forward_hook(lambda m, a, o: order.append(1))
    lin.register_forward_hook(lambda m, a, o: order.append(0), prepend=True)
    lin.register_forward_pre_hook(lambda m, a, k: order.append("kw") or (a, k), with_kwargs=True)
    lin(x)
    assert order == ["kw", 0, 1]
    # A hook sees the module's input and output: e.g. recording activations.
    acts = {}
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    with net[1].register_forward_hook(lambda m, a, o: acts.setdefault("relu", o)):
        net(x)
    assert tuple(acts["relu"].shape) == (4, 4)
    net(x)  # the handle's context removed the hook
    assert len(net[1]._forward_hooks) == 0


def test_train_eval_affects_dropout():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.5)))
    assert model.training and model[2][0].training
    x = dc.ones(200, 4)
    model.eval()
    assert not model.training and not model[1].training and not model[2][0].training
    np.testing.assert_array_equal(_np(model[1](x)), _np(x))
    model.train()
    assert model[2][0].training
    y = _np(model[1](x))
    frac = (y == 0).mean()
    assert 0.4 < frac < 0.6 and set(np.unique(y)) <= {0.0, 2.0}
    with pytest.raises(ValueError):
        model.train("yes")
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_channel_dropout():
    dc.manual_seed(3)
    x = dc.ones(8, 16, 5, 5)
    y = _np(nn.Dropout2d(0.5)(x))
    per_channel = y.reshape(8, 16, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert 0.3 < (per_channel[..., 0] == 0).mean() < 0.7
    d = nn.Dropout1d(0.3).eval()
    np.testing.assert_array_equal(_np(d(dc.ones(2, 3, 4))), np.ones((2, 3, 4)))


def test_zero_grad():
    m = nn.Linear(3, 2)
    m(dc.tensor(randn(4, 3))).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(_np(m.weight.grad), np.zeros((2, 3)))
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None


def test_to_float64_keeps_parameter_identity():
    tm, dm = make_composite(torch.nn), make_composite(nn)
    copy_torch_weights(tm, dm)
    params = list(dm.parameters())
    dm.block.register_buffer("count", dc.zeros(1, dtype=dc.int64), persistent=False)
    dm(dc.tensor(RNG.integers(0, 11, size=(2, 3)))).sum().backward()
    assert dm.to(dc.float64) is dm
    assert all(p.dtype == dc.float64 for p in dm.parameters())
    assert [id(p) for p in dm.parameters()] == [id(p) for p in params]
    assert all(p.grad.dtype == dc.float64 for p in dm.parameters() if p.grad is not None)
    assert dm.block.running.dtype == dc.float64 and dm.block.count.dtype == dc.int64
    dm.zero_grad()
    tm.double().eval()
    dm.eval()
    check_layer(tm, dm, RNG.integers(0, 11, size=(3, 4)), atol=1e-10, rtol=1e-9)
    dm.float()
    assert all(p.dtype == dc.float32 for p in dm.parameters())
    assert dm.to("cpu") is dm and dm.cpu() is dm
    with pytest.raises(TypeError):
        dm.to(dc.int64)


# ---- errors name the layer -------------------------------------------------------------------

def test_linear_shape_error_names_layer():
    lin = nn.Linear(512, 10)
    with pytest.raises(ValueError) as err:
        lin(dc.zeros(32, 768))
    assert str(err.value) == ("Linear(in_features=512, out_features=10, bias=True): input "
                              "(32, 768) has 768 features, expected 512")


def test_nested_error_gets_module_path_once():
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(768, 512)
            self.fc2 = nn.Linear(256, 10)

        def forward(self, x):
            return self.fc2(self.fc1(x))

    model = nn.Sequential(OrderedDict([("mlp", MLP())]))
    with pytest.raises(ValueError) as err:
        model(dc.zeros(4, 768))
    msg = str(err.value)
    assert msg == ("Sequential.mlp.fc2: Linear(in_features=256, out_features=10, bias=True): "
                   "input (4, 512) has 512 features, expected 256")
    assert msg.count("fc2") == 1

    class MatMul(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(dc.ones(3, 4))

        def forward(self, x):
            return x @ self.w

    deep = nn.Sequential(nn.Identity(), nn.Sequential(nn.Identity(), MatMul()))
    with pytest.raises(ValueError) as err:
        deep(dc.zeros(2, 5))
    assert str(err.value).startswith("Sequential.1.1 (MatMul): [matmul] shapes (2, 5) and "
                                     "(3, 4) cannot be multiplied")
    # The same error raised again through a fresh call is annotated afresh, not stacked.
    with pytest.raises(ValueError) as err2:
        deep(dc.zeros(2, 5))
    assert str(err2.value) == str(err.value)


def test_short_descriptions_and_user_errors_untouched():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(512, 10)
            self.emb = nn.Embedding(10, 4)

        def forward(self, x, kind):
            if kind == "user":
                raise ValueError("my own message")
            if kind == "dtype":
                return self.fc(x.to(dc.int64))
            return self.emb(x)

    net = Net()
    with pytest.raises(ValueError, match="^my own message$"):
        net(dc.zeros(2, 512), "user")
    with pytest.raises(IndexError) as err:
        net(dc.tensor([3, 10]), "emb")
    assert str(err.value).startswith("Net.emb: Embedding(10, 4): index out of range")
    with pytest.raises((TypeError, ValueError, RuntimeError)) as err:
        net(dc.zeros(2, 512), "dtype")
    assert str(err.value).startswith("Net.fc (Linear 512->10): [")


def test_other_layers_name_themselves_in_errors():
    with pytest.raises(ValueError, match=re.escape("LayerNorm((6,), eps=1e-05, elementwise_"
                                                   "affine=True, bias=True): input (2, 5)")):
        nn.LayerNorm(6)(dc.zeros(2, 5))
    with pytest.raises(ValueError, match=re.escape("RMSNorm((6,)")):
        nn.RMSNorm(6)(dc.zeros(2, 5))
    with pytest.raises(ValueError, match=re.escape("Bilinear(in1_features=2")):
        nn.Bilinear(2, 3, 4)(dc.zeros(5, 2), dc.zeros(5, 4))
    with pytest.raises(IndexError, match=re.escape("Embedding(5, 2)")):
        nn.Embedding(5, 2)(dc.tensor([-7]))
    with pytest.raises(ValueError):
        nn.Embedding(5, 2, padding_idx=5)


# ---- Embedding --------------------------------------------------------------------------------

def test_embedding_from_pretrained_matches_torch_with_padding_idx():
    w = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    e = nn.Embedding.from_pretrained(dc.tensor(w), freeze=False, padding_idx=2)
    te = torch.nn.Embedding.from_pretrained(torch.tensor(w), freeze=False, padding_idx=2)
    idx = [[1, 2, 3], [2, 2, 9]]
    y, ty = e(dc.tensor(idx)), te(torch.tensor(idx))
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(e.weight.grad.numpy(), te.weight.grad.numpy(), rtol=1e-6)
    assert (e.weight.grad.numpy()[2] == 0).all()
    frozen = nn.Embedding.from_pretrained(dc.tensor(w))
    assert not frozen.weight.requires_grad and frozen.padding_idx is None
    assert frozen.weight.requires_grad == torch.nn.Embedding.from_pretrained(
        torch.tensor(w)).weight.requires_grad


@pytest.mark.parametrize("bad", [12, 10, -11])
def test_embedding_index_out_of_range_names_the_module(bad):
    e = nn.Embedding(10, 4)
    with pytest.raises(IndexError, match=r"Embedding\(10, 4\).*out of range") as info:
        e(dc.tensor([[1, bad]]))
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_matches_torch(mode):
    w = RNG.standard_normal((10, 4)).astype(np.float32)
    bag = nn.EmbeddingBag.from_pretrained(dc.tensor(w), freeze=False, mode=mode, padding_idx=3)
    tbag = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(w), freeze=False, mode=mode,
                                                 padding_idx=3)
    idx = np.array([1, 3, 4, 4, 9, 3, 0, 2], np.int64)
    off = np.array([0, 3, 3, 5], np.int64)  # the second bag is empty, padding in two bags
    y, ty = bag(dc.tensor(idx), dc.tensor(off)), tbag(torch.tensor(idx), torch.tensor(off))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-7)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(bag.weight.grad.numpy(), tbag.weight.grad.numpy(), rtol=1e-5,
                               atol=1e-7)
    # 2-D input: one bag per row.
    x2 = np.array([[1, 2, 5], [7, 7, 3]], np.int64)
    np.testing.assert_allclose(bag(dc.tensor(x2)).detach().numpy(),
                               tbag(torch.tensor(x2)).detach().numpy(), rtol=1e-6)


def test_embedding_bag_errors_name_the_module():
    bag = nn.EmbeddingBag(5, 2, mode="sum")
    with pytest.raises(IndexError, match=r"EmbeddingBag\(5, 2.*out of range"):
        bag(dc.tensor([[1, 7]]))
    with pytest.raises(ValueError, match=r"\[embedding_bag\] offsets"):
        bag(dc.tensor([1, 2, 3]), dc.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"\[embedding_bag\] per_sample_weights"):
        nn.EmbeddingBag(5, 2)(dc.tensor([[1, 2]]), per_sample_weights=dc.ones(1, 2))
