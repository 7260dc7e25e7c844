"""The architecture YAML that a person writes by hand, to and from the network IR.

```yaml
input: [1, 28, 28]
layers:
  - {type: conv, out: 18, kernel: 5, stride: 1, padding: same, relu: true}
  - {type: maxpool, kernel: 2, stride: 2}
  - {type: conv, out: 36, kernel: 3, padding: 1, groups: 2, relu: true}
  - {type: gap}
  - {type: fc, out: 10}
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fnas_hls.errors import FnasError
from fnas_hls.network.activations import Activation, parse_activation
from fnas_hls.network.ir import (
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
from fnas_hls.yaml_io import LINE, load_yaml, parse_yaml, where

#: Fields each layer type accepts (``type`` and ``name`` are accepted by all).
LAYER_FIELDS: dict[str, tuple[str, ...]] = {
    "conv": ("out", "kernel", "stride", "padding", "groups", "bias", "relu", "act", "in_relu"),
    "maxpool": ("kernel", "stride", "padding", "relu"),
    "avgpool": ("kernel", "stride", "padding", "relu", "count_include_pad"),
    "gap": (),
    "flatten": (),
    "fc": ("out", "bias", "relu", "act"),
}
_PREFIX = {
    "conv": "conv",
    "maxpool": "pool",
    "avgpool": "pool",
    "gap": "gap",
    "flatten": "flatten",
    "fc": "fc",
}


class _Fields:
    """Reads typed fields of one YAML mapping, naming the place and field on any fault."""

    def __init__(self, mapping: dict[str, Any], place: str) -> None:
        self.m = mapping
        self.place = place

    def fail(self, field: str, accepted: str, got: Any) -> FnasError:
        return FnasError(f"{self.place}: field '{field}' must be {accepted}, got {got!r}")

    def int(self, field: str, default: int | None = None, minimum: int = 1) -> int:
        if field not in self.m:
            if default is None:
                raise FnasError(f"{self.place}: missing field '{field}'")
            return default
        v = self.m[field]
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.fail(field, f"an integer >= {minimum}", v)
        return v

    def bool(self, field: str, default: bool) -> bool:
        v = self.m.get(field, default)
        if not isinstance(v, bool):
            raise self.fail(field, "true or false", v)
        return v

    def act(self) -> Activation | None:
        """The ``act`` field (an activation other than ReLU), or None."""
        return parse_activation(self.m["act"], self.place) if "act" in self.m else None

    def pair(self, field: str, default: Pair | None = None) -> Pair:
        if field not in self.m:
            if default is None:
                raise FnasError(f"{self.place}: missing field '{field}'")
            return default
        v = self.m[field]
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
            return (v, v)
        if (
            isinstance(v, list)
            and len(v) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v)
        ):
            return (v[0], v[1])
        raise self.fail(field, "a positive integer or [height, width]", v)

    def padding(self, x: Shape, kernel: Pair, stride: Pair) -> Pads:
        v = self.m.get("padding", 0)
        if v == "same":
            return same_padding((x.h, x.w), kernel, stride)
        if v == "valid":
            return (0, 0, 0, 0)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            return (v, v, v, v)
        if isinstance(v, list) and all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in v):
            if len(v) == 2:
                return (v[0], v[1], v[0], v[1])
            if len(v) == 4:
                return (v[0], v[1], v[2], v[3])
        raise self.fail("padding", "same, valid, an integer >= 0 or [top, left, bottom, right]", v)


def network_from_dict(doc: Any, source: str = "<arch>") -> Network:
    """Build a Network from the YAML form (as loaded by ``load_yaml``)."""
    if not isinstance(doc, dict):
        raise FnasError(f"{source}: an architecture is a mapping with 'input' and 'layers'")
    unknown = sorted(k for k in doc if k not in ("input", "layers", "name", LINE))
    if unknown:
        raise FnasError(f"{where(source, doc)}: unknown field '{unknown[0]}'; accepted: input, layers, name")
    inp = doc.get("input")
    if (
        not isinstance(inp, list)
        or len(inp) != 3
        or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in inp)
    ):
        raise FnasError(f"{where(source, doc)}: field 'input' must be [channels, height, width], got {inp!r}")
    items = doc.get("layers")
    if not isinstance(items, list) or not items:
        raise FnasError(f"{where(source, doc)}: field 'layers' must be a non-empty list of layers")
    name = doc.get("name", Path(source).stem if source != "<arch>" else "net")
    if not isinstance(name, str) or not name:
        raise FnasError(f"{where(source, doc)}: field 'name' must be a non-empty string, got {name!r}")

    x = Shape(*inp)
    layers: list[Layer] = []
    counters: dict[str, int] = {}
    for i, item in enumerate(items):
        place = f"{where(source, item)}: layers[{i}]"
        if not isinstance(item, dict) or "type" not in item:
            raise FnasError(f"{place}: each layer is a mapping with a 'type' ({', '.join(LAYER_FIELDS)})")
        kind = item["type"]
        if kind not in LAYER_FIELDS:
            raise FnasError(f"{place}: unknown layer type {kind!r}; accepted: {', '.join(LAYER_FIELDS)}")
        place = f"{place} ({kind})"
        extra = sorted(k for k in item if k not in (*LAYER_FIELDS[kind], "type", "name", LINE))
        if extra:
            accepted = ", ".join(("name", *LAYER_FIELDS[kind]))
            raise FnasError(f"{place}: unknown field '{extra[0]}'; accepted: {accepted}")
        prefix = _PREFIX[kind]
        counters[prefix] = counters.get(prefix, 0) + 1
        lname = item.get("name", f"{prefix}{counters[prefix]}")
        if not isinstance(lname, str) or not lname:
            raise FnasError(f"{place}: field 'name' must be a non-empty string, got {lname!r}")
        f = _Fields(item, place)
        layer = _build_layer(kind, lname, f, x)
        try:
            x = layer.out_shape(x)
        except FnasError as exc:
            raise FnasError(f"{place}: {exc}") from None
        layers.append(layer)
    try:
        return Network(Shape(*inp), tuple(layers), name=name)
    except FnasError as exc:
        raise FnasError(f"{source}: {exc}") from None


def _build_layer(kind: str, name: str, f: _Fields, x: Shape) -> Layer:
    if kind == "conv":
        kernel = f.pair("kernel")
        stride = f.pair("stride", (1, 1))
        return Conv(
            name=name,
            out=f.int("out"),
            kernel=kernel,
            stride=stride,
            padding=f.padding(x, kernel, stride),
            groups=f.int("groups", 1),
            bias=f.bool("bias", True),
            relu=f.bool("relu", False),
            act=f.act(),
            in_relu=f.bool("in_relu", False),
        )
    if kind in ("maxpool", "avgpool"):
        kernel = f.pair("kernel")
        stride = f.pair("stride", kernel)
        pads = f.padding(x, kernel, stride)
        count = f.bool("count_include_pad", True) if kind == "avgpool" else True
        return Pool(name, kind[:3], kernel, stride, pads, relu=f.bool("relu", False), count_pad=count)
    if kind == "gap":
        return GlobalAvgPool(name)
    if kind == "flatten":
        return Flatten(name)
    return Dense(name, out=f.int("out"), bias=f.bool("bias", True), relu=f.bool("relu", False), act=f.act())


def load_network_yaml(path: str | Path) -> Network:
    """Read an architecture YAML file into the IR."""
    return network_from_dict(load_yaml(path, "architecture file"), str(path))


def parse_network_yaml(text: str, source: str = "<arch>") -> Network:
    return network_from_dict(parse_yaml(text, source), source)


def _scalar_or_pair(p: Pair) -> int | list[int]:
    return p[0] if p[0] == p[1] else list(p)


def _pads(p: Pads) -> int | list[int]:
    return p[0] if len(set(p)) == 1 else list(p)


def network_to_dict(net: Network) -> dict[str, Any]:
    """The YAML form of ``net`` (padding written out as numbers). Host layers cannot be written."""
    layers: list[dict[str, Any]] = []
    for layer in net.layers:
        if isinstance(layer, Conv):
            d: dict[str, Any] = {"type": "conv", "name": layer.name, "out": layer.out}
            d["kernel"] = _scalar_or_pair(layer.kernel)
            d["stride"] = _scalar_or_pair(layer.stride)
            d["padding"] = _pads(layer.padding)
            if layer.groups != 1:
                d["groups"] = layer.groups
            if not layer.bias:
                d["bias"] = False
            d["relu"] = layer.relu
            if layer.act is not None:
                d["act"] = layer.act.to_dict()
            if layer.in_relu:
                d["in_relu"] = True
        elif isinstance(layer, Pool):
            d = {"type": layer.op, "name": layer.name, "kernel": _scalar_or_pair(layer.kernel)}
            d["stride"] = _scalar_or_pair(layer.stride)
            if any(layer.padding):
                d["padding"] = _pads(layer.padding)
            if layer.relu:
                d["relu"] = True
            if not layer.count_pad:
                d["count_include_pad"] = False
        elif isinstance(layer, GlobalAvgPool):
            d = {"type": "gap", "name": layer.name}
        elif isinstance(layer, Flatten):
            d = {"type": "flatten", "name": layer.name}
        elif isinstance(layer, Dense):
            d = {"type": "fc", "name": layer.name, "out": layer.out}
            if not layer.bias:
                d["bias"] = False
            if layer.relu:
                d["relu"] = True
            if layer.act is not None:
                d["act"] = layer.act.to_dict()
        elif isinstance(layer, HostOp):
            raise FnasError(
                f"layer '{layer.name}' is a host operator ({layer.op_type}); the YAML form has none"
            )
        else:  # pragma: no cover - the Layer union is closed
            raise TypeError(type(layer))
        layers.append(d)
    return {"name": net.name, "input": net.input.as_list(), "layers": layers}


def network_to_yaml(net: Network) -> str:
    """The YAML text of ``net``, one flow-style line per layer."""
    doc = network_to_dict(net)
    lines = [f"name: {doc['name']}", f"input: {doc['input']}", "layers:"]
    for d in doc["layers"]:
        lines.append("  - " + yaml.safe_dump(d, default_flow_style=True, sort_keys=False, width=200).strip())
    return "\n".join(lines) + "\n"
