"""The datasets a search trains on, as numpy arrays split into train, validation and test.

- ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, shipped inside the package, so
  a search runs on a fresh machine with no download), split by seed.
- ``mnist``: the standard idx files (``train-images-idx3-ubyte`` ... ``t10k-labels-idx1-ubyte``,
  optionally ``.gz``) from a folder, ``data/mnist/`` by default.
- ``fashion-mnist``: Zalando's Fashion-MNIST in the same four idx files (60,000 + 10,000 28x28
  images), from ``--data-dir``, else ``data/fashion-mnist/``, else the folder of the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/``).
- ``cifar10``: the python pickle batches (``data_batch_1`` ... ``data_batch_5``, ``test_batch``) from
  a folder, ``data/cifar-10-batches-py/`` by default.

Images are float32 in [0, 1], shaped (N, C, H, W); labels int64. The validation split is carved
out of the training data with the seed; the test split is the dataset's own when it has one.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fnas_hls.errors import FnasError

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
DEFAULT_DIRS = {
    "mnist": Path("data/mnist"),
    "fashion-mnist": Path("data/fashion-mnist"),
    "cifar10": Path("data/cifar-10-batches-py"),
}
# Folders searched after DEFAULT_DIRS when no --data-dir is given, with how to fill them.
SYSTEM_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
INSTALL_HINTS = {
    "mnist": "the standard idx files, optionally .gz",
    "fashion-mnist": "install them with `apt-get install dataset-fashion-mnist` (Debian), or put the "
    "four idx files, optionally .gz, in data/fashion-mnist/",
    "cifar10": "the python version of CIFAR-10",
}
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (N, C, H, W) float32
    y: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    classes: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> Dataset:
    """Dataset ``name`` (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``), split with ``seed``."""
    if name == "digits":
        x, y = _digits()
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        n_test = int(round(len(y) * test_fraction))
        test, rest = order[:n_test], order[n_test:]
        return _with_val("digits", x[rest], y[rest], Split(x[test], y[test]), seed, val_fraction, 10)
    if name in ("mnist", "fashion-mnist"):
        folder = dataset_folder(name, data_dir)
        xtr, ytr, xte, yte = _mnist(name, folder)
        return _with_val(name, xtr, ytr, Split(xte, yte), seed, val_fraction, 10)
    if name == "cifar10":
        folder = dataset_folder("cifar10", data_dir)
        xtr, ytr, xte, yte = _cifar10(folder)
        return _with_val("cifar10", xtr, ytr, Split(xte, yte), seed, val_fraction, 10)
    raise FnasError(f"unknown dataset '{name}'; accepted: {', '.join(DATASETS)}")


def _has_files(name: str, folder: Path) -> bool:
    if name == "cifar10":
        return all((folder / f).is_file() for f in CIFAR_FILES)
    return all(_find(folder, f) is not None for f in MNIST_FILES)


def dataset_folder(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder dataset ``name`` is read from: ``data_dir`` when given, else the first of its
    default folders that holds its files; FnasError naming every folder tried when none does."""
    if data_dir is not None:
        return Path(data_dir)
    candidates = [DEFAULT_DIRS[name]] + ([SYSTEM_DIRS[name]] if name in SYSTEM_DIRS else [])
    for folder in candidates:
        if _has_files(name, folder):
            return folder
    if len(candidates) == 1:
        return candidates[0]  # the loader names the files missing there
    files = CIFAR_FILES if name == "cifar10" else MNIST_FILES
    tried = " nor in ".join(f"{c}/" for c in candidates)
    raise FnasError(
        f"dataset '{name}': its files ({', '.join(files)}) are neither in {tried}; "
        f"{INSTALL_HINTS[name]}, or pass --data-dir FOLDER"
    )


def dataset_available(name: str, data_dir: str | Path | None = None) -> bool:
    """Whether ``load_dataset(name, data_dir)`` finds all of its files (digits always does)."""
    if name == "digits":
        return True
    try:
        return _has_files(name, dataset_folder(name, data_dir))
    except FnasError:
        return False


