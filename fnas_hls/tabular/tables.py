"""The public result tables (``benchmarks/README.md``): read, checked, and held as plain arrays.

- ``NasBench201``: the 15,625 cells, their accuracy after 12 epochs on CIFAR-10, CIFAR-100 and
  ImageNet16-120, and after 200 epochs on CIFAR-10 (two files joined on ``arch`` and ``cellstr``).
- ``AccelNasBench``: 5,138 MnasNet-space networks with their block choices, proxy-trained ImageNet
  accuracy, measured training time and the DPU's measured latency.

A file that is not what the README says (missing, a column short, a number that is not one, the
two NAS-Bench-201 files out of step) is one ``FnasError`` line naming the file, row and column.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from dataclasses import dataclass
from pathlib import Path

from fnas_hls.errors import FnasError
from fnas_hls.network.benchmark_nets import parse_cellstr
from fnas_hls.paths import data_dir

NB201_SHORT = "nasbench201-cifar-12epochs.csv.gz"
NB201_LONG = "nasbench201-cifar10-200epochs-valid.csv.gz"
ANB = "accel-nasbench-mnasnet.csv.gz"

# NAS-Bench-201's datasets: the 12-epoch columns a search sees (validation) and scores (test).
NB201_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet"}
NB201_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16-120": 120}
NB201_EPOCHS_SHORT = 12
NB201_EPOCHS_LONG = 200

ANB_BLOCKS = 7
ANB_DECISIONS = {"e": (1, 4, 6), "k": (3, 5), "l": (1, 2, 3), "se": (0, 1)}
# The table's own rows give block 5 (EfficientNet-B0's 4-layer block) up to 4 layers (1,059 rows),
# though its README lists {1, 2, 3} for every block.
ANB_LAYERS_OF_BLOCK = {5: (1, 2, 3, 4)}


def anb_decisions(block: int) -> dict[str, tuple[int, ...]]:
    """The values each decision of Accel-NASBench block ``block`` takes."""
    return {**ANB_DECISIONS, "l": ANB_LAYERS_OF_BLOCK.get(block, ANB_DECISIONS["l"])}


def table_path(name: str, folder: Path | None = None) -> Path:
    """A table's file: in ``folder`` when given, else the project's ``benchmarks/``."""
    return (folder if folder is not None else data_dir("benchmarks")) / name


def _rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise FnasError(f"{path}: table not found (see benchmarks/README.md for where it comes from)")
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise FnasError(f"{path}: no column '{missing[0]}' (header: {', '.join(header) or 'empty'})")
        return list(reader)
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise FnasError(f"{path}: not a readable CSV table ({exc})") from None


def _number(path: Path, i: int, row: dict[str, str], column: str, optional: bool = False) -> float:
    text = (row.get(column) or "").strip()
    if optional and text == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise FnasError(f"{path}: row {i + 2}, column '{column}': {text!r} is not a number") from None
    if not math.isfinite(value):
        raise FnasError(f"{path}: row {i + 2}, column '{column}': {text!r} is not a finite number")
    return value


@dataclass(frozen=True)
class NasBench201:
    """NAS-Bench-201's cells in table order; accuracies in percent."""

    cellstr: tuple[str, ...]
    short: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]  # dataset -> (12-ep val, 12-ep test)
    long_valid: tuple[float, ...]  # CIFAR-10 after 200 epochs (validation split)
    params_m: tuple[float, ...]
    source: str

    def __len__(self) -> int:
        return len(self.cellstr)


