"""deepcore.nn's CNN layers against torch.nn: forward and backward from the same weights (copied
through state_dict), repr, state_dict keys and shapes, default initialisation statistics,
BatchNorm running statistics over several steps, and the layers' error messages."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import deepcore as dc
import deepcore.nn as nn


def to_dc(t: torch.Tensor, requires_grad: bool = False) -> dc.Tensor:
    x = dc.tensor(t.detach().numpy().copy())
    return x.requires_grad_() if requires_grad else x


def load_from_torch(dmod: nn.Module, tmod: torch.nn.Module) -> None:
    dmod.load_state_dict({k: v.detach().numpy().copy() for k, v in tmod.state_dict().items()})


def close(a, b, rtol=1e-4, atol=1e-5, what=""):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a.detach().numpy())
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b.detach().numpy())
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


# (class name, constructor args, constructor kwargs, input shape)
CASES = [
    ("Conv1d", (4, 6, 3), {}, (2, 4, 11)),
    ("Conv1d", (4, 6, 5), dict(stride=2, padding=2, dilation=1, bias=False), (2, 4, 17)),
    ("Conv1d", (4, 6, 3), dict(padding="same", dilation=2), (3, 4, 10)),
    ("Conv1d", (4, 4, 3), dict(padding=1, padding_mode="circular", groups=2), (2, 4, 9)),
    ("Conv2d", (3, 8, 3), {}, (2, 3, 9, 9)),
    ("Conv2d", (3, 8, (3, 5)), dict(stride=(2, 1), padding=(1, 2)), (2, 3, 10, 11)),
    ("Conv2d", (4, 8, 3), dict(padding="same"), (2, 4, 7, 8)),
    ("Conv2d", (4, 8, 4), dict(padding="same", dilation=2), (2, 4, 9, 9)),
    ("Conv2d", (4, 8, 3), dict(padding="valid", bias=False), (2, 4, 7, 8)),
    ("Conv2d", (4, 8, 3), dict(padding=2, dilation=2, groups=2), (2, 4, 9, 9)),
    ("Conv2d", (6, 6, 3), dict(padding=1, groups=6), (2, 6, 8, 8)),
    ("Conv2d", (3, 5, 3), dict(padding=1, padding_mode="reflect"), (2, 3, 6, 7)),
    ("Conv2d", (3, 5, 3), dict(padding=(1, 2), padding_mode="replicate", stride=2), (2, 3, 8, 9)),
    ("Conv2d", (3, 5, 3), dict(padding="same", padding_mode="circular"), (2, 3, 6, 6)),
    ("Conv2d", (3, 5, (4, 2)), dict(padding="same", padding_mode="reflect"), (2, 3, 7, 8)),
    ("Conv1d", (3, 5, 4), dict(padding="same", padding_mode="replicate"), (2, 3, 9)),
    ("Conv2d", (3, 5, 3), dict(padding=1), (3, 8, 8)),  # unbatched
    ("ConvTranspose1d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1), (2, 4, 7)),
    ("ConvTranspose2d", (4, 6, 3), {}, (2, 4, 5, 5)),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1), (2, 4, 5, 6)),
    ("ConvTranspose2d", (4, 6, (3, 2)), dict(stride=(2, 3), groups=2, bias=False,
                                             dilation=(1, 2)), (2, 4, 4, 5)),
    ("MaxPool1d", (3,), dict(stride=2, padding=1), (2, 3, 10)),
    ("MaxPool2d", (2,), {}, (2, 3, 8, 8)),
    ("MaxPool2d", (3,), dict(stride=2, padding=1), (2, 3, 9, 10)),
    ("MaxPool2d", (3,), dict(stride=2, ceil_mode=True), (2, 3, 10, 10)),
    ("MaxPool2d", ((2, 3),), dict(stride=1, dilation=2), (2, 3, 9, 9)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, count_include_pad=False), (2, 3, 10)),
    ("AvgPool2d", (2,), {}, (2, 3, 8, 8)),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, count_include_pad=False), (2, 3, 9, 9)),
    ("AvgPool2d", (3,), dict(stride=2, ceil_mode=True), (2, 3, 10, 10)),
    ("AvgPool2d", (2,), dict(divisor_override=3), (2, 3, 6, 6)),
    ("AdaptiveAvgPool2d", ((1, 1),), {}, (2, 8, 5, 5)),
    ("AdaptiveAvgPool2d", (3,), {}, (2, 3, 7, 8)),
    ("AdaptiveAvgPool2d", ((None, 2),), {}, (2, 3, 7, 8)),
    ("AdaptiveMaxPool2d", ((2, 3),), {}, (2, 3, 7, 8)),
    ("BatchNorm1d", (5,), {}, (8, 5)),
    ("BatchNorm1d", (5,), dict(affine=False), (4, 5, 6)),
    ("BatchNorm2d", (4,), {}, (3, 4, 5, 5)),
    ("BatchNorm2d", (4,), dict(momentum=None, eps=1e-3), (3, 4, 5, 5)),
    ("BatchNorm2d", (4,), dict(track_running_stats=False), (3, 4, 5, 5)),
    ("BatchNorm2d", (4,), dict(bias=False), (3, 4, 5, 5)),
    ("GroupNorm", (2, 6), {}, (3, 6, 4, 4)),
    ("GroupNorm", (3, 6), dict(affine=False, eps=1e-3), (3, 6, 5)),
    ("InstanceNorm1d", (4,), dict(affine=True), (2, 4, 9)),
    ("InstanceNorm2d", (4,), {}, (2, 4, 5, 5)),
    ("InstanceNorm2d", (4,), dict(affine=True, track_running_stats=True), (2, 4, 5, 5)),
    ("InstanceNorm2d", (4,), dict(affine=True), (4, 5, 5)),  # unbatched
    ("Dropout2d", (0.0,), {}, (2, 3, 4, 4)),
    ("Upsample", (), dict(scale_factor=2), (2, 3, 4, 5)),
    ("Upsample", (), dict(size=(7, 9), mode="bilinear"), (2, 3, 4, 5)),
    ("Upsample", (), dict(scale_factor=1.5, mode="bilinear", align_corners=True), (2, 3, 4, 4)),
    ("Upsample", (), dict(size=11, mode="linear"), (2, 3, 5)),
    ("UpsamplingNearest2d", (), dict(scale_factor=3), (1, 2, 3, 3)),
    ("UpsamplingBilinear2d", (), dict(size=(6, 5)), (1, 2, 3, 3)),
]


def _ids(case):
    name, args, kwargs, shape = case
    return f"{name}{args}{kwargs}{shape}".replace(" ", "")


def _pair(name, args, kwargs, seed=0):
    torch.manual_seed(seed)
    tmod = getattr(torch.nn, name)(*args, **kwargs)
    dmod = getattr(nn, name)(*args, **kwargs)
    load_from_torch(dmod, tmod)
    return tmod, dmod


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_forward_backward_matches_torch(case):
    name, args, kwargs, shape = case
    tmod, dmod = _pair(name, args, kwargs)
    torch.manual_seed(1)
    tx = torch.randn(*shape, requires_grad=True)
    dx = to_dc(tx, requires_grad=True)
    for train in (True, False):
        tmod.train(train)
        dmod.train(train)
        ty = tmod(tx)
        dy = dmod(dx)
        close(dy, ty, what=f"{name} forward (train={train})")
        g = torch.randn_like(ty)
        ty.backward(g)
        dy.backward(to_dc(g))
        close(dx.grad, tx.grad, what=f"{name} input grad (train={train})")
        tparams = dict(tmod.named_parameters())
        for pname, p in dmod.named_parameters():
            close(p.grad, tparams[pname].grad, what=f"{name}.{pname}.grad (train={train})")
        tx.grad = None
        dx.grad = None
        tmod.zero_grad()
        dmod.zero_grad()
    # Buffers (running statistics) were updated identically in the training step.
    tbufs = dict(tmod.named_buffers())
    for bname, b in dmod.named_buffers():
        close(b, tbufs[bname], what=f"{name}.{bname}")


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_repr_and_state_dict_match_torch(case):
    name, args, kwargs, _ = case
    tmod, dmod = _pair(name, args, kwargs)
    assert repr(dmod) == repr(tmod)
    tsd, dsd = tmod.state_dict(), dmod.state_dict()
    assert list(dsd.keys()) == list(tsd.keys())
    for k in tsd:
        assert tuple(dsd[k].shape) == tuple(tsd[k].shape), k
        assert str(dsd[k].dtype).split(".")[-1] == str(tsd[k].dtype).split(".")[-1], k


def test_repr_in_a_container():
    t = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.BatchNorm2d(6),
                            torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
                            torch.nn.AdaptiveAvgPool2d((1, 1)))
    d = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(),
                      nn.MaxPool2d(2, 2), nn.AdaptiveAvgPool2d((1, 1)))
    assert repr(d) == repr(t)


def test_pool_return_indices_match_torch():
    torch.manual_seed(0)
    tx = torch.randn(2, 3, 9, 9)
    for tm, dm in [(torch.nn.MaxPool2d(3, 2, 1, return_indices=True),
                    nn.MaxPool2d(3, 2, 1, return_indices=True)),
                   (torch.nn.AdaptiveMaxPool2d(4, return_indices=True),
                    nn.AdaptiveMaxPool2d(4, return_indices=True))]:
        (ty, ti), (dy, di) = tm(tx), dm(to_dc(tx))
        close(dy, ty)
        np.testing.assert_array_equal(di.numpy(), ti.numpy())
    ty, ti = torch.nn.MaxPool1d(2, return_indices=True)(tx[:, :, 0])
    dy, di = nn.MaxPool1d(2, return_indices=True)(to_dc(tx[:, :, 0]))
    np.testing.assert_array_equal(di.numpy(), ti.numpy())


def test_conv_transpose_output_size():
    tmod, dmod = _pair("ConvTranspose2d", (3, 4, 3), dict(stride=2, padding=1))
    tx = torch.randn(2, 3, 5, 6)
    for size in [(9, 11), (10, 12), [2, 4, 10, 11]]:
        close(dmod(to_dc(tx), output_size=size), tmod(tx, output_size=size))
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(3, 4.*valid sizes range from "
                                         r"\[9, 11\] to \[10, 12\]"):
        dmod(to_dc(tx), output_size=(12, 12))
    with pytest.raises(ValueError, match="output_size must have 2 or 4 elements"):
        dmod(to_dc(tx), output_size=(10,))


def test_float64_layers():
    torch.manual_seed(0)
    t = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    d = nn.Conv2d(3, 4, 3, padding=1, dtype=dc.float64)
    assert d.weight.dtype == dc.float64
    load_from_torch(d, t)
    tx = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    close(d(to_dc(tx)), t(tx), rtol=1e-12, atol=1e-12)
    bn = nn.BatchNorm2d(4, dtype=dc.float64)
    assert bn.running_mean.dtype == dc.float64 and bn.num_batches_tracked.dtype == dc.int64


# ---- initialisation ---------------------------------------------------------------------------

@pytest.mark.parametrize("ctor, fan_in", [
    (lambda: nn.Conv2d(64, 128, 3), 64 * 9),
    (lambda: nn.Conv2d(64, 128, 3, groups=4), 16 * 9),
    (lambda: nn.Conv1d(32, 256, 5), 32 * 5),
    # Transposed weights are (in, out/groups, k...): torch's fan_in is size(1) * k.
    (lambda: nn.ConvTranspose2d(128, 64, 3), 64 * 9),
])
def test_conv_default_init_statistics(ctor, fan_in):
    dc.manual_seed(0)
    m = ctor()
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(fan_in), ...)
    w = m.weight.detach().numpy().ravel()
    assert w.min() >= -bound and w.max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound
    assert abs(w.mean()) < 0.02 * bound
    b = m.bias.detach().numpy()
    assert b.min() >= -bound and b.max() <= bound and b.std() > 0.3 * bound


def test_conv_init_is_seeded():
    dc.manual_seed(5)
    a = nn.Conv2d(3, 8, 3).weight.detach().numpy()
    dc.manual_seed(5)
    b = nn.Conv2d(3, 8, 3).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


def test_norm_default_init():
    bn = nn.BatchNorm2d(7)
    np.testing.assert_array_equal(bn.weight.detach().numpy(), np.ones(7, np.float32))
    np.testing.assert_array_equal(bn.bias.detach().numpy(), np.zeros(7, np.float32))
    np.testing.assert_array_equal(bn.running_mean.numpy(), np.zeros(7, np.float32))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(7, np.float32))
    assert bn.num_batches_tracked.dtype == dc.int64 and bn.num_batches_tracked.dim() == 0
    assert int(bn.num_batches_tracked.item()) == 0
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    gn = nn.GroupNorm(2, 6)
    np.testing.assert_array_equal(gn.weight.detach().numpy(), np.ones(6, np.float32))
    inorm = nn.InstanceNorm2d(3)
    assert inorm.weight is None and inorm.running_mean is None
    assert list(inorm.state_dict()) == []


# ---- BatchNorm running statistics -------------------------------------------------------------

@pytest.mark.parametrize("cls, kwargs, shape", [
    ("BatchNorm2d", {}, (6, 3, 5, 5)),
    ("BatchNorm2d", dict(momentum=None), (6, 3, 5, 5)),
    ("BatchNorm2d", dict(momentum=0.3, affine=False), (6, 3, 4, 4)),
    ("BatchNorm1d", {}, (10, 3)),
    ("BatchNorm1d", dict(momentum=None), (4, 3, 7)),
])
def test_batchnorm_running_stats_over_steps(cls, kwargs, shape):
    tmod, dmod = _pair(cls, (3,), kwargs)
    topt = torch.optim.SGD(tmod.parameters(), lr=0.1) if kwargs.get("affine", True) else None
    dopt = dc.optim.SGD(dmod.parameters(), lr=0.1) if topt else None
    torch.manual_seed(3)
    for step in range(6):
        tx = torch.randn(*shape) * (1 + step) + step
        ty, dy = tmod(tx), dmod(to_dc(tx))
        close(dy, ty, what=f"step {step} output")
        if topt:
            ty.pow(2).mean().backward()
            dy.pow(2).mean().backward()
            topt.step(), dopt.step(), topt.zero_grad(), dopt.zero_grad()
        close(dmod.running_mean, tmod.running_mean, what=f"step {step} running_mean")
        close(dmod.running_var, tmod.running_var, what=f"step {step} running_var")
        assert int(dmod.num_batches_tracked.item()) == int(tmod.num_batches_tracked) == step + 1
    tmod.eval()
    dmod.eval()
    tx = torch.randn(*shape)
    close(dmod(to_dc(tx)), tmod(tx), what="eval output")
    assert int(dmod.num_batches_tracked.item()) == 6  # eval does not count batches


def test_batchnorm_without_running_stats_uses_batch_stats_in_eval():
    tmod, dmod = _pair("BatchNorm2d", (3,), dict(track_running_stats=False))
    tmod.eval(), dmod.eval()
    tx = torch.randn(4, 3, 3, 3) * 3 + 1
    close(dmod(to_dc(tx)), tmod(tx))
    assert dmod.running_mean is None and dmod.num_batches_tracked is None


def test_batchnorm_loads_old_checkpoint_without_counter():
    tmod, dmod = _pair("BatchNorm2d", (3,), {})
    sd = {k: v.numpy() for k, v in tmod.state_dict().items() if k != "num_batches_tracked"}
    dmod.load_state_dict(sd)  # version-1 checkpoints lack num_batches_tracked: not an error
    with pytest.raises(RuntimeError, match="Unexpected key"):
        dmod.load_state_dict(dict(sd, extra=np.zeros(3, np.float32)))


# ---- errors -----------------------------------------------------------------------------------

def test_conv_channel_mismatch_message():
    m = nn.Conv2d(3, 16, 3)
    msg = ("Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)): expected input with 3 channels, "
           "got input of shape (8, 4, 32, 32)")
    with pytest.raises(ValueError, match=re.escape(msg)):
        m(dc.randn(8, 4, 32, 32))
    # Inside a model the path to the layer is prefixed.
    bad = nn.Sequential(nn.Conv2d(3, 4, 1), m)
    with pytest.raises(ValueError, match=re.escape("Sequential.1: Conv2d(3, 16, kernel_size="
                                                   "(3, 3), stride=(1, 1)): expected input with "
                                                   "3 channels, got input of shape (8, 4, 32, 32)")):
        bad(dc.randn(8, 3, 32, 32))


@pytest.mark.parametrize("layer, x, pattern", [
    (lambda: nn.Conv2d(3, 4, 3), (3, 8), r"Conv2d\(3, 4.*expected a 3-D \(unbatched\) or 4-D"),
    (lambda: nn.Conv1d(2, 4, 3), (1, 3, 8), r"Conv1d\(2, 4.*expected input with 2 channels"),
    (lambda: nn.Conv2d(3, 4, 5), (1, 3, 3, 3), r"Conv2d\(3, 4, kernel_size=\(5, 5\).*\(1, 3, 3, 3\)"),
    (lambda: nn.ConvTranspose2d(3, 4, 3), (1, 5, 4, 4),
     r"ConvTranspose2d\(3, 4.*expected input with 3 channels"),
    (lambda: nn.BatchNorm2d(4), (2, 4, 5), r"BatchNorm2d\(4, .*expected 4D input \(got 3D"),
    (lambda: nn.BatchNorm2d(4), (2, 3, 5, 5), r"BatchNorm2d\(4, .*expected input with 4 channels"),
    (lambda: nn.BatchNorm1d(4), (2, 4, 5, 5), r"BatchNorm1d\(4, .*expected 2D or 3D input"),
    (lambda: nn.BatchNorm1d(4), (1, 4), r"BatchNorm1d\(4, .*more than 1 value per channel"),
    (lambda: nn.GroupNorm(2, 4), (2, 6, 3), r"GroupNorm\(2, 4.*expected input with 4 channels"),
    (lambda: nn.InstanceNorm2d(3, affine=True), (2, 4, 5, 5),
     r"InstanceNorm2d\(3, .*expected input with 3 channels"),
    (lambda: nn.MaxPool2d(2), (2, 3, 4, 4, 4), r"MaxPool2d\(kernel_size=2.*expected a 3-D"),
    (lambda: nn.MaxPool2d(5), (1, 1, 3, 3), r"MaxPool2d\(kernel_size=5.*\(1, 1, 3, 3\)"),
    (lambda: nn.AvgPool2d(2), (4, 4), r"AvgPool2d\(kernel_size=2.*expected a 3-D"),
    (lambda: nn.AdaptiveAvgPool2d(2), (4,), r"AdaptiveAvgPool2d\(output_size=2\).*expected a 3-D"),
    (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 4),
     r"Upsample\(scale_factor=2.0, mode='bilinear'\)"),
])
def test_layer_errors_name_the_layer(layer, x, pattern):
    m = layer()
    with pytest.raises(ValueError, match=pattern):
        m(dc.randn(*x))


@pytest.mark.parametrize("ctor, pattern", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), r"Conv2d: in_channels \(3\) must be divisible by "
                                           r"groups \(2\)"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), r"out_channels \(6\) must be divisible"),
    (lambda: nn.Conv2d(4, 6, 3, groups=0), r"groups must be a positive integer"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), r"invalid padding string 'full'"),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), r"padding='same' is not supported "
                                                           r"for strided convolutions"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), r"padding_mode must be one of"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"), r'Only "zeros" padding mode'),
    (lambda: nn.GroupNorm(4, 6), r"num_channels \(6\) must be divisible by num_groups \(4\)"),
])
def test_constructor_errors(ctor, pattern):
    with pytest.raises(ValueError, match=pattern):
        ctor()


def test_dropout2d_drops_whole_channels():
    dc.manual_seed(0)
    m = nn.Dropout2d(0.5)
    y = m(dc.ones(16, 8, 4, 4)).numpy()
    per_channel = y.reshape(16, 8, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0.3 < (per_channel[:, :, 0] == 0).mean() < 0.7
    m.eval()
    np.testing.assert_array_equal(m(dc.ones(2, 3, 4, 4)).numpy(), np.ones((2, 3, 4, 4)))
