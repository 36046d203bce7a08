"""Keras metrics: the training loop's metrics (``deepcore.train.metrics``), under Keras' names.

Stateful objects with ``update_state(y_true, y_pred, sample_weight=None)``, ``result()`` and
``reset_state()``; ``get`` resolves ``compile(metrics=[...])`` entries.
"""
from ..train.metrics import *  # noqa: F401,F403
from ..train.metrics import __all__  # noqa: F401
from ..train.metrics import _NAMES, _Accuracy, serialize  # noqa: F401