def load_nasbench201(folder: Path | None = None) -> NasBench201:
    """Both NAS-Bench-201 files, checked row by row and joined."""
    short_path = table_path(NB201_SHORT, folder)
    long_path = table_path(NB201_LONG, folder)
    cols = tuple(f"{p}-{s}" for p in NB201_DATASETS.values() for s in ("val", "test"))
    short_rows = _rows(short_path, ("arch", "cellstr", *cols))
    long_rows = _rows(long_path, ("arch", "cellstr", "params_m", "valid_top1"))
    if len(short_rows) != len(long_rows):
        raise FnasError(
            f"{long_path}: {len(long_rows)} rows where {short_path.name} has {len(short_rows)}; "
            "the two NAS-Bench-201 files hold the same cells in the same order"
        )
    cells: list[str] = []
    values: dict[str, list[float]] = {c: [] for c in cols}
    long, params = [], []
    for i, (a, b) in enumerate(zip(short_rows, long_rows, strict=True)):
        cell = a["cellstr"]
        try:
            parse_cellstr(cell)
        except FnasError as exc:
            raise FnasError(f"{short_path}: row {i + 2}, column 'cellstr': {exc}") from None
        if (a["arch"], cell) != (b["arch"], b["cellstr"]):
            raise FnasError(
                f"{long_path}: row {i + 2} is arch {b['arch']} {b['cellstr']} where {short_path.name} has "
                f"arch {a['arch']} {cell}"
            )
        cells.append(cell)
        for c in cols:
            values[c].append(_number(short_path, i, a, c))
        long.append(_number(long_path, i, b, "valid_top1"))
        params.append(_number(long_path, i, b, "params_m"))
    if len(set(cells)) != len(cells):
        raise FnasError(f"{short_path}: a cell string appears twice")
    short = {
        name: (tuple(values[f"{p}-val"]), tuple(values[f"{p}-test"])) for name, p in NB201_DATASETS.items()
    }
    return NasBench201(tuple(cells), short, tuple(long), tuple(params), str(short_path))


@dataclass(frozen=True)
class AnbRow:
    """One Accel-NASBench network: per block (expansion, kernel, layers, se), and its figures."""

    id: int
    blocks: tuple[tuple[int, int, int, int], ...]
    val_top1: float
    train_time_s: float
    macs_m: float
    latency_zcu102_ms: float  # nan where the table has none

    def as_row(self) -> dict[str, float]:
        """The mapping ``benchmark_nets.accel_nasbench_network`` builds from."""
        row: dict[str, float] = {"id": self.id}
        for b, (e, k, n, se) in enumerate(self.blocks):
            row.update({f"b{b}_e": e, f"b{b}_k": k, f"b{b}_l": n, f"b{b}_se": se})
        return row


@dataclass(frozen=True)
class AccelNasBench:
    rows: tuple[AnbRow, ...]
    source: str

    def __len__(self) -> int:
        return len(self.rows)


def load_accel_nasbench(folder: Path | None = None) -> AccelNasBench:
    """Accel-NASBench's rows, each block choice checked against the space's values."""
    path = table_path(ANB, folder)
    block_cols = tuple(f"b{b}_{d}" for b in range(ANB_BLOCKS) for d in ANB_DECISIONS)
    figures = ("val_top1", "train_time_s", "macs_m", "latency_zcu102_ms")
    rows = _rows(path, ("id", *block_cols, *figures))
    out: list[AnbRow] = []
    for i, row in enumerate(rows):
        blocks = []
        for b in range(ANB_BLOCKS):
            choice = []
            for d, accepted in anb_decisions(b).items():
                v = _number(path, i, row, f"b{b}_{d}")
                if v not in accepted:
                    raise FnasError(
                        f"{path}: row {i + 2}, column 'b{b}_{d}': {v:g} is not one of "
                        f"{', '.join(map(str, accepted))}"
                    )
                choice.append(int(v))
            blocks.append(tuple(choice))
        out.append(
            AnbRow(
                int(_number(path, i, row, "id")),
                tuple(blocks),  # type: ignore[arg-type]
                _number(path, i, row, "val_top1"),
                _number(path, i, row, "train_time_s"),
                _number(path, i, row, "macs_m"),
                _number(path, i, row, "latency_zcu102_ms", optional=True),
            )
        )
    return AccelNasBench(tuple(out), str(path))
