"""Model files -> ``nn.Module``: what ``deepcore serve`` and ``deepcore export`` load.

    module, inputs = load_model_file("runs/cnn-digits/checkpoint.safetensors")
    module, inputs = load_model_file("model.onnx")

``inputs`` is a tuple of ``TensorSpec`` (one per argument of ``module.forward``): the name, the
shape without the batch dimension (-1 where any size goes) and the NumPy dtype name. Nothing in
a file is ever executed: checkpoints are safetensors (``deepcore.load`` parses JSON and tensor
bytes only) and the architecture is picked by name from the fixed table below; ONNX files are
protobuf, run by ``deepcore.onnx.load`` on deepcore's kernels.

Note [Model spec in training checkpoints]
A state dict alone does not say which network it belongs to, so ``deepcore train`` records the
architecture as a small JSON spec::

    {"format": "deepcore.model_spec", "version": 1, "model": "cnn" | "mlp" | "lenet" |
     "resnet18", "in_channels": C, "input_side": S, "num_classes": K, "input_dtype": "float32"}

The spec travels as the saved state of a callback (``ModelSpecRecord``), because the training
loop writes every checkpoint -- after each epoch and on Ctrl-C -- from the state of the model,
optimizer, scheduler and callbacks (deepcore/train/loop.py, ``_training_state``). A callback's
state sits under ``state["callbacks"][str(index)]``; the reader looks for the one dict there
that holds ``"model_spec"``, whatever the index. Old readers are unaffected: resuming ignores
callback states no callback claims, and the training-state format version stays 1. Checkpoints
written before the spec existed still resume; they cannot be served or exported, and the
error says so (resuming them for one more epoch records the spec).

``train --model gpt`` writes its own format with the GPTConfig and the vocabulary (Note
[Character-level GPT checkpoint] in deepcore/cli.py); it is served as next-token logits.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import nn
from .train.callbacks import Callback

__all__ = ["TensorSpec", "load_model_file", "build_image_model", "model_spec",
           "ModelSpecRecord", "IMAGE_MODELS", "GPT_FORMAT", "GPT_FORMAT_VERSION"]

SPEC_FORMAT = "deepcore.model_spec"
SPEC_VERSION = 1
IMAGE_MODELS = ("cnn", "mlp", "lenet", "resnet18")
GPT_FORMAT = "deepcore.gpt-char"
GPT_FORMAT_VERSION = 1
TRAINING_STATE_FORMAT = "deepcore.training_state"

# NumPy dtype names deepcore tensors hold (deepcore.from_numpy accepts exactly these).
DTYPES = ("float32", "float64", "int32", "int64", "bool")


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: ``shape`` leaves out the batch dimension and holds -1 for
    dimensions of any size; ``dtype`` is a NumPy dtype name (``DTYPES``). ``batch`` is -1 when
    any batch size goes, or the one batch size a graph was built for (an ONNX file exported
    without a dynamic batch axis)."""

    name: str
    shape: Tuple[int, ...]
    dtype: str = "float32"
    batch: int = -1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"[TensorSpec] name must be a non-empty string, got {self.name!r}")
        shape = tuple(self.shape)
        if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                   and (d == -1 or d >= 0) for d in shape):
            raise ValueError(f"[TensorSpec] '{self.name}': shape must hold sizes >= 0 or -1, "
                             f"got {self.shape!r}")
        object.__setattr__(self, "shape", tuple(int(d) for d in shape))
        if self.dtype not in DTYPES:
            raise ValueError(f"[TensorSpec] '{self.name}': dtype must be one of {DTYPES}, got "
                             f"{self.dtype!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, (int, np.integer)) or \
                not (self.batch == -1 or self.batch >= 1):
            raise ValueError(f"[TensorSpec] '{self.name}': batch must be -1 or >= 1, got "
                             f"{self.batch!r}")

    def example(self, batch: int = 1, dynamic: int = 1) -> np.ndarray:
        """Zeros of shape (batch, *shape), with ``dynamic`` for each -1 dimension."""
        b = self.batch if self.batch != -1 else batch
        return np.zeros((b,) + tuple(dynamic if d == -1 else d for d in self.shape),
                        dtype=self.dtype)


# ---- the architectures `deepcore train` builds --------------------------------------------------

def _small_cnn(in_channels: int, side: int, num_classes: int):
    """conv3x3(32) - relu - conv3x3(64) - relu - maxpool2 - dropout - fc(128) - relu - fc."""
    flat = 64 * (side // 2) * (side // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, num_classes))


def build_image_model(name: str, in_channels: int, side: int, num_classes: int):
    """The network ``deepcore train --model NAME`` trains on (N, in_channels, side, side)."""
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * side * side, 128), nn.ReLU(),
                             nn.Linear(128, num_classes))
    if name == "cnn":
        return _small_cnn(in_channels, side, num_classes)
    from . import models
    if name == "lenet":
        return models.lenet5(num_classes=num_classes, in_channels=in_channels)
    if name == "resnet18":
        return models.resnet18(num_classes=num_classes, in_channels=in_channels,
                               small_input=True)
    raise ValueError(f"[build_image_model] unknown model {name!r}; expected one of "
                     f"{IMAGE_MODELS}")


