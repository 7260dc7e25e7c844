"""The winner's folder ``best/``: architecture, weights, a verified ONNX file and the HLS project.

``finalize_best`` takes the best child's log line and, in order:

1. rebuilds its torch model from the architecture and the saved weights (its final training's, where
   the search retrained its best children: ``search.final``); writes ``arch.yaml`` and
   ``weights.pt``; measures the float test accuracy;
2. exports ``model.onnx`` (TorchScript exporter), checks it with ``onnx.checker`` and runs it with
   ``onnx.reference.ReferenceEvaluator`` against torch on real validation inputs;
3. reads the ONNX file back through ``fnas_hls.network.onnx_frontend.load_onnx`` (the IR with weights) and
   checks it is the same network;
4. emits the HLS project into ``best/hls/`` (``fnas_hls.backend.hls_writer.emit_project``, calibrated on
   training images), C-simulates it (``fnas_hls.backend.csim.run_csim``) and measures the quantized
   accuracy of the bit-exact reference model on the test split; where the board runs PYNQ, writes
   ``best/deploy/`` (``fnas-hls deploy``: the block design script and the driver);
5. writes ``summary.json`` with every number above.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx.reference import ReferenceEvaluator

from fnas_hls.io_utils import write_json_atomic, write_text_atomic
from fnas_hls.network.arch import network_from_dict, network_to_yaml
from fnas_hls.network.onnx_frontend import load_onnx
from fnas_hls.network.torch_model import TorchNetwork, export_onnx
from fnas_hls.search.datasets import Dataset, calibration_images
from fnas_hls.search.rundir import FINAL_DIR, RunConfig
from fnas_hls.search.trainer import accuracy
from fnas_hls.styles import get_style

ONNX_CHECK_SAMPLES = 64
QUANT_TEST_SAMPLES = 2000
CSIM_VECTORS = 16


@dataclass
class BestResult:
    """What ``finalize_best`` checked, for the report."""

    key: str
    folder: Path
    val_accuracy: float
    test_accuracy: float
    latency_ms: float
    onnx: dict[str, Any] = field(default_factory=dict)
    hls: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    proxy_accuracy: float | None = None  # its validation accuracy in the search (the proxy training)
    final: dict[str, Any] = field(default_factory=dict)  # its final training's line, where it had one

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "val_accuracy": self.val_accuracy,
            "proxy_accuracy": self.proxy_accuracy,
            "final_training": self.final or None,
            "test_accuracy": self.test_accuracy,
            "latency_ms": self.latency_ms,
            "onnx": self.onnx,
            "hls": self.hls,
            "seconds": self.seconds,
        }


def finalize_best(
    out: Path,
    cfg: RunConfig,
    record: dict[str, Any],
    data: Dataset,
    hls: bool = True,
    final: dict[str, Any] | None = None,
) -> BestResult:
    """Write ``out/best/`` for the child of ``record`` (see the module docstring): with the weights of
    its search training, or of its final training where ``final`` (its ``final.jsonl`` line) is
    given."""
    start = time.perf_counter()
    best = out / "best"
    if best.exists():
        shutil.rmtree(best)
    best.mkdir()
    net = network_from_dict(record["arch"], f"{out}/children.jsonl episode {record['episode']}")
    model = TorchNetwork(net)
    weights = out / (FINAL_DIR if final else "children") / f"{record['key']}.pt"
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    write_text_atomic(best / "arch.yaml", network_to_yaml(net), "arch.yaml")
    shutil.copyfile(weights, best / "weights.pt")
    result = BestResult(
        key=record["key"],
        folder=best,
        val_accuracy=float(final["val_accuracy"] if final else record["accuracy"]),
        test_accuracy=accuracy(model, data.test),
        latency_ms=float(record["latency_ms"]),
        proxy_accuracy=float(record["accuracy"]),
        final=dict(final or {}),
    )
    result.onnx = check_onnx(model, best / "model.onnx", data.val.x[:ONNX_CHECK_SAMPLES])
    imported = load_onnx(best / "model.onnx").network
    result.onnx["reimport_same_network"] = imported == net
    if hls:
        # the style the search predicted the winner in (auto chose it per child)
        style = record.get("style") or (cfg.style if cfg.style != "auto" else "sequential")
        qat = bool(final and final.get("qat"))
        precision = record.get("precision") or cfg.precision  # the child's, where the search chose it
        result.hls = emit_and_csim(
            imported, cfg, best / "hls", data, style, check_qat=qat, precision=precision
        )
    else:
        result.hls = {"status": "skipped"}
    result.seconds = time.perf_counter() - start
    write_json_atomic(best / "summary.json", result.to_json(), "summary.json")
    return result


def check_onnx(model: TorchNetwork, path: Path, x: np.ndarray) -> dict[str, Any]:
    """Export ``model`` to ``path``, run the checker, and compare the reference evaluator to torch."""
    export_onnx(model, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    x = np.ascontiguousarray(x, dtype=np.float32)
    ours = ReferenceEvaluator(proto).run(None, {"input": x})[0]
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    diff = float(np.max(np.abs(ours - theirs))) if len(x) else 0.0
    scale = float(np.max(np.abs(theirs))) if len(x) else 1.0
    agree = float(np.mean(ours.argmax(1) == theirs.argmax(1))) if len(x) else 1.0
    return {
        "checker": "passed",
        "samples": int(len(x)),
        "max_abs_diff": diff,
        "top1_agreement": agree,
        "matches_torch": bool(diff <= 1e-4 * max(scale, 1.0) and agree == 1.0),
    }


def deploy_best(project: Path, cfg: RunConfig) -> dict[str, Any]:
    """The winner's block design script and PYNQ driver in ``best/deploy/`` (``fnas-hls deploy``),
    where the board has a processing system with a PYNQ image."""
    from fnas_hls.deploy.package import deploy_project

    ps = cfg.board.ps
    if ps is None or not ps.pynq:
        return {"status": f"skipped: board {cfg.board.name} has no PYNQ image"}
    res = deploy_project(project, cfg.board, project.parent / "deploy", force=True)
    return {"status": "written", "folder": str(res.folder), "files": list(res.files)}


def emit_and_csim(
    net: Any,
    cfg: RunConfig,
    project: Path,
    data: Dataset,
    style: str = "auto",
    check_qat: bool = False,
    precision: str | None = None,
) -> dict[str, Any]:
    """The HLS project of ``net`` (with weights) in ``style``, its C simulation and the quantized
    test accuracy; ``check_qat``: and whether the quantization-aware training's model
    (``backend.fake_quant``) gives the reference model's outputs on those test images, bit for bit."""
    try:
        from fnas_hls.backend.csim import run_csim
        from fnas_hls.backend.fake_quant import FakeQuantNetwork
        from fnas_hls.backend.hls_writer import emit_project
        from fnas_hls.backend.reference import run_reference
    except ImportError as exc:  # the HLS back end is not in this checkout
        return {"status": f"not available ({exc})"}
    calib = calibration_images(data)
    tests = data.test.x[:CSIM_VECTORS]
    emitted = emit_project(
        net,
        cfg.board,
        project,
        precision or cfg.precision,
        calibration=calib,
        force=True,
        test_inputs=tests,
        style=style,
    )
    sim = run_csim(project)
    plan = emitted.plan
    x, y = data.test.x[:QUANT_TEST_SAMPLES], data.test.y[:QUANT_TEST_SAMPLES]
    stream = get_style(emitted.analysis.style).stream_order
    outputs = run_reference(net, plan, emitted.tilings, plan.input_type.quantize(x), stream_order=stream)
    quant_acc = float(np.mean(np.asarray(outputs).reshape(len(x), -1).argmax(1) == y))
    extra = {}
    if check_qat:
        with torch.no_grad():
            qat = FakeQuantNetwork(TorchNetwork(net), plan)(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        units = qat * 2.0**plan.output_type.frac
        extra["qat_matches_reference"] = bool(np.array_equal(units, np.asarray(outputs).reshape(units.shape)))
    extra["deploy"] = deploy_best(project, cfg)
    return {
        "precision": plan.precision,
        **extra,
        "status": "emitted",
        "project": str(project),
        "top": emitted.top,
        "files": len(emitted.files),
        "reference_vs_float": emitted.agreement.to_json(),
        "quantized_test_accuracy": quant_acc,
        "quantized_test_samples": int(len(x)),
        "csim": {k: (str(v) if isinstance(v, Path) else v) for k, v in sim.to_json().items()},
        "notes": list(emitted.notes),
    }
