"""``fnas-hls analyze MODEL --board B``: tilings, latency and resources of one network."""

from __future__ import annotations

import argparse
import time

from fnas_hls.analysis import format_table
from fnas_hls.boards import load_board
from fnas_hls.io_utils import write_json_atomic
from fnas_hls.model.tiling import parse_tiling_specs
from fnas_hls.network.model_io import load_model
from fnas_hls.precision import PRECISIONS
from fnas_hls.styles import STYLE_CHOICES, analyze


def add_target_options(parser: argparse.ArgumentParser, board_required: bool = True) -> None:
    """``--board``, ``--precision`` and ``--clock-mhz``, shared by the commands that target a board."""
    parser.add_argument(
        "--board", required=board_required, help="board name, alias or board .yaml (see `fnas-hls boards`)"
    )
    parser.add_argument(
        "--precision",
        choices=sorted(PRECISIONS),
        default=None,
        help="arithmetic: fixed16 (default, 1 DSP per MAC) or float32 (5 DSPs per MAC)",
    )
    parser.add_argument("--clock-mhz", type=float, default=None, help="clock (default: the board's)")


def add_tiling_option(parser: argparse.ArgumentParser) -> None:
    """``--tiling LAYER:Tm=..`` (repeatable), shared by the commands that run the DSE."""
    parser.add_argument(
        "--tiling",
        action="append",
        default=[],
        metavar="LAYER:Tm=..,Tn=..,Tr=..,Tc=..",
        help="pin a layer's tiling ('all:' for every layer; 'full' = whole dimension); repeatable",
    )


def add_style_option(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--style sequential|dataflow|auto``, shared by the commands that build an accelerator."""
    parser.add_argument(
        "--style",
        choices=STYLE_CHOICES,
        default=default,
        help="accelerator style: sequential (one tiled element per layer, layers in turn), dataflow "
        "(every layer a process of one DATAFLOW region, all at once, streams between them), shared (one "
        "tiled engine sized for the board, every layer on it in turn) or auto "
        f"(the fastest that fits; default: {default})",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="predict latency and resources of a CNN on a board (DSE picks each layer's tiling)",
        description="Build the network as an accelerator for the board (--style; auto: the fastest style "
        "that fits), choose each conv/fc layer's tiling (sequential) or parallelism (dataflow) and predict "
        "cycles per layer, function and loop as Vivado/Vitis HLS will report them.",
    )
    p.add_argument("model", metavar="MODEL", help="architecture .yaml or .onnx file")
    add_target_options(p)
    add_tiling_option(p)
    add_style_option(p)
    p.add_argument(
        "--allow-host-ops",
        action="store_true",
        help="run ONNX operators the FPGA back end lacks on the host instead of failing",
    )
    p.add_argument("--json", metavar="OUT", help="write the analysis as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    pins = parse_tiling_specs(args.tiling)
    board = load_board(args.board)
    if args.clock_mhz is not None and args.clock_mhz <= 0:
        from fnas_hls.errors import FnasError

        raise FnasError(f"--clock-mhz must be positive, got {args.clock_mhz:g}")
    model = load_model(
        args.model, allow_host_ops=args.allow_host_ops, advice="pass --allow-host-ops to run it on the host"
    )
    start = time.perf_counter()
    result = analyze(model.network, board, args.precision or "fixed16", args.clock_mhz, pins, args.style)
    seconds = time.perf_counter() - start
    if args.json:
        data = result.to_json()
        data["model"] = str(args.model)
        data["import_notes"] = list(model.notes)
        data["analysis_seconds"] = seconds
        write_json_atomic(args.json, data)
    for note in model.notes:
        print(f"note: {note}")
    print(format_table(result))
    return 0
