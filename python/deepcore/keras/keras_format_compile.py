"""Compile configs and optimizer state of Keras 3 files (Note [Keras 3 model files] in
keras_format.py): Keras' optimizer, loss and metric entries <-> deepcore.keras', and Keras'
optimizer variables <-> deepcore.optim state.

Note [Keras optimizer variables]
Keras saves an optimizer's variables in ``optimizer/vars``: "0" the iteration count, "1" the
learning rate, then its slots, made per ``add_optimizer_variables`` call -- one call
interleaves its slots per trainable variable (Adam: m0, v0, m1, v1, ...), calls follow one
another (Adam's amsgrad maxima, RMSprop's momentum and centred mean come after). Trainable
variables are in the order of the weights file, frozen layers and BatchNormalization's
moving statistics left out. The slots map onto deepcore.optim's (PyTorch's) state:
  Adam/AdamW  momentum, velocity, velocity_hat = exp_avg, exp_avg_sq, max_exp_avg_sq
  Adagrad     accumulator = sum
  RMSprop     velocity = square_avg, average_gradient = grad_avg,
              momentum = lr * momentum_buffer (Keras folds the rate into its buffer)
  SGD         momentum = -lr * momentum_buffer (Keras' m = momentum * m - lr * g, PyTorch's
              b = momentum * b + g)
The iteration count is each parameter's ``step``. An optimizer's epsilon enters its update
as in PyTorch (deepcore.keras.optimizers' convention), not inside Keras' square root: after a
restore the next steps differ from Keras' by terms of order epsilon.
"""
from __future__ import annotations

import numpy as np

import deepcore as dc

from ..nn.parameter import Parameter
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .keras_format_layers import is_keras_module

__all__ = [
    "compile_from_keras",
    "compile_to_keras",
    "optimizer_arrays",
    "optimizer_layout",
    "set_optimizer_state",
    "trainable_in_order",
]

# Keras optimizer options deepcore's keras optimizers take, per class.
_OPT_OPTIONS = {
    "SGD": ("learning_rate", "momentum", "nesterov"),
    "Adam": ("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"),
    "AdamW": ("learning_rate", "weight_decay", "beta_1", "beta_2", "epsilon", "amsgrad"),
    "RMSprop": ("learning_rate", "rho", "momentum", "epsilon", "centered"),
    "Adagrad": ("learning_rate", "initial_accumulator_value", "epsilon"),
}
_OPT_IGNORED = ("name", "ema_momentum", "ema_overwrite_frequency", "jit_compile",
                "is_legacy_optimizer")
_LOSS_OPTIONS = {"BinaryCrossentropy": ("from_logits",),
                 "CategoricalCrossentropy": ("from_logits",),
                 "SparseCategoricalCrossentropy": ("from_logits",),
                 "MeanSquaredError": (), "MeanAbsoluteError": (), "Huber": ("delta",)}
# Keras option -> the value deepcore computes with (else the piece is skipped).
_LOSS_FIXED = {"reduction": ("sum_over_batch_size", None), "label_smoothing": (0, 0.0, None),
               "axis": (-1, None), "ignore_class": (None,)}
_METRIC_CLASSES = {"BinaryAccuracy": "binary_accuracy",
                   "CategoricalAccuracy": "categorical_accuracy",
                   "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
                   "MeanSquaredError": "mean_squared_error",
                   "MeanAbsoluteError": "mean_absolute_error"}


def _optimizer_from_keras(spec, skipped: list[str]):
    if isinstance(spec, str):
        try:
            return optimizers_mod.get(spec)
        except ValueError:
            skipped.append(f"optimizer {spec!r}")
            return None
    cls = spec.get("class_name") if isinstance(spec, dict) else None
    config = spec.get("config") if isinstance(spec, dict) else None
    if cls not in _OPT_OPTIONS or not is_keras_module(spec.get("module")) or \
            not isinstance(config, dict):
        skipped.append(f"optimizer {cls or spec!r}")
        return None
    kwargs, bad = {}, []
    for key, value in config.items():
        if key in _OPT_OPTIONS[cls]:
            if key == "learning_rate" and not isinstance(value, (int, float)):
                bad.append("a learning-rate schedule")
            elif value is not None:
                kwargs[key] = value
        elif key == "weight_decay" and value:
            # Keras decays weights apart from the gradient; deepcore's SGD/Adam/... add it to
            # the gradient (torch's convention), so only AdamW means the same.
            bad.append(f"weight_decay={value}")
        elif key not in _OPT_IGNORED and value not in (None, False):
            bad.append(f"{key}={value!r}")
    if bad:
        skipped.append(f"optimizer {cls} ({', '.join(bad)})")
        return None
    return getattr(optimizers_mod, cls)(**kwargs)


