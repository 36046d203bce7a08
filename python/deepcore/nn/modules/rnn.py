"""RNN, LSTM, GRU and their cells, with torch.nn's signatures, parameter names and init.

Each layer and direction runs as one call of the C++ op ``_C._rnn_layer`` (the whole sequence,
forward and backward through time in C++, Note [RNN layer] in csrc/ops/rnn.cpp); this file
stacks layers and directions, applies inter-layer dropout, and handles batch_first, unbatched
input and PackedSequence inputs. The cells are the same op over one time step.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, List, Optional, Tuple, Union

from ..._C import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ..utils.rnn import PackedSequence
from ._factory import empty_param_data
from .module import Module, _layer_error

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _dc():
    import deepcore
    return deepcore


def _shape(t: Any) -> Tuple[int, ...]:
    return tuple(getattr(t, "shape", ()))


def _reset_uniform(self) -> None:
    """torch's init of every recurrent weight and bias: U(-1/sqrt(hidden), 1/sqrt(hidden))."""
    stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
    for weight in self.parameters():
        init.uniform_(weight, -stdv, stdv)


def _describe(self) -> str:
    return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"


def _value_error(self, message: str) -> BaseException:
    return _layer_error(ValueError, f"{self._short_description()}: {message}")


class RNNBase(Module):
    """The multi-layer recurrent network behind RNN, LSTM and GRU (torch.nn.RNNBase)."""

    __constants__ = ["mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "dropout", "bidirectional", "proj_size"]

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        name = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(mode, mode)
        if mode not in _GATES:
            raise ValueError(f"{name}: unrecognized RNN mode {mode!r}")
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed, got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        for what, v in (("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name}: {what} should be of type int, got "
                                f"{type(v).__name__}")
            if v <= 0:
                raise ValueError(f"{name}: {what} must be greater than zero, got {v}")
        if proj_size < 0:
            raise ValueError(f"{name}: proj_size should be a positive integer or zero to "
                             f"disable projections, got {proj_size}")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size ({proj_size}) has to be smaller than "
                             f"hidden_size ({hidden_size})")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size argument is only supported for LSTM, not RNN "
                             "or GRU")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names: List[str] = []
        self._all_weights: List[List[str]] = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else real_hidden * num_directions
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                names = []
                for base, shape in shapes:
                    pname = f"{base}_l{layer}{suffix}"
                    setattr(self, pname, Parameter(empty_param_data(shape, device, dtype)))
                    names.append(pname)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    # ---- torch compatibility ------------------------------------------------------------------

    def flatten_parameters(self) -> None:
        """Kept for compatibility: the weights are used in place, there is nothing to flatten."""

    @property
    def _flat_weights(self) -> List[Optional[Parameter]]:
        return [getattr(self, n, None) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> List[List[Parameter]]:
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    reset_parameters = _reset_uniform
    _short_description = _describe
    _error = _value_error

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ---- forward ------------------------------------------------------------------------------

    def _check_hidden(self, h: Tensor, expected: Tuple[int, ...], what: str) -> None:
        if _shape(h) != expected:
            raise self._error(f"expected {what} of shape {expected}, got {_shape(h)}")

    def forward(self, input: Union[Tensor, PackedSequence], hx: Any = None) -> Any:
        dc = _dc()
        is_lstm = self.mode == "LSTM"
        num_directions = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        packed = isinstance(input, PackedSequence)
        unbatched = False
        if packed:
            data, batch_sizes_t, sorted_indices, unsorted_indices = input
            batch_sizes = [int(v) for v in batch_sizes_t.tolist()]
            x = data
            if x.dim() != 2:
                raise self._error(f"expected packed data of shape (N, {self.input_size}), got "
                                  f"{_shape(x)}")
            batch = batch_sizes[0]
        else:
            if not isinstance(input, Tensor):
                raise _layer_error(TypeError, f"{self._short_description()}: expected a Tensor "
                                   f"or PackedSequence input, got {type(input).__name__}")
            if input.dim() not in (2, 3):
                raise self._error(f"expected input to be 2D (unbatched) or 3D (batched), got "
                                  f"{input.dim()}D input of shape {_shape(input)}")
            batch_sizes = None
            sorted_indices = unsorted_indices = None
            unbatched = input.dim() == 2
            x = input.unsqueeze(1) if unbatched else (
                input.transpose(0, 1) if self.batch_first else input)
            batch = x.shape[1]
        if x.shape[-1] != self.input_size:
            raise self._error(f"input of shape {_shape(input.data if packed else input)} has "
                              f"{x.shape[-1]} features, expected input_size={self.input_size}")
        layers = self.num_layers * num_directions
        h_shape = (layers, batch, real_hidden)
        c_shape = (layers, batch, self.hidden_size)
        if hx is None:
            h0 = dc.zeros(h_shape, dtype=x.dtype, device=x.device)
            c0 = dc.zeros(c_shape, dtype=x.dtype, device=x.device) if is_lstm else None
        else:
            if is_lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise _layer_error(TypeError, f"{self._short_description()}: expected hx to "
                                       "be a tuple (h_0, c_0)")
                h0, c0 = hx
            else:
                h0, c0 = hx, None
            if unbatched:
                for t, what, exp in ((h0, "hidden state", 2), (c0, "cell state", 2)):
                    if t is not None and t.dim() != exp:
                        raise self._error(f"for unbatched 2-D input, {what} should also be 2-D "
                                          f"but got {t.dim()}-D tensor of shape {_shape(t)}")
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            self._check_hidden(h0, h_shape, "hidden state")
            if c0 is not None:
                self._check_hidden(c0, c_shape, "cell state")
            if sorted_indices is not None:
                h0 = h0.index_select(1, sorted_indices)
                c0 = c0.index_select(1, sorted_indices) if c0 is not None else None
        h_n: List[Tensor] = []
        c_n: List[Tensor] = []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(num_directions):
                idx = layer * num_directions + d
                # weight_ih, weight_hh[, bias_ih, bias_hh][, weight_hr] (see __init__)
                w = [getattr(self, n) for n in self._all_weights[idx]]
                b_ih, b_hh = (w[2], w[3]) if self.bias else (None, None)
                res = F._rnn_layer(layer_in, h0[idx], c0[idx] if is_lstm else None,
                                    w[0], w[1], b_ih, b_hh,
                                    w[-1] if self.proj_size > 0 else None, batch_sizes,
                                    self.mode, d == 1)
                outs.append(res[0])
                h_n.append(res[1])
                if is_lstm:
                    c_n.append(res[2])
            layer_in = outs[0] if num_directions == 1 else dc.cat(outs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        output = layer_in
        hn = dc.stack(h_n, 0)
        cn = dc.stack(c_n, 0) if is_lstm else None
        if packed:
            output = PackedSequence(output, batch_sizes_t, sorted_indices, unsorted_indices)
            if unsorted_indices is not None:
                hn = hn.index_select(1, unsorted_indices)
                cn = cn.index_select(1, unsorted_indices) if cn is not None else None
        elif unbatched:
            output = output.squeeze(1)
            hn = hn.squeeze(1)
            cn = cn.squeeze(1) if cn is not None else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return (output, (hn, cn)) if is_lstm else (output, hn)


class RNN(RNNBase):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu.

    RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; select from 'tanh' "
                             "or 'relu'")
        self.nonlinearity = nonlinearity
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)