def model_spec(name: str, in_channels: int, side: int, num_classes: int) -> Dict[str, Any]:
    """The spec ``deepcore train`` records (Note [Model spec in training checkpoints])."""
    return {"format": SPEC_FORMAT, "version": SPEC_VERSION, "model": name,
            "in_channels": int(in_channels), "input_side": int(side),
            "num_classes": int(num_classes), "input_dtype": "float32"}


class ModelSpecRecord(Callback):
    """Carries the model spec into every training checkpoint as this callback's state
    (Note [Model spec in training checkpoints]); it does nothing during training."""

    _state_keys = ("model_spec",)

    def __init__(self, spec: Dict[str, Any]):
        super().__init__()
        self.model_spec = dict(spec)

    def set_state(self, state: dict) -> None:
        pass  # the spec describes the model being trained now, not what the file says


def _positive_int(spec: Dict[str, Any], key: str, path: str) -> int:
    v = spec.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"[load_model_file] '{path}': the model spec's {key} must be a "
                         f"positive integer, got {v!r}")
    return v


def _find_spec(state: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    cbs = state.get("callbacks")
    if not isinstance(cbs, dict):
        return None
    for entry in cbs.values():
        if isinstance(entry, dict) and isinstance(entry.get("model_spec"), dict):
            return entry["model_spec"]
    return None


def _image_model_from_state(state: Dict[str, Any], path: str):
    spec = _find_spec(state)
    if spec is None:
        raise ValueError(
            f"[load_model_file] '{path}' is a training checkpoint without a model spec (it was "
            "written by an older `deepcore train` or by Trainer.fit in your own script), so the "
            "architecture is unknown: resume it with `deepcore train --resume` for one more "
            "epoch to record the spec, or build the model in Python and pass it to "
            "deepcore.serve.create_app")
    if spec.get("format") != SPEC_FORMAT:
        raise ValueError(f"[load_model_file] '{path}': unknown model spec format "
                         f"{spec.get('format')!r} (expected {SPEC_FORMAT!r})")
    if not isinstance(spec.get("version"), int) or spec["version"] > SPEC_VERSION:
        raise ValueError(f"[load_model_file] '{path}' holds model spec version "
                         f"{spec.get('version')!r}; this deepcore reads up to {SPEC_VERSION}")
    name = spec.get("model")
    if name not in IMAGE_MODELS:
        raise ValueError(f"[load_model_file] '{path}': unknown model {name!r} in the model "
                         f"spec; this deepcore builds {', '.join(IMAGE_MODELS)}")
    c, side, k = (_positive_int(spec, key, path)
                  for key in ("in_channels", "input_side", "num_classes"))
    dtype = spec.get("input_dtype", "float32")
    if dtype not in DTYPES:
        raise ValueError(f"[load_model_file] '{path}': the model spec's input_dtype must be "
                         f"one of {DTYPES}, got {dtype!r}")
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise ValueError(f"[load_model_file] '{path}' holds no model state dict")
    module = build_image_model(name, c, side, k)
    try:
        module.load_state_dict(weights)
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"[load_model_file] '{path}': the weights do not fit a {name} for "
                         f"({c}, {side}, {side}) inputs and {k} classes: {e}") from None
    return module.eval(), (TensorSpec("input", (c, side, side), dtype),)


