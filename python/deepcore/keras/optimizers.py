"""Keras optimizers: configurations with Keras' names and defaults that become a
``deepcore.optim`` optimizer once the model's parameters exist.

``compile(optimizer="adam")`` uses Keras' default learning rates (SGD 0.01, the others
0.001) and epsilon 1e-7. A ready ``deepcore.optim.Optimizer`` is used as given.
``LossScaleOptimizer`` adds Keras' dynamic loss scaling to any of them (for float16 training,
deepcore/keras/mixed_precision.py).
"""
from __future__ import annotations

from typing import Optional

from .. import optim

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "LossScaleOptimizer",
           "get"]


class Optimizer:
    """Holds the hyperparameters; ``build(params)`` makes the deepcore optimizer."""

    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)

    def build(self, params) -> optim.Optimizer:
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(vars(self))


class SGD(Optimizer):
    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: Optional[float] = None):
        super().__init__(learning_rate)
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay

    def build(self, params):
        return optim.SGD(params, lr=self.learning_rate, momentum=self.momentum,
                         nesterov=self.nesterov, weight_decay=self.weight_decay or 0.0)


class Adam(Optimizer):
    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False,
                 weight_decay: Optional[float] = None):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.amsgrad, self.weight_decay = amsgrad, weight_decay

    def build(self, params):
        return optim.Adam(params, lr=self.learning_rate, betas=(self.beta_1, self.beta_2),
                          eps=self.epsilon, amsgrad=self.amsgrad,
                          weight_decay=self.weight_decay or 0.0)


class AdamW(Adam):
    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay)

    def build(self, params):
        return optim.AdamW(params, lr=self.learning_rate, betas=(self.beta_1, self.beta_2),
                           eps=self.epsilon, amsgrad=self.amsgrad,
                           weight_decay=self.weight_decay)


class RMSprop(Optimizer):
    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False,
                 weight_decay: Optional[float] = None):
        super().__init__(learning_rate)
        self.rho, self.momentum, self.epsilon = rho, momentum, epsilon
        self.centered, self.weight_decay = centered, weight_decay

    def build(self, params):
        return optim.RMSprop(params, lr=self.learning_rate, alpha=self.rho, eps=self.epsilon,
                             momentum=self.momentum, centered=self.centered,
                             weight_decay=self.weight_decay or 0.0)


class Adagrad(Optimizer):
    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, weight_decay: Optional[float] = None):
        super().__init__(learning_rate)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon
        self.weight_decay = weight_decay

    def build(self, params):
        return optim.Adagrad(params, lr=self.learning_rate, eps=self.epsilon,
                             initial_accumulator_value=self.initial_accumulator_value,
                             weight_decay=self.weight_decay or 0.0)


class LossScaleOptimizer(Optimizer):
    """Keras' dynamic loss scaling around ``inner_optimizer`` (a keras optimizer, its name, or
    a deepcore optimizer). The loss is multiplied by the scale before ``backward`` and the
    gradients divided by it before the step; a step whose gradients hold inf/NaN is skipped and
    halves the scale, and ``dynamic_growth_steps`` clean steps in a row double it. That is
    ``deepcore.amp.GradScaler``'s algorithm, which does the work: ``build`` makes the inner
    deepcore optimizer and ``self.scaler``, and the model's training step uses the scaler.
    ``compile`` wraps the optimizer in one under the "mixed_float16" policy, as Keras does."""

    def __init__(self, inner_optimizer, initial_scale: float = 2.0 ** 15,
                 dynamic_growth_steps: int = 2000):
        inner = get(inner_optimizer)
        if isinstance(inner, LossScaleOptimizer):
            raise TypeError("[LossScaleOptimizer] inner_optimizer is already a "
                            "LossScaleOptimizer")
        initial_scale = float(initial_scale)
        if not 0.0 < initial_scale < float("inf"):
            raise ValueError(f"[LossScaleOptimizer] initial_scale must be a positive finite "
                             f"number, got {initial_scale!r}")
        if isinstance(dynamic_growth_steps, bool) or not isinstance(dynamic_growth_steps, int):
            raise TypeError(f"[LossScaleOptimizer] dynamic_growth_steps must be an int, got "
                            f"{dynamic_growth_steps!r}")
        if dynamic_growth_steps < 1:
            raise ValueError(f"[LossScaleOptimizer] dynamic_growth_steps must be >= 1, got "
                             f"{dynamic_growth_steps}")
        self.inner_optimizer = inner
        self.initial_scale = initial_scale
        self.dynamic_growth_steps = dynamic_growth_steps
        self.scaler = None

    @property
    def learning_rate(self) -> float:
        inner = self.inner_optimizer
        if isinstance(inner, optim.Optimizer):
            return float(inner.param_groups[0]["lr"])
        return inner.learning_rate

    @property
    def dynamic_scale(self) -> float:
        """The loss scale now (``initial_scale`` until the model is built)."""
        return self.scaler.get_scale() if self.scaler is not None else self.initial_scale

    def scale_loss(self, loss):
        return loss * self.dynamic_scale

    def build(self, params) -> optim.Optimizer:
        from ..amp import GradScaler
        inner = self.inner_optimizer
        opt = inner if isinstance(inner, optim.Optimizer) else inner.build(params)
        self.scaler = GradScaler("cpu", init_scale=self.initial_scale, growth_factor=2.0,
                                 backoff_factor=0.5, growth_interval=self.dynamic_growth_steps)
        return opt

    def get_config(self) -> dict:
        return {"inner_optimizer": serialize(self.inner_optimizer),
                "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}


_NAMES = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
_CLASSES = {cls.__name__: cls for cls in list(_NAMES.values()) + [LossScaleOptimizer]}


def get(identifier):
    """A Keras optimizer config (from a name or itself), or a deepcore optimizer as given."""
    if isinstance(identifier, (Optimizer, optim.Optimizer)):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier.lower())
        if cls is None:
            raise ValueError(f"[compile] unknown optimizer {identifier!r}; known: "
                             f"{sorted(_NAMES)}")
        return cls()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"[load_model] unknown optimizer class "
                             f"{identifier.get('class_name')!r}")
        return cls(**identifier.get("config", {}))
    raise TypeError(f"[compile] optimizer must be a name, a keras optimizer or a "
                    f"deepcore.optim.Optimizer, got {type(identifier).__name__}")


def serialize(opt) -> Optional[dict]:
    if isinstance(opt, LossScaleOptimizer) and serialize(opt.inner_optimizer) is None:
        return None  # around a deepcore optimizer, which has no config
    if isinstance(opt, Optimizer) and type(opt) in _CLASSES.values():
        return {"class_name": type(opt).__name__, "config": opt.get_config()}
    return None
