"""1-D signals (keyword spotting, audio): Conv1d, MaxPool1d and AvgPool1d on an [N, C, L] input as
2-D layers over a map of one row, from both torch exporters, bit-exact in every style."""

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
from fnas_hls.network.ir import Conv, Pool, Shape
from fnas_hls.network.onnx_frontend import load_onnx

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(10, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(16, 16, 3, stride=2, padding=1, groups=16), nn.ReLU(), nn.Conv1d(16, 24, 1), nn.ReLU(),
        nn.AvgPool1d(3, 1, 1, count_include_pad=False), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
        nn.Linear(24, 12),
    ).eval()  # fmt: skip


@pytest.fixture(scope="module", params=[False, True], ids=["legacy", "dynamo"])
def net(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("kws") / "kws.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_model(), (torch.zeros(1, 10, 49),), str(path), dynamo=request.param)
    return load_onnx(path).network


def test_a_signal_is_a_one_row_map(net):
    assert net.input == Shape(10, 1, 49)
    convs = [layer for layer in net.layers if isinstance(layer, Conv)]
    assert [c.kernel for c in convs] == [(1, 5), (1, 3), (1, 1)] and convs[1].stride == (1, 2)
    assert convs[0].padding == (0, 2, 0, 2)
    pools = [layer for layer in net.layers if isinstance(layer, Pool)]
    assert [(p.kind, p.kernel, p.count_pad) for p in pools] == [("max", (1, 2), True), ("avg", (1, 3), False)]
    x = np.random.default_rng(0).standard_normal((6, 10, 49)).astype(np.float32)  # (n, C, L) taken as is
    with torch.no_grad():
        np.testing.assert_allclose(run_float(net, x), _model()(torch.from_numpy(x)).numpy(), atol=1e-5)


@needs_gxx
@pytest.mark.parametrize("style", ["sequential", "dataflow", "shared"])
def test_bit_exact(net, tmp_path, style):
    x = np.random.default_rng(1).standard_normal((10, 10, 49)).astype(np.float32)
    res = emit_project(net, load_board("pynq"), tmp_path / "p", "fixed16", x, style=style)
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict
    assert res.agreement.top1_agreement >= 0.9
