"""deepcore.models against reference networks built here from torch.nn with torchvision's
attribute names (torchvision itself is not installable beside torch 2.13): identical state_dict
keys and shapes, ResNet-18 outputs/gradients/running statistics from the same weights, weights
moved through safetensors, and LeNet-5 training on scikit-learn's digits (accuracy, and the
loss curve step by step against PyTorch from the same initial weights)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as tnn

import deepcore as dc
import deepcore.models as models
import deepcore.nn as nn


def to_dc(t: torch.Tensor) -> dc.Tensor:
    return dc.tensor(t.detach().numpy().copy())


def copy_weights(dmod: nn.Module, tmod: tnn.Module) -> None:
    dmod.load_state_dict({k: v.detach().numpy().copy() for k, v in tmod.state_dict().items()})


def rel_err(a, b) -> float:
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


# ---- reference networks (torchvision's layout, from torch.nn) ---------------------------------

def conv3x3(i, o, stride=1):
    return tnn.Conv2d(i, o, 3, stride, padding=1, bias=False)


class RefBasicBlock(tnn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class RefBottleneck(tnn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(planes * 4)
        self.relu = tnn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class RefResNet(tnn.Module):
    def __init__(self, block, layers, num_classes=1000, small_input=False):
        super().__init__()
        self.inplanes = 64
        if small_input:
            self.conv1 = tnn.Conv2d(3, 64, 3, 1, 1, bias=False)
        else:
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.Identity() if small_input else tnn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = tnn.Sequential(
                tnn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                tnn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return tnn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def ref_vgg_features(cfg, batch_norm):
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(tnn.MaxPool2d(2, 2))
        else:
            layers += [tnn.Conv2d(c, v, 3, padding=1)]
            layers += [tnn.BatchNorm2d(v), tnn.ReLU(True)] if batch_norm else [tnn.ReLU(True)]
            c = v
    return tnn.Sequential(*layers)


class RefVGG(tnn.Module):
    def __init__(self, cfg, batch_norm, num_classes=1000):
        super().__init__()
        self.features = ref_vgg_features(cfg, batch_norm)
        self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
        self.classifier = tnn.Sequential(
            tnn.Linear(512 * 7 * 7, 4096), tnn.ReLU(True), tnn.Dropout(),
            tnn.Linear(4096, 4096), tnn.ReLU(True), tnn.Dropout(),
            tnn.Linear(4096, num_classes))


class RefLeNet5(tnn.Module):
    def __init__(self, num_classes=10, input_size=28):
        super().__init__()
        self.features = tnn.Sequential(
            tnn.Conv2d(1, 6, 5, padding=2 if input_size == 28 else 0), tnn.ReLU(True),
            tnn.MaxPool2d(2, 2), tnn.Conv2d(6, 16, 5), tnn.ReLU(True), tnn.MaxPool2d(2, 2))
        self.classifier = tnn.Sequential(
            tnn.Linear(400, 120), tnn.ReLU(True), tnn.Linear(120, 84), tnn.ReLU(True),
            tnn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def randomise_bn_stats(model: tnn.Module, seed: int = 0) -> None:
    """Non-trivial BN affine parameters and running statistics, so eval mode tests them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, tnn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(1 + 0.3 * torch.rand(n, generator=g))
                m.num_batches_tracked.fill_(7)


def assert_same_keys(dmod: nn.Module, tmod: tnn.Module) -> None:
    dsd, tsd = dmod.state_dict(), tmod.state_dict()
    assert list(dsd.keys()) == list(tsd.keys())
    assert [tuple(v.shape) for v in dsd.values()] == [tuple(v.shape) for v in tsd.values()]


# ---- layouts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, ref", [
    ("resnet18", lambda: RefResNet(RefBasicBlock, [2, 2, 2, 2])),
    ("resnet34", lambda: RefResNet(RefBasicBlock, [3, 4, 6, 3])),
    ("resnet50", lambda: RefResNet(RefBottleneck, [3, 4, 6, 3])),
])
def test_resnet_state_dict_matches_torchvision_layout(name, ref):
    with torch.device("meta"):
        tmod = ref()
    dmod = getattr(models, name)()
    assert_same_keys(dmod, tmod)
    assert len(dmod.state_dict()) == {"resnet18": 122, "resnet34": 218, "resnet50": 320}[name]


def test_small_input_stem_layout():
    d = models.resnet18(small_input=True, num_classes=10)
    with torch.device("meta"):
        t = RefResNet(RefBasicBlock, [2, 2, 2, 2], num_classes=10, small_input=True)
    assert_same_keys(d, t)
    assert tuple(d.conv1.weight.shape) == (64, 3, 3, 3)
    assert isinstance(d.maxpool, nn.Identity)


