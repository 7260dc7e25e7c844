"""Output activations other than ReLU: their arithmetic, their import from ONNX, their cost in every
style's model, and the C++ of every style bit-exact with the reference model."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from fnas_hls.backend.activation import FixedActivation, FloatActivation, quantize_activation
from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.fixed_point import FLOAT32, DataType
from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.errors import FnasError
from fnas_hls.network.activations import Activation
from fnas_hls.network.arch import network_to_yaml, parse_network_yaml
from fnas_hls.network.ir import Add, Conv, Dense, Flatten, Network, Shape
from fnas_hls.network.onnx_frontend import load_onnx, network_from_model
from fnas_hls.styles import analyze

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

ALL = {
    "relu6": Activation("clip", lo=0.0, hi=6.0),
    "clip": Activation("clip", lo=-1.0, hi=2.5),
    "leaky_relu": Activation("leaky_relu", alpha=0.1),
    "hard_sigmoid": Activation("hard_sigmoid", alpha=0.2, beta=0.5),
    "hard_swish": Activation("hard_swish"),
    "sigmoid": Activation("sigmoid"),
    "tanh": Activation("tanh"),
    "silu": Activation("silu"),
}


# --- the arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("frac", [4, 9, 14])
def test_fixed_point_is_within_a_few_lsb_of_the_function(name, frac):
    """Every v of a range around the interesting part: the integer result against the float
    function of v's value, within rounding (plus the table's interpolation error)."""
    act = ALL[name]
    q = quantize_activation(act, DataType.fixed(16, frac), "l")
    assert isinstance(q, FixedActivation)
    v = np.arange(-20 * 2**frac, 20 * 2**frac + 1, max(1, 2 ** (frac - 6)), dtype=np.int64)
    got = q.apply(v) * 2.0**-frac
    want = act(v * 2.0**-frac)
    table_error = {"sigmoid": 2e-4, "tanh": 5e-4, "silu": 4e-3}.get(name, 0.0)  # interpolation, |x| <= 20
    assert np.abs(got - want).max() <= 1.01 * 2.0**-frac + table_error


def test_a_huge_pre_activation_does_not_overflow():
    q = quantize_activation(Activation("hard_swish"), DataType.fixed(16, 14), "l")
    v = np.array([-(2**50), -(2**40), 2**40, 2**50], dtype=np.int64)
    y = q.apply(v)
    assert list(y[:2]) == [0, 0] and list(y[2:]) == [2**31 - 1] * 2  # v clamped to int32 first
    silu = quantize_activation(Activation("silu"), DataType.fixed(16, 10), "l")
    assert silu.apply(np.array([2**45]))[0] == 2**31 - 1


@pytest.mark.parametrize("name", sorted(ALL))
def test_float32_is_close_to_the_function(name):
    act = ALL[name]
    q = quantize_activation(act, FLOAT32, "l")
    assert isinstance(q, FloatActivation)
    v = np.linspace(-20, 20, 4001, dtype=np.float32)
    got = q.apply(v)
    assert got.dtype == np.float32
    assert np.abs(got - act(v)).max() <= {"sigmoid": 2e-4, "tanh": 5e-4, "silu": 4e-3}.get(name, 1e-6)


def test_an_output_too_coarse_for_a_table_is_one_line():
    with pytest.raises(
        FnasError, match=r"layer 'c1': its sigmoid output needs frac >= 0 but its range gives frac -2"
    ):
        quantize_activation(Activation("sigmoid"), DataType.fixed(16, -2), "c1")
    with pytest.raises(FnasError, match=r"clip\(3, 1\): the bounds must be finite with lo < hi"):
        Activation("clip", lo=3.0, hi=1.0)


def test_relu_and_act_are_exclusive():
    with pytest.raises(FnasError, match="layer 'c' has both relu and act"):
        Conv("c", out=2, kernel=(1, 1), relu=True, act=ALL["silu"])


def test_the_yaml_form_round_trips():
    net = parse_network_yaml(
        "input: [1, 8, 8]\nlayers:\n"
        "  - {type: conv, out: 4, kernel: 3, act: relu6}\n"
        "  - {type: conv, out: 4, kernel: 3, act: {leaky_relu: 0.2}}\n"
        "  - {type: conv, out: 4, kernel: 1, act: {hard_sigmoid: [0.2, 0.5]}}\n"
        "  - {type: fc, out: 3, act: silu}\n"
    )
    assert [str(layer.act) for layer in net.layers] == [
        "clip(0, 6)", "leaky_relu(0.2)", "hard_sigmoid(0.2, 0.5)", "silu"
    ]  # fmt: skip
    assert parse_network_yaml(network_to_yaml(net)) == net
    with pytest.raises(FnasError, match=r"layers\[0\] \(conv\): field 'act' is 'swish'; accepted: relu6"):
        parse_network_yaml("input: [1, 8, 8]\nlayers:\n  - {type: conv, out: 4, kernel: 3, act: swish}\n")


# --- ONNX import ---------------------------------------------------------------------------------


def _export(model: nn.Module, path, dynamo: bool, shape=(1, 2, 8, 8)) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(*shape),), str(path), dynamo=dynamo,
                          input_names=["x"], output_names=["y"])  # fmt: skip


TORCH = {
    "relu6": (nn.ReLU6, "clip(0, 6)"),
    "hardtanh": (lambda: nn.Hardtanh(-1.0, 2.0), "clip(-1, 2)"),
    "leaky": (lambda: nn.LeakyReLU(0.1), "leaky_relu(0.1)"),
    "hardsigmoid": (nn.Hardsigmoid, "hard_sigmoid(0.166667, 0.5)"),
    "hardswish": (nn.Hardswish, "hard_swish"),
    "sigmoid": (nn.Sigmoid, "sigmoid"),
    "tanh": (nn.Tanh, "tanh"),
    "silu": (nn.SiLU, "silu"),
}


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("name", sorted(TORCH))
def test_torch_activations_import_fused(name, dynamo, tmp_path):
    make, want = TORCH[name]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), make(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 3), make())  # fmt: skip
    _export(model, tmp_path / "m.onnx", dynamo)
    net = load_onnx(tmp_path / "m.onnx").network
    assert [type(layer) for layer in net.layers] == [Conv, Flatten, Dense]
    assert str(net.layers[0].act) == want and str(net.layers[2].act) == want
    x = np.random.default_rng(0).standard_normal((4, 2, 8, 8)).astype(np.float32)
    from fnas_hls.backend.float_model import run_float

    with torch.no_grad():
        np.testing.assert_allclose(run_float(net, x), model(torch.from_numpy(x)).numpy(), atol=2e-5)


def _graph(nodes, inits, out_dims=(1, 4, 4, 4)) -> onnx.ModelProto:
    """x [1, 1, 6, 6] -> Conv 'c' (w: 4x1x3x3) -> ``nodes`` -> y."""
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((4, 1, 3, 3)).astype(np.float32), **inits}
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["a"], name="c"), *nodes],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_dims))],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_x_times_hard_sigmoid_of_x_is_hard_swish():
    nodes = [
        helper.make_node("HardSigmoid", ["a"], ["h"], name="hs", alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["h", "a"], ["y"], name="mul"),
    ]
    (conv,) = network_from_model(_graph(nodes, {}), "m.onnx").network.layers
    assert str(conv.act) == "hard_swish"
    # another slope is no hard-swish: the HardSigmoid fuses, the Mul is left and refused
    nodes[0] = helper.make_node("HardSigmoid", ["a"], ["h"], name="hs", alpha=0.2, beta=0.5)
    with pytest.raises(FnasError, match=r"hard_sigmoid\(0.2, 0.5\) is fused only into"):
        network_from_model(_graph(nodes, {}), "m.onnx")


@pytest.mark.parametrize(
    ("nodes", "inits", "message"),
    [
        (  # a Clip whose bound is computed
            [
                helper.make_node("GlobalAveragePool", ["a"], ["m"], name="gap"),
                helper.make_node("Clip", ["a", "lo", "m"], ["y"], name="clip"),
            ],
            {"lo": np.array(0.0, np.float32)},
            r"'Clip' at node 'clip' \(its max 'm' is not a constant",
        ),
        (  # a Clip with one bound only (not lo = 0)
            [helper.make_node("Clip", ["a", "lo"], ["y"], name="clip")],
            {"lo": np.array(-1.0, np.float32)},
            r"'Clip' at node 'clip' \(Clip\(-1, inf\); a Clip needs finite",
        ),
        (  # an activation after another one
            [
                helper.make_node("Relu", ["a"], ["r"], name="r"),
                helper.make_node("Tanh", ["r"], ["y"], name="t"),
            ],
            {},
            r"'Tanh' at node 't' \(tanh is fused only into",
        ),
        (  # a Mul of a map by a map is no activation and no per-channel scale
            [helper.make_node("Mul", ["a", "a"], ["y"], name="scale")],
            {},
            r"'Mul' at node 'scale' \(it multiplies 4x4x4 by 4x4x4",
        ),
    ],
    ids=["clip-computed-bound", "clip-one-bound", "act-after-act", "se-mul"],
)
def test_bad_activations_name_the_node(nodes, inits, message):
    with pytest.raises(FnasError, match=message):
        network_from_model(_graph(nodes, inits), "m.onnx")


# --- the models ----------------------------------------------------------------------------------


def _net(act: Activation | None, relu: bool = False, add_act: Activation | None = None) -> Network:
    layers = (
        Conv("c1", out=8, kernel=(3, 3), padding=(1, 1, 1, 1), relu=relu, act=act),
        Conv("c2", out=8, kernel=(3, 3), padding=(1, 1, 1, 1), relu=True),
        Add("s", ("c1", "c2"), act=add_act or act, relu=relu and add_act is None),
        Flatten("f"),
        Dense("fc", out=4, act=act, relu=relu),
    )
    return with_random_weights(Network(Shape(2, 8, 8), layers, "acts"))


@pytest.mark.parametrize("style", ["sequential", "dataflow", "shared"])
def test_every_style_counts_the_activation(style):
    """The same network with a ReLU and with hard-swish: the stores take longer and more DSPs."""
    # (the add's ReLU6 keeps it on the shared style's add unit, as hard-swish does: the shared engine's
    # store computes only adds with no activation or a ReLU, model.shared.fused_adds)
    relu6 = Activation("clip", lo=0.0, hi=6.0)
    base = analyze(_net(None, relu=True, add_act=relu6), load_board("zcu104"), "fixed16", style=style)
    swish = analyze(_net(Activation("hard_swish")), load_board("zcu104"), "fixed16", style=style)
    if style == "dataflow":  # its DSE may spend the activation's multipliers elsewhere: one design for both
        from fnas_hls.model import dataflow as df
        from fnas_hls.network.names import design_names
        from fnas_hls.precision import get_precision

        par = {lc.name: lc.tiling for lc in base.layers if lc.tiling is not None}
        regions = []
        for n in (_net(None, relu=True, add_act=relu6), _net(Activation("hard_swish"))):
            cnames, top = design_names([li.name for li in n.info], n.name)
            reg = df.region(list(n.info), cnames, top, par, get_precision("fixed16"), load_board("zcu104"))
            regions.append((sum(lc.resources.dsp for lc in reg.layer_costs), reg.schedule.latency))
        assert regions[1][0] > regions[0][0] and regions[1][1] > regions[0][1]
    else:
        assert swish.resources.dsp > base.resources.dsp
        assert swish.latency_cycles > base.latency_cycles

    def depths(a):
        return {
            (lc.name, fn.name, lp.label): lp.depth
            for lc in a.layers
            for fn in lc.functions
            for lp in fn.loops
        }

    grew = [k for k, d in depths(swish).items() if d is not None and d > (depths(base).get(k) or d)]
    assert grew  # a store stage (STORE, ROW, ADD) is deeper, nothing else changes


# --- the C++ -------------------------------------------------------------------------------------


CSIM = [(name, style, "fixed16") for name in sorted(ALL) for style in ("sequential", "dataflow", "shared")]
CSIM += [
    (name, style, "float32")
    for name in ("clip", "hard_swish", "silu")
    for style in ("sequential", "dataflow", "shared")
]


@needs_gxx
@pytest.mark.parametrize(("name", "style", "precision"), CSIM)
def test_emit_and_csim_bit_exact(name, style, precision, tmp_path):
    """A conv, a residual add and a classifier, each with the activation, in every style."""
    net = _net(ALL[name])
    x = np.random.default_rng(1).standard_normal((12, 2, 8, 8)).astype(np.float32)
    res = emit_project(net, load_board("pynq"), tmp_path / "p", precision, x, style=style)
    assert res.analysis.style == style
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact and out.vectors == 12, out.verdict
    assert res.agreement.top1_agreement >= 0.9
