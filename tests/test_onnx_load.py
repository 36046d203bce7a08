"""deepcore.onnx.load: ONNX graphs run on deepcore's ops.

Models exported by PyTorch's exporter are compared with PyTorch (outputs and parameter
gradients); hand-built graphs, one per operator form, are compared with onnxruntime; models
exported by deepcore come back bit-exact, their calls of deepcore's own functions run on its
kernels and every other model-local function is inlined; errors must name the node, the op,
the opset or the file.
"""
from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest

import deepcore as dc

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from deepcore.onnx import load  # noqa: E402

F32, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
_ONNX_TYPES = {np.dtype(np.float32): F32, np.dtype(np.float64): TensorProto.DOUBLE,
               np.dtype(np.int64): I64, np.dtype(np.int32): TensorProto.INT32,
               np.dtype(np.bool_): BOOL}
# float32 kernels summing a few dozen terms in another order than onnxruntime / PyTorch
RTOL, ATOL = 1e-5, 1e-5


# ---- helpers ------------------------------------------------------------------------------------

def _export(model, args, **kw) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model.eval(), args, f, dynamo=False, **kw)
    return f.getvalue()


def _dc(t):
    return dc.from_numpy(t.detach().numpy().copy())


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _flat(o)]
    return [out]


def _close(actual, expected, rtol=RTOL, atol=ATOL, msg=""):
    a = actual.detach().numpy() if isinstance(actual, dc.Tensor) else np.asarray(actual)
    e = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert a.shape == e.shape, f"{msg}: shape {a.shape} != {e.shape}"
    if e.dtype.kind == "f":
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=msg)
    else:
        np.testing.assert_array_equal(a, e, err_msg=msg)


def _compare_with_torch(model, args, dc_args=None, **export_kw):
    net = load(_export(model, args, **export_kw))
    with torch.no_grad():
        ref = _flat(model(*args))
    with dc.no_grad():
        out = _flat(net(*(dc_args or [_dc(a) for a in args])))
    assert len(out) == len(ref)
    for i, (o, r) in enumerate(zip(out, ref)):
        _close(o, r, msg=f"output {i}")
    return net


def _compare_grads(model, net, args, skip=()):
    """sum(out^2) backward through both; every torch parameter must get the same gradient in
    the loaded module under the same state_dict name."""
    for p in model.parameters():
        p.grad = None
    loss = sum((o ** 2).sum() for o in _flat(model(*args)))
    loss.backward()
    out = _flat(net(*[_dc(a) for a in args]))
    dc_loss = out[0].square().sum()
    for o in out[1:]:
        dc_loss = dc_loss + o.square().sum()
    dc_loss.backward()
    params = dict(net.named_parameters())
    checked = 0
    for name, p in model.named_parameters():
        if name in skip:
            continue
        assert name in params, f"parameter {name} missing from {sorted(params)}"
        assert params[name].grad is not None, f"no gradient for {name}"
        _close(params[name].grad, p.grad, rtol=1e-4, atol=1e-5, msg=f"grad of {name}")
        checked += 1
    assert checked > 0


# ---- models exported by PyTorch ---------------------------------------------------------------

class _Attention(torch.nn.Module):
    """A GPT-style block on token ids: embeddings (Gather), positions (Range), fused qkv,
    causal mask, LayerNorm and a GELU MLP."""

    def __init__(self, vocab=50, d=16, heads=4):
        super().__init__()
        self.heads = heads
        self.tok, self.pos = torch.nn.Embedding(vocab, d), torch.nn.Embedding(64, d)
        self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.ff = torch.nn.Sequential(torch.nn.Linear(d, 2 * d), torch.nn.GELU(),
                                      torch.nn.Linear(2 * d, d))
        with torch.no_grad():  # distinct LayerNorm weights (equal ones get tied by the exporter)
            for ln in (self.ln1, self.ln2):
                ln.weight.uniform_(0.5, 1.5)
                ln.bias.uniform_(-0.5, 0.5)

    def forward(self, ids):
        b, t = ids.shape
        x = self.tok(ids) + self.pos(torch.arange(t))
        c = x.shape[-1]
        q, k, v = self.qkv(x).split(c, dim=-1)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        x = self.ln1(x + self.proj(y))
        return self.ln2(x + self.ff(x))


class _ResBlock(torch.nn.Module):
    def __init__(self, cin=3, cout=8):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.down = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride=2, bias=False),
                                        torch.nn.BatchNorm2d(cout))
        self.head = torch.nn.Linear(cout, 5)
        with torch.no_grad():
            for bn in (self.bn1, self.bn2, self.down[1]):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)) + self.down(x))
        return self.head(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, 1), 1))


def _cnn():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 4, 3), torch.nn.Sigmoid(),
        torch.nn.AvgPool2d(2, ceil_mode=True), torch.nn.Flatten(), torch.nn.Linear(16, 3),
        torch.nn.LogSoftmax(dim=1))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    return net


def test_mlp_matches_torch_and_keeps_parameter_names():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8),
                                torch.nn.GELU(), torch.nn.Linear(8, 3), torch.nn.Softmax(-1))
    x = torch.randn(4, 5)
    net = _compare_with_torch(model, (x,))
    assert list(net.state_dict()) == list(model.state_dict())
    assert all(p.requires_grad for p in net.parameters())
    _compare_grads(model, net, (x,))


@pytest.mark.parametrize("fold", [False, True], ids=["batchnorm-node", "batchnorm-folded"])
def test_cnn_with_batchnorm_and_pooling_matches_torch(fold):
    torch.manual_seed(1)
    model = _cnn()
    x = torch.randn(2, 3, 10, 10)
    net = _compare_with_torch(model, (x,), do_constant_folding=fold)
    if not fold:  # the statistics are buffers, the affine weights parameters
        assert list(net.state_dict()) == [k for k in model.state_dict()
                                          if not k.endswith("num_batches_tracked")]
        assert {k for k, _ in net.named_buffers()} == {"1.running_mean", "1.running_var"}
        _compare_grads(model, net, (x,))


def test_resnet_block_matches_torch():
    torch.manual_seed(2)
    model = _ResBlock()
    _compare_with_torch(model, (torch.randn(2, 3, 9, 9),))


@pytest.mark.parametrize("mode, align", [("nearest", None), ("bilinear", False),
                                         ("bilinear", True)])
def test_upsampling_matches_torch(mode, align):
    torch.manual_seed(6)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1),
                                torch.nn.Upsample(scale_factor=2, mode=mode, align_corners=align))
    _compare_with_torch(model, (torch.randn(1, 2, 5, 6),))


