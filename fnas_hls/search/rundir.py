"""The run folder ``runs/<name>/``: its config, the children log and the controller checkpoint.

```
config.yaml        the space, board, spec, seed and every setting (enough to repeat the run)
space.yaml         a copy of the search space the run used (resume reads this one)
children.jsonl     one JSON line per episode, appended and flushed as each child (each batch) finishes
trained.jsonl      one JSON line per trained child, as its training finishes (resume reads it)
controller.pt      the search state after the last finished episode (resume starts from it)
children/<key>.pt  the trained weights of each trained child
best/              the winner: arch.yaml, weights.pt, model.onnx, hls/, summary.json
report.md, *.png   the report
```
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from fnas_hls.boards import Board, load_board
from fnas_hls.errors import FnasError
from fnas_hls.io_utils import remove_entries, write_text_atomic
from fnas_hls.search.settings import (
    FinalSettings,
    SearchSettings,
    TrainSettings,
    parse_final_settings,
    parse_search_settings,
    parse_train_settings,
)
from fnas_hls.search.space import SEARCHED, SearchSpace, load_space
from fnas_hls.yaml_io import load_yaml

MARKER = "fnas_hls_run"
CONFIG = "config.yaml"
SPACE = "space.yaml"
LOG = "children.jsonl"
TRAINED = "trained.jsonl"
CHECKPOINT = "controller.pt"
FINAL_LOG = "final.jsonl"  # final training (search/final.py): a line per retrained child
FINAL_DIR = "final"  # its weights and checkpoints
OURS = (
    CONFIG,
    SPACE,
    LOG,
    TRAINED,
    CHECKPOINT,
    FINAL_LOG,
    FINAL_DIR,
    "children",
    "best",
    "report.md",
    "reward.png",
    "accuracy_latency.png",
)


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a search does."""

    space: SearchSpace
    board: Board
    spec_ms: float
    precision: str  # or space.SEARCHED: each child's own (the space's last decision)
    seed: int
    hw_aware: bool
    train: TrainSettings
    search: SearchSettings
    data_dir: str | None = None
    style: str = "auto"  # the accelerator style (analysis.STYLE_CHOICES); auto: the fastest that fits
    device: str = "auto"  # where children train (trainer.DEVICES); auto: cuda when present, else cpu
    final: FinalSettings = field(default_factory=FinalSettings)  # final training of the best k

    def to_dict(self, space_file: str = SPACE) -> dict[str, Any]:
        return {
            MARKER: 1,
            "space": space_file,
            "space_name": self.space.name,
            "space_source": self.space.source,
            "dataset": self.space.dataset,
            "board": self.board.name,
            "spec_ms": self.spec_ms,
            "precision": self.precision,
            "seed": self.seed,
            "hw_aware": self.hw_aware,
            "style": self.style,
            "data_dir": self.data_dir,
            "device": self.device,
            "train": self.train.as_dict(),
            "search": self.search.as_dict(),
            "final": self.final.as_dict(),
        }


def default_run_folder(space: str, board: str, strategy: str, hw_aware: bool, seed: int) -> Path:
    """``runs/<space>-<board>[-<strategy>][-hwunaware][-seed<N>]``: rl, hardware-aware, seed 0 unnamed."""
    name = f"{space}-{board}"
    if strategy != "rl":
        name += f"-{strategy}"
    if not hw_aware:
        name += "-hwunaware"
    if seed:
        name += f"-seed{seed}"
    return Path("runs") / name


def is_run_dir(out: Path) -> bool:
    """True when ``out`` holds a config.yaml written by a previous search."""
    cfg = out / CONFIG
    if not cfg.is_file():
        return False
    try:
        doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and MARKER in doc


def prepare_new(out: Path, cfg: RunConfig, force: bool, command: str = "") -> None:
    """Make ``out`` ready for a new run of ``cfg``: refuse a folder that holds something else."""
    if out.exists() and not out.is_dir():
        raise FnasError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        ours = is_run_dir(out)
        if not force:
            if ours:
                raise FnasError(
                    f"--out {out}: holds a previous search; pass --resume to continue it or --force to "
                    "start it over"
                )
            raise FnasError(
                f"--out {out}: folder exists and is not an fnas-hls run (no {CONFIG} of ours); choose "
                "another --out or pass --force to write into it"
            )
        remove_entries(out, OURS)  # --force: clear only what a run writes
    out.mkdir(parents=True, exist_ok=True)
    (out / "children").mkdir(exist_ok=True)
    src = Path(cfg.space.source)
    write_text_atomic(out / SPACE, src.read_text(encoding="utf-8"), SPACE)
    doc = cfg.to_dict()
    if command:
        doc["command"] = command
    write_text_atomic(out / CONFIG, yaml.safe_dump(doc, sort_keys=False), CONFIG)


