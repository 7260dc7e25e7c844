"""The ONNX frontend: torch-exported and hand-built models read into the IR, and its errors."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from fnas_hls.backend.float_model import run_float, run_layer, run_merge
from fnas_hls.errors import FnasError
from fnas_hls.network.ir import (
    INPUT,
    Add,
    Concat,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    HostOp,
    Network,
    Pool,
    Shape,
)
from fnas_hls.network.onnx_frontend import ImportResult, load_onnx, network_from_model

# ------------------------------------------------------------------------------------ helpers


def export(model: nn.Module, shape: tuple[int, ...], path: Path, **kw) -> Path:
    """Export ``model`` (in eval mode) with the legacy exporter, which needs no onnxscript."""
    model.eval()
    kw.setdefault("opset_version", 13)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            torch.randn(*shape),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            **kw,
        )
    return path


def torch_counts(model: nn.Module, x: torch.Tensor) -> tuple[int, int, torch.Tensor]:
    """MACs of every Conv2d and Linear, the parameter count, and the output."""
    macs = 0

    def hook(m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            macs += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            macs += out.numel() * m.in_features

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        y = model(x)
    for h in handles:
        h.remove()
    return macs, sum(p.numel() for p in model.parameters()), y


def run_ir(net: Network, x: torch.Tensor) -> torch.Tensor:
    """Run the IR with its own weights (float_model.run_layer and run_merge, plus host Add/Relu
    layers; flat tensors as [N, C, 1, 1])."""
    outs: dict[str, torch.Tensor] = {}
    prev = x
    for li in net:
        layer = li.layer
        if isinstance(layer, HostOp):
            ins = [outs[n] for n in layer.inputs] if layer.inputs else [prev]
            assert layer.op_type in ("Add", "Relu"), layer.op_type
            y = ins[0] + ins[1] if layer.op_type == "Add" else torch.relu(ins[0])
        elif isinstance(layer, (Add, Concat)):
            y = run_merge(layer, [outs[n] if n != INPUT else x for n in li.sources])
        else:
            y = run_layer(layer, outs[layer.inputs[0]] if layer.inputs else prev)
        assert tuple(y.shape[1:]) == (li.out_shape.c, li.out_shape.h, li.out_shape.w), li.name
        outs[layer.name] = y
        prev = y
    return prev.reshape(prev.shape[0], -1)


def make_model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 13,
    name: str = "g",
) -> onnx.ModelProto:
    tensors = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    graph = helper.make_graph(nodes, name, inputs, outputs, tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vi(name: str, dims: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def check_against_torch(model: nn.Module, shape: tuple[int, ...], path: Path, **kw) -> ImportResult:
    """Export, import, and compare output shape, MACs, parameter count and outputs with torch."""
    export(model, shape, path, **kw)
    result = load_onnx(path)
    x = torch.randn(*shape)
    macs, params, y = torch_counts(model, x)
    net = result.network
    assert net.input == Shape(*shape[1:])
    assert net.output.size == y[0].numel()
    assert net.macs == macs
    assert net.params == params
    with torch.no_grad():
        torch.testing.assert_close(run_ir(net, x), y.reshape(1, -1), atol=1e-4, rtol=1e-4)
    return result


# ---------------------------------------------------------------------------- torch models


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.pad = nn.ZeroPad2d((1, 0, 2, 1))  # left, right, top, bottom
        self.conv2 = nn.Conv2d(8, 16, 3, groups=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = torch.relu(self.conv2(self.pad(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


@pytest.mark.parametrize("opset", [9, 13, 17])  # Pad's pads: an attribute up to 10, an input after
def test_small_cnn_matches_torch(tmp_path: Path, opset: int) -> None:
    model = SmallCNN()
    result = check_against_torch(model, (1, 3, 32, 32), tmp_path / "small.onnx", opset_version=opset)
    net = result.network
    assert net.name == "small"
    assert [type(li.layer) for li in net] == [Conv, Pool, Conv, GlobalAvgPool, Flatten, Dense]
    conv1, pool, conv2, gap, flat, fc = (li.layer for li in net)
    assert conv1.padding == (2, 2, 2, 2) and conv1.relu and conv1.kernel == (5, 5)
    assert pool.kind == "max" and pool.kernel == (2, 2) and pool.stride == (2, 2)
    assert conv2.padding == (2, 1, 1, 0) and conv2.groups == 2 and conv2.relu
    assert [li.out_shape for li in net] == [
        Shape(8, 32, 32),
        Shape(8, 16, 16),
        Shape(16, 17, 15),
        Shape(16, 1, 1),
        Shape(16, 1, 1),
        Shape(10, 1, 1),
    ]
    np.testing.assert_array_equal(conv1.weight, model.conv1.weight.detach().numpy())
    np.testing.assert_array_equal(conv1.bias_value, model.conv1.bias.detach().numpy())
    np.testing.assert_array_equal(conv2.weight, model.conv2.weight.detach().numpy())
    np.testing.assert_array_equal(fc.weight, model.fc.weight.detach().numpy())
    np.testing.assert_array_equal(fc.bias_value, model.fc.bias.detach().numpy())
    assert net.is_chain and net.has_weights
    assert any("folded Pad" in n for n in result.notes)


class ViewNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        return torch.softmax(self.fc(x.view(x.size(0), -1)), dim=1)


def test_dynamic_batch_view_flatten_and_final_softmax(tmp_path: Path) -> None:
    """``x.view(x.size(0), -1)`` with a symbolic batch exports as Shape/Gather/Concat/Reshape."""
    model = ViewNet()
    path = export(model, (2, 1, 8, 8), tmp_path / "view.onnx", dynamic_axes={"input": {0: "N"}})
    result = load_onnx(path)
    net = result.network
    assert [li.layer.op for li in net] == ["conv", "flatten", "fc"]
    assert net.output == Shape(3, 1, 1)
    assert any(n.startswith("dropped final Softmax") for n in result.notes)
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        logits = model.fc(torch.relu(model.conv(x)).reshape(1, -1))
        torch.testing.assert_close(run_ir(net, x), logits, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------ batch norm


def _randomize_bn(bn: nn.modules.batchnorm._BatchNorm) -> None:
    g = torch.Generator().manual_seed(bn.num_features)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(bn.num_features, generator=g))
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=g))
        bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.2)


@pytest.mark.parametrize("conv_bias", [False, True])
def test_batchnorm_folded_into_conv(tmp_path: Path, conv_bias: bool) -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=conv_bias),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 4, 3, stride=2),
        nn.BatchNorm2d(4),
    ).eval()
    for m in model:
        if isinstance(m, nn.BatchNorm2d):
            _randomize_bn(m)
    # without constant folding torch keeps the BatchNormalization nodes for us to fold
    path = export(model, (1, 3, 12, 12), tmp_path / "bn.onnx", do_constant_folding=False)
    result = load_onnx(path)
    net = result.network
    assert [type(li.layer) for li in net] == [Conv, Conv]
    first, second = net.layers
    assert first.bias and first.relu and second.bias and not second.relu
    assert sum("folded BatchNormalization" in n for n in result.notes) == 2
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        y = model(x)
        w1, b1 = torch.from_numpy(first.weight), torch.from_numpy(first.bias_value)
        w2, b2 = torch.from_numpy(second.weight), torch.from_numpy(second.bias_value)
        ours = F.conv2d(torch.relu(F.conv2d(x, w1, b1, padding=1)), w2, b2, stride=2)
    torch.testing.assert_close(ours, y, atol=1e-5, rtol=1e-5)


def test_batchnorm_folded_into_dense(tmp_path: Path) -> None:
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)
    ).eval()
    _randomize_bn(model[2])
    path = export(model, (1, 3, 2, 2), tmp_path / "bn1d.onnx", do_constant_folding=False)
    result = load_onnx(path)
    net = result.network
    assert [li.layer.op for li in net] == ["flatten", "fc", "fc"]
    assert net.layers[1].relu
    x = torch.randn(1, 3, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(run_ir(net, x), model(x), atol=1e-5, rtol=1e-5)


# -------------------------------------------------------------------------- classic CNNs


def alexnet_style() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(8, 12, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(12, 16, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(16, 12, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Dropout(),
        nn.Linear(12 * 6 * 6, 64),
        nn.ReLU(inplace=True),
        nn.Dropout(),
        nn.Linear(64, 64),
        nn.ReLU(inplace=True),
        nn.Linear(64, 10),
    )


def vgg_style() -> nn.Module:
    layers: list[nn.Module] = []
    c = 3
    for out, convs in ((8, 2), (16, 2), (16, 3)):
        for _ in range(convs):
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU()]
            c = out
        layers.append(nn.MaxPool2d(2, 2))
    layers += [nn.Flatten(), nn.Linear(16 * 8 * 8, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, 32), nn.ReLU()]
    layers += [nn.Linear(32, 10)]
    return nn.Sequential(*layers)


def zfnet_style() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 7, stride=2, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, padding=1),
        nn.Conv2d(8, 16, 5, stride=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, padding=1),
        nn.Conv2d(16, 24, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(24, 24, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(24, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(16 * 6 * 6, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )


@pytest.mark.parametrize(
    ("build", "shape", "kinds"),
    [
        (alexnet_style, (1, 3, 224, 224), "CMCMCCCMFDDD"),
        (vgg_style, (1, 3, 64, 64), "CCMCCMCCCMFDDD"),
        (zfnet_style, (1, 3, 224, 224), "CMCMCCCMFDD"),
    ],
    ids=["alexnet", "vgg", "zfnet"],
)
def test_classic_cnns_load(tmp_path: Path, build, shape: tuple[int, ...], kinds: str) -> None:
    torch.manual_seed(0)
    model = build().eval()
    result = check_against_torch(model, shape, tmp_path / "net.onnx")
    letter = {Conv: "C", Pool: "M", Flatten: "F", Dense: "D"}
    net = result.network
    assert "".join(letter[type(li.layer)] for li in net) == kinds
    assert net.is_chain and net.has_weights
    relus = [li.layer.relu for li in net if isinstance(li.layer, (Conv, Dense))]
    assert all(relus[:-1]) and not relus[-1]


# ----------------------------------------------------------------------- branches: host ops


class ResBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        y = self.conv2(torch.relu(self.conv1(x)))
        x = torch.relu(x + y)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def test_resnet_block_adds_on_the_fpga(tmp_path: Path) -> None:
    """The residual Add (and the ReLU after it) is an IR layer, not a host operator."""
    model = ResBlock().eval()
    path = export(model, (1, 3, 16, 16), tmp_path / "res.onnx")
    result = load_onnx(path)
    net = result.network
    assert not net.is_chain
    assert [li.layer.op for li in net] == ["conv", "conv", "conv", "add", "gap", "flatten", "fc"]
    stem, conv1, conv2, add = net.layers[:4]
    assert stem.relu and conv1.relu and not conv2.relu  # stem's output has two readers, still fused
    assert isinstance(add, Add) and add.relu and net[add.name].out_shape == Shape(8, 16, 16)
    assert set(add.inputs) == {stem.name, conv2.name}
    assert conv1.inputs == () and conv2.inputs == ()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(run_ir(net, x), model(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            torch.from_numpy(run_float(net, x.numpy())), model(x), atol=1e-5, rtol=1e-5
        )


def test_an_add_that_broadcasts_is_a_host_layer() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="c1"),
        helper.make_node("GlobalAveragePool", ["a"], ["g"], name="gap"),
        helper.make_node("Add", ["a", "g"], ["y"], name="add"),
    ]
    model = make_model(nodes, [vi("x", [1, 2, 5, 5])], [vi("y", [1, 3, 3, 3])], {"w": rand(3, 2, 3, 3)})
    with pytest.raises(FnasError, match=r"'Add' at node 'add'.*broadcasts"):
        network_from_model(model, "b")
    net = network_from_model(model, "b", allow_host_ops=True).network
    assert isinstance(net.layers[-1], HostOp) and net.layers[-1].op_type == "Add"


def test_layer_reading_an_earlier_layer_names_it() -> None:
    """Two convs read the same tensor: the second names its producer in ``inputs``."""
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], name="c0"),
        helper.make_node("Conv", ["a", "w1"], ["b"], name="c1"),
        helper.make_node("Conv", ["a", "w1"], ["c"], name="c2"),
        helper.make_node("Concat", ["b", "c"], ["y"], name="cat", axis=1),
    ]
    inits = {"w0": rand(4, 2, 1, 1), "w1": rand(4, 4, 3, 3)}
    model = make_model(nodes, [vi("x", [1, 2, 6, 6])], [vi("y", [1, 8, 4, 4])], inits)
    net = network_from_model(model, "branch.onnx", allow_host_ops=True).network
    assert [li.name for li in net] == ["c0", "c1", "c2", "cat"]
    assert net["c1"].layer.inputs == () and net["c2"].layer.inputs == ("c0",)
    assert net["cat"].layer.inputs == ("c1", "c2") and net.output == Shape(8, 4, 4)
    assert not net.layers[0].relu


# ------------------------------------------------------------------- hand-built graphs


def _fc_graph(extra: list[onnx.NodeProto], last: str, **kw) -> onnx.ModelProto:
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1), *extra]
    inits = {"w": rand(5, 6), "b": rand(5)}
    return make_model(nodes, [vi("x", ["N", 6])], [vi(last, ["N", 5])], inits, **kw)


def test_dropout_and_identity_are_dropped() -> None:
    extra = [
        helper.make_node("Dropout", ["h"], ["d"], name="drop"),
        helper.make_node("Identity", ["d"], ["i"], name="ident"),
        helper.make_node("Relu", ["i"], ["y"], name="act"),
    ]
    result = network_from_model(_fc_graph(extra, "y"), "m.onnx")
    assert [li.layer.op for li in result.network] == ["fc"]
    assert result.network.layers[0].relu
    assert result.network.input == Shape(6, 1, 1)
    assert "dropped Dropout 'drop'" in result.notes and "dropped Identity 'ident'" in result.notes


def test_final_softmax_dropped_but_not_a_middle_one() -> None:
    result = network_from_model(_fc_graph([helper.make_node("Softmax", ["h"], ["y"], name="prob")], "y"), "m")
    assert "dropped final Softmax 'prob'" in result.notes
    assert len(result.network.layers) == 1
    middle = [
        helper.make_node("Softmax", ["h"], ["s"], name="prob"),
        helper.make_node("Relu", ["s"], ["y"], name="act"),
    ]
    with pytest.raises(FnasError, match=r"m\.onnx: unsupported ONNX operator 'Softmax' at node 'prob'"):
        network_from_model(_fc_graph(middle, "y"), "m.onnx")


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_weight_is_out_by_in(trans_b: int) -> None:
    w = rand(4, 6)  # (out, in)
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=trans_b)
    inits = {"w": w if trans_b else w.T.copy(), "b": rand(4)}
    net = network_from_model(make_model([node], [vi("x", [1, 6])], [vi("y", [1, 4])], inits), "g").network
    np.testing.assert_array_equal(net.layers[0].weight, w)
    assert net.layers[0].name == "gemm_0"


def test_gemm_alpha_is_an_error() -> None:
    node = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", alpha=2.0, transB=1)
    model = make_model([node], [vi("x", [1, 6])], [vi("y", [1, 4])], {"w": rand(4, 6)})
    with pytest.raises(FnasError, match=r"node 'fc' \(Gemm\): alpha=2"):
        network_from_model(model, "g")


def test_matmul_add_becomes_dense_with_bias() -> None:
    w, b = rand(6, 4), rand(4)  # MatMul weight is (in, out)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "b"], ["y"], name="bias"),
    ]
    model = make_model(nodes, [vi("x", [1, 6])], [vi("y", [1, 4])], {"w": w, "b": b})
    result = network_from_model(model, "mm.onnx")
    (layer,) = result.network.layers
    assert isinstance(layer, Dense) and layer.bias and layer.out == 4
    np.testing.assert_array_equal(layer.weight, w.T)
    np.testing.assert_array_equal(layer.bias_value, b)
    assert "folded Add 'bias' into fc 'mm' as its bias" in result.notes


def test_clip_zero_inf_is_relu_and_relu6_a_clip() -> None:
    def model(hi: float | None) -> onnx.ModelProto:
        clip_in = ["h", "lo"] + (["hi"] if hi is not None else [])
        extra = [helper.make_node("Clip", clip_in, ["y"], name="clip")]
        m = _fc_graph(extra, "y")
        m.graph.initializer.append(numpy_helper.from_array(np.array(0, np.float32), "lo"))
        if hi is not None:
            m.graph.initializer.append(numpy_helper.from_array(np.array(hi, np.float32), "hi"))
        return m

    assert network_from_model(model(None), "c").network.layers[0].relu
    assert network_from_model(model(np.inf), "c").network.layers[0].relu
    layer = network_from_model(model(6.0), "c").network.layers[0]
    assert not layer.relu and str(layer.act) == "clip(0, 6)"


def _conv_model(**attrs) -> onnx.ModelProto:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs)
    return make_model([node], [vi("x", [1, 2, 9, 9])], [vi("y", None)], {"w": rand(4, 2, 3, 3)})


def test_conv_auto_pad_and_asymmetric_pads() -> None:
    net = network_from_model(_conv_model(auto_pad="SAME_UPPER", strides=[2, 2]), "c").network
    assert net.layers[0].padding == (1, 1, 1, 1) and net.output == Shape(4, 5, 5)
    net = network_from_model(_conv_model(pads=[0, 1, 2, 3]), "c").network
    assert net.layers[0].padding == (0, 1, 2, 3) and net.output == Shape(4, 9, 11)
    net = network_from_model(_conv_model(auto_pad="SAME_LOWER", strides=[2, 2], kernel_shape=[3, 3]), "c")
    assert net.network.output == Shape(4, 5, 5)


def test_dilated_conv_is_an_error() -> None:
    with pytest.raises(FnasError, match=r"c: node 'c' \(Conv\): dilations \[2, 2\] are not supported"):
        network_from_model(_conv_model(dilations=[2, 2]), "c")


def _pool_model(op: str, **attrs) -> onnx.ModelProto:
    node = helper.make_node(op, ["x"], ["y"], name="p", **attrs)
    return make_model([node], [vi("x", [1, 2, 8, 8])], [vi("y", None)])


def test_pooling_modes() -> None:
    net = network_from_model(
        _pool_model("AveragePool", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1), "p"
    )
    assert net.network.layers[0] == Pool("p", "avg", (3, 3), (1, 1), (1, 1, 1, 1))
    # ONNX's default count_include_pad=0: padding left out of each window's count, on the FPGA
    no_pad_count = _pool_model("AveragePool", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    layer = network_from_model(no_pad_count, "p").network.layers[0]
    assert layer == Pool("p", "avg", (3, 3), (1, 1), (1, 1, 1, 1), count_pad=False)
    net = network_from_model(_pool_model("MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1), "p")
    assert net.network.output == Shape(2, 4, 4)  # ceil equals floor here
    with pytest.raises(FnasError, match=r"node 'p' \(MaxPool\): ceil_mode=1 gives a 4x4 output"):
        network_from_model(_pool_model("MaxPool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), "p")
    net = network_from_model(_pool_model("GlobalMaxPool"), "p").network
    assert net.layers[0] == Pool("p", "max", (8, 8), (8, 8))


def test_unnamed_and_duplicate_nodes_get_op_index_names() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="same"),
        helper.make_node("MaxPool", ["a"], ["b"], name="same", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["b"], ["c"]),
        helper.make_node("Gemm", ["c", "fw"], ["y"], name="pool_1", transB=1),
    ]
    inits = {"w": rand(3, 1, 3, 3), "fw": rand(2, 12)}
    model = make_model(nodes, [vi("x", [1, 1, 6, 6])], [vi("y", [1, 2])], inits)
    net = network_from_model(model, "n").network
    assert [li.name for li in net] == ["conv_0", "maxpool_1", "flatten_2", "pool_1"]


def test_unknown_operator_without_shape_cannot_be_a_host_layer() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="c"),
        helper.make_node("Mystery", ["a"], ["y"], name="odd", domain="acme"),
    ]
    model = make_model(nodes, [vi("x", [1, 1, 6, 6])], [vi("y", None)], {"w": rand(3, 1, 3, 3)})
    with pytest.raises(FnasError, match=r"unsupported ONNX operator 'acme.Mystery' at node 'odd'"):
        network_from_model(model, "u")
    with pytest.raises(
        FnasError, match=r"node 'odd' \(Mystery\): the shape of its output 'y' cannot be inferred"
    ):
        network_from_model(model, "u", allow_host_ops=True)


def test_two_inputs_are_an_error() -> None:
    node = helper.make_node("Add", ["x", "z"], ["y"], name="add")
    model = make_model([node], [vi("x", [1, 4]), vi("z", [1, 4])], [vi("y", [1, 4])])
    with pytest.raises(FnasError, match=r"two: the model has 2 inputs \('x', 'z'\)"):
        network_from_model(model, "two")


# -------------------------------------------------------------------- files and weights


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FnasError, match=r"nope\.onnx: ONNX file not found"):
        load_onnx(tmp_path / "nope.onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n" * 10)
    with pytest.raises(FnasError, match=r"notes\.onnx: not an ONNX model"):
        load_onnx(text)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(FnasError, match=r"junk\.onnx: not an ONNX model"):
        load_onnx(junk)
    with pytest.raises(FnasError, match="is a folder"):
        load_onnx(tmp_path)


def _stripped(path: Path, keep_shapes: bool) -> onnx.ModelProto:
    model = onnx.load(str(path))
    inits = list(model.graph.initializer)
    del model.graph.initializer[:]
    if keep_shapes:
        model.graph.input.extend(vi(t.name, list(t.dims)) for t in inits)
    return model


def test_model_without_weights(tmp_path: Path) -> None:
    path = export(SmallCNN(), (1, 3, 32, 32), tmp_path / "small.onnx")
    full = load_onnx(path).network
    net = network_from_model(_stripped(path, keep_shapes=True), "bare.onnx").network
    assert not net.has_weights
    assert [li.out_shape for li in net] == [li.out_shape for li in full]
    assert net.macs == full.macs and net.params == full.params
    with pytest.raises(
        FnasError, match=r"bare\.onnx: node '/conv1/Conv' \(Conv\): weight 'conv1.weight' is neither"
    ):
        network_from_model(_stripped(path, keep_shapes=False), "bare.onnx")


def test_external_weights(tmp_path: Path) -> None:
    model = SmallCNN()
    path = export(model, (1, 3, 32, 32), tmp_path / "ext.onnx")
    proto = onnx.load(str(path))
    onnx.save_model(proto, str(path), save_as_external_data=True, location="ext.bin", size_threshold=0)
    net = load_onnx(path).network
    assert net.has_weights
    np.testing.assert_array_equal(net.layers[0].weight, model.conv1.weight.detach().numpy())

    (tmp_path / "ext.bin").unlink()
    result = load_onnx(path)
    assert not result.network.has_weights
    assert result.network.macs == net.macs
    assert any("'ext.bin' is missing" in n for n in result.notes)


def test_external_weights_outside_the_folder_are_refused(tmp_path: Path) -> None:
    path = export(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), (1, 4, 1, 1), tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    onnx.save_model(proto, str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    proto = onnx.load(str(path), load_external_data=False)
    for t in proto.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = "../../etc/passwd"
    onnx.save_model(proto, str(path))
    with pytest.raises(FnasError, match="outside the model's folder"):
        load_onnx(path)


def test_branches_at_the_input_name_the_network_input() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="c1"),
        helper.make_node("Conv", ["x", "w"], ["b"], name="c2"),
        helper.make_node("Concat", ["a", "b"], ["y"], name="cat", axis=1),
    ]
    model = make_model(nodes, [vi("x", [1, 2, 5, 5])], [vi("y", [1, 6, 3, 3])], {"w": rand(3, 2, 3, 3)})
    result = network_from_model(model, "b")  # a channel Concat is an IR layer: no host operator
    net = result.network
    assert [li.name for li in net] == ["c1", "c2", "cat"]
    assert isinstance(net["cat"].layer, Concat) and net.output == Shape(6, 3, 3)
    assert net["c1"].layer.inputs == () and net["c2"].layer.inputs == (INPUT,)
    assert net["c2"].in_shape == Shape(2, 5, 5)
    assert net["cat"].layer.inputs == ("c1", "c2") and net.output == Shape(6, 3, 3)
    assert not net.is_chain


def _after_conv(op: str, inputs: list[str], inits: dict[str, np.ndarray], out_dims: list, **attrs):
    """x -> Conv 'c' -> ``op`` 'bad' -> y."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="c")]
    nodes.append(helper.make_node(op, inputs, ["y"], name="bad", **attrs))
    inits = {"w": rand(4, 1, 3, 3), **inits}
    return make_model(nodes, [vi("x", [1, 1, 6, 6])], [vi("y", out_dims)], inits)


