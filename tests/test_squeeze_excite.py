"""Squeeze-and-excitation and the MBConv block: a map times a per-channel vector (``Scale``) on
the FPGA, imported from both torch exporters and bit-exact in C simulation in every style."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn
from torch_export import export_onnx

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.float_model import run_float
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.errors import FnasError
from fnas_hls.network.ir import Scale
from fnas_hls.network.onnx_frontend import load_onnx, network_from_model
from fnas_hls.styles import analyze

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(c, r, 1)
        self.expand = nn.Conv2d(r, c, 1)

    def forward(self, x):
        w = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(nn.functional.silu(self.reduce(w))))


class MBConv(nn.Module):
    """EfficientNet's block: 1x1 expand, depthwise kxk, SE, 1x1 project, residual when it can."""

    def __init__(self, i: int, o: int, e: int, k: int, stride: int) -> None:
        super().__init__()
        h = i * e
        self.expand = nn.Sequential(nn.Conv2d(i, h, 1, bias=False), nn.BatchNorm2d(h), nn.SiLU())
        self.dw = nn.Sequential(
            nn.Conv2d(h, h, k, stride, k // 2, groups=h, bias=False), nn.BatchNorm2d(h), nn.SiLU()
        )
        self.se = SqueezeExcite(h, max(1, i // 4))
        self.project = nn.Sequential(nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o))
        self.residual = stride == 1 and i == o

    def forward(self, x):
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.SiLU(), MBConv(8, 8, 4, 3, 1), MBConv(8, 16, 4, 5, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5),
    ).eval()  # fmt: skip


@pytest.fixture(scope="module", params=[False, True], ids=["legacy", "dynamo"])
def onnx_path(request, tmp_path_factory):
    return export_onnx(
        _model(), (1, 3, 16, 16), tmp_path_factory.mktemp("se") / "se.onnx", dynamo=request.param
    )


def test_import(onnx_path):
    net = load_onnx(onnx_path).network
    ops = [layer.op for layer in net.layers]
    assert ops.count("scale") == 2 and ops.count("add") == 1 and "host" not in ops
    scale = next(layer for layer in net.layers if isinstance(layer, Scale))
    assert len(scale.inputs) == 2
    x = np.random.default_rng(0).standard_normal((6, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(run_float(net, x), _model()(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_a_mul_that_is_no_channel_scale_names_the_node():
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="c"),
        helper.make_node("ReduceMean", ["a"], ["m"], name="rm", axes=[1], keepdims=1),
        helper.make_node("Mul", ["a", "m"], ["y"], name="spatial"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])],
        [numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(
        FnasError, match=r"unsupported ONNX operator '(ReduceMean|Mul)' at node '(rm|spatial)'"
    ):
        network_from_model(model, "m.onnx")


def test_the_dataflow_map_waits_on_chip(onnx_path):
    a = analyze(load_onnx(onnx_path).network, load_board("zcu104"), "fixed16", style="dataflow")
    scales = [p for p in a.layers if p.op == "scale"]
    assert len(scales) == 2
    for lc in scales:  # its whole map in a buffer: at least the map's words in block RAM
        assert lc.resources.bram18k >= 1
        assert [lp.label for fn in lc.functions for lp in fn.loops] == ["MAP", "SCALE_IN", "SCALE"]


@needs_gxx
@pytest.mark.parametrize("precision", ["fixed16", "int8", "float32"])
@pytest.mark.parametrize("style", ["sequential", "dataflow", "shared"])
def test_bit_exact(onnx_path, tmp_path, style, precision):
    net = load_onnx(onnx_path).network
    x = np.random.default_rng(1).standard_normal((10, 3, 16, 16)).astype(np.float32)
    res = emit_project(net, load_board("zcu104"), tmp_path / "p", precision, x, style=style)
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict
    assert res.agreement.top1_agreement >= 0.9
