"""ONNX interop: ``deepcore.onnx.export`` writes a model's traced graph as an ONNX file (through
the ``onnx`` package), and ``deepcore.onnx.load`` runs an ONNX file on deepcore's kernels as an
``nn.Module``. Both need ``pip install deepcore[onnx]``; they are imported on first use."""
from __future__ import annotations

__all__ = ["export", "load", "UnsupportedOperatorError"]


def __getattr__(name: str):
    if name == "export":
        from ._exporter import export
        return export
    if name == "UnsupportedOperatorError":
        from ._exporter import UnsupportedOperatorError
        return UnsupportedOperatorError
    if name == "load":
        from ._importer import load
        return load
    raise AttributeError(f"module 'deepcore.onnx' has no attribute '{name}'")
