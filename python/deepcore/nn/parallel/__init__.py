"""``deepcore.nn.parallel``: ``DataParallel`` and ``DistributedDataParallel``.

deepcore runs a model on one device, so ``DataParallel`` does what PyTorch's does without
GPUs: it holds the model as ``.module`` and calls it. ``DistributedDataParallel`` trains one
replica per process of a ``deepcore.distributed`` process group (distributed.py).
"""
from __future__ import annotations

from ..modules.module import Module
from .distributed import DistributedDataParallel


class DataParallel(Module):
    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        self.module = module
        self.device_ids = [] if device_ids is None else list(device_ids)
        self.output_device = output_device
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


__all__ = ["DataParallel", "DistributedDataParallel"]
