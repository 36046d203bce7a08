"""Utilities: ``deepcore.utils.data`` (datasets, samplers, DataLoader).

``data`` is imported on first use, so ``import deepcore`` doesn't pay for multiprocessing.
"""
import importlib


def __getattr__(name):
    if name == "data":
        return importlib.import_module(".data", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
