"""Handlers of Add, Sum and Concat: merges of computed tensors, and a constant bias Add folded into the
Conv or Dense before it."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import onnx

from fnas_hls.network.ir import Add, Concat, Conv, Dense, Scale
from fnas_hls.network.onnx_import.ops_common import _weights
from fnas_hls.network.onnx_import.reading import _attrs
from fnas_hls.network.onnx_import.walk import _HostOnly, _Importer, _Value


def _add(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    data = [i for i, t in enumerate(node.input[:2]) if t in imp.values]
    if len(data) == 2 and len(node.input) == 2:
        _sum(imp, node, name)
        return
    if len(data) != 1 or len(node.input) != 2:
        raise _HostOnly("only two computed tensors, or a constant bias after a Conv or MatMul, are added")
    tensor = node.input[data[0]]
    x = imp.values[tensor]
    c = imp.param(node, name, 1 - data[0], "bias")
    index = imp.fusable(tensor, x, (Conv, Dense))
    layer = None if index is None else imp.layers[index]
    ok_shapes: tuple[tuple[int, ...], ...] = ()
    if isinstance(layer, Conv):
        ok_shapes = ((layer.out, 1, 1), (1, layer.out, 1, 1))
    elif isinstance(layer, Dense):
        ok_shapes = ((layer.out,), (1, layer.out))
    per_channel = c is not None and c.shape is not None and (c.shape in ok_shapes or math.prod(c.shape) == 1)
    if index is None or c is None or not isinstance(layer, (Conv, Dense)) or layer.relu or not per_channel:
        raise _HostOnly("only a constant per-channel bias right after a Conv or MatMul is folded")
    bias = None
    if c.value is not None and layer.weight is not None:
        old = np.zeros(layer.out) if layer.bias_value is None else layer.bias_value
        bias = old + np.broadcast_to(np.ravel(c.value), (layer.out,))
    weight, bias = _weights(layer.weight, bias, True)
    imp.layers[index] = replace(layer, bias=True, weight=weight, bias_value=bias)
    imp.note(f"folded Add '{name}' into {layer.op} '{layer.name}' as its bias")
    imp.produce(node.output[0], x)


def _merge_inputs(imp: _Importer, node: onnx.NodeProto, name: str) -> list[_Value]:
    """The computed tensors a Sum/Add/Concat reads (two or more, none padded, no constant)."""
    ins = [t for t in node.input if t]
    if len(ins) < 2 or any(t not in imp.values for t in ins):
        raise _HostOnly("it reads a constant or fewer than two computed tensors")
    values = [imp.values[t] for t in ins]
    if any(v.pad is not None for v in values) or len({v.rank for v in values}) != 1:
        raise _HostOnly("it reads a padded tensor or tensors of different ranks")
    return values


def _sum(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    """Sum, or Add of two computed tensors: a residual connection, on the FPGA when shapes agree."""
    values = _merge_inputs(imp, node, name)
    if any(v.shape != values[0].shape for v in values):
        raise _HostOnly(
            f"it broadcasts ({', '.join(str(v.shape) for v in values)}); only equal shapes are added"
        )
    imp.add_layer(node, Add(name), values, node.output[0], values[0].rank)


def _concat(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    values = _merge_inputs(imp, node, name)
    rank = values[0].rank
    axis = int(_attrs(node).get("axis", 1))
    if axis % rank != 1:
        raise _HostOnly(f"it concatenates along axis {axis}; only channels (axis 1) are supported")
    imp.add_layer(node, Concat(name), values, node.output[0], rank)


def _mul(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    """A map times a computed vector of one value per channel (squeeze-and-excitation's scale).
    (``x * Sigmoid(x)`` and ``x * HardSigmoid(x)`` are taken at their Sigmoid, as SiLU and
    hard-swish.)"""
    ins = [t for t in node.input if t]
    if len(ins) != 2 or any(t not in imp.values for t in ins):
        raise _HostOnly("only a map times a computed vector of one value per channel is supported")
    a, b = (imp.values[t] for t in ins)
    if any(v.pad is not None or v.relu for v in (a, b)):
        raise _HostOnly("it reads a padded tensor")
    for x, s in ((a, b), (b, a)):
        vector = s.shape.h == 1 and s.shape.w == 1 and s.shape.c == x.shape.c
        if x.rank == 4 and vector and (x.shape.h, x.shape.w) != (1, 1):
            imp.add_layer(node, Scale(name), [x, s], node.output[0], 4)
            return
    raise _HostOnly(
        f"it multiplies {a.shape} by {b.shape}; only a map times one value per channel (C x 1 x 1) is "
        "supported (squeeze-and-excitation)"
    )
