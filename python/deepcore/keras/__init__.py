"""``deepcore.keras``: Keras' model-building and training API on deepcore.

    from deepcore import keras
    model = keras.Sequential([keras.layers.Dense(8, activation="relu", input_shape=(2,)),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=100, validation_split=0.2, callbacks=[keras.callbacks.EarlyStopping()])

Layers are channels-last like Keras. Models are ``deepcore.nn.Module``s, so they also work
with plain deepcore training code.
"""
from . import callbacks, layers, losses, metrics, mixed_precision, optimizers  # noqa: F401
from .layers import Input  # noqa: F401
from .models import Model, Sequential, load_model  # noqa: F401
from . import models, saving  # noqa: F401

__all__ = ["Input", "Model", "Sequential", "load_model", "layers", "callbacks", "losses",
           "metrics", "mixed_precision", "optimizers", "models", "saving"]
