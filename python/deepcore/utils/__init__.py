"""Utilities: ``deepcore.utils.data`` (datasets, samplers, DataLoader) and ``plan`` (a dry run
of a model on the meta device: shapes, parameters, FLOPs and peak memory).

``data`` is imported on first use, so ``import deepcore`` doesn't pay for multiprocessing.
"""
import importlib

from .plan import Plan, plan  # noqa: F401


def __getattr__(name):
    if name == "data":
        return importlib.import_module(".data", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
