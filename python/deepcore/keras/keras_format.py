"""Keras 3 model files: ``.keras`` archives and ``.weights.h5`` weight files.

Note [Keras 3 model files]
A ``.keras`` file is a zip of three members, written uncompressed:
  metadata.json      {"keras_version", "date_saved"}; informational, never needed to load
  config.json        the model as Keras serializes it: {"module", "class_name", "config",
                     "registered_name", "build_config", "compile_config"}; a functional model's
                     config lists its layers, each with "inbound_nodes" whose arguments refer
                     to tensors by "keras_history" [layer name, node index, tensor index]
  model.weights.h5   an HDF5 file (read and written with h5py), the same layout as
                     ``save_weights("x.weights.h5")``
The HDF5 layout does not use layer names. Keras walks the model: the root's group is ``vars``;
a model's layers sit under ``layers/<snake_case class name>``, numbered in order of the model's
``layers`` list ("dense", "dense_1", ...); a layer's variables are datasets "0", "1", ... of
``<path>/vars`` in the order Keras creates them (Dense: kernel, bias; BatchNormalization:
gamma, beta, moving_mean, moving_variance); an RNN's live in its cell (``<path>/cell/vars``),
a Bidirectional's in ``forward_layer`` and ``backward_layer``. Each ``vars`` group records the
layer's name in its "name" attribute. The order of a functional model's ``layers`` is Keras'
``map_graph``: layers by decreasing depth (longest path to an output), ties broken by the
first visit of a depth-first walk from the outputs -- ``_functional_order`` is that walk, so a
file deepcore writes is read by Keras at the right paths. ``load_model``, whose model carries
the file's own layer names, looks a layer whose group records another name up among its
siblings by name, which keeps files from Keras releases that order layers differently
readable; ``load_weights`` follows the paths alone, as Keras does (names of two separately
built models mean nothing).

deepcore.keras already holds weights in Keras' layouts (Conv2D kernels (kh, kw, in, out), LSTM
gates i, f, c, o; Note [Keras recurrent weights]), so arrays are copied as they are; shapes are
checked before any data is read. Loading parses JSON and reads numeric HDF5 datasets, nothing
else: a Lambda layer (Python bytecode), a custom class (a module or registered name outside
Keras) or a layer class deepcore lacks raises an error naming the class and the layer; links,
external and virtual datasets in the HDF5 file are refused.

The compile config is restored when deepcore has every piece (optimizer, loss, metrics) with
the same meaning, otherwise the model loads uncompiled with a warning naming what was
skipped. The optimizer's variables (``optimizer/vars``) travel both ways for the optimizers
both have (Note [Keras optimizer variables] in keras_format_compile.py).
"""
from __future__ import annotations

import datetime
import io
import json
import os
import warnings
import zipfile

import numpy as np

import deepcore as dc

from ..serialization import SerializationError, _atomic_write
from .keras_format_compile import (
    compile_from_keras,
    compile_to_keras,
    optimizer_arrays,
    optimizer_layout,
    set_optimizer_state,
    trainable_in_order,
)
from .keras_format_layers import (
    is_keras_module,
    keras_snake,
    layer_error,
    read_layer,
    weight_groups,
    write_layer,
)
from .layers import Input, InputLayer, KerasTensor, Layer

__all__ = [
    "is_hdf5_file",
    "is_keras_dir",
    "is_zip_file",
    "load_keras_model",
    "load_weights_h5",
    "save_keras_model",
    "save_weights_h5",
]

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
# The Keras release whose file layout this module follows and is tested against.
KERAS_LAYOUT_VERSION = "3.15.1"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAX_CONFIG_BYTES = 64 << 20


def _q(path) -> str:
    return f"'{os.fspath(path)}'"