def load_run_config(out: Path) -> RunConfig:
    """The RunConfig of the run in ``out`` (for --resume)."""
    if not is_run_dir(out):
        raise FnasError(f"--resume: {out} is not an fnas-hls run folder (no {out / CONFIG} of ours)")
    src = str(out / CONFIG)
    doc = load_yaml(out / CONFIG, "run config")
    for key in ("space", "board", "spec_ms", "precision", "seed", "hw_aware"):
        if key not in doc:
            raise FnasError(f"{src}: missing field '{key}'")
    # the dataset as the run resolved it: a relative path in the copy meant the original's folder
    space = load_space(out / str(doc["space"]), dataset=doc.get("dataset"))
    if str(doc["precision"]) != SEARCHED:  # one precision (the space's, or --precision's)
        space = space.with_precision(str(doc["precision"]))
    return RunConfig(
        space=space,
        board=load_board(str(doc["board"])),
        spec_ms=float(doc["spec_ms"]),
        precision=str(doc["precision"]),
        seed=int(doc["seed"]),
        hw_aware=bool(doc["hw_aware"]),
        train=parse_train_settings(doc.get("train"), src),
        search=parse_search_settings(doc.get("search"), src),
        final=parse_final_settings(doc.get("final"), src),  # runs before final training: k 0
        data_dir=doc.get("data_dir"),
        device=_device(doc.get("device", "auto"), src),
        style=_style(doc.get("style", "sequential"), src),  # runs before styles were sequential
    )


def _style(value: object, src: str) -> str:
    from fnas_hls.styles import STYLE_CHOICES

    if value not in STYLE_CHOICES:
        raise FnasError(f"{src}: field 'style' is {value!r}; accepted: {', '.join(STYLE_CHOICES)}")
    return str(value)


def _device(value: object, src: str) -> str:
    from fnas_hls.search.trainer import DEVICES

    if value not in DEVICES:
        raise FnasError(f"{src}: field 'device' is {value!r}; accepted: {', '.join(DEVICES)}")
    return str(value)


def update_config(out: Path, cfg: RunConfig) -> None:
    """Rewrite config.yaml (a resume that extends the episodes)."""
    doc = yaml.safe_load((out / CONFIG).read_text(encoding="utf-8"))
    doc.update(cfg.to_dict(str(doc.get("space", SPACE))))
    write_text_atomic(out / CONFIG, yaml.safe_dump(doc, sort_keys=False), CONFIG)


def read_jsonl(path: Path, what: str = "log") -> list[dict[str, Any]]:
    """Every complete line of the JSON-lines file ``path`` (a torn last line, from a kill mid-write,
    is dropped); none where there is no such file."""
    if not path.is_file():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise FnasError(f"{path}:{i + 1}: not a JSON line; the {what} is damaged") from None
    return records


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """One line more in the JSON-lines file ``path``, flushed and synced."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_log(out: Path) -> list[dict[str, Any]]:
    """Every complete line of children.jsonl (a torn last line, from a kill mid-write, is dropped)."""
    return read_jsonl(out / LOG)


def rewrite_log(out: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r) + "\n" for r in records)
    write_text_atomic(out / LOG, text, LOG)


class LogWriter:
    """Appends one JSON line per child, flushed and synced, so a kill leaves a valid log."""

    def __init__(self, out: Path) -> None:
        self.handle = (out / LOG).open("a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


def read_trained(out: Path) -> dict[str, dict[str, Any]]:
    """Each trained child's outcome from trained.jsonl (a torn last line is dropped)."""
    out_map: dict[str, dict[str, Any]] = {}
    for entry in read_jsonl(out / TRAINED, "journal"):
        out_map[entry.pop("key")] = entry
    return out_map


class TrainedWriter:
    """Appends each trained child's outcome as it finishes, flushed and synced."""

    def __init__(self, out: Path) -> None:
        self.handle = (out / TRAINED).open("a", encoding="utf-8")

    def append(self, key: str, outcome: dict[str, Any]) -> None:
        self.handle.write(json.dumps({"key": key, **outcome}) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


def save_torch_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(out: Path) -> dict[str, Any] | None:
    path = out / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=False)
    except Exception as exc:
        raise FnasError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc})") from None
