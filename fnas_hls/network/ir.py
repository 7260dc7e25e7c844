"""The network IR: the one description of a CNN that every stage reads and writes.

A ``Network`` is an input shape and an ordered tuple of layers (frozen dataclasses): a DAG in
topological order. Each layer reads the previous layer's output unless it names its ``inputs``:
earlier layers, or ``INPUT``, the network's input (layers imported from a branching ONNX graph
do). ``Add`` (a residual sum) and ``Concat`` (channels stacked) read two or more. Padding is always
concrete here; loaders resolve ``same``/``valid``.
Shapes are (channels, height, width); a flat vector of n features is (n, 1, 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from fnas_hls.errors import FnasError
from fnas_hls.network.activations import Activation

#: The name by which a layer's ``inputs`` refer to the network's input (no layer may take it).
INPUT = "@input"

Pair = tuple[int, int]
Pads = tuple[int, int, int, int]  # top, left, bottom, right


@dataclass(frozen=True)
class Shape:
    """A feature map: channels, height, width."""

    c: int
    h: int
    w: int

    @property
    def size(self) -> int:
        return self.c * self.h * self.w

    def as_list(self) -> list[int]:
        return [self.c, self.h, self.w]

    def __str__(self) -> str:
        return f"{self.c}x{self.h}x{self.w}"


def _one_activation(layer: Conv | Dense | Add) -> None:
    if layer.relu and layer.act is not None:
        raise FnasError(f"layer '{layer.name}' has both relu and act ({layer.act}); give one")


def output_activation(layer: object) -> str:
    """What a layer applies to its output, for tables and messages: ``relu``, an activation, or ``-``."""
    act = getattr(layer, "act", None)
    if act is not None:
        return str(act)
    return "relu" if getattr(layer, "relu", False) else "-"


def _window_out(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int) -> int:
    return (size + pad_lo + pad_hi - kernel) // stride + 1


def same_padding(in_hw: Pair, kernel: Pair, stride: Pair) -> Pads:
    """Padding that gives ``ceil(in / stride)`` outputs, the extra row/column at the end (SAME_UPPER)."""
    pads_lo, pads_hi = [], []
    for size, k, s in zip(in_hw, kernel, stride, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        pads_lo.append(total // 2)
        pads_hi.append(total - total // 2)
    return (pads_lo[0], pads_lo[1], pads_hi[0], pads_hi[1])


@dataclass(frozen=True)
class Conv:
    """2-D convolution with optional bias and a fused ReLU or other activation (``act``); ``groups``
    splits channels."""

    name: str
    out: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pads = (0, 0, 0, 0)
    groups: int = 1
    bias: bool = True
    relu: bool = False
    inputs: tuple[str, ...] = ()
    weight: np.ndarray | None = field(default=None, compare=False, repr=False)  # (out, in/groups, kh, kw)
    bias_value: np.ndarray | None = field(default=None, compare=False, repr=False)  # (out,)
    act: Activation | None = None  # the output activation when it is not a ReLU
    in_relu: bool = False  # a ReLU on its input as it reads it (pre-activation: ReLU-Conv-BN)

    op = "conv"

    def __post_init__(self) -> None:
        _one_activation(self)

    def out_shape(self, x: Shape) -> Shape:
        kh, kw = self.kernel
        sh, sw = self.stride
        pt, pl, pb, pr = self.padding
        if x.c % self.groups or self.out % self.groups:
            raise FnasError(
                f"layer '{self.name}': groups={self.groups} must divide input channels {x.c} "
                f"and output channels {self.out}"
            )
        oh, ow = _window_out(x.h, kh, sh, pt, pb), _window_out(x.w, kw, sw, pl, pr)
        if oh < 1 or ow < 1:
            raise FnasError(
                f"layer '{self.name}': kernel {kh}x{kw} with padding {list(self.padding)} does not fit "
                f"its {x} input"
            )
        return Shape(self.out, oh, ow)

    def params(self, x: Shape) -> int:
        return self.out * (x.c // self.groups) * self.kernel[0] * self.kernel[1] + (
            self.out if self.bias else 0
        )

    def macs(self, x: Shape) -> int:
        y = self.out_shape(x)
        return y.size * (x.c // self.groups) * self.kernel[0] * self.kernel[1]


class _Weightless:
    """A layer with no parameters and no multiply-accumulates."""

    def params(self, x: Shape) -> int:
        return 0

    def macs(self, x: Shape) -> int:
        return 0


@dataclass(frozen=True)
class Pool(_Weightless):
    """Max or average pooling over a window. An average counts padding taps as zeros
    (``count_pad``, torch's default) or divides by the real taps of each window only (ONNX's
    default, ``count_include_pad=0``)."""

    name: str
    kind: str  # "max" | "avg"
    kernel: Pair
    stride: Pair
    padding: Pads = (0, 0, 0, 0)
    relu: bool = False
    inputs: tuple[str, ...] = ()
    count_pad: bool = True

    def counts(self, x: Shape) -> np.ndarray:
        """The taps of each output window that fall on the map (R, C): its divisor when padding
        does not count."""
        y = self.out_shape(x)
        pt, pl = self.padding[0], self.padding[1]

        def inside(n_out: int, k: int, s: int, p: int, size: int) -> np.ndarray:
            lo = np.arange(n_out) * s - p
            return np.minimum(lo + k, size) - np.maximum(lo, 0)

        rows = inside(y.h, self.kernel[0], self.stride[0], pt, x.h)
        cols = inside(y.w, self.kernel[1], self.stride[1], pl, x.w)
        return rows[:, None] * cols[None, :]

    @property
    def op(self) -> str:
        return f"{self.kind}pool"

    def out_shape(self, x: Shape) -> Shape:
        pt, pl, pb, pr = self.padding
        oh = _window_out(x.h, self.kernel[0], self.stride[0], pt, pb)
        ow = _window_out(x.w, self.kernel[1], self.stride[1], pl, pr)
        if oh < 1 or ow < 1:
            raise FnasError(f"layer '{self.name}': pooling window {self.kernel} does not fit its {x} input")
        return Shape(x.c, oh, ow)


@dataclass(frozen=True)
class GlobalAvgPool(_Weightless):
    """Average over the whole height and width of each channel."""

    name: str
    inputs: tuple[str, ...] = ()

    op = "gap"

    def out_shape(self, x: Shape) -> Shape:
        return Shape(x.c, 1, 1)


@dataclass(frozen=True)
class Flatten(_Weightless):
    """Reshape (C, H, W) to a vector of C*H*W features (C-order, as torch and ONNX do)."""

    name: str
    inputs: tuple[str, ...] = ()

    op = "flatten"

    def out_shape(self, x: Shape) -> Shape:
        return Shape(x.size, 1, 1)


@dataclass(frozen=True)
class Dense:
    """Fully connected layer on the flattened input; optional bias and fused ReLU."""

    name: str
    out: int
    bias: bool = True
    relu: bool = False
    inputs: tuple[str, ...] = ()
    weight: np.ndarray | None = field(default=None, compare=False, repr=False)  # (out, in)
    bias_value: np.ndarray | None = field(default=None, compare=False, repr=False)
    act: Activation | None = None  # the output activation when it is not a ReLU

    op = "fc"

    def __post_init__(self) -> None:
        _one_activation(self)

    def out_shape(self, x: Shape) -> Shape:
        return Shape(self.out, 1, 1)

    def params(self, x: Shape) -> int:
        return self.out * x.size + (self.out if self.bias else 0)

    def macs(self, x: Shape) -> int:
        return self.out * x.size


@dataclass(frozen=True)
class HostOp(_Weightless):
    """An operator the FPGA back end does not implement; it runs on the host and costs no FPGA time."""

    name: str
    op_type: str
    output: Shape
    inputs: tuple[str, ...] = ()

    op = "host"

    def out_shape(self, x: Shape) -> Shape:
        return self.output


@dataclass(frozen=True)
class Add(_Weightless):
    """The element-wise sum of two or more maps of one shape (a residual connection); optional ReLU
    or other activation (``act``)."""

    name: str
    inputs: tuple[str, ...] = ()
    relu: bool = False
    act: Activation | None = None

    op = "add"

    def __post_init__(self) -> None:
        _one_activation(self)

    def combine(self, shapes: tuple[Shape, ...]) -> Shape:
        if len(shapes) < 2:
            raise FnasError(f"layer '{self.name}' (add) reads {len(shapes)} map(s); it needs two or more")
        if any(s != shapes[0] for s in shapes):
            raise FnasError(
                f"layer '{self.name}' (add) sums maps of different shapes: {', '.join(map(str, shapes))}"
            )
        return shapes[0]

    def out_shape(self, x: Shape) -> Shape:
        return x


@dataclass(frozen=True)
class Concat(_Weightless):
    """Two or more maps of one height and width stacked along the channels, in ``inputs`` order."""

    name: str
    inputs: tuple[str, ...] = ()

    op = "concat"

    def combine(self, shapes: tuple[Shape, ...]) -> Shape:
        if len(shapes) < 2:
            raise FnasError(f"layer '{self.name}' (concat) reads {len(shapes)} map(s); it needs two or more")
        if any((s.h, s.w) != (shapes[0].h, shapes[0].w) for s in shapes):
            raise FnasError(
                f"layer '{self.name}' (concat) stacks maps of different heights or widths: "
                f"{', '.join(map(str, shapes))}"
            )
        return Shape(sum(s.c for s in shapes), shapes[0].h, shapes[0].w)

    def out_shape(self, x: Shape) -> Shape:
        return x


def map_roots(infos: Iterable[LayerInfo]) -> dict[str, str]:
    """Each layer's map (and INPUT's): its own, but a flatten's is its source's (a change of view)."""
    root = {INPUT: INPUT}
    for li in infos:
        root[li.name] = root[li.sources[0]] if isinstance(li.layer, Flatten) else li.name
    return root


#: Layers that read two or more maps, and combine them.
@dataclass(frozen=True)
class Scale(_Weightless):
    """A map times a vector of one value per channel, broadcast over height and width: the last
    step of squeeze-and-excitation. ``inputs`` are the map, then the vector (a (C, 1, 1) map)."""

    name: str
    inputs: tuple[str, ...] = ()

    op = "scale"

    def combine(self, shapes: tuple[Shape, ...]) -> Shape:
        if len(shapes) != 2:
            raise FnasError(
                f"layer '{self.name}' (scale) reads {len(shapes)} map(s); it needs a map and a vector"
            )
        x, s = shapes
        if (s.c, s.h, s.w) != (x.c, 1, 1):
            raise FnasError(
                f"layer '{self.name}' (scale) multiplies a {x} map by {s}; the vector must be {x.c}x1x1"
            )
        return x

    def out_shape(self, x: Shape) -> Shape:
        return x


MERGE_OPS = (Add, Concat, Scale)

Layer = Conv | Pool | GlobalAvgPool | Flatten | Dense | HostOp | Add | Concat | Scale


@dataclass(frozen=True)
class LayerInfo:
    """A layer with its inferred input and output shapes and its counts."""

    layer: Layer
    index: int
    in_shape: Shape
    out_shape: Shape
    macs: int
    params: int
    sources: tuple[str, ...] = ()  # the layers (or INPUT) it reads, in order
    in_shapes: tuple[Shape, ...] = ()  # their shapes

    @property
    def name(self) -> str:
        return self.layer.name


@dataclass(frozen=True)
class Network:
    """A CNN: input shape and layers. Construction checks names and infers every shape."""

    input: Shape
    layers: tuple[Layer, ...]
    name: str = "net"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise FnasError(f"network '{self.name}' has no layers")
        seen: set[str] = set()
        for layer in self.layers:
            if not layer.name or layer.name == INPUT:
                raise FnasError(
                    f"network '{self.name}': a layer has the name {layer.name!r}, which is reserved"
                )
            if layer.name in seen:
                raise FnasError(f"network '{self.name}': layer name '{layer.name}' is used twice")
            seen.add(layer.name)
        _ = self.info  # infer shapes now so a bad network fails at construction

    @cached_property
    def info(self) -> tuple[LayerInfo, ...]:
        shapes: dict[str, Shape] = {INPUT: self.input}
        out: list[LayerInfo] = []
        prev = INPUT
        for i, layer in enumerate(self.layers):
            sources = layer.inputs or (prev,)
            missing = [n for n in sources if n not in shapes]
            if missing:
                raise FnasError(f"layer '{layer.name}' reads '{missing[0]}', which no earlier layer produces")
            xs = tuple(shapes[n] for n in sources)
            if isinstance(layer, MERGE_OPS):
                y = layer.combine(xs)
            elif len(xs) > 1 and not isinstance(layer, HostOp):
                raise FnasError(f"layer '{layer.name}' ({layer.op}) reads {len(xs)} maps; it takes one")
            else:
                y = layer.out_shape(xs[0])
            x = xs[0]
            out.append(LayerInfo(layer, i, x, y, layer.macs(x), layer.params(x), sources, xs))
            shapes[layer.name] = y
            prev = layer.name
        return tuple(out)

    def __iter__(self) -> Iterator[LayerInfo]:
        return iter(self.info)

    def __getitem__(self, name: str) -> LayerInfo:
        for li in self.info:
            if li.name == name:
                return li
        raise KeyError(name)

    @property
    def output(self) -> Shape:
        return self.info[-1].out_shape

    @property
    def macs(self) -> int:
        return sum(li.macs for li in self.info)

    @property
    def params(self) -> int:
        return sum(li.params for li in self.info)

    def readers(self) -> dict[str, list[str]]:
        """Each layer's name (and INPUT) to the layers that read its output, in order."""
        out: dict[str, list[str]] = {INPUT: [], **{li.name: [] for li in self.info}}
        for li in self.info:
            for src in li.sources:
                out[src].append(li.name)
        return out

    @property
    def is_chain(self) -> bool:
        """True when every layer reads the one before it (what the HLS back end renders)."""
        names = [INPUT] + [li.name for li in self.info]
        return all(not li.layer.inputs or li.layer.inputs == (names[i],) for i, li in enumerate(self.info))

    @property
    def has_weights(self) -> bool:
        return all(li.layer.weight is not None for li in self.info if isinstance(li.layer, (Conv, Dense)))
