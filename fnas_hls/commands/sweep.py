"""``fnas-hls sweep --space S --board B``: predict every architecture of a search space."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from fnas_hls.boards import load_board
from fnas_hls.commands.analyze import add_style_option, add_target_options
from fnas_hls.errors import FnasError
from fnas_hls.io_utils import write_json_atomic
from fnas_hls.search.space import load_space, resolve_space
from fnas_hls.search.sweep import SweepResult, format_sweep, sweep
from fnas_hls.tabular.latency import LatencyTable
from fnas_hls.tabular.spaces import is_tabular, load_table_space


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="predict latency of every architecture in a search space",
        description="Run the DSE and the performance model on every architecture of a search space and "
        "report the latency distribution and the fraction that meets the spec.",
    )
    p.add_argument("--space", required=True, help="search space name (search/*.yaml) or YAML path")
    add_target_options(p, board_required=False)
    add_style_option(p)
    p.add_argument("--spec-ms", type=float, default=None, help="latency spec in ms (default: the space's)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--json", metavar="OUT", help="write the summary and every architecture's latency as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.spec_ms is not None and args.spec_ms <= 0:
        raise FnasError(f"--spec-ms must be positive, got {args.spec_ms:g}")
    if args.jobs is not None and args.jobs < 1:
        raise FnasError(f"--jobs must be at least 1, got {args.jobs}")
    path = resolve_space(args.space)
    if is_tabular(path):
        return _sweep_table(args, path)
    space = load_space(args.space)
    space = space.with_precision(args.precision or space.precision)  # a listed precision: its first
    board = load_board(args.board or space.board)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\rsweep: {done:,}/{total:,} architectures", end="", file=sys.stderr, flush=True)

    result = sweep(
        space,
        board,
        args.precision,
        args.clock_mhz,
        args.spec_ms,
        args.jobs,
        progress=progress,
        style=args.style,
    )
    if tty:
        print(file=sys.stderr)
    if args.json:
        data = result.summary()
        data["architectures_detail"] = [
            {
                "choice": space.describe(choice),
                "latency_ms": float(ms) if c >= 0 else None,
                "fits": bool(f),
                "style": str(s) or None,
            }
            for choice, c, ms, f, s in zip(
                space.architectures(),
                result.cycles,
                result.latency_ms,
                result.fits,
                result.styles,
                strict=True,
            )
        ]
        write_json_atomic(args.json, data)
    print(format_sweep(result))
    return 0


def _sweep_table(args: argparse.Namespace, path: Path) -> int:
    """Every row of a public table's space, kept in the latency cache (a second sweep reads it)."""
    if args.clock_mhz is not None:
        raise FnasError("--clock-mhz: a table's sweep runs at the board's clock; drop it")
    sc = load_table_space(path)
    board = load_board(args.board or sc.board)
    precision = args.precision or sc.precision
    spec = args.spec_ms if args.spec_ms is not None else sc.spec_ms  # both checked positive
    space = sc.space
    table = LatencyTable(space, board, precision, args.style)
    t0 = time.perf_counter()
    table.load()
    table.fill(jobs=args.jobs or os.cpu_count() or 1, progress=sys.stderr.isatty())
    table.save()
    rows = range(space.rows)
    preds = [table(r) for r in rows]
    clock = float(board.clock_mhz)
    result = SweepResult(
        space=space.name,
        board=board.name,
        precision=precision,
        clock_mhz=clock,
        spec_ms=spec,
        cycles=np.array([-1 if p.latency_ms is None else round(p.latency_ms * clock * 1e3) for p in preds]),
        fits=np.array([p.fits for p in preds]),
        seconds=time.perf_counter() - t0,
        exact=True,
        style=args.style,
        styles=np.array([p.style or "" for p in preds]),
    )
    if args.json:
        data = result.summary()
        data["table"] = space.table
        data["architectures_detail"] = [
            {
                "choice": space.name_of(r),
                "row": r,
                "latency_ms": p.latency_ms,
                "fits": p.fits,
                "style": p.style,
            }
            for r, p in zip(rows, preds, strict=True)
        ]
        write_json_atomic(args.json, data)
    print(format_sweep(result))
    return 0
