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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_tensor, uses_external_data

from fnas_hls.errors import FnasError
from fnas_hls.network.ir import (
    INPUT,
    MERGE_OPS,
    Add,
    Concat,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    HostOp,
    Layer,
    Network,
    Pads,
    Pair,
    Pool,
    Shape,
    same_padding,
)

#: Graph names that exporters write by default; the file name says more.
_DEFAULT_GRAPH_NAMES = ("", "main_graph", "torch_jit", "torch-jit-export", "tf2onnx")


@dataclass(frozen=True)
class ImportResult:
    """The imported network and what the importer did to get it (one readable line each)."""

    network: Network
    notes: tuple[str, ...] = ()


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


# --------------------------------------------------------------------------------------- reading


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
    """[N, C, H, W] -> (C, H, W) and [N, C] -> (C, 1, 1), with the rank; None otherwise."""
    if dims is None or len(dims) not in (2, 4):
        return None
    sizes = [d for d in dims[1:] if d is not None and d > 0]
    if len(sizes) != len(dims) - 1:
        return None
    return (Shape(*sizes), 4) if len(sizes) == 3 else (Shape(sizes[0], 1, 1), 2)


# ----------------------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class _Const:
    """A constant tensor; ``value`` is None when only its shape is known (weights not stored)."""

    shape: tuple[int, ...] | None
    value: np.ndarray | None


@dataclass(frozen=True)
class _Value:
    """A computed tensor: the IR layer producing it (-1: the network input), its IR shape and rank."""

    producer: int
    shape: Shape
    rank: int  # 4: [N, C, H, W]; 2: [N, C]
    pad: Pads | None = None  # zero padding of a Pad node, waiting for the Conv/AveragePool reading it


#: A known multi-node pattern run as one host layer: its op name, the nodes after the first that
#: it spans, its output tensor.
_Pattern = tuple[str, list[onnx.NodeProto], str]


class _HostOnly(Exception):
    """The node is an operator, or a form of one, that the FPGA back end does not implement."""

    def __init__(self, reason: str | None = None, pattern: _Pattern | None = None) -> None:
        super().__init__(reason or "")
        self.reason = reason
        self.pattern = pattern


