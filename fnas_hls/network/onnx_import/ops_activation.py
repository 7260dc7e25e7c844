"""Handlers of Relu and Clip (a ReLU only): fused into the layer before them."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import onnx

from fnas_hls.network.ir import Add, Conv, Dense, Pool
from fnas_hls.network.onnx_import.reading import _attrs
from fnas_hls.network.onnx_import.walk import _HostOnly, _Importer


def _relu(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    index = imp.fusable(node.input[0], x, (Conv, Dense, Pool, Add))
    if index is None:
        raise _HostOnly(
            "a ReLU is fused only into the Conv, Gemm/MatMul, pooling or residual Add right before it, "
            "when nothing else reads that layer's output"
        )
    imp.layers[index] = replace(imp.layers[index], relu=True)
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
    if lo != 0 or hi != math.inf:
        raise _HostOnly(f"Clip({lo:g}, {hi:g}); only Clip(0, inf), a ReLU, is supported")
    _relu(imp, node, name)
