"""QONNX ``Quant`` on weights (Brevitas / FINN exports): folded at import as QONNX defines it, and held
exactly by fnas-hls's formats where its scales are powers of two; a Quant of activations is refused."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fnas_hls.backend.quantize import quantize_network
from fnas_hls.errors import FnasError
from fnas_hls.network.onnx_frontend import network_from_model
from fnas_hls.network.onnx_import.qonnx import quant, weight_grid

DOMAIN = "qonnx.custom_op.general"


def _model(scales_conv, scale_fc=2.0**-6, act_quant=False, rounding="ROUND", zero=0.0):
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((4, 1, 3, 3)) * 0.5).astype(np.float32)
    w[0, 0, 0, 0] = 2.5 * 2.0**-5  # a tie: half to even gives 2 steps, not 3
    fc = (rng.standard_normal((3, 4)) * 0.3).astype(np.float32)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.asarray(scales_conv, np.float32).reshape(4, 1, 1, 1), "w_scale"),
        numpy_helper.from_array(np.full((4, 1, 1, 1), zero, np.float32), "w_zero"),
        numpy_helper.from_array(np.array(8.0, np.float32), "bits"),
        numpy_helper.from_array(np.zeros(4, np.float32), "b"),
        numpy_helper.from_array(fc, "fc"),
        numpy_helper.from_array(np.array(scale_fc, np.float32), "fc_scale"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    q = dict(domain=DOMAIN, signed=1, narrow=1, rounding_mode=rounding)
    nodes = [
        helper.make_node("Quant", ["w", "w_scale", "w_zero", "bits"], ["wq"], name="quant_w", **q),
        helper.make_node("Conv", ["x", "wq", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
    ]
    last = "r"
    if act_quant:
        nodes.append(
            helper.make_node("Quant", ["r", "fc_scale", "zero", "bits"], ["rq"], name="quant_act", **q)
        )
        last = "rq"
    nodes += [
        helper.make_node("GlobalAveragePool", [last], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Quant", ["fc", "fc_scale", "zero", "bits"], ["fcq"], name="quant_fc", **q),
        helper.make_node("Gemm", ["f", "fcq"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "qnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        inits,
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets), w, fc


SCALES = [2.0**-5, 2.0**-6, 2.0**-4, 2.0**-7]


def test_weight_quant_is_folded_as_qonnx_defines_it():
    model, w, fc = _model(SCALES)
    res = network_from_model(model, "q.onnx")
    conv, dense = res.network.layers[0], res.network.layers[-1]
    s = np.asarray(SCALES).reshape(4, 1, 1, 1)
    want = np.clip(np.round(w / s), -127, 127) * s  # half to even, narrow range
    np.testing.assert_array_equal(np.asarray(conv.weight), want.astype(np.float32))
    assert conv.weight[0, 0, 0, 0] == 2 * 2.0**-5  # the tie went to even
    np.testing.assert_array_equal(
        np.asarray(dense.weight), (np.clip(np.round(fc / 2.0**-6), -127, 127) * 2.0**-6)
    )
    assert any(
        "2 QONNX Quant node(s) on weights folded into constants; 2 with power-of-two" in n for n in res.notes
    )


@pytest.mark.parametrize("precision", ["int8", "fixed16"])
def test_power_of_two_weights_are_held_exactly_by_the_design(precision):
    """fnas-hls's formats (int8: per output channel; fixed16: per layer) are at least as fine as the
    QONNX scales here, so the design's integer weights are the QONNX weights exactly."""
    net = network_from_model(_model(SCALES)[0], "q.onnx").network
    x = np.random.default_rng(1).standard_normal((16, 1, 8, 8)).astype(np.float32)
    plan = quantize_network(net, precision, x)
    for li, lq in zip(net.info, plan.layers, strict=True):
        if lq.weight is None:
            continue
        fracs = lq.w_fracs if lq.w_fracs is not None else [lq.w_type.frac] * lq.weight.shape[0]
        fracs = np.asarray(fracs, dtype=np.float64).reshape(-1, *([1] * (lq.weight.ndim - 1)))
        np.testing.assert_array_equal(np.asarray(lq.weight) * 2.0**-fracs, np.asarray(li.layer.weight))


def test_other_scales_are_folded_and_said_not_exact():
    res = network_from_model(_model([0.013, 2.0**-6, 2.0**-4, 2.0**-7])[0], "q.onnx")
    assert any("1 with power-of-two scales" in n and "1 with other scales" in n for n in res.notes)
    assert weight_grid([None, np.array([0.25, 0.5]), np.zeros(2)]) == 2
    assert weight_grid([None, np.array([0.3]), np.zeros(1)]) is None
    assert weight_grid([None, np.array([0.25]), np.array([1.0])]) is None


def test_quant_rounding_modes_and_ranges():
    x = np.array([-2.5, -1.5, 0.5, 1.5, 2.5, 300.0])
    one, zero = np.array(1.0), np.array(0.0)
    ev = lambda **a: quant([x, one, zero, np.array(8.0)], a).tolist()  # noqa: E731
    assert ev() == [-2, -2, 0, 2, 2, 127]
    assert ev(rounding_mode="FLOOR") == [-3, -2, 0, 1, 2, 127]
    assert ev(rounding_mode="CEIL", signed=0) == [0, 0, 1, 2, 3, 255]
    assert ev(narrow=1, signed=0) == [0, 0, 0, 2, 2, 254]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"act_quant": True}, "node 'quant_act' (Quant): a QONNX Quant of a computed tensor (activations)"),
        (
            {"rounding": "STOCHASTIC"},
            "node 'quant_w' (Quant): cannot evaluate this Quant (rounding_mode 'STOCHASTIC'",
        ),
    ],
)
def test_refusals_name_the_node(kwargs, message):
    with pytest.raises(FnasError) as err:
        network_from_model(_model(SCALES, **kwargs)[0], "q.onnx")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_model_is_valid_onnx_with_its_custom_domain():
    onnx.checker.check_model(_model(SCALES)[0])
