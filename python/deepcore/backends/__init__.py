"""``deepcore.backends``: the backend flags PyTorch programs set or query.

Scripts write ``torch.backends.cuda.matmul.allow_tf32 = True`` or
``import torch.backends.cudnn as cudnn; cudnn.benchmark = True`` as set-up boilerplate, and
ask ``torch.backends.mps.is_available()`` when choosing a device. The flags are kept so they
read back what was written. Of them the float32 matmul precision (and ``cuda.matmul.allow_tf32``,
the same setting as a flag) steers the CUDA GEMM to TF32, and
``cuda.preferred_blas_library`` chooses between cuBLAS and deepcore's GEMM; deepcore has no
cuDNN or MPS paths.
"""
from __future__ import annotations

from .. import _C
from . import cuda, cudnn, mkldnn, mps  # noqa: F401

_float32_matmul_precision = "highest"


def set_float32_matmul_precision(precision: str) -> None:
    """``torch.set_float32_matmul_precision``: "highest", "high" or "medium". "highest" (the
    default) computes float32 matmuls in full float32; "high" and "medium" let the CUDA GEMM
    run them on tensor cores in TF32, as torch does (csrc/core/matmul_precision.h). The cpu
    computes in float32 whatever the setting."""
    global _float32_matmul_precision
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision '{precision}': expected 'highest', 'high' or "
                           "'medium'")
    _C._set_float32_matmul_precision(precision)
    _float32_matmul_precision = precision


def get_float32_matmul_precision() -> str:
    return _float32_matmul_precision
