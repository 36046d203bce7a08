"""VGG-11/13/16/19 (optionally with batch norm) with torchvision's layout and state_dict keys:
``features`` (convs, [BN,] ReLU, max-pools by index), ``avgpool`` (adaptive to 7x7) and
``classifier`` (4096-4096-num_classes with dropout), so torchvision checkpoints load directly.
For 32x32 inputs the feature map is 1x1 and the adaptive pool replicates it to 7x7, as in
torchvision."""
from __future__ import annotations

from typing import Any, Dict, List, Union

from .. import nn
from .._C import Tensor

__all__ = ["VGG", "make_layers", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
           "vgg16_bn", "vgg19", "vgg19_bn"]

cfgs: Dict[str, List[Union[str, int]]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
          "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512,
          512, 512, 512, "M"],
}


def make_layers(cfg: List[Union[str, int]], batch_norm: bool = False,
                in_channels: int = 3) -> nn.Sequential:
    layers: List[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            conv2d = nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1)
            if batch_norm:
                layers += [conv2d, nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
            else:
                layers += [conv2d, nn.ReLU(inplace=True)]
            in_channels = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """torchvision's VGG head on a ``features`` stack. Initialisation as torchvision: convs
    kaiming_normal_(fan_out, relu) with zero bias, BN 1/0, Linear N(0, 0.01) with zero bias."""

    def __init__(self, features: nn.Module, num_classes: int = 1000, init_weights: bool = True,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.constant_(m.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)                   # (N, 512, 7, 7)
        x = x.flatten(1)
        return self.classifier(x)


def _vgg(cfg: str, batch_norm: bool, **kwargs: Any) -> VGG:
    in_channels = kwargs.pop("in_channels", 3)
    return VGG(make_layers(cfgs[cfg], batch_norm=batch_norm, in_channels=in_channels), **kwargs)


def vgg11(*, batch_norm: bool = False, **kwargs: Any) -> VGG:
    """VGG-11 (configuration "A")."""
    return _vgg("A", batch_norm, **kwargs)


def vgg11_bn(**kwargs: Any) -> VGG:
    return _vgg("A", True, **kwargs)


def vgg13(*, batch_norm: bool = False, **kwargs: Any) -> VGG:
    """VGG-13 (configuration "B")."""
    return _vgg("B", batch_norm, **kwargs)


def vgg13_bn(**kwargs: Any) -> VGG:
    return _vgg("B", True, **kwargs)


def vgg16(*, batch_norm: bool = False, **kwargs: Any) -> VGG:
    """VGG-16 (configuration "D")."""
    return _vgg("D", batch_norm, **kwargs)


def vgg16_bn(**kwargs: Any) -> VGG:
    return _vgg("D", True, **kwargs)


def vgg19(*, batch_norm: bool = False, **kwargs: Any) -> VGG:
    """VGG-19 (configuration "E")."""
    return _vgg("E", batch_norm, **kwargs)


def vgg19_bn(**kwargs: Any) -> VGG:
    return _vgg("E", True, **kwargs)