class _Importer:
    """The walk's state: constants, tensors, the layers built so far, notes."""

    def __init__(self, dims: dict[str, list[int | None] | None]) -> None:
        self.dims = dims
        self.consts: dict[str, _Const] = {}
        self.values: dict[str, _Value] = {}
        self.refs: dict[str, int] = {}  # readers of each tensor (a graph output counts as one)
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        self.outputs: set[str] = set()
        self.output_names: list[str] = []  # the graph's outputs, in order, after aliasing
        self.input_name = ""
        self.canon: dict[str, str] = {}  # tensor -> the tensor it aliases (itself when none)
        self.uses: dict[str, int] = {}  # canonical tensor -> readers left, aliases included
        self.layers: list[Layer] = []
        self.notes: list[str] = []
        self.batch = 1
        self.shape_only: list[str] = []  # constant nodes kept as shapes, too large to evaluate
        self.done: set[int] = set()  # nodes already taken by a pattern handled at an earlier node

    # errors and notes
    def error(self, node: onnx.NodeProto, name: str, message: str) -> FnasError:
        return FnasError(f"node '{name}' ({node.op_type}): {message}")

    def note(self, text: str) -> None:
        self.notes.append(text)

    # reading inputs
    def data(self, node: onnx.NodeProto, name: str, index: int = 0) -> _Value:
        """The computed tensor at input ``index`` (a constant or unknown tensor there is an error)."""
        tensor = node.input[index] if index < len(node.input) else ""
        if tensor in self.values:
            return self.values[tensor]
        if tensor in self.consts:
            raise self.error(node, name, f"input '{tensor}' is a constant; expected a computed feature map")
        raise self.error(node, name, f"reads '{tensor}', which no earlier node produces")

    def weight(self, node: onnx.NodeProto, name: str, index: int = 1) -> _Const:
        """The weight constant at input ``index``, which must be there."""
        const = self.param(node, name, index, "weight")
        if const is None:
            raise self.error(node, name, "has no weight input")
        return const

    def param(self, node: onnx.NodeProto, name: str, index: int, what: str) -> _Const | None:
        """The constant at input ``index``; None when the input is absent."""
        tensor = node.input[index] if index < len(node.input) else ""
        if not tensor:
            return None
        if tensor in self.values:
            raise self.error(
                node, name, f"{what} '{tensor}' is computed by the graph; only constant {what}s are supported"
            )
        return self.consts.get(tensor, _Const(None, None))  # neither stored nor declared: unknown

    def value_of(self, node: onnx.NodeProto, name: str, index: int, what: str) -> np.ndarray | None:
        """The stored value of constant input ``index``; None when absent; _HostOnly when computed."""
        tensor = node.input[index] if index < len(node.input) else ""
        if not tensor:
            return None
        const = self.consts.get(tensor)
        if const is None or const.value is None:
            raise _HostOnly(f"its {what} '{tensor}' is not a constant")
        return const.value

    # producing outputs
    def produce(self, tensor: str, value: _Value) -> None:
        self.values[tensor] = value
        self.canon[tensor] = tensor
        self.uses[tensor] = self.refs.get(tensor, 0)

    def alias(self, source: str, tensor: str, value: _Value) -> None:
        """``tensor`` is ``source`` under another name (and maybe rank): no layer, readers add up."""
        root = self.canon[source]
        self.values[tensor] = value
        self.canon[tensor] = root
        self.uses[root] += self.refs.get(tensor, 0) - 1

    def fusable(self, tensor: str, value: _Value, kinds: tuple[type, ...]) -> int | None:
        """The index of the layer producing ``tensor`` if it is of ``kinds`` and only this node reads it."""
        if value.producer < 0 or value.pad is not None:
            return None
        if not isinstance(self.layers[value.producer], kinds):
            return None
        return value.producer if self.uses[self.canon[tensor]] == 1 else None

    def add_layer(
        self, node: onnx.NodeProto, layer: Layer, ins: list[_Value], tensor: str, rank: int
    ) -> _Value:
        """Append ``layer`` reading ``ins``, infer and check its output shape, record ``tensor``."""
        count = len(self.layers)
        producers = [v.producer for v in ins]
        names = [INPUT if p == -1 else self.layers[p].name for p in producers]
        if len(producers) > 1:
            layer = replace(layer, inputs=tuple(names))
        elif producers[0] != count - 1:  # reads other than the layer before it (-1: the input)
            layer = replace(layer, inputs=(names[0],))
        try:
            if isinstance(layer, MERGE_OPS):
                shape = layer.combine(tuple(v.shape for v in ins))
            else:
                shape = layer.out_shape(ins[0].shape)
        except FnasError as exc:
            raise self.error(node, layer.name, str(exc)) from None
        declared = self.dims.get(tensor)
        if declared is not None and len(declared) == rank:
            want = shape.as_list() if rank == 4 else [shape.c]
            if any(d is not None and d != w for d, w in zip(declared[1:], want, strict=True)):
                got = "x".join("?" if d is None else str(d) for d in declared[1:])
                raise self.error(
                    node,
                    layer.name,
                    f"the IR computes a {'x'.join(map(str, want))} output but the model declares {got}; "
                    "this form of the operator is not supported",
                )
        self.layers.append(layer)
        value = _Value(count, shape, rank)
        self.produce(tensor, value)
        return value

    def host(self, node: onnx.NodeProto, name: str, pattern: _Pattern | None = None) -> None:
        """Turn ``node`` into a HostOp layer (its output shape must be known from the graph); with a
        ``pattern`` (its op name, the nodes after ``node`` it spans, its output tensor), turn ``node``
        and those nodes into one."""
        tensors = [t for t in node.input if t and t not in self.consts]
        if not tensors:
            raise self.error(node, name, "reads only constants; expected at least one computed tensor")
        ins = []
        for t in tensors:
            if t not in self.values:
                raise self.error(node, name, f"reads '{t}', which no earlier node produces")
            ins.append(self.values[t])
        if pattern is None:
            used = [t for t in node.output if t and self.refs.get(t, 0) > 0]
            if len(used) != 1:
                raise self.error(node, name, f"has {len(used)} used outputs; a host layer has exactly one")
            op, rest, tensor = node.op_type, [], used[0]
        else:
            op, rest, tensor = pattern
        found = _feature_shape(self.dims.get(tensor))
        if found is None:
            raise self.error(
                node,
                name,
                f"the shape of its output '{tensor}' cannot be inferred as [N, C, H, W] or [N, C] "
                f"(got {self.dims.get(tensor)}), so it cannot run as a host layer",
            )
        shape, rank = found
        self.add_layer(node, HostOp(name, op, shape), ins, tensor, rank)
        self.done.update(id(n) for n in rest)
        spans = f": {node.op_type} and {len(rest)} node(s) after it" if rest else ""
        self.note(f"host layer '{name}' ({op}{spans})")


