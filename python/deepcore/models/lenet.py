"""LeNet-5 (LeCun et al., 1998) in its common modern form.

Variant: ReLU activations and 2x2 max pooling instead of the paper's scaled tanh, trainable
subsampling and partially connected C3 layer; everything else is the classic layout:

    conv 5x5, 6 maps -> ReLU -> max-pool 2 -> conv 5x5, 16 maps -> ReLU -> max-pool 2
    -> fc 400->120 -> ReLU -> fc 120->84 -> ReLU -> fc 84->num_classes

``input_size=32`` is the paper's 32x32 input (conv1 unpadded: 32 -> 28 -> 14 -> 10 -> 5);
``input_size=28`` (MNIST-sized, the default) pads conv1 by 2 so the feature maps are the same.
"""
from __future__ import annotations

from .. import nn
from .._C import Tensor

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """LeNet-5 for (N, in_channels, input_size, input_size) images; ``features`` (the conv
    stack) and ``classifier`` (the three fully connected layers)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 input_size: int = 28) -> None:
        super().__init__()
        if input_size not in (28, 32):
            raise ValueError(f"LeNet5: input_size must be 28 or 32, got {input_size}")
        self.input_size = input_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2 if input_size == 28 else 0),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)                  # (N, 16, 5, 5)
        x = x.flatten(1)                      # (N, 400)
        return self.classifier(x)


def lenet5(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> LeNet5:
    return LeNet5(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
