"""``torch.backends.cuda``: matmul precision flags and the SDPA kernel switches."""
from __future__ import annotations

from types import SimpleNamespace

from .. import _C

# torch.backends.cuda.matmul.allow_tf32 = True (set-up boilerplate); deepcore has no TF32 path.
matmul = SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                         allow_bf16_reduced_precision_reduction=True)


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