def _import(
    model: onnx.ModelProto, source: str, allow_host_ops: bool, notes: tuple[str, ...], advice: str = ""
) -> ImportResult:
    graph = model.graph
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    except Exception:  # a model shape inference cannot handle still loads, without the checks
        inferred = graph
    dims: dict[str, list[int | None] | None] = {}
    for vi in (*inferred.value_info, *inferred.input, *inferred.output, *graph.input, *graph.output):
        if dims.get(vi.name) is None:
            dims[vi.name] = _dims(vi)

    imp = _Importer(dims)
    imp.notes.extend(notes)
    for tensor in graph.initializer:
        if uses_external_data(tensor) and tensor.data_location == onnx.TensorProto.EXTERNAL:
            imp.consts[tensor.name] = _Const(tuple(tensor.dims), None)
            continue
        try:
            value = numpy_helper.to_array(tensor)
        except Exception as exc:
            raise FnasError(f"initializer '{tensor.name}' cannot be read ({_first_line(exc)})") from None
        imp.consts[tensor.name] = _Const(tuple(value.shape), value)
    nodes = _normalize(imp, graph)
    _find_input(imp, graph, nodes)

    for name, node in nodes:
        if id(node) in imp.done:
            continue
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            value = _constant_value(imp, node, name)
            imp.consts[node.output[0]] = _Const(tuple(value.shape), value)
            continue
        if node.domain in ("", "ai.onnx") and node.op_type in _CONST_OPS and _all_stored(imp, node):
            xs = [imp.consts[t].value if t else None for t in node.input]
            if node.op_type == "ConstantOfShape" and xs and xs[0] is not None:
                dims = tuple(int(d) for d in np.ravel(xs[0]))
                if math.prod(dims) > _MAX_FOLDED:  # a weight fill: its shape is all analysis needs
                    imp.consts[node.output[0]] = _Const(dims, None)
                    imp.shape_only.append(name)
                    continue
            try:
                value = np.asarray(_CONST_OPS[node.op_type](xs, _attrs(node)))
            except Exception as exc:
                raise imp.error(node, name, f"cannot evaluate it on constants ({_first_line(exc)})") from None
            imp.consts[node.output[0]] = _Const(tuple(value.shape), value)
            continue
        if node.op_type in _CONTROL_FLOW and node.domain in ("", "ai.onnx"):
            raise imp.error(
                node,
                name,
                "control flow runs neither on the FPGA nor as a host layer (a host layer has one "
                "fixed output shape); export the model without it",
            )
        handler = _HANDLERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        try:
            if handler is None:
                raise _HostOnly()
            handler(imp, node, name)
        except (ValueError, IndexError, KeyError, TypeError) as exc:  # a malformed node
            raise imp.error(
                node,
                name,
                f"cannot read this node ({type(exc).__name__}: {_first_line(exc)}); is it valid ONNX?",
            ) from None
        except _HostOnly as exc:
            if not allow_host_ops:
                op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
                why = f"{exc.reason}; " if exc.reason else ""
                raise FnasError(
                    f"unsupported ONNX operator '{op}' at node '{name}' ({why}supported: "
                    f"{', '.join(SUPPORTED_OPS)})" + (f"; {advice}" if advice else "")
                ) from None
            imp.host(node, name, exc.pattern)
    if imp.shape_only:
        imp.note(
            f"{len(imp.shape_only)} ConstantOfShape node(s) too large to evaluate (first: "
            f"'{imp.shape_only[0]}') kept as shapes only; the layers they feed have no weights"
        )

    outputs = imp.output_names
    if len(outputs) != 1:
        raise FnasError(
            f"the model has {len(outputs)} outputs ({', '.join(outputs)}); the IR has exactly one"
        )
    out = outputs[0]
    if out in imp.consts:
        raise FnasError(f"the model's output '{out}' is a constant")
    value = imp.values.get(out)
    if value is None:
        raise FnasError(f"the model's output '{out}' is produced by no node")
    if value.producer < 0:
        raise FnasError(f"the model's output '{out}' is its input; there are no layers")
    if value.producer != len(imp.layers) - 1 or value.pad is not None:
        raise FnasError(
            f"the model's output '{out}' comes from layer '{imp.layers[value.producer].name}', "
            "not from the last layer"
        )

    net_name = graph.name if graph.name not in _DEFAULT_GRAPH_NAMES else (Path(source).stem or "net")
    network = Network(imp.values[imp.input_name].shape, tuple(imp.layers), name=net_name)
    without = [li.name for li in network if isinstance(li.layer, (Conv, Dense)) and li.layer.weight is None]
    if without:
        imp.note(
            f"{len(without)} layer(s) have no stored weights (first: '{without[0]}'); "
            "loaded the structure only"
        )
    return ImportResult(network, tuple(imp.notes))


