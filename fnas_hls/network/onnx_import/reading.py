"""Step 1, reading: the protobuf's external weight files, a node's attributes, a tensor's declared
shape."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import onnx
from onnx import numpy_helper
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_tensor, uses_external_data

from fnas_hls.errors import FnasError
from fnas_hls.network.ir import Shape


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _load_external_data(model: onnx.ModelProto, path: Path, need_weights: bool = False) -> tuple[str, ...]:
    """Load initializers kept in external files next to ``path``; a missing file leaves shapes only
    (or, with ``need_weights``, is an error naming it)."""
    base = path.parent
    missing: list[str] = []
    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        if (
            not location
            or PurePosixPath(location).is_absolute()
            or PureWindowsPath(location).is_absolute()
            or ".." in PurePosixPath(location.replace("\\", "/")).parts
        ):
            raise FnasError(
                f"{path}: initializer '{tensor.name}' keeps its data at {location!r}, outside the "
                "model's folder; accepted: a file name relative to the model"
            )
        if not (base / location).is_file():
            if need_weights:
                raise FnasError(
                    f"{path}: the weights file '{location}' is missing (looked for {base / location}); "
                    "the model keeps its weights there (torch.onnx.export(..., dynamo=True) writes it "
                    f"beside the .onnx): copy it beside {path.name}"
                )
            if location not in missing:
                missing.append(location)
            continue
        try:
            load_external_data_for_tensor(tensor, str(base))
        except Exception as exc:
            raise FnasError(
                f"{path}: cannot read the data of initializer '{tensor.name}' from '{location}' "
                f"({_first_line(exc)})"
            ) from None
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
    return tuple(f"external weight file '{m}' is missing; those weights are not loaded" for m in missing)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        out[attr.name] = value
    return out


def _dims(vi: onnx.ValueInfoProto) -> list[int | None] | None:
    """A tensor's declared dims (None for a symbolic or unknown one); None when no shape is given."""
    t = vi.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim]


def _feature_shape(dims: list[int | None] | None) -> tuple[Shape, int] | None:
    """[N, C, H, W] -> (C, H, W), [N, C, L] -> (C, 1, L) (a 1-D signal: a map of one row) and
    [N, C] -> (C, 1, 1), with the rank; None otherwise."""
    if dims is None or len(dims) not in (2, 3, 4):
        return None
    sizes = [d for d in dims[1:] if d is not None and d > 0]
    if len(sizes) != len(dims) - 1:
        return None
    if len(sizes) == 3:
        return Shape(*sizes), 4
    return (Shape(sizes[0], 1, sizes[1]), 3) if len(sizes) == 2 else (Shape(sizes[0], 1, 1), 2)
