"""Tabular search spaces (``search/nb201.yaml``, ``search/accel-nasbench.yaml``): the decisions a
strategy takes, the table row each choice names, and what the table says of that row.

```yaml
name: nb201
table: nasbench201         # or accel-nasbench
dataset: cifar10           # nasbench201 only: cifar10 (default), cifar100, imagenet16-120
board: pynq
precision: fixed16
spec_ms: 2.0
search: {strategy: rl, evaluations: 40, final_k: 5, episodes: 2000}
```

- NAS-Bench-201: six decisions, the op on each edge of the cell in the order of its cell string
  (``|e01|+|e02|e12|+|e03|e13|e23|``), five ops each: 15,625 choices, every one a row. A child is
  named by its cell string. Its short evaluation is the table's 12-epoch validation accuracy; its
  long one (``--final-k``) the 200-epoch CIFAR-10 validation accuracy (CIFAR-100 and ImageNet16-120
  have no long fidelity in the tables: their winners are scored by the 12-epoch test accuracy).
  Training cost is counted in MAC-epochs (each network's MACs times 12 or 200 epochs), since the
  tables hold no training times: NAS-Bench-201 trains every cell with the same schedule and batch,
  so its time per epoch grows with the network's FLOPs.
- Accel-NASBench: 28 decisions (per block of seven: expansion, kernel, layers, squeeze-excite; block 5
  takes 1 to 4 layers, as the table's rows do, the others 1 to 3). The
  table is a sample of 5,138 out of billions, so a choice is taken to its nearest row (fewest
  differing decisions, ties to the lower id) and the child is that row, named by its ``id``; the
  report says how far the proposals were from their rows. Its evaluation is the proxy-trained
  ImageNet top-1, its cost the table's measured training time; there is no long fidelity.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fnas_hls.errors import FnasError
from fnas_hls.network.benchmark_nets import NB201_OPS, accel_nasbench_network, nasbench201_network
from fnas_hls.network.ir import Network
from fnas_hls.search.settings import SearchSettings, parse_search_settings
from fnas_hls.search.space import precision_and_spec
from fnas_hls.tabular import tables
from fnas_hls.yaml_io import LINE, load_yaml, strip_lines, where

TABLES = ("nasbench201", "accel-nasbench")
FIELDS = ("name", "description", "table", "dataset", "board", "precision", "spec_ms", "search")
# The edges of a NAS-Bench-201 cell in the order its cell string lists them.
NB201_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


@dataclass(frozen=True)
class TableSearchSettings:
    """What a table search adds to ``SearchSettings``: its budget and its final training."""

    evaluations: int = 40  # distinct children evaluated (short fidelity); a child seen again is free
    final_k: int = 0  # the best K in-spec children retrained at the long fidelity; the winner among them
    # each evaluation the best of this many new in-spec proposals by the predictor (0: none;
    # ``fnas_hls.tabular.search``), once ``screen_after`` children are evaluated
    screen: int = 0
    screen_after: int = 10


def cellstr_of(ops: tuple[str, ...]) -> str:
    """The cell string of six edge ops in ``NB201_EDGES`` order."""
    e = [f"{op}~{src}" for op, (src, _) in zip(ops, NB201_EDGES, strict=True)]
    return f"|{e[0]}|+|{e[1]}|{e[2]}|+|{e[3]}|{e[4]}|{e[5]}|"


class TableSpace:
    """What every tabular space answers; the two tables below fill it in."""

    name: str
    table: str
    dataset: str
    num_choices: tuple[int, ...]
    rows: int
    child_field: str  # how a child is named in the logs: cellstr or id
    cost_unit: str
    has_long: bool
    cache_name: str  # names the space's rows in latency cache files

    def row_of(self, choice: tuple[int, ...]) -> tuple[int, int]:
        """The row a choice names, and how many decisions it differs from the choice in."""
        raise NotImplementedError

    def name_of(self, row: int) -> str:
        raise NotImplementedError

    def network(self, row: int) -> Network:
        raise NotImplementedError

    def short(self, row: int) -> float:
        """Top-1 (%) at the short fidelity, as the search sees it."""
        raise NotImplementedError

    def long(self, row: int) -> float:
        """Top-1 (%) a winner is scored by: the long fidelity where there is one."""
        raise NotImplementedError

    def cost(self, row: int, long: bool = False) -> float:
        raise NotImplementedError


class NasBench201Space(TableSpace):
    table = "nasbench201"
    child_field = "cellstr"
    cost_unit = "G MAC-epochs"

    def __init__(self, name: str, dataset: str = "cifar10") -> None:
        if dataset not in tables.NB201_DATASETS:
            raise ValueError(dataset)
        self.name = name
        self.dataset = dataset
        self.cache_name = f"{self.table}-{dataset}"
        self.data = _nb201()
        self.rows = len(self.data)
        self.num_choices = (len(NB201_OPS),) * len(NB201_EDGES)
        self.index = {c: i for i, c in enumerate(self.data.cellstr)}
        self.has_long = dataset == "cifar10"
        self._val, self._test = self.data.short[dataset]

    def row_of(self, choice: tuple[int, ...]) -> tuple[int, int]:
        cell = cellstr_of(tuple(NB201_OPS[c] for c in choice))
        if cell not in self.index:
            raise FnasError(f"{self.data.source}: no row for cell {cell}")
        return self.index[cell], 0

    def choice_of(self, row: int) -> tuple[int, ...]:
        from fnas_hls.network.benchmark_nets import parse_cellstr

        edges = parse_cellstr(self.data.cellstr[row])
        return tuple(NB201_OPS.index(edges[e]) for e in NB201_EDGES)

    def name_of(self, row: int) -> str:
        return self.data.cellstr[row]

    def network(self, row: int) -> Network:
        return _nb201_network(row, self.dataset)

    def short(self, row: int) -> float:
        return self._val[row]

    def long(self, row: int) -> float:
        return self.data.long_valid[row] if self.has_long else self._test[row]

    def cost(self, row: int, long: bool = False) -> float:
        epochs = tables.NB201_EPOCHS_LONG if long else tables.NB201_EPOCHS_SHORT
        return _nb201_macs(row, self.dataset) * epochs / 1e9


class AccelNasBenchSpace(TableSpace):
    table = "accel-nasbench"
    child_field = "id"
    cost_unit = "s of training (the table's measured time)"
    has_long = False

    def __init__(self, name: str, sample: int | None = None, sample_seed: int = 0) -> None:
        """``sample``: search within that many rows drawn at random (seeded) instead of all."""
        self.name = name
        self.dataset = "imagenet"
        self.data = _anb()
        everything = len(self.data)
        if sample is not None and sample < everything:
            # the first rows of one seeded permutation: a smaller sample is part of a larger one
            picked = np.random.default_rng(sample_seed).permutation(everything)[:sample]
            self.table_rows = tuple(int(r) for r in sorted(picked))
            self.cache_name = f"{self.table}-sample{sample}-seed{sample_seed}"
        else:
            self.table_rows = tuple(range(everything))
            self.cache_name = self.table
        self.rows = len(self.table_rows)
        values = [tuple(tables.anb_decisions(b).values()) for b in range(tables.ANB_BLOCKS)]
        self.num_choices = tuple(len(v) for block in values for v in block)
        self.matrix = np.array(
            [
                [
                    values[b][d].index(v)
                    for b, block in enumerate(self.data.rows[t].blocks)
                    for d, v in enumerate(block)
                ]
                for t in self.table_rows
            ],
            dtype=np.int8,
        )

    def row_of(self, choice: tuple[int, ...]) -> tuple[int, int]:
        distance = (self.matrix != np.asarray(choice, dtype=np.int8)).sum(axis=1)
        row = int(np.argmin(distance))  # the first of the nearest: the lowest id
        return row, int(distance[row])

    def choice_of(self, row: int) -> tuple[int, ...]:
        return tuple(int(v) for v in self.matrix[row])

    def name_of(self, row: int) -> str:
        return str(self.data.rows[self.table_rows[row]].id)

    def short(self, row: int) -> float:
        return self.data.rows[self.table_rows[row]].val_top1

    def long(self, row: int) -> float:
        return self.short(row)

    def cost(self, row: int, long: bool = False) -> float:
        return self.data.rows[self.table_rows[row]].train_time_s

    def dpu_ms(self, row: int) -> float:
        """The DPU's measured latency on zcu102 (nan where the table has none)."""
        return self.data.rows[self.table_rows[row]].latency_zcu102_ms

    def network(self, row: int) -> Network:
        return _anb_network(self.table_rows[row])


