"""Dataset loaders: digits split, MNIST idx files (plain and .gz), CIFAR-10 batches, clear errors."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from fnas_hls.errors import FnasError
from fnas_hls.search.datasets import load_dataset


def test_digits_split_is_deterministic_and_disjoint():
    a = load_dataset("digits", seed=3, val_fraction=0.2, test_fraction=0.2)
    b = load_dataset("digits", seed=3, val_fraction=0.2, test_fraction=0.2)
    assert a.shape == (1, 8, 8)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    np.testing.assert_array_equal(a.val.y, b.val.y)
    assert a.train.x.dtype == np.float32 and 0 <= a.train.x.min() and a.train.x.max() <= 1


def _idx(data: np.ndarray) -> bytes:
    code = 0x08
    return bytes([0, 0, code, data.ndim]) + struct.pack(f">{data.ndim}I", *data.shape) + data.tobytes()


def test_mnist_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 20, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5, dtype=np.uint8),
    }
    for i, (name, arr) in enumerate(files.items()):
        raw = _idx(arr)
        if i % 2:
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (tmp_path / name).write_bytes(raw)
    d = load_dataset("mnist", tmp_path, seed=0, val_fraction=0.25)
    assert d.shape == (1, 28, 28) and len(d.train) == 15 and len(d.val) == 5 and len(d.test) == 5
    np.testing.assert_array_equal(d.test.y, files["t10k-labels-idx1-ubyte"])


def test_cifar10_batches(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [1, 2, 3, 4]}
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    d = load_dataset("cifar10", tmp_path, seed=0, val_fraction=0.1)
    assert d.shape == (3, 32, 32) and len(d.train) + len(d.val) == 20 and len(d.test) == 4


def test_missing_files_say_where(tmp_path):
    with pytest.raises(FnasError, match=r"train-images-idx3-ubyte.*not found in .*put the files"):
        load_dataset("mnist", tmp_path / "nothing")
    with pytest.raises(FnasError, match=r"data_batch_1.*not found in"):
        load_dataset("cifar10", tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"garbage")
    for n in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / n).write_bytes(_idx(np.zeros(3, np.uint8)))
    with pytest.raises(FnasError, match=r"not an idx file"):
        load_dataset("mnist", tmp_path)