def _layer_names(graph: onnx.GraphProto) -> list[str]:
    """Each node's IR name: its own when set and unique, else op and index (``conv_3``)."""
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.name] = counts.get(node.name, 0) + 1
    taken = {n for n, c in counts.items() if n}
    names: list[str] = []
    for i, node in enumerate(graph.node):
        if node.name and counts[node.name] == 1:
            names.append(node.name)
            continue
        base = f"{node.op_type.lower()}_{i}"
        candidate, k = base, 1
        while candidate in taken:
            candidate, k = f"{base}_{k}", k + 1
        taken.add(candidate)
        names.append(candidate)
    return names


def _normalize(imp: _Importer, graph: onnx.GraphProto) -> list[tuple[str, onnx.NodeProto]]:
    """Name the nodes, drop those nothing needs, then Identity and Dropout (aliasing their output)."""
    needed = {o.name for o in graph.output}
    kept: list[tuple[str, onnx.NodeProto]] = []
    for name, node in reversed(list(zip(_layer_names(graph), graph.node, strict=True))):
        if any(t in needed for t in node.output):
            kept.append((name, node))
            needed.update(t for t in node.input if t)
            needed.update(_subgraph_reads(node))
    kept.reverse()

    rename: dict[str, str] = {}
    nodes: list[tuple[str, onnx.NodeProto]] = []
    for name, node in kept:
        if any(t in rename for t in node.input):
            fixed = onnx.NodeProto()
            fixed.CopyFrom(node)
            fixed.input[:] = [rename.get(t, t) for t in node.input]
            node = fixed
        drop = node.op_type == "Identity" or (
            node.op_type == "Dropout" and (len(node.output) < 2 or node.output[1] not in needed)
        )
        if drop and node.domain in ("", "ai.onnx") and node.input and node.input[0]:
            rename[node.output[0]] = node.input[0]
            if node.input[0] not in imp.consts:
                imp.note(f"dropped {node.op_type} '{name}'")
            continue
        nodes.append((name, node))

    imp.output_names = [rename.get(o.name, o.name) for o in graph.output]
    imp.outputs = set(imp.output_names)
    for _, node in nodes:
        for t in node.input:
            if t:
                imp.refs[t] = imp.refs.get(t, 0) + 1
                imp.readers.setdefault(t, []).append(node)
    for t in imp.output_names:
        imp.refs[t] = imp.refs.get(t, 0) + 1
    return nodes


def _subgraph_reads(node: onnx.NodeProto) -> set[str]:
    """The tensors that the subgraphs of ``node`` (If, Loop, Scan) read, from their outer scope too."""
    reads: set[str] = set()
    for attr in node.attribute:
        for g in (*([attr.g] if attr.HasField("g") else []), *attr.graphs):
            for inner in g.node:
                reads.update(t for t in inner.input if t)
                reads.update(_subgraph_reads(inner))
    return reads


_PARAM_INPUTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2),
    "Gemm": (1, 2),
    "MatMul": (1,),
    "BatchNormalization": (1, 2, 3, 4),
    "Reshape": (1,),
    "Pad": (1, 2, 3),
    "Clip": (1, 2),
}


