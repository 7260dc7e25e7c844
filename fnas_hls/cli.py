"""The ``fnas-hls`` command line: one sub-command per module in ``fnas_hls.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fnas_hls import __version__
from fnas_hls.errors import FnasError

#: Sub-command modules, in the order ``fnas-hls --help`` lists them.
COMMANDS = ("analyze", "sweep", "boards", "report", "compare", "emit", "csim", "predict", "deploy", "search")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fnas-hls",
        description="FPGA-aware neural architecture search with an analytic HLS latency model.",
    )
    parser.add_argument("--version", action="version", version=f"fnas-hls {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"fnas_hls.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except FnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