@pytest.mark.parametrize(
    ("op", "inputs", "inits", "out_dims", "attrs"),
    [
        ("Reshape", ["a", "s"], {"s": np.array([1, 4, 2, 8])}, [1, 4, 2, 8], {}),
        ("Pad", ["a", "p"], {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1])}, [1, 4, 6, 6], {"mode": "reflect"}),
        ("Concat", ["a", "a"], {}, [1, 4, 4, 8], {"axis": 3}),
        ("Softplus", ["a"], {}, [1, 4, 4, 4], {}),
        ("Flatten", ["a"], {}, [4, 16], {"axis": 0}),
    ],
    ids=["reshape4d", "reflect-pad", "concat-width", "softplus", "flatten-axis0"],
)
def test_unsupported_forms_name_op_and_node(op, inputs, inits, out_dims, attrs) -> None:
    model = _after_conv(op, inputs, inits, out_dims, **attrs)
    with pytest.raises(FnasError, match=rf"u\.onnx: unsupported ONNX operator '{op}' at node 'bad'"):
        network_from_model(model, "u.onnx")
    if op != "Flatten":  # a [4, 16] output is no [N, C] feature map
        net = network_from_model(model, "u.onnx", allow_host_ops=True).network
        last = net.layers[-1]
        assert isinstance(last, HostOp) and (last.name, last.op_type) == ("bad", op)
        assert net.output.size == math.prod(out_dims[1:])


