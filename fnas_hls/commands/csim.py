"""``fnas-hls csim DIR``: compile a generated project with g++ and run its testbench."""

from __future__ import annotations

import argparse

from fnas_hls.io_utils import write_json_atomic


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "csim",
        help="C-simulate a generated HLS project with g++ (bit-exact check against the reference model)",
        description="Compile the project's kernels and testbench with the machine's g++ (no Xilinx tools) "
        "and run it: the outputs must equal the Python reference model's bit for bit.",
    )
    p.add_argument("project", metavar="DIR", help="folder written by `fnas-hls emit`")
    p.add_argument("--json", metavar="OUT", help="write the result as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from fnas_hls.backend.csim import run_csim

    result = run_csim(args.project)
    if args.json:
        write_json_atomic(args.json, result.to_json())
    print(result.summary())
    return 0 if result.bit_exact else 1