class LSTM(RNNBase):
    """Long short-term memory; gates (i, f, g, o) in torch's order, optional projection of h
    (proj_size). Returns (output, (h_n, c_n))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit, torch's formulation: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device: Any = None, dtype: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)


# ---- cells ----------------------------------------------------------------------------------

class RNNCellBase(Module):
    """weight_ih (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh (G*H), U(-1/sqrt(H), 1/sqrt(H))."""

    __constants__ = ["input_size", "hidden_size", "bias"]

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(empty_param_data((num_chunks * hidden_size, input_size),
                                                    device, dtype))
        self.weight_hh = Parameter(empty_param_data((num_chunks * hidden_size, hidden_size),
                                                    device, dtype))
        if bias:
            self.bias_ih = Parameter(empty_param_data((num_chunks * hidden_size,), device, dtype))
            self.bias_hh = Parameter(empty_param_data((num_chunks * hidden_size,), device, dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = _reset_uniform
    _short_description = _describe
    _error = _value_error

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nl = getattr(self, "nonlinearity", "tanh")
        if nl != "tanh":
            s += f", nonlinearity={nl}"
        return s

    def _step(self, mode: str, input: Tensor, states: List[Optional[Tensor]]) -> List[Tensor]:
        """Runs one step; states are (h,) or (h, c), each None or matching the input's
        batching. Returns the new states, unbatched again if the input was."""
        dc = _dc()
        if not isinstance(input, Tensor):
            raise _layer_error(TypeError, f"{self._short_description()}: expected a Tensor "
                               f"input, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise self._error(f"expected input to be 1D or 2D, got {input.dim()}D input of "
                              f"shape {_shape(input)}")
        if input.shape[-1] != self.input_size:
            raise self._error(f"input of shape {_shape(input)} has {input.shape[-1]} features, "
                              f"expected input_size={self.input_size}")
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        batch = x.shape[0]
        full = []
        for i, s in enumerate(states):
            what = "hidden state" if i == 0 else "cell state"
            if s is None:
                full.append(dc.zeros((batch, self.hidden_size), dtype=x.dtype, device=x.device))
                continue
            expected = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
            if _shape(s) != expected:
                raise self._error(f"expected {what} of shape {expected}, got {_shape(s)}")
            full.append(s.unsqueeze(0) if unbatched else s)
        res = F._rnn_layer(x.unsqueeze(0), full[0], full[1] if len(full) > 1 else None,
                            self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, None,
                            None, mode, False)
        new = [res[1]] + ([res[2]] if len(full) > 1 else [])
        return [n.squeeze(0) for n in new] if unbatched else new


class RNNCell(RNNCellBase):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; select from "
                             "'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        return self._step(mode, input, [hx])[0]


class LSTMCell(RNNCellBase):
    """One LSTM step: returns (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor,
                hx: Optional[Tuple[Tensor, Tensor]] = None) -> Tuple[Tensor, Tensor]:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise _layer_error(TypeError, f"{self._short_description()}: expected hx to be a "
                               "tuple (h, c)")
        h, c = self._step("LSTM", input, list(hx) if hx is not None else [None, None])
        return h, c


class GRUCell(RNNCellBase):
    """One GRU step (torch's formulation)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        return self._step("GRU", input, [hx])[0]
