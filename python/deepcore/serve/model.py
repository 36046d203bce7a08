"""``ServedModel``: an ``nn.Module`` (or any callable on tensors) with the input and output
specs the server validates against and reports as metadata, and ``run`` -- one forward pass on
a batch of NumPy arrays, without autograd, returning NumPy arrays.

Output specs are declared (an ONNX graph's outputs) or found by probing: the model is run on
zeros of batch size 1 (and 2, to check that dimension 0 of every output is the batch), and
with any -1 input dimension at sizes 1 and 2, so output dimensions that follow it are
reported as -1 too.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .._model_files import TensorSpec, load_model_file_with_outputs
from .protocol import datatype_of

__all__ = ["ServedModel", "load"]


def _to_numpy(t, where: str) -> np.ndarray:
    from .. import _C
    if isinstance(t, np.ndarray):
        return t
    if not isinstance(t, _C.Tensor):
        raise TypeError(f"[serve] {where} returned a {type(t).__name__}; a served model must "
                        "return a Tensor or a tuple/list of Tensors")
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype.name not in ("float32", "float64", "int32", "int64", "bool"):
        t = t.float()  # float16 / bfloat16 results travel as FP32
    return np.array(t.detach().numpy(), copy=True)


class ServedModel:
    def __init__(self, module, inputs: Sequence[TensorSpec],
                 outputs: Optional[Sequence[TensorSpec]] = None, name: str = "model",
                 platform: str = "deepcore"):
        if not callable(module):
            raise TypeError(f"[serve] model '{name}' must be callable (an nn.Module), got "
                            f"{type(module).__name__}")
        inputs = tuple(inputs)
        if not inputs or not all(isinstance(s, TensorSpec) for s in inputs):
            raise TypeError(f"[serve] model '{name}': input_spec must be a TensorSpec or a "
                            "non-empty sequence of TensorSpecs")
        if len({s.name for s in inputs}) != len(inputs):
            raise ValueError(f"[serve] model '{name}': input names {[s.name for s in inputs]} "
                             "are not unique")
        self.module = module
        self.name = name
        self.platform = platform
        self.inputs: Tuple[TensorSpec, ...] = inputs
        batches = {s.batch for s in inputs}
        # A graph built for one batch size (an ONNX file without a dynamic batch axis) takes
        # exactly that many rows per call, so requests are never merged for it.
        self.fixed_batch: Optional[int] = None if batches == {-1} else max(batches)
        if hasattr(module, "eval"):
            module.eval()
        outputs = None if outputs is None else tuple(outputs)
        if outputs is not None and all(isinstance(o, TensorSpec) for o in outputs):
            self.outputs: Tuple[TensorSpec, ...] = outputs
        elif outputs is None or all(isinstance(o, str) for o in outputs):
            self.outputs = self._probe_outputs(outputs)
        else:
            raise TypeError(f"[serve] model '{name}': output_spec must be a sequence of "
                            "TensorSpecs (or of output names, to find shapes by running the "
                            "model)")

    def run(self, arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
        """One forward pass: arrays in input order, each (B, ...); returns one array per
        output, each (B, ...)."""
        from .. import _C
        from ..autograd.grad_mode import no_grad
        tensors = [_C.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        with no_grad():
            out = self.module(*tensors)
        if isinstance(out, (tuple, list)):
            results = [_to_numpy(t, f"model '{self.name}' output {i}")
                       for i, t in enumerate(out)]
        else:
            results = [_to_numpy(out, f"model '{self.name}'")]
        return results

    def _probe(self, batch: int, dynamic: int) -> List[np.ndarray]:
        return self.run([s.example(batch, dynamic) for s in self.inputs])

    def _probe_outputs(self, names: Optional[Tuple[str, ...]]) -> Tuple[TensorSpec, ...]:
        b1 = 1 if self.fixed_batch is None else self.fixed_batch
        try:
            first = self._probe(b1, 1)
        except Exception as e:
            raise ValueError(
                f"[serve] model '{self.name}' failed on a zero input of shapes "
                f"{[list(s.example(b1).shape) for s in self.inputs]} ({type(e).__name__}: {e}); "
                "check input_spec, or pass output_spec to skip this probe") from None
        second = None
        dynamic = any(-1 in s.shape for s in self.inputs)
        if self.fixed_batch is None or dynamic:
            try:
                second = self._probe(2 if self.fixed_batch is None else b1, 2)
            except Exception:
                second = None  # a model that only takes one size: keep the first shapes
        if names is None:
            names = (["output"] if len(first) == 1
                     else [f"output_{i}" for i in range(len(first))])
        elif len(names) != len(first):
            raise ValueError(f"[serve] model '{self.name}' returned {len(first)} outputs but "
                             f"{len(names)} output names were given: {list(names)}")
        specs = []
        for i, (name, a) in enumerate(zip(names, first)):
            if a.ndim == 0 or a.shape[0] != b1:
                raise ValueError(f"[serve] model '{self.name}': output {i} has shape "
                                 f"{tuple(a.shape)} for a batch of {b1}; the server needs "
                                 "dimension 0 of every output to be the batch")
            shape = list(a.shape[1:])
            if second is not None and second[i].ndim == a.ndim:
                shape = [d if d == e else -1 for d, e in zip(shape, second[i].shape[1:])]
            elif second is None and dynamic:
                shape = [-1] * len(shape)
            specs.append(TensorSpec(name, tuple(shape), np.dtype(a.dtype).name,
                                    batch=-1 if self.fixed_batch is None else self.fixed_batch))
            datatype_of(a.dtype)
        return tuple(specs)


def load(path, name: Optional[str] = None) -> ServedModel:
    """A ``ServedModel`` from a ``deepcore train`` checkpoint or an ``.onnx`` file (see
    deepcore._model_files.load_model_file); the name defaults to the file's stem."""
    path = os.fspath(path)
    module, inputs, outputs = load_model_file_with_outputs(path)
    if name is None:
        name = os.path.splitext(os.path.basename(path))[0]
    if outputs is not None:  # an ONNX graph: the outputs it declares (or their names)
        return ServedModel(module, inputs, outputs=outputs, name=name, platform="deepcore_onnx")
    return ServedModel(module, inputs, name=name, platform="deepcore")
