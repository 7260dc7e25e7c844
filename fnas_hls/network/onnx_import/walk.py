"""Steps 2 and 3: normalize the graph, then walk its nodes in order, tracking which IR layer produces
each tensor (``_Importer``). A node whose inputs are all stored constants is evaluated with numpy
(``constants._CONST_OPS``); any other goes to its operator's handler (``handlers._HANDLERS``), and
one the back end lacks becomes a host layer or an error."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.external_data_helper import uses_external_data

from fnas_hls.errors import FnasError
from fnas_hls.network.ir import INPUT, MERGE_OPS, Conv, Dense, HostOp, Layer, Network, Pads, Shape
from fnas_hls.network.onnx_import.constants import _CONST_OPS, _MAX_FOLDED
from fnas_hls.network.onnx_import.qonnx import is_qonnx_quant, weight_grid
from fnas_hls.network.onnx_import.qonnx import quant as qonnx_quant
from fnas_hls.network.onnx_import.reading import _attrs, _dims, _feature_shape, _first_line

#: Graph names that exporters write by default; the file name says more.
_DEFAULT_GRAPH_NAMES = ("", "main_graph", "torch_jit", "torch-jit-export", "tf2onnx")


@dataclass(frozen=True)
class ImportResult:
    """The imported network and what the importer did to get it (one readable line each)."""

    network: Network
    notes: tuple[str, ...] = ()


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
    rank: int  # 4: [N, C, H, W]; 3: [N, C, L] (a map of one row); 2: [N, C]
    pad: Pads | None = None  # zero padding of a Pad node, waiting for the Conv/AveragePool reading it
    relu: bool = False  # a ReLU that no layer before it took, waiting for the Convs reading it


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
        self.quant_grids: list[int | None] = []  # each folded QONNX Quant's power-of-two grid, or None
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
        if value.producer < 0 or value.pad is not None or value.relu:
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
            want = shape.as_list() if rank == 4 else ([shape.c, shape.w] if rank == 3 else [shape.c])
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
    # the registry is imported here, not at the top: its handler modules import this one
    from fnas_hls.network.onnx_import.handlers import _HANDLERS, SUPPORTED_OPS

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
        if is_qonnx_quant(node.domain, node.op_type):
            if not _all_stored(imp, node):
                raise imp.error(
                    node,
                    name,
                    "a QONNX Quant of a computed tensor (activations): fnas-hls chooses each map's "
                    "number format itself (power-of-two scales, round half up), which would not match "
                    "this quantizer bit for bit; export with weight quantization only (Brevitas: no "
                    "act_quant / return_quant_tensor on activations)",
                )
            xs = [imp.consts[t].value if t else None for t in node.input]
            try:
                value = qonnx_quant(xs, _attrs(node))
            except (ValueError, TypeError, IndexError) as exc:
                raise imp.error(node, name, f"cannot evaluate this Quant ({_first_line(exc)})") from None
            imp.consts[node.output[0]] = _Const(tuple(value.shape), value)
            imp.quant_grids.append(weight_grid(xs))
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
    if imp.quant_grids:
        po2 = [g for g in imp.quant_grids if g is not None]
        imp.note(
            f"{len(imp.quant_grids)} QONNX Quant node(s) on weights folded into constants; {len(po2)} with "
            "power-of-two scales and zero point 0 (their weights lie on a 2**-f grid, held exactly by "
            "fnas-hls's formats wherever they are as fine), "
            f"{len(imp.quant_grids) - len(po2)} with other scales (fnas-hls re-quantizes those: not exact)"
        )
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


#: Operators with subgraphs: an error with or without host operators.
_CONTROL_FLOW = ("If", "Loop", "Scan")
