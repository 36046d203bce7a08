"""Keras models: ``Sequential``, functional ``Model(inputs, outputs)`` and subclassed
``Model`` -- all ``nn.Module``s -- with compile / fit / evaluate / predict / summary / save.

Training runs ``deepcore.train.loop`` (shared with ``deepcore.train.Trainer``): callbacks,
progress bars, validation, resumable checkpoints (``fit(..., checkpoint=path)`` then
``fit(..., resume=path)``; see Note [Bit-exact resume] in deepcore/train/state.py). Under a
``deepcore.distributed`` process group of several processes, ``fit`` trains data-parallel
(each rank its share of the data, gradients averaged; deepcore/train/distributed.py);
``evaluate`` and ``predict`` stay local to each process. Under a mixed precision policy each
layer computes in its policy's dtype and the loss in float32 (Note [Keras autocasting] in
deepcore/keras/mixed_precision.py).
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

import deepcore as dc
from .. import optim
from ..train.engine import StepEngine, class_weights_for
from ..train import loop
from ..train.distributed import wrap_model
from . import losses as losses_mod
from . import optimizers as optimizers_mod
from .layers import InputLayer, KerasTensor, Layer, _unique_name

__all__ = ["Model", "Sequential", "load_model"]


def _as_array(a, name: str) -> np.ndarray:
    if isinstance(a, dc.Tensor):
        a = a.detach().numpy()
    a = np.asarray(a)
    if a.dtype.kind == "f" and a.dtype != np.float32:
        a = a.astype(np.float32)  # Keras' floatx
    elif a.dtype.kind == "b":
        a = a.astype(np.float32)
    elif a.dtype.kind not in "iuf":
        raise TypeError(f"[fit] {name} must hold numbers, got dtype {a.dtype}")
    return a


def _float32(y_pred):
    """Predictions in 16-bit floats (mixed precision) widened to float32."""
    if isinstance(y_pred, (list, tuple)):
        return type(y_pred)(_float32(p) for p in y_pred)
    if isinstance(y_pred, dc.Tensor) and y_pred.dtype.is_floating_point and \
            y_pred.dtype.itemsize < 4:
        return y_pred.float()
    return y_pred


def _is_array_like(x) -> bool:
    return isinstance(x, (np.ndarray, dc.Tensor, list, tuple)) or np.isscalar(x)


class Model(Layer, StepEngine):
    """``Model(inputs, outputs)`` builds a graph of layers from ``keras.Input`` tensors;
    ``Model()`` subclassed with a ``call`` method is a custom model."""

    def __init__(self, inputs=None, outputs=None, name: Optional[str] = None, **kwargs):
        super().__init__(name=name or _unique_name(
            "functional" if inputs is not None else type(self).__name__.lower()), **kwargs)
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self._nodes: List[tuple] = []
        self._graph_inputs: List[KerasTensor] = []
        self._graph_outputs: List[KerasTensor] = []
        self._single_output = True
        self._init_metrics([], None)
        self.history = None
        if inputs is not None:
            if outputs is None:
                raise ValueError("[Model] outputs is required with inputs")
            self._init_graph(inputs, outputs)

    # ---- the functional graph ----------------------------------------------------------------
    def _init_graph(self, inputs, outputs) -> None:
        ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        for t in ins + outs:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"[Model] inputs and outputs must be keras tensors, got "
                                f"{type(t).__name__}")
        input_ids = {id(t) for t in ins}
        order, seen = [], set()

        def visit(t: KerasTensor):
            if id(t) in seen:
                return
            seen.add(id(t))
            if id(t) in input_ids:
                return
            if isinstance(t.layer, InputLayer):
                raise ValueError(f"[Model] output depends on input {t.layer.name!r}, which is "
                                 "not in the model's inputs")
            for i in t.inputs:
                visit(i)
            order.append(t)
        for t in outs:
            visit(t)
        self._graph_inputs, self._graph_outputs = ins, outs
        self._convert_input_args = False  # Keras: a graph's layers cast their own inputs
        self._single_output = not isinstance(outputs, (list, tuple))
        self._nodes = order
        for t in ins:
            self._add_layer(t.layer)
        for t in order:
            self._add_layer(t.layer)
        self.built = True
        self._build_shape = [t.shape for t in ins] if len(ins) > 1 else ins[0].shape

    def _add_layer(self, layer: Layer) -> None:
        # Layers are registered under their position ("0", "1", ...), not their auto-generated
        # names: state dicts then match between two instances of the same architecture (a
        # resumed run, load_weights), as nn.Sequential's do.
        if any(m is layer for m in self._modules.values()):
            return
        names = {m.name for m in self._modules.values() if isinstance(m, Layer)}
        if layer.name in names:
            raise ValueError(f"[Model] two different layers are named {layer.name!r}; layer "
                             "names must be unique within a model")
        self.add_module(str(len(self._modules)), layer)

    @property
    def layers(self) -> List[Layer]:
        return [m for m in self._modules.values() if isinstance(m, Layer)]

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"[Model] no layer named {name!r}; layers: "
                         f"{[l.name for l in self.layers]}")

    def call(self, inputs):
        if not self._nodes and not self._graph_inputs:
            raise NotImplementedError(f"[Model] {type(self).__name__} has no graph: pass "
                                      "inputs/outputs or override call()")
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(xs) != len(self._graph_inputs):
            raise ValueError(f"[Model] {self.name!r} expects {len(self._graph_inputs)} inputs, "
                             f"got {len(xs)}")
        values: Dict[int, dc.Tensor] = {id(t): x for t, x in zip(self._graph_inputs, xs)}
        for t in self._nodes:
            args = [values[id(i)] for i in t.inputs]
            multi = len(t.inputs) > 1 or t.layer.__class__.__name__ in ("Concatenate", "Add")
            values[id(t)] = t.layer(args if multi else args[0])
        outs = [values[id(t)] for t in self._graph_outputs]
        return outs[0] if self._single_output else outs

    def _ensure_built_for(self, inputs: List[np.ndarray]) -> None:
        if self.built:
            return
        if type(self).call is Model.call or isinstance(self, Sequential):
            shape = (None,) + tuple(inputs[0].shape[1:])
            self._maybe_build(shape if len(inputs) == 1 else
                              [(None,) + tuple(a.shape[1:]) for a in inputs])
        else:
            # A subclassed model builds its layers on a first call; one sample is enough.
            was = self.training
            self.eval()
            with dc.no_grad():
                xs = [dc.from_numpy(np.ascontiguousarray(a[:1])) for a in inputs]
                Layer.__call__(self, xs[0] if len(xs) == 1 else xs)
            self.train(was)
            self.built = True

    # ---- compile ----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=None, steps_per_execution=1,
                jit_compile=None) -> None:
        self._optimizer_spec = optimizers_mod.get(optimizer)
        if self.dtype_policy.name == "mixed_float16" and \
                not isinstance(self._optimizer_spec, optimizers_mod.LossScaleOptimizer):
            # Keras: float16 gradients need loss scaling (deepcore/keras/mixed_precision.py)
            self._optimizer_spec = optimizers_mod.LossScaleOptimizer(self._optimizer_spec)
        self.loss = losses_mod.get(loss) if loss is not None else None
        self._init_metrics(metrics, self.loss)
        self._metric_specs = list(metrics or [])
        self.optimizer = None
        self.grad_scaler = None
        self.compiled = True
        if self.built:
            self._build_optimizer()

    def _build_optimizer(self) -> None:
        if self.optimizer is not None:
            return
        spec = self._optimizer_spec
        if isinstance(spec, optim.Optimizer):
            self.optimizer = spec
        else:
            params = [p for p in self.parameters() if p.requires_grad]
            if not params:
                raise ValueError(f"[compile] model {self.name!r} has no trainable weights")
            self.optimizer = spec.build(params)
        if isinstance(spec, optimizers_mod.LossScaleOptimizer):
            self.grad_scaler = spec.scaler  # the training step scales the loss with it

    def _check_compiled(self, what: str) -> None:
        if not self.compiled:
            raise RuntimeError(f"[{what}] you must compile the model before {what}: "
                               "model.compile(optimizer=..., loss=...)")
        if self.loss is None:
            raise ValueError(f"[{what}] the model was compiled without a loss")

    # ---- StepEngine hooks -------------------------------------------------------------------
    @property
    def module(self):
        return self

    def _forward(self, x):
        return self._network()(x)

    def _loss_value(self, y_pred, y, sw):
        if y is None:
            raise ValueError("[fit] no targets: pass y, or batches of (x, y)")
        return self.loss(y, _float32(y_pred), sw)  # Keras' losses compute in float32

    # ---- data --------------------------------------------------------------------------------
    def _inputs(self, x) -> List[np.ndarray]:
        if isinstance(x, dict):
            names = [t.layer.name for t in self._graph_inputs]
            missing = [n for n in names if n not in x]
            if missing:
                raise KeyError(f"[fit] input dict lacks {missing}; the model's inputs are "
                               f"{names}")
            return [_as_array(x[n], f"x[{n!r}]") for n in names]
        if isinstance(x, (list, tuple)) and len(self._graph_inputs) > 1:
            return [_as_array(a, f"x[{i}]") for i, a in enumerate(x)]
        return [_as_array(x, "x")]

    def _batches(self, x, y=None, sample_weight=None, batch_size=32, shuffle=False,
                 class_weight=None):
        if x is None:
            raise ValueError("[fit] x is required")
        if not _is_array_like(x) and not isinstance(x, dict):
            if y is not None:
                raise ValueError("[fit] y must be None when x is a dataset or a DataLoader")
            if hasattr(x, "__getitem__") and hasattr(x, "__len__") and \
                    not hasattr(x, "batch_sampler"):
                from ..utils.data import DataLoader
                x = DataLoader(x, batch_size=batch_size or 32, shuffle=shuffle)
            return loop.LoaderBatches(x), None
        inputs = self._inputs(x)
        y_arr = _as_array(y, "y") if y is not None else None
        sw = _as_array(sample_weight, "sample_weight") if sample_weight is not None else None
        if class_weight is not None and y_arr is not None:
            cw = class_weights_for(y_arr, class_weight)
            sw = cw if sw is None else sw * cw
        batches = loop.ArrayBatches(inputs, y_arr, sw, batch_size or 32, shuffle,
                                    single_input=len(inputs) == 1)
        return batches, inputs

    # ---- fit / evaluate / predict -----------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, verbose="auto",
            callbacks=None, validation_split: float = 0.0, validation_data=None,
            shuffle: bool = True, class_weight=None, sample_weight=None,
            initial_epoch: int = 0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq: int = 1, checkpoint=None,
            resume=None, distributed=None):
        """Trains for ``epochs`` epochs and returns a ``History``. ``checkpoint=path`` saves
        the complete training state after every epoch and on Ctrl-C; ``resume=path`` (or
        ``True`` for the checkpoint path) continues a run bit-exactly. ``distributed``: None
        trains data-parallel when a process group of several processes exists, False never
        (deepcore/train/distributed.py)."""
        self._check_compiled("fit")
        batch_size = batch_size or 32
        if validation_split and validation_data is None:
            if not _is_array_like(x):
                raise ValueError("[fit] validation_split needs array inputs; pass "
                                 "validation_data for datasets and DataLoaders")
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"[fit] validation_split must be in (0, 1), got "
                                 f"{validation_split}")
            inputs = self._inputs(x)
            n = len(inputs[0])
            split = int(n * (1.0 - validation_split))  # Keras: the last samples validate
            y_arr = _as_array(y, "y")
            xs_train = [a[:split] for a in inputs]
            xs_val = [a[split:] for a in inputs]
            x = xs_train if len(inputs) > 1 else xs_train[0]
            validation_data = (xs_val if len(inputs) > 1 else xs_val[0], y_arr[split:])
            y = y_arr[:split]
            if sample_weight is not None:
                sample_weight = _as_array(sample_weight, "sample_weight")[:split]
        train, inputs = self._batches(x, y, sample_weight, batch_size, shuffle, class_weight)
        self.class_weight = class_weight if inputs is None else None
        if inputs is not None:
            self._ensure_built_for(inputs)
        elif not self.built:
            sample = _first_sample(train.loader)
            if sample is not None:
                self._ensure_built_for([np.asarray(sample)[None]])
        self._build_optimizer()
        val = None
        if validation_data is not None:
            if isinstance(validation_data, (tuple, list)):
                val, _ = self._batches(*validation_data,
                                       batch_size=validation_batch_size or batch_size)
            else:
                val, _ = self._batches(validation_data,
                                       batch_size=validation_batch_size or batch_size)
        # Data-parallel under a process group: a DistributedDataParallel around this model
        # for the duration of fit, kept out of the module tree (it holds the model).
        _, ddp = wrap_model(self, distributed, "fit")
        object.__setattr__(self, "_ddp", ddp)
        try:
            history = loop.run_fit(self, train, epochs=epochs, initial_epoch=initial_epoch,
                                   validation=val, callbacks=callbacks, verbose=verbose,
                                   checkpoint=checkpoint, resume=resume,
                                   steps_per_epoch=steps_per_epoch,
                                   validation_freq=validation_freq)
        finally:
            self.class_weight = None
            if ddp is not None:
                ddp._remove_autograd_hooks()
            object.__setattr__(self, "_ddp", None)
        self.history = history
        return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict: bool = False):
        self._check_compiled("evaluate")
        batches, inputs = self._batches(x, y, sample_weight, batch_size or 32)
        if inputs is not None:
            self._ensure_built_for(inputs)
        cbs = loop.CallbackList(callbacks, model=self)
        logs = loop.run_evaluate(self, batches, cbs, verbose=0 if verbose == "auto" else verbose,
                                 steps=steps)
        if return_dict:
            return logs
        values = [logs[n] for n in self.metrics_names]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        batches, inputs = self._batches(x, None, None, batch_size or 32)
        if inputs is not None:
            self._ensure_built_for(inputs)
        cbs = loop.CallbackList(callbacks, model=self)
        outs = loop.run_predict(self, batches, cbs, steps=steps)
        if not outs:
            raise ValueError("[predict] no batches to predict on")
        if isinstance(outs[0], list):
            return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
        return np.concatenate(outs)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict: bool = False):
        self._check_compiled("train_on_batch")
        batches, inputs = self._batches(x, y, sample_weight, batch_size=len(_first(x)),
                                        class_weight=class_weight)
        self._ensure_built_for(inputs)
        self._build_optimizer()
        self.train()
        self.reset_metrics()
        for batch in batches:
            self.train_step(batch)
        return self._batch_result(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        self._check_compiled("test_on_batch")
        batches, inputs = self._batches(x, y, sample_weight, batch_size=len(_first(x)))
        self._ensure_built_for(inputs)
        loop.run_evaluate(self, batches)
        return self._batch_result(return_dict)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=len(_first(x)))

    def _batch_result(self, return_dict: bool):
        logs = self.logs()
        if return_dict:
            return logs
        values = [logs[n] for n in self.metrics_names]
        return values[0] if len(values) == 1 else values

    # ---- weights and files ------------------------------------------------------------------
    def get_weights(self):
        return [t.detach().numpy().copy() for t in self.state_dict().values()]

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        from .saving import save_weights
        save_weights(self, filepath)

    def load_weights(self, filepath) -> None:
        from .saving import load_weights
        load_weights(self, filepath)

    def save(self, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
        from .saving import save_model
        save_model(self, filepath, include_optimizer=include_optimizer)

    def summary(self, line_length: Optional[int] = None, print_fn=None) -> None:
        from .saving import summary_text
        text = summary_text(self, line_length or 98)
        (print_fn or print)(text)

    def get_config(self) -> dict:
        from .saving import model_config
        return model_config(self)

    @classmethod
    def from_config(cls, config: dict):
        from .saving import model_from_config
        return model_from_config(config)


def _first(x):
    while isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]):
        x = x[0]
    if isinstance(x, dict):
        return _first(next(iter(x.values())))
    return x


def _first_sample(loader):
    dataset = getattr(loader, "dataset", None)
    if dataset is None or not hasattr(dataset, "__getitem__"):
        return None
    item = dataset[0]
    x = item[0] if isinstance(item, (tuple, list)) else item
    return x.detach().numpy() if isinstance(x, dc.Tensor) else x


class Sequential(Model):
    """A plain stack of layers; built when the first layer knows its input shape (or a
    ``keras.Input`` comes first), otherwise on the first call."""

    _convert_input_args = False  # Keras: the layers cast their own inputs

    def __init__(self, layers=None, name: Optional[str] = None, **kwargs):
        super().__init__(name=name or _unique_name("sequential"), **kwargs)
        self._stack: List[Layer] = []
        self._input_tensor: Optional[KerasTensor] = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        if isinstance(layer, KerasTensor) and isinstance(layer.layer, InputLayer):
            if self._stack:
                raise ValueError("[Sequential] an Input must come first")
            self._input_tensor = layer
            return
        if isinstance(layer, InputLayer):
            from .layers import Input
            self._input_tensor = Input(layer.shape, name=None)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"[Sequential] expected a keras Layer, got {type(layer).__name__} "
                            "(wrap nn.Modules in a Model subclass)")
        self._add_layer(layer)
        self._stack.append(layer)
        self.built = False
        self._optimizer_ready = False
        shape = None
        if self._input_tensor is not None:
            shape = self._input_tensor.shape
        elif self._stack[0]._input_shape_arg is not None:
            shape = (None,) + self._stack[0]._input_shape_arg
        if shape is not None:
            self._maybe_build(shape)

    def pop(self) -> Layer:
        layer = self._stack.pop()
        del self._modules[str(len(self._modules) - 1)]
        self.built = False
        return layer

    @property
    def layers(self) -> List[Layer]:
        return list(self._stack)

    def build(self, input_shape=None) -> None:
        if input_shape is None:
            raise ValueError("[Sequential] build needs an input shape")
        t = KerasTensor(tuple(input_shape), dc.float32 if self._input_tensor is None
                        else self._input_tensor.dtype, InputLayer(shape=input_shape[1:]))
        for layer in self._stack:
            layer._output_shapes.clear()
            t = layer(t)
        self._build_input_shape = tuple(input_shape)

    def call(self, inputs):
        x = inputs
        for layer in self._stack:
            x = layer(x)
        return x


def load_model(filepath, compile: bool = True):
    from .saving import load_model as _load
    return _load(filepath, compile=compile)