@pytest.mark.parametrize("fn, cfg, bn", [
    (lambda: models.vgg11(batch_norm=True, num_classes=10), "A", True),
    (lambda: models.vgg16(num_classes=10), "D", False),
])
def test_vgg_state_dict_matches_torchvision_layout(fn, cfg, bn):
    cfgs = {"A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
            "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512,
                  512, "M"]}
    with torch.device("meta"):
        t = RefVGG(cfgs[cfg], bn, num_classes=10)
    d = fn()
    assert_same_keys(d, t)
    assert repr(d.features) == repr(t.features)


def test_vgg_features_match_torch():
    cfg = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
    torch.manual_seed(0)
    t = ref_vgg_features(cfg, True)
    randomise_bn_stats(t)
    t.eval()
    d = models.vgg11_bn(num_classes=10).features
    copy_weights(d, t)
    d.eval()
    x = torch.randn(2, 3, 32, 32)
    assert rel_err(d(to_dc(x)).detach(), t(x)) < 1e-4


# ---- ResNet-18 numerics -----------------------------------------------------------------------

@pytest.mark.parametrize("small_input", [False, True])
def test_resnet18_eval_forward_matches_torch(small_input):
    torch.manual_seed(0)
    t = RefResNet(RefBasicBlock, [2, 2, 2, 2], num_classes=10, small_input=small_input)
    randomise_bn_stats(t)
    t.eval()
    d = models.resnet18(num_classes=10, small_input=small_input)
    copy_weights(d, t)
    d.eval()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        ty = t(x)
    dy = d(to_dc(x)).detach()
    assert tuple(dy.shape) == (8, 10)
    np.testing.assert_allclose(dy.numpy(), ty.numpy(), rtol=1e-4, atol=1e-4)


