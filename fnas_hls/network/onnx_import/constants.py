"""Constant evaluation: the small shape computations (``Shape`` -> ``Gather`` -> ``Concat`` feeding a
``Reshape``, the pads of a ``Pad``) that the walk evaluates on the spot with numpy (``_CONST_OPS``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

_MAX_FOLDED = 1 << 24  # elements; a larger ConstantOfShape is kept as a shape, never filled


def _axes(xs: list[np.ndarray | None], a: dict[str, Any]) -> list[int] | None:
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    if len(xs) > 1 and xs[1] is not None:
        return [int(v) for v in np.ravel(xs[1])]
    return None


def _ev_unsqueeze(xs: list[np.ndarray | None], a: dict[str, Any]) -> np.ndarray:
    x = xs[0]
    assert x is not None
    axes = _axes(xs, a) or []
    rank = x.ndim + len(axes)
    for ax in sorted(ax % rank for ax in axes):
        x = np.expand_dims(x, ax)
    return x


def _ev_squeeze(xs: list[np.ndarray | None], a: dict[str, Any]) -> np.ndarray:
    x = xs[0]
    assert x is not None
    axes = _axes(xs, a)
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(ax % x.ndim for ax in axes))


def _reshape_dims(in_dims: list[int], target: np.ndarray, allowzero: int) -> list[int] | None:
    """ONNX Reshape's target resolved against ``in_dims`` (0 copies, -1 infers); None if invalid."""
    dims = [int(d) for d in np.ravel(target)]
    if not allowzero:
        dims = [in_dims[i] if d == 0 and i < len(in_dims) else d for i, d in enumerate(dims)]
    total = math.prod(in_dims)
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        return None
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        if known == 0 or total % known:
            return None
        dims[dims.index(-1)] = total // known
    return dims if math.prod(dims) == total else None


def _ev_reshape(xs: list[np.ndarray | None], a: dict[str, Any]) -> np.ndarray:
    x, target = xs[0], xs[1]
    assert x is not None and target is not None
    dims = _reshape_dims(list(x.shape), target, a.get("allowzero", 0))
    if dims is None:
        raise ValueError(f"cannot reshape {list(x.shape)} to {target.tolist()}")
    return x.reshape(dims)


def _ev_slice(xs: list[np.ndarray | None], a: dict[str, Any]) -> np.ndarray:
    x = xs[0]
    assert x is not None
    if "starts" in a:  # opset < 10
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = xs[1], xs[2]
        axes = xs[3] if len(xs) > 3 else None
        steps = xs[4] if len(xs) > 4 else None
    starts = [int(v) for v in np.ravel(starts)]
    ends = [int(v) for v in np.ravel(ends)]
    axes = list(range(len(starts))) if axes is None else [int(v) for v in np.ravel(axes)]
    steps = [1] * len(starts) if steps is None else [int(v) for v in np.ravel(steps)]
    index: list[slice] = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        index[ax % x.ndim] = slice(s, e, st)
    return x[tuple(index)]


def _ev_div(xs: list[np.ndarray | None], a: dict[str, Any]) -> np.ndarray:
    x, y = xs[0], xs[1]
    assert x is not None and y is not None
    if np.issubdtype(x.dtype, np.integer):
        return (np.sign(x) * np.sign(y) * (np.abs(x) // np.abs(y))).astype(x.dtype)  # truncates, as ONNX
    return x / y


def _ev_constant_of_shape(xs: list[np.ndarray | None], a: dict[str, Any]) -> np.ndarray:
    assert xs[0] is not None  # no larger than _MAX_FOLDED: the walk keeps those as shapes
    fill = np.asarray(a.get("value", np.zeros(1, dtype=np.float32))).reshape(-1)[0]
    return np.full(tuple(int(d) for d in np.ravel(xs[0])), fill, dtype=np.asarray(fill).dtype)


def _ev_shape(xs: list[np.ndarray | None], a: dict[str, Any]) -> np.ndarray:
    assert xs[0] is not None
    return np.array(list(xs[0].shape)[a.get("start", 0) : a.get("end")], dtype=np.int64)


_ConstOp = Callable[[list[Any], dict[str, Any]], np.ndarray]


#: Operators evaluated with numpy when every input is a stored constant (shape arithmetic, pads).
_CONST_OPS: dict[str, _ConstOp] = {
    "Cast": lambda xs, a: xs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"])),
    "Shape": _ev_shape,
    "Gather": lambda xs, a: np.take(xs[0], xs[1].astype(np.int64), axis=a.get("axis", 0)),
    "Unsqueeze": _ev_unsqueeze,
    "Squeeze": _ev_squeeze,
    "Concat": lambda xs, a: np.concatenate([x for x in xs if x is not None], axis=a["axis"]),
    "Reshape": _ev_reshape,
    "Slice": _ev_slice,
    "Transpose": lambda xs, a: np.transpose(xs[0], a.get("perm")),
    "ConstantOfShape": _ev_constant_of_shape,
    "Add": lambda xs, a: xs[0] + xs[1],
    "Sub": lambda xs, a: xs[0] - xs[1],
    "Mul": lambda xs, a: xs[0] * xs[1],
    "Div": _ev_div,
}
