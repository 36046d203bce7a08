"""deepcore.random: torch.random's global-seed functions and JAX's explicit-key API.

The global generator: ``manual_seed``, ``seed``, ``initial_seed``, ``get_rng_state``,
``set_rng_state`` and ``fork_rng``, as in ``torch.random``.

Explicit keys, as in ``jax.random``: a key is a value, an int64 tensor of shape (2,) holding
two 32-bit words (JAX's raw key layout); every sampler is a pure function of its key, the
shape and the parameters, never of the global seed. Derive fresh keys with ``split`` or
``fold_in`` instead of reusing one.

Note [Key streams]
A key (k0, k1) selects a Philox-4x64 counter-based stream (NumPy's ``Philox`` bit generator)
by its 128-bit cipher key ``[(k0 << 32) | k1, purpose]``; the counter starts at 0. ``purpose``
separates what a key is used for: 0 for drawing samples, 1 for ``split``, and
``2 << 32 | data`` for ``fold_in(key, data)``. Keys derived by ``split``/``fold_in`` are read
from streams that no sampler reads, so a child key's numbers are unrelated to those its
parent draws, and distinct cipher keys give streams that are independent for all practical
purposes (Philox passes BigCrush for each key). The numbers differ from JAX's (which uses
Threefry); what carries over is the contract: same key, same numbers.
"""
from __future__ import annotations

import contextlib
import numbers
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from . import _C
from ._C import Tensor
from ._tensor import tensor as _tensor
from . import get_rng_state, initial_seed, manual_seed, seed, set_rng_state

__all__ = ["manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state", "fork_rng",
           "PRNGKey", "key", "key_data", "split", "fold_in", "normal", "uniform", "randint",
           "bernoulli", "permutation", "choice", "categorical", "gumbel", "exponential"]

KeyArray = Tensor
Shape = Union[int, Sequence[int]]

_MASK32 = 0xFFFFFFFF
_SAMPLE, _SPLIT, _FOLD_IN = 0, 1, 2

_NP_FLOAT = {_C.dtype.float32: np.float32, _C.dtype.float64: np.float64}
_NP_INT = {_C.dtype.int32: np.int32, _C.dtype.int64: np.int64}


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, **_) -> Iterator[None]:
    """Restores the global generator's state on exit, so draws inside leave no trace."""
    if not enabled:
        yield
        return
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


# ---- keys -------------------------------------------------------------------------------------

def _make_key(k0: int, k1: int) -> KeyArray:
    return _tensor([k0 & _MASK32, k1 & _MASK32], dtype=_C.dtype.int64)


def PRNGKey(seed: int) -> KeyArray:  # noqa: N802  (JAX's name)
    """A key from an integer seed: the words (seed >> 32, seed & 0xFFFFFFFF), as JAX's."""
    if isinstance(seed, Tensor):
        seed = seed.item()
    if not isinstance(seed, numbers.Integral):
        raise TypeError(f"[PRNGKey] seed must be an integer, got {type(seed).__name__}")
    seed = int(seed) & ((1 << 64) - 1)
    return _make_key(seed >> 32, seed)


def key(seed: int) -> KeyArray:
    """A key from an integer seed (``jax.random.key``; the same value as ``PRNGKey``)."""
    return PRNGKey(seed)


def key_data(keys: KeyArray) -> Tensor:
    """The raw words of a key (or of a batch of keys): the key itself, as keys are raw here."""
    return _key_words(keys, "key_data", batched=True)


def _key_words(k: Any, name: str, batched: bool = False):
    """The key's words as an int64 tensor, checked: shape (2,) (or (..., 2) if batched)."""
    t = k if isinstance(k, Tensor) else _tensor(np.asarray(k, dtype=np.int64))
    if t.dtype not in (_C.dtype.int64, _C.dtype.int32) or t.ndim == 0 or t.shape[-1] != 2 or \
            (t.ndim != 1 and not batched):
        raise TypeError(f"[{name}] expected a key: an int64 tensor of shape (2,) from PRNGKey, "
                        f"split or fold_in, got dtype {t.dtype} and shape {tuple(t.shape)}")
    return t


def _words(k: Any, name: str):
    w = _key_words(k, name).tolist()
    return int(w[0]) & _MASK32, int(w[1]) & _MASK32


