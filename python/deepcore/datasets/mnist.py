"""MNIST and Fashion-MNIST from the standard IDX files (gzip-compressed or raw).

``read_idx`` parses one IDX file: a big-endian header (two zero bytes, a type code, the
number of dimensions, one 32-bit size per dimension) followed by the data. Files are looked
up in ``root`` as ``<name>`` or ``<name>.gz``; with ``download=True`` missing files are
fetched from the mirror and every file is checked against its MD5 before use.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from typing import Dict, Optional, Tuple

import numpy as np

__all__ = ["read_idx", "MNIST", "FashionMNIST", "load_mnist", "load_fashion_mnist",
           "ChecksumError", "check_integrity"]

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class ChecksumError(ValueError):
    """A file whose digest does not match the expected one."""


def _open(path: str):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` or raw)."""
    path = os.fspath(path)
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"[read_idx] '{path}' is not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"[read_idx] '{path}' has unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"[read_idx] '{path}' is truncated inside its header")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"[read_idx] '{path}' holds {len(data) - header} data bytes but its "
                         f"header {shape} of {dtype} needs {expected}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _digest(path: str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_integrity(path: str, md5: Optional[str] = None, sha256: Optional[str] = None) -> None:
    """Raises ChecksumError unless ``path`` has the given MD5 / SHA-256 hex digest."""
    for algorithm, want in (("md5", md5), ("sha256", sha256)):
        if want is None:
            continue
        got = _digest(path, algorithm)
        if got != want.lower():
            raise ChecksumError(f"[datasets] {algorithm} of '{path}' is {got}, expected {want}: "
                                "the file is corrupted or not the expected one; delete it "
                                "and download again")


class _IDXDataset:
    """torchvision-style dataset: ``root``, ``train``, ``download``, ``transform``."""

    mirrors = ()
    resources: Dict[str, str] = {}  # file name (gz) -> md5
    classes = []

    def __init__(self, root, train: bool = True, transform=None, target_transform=None,
                 download: bool = False, checksums: Optional[Dict[str, str]] = None):
        self.root = os.fspath(root)
        self.train = train
        self.transform, self.target_transform = transform, target_transform
        self.checksums = dict(self.resources if checksums is None else checksums)
        prefix = "train" if train else "t10k"
        self.data = self._load(f"{prefix}-images-idx3-ubyte", download)
        self.targets = self._load(f"{prefix}-labels-idx1-ubyte", download).astype(np.int64)
        if len(self.data) != len(self.targets):
            raise ValueError(f"[{type(self).__name__}] {len(self.data)} images but "
                             f"{len(self.targets)} labels in '{self.root}'")

    @property
    def folder(self) -> str:
        return self.root

    def _find(self, name: str) -> Optional[str]:
        for candidate in (name + ".gz", name):
            path = os.path.join(self.folder, candidate)
            if os.path.exists(path):
                return path
        return None

    def _load(self, name: str, download: bool) -> np.ndarray:
        path = self._find(name)
        if path is None and download:
            path = self._download(name + ".gz")
        if path is None:
            raise FileNotFoundError(f"[{type(self).__name__}] '{name}(.gz)' not found in "
                                    f"'{self.folder}'; pass download=True to fetch it")
        want = self.checksums.get(os.path.basename(path))
        if want is not None:
            check_integrity(path, **({"sha256": want} if len(want) == 64 else {"md5": want}))
        return read_idx(path)

    def _download(self, filename: str) -> str:
        os.makedirs(self.folder, exist_ok=True)
        target = os.path.join(self.folder, filename)
        errors = []
        for mirror in self.mirrors:
            tmp = target + ".part"
            try:
                with urllib.request.urlopen(mirror + filename, timeout=60) as r, \
                        open(tmp, "wb") as out:
                    while True:
                        chunk = r.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
                os.replace(tmp, target)
                return target
            except OSError as e:
                errors.append(f"{mirror}: {e}")
                if os.path.exists(tmp):
                    os.unlink(tmp)
        raise RuntimeError(f"[{type(self).__name__}] could not download {filename}: "
                           + "; ".join(errors))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = self.data[index], int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class MNIST(_IDXDataset):
    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "http://yann.lecun.com/exdb/mnist/")
    resources = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    classes = [str(i) for i in range(10)]


class FashionMNIST(_IDXDataset):
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    resources = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]


def _load_arrays(cls, root, download, checksums) -> Tuple[tuple, tuple]:
    train = cls(root, train=True, download=download, checksums=checksums)
    test = cls(root, train=False, download=download, checksums=checksums)
    return (train.data, train.targets), (test.data, test.targets)


def load_mnist(root, download: bool = False, checksums: Optional[Dict[str, str]] = None):
    """``((x_train, y_train), (x_test, y_test))`` as uint8 images and int64 labels, like
    ``keras.datasets.mnist.load_data``, from the IDX files in ``root``."""
    return _load_arrays(MNIST, root, download, checksums)


def load_fashion_mnist(root, download: bool = False,
                       checksums: Optional[Dict[str, str]] = None):
    return _load_arrays(FashionMNIST, root, download, checksums)
