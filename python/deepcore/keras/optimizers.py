"""Keras optimizers: configurations with Keras' names and defaults that become a
``deepcore.optim`` optimizer once the model's parameters exist.

``compile(optimizer="adam")`` uses Keras' default learning rates (SGD 0.01, the others
0.001) and epsilon 1e-7. A ready ``deepcore.optim.Optimizer`` is used as given.
"""
from __future__ import annotations

from typing import Optional

from .. import optim

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get"]


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


_NAMES = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
_CLASSES = {cls.__name__: cls for cls in _NAMES.values()}


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
    if isinstance(opt, Optimizer) and type(opt) in _CLASSES.values():
        return {"class_name": type(opt).__name__, "config": opt.get_config()}
    return None