def is_zip_file(path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def is_hdf5_file(path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == _HDF5_SIGNATURE
    except OSError:
        return False


def is_keras_dir(path) -> bool:
    """A directory written by Keras' ``save_model(..., zipped=False)``."""
    return os.path.isfile(os.path.join(path, CONFIG)) and \
        os.path.isfile(os.path.join(path, WEIGHTS))


def _h5py():
    try:
        import h5py
    except ImportError:  # h5py comes with the [keras] extra
        raise ImportError("[keras] reading and writing Keras 3 files needs h5py "
                          "(pip install 'deepcore[keras]')") from None
    return h5py


# ---- which group holds which layer ------------------------------------------------------------

def _is_model(layer) -> bool:
    from .models import Model
    return isinstance(layer, Model)


def _is_sequential(layer) -> bool:
    from .models import Sequential
    return isinstance(layer, Sequential)


def _functional_order(model) -> list[Layer]:
    """The layers of a functional model in Keras' order (Note [Keras 3 model files])."""
    inputs, outputs = model._graph_inputs, model._graph_outputs
    first_visit: dict[int, int] = {}
    post_order: list[KerasTensor] = []
    finished = set()
    for out in outputs:  # depth-first, iteratively: a layer is numbered when first entered
        stack = [(out, False)]
        while stack:
            t, expanded = stack.pop()
            if expanded:
                if id(t) not in finished:
                    finished.add(id(t))
                    post_order.append(t)
                continue
            if id(t) in finished:
                continue
            first_visit.setdefault(id(t.layer), len(first_visit))
            stack.append((t, True))
            if not isinstance(t.layer, InputLayer):
                stack.extend((i, False) for i in reversed(t.inputs))
    in_graph = {id(t) for t in post_order}
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    layers: dict[int, Layer] = {}
    for t in reversed(post_order):
        depth = max(node_depth.setdefault(id(t), 0), layer_depth.get(id(t.layer), 0))
        layer_depth[id(t.layer)] = node_depth[id(t)] = depth
        layers[id(t.layer)] = t.layer
        for parent in t.inputs:
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for t in inputs:  # inputs no output depends on
        if id(t.layer) not in layer_depth:
            layer_depth[id(t.layer)], first_visit[id(t.layer)] = 0, -1
            layers[id(t.layer)] = t.layer
    return sorted(layers.values(), key=lambda l: (-layer_depth[id(l)], first_visit[id(l)]))


def _model_layers(model) -> list[Layer]:
    if _is_sequential(model):
        return model.layers
    if model._graph_inputs:
        return _functional_order(model)
    raise NotImplementedError(
        f"[keras files] model {model.name!r} is a subclassed {type(model).__name__}: Keras "
        "files describe Sequential and functional models. Save its weights with "
        "model.save_weights(path) to a .safetensors file instead")


def _container_name(layer) -> str:
    if _is_model(layer):
        return "sequential" if _is_sequential(layer) else "functional"
    return keras_snake(type(layer).__name__)


def _weight_slots(model, prefix: str = "") -> list[tuple[str, str, bool, list]]:
    """Every HDF5 group Keras has for ``model``: ``(group path, recorded name, is a layer's
    top group, [(attribute, tensor)])``, parents before children."""
    slots = [(f"{prefix}vars", model.name, False, [])]
    used: dict[str, int] = {}
    for layer in _model_layers(model):
        base = _container_name(layer)
        used[base] = used.get(base, -1) + 1
        path = f"{prefix}layers/{base}" + (f"_{used[base]}" if used[base] else "")
        if _is_model(layer):
            inner = _weight_slots(layer, path + "/")
            slots.append((inner[0][0], inner[0][1], True, []))
            slots.extend(inner[1:])
        elif isinstance(layer, InputLayer):
            slots.append((f"{path}/vars", layer.name, True, []))
        else:
            for sub, name, tensors in weight_groups(layer):
                slots.append((f"{path}/{sub}/vars" if sub else f"{path}/vars", name, not sub,
                              tensors))
    return slots


# ---- HDF5 weights -----------------------------------------------------------------------------

def _write_weights(model, target, optimizer: bool) -> None:
    """The weights file of ``model``, with its optimizer's variables when ``optimizer`` and
    Keras has the optimizer (Note [Keras optimizer variables])."""
    h5py = _h5py()
    slots = _weight_slots(model)
    with h5py.File(target, "w") as f:
        for path, name, _, tensors in slots:
            group = f.require_group(path)
            group.attrs["name"] = name
            for i, (_, t) in enumerate(tensors):
                group.create_dataset(str(i), data=np.ascontiguousarray(t.detach().numpy()))
        arrays = optimizer_arrays(model, trainable_in_order(slots)) if optimizer else None
        if arrays is not None:
            group = f.require_group("optimizer/vars")
            group.attrs["name"] = type(model._optimizer_spec).__name__.lower()
            for i, a in enumerate(arrays):
                group.create_dataset(str(i), data=a)


def _child(h5py, parent, key: str, kind, where: str, path: str):
    """``parent[key]`` when it is a hard link to a ``kind`` (Group or Dataset), else None;
    soft and external links are refused (they reach outside the file)."""
    if key not in parent:
        return None
    link = parent.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise SerializationError(f"[load_weights] {where}: '{path}' is an HDF5 "
                                 f"{type(link).__name__}; links are not followed")
    obj = parent[key]
    if not isinstance(obj, kind):
        raise SerializationError(f"[load_weights] {where}: '{path}' is not an HDF5 "
                                 f"{kind.__name__}")
    return obj


def _group(h5py, root, path: str, where: str):
    g = root
    for i, part in enumerate(path.split("/")):
        g = _child(h5py, g, part, h5py.Group, where, "/".join(path.split("/")[:i + 1]))
        if g is None:
            return None
    return g


def _resolve_renamed(h5py, f, slots, where: str):
    """Slots of layers whose group records another layer's name point to the sibling group
    that records theirs (Note [Keras 3 model files])."""
    moved: dict[str, str] = {}
    out = []
    for path, name, top, tensors in slots:
        for old, new in moved.items():
            if path.startswith(old + "/"):
                path = new + path[len(old):]
        if top:
            layer_path = path[:-len("/vars")]
            group = _group(h5py, f, path, where)
            recorded = group.attrs.get("name") if group is not None else None
            if isinstance(recorded, bytes):
                recorded = recorded.decode()
            if recorded is not None and recorded != name:
                parent_path, _, _ = layer_path.rpartition("/")
                parent = _group(h5py, f, parent_path, where)
                matches = [k for k in (parent.keys() if parent is not None else [])
                           if _recorded_name(h5py, parent, k, where) == name]
                if len(matches) == 1:
                    moved[layer_path] = f"{parent_path}/{matches[0]}"
                    path = moved[layer_path] + "/vars"
        out.append((path, name, top, tensors))
    return out


def _recorded_name(h5py, parent, key: str, where: str):
    g = _child(h5py, parent, key, h5py.Group, where, key)
    v = _child(h5py, g, "vars", h5py.Group, where, key + "/vars") if g is not None else None
    name = v.attrs.get("name") if v is not None else None
    return name.decode() if isinstance(name, bytes) else name


def _dataset(h5py, group, key: str, where: str, path: str):
    ds = _child(h5py, group, key, h5py.Dataset, where, path)
    if ds.external or ds.is_virtual:
        raise SerializationError(f"[load_weights] {where}: '{path}' keeps its data outside "
                                 "the file; refused")
    return ds


def _read_optimizer(h5py, f, layout, where: str):
    """``(arrays, None)``, or ``(None, why not)`` when the file's optimizer variables do not
    fit ``layout``; ``(None, None)`` when the file has none."""
    group = _group(h5py, f, "optimizer/vars", where)
    if group is None or (len(group.keys()) == 2 and len(layout) > 2):
        return None, None  # none, or only the count and rate of an optimizer never built
    if sorted(group.keys()) != sorted(str(i) for i in range(len(layout))):
        return None, (f"the file has {len(group.keys())} optimizer variables where this "
                      f"optimizer has {len(layout)}")
    arrays = []
    for i, (key, _, shape, _) in enumerate(layout):
        ds = _dataset(h5py, group, str(i), where, f"optimizer/vars/{i}")
        if tuple(ds.shape) != shape or ds.dtype.kind not in "fiu":
            return None, (f"optimizer variable {i} ({key}) has shape {tuple(ds.shape)} and "
                          f"dtype {ds.dtype}, expected {shape}")
        arrays.append(ds[()])
    return arrays, None


def _read_weights(model, source, where: str, by_name: bool = False, opt_layout=None):
    """Reads every array first and assigns them only when all match, so a bad file leaves
    the model as it was. ``by_name``: the model was built from this file's config, so the
    layer names recorded in the file are its own and may correct the group order; weights
    loaded into another model follow Keras' paths only, as in Keras. With ``opt_layout``,
    also returns ``_read_optimizer``'s answer."""
    h5py = _h5py()
    try:
        f = h5py.File(source, "r")
    except OSError as e:
        raise SerializationError(f"[load_weights] {where} is not a readable HDF5 weights file "
                                 f"({e})") from None
    with f:
        if "layer_names" in f.attrs or "model_weights" in f:
            raise NotImplementedError(f"[load_weights] {where} has the HDF5 layout of Keras 2 "
                                      "(tf.keras); deepcore reads the Keras 3 layout "
                                      "(model.save_weights('x.weights.h5') in Keras 3)")
        assignments = []
        slots = _weight_slots(model)
        if by_name:
            slots = _resolve_renamed(h5py, f, slots, where)
        for path, name, _, tensors in slots:
            group = _group(h5py, f, path, where)
            found = sorted(group.keys()) if group is not None else []
            expected = sorted(str(i) for i in range(len(tensors)))
            if found != expected:
                attrs = ", ".join(a for a, _ in tensors) or "no arrays"
                raise SerializationError(
                    f"[load_weights] {where}: layer {name!r} expects {len(tensors)} array(s) "
                    f"({attrs}) in '{path}', the file has {len(found)}"
                    + ("" if group is not None else " (no such group)"))
            for i, (attr, t) in enumerate(tensors):
                ds = _dataset(h5py, group, str(i), where, f"{path}/{i}")
                if tuple(ds.shape) != tuple(t.shape):
                    raise SerializationError(
                        f"[load_weights] {where}: '{path}/{i}' ({name}.{attr}) has shape "
                        f"{tuple(ds.shape)}, the layer expects {tuple(t.shape)}")
                if ds.dtype.kind not in "fiu":
                    raise SerializationError(
                        f"[load_weights] {where}: '{path}/{i}' ({name}.{attr}) holds dtype "
                        f"{ds.dtype}, not numbers deepcore reads")
                assignments.append((t, ds[()]))
        optimizer = (None, None) if opt_layout is None else \
            _read_optimizer(h5py, f, opt_layout, where)
    with dc.no_grad():
        for t, arr in assignments:
            target = t.detach().numpy().dtype
            t.copy_(dc.from_numpy(np.ascontiguousarray(arr, dtype=target)))
    return optimizer


def save_weights_h5(model, filepath) -> None:
    """``model.save_weights("x.weights.h5")``: Keras 3's weights file."""
    _require_built(model, "save_weights")
    buf = io.BytesIO()
    _write_weights(model, buf, optimizer=True)
    _atomic_write(os.fspath(filepath), buf.getvalue())


def load_weights_h5(model, filepath) -> None:
    """Weights from a Keras 3 ``.weights.h5`` file, or from the weights of a ``.keras``
    archive, into a built model of the same architecture; and the optimizer's state, as in
    Keras, when the model is compiled and the file has it."""
    _require_built(model, "load_weights")
    filepath = os.fspath(filepath)
    params = layout = None
    if getattr(model, "optimizer", None) is not None:
        params = trainable_in_order(_weight_slots(model))
        layout = optimizer_layout(model._optimizer_spec, params)
    if is_zip_file(filepath):
        with _Archive(filepath) as archive:
            arrays, problem = archive.read_weights(model, opt_layout=layout)
    else:
        arrays, problem = _read_weights(model, filepath, _q(filepath), opt_layout=layout)
    _apply_optimizer(model, params, layout, arrays, problem, _q(filepath), "load_weights")


def _apply_optimizer(model, params, layout, arrays, problem, where: str, what: str) -> None:
    if problem is not None:
        warnings.warn(f"[{what}] {where}: the optimizer's state was not restored: {problem}",
                      stacklevel=4)
    elif arrays is not None:
        set_optimizer_state(model, params, layout, arrays)


def _require_built(model, what: str) -> None:
    if not model.built:
        raise ValueError(f"[{what}] model {model.name!r} has not been built: build it (give "
                         "the first layer an input_shape, or call it on data) first")


# ---- archives ---------------------------------------------------------------------------------

class _Archive:
    """The members of a ``.keras`` zip, or of a directory Keras wrote unzipped."""

    def __init__(self, path: str):
        self.path, self.where = path, _q(path)
        self.zip = None
        if os.path.isdir(path):
            return
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise SerializationError(f"[load_model] {self.where} is not a readable Keras 3 "
                                     f".keras archive: {e}") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.zip is not None:
            self.zip.close()

    def _info(self, member: str):
        try:
            return self.zip.getinfo(member)
        except KeyError:
            if member == WEIGHTS and "model.weights.npz" in self.zip.namelist():
                raise NotImplementedError(f"[load_model] {self.where} keeps its weights as "
                                          "model.weights.npz; deepcore reads the default "
                                          "HDF5 weights (model.weights.h5)") from None
            raise SerializationError(f"[load_model] {self.where} lacks the member {member!r} "
                                     f"of a Keras 3 .keras archive (it has "
                                     f"{self.zip.namelist()})") from None

    def read_config(self) -> dict:
        if self.zip is None:
            with open(os.path.join(self.path, CONFIG), "rb") as f:
                raw = f.read(_MAX_CONFIG_BYTES + 1)
        else:
            info = self._info(CONFIG)
            if info.file_size > _MAX_CONFIG_BYTES:
                raise SerializationError(f"[load_model] {self.where}: {CONFIG} declares "
                                         f"{info.file_size} bytes; refused")
            try:
                raw = self.zip.read(CONFIG)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise SerializationError(f"[load_model] {self.where}: {CONFIG} is damaged: "
                                         f"{e}") from None
        if len(raw) > _MAX_CONFIG_BYTES:
            raise SerializationError(f"[load_model] {self.where}: {CONFIG} is too large")
        try:
            config = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as e:
            raise SerializationError(f"[load_model] {self.where}: {CONFIG} is not JSON: "
                                     f"{e}") from None
        if not isinstance(config, dict):
            raise SerializationError(f"[load_model] {self.where}: {CONFIG} is not a JSON "
                                     "object")
        return config

    def read_weights(self, model, by_name: bool = False, opt_layout=None):
        where = f"{self.where} ({WEIGHTS})"
        if self.zip is None:
            return _read_weights(model, os.path.join(self.path, WEIGHTS), where, by_name,
                                 opt_layout)
        info = self._info(WEIGHTS)
        try:
            if info.compress_type == zipfile.ZIP_STORED:
                with self.zip.open(info) as member:  # seekable: h5py reads it in place
                    return _read_weights(model, member, where, by_name, opt_layout)
            else:
                if info.file_size > 1000 * max(info.compress_size, 1) and \
                        info.file_size > (1 << 32):
                    raise SerializationError(f"[load_model] {where} declares "
                                             f"{info.file_size} bytes from "
                                             f"{info.compress_size}; refused")
                return _read_weights(model, io.BytesIO(self.zip.read(info)), where, by_name,
                                     opt_layout)
        except (zipfile.BadZipFile, EOFError) as e:
            raise SerializationError(f"[load_model] {where} is damaged: {e}") from None


# ---- model configs: Keras -> deepcore ---------------------------------------------------------

def _check_model_spec(spec, where: str) -> str:
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise SerializationError(f"[load_model] {where}: malformed model entry "
                                 f"{str(spec)[:200]}")
    cls = spec.get("class_name")
    name = spec["config"].get("name")
    if not is_keras_module(spec.get("module")) or spec.get("registered_name") not in \
            (None, cls):
        raise layer_error(NotImplementedError, where, name, cls,
                          f"is a custom model class (module {spec.get('module')!r}, "
                          f"registered as {spec.get('registered_name')!r}); deepcore reads "
                          "Keras' Sequential and functional models only")
    return cls


def _from_spec(spec: dict, where: str):
    """A layer or a nested model from a config entry."""
    if isinstance(spec, dict) and spec.get("class_name") in ("Sequential", "Functional",
                                                             "Model"):
        return _model_from_spec(spec, where)
    return read_layer(spec, where)


def _input_from_config(spec: dict, where: str) -> KerasTensor:
    c = spec.get("config") or {}
    name = c.get("name", spec.get("name"))
    shape = c.get("batch_shape", c.get("batch_input_shape"))
    if not isinstance(shape, (list, tuple)) or not shape or \
            not all(d is None or isinstance(d, int) for d in shape):
        raise layer_error(SerializationError, where, name, "InputLayer",
                          f"has no usable batch_shape ({shape!r})")
    for key in ("sparse", "ragged", "optional"):
        if c.get(key):
            raise layer_error(NotImplementedError, where, name, "InputLayer",
                              f"is {key}; deepcore.keras inputs are dense tensors")
    dtype = c.get("dtype", "float32")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name", "float32")
    try:
        return Input(tuple(shape[1:]), dtype=dtype, name=name)
    except ValueError as e:
        raise layer_error(NotImplementedError, where, name, "InputLayer", str(e)) from None


def _sequential_from_spec(config: dict, where: str):
    from .models import Sequential
    model = Sequential(name=config.get("name"))
    for spec in config.get("layers", []):
        if isinstance(spec, dict) and spec.get("class_name") == "InputLayer":
            model.add(_input_from_config(spec, where))
        else:
            model.add(_from_spec(spec, where))
    shape = config.get("build_input_shape")
    if not model.built and isinstance(shape, (list, tuple)):
        model._maybe_build(tuple(shape))
    return model


def _tensor_ref(arg, where: str, layer: str):
    if not (isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__"):
        raise NotImplementedError(f"[load_model] {where}: layer {layer!r} is called on "
                                  f"{str(arg)[:120]}; deepcore reads calls on tensors only")
    history = (arg.get("config") or {}).get("keras_history")
    if not (isinstance(history, list) and len(history) == 3):
        raise SerializationError(f"[load_model] {where}: layer {layer!r} has a malformed "
                                 f"tensor reference {str(arg)[:120]}")
    return tuple(history)


def _node_inputs(node, where: str, layer: str):
    """``(references, called on a list)`` of one call of a layer in a functional config."""
    if not isinstance(node, dict):
        raise NotImplementedError(f"[load_model] {where}: layer {layer!r} has a call in the "
                                  "Keras 2 node format; deepcore reads Keras 3 configs")
    args, kwargs = node.get("args", []), node.get("kwargs") or {}
    extra = {k: v for k, v in kwargs.items() if v is not None}
    if extra:
        raise NotImplementedError(f"[load_model] {where}: layer {layer!r} is called with "
                                  f"{sorted(extra)}; deepcore.keras layers take one input "
                                  "(or a list of inputs)")
    if len(args) != 1:
        raise NotImplementedError(f"[load_model] {where}: layer {layer!r} is called with "
                                  f"{len(args)} positional arguments; deepcore.keras layers "
                                  "take one input (or a list of inputs)")
    if isinstance(args[0], list):
        return [_tensor_ref(a, where, layer) for a in args[0]], True
    return [_tensor_ref(args[0], where, layer)], False


def _functional_from_spec(config: dict, where: str):
    from .models import Model
    layers: dict[str, Layer] = {}
    tensors: dict[tuple, KerasTensor] = {}
    queues: dict[str, list] = {}
    for spec in config.get("layers", []):
        if not isinstance(spec, dict):
            raise SerializationError(f"[load_model] {where}: malformed layer entry "
                                     f"{str(spec)[:200]}")
        name = spec.get("name", (spec.get("config") or {}).get("name"))
        if spec.get("class_name") == "InputLayer":
            tensors[(name, 0, 0)] = _input_from_config(spec, where)
            layers[name] = tensors[(name, 0, 0)].layer
            continue
        layers[name] = _from_spec(spec, where)
        queues[name] = [_node_inputs(n, where, name) for n in spec.get("inbound_nodes", [])]
    calls = {name: 0 for name in queues}
    progress = True
    while progress:  # Keras' order: per layer, its calls in turn, as inputs become ready
        progress = False
        for name, queue in queues.items():
            while queue and all(ref in tensors for ref in queue[0][0]):
                refs, as_list = queue.pop(0)
                ins = [tensors[r] for r in refs]
                tensors[(name, calls[name], 0)] = layers[name](ins if as_list else ins[0])
                calls[name] += 1
                progress = True
    stuck = {n: q[0][0] for n, q in queues.items() if q}
    if stuck:
        raise SerializationError(f"[load_model] {where}: the calls of {sorted(stuck)} use "
                                 f"tensors no layer makes: {list(stuck.values())[:3]}")

    def refs(key):
        value = config.get(key)
        if isinstance(value, list) and value and isinstance(value[0], str):
            return [tuple(value)], True
        if isinstance(value, list) and all(isinstance(v, list) for v in value):
            return [tuple(v) for v in value], False
        raise SerializationError(f"[load_model] {where}: malformed {key} {str(value)[:200]}")

    def lookup(ref):
        if ref not in tensors:
            raise SerializationError(f"[load_model] {where}: model output/input {list(ref)} "
                                     "is not made by any layer")
        return tensors[ref]
    in_refs, single_in = refs("input_layers")
    out_refs, single_out = refs("output_layers")
    ins = [lookup(r) for r in in_refs]
    outs = [lookup(r) for r in out_refs]
    return Model(ins[0] if single_in else ins, outs[0] if single_out else outs,
                 name=config.get("name"))


def _model_from_spec(spec: dict, where: str):
    cls = _check_model_spec(spec, where)
    if cls == "Sequential":
        return _sequential_from_spec(spec["config"], where)
    if cls in ("Functional", "Model") and "input_layers" in spec["config"]:
        return _functional_from_spec(spec["config"], where)
    raise NotImplementedError(f"[load_model] {where}: the model {spec['config'].get('name')!r} "
                              f"is a {cls}; deepcore reads Sequential and functional models")


# ---- model configs: deepcore -> Keras ---------------------------------------------------------

def _input_spec(name: str, shape, dtype: str) -> dict:
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": [None] + [None if d is None else int(d) for d in shape],
                       "dtype": dtype, "sparse": False, "ragged": False, "name": name},
            "registered_name": None}


def _spec_of(layer) -> dict:
    return _model_spec(layer) if _is_model(layer) else write_layer(layer)


def _model_spec(model) -> dict:
    _require_built(model, "save")
    if _is_sequential(model):
        shape = tuple(model._build_input_shape)
        t = model._input_tensor
        first = _input_spec(t.layer.name if t is not None else f"{model.name}_input",
                            shape[1:], t.dtype.name if t is not None else "float32")
        return {"module": "keras", "class_name": "Sequential",
                "config": {"name": model.name, "trainable": model.trainable,
                           "layers": [first] + [_spec_of(l) for l in model.layers],
                           "build_input_shape": [None if d is None else int(d)
                                                 for d in shape]},
                "registered_name": None,
                "build_config": {"input_shape": [None if d is None else int(d)
                                                 for d in shape]}}
    layers = _model_layers(model)
    calls: dict[int, list[KerasTensor]] = {}
    for t in model._graph_inputs + model._nodes:
        calls.setdefault(id(t.layer), []).append(t)
    node_index = {id(t): i for ts in calls.values()
                  for i, t in enumerate(sorted(ts, key=lambda t: t.index))}

    def ref(t: KerasTensor) -> dict:
        return {"class_name": "__keras_tensor__",
                "config": {"shape": [None if d is None else int(d) for d in t.shape],
                           "dtype": t.dtype.name,
                           "keras_history": [t.layer.name, node_index[id(t)], 0]}}
    specs = []
    for layer in layers:
        if isinstance(layer, InputLayer):
            t = calls[id(layer)][0]
            spec = _input_spec(layer.name, t.shape[1:], t.dtype.name)
            spec.update(name=layer.name, inbound_nodes=[])
        else:
            spec = _spec_of(layer)
            nodes = []
            for t in sorted(calls[id(layer)], key=lambda t: t.index):
                as_list = len(t.inputs) > 1 or type(layer).__name__ in ("Concatenate", "Add")
                arg = [ref(i) for i in t.inputs] if as_list else ref(t.inputs[0])
                nodes.append({"args": [arg], "kwargs": {}})
            spec.update(name=layer.name, inbound_nodes=nodes)
        specs.append(spec)

    def refs(ts, single):
        items = [[t.layer.name, node_index[id(t)], 0] for t in ts]
        return items[0] if single else items
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": model.name, "trainable": model.trainable, "layers": specs,
                       "input_layers": refs(model._graph_inputs,
                                            len(model._graph_inputs) == 1),
                       "output_layers": refs(model._graph_outputs, model._single_output)},
            "registered_name": "Functional", "build_config": {"input_shape": None}}