def _find_input(imp: _Importer, graph: onnx.GraphProto, nodes: list[tuple[str, onnx.NodeProto]]) -> None:
    """Find the one real graph input; inputs read only as weights become shape-only constants."""
    candidates = [vi for vi in graph.input if vi.name not in imp.consts]
    as_param: dict[str, bool] = {}
    for _, node in nodes:
        for i, t in enumerate(node.input):
            if t:
                is_param = i in _PARAM_INPUTS.get(node.op_type, ())
                as_param[t] = as_param.get(t, True) and is_param
    real = []
    for vi in candidates:
        if as_param.get(vi.name, False):
            dims = imp.dims.get(vi.name) or _dims(vi) or [None]
            sizes = tuple(d for d in dims if d is not None)
            imp.consts[vi.name] = _Const(sizes if len(sizes) == len(dims) else None, None)
        elif vi.name in imp.refs:
            real.append(vi)
    if not real:
        raise FnasError("the model has no input that its nodes read")
    if len(real) > 1:
        listed = ", ".join(f"'{vi.name}'" for vi in real)
        raise FnasError(f"the model has {len(real)} inputs ({listed}); accepted: exactly one image input")
    vi = real[0]
    dims = _dims(vi)
    found = _feature_shape(dims)
    if found is None:
        shown = None if dims is None else ["?" if d is None else d for d in dims]
        raise FnasError(
            f"input '{vi.name}' has shape {shown}; accepted: [N, C, H, W] or [N, C] with fixed C, H and W"
        )
    if dims and dims[0]:
        imp.batch = dims[0]
    imp.input_name = vi.name
    imp.produce(vi.name, _Value(-1, found[0], found[1]))


def _all_stored(imp: _Importer, node: onnx.NodeProto) -> bool:
    return all(not t or (t in imp.consts and imp.consts[t].value is not None) for t in node.input)


def _constant_value(imp: _Importer, node: onnx.NodeProto, name: str) -> np.ndarray:
    a = _attrs(node)
    if "value" in a:
        return np.asarray(a["value"])
    if "value_float" in a or "value_floats" in a:
        return np.asarray(a.get("value_float", a.get("value_floats")), dtype=np.float32)
    if "value_int" in a or "value_ints" in a:
        return np.asarray(a.get("value_int", a.get("value_ints")), dtype=np.int64)
    raise imp.error(node, name, f"holds {', '.join(a) or 'nothing'}; only numeric tensors are supported")


# ------------------------------------------------------------------------- constant evaluation


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


# ------------------------------------------------------------------------------------ handlers


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
    if x.rank != rank:
        want = "[N, C, H, W]" if rank == 4 else "[N, C]"
        raise imp.error(node, name, f"expects a {want} input, got rank {x.rank}")


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


def _conv(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    _need_rank(imp, node, name, x, 4)
    a = _attrs(node)
    w = imp.weight(node, name)
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
    )
    imp.add_layer(node, layer, [x], node.output[0], 4)


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


_BN_INPUTS = ("scale", "B", "mean", "var")


