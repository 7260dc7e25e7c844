"""Handlers of the operators that change a tensor's form, not its values: Flatten, Reshape (a channel
shuffle among them), Squeeze, Unsqueeze, Pad (folded into the layer after it), a final
Softmax/LogSoftmax (dropped), Shape."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx

from fnas_hls.network.ir import Flatten
from fnas_hls.network.onnx_import.constants import _ev_shape, _reshape_dims
from fnas_hls.network.onnx_import.ops_common import _plus
from fnas_hls.network.onnx_import.reading import _attrs
from fnas_hls.network.onnx_import.walk import _Const, _HostOnly, _Importer, _Value


def _flatten(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    axis = int(_attrs(node).get("axis", 1))
    if (axis + x.rank if axis < 0 else axis) != 1:
        raise _HostOnly(f"axis={axis}; only axis=1 is supported")
    if x.rank == 2:
        imp.alias(node.input[0], node.output[0], x)
    else:
        imp.add_layer(node, Flatten(name), [x], node.output[0], 2)


def _dims_of(imp: _Importer, x: _Value) -> list[int]:
    """The ONNX dims of a computed tensor: [N, C, H, W], [N, C, L] or [N, C]."""
    s = x.shape
    return {4: [imp.batch, s.c, s.h, s.w], 3: [imp.batch, s.c, s.w]}.get(x.rank, [imp.batch, s.c])


def _reshape(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    target = imp.value_of(node, name, 1, "shape")
    if target is None:
        raise imp.error(node, name, "has no shape input")
    s = x.shape
    in_dims = _dims_of(imp, x)
    dims = _reshape_dims(in_dims, target, int(_attrs(node).get("allowzero", 0)))
    if dims is None:
        raise imp.error(node, name, f"cannot reshape {in_dims} to {np.ravel(target).tolist()}")
    if dims == in_dims:
        imp.alias(node.input[0], node.output[0], x)
    elif dims == [imp.batch, s.size] and x.rank in (3, 4):
        imp.add_layer(node, Flatten(name), [x], node.output[0], 2)
    elif dims == [imp.batch, s.c, 1, 1] and x.rank == 2:
        imp.alias(node.input[0], node.output[0], replace(x, rank=4))
    else:
        shuffle = _channel_shuffle(imp, node, x, dims)
        if shuffle is not None:
            raise _HostOnly(
                f"a channel shuffle in {dims[1]} groups (Reshape, Transpose, Reshape)",
                ("ChannelShuffle", shuffle, shuffle[-1].output[0]),
            )
        raise _HostOnly(f"reshapes {in_dims} to {dims}; only a flatten to [N, C*H*W] is supported")


def _channel_shuffle(
    imp: _Importer, node: onnx.NodeProto, x: _Value, dims: list[int]
) -> list[onnx.NodeProto] | None:
    """The Transpose and Reshape after ``node`` when the three are a channel shuffle (ShuffleNet):
    [N, C, H, W] -> [N, g, C/g, H, W] -> swap axes 1 and 2 -> [N, C, H, W]; else None."""
    s = x.shape
    if x.rank != 4 or len(dims) != 5 or dims[1] * dims[2] != s.c or dims[3:] != [s.h, s.w]:
        return None
    readers = imp.readers.get(node.output[0], [])
    if len(readers) != 1 or node.output[0] in imp.outputs:
        return None
    t = readers[0]
    if t.op_type != "Transpose" or list(_attrs(t).get("perm", [])) != [0, 2, 1, 3, 4]:
        return None
    after = imp.readers.get(t.output[0], [])
    if len(after) != 1 or t.output[0] in imp.outputs or after[0].op_type != "Reshape":
        return None
    back = after[0]
    target = imp.consts.get(back.input[1]) if len(back.input) > 1 else None
    if target is None or target.value is None:
        return None
    out = _reshape_dims([imp.batch, dims[2], dims[1], s.h, s.w], target.value, 0)
    return [t, back] if out == [imp.batch, s.c, s.h, s.w] else None


def _squeeze_like(imp: _Importer, node: onnx.NodeProto, name: str, squeeze: bool) -> None:
    x = imp.data(node, name)
    a = _attrs(node)
    axes = a.get("axes")
    if axes is None:
        v = imp.value_of(node, name, 1, "axes")
        axes = None if v is None else np.ravel(v).tolist()
    spatial = axes is not None and sorted(int(ax) % 4 for ax in axes) == [2, 3]
    row = axes is not None and [int(ax) % 4 for ax in axes] == [2]  # the height of a one-row map
    if (not squeeze and x.rank == 3 and row) or (squeeze and x.rank == 4 and x.shape.h == 1 and row):
        # [N, C, L] <-> [N, C, 1, L]: the IR holds both as the same one-row map
        imp.alias(node.input[0], node.output[0], replace(x, rank=4 if not squeeze else 3))
    elif squeeze and x.rank == 3 and x.shape.w == 1 and (axes is None or [int(ax) % 3 for ax in axes] == [2]):
        imp.alias(node.input[0], node.output[0], replace(x, rank=2))  # a signal pooled to one value
    elif squeeze and x.rank == 4 and x.shape.h == x.shape.w == 1 and (axes is None or spatial):
        imp.alias(node.input[0], node.output[0], replace(x, rank=2))
    elif not squeeze and x.rank == 2 and spatial:
        imp.alias(node.input[0], node.output[0], replace(x, rank=4))
    else:
        raise _HostOnly(f"axes {axes}; only [N, C, 1, 1] <-> [N, C] is supported")


def _squeeze(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _squeeze_like(imp, node, name, True)


def _unsqueeze(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _squeeze_like(imp, node, name, False)


def _pad(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    a = _attrs(node)
    mode = a.get("mode", "constant")
    if mode != "constant":
        raise _HostOnly(f"mode '{mode}'; only zero padding is folded")
    if "pads" in a:  # opset < 11
        pads, fill, axes = list(a["pads"]), float(a.get("value", 0.0)), None
    else:
        v = imp.value_of(node, name, 1, "pads")
        if v is None:
            raise imp.error(node, name, "has no pads input")
        pads = [int(p) for p in np.ravel(v)]
        fill_v = imp.value_of(node, name, 2, "constant_value")
        fill = 0.0 if fill_v is None else float(np.ravel(fill_v)[0])
        axes_v = imp.value_of(node, name, 3, "axes")
        axes = None if axes_v is None else [int(ax) % x.rank for ax in np.ravel(axes_v)]
    axes = list(range(x.rank)) if axes is None else axes
    if len(pads) != 2 * len(axes):
        raise imp.error(node, name, f"pads {pads} do not match {len(axes)} axes")
    begin = dict.fromkeys(range(x.rank), 0)
    end = dict.fromkeys(range(x.rank), 0)
    for i, ax in enumerate(axes):
        begin[ax], end[ax] = pads[i], pads[i + len(axes)]
    readers = imp.readers.get(node.output[0], [])
    if (
        fill != 0.0
        or x.rank != 4
        or any(begin[ax] or end[ax] for ax in (0, 1))
        or any(v < 0 for v in (*begin.values(), *end.values()))
        or node.output[0] in imp.outputs
        or not readers
        or any(r.op_type not in ("Conv", "AveragePool") or r.input[0] != node.output[0] for r in readers)
    ):
        raise _HostOnly(
            "only a zero Pad of height and width that feeds convolutions or average pooling is folded"
        )
    imp.values[node.output[0]] = replace(x, pad=_plus((begin[2], begin[3], end[2], end[3]), x.pad))
    imp.canon[node.output[0]] = node.output[0]
    imp.uses[node.output[0]] = imp.refs.get(node.output[0], 0)
    imp.note(f"folded Pad '{name}' into the padding of the layer after it")


def _softmax(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    out = node.output[0]
    if out not in imp.outputs or imp.refs.get(out, 0) != 1:
        raise _HostOnly(f"only a final {node.op_type}, whose output is the model's output, is dropped")
    imp.alias(node.input[0], out, x)
    imp.note(f"dropped final {node.op_type} '{name}'")


def _shape(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    if x.pad is not None:
        raise _HostOnly("it reads a padded tensor")
    dims = _dims_of(imp, x)
    value = _ev_shape([np.broadcast_to(np.uint8(0), dims)], _attrs(node))  # shape only, no memory
    imp.consts[node.output[0]] = _Const(tuple(value.shape), value)
    imp.uses[imp.canon[node.input[0]]] -= 1  # reads the shape only, not the data
