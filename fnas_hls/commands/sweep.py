"""``fnas-hls sweep --space S --board B``: predict every architecture of a search space."""

from __future__ import annotations

import argparse
import sys

from fnas_hls.boards import load_board
from fnas_hls.commands.analyze import add_style_option, add_target_options
from fnas_hls.errors import FnasError
from fnas_hls.io_utils import write_json_atomic
from fnas_hls.search.space import load_space
from fnas_hls.search.sweep import format_sweep, sweep


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
    space = load_space(args.space)
    board = load_board(args.board or space.board)
    if args.spec_ms is not None and args.spec_ms <= 0:
        raise FnasError(f"--spec-ms must be positive, got {args.spec_ms:g}")
    if args.jobs is not None and args.jobs < 1:
        raise FnasError(f"--jobs must be at least 1, got {args.jobs}")
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