@pytest.mark.parametrize("opset", [14, 17, 20])
def test_attention_block_with_dynamic_axes_runs_at_new_sizes(opset):
    torch.manual_seed(3)
    model = _Attention().eval()
    data = _export(model, (torch.randint(0, 50, (2, 5)),), input_names=["ids"],
                   opset_version=opset, dynamic_axes={"ids": {0: "batch", 1: "seq"}},
                   do_constant_folding=False)
    net = load(data)
    for shape in [(2, 5), (3, 11)]:  # the second size is not the traced one
        ids = torch.randint(0, 50, shape)
        with torch.no_grad():
            ref = model(ids)
        with dc.no_grad():
            _close(net(_dc(ids)), ref, msg=f"opset {opset} shape {shape}")
    if opset == 20:  # keyword input by graph-input name, and gradients of every weight
        with dc.no_grad():
            _close(net(ids=_dc(ids)), ref)
        _compare_grads(model, net, (torch.randint(0, 50, (2, 7)),))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_layers_match_torch(kind):
    torch.manual_seed(4)
    cls = getattr(torch.nn, kind)
    model = cls(4, 6, num_layers=2, batch_first=True, bidirectional=True)
    x = torch.randn(3, 5, 4)
    h0 = torch.randn(4, 3, 6)
    args = (x, (h0, torch.randn(4, 3, 6))) if kind == "LSTM" else (x, h0)
    flat = (x, h0) + ((args[1][1],) if kind == "LSTM" else ())

    class Wrap(torch.nn.Module):  # flat inputs (h0, c0 as graph inputs)
        def __init__(self):
            super().__init__()
            self.rnn = model

        def forward(self, x, h0, c0=None):
            return self.rnn(x, (h0, c0) if c0 is not None else h0)

    wrapped = Wrap()
    net = _compare_with_torch(wrapped, flat)
    # without constant folding the gate reordering stays in the graph (Slice/Concat of the
    # named weights), so gradients reach the PyTorch-named parameters
    net = load(_export(wrapped, flat, do_constant_folding=False,
                       input_names=["x", "h0"] + (["c0"] if kind == "LSTM" else []),
                       dynamic_axes={"x": {0: "b", 1: "t"}, "h0": {1: "b"}, "c0": {1: "b"}}))
    _compare_grads(wrapped, net, flat)
    x2, h2 = torch.randn(2, 8, 4), torch.randn(4, 2, 6)  # another batch and length
    flat2 = (x2, h2) + ((torch.randn(4, 2, 6),) if kind == "LSTM" else ())
    with torch.no_grad():
        ref = _flat(wrapped(*flat2))
    with dc.no_grad():
        for o, r in zip(_flat(net(*[_dc(a) for a in flat2])), ref):
            _close(o, r)