# The tables load once a process (a space, a worker process's unpickled space and the networks
# built here all read the same copy), and each row's network is built once.
@functools.lru_cache(maxsize=1)
def _nb201() -> tables.NasBench201:
    return tables.load_nasbench201()


@functools.lru_cache(maxsize=1)
def _anb() -> tables.AccelNasBench:
    return tables.load_accel_nasbench()


@functools.lru_cache(maxsize=4096)
def _nb201_network(row: int, dataset: str) -> Network:
    """NAS-Bench-201's cell ``row`` with its classifier sized for ``dataset``."""
    return nasbench201_network(_nb201().cellstr[row], tables.NB201_CLASSES[dataset], name=f"nb201_{row}")


@functools.lru_cache(maxsize=32768)
def _nb201_macs(row: int, dataset: str) -> int:
    return sum(i.macs for i in _nb201_network(row, dataset).info)


@functools.lru_cache(maxsize=4096)
def _anb_network(table_row: int) -> Network:
    return accel_nasbench_network(_anb().rows[table_row].as_row())


@dataclass(frozen=True)
class TableSpaceConfig:
    """A tabular space's YAML, checked."""

    space: TableSpace
    board: str
    precision: str
    spec_ms: float | None
    search: SearchSettings
    table_search: TableSearchSettings
    source: str
    description: str = ""


