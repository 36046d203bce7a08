"""torch.special's names over deepcore's elementwise ops.

Every function here is an op of the registry under its torch.special name (``expit`` is
``sigmoid``, ``gammaln`` is ``lgamma``, ``psi`` is ``digamma``), so it is differentiable where
the op is, and the accuracy figures of the README's table apply.
"""
from __future__ import annotations

import math

from . import _C
from ._C import Tensor
from .nn import functional as _F

__all__ = [
    "expit", "logit", "erf", "erfc", "erfinv", "gammaln", "digamma", "psi", "polygamma",
    "sinc", "xlogy", "i0", "i1", "log1p", "expm1", "exp2", "logsumexp", "softmax", "log_softmax",
    "ndtr", "log_ndtr", "round", "entr",
]

expit = _C.sigmoid
erf = _C.erf
erfc = _C.erfc
erfinv = _C.erfinv
gammaln = _C.lgamma
digamma = _C.digamma
psi = _C.digamma
polygamma = _C.polygamma
sinc = _C.sinc
xlogy = _C.xlogy
log1p = _C.log1p
expm1 = _C.expm1
exp2 = _C.exp2
round = _C.round  # noqa: A001  (torch.special.round)


logit = _C.logit
i0 = _C.i0
i1 = _C.special_i1
logsumexp = _C.logsumexp


def softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    return _F.softmax(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    return _F.log_softmax(input, dim, dtype=dtype)


def ndtr(input: Tensor) -> Tensor:
    """The standard normal CDF, 0.5 erfc(-x / sqrt 2): no cancellation in the lower tail."""
    return _C.mul(_C.erfc(_C.mul(input, -1.0 / math.sqrt(2.0))), 0.5)


def log_ndtr(input: Tensor) -> Tensor:
    return _C.log(ndtr(input))


def entr(input: Tensor) -> Tensor:
    """-x log x, 0 at 0 and -inf for x < 0, as torch.special.entr."""
    return _C.where(_C.lt(input, 0), -math.inf, _C.neg(_C.xlogy(input, input)))
