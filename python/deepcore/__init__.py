"""deepcore: a small, fast deep learning framework with PyTorch's API.

The engine (tensors, kernels, autograd) is C++ in ``deepcore._C``; this package adds the
Python conveniences. ``import deepcore as torch`` runs scripts written for PyTorch's common
subset.
"""
from __future__ import annotations

import builtins as _builtins

from . import _C
from ._C import Tensor
from ._C import dtype as _dtype_enum
from ._tensor import Size, device, tensor

# The Python objects the bindings call back into (Note [Python hooks] in csrc/python/hooks.h):
# C++ never imports this package, it is handed them here, before anything converts a list.
_C._register_python_hooks(tensor=tensor, Size=Size)
from . import _tensor as _tensor_module  # noqa: F401  (installs Tensor methods)
from . import _indexing  # noqa: F401  (installs __getitem__/__setitem__)
from ._indexing import *  # noqa: E402,F401,F403  (gather, scatter, masked_fill, ...)

__version__ = _C._build_info()["version"]

# ---- dtypes ---------------------------------------------------------------------------------
dtype = _dtype_enum
bool = _dtype_enum.bool  # noqa: A001
int32 = _dtype_enum.int32
int64 = _dtype_enum.int64
float32 = _dtype_enum.float32
float64 = _dtype_enum.float64
bfloat16 = _dtype_enum.bfloat16
float16 = _dtype_enum.float16
half = float16
int = int32  # noqa: A001
long = int64
float = float32  # noqa: A001
double = float64
_default_dtype = float32


def get_default_dtype():
    return _default_dtype


def is_tensor(obj) -> _builtins.bool:
    return isinstance(obj, Tensor)


def is_floating_point(t: Tensor) -> _builtins.bool:
    return t.dtype.is_floating_point


def numel(t: Tensor) -> _builtins.int:
    return t.numel()


# ---- grad mode, threads, seeds ----------------------------------------------------------------
from .autograd.grad_mode import enable_grad, no_grad, set_grad_enabled, inference_mode  # noqa: E402
from ._C import (  # noqa: E402
    get_num_threads,
    is_grad_enabled,
    manual_seed as _manual_seed,
    set_num_threads,
    promote_types,
    result_type,
    from_numpy,
)


def manual_seed(seed: _builtins.int):
    """Seeds every random op (rand, randn, randint, dropout, init, shuffling)."""
    _manual_seed(_builtins.int(seed) & ((1 << 64) - 1))
    import random as _random
    _random.seed(seed)


def seed() -> _builtins.int:
    import random as _random
    s = _random.getrandbits(63)
    manual_seed(s)
    return s


def initial_seed() -> _builtins.int:
    return _C.initial_seed()


def get_rng_state():
    return tensor(list(_C._rng_state()), dtype=int64)


def set_rng_state(state):
    s = state.tolist()
    _C._set_rng_state(_builtins.int(s[0]), _builtins.int(s[1]))


# ---- creation ---------------------------------------------------------------------------------
from ._creation import (  # noqa: E402
    arange, empty, empty_like, eye, full, full_like, linspace, ones, ones_like, rand, rand_like,
    randint, randint_like, randn, randn_like, zeros, zeros_like, scalar_tensor, as_tensor,
    asarray, from_dlpack,
)
from ._creation import randperm  # noqa: E402
from ._functional import *  # noqa: E402,F401,F403
from ._composite import *  # noqa: E402,F401,F403
from ._sort import *  # noqa: E402,F401,F403
from ._reduce import *  # noqa
from ._seq import *  # noqa: E402,F401,F403

from . import autograd  # noqa: E402
from . import accelerator, amp, backends, cuda  # noqa: E402,F401
from .amp import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: E402,F401
from ._type_info import finfo, iinfo  # noqa: E402
from ._legacy_types import BoolTensor, DoubleTensor, FloatTensor, IntTensor, LongTensor  # noqa
from .backends import get_float32_matmul_precision, set_float32_matmul_precision  # noqa
from . import nn  # noqa: E402,F401
from . import optim  # noqa: E402,F401
from . import profiler  # noqa: E402,F401
from . import special  # noqa: E402,F401
from .config import show_config  # noqa: E402
from .serialization import save, load  # noqa: E402
from .utils._generator import Generator  # noqa: E402
from ._jit import GraphBreakError, compile, jit  # noqa: E402
from . import func  # noqa: E402,F401
from .func import vmap  # noqa: E402  (torch.vmap)

__all__ = [name for name in dir() if not name.startswith("_")] + ["keras"]

# After __all__: `from deepcore import *` must not replace a user's own numpy and random.
from . import numpy, random  # noqa: E402,F401


def __getattr__(name: str):
    # deepcore.keras, the top layer (it builds on nn, optim and train), loads on first use, so
    # that importing deepcore or deepcore.train never needs it.
    if name in ("keras", "distributed", "onnx"):  # loaded on first use (MPI, the onnx package)
        import importlib
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
