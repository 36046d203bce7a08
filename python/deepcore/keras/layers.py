"""Keras layers on deepcore.nn: each layer is an ``nn.Module`` whose weights are created by
``build(input_shape)`` -- when ``input_shape`` is given, or on the first call. Tensors are
channels-last like Keras: images are ``(batch, height, width, channels)``; the convolution and
pooling layers permute around ``deepcore.nn.functional``'s channels-first kernels.

Each layer has a dtype policy (``dtype=``, default the global policy; Keras 3's
``"mixed_bfloat16"`` and the others, deepcore/keras/mixed_precision.py): it casts its float
inputs and reads its weights in the policy's compute dtype (Note [Keras autocasting]).

Weights use Keras' names and layouts (``kernel`` is ``(in, units)`` for Dense and
``(kh, kw, in, filters)`` for Conv2D), so ``get_weights`` matches Keras. Every layer has a
JSON-able ``get_config``; ``deserialize`` builds only the registered classes below.
"""
from __future__ import annotations

import math
import re
from typing import Dict, Optional, Tuple

import numpy as np

import deepcore as dc
import deepcore.nn.functional as F
from .. import nn
from ..nn import init as nn_init
from ..nn.parameter import Parameter
from . import mixed_precision

__all__ = ["Layer", "InputLayer", "Input", "Dense", "Conv1D", "Conv2D", "MaxPooling2D",
           "AveragePooling2D", "GlobalAveragePooling2D", "Flatten", "Dropout",
           "BatchNormalization", "LayerNormalization", "Embedding", "Activation", "Reshape",
           "Concatenate", "Add", "KerasTensor", "get_activation", "deserialize", "register"]

_REGISTRY: Dict[str, type] = {}
_NAME_COUNTS: Dict[str, int] = {}


def register(cls):
    """Makes ``cls`` loadable by ``load_model`` (by its class name)."""
    _REGISTRY[cls.__name__] = cls
    return cls


def _unique_name(base: str) -> str:
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


# ---- activations and initializers -------------------------------------------------------------

_ACTIVATIONS = {
    "linear": lambda x: x, "relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh,
    "softmax": lambda x: F.softmax(x, dim=-1), "log_softmax": lambda x: F.log_softmax(x, dim=-1),
    "gelu": F.gelu, "elu": F.elu, "selu": F.selu, "softplus": F.softplus,
    "softsign": F.softsign, "swish": F.silu, "silu": F.silu, "leaky_relu": lambda x:
    F.leaky_relu(x, 0.2), "exponential": lambda x: x.exp(), "relu6": F.relu6,
    "hard_sigmoid": F.hardsigmoid, "mish": F.mish,
}


def get_activation(identifier):
    if identifier is None:
        return _ACTIVATIONS["linear"]
    if isinstance(identifier, str):
        if identifier not in _ACTIVATIONS:
            raise ValueError(f"[keras] unknown activation {identifier!r}; known: "
                             f"{sorted(_ACTIVATIONS)}")
        return _ACTIVATIONS[identifier]
    if callable(identifier):
        return identifier
    raise TypeError(f"[keras] activation must be a name or a callable, got "
                    f"{type(identifier).__name__}")


def _activation_name(identifier) -> str:
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        return identifier
    for name, fn in _ACTIVATIONS.items():
        if fn is identifier:
            return name
    fn_name = getattr(identifier, "__name__", None)
    if fn_name in _ACTIVATIONS and getattr(F, fn_name, None) is identifier:
        return fn_name
    raise ValueError(f"[keras] the activation {identifier!r} is a custom callable; a model "
                     "using it can't be saved as a config (use a registered activation name)")


