"""``fnas-hls compare PROJECT``: predicted cycles and resources against the synthesis report."""

from __future__ import annotations

import argparse
from pathlib import Path

from fnas_hls.errors import FnasError
from fnas_hls.io_utils import write_json_atomic
from fnas_hls.reports.compare import DEFAULT_TOLERANCE, compare, format_comparison

#: Exit status when a figure is beyond the tolerance (2 is kept for errors in the input).
EXIT_OVER_TOLERANCE = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare an emitted project's predicted latency with its HLS synthesis report",
        description="Match the manifest's predicted cycles per function and loop label, and its DSP/BRAM, "
        "to the csynth report (found in the project, or --report). Exits 1 when any error exceeds "
        "the tolerance, so it can gate CI.",
    )
    p.add_argument("project", metavar="PROJECT_DIR", help="folder written by `fnas-hls emit`")
    p.add_argument(
        "--report", metavar="PATH", help="csynth.xml/.rpt or solution folder (default: found in the project)"
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        metavar="PCT",
        help=f"largest |error| in percent that passes (default {DEFAULT_TOLERANCE:g})",
    )
    p.add_argument("--json", metavar="OUT", help="write the comparison as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.tolerance < 0:
        raise FnasError(f"--tolerance must be >= 0, got {args.tolerance:g}")
    result = compare(Path(args.project), Path(args.report) if args.report else None, args.tolerance)
    if args.json:
        write_json_atomic(args.json, result.to_json())
    print(format_comparison(result))
    return 0 if result.ok else EXIT_OVER_TOLERANCE
