"""``fnas-hls predict DIR images.npy -o outputs.npy``: the generated design's outputs on any inputs."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from fnas_hls.errors import FnasError
from fnas_hls.io_utils import write_bytes_atomic


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="run a generated HLS project's C++ on your inputs (compiled with g++ as a library)",
        description="Compile the project's kernels with the machine's g++ into a shared library and run them "
        "on the images of an .npy file: float (n, C, H, W), quantized to the design's input format as the "
        "testbench's vectors are. Writes the design's outputs, dequantized (n, outputs), in CHW order.",
    )
    p.add_argument("project", metavar="DIR", help="folder written by `fnas-hls emit`")
    p.add_argument("images", metavar="IMAGES.npy", help="float images (n, C, H, W) or one (C, H, W)")
    p.add_argument("-o", "--out", metavar="OUT.npy", required=True, help="where the outputs go")
    p.add_argument(
        "--stored",
        action="store_true",
        help="the images are the design's stored words already, and the outputs stay stored words",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from fnas_hls.backend.design import Design

    design = Design(args.project)
    x = _load(Path(args.images))
    y = design.predict_stored(x) if args.stored else design.predict(x)
    buf = io.BytesIO()
    np.save(buf, y)
    write_bytes_atomic(args.out, buf.getvalue(), "-o")
    classes = np.bincount(np.argmax(y, axis=1), minlength=y.shape[1]) if y.size else []
    print(
        f"{len(y)} inputs through {design.top} ({design.manifest['style']}, {design.manifest['precision']}): "
        f"outputs {list(y.shape)} -> {args.out}; top-1 counts per output {list(map(int, classes))}",
        file=sys.stdout,
    )
    return 0


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FnasError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FnasError(f"{path}: not a numpy .npy file ({str(exc).splitlines()[0]})") from None
