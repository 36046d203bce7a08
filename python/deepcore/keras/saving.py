"""Saving and loading keras models, and ``summary()``.

Note [Keras model files]
``model.save(path)`` writes ONE ``dc.save`` file (safetensors): the weights (and the
optimizer's state) as tensors, and in the JSON metadata the architecture -- every layer's
class name and ``get_config()``, plus the graph for functional models -- and the compile
configuration. A path that is an existing directory (or ends with a separator) gets
``config.json`` + ``model.weights.safetensors`` instead.

Loading parses JSON and builds only layer classes in the registry
(``deepcore.keras.layers.register``); an unknown class name raises an error naming it. No
code from the file runs, ever: there is no pickle and no lambda deserialization.

Keras 3's own files are dispatched to ``keras_format`` (Note [Keras 3 model files]): a path
ending in ``.keras`` is saved as a Keras archive, and any zip archive (or a directory Keras
wrote unzipped) loads as one; ``save_weights``/``load_weights`` use Keras' HDF5 layout for
``.h5`` paths and HDF5 files, and read the weights of a ``.keras`` archive.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import deepcore as dc
from . import keras_format
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .layers import InputLayer, KerasTensor, Layer, deserialize, register, Input

FORMAT = "deepcore.keras.model"
VERSION = 1


# ---- architecture -----------------------------------------------------------------------------

def _layer_spec(layer: Layer) -> dict:
    from .models import Model, Sequential
    if isinstance(layer, Sequential):
        return {"class_name": "Sequential", "config": model_config(layer)["config"]}
    if isinstance(layer, Model):
        return {"class_name": "Functional", "config": model_config(layer)["config"]}
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def model_config(model) -> dict:
    from .models import Sequential
    if isinstance(model, Sequential):
        shape = getattr(model, "_build_input_shape", None) if model.built else None
        dtype = model._input_tensor.dtype.name if model._input_tensor is not None else "float32"
        return {"class_name": "Sequential", "config": {
            "name": model.name, "layers": [_layer_spec(l) for l in model.layers],
            "build_input_shape": list(shape) if shape is not None else None,
            "input_dtype": dtype}}
    if not model._graph_inputs:
        raise NotImplementedError(
            f"[save] {type(model).__name__} is a subclassed model: its call() is Python code, "
            "which a model file never holds. Save its weights with model.save_weights(path), "
            "or build it with Sequential or the functional API")
    layers, seen = [], set()
    for t in model._graph_inputs + model._nodes:
        if id(t.layer) not in seen:
            seen.add(id(t.layer))
            layers.append(_layer_spec(t.layer))
    return {"class_name": "Functional", "config": {
        "name": model.name, "layers": layers,
        "nodes": [{"layer": t.layer.name, "inputs": [i.key for i in t.inputs], "key": t.key}
                  for t in model._nodes],
        "input_layers": [t.key for t in model._graph_inputs],
        "output_layers": [t.key for t in model._graph_outputs],
        "single_output": model._single_output}}


def _sequential_from_config(config: dict):
    from .models import Sequential
    model = Sequential(name=config.get("name"))
    shape = config.get("build_input_shape")
    for spec in config.get("layers", []):
        model.add(_deserialize_any(spec))
    if shape is not None and not model.built:
        model._maybe_build(tuple(shape))
    return model


def _functional_from_config(config: dict):
    from .models import Model
    layers = {}
    for spec in config.get("layers", []):
        layer = _deserialize_any(spec)
        layers[layer.name] = layer
    tensors: Dict[str, KerasTensor] = {}
    for key in config["input_layers"]:
        layer = layers.get(key.split(":")[0])
        if not isinstance(layer, InputLayer):
            raise ValueError(f"[load_model] input {key!r} is not an InputLayer")
        kt = Input(layer.shape, dtype=layer.dtype_name, name=None)
        kt.layer = layer  # keep the saved name
        layer._output_shapes = [kt.shape]
        tensors[key] = kt
    for node in config["nodes"]:
        layer = layers.get(node["layer"])
        if layer is None:
            raise ValueError(f"[load_model] node refers to unknown layer {node['layer']!r}")
        try:
            ins = [tensors[k] for k in node["inputs"]]
        except KeyError as e:
            raise ValueError(f"[load_model] node {node['key']!r} uses tensor {e} before it "
                             "is defined") from None
        tensors[node["key"]] = layer(ins if len(ins) > 1 else ins[0])
    outs = [tensors[k] for k in config["output_layers"]]
    return Model([tensors[k] for k in config["input_layers"]],
                 outs[0] if config.get("single_output", True) else outs,
                 name=config.get("name"))


def _deserialize_any(spec: dict):
    if isinstance(spec, dict) and spec.get("class_name") == "Sequential":
        return _sequential_from_config(spec.get("config", {}))
    if isinstance(spec, dict) and spec.get("class_name") == "Functional":
        return _functional_from_config(spec.get("config", {}))
    return deserialize(spec)


def model_from_config(spec: dict):
    return _deserialize_any(spec)


# ---- files ------------------------------------------------------------------------------------

def _compile_config(model):
    if not model.compiled:
        return None
    opt = optimizers_mod.serialize(model._optimizer_spec)
    loss = losses_mod.serialize(model.loss) if model.loss is not None else None
    metrics = [metrics_mod.serialize(m) for m in model._metrics]
    if opt is None or loss is None or any(m is None for m in metrics):
        return None  # a custom part: the loaded model comes back uncompiled
    return {"optimizer": opt, "loss": loss, "metrics": metrics}


def save_model(model, filepath, include_optimizer: bool = True) -> None:
    filepath = os.fspath(filepath)
    if filepath.endswith(".keras"):
        keras_format.save_keras_model(model, filepath, include_optimizer=include_optimizer)
        return
    config = model_config(model)
    compile_config = _compile_config(model)
    opt_state = None
    if include_optimizer and compile_config is not None and model.optimizer is not None:
        opt_state = model.optimizer.state_dict()
    if os.path.isdir(filepath) or filepath.endswith(os.sep):
        os.makedirs(filepath, exist_ok=True)
        doc = {"format": FORMAT, "version": VERSION, "model_config": config,
               "compile_config": compile_config}
        tmp = os.path.join(filepath, ".config.json.tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, os.path.join(filepath, "config.json"))
        dc.save({"weights": model.state_dict(), "optimizer": opt_state},
                os.path.join(filepath, "model.weights.safetensors"))
        return
    dc.save({"format": FORMAT, "version": VERSION, "model_config": config,
             "compile_config": compile_config, "weights": model.state_dict(),
             "optimizer": opt_state}, filepath)


def load_model(filepath, compile: bool = True):
    filepath = os.fspath(filepath)
    if keras_format.is_zip_file(filepath) or (
            os.path.isdir(filepath) and keras_format.is_keras_dir(filepath)):
        return keras_format.load_keras_model(filepath, compile=compile)
    if os.path.isdir(filepath):
        with open(os.path.join(filepath, "config.json")) as f:
            doc = json.load(f)
        doc.update(dc.load(os.path.join(filepath, "model.weights.safetensors")))
    else:
        doc = dc.load(filepath)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"[load_model] '{filepath}' is not a keras model file written by "
                         "model.save")
    if doc.get("version", 0) > VERSION:
        raise ValueError(f"[load_model] '{filepath}' was written by a newer deepcore")
    model = model_from_config(doc["model_config"])
    model.load_state_dict(doc["weights"])
    cc = doc.get("compile_config")
    if compile and cc is not None:
        model.compile(optimizer=optimizers_mod.get(cc["optimizer"]),
                      loss=losses_mod.get(cc["loss"]), metrics=list(cc["metrics"]))
        if doc.get("optimizer") is not None:
            model._build_optimizer()
            model.optimizer.load_state_dict(doc["optimizer"])
    return model


def save_weights(model, filepath) -> None:
    """``model.save_weights``: Keras 3's HDF5 layout for ``.h5`` paths, else a safetensors
    state dict."""
    if os.fspath(filepath).endswith(".h5"):
        keras_format.save_weights_h5(model, filepath)
    else:
        dc.save(model.state_dict(), filepath)


def load_weights(model, filepath) -> None:
    """``model.load_weights``: an HDF5 file or a ``.keras`` archive in Keras 3's layout, or a
    safetensors state dict."""
    if isinstance(filepath, (str, os.PathLike)) and (
            keras_format.is_hdf5_file(filepath) or keras_format.is_zip_file(filepath)):
        keras_format.load_weights_h5(model, filepath)
    else:
        model.load_state_dict(dc.load(filepath))


# ---- summary ----------------------------------------------------------------------------------

def _param_counts(layer: Layer):
    trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in layer.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for b in layer.buffers())
    return trainable, frozen


def _shape_str(shape) -> str:
    if isinstance(shape, str):
        return shape
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def summary_text(model, line_length: int = 98) -> str:
    from .models import Sequential
    if not model.built:
        raise ValueError(f"[summary] model {model.name!r} has not yet been built. Build the "
                         "model first by calling build(), by calling it on a batch of data, or "
                         "by giving the first layer an input_shape")
    functional = bool(model._graph_inputs) and not isinstance(model, Sequential)
    widths = [33, 25, 12] + ([line_length - 70] if functional else [])
    header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if functional
                                                             else [])
    total_w = sum(widths)

    def row(cells: List[Any]) -> str:
        return "".join(str(c)[:w - 1].ljust(w) for c, w in zip(cells, widths)).rstrip()

    lines = [f'Model: "{model.name}"', "_" * total_w, row(header), "=" * total_w]
    if functional:
        entries = [(t.layer, t) for t in model._graph_inputs + model._nodes]
    else:
        entries = [(layer, None) for layer in model.layers]
    listed = set()
    for i, (layer, t) in enumerate(entries):
        if t is not None:
            shape = t.shape
        else:
            try:
                shape = layer.output_shape
            except AttributeError:
                shape = "?"
        first = id(layer) not in listed
        listed.add(id(layer))
        tr, fr = _param_counts(layer)
        params = tr + fr if first else 0
        connected = ", ".join(i2.key.replace(":", "[") + "]" for i2 in t.inputs) if t else ""
        lines.append(row([f"{layer.name} ({type(layer).__name__})", _shape_str(shape), params]
                         + ([connected] if functional else [])))
        if i < len(entries) - 1:
            lines.append("")
    lines.append("=" * total_w)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad) + \
        sum(b.numel() for b in model.buffers())
    lines += [f"Total params: {trainable + frozen:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {frozen:,}", "_" * total_w]
    return "\n".join(lines)


__all__ = ["save_model", "load_model", "save_weights", "load_weights", "model_config",
           "model_from_config", "summary_text", "register"]
