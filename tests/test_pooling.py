"""Average pooling that leaves padding out of its count (ONNX's count_include_pad=0, NAS-Bench-201's
avg_pool_3x3): the divisor of each window, its import, and the C++ of every style bit-exact."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.float_model import run_float
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.network.arch import network_to_yaml, parse_network_yaml
from fnas_hls.network.ir import Pool, Shape
from fnas_hls.network.onnx_frontend import load_onnx

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def test_each_windows_real_taps():
    pool = Pool("p", "avg", (3, 3), (1, 1), (1, 1, 1, 1), count_pad=False)
    counts = pool.counts(Shape(1, 4, 5))
    assert counts.tolist() == [[4, 6, 6, 6, 4], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [4, 6, 6, 6, 4]]
    strided = Pool("p", "avg", (3, 3), (2, 2), (1, 1, 0, 0), count_pad=False)
    assert strided.counts(Shape(1, 5, 5)).tolist() == [[4, 6], [6, 9]]


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(3, 1, 1, count_include_pad=False),
        nn.Conv2d(8, 8, 3), nn.ReLU(), nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 5),
    ).eval()  # fmt: skip


def _load(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_model(), (torch.zeros(1, 3, 10, 10),), str(tmp_path / "ap.onnx"), dynamo=False)
    return load_onnx(tmp_path / "ap.onnx").network


def test_import_and_float_model_match_torch(tmp_path):
    net = _load(tmp_path)
    pools = [layer for layer in net.layers if isinstance(layer, Pool)]
    assert [p.count_pad for p in pools] == [False, False]  # on the FPGA now, not host layers
    x = np.random.default_rng(0).random((8, 3, 10, 10)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(run_float(net, x), _model()(torch.from_numpy(x)).numpy(), atol=1e-6)
    text = network_to_yaml(net)
    assert "count_include_pad: false" in text and parse_network_yaml(text) == net


@needs_gxx
@pytest.mark.parametrize("precision", ["fixed16", "float32", "int8"])
@pytest.mark.parametrize("style", ["sequential", "dataflow", "shared"])
def test_bit_exact(tmp_path, style, precision):
    net = _load(tmp_path)
    x = np.random.default_rng(1).random((12, 3, 10, 10)).astype(np.float32)
    res = emit_project(net, load_board("pynq"), tmp_path / "p", precision, x, style=style)
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict
    assert res.agreement.top1_agreement >= 0.9
