"""One Keras 3 layer config <-> one deepcore.keras layer, and where its weights sit in a Keras
weights file. ``keras_format`` walks models; this module knows single layers.

Each supported class has a row in ``_CODECS``: ``read(cfg)`` turns Keras' config into the
deepcore constructor's keyword arguments, ``write(layer)`` does the reverse, and
``weight_groups(layer)`` lists the tensors in Keras' variable order (see Note [Keras 3 model
files] in keras_format.py). Reading is strict: every option of the Keras config is either
used, known not to change what the layer computes (initializers, regularizers, seeds), or
must hold its default -- anything else raises ``NotImplementedError`` naming the layer, its
class and the option, so a file never loads into a model that computes something else.
"""
from __future__ import annotations

import re
import warnings
from typing import Any, Callable

from ..serialization import SerializationError
from . import layers as L
from .layers_recurrent import _RNN

__all__ = ["is_keras_module", "keras_snake", "layer_error", "read_layer", "weight_groups",
           "write_layer"]

# Options that change only training (penalties, projections after each step), never what a
# loaded model computes: dropped with a warning when set.
_TRAINING_ONLY = re.compile(r".*_(regularizer|constraint)$|^noise_shape$")
# Options without effect on a model whose weights come from the file, or on deepcore.
_IGNORED = {"seed", "synchronized", "zero_output_for_mask", "unroll", "use_cudnn",
            "renorm_momentum", "renorm_clipping", "autocast", "input_length"}
# Keras' initializer classes deepcore.keras has under a name, with their default configs: an
# initializer only matters before weights are loaded, so others fall back to the layer default.
_INITIALIZERS = {
    "Zeros": ("zeros", {}), "Ones": ("ones", {}),
    "GlorotUniform": ("glorot_uniform", {}), "GlorotNormal": ("glorot_normal", {}),
    "HeUniform": ("he_uniform", {}), "HeNormal": ("he_normal", {}),
    "LecunNormal": ("lecun_normal", {}), "Orthogonal": ("orthogonal", {"gain": 1.0}),
    "RandomNormal": ("random_normal", {"mean": 0.0, "stddev": 0.05}),
    "RandomUniform": ("random_uniform", {"minval": -0.05, "maxval": 0.05}),
}
_INIT_NAMES = {name for name, _ in _INITIALIZERS.values()}


