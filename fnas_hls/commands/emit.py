"""``fnas-hls emit MODEL --board B -o DIR``: the HLS project of a network with weights."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fnas_hls.boards import load_board
from fnas_hls.commands.analyze import add_style_option, add_target_options, add_tiling_option
from fnas_hls.errors import FnasError
from fnas_hls.model.tiling import parse_tiling_specs
from fnas_hls.network.model_io import load_model
from fnas_hls.progress import StepProgress

#: What each step of an emit counts, in its progress line.
PROGRESS_UNITS = {
    "calibration": "inputs",
    "reference model": "inputs",
    "float model": "inputs",
    "rendering": "files",
    "writing": "files",
}

#: What makes a model with an unsupported operator emittable (emit has no host operators).
EMIT_ADVICE = (
    "emit puts every layer on the FPGA, so it takes only the supported operators: export the model "
    "with one of them in this one's place"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "emit",
        help="write the Vivado/Vitis HLS project of a CNN with weights (kernels, top, testbench, scripts)",
        description="Quantize the network, choose each layer's tiling for the board (as `analyze` does) "
        "and write an HLS project: one C++ function per layer, a top function with m_axi ports, a "
        "testbench with the reference model's golden outputs, TCL scripts, manifest.json and README.md.",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help=".onnx file with initializers (or an architecture .yaml whose layers carry no weights: refused)",
    )
    add_target_options(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="project folder to write")
    add_tiling_option(p)
    add_style_option(p)
    p.add_argument(
        "--calibration",
        metavar="FILE.npy",
        help="float inputs (n, C, H, W) that choose the fixed-point formats and feed the testbench "
        "(default: random inputs)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an output folder that holds files fnas-hls did not write (synthesis results, edited "
        "sources, other files); without it such a folder is left as it is",
    )
    p.set_defaults(handler=run)


def _load_npy(path: str) -> np.ndarray:
    p = Path(path)
    try:
        return np.load(p, allow_pickle=False)
    except FileNotFoundError:
        raise FnasError(f"--calibration {p}: no such file") from None
    except (OSError, ValueError) as exc:
        raise FnasError(f"--calibration {p}: not a numpy .npy array ({exc})") from None


def run(args: argparse.Namespace) -> int:
    from fnas_hls.backend.hls_writer import emit_project  # imports torch; only when emitting

    pins = parse_tiling_specs(args.tiling)
    board = load_board(args.board)
    if args.clock_mhz is not None and args.clock_mhz <= 0:
        raise FnasError(f"--clock-mhz must be positive, got {args.clock_mhz:g}")
    calibration = _load_npy(args.calibration) if args.calibration else None
    model = load_model(args.model, advice=EMIT_ADVICE, need_weights=True)
    progress = StepProgress("emit", units=PROGRESS_UNITS)
    try:
        result = emit_project(
            model.network,
            board,
            Path(args.output),
            precision=args.precision or "fixed16",
            calibration=calibration,
            pins=pins,
            clock_mhz=args.clock_mhz,
            force=args.force,
            style=args.style,
            progress=progress,
        )
    finally:
        progress.close()
    for note in (*model.notes, *result.notes):
        print(f"note: {note}")
    if result.replaced:
        print(f"replaced in {result.project_dir}: {result.replaced.summary()}")
    a, ag = result.analysis, result.agreement
    print(
        f"wrote {result.project_dir} (top {result.top}, {len(result.files)} files): {model.network.name} on "
        f"{a.board.name}, {a.style} style, {result.plan.precision}, predicted {a.latency_cycles:,} cycles = "
        f"{a.latency_ms:.4f} ms; "
        f"reference vs float on {ag.samples} inputs: max abs error {ag.max_abs_error:.4g}, top-1 agreement "
        f"{100 * ag.top1_agreement:.1f}% ({result.seconds:.2f} s)"
    )
    return 0