def test_resnet18_train_step_matches_torch():
    """One training step with BN in train mode: loss, every gradient, the SGD-momentum update,
    the running statistics, and the loss of the updated model. In float64: through 18 layers
    of batch-8 batch norm, float32 rounding alone moves the first layer's weight gradient by
    up to ~1e-2 relative, and by how much depends on which kernels torch picks for the CPU, so
    only float64 can hold every gradient to a tight bound."""
    torch.manual_seed(0)
    t = RefResNet(RefBasicBlock, [2, 2, 2, 2], num_classes=10, small_input=True).double()
    d = models.resnet18(num_classes=10, small_input=True).double()
    copy_weights(d, t)
    topt = torch.optim.SGD(t.parameters(), lr=0.01, momentum=0.9)
    dopt = dc.optim.SGD(d.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(8, 3, 32, 32, dtype=torch.float64), torch.randint(0, 10, (8,))
    tl = tnn.functional.cross_entropy(t(x), y)
    dl = nn.functional.cross_entropy(d(to_dc(x)), to_dc(y))
    assert abs(dl.item() - tl.item()) < 1e-10 * max(1.0, abs(tl.item()))
    tl.backward()
    dl.backward()
    tparams = dict(t.named_parameters())
    for name, p in d.named_parameters():
        assert p.grad.dtype == dc.float64
        assert rel_err(p.grad, tparams[name].grad) < 1e-8, name
    topt.step()
    dopt.step()
    for name, p in d.named_parameters():
        assert rel_err(p.detach(), tparams[name]) < 1e-10, name
    tbufs = dict(t.named_buffers())
    for name, b in d.named_buffers():
        if name.endswith("num_batches_tracked"):
            assert int(b.item()) == int(tbufs[name]) == 1
        else:
            assert rel_err(b, tbufs[name]) < 1e-10, name
    with torch.no_grad():
        tl2 = tnn.functional.cross_entropy(t(x), y).item()
    with dc.no_grad():
        dl2 = nn.functional.cross_entropy(d(to_dc(x)), to_dc(y)).item()
    assert abs(dl2 - tl2) < 1e-10 * abs(tl2)


def test_torch_weights_load_through_safetensors(tmp_path):
    from safetensors.numpy import load_file
    from safetensors.torch import save_file

    torch.manual_seed(0)
    t = RefResNet(RefBasicBlock, [2, 2, 2, 2])
    randomise_bn_stats(t, seed=1)
    t.eval()
    path = tmp_path / "resnet18.safetensors"
    save_file(t.state_dict(), str(path))
    d = models.resnet18()
    result = d.load_state_dict(load_file(str(path)))
    assert not result.missing_keys and not result.unexpected_keys
    d.eval()
    assert int(d.layer2[0].bn1.num_batches_tracked.item()) == 7
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ty = t(x)
    np.testing.assert_allclose(d(to_dc(x)).detach().numpy(), ty.numpy(), rtol=1e-4, atol=1e-4)


# ---- LeNet-5 on scikit-learn's digits ---------------------------------------------------------

def digits_28x28():
    """sklearn's 8x8 digits (values 0..16) resized bilinearly to 20x20 and centred in 28x28
    (MNIST's layout), standardised; a fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = dc.tensor((data.images / 16.0).astype(np.float32)[:, None])
    x = nn.functional.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = np.pad(x.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)))
    x = ((x - x.mean()) / x.std()).astype(np.float32)
    return train_test_split(x, data.target.astype(np.int64), test_size=0.2, random_state=0,
                            stratify=data.target)


def random_shifts(xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Augmentation: each image rolled by up to 2 pixels each way (the border is zero)."""
    out = np.empty_like(xb)
    for j, (dy, dx) in enumerate(rng.integers(-2, 3, (len(xb), 2))):
        out[j] = np.roll(xb[j], (dy, dx), axis=(1, 2))
    return out


def test_lenet5_shapes_and_variants():
    assert tuple(models.lenet5()(dc.randn(3, 1, 28, 28)).shape) == (3, 10)
    assert tuple(models.LeNet5(input_size=32, num_classes=5)(dc.randn(3, 1, 32, 32)).shape) == (3, 5)
    with torch.device("meta"):
        assert_same_keys(models.lenet5(), RefLeNet5())
    with pytest.raises(ValueError, match="LeNet5: input_size must be 28 or 32"):
        models.LeNet5(input_size=64)


def test_lenet5_reaches_98_percent_on_digits():
    xtr, xte, ytr, yte = digits_28x28()
    dc.manual_seed(0)
    model = models.lenet5()
    opt = dc.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    epochs, batch = 30, 64
    total, step = epochs * ((len(xtr) + batch - 1) // batch), 0
    for epoch in range(epochs):
        model.train()
        perm = rng.permutation(len(xtr))
        for i in range(0, len(perm), batch):
            opt.param_groups[0]["lr"] = 1e-3 * (1 + math.cos(math.pi * step / total))  # cosine
            step += 1
            idx = perm[i:i + batch]
            xb = random_shifts(xtr[idx], rng)
            loss = nn.functional.cross_entropy(model(dc.tensor(xb)), dc.tensor(ytr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with dc.no_grad():
        pred = model(dc.tensor(xte)).argmax(1).numpy()
    acc = float((pred == yte).mean())
    assert acc >= 0.98, f"test accuracy {acc:.4f}"


def _lenet5_loss_curves(dtype, steps):
    xtr, _, ytr, _ = digits_28x28()
    xtr = xtr.astype(dtype)
    torch.manual_seed(0)
    t = RefLeNet5().to(getattr(torch, np.dtype(dtype).name))
    d = models.lenet5().double() if dtype == np.float64 else models.lenet5()
    copy_weights(d, t)
    topt = torch.optim.Adam(t.parameters(), lr=2e-3)
    dopt = dc.optim.Adam(d.parameters(), lr=2e-3)
    rng = np.random.default_rng(1)
    t_losses, d_losses = [], []
    for step in range(steps):
        idx = rng.choice(len(xtr), 64, replace=False)
        xb, yb = xtr[idx], ytr[idx]
        tl = tnn.functional.cross_entropy(t(torch.from_numpy(xb)), torch.from_numpy(yb))
        dl = nn.functional.cross_entropy(d(dc.tensor(xb)), dc.tensor(yb))
        topt.zero_grad()
        tl.backward()
        topt.step()
        dopt.zero_grad()
        dl.backward()
        dopt.step()
        t_losses.append(tl.item())
        d_losses.append(dl.item())
    return np.array(d_losses), np.array(t_losses)


def test_lenet5_follows_torch_loss_curve():
    # float64: the same math gives the same 50-step curve to near machine precision.
    d_losses, t_losses = _lenet5_loss_curves(np.float64, 50)
    assert t_losses[-10:].mean() < 0.5 * t_losses[0]  # it did learn
    np.testing.assert_allclose(d_losses, t_losses, rtol=1e-9)
    # float32: summation orders differ from oneDNN's and Adam's normalised steps amplify the
    # rounding differences (about 1e-6 after 10 steps, a few percent after 50): the first
    # steps agree closely, the rest stays on the same curve.
    d_losses, t_losses = _lenet5_loss_curves(np.float32, 50)
    np.testing.assert_allclose(d_losses[:10], t_losses[:10], rtol=1e-4)
    np.testing.assert_allclose(d_losses, t_losses, rtol=0.1)