def _fans(shape: Tuple[int, ...]) -> Tuple[int, int]:
    # Keras layout: the last axis is fan_out, the one before fan_in, leading axes receptive field.
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _initialize(t, name: str):
    fan_in, fan_out = _fans(tuple(t.shape))
    with dc.no_grad():
        if name == "zeros":
            nn_init.zeros_(t)
        elif name == "ones":
            nn_init.ones_(t)
        elif name == "glorot_uniform":
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            nn_init.uniform_(t, -limit, limit)
        elif name == "glorot_normal":
            std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
            nn_init.trunc_normal_(t, 0.0, std, -2 * std, 2 * std)
        elif name == "he_uniform":
            limit = math.sqrt(6.0 / fan_in)
            nn_init.uniform_(t, -limit, limit)
        elif name == "he_normal":
            # Keras: a normal truncated at two standard deviations, rescaled to keep the
            # variance 2 / fan_in.
            std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
            nn_init.trunc_normal_(t, 0.0, std, -2 * std, 2 * std)
        elif name == "lecun_normal":
            std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
            nn_init.trunc_normal_(t, 0.0, std, -2 * std, 2 * std)
        elif name == "orthogonal":
            # Keras: the Q of a QR factorisation of a Gaussian matrix, signs fixed by R's
            # diagonal, over the (prod(shape[:-1]), shape[-1]) flattening.
            rows, cols = int(np.prod(t.shape[:-1])), int(t.shape[-1])
            a = dc.randn(max(rows, cols), min(rows, cols), dtype=dc.float64).numpy()
            q, r = np.linalg.qr(a)
            q = q * np.sign(np.diag(r))
            if rows < cols:
                q = q.T
            t.copy_(dc.from_numpy(np.ascontiguousarray(q.reshape(tuple(t.shape)))))
        elif name == "random_normal":
            nn_init.normal_(t, 0.0, 0.05)
        elif name == "random_uniform":
            nn_init.uniform_(t, -0.05, 0.05)
        else:
            raise ValueError(f"[keras] unknown initializer {name!r}")
    return t


def _weight(shape, initializer: str, trainable: bool = True) -> Parameter:
    p = Parameter(dc.empty(*shape), requires_grad=trainable)
    _initialize(p, initializer)
    return p


# ---- symbolic tensors -------------------------------------------------------------------------

class KerasTensor:
    """A symbolic tensor of the functional API: a shape with ``None`` for the batch, the
    layer call that produced it and that call's inputs."""

    def __init__(self, shape, dtype=dc.float32, layer=None, inputs=(), index: int = 0):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.layer = layer
        self.inputs = list(inputs)
        self.index = index  # which call of ``layer`` made this tensor

    @property
    def key(self) -> str:
        return f"{self.layer.name}:{self.index}"

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape} dtype={self.dtype} from {self.key}>"


