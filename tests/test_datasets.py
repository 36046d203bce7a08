"""Dataset loaders: digits, and IDX readers on generated (never downloaded) files."""
import gzip
import hashlib
import struct

import numpy as np
import pytest

from deepcore import datasets


def write_idx(path, arr, compress):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + b"".join(
        struct.pack(">I", d) for d in arr.shape)
    data = header + arr.tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n, compress in (("train", 12, True), ("t10k", 5, False)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        files[prefix] = (images, labels)
    return tmp_path, files


def test_read_idx_gz_raw_and_dtypes(tmp_path, mnist_dir):
    root, files = mnist_dir
    np.testing.assert_array_equal(datasets.read_idx(root / "train-images-idx3-ubyte.gz"),
                                  files["train"][0])
    np.testing.assert_array_equal(datasets.read_idx(root / "t10k-labels-idx1-ubyte"),
                                  files["t10k"][1])
    f = (np.arange(6, dtype=np.float32).reshape(2, 3) / 4).astype(">f4")
    write_idx(tmp_path / "floats", f, False)
    out = datasets.read_idx(tmp_path / "floats")
    assert out.dtype == np.float32 and np.array_equal(out, f)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="bad magic"):
        datasets.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    with pytest.raises(ValueError, match="needs 5"):
        datasets.read_idx(tmp_path / "short")


def test_mnist_dataset_and_load_arrays(mnist_dir):
    root, files = mnist_dir
    train = datasets.MNIST(root, train=True, checksums={})
    assert len(train) == 12
    img, label = train[3]
    np.testing.assert_array_equal(img, files["train"][0][3])
    assert label == int(files["train"][1][3])
    (xtr, ytr), (xte, yte) = datasets.load_fashion_mnist(root, checksums={})
    assert xtr.shape == (12, 28, 28) and yte.dtype == np.int64 and len(xte) == 5
    with pytest.raises(FileNotFoundError, match="download=True"):
        datasets.MNIST(root / "nowhere", checksums={})


def test_checksum_verification(mnist_dir):
    root, _ = mnist_dir
    path = root / "train-images-idx3-ubyte.gz"
    good = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in root.iterdir()}
    datasets.MNIST(root, train=True, checksums=good)
    good_sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir()}
    datasets.MNIST(root, train=True, checksums=good_sha)
    bad = dict(good, **{path.name: "0" * 32})
    with pytest.raises(datasets.ChecksumError, match="md5 of .*train-images"):
        datasets.MNIST(root, train=True, checksums=bad)
    # the real files' published checksums are the default: a generated file fails them
    with pytest.raises(datasets.ChecksumError):
        datasets.MNIST(root, train=True)


def test_load_digits_split():
    (xtr, ytr), (xte, yte) = datasets.load_digits(test_split=0.25, seed=1)
    assert xtr.shape[1] == 64 and len(xtr) + len(xte) == 1797 and len(xte) == 449
    assert xtr.dtype == np.float32 and 0 <= xtr.min() and xtr.max() <= 1
    (a, _), _ = datasets.load_digits(test_split=0.25, seed=1, flatten=False)
    assert a.shape[1:] == (8, 8) and np.array_equal(a.reshape(len(a), -1), xtr)
