"""``deepcore.backends``: the backend flags PyTorch programs set or query.

Scripts write ``torch.backends.cuda.matmul.allow_tf32 = True`` or
``import torch.backends.cudnn as cudnn; cudnn.benchmark = True`` as set-up boilerplate, and
ask ``torch.backends.mps.is_available()`` when choosing a device. The flags are kept so they
read back what was written; deepcore's kernels have no TF32, cuDNN or MPS paths for them to
steer.
"""
from __future__ import annotations

from . import cuda, cudnn, mkldnn, mps  # noqa: F401

_float32_matmul_precision = "highest"


def set_float32_matmul_precision(precision: str) -> None:
    """``torch.set_float32_matmul_precision``: "highest", "high" or "medium". Recorded and read
    back; deepcore's float32 matmuls always compute in full float32 ("highest")."""
    global _float32_matmul_precision
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision '{precision}': expected 'highest', 'high' or "
                           "'medium'")
    _float32_matmul_precision = precision


def get_float32_matmul_precision() -> str:
    return _float32_matmul_precision