def test_models_from_torch_dynamo_exporter():
    """torch.onnx.export's default exporter (it needs onnxscript): opset 18+ graphs with
    folded weights and another naming scheme."""
    pytest.importorskip("onnxscript")
    torch.manual_seed(5)
    layer = torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    x = torch.randn(2, 5, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(layer.eval(), (x,), dynamo=True)
    net = load(program.model_proto)
    with torch.no_grad():
        ref = layer(x)
    with dc.no_grad():
        _close(net(_dc(x)), ref)


def test_graphs_written_by_deepcore_export_load_back():
    """deepcore.onnx.export -> deepcore.onnx.load reproduces the model bit for bit, at new
    sizes too (GPT's attention and GELU are calls of deepcore's functions, run on its
    kernels), and so are GPT's parameter gradients."""
    from deepcore import models
    from deepcore.models.gpt import GPT, GPTConfig
    dc.manual_seed(0)
    lenet = models.lenet5().eval()
    gpt = GPT(GPTConfig(block_size=32, vocab_size=50, n_layer=2, n_head=2, n_embd=16)).eval()
    cases = [(lenet, (dc.randn(2, 1, 28, 28),), None, [dc.randn(2, 1, 28, 28)]),
             (gpt, (dc.randint(0, 50, (2, 7)),), {"idx": {0: "b", 1: "t"}},
              [dc.randint(0, 50, (3, 11))])]
    for model, args, dynamic, more in cases:
        f = io.BytesIO()
        dc.onnx.export(model, args, f, input_names=["idx"] if dynamic else None,
                       dynamic_axes=dynamic)
        net = load(f.getvalue())
        for x in [args[0]] + more:
            with dc.no_grad():
                ref = model(x)  # GPT returns (logits, loss=None); the graph holds the logits
                _close(net(x), (ref[0] if isinstance(ref, tuple) else ref).numpy(), 0, 0)
    x = dc.randint(0, 50, (2, 9))
    gpt(x)[0].square().sum().backward()
    net(x).square().sum().backward()
    params = dict(net.named_parameters())
    for name, p in gpt.named_parameters():
        _close(params[name].grad, p.grad.numpy(), 0, 0, msg=f"grad of {name}")


# ---- hand-built graphs against onnxruntime -----------------------------------------------------

def _value_info(name, arr):
    return helper.make_tensor_value_info(name, _ONNX_TYPES[arr.dtype], arr.shape)


def _model(nodes, inputs, outputs, inits=None, opset=18):
    """inputs: name -> array (graph inputs); inits: name -> array (initializers); outputs:
    names (their types are left to inference)."""
    outs = [helper.make_empty_tensor_value_info(o) for o in outputs]
    graph = helper.make_graph(
        nodes, "case", [_value_info(k, v) for k, v in inputs.items()], outs,
        initializer=[numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=10)


def _run_both(model, inputs, rtol=RTOL, atol=ATOL):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = sess.run(None, inputs)
    net = load(model)
    with dc.no_grad():
        got = net(**{k: dc.from_numpy(v.copy()) for k, v in inputs.items()})
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        _close(g, e, rtol, atol, msg=f"output {i}")
    return net


_rng = np.random.default_rng(0)


def _f(*shape, low=-2.0, high=2.0):
    return _rng.uniform(low, high, size=shape).astype(np.float32)


def _i(*values):
    return np.array(values, dtype=np.int64)


def _node(op, ins, outs=("y",), **attrs):
    return helper.make_node(op, list(ins), list(outs), name=f"{op}_0", **attrs)


def _unary(op, x=None, opset=18, **attrs):
    x = _f(2, 3, 4) if x is None else x
    return [_node(op, ["x"], **attrs)], {"x": x}, ["y"], None, opset


def _binary(op, a, b, opset=18, **attrs):
    return [_node(op, ["a", "b"], **attrs)], {"a": a, "b": b}, ["y"], None, opset


def _with_const(op, x, consts, opset=18, n_out=1, runtime=False, **attrs):
    """op(x, *consts); the constants are initializers, or graph inputs with runtime=True."""
    names = [f"c{i}" if c is not None else "" for i, c in enumerate(consts)]
    given = {n: c for n, c in zip(names, consts) if c is not None}
    outs = [f"y{j}" for j in range(n_out)]
    node = _node(op, ["x"] + names, outs, **attrs)
    inputs = {"x": x, **given} if runtime else {"x": x}
    return [node], inputs, outs, None if runtime else given, opset


_CASES = {
    # elementwise, broadcasting
    "add-broadcast": _binary("Add", _f(2, 1, 4), _f(3, 1)),
    "sub": _binary("Sub", _f(3, 4), _f(4)),
    "mul": _binary("Mul", _f(2, 3), _f(1, 3)),
    "div-float": _binary("Div", _f(3, 4), _f(3, 4, low=0.5, high=2.0)),
    "div-int-truncates": _binary("Div", _i(-7, 7, -8, 9), _i(2, -2, 3, 4)),
    "pow-float-exponent": _binary("Pow", _f(5, low=0.1, high=2.0), _f(5)),
    "pow-int-exponent": _binary("Pow", _f(2, 3), np.array(3, dtype=np.int64)),
    "mod-int": _binary("Mod", _i(-7, 7, -8, 9), _i(3, -3, 5, 4)),
    "mod-fmod": _binary("Mod", _f(6) * 3, _f(6, low=0.5, high=1.5), fmod=1),
    "max-variadic": ([_node("Max", ["a", "b", "c"])], {"a": _f(2, 3), "b": _f(3), "c": _f(2, 1)},
                     ["y"], None, 18),
    "mean-variadic": ([_node("Mean", ["a", "b", "c"])],
                      {"a": _f(2, 3), "b": _f(3), "c": _f(2, 1)}, ["y"], None, 18),
    "min-sum": ([_node("Min", ["a", "b"], ["m"]), _node("Sum", ["m", "a", "b"])],
                {"a": _f(4), "b": _f(4)}, ["y"], None, 18),
    "equal-int": _binary("Equal", _i(1, 2, 3), _i(1, 0, 3)),
    "less": _binary("Less", _f(3, 4), _f(4)),
    "greater-or-equal": _binary("GreaterOrEqual", _f(3, 4), _f(3, 1)),
    "and-xor": ([_node("And", ["a", "b"], ["t"]), _node("Xor", ["t", "a"]),],
                {"a": _rng.random((3, 4)) < 0.5, "b": _rng.random(4) < 0.5}, ["y"],
                None, 18),
    "where": ([_node("Where", ["c", "a", "b"])],
              {"c": _rng.random((3, 4)) < 0.5, "a": _f(3, 4), "b": _f(4)}, ["y"], None, 18),
    "cast-float-to-int": _unary("Cast", _f(7) * 3, to=I64),
    "cast-int-to-bool": _unary("Cast", _i(0, 3, -1, 0), to=BOOL),
    "castlike": _binary("CastLike", _f(5) * 3, _i(1)),
    "abs-neg-exp": ([_node("Abs", ["x"], ["a"]), _node("Neg", ["a"], ["b"]),
                     _node("Exp", ["b"])], {"x": _f(3, 4)}, ["y"], None, 18),
    "log-sqrt-reciprocal": ([_node("Log", ["x"], ["a"]), _node("Sqrt", ["x"], ["b"]),
                             _node("Reciprocal", ["b"], ["c"]), _node("Add", ["a", "c"])],
                            {"x": _f(3, 4, low=0.1, high=3.0)}, ["y"], None, 18),
    "floor-ceil-round-sign": (
        [_node("Floor", ["x"], ["a"]), _node("Ceil", ["x"], ["b"]), _node("Round", ["x"], ["c"]),
         _node("Sign", ["x"], ["d"]), _node("Sum", ["a", "b", "c", "d"])],
        {"x": np.array([-2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 0.3, -1.7], np.float32)},
        ["y"], None, 18),
    "erf": _unary("Erf"),
    "tanh": _unary("Tanh"),
    "sigmoid": _unary("Sigmoid"),
    "relu": _unary("Relu"),
    "sin-cos-atan": ([_node("Sin", ["x"], ["a"]), _node("Cos", ["x"], ["b"]),
                      _node("Atan", ["a"], ["c"]), _node("Add", ["b", "c"])],
                     {"x": _f(6)}, ["y"], None, 18),
    "isnan-isinf": ([_node("IsNaN", ["x"], ["a"]), _node("IsInf", ["x"], ["b"],
                                                         detect_negative=0),
                     _node("Or", ["a", "b"])],
                    {"x": np.array([1.0, np.nan, np.inf, -np.inf], np.float32)}, ["y"],
                    None, 18),
    "leaky-relu": _unary("LeakyRelu", alpha=0.2),
    "elu": _unary("Elu", alpha=0.7),
    "celu": _unary("Celu", alpha=1.3),
    "selu": _unary("Selu"),
    "selu-custom": _unary("Selu", alpha=1.5, gamma=0.9),
    "thresholded-relu": _unary("ThresholdedRelu", alpha=0.4),
    "hard-sigmoid": _unary("HardSigmoid", alpha=0.3, beta=0.4),
    "hard-sigmoid-sixth": _unary("HardSigmoid", _f(20) * 4, alpha=1.0 / 6.0),
    "shrink-hard": _unary("Shrink", lambd=0.7),
    "shrink-soft": _unary("Shrink", lambd=0.6, bias=0.6),
    "shrink-bias": _unary("Shrink", lambd=0.5, bias=0.2),
    "hard-swish": _unary("HardSwish", _f(20) * 3),
    "softplus": _unary("Softplus"),
    "softsign": _unary("Softsign"),
    "mish": _unary("Mish"),
    "gelu-erf": _unary("Gelu", opset=20),
    "gelu-tanh": _unary("Gelu", opset=20, approximate="tanh"),
    "prelu-per-channel": _binary("PRelu", _f(2, 3, 4), _f(3, 1)),
    "clip-constant": _with_const("Clip", _f(3, 4), [np.array(-0.5, np.float32),
                                                     np.array(0.7, np.float32)]),
    "clip-max-only": _with_const("Clip", _f(3, 4), [None, np.array(0.7, np.float32)]),
    "clip-runtime": _with_const("Clip", _f(3, 4), [np.array(-0.5, np.float32),
                                                    np.array(0.7, np.float32)], runtime=True),
    "identity-dropout": ([_node("Identity", ["x"], ["a"]),
                          _node("Dropout", ["a", "r"], ["y", "mask"])],
                         {"x": _f(3, 4)}, ["y", "mask"],
                         {"r": np.array(0.3, np.float32)}, 18),
    # matrix products
    "matmul-broadcast": _binary("MatMul", _f(2, 1, 3, 4), _f(5, 4, 2)),
    "matmul-vector": _binary("MatMul", _f(4), _f(3, 4, 2)),
    "gemm-linear": ([_node("Gemm", ["a", "w", "c"], transB=1)], {"a": _f(3, 4)}, ["y"],
                    {"w": _f(5, 4), "c": _f(5)}, 18),
    "gemm-general": ([_node("Gemm", ["a", "w", "c"], transA=1, alpha=0.5, beta=2.0)],
                     {"a": _f(4, 3)}, ["y"], {"w": _f(4, 5), "c": _f(3, 1)}, 13),
    "gemm-no-c": ([_node("Gemm", ["a", "w"], transB=1)], {"a": _f(3, 4), "w": _f(2, 4)},
                  ["y"], None, 18),
    "einsum": ([_node("Einsum", ["a", "b"], equation="bij,bjk->bik")],
               {"a": _f(2, 3, 4), "b": _f(2, 4, 5)}, ["y"], None, 18),
    # softmax and reductions
    "softmax-axis1": _unary("Softmax", _f(2, 3, 4), axis=1),
    "log-softmax": _unary("LogSoftmax", _f(2, 3, 4)),
    "reduce-mean-attr": _unary("ReduceMean", _f(2, 3, 4), opset=13, axes=[0, -1]),
    "reduce-mean-all-attr-17": _unary("ReduceMean", _f(2, 3, 4), opset=17, keepdims=0),
    "reduce-mean-input": _with_const("ReduceMean", _f(2, 3, 4), [_i(1)], keepdims=0),
    "reduce-sum-13-input": _with_const("ReduceSum", _f(2, 3, 4), [_i(-1, 0)], opset=13),
    "reduce-sum-all": _unary("ReduceSum", _f(2, 3, 4), keepdims=0),
    "reduce-sum-noop": _with_const("ReduceSum", _f(2, 3), [_i()], noop_with_empty_axes=1),
    "reduce-max-runtime-axes": _with_const("ReduceMax", _f(2, 3, 4), [_i(2)], runtime=True),
    "reduce-min": _with_const("ReduceMin", _f(2, 3, 4), [_i(0, 2)]),
    "reduce-prod": _with_const("ReduceProd", _f(2, 3, 4, low=0.5, high=1.5), [_i(0, 2)]),
    "reduce-l1-l2": ([_node("ReduceL1", ["x", "ax"], ["a"]), _node("ReduceL2", ["x", "ax"], ["b"]),
                      _node("Add", ["a", "b"])], {"x": _f(2, 3, 4)}, ["y"], {"ax": _i(1)}, 18),
    "reduce-logsumexp": _with_const("ReduceLogSumExp", _f(2, 3, 4), [_i(-1)]),
    "reduce-sumsquare": _with_const("ReduceSumSquare", _f(2, 3, 4), [_i(1)], keepdims=0),
    "argmax-last-index": _unary("ArgMax", np.array([[1, 3, 3, 0], [2, 2, 1, 2]], np.float32),
                                axis=1, keepdims=0, select_last_index=1),
    "argmin": _unary("ArgMin", _f(3, 4), axis=0),
    "topk": _with_const("TopK", _f(3, 6), [_i(3)], n_out=2, axis=1),
    "topk-smallest": _with_const("TopK", _f(3, 6), [_i(2)], n_out=2, axis=0, largest=0),
    "cumsum-exclusive-reverse": _with_const("CumSum", _f(3, 4), [np.array(1, np.int64)],
                                            exclusive=1, reverse=1),
    # shapes and indexing
    "shape-slice": _unary("Shape", _f(2, 3, 4, 5), start=1, end=-1),
    "size": _unary("Size", _f(2, 3)),
    "reshape-zero-minus-one": _with_const("Reshape", _f(2, 3, 4), [_i(0, -1)]),
    "reshape-allowzero": _with_const("Reshape", np.zeros((0, 3), np.float32), [_i(3, 0)],
                                     allowzero=1),
    "reshape-runtime": _with_const("Reshape", _f(2, 3, 4), [_i(4, 0, -1)], runtime=True),
    "flatten-axis0": _unary("Flatten", _f(2, 3, 4), axis=0),
    "flatten-negative": _unary("Flatten", _f(2, 3, 4), axis=-1),
    "transpose-default": _unary("Transpose", _f(2, 3, 4)),
    "transpose-perm": _unary("Transpose", _f(2, 3, 4), perm=[1, 2, 0]),
    "squeeze-all": _unary("Squeeze", _f(1, 3, 1, 2)),
    "squeeze-axes": _with_const("Squeeze", _f(1, 3, 1, 2), [_i(-2)]),
    "unsqueeze-negative": _with_const("Unsqueeze", _f(3, 4), [_i(-1, 0)]),
    "concat": ([_node("Concat", ["a", "b"], axis=-1)], {"a": _f(2, 3), "b": _f(2, 1)}, ["y"],
               None, 18),
    "split-sizes": _with_const("Split", _f(2, 7), [_i(3, 4)], n_out=2, axis=1),
    "split-equal-13": _with_const("Split", _f(6, 2), [], n_out=3, opset=13),
    "split-num-outputs-18": _with_const("Split", _f(2, 7), [], n_out=3, axis=1, num_outputs=3),
    "slice-basic": _with_const("Slice", _f(5, 6), [_i(1, 0), _i(4, 10 ** 10)]),
    "slice-negative-step": _with_const("Slice", _f(5, 6), [_i(-1, 4), _i(-10 ** 10, 0),
                                                           _i(1, 0), _i(-2, -1)]),
    "slice-step-clamped": _with_const("Slice", _f(7, 3), [_i(-100), _i(100), _i(0), _i(3)]),
    "slice-runtime": _with_const("Slice", _f(5, 6), [_i(1), _i(-1), _i(-1), _i(2)],
                                 runtime=True),
    "gather-axis1-negative": _with_const("Gather", _f(3, 5), [_i(-1, 0, 2, -2).reshape(2, 2)],
                                         axis=1),
    "gather-scalar": _with_const("Gather", _f(3, 5), [np.array(-1, np.int64)]),
    "gather-runtime": _with_const("Gather", _f(6, 4), [_i(5, -6, 0)], runtime=True),
    "gather-elements": _with_const("GatherElements", _f(3, 4), [_i(0, 2, -1, 1, 1, 0)
                                                                .reshape(3, 2) % 3], axis=0),
    "gather-nd": _with_const("GatherND", _f(3, 4, 2), [_i(0, 1, 2, -1).reshape(2, 2)]),
    "scatter-elements-add": _with_const("ScatterElements", _f(3, 4),
                                        [_i(0, 2, 1, 0).reshape(2, 2), _f(2, 2)], axis=1,
                                        reduction="add"),
    "scatter-nd": _with_const("ScatterND", _f(4, 3), [_i(1, 3).reshape(2, 1), _f(2, 3)]),
    "expand-bidirectional": _with_const("Expand", _f(3, 1), [_i(2, 1, 4)]),
    "tile": _with_const("Tile", _f(2, 3), [_i(2, 1)]),
    "constant-of-shape": ([_node("Shape", ["x"], ["s"]),
                           _node("ConstantOfShape", ["s"], ["y"],
                                 value=helper.make_tensor("v", I64, [1], [7]))],
                          {"x": _f(2, 3)}, ["y"], None, 18),
    "range-float": ([_node("Range", ["a", "b", "c"])], {"a": np.array(0.5, np.float32),
                    "b": np.array(3.2, np.float32), "c": np.array(0.4, np.float32)}, ["y"],
                    None, 18),
    "range-int": ([_node("Range", ["a", "b", "c"])], {"a": _i(10).reshape(()),
                  "b": _i(-3).reshape(()), "c": _i(-3).reshape(())}, ["y"], None, 18),
    "trilu-upper-k": _with_const("Trilu", _f(4, 5), [np.array(1, np.int64)]),
    "trilu-lower": _unary("Trilu", _f(2, 4, 5), upper=0),
    "eyelike-k": _unary("EyeLike", _f(3, 5), k=1),
    "eyelike-dtype": _unary("EyeLike", _f(4, 2), k=-1, dtype=I64),
    "nonzero": _unary("NonZero", np.array([[1, 0, 2], [0, 3, 0]], np.float32)),
    "onehot": ([_node("OneHot", ["i", "d", "v"], axis=0)], {"i": _i(0, 2, -1)}, ["y"],
               {"d": np.array(4, np.int64), "v": np.array([-1.0, 5.0], np.float32)}, 18),
    "pad-constant": _with_const("Pad", _f(2, 3), [_i(0, 1, 1, 2), np.array(9.0, np.float32)]),
    "pad-axes-18": _with_const("Pad", _f(2, 3, 4), [_i(1, 2), np.array(0.5, np.float32),
                                                     _i(-1)]),
    "pad-reflect": _with_const("Pad", _f(1, 2, 5), [_i(0, 0, 2, 0, 0, 1)], mode="reflect"),
    "pad-edge": _with_const("Pad", _f(1, 2, 5), [_i(0, 1, 1, 0, 0, 2)], mode="edge"),
    "pad-crop": _with_const("Pad", _f(3, 5), [_i(0, -1, 0, -2)]),
    # convolution and pooling
    "conv-asymmetric-pads": ([_node("Conv", ["x", "w", "b"], pads=[1, 0, 2, 1], strides=[2, 1],
                                    dilations=[1, 2], group=2)],
                             {"x": _f(2, 4, 7, 8)}, ["y"], {"w": _f(6, 2, 3, 2), "b": _f(6)}, 18),
    "conv-group": ([_node("Conv", ["x", "w"], group=2, pads=[1, 1, 1, 1])],
                   {"x": _f(1, 4, 5, 5)}, ["y"], {"w": _f(6, 2, 3, 3)}, 18),
    "conv-same-upper": ([_node("Conv", ["x", "w"], auto_pad="SAME_UPPER", strides=[2, 2])],
                        {"x": _f(1, 2, 6, 7)}, ["y"], {"w": _f(3, 2, 4, 3)}, 18),
    "conv-same-lower": ([_node("Conv", ["x", "w"], auto_pad="SAME_LOWER")],
                        {"x": _f(1, 2, 5, 5)}, ["y"], {"w": _f(3, 2, 2, 2)}, 18),
    "conv-1d": ([_node("Conv", ["x", "w", "b"], pads=[2, 1], strides=[2])],
                {"x": _f(2, 3, 9)}, ["y"], {"w": _f(4, 3, 3), "b": _f(4)}, 18),
    "conv-transpose": ([_node("ConvTranspose", ["x", "w", "b"], strides=[2, 2],
                              pads=[1, 0, 0, 1], output_padding=[1, 0])],
                       {"x": _f(1, 3, 4, 5)}, ["y"], {"w": _f(3, 2, 3, 3), "b": _f(2)}, 18),
    "conv-transpose-output-shape": ([_node("ConvTranspose", ["x", "w"], strides=[2, 2],
                                           output_shape=[8, 9])],
                                    {"x": _f(1, 2, 4, 4)}, ["y"], {"w": _f(2, 3, 3, 3)}, 18),
    "conv-transpose-1d-group": ([_node("ConvTranspose", ["x", "w"], group=2, strides=[3],
                                       pads=[1, 1])],
                                {"x": _f(2, 4, 5)}, ["y"], {"w": _f(4, 1, 4)}, 18),
    "maxpool-ceil-pads": _unary("MaxPool", _f(1, 2, 7, 7), kernel_shape=[3, 3], strides=[2, 2],
                                pads=[1, 1, 1, 1], ceil_mode=1),
    "maxpool-dilated": _unary("MaxPool", _f(1, 2, 8, 8), kernel_shape=[2, 2],
                              dilations=[2, 2]),
    "maxpool-same-upper": _unary("MaxPool", _f(1, 2, 7, 6), kernel_shape=[3, 2],
                                 strides=[2, 2], auto_pad="SAME_UPPER"),
    "maxpool-asymmetric": _unary("MaxPool", _f(1, 1, 6, 6), kernel_shape=[3, 3],
                                 pads=[0, 2, 1, 0]),
    "maxpool-1d": _unary("MaxPool", _f(2, 3, 9), kernel_shape=[3], strides=[2]),
    "avgpool-exclude-pad": _unary("AveragePool", _f(1, 2, 6, 6), kernel_shape=[3, 3],
                                  pads=[1, 1, 1, 1], strides=[2, 2]),
    "avgpool-include-pad": _unary("AveragePool", _f(1, 2, 6, 6), kernel_shape=[3, 3],
                                  pads=[1, 1, 1, 1], count_include_pad=1),
    "avgpool-asymmetric-exclude": _unary("AveragePool", _f(1, 2, 5, 5), kernel_shape=[2, 3],
                                         pads=[1, 0, 0, 2]),
    "avgpool-same-lower": _unary("AveragePool", _f(1, 1, 5, 7), kernel_shape=[2, 2],
                                 auto_pad="SAME_LOWER", strides=[2, 2]),
    "global-pools": ([_node("GlobalAveragePool", ["x"], ["a"]),
                      _node("GlobalMaxPool", ["x"], ["b"]), _node("Sub", ["a", "b"])],
                     {"x": _f(2, 3, 4, 5)}, ["y"], None, 18),
    "global-average-pool-1d": _unary("GlobalAveragePool", _f(2, 3, 7)),
    "resize-nearest-asymmetric-floor": (
        [_node("Resize", ["x", "", "s"], coordinate_transformation_mode="asymmetric",
               nearest_mode="floor")],
        {"x": _f(1, 2, 3, 4)}, ["y"], {"s": np.array([1, 1, 2.0, 1.5], np.float32)}, 18),
    "resize-nearest-sizes-half-pixel": (
        [_node("Resize", ["x", "", "", "z"], nearest_mode="round_prefer_ceil")],
        {"x": _f(1, 2, 5, 4)}, ["y"], {"z": _i(1, 2, 3, 7)}, 18),
    "resize-linear-half-pixel": (
        [_node("Resize", ["x", "", "s"], mode="linear")],
        {"x": _f(2, 1, 3, 4)}, ["y"], {"s": np.array([1, 1, 2.5, 0.75], np.float32)}, 18),
    "resize-linear-align-corners-axes": (
        [_node("Resize", ["x", "", "", "z"], mode="linear", axes=[-1, 2],
               coordinate_transformation_mode="align_corners")],
        {"x": _f(1, 2, 4, 3)}, ["y"], {"z": _i(7, 6)}, 18),
    "resize-linear-pytorch-half-pixel": (
        [_node("Resize", ["x", "", "", "z"], mode="linear",
               coordinate_transformation_mode="pytorch_half_pixel")],
        {"x": _f(1, 1, 4, 5)}, ["y"], {"z": _i(1, 1, 1, 9)}, 18),
    # normalisation
    "batchnorm": ([_node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)],
                  {"x": _f(2, 3, 4, 5)}, ["y"],
                  {"s": _f(3), "b": _f(3), "m": _f(3), "v": _f(3, low=0.5, high=2.0)}, 15),
    "batchnorm-2d": ([_node("BatchNormalization", ["x", "s", "b", "m", "v"])],
                     {"x": _f(4, 3)}, ["y"],
                     {"s": _f(3), "b": _f(3), "m": _f(3), "v": _f(3, low=0.5, high=2.0)}, 18),
    "instancenorm": ([_node("InstanceNormalization", ["x", "s", "b"], epsilon=1e-4)],
                     {"x": _f(2, 3, 4, 5)}, ["y"], {"s": _f(3), "b": _f(3)}, 18),
    "layernorm-stats": ([_node("LayerNormalization", ["x", "s", "b"], ["y", "mean", "inv"],
                               axis=-2, epsilon=1e-3)],
                        {"x": _f(2, 3, 4)}, ["y", "mean", "inv"],
                        {"s": _f(3, 4), "b": _f(3, 4)}, 17),
    "layernorm-broadcast-scale": ([_node("LayerNormalization", ["x", "s"], axis=1)],
                                  {"x": _f(2, 3, 4)}, ["y"], {"s": _f(4)}, 18),
    "groupnorm-18": ([_node("GroupNormalization", ["x", "s", "b"], num_groups=2)],
                     {"x": _f(2, 4, 3, 3)}, ["y"], {"s": _f(2), "b": _f(2)}, 18),
    "groupnorm-21": ([_node("GroupNormalization", ["x", "s", "b"], num_groups=2)],
                     {"x": _f(2, 4, 3, 3)}, ["y"], {"s": _f(4), "b": _f(4)}, 21),
    "lp-normalization": _unary("LpNormalization", _f(3, 4), axis=0, p=1),
    # recurrent layers (ONNX gate layouts, both layouts and directions)
    "lstm-bidirectional": (
        [_node("LSTM", ["x", "w", "r", "b", "", "h0", "c0"], ["y", "yh", "yc"],
               hidden_size=5, direction="bidirectional")],
        {"x": _f(4, 3, 2), "h0": _f(2, 3, 5), "c0": _f(2, 3, 5)}, ["y", "yh", "yc"],
        {"w": _f(2, 20, 2), "r": _f(2, 20, 5), "b": _f(2, 40)}, 18),
    "lstm-reverse-no-bias": (
        [_node("LSTM", ["x", "w", "r"], ["y", "yh"], hidden_size=3, direction="reverse")],
        {"x": _f(4, 2, 3)}, ["y", "yh"], {"w": _f(1, 12, 3), "r": _f(1, 12, 3)}, 18),
    "gru-linear-before-reset": (
        [_node("GRU", ["x", "w", "r", "b", "", "h0"], ["y", "yh"], hidden_size=4,
               linear_before_reset=1)],
        {"x": _f(5, 2, 3), "h0": _f(1, 2, 4)}, ["y", "yh"],
        {"w": _f(1, 12, 3), "r": _f(1, 12, 4), "b": _f(1, 24)}, 18),
    "gru-reset-before": (
        [_node("GRU", ["x", "w", "r", "b"], ["", "yh"], hidden_size=4,
               direction="bidirectional")],
        {"x": _f(5, 2, 3)}, ["yh"],
        {"w": _f(2, 12, 3), "r": _f(2, 12, 4), "b": _f(2, 24)}, 18),
    "lstm-sequence-lens": (
        [_node("LSTM", ["x", "w", "r", "b", "lens", "h0", "c0"], ["y", "yh", "yc"],
               hidden_size=3, direction="bidirectional")],
        {"x": _f(5, 4, 2), "h0": _f(2, 4, 3), "c0": _f(2, 4, 3)}, ["y", "yh", "yc"],
        {"w": _f(2, 12, 2), "r": _f(2, 12, 3), "b": _f(2, 24),
         "lens": np.array([2, 5, 0, 3], np.int32)}, 18),
    "gru-sequence-lens-runtime": (
        [_node("GRU", ["x", "w", "r", "", "lens"], ["y", "yh"], hidden_size=3,
               direction="reverse")],
        {"x": _f(4, 3, 2), "lens": np.array([1, 4, 3], np.int32)}, ["y", "yh"],
        {"w": _f(1, 9, 2), "r": _f(1, 9, 3)}, 18),
    "rnn-relu": (
        [_node("RNN", ["x", "w", "r", "b"], ["y"], hidden_size=4, activations=["Relu"])],
        {"x": _f(5, 2, 3)}, ["y"], {"w": _f(1, 4, 3), "r": _f(1, 4, 4), "b": _f(1, 8)}, 18),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_operator_matches_onnxruntime(case):
    nodes, inputs, outputs, inits, opset = _CASES[case]
    _run_both(_model(nodes, inputs, outputs, inits, opset), inputs)


def test_lstm_batch_major_layout_is_the_transposed_sequence_layout():
    # onnxruntime refuses layout=1, so it is checked against layout=0 on transposed data
    nodes, inputs, outputs, inits, _ = _CASES["lstm-bidirectional"]
    seq = load(_model(nodes, inputs, outputs, inits))
    node = _node("LSTM", ["x", "w", "r", "b", "", "h0", "c0"], ["y", "yh", "yc"], hidden_size=5,
                 direction="bidirectional", layout=1)
    batch_inputs = {k: np.ascontiguousarray(np.swapaxes(v, 0, 1)) for k, v in inputs.items()}
    batch = load(_model([node], batch_inputs, outputs, inits))
    with dc.no_grad():
        y0, h0, c0 = seq(**{k: dc.from_numpy(v) for k, v in inputs.items()})
        y1, h1, c1 = batch(**{k: dc.from_numpy(v) for k, v in batch_inputs.items()})
    _close(y1, np.transpose(y0.numpy(), (2, 0, 1, 3)), rtol=0, atol=0)
    _close(h1, np.swapaxes(h0.numpy(), 0, 1), rtol=0, atol=0)
    _close(c1, np.swapaxes(c0.numpy(), 0, 1), rtol=0, atol=0)


def test_gradients_through_variable_length_sequences_match_finite_differences():
    nodes, inputs, outputs, inits, _ = _CASES["lstm-sequence-lens"]
    net = load(_model(nodes, inputs, outputs, inits)).double()
    h0, c0 = (dc.from_numpy(inputs[k].astype(np.float64)) for k in ("h0", "c0"))
    x = dc.from_numpy(inputs["x"].astype(np.float64)).requires_grad_()

    def fn(x, h0, c0):
        y, yh, yc = net(x, h0, c0)
        return y.sum() + (yh * yc).sum()
    assert dc.autograd.gradcheck(fn, (x, h0.requires_grad_(), c0.requires_grad_()))
    assert net.get_parameter("w").grad is None  # gradcheck used autograd.grad
    fn(x, h0, c0).backward()
    assert all(net.get_parameter(k).grad is not None for k in ("w", "r", "b"))


def test_dropout_training_mode_drops_and_scales():
    x = np.ones((64, 64), np.float32)
    model = _model([_node("Dropout", ["x", "r", "t"], ["y", "mask"])], {"x": x}, ["y", "mask"],
                   {"r": np.array(0.25, np.float32), "t": np.array(True)})
    y, mask = load(model)(dc.from_numpy(x))
    y, mask = y.numpy(), mask.numpy()
    np.testing.assert_array_equal(y[mask], np.float32(1 / 0.75))
    np.testing.assert_array_equal(y[~mask], 0.0)
    assert 0.15 < 1.0 - mask.mean() < 0.35  # 4096 draws at p=0.25: 10 sigma either side


# ---- model-local functions --------------------------------------------------------------------

def _silu_function(domain="ai.deepcore", name="Silu"):
    """A model-local function with deepcore's Silu body: x * sigmoid(x)."""
    return helper.make_function(
        domain, name, ["X"], ["Y"],
        [helper.make_node("Sigmoid", ["X"], ["S"]), helper.make_node("Mul", ["X", "S"], ["Y"])],
        [helper.make_opsetid("", 18)])


def _with_function(fn, version=1, define=True):
    x = _f(3, 40) * 4
    node = helper.make_node(fn.name, ["x"], ["y"], name="call", domain=fn.domain)
    model = _model([node], {"x": x}, ["y"])
    model.opset_import.append(helper.make_opsetid(fn.domain, version))
    if define:
        model.functions.append(fn)
    return model, x


def test_deepcore_function_calls_run_the_kernel():
    """Note [deepcore functions in ONNX]: ai.deepcore::Silu runs deepcore's silu (to the bit),
    where onnxruntime runs the body."""
    import deepcore.nn.functional as F
    model, x = _with_function(_silu_function())
    net = _run_both(model, {"x": x})
    assert [op for _, op in net._step_nodes] == ["Silu"]
    with dc.no_grad():
        _close(net(x), F.silu(dc.from_numpy(x)).numpy(), 0, 0)


@pytest.mark.parametrize("domain, name, version", [
    ("custom.functions", "Silu", 1),  # another producer's function
    ("ai.deepcore", "Silu", 2),       # a version of deepcore's functions this loader lacks
    ("ai.deepcore", "Swish", 1),      # a name it does not know
])
def test_other_functions_are_inlined(domain, name, version):
    model, x = _with_function(_silu_function(domain, name), version)
    net = _run_both(model, {"x": x})
    assert [op for _, op in net._step_nodes] == ["Sigmoid", "Mul"]


def test_deepcore_function_call_without_its_definition_is_refused():
    model, _ = _with_function(_silu_function(), define=False)
    with pytest.raises(NotImplementedError,
                       match=r"node 'call' \(op 'Silu', domain 'ai.deepcore', opset 1\) is not "
                             r"supported: domain 'ai.deepcore'.*functions .* model defines"):
        load(model)


def test_deepcore_function_call_without_an_attribute_is_refused():
    fn = helper.make_function("ai.deepcore", "Var", ["X"], ["Y"],
                              [helper.make_node("Identity", ["X"], ["Y"])],
                              [helper.make_opsetid("", 18)],
                              attributes=["axes", "correction", "keepdims"])
    x = _f(3, 4)
    node = helper.make_node("Var", ["x"], ["y"], name="var", domain="ai.deepcore", axes=[1],
                            keepdims=0)
    model = _model([node], {"x": x}, ["y"])
    model.opset_import.append(helper.make_opsetid("ai.deepcore", 1))
    model.functions.append(fn)
    with pytest.raises(ValueError, match=r"node 'var' \(op 'Var', domain 'ai.deepcore', opset 1\) "
                                         r"is invalid: attribute 'correction' is required"):
        load(model)


@pytest.mark.parametrize("opset", [17, 20])
def test_bodies_of_deepcore_functions_compute_the_ops(opset):
    """Inlined instead of run on the kernels (the functions' version bumped past what the
    loader knows), the bodies deepcore writes give the model's results within float32
    rounding: what another runtime computes."""
    import deepcore.nn as nn
    import deepcore.nn.functional as F

    class Ops(nn.Module):
        def __init__(self):
            super().__init__()
            self.gn, self.rms = nn.GroupNorm(2, 4), nn.RMSNorm(5)
            self.bn = nn.BatchNorm1d(4, track_running_stats=False)

        def forward(self, x, mask):  # x (2, 4, 5)
            q = x.unsqueeze(1)
            return (F.gelu(x), F.gelu(x, approximate="tanh"), F.silu(x), F.mish(x),
                    F.logsigmoid(x), F.tanhshrink(x), x.expm1(), (x.abs() + 0.1).log1p(),
                    (x.abs() + 0.1).log2(), (x.abs() + 0.1).log10(), x.exp2(), x.erfc(),
                    x % 0.7, x.var(1), x.std((0, 2), keepdim=True), self.gn(x), self.rms(x),
                    self.bn(x), F.scaled_dot_product_attention(q, q, q),
                    F.scaled_dot_product_attention(q, q, q, is_causal=True),
                    F.scaled_dot_product_attention(q, q, q, attn_mask=mask > 0),
                    F.scaled_dot_product_attention(q, q, q, attn_mask=mask, scale=0.3))

    dc.manual_seed(0)
    model = Ops().eval()
    args = (dc.randn(2, 4, 5), dc.randn(4, 4))
    f = io.BytesIO()
    proto = dc.onnx.export(model, args, f, opset_version=opset)
    # opset 20 has Gelu and Mish, 21 GroupNormalization with per-channel weights
    assert len(proto.functions) == {17: 22, 20: 19}[opset]
    for o in proto.opset_import:
        if o.domain == "ai.deepcore":
            o.version = 2
    net = load(proto)
    assert not {op for _, op in net._step_nodes} & {fn.name for fn in proto.functions}
    with dc.no_grad():
        for i, (got, ref) in enumerate(zip(net(*args), model(*args))):
            _close(got, ref.numpy(), msg=f"output {i}")


# ---- the plan: folding, state, inputs ---------------------------------------------------------

def _shape_chain_model():
    """y = Reshape(x, Concat(Shape(x)[0], [-1])) @ w + b, with a constant-only side branch."""
    nodes = [
        _node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="g", axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"], name="u"),
        helper.make_node("Constant", [], ["minus1"], name="c", value_ints=[-1]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], name="cat", axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "model.fc/weight"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "model.fc:bias"], ["y"], name="add"),
        # constants only: folded at load
        helper.make_node("Constant", [], ["k"], name="k", value_floats=[1.0, 2.0]),
        helper.make_node("Mul", ["k", "k"], ["kk"], name="kk"),
        helper.make_node("Add", ["y", "kk"], ["z"], name="addk"),
        # unused by any output: never run
        helper.make_node("Relu", ["x"], ["dead"], name="dead"),
    ]
    inits = {"zero": np.array(0, np.int64), "zero1": _i(0),
             "model.fc/weight": _f(12, 2), "model.fc:bias": _f(2)}
    return _model(nodes, {"x": _f(3, 3, 4)}, ["z"], inits), inits


