"""scikit-learn's 8x8 handwritten digits (1797 images, bundled with scikit-learn)."""
from __future__ import annotations

import numpy as np

__all__ = ["load_digits"]


def load_digits(test_split: float = 0.2, seed: int = 0, normalize: bool = True,
                flatten: bool = True):
    """``((x_train, y_train), (x_test, y_test))`` like ``keras.datasets.mnist.load_data``.

    Images are float32 in [0, 1] when ``normalize`` (the raw pixels are 0..16), shaped
    ``(n, 64)`` when ``flatten`` else ``(n, 8, 8)``; labels int64. The split is a fixed
    permutation drawn from ``seed``, stratified by nothing: it touches no global RNG.
    """
    try:
        from sklearn.datasets import load_digits as _sk_load
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("[load_digits] needs scikit-learn: pip install scikit-learn") from e
    if not 0.0 <= test_split < 1.0:
        raise ValueError(f"[load_digits] test_split must be in [0, 1), got {test_split}")
    data = _sk_load()
    x = data.data.astype(np.float32)
    if normalize:
        x /= 16.0
    if not flatten:
        x = x.reshape(-1, 8, 8)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_split))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])
