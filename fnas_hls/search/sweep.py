"""Analyze every architecture of a search space: the latency distribution and what meets the spec."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from fnas_hls.boards import Board, load_board
from fnas_hls.errors import FnasError
from fnas_hls.network.ir import Network
from fnas_hls.precision import Precision, get_precision
from fnas_hls.search.space import SearchSpace, load_space
from fnas_hls.styles import STYLES, analyze


def predict(
    net: Network,
    board: Board,
    prec: Precision,
    clock_mhz: float | None = None,
    exact: bool = True,
    style: str = "sequential",
) -> tuple[int, bool, str]:
    """Cycles, whether the design fits, and its style, for one network in ``style`` (``auto``: the
    fastest that fits)."""
    if style in STYLES:
        return STYLES[style].predict(net, board, prec, clock_mhz, exact)
    a = analyze(net, board, prec, clock_mhz, style=style)
    return a.latency_cycles, a.fits, a.style


@dataclass(frozen=True)
class SweepResult:
    space: str
    board: str
    precision: str
    clock_mhz: float
    spec_ms: float | None
    cycles: np.ndarray  # per architecture, in space order (-1: not a valid network)
    fits: np.ndarray
    seconds: float
    exact: bool
    style: str = "sequential"  # what was asked
    styles: np.ndarray | None = None  # per architecture, the style of its design

    @property
    def valid(self) -> np.ndarray:
        return self.cycles >= 0

    @property
    def latency_ms(self) -> np.ndarray:
        return self.cycles / (self.clock_mhz * 1e3)

    @property
    def meets_spec(self) -> np.ndarray:
        ok = self.valid & self.fits
        if self.spec_ms is not None:
            ok &= self.latency_ms <= self.spec_ms
        return ok

    def summary(self) -> dict[str, Any]:
        lat = self.latency_ms[self.valid]
        pct = (
            {f"p{q}": float(np.percentile(lat, q)) for q in (0, 10, 25, 50, 75, 90, 100)} if len(lat) else {}
        )
        n = len(self.cycles)
        return {
            "space": self.space,
            "board": self.board,
            "precision": self.precision,
            "clock_mhz": self.clock_mhz,
            "spec_ms": self.spec_ms,
            "architectures": n,
            "valid": int(self.valid.sum()),
            "fit_board": int((self.valid & self.fits).sum()),
            "meet_spec": int(self.meets_spec.sum()),
            "fraction_meeting_spec": float(self.meets_spec.sum() / n),
            "latency_ms_percentiles": pct,
            "seconds": self.seconds,
            "architectures_per_second": n / self.seconds if self.seconds else None,
            "dse": "exact" if self.exact else "fast (Lagrange + local search where BRAM binds, no exact DP)",
            "style": self.style,
            "styles_chosen": (
                {s: int(np.sum(self.styles[self.valid] == s)) for s in np.unique(self.styles[self.valid])}
                if self.styles is not None
                else {}
            ),
        }


_WORKER: dict[str, Any] = {}


def _init_worker(
    space_src: str, board_src: str, precision: str, clock: float, exact: bool, style: str
) -> None:
    _WORKER.update(
        space=load_space(space_src).with_precision(precision),
        board=load_board(board_src),
        prec=get_precision(precision),
        clock=clock,
        exact=exact,
        style=style,
    )


def _run_chunk(chunk: list[tuple[int, ...]]) -> list[tuple[int, bool, str]]:
    w = _WORKER
    out = []
    for choice in chunk:
        try:
            net = w["space"].build(choice)
        except FnasError:
            out.append((-1, False, ""))
            continue
        out.append(predict(net, w["board"], w["prec"], w["clock"], w["exact"], w["style"]))
    return out


def sweep(
    space: SearchSpace,
    board: Board,
    precision: str | None = None,
    clock_mhz: float | None = None,
    spec_ms: float | None = None,
    jobs: int | None = None,
    exact: bool = True,
    progress: Callable[[int, int], None] | None = None,
    style: str = "sequential",
) -> SweepResult:
    """Predict every architecture of ``space`` on ``board`` (in ``jobs`` processes), in ``precision``
    (default: the space's first, where it lists several)."""
    prec_name = precision or space.precision
    space = space.with_precision(prec_name)
    clock = float(clock_mhz or board.clock_mhz)
    archs = list(space.architectures())
    jobs = max(1, jobs or os.cpu_count() or 1)
    chunk = max(1, min(256, len(archs) // (jobs * 8) or 1))
    chunks = [archs[i : i + chunk] for i in range(0, len(archs), chunk)]
    start = time.perf_counter()
    results: list[tuple[int, bool, str]] = []
    init = (space.source, str(board.source), prec_name, clock, exact, style)
    if jobs == 1 or len(archs) < 64:
        _init_worker(*init)
        mapped = map(_run_chunk, chunks)
        executor = None
    else:
        executor = ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=init)
        mapped = executor.map(_run_chunk, chunks)
    try:
        for part in mapped:
            results.extend(part)
            if progress:
                progress(len(results), len(archs))
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    seconds = time.perf_counter() - start
    return SweepResult(
        space=space.name,
        board=board.name,
        precision=prec_name,
        clock_mhz=clock,
        spec_ms=spec_ms if spec_ms is not None else space.spec_ms,
        cycles=np.array([c for c, _, _ in results], dtype=np.int64),
        fits=np.array([f for _, f, _ in results], dtype=bool),
        seconds=seconds,
        exact=exact,
        style=style,
        styles=np.array([s for _, _, s in results]),
    )


def format_sweep(r: SweepResult, bins: int = 12) -> str:
    """Summary lines and a text histogram of the latency distribution with the spec marked."""
    s = r.summary()
    lines = [
        f"{r.space}: {s['architectures']:,} architectures on {r.board} ({r.precision}, {r.clock_mhz:g} MHz) "
        f"in {r.seconds:.1f} s ({s['architectures_per_second']:,.0f}/s, DSE {s['dse']})",
    ]
    lat = r.latency_ms[r.valid]
    if len(lat):
        p = s["latency_ms_percentiles"]
        lines.append(
            "latency ms: min {p0:.3f}  p10 {p10:.3f}  p25 {p25:.3f}  median {p50:.3f}  "
            "p75 {p75:.3f}  p90 {p90:.3f}  max {p100:.3f}".format(**p)
        )
        edges = np.linspace(lat.min(), lat.max(), bins + 1)
        counts, _ = np.histogram(lat, edges)
        width = 40 / max(counts.max(), 1)
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True):
            mark = " <- spec" if r.spec_ms is not None and lo <= r.spec_ms < hi else ""
            lines.append(f"  {lo:9.3f} - {hi:9.3f} ms {c:6d} {'#' * int(round(c * width))}{mark}")
    invalid = s["architectures"] - s["valid"]
    if invalid:
        lines.append(f"{invalid} architectures are not valid networks (e.g. pooled below 1x1)")
    lines.append(f"fit the board: {s['fit_board']:,}")
    if r.style == "auto" and s["styles_chosen"]:
        lines.append(
            "style chosen: " + ", ".join(f"{k} {v:,}" for k, v in sorted(s["styles_chosen"].items()))
        )
    if r.spec_ms is not None:
        lines.append(
            f"meet the {r.spec_ms:g} ms spec and fit: {s['meet_spec']:,} "
            f"({100 * s['fraction_meeting_spec']:.1f}%)"
        )
    return "\n".join(lines)