def test_plan_folds_constants_drops_dead_nodes_and_names_state():
    model, inits = _shape_chain_model()
    net = load(model)
    ops = [op for _, op in net._step_nodes]
    assert ops == ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "MatMul", "Add", "Add"]
    # float initializers are parameters under sanitized dotted names; int ones are constants
    assert list(net.state_dict()) == ["model.fc_weight", "model.fc_bias"]
    for shape in [(3, 3, 4), (5, 2, 6)]:  # dynamic: the Shape chain runs each time
        x = _f(*shape)
        expected = x.reshape(shape[0], -1) @ inits["model.fc/weight"] + inits["model.fc:bias"]
        with dc.no_grad():
            _close(net(dc.from_numpy(x)), expected + np.array([1.0, 4.0], np.float32))


def test_state_dict_round_trip_and_module_conversions():
    model, _ = _shape_chain_model()
    net = load(model)
    x = _f(2, 3, 4)
    w, b = _f(12, 2), _f(2)
    net.load_state_dict({"model.fc_weight": dc.from_numpy(w), "model.fc_bias": dc.from_numpy(b)})
    with dc.no_grad():
        _close(net(dc.from_numpy(x)), x.reshape(2, -1) @ w + b + np.array([1.0, 4.0], np.float32))
        net.double()
        y = net(dc.from_numpy(x.astype(np.float64)))
    assert y.dtype == dc.float64
    _close(y, x.reshape(2, -1).astype(np.float64) @ w + b + np.array([1.0, 4.0]), rtol=1e-6)


