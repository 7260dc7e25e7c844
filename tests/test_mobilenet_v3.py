"""MobileNetV3's block: 1x1 expand with hard-swish, depthwise 3x3 with hard-swish, squeeze-and-
excitation gated by a hard-sigmoid, 1x1 project, residual; exported by both torch exporters,
imported with no host operator and bit-exact in C simulation in every style, fixed16 and int8."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn
from torch_export import export_onnx, perturb_batch_norms

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.float_model import run_float
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.network.onnx_frontend import load_onnx

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


class V3Block(nn.Module):
    def __init__(self, i: int, h: int, o: int, stride: int) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(i, h, 1, bias=False), nn.BatchNorm2d(h), nn.Hardswish())
        self.dw = nn.Sequential(
            nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.Hardswish()
        )
        self.reduce, self.gate = nn.Conv2d(h, max(1, h // 4), 1), nn.Conv2d(max(1, h // 4), h, 1)
        self.project = nn.Sequential(nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o))
        self.residual = stride == 1 and i == o

    def forward(self, x):
        y = self.dw(self.expand(x))
        s = nn.functional.hardsigmoid(
            self.gate(nn.functional.relu(self.reduce(y.mean((2, 3), keepdim=True))))
        )
        y = self.project(y * s)
        return x + y if self.residual else y


def _model():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.Hardswish(), V3Block(8, 24, 8, 1), V3Block(8, 32, 16, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5),
    ).eval()  # fmt: skip
    return perturb_batch_norms(model, mean=0.2)


@pytest.fixture(scope="module", params=[False, True], ids=["legacy", "dynamo"])
def network(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("v3") / "v3.onnx"
    return load_onnx(export_onnx(_model(), (1, 3, 16, 16), path, dynamo=request.param)).network


def test_imports_with_no_host_layer(network):
    ops = [layer.op for layer in network.layers]
    assert "host" not in ops and ops.count("scale") == 2 and ops.count("add") == 1
    acts = [str(getattr(layer, "act", None)) for layer in network.layers]
    assert sum(a.startswith("hard_swish") for a in acts) == 5  # the stem, and two per block
    assert sum(a.startswith("hard_sigmoid") for a in acts) == 2  # each SE's gate
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        want = _model()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_float(network, x), want, atol=1e-4)


@needs_gxx
@pytest.mark.parametrize("precision", ["fixed16", "int8"])
@pytest.mark.parametrize("style", ["sequential", "dataflow", "shared"])
def test_bit_exact(network, tmp_path, style, precision):
    x = np.random.default_rng(1).standard_normal((10, 3, 16, 16)).astype(np.float32)
    res = emit_project(network, load_board("zcu104"), tmp_path / "p", precision, x, style=style)
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict
    assert res.agreement.top1_agreement >= 0.8
