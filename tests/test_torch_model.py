"""IR -> torch -> ONNX -> load_onnx gives the same network and the same outputs."""

from __future__ import annotations

import numpy as np
import torch

from fnas_hls.network.arch import parse_network_yaml
from fnas_hls.network.onnx_frontend import load_onnx
from fnas_hls.network.torch_model import TorchNetwork, export_onnx, network_with_weights

ARCH = """
name: roundtrip
input: [2, 12, 12]
layers:
  - {type: conv, out: 6, kernel: 4, stride: 1, padding: same, relu: true}
  - {type: maxpool, kernel: 2, stride: 2}
  - {type: conv, out: 8, kernel: 3, padding: 1, groups: 2, relu: true}
  - {type: avgpool, kernel: 2, stride: 2}
  - {type: conv, out: 8, kernel: 3, stride: 2, padding: [0, 0, 1, 1]}
  - {type: gap}
  - {type: fc, out: 10}
"""


def test_round_trip_through_onnx(tmp_path):
    net = parse_network_yaml(ARCH)
    torch.manual_seed(0)
    model = TorchNetwork(net).eval()
    export_onnx(model, tmp_path / "m.onnx")
    back = load_onnx(tmp_path / "m.onnx").network
    assert back == net  # same layers, names, shapes and attributes
    assert back.has_weights
    again = TorchNetwork(back).eval()
    x = torch.randn(4, 2, 12, 12)
    with torch.no_grad():
        assert torch.allclose(model(x), again(x), atol=1e-6)
    ir = network_with_weights(model)
    for a, b in zip(ir.layers, back.layers, strict=True):
        if getattr(a, "weight", None) is not None:
            np.testing.assert_allclose(a.weight, b.weight, atol=1e-7)
            np.testing.assert_allclose(a.bias_value, b.bias_value, atol=1e-7)


def test_flatten_head_round_trip(tmp_path):
    net = parse_network_yaml(
        "input: [1, 8, 8]\nlayers:\n  - {type: conv, out: 4, kernel: 3, padding: same, relu: true}\n"
        "  - {type: maxpool, kernel: 2}\n  - {type: flatten}\n  - {type: fc, out: 10}\n"
    )
    model = TorchNetwork(net).eval()
    export_onnx(model, tmp_path / "f.onnx")
    assert load_onnx(tmp_path / "f.onnx").network == net
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