def test_inputs_by_name_numpy_and_several_outputs():
    a, b = _f(2, 3), _f(2, 3)
    model = _model([_node("Add", ["a", "b"], ["s"]), _node("Mul", ["a", "b"], ["p"])],
                   {"a": a, "b": b}, ["s", "p"])
    net = load(model)
    assert net.input_names == ["a", "b"] and net.output_names == ["s", "p"]
    s, p = net(a, b=b)  # numpy arrays are accepted, keyword by graph-input name
    _close(s, a + b)
    _close(p, a * b)
    with pytest.raises(TypeError, match="missing inputs \\['b'\\]"):
        net(a)
    with pytest.raises(TypeError, match="no input named 'c'"):
        net(a, b, c=a)
    with pytest.raises(TypeError, match="input 'a' .* takes deepcore.float32 data, got a "
                                        "deepcore.bool"):
        net(dc.from_numpy(a > 0), b)
    with pytest.raises(ValueError, match="input 'b' .* has rank 2, got a tensor of shape "
                                         "\\(6,\\)"):
        net(a, b.reshape(6))


def test_file_path_and_external_data(tmp_path):
    model, inits = _shape_chain_model()
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").exists()
    x = _f(2, 3, 4)
    expected = x.reshape(2, -1) @ inits["model.fc/weight"] + inits["model.fc:bias"] + [1.0, 4.0]
    with dc.no_grad():
        _close(load(path)(x), expected)
        _close(load(str(path))(x), expected)
        # the same model as bytes needs to be told where its external data is
        data = path.read_bytes()
        with pytest.raises(ValueError, match="external file.*base_dir"):
            load(data)
        _close(load(data, base_dir=str(tmp_path))(x), expected)