def keras_snake(name: str) -> str:
    """Keras' ``to_snake_case`` ("MaxPooling2D" -> "max_pooling2d"): names weight groups."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def layer_error(exc_type, where: str, name: Any, class_name: Any, what: str):
    return exc_type(f"[load_model] {where}: layer {name!r} ({class_name}) {what}")


def is_keras_module(module) -> bool:
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


class _Config:
    """A Keras layer config being read: ``take`` marks options as used, ``finish`` checks the
    rest (see the module docstring)."""

    def __init__(self, class_name: str, config: dict, where: str):
        self.class_name, self.where = class_name, where
        self.config = dict(config)
        self.name = self.config.get("name")
        self.used = {"name", "trainable", "dtype"}
        self.fallbacks: list[str] = []

    def fail(self, what: str, exc_type=NotImplementedError):
        return layer_error(exc_type, self.where, self.name, self.class_name, what)

    def take(self, key: str, default=None):
        self.used.add(key)
        return self.config.get(key, default)

    def expect(self, key: str, *allowed):
        """An option deepcore computes only with one of ``allowed`` values (the first is the
        default when the key is absent)."""
        value = self.take(key, allowed[0])
        if value not in allowed:
            raise self.fail(f"has {key}={value!r}; deepcore.keras supports "
                            f"{' or '.join(repr(a) for a in allowed)}")
        return value

    def ints(self, key: str, n: int, default=None) -> tuple[int, ...] | None:
        value = self.take(key, default)
        if value is None:
            return None
        if isinstance(value, int):
            value = [value] * n
        if not isinstance(value, (list, tuple)) or len(value) != n or \
                not all(isinstance(v, int) for v in value):
            raise self.fail(f"has {key}={value!r}; expected {n} integer(s)", ValueError)
        return tuple(value)

    def activation(self, key: str = "activation", default: str = "linear") -> str:
        value = self.take(key, default)
        if value is None:
            return "linear"
        if isinstance(value, dict):
            if value.get("class_name") == "function" and is_keras_module(value.get("module")) \
                    and isinstance(value.get("config"), str):
                value = value["config"]
            else:
                raise self.fail(f"has a custom {key} {value.get('registered_name') or value}; "
                                "only Keras' built-in activations can be read")
        if not isinstance(value, str) or value not in L._ACTIVATIONS:
            raise self.fail(f"has {key}={value!r}, which deepcore.keras does not have "
                            f"(it has {', '.join(sorted(L._ACTIVATIONS))})")
        return value

    def initializer(self, key: str, default: str) -> str:
        value = self.take(key, default)
        name, config = None, {}
        if isinstance(value, str):
            name = value if value in _INIT_NAMES else None
        elif isinstance(value, dict) and is_keras_module(value.get("module", "keras")):
            known = _INITIALIZERS.get(value.get("class_name"))
            if known is not None:
                config = value.get("config") or {}
                defaults = known[1]
                if all(config.get(k, v) == v for k, v in defaults.items()):
                    name = known[0]
        if name is None:
            self.fallbacks.append(f"{key}={value!r}")
            return default
        return name

    def dtype_policy(self) -> str:
        """The layer's dtype policy name (deepcore/keras/mixed_precision.py has Keras' float
        policies; quantized ones are refused)."""
        from .mixed_precision import _POLICIES
        value = self.config.get("dtype")
        if isinstance(value, dict):
            value = (value.get("config") or {}).get("name")
        if value is None:
            return "float32"
        if value not in _POLICIES:
            raise self.fail(f"computes in dtype policy {value!r}; deepcore.keras layers take "
                            f"the policies {', '.join(_POLICIES)}")
        return value

    def finish(self) -> None:
        dropped = []
        for key, value in self.config.items():
            if key in self.used or key in _IGNORED or key.endswith("_initializer"):
                continue
            if _TRAINING_ONLY.match(key):
                if value is not None:
                    dropped.append(key)
                continue
            if value is None or value is False:
                continue
            raise self.fail(f"has the option {key}={value!r}, which deepcore.keras does not "
                            "support")
        notes = []
        if dropped:
            notes.append(f"training-only options {dropped} were dropped")
        if self.fallbacks:
            notes.append(f"initializers {self.fallbacks} became the layer defaults (the "
                         "weights come from the file)")
        if notes:
            warnings.warn(f"[load_model] {self.where}: layer {self.name!r} "
                          f"({self.class_name}): {'; '.join(notes)}", stacklevel=4)


# ---- per-class rows ---------------------------------------------------------------------------

def _kernel_opts(c: _Config) -> dict:
    return {"activation": c.activation(), "use_bias": c.take("use_bias", True),
            "kernel_initializer": c.initializer("kernel_initializer", "glorot_uniform"),
            "bias_initializer": c.initializer("bias_initializer", "zeros")}


def _kernel_opts_out(layer) -> dict:
    return {"activation": L._activation_name(layer.activation), "use_bias": layer.use_bias,
            "kernel_initializer": layer.kernel_initializer,
            "bias_initializer": layer.bias_initializer}


def _dense_in(c):
    return {"units": c.take("units"), **_kernel_opts(c)}


def _dense_out(layer):
    return {"units": layer.units, **_kernel_opts_out(layer)}


def _conv_in(rank: int):
    def read(c):
        c.expect("data_format", "channels_last", None)
        c.expect("groups", 1)
        padding = c.expect("padding", "valid", "same")
        return {"filters": c.take("filters"), "kernel_size": _unwrap(c.ints("kernel_size", rank)),
                "strides": _unwrap(c.ints("strides", rank, 1)), "padding": padding,
                "dilation_rate": _unwrap(c.ints("dilation_rate", rank, 1)), **_kernel_opts(c)}
    return read


def _unwrap(v):
    return v[0] if v is not None and len(v) == 1 else v


def _conv2d_out(layer):
    return {"filters": layer.filters, "kernel_size": list(layer.kernel_size),
            "strides": list(layer.strides), "padding": layer.padding,
            "data_format": "channels_last", "dilation_rate": list(layer.dilation_rate),
            "groups": 1, **_kernel_opts_out(layer)}


def _conv1d_out(layer):
    return {**_conv2d_out(layer), "kernel_size": [layer.kernel_size[1]],
            "strides": [layer.strides[1]], "dilation_rate": [layer.dilation_rate[1]]}


def _pool_in(c):
    c.expect("data_format", "channels_last", None)
    return {"pool_size": c.ints("pool_size", 2, 2), "strides": c.ints("strides", 2),
            "padding": c.expect("padding", "valid", "same")}


def _pool_out(layer):
    return {"pool_size": list(layer.pool_size), "strides": list(layer.strides),
            "padding": layer.padding, "data_format": "channels_last"}


def _global_pool_in(c):
    c.expect("data_format", "channels_last", None)
    return {"keepdims": c.take("keepdims", False)}


def _flatten_in(c):
    c.expect("data_format", "channels_last", None)
    return {}


def _last_axis(c: _Config, rank: int | None) -> int:
    """Keras stores a normalization axis as -1, a positive index or a one-item list of
    either; deepcore normalizes the last axis only."""
    axis = c.take("axis", -1)
    if isinstance(axis, (list, tuple)) and len(axis) == 1:
        axis = axis[0]
    if axis == -1 or (rank is not None and axis == rank - 1):
        return -1
    raise c.fail(f"normalizes axis {c.config.get('axis')!r}; deepcore.keras normalizes the last "
                 "axis only")


def _batch_norm_in(c, rank=None):
    c.expect("renorm", False)
    return {"axis": _last_axis(c, rank), "momentum": c.take("momentum", 0.99),
            "epsilon": c.take("epsilon", 1e-3), "center": c.take("center", True),
            "scale": c.take("scale", True)}


def _batch_norm_out(layer):
    return {"axis": -1, "momentum": layer.momentum, "epsilon": layer.epsilon,
            "center": layer.center, "scale": layer.scale}


def _layer_norm_in(c, rank=None):
    c.expect("rms_scaling", False)
    return {"axis": _last_axis(c, rank), "epsilon": c.take("epsilon", 1e-3),
            "center": c.take("center", True), "scale": c.take("scale", True)}


def _layer_norm_out(layer):
    return {"axis": -1, "epsilon": layer.epsilon, "center": layer.center, "scale": layer.scale}


def _embedding_in(c):
    c.expect("mask_zero", False)
    return {"input_dim": c.take("input_dim"), "output_dim": c.take("output_dim"),
            "embeddings_initializer": c.initializer("embeddings_initializer", "random_uniform")}


def _embedding_out(layer):
    return {"input_dim": layer.input_dim, "output_dim": layer.output_dim,
            "embeddings_initializer": layer.embeddings_initializer, "mask_zero": False}


def _rnn_in(c):
    kwargs = {"units": c.take("units"), "activation": c.activation(default="tanh"),
              "use_bias": c.take("use_bias", True),
              "kernel_initializer": c.initializer("kernel_initializer", "glorot_uniform"),
              "recurrent_initializer": c.initializer("recurrent_initializer", "orthogonal"),
              "bias_initializer": c.initializer("bias_initializer", "zeros"),
              "dropout": c.take("dropout", 0.0),
              "return_sequences": c.take("return_sequences", False),
              "return_state": c.take("return_state", False),
              "go_backwards": c.take("go_backwards", False)}
    c.expect("stateful", False)
    if c.take("recurrent_dropout", 0.0):  # a training-time mask: no effect on inference
        warnings.warn(f"[load_model] {c.where}: layer {c.name!r} ({c.class_name}): "
                      "recurrent_dropout was dropped (deepcore's recurrence runs in one C++ "
                      "loop without a per-step mask); inference is unchanged", stacklevel=4)
    if c.class_name in ("LSTM", "GRU"):
        kwargs["recurrent_activation"] = c.activation("recurrent_activation", "sigmoid")
    if c.class_name == "LSTM":
        kwargs["unit_forget_bias"] = c.take("unit_forget_bias", True)
    if c.class_name == "GRU":
        kwargs["reset_after"] = c.take("reset_after", True)
    return kwargs


def _rnn_out(layer):
    out = {"units": layer.units, "activation": layer.activation, "use_bias": layer.use_bias,
           "kernel_initializer": layer.kernel_initializer,
           "recurrent_initializer": layer.recurrent_initializer,
           "bias_initializer": layer.bias_initializer, "dropout": layer.dropout,
           "recurrent_dropout": 0.0, "return_sequences": layer.return_sequences,
           "return_state": layer.return_state, "go_backwards": layer.go_backwards,
           "stateful": False}
    if hasattr(layer, "recurrent_activation"):
        out["recurrent_activation"] = layer.recurrent_activation
    if hasattr(layer, "unit_forget_bias"):
        out["unit_forget_bias"] = layer.unit_forget_bias
    if hasattr(layer, "reset_after"):
        out["reset_after"] = layer.reset_after
    return out


def _bidirectional_in(c):
    def sub(key, prefix):
        spec = c.take(key)
        if spec is None:
            return None
        layer = read_layer(spec, c.where)
        if not isinstance(layer, _RNN):
            raise c.fail(f"wraps a {type(layer).__name__}; deepcore.keras' Bidirectional "
                         "wraps SimpleRNN, LSTM or GRU")
        if prefix and layer.name.startswith(prefix):
            layer.name = layer.name[len(prefix):]  # deepcore's Bidirectional adds it back
        return layer
    return {"layer": sub("layer", "forward_"), "backward_layer": sub("backward_layer", ""),
            "merge_mode": c.take("merge_mode", "concat")}


def _bidirectional_out(layer):
    return {"merge_mode": layer.merge_mode, "layer": write_layer(layer.forward_layer),
            "backward_layer": write_layer(layer.backward_layer)}


def _no_options(c):
    return {}


def _none_out(layer):
    return {}


# Which deepcore tensors, in Keras' variable order, under which sub-group of the layer's path.
# Each group is (sub-path, the name Keras records on it, [(attribute, tensor)]).
def _own(*attrs):
    return lambda layer: [("", layer.name, [(a, getattr(layer, a, None)) for a in attrs])]


def _rnn_groups(layer):
    # Keras keeps an RNN's weights in its cell ("lstm_cell"), one level down.
    cell = f"{keras_snake(type(layer).__name__)}_cell"
    return [("", layer.name, []),
            ("cell", cell, [(a, getattr(layer, a)) for a in ("kernel", "recurrent_kernel",
                                                             "bias")])]


def _bidirectional_groups(layer):
    groups = [("", layer.name, [])]
    for key in ("forward_layer", "backward_layer"):
        groups += [(f"{key}/{sub}" if sub else key, name, ts)
                   for sub, name, ts in weight_groups(getattr(layer, key))]
    return groups


_KERNEL = _own("kernel", "bias")
# class name -> (read, write, weight groups)
_CODECS: dict[str, tuple[Callable, Callable, Callable]] = {
    "Dense": (_dense_in, _dense_out, _KERNEL),
    "Conv2D": (_conv_in(2), _conv2d_out, _KERNEL),
    "Conv1D": (_conv_in(1), _conv1d_out, _KERNEL),
    "MaxPooling2D": (_pool_in, _pool_out, _own()),
    "AveragePooling2D": (_pool_in, _pool_out, _own()),
    "GlobalAveragePooling2D": (_global_pool_in, lambda l: {"keepdims": l.keepdims,
                                                           "data_format": "channels_last"},
                               _own()),
    "Flatten": (_flatten_in, lambda l: {"data_format": "channels_last"}, _own()),
    "Reshape": (lambda c: {"target_shape": c.take("target_shape")},
                lambda l: {"target_shape": list(l.target_shape)}, _own()),
    "Activation": (lambda c: {"activation": c.activation()},
                   lambda l: {"activation": L._activation_name(l.activation)}, _own()),
    "Dropout": (lambda c: {"rate": c.take("rate")}, lambda l: {"rate": l.rate}, _own()),
    "BatchNormalization": (_batch_norm_in, _batch_norm_out,
                           _own("gamma", "beta", "moving_mean", "moving_variance")),
    "LayerNormalization": (_layer_norm_in, _layer_norm_out, _own("gamma", "beta")),
    "Embedding": (_embedding_in, _embedding_out, _own("embeddings")),
    "Concatenate": (lambda c: {"axis": c.take("axis", -1)}, lambda l: {"axis": l.axis}, _own()),
    "Add": (_no_options, _none_out, _own()),
    "SimpleRNN": (_rnn_in, _rnn_out, _rnn_groups),
    "LSTM": (_rnn_in, _rnn_out, _rnn_groups),
    "GRU": (_rnn_in, _rnn_out, _rnn_groups),
    "Bidirectional": (_bidirectional_in, _bidirectional_out, _bidirectional_groups),
}
# Layers whose axis option depends on the input rank (read from build_config).
_NEEDS_RANK = {"BatchNormalization", "LayerNormalization"}


def supported() -> list[str]:
    return sorted(_CODECS)


def read_layer(spec: dict, where: str) -> L.Layer:
    """A deepcore layer from one entry of a Keras config (``{"class_name", "config", ...}``).
    Models nested as layers are handled by the caller (keras_format)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or \
            not isinstance(spec.get("config"), dict):
        raise SerializationError(f"[load_model] {where}: malformed layer entry "
                                 f"{str(spec)[:200]}")
    cls, config = spec["class_name"], spec["config"]
    name = config.get("name", spec.get("name"))
    if cls == "Lambda":
        raise layer_error(NotImplementedError, where, name, cls,
                          "holds Python bytecode; deepcore never runs code from a file. "
                          "Rebuild the computation with built-in layers")
    module, registered = spec.get("module"), spec.get("registered_name")
    if not is_keras_module(module) or registered not in (None, cls):
        raise layer_error(NotImplementedError, where, name, cls,
                          f"is a custom object (module {module!r}, registered as "
                          f"{registered!r}); deepcore.keras reads only Keras' built-in layers "
                          "and never imports code named by a file")
    codec = _CODECS.get(cls)
    if codec is None:
        raise layer_error(NotImplementedError, where, name, cls,
                          f"is a Keras layer class that deepcore.keras cannot read from a "
                          f"file; it reads {', '.join(supported())}")
    c = _Config(cls, config, where)
    policy = c.dtype_policy()
    if cls in _NEEDS_RANK:
        shape = (spec.get("build_config") or {}).get("input_shape")
        kwargs = codec[0](c, len(shape) if isinstance(shape, (list, tuple)) else None)
    else:
        kwargs = codec[0](c)
    c.finish()
    kwargs.update(name=name, trainable=bool(config.get("trainable", True)), dtype=policy)
    layer_cls = L._REGISTRY[cls]
    try:
        return layer_cls(**kwargs)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise layer_error(type(e), where, name, cls, f"cannot be built in deepcore: {e}") \
            from e