def _generator(k: Any, name: str, purpose: int = _SAMPLE) -> np.random.Generator:
    """The stream of key ``k`` for ``purpose`` (Note [Key streams])."""
    k0, k1 = _words(k, name)
    cipher_key = np.array([(k0 << 32) | k1, purpose], dtype=np.uint64)
    return np.random.Generator(np.random.Philox(key=cipher_key))


def split(key: KeyArray, num: int = 2) -> KeyArray:
    """``num`` new keys derived from ``key``, as a (num, 2) tensor; iterate or index it."""
    num = int(num)
    if num < 0:
        raise ValueError(f"[split] num must be non-negative, got {num}")
    g = _generator(key, "split", _SPLIT)
    words = g.integers(0, 1 << 32, size=(num, 2), dtype=np.uint64).astype(np.int64)
    return _tensor(words)


def fold_in(key: KeyArray, data: int) -> KeyArray:
    """A new key derived from ``key`` and the integer ``data`` (e.g. a step or a rank)."""
    if isinstance(data, Tensor):
        data = data.item()
    g = _generator(key, "fold_in", (_FOLD_IN << 32) | (int(data) & _MASK32))
    k0, k1 = (int(w) for w in g.integers(0, 1 << 32, size=2, dtype=np.uint64))
    return _make_key(k0, k1)


# ---- samplers ---------------------------------------------------------------------------------

def _shape(shape: Optional[Shape]) -> tuple:
    if shape is None:
        return ()
    if isinstance(shape, numbers.Integral):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _float_dtype(dtype, name: str):
    from ._creation import _dt
    d = _dt(dtype)
    if d not in _NP_FLOAT:
        raise TypeError(f"[{name}] dtype must be float32 or float64, got {d}")
    return d, _NP_FLOAT[d]


def _numpy(x) -> np.ndarray:
    return x.detach().numpy() if isinstance(x, Tensor) else np.asarray(x)


def _out(arr: np.ndarray, dtype) -> Tensor:
    return _tensor(np.ascontiguousarray(arr), dtype=dtype)


def normal(key: KeyArray, shape: Shape = (), dtype=_C.dtype.float32) -> Tensor:
    """Standard normal samples of ``shape``."""
    d, npd = _float_dtype(dtype, "normal")
    return _out(_generator(key, "normal").standard_normal(_shape(shape), dtype=npd), d)


def uniform(key: KeyArray, shape: Shape = (), dtype=_C.dtype.float32, minval=0.0,
            maxval=1.0) -> Tensor:
    """Samples uniform on [minval, maxval) of ``shape`` (the bounds broadcast against it)."""
    d, npd = _float_dtype(dtype, "uniform")
    lo, hi = _numpy(minval).astype(np.float64), _numpy(maxval).astype(np.float64)
    shp = _shape(shape)
    u = _generator(key, "uniform").random(shp, dtype=np.float64)
    x = (lo + (hi - lo) * u).astype(npd)
    # Rounding to float32 can land on maxval itself; keep the interval half-open, as JAX does.
    top = np.nextafter(hi.astype(npd), lo.astype(npd))
    return _out(np.broadcast_to(np.where(x < hi.astype(npd), x, top), shp), d)


def randint(key: KeyArray, shape: Shape, minval, maxval, dtype=_C.dtype.int64) -> Tensor:
    """Integers uniform on [minval, maxval) of ``shape`` (int64 by default; JAX's is int32)."""
    from ._creation import _dt
    d = _dt(dtype)
    if d not in _NP_INT:
        raise TypeError(f"[randint] dtype must be int32 or int64, got {d}")
    lo, hi = _numpy(minval).astype(np.int64), _numpy(maxval).astype(np.int64)
    if np.any(hi <= lo):
        raise ValueError(f"[randint] need minval < maxval, got {minval} and {maxval}")
    shp = _shape(shape)
    return _out(np.broadcast_to(_generator(key, "randint").integers(lo, hi, size=shp), shp), d)