def test_relu_that_cannot_fuse_and_batchnorm_after_no_conv() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="c"),
        helper.make_node("GlobalAveragePool", ["a"], ["g"], name="gap"),
        helper.make_node("Relu", ["g"], ["y"], name="act"),
    ]
    model = make_model(nodes, [vi("x", [1, 1, 6, 6])], [vi("y", None)], {"w": rand(4, 1, 3, 3)})
    with pytest.raises(FnasError, match=r"'Relu' at node 'act' \(a ReLU is fused into the Conv"):
        network_from_model(model, "r")
    stats = {k: np.ones(4, np.float32) for k in ("s", "b", "m", "v")}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="c"),
        helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[2, 2]),
        helper.make_node("BatchNormalization", ["p", "s", "b", "m", "v"], ["y"], name="bn"),
    ]
    model = make_model(nodes, [vi("x", [1, 1, 6, 6])], [vi("y", None)], {"w": rand(4, 1, 3, 3), **stats})
    result = network_from_model(model, "r")  # after a pooling: a 1x1 depthwise conv of its own
    bn = result.network.layers[-1]
    assert isinstance(bn, Conv) and (bn.groups, bn.out, bn.kernel) == (4, 4, (1, 1))
    np.testing.assert_allclose(bn.weight.ravel(), 1 / np.sqrt(1 + 1e-5), rtol=1e-6)
    assert any("follows no conv" in n for n in result.notes)


