"""Helpers the operator handlers share: owned float32 weights, rank checks, a conv or pooling window
(stride and padding), adding paddings."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from fnas_hls.network.ir import Pads, Pair, same_padding
from fnas_hls.network.onnx_import.walk import _Importer, _Value


def _f32(value: np.ndarray | None) -> np.ndarray | None:
    """An owned, writable float32 copy (not a view of the protobuf's bytes)."""
    return None if value is None else np.array(value, dtype=np.float32, order="C", copy=True)


def _weights(
    weight: np.ndarray | None, bias: np.ndarray | None, has_bias: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Both weight and bias, or neither: a layer is loaded with all its parameters or none."""
    if weight is None or (has_bias and bias is None):
        return None, None
    return _f32(weight), _f32(bias) if has_bias else None


def _need_rank(imp: _Importer, node: onnx.NodeProto, name: str, x: _Value, rank: int) -> None:
    """``rank`` 4: a map, [N, C, H, W], or a 1-D signal [N, C, L] (rank 3, a map of one row)."""
    if x.rank != rank and not (rank == 4 and x.rank == 3):
        want = "[N, C, H, W] or [N, C, L]" if rank == 4 else "[N, C]"
        raise imp.error(node, name, f"expects a {want} input, got rank {x.rank}")


#: The window attributes of a 1-D operator, and how each becomes 2-D over a map of one row.
_ONE_ROW = {"kernel_shape": (1,), "strides": (1,), "dilations": (1,)}


def _as_2d(a: dict[str, Any], x: _Value) -> dict[str, Any]:
    """A 1-D conv or pooling's attributes (on an [N, C, L] input) as the 2-D ones of the same
    operator over a one-row map: kernel (1, K), stride (1, S), pads (0, begin, 0, end)."""
    if x.rank != 3:
        return a
    out = dict(a)
    for key, head in _ONE_ROW.items():
        if key in a:
            out[key] = [*head, *a[key]]
    if "pads" in a and len(a["pads"]) == 2:
        out["pads"] = [0, a["pads"][0], 0, a["pads"][1]]
    return out


def _pair(
    imp: _Importer, node: onnx.NodeProto, name: str, a: dict[str, Any], key: str, default: Pair
) -> Pair:
    v = [int(x) for x in a.get(key, default)]
    if len(v) != 2 or any(x < 1 for x in v):
        raise imp.error(node, name, f"{key} {v} are not supported; accepted: two positive numbers (2-D)")
    return (v[0], v[1])


def _window(
    imp: _Importer, node: onnx.NodeProto, name: str, a: dict[str, Any], x: _Value, kernel: Pair
) -> tuple[Pair, Pads]:
    """Stride and the node's own padding (top, left, bottom, right) of a conv or pooling window."""
    stride = _pair(imp, node, name, a, "strides", (1, 1))
    dilations = [int(d) for d in a.get("dilations", [1, 1])]
    if any(d != 1 for d in dilations):
        raise imp.error(node, name, f"dilations {dilations} are not supported; accepted: 1")
    extra = x.pad or (0, 0, 0, 0)
    hw = (x.shape.h + extra[0] + extra[2], x.shape.w + extra[1] + extra[3])
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        p = same_padding(hw, kernel, stride)
        pads = p if auto == "SAME_UPPER" else (p[2], p[3], p[0], p[1])
    elif auto == "VALID":
        pads = (0, 0, 0, 0)
    elif auto == "NOTSET":
        v = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
        if len(v) != 4 or any(p < 0 for p in v):
            raise imp.error(node, name, f"pads {v} are not supported; accepted: 4 numbers >= 0 (2-D)")
        pads = (v[0], v[1], v[2], v[3])  # ONNX [h_begin, w_begin, h_end, w_end] = top, left, bottom, right
    else:
        raise imp.error(node, name, f"auto_pad '{auto}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    return stride, pads


def _plus(a: Pads, b: Pads | None) -> Pads:
    if b is None:
        return a
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])
