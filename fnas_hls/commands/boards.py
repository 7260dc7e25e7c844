"""``fnas-hls boards``: list the boards fnas-hls knows, or check board YAML files."""

from __future__ import annotations

import argparse
import json
import sys

from fnas_hls.boards import Board, board_table, known_boards, load_board
from fnas_hls.io_utils import write_text_atomic


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "boards",
        help="list the FPGA boards and their resources",
        description="Print the known boards (boards/*.yaml): part, clock, resources, DDR bandwidth, "
        "AXI width and aliases. Give board names, aliases or YAML files to show (and check) only those.",
    )
    parser.add_argument(
        "boards",
        nargs="*",
        metavar="BOARD",
        help="a board name, alias or path to a board .yaml file (default: every known board)",
    )
    parser.add_argument(
        "--json",
        metavar="OUT",
        help="also write the boards as a JSON list to OUT ('-': print the JSON instead of the table)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the table of boards; write them as JSON when ``--json`` is given."""
    boards = [load_board(name) for name in args.boards] if args.boards else known_boards()
    if args.json == "-":
        sys.stdout.write(_to_json(boards))
        return 0
    if args.json is not None:
        write_text_atomic(args.json, _to_json(boards))
    sys.stdout.write(board_table(boards))
    return 0


def _to_json(boards: list[Board]) -> str:
    return json.dumps([board.as_dict() for board in boards], indent=2) + "\n"
