"""Keras' recurrent layers (SimpleRNN, LSTM, GRU, Bidirectional) on deepcore's C++ RNN op.

Note [Keras recurrent weights]
The layers keep Keras' weights and layouts, so ``get_weights``/``set_weights`` exchange arrays
with Keras 3 unchanged: ``kernel`` (input_dim, G * units), ``recurrent_kernel`` (units,
G * units) and ``bias`` -- (G * units,), or (2, 3 * units) for GRU with ``reset_after=True``
(input and recurrent biases) -- with the gates in Keras' order: LSTM i, f, c, o (torch's
i, f, g, o) and GRU z, r, h (torch's r, z, n). Each call turns them into torch's layout
(transposes, and for GRU a column permutation) with differentiable ops and runs the same
C++ op as ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (``_rnn_layer``: one GEMM for the input
projection of all steps, the time loop and backward through time in C++). GRU's
``reset_after=False`` (the reset gate applied before the recurrent matmul) is the op's
``linear_before_reset=False`` mode.

Inputs are batch-major (batch, time, features) as in Keras. ``go_backwards`` runs the
sequence from its end and, as Keras does, returns the output sequence in that reversed order.
``dropout`` drops input features with one mask per sequence, shared by all steps (Keras'
rule); ``recurrent_dropout`` would need a mask inside the C++ time loop and is refused.
"""
from __future__ import annotations

from typing import List, Optional

import deepcore as dc
import deepcore.nn.functional as F
from .layers import Layer, _weight, deserialize, register

__all__ = ["SimpleRNN", "LSTM", "GRU", "Bidirectional"]


def _as_tensor(x):
    return x if isinstance(x, dc.Tensor) else dc.tensor(x)


class _RNN(Layer):
    """The shared body: options, weights, the call into ``_rnn_layer``."""

    _mode = ""  # the op's mode string
    _gates = 1

    def __init__(self, units: int, activation="tanh", use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform",
                 recurrent_initializer: str = "orthogonal", bias_initializer: str = "zeros",
                 dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"[{cls}] units must be a positive integer, got {units!r}")
        if recurrent_dropout:
            raise ValueError(f"[{cls}] recurrent_dropout is not supported: the recurrence runs "
                             "in one C++ loop (use dropout on the inputs)")
        if stateful:
            raise ValueError(f"[{cls}] stateful=True is not supported; pass initial_state")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"[{cls}] dropout must be in [0, 1), got {dropout}")
        self.units = units
        self.activation = activation
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.dropout = float(dropout)
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards = go_backwards
        self.unroll = unroll
        if self._input_shape_arg is not None:
            self._maybe_build((None,) + self._input_shape_arg)

    def _bias_shape(self):
        return (self._gates * self.units,)

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"[{type(self).__name__}] layer {self.name!r} expects 3-D input "
                             f"(batch, time, features), got shape {tuple(input_shape)}")
        g, u = self._gates, self.units
        self.kernel = _weight((input_shape[-1], g * u), self.kernel_initializer)
        self.recurrent_kernel = _weight((u, g * u), self.recurrent_initializer)
        self.bias = _weight(self._bias_shape(), self.bias_initializer) if self.use_bias \
            else None

    # Torch layout (Note [Keras recurrent weights]): (w_ih, w_hh, b_ih, b_hh).
    def _torch_weights(self):
        b = self.bias
        return (self.kernel.t(), self.recurrent_kernel.t(), b,
                None if b is None else dc.zeros_like(b))

    def _linear_before_reset(self) -> bool:
        return True

    def _initial(self, initial_state, batch: int, dtype) -> List:
        n = 2 if self._mode == "LSTM" else 1
        if initial_state is None:
            return [dc.zeros(batch, self.units, dtype=dtype) for _ in range(n)]
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) \
            else [initial_state]
        if len(states) != n:
            raise ValueError(f"[{type(self).__name__}] layer {self.name!r} expects {n} initial "
                             f"state tensor(s), got {len(states)}")
        out = []
        for s in states:
            s = _as_tensor(s)
            if tuple(s.shape) != (batch, self.units):
                raise ValueError(f"[{type(self).__name__}] layer {self.name!r}: initial state "
                                 f"of shape {tuple(s.shape)}, expected ({batch}, "
                                 f"{self.units})")
            out.append(s)
        return out

    def call(self, inputs, initial_state=None, mask=None, training=None):
        cls = type(self).__name__
        x = _as_tensor(inputs)
        if x.dim() != 3:
            raise ValueError(f"[{cls}] layer {self.name!r} expects 3-D input (batch, time, "
                             f"features), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"[{cls}] layer {self.name!r} was built for {self.kernel.shape[0]} "
                             f"input features, got input of shape {tuple(x.shape)}")
        if mask is not None:
            raise ValueError(f"[{cls}] masked sequences are not supported; pack them with "
                             "deepcore.nn.utils.rnn and use deepcore.nn.{LSTM,GRU,RNN}")
        if not x.dtype.is_floating_point:
            x = x.to(dc.float32)
        B = x.shape[0]
        states = self._initial(initial_state, B, x.dtype)
        training = self.training if training is None else bool(training)
        if self.dropout > 0.0 and training:
            keep = 1.0 - self.dropout
            x = x * (dc.rand(B, 1, x.shape[-1], dtype=x.dtype) < keep).to(x.dtype) / keep
        w_ih, w_hh, b_ih, b_hh = self._torch_weights()
        res = F._rnn_layer(x.transpose(0, 1), states[0], states[1] if len(states) > 1 else None,
                           w_ih, w_hh, b_ih, b_hh, None, None, self._mode, self.go_backwards,
                           self._linear_before_reset())
        seq = res[0].transpose(0, 1)  # (B, T, units), in input time order
        if self.go_backwards:
            seq = seq.flip(1)  # Keras returns the steps in the order they ran
        out = seq if self.return_sequences else res[1]
        if self.return_state:
            return [out] + list(res[1:])
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                "recurrent_initializer": self.recurrent_initializer,
                "bias_initializer": self.bias_initializer, "dropout": self.dropout,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards}