def is_tabular(path: Path) -> bool:
    """True when ``path`` is a space YAML that names a ``table``."""
    if not path.is_file():
        return False
    try:
        doc = load_yaml(path, "search space")
    except FnasError:
        return False
    return isinstance(doc, dict) and "table" in doc


def load_table_space(path: Path) -> TableSpaceConfig:
    """Read and check a tabular space's YAML (the tables themselves load here too)."""
    doc = load_yaml(path, "search space")
    src = str(path)
    if not isinstance(doc, dict):
        raise FnasError(f"{src}: a tabular search space is a mapping with fields {', '.join(FIELDS)}")
    unknown = sorted(k for k in doc if k not in (*FIELDS, LINE))
    if unknown:
        raise FnasError(f"{where(src, doc)}: unknown field '{unknown[0]}'; accepted: {', '.join(FIELDS)}")
    table = doc.get("table")
    if table not in TABLES:
        raise FnasError(f"{where(src, doc)}: field 'table' must be one of {', '.join(TABLES)}, got {table!r}")
    name = str(doc.get("name", path.stem))
    dataset = doc.get("dataset", "cifar10" if table == "nasbench201" else "imagenet")
    if table == "nasbench201":
        if dataset not in tables.NB201_DATASETS:
            raise FnasError(
                f"{where(src, doc)}: field 'dataset' must be one of {', '.join(tables.NB201_DATASETS)} for "
                f"NAS-Bench-201, got {dataset!r}"
            )
        space: TableSpace = NasBench201Space(name, dataset)
    else:
        if dataset != "imagenet":
            raise FnasError(f"{where(src, doc)}: Accel-NASBench is ImageNet only; drop field 'dataset'")
        space = AccelNasBenchSpace(name)
    precision, spec = precision_and_spec(doc, src)
    raw: Any = doc.get("search") or {}
    if not isinstance(raw, dict):
        raise FnasError(f"{where(src, doc)}: field 'search' must be a mapping")
    extra = {k: raw[k] for k in ("evaluations", "final_k", "screen", "screen_after") if k in raw}
    for k, v in extra.items():
        low = 1 if k in ("evaluations", "screen_after") else 0
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise FnasError(f"{where(src, raw)}: field 'search.{k}' must be an integer >= {low}, got {v!r}")
    settings = parse_search_settings(
        {k: v for k, v in strip_lines(raw).items() if k not in extra}, src, SearchSettings(episodes=2000)
    )
    ts = TableSearchSettings(**extra)
    if ts.final_k and not space.has_long:
        raise FnasError(f"{where(src, raw)}: search.final_k: {no_long_fidelity(space)}; set it to 0")
    return TableSpaceConfig(
        space, str(doc.get("board", "pynq")), precision, spec,
        settings, ts, src, str(doc.get("description", "")),
    )  # fmt: skip


def no_long_fidelity(space: TableSpace) -> str:
    """Why a space cannot retrain its finalists (``final_k``)."""
    return (
        f"the {space.table} table has no long fidelity for {space.dataset} (only NAS-Bench-201 on cifar10 "
        "has 200-epoch accuracies)"
    )
