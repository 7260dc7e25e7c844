"""Handlers of the layers with weights: Conv, Gemm and MatMul (through ``_dense``), and
BatchNormalization, folded into the Conv or Dense before it."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import onnx

from fnas_hls.network.ir import Conv, Dense
from fnas_hls.network.onnx_import.ops_common import _as_2d, _need_rank, _pair, _plus, _weights, _window
from fnas_hls.network.onnx_import.reading import _attrs
from fnas_hls.network.onnx_import.walk import _Const, _HostOnly, _Importer, _Value


def _out_channels(imp: _Importer, node: onnx.NodeProto, name: str, weight: str) -> int:
    """Output channels from the declared output shape, for a layer whose weights are unknown."""
    dims = imp.dims.get(node.output[0])
    if dims and len(dims) >= 2 and dims[1]:
        return dims[1]
    raise imp.error(
        node,
        name,
        f"weight '{weight}' is neither stored in the model nor declared with a shape, "
        "so the layer's size is unknown",
    )


def _conv(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    _need_rank(imp, node, name, x, 4)
    a = _as_2d(_attrs(node), x)
    w = imp.weight(node, name)
    if x.rank == 3 and w.shape is not None and len(w.shape) == 3:  # Conv1d: a (1, K) kernel
        w = _Const(
            (w.shape[0], w.shape[1], 1, w.shape[2]), None if w.value is None else w.value[:, :, None, :]
        )
    b = imp.param(node, name, 2, "bias")
    groups = int(a.get("group", 1))
    if w.shape is not None:
        if len(w.shape) != 4:
            raise imp.error(
                node, name, f"weight has shape {list(w.shape)}; only 2-D convolutions are supported"
            )
        out = w.shape[0]
        kernel = _pair(imp, node, name, a, "kernel_shape", (w.shape[2], w.shape[3]))
        if kernel != (w.shape[2], w.shape[3]):
            raise imp.error(
                node, name, f"kernel_shape {list(kernel)} disagrees with its weight {list(w.shape)}"
            )
        if w.shape[1] * groups != x.shape.c:
            raise imp.error(
                node,
                name,
                f"weight {list(w.shape)} with group={groups} does not fit {x.shape.c} input channels",
            )
    else:
        if "kernel_shape" not in a:
            _out_channels(imp, node, name, node.input[1])  # raises the unknown-size error
            raise imp.error(node, name, "has neither kernel_shape nor a weight of known shape")
        kernel = _pair(imp, node, name, a, "kernel_shape", (1, 1))
        out = _out_channels(imp, node, name, node.input[1])
    if b is not None and b.shape is not None and math.prod(b.shape) != out:
        raise imp.error(node, name, f"bias has shape {list(b.shape)}; expected {out} values")
    stride, pads = _window(imp, node, name, a, x, kernel)
    weight, bias = _weights(w.value, None if b is None else b.value, b is not None)
    if bias is not None:
        bias = bias.reshape(-1)
    layer = Conv(
        name,
        out=out,
        kernel=kernel,
        stride=stride,
        padding=_plus(pads, x.pad),
        groups=groups,
        bias=b is not None,
        weight=weight,
        bias_value=bias,
        in_relu=x.relu,
    )
    imp.add_layer(node, layer, [x], node.output[0], x.rank)


_BN_INPUTS = ("scale", "B", "mean", "var")


def _batchnorm(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    a = _attrs(node)
    if a.get("training_mode", 0) or any(imp.refs.get(t, 0) for t in node.output[1:] if t):
        raise _HostOnly("training-mode BatchNormalization")
    index = imp.fusable(node.input[0], x, (Conv, Dense))
    layer = None if index is None else imp.layers[index]
    fold = index is not None and isinstance(layer, (Conv, Dense)) and not layer.relu and layer.act is None
    channels = layer.out if fold else x.shape.c
    params: list[np.ndarray | None] = []
    for i, what in enumerate(_BN_INPUTS):
        p = imp.param(node, name, i + 1, what)
        if p is None:
            raise imp.error(node, name, f"has no {what} input")
        if p.shape is not None and math.prod(p.shape) != channels:
            raise imp.error(node, name, f"{what} has shape {list(p.shape)}; expected {channels} values")
        params.append(p.value)
    gamma, beta, mean, var = params
    if not fold:
        _batchnorm_layer(imp, node, name, x, params, float(a.get("epsilon", 1e-5)))
        return
    weight = bias = None
    known = layer.weight is not None and all(v is not None for v in (gamma, beta, mean, var))
    if known:
        eps = float(a.get("epsilon", 1e-5))
        scale = np.ravel(gamma).astype(np.float64) / np.sqrt(np.ravel(var).astype(np.float64) + eps)
        w = np.asarray(layer.weight, dtype=np.float64)
        weight = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        b0 = np.zeros(layer.out) if layer.bias_value is None else np.asarray(layer.bias_value, np.float64)
        bias = (b0 - np.ravel(mean)) * scale + np.ravel(beta)
    weight, bias = _weights(weight, bias, True)
    imp.layers[index] = replace(layer, bias=True, weight=weight, bias_value=bias)
    imp.note(f"folded BatchNormalization '{name}' into {layer.op} '{layer.name}'")
    imp.produce(node.output[0], x)


def _batchnorm_layer(
    imp: _Importer, node: onnx.NodeProto, name: str, x: _Value, params: list, eps: float
) -> None:
    """A BatchNormalization after no conv (after an add, a concat, the input): its per-channel scale
    and shift as a layer of its own, a 1x1 depthwise convolution."""
    if x.pad is not None or x.relu or x.rank not in (2, 4):
        raise _HostOnly("a BatchNormalization after a Pad or a pending ReLU is not supported")
    c = x.shape.c
    weight = bias = None
    if all(v is not None for v in params):
        gamma, beta, mean, var = (np.ravel(v).astype(np.float64) for v in params)
        scale = gamma / np.sqrt(var + eps)
        weight, bias = scale.reshape(c, 1, 1, 1), beta - mean * scale
    weight, bias = _weights(weight, bias, True)
    layer = Conv(name, out=c, kernel=(1, 1), groups=c, weight=weight, bias_value=bias)
    imp.add_layer(node, layer, [x], node.output[0], x.rank)
    imp.note(
        f"BatchNormalization '{name}' follows no conv: a 1x1 depthwise conv (a scale and shift per channel)"
    )


def _dense(
    imp: _Importer, node: onnx.NodeProto, name: str, x: _Value, w: _Const, w_is_out_in: bool, b: _Const | None
) -> None:
    """A Dense layer from a weight matrix stored (out, in) or (in, out) and an optional bias."""
    _need_rank(imp, node, name, x, 2)
    weight = None
    if w.shape is not None:
        if len(w.shape) != 2:
            raise imp.error(node, name, f"weight has shape {list(w.shape)}; expected a matrix")
        out, fan_in = w.shape if w_is_out_in else (w.shape[1], w.shape[0])
        if fan_in != x.shape.size:
            raise imp.error(node, name, f"weight {list(w.shape)} does not fit {x.shape.size} input features")
        if w.value is not None:
            weight = w.value if w_is_out_in else w.value.T
    else:
        out = _out_channels(imp, node, name, node.input[1])
    bias = None
    if b is not None:
        if b.shape is not None and math.prod(b.shape) not in (1, out):
            raise imp.error(node, name, f"bias has shape {list(b.shape)}; expected {out} values")
        if b.value is not None:
            bias = np.broadcast_to(np.ravel(b.value), (out,))
    weight, bias = _weights(weight, bias, b is not None)
    layer = Dense(name, out=out, bias=b is not None, weight=weight, bias_value=bias)
    imp.add_layer(node, layer, [x], node.output[0], 2)


def _gemm(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    a = _attrs(node)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if a.get("transA", 0):
        raise imp.error(node, name, "transA=1 is not supported; accepted: transA=0")
    b = imp.param(node, name, 2, "bias")
    if alpha != 1.0 or (beta != 1.0 and b is not None):
        raise imp.error(node, name, f"alpha={alpha:g}, beta={beta:g} are not supported; accepted: 1")
    _dense(imp, node, name, x, imp.weight(node, name), bool(a.get("transB", 0)), b)


def _matmul(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    if len(node.input) < 2 or node.input[1] in imp.values:
        raise _HostOnly("it multiplies two computed tensors; only a constant weight matrix is supported")
    _dense(imp, node, name, x, imp.weight(node, name), False, None)