def write_layer(layer: L.Layer) -> dict:
    """The Keras config entry of a deepcore layer, as Keras 3 writes one."""
    cls = type(layer).__name__
    codec = _CODECS.get(cls)
    if codec is None or L._REGISTRY.get(cls) is not type(layer):
        raise NotImplementedError(
            f"[save] layer {layer.name!r} ({cls}) has no Keras 3 equivalent that deepcore can "
            f"write; a .keras file can hold {', '.join(supported())}. Save to a .safetensors "
            "file instead")
    try:
        options = codec[1](layer)
    except ValueError as e:  # e.g. a custom activation callable
        raise ValueError(f"[save] layer {layer.name!r} ({cls}): {e}") from e
    spec = {"module": "keras.layers", "class_name": cls,
            "config": {"name": layer.name, "trainable": layer.trainable,
                       "dtype": layer.dtype_policy.name,
                       **options},
            "registered_name": None}
    shape = getattr(layer, "_build_shape", None)
    if shape is not None:
        spec["build_config"] = {"input_shape": _jsonable_shape(shape)}
    return spec


def _jsonable_shape(shape):
    if isinstance(shape, list) or (isinstance(shape, tuple) and shape and
                                   isinstance(shape[0], (list, tuple))):
        return [_jsonable_shape(s) for s in shape]
    return [None if d is None else int(d) for d in shape]


def weight_groups(layer: L.Layer) -> list[tuple[str, str, list[tuple[str, Any]]]]:
    """``[(sub-path, recorded name, [(attribute, tensor), ...])]`` in Keras' order; absent
    tensors (a layer without bias) are left out, as Keras creates no variable for them."""
    codec = _CODECS.get(type(layer).__name__)
    if codec is None:
        raise NotImplementedError(f"[keras weights] layer {layer.name!r} "
                                  f"({type(layer).__name__}) has no Keras 3 weight layout in "
                                  "deepcore")
    return [(sub, name, [(a, t) for a, t in ts if t is not None])
            for sub, name, ts in codec[2](layer)]
