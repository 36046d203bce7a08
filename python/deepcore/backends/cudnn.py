"""``torch.backends.cudnn``: flags scripts set (``cudnn.benchmark = True``); no cuDNN here."""
from __future__ import annotations

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version() -> None:
    return None
