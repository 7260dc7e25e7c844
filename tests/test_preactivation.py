"""ReLU before a convolution (pre-activation, ReLU-Conv-BN) fused into the conv's input read, and a
BatchNormalization after no conv as a 1x1 depthwise conv: import, float model, csim bit-exact."""

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
from fnas_hls.network.ir import Add, Conv
from fnas_hls.network.onnx_frontend import load_onnx

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


class PreAct(nn.Module):
    """The patterns of NAS-Bench-201's cells: ReLU-Conv-BN reading a map an add also reads."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c = nn.Conv2d(8, 8, 1)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = self.a(torch.relu(x))  # the ReLU of the network input
        z = y + self.bn(self.b(torch.relu(y)))  # y feeds the add too: the ReLU cannot join a
        z = z + self.c(torch.relu(z))
        z = torch.relu(self.bn2(z))  # a batch norm after an add
        return self.fc(z.mean((2, 3)))


def _model():
    torch.manual_seed(0)
    m = PreAct().eval()
    with torch.no_grad():
        for bn in (m.bn, m.bn2):
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
    return m


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("pre") / "pre.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_model(), (torch.zeros(1, 3, 8, 8),), str(path), dynamo=False)
    return path


def test_import(onnx_path):
    result = load_onnx(onnx_path)
    net = result.network
    convs = [layer for layer in net.layers if isinstance(layer, Conv)]
    assert [c.in_relu for c in convs] == [True, True, True, False]
    bn = convs[-1]  # bn2 after the add: a 1x1 depthwise conv with bn2's ReLU
    assert (bn.groups, bn.out, bn.kernel, bn.relu) == (8, 8, (1, 1), True)
    assert sum(isinstance(layer, Add) for layer in net.layers) == 2
    assert any("follows no conv: a 1x1 depthwise conv" in n for n in result.notes)
    x = np.random.default_rng(0).standard_normal((8, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(run_float(net, x), _model()(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_the_yaml_form():
    net = parse_network_yaml(
        "input: [2, 6, 6]\nlayers:\n"
        "  - {type: conv, out: 4, kernel: 3, in_relu: true}\n  - {type: fc, out: 2}\n"
    )
    assert net.layers[0].in_relu and parse_network_yaml(network_to_yaml(net)) == net


@needs_gxx
@pytest.mark.parametrize("precision", ["fixed16", "float32"])
@pytest.mark.parametrize("style", ["sequential", "dataflow", "shared"])
def test_bit_exact(onnx_path, tmp_path, style, precision):
    net = load_onnx(onnx_path).network
    x = np.random.default_rng(1).standard_normal((12, 3, 8, 8)).astype(np.float32)
    res = emit_project(net, load_board("pynq"), tmp_path / "p", precision, x, style=style)
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict
    assert res.agreement.top1_agreement >= 0.9