def _with_val(
    name: str, x: np.ndarray, y: np.ndarray, test: Split, seed: int, val_fraction: float, classes: int
) -> Dataset:
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(len(y))
    n_val = max(1, int(round(len(y) * val_fraction)))
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return Dataset(name, Split(x[train], y[train]), Split(x[val], y[val]), test, classes)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - a dependency of the package
        raise FnasError("dataset 'digits' needs scikit-learn (pip install scikit-learn)") from None
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    return x, d.target.astype(np.int64)


# --- MNIST: idx files ---------------------------------------------------------------------------


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz", folder / name.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    return None


def _missing(dataset: str, folder: Path, files: tuple[str, ...], missing: list[str], hint: str) -> FnasError:
    return FnasError(
        f"dataset '{dataset}': {', '.join(missing)} not found in {folder}/; put the files {', '.join(files)} "
        f"there ({hint}), or pass --data-dir FOLDER"
    )


def _mnist(dataset: str, folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    paths = {name: _find(folder, name) for name in MNIST_FILES}
    missing = [n for n, p in paths.items() if p is None]
    if missing:
        raise _missing(dataset, folder, MNIST_FILES, missing, INSTALL_HINTS[dataset])
    xtr, ytr, xte, yte = (read_idx(paths[n]) for n in MNIST_FILES)  # type: ignore[arg-type]
    for images, labels, which in ((xtr, ytr, "train"), (xte, yte, "t10k")):
        image_file, label_file = paths[f"{which}-images-idx3-ubyte"], paths[f"{which}-labels-idx1-ubyte"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise FnasError(f"{image_file}: images {list(images.shape)}, expected (N, 28, 28)")
        if labels.ndim != 1 or len(images) != len(labels):
            raise FnasError(
                f"{label_file}: {list(labels.shape)} labels for the {len(images)} images of {image_file}"
            )
        if labels.size and int(labels.max()) > 9:
            raise FnasError(f"{label_file}: label {int(labels.max())} is not a class 0-9")
    scale = np.float32(1.0 / 255.0)
    return (
        (xtr.astype(np.float32) * scale)[:, None],
        ytr.astype(np.int64),
        (xte.astype(np.float32) * scale)[:, None],
        yte.astype(np.int64),
    )


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """One idx file (``.gz`` too) as a numpy array; FnasError naming the file when malformed."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise FnasError(f"{path}: cannot read idx file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise FnasError(f"{path}: not an idx file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise FnasError(f"{path}: truncated idx header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 1
    if len(raw) - header != count * dtype.itemsize:
        raise FnasError(f"{path}: idx file holds {len(raw) - header} data bytes; its header says {dims}")
    return np.frombuffer(raw, dtype, count, header).reshape(dims)


# --- CIFAR-10: python pickle batches -----------------------------------------------------------


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as handle:
            d = pickle.load(handle, encoding="bytes")  # noqa: S301 - the dataset's own format
    except Exception as exc:
        raise FnasError(f"{path}: cannot read CIFAR-10 batch ({type(exc).__name__}: {exc})") from None
    data = d.get(b"data") if isinstance(d, dict) else None
    labels = d.get(b"labels") if isinstance(d, dict) else None
    if data is None or labels is None:
        raise FnasError(f"{path}: not a CIFAR-10 python batch (expected keys 'data' and 'labels')")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise FnasError(f"{path}: data {list(data.shape)} is not N x 3072 with N labels")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _cifar10(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    missing = [n for n in CIFAR_FILES if not (folder / n).is_file()]
    if missing:
        raise _missing("cifar10", folder, CIFAR_FILES, missing, INSTALL_HINTS["cifar10"])
    parts = [_cifar_batch(folder / n) for n in CIFAR_FILES[:-1]]
    xte, yte = _cifar_batch(folder / CIFAR_FILES[-1])
    xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    scale = np.float32(1.0 / 255.0)
    return xtr.astype(np.float32) * scale, ytr, xte.astype(np.float32) * scale, yte