def _loss_from_keras(spec, skipped: list[str]):
    if isinstance(spec, dict) and spec.get("class_name") == "function" and \
            is_keras_module(spec.get("module")):
        spec = spec.get("config")
    if isinstance(spec, str):
        try:
            return losses_mod.get(spec)
        except ValueError:
            skipped.append(f"loss {spec!r}")
            return None
    cls = spec.get("class_name") if isinstance(spec, dict) else None
    config = spec.get("config") if isinstance(spec, dict) else None
    if cls not in _LOSS_OPTIONS or not is_keras_module(spec.get("module")) or \
            not isinstance(config, dict):
        skipped.append(f"loss {cls or str(spec)[:80]!r}")
        return None
    bad = [f"{k}={config[k]!r}" for k, ok in _LOSS_FIXED.items()
           if k in config and config[k] not in ok]
    bad += [f"{k}={v!r}" for k, v in config.items() if k not in _LOSS_FIXED and
            k not in _LOSS_OPTIONS[cls] and k not in ("name", "dtype") and v is not None]
    if bad:
        skipped.append(f"loss {cls} ({', '.join(bad)})")
        return None
    return getattr(losses_mod, cls)(**{k: config[k] for k in _LOSS_OPTIONS[cls]
                                       if k in config})


def _metric_from_keras(spec, skipped: list[str]):
    if isinstance(spec, dict) and spec.get("class_name") == "function" and \
            is_keras_module(spec.get("module")):
        spec = spec.get("config")
    if isinstance(spec, str):
        try:
            metrics_mod.get(spec)
            return spec
        except ValueError:
            skipped.append(f"metric {spec!r}")
            return None
    cls = spec.get("class_name") if isinstance(spec, dict) else None
    config = (spec.get("config") if isinstance(spec, dict) else None) or {}
    name = _METRIC_CLASSES.get(cls)
    if name is None or not is_keras_module(spec.get("module")) or \
            config.get("threshold", 0.5) != 0.5:
        skipped.append(f"metric {cls or str(spec)[:80]!r}")
        return None
    return name


def compile_from_keras(cc):
    """``(compile kwargs, skipped pieces)``; kwargs is None when anything is skipped."""
    skipped: list[str] = []
    optimizer = _optimizer_from_keras(cc.get("optimizer", "rmsprop"), skipped)
    loss = _loss_from_keras(cc["loss"], skipped) if cc.get("loss") is not None else None
    metrics = cc.get("metrics") or []
    if not isinstance(metrics, list):
        skipped.append("per-output metrics")
        metrics = []
    metrics = [_metric_from_keras(m, skipped) for m in metrics]
    for key in ("loss_weights", "weighted_metrics"):
        if cc.get(key):
            skipped.append(key)
    if skipped:
        return None, skipped
    return {"optimizer": optimizer, "loss": loss, "metrics": metrics}, []


def compile_to_keras(model) -> tuple[dict | None, list[str]]:
    if not model.compiled:
        return None, []
    problems = []
    spec = model._optimizer_spec
    optimizer = None
    cls = type(spec).__name__
    if isinstance(spec, optimizers_mod.Optimizer) and cls in _OPT_OPTIONS and \
            type(spec) is getattr(optimizers_mod, cls):
        config = {k: getattr(spec, k) for k in _OPT_OPTIONS[cls]}
        if cls != "AdamW" and getattr(spec, "weight_decay", None):
            problems.append(f"optimizer {cls} with weight_decay={spec.weight_decay} (deepcore "
                            "adds it to the gradient; Keras decays apart from it)")
        optimizer = {"module": "keras.optimizers", "class_name": cls, "config": config,
                     "registered_name": None}
    else:
        problems.append(f"optimizer {type(spec).__name__}")
    loss = None
    if model.loss is not None:
        loss = losses_mod.serialize(model.loss)
        if loss is None or loss["class_name"] not in _LOSS_OPTIONS:
            problems.append(f"loss {getattr(model.loss, 'name', model.loss)!r}")
        else:
            loss = {"module": "keras.losses", **loss, "registered_name": None}
    metrics = []
    for m in model._metrics:
        name = metrics_mod.serialize(m)
        if name is None:
            problems.append(f"metric {m.name!r}")
        metrics.append(name)
    if problems:
        return None, problems
    return {"optimizer": optimizer, "loss": loss, "loss_weights": None, "metrics": metrics,
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
            "jit_compile": False}, []