def test_a_large_constant_of_shape_weight_loads_as_a_shape() -> None:
    """Model-zoo chains (AlexNet, VGG) fill their weights with ConstantOfShape: the shape is kept,
    never materialised, and the layer it feeds loads without weights."""
    big = [64, 300_000]  # 19.2 M elements, over what the importer evaluates
    nodes = [
        helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array(big, np.int64))),
        helper.make_node("ConstantOfShape", ["shape"], ["w"], name="fill"),
        helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1),
    ]
    result = network_from_model(make_model(nodes, [vi("x", [1, 300_000])], [vi("y", [1, 64])]), "m")
    (layer,) = result.network.layers
    assert isinstance(layer, Dense) and layer.out == 64 and layer.weight is None
    assert any("ConstantOfShape node(s) too large to evaluate (first: 'fill')" in n for n in result.notes)


def _shuffle_model(groups: int, perm: list[int]) -> onnx.ModelProto:
    c, h = 8, 4
    nodes = [
        helper.make_node("Reshape", ["x", "s5"], ["r5"], name="split"),
        helper.make_node("Transpose", ["r5"], ["t5"], name="swap", perm=perm),
        helper.make_node("Reshape", ["t5", "s4"], ["r4"], name="merge"),
        helper.make_node("Conv", ["r4", "w"], ["y"], name="c"),
    ]
    inits = {
        "s5": np.array([1, groups, c // groups, h, h], np.int64),
        "s4": np.array([1, c, h, h], np.int64),
        "w": rand(3, c, 1, 1),
    }
    return make_model(nodes, [vi("x", [1, c, h, h])], [vi("y", [1, 3, h, h])], inits)


def test_a_channel_shuffle_is_one_host_layer() -> None:
    result = network_from_model(_shuffle_model(2, [0, 2, 1, 3, 4]), "m", allow_host_ops=True)
    shuffle, conv = result.network.layers
    assert shuffle == HostOp("split", "ChannelShuffle", Shape(8, 4, 4)) and isinstance(conv, Conv)
    assert result.network.output == Shape(3, 4, 4)
    with pytest.raises(FnasError, match=r"'Reshape' at node 'split' \(a channel shuffle in 2 groups"):
        network_from_model(_shuffle_model(2, [0, 2, 1, 3, 4]), "m")
    # another transpose is not a shuffle: the 5-D reshape cannot be a host layer, as before
    with pytest.raises(FnasError, match=r"node 'split' \(Reshape\): the shape of its output"):
        network_from_model(_shuffle_model(2, [0, 1, 2, 4, 3]), "m", allow_host_ops=True)


_LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
_ZOO = ("bvlc_alexnet", "vgg19", "zfnet512", "resnet50", "squeezenet", "densenet121")
_ZOO += ("inception_v1", "inception_v2", "shufflenet")


@pytest.mark.parametrize("name", _ZOO)
def test_the_onnx_model_zoo_graphs_load_with_host_ops(name: str) -> None:
    """The onnx wheel's nine light model-zoo graphs: each loads, shapes only, no operator an error."""
    path = _LIGHT / f"light_{name}.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is not in this onnx wheel")
    net = load_onnx(path, allow_host_ops=True).network
    fpga = [li for li in net if not isinstance(li.layer, HostOp)]
    assert len(fpga) >= 10 and net.output.size == 1000  # ImageNet classes
    if name == "vgg19":  # a plain chain: it also loads without host operators
        assert not any(isinstance(li.layer, HostOp) for li in load_onnx(path).network)
    if name in ("bvlc_alexnet", "zfnet512"):  # chains but for LRN
        with pytest.raises(FnasError, match="unsupported ONNX operator 'LRN'"):
            load_onnx(path)


@pytest.mark.parametrize("allow", [False, True])
def test_control_flow_is_one_line_naming_node_and_op(allow: bool) -> None:
    branch = helper.make_graph(
        [helper.make_node("Relu", ["r"], ["b"])], "branch", [], [vi("b", [1, 2, 4, 4])]
    )
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["r"], name="conv"),
        helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["cond"], ["y"], name="choose", then_branch=branch, else_branch=branch),
    ]
    model = make_model(nodes, [vi("x", [1, 2, 4, 4])], [vi("y", [1, 2, 4, 4])], {"w": rand(2, 2, 1, 1)})
    with pytest.raises(FnasError, match=r"^m: node 'choose' \(If\): control flow runs neither on the FPGA"):
        network_from_model(model, "m", allow_host_ops=allow)


def test_the_readme_lists_every_supported_operator():
    """The README's table of ONNX operators is the importer's own list, no more and no less."""
    from pathlib import Path

    from fnas_hls.network.onnx_frontend import SUPPORTED_OPS

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("| ONNX operator | becomes |")
    rows = readme[start:].split("\n\n")[0].splitlines()[2:]
    listed = {op.strip() for row in rows for op in row.split("|")[1].split(",")}
    assert listed == set(SUPPORTED_OPS)