def _flatten(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _shape_of(x):
    if isinstance(x, (list, tuple)):
        return [_shape_of(v) for v in x]
    return (None,) + tuple(x.shape[1:])


class Layer(mixed_precision.AutocastVariables, nn.Module):
    """Keras' Layer as an nn.Module: subclasses define ``build(input_shape)`` and
    ``call(inputs)``; ``get_config`` returns the constructor arguments."""

    # Note [Keras autocasting]: False for layers that take their inputs and weights as they are
    # (and cast their result to the compute dtype themselves); _autocast_variables False keeps
    # the weights as stored while the inputs are still cast.
    autocast = True
    _autocast_variables = True
    _convert_input_args = True

    def __init__(self, name: Optional[str] = None, input_shape=None, input_dim=None,
                 trainable: bool = True, dtype=None, batch_input_shape=None):
        super().__init__()
        self.name = name or _unique_name(_snake(type(self).__name__))
        self._dtype_policy = mixed_precision.get(dtype)
        self.built = False
        self.trainable = trainable
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None and input_shape is None:
            input_shape = tuple(batch_input_shape)[1:]
        self._input_shape_arg = tuple(input_shape) if input_shape is not None else None
        self._build_shape = None
        self._output_shapes = []  # one per symbolic call
        self._calls = 0

    # The dtype policy (Keras 3's names: dtype is the variable dtype)
    @property
    def dtype_policy(self) -> mixed_precision.Policy:
        return self._dtype_policy

    @dtype_policy.setter
    def dtype_policy(self, value) -> None:
        self._dtype_policy = mixed_precision.get(value)

    @property
    def compute_dtype(self) -> str:
        return self._dtype_policy.compute_dtype

    @property
    def variable_dtype(self) -> str:
        return self._dtype_policy.variable_dtype

    @property
    def dtype(self) -> str:
        return self._dtype_policy.variable_dtype

    def _cast_inputs(self, inputs, args, kwargs):
        if not (self.autocast and self._convert_input_args):
            return inputs, args, kwargs
        dt = self._dtype_policy._compute
        if not args and not kwargs:
            return mixed_precision.cast_inputs(inputs, dt), args, kwargs
        return (mixed_precision.cast_inputs(inputs, dt), mixed_precision.cast_inputs(args, dt),
                {k: mixed_precision.cast_inputs(v, dt) for k, v in kwargs.items()})

    def _variable_scope(self):
        policy = self._dtype_policy
        mixed = self.autocast and self._autocast_variables and \
            policy.compute_dtype != policy.variable_dtype
        return mixed_precision.scope_for(policy._compute if mixed else None)

    def _convert_variables(self) -> None:
        """Stores this layer's float weights and buffers (and those of its nn.Module parts that
        are not layers themselves) in the policy's variable dtype."""
        dt = self._dtype_policy._variable
        if dt == dc.float32:
            return

        def convert(t):
            return t.to(dt) if t.dtype.is_floating_point and t.dtype != dt else t

        def walk(module):
            module._apply(convert, recurse=False)
            for child in module.children():
                if not isinstance(child, Layer):
                    walk(child)
        walk(self)

    # Building
    def build(self, input_shape) -> None:
        pass

    def _set_kernel_options(self, activation, use_bias: bool, kernel_initializer: str,
                            bias_initializer: str) -> None:
        """The options of a layer with a kernel and a bias (Dense, Conv2D); builds it now when
        ``input_shape=`` was given."""
        self.activation = activation
        self._act = get_activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        if self._input_shape_arg is not None:
            self._maybe_build((None,) + self._input_shape_arg)

    def _maybe_build(self, input_shape) -> None:
        if not self.built:
            self.build(input_shape)
            self.built = True
            self._build_shape = input_shape
            self._convert_variables()
            if not self.trainable:
                for p in self.parameters():
                    p.requires_grad_(False)

    def call(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def forward(self, inputs, *args, **kwargs):
        return self.call(inputs, *args, **kwargs)

    def __call__(self, inputs, *args, **kwargs):
        if any(isinstance(t, KerasTensor) for t in _flatten(inputs)):
            return self._symbolic_call(inputs)
        self._maybe_build(_shape_of(inputs))
        inputs, args, kwargs = self._cast_inputs(inputs, args, kwargs)
        with self._variable_scope():
            return super().__call__(inputs, *args, **kwargs)

    def _symbolic_call(self, inputs):
        ins = _flatten(inputs)
        shapes = [t.shape for t in ins] if isinstance(inputs, (list, tuple)) else ins[0].shape
        self._maybe_build(shapes)
        # The output shape comes from running the layer once on a one-sample batch of zeros,
        # in eval mode and without gradients (nothing is recorded or updated).
        # On the device of the layer's weights (a model moved with .to("cuda")).
        p = next(iter(self.parameters()), None)
        dummies = [dc.zeros(*((1,) + t.shape[1:]), dtype=t.dtype,
                            device=None if p is None else p.device) for t in ins]
        was_training = self.training
        self.eval()
        try:
            with dc.no_grad():
                x, _, _ = self._cast_inputs(dummies if isinstance(inputs, (list, tuple))
                                            else dummies[0], (), {})
                with self._variable_scope():
                    out = nn.Module.__call__(self, x)
        finally:
            self.train(was_training)
        shape = (None,) + tuple(out.shape[1:])
        self._output_shapes.append(shape)
        kt = KerasTensor(shape, out.dtype, self, ins, self._calls)
        self._calls += 1
        return kt

    @property
    def output_shape(self):
        if not self._output_shapes:
            raise AttributeError(f"[keras] layer {self.name!r} has not been called on a "
                                 "symbolic input, so its output shape is unknown")
        shapes = set(self._output_shapes)
        return self._output_shapes[0] if len(shapes) == 1 else "multiple"

    def count_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def get_weights(self):
        return [t.detach().numpy().copy() for t in self.state_dict().values()]

    def set_weights(self, weights) -> None:
        sd = self.state_dict()
        if len(weights) != len(sd):
            raise ValueError(f"[keras] layer {self.name!r} expects {len(sd)} weight arrays, "
                             f"got {len(weights)}")
        with dc.no_grad():
            for (k, t), w in zip(sd.items(), weights):
                w = np.asarray(w)
                if tuple(w.shape) != tuple(t.shape):
                    raise ValueError(f"[keras] weight {k!r} of layer {self.name!r} has shape "
                                     f"{tuple(t.shape)}, got {tuple(w.shape)}")
                t.copy_(dc.from_numpy(np.ascontiguousarray(w, dtype=t.numpy().dtype)))

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": self._dtype_policy.name}
        if self._input_shape_arg is not None:
            config["input_shape"] = list(self._input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


@register
class InputLayer(Layer):
    """The layer behind ``keras.Input``: passes its input through."""

    _convert_input_args = False

    def __init__(self, shape=None, dtype="float32", name=None, input_shape=None, **kwargs):
        shape = shape if shape is not None else input_shape
        super().__init__(name=name or _unique_name("input_layer"), **kwargs)
        self.shape = tuple(shape)
        self.dtype_name = str(dtype).replace("deepcore.", "")
        self.built = True

    def call(self, inputs):
        return inputs

    def get_config(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype_name}


def Input(shape, batch_size=None, dtype="float32", name=None) -> KerasTensor:
    """A symbolic input ``(None, *shape)`` for the functional API."""
    layer = InputLayer(shape=shape, dtype=dtype, name=name)
    dt = getattr(dc, layer.dtype_name, None)
    if not isinstance(dt, dc.dtype):
        raise ValueError(f"[keras.Input] unknown dtype {dtype!r}")
    kt = KerasTensor((None,) + tuple(shape), dt, layer, [], 0)
    layer._output_shapes.append(kt.shape)
    layer._calls = 1
    return kt


def _at_least_float32(x):
    """16-bit floats widened to float32 (normalization statistics overflow in them)."""
    return x.float() if x.dtype.is_floating_point and x.dtype.itemsize < 4 else x


# ---- core layers ------------------------------------------------------------------------------

@register
class Dense(Layer):
    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"[Dense] units must be a positive integer, got {units!r}")
        self.units = int(units)
        self._set_kernel_options(activation, use_bias, kernel_initializer, bias_initializer)

    def build(self, input_shape) -> None:
        in_features = input_shape[-1]
        self.kernel = _weight((in_features, self.units), self.kernel_initializer)
        self.bias = _weight((self.units,), self.bias_initializer) if self.use_bias else None

    def call(self, inputs):
        out = inputs.matmul(self.kernel)
        if self.bias is not None:
            out = out + self.bias
        return self._act(out)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units,
                "activation": _activation_name(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer}


def _pair(v, name: str) -> Tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(i) for i in v)
    if len(v) != 2:
        raise ValueError(f"[keras] {name} must be an int or a pair, got {v}")
    return v


def _same_padding(size: int, k: int, s: int, d: int = 1) -> Tuple[int, int]:
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2  # TensorFlow puts the odd pixel at the end


def _pad_nchw(x, pads_h, pads_w, value=0.0):
    if pads_h == (0, 0) and pads_w == (0, 0):
        return x
    if not hasattr(F, "pad"):
        raise NotImplementedError("[keras] padding='same' with an asymmetric pad needs "
                                  "deepcore.nn.functional.pad")
    return F.pad(x, (pads_w[0], pads_w[1], pads_h[0], pads_h[1]), value=value)


def _require(name: str):
    fn = getattr(F, name, None)
    if fn is None:
        raise NotImplementedError(f"[keras] this layer needs deepcore.nn.functional.{name}, "
                                  "which this build of deepcore does not have")
    return fn


@register
class Conv2D(Layer):
    """2-D convolution on ``(batch, h, w, channels)``; kernel ``(kh, kw, in, filters)``."""

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 dilation_rate=(1, 1), activation=None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        if padding not in ("valid", "same"):
            raise ValueError(f"[Conv2D] padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding
        self._set_kernel_options(activation, use_bias, kernel_initializer, bias_initializer)

    def build(self, input_shape) -> None:
        self.kernel = _weight(self.kernel_size + (input_shape[-1], self.filters),
                              self.kernel_initializer)
        self.bias = _weight((self.filters,), self.bias_initializer) if self.use_bias else None

    def call(self, inputs):
        conv2d = _require("conv2d")
        x = inputs.permute(0, 3, 1, 2)  # NHWC -> NCHW
        if self.padding == "same":
            ph = _same_padding(x.shape[2], self.kernel_size[0], self.strides[0],
                               self.dilation_rate[0])
            pw = _same_padding(x.shape[3], self.kernel_size[1], self.strides[1],
                               self.dilation_rate[1])
            x = _pad_nchw(x, ph, pw)
        w = self.kernel.permute(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
        out = conv2d(x, w, self.bias, stride=self.strides, padding=0,
                     dilation=self.dilation_rate)
        return self._act(out.permute(0, 2, 3, 1))

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "activation": _activation_name(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer}


@register
class Conv1D(Conv2D):
    """1-D convolution on ``(batch, steps, channels)``: a Conv2D over a height of 1.
    Kernel ``(k, in, filters)`` as in Keras."""

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 dilation_rate=1, **kwargs):
        k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
        s = strides if isinstance(strides, int) else strides[0]
        d = dilation_rate if isinstance(dilation_rate, int) else dilation_rate[0]
        super().__init__(filters, (1, k), (1, s), padding, (1, d), **kwargs)

    def build(self, input_shape) -> None:
        self.kernel = _weight((self.kernel_size[1], input_shape[-1], self.filters),
                              self.kernel_initializer)
        self.bias = _weight((self.filters,), self.bias_initializer) if self.use_bias else None

    def call(self, inputs):
        conv2d = _require("conv2d")
        x = inputs.permute(0, 2, 1).unsqueeze(2)  # (N, L, C) -> (N, C, 1, L)
        if self.padding == "same":
            x = _pad_nchw(x, (0, 0), _same_padding(x.shape[3], self.kernel_size[1],
                                                   self.strides[1], self.dilation_rate[1]))
        w = self.kernel.permute(2, 1, 0).unsqueeze(2)  # (k, in, out) -> (out, in, 1, k)
        out = conv2d(x, w, self.bias, stride=self.strides, padding=0,
                     dilation=self.dilation_rate)
        return self._act(out.squeeze(2).permute(0, 2, 1))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(kernel_size=self.kernel_size[1], strides=self.strides[1],
                      dilation_rate=self.dilation_rate[1])
        return config


class _Pooling2D(Layer):
    _fn = ""

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = _pair(strides, "strides") if strides is not None else self.pool_size
        if padding not in ("valid", "same"):
            raise ValueError(f"[{type(self).__name__}] padding must be 'valid' or 'same'")
        self.padding = padding

    def call(self, inputs):
        fn = _require(self._fn)
        x = inputs.permute(0, 3, 1, 2)
        if self.padding == "same":
            ph = _same_padding(x.shape[2], self.pool_size[0], self.strides[0])
            pw = _same_padding(x.shape[3], self.pool_size[1], self.strides[1])
            x = _pad_nchw(x, ph, pw, float("-inf") if self._fn == "max_pool2d" else 0.0)
        out = fn(x, self.pool_size, self.strides)
        return out.permute(0, 2, 3, 1)

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


@register
class MaxPooling2D(_Pooling2D):
    _fn = "max_pool2d"


@register
class AveragePooling2D(_Pooling2D):
    _fn = "avg_pool2d"


@register
class GlobalAveragePooling2D(Layer):
    def __init__(self, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = keepdims

    def call(self, inputs):
        pool = _require("adaptive_avg_pool2d")
        out = pool(inputs.permute(0, 3, 1, 2), 1)  # (N, C, 1, 1)
        out = out.permute(0, 2, 3, 1)
        return out if self.keepdims else out.reshape(out.shape[0], -1)

    def get_config(self) -> dict:
        return {**super().get_config(), "keepdims": self.keepdims}


@register
class Flatten(Layer):
    def call(self, inputs):
        return inputs.reshape(inputs.shape[0], -1)


@register
class Reshape(Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def call(self, inputs):
        return inputs.reshape((inputs.shape[0],) + self.target_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


@register
class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self._act = get_activation(activation)

    def call(self, inputs):
        return self._act(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": _activation_name(self.activation)}


@register
class Dropout(Layer):
    def __init__(self, rate: float, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"[Dropout] rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def call(self, inputs):
        return F.dropout(inputs, self.rate, self.training)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate}


@register
class BatchNormalization(Layer):
    """Normalizes the last axis with batch statistics in training and moving statistics in
    inference; Keras' ``momentum=0.99`` is PyTorch's ``momentum=0.01``."""

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError("[BatchNormalization] only axis=-1 (channels-last) is supported")
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = center, scale

    def build(self, input_shape) -> None:
        c = input_shape[-1]
        self.gamma = _weight((c,), "ones") if self.scale else None
        self.beta = _weight((c,), "zeros") if self.center else None
        self.register_buffer("moving_mean", dc.zeros(c))
        self.register_buffer("moving_variance", dc.ones(c))

    _autocast_variables = False  # Keras: the statistics overflow in 16 bits; float32 math

    def call(self, inputs):
        batch_norm = _require("batch_norm")
        nd = inputs.dim()
        x = inputs if nd == 2 else inputs.permute(0, nd - 1, *range(1, nd - 1))
        out = batch_norm(_at_least_float32(x), self.moving_mean, self.moving_variance,
                         self.gamma, self.beta, self.training, 1.0 - self.momentum,
                         self.epsilon).to(self._dtype_policy._compute)
        return out if nd == 2 else out.permute(0, *range(2, nd), 1)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}


@register
class LayerNormalization(Layer):
    def __init__(self, axis: int = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError("[LayerNormalization] only axis=-1 is supported")
        self.axis, self.epsilon, self.center, self.scale = axis, float(epsilon), center, scale

    def build(self, input_shape) -> None:
        c = input_shape[-1]
        self.gamma = _weight((c,), "ones") if self.scale else None
        self.beta = _weight((c,), "zeros") if self.center else None

    autocast = False  # Keras: float32 math, the result in the compute dtype

    def call(self, inputs):
        out = F.layer_norm(_at_least_float32(inputs), (inputs.shape[-1],), self.gamma,
                           self.beta, self.epsilon)
        return out.to(self._dtype_policy._compute)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


@register
class Embedding(Layer):
    def __init__(self, input_dim: int, output_dim: int,
                 embeddings_initializer: str = "random_uniform", **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = embeddings_initializer
        self._maybe_build(None)

    def build(self, input_shape) -> None:
        self.embeddings = _weight((self.input_dim, self.output_dim),
                                  self.embeddings_initializer)

    autocast = False  # Keras: ids are not cast; the vectors come out in the compute dtype

    def call(self, inputs):
        if inputs.dtype.is_floating_point:
            inputs = inputs.to(dc.int64)
        return F.embedding(inputs, self.embeddings).to(self._dtype_policy._compute)

    def get_config(self) -> dict:
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": self.embeddings_initializer}


class _Merge(Layer):
    def __call__(self, inputs, *args, **kwargs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"[{type(self).__name__}] expects a list of at least 2 inputs")
        return super().__call__(list(inputs), *args, **kwargs)


@register
class Concatenate(_Merge):
    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        return dc.cat(list(inputs), dim=self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


@register
class Add(_Merge):
    def call(self, inputs):
        out = inputs[0]
        for t in inputs[1:]:
            out = out + t
        return out


def deserialize(spec: dict) -> Layer:
    """A layer from ``{"class_name", "config"}``; only registered classes are built."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str):
        raise ValueError(f"[load_model] malformed layer entry {spec!r}")
    cls = _REGISTRY.get(spec["class_name"])
    if cls is None:
        raise ValueError(f"[load_model] unknown layer type {spec['class_name']!r}: only "
                         f"registered layers can be loaded ({', '.join(sorted(_REGISTRY))}); "
                         "register a custom layer with deepcore.keras.layers.register")
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"[load_model] config of {spec['class_name']} is not an object")
    return cls.from_config(dict(config))



# Layers with files of their own; imported last, as they build on Layer.
from .layers_attention import MultiHeadAttention  # noqa: E402
from .layers_recurrent import GRU, LSTM, Bidirectional, SimpleRNN  # noqa: E402

__all__ += ["MultiHeadAttention", "SimpleRNN", "LSTM", "GRU", "Bidirectional"]
