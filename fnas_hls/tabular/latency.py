"""fnas-hls's own prediction for the rows of a table: each row's network analyzed once, kept.

A search over a table asks for a few hundred rows and computes them as it goes; the bench's specs
(quantiles of every row's latency) and regrets (the best row that meets a spec) need them all,
which takes minutes to an hour on two cores, so ``fill`` runs them in worker processes with a
progress line and ``save``/``load`` keep them in a cache file. A cache file is named by what
decides the figures (the table, board, precision, style) and by a fingerprint of the model's
sources and the board's YAML, so a change to the model never reads stale figures.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from fnas_hls.boards import Board
from fnas_hls.errors import FnasError
from fnas_hls.network.ir import Network
from fnas_hls.styles import analyze
from fnas_hls.tabular.spaces import TableSpace

_PKG = Path(__file__).resolve().parent.parent
# The sources whose change can change a prediction.
_MODEL_SOURCES = (
    "analysis.py",
    "styles",
    "precision.py",
    "resources.py",
    "boards.py",
    "model",
    "dse",
    "network",
)


@dataclass(frozen=True)
class Predicted:
    """One row's predicted design: latency (ms) of the style chosen, whether it fits, its resources."""

    latency_ms: float | None
    fits: bool
    dsp: int | None
    bram18k: int | None
    style: str | None
    error: str | None = None

    def meets(self, spec_ms: float) -> bool:
        return self.fits and self.latency_ms is not None and self.latency_ms <= spec_ms


def predict_network(net, board: Board, precision: str, style: str) -> Predicted:
    try:
        a = analyze(net, board, precision, style=style)
    except FnasError as exc:
        return Predicted(None, False, None, None, None, str(exc))
    return Predicted(a.latency_ms, a.fits, a.resources.dsp, a.resources.bram18k, a.style)


def structure_key(net: Network) -> tuple:
    """A network up to its layers' names: each layer's fields but its name, and its inputs by position."""
    position: dict[str, int] = {}
    key = []
    for i, layer in enumerate(net.layers):
        position[layer.name] = i
        inputs = tuple(position.get(n, -1) for n in layer.inputs)
        key.append((repr(replace(layer, name="", inputs=())), inputs))
    return tuple(key)


def model_fingerprint(board: Board) -> str:
    """A short hash of the model's sources and the board's YAML."""
    h = hashlib.sha256()
    for name in _MODEL_SOURCES:
        p = _PKG / name
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            h.update(str(f.relative_to(_PKG)).encode())
            h.update(f.read_bytes())
    h.update(repr(board).encode())  # every field of the board, its source file's path included
    if board.source.is_file():
        h.update(board.source.read_bytes())
    return h.hexdigest()[:12]


def default_cache_dir() -> Path:
    """``$FNAS_HLS_CACHE`` or ``~/.cache/fnas-hls``, then ``latency/``."""
    root = os.environ.get("FNAS_HLS_CACHE") or Path.home() / ".cache" / "fnas-hls"
    return Path(root) / "latency"


class LatencyTable:
    """Row -> ``Predicted`` for one table's networks on one board, precision and style."""

    def __init__(self, space: TableSpace, board: Board, precision: str, style: str) -> None:
        self.space = space
        self.table = space.cache_name
        self.rows = space.rows
        self.board = board
        self.precision = precision
        self.style = style
        self.known: dict[int, Predicted] = {}

    @functools.cached_property
    def fingerprint(self) -> str:
        """The model's hash, read once (it reads every model source)."""
        return model_fingerprint(self.board)

    def __call__(self, row: int) -> Predicted:
        p = self.known.get(row)
        if p is None:
            p = self.known[row] = predict_network(
                self.space.network(row), self.board, self.precision, self.style
            )
        return p

    @property
    def complete(self) -> bool:
        return len(self.known) == self.rows

    def cache_file(self, folder: Path | None = None) -> Path:
        name = f"{self.table}-{self.board.name}-{self.precision}-{self.style}-{self.fingerprint}"
        return (folder or default_cache_dir()) / f"{name}.jsonl.gz"

    def load(self, folder: Path | None = None) -> bool:
        """Read the cache file where there is one (True when it held every row)."""
        path = self.cache_file(folder)
        if not path.is_file():
            return False
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for line in f:
                    d = json.loads(line)
                    row = int(d.pop("row"))
                    self.known[row] = Predicted(**d)
        except (OSError, ValueError, TypeError, EOFError) as exc:
            raise FnasError(
                f"{path}: unreadable latency cache ({exc}); delete it to compute it again"
            ) from None
        return self.complete

    def save(self, folder: Path | None = None) -> Path:
        """Write the cache file, keeping the rows another process wrote there meanwhile."""
        path = self.cache_file(folder)
        if path.is_file():
            other = LatencyTable(self.space, self.board, self.precision, self.style)
            other.fingerprint = self.fingerprint
            try:
                other.load(folder)
            except FnasError:
                pass  # an unreadable cache is replaced
            for row, p in other.known.items():
                self.known.setdefault(row, p)
        text = "".join(json.dumps({"row": r, **asdict(p)}) + "\n" for r, p in sorted(self.known.items()))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.part")
        tmp.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
        os.replace(tmp, path)  # a reader never sees half a file
        return path

    def fill(self, rows: Iterable[int] | None = None, jobs: int = 1, progress: bool = True) -> None:
        """Predict every row of ``rows`` (default: all) not known yet, in ``jobs`` processes; rows whose
        networks are the same layer for layer (NAS-Bench-201 builds 8,372 networks for its 15,625
        cells: an op that feeds nothing is left out) are analyzed once."""
        wanted = [r for r in (range(self.rows) if rows is None else rows) if r not in self.known]
        groups: dict[tuple, list[int]] = {}
        for r in wanted:
            groups.setdefault(structure_key(self.space.network(r)), []).append(r)
        todo = [g[0] for g in groups.values()]
        self._fill(todo, jobs, progress)
        for g in groups.values():
            for r in g[1:]:
                self.known[r] = self.known[g[0]]

    def _fill(self, todo: list[int], jobs: int, progress: bool) -> None:
        if not todo:
            return
        t0 = time.perf_counter()
        chunk = max(1, min(64, len(todo) // (jobs * 8) or 1))
        pieces = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
        done = 0

        def report() -> None:
            if progress:
                el = time.perf_counter() - t0
                eta = el / done * (len(todo) - done) if done else 0.0
                print(
                    f"\r  {self.table} on {self.board.name}: {done}/{len(todo)} rows analyzed, "
                    f"{el:.0f} s, {eta:.0f} s left",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )

        if jobs <= 1:
            for piece in pieces:
                for r in piece:
                    self(r)
                done += len(piece)
                report()
        else:
            with ProcessPoolExecutor(jobs) as pool:
                futures = [pool.submit(_predict_rows, self._spec(), piece) for piece in pieces]
                for fut, piece in zip(futures, pieces, strict=True):
                    for r, p in fut.result():
                        self.known[r] = p
                    done += len(piece)
                    report()
        if progress:
            print(file=sys.stderr)

    def _spec(self) -> tuple[TableSpace, str, str, str]:
        return (self.space, str(self.board.source), self.precision, self.style)


def _predict_rows(spec: tuple[TableSpace, str, str, str], rows: list[int]) -> list[tuple[int, Predicted]]:
    """A worker's share (the space travels pickled; its networks are built in the worker)."""
    from fnas_hls.boards import load_board

    space, board_file, precision, style = spec
    board = load_board(board_file)
    return [(r, predict_network(space.network(r), board, precision, style)) for r in rows]
