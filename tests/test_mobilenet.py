"""MobileNetV2 (width 0.35, 96x96, ReLU6) exported from torch: imported with no host operator,
emitted and C-simulated bit-exact in every style it fits on zcu104, in fixed16 and int8."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch_export import export_onnx, perturb_batch_norms

from bench.mobile_bench import _torch_mobilenet_v2
from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.network.benchmark_nets import mobilenet_v2_network
from fnas_hls.network.onnx_frontend import load_onnx

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def _export(path, dynamo: bool) -> None:
    torch.manual_seed(0)
    model = perturb_batch_norms(_torch_mobilenet_v2(0.35, 10).eval(), mean=0.1)  # batch norms to fold
    export_onnx(model, (1, 3, 96, 96), path, dynamo=dynamo)


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    path = tmp_path_factory.mktemp("mnv2") / "mnv2.onnx"
    _export(path, False)
    return load_onnx(path).network


def test_imports_as_the_builders_network(legacy):
    """35 ReLU6 clips on the FPGA (none on the host), and the layers of mobilenet_v2_network."""
    ops = [layer.op for layer in legacy.layers]
    assert "host" not in ops and ops.count("add") == 10
    assert sum(str(getattr(layer, "act", None)) == "clip(0, 6)" for layer in legacy.layers) == 35
    ours = mobilenet_v2_network(0.35, 96, 10)
    assert sum(li.macs for li in legacy.info) == sum(li.macs for li in ours.info)


@needs_gxx
@pytest.mark.parametrize(
    ("precision", "style"),
    [("int8", "dataflow"), ("int8", "sequential"), ("int8", "shared"), ("fixed16", "sequential")],
)
def test_bit_exact(legacy, tmp_path, precision, style):
    x = np.random.default_rng(0).random((6, 3, 96, 96)).astype(np.float32)
    res = emit_project(legacy, load_board("zcu104"), tmp_path / "p", precision, x, style=style)
    # int8 fits zcu104 streaming and on the shared engine; an element per layer (sequential) does not
    assert res.analysis.fits == (style != "sequential")
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict


@needs_gxx
@pytest.mark.slow
@pytest.mark.parametrize(
    ("precision", "style"),  # fixed16 dataflow needs 778 of zcu104's 561 BRAM18K: emit refuses it
    [
        ("fixed16", "sequential"),
        ("fixed16", "shared"),
        ("int8", "sequential"),
        ("int8", "dataflow"),
        ("int8", "shared"),
    ],
)
def test_dynamo_export_bit_exact(tmp_path, precision, style):
    _export(tmp_path / "m.onnx", True)
    net = load_onnx(tmp_path / "m.onnx").network
    x = np.random.default_rng(0).random((6, 3, 96, 96)).astype(np.float32)
    emit_project(net, load_board("zcu104"), tmp_path / "p", precision, x, style=style)
    assert run_csim(tmp_path / "p", opt="-O1").bit_exact
