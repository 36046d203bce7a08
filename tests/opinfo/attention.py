"""OpInfo entries: scaled_dot_product_attention (fused kernel and composite paths, Note [SDPA
paths] in python/deepcore/nn/_attention.py)."""
from __future__ import annotations

import numpy as np

from .core import Sample, add, arr, reduction_tols

# Scores sum E products and outputs S probabilities times values: reduction-sized errors.
_TOLS = reduction_tols(64)


def _keep(rng, shape):
    """A bool mask (True takes part) with about a quarter of the entries masked out."""
    return np.asarray(rng.random(shape) < 0.75)


def _qkv(rng, d, q, k, ev=None):
    v = k[:-1] + (ev if ev is not None else k[-1],)
    return arr(rng, q, d), arr(rng, k, d), arr(rng, v, d)


def _samples(rng, d):
    s = [
        Sample(*_qkv(rng, d, (2, 3, 7, 5), (2, 3, 9, 5), 4), desc="plain, Ev != E"),
        Sample(*_qkv(rng, d, (2, 3, 7, 5), (2, 3, 9, 5)), None, 0.0, True,
               desc="causal, L < S"),
        Sample(*_qkv(rng, d, (2, 2, 11, 4), (2, 2, 6, 4)), None, 0.0, True,
               desc="causal, L > S"),
        Sample(*_qkv(rng, d, (2, 4, 7, 5), (2, 2, 9, 5)), enable_gqa=True, desc="GQA"),
        Sample(*_qkv(rng, d, (2, 4, 7, 5), (2, 1, 9, 5)), None, 0.0, True,
               enable_gqa=True, desc="GQA, one kv head, causal"),
        Sample(*_qkv(rng, d, (2, 3, 7, 5), (2, 3, 9, 5)), _keep(rng, (7, 9)),
               desc="bool mask (L, S)"),
        Sample(*_qkv(rng, d, (2, 3, 7, 5), (2, 3, 9, 5)), _keep(rng, (2, 1, 7, 9)),
               desc="bool mask (B, 1, L, S)"),
        Sample(*_qkv(rng, d, (2, 3, 7, 5), (2, 3, 9, 5)), arr(rng, (1, 3, 1, 9), d),
               desc="float mask (1, H, 1, S)"),
        Sample(*_qkv(rng, d, (2, 3, 7, 5), (2, 3, 9, 5)), arr(rng, (7, 9), d), scale=0.3,
               desc="float mask, scale"),
        Sample(*_qkv(rng, d, (2, 3, 1, 5), (2, 3, 1, 5)), desc="L = S = 1"),
        Sample(*_qkv(rng, d, (3, 33, 8), (3, 65, 8)), None, 0.0, True, desc="3-d, odd L, S"),
        Sample(*_qkv(rng, d, (1, 3, 7, 5), (2, 1, 9, 5)), desc="broadcast batch and heads"),
        Sample(*_qkv(rng, d, (5, 4), (6, 4)), scale=2.0, desc="2-d"),
    ]
    dead = _keep(rng, (2, 3, 7, 9))
    dead[:, :, 2] = False
    s.append(Sample(*_qkv(rng, d, (2, 3, 7, 5), (2, 3, 9, 5)), dead,
                    desc="bool mask, a row with no key"))
    return s


add("scaled_dot_product_attention", _samples, tols=_TOLS, grad_tols=_TOLS, gradgrad=True,
    grad_args=(0, 1, 2))
# A float mask that requires grad takes the composite path; its gradient is compared too.
add("scaled_dot_product_attention", lambda rng, d: [
    Sample(*_qkv(rng, d, (2, 3, 7, 5), (2, 3, 9, 5)), arr(rng, (3, 7, 9), d),
           desc="float mask requiring grad"),
    Sample(*_qkv(rng, d, (2, 2, 4, 3), (2, 2, 6, 3)), arr(rng, (1, 6), d), scale=0.5,
           desc="broadcast float mask requiring grad")],
    tols=_TOLS, grad_tols=_TOLS)