@register
class SimpleRNN(_RNN):
    """A fully connected recurrence h_t = activation(x_t W + h_{t-1} U + b); activation is
    "tanh" or "relu"."""

    def __init__(self, units: int, activation="tanh", **kwargs):
        if activation not in ("tanh", "relu"):
            raise ValueError(f"[SimpleRNN] activation must be 'tanh' or 'relu' (the C++ "
                             f"recurrence's), got {activation!r}")
        self._mode = "RNN_TANH" if activation == "tanh" else "RNN_RELU"
        super().__init__(units, activation=activation, **kwargs)


def _check_gate_activations(cls: str, activation, recurrent_activation) -> None:
    """The fused gate kernels compute tanh and sigmoid, Keras' defaults."""
    if activation != "tanh" or recurrent_activation != "sigmoid":
        raise ValueError(f"[{cls}] only activation='tanh' with recurrent_activation='sigmoid' "
                         f"is supported, got {activation!r} and {recurrent_activation!r}")


@register
class LSTM(_RNN):
    _mode, _gates = "LSTM", 4

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias: bool = True, **kwargs):
        _check_gate_activations("LSTM", activation, recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        self.recurrent_activation = recurrent_activation
        super().__init__(units, activation=activation, **kwargs)

    def build(self, input_shape) -> None:
        super().build(input_shape)
        if self.bias is not None and self.unit_forget_bias:
            with dc.no_grad():  # Keras: the forget gate's bias starts at one
                self.bias[self.units:2 * self.units].fill_(1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "unit_forget_bias": self.unit_forget_bias}


@register
class GRU(_RNN):
    _mode, _gates = "GRU", 3

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 reset_after: bool = True, **kwargs):
        _check_gate_activations("GRU", activation, recurrent_activation)
        self.reset_after = reset_after
        self.recurrent_activation = recurrent_activation
        super().__init__(units, activation=activation, **kwargs)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _linear_before_reset(self) -> bool:
        return self.reset_after

    def build(self, input_shape) -> None:
        super().build(input_shape)
        u = self.units  # Keras' z, r, h columns in torch's r, z, n order, made once
        self._order = dc.cat([dc.arange(u, 2 * u), dc.arange(0, u), dc.arange(2 * u, 3 * u)])

    def _torch_weights(self):
        order = self._order
        w_ih = self.kernel.index_select(1, order).t()  # Keras z, r, h -> torch r, z, n
        w_hh = self.recurrent_kernel.index_select(1, order).t()
        if self.bias is None:
            return w_ih, w_hh, None, None
        if self.reset_after:
            b = self.bias.index_select(1, order)
            return w_ih, w_hh, b[0], b[1]
        b = self.bias.index_select(0, order)
        return w_ih, w_hh, b, dc.zeros_like(b)

    def get_config(self) -> dict:
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "reset_after": self.reset_after}


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