def _batchnorm(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    a = _attrs(node)
    if a.get("training_mode", 0) or any(imp.refs.get(t, 0) for t in node.output[1:] if t):
        raise _HostOnly("training-mode BatchNormalization")
    index = imp.fusable(node.input[0], x, (Conv, Dense))
    layer = None if index is None else imp.layers[index]
    if index is None or not isinstance(layer, (Conv, Dense)) or layer.relu:
        raise _HostOnly(
            "a BatchNormalization is folded only into the Conv or Gemm/MatMul right before it, "
            "when nothing else reads that layer's output"
        )
    params: list[np.ndarray | None] = []
    for i, what in enumerate(_BN_INPUTS):
        p = imp.param(node, name, i + 1, what)
        if p is None:
            raise imp.error(node, name, f"has no {what} input")
        if p.shape is not None and math.prod(p.shape) != layer.out:
            raise imp.error(node, name, f"{what} has shape {list(p.shape)}; expected {layer.out} values")
        params.append(p.value)
    gamma, beta, mean, var = params
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
    a = _attrs(node)
    if any(imp.refs.get(t, 0) for t in node.output[1:] if t):
        raise _HostOnly("its Indices output is used")
    if "kernel_shape" not in a:
        raise imp.error(node, name, "has no kernel_shape")
    kernel = _pair(imp, node, name, a, "kernel_shape", (1, 1))
    stride, pads = _window(imp, node, name, a, x, kernel)
    if kind == "avg" and any(pads) and not a.get("count_include_pad", 0):
        raise _HostOnly(
            f"pads {list(pads)} with count_include_pad=0: the accelerator's average counts padding "
            "as zeros; accepted on the FPGA: count_include_pad=1 or no padding"
        )
    layer = Pool(name, kind, kernel, stride, _plus(pads, x.pad))
    if a.get("ceil_mode", 0):
        _ceil_check(imp, node, name, x, layer)
    imp.add_layer(node, layer, [x], node.output[0], 4)


def _maxpool(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _pool(imp, node, name, "max")


def _avgpool(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _pool(imp, node, name, "avg")


def _gap(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    _need_rank(imp, node, name, x, 4)
    imp.add_layer(node, GlobalAvgPool(name), [x], node.output[0], 4)


def _gmp(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    _need_rank(imp, node, name, x, 4)
    window = (x.shape.h, x.shape.w)
    imp.add_layer(node, Pool(name, "max", window, window), [x], node.output[0], 4)


def _reduce_mean(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    a = _attrs(node)
    axes = a.get("axes")
    if axes is None:
        v = imp.value_of(node, name, 1, "axes")
        axes = None if v is None else np.ravel(v).tolist()
    if x.rank != 4 or axes is None or sorted(int(ax) % 4 for ax in axes) != [2, 3]:
        raise _HostOnly("only a mean over height and width is supported")
    rank = 4 if a.get("keepdims", 1) else 2
    imp.add_layer(node, GlobalAvgPool(name), [x], node.output[0], rank)


def _flatten(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    axis = int(_attrs(node).get("axis", 1))
    if (axis + x.rank if axis < 0 else axis) != 1:
        raise _HostOnly(f"axis={axis}; only axis=1 is supported")
    if x.rank == 2:
        imp.alias(node.input[0], node.output[0], x)
    else:
        imp.add_layer(node, Flatten(name), [x], node.output[0], 2)


def _reshape(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    x = imp.data(node, name)
    target = imp.value_of(node, name, 1, "shape")
    if target is None:
        raise imp.error(node, name, "has no shape input")
    s = x.shape
    in_dims = [imp.batch, s.c, s.h, s.w] if x.rank == 4 else [imp.batch, s.c]
    dims = _reshape_dims(in_dims, target, int(_attrs(node).get("allowzero", 0)))
    if dims is None:
        raise imp.error(node, name, f"cannot reshape {in_dims} to {np.ravel(target).tolist()}")
    if dims == in_dims:
        imp.alias(node.input[0], node.output[0], x)
    elif dims == [imp.batch, s.size] and x.rank == 4:
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
    if squeeze and x.rank == 4 and x.shape.h == x.shape.w == 1 and (axes is None or spatial):
        imp.alias(node.input[0], node.output[0], replace(x, rank=2))
    elif not squeeze and x.rank == 2 and spatial:
        imp.alias(node.input[0], node.output[0], replace(x, rank=4))
    else:
        raise _HostOnly(f"axes {axes}; only [N, C, 1, 1] <-> [N, C] is supported")


def _squeeze(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _squeeze_like(imp, node, name, True)


def _unsqueeze(imp: _Importer, node: onnx.NodeProto, name: str) -> None:
    _squeeze_like(imp, node, name, False)


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
    s = x.shape
    dims = [imp.batch, s.c, s.h, s.w] if x.rank == 4 else [imp.batch, s.c]
    value = _ev_shape([np.broadcast_to(np.uint8(0), dims)], _attrs(node))  # shape only, no memory
    imp.consts[node.output[0]] = _Const(tuple(value.shape), value)
    imp.uses[imp.canon[node.input[0]]] -= 1  # reads the shape only, not the data


_Handler = Callable[[_Importer, onnx.NodeProto, str], None]

#: One handler per supported ONNX operator (Identity and Dropout are dropped before the walk).
_HANDLERS: dict[str, _Handler] = {
    "Conv": _conv,
    "Relu": _relu,
    "Clip": _clip,
    "BatchNormalization": _batchnorm,
    "MaxPool": _maxpool,
    "AveragePool": _avgpool,
    "GlobalAveragePool": _gap,
    "GlobalMaxPool": _gmp,
    "ReduceMean": _reduce_mean,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add,
    "Sum": _sum,
    "Concat": _concat,
    "Pad": _pad,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Shape": _shape,
}

#: Operators with subgraphs: an error with or without host operators.
_CONTROL_FLOW = ("If", "Loop", "Scan")

#: The operators named in the unsupported-operator error.
SUPPORTED_OPS: tuple[str, ...] = (*_HANDLERS, "Dropout", "Identity", "Constant")
