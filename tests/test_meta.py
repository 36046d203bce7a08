"""The meta device: layers and models run forward and backward with shapes and dtypes only.

Every result on meta must have the shape and dtype the same call gives on cpu, gradients
included; memory is counted, not allocated; values cannot be read, and an op whose result
depends on them raises a typed error instead.
"""
from __future__ import annotations

import numpy as np
import pytest

import deepcore as dc
import deepcore.nn as nn
import deepcore.nn.functional as F


def _meta_live_peak() -> tuple[int, int]:
    live, peak = dc._C._meta_memory()
    return int(live), int(peak)


def _forward_backward(model, x, loss=None):
    """(output shape, output dtype, [(param shape, grad shape, grad device)]) of one step."""
    y = model(x)
    (y.sum() if loss is None else loss(y)).backward()
    grads = [(tuple(p.shape), tuple(p.grad.shape), p.grad.device.type)
             for p in model.parameters()]
    return tuple(y.shape), y.dtype, grads


def _on(device, model, x):
    """The model and input on `device` (the same initial module, so the parameters match)."""
    return model.to(device), x.to(device).requires_grad_(x.requires_grad)


LAYERS = {
    "Linear": (lambda: nn.Linear(6, 5), (4, 6)),
    "Conv2d": (lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 9, 9)),
    "Conv2d-groups": (lambda: nn.Conv2d(4, 8, 3, groups=2, bias=False), (2, 4, 7, 7)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), (2, 3, 5, 5)),
    "LayerNorm": (lambda: nn.LayerNorm(7), (2, 3, 7)),
    "MaxPool2d": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, ceil_mode=True)),
                  (2, 3, 8, 8)),
    "AdaptiveAvgPool2d": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(2)),
                          (2, 3, 8, 8)),
    "Dropout": (lambda: nn.Sequential(nn.Linear(6, 5), nn.Dropout(0.5)), (4, 6)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_forward_backward_matches_cpu_shapes(name):
    make, shape = LAYERS[name]
    x = dc.randn(*shape)
    cpu = _forward_backward(make(), x)
    meta = _forward_backward(*_on("meta", make(), x))
    assert meta[:2] == cpu[:2]
    assert [g[:2] for g in meta[2]] == [g[:2] for g in cpu[2]]
    assert all(g[2] == "meta" for g in meta[2])


def test_embedding_and_cross_entropy_backward():
    weight_cpu = nn.Embedding(10, 4)
    idx = dc.tensor([[1, 2, 3], [4, 5, 9]])
    emb = weight_cpu.to("meta")
    y = emb(idx.to("meta"))
    assert (tuple(y.shape), y.device.type) == ((2, 3, 4), "meta")
    logits = dc.empty(6, 10, device="meta", requires_grad=True)
    loss = F.cross_entropy(logits + y.reshape(6, 4).sum(1, keepdim=True), idx.reshape(6).to("meta"))
    loss.backward()
    assert loss.shape == () and loss.device.type == "meta"
    assert tuple(logits.grad.shape) == (6, 10)
    assert tuple(emb.weight.grad.shape) == (10, 4) and emb.weight.grad.device.type == "meta"


def _small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 10))


def test_small_cnn_matches_cpu_and_counts_memory():
    x = dc.randn(4, 3, 16, 16)
    target = dc.tensor([0, 3, 9, 1])
    cpu = _forward_backward(_small_cnn(), x, lambda y: F.cross_entropy(y, target))
    live0, _ = _meta_live_peak()
    model, xm = _on("meta", _small_cnn(), x)
    live_params, _ = _meta_live_peak()
    assert live_params > live0  # the parameters moved to meta are counted
    meta = _forward_backward(model, xm, lambda y: F.cross_entropy(y, target.to("meta")))
    live1, peak1 = _meta_live_peak()
    assert meta[:2] == cpu[:2]
    assert [g[:2] for g in meta[2]] == [g[:2] for g in cpu[2]]
    # The peak holds at least the activations saved for backward of the 4x8x16x16 conv.
    assert peak1 >= live_params + 4 * 8 * 16 * 16 * 4
    assert live1 > live_params  # the gradients are live now


def test_meta_memory_is_released():
    live0, _ = _meta_live_peak()
    t = dc.empty(1024, 1024, device="meta")
    live1, peak1 = _meta_live_peak()
    assert live1 - live0 == 1024 * 1024 * 4 and peak1 >= live1
    del t
    assert _meta_live_peak()[0] == live0