# ---- public entry points ----------------------------------------------------------------------

def save_keras_model(model, filepath, include_optimizer: bool = True) -> None:
    """``model.save("m.keras")``: a Keras 3 archive that ``keras.models.load_model`` reads."""
    filepath = os.fspath(filepath)
    spec = _model_spec(model)
    cc, problems = compile_to_keras(model)
    if problems:
        warnings.warn(f"[save] {_q(filepath)}: the compile config is left out, as Keras has "
                      f"no equivalent of {', '.join(problems)}; the file loads uncompiled",
                      stacklevel=3)
    spec["compile_config"] = cc if cc is not None else {}
    metadata = {"keras_version": KERAS_LAYOUT_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "saved_by": f"deepcore {dc.__version__}"}
    weights = io.BytesIO()
    _write_weights(model, weights, optimizer=include_optimizer and cc is not None)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(METADATA, json.dumps(metadata))
        zf.writestr(CONFIG, json.dumps(spec))
        zf.writestr(WEIGHTS, weights.getvalue())
    _atomic_write(filepath, buf.getvalue())


def load_keras_model(filepath, compile: bool = True):
    """A deepcore.keras model from a Keras 3 ``.keras`` archive (or a directory Keras wrote
    with ``zipped=False``)."""
    filepath = os.fspath(filepath)
    with _Archive(filepath) as archive:
        config = archive.read_config()
        model = _model_from_spec(config, archive.where)
        cc = config.get("compile_config")
        kwargs = params = layout = None
        if compile and cc:
            kwargs, skipped = compile_from_keras(cc)
            if kwargs is None:
                warnings.warn(f"[load_model] {_q(filepath)}: loaded uncompiled, as "
                              f"deepcore.keras has no equivalent of {', '.join(skipped)}; "
                              "compile it yourself", stacklevel=3)
            else:
                params = trainable_in_order(_weight_slots(model))
                layout = optimizer_layout(kwargs["optimizer"], params)
        arrays, problem = archive.read_weights(model, by_name=True, opt_layout=layout)
    if kwargs is not None:
        model.compile(**kwargs)
        model._build_optimizer()
        _apply_optimizer(model, params, layout, arrays, problem, _q(filepath), "load_model")
    return model