# ---- errors -------------------------------------------------------------------------------------

def test_unknown_operator_is_reported_at_load_with_node_op_and_opset():
    nodes = [_node("Relu", ["x"], ["a"]), helper.make_node("Foo", ["a"], ["y"], name="Foo_3")]
    model = _model(nodes, {"x": _f(2)}, ["y"])
    with pytest.raises(NotImplementedError,
                       match=r"\[onnx.load\] .*node 'Foo_3' \(op 'Foo', domain '', opset 18\) "
                             r"is not supported"):
        load(model)


def test_every_unsupported_node_is_listed():
    nodes = [helper.make_node("Foo", ["x"], ["a"], name="first"),
             helper.make_node("FusedMatMul", ["a", "a"], ["b"], name="second",
                              domain="com.microsoft"),
             helper.make_node("LSTM", ["b", "w", "r"], ["y"], name="third", hidden_size=2,
                              clip=3.0)]
    model = _model(nodes, {"x": _f(2)}, ["y"], {"w": _f(1, 8, 2), "r": _f(1, 8, 2)})
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(NotImplementedError) as info:
        load(model)
    msg = str(info.value)
    assert "node 'first' (op 'Foo', domain '', opset 18)" in msg
    assert "node 'second' (op 'FusedMatMul', domain 'com.microsoft', opset 1)" in msg
    assert "node 'third' (op 'LSTM', domain '', opset 18) is not supported: attribute 'clip'" \
        in msg


