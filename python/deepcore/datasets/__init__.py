"""Small datasets: scikit-learn's digits, and MNIST / Fashion-MNIST from IDX files."""
from .digits import load_digits  # noqa: F401
from .mnist import MNIST, FashionMNIST, load_fashion_mnist, load_mnist, read_idx  # noqa: F401
from .mnist import ChecksumError  # noqa: F401

__all__ = ["load_digits", "MNIST", "FashionMNIST", "load_mnist", "load_fashion_mnist",
           "read_idx", "ChecksumError"]
