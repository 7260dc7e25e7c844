"""Quantization-aware training's fake quantization (``backend/fake_quant.py``): bit for bit the
reference model (and so the C simulation) in fixed16 and int8, with gradients to every parameter."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.fake_quant import FakeQuantNetwork, fake_quantize
from fnas_hls.backend.fixed_point import DataType
from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.backend.quantize import quantize_network
from fnas_hls.backend.reference import run_reference
from fnas_hls.model.tiling import Tiling
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.torch_model import TorchNetwork

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

MOBILE = {
    "name": "mobile",
    "input": [3, 12, 12],
    "layers": [
        {"type": "conv", "out": 8, "kernel": 3, "padding": 1, "act": "relu6"},
        {"type": "conv", "out": 8, "kernel": 3, "padding": 1, "groups": 8, "relu": True},
        {"type": "maxpool", "kernel": 2, "stride": 2},
        {"type": "conv", "out": 12, "kernel": 1, "act": "hard_swish"},
        {"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1, "count_include_pad": False},
        {"type": "conv", "out": 10, "kernel": 3, "padding": [0, 0, 1, 1], "act": "silu"},
        {"type": "gap"},
        {"type": "fc", "out": 5},
    ],
}
PLAIN = {
    "name": "plain",
    "input": [1, 14, 14],
    "layers": [
        {"type": "conv", "out": 6, "kernel": 5, "padding": 2, "act": "tanh"},
        {"type": "avgpool", "kernel": 2, "stride": 2},
        {"type": "conv", "out": 16, "kernel": 3, "stride": 2, "act": {"leaky_relu": 0.1}},
        {"type": "flatten"},
        {"type": "fc", "out": 20, "act": "sigmoid"},
        {"type": "fc", "out": 4},
    ],
}


def _tilings(net):
    """Any tiling: in fixed point the accumulators cannot overflow, so the tiling does not change
    the integers (``backend/reference.py``)."""
    return {li.name: Tiling(4, 2, 3, 3) for li in net.info}


def _inputs(net, n=24, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, net.input.c, net.input.h, net.input.w)
    return (rng.standard_normal(shape) * 0.8).astype(np.float32)


@pytest.mark.parametrize("arch", [MOBILE, PLAIN], ids=["mobile", "plain"])
@pytest.mark.parametrize("precision", ["fixed16", "int8"])
def test_fake_quantized_network_is_the_reference_model_bit_for_bit(arch, precision):
    net = with_random_weights(network_from_dict(arch), seed=3)
    x = _inputs(net)
    plan = quantize_network(net, precision, x[:16])
    want = run_reference(net, plan, _tilings(net), plan.input_type.quantize(x))
    qat = FakeQuantNetwork(TorchNetwork(net), plan)
    with torch.no_grad():
        got = qat(torch.from_numpy(x)).numpy() * 2.0**plan.output_type.frac
    assert np.array_equal(got, np.round(got))  # values of the output format
    np.testing.assert_array_equal(got.astype(np.int64), want)
    # not trivially: the outputs spread over many codes
    assert len(np.unique(want)) > 20


def test_float32_fake_quantization_is_within_a_few_lsb():
    """float32 (faster training) rounds some partial sums: a few output units off the kernel's."""
    net = with_random_weights(network_from_dict(MOBILE), seed=1)
    x = _inputs(net)
    plan = quantize_network(net, "fixed16", x)
    want = run_reference(net, plan, _tilings(net), plan.input_type.quantize(x))
    with torch.no_grad():
        got = FakeQuantNetwork(TorchNetwork(net), plan, exact=False)(torch.from_numpy(x)).numpy()
    assert got.dtype == np.float32
    assert np.max(np.abs(got * 2.0**plan.output_type.frac - want)) <= 16


def test_gradients_reach_every_parameter_through_the_roundings():
    net = with_random_weights(network_from_dict(MOBILE), seed=2)
    x = _inputs(net, 16)
    plan = quantize_network(net, "int8", x)
    model = TorchNetwork(net)
    out = FakeQuantNetwork(model, plan)(torch.from_numpy(x))
    torch.nn.functional.cross_entropy(out, torch.arange(16) % 5).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name


def test_fake_quantize_rounds_half_up_and_saturates_like_the_datatype():
    t = DataType.fixed(8, 4)
    x = np.array([-9.0, -8.03125, -0.03125, 0.03125, 0.09375, 7.9, 7.96875, 100.0])
    got = fake_quantize(torch.tensor(x, dtype=torch.float64, requires_grad=True), t)
    np.testing.assert_array_equal(got.detach().numpy() * 16, t.quantize(x))
    got.sum().backward()  # saturated inputs get no gradient, the rest the identity's


def test_refuses_a_float_plan_and_a_plan_of_another_network():
    net = with_random_weights(network_from_dict(MOBILE))
    x = _inputs(net, 4)
    with pytest.raises(ValueError, match="fixed-point"):
        FakeQuantNetwork(TorchNetwork(net), quantize_network(net, "float32", x))
    other = with_random_weights(network_from_dict(PLAIN))
    plan = quantize_network(other, "int8", _inputs(other, 4))
    with pytest.raises(ValueError, match="not the network's"):
        FakeQuantNetwork(TorchNetwork(net), plan)


@needs_gxx
@pytest.mark.parametrize("precision,style", [("int8", "dataflow"), ("fixed16", "sequential")])
def test_fake_quantized_network_is_the_c_simulation(tmp_path, precision, style):
    """The emitted project calibrates on the same images, so its plan is the QAT model's, and its
    C simulation, held to the reference model's vectors, gives the QAT model's outputs."""
    net = with_random_weights(network_from_dict(MOBILE), seed=5)
    x = _inputs(net, 16, seed=1)
    emitted = emit_project(
        net, "zcu104", tmp_path / "p", precision, calibration=x, test_inputs=x[:4], style=style
    )
    sim = run_csim(tmp_path / "p", opt="-O1")
    assert sim.bit_exact and sim.vectors == 4, sim.verdict
    plan = quantize_network(net, precision, x)
    assert plan.input_type == emitted.plan.input_type
    assert [lq.to_json() for lq in plan.layers] == [lq.to_json() for lq in emitted.plan.layers]
    with torch.no_grad():
        got = FakeQuantNetwork(TorchNetwork(net), plan)(torch.from_numpy(x[:4])).numpy()
    stream = emitted.analysis.style == "dataflow"
    want = run_reference(net, plan, emitted.tilings, plan.input_type.quantize(x[:4]), stream_order=stream)
    np.testing.assert_array_equal((got * 2.0**plan.output_type.frac).astype(np.int64), want)
