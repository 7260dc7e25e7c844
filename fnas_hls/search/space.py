"""Search spaces (``search/*.yaml``): which CNNs a search may build, and its defaults.

```yaml
name: fnas-mnist
dataset: mnist                  # or digits, fashion-mnist, cifar10, or your own data's path (an .npz
                                # of x_train, y_train, x_test, y_test, or a folder of idx files),
                                # relative to this file
input: [1, 28, 28]
layers: 4                       # searched conv layers
choices:                        # one decision per key per layer, in this order
  kernel: [5, 7, 14]
  filters: [9, 18, 36]
conv: {stride: 1, padding: same, relu: true}   # fixed settings of every searched conv
head:                           # layers after the searched ones, in the architecture YAML form
  - {type: gap}
  - {type: fc, out: 10}
board: pynq
spec_ms: 8
precision: fixed16              # or a list, [fixed16, int8]: the controller chooses each child's
                                # arithmetic too (a last decision, after the layers')
train: {...}                    # training settings (fnas_hls.search.settings.TrainSettings)
search: {...}                   # search settings (fnas_hls.search.settings.SearchSettings)
```

Decisions: ``kernel``, ``filters``, ``stride`` and ``pool`` (``none``, ``max`` or ``avg``: a 2x2
stride-2 pooling after the layer). An architecture is a tuple of choice indices, layer by layer;
where the space lists several precisions, a last index chooses the child's precision.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fnas_hls.errors import FnasError
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.ir import Network
from fnas_hls.paths import data_dir
from fnas_hls.precision import PRECISIONS
from fnas_hls.search.datasets import Dataset, resolve_name
from fnas_hls.search.settings import (
    FinalSettings,
    SearchSettings,
    TrainSettings,
    parse_final_settings,
    parse_search_settings,
    parse_train_settings,
)
from fnas_hls.yaml_io import LINE, load_yaml, strip_lines, where

DECISIONS = ("kernel", "filters", "stride", "pool")
#: A run's precision where the controller chooses it per child (``RunConfig.precision``).
SEARCHED = "search"
POOL_CHOICES = ("none", "max", "avg")
FIELDS = (
    "name",
    "description",
    "dataset",
    "input",
    "layers",
    "choices",
    "conv",
    "head",
    "board",
    "spec_ms",
    "precision",
    "train",
    "search",
    "final",
)


@dataclass(frozen=True)
class Decision:
    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SearchSpace:
    name: str
    dataset: str
    input: tuple[int, int, int]
    num_layers: int
    decisions: tuple[Decision, ...]
    conv: dict[str, Any] = field(hash=False, compare=False)
    head: tuple[dict[str, Any], ...] = field(hash=False, compare=False)
    board: str = "pynq"
    spec_ms: float | None = None
    precision: str = "fixed16"  # the first of ``precisions``
    precisions: tuple[str, ...] = ("fixed16",)  # more than one: a searched decision
    description: str = ""
    source: str = ""
    train_settings: TrainSettings = field(default_factory=TrainSettings, compare=False)
    search_settings: SearchSettings = field(default_factory=SearchSettings, compare=False)
    final_settings: FinalSettings = field(default_factory=FinalSettings, compare=False)

    @property
    def steps(self) -> tuple[Decision, ...]:
        """The controller's decisions in order: every decision of layer 1, then of layer 2, ..., then
        the precision where the space searches it."""
        layers = self.decisions * self.num_layers
        return (*layers, Decision("precision", self.precisions)) if self.searches_precision else layers

    @property
    def searches_precision(self) -> bool:
        return len(self.precisions) > 1

    def arch_choice(self, choice: tuple[int, ...]) -> tuple[int, ...]:
        """The layers' part of ``choice`` (without the precision's index)."""
        return tuple(choice[: len(self.decisions) * self.num_layers])

    def precision_of(self, choice: tuple[int, ...]) -> str:
        """The precision of the child ``choice``: its last decision's, or the space's one."""
        return self.precisions[choice[-1]] if self.searches_precision else self.precision

    def with_precision(self, precision: str) -> SearchSpace:
        """The space with one precision (``--precision`` given): no precision decision."""
        return replace(self, precision=precision, precisions=(precision,))

    @property
    def size(self) -> int:
        n = 1
        for d in self.steps:
            n *= len(d.values)
        return n

    def architectures(self) -> Iterator[tuple[int, ...]]:
        """Every architecture of the space, as choice indices."""
        return itertools.product(*(range(len(d.values)) for d in self.steps))

    def describe(self, choice: tuple[int, ...]) -> list[dict[str, Any]]:
        """The chosen values, one mapping per searched layer."""
        if len(choice) != len(self.steps):
            raise ValueError(f"expected {len(self.steps)} choices, got {len(choice)}")
        k = len(self.decisions)
        choice = self.arch_choice(choice)
        return [
            {d.name: d.values[c] for d, c in zip(self.decisions, choice[i * k : (i + 1) * k], strict=True)}
            for i in range(self.num_layers)
        ]

    def arch_dict(self, choice: tuple[int, ...]) -> dict[str, Any]:
        """The architecture YAML form of ``choice``."""
        layers: list[dict[str, Any]] = []
        for i, values in enumerate(self.describe(choice)):
            conv = {"type": "conv", "name": f"conv{i + 1}", **self.conv}
            conv["kernel"] = values.get("kernel", conv.get("kernel"))
            conv["out"] = values.get("filters", conv.get("out"))
            if "stride" in values:
                conv["stride"] = values["stride"]
            layers.append(conv)
            pool = values.get("pool", "none")
            if pool != "none":
                layers.append({"type": f"{pool}pool", "name": f"pool{i + 1}", "kernel": 2, "stride": 2})
        layers.extend(dict(h) for h in self.head)
        return {"name": self.name, "input": list(self.input), "layers": layers}

    def build(self, choice: tuple[int, ...]) -> Network:
        """The network of ``choice``; FnasError when it is not a valid CNN (e.g. pooled to nothing)."""
        return network_from_dict(
            self.arch_dict(choice), f"{self.source or self.name} {self.describe(choice)}"
        )


def resolve_space(name_or_path: str | Path) -> Path:
    """A space's YAML: a path, or the name of a file in ``search/`` (``fnas-mnist``)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    candidate = data_dir("search") / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(q.stem for q in data_dir("search").glob("*.yaml"))
    raise FnasError(
        f"unknown search space '{name_or_path}'; known spaces: {', '.join(known)} (or give a .yaml path)"
    )


