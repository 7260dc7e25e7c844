"""The arithmetic of the generated kernels (``fixed_point``), the quantizer and the reference model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn

from fnas_hls.backend.fixed_point import (
    FLOAT32,
    DataType,
    acc_bits_needed,
    avg_div,
    frac_for_range,
    requantize,
    tree_sum,
)
from fnas_hls.backend.float_model import run_float
from fnas_hls.backend.quantize import quantize_network
from fnas_hls.boards import load_board
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.ir import Conv, Dense, Network


def test_quantize_rounds_half_up_and_saturates():
    t = DataType.fixed(16, 2)
    x = np.array([0.125, -0.125, 0.374, -0.375, 1e9, -1e9, 8191.75, -8192.0])
    assert t.quantize(x).tolist() == [1, 0, 1, -1, 32767, -32768, 32767, -32768]
    assert t.dequantize(np.array([5])).tolist() == [1.25]
    assert t.c_type == "int16_t" and FLOAT32.c_type == "float"


def test_frac_for_range():
    assert frac_for_range(1.0) == 14  # 1.0 * 2^15 = 32768 does not fit
    assert frac_for_range(0.99) == 15
    assert frac_for_range(200.0) == 7
    assert frac_for_range(1e6) < 0
    assert frac_for_range(0.0) == 30
    for m in (0.3, 1.7, 1234.5):
        f = frac_for_range(m)
        assert m * 2**f <= 32767 < m * 2 ** (f + 1)


def test_requantize_round_half_up_relu_saturate():
    out = DataType.fixed(16, 0)
    acc = np.array([6, 5, -5, -6, -7, 2**40, -(2**40)])
    assert requantize(acc, 2, False, out).tolist() == [2, 1, -1, -1, -2, 32767, -32768]
    assert requantize(acc, 2, True, out).tolist() == [2, 1, 0, 0, 0, 32767, 0]
    assert requantize(np.array([3]), 0, False, out).tolist() == [3]


def test_avg_div_is_rounded_division():
    out = DataType.fixed(16, 0)
    for k in (1, 3, 4, 9, 49, 121):
        s = np.arange(-40 * k, 40 * k)
        want = np.floor(s / k + 0.5)
        assert np.array_equal(avg_div(s, k, out), want)


def test_tree_sum_order():
    p = np.array([1.0, 1e8, -1e8, 1.0, 3.0], dtype=np.float32)
    # ((p0+p1)+(p2+p3)) + p4, the kernel's order
    want = np.float32(np.float32(np.float32(p[0] + p[1]) + np.float32(p[2] + p[3])) + p[4])
    assert tree_sum(p[:, None], axis=0)[0] == want
    ints = np.arange(7)[:, None]
    assert tree_sum(ints, axis=0)[0] == 21


def test_accumulator_width():
    t = DataType.fixed(16, 8)
    assert acc_bits_needed(np.full((2, 3), 100), np.array([0, 0]), t) == 32
    assert acc_bits_needed(np.full((2, 3000), 32767), np.array([0, 0]), t) == 64


def _tiny_net(bias_scale: float = 1.0) -> Network:
    net = network_from_dict(
        {
            "input": [1, 4, 4],
            "layers": [{"type": "conv", "out": 2, "kernel": 3, "padding": 1}, {"type": "fc", "out": 2}],
        }
    )
    from dataclasses import replace

    rng = np.random.default_rng(0)
    c, d = net.layers
    c = replace(
        c,
        weight=rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
        bias_value=np.array([1e4, -1.0], np.float32),
    )
    d = replace(d, weight=rng.standard_normal((2, 32)).astype(np.float32), bias_value=np.zeros(2, np.float32))
    return Network(net.input, (c, d))


def test_bias_fits_int32_by_lowering_weight_frac():
    net = _tiny_net()
    plan = quantize_network(net, "fixed16", np.random.default_rng(1).random((8, 1, 4, 4)))
    conv = plan.layers[0]
    assert conv.bias_type.frac == conv.in_type.frac + conv.w_type.frac
    assert np.max(np.abs(conv.bias)) <= 2**31 - 1
    assert abs(conv.bias_type.dequantize(conv.bias)[0] - 1e4) < 1e-3
    assert conv.shift == conv.bias_type.frac - conv.out_type.frac >= 0


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_trained_model_top1_agreement(tmp_path):
    """A CNN trained on scikit-learn's digits: fixed16 agrees with float on >= 99% of the test set."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    from fnas_hls.backend.csim import run_csim
    from fnas_hls.backend.hls_writer import emit_project

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    tr, te = order[:1400], order[1400:]
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 16, 10),
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    xt, yt = torch.from_numpy(x[tr]), torch.from_numpy(y[tr])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: threads only contend
    try:
        for _ in range(8):
            for i in range(0, len(tr), 50):
                opt.zero_grad()
                nn.functional.cross_entropy(model(xt[i : i + 50]), yt[i : i + 50]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    net = network_from_dict(
        {
            "name": "digits",
            "input": [1, 8, 8],
            "layers": [
                {"type": "conv", "out": 8, "kernel": 3, "padding": 1, "relu": True},
                {"type": "conv", "out": 16, "kernel": 3, "padding": 1, "relu": True},
                {"type": "maxpool", "kernel": 2, "stride": 2},
                {"type": "flatten"},
                {"type": "fc", "out": 10},
            ],
        }
    )
    from dataclasses import replace

    mods = [model[0], model[2], None, None, model[6]]
    layers = tuple(
        layer
        if m is None
        else replace(
            layer, weight=m.weight.detach().numpy().copy(), bias_value=m.bias.detach().numpy().copy()
        )
        for layer, m in zip(net.layers, mods, strict=True)
    )
    net = Network(net.input, layers, "digits")
    float_acc = float(np.mean(np.argmax(run_float(net, x[te]), axis=1) == y[te]))
    assert float_acc > 0.9
    res = emit_project(net, load_board("pynq"), tmp_path / "p", calibration=x[tr[:200]], test_inputs=x[te])
    print(f"float accuracy {float_acc:.3f}, reference vs float: {res.agreement}")
    assert res.agreement.top1_agreement >= 0.99
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact and out.top1_agreement >= 0.99


def test_float_layers_are_exact_layers():
    """The conv and dense layers of ``_tiny_net`` in float: checks ``run_float`` on a bias-heavy net."""
    net = _tiny_net()
    x = np.random.default_rng(3).random((2, 1, 4, 4)).astype(np.float32)
    c, d = net.layers
    assert isinstance(c, Conv) and isinstance(d, Dense)
    with torch.no_grad():
        h = nn.functional.conv2d(
            torch.from_numpy(x), torch.from_numpy(c.weight), torch.from_numpy(c.bias_value), padding=1
        )
        want = nn.functional.linear(
            h.reshape(2, -1), torch.from_numpy(d.weight), torch.from_numpy(d.bias_value)
        )
    np.testing.assert_allclose(run_float(net, x), want.numpy(), rtol=1e-5)