def bernoulli(key: KeyArray, p=0.5, shape: Optional[Shape] = None) -> Tensor:
    """Booleans that are True with probability ``p`` (of ``p``'s shape unless ``shape``)."""
    prob = _numpy(p).astype(np.float64)
    shp = prob.shape if shape is None else _shape(shape)
    u = _generator(key, "bernoulli").random(shp)
    return _out(u < prob, _C.dtype.bool)


def gumbel(key: KeyArray, shape: Shape = (), dtype=_C.dtype.float32) -> Tensor:
    """Standard Gumbel samples of ``shape``."""
    d, npd = _float_dtype(dtype, "gumbel")
    return _out(_generator(key, "gumbel").gumbel(size=_shape(shape)).astype(npd), d)


def exponential(key: KeyArray, shape: Shape = (), dtype=_C.dtype.float32) -> Tensor:
    """Standard exponential samples (rate 1) of ``shape``."""
    d, npd = _float_dtype(dtype, "exponential")
    return _out(_generator(key, "exponential").standard_exponential(_shape(shape), dtype=npd), d)


def _permuted_indices(g: np.random.Generator, n: int) -> Tensor:
    return _tensor(g.permutation(n).astype(np.int64))


def permutation(key: KeyArray, x, axis: int = 0, independent: bool = False) -> Tensor:
    """A random permutation of ``arange(x)`` for an int ``x``, else ``x`` shuffled along
    ``axis`` (differentiable with respect to ``x``)."""
    g = _generator(key, "permutation")
    if isinstance(x, numbers.Integral):
        return _permuted_indices(g, int(x))
    from .numpy._util import asarray, normalize_axis
    x = asarray(x)
    if x.ndim == 0:
        raise ValueError("[permutation] x must be an int or an array with at least one axis")
    axis = normalize_axis(axis, x.ndim, "permutation")
    if independent and x.ndim > 1:
        idx = np.argsort(g.random(tuple(x.shape)), axis=axis)
        return _C.take_along_dim(x, _tensor(idx.astype(np.int64)), axis)
    return _C.index_select(x, axis, _permuted_indices(g, x.shape[axis]))


def choice(key: KeyArray, a, shape: Shape = (), replace: bool = True, p=None,
           axis: int = 0) -> Tensor:
    """Samples from ``arange(a)`` for an int ``a``, else slices of ``a`` along ``axis``, with
    probabilities ``p`` (uniform when None), with or without replacement."""
    from .numpy._util import asarray, normalize_axis
    g = _generator(key, "choice")
    shp = _shape(shape)
    n = int(a) if isinstance(a, numbers.Integral) else asarray(a).shape[axis]
    probs = None if p is None else _numpy(p).astype(np.float64)
    idx = g.choice(n, size=shp, replace=replace, p=probs).astype(np.int64)
    if isinstance(a, numbers.Integral):
        return _tensor(idx)
    arr = asarray(a)
    axis = normalize_axis(axis, arr.ndim, "choice")
    picked = _C.index_select(arr, axis, _tensor(idx.reshape(-1)))
    return picked.reshape(list(arr.shape[:axis]) + list(shp) + list(arr.shape[axis + 1:]))


def categorical(key: KeyArray, logits, axis: int = -1, shape: Optional[Shape] = None) -> Tensor:
    """Category indices sampled with probabilities ``softmax(logits, axis)`` (the Gumbel-max
    trick); ``shape`` must end with the shape of ``logits`` without ``axis``."""
    from .numpy._util import asarray, normalize_axis
    logits = asarray(logits).detach()
    axis = normalize_axis(axis, logits.ndim, "categorical")
    batch = list(logits.shape[:axis]) + list(logits.shape[axis + 1:])
    shp = list(batch) if shape is None else list(_shape(shape))
    if shp[len(shp) - len(batch):] != batch:
        raise ValueError(f"[categorical] shape {tuple(shp)} must end with the batch shape "
                         f"{tuple(batch)} of logits of shape {tuple(logits.shape)}")
    prefix = shp[:len(shp) - len(batch)]
    noise_shape = prefix + batch[:axis] + [logits.shape[axis]] + batch[axis:]
    d = logits.dtype if logits.dtype in _NP_FLOAT else _C.dtype.float32
    noise = gumbel(key, noise_shape, d)
    return _C.argmax(noise + logits.to(d), len(prefix) + axis, False)
