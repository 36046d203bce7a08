"""``torch.backends.cuda``: matmul precision flags, the BLAS library the CUDA matmul prefers,
and the SDPA kernel switches."""
from __future__ import annotations

from .. import _C


class _MatmulFlags:
    """``torch.backends.cuda.matmul``: ``allow_tf32`` is the float32 matmul precision seen as a
    flag, as in torch (True: "high", TF32 on tensor cores; False: "highest")."""

    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True

    @property
    def allow_tf32(self) -> bool:
        from . import get_float32_matmul_precision
        return get_float32_matmul_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        from . import set_float32_matmul_precision
        set_float32_matmul_precision("high" if value else "highest")


matmul = _MatmulFlags()

_BLAS = {"cublas": "cublas", "cublaslt": "cublas", "default": "cublas", "deepcore": "deepcore"}
_preferred_blas = "cublas"


def preferred_blas_library(backend: str | None = None) -> str:
    """``torch.backends.cuda.preferred_blas_library``: which library CUDA matmuls use.
    "cublas" (the default; also "cublaslt" and "default") takes cuBLAS where it is installed
    (the nvidia-cublas wheel or the system's; ``deepcore.show_config()`` says which) and the
    operands' layout suits it, deepcore's own GEMM kernels otherwise; "deepcore" always uses
    deepcore's kernels. Returns the setting in force."""
    global _preferred_blas
    if backend is not None:
        name = str(backend).lower()
        if name not in _BLAS:
            raise ValueError(f"[preferred_blas_library] unknown library {backend!r}: expected "
                             "'cublas', 'cublaslt', 'default' or 'deepcore'")
        _preferred_blas = _BLAS[name]
        if is_built():
            _C._cuda_set_blas(_preferred_blas)
    return _preferred_blas


def is_built() -> bool:
    return bool(_C._build_info()["cuda"])


def flash_sdp_enabled() -> bool:
    return False


def mem_efficient_sdp_enabled() -> bool:
    return False


def math_sdp_enabled() -> bool:
    return True


def enable_flash_sdp(enabled: bool) -> None:
    pass


def enable_mem_efficient_sdp(enabled: bool) -> None:
    pass


def enable_math_sdp(enabled: bool) -> None:
    pass
