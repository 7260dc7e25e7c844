"""Handlers of pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, and ReduceMean over
height and width."""

from __future__ import annotations

import numpy as np
import onnx

from fnas_hls.network.ir import GlobalAvgPool, Pool
from fnas_hls.network.onnx_import.ops_common import _as_2d, _need_rank, _pair, _plus, _window
from fnas_hls.network.onnx_import.reading import _attrs
from fnas_hls.network.onnx_import.walk import _HostOnly, _Importer, _Value


def _ceil_check(imp: _Importer, node: onnx.NodeProto, name: str, x: _Value, layer: Pool) -> None:
    pt, pl, pb, pr = layer.padding
    spans = (x.shape.h + pt + pb - layer.kernel[0], x.shape.w + pl + pr - layer.kernel[1])
    sizes = [(span // s + 1, -(-span // s) + 1) for span, s in zip(spans, layer.stride, strict=True)]
    if any(f != c for f, c in sizes):
        floor = "x".join(str(f) for f, _ in sizes)
        ceil = "x".join(str(c) for _, c in sizes)
        raise imp.error(
            node,
            name,
            f"ceil_mode=1 gives a {ceil} output where floor mode gives {floor}; accepted: ceil_mode=0",
        )


def _pool(imp: _Importer, node: onnx.NodeProto, name: str, kind: str) -> None:
    x = imp.data(node, name)
    _need_rank(imp, node, name, x, 4)
    a = _as_2d(_attrs(node), x)
    if any(imp.refs.get(t, 0) for t in node.output[1:] if t):
        raise _HostOnly("its Indices output is used")
    if "kernel_shape" not in a:
        raise imp.error(node, name, "has no kernel_shape")
    kernel = _pair(imp, node, name, a, "kernel_shape", (1, 1))
    stride, pads = _window(imp, node, name, a, x, kernel)
    count_pad = kind != "avg" or not any(pads) or bool(a.get("count_include_pad", 0))
    if not count_pad and x.pad is not None:
        raise _HostOnly(
            "it leaves its padding out of the count but reads a Pad's zeros, which count; accepted: "
            "count_include_pad=1, or no Pad before it"
        )
    layer = Pool(name, kind, kernel, stride, _plus(pads, x.pad), count_pad=count_pad)
    if a.get("ceil_mode", 0):
        _ceil_check(imp, node, name, x, layer)
    imp.add_layer(node, layer, [x], node.output[0], x.rank)


def _maxpool(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _pool(imp, node, name, "max")


def _avgpool(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _pool(imp, node, name, "avg")


def _gap(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    _need_rank(imp, node, name, x, 4)
    imp.add_layer(node, GlobalAvgPool(name), [x], node.output[0], x.rank)


def _gmp(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    _need_rank(imp, node, name, x, 4)
    window = (x.shape.h, x.shape.w)
    imp.add_layer(node, Pool(name, "max", window, window), [x], node.output[0], x.rank)


def _reduce_mean(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    a = _attrs(node)
    axes = a.get("axes")
    if axes is None:
        v = imp.value_of(node, name, 1, "axes")
        axes = None if v is None else np.ravel(v).tolist()
    spatial = [2, 3] if x.rank == 4 else [2]  # a 1-D signal's mean over its length
    if x.rank not in (3, 4) or axes is None or sorted(int(ax) % x.rank for ax in axes) != spatial:
        raise _HostOnly("only a mean over height and width (or a signal's length) is supported")
    rank = x.rank if a.get("keepdims", 1) else 2
    imp.add_layer(node, GlobalAvgPool(name), [x], node.output[0], rank)
