"""The op database: one OpInfo per registered op, driving tests/test_ops.py.

Every entry is keyed by the op's registry name (``deepcore._C._op_registry()``) and says how to
call the op in deepcore and in PyTorch (by default the attribute of that name on ``deepcore`` /
``torch``, then on ``nn.functional``, then the Tensor method), which dtypes it takes, how to
draw sample inputs from a seeded numpy RNG, its tolerances, and which checks apply to it:
forward parity, layouts, gradients and finite differences, second derivatives, the ISA sweep
and the meta device. test_registry.py checks that every registered op has an entry here.

Samples hold numpy arrays, not tensors: the tests build each array in each library and in each
layout (contiguous, transposed, sliced with a step, expanded from a size-1 dim), so one sample
serves every check. A sample argument may be an array, a list of arrays (cat, stack), a DType
(converted to the library's dtype) or any other Python value, passed as is.

Tolerances come from the arithmetic: float32 elementwise results are a few ulps from the exact
value (rtol 1e-5 leaves room for ~80 ulps); a sum or a dot of n terms may lose up to about n
ulps, so reductions and matmul scale their tolerances by the reduction length (`reduction_tols`).

The entries live in one module per family group (elementwise.py, tensor_ops.py, nn.py,
attention.py, composites.py) on top of core.py; importing them in that order fills OPS in the
order the tests are generated.
"""
from __future__ import annotations

# Registration order is test order: elementwise, tensor_ops, nn, attention, composites.
from . import elementwise, tensor_ops, nn, attention, composites  # noqa: F401, I001
from .core import OPS, DType, OpInfo, Sample, registry_name

__all__ = ["OPS", "OPS_BY_NAME", "DType", "OpInfo", "Sample", "case_id", "registry_name"]

OPS_BY_NAME: dict[str, list[OpInfo]] = {}
for _info in OPS:
    OPS_BY_NAME.setdefault(_info.name, []).append(_info)


def case_id(info: OpInfo) -> str:
    """A stable test id: the label, with a suffix for the second and later entries of it."""
    same = [i for i in OPS_BY_NAME[info.name] if i.label == info.label]
    k = same.index(info)
    return info.label if k == 0 else f"{info.label}-{k}"
