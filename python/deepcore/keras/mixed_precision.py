"""``deepcore.keras.mixed_precision``: Keras 3's dtype policies.

    from deepcore import keras
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax", dtype="float32")])

A policy names a layer's *compute* dtype (what its outputs are and its arithmetic runs in) and
its *variable* dtype (what its weights are stored in). ``"float32"``, ``"float64"``,
``"bfloat16"`` and ``"float16"`` use one dtype for both; ``"mixed_bfloat16"`` and
``"mixed_float16"`` keep the variables float32 and compute in the 16-bit type. A layer takes
the global policy when it is created, unless given ``dtype=`` (a policy or its name).

Note [Keras autocasting]
What a layer does with its policy is Keras 3's (keras/src/layers/layer.py, ``__call__``):
- floating-point inputs are cast to the compute dtype as the layer is called (integer inputs
  are left alone; functional and Sequential models do not cast, their layers do);
- while the layer computes, reading one of its float weights gives the weight cast to the
  compute dtype (Keras' ``AutocastScope``). The cast is a differentiable op, so the weight
  itself stays float32 and gets a float32 gradient;
- layers with ``autocast = False`` skip both (Embedding, LayerNormalization: they cast their
  result to the compute dtype themselves), and BatchNormalization normalizes in float32.
Keras losses and metrics compute in float32, so ``fit`` casts the predictions to float32 before
the loss. Under ``"mixed_float16"``, ``compile`` wraps the optimizer in a
``keras.optimizers.LossScaleOptimizer`` (dynamic loss scaling, deepcore.amp.GradScaler's
algorithm with Keras' constants) so small float16 gradients do not flush to zero.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Optional

import numpy as np

import deepcore as dc
from ..nn.parameter import Parameter
from .optimizers import LossScaleOptimizer

__all__ = ["Policy", "DTypePolicy", "set_global_policy", "global_policy",
           "set_dtype_policy", "dtype_policy", "LossScaleOptimizer"]

# policy name -> (compute dtype, variable dtype)
_POLICIES = {
    "float32": ("float32", "float32"), "float64": ("float64", "float64"),
    "bfloat16": ("bfloat16", "bfloat16"), "float16": ("float16", "float16"),
    "mixed_bfloat16": ("bfloat16", "float32"), "mixed_float16": ("float16", "float32"),
}
_DTYPES = {"float32": dc.float32, "float64": dc.float64, "bfloat16": dc.bfloat16,
           "float16": dc.float16}


def _name_of(name) -> str:
    """A policy name from a name or a deepcore dtype (``dc.bfloat16`` -> ``"bfloat16"``)."""
    if isinstance(name, dc.dtype):
        name = str(name).replace("deepcore.", "")
    if not isinstance(name, str):
        raise TypeError(f"[keras.mixed_precision.Policy] name must be a string such as "
                        f"'mixed_bfloat16', got {name!r} (of type {type(name).__name__})")
    if name not in _POLICIES:
        raise ValueError(f"[keras.mixed_precision.Policy] cannot convert {name!r} to a dtype "
                         f"policy; valid policies: {', '.join(_POLICIES)}")
    return name


class Policy:
    """Keras' ``DTypePolicy``: ``Policy("mixed_bfloat16")`` computes in bfloat16 and keeps
    variables in float32. ``Policy()`` is a copy of the global policy."""

    def __init__(self, name=None) -> None:
        self._name = global_policy().name if name is None else _name_of(name)
        self._compute_dtype, self._variable_dtype = _POLICIES[self._name]

    @property
    def name(self) -> str:
        return self._name

    @property
    def compute_dtype(self) -> str:
        return self._compute_dtype

    @property
    def variable_dtype(self) -> str:
        return self._variable_dtype

    @property
    def quantization_mode(self) -> None:
        return None

    @property
    def _compute(self) -> dc.dtype:
        return _DTYPES[self._compute_dtype]

    @property
    def _variable(self) -> dc.dtype:
        return _DTYPES[self._variable_dtype]

    def get_config(self) -> dict:
        return {"name": self._name}

    @classmethod
    def from_config(cls, config: dict) -> Policy:
        return cls(**config)

    def __eq__(self, other) -> bool:
        return isinstance(other, Policy) and other._name == self._name

    def __hash__(self) -> int:
        return hash(("Policy", self._name))

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self._name}">'


DTypePolicy = Policy

_global = threading.local()  # Keras keeps the global policy per thread as well


def set_global_policy(policy) -> None:
    """Sets the policy layers created from now on take (a ``Policy`` or its name)."""
    if not isinstance(policy, (Policy, str)):
        raise ValueError(  # noqa: TRY004  (Keras 3 raises ValueError here)
            f"[keras.mixed_precision.set_global_policy] expected a policy name (such as "
            f"'mixed_bfloat16') or a Policy, got {policy!r} (of type {type(policy).__name__})")
    _global.policy = policy if isinstance(policy, Policy) else Policy(policy)


def global_policy() -> Policy:
    """The global policy (``Policy("float32")`` until ``set_global_policy`` is called)."""
    policy = getattr(_global, "policy", None)
    if policy is None:
        policy = _global.policy = Policy("float32")
    return policy


set_dtype_policy = set_global_policy  # Keras 3's newer names
dtype_policy = global_policy


def get(identifier) -> Policy:
    """The policy a layer's ``dtype=`` argument names: None (the global policy), a Policy, a
    name, a deepcore dtype, or a Keras config ``{"class_name": "DTypePolicy", "config": ...}``."""
    if identifier is None:
        return global_policy()
    if isinstance(identifier, Policy):
        return identifier
    if isinstance(identifier, dict):
        config = identifier.get("config")
        if identifier.get("class_name") != "DTypePolicy" or not isinstance(config, dict):
            raise ValueError(f"[keras.layers] dtype must be a policy name or a DTypePolicy "
                             f"config, got {identifier!r}")
        return Policy.from_config(config)
    if isinstance(identifier, (str, dc.dtype)):
        return Policy(identifier)
    raise TypeError(f"[keras.layers] dtype must be a policy name (such as 'mixed_bfloat16'), a "
                    f"Policy or a deepcore dtype, got {identifier!r} (of type "
                    f"{type(identifier).__name__})")


# ---- autocasting inside a layer's call (Note [Keras autocasting]) ------------------------------

class _Scope(threading.local):
    dtype: Optional[dc.dtype] = None  # what float weights read as; None: as they are
    cache: Optional[dict] = None  # id(weight) -> (weight, cast), one cast per weight and call


_SCOPE = _Scope()


@contextlib.contextmanager
def _variable_scope(dtype):
    saved = _SCOPE.dtype, _SCOPE.cache
    _SCOPE.dtype, _SCOPE.cache = dtype, {}
    try:
        yield
    finally:
        _SCOPE.dtype, _SCOPE.cache = saved


def scope_for(dtype):
    """The context a layer computes in: float weights read as ``dtype`` (None: as stored)."""
    if dtype == _SCOPE.dtype:
        return contextlib.nullcontext()
    return _variable_scope(dtype)


def read_variable(value):
    """``value`` as the layer computing now reads it: a float ``Parameter`` cast to the scope's
    dtype (once per call), anything else unchanged."""
    dtype = _SCOPE.dtype
    if dtype is None or not isinstance(value, Parameter) or value.dtype == dtype \
            or not value.dtype.is_floating_point:
        return value
    hit = _SCOPE.cache.get(id(value))
    if hit is None:
        hit = _SCOPE.cache[id(value)] = (value, value.to(dtype))
    return hit[1]


def cast_inputs(value, dtype):
    """Floating tensors (and NumPy arrays) in ``value`` -- a tensor or nested lists/tuples --
    cast to ``dtype``; everything else unchanged."""
    if isinstance(value, dc.Tensor):
        return value.to(dtype) if value.dtype.is_floating_point and value.dtype != dtype \
            else value
    if isinstance(value, (list, tuple)):
        return type(value)(cast_inputs(v, dtype) for v in value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return dc.as_tensor(value).to(dtype)
    return value


class AutocastVariables:
    """Mixed into a module whose weights a Keras layer reads in its call: under a layer's
    scope, ``self.kernel`` is the kernel cast to the compute dtype."""

    def __getattr__(self, name: str):
        return read_variable(super().__getattr__(name))
