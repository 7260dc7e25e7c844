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
- a user's own data, named by its path: an ``.npz`` with ``x_train``, ``y_train``, ``x_test``,
  ``y_test`` (images (N, C, H, W) or (N, H, W); uint8 scaled to [0, 1], floats taken as they are;
  integer labels from 0), or a folder of the four idx files in MNIST's names (any image size).

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
#: What a space's ``dataset`` field accepts, for error lines.
ACCEPTED = (
    f"{', '.join(DATASETS)}, or the path of your own data: an .npz with x_train, y_train, x_test, "
    "y_test, or a folder of the four idx files (train-images-idx3-ubyte, ...)"
)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
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


def is_path(name: str) -> bool:
    """Whether a ``dataset`` value names a user's data by its path rather than a known dataset."""
    return name not in DATASETS


def resolve_name(value: object, base: Path, where: str) -> str:
    """A space's ``dataset`` field as ``load_dataset`` takes it: a known name as it is, a path made
    absolute against ``base`` (the space file's folder). A value that is neither (``fashion_mnist``)
    is one FnasError line, ``where`` naming the file and line."""
    text = str(value).strip() if isinstance(value, (str, Path)) else ""
    if text in DATASETS:
        return text
    path = Path(text).expanduser()
    looks_like_path = text.endswith(".npz") or "/" in text or "\\" in text or (base / path).is_dir()
    if not text or not looks_like_path:
        import difflib

        close = difflib.get_close_matches(text.lower().replace("_", "-"), DATASETS, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise FnasError(f"{where}: field 'dataset' is {value!r}{hint}; accepted: {ACCEPTED}")
    return str(path if path.is_absolute() else (base / path).absolute())


def describe(name: str, data_dir: str | Path | None = None) -> str:
    """Dataset ``name`` and where it is read from, for the search's first line."""
    if is_path(name):
        return name
    source = "scikit-learn" if name == "digits" else f"{dataset_folder(name, data_dir)}/"
    return f"{name} from {source}"


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> Dataset:
    """Dataset ``name`` (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, or the path of an
    ``.npz`` or of a folder of idx files), split with ``seed``."""
    if is_path(name):
        if data_dir is not None:
            raise FnasError(
                f"--data-dir {data_dir}: the space's dataset is a path already ({name}); drop --data-dir"
            )
        xtr, ytr, xte, yte = _user_data(Path(name))
        classes = int(max(ytr.max(initial=0), yte.max(initial=0))) + 1
        return _with_val(name, xtr, ytr, Split(xte, yte), seed, val_fraction, classes)
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
    raise FnasError(f"unknown dataset '{name}'; accepted: {ACCEPTED}")


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
    if is_path(name):
        return Path(name).is_file() if name.endswith(".npz") else _has_files("mnist", Path(name))
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
    elsewhere = ", or pass --data-dir FOLDER" if dataset in DATASETS else ""
    return FnasError(
        f"dataset '{dataset}': {', '.join(missing)} not found in {folder}/; put the files {', '.join(files)} "
        f"there ({hint}){elsewhere}"
    )


def _mnist(
    dataset: str, folder: Path, size: tuple[int, int] | None = (28, 28), classes: int | None = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four idx files in ``folder``; ``size`` and ``classes`` checked when given (a user's own
    idx files may hold any image size and any number of classes)."""
    paths = {name: _find(folder, name) for name in MNIST_FILES}
    missing = [n for n, p in paths.items() if p is None]
    if missing:
        hint = INSTALL_HINTS.get(dataset, "your images and labels as idx files")
        raise _missing(dataset, folder, MNIST_FILES, missing, hint)
    xtr, ytr, xte, yte = (read_idx(paths[n]) for n in MNIST_FILES)  # type: ignore[arg-type]
    for images, labels, which in ((xtr, ytr, "train"), (xte, yte, "t10k")):
        image_file, label_file = paths[f"{which}-images-idx3-ubyte"], paths[f"{which}-labels-idx1-ubyte"]
        if images.ndim != 3 or (size is not None and images.shape[1:] != size):
            expected = f"(N, {size[0]}, {size[1]})" if size is not None else "(N, H, W)"
            raise FnasError(f"{image_file}: images {list(images.shape)}, expected {expected}")
        if labels.ndim != 1 or len(images) != len(labels):
            raise FnasError(
                f"{label_file}: {list(labels.shape)} labels for the {len(images)} images of {image_file}"
            )
        if classes is not None and labels.size and int(labels.max()) >= classes:
            raise FnasError(f"{label_file}: label {int(labels.max())} is not a class 0-{classes - 1}")
    if xtr.shape[1:] != xte.shape[1:]:
        raise FnasError(
            f"{folder}: training images are {list(xtr.shape[1:])}, test images {list(xte.shape[1:])}"
        )
    scale = np.float32(1.0 / 255.0)
    return (
        (xtr.astype(np.float32) * scale)[:, None],
        ytr.astype(np.int64),
        (xte.astype(np.float32) * scale)[:, None],
        yte.astype(np.int64),
    )


def _user_data(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A user's own data: an ``.npz`` of the four arrays, or a folder of the four idx files."""
    if not path.exists():
        raise FnasError(f"dataset {path}: no such file or folder; the space's field 'dataset' names it")
    if path.is_dir():
        xtr, ytr, xte, yte = _mnist(str(path), path, size=None, classes=None)
        files = {"y_train": path / MNIST_FILES[1], "y_test": path / MNIST_FILES[3]}
    elif path.suffix == ".npz":
        xtr, ytr, xte, yte = _npz(path)
        files = {"y_train": path, "y_test": path}
    else:
        raise FnasError(
            f"dataset {path}: accepted: an .npz with {', '.join(NPZ_KEYS)}, or a folder of idx files"
        )
    for y, key in ((ytr, "y_train"), (yte, "y_test")):
        if y.size and int(y.min()) < 0:
            raise FnasError(
                f"{files[key]}: {key} holds label {int(y.min())}; labels are classes 0, 1, 2, ..."
            )
    return xtr, ytr, xte, yte


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in NPZ_KEYS if k not in archive.files]
            if missing:
                raise FnasError(
                    f"{path}: no array {', '.join(repr(k) for k in missing)}; an .npz dataset holds "
                    f"{', '.join(NPZ_KEYS)} (it has {', '.join(archive.files) or 'nothing'})"
                )
            arrays = {k: archive[k] for k in NPZ_KEYS}
    except FnasError:
        raise
    except Exception as exc:  # zipfile, pickle refusals, truncation: all a bad file
        raise FnasError(f"{path}: cannot read the .npz ({type(exc).__name__}: {exc})") from None
    out = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or 0 in x.shape:
            raise FnasError(
                f"{path}: x_{split} has shape {list(x.shape)}; expected (N, C, H, W) or (N, H, W) images"
            )
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise FnasError(
                f"{path}: y_{split} must be {len(x)} integer labels, one per image of x_{split}; got "
                f"{y.dtype} {list(y.shape)}"
            )
        if x.dtype == np.uint8:
            x = x.astype(np.float32) * np.float32(1.0 / 255.0)
        elif np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
            if not np.all(np.isfinite(x)):
                raise FnasError(f"{path}: x_{split} holds inf or NaN")
        else:
            raise FnasError(f"{path}: x_{split} is {x.dtype}; accepted: uint8 (0-255) or floats")
        out += [np.ascontiguousarray(x), y.astype(np.int64)]
    if out[0].shape[1:] != out[2].shape[1:]:
        raise FnasError(
            f"{path}: x_train images are {list(out[0].shape[1:])} but x_test images {list(out[2].shape[1:])}"
        )
    return out[0], out[1], out[2], out[3]


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


#: Training images a design's number formats are chosen from.
CALIBRATION_SAMPLES = 256


def calibration_images(data: Dataset) -> np.ndarray:
    """The training images a design's number formats are chosen from (``quantize_network``): the
    emitted project's, and quantization-aware training's and the search's quantized scores, so
    that all of them use the same formats."""
    return data.train.x[:CALIBRATION_SAMPLES]
