"""Read an ONNX model into the network IR.

Loading goes in three steps, like every loader here:

1. read: parse the protobuf (external weight files too, when they are there), run ONNX shape
   inference (a failure there only costs the shape checks), collect initializers as constants;
2. normalize: drop nodes nothing needs, then drop Identity and Dropout by aliasing their output
   to their input;
3. walk the nodes in their (topological) order, one handler per operator from ``_HANDLERS``,
   tracking which IR layer produces each tensor. Small shape computations (``Shape`` ->
   ``Gather`` -> ``Concat`` feeding a ``Reshape``, the pads of a ``Pad``) are evaluated on the
   spot with numpy (``_CONST_OPS``); a ConstantOfShape too large for that (a model zoo's weight
   fill) is kept as a shape without a value.

Handlers fold what the accelerator does inside a layer into that layer: a ReLU into the Conv,
Gemm/MatMul or pooling before it, a BatchNormalization or a constant bias Add into the Conv or
Dense before it, a zero Pad into the padding of the Conv or average pooling after it. An operator
the back end lacks is an error naming it and its node, or, with ``allow_host_ops``, a ``HostOp``
layer that names the layers it reads (so a branching graph loads, but is no longer a chain). A
known multi-node pattern the back end lacks (a channel shuffle: Reshape, Transpose, Reshape) is one
host layer, not three.

Where each part lives:

- ``reading``: the protobuf's external weight files, a node's attributes, declared shapes;
- ``walk``: the walk's state (``_Importer``), shape inference and initializers, normalizing, finding
  the input, the walk itself and its refusal of control flow;
- ``constants``: constant nodes evaluated with numpy (``_CONST_OPS``);
- ``handlers``: the registry ``_HANDLERS`` and ``SUPPORTED_OPS``; the handlers are in ``ops_conv``
  (Conv, Gemm, MatMul, BatchNormalization), ``ops_activation`` (Relu, Clip), ``ops_pool`` (MaxPool,
  AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean), ``ops_merge`` (Add, Sum, Concat) and
  ``ops_shape`` (Flatten, Reshape, Squeeze, Unsqueeze, Pad, Softmax, LogSoftmax, Shape), the helpers
  they share in ``ops_common``.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from fnas_hls.errors import FnasError
from fnas_hls.network.onnx_import.handlers import SUPPORTED_OPS
from fnas_hls.network.onnx_import.reading import _first_line, _load_external_data
from fnas_hls.network.onnx_import.walk import ImportResult, _import

__all__ = ["ImportResult", "SUPPORTED_OPS", "load_onnx", "network_from_model"]


def load_onnx(
    path: str | Path, allow_host_ops: bool = False, advice: str = "", need_weights: bool = False
) -> ImportResult:
    """Read the ONNX file at ``path`` into the IR. Raises FnasError naming the file on any fault.

    ``advice`` ends the unsupported-operator error: what the calling command accepts that would
    help (each command has its own flags). With ``need_weights``, an external weights file that is
    not beside the model is an error naming it; otherwise the weights are left out, with a note."""
    path = Path(path)
    if not path.exists():
        raise FnasError(f"{path}: ONNX file not found")
    if path.is_dir():
        raise FnasError(f"{path}: is a folder, not an ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except OSError as exc:
        raise FnasError(f"{path}: cannot read ONNX file ({exc.strerror or exc})") from None
    except Exception as exc:  # protobuf raises its own DecodeError; OS errors too
        raise FnasError(f"{path}: not an ONNX model ({_first_line(exc)})") from None
    if not model.graph.node:
        raise FnasError(f"{path}: not an ONNX model (it holds no graph nodes)")
    notes = _load_external_data(model, path, need_weights)
    return _convert(model, str(path), allow_host_ops, notes, advice)


def network_from_model(model: onnx.ModelProto, source: str, allow_host_ops: bool = False) -> ImportResult:
    """Convert an in-memory ONNX model; ``source`` names it in errors and gives the default name."""
    return _convert(model, source, allow_host_ops, ())


def _convert(
    model: onnx.ModelProto, source: str, allow_host_ops: bool, notes: tuple[str, ...], advice: str = ""
) -> ImportResult:
    try:
        return _import(model, source, allow_host_ops, notes, advice)
    except FnasError as exc:
        raise FnasError(f"{source}: {exc}") from None
