"""``deepcore.Generator``: a seedable random stream for the data pipeline.

Shuffling, sampling and splitting draw from NumPy's PCG64 rather than from deepcore's
global Philox stream, so a sampler with its own generator never disturbs (and is never
disturbed by) the random ops of a training step. Without a generator, a fresh seed is
drawn from deepcore's global RNG, so ``dc.manual_seed`` makes the data order reproducible
exactly like ``torch.manual_seed`` does for PyTorch's DataLoader. ``rand``, ``randn``,
``randint`` and ``randperm`` called with ``generator=`` draw from the same stream.
"""
from __future__ import annotations

import numpy as np

from .. import _C

_SEED_BOUND = 1 << 62


class Generator:
    """A random number generator for samplers, ``random_split`` and ``DataLoader``.

    ``Generator().manual_seed(s)`` returns the generator, like ``torch.Generator``.
    """

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"[Generator] only 'cpu' generators exist, got device {device!r}")
        self.device = "cpu"
        self._initial_seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        self._rng = np.random.Generator(np.random.PCG64(self._initial_seed))

    def manual_seed(self, seed: int) -> "Generator":
        seed = int(seed)
        if seed < 0:
            # torch accepts negative seeds by reinterpreting them as unsigned 64-bit.
            seed &= (1 << 64) - 1
        self._initial_seed = seed
        self._rng = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self) -> int:
        """Reseeds from OS entropy and returns the new seed."""
        s = int(np.random.SeedSequence().generate_state(1, np.uint64)[0]) >> 1
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._initial_seed

    def get_state(self) -> dict:
        return {"initial_seed": self._initial_seed, "bit_generator": self._rng.bit_generator.state}

    def set_state(self, state: dict) -> "Generator":
        self._initial_seed = int(state["initial_seed"])
        bg = np.random.PCG64()
        bg.state = state["bit_generator"]
        self._rng = np.random.Generator(bg)
        return self

    def __repr__(self) -> str:
        return f"deepcore.Generator(initial_seed={self._initial_seed})"


def draw_seed(generator=None) -> int:
    """A non-negative 62-bit seed from ``generator``, or from deepcore's global RNG."""
    if generator is None:
        return int(_C._randint(0, _SEED_BOUND, [], _C.dtype.int64).item())
    return int(numpy_rng(generator).integers(0, _SEED_BOUND))


def numpy_rng(generator) -> np.random.Generator:
    """The NumPy generator behind ``generator`` (a deepcore Generator or a NumPy Generator)."""
    if isinstance(generator, Generator):
        return generator._rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(
        f"[generator] expected a deepcore.Generator or numpy.random.Generator, "
        f"got {type(generator).__name__}")


def rng_for(generator) -> np.random.Generator:
    """The generator to draw one epoch's randomness from: ``generator`` itself when given,
    otherwise a fresh stream seeded from deepcore's global RNG (like PyTorch's samplers)."""
    if generator is None:
        return np.random.Generator(np.random.PCG64(draw_seed()))
    return numpy_rng(generator)
