"""A NAS-Bench-201 network from a cell string, written in torch as the benchmark's code builds it
(ReLU-Conv-BN operations, 3x3 average pooling without padding in its count, skips, residual
reduction blocks, a final BN-ReLU), exported by both torch exporters, imported with no host
operator and bit-exact in C simulation in every style, fixed16 and int8. Narrower and shallower
than the benchmark's (8/16/32 channels, one cell a stage, 16x16 input) to keep C simulation short."""

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
from fnas_hls.network.benchmark_nets import parse_cellstr
from fnas_hls.network.ir import Conv, Pool
from fnas_hls.network.onnx_frontend import load_onnx

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

CELL = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"


def _relu_conv_bn(i: int, o: int, k: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(i, o, k, stride, k // 2, bias=False), nn.BatchNorm2d(o))


class Cell(nn.Module):
    def __init__(self, c: int, cellstr: str) -> None:
        super().__init__()
        self.edges = parse_cellstr(cellstr)
        ops = {}
        for (i, j), op in self.edges.items():
            if op == "nor_conv_3x3":
                ops[f"{i}{j}"] = _relu_conv_bn(c, c, 3)
            elif op == "nor_conv_1x1":
                ops[f"{i}{j}"] = _relu_conv_bn(c, c, 1)
            elif op == "avg_pool_3x3":
                ops[f"{i}{j}"] = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.ops = nn.ModuleDict(ops)

    def forward(self, x):
        nodes = [x]
        for j in (1, 2, 3):
            terms = []
            for i in range(j):
                op = self.edges[(i, j)]
                if op == "skip_connect":
                    terms.append(nodes[i])
                elif op != "none":
                    terms.append(self.ops[f"{i}{j}"](nodes[i]))
            nodes.append(sum(terms[1:], terms[0]))
        return nodes[3]


class Reduction(nn.Module):
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.a, self.b = _relu_conv_bn(i, o, 3, 2), _relu_conv_bn(o, o, 3)
        self.short = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(i, o, 1, bias=False))

    def forward(self, x):
        return self.b(self.a(x)) + self.short(x)


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8),
        Cell(8, CELL), Reduction(8, 16), Cell(16, CELL), Reduction(16, 32), Cell(32, CELL),
        nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    ).eval()  # fmt: skip
    return perturb_batch_norms(model, mean=0.2, weight=(0.5, 1.5), bias=0.2)


@pytest.fixture(scope="module", params=[False, True], ids=["legacy", "dynamo"])
def network(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("nb201") / "nb201.onnx"
    return load_onnx(export_onnx(_model(), (1, 3, 16, 16), path, dynamo=request.param)).network


def test_imports_with_no_host_layer(network):
    layers = network.layers
    assert "host" not in [layer.op for layer in layers]
    # ReLU-Conv-BN: a ReLU on the conv's input read where its input has other readers (a cell's
    # input, a reduction's); else the ReLU of the layer that writes it
    pre = [x for x in layers if isinstance(x, Conv) and x.in_relu]
    assert len(pre) >= 5 and sum(getattr(x, "relu", False) for x in layers) >= 3
    pools = [x for x in layers if isinstance(x, Pool) and x.kernel == (3, 3)]
    assert len(pools) == 3 * 2 and not any(p.count_pad for p in pools)  # padding left out
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
