"""deepcore.nn: neural-network building blocks (functional ops for now)."""
from . import functional  # noqa: F401
