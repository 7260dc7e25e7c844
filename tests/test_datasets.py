"""Dataset loaders: digits split, MNIST idx files (plain and .gz), CIFAR-10 batches, clear errors."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from fnas_hls.errors import FnasError
from fnas_hls.search import datasets
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


def _write_mnist(folder, n_train=20, n_test=5, gz=True, labels_train=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (
            labels_train if labels_train is not None else rng.integers(0, 10, n_train, dtype=np.uint8)
        ),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in files.items():
        raw = _idx(arr)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return files


@pytest.fixture
def fashion_dirs(tmp_path, monkeypatch):
    """Point fashion-mnist's default folders (the repo's data/ and the Debian package's) at tmp_path."""
    local, system = tmp_path / "data" / "fashion-mnist", tmp_path / "usr" / "fashion-mnist"
    monkeypatch.setitem(datasets.DEFAULT_DIRS, "fashion-mnist", local)
    monkeypatch.setitem(datasets.SYSTEM_DIRS, "fashion-mnist", system)
    return local, system


def test_fashion_mnist_search_order(fashion_dirs, tmp_path):
    local, system = fashion_dirs
    _write_mnist(system, n_train=12)
    assert datasets.dataset_folder("fashion-mnist") == system
    d = load_dataset("fashion-mnist", seed=0, val_fraction=0.25)
    assert d.name == "fashion-mnist" and d.shape == (1, 28, 28) and len(d.train) + len(d.val) == 12
    _write_mnist(local, n_train=16, gz=False)  # data/fashion-mnist/ comes before the package's folder
    assert datasets.dataset_folder("fashion-mnist") == local
    assert len(load_dataset("fashion-mnist", seed=0).test) == 5
    given = tmp_path / "mine"
    _write_mnist(given, n_train=8)  # --data-dir comes first
    assert len(load_dataset("fashion-mnist", given, seed=0, val_fraction=0.25).train) == 6


def test_fashion_mnist_absent_everywhere_says_where_and_how(fashion_dirs):
    local, system = fashion_dirs
    assert not datasets.dataset_available("fashion-mnist")
    with pytest.raises(FnasError) as err:
        load_dataset("fashion-mnist")
    text = str(err.value)
    assert "\n" not in text
    assert f"{local}/" in text and f"{system}/" in text
    assert "apt-get install dataset-fashion-mnist" in text and "--data-dir" in text


def test_truncated_idx_file_is_named(tmp_path):
    _write_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(FnasError, match=rf"{path}: idx file holds .* data bytes"):
        load_dataset("fashion-mnist", tmp_path)
    gz = tmp_path / "g"
    _write_mnist(gz)
    cut = gz / "train-labels-idx1-ubyte.gz"
    cut.write_bytes(cut.read_bytes()[:-8])  # a gzip stream cut short
    with pytest.raises(FnasError, match=rf"{cut}: cannot read idx file"):
        load_dataset("fashion-mnist", gz)


def test_mismatched_idx_files_are_named(tmp_path):
    _write_mnist(tmp_path, n_train=20, labels_train=np.zeros(19, np.uint8))
    with pytest.raises(FnasError, match=r"train-labels-idx1-ubyte.gz: \[19\] labels for the 20 images"):
        load_dataset("fashion-mnist", tmp_path)
    other = tmp_path / "o"
    _write_mnist(other, labels_train=np.full(20, 12, np.uint8))
    with pytest.raises(FnasError, match=r"train-labels-idx1-ubyte.gz: label 12 is not a class 0-9"):
        load_dataset("fashion-mnist", other)
    wrong = tmp_path / "w"
    _write_mnist(wrong)
    (wrong / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(np.zeros((5, 8, 8), np.uint8))))
    with pytest.raises(FnasError, match=r"t10k-images-idx3-ubyte.gz: images \[5, 8, 8\], expected"):
        load_dataset("fashion-mnist", wrong)


@pytest.mark.skipif(
    not datasets.dataset_available("fashion-mnist"),
    reason="Fashion-MNIST not installed: apt-get install dataset-fashion-mnist (CI installs it)",
)
def test_fashion_mnist_real_files():
    d = load_dataset("fashion-mnist", seed=0, val_fraction=0.1)
    assert d.shape == (1, 28, 28) and d.classes == 10
    assert len(d.train) == 54_000 and len(d.val) == 6_000 and len(d.test) == 10_000
    assert d.train.x.dtype == np.float32 and d.train.x.min() == 0.0 and d.train.x.max() == 1.0
    assert np.bincount(d.test.y, minlength=10).tolist() == [1000] * 10  # the test split is balanced


def test_a_users_idx_folder_any_size(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 10, 6), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 12, 12, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (4, 10, 6), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([0, 1, 2, 14], dtype=np.uint8),
    }
    for name, arr in files.items():
        (tmp_path / name).write_bytes(_idx(arr))
    d = load_dataset(str(tmp_path), seed=0, val_fraction=0.25)
    assert d.shape == (1, 10, 6) and d.classes == 15 and len(d.train) == 9 and len(d.test) == 4
    with pytest.raises(FnasError, match="drop --data-dir"):
        load_dataset(str(tmp_path), tmp_path)


def test_a_users_npz_float_and_channels(tmp_path):
    x = np.random.default_rng(0).standard_normal((10, 3, 4, 4)).astype(np.float64)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(10) % 3, x_test=x[:2], y_test=np.array([0, 2]))
    d = load_dataset(str(tmp_path / "d.npz"), seed=1, val_fraction=0.2)
    assert d.shape == (3, 4, 4) and d.classes == 3 and d.train.x.dtype == np.float32
    np.testing.assert_allclose(d.test.x, x[:2].astype(np.float32))  # floats are taken as they are
    np.savez(
        tmp_path / "neg.npz", x_train=x, y_train=np.arange(10) - 1, x_test=x[:2], y_test=np.array([0, 2])
    )
    with pytest.raises(FnasError, match="y_train holds label -1"):
        load_dataset(str(tmp_path / "neg.npz"))
    np.savez(tmp_path / "f.npz", x_train=x, y_train=np.zeros(10), x_test=x[:2], y_test=np.array([0, 2]))
    with pytest.raises(FnasError, match="y_train must be 10 integer labels"):
        load_dataset(str(tmp_path / "f.npz"))
    np.savez(
        tmp_path / "s.npz", x_train=x, y_train=np.zeros(10, int), x_test=x[:2, :1], y_test=np.array([0, 2])
    )
    with pytest.raises(FnasError, match=r"x_train images are \[3, 4, 4\] but x_test images \[1, 4, 4\]"):
        load_dataset(str(tmp_path / "s.npz"))


def test_the_dataset_field(tmp_path):
    from fnas_hls.search.datasets import resolve_name

    assert resolve_name("mnist", tmp_path, "s.yaml:1") == "mnist"
    assert resolve_name("data/x.npz", tmp_path, "s.yaml:1") == str(tmp_path / "data" / "x.npz")
    (tmp_path / "mine").mkdir()
    assert resolve_name("mine", tmp_path, "s.yaml:1") == str(tmp_path / "mine")
    for bad in ("fashion_mnist", "MNIST", "imagenet", 3, ""):
        with pytest.raises(FnasError, match="s.yaml:1: field 'dataset' is .*accepted: digits, mnist"):
            resolve_name(bad, tmp_path, "s.yaml:1")