@register
class Bidirectional(Layer):
    """Runs ``layer`` forwards and a copy with ``go_backwards`` flipped, and merges them."""

    def __init__(self, layer: _RNN, merge_mode: Optional[str] = "concat", weights=None,
                 backward_layer: Optional[_RNN] = None, **kwargs):
        if isinstance(layer, dict):
            layer = deserialize(layer)
        if isinstance(backward_layer, dict):
            backward_layer = deserialize(backward_layer)
        if not isinstance(layer, _RNN):
            raise ValueError("[Bidirectional] expects a SimpleRNN, LSTM or GRU layer, got "
                             f"{type(layer).__name__}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"[Bidirectional] merge_mode must be one of {_MERGE_MODES}, got "
                             f"{merge_mode!r}")
        super().__init__(**kwargs)
        self.merge_mode = merge_mode
        self.forward_layer = layer
        self.forward_layer.name = "forward_" + layer.name
        if backward_layer is None:
            backward_layer = type(layer).from_config(
                {**layer.get_config(), "name": "backward_" + layer.name,
                 "go_backwards": not layer.go_backwards})
        elif backward_layer.go_backwards == layer.go_backwards:
            raise ValueError("[Bidirectional] backward_layer must have go_backwards="
                             f"{not layer.go_backwards}")
        self.backward_layer = backward_layer
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        if self._input_shape_arg is not None:
            self._maybe_build((None,) + self._input_shape_arg)
        if weights is not None:
            self.set_weights(weights)

    def build(self, input_shape) -> None:
        for layer in (self.forward_layer, self.backward_layer):
            layer._maybe_build(input_shape)

    def _merge(self, a, b):
        if self.merge_mode == "concat":
            return dc.cat([a, b], dim=-1)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "mul":
            return a * b
        if self.merge_mode == "ave":
            return (a + b) * 0.5
        return [a, b]

    def call(self, inputs, initial_state=None, training=None):
        fwd_init = bwd_init = None
        if initial_state is not None:
            states = list(initial_state)
            half = len(states) // 2
            fwd_init, bwd_init = states[:half], states[half:]
        y_f = self.forward_layer.call(inputs, initial_state=fwd_init, training=training)
        y_b = self.backward_layer.call(inputs, initial_state=bwd_init, training=training)
        states = []
        if self.return_state:
            y_f, states_f = y_f[0], y_f[1:]
            y_b, states_b = y_b[0], y_b[1:]
            states = list(states_f) + list(states_b)
        if self.return_sequences:
            y_b = y_b.flip(1)  # back to input time order
        out = self._merge(y_f, y_b)
        if self.return_state:
            return (out if isinstance(out, list) else [out]) + states
        return out

    def get_config(self) -> dict:
        cfg = {**super().get_config(), "merge_mode": self.merge_mode}
        cfg["layer"] = {"class_name": type(self.forward_layer).__name__,
                        "config": {**self.forward_layer.get_config(),
                                   "name": self.forward_layer.name[len("forward_"):]}}
        cfg["backward_layer"] = {"class_name": type(self.backward_layer).__name__,
                                 "config": self.backward_layer.get_config()}
        return cfg
