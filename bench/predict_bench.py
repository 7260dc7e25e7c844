"""``make bench`` section ``predict``: the design's compiled C++ (``fnas-hls predict``) against the
reference model and torch, time per image.

The Fashion-MNIST winner's architecture (k3 f8 max, k5 f8 max, k7 f16 max, GAP, fc; 1x28x28) with
seeded weights, emitted for pynq in each style (fixed16): the project compiled by g++ into the
predict library (the compile timed apart), then the same images through the compiled top
(``Design.predict_stored``), the bit-exact reference model (numpy, ``run_reference``) and the float
model in torch (one thread, one batch), best of three runs each. The outputs of the
first two must be equal; the section says so.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fnas_hls.backend.design import Design
from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.backend.reference import run_reference
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.torch_model import TorchNetwork

ARCH = {
    "name": "fashion_winner",
    "input": [1, 28, 28],
    "layers": [
        {"type": "conv", "out": 8, "kernel": 3, "padding": 1, "relu": True},
        {"type": "maxpool", "kernel": 2, "stride": 2},
        {"type": "conv", "out": 8, "kernel": 5, "padding": 2, "relu": True},
        {"type": "maxpool", "kernel": 2, "stride": 2},
        {"type": "conv", "out": 16, "kernel": 7, "padding": 3, "relu": True},
        {"type": "maxpool", "kernel": 2, "stride": 2},
        {"type": "gap"},
        {"type": "fc", "out": 10},
    ],
}


def _best(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _row(style: str, net, x: np.ndarray, model: TorchNetwork, folder: Path) -> dict:  # noqa: ANN001
    e = emit_project(net, "pynq", folder / style, "fixed16", calibration=x[:64], style=style)
    design = Design(e.project_dir)
    t0 = time.perf_counter()
    design.compile()
    compile_s = time.perf_counter() - t0
    xq = e.plan.input_type.quantize(x)
    stream = e.analysis.style == "dataflow"

    def reference() -> np.ndarray:
        return run_reference(net, e.plan, e.tilings, xq, stream_order=stream)

    xt = torch.from_numpy(x)
    with torch.no_grad():
        times = {
            "compiled": _best(lambda: design.predict_stored(xq)),
            "reference": _best(reference),
            "torch": _best(lambda: model(xt)),
        }
    return {
        "style": style,
        "images": len(x),
        "compile_s": compile_s,
        "equal": bool(np.array_equal(design.predict_stored(xq), reference())),
        **{f"{k}_us_per_image": 1e6 * v / len(x) for k, v in times.items()},
    }


def bench_predict(mode: str) -> dict:
    n = 100 if mode == "quick" else 1000
    net = with_random_weights(network_from_dict(ARCH), seed=0)
    x = np.random.default_rng(0).random((n, 1, 28, 28)).astype(np.float32)
    torch.set_num_threads(1)
    model = TorchNetwork(net).eval()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_row(style, net, x, model, Path(tmp)) for style in ("dataflow", "sequential", "shared")]
    return {"network": ARCH["name"], "board": "pynq", "precision": "fixed16", "rows": rows}


def predict_table(d: dict) -> str:
    lines = [
        f"The {d['network']} network on {d['board']} ({d['precision']}), time per image, best of three:",
        "",
        "| style | images | compiled C++ top (fnas-hls predict) | reference model (numpy) | torch float | "
        "compiled / reference | compiled / torch | g++ compile | outputs equal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in d["rows"]:
        c, ref, t = r["compiled_us_per_image"], r["reference_us_per_image"], r["torch_us_per_image"]
        lines.append(
            f"| {r['style']} | {r['images']} | {c:.0f} us | {ref:.0f} us | {t:.0f} us | {c / ref:.2f}x | "
            f"{c / t:.2f}x | {r['compile_s']:.1f} s | {'yes' if r['equal'] else 'NO'} |"
        )
    return "\n".join(lines)
