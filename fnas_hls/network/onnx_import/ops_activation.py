"""Handlers of the activations: each fused into the output stage of the layer right before it.

Relu (and Clip(0, inf)) sets a layer's ``relu``; Clip with other constant bounds, LeakyRelu,
HardSigmoid, HardSwish, Sigmoid and Tanh set its ``act`` (``network.activations``). Two patterns
of two nodes are one activation: ``x * Sigmoid(x)`` is SiLU (torch's export of ``nn.SiLU``) and
``x * HardSigmoid(x)`` with alpha 1/6, beta 1/2 is hard-swish (older exports of ``nn.Hardswish``);
their Mul is then taken at the Sigmoid or HardSigmoid.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import onnx

from fnas_hls.network.activations import Activation
from fnas_hls.network.ir import Add, Conv, Dense, Pool
from fnas_hls.network.onnx_import.reading import _attrs
from fnas_hls.network.onnx_import.walk import _HostOnly, _Importer

#: The layers an activation other than ReLU fuses into (pooling keeps ReLU only).
_ACT_HOSTS = (Conv, Dense, Add)
_WHERE = "the Conv, Gemm/MatMul or residual Add right before it, when nothing else reads that layer's output"


def _relu(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    """A ReLU fuses into the layer before it; failing that (that layer's output has other readers,
    or it is the network input), into the input read of the convolutions after it (ReLU-Conv)."""
    x = imp.data(node, name)
    index = imp.fusable(node.input[0], x, (Conv, Dense, Pool, Add))
    if index is not None and getattr(imp.layers[index], "act", None) is None:
        imp.layers[index] = replace(imp.layers[index], relu=True)
        imp.produce(node.output[0], x)
        return
    out = node.output[0]
    readers = imp.readers.get(out, [])
    if readers and out not in imp.outputs and all(r.op_type == "Conv" and r.input[0] == out for r in readers):
        imp.values[out] = replace(x, relu=True)
        imp.canon[out] = out
        imp.uses[out] = imp.refs.get(out, 0)
        return
    raise _HostOnly(
        "a ReLU is fused into the Conv, Gemm/MatMul, pooling or residual Add right before it, when "
        "nothing else reads that layer's output, or into the input of the Convs that alone read it"
    )


def _fuse(imp: _Importer, node: onnx.NodeProto, name: str, act: Activation) -> None:
    """``act`` into the layer that produces the node's input (which nothing else reads)."""
    x = imp.data(node, name)
    index = imp.fusable(node.input[0], x, _ACT_HOSTS)
    layer = None if index is None else imp.layers[index]
    if layer is None or layer.relu or layer.act is not None:
        raise _HostOnly(f"{act} is fused only into {_WHERE} and has no activation yet")
    imp.layers[index] = replace(layer, act=act)
    imp.produce(node.output[0], x)


def _clip(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    a = _attrs(node)
    if "min" in a or "max" in a:  # opset < 11
        lo, hi = a.get("min", -math.inf), a.get("max", math.inf)
    else:
        lo_v = imp.value_of(node, name, 1, "min")
        hi_v = imp.value_of(node, name, 2, "max")
        lo = -math.inf if lo_v is None else float(np.ravel(lo_v)[0])
        hi = math.inf if hi_v is None else float(np.ravel(hi_v)[0])
    if hi >= np.finfo(np.float32).max:  # old exporters write float32's largest value for "none"
        hi = math.inf
    if lo <= -np.finfo(np.float32).max:
        lo = -math.inf
    if lo == 0 and hi == math.inf:
        _relu(imp, node, name)
        return
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise _HostOnly(
            f"Clip({lo:g}, {hi:g}); a Clip needs finite constant bounds lo < hi, or lo 0 (a ReLU)"
        )
    _fuse(imp, node, name, Activation("clip", lo=lo, hi=hi))


def _leaky_relu(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _fuse(imp, node, name, Activation("leaky_relu", alpha=float(_attrs(node).get("alpha", 0.01))))


def _hard_swish(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _fuse(imp, node, name, Activation("hard_swish"))


def _tanh(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _fuse(imp, node, name, Activation("tanh"))


def _self_gated(imp: _Importer, node: onnx.NodeProto) -> onnx.NodeProto | None:
    """The Mul of ``x * f(x)`` when ``node`` is the f (its one reader multiplies it by its input)."""
    readers = imp.readers.get(node.output[0], [])
    if len(readers) != 1 or node.output[0] in imp.outputs:
        return None
    mul = readers[0]
    if mul.op_type != "Mul" or mul.domain not in ("", "ai.onnx") or len(mul.input) != 2:
        return None
    return mul if set(mul.input) == {node.input[0], node.output[0]} else None


def _fuse_gated(
    imp: _Importer, node: onnx.NodeProto, name: str, mul: onnx.NodeProto, act: Activation
) -> None:
    """``x * f(x)`` into the layer that produces ``x``, which only f and the Mul read."""
    x = imp.data(node, name)
    tensor = node.input[0]
    ok = x.producer >= 0 and x.pad is None and isinstance(imp.layers[x.producer], _ACT_HOSTS)
    layer = imp.layers[x.producer] if ok else None
    if layer is None or imp.uses[imp.canon[tensor]] != 2 or layer.relu or layer.act is not None:
        raise _HostOnly(f"{act} (x * {node.op_type}(x)) is fused only into {_WHERE} but the two nodes")
    imp.layers[x.producer] = replace(layer, act=act)
    imp.done.add(id(mul))
    imp.produce(mul.output[0], x)


def _sigmoid(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    mul = _self_gated(imp, node)
    if mul is not None:
        _fuse_gated(imp, node, name, mul, Activation("silu"))
    else:
        _fuse(imp, node, name, Activation("sigmoid"))


def _hard_sigmoid(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    a = _attrs(node)
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    mul = _self_gated(imp, node)
    if mul is not None and math.isclose(alpha, 1 / 6, rel_tol=1e-6) and beta == 0.5:
        _fuse_gated(imp, node, name, mul, Activation("hard_swish"))
    else:
        _fuse(imp, node, name, Activation("hard_sigmoid", alpha=alpha, beta=beta))