@pytest.mark.parametrize("opset", [12, 22])
def test_opset_outside_13_to_21_is_refused_naming_the_node(opset):
    model = _model([_node("Relu", ["x"])], {"x": _f(2)}, ["y"], opset=opset)
    with pytest.raises(NotImplementedError,
                       match=rf"node 'Relu_0' \(op 'Relu', domain '', opset {opset}\) is not "
                             r"supported: .*opsets 13..21"):
        load(model)


@pytest.mark.parametrize("case, pattern", [
    ("gelu-18", r"node 'Gelu_0' \(op 'Gelu', domain '', opset 18\).*from opset 20"),
    ("conv-3d", r"node 'Conv_0' \(op 'Conv'.*3-D windows"),
    ("maxpool-indices", r"node 'MaxPool_0' .*the Indices output"),
    ("cast-float16", r"node 'Cast_0' .*cast to ONNX type 10"),
    ("if", r"node 'If_0' \(op 'If'"),
    ("reduce-axes-attr-18", r"node 'ReduceMean_0' .*'axes' is an input"),
])
def test_unsupported_forms_are_refused_at_load(case, pattern):
    x = _f(1, 2, 3, 3)
    models = {
        "gelu-18": lambda: _model([_node("Gelu", ["x"])], {"x": x}, ["y"], opset=18),
        "conv-3d": lambda: _model([_node("Conv", ["x", "w"], kernel_shape=[1, 1, 1])], {"x": x},
                                  ["y"], {"w": _f(1, 2, 1, 1, 1)}),
        "maxpool-indices": lambda: _model([_node("MaxPool", ["x"], ["y", "i"],
                                                 kernel_shape=[2, 2])], {"x": x}, ["y", "i"]),
        "cast-float16": lambda: _model([_node("Cast", ["x"], to=TensorProto.FLOAT16)], {"x": x},
                                       ["y"]),
        "if": lambda: _model([_node("If", ["c"], then_branch=helper.make_graph([], "t", [], []),
                                    else_branch=helper.make_graph([], "e", [], []))],
                             {"c": np.array(True)}, ["y"]),
        "reduce-axes-attr-18": lambda: _model([_node("ReduceMean", ["x"], axes=[1])], {"x": x},
                                              ["y"]),
    }
    with pytest.raises((NotImplementedError, ValueError), match=pattern):
        load(models[case]())


def test_missing_value_is_reported_naming_the_node():
    model = _model([_node("Add", ["x", "nowhere"])], {"x": _f(2)}, ["y"])
    with pytest.raises(ValueError, match="node 'Add_0' .* reads 'nowhere', which no node, input "
                                         "or initializer produces"):
        load(model)


def test_runtime_failure_names_the_node():
    model = _model([_node("Reshape", ["x", "s"])], {"x": _f(2, 3), "s": _i(4, -1)}, ["y"])
    net = load(model)
    with pytest.raises(Exception, match=r"\[onnx\] node 'Reshape_0' \(op 'Reshape'\)") as info:
        net(_f(2, 3), _i(4, -1))
    assert isinstance(info.value, (ValueError, RuntimeError))


def test_truncated_or_garbage_files_name_the_file(tmp_path):
    model, _ = _shape_chain_model()
    data = model.SerializeToString()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.onnx"):
        load(truncated)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not an onnx file at all\xff\xfe" * 3)
    with pytest.raises(ValueError, match="garbage.onnx"):
        load(str(garbage))
    with pytest.raises(ValueError, match="bytes"):
        load(b"\xff" * 10)
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        load(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="expected a path, bytes"):
        load(42)