# ---- optimizer state (Note [Keras optimizer variables]) ---------------------------------------

def _slot_calls(spec) -> list[list[tuple[str, float]]]:
    """Per ``add_optimizer_variables`` call, its slots as (deepcore state key, Keras value
    per deepcore value)."""
    cls = type(spec).__name__
    lr = float(spec.learning_rate)
    if cls in ("Adam", "AdamW"):
        return [[("exp_avg", 1.0), ("exp_avg_sq", 1.0)]] + \
            ([[("max_exp_avg_sq", 1.0)]] if spec.amsgrad else [])
    if cls == "SGD":
        return [[("momentum_buffer", -lr)]] if spec.momentum else []
    if cls == "RMSprop":
        return [[("square_avg", 1.0)]] + ([[("momentum_buffer", lr)]] if spec.momentum else []) \
            + ([[("grad_avg", 1.0)]] if spec.centered else [])
    if cls == "Adagrad":
        return [[("sum", 1.0)]]
    return []


def trainable_in_order(slots) -> list:
    """The trainable parameters in the order of the weights file."""
    return [t for _, _, _, tensors in slots for _, t in tensors
            if isinstance(t, Parameter) and t.requires_grad]


def optimizer_layout(spec, params) -> list[tuple[str | None, int, tuple, float]] | None:
    """``[(state key, parameter index, shape, scale)]`` for each variable Keras saves, or None
    for an optimizer without a Keras form (the first two are the iteration count and the
    learning rate)."""
    if type(spec).__name__ not in _OPT_OPTIONS or float(spec.learning_rate) == 0.0:
        return None
    layout = [("iterations", -1, (), 1.0), ("learning_rate", -1, (), 1.0)]
    for call in _slot_calls(spec):
        for i, p in enumerate(params):
            layout += [(key, i, tuple(p.shape), scale) for key, scale in call]
    return layout


def optimizer_arrays(model, params) -> list[np.ndarray] | None:
    """The variables Keras saves for ``model``'s optimizer, from deepcore's state."""
    opt, spec = model.optimizer, getattr(model, "_optimizer_spec", None)
    layout = optimizer_layout(spec, params) if opt is not None else None
    if layout is None:
        return None
    steps = [float(s["step"]) for s in (opt.state.get(p, {}) for p in params) if "step" in s]
    arrays = [np.array(int(steps[0]) if steps else 0, dtype=np.int64),
              np.array(spec.learning_rate, dtype=np.float32)]
    for key, i, shape, scale in layout[2:]:
        value = opt.state.get(params[i], {}).get(key)
        if value is None:  # no step taken yet: Keras' initial value
            fill = spec.initial_accumulator_value if key == "sum" else 0.0
            arrays.append(np.full(shape, fill, dtype=np.float32))
        else:
            arrays.append((value.detach().numpy() * scale).astype(np.float32))
    return arrays


def set_optimizer_state(model, params, layout, arrays) -> None:
    """Loads Keras' optimizer variables into ``model.optimizer`` (built for ``params``)."""
    opt = model.optimizer
    index = {id(p): i for i, p in enumerate(p for g in opt.param_groups for p in g["params"])}
    iterations = float(np.asarray(arrays[0]))
    state = {}
    for (key, i, _, scale), arr in zip(layout[2:], arrays[2:]):
        entry = state.setdefault(index[id(params[i])], {})
        if key != "momentum_buffer" and "step" not in entry:
            entry["step"] = dc.tensor(iterations, dtype=dc.float32)
        entry[key] = dc.from_numpy(np.ascontiguousarray(np.asarray(arr, dtype=np.float32)
                                                        / scale))
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