class NextTokenLogits(nn.Module):
    """A GPT served as forward(idx (B, T) int64 token ids) -> next-token logits (B, vocab)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, idx):
        logits, _ = self.model(idx)  # (B, 1, V): GPT returns the last position only
        return logits[:, -1, :]


def gpt_from_checkpoint(ckpt: Any, path: str):
    """(GPT, vocab) from a loaded `train --model gpt` checkpoint. ValueError names ``path``
    when the file is not one or is damaged."""
    from .models import GPT, GPTConfig

    if not isinstance(ckpt, dict) or ckpt.get("format") != GPT_FORMAT:
        raise ValueError(f"'{path}' is not a checkpoint written by `deepcore train --model gpt`")
    if ckpt.get("version") != GPT_FORMAT_VERSION:
        raise ValueError(f"'{path}' has checkpoint version {ckpt.get('version')!r}; this "
                         f"deepcore reads {GPT_FORMAT_VERSION}")
    vocab = ckpt.get("vocab")
    try:
        config = GPTConfig.from_dict(ckpt.get("config") or {})
        if (not isinstance(vocab, list) or len(vocab) != config.vocab_size
                or not all(isinstance(c, str) and len(c) == 1 for c in vocab)):
            raise ValueError("the vocabulary is not a list of vocab_size single characters")
        model = GPT(config)
        model.load_state_dict(ckpt.get("model") or {})
    except (ValueError, TypeError, RuntimeError) as e:
        raise ValueError(f"'{path}' is damaged: {e}") from None
    return model, vocab


# ---- ONNX ----------------------------------------------------------------------------------------

def _onnx_dtype(elem_type: int, name: str, path: str, output: bool) -> str:
    from onnx import TensorProto
    table = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64",
             TensorProto.INT32: "int32", TensorProto.INT64: "int64", TensorProto.BOOL: "bool"}
    if output:  # results deepcore lacks a dtype for arrive widened, as dc.load widens them
        table.update({TensorProto.FLOAT16: "float32", TensorProto.BFLOAT16: "float32",
                      TensorProto.INT8: "int32", TensorProto.UINT8: "int32",
                      TensorProto.INT16: "int32", TensorProto.UINT16: "int32",
                      TensorProto.UINT32: "int64"})
    if elem_type not in table:
        raise ValueError(f"[load_model_file] '{path}': graph {'output' if output else 'input'} "
                         f"'{name}' has ONNX element type "
                         f"{TensorProto.DataType.Name(elem_type)}; deepcore models take and "
                         "return float32, float64, int32, int64 and bool tensors")
    return table[elem_type]


def onnx_value_specs(values, path: str, skip=(), output: bool = False) -> Tuple[TensorSpec, ...]:
    """TensorSpecs of ONNX ValueInfos (graph inputs, or outputs with ``output``); dimension 0
    is the batch."""
    specs: List[TensorSpec] = []
    for v in values:
        if v.name in skip:
            continue
        if not v.type.HasField("tensor_type"):
            raise ValueError(f"[load_model_file] '{path}': graph value '{v.name}' is not a "
                             "tensor")
        tt = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        if not tt.HasField("shape") or not dims:
            raise ValueError(f"[load_model_file] '{path}': graph value '{v.name}' has no "
                             "batch dimension (rank 0 or unknown rank); the server batches "
                             "along dimension 0")
        batch = dims[0] if dims[0] > 0 else -1
        specs.append(TensorSpec(v.name, tuple(dims[1:]),
                                _onnx_dtype(tt.elem_type, v.name, path, output), batch=batch))
    return tuple(specs)


def _load_onnx(path: str):
    try:
        import onnx
    except ImportError:
        raise ImportError(f"[load_model_file] '{path}' is an ONNX model: reading it needs the "
                          "onnx package (pip install deepcore[onnx])") from None
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ValueError(f"[load_model_file] '{path}' is not a valid ONNX model: {e}") from None
    graph = proto.graph
    initializers = {t.name for t in graph.initializer}
    inputs = onnx_value_specs(graph.input, path, skip=initializers)
    try:
        outputs = onnx_value_specs(graph.output, path, output=True)
    except ValueError:
        # Outputs without a declared shape or dtype: the server finds them by running the
        # model, under the graph's names.
        outputs = tuple(v.name for v in graph.output)
    del proto, graph
    from . import onnx as dc_onnx
    module = dc_onnx.load(path)
    if hasattr(module, "eval"):
        module = module.eval()
    return module, inputs, outputs


# ---- the entry point -----------------------------------------------------------------------------

def load_model_file(path) -> Tuple[Any, Tuple[TensorSpec, ...]]:
    """``(module, input_specs)`` for a checkpoint written by ``deepcore train`` (image models,
    Note [Model spec in training checkpoints]; character GPTs, served as next-token logits)
    or an ``.onnx`` file. The module is in eval mode. A missing file, or one that is neither,
    raises an error naming it."""
    module, inputs, _ = load_model_file_with_outputs(path)
    return module, inputs


def load_model_file_with_outputs(path):
    """``load_model_file`` plus what an ONNX graph says of its outputs: TensorSpecs, or only
    their names when the graph leaves shapes or dtypes out; None for checkpoints."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"[load_model_file] no such file: '{path}'")
    if os.path.isdir(path):
        raise IsADirectoryError(f"[load_model_file] '{path}' is a directory; expected a "
                                "checkpoint (.safetensors) or an ONNX model (.onnx)")
    if path.lower().endswith(".onnx"):
        return _load_onnx(path)
    from .serialization import SerializationError, load
    try:
        state = load(path)
    except SerializationError as e:
        raise ValueError(f"[load_model_file] '{path}' is neither a deepcore checkpoint "
                         f"(safetensors) nor an ONNX model (.onnx): {e}") from None
    fmt = state.get("format") if isinstance(state, dict) else None
    if fmt == TRAINING_STATE_FORMAT:
        module, inputs = _image_model_from_state(state, path)
        return module, inputs, None
    if fmt == GPT_FORMAT:
        try:
            gpt, _ = gpt_from_checkpoint(state, path)
        except ValueError as e:
            raise ValueError(f"[load_model_file] {e}") from None
        return NextTokenLogits(gpt).eval(), (TensorSpec("input", (-1,), "int64"),), None
    what = (f"format {fmt!r}" if fmt is not None else
            "only tensors (a state dict holds weights, not the architecture)"
            if isinstance(state, dict) else f"a {type(state).__name__}")
    raise ValueError(f"[load_model_file] '{path}' is not a checkpoint written by "
                     f"`deepcore train` (it holds {what}); serve/export take `deepcore train` "
                     "checkpoints or .onnx files")