def load_space(name_or_path: str | Path, dataset: str | None = None) -> SearchSpace:
    """Read and check a search-space YAML; ``dataset``, when given, stands for its ``dataset`` field
    (a run's copy of its space keeps the dataset the run resolved)."""
    path = resolve_space(name_or_path)
    doc = load_yaml(path, "search space")
    src = str(path)
    if not isinstance(doc, dict):
        raise FnasError(f"{src}: a search space is a mapping with fields {', '.join(FIELDS)}")
    unknown = sorted(k for k in doc if k not in (*FIELDS, LINE))
    if unknown:
        raise FnasError(f"{where(src, doc)}: unknown field '{unknown[0]}'; accepted: {', '.join(FIELDS)}")
    for req in ("input", "layers", "choices"):
        if req not in doc:
            raise FnasError(f"{where(src, doc)}: missing field '{req}'")
    inp = doc["input"]
    if not (isinstance(inp, list) and len(inp) == 3 and all(isinstance(x, int) and x > 0 for x in inp)):
        raise FnasError(f"{where(src, doc)}: field 'input' must be [channels, height, width], got {inp!r}")
    n = doc["layers"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise FnasError(f"{where(src, doc)}: field 'layers' must be a positive integer, got {n!r}")
    choices = doc["choices"]
    if not isinstance(choices, dict) or not strip_lines(choices):
        raise FnasError(
            f"{where(src, doc)}: field 'choices' must map decisions ({', '.join(DECISIONS)}) to lists"
        )
    decisions = []
    for key, values in strip_lines(choices).items():
        if key not in DECISIONS:
            raise FnasError(
                f"{where(src, choices)}: unknown decision '{key}'; accepted: {', '.join(DECISIONS)}"
            )
        if not isinstance(values, list) or not values:
            raise FnasError(f"{where(src, choices)}: choices.{key} must be a non-empty list, got {values!r}")
        for v in values:
            ok = (
                v in POOL_CHOICES
                if key == "pool"
                else (isinstance(v, int) and not isinstance(v, bool) and v > 0)
            )
            if not ok:
                accepted = ", ".join(POOL_CHOICES) if key == "pool" else "positive integers"
                raise FnasError(f"{where(src, choices)}: choices.{key} has {v!r}; accepted: {accepted}")
        decisions.append(Decision(key, tuple(values)))
    if "filters" not in choices and "out" not in (doc.get("conv") or {}):
        raise FnasError(f"{where(src, doc)}: give choices.filters or conv.out")
    if "kernel" not in choices and "kernel" not in (doc.get("conv") or {}):
        raise FnasError(f"{where(src, doc)}: give choices.kernel or conv.kernel")
    conv = strip_lines(doc.get("conv") or {})
    head = strip_lines(doc.get("head") or [])
    if not isinstance(conv, dict) or not isinstance(head, list):
        raise FnasError(f"{where(src, doc)}: 'conv' must be a mapping and 'head' a list of layers")
    precisions, spec = precisions_and_spec(doc, src)
    space = SearchSpace(
        name=str(doc.get("name", path.stem)),
        dataset=_dataset(dataset if dataset else doc.get("dataset"), path.parent, where(src, doc)),
        input=tuple(inp),
        num_layers=n,
        decisions=tuple(decisions),
        conv=conv,
        head=tuple(head),
        board=str(doc.get("board", "pynq")),
        spec_ms=spec,
        precision=precisions[0],
        precisions=precisions,
        description=str(doc.get("description", "")),
        source=src,
        train_settings=parse_train_settings(doc.get("train"), src),
        search_settings=parse_search_settings(doc.get("search"), src),
        final_settings=parse_final_settings(doc.get("final"), src),
    )
    # Fail now, naming the file, if the fixed parts cannot make a network at all.
    space.build(tuple(0 for _ in space.steps))
    return space


def precision_and_spec(doc: dict[str, Any], src: str) -> tuple[str, float | None]:
    """A space's ``precision`` (default fixed16) and ``spec_ms`` (None when absent), checked."""
    precisions, spec = precisions_and_spec(doc, src, searched=False)
    return precisions[0], spec


def precisions_and_spec(
    doc: dict[str, Any], src: str, searched: bool = True
) -> tuple[tuple[str, ...], float | None]:
    """A space's ``precision`` (default fixed16; with ``searched``, a list of them is a decision) and
    ``spec_ms`` (None when absent), checked."""
    raw = doc.get("precision", "fixed16")
    listed = isinstance(raw, list) and searched
    values = raw if listed else [raw]
    accepted = ", ".join(PRECISIONS)
    for value in values:
        if not isinstance(value, str) or value not in PRECISIONS:
            what = f"one of {accepted}" + (" or a list of them" if searched else "")
            raise FnasError(f"{where(src, doc)}: field 'precision' must be {what}, got {raw!r}")
    if listed and (not values or len(set(values)) != len(values)):
        raise FnasError(f"{where(src, doc)}: field 'precision' lists {raw!r}; give distinct precisions")
    spec = doc.get("spec_ms")
    if spec is not None and (isinstance(spec, bool) or not isinstance(spec, (int, float)) or spec <= 0):
        raise FnasError(f"{where(src, doc)}: field 'spec_ms' must be a positive number, got {spec!r}")
    return tuple(values), float(spec) if spec is not None else None


def _dataset(value: object, base: Path, where: str) -> str:
    return "" if value is None or value == "" else resolve_name(value, base, where)


def check_dataset(space: SearchSpace, data: Dataset) -> None:
    """FnasError when ``data`` cannot train the space's networks: other image shapes than the
    space's ``input``, or more classes than its classifier has outputs."""
    if data.shape != tuple(space.input):
        raise FnasError(
            f"{space.source}: field 'input' is {list(space.input)} but dataset '{space.dataset}' has images "
            f"{list(data.shape)}"
        )
    outputs = space.build(tuple(0 for _ in space.steps)).output.size
    if data.classes > outputs:
        raise FnasError(
            f"{space.source}: the networks have {outputs} outputs but dataset '{space.dataset}' has labels "
            f"up to {data.classes - 1}; set the last layer of 'head' to {{type: fc, out: {data.classes}}}"
        )