def test_resnet50_batch_256_forward_backward():
    from deepcore.models import resnet50
    model = resnet50().to("meta")
    x = dc.empty(256, 3, 224, 224, device="meta")
    y = model(x)
    F.cross_entropy(y, dc.empty(256, dtype=dc.int64, device="meta")).backward()
    assert tuple(y.shape) == (256, 1000) and y.device.type == "meta"
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    _, peak = _meta_live_peak()
    assert peak > 256 * 3 * 224 * 224 * 4  # at least the input batch


def test_parameter_to_meta_then_requires_grad():
    p = nn.Parameter(dc.zeros(3, 2))
    q = p.to("meta").requires_grad_()
    assert q.device.type == "meta" and q.requires_grad and tuple(q.shape) == (3, 2)
    # A meta leaf of the parameter's shape (what a planner builds) takes gradients.
    leaf = p.detach().to("meta").requires_grad_()
    (leaf * 2).sum().backward()
    assert leaf.is_leaf and leaf.grad.device.type == "meta" and tuple(leaf.grad.shape) == (3, 2)


@pytest.mark.parametrize("fn, shape", [
    (lambda x: dc.tril(x), (4, 5)),
    (lambda x: dc.sort(x, 1)[1], (3, 4)),
    (lambda x: dc.argmax(x, 1), (3, 4)),
    (lambda x: x.max(0)[1], (3, 4)),
    (lambda x: F.pad(x, (1, 2), mode="reflect"), (2, 3, 5)),
    (lambda x: F.interpolate(x, scale_factor=2), (1, 2, 3, 3)),
    (lambda x: dc.diag(x), (4, 4)),
    (lambda x: dc.diag(x[0]), (4, 4)),
    (lambda x: x[[0, 2]], (4, 4)),
    (lambda x: x[dc.tensor([1, 3])], (4, 4)),
    (lambda x: x.new_zeros(2, 3), (4, 4)),
    (lambda x: dc.gather(x, 1, x.new_zeros(3, 2, dtype=dc.int64)), (3, 4)),
    (lambda x: x.scatter(1, x.new_zeros(3, 2, dtype=dc.int64), 1.5), (3, 4)),
    (lambda x: x.long() // 2, (3, 4)),
    (lambda x: x.long() ** 2, (3, 4)),
])
def test_value_independent_ops_give_cpu_shapes(fn, shape):
    x = dc.randn(*shape)
    cpu = fn(x)
    meta = fn(x.to("meta"))
    assert meta.device.type == "meta"
    assert (tuple(meta.shape), meta.dtype) == (tuple(cpu.shape), cpu.dtype)


@pytest.mark.parametrize("fn", [
    lambda x: x.nonzero(),
    lambda x: dc.masked_select(x, x > 0),
    lambda x: x[x > 0],
    lambda x: F.one_hot(x.long()),
    lambda x: x.sum().item(),
    lambda x: x.tolist(),
    lambda x: x.numpy(),
    lambda x: bool(x.sum()),
    lambda x: dc.allclose(x, x),
], ids=["nonzero", "masked_select", "mask_index", "one_hot_infer", "item", "tolist", "numpy",
        "bool", "allclose"])
def test_data_dependent_ops_raise_typed_errors(fn):
    x = dc.zeros(3, 4, device="meta")
    with pytest.raises((RuntimeError, NotImplementedError), match=r"meta"):
        fn(x)


def test_cpu_and_meta_mixed_raises_naming_both():
    with pytest.raises(RuntimeError, match=r"\[add\].*(cpu and meta|meta and cpu)"):
        dc.add(dc.zeros(3), dc.zeros(3, device="meta"))
    with pytest.raises(RuntimeError, match=r"cpu.*meta|meta.*cpu"):
        nn.Linear(3, 2).to("meta")(dc.zeros(4, 3))
    # Python numbers go with any device.
    y = dc.zeros(3, device="meta") * 2.5 + 1
    assert y.device.type == "meta" and y.dtype == dc.float32


def test_meta_values_cannot_be_copied_out():
    with pytest.raises(NotImplementedError, match=r"meta"):
        dc.zeros(2, device="meta").to("cpu")


def test_factories_on_meta():
    for t in (dc.randperm(5, device="meta"), dc.scalar_tensor(1.5, device="meta"),
              dc.zeros(2, 3, device="meta"), dc.arange(4, device="meta")):
        assert t.device.type == "meta"
    assert np.array_equal(np.sort(dc.randperm(6).numpy()), np.arange(6))
