"""The networks of the public benchmark tables (``../shared/benchmarks/README.md``), as IR: a
NAS-Bench-201 network from its cell string, an Accel-NASBench (MnasNet / EfficientNet-B0 space)
network from its block choices. Without weights, as ``analyze`` and ``sweep`` take them;
``backend.float_model.with_random_weights`` gives them weights for ``emit``.

NAS-Bench-201 (Dong & Yang, ICLR 2020, section 2): 32x32x3 input; a 3x3 stem conv to 16 channels;
three stages of 5 cells at 16, 32 and 64 channels joined by residual reduction blocks; BN-ReLU,
global average pooling, a classifier. A cell is a DAG of 4 nodes: node j sums op(node i) over
i < j, ops ``none`` (no edge), ``skip_connect``, ``nor_conv_1x1`` and ``nor_conv_3x3`` (ReLU-Conv-BN:
the conv reads its input through a ReLU, ``in_relu``; the BN folds into it) and ``avg_pool_3x3``
(stride 1, padding 1, left out of the count). Batch norms fold into the convs before them; the last
one, after the final cell's sum, is a 1x1 depthwise conv with the ReLU, as the ONNX import makes it.

A node no edge reaches is zero in NAS-Bench-201. An op reading a zero node gives zero or, for a
conv, its batch norm's constant shift, which costs the accelerator nothing, so it is left out; a
cell whose output is zero (no path from its input) leaves the network's output constant, and is
built as the identity, so that the other cells' cost is still counted (NAS-Bench-201 trains such a
network to chance accuracy).
"""

from __future__ import annotations

import re

from fnas_hls.errors import FnasError
from fnas_hls.network.ir import INPUT, Add, Conv, Dense, GlobalAvgPool, Layer, Network, Pool, Shape

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_CELL_RE = re.compile(r"^\|(.+)\|\+\|(.+)\|\+\|(.+)\|$")


def parse_cellstr(cellstr: str) -> dict[tuple[int, int], str]:
    """NAS-Bench-201's ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` as {(from node, to node): op}."""
    m = _CELL_RE.match(cellstr.strip())
    if not m:
        raise FnasError(f"cell string {cellstr!r}: expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
    edges: dict[tuple[int, int], str] = {}
    for j, node in enumerate(m.groups(), start=1):
        parts = node.split("|")
        if len(parts) != j:
            raise FnasError(f"cell string {cellstr!r}: node {j} has {len(parts)} inputs; expected {j}")
        for part in parts:
            op, _, src = part.partition("~")
            if op not in NB201_OPS or not src.isdigit() or int(src) >= j:
                raise FnasError(
                    f"cell string {cellstr!r}: edge {part!r} into node {j}; accepted: op~i with i < {j}, "
                    f"op one of {', '.join(NB201_OPS)}"
                )
            edges[(int(src), j)] = op
    return edges


class _Builder:
    """Appends layers, each named in order, and keeps the current map's name."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []

    def add(self, layer: Layer, inputs: tuple[str, ...]) -> str:
        from dataclasses import replace

        self.layers.append(replace(layer, inputs=inputs))
        return layer.name


def nasbench201_network(cellstr: str, classes: int = 10, name: str = "nb201") -> Network:
    """The NAS-Bench-201 network of ``cellstr`` (32x32x3 input, CIFAR's ``classes``)."""
    edges = parse_cellstr(cellstr)
    b = _Builder()
    cur = b.add(Conv("stem", out=16, kernel=(3, 3), padding=(1, 1, 1, 1)), (INPUT,))
    channels = 16
    for stage, c in enumerate((16, 32, 64)):
        if stage:
            cur = _reduction(b, cur, channels, c, f"r{stage}")
            channels = c
        for k in range(5):
            cur = _cell(b, cur, c, edges, f"s{stage}c{k}")
    cur = b.add(Conv("lastact", out=channels, kernel=(1, 1), groups=channels, relu=True), (cur,))
    cur = b.add(GlobalAvgPool("gap"), (cur,))
    b.add(Dense("classifier", out=classes), (cur,))
    return Network(Shape(3, 32, 32), _live(b.layers), name)


def _live(layers: list[Layer]) -> tuple[Layer, ...]:
    """The layers the last one depends on (a cell built as the identity leaves its ops unread)."""
    needed = {layers[-1].name}
    for layer in reversed(layers):
        if layer.name in needed:
            needed.update(layer.inputs)
    return tuple(layer for layer in layers if layer.name in needed)


def _cell(b: _Builder, x: str, c: int, edges: dict[tuple[int, int], str], p: str) -> str:
    nodes: dict[int, str | None] = {0: x}  # None: a zero node
    for j in (1, 2, 3):
        terms: list[str] = []
        for i in range(j):
            src, op = nodes[i], edges[(i, j)]
            if op == "none" or src is None:
                continue
            if op == "skip_connect":
                terms.append(src)
            elif op == "avg_pool_3x3":
                pool = Pool(f"{p}n{j}e{i}_pool", "avg", (3, 3), (1, 1), (1, 1, 1, 1), count_pad=False)
                terms.append(b.add(pool, (src,)))
            else:
                k = 1 if op == "nor_conv_1x1" else 3
                conv = Conv(f"{p}n{j}e{i}_conv{k}", out=c, kernel=(k, k), padding=(k // 2,) * 4, in_relu=True)
                terms.append(b.add(conv, (src,)))
        if not terms:
            nodes[j] = None
        elif len(terms) == 1:
            nodes[j] = terms[0]
        else:
            nodes[j] = b.add(Add(f"{p}n{j}_sum"), tuple(terms))
    return nodes[3] if nodes[3] is not None else x


def _reduction(b: _Builder, x: str, c_in: int, c: int, p: str) -> str:
    a = b.add(Conv(f"{p}_a", out=c, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1), in_relu=True), (x,))
    a = b.add(Conv(f"{p}_b", out=c, kernel=(3, 3), padding=(1, 1, 1, 1), in_relu=True), (a,))
    s = b.add(Pool(f"{p}_pool", "avg", (2, 2), (2, 2)), (x,))
    s = b.add(Conv(f"{p}_short", out=c, kernel=(1, 1)), (s,))
    return b.add(Add(f"{p}_sum"), (a, s))


# --- Accel-NASBench: EfficientNet-B0's skeleton with searched MBConv blocks -----------------------

#: The skeleton (Accel-NASBench's ``configurationspaces/searchspaces.py``): per block its stride,
#: input and output channels.
MB_STRIDES = (1, 2, 2, 2, 1, 2, 1)
MB_IN = (32, 16, 24, 40, 80, 112, 192)
MB_OUT = (16, 24, 40, 80, 112, 192, 320)


def mnasnet_network(
    expand: tuple[int, ...],
    kernel: tuple[int, ...],
    layers: tuple[int, ...],
    se: tuple[bool, ...],
    act: str = "silu",
    classes: int = 1000,
    size: int = 224,
    name: str = "anb",
) -> Network:
    """An Accel-NASBench network: a 3x3 stride-2 stem to 32 channels; seven MBConv blocks (block b
    of ``layers[b]`` layers: the first takes the block's stride and channels, the others stride 1
    with a residual add; each a 1x1 expansion by ``expand[b]`` (none at 1), a ``kernel[b]``
    depthwise conv, squeeze-and-excitation on a quarter of the layer's input channels where
    ``se[b]``, a 1x1 projection without activation); a 1x1 head conv to 1280, global average
    pooling, a classifier. Batch norms fold into their convs; ``act`` (EfficientNet's SiLU by
    default) after every conv but the projections and the SE's last, which has a sigmoid."""
    from fnas_hls.network.activations import NAMED, Activation

    kind, consts = NAMED[act] if act in NAMED else (act, {})
    a = Activation(kind, **consts)
    b = _Builder()
    cur = b.add(Conv("stem", out=32, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1), act=a), (INPUT,))
    for blk in range(7):
        for i in range(layers[blk]):
            c_in, stride = (MB_IN[blk], MB_STRIDES[blk]) if i == 0 else (MB_OUT[blk], 1)
            cur = _mbconv(
                b, cur, c_in, MB_OUT[blk], expand[blk], kernel[blk], stride, se[blk], a, f"b{blk}l{i}"
            )
    cur = b.add(Conv("head", out=1280, kernel=(1, 1), act=a), (cur,))
    cur = b.add(GlobalAvgPool("gap"), (cur,))
    b.add(Dense("classifier", out=classes), (cur,))
    return Network(Shape(3, size, size), tuple(b.layers), name)


def _mbconv(
    b: _Builder, x: str, c_in: int, c_out: int, e: int, k: int, stride: int, se: bool, act, p: str
) -> str:
    from fnas_hls.network.activations import Activation
    from fnas_hls.network.ir import Scale

    h = c_in * e
    y = x if e == 1 else b.add(Conv(f"{p}_expand", out=h, kernel=(1, 1), act=act), (x,))
    pad = (k // 2,) * 4
    y = b.add(
        Conv(f"{p}_dw", out=h, kernel=(k, k), stride=(stride, stride), padding=pad, groups=h, act=act), (y,)
    )
    if se:
        s = b.add(GlobalAvgPool(f"{p}_se_pool"), (y,))
        s = b.add(Conv(f"{p}_se_reduce", out=max(1, c_in // 4), kernel=(1, 1), act=act), (s,))
        s = b.add(Conv(f"{p}_se_expand", out=h, kernel=(1, 1), act=Activation("sigmoid")), (s,))
        y = b.add(Scale(f"{p}_se"), (y, s))
    y = b.add(Conv(f"{p}_project", out=c_out, kernel=(1, 1)), (y,))
    if stride == 1 and c_in == c_out:
        y = b.add(Add(f"{p}_add"), (x, y))
    return y


def accel_nasbench_network(row: dict, act: str = "silu") -> Network:
    """The network of one row of ``accel-nasbench-mnasnet.csv`` (columns ``bK_e``, ``bK_k``,
    ``bK_l``, ``bK_se`` for K = 0..6)."""
    try:
        choices = [tuple(int(float(row[f"b{i}_{f}"])) for i in range(7)) for f in ("e", "k", "l", "se")]
    except (KeyError, ValueError) as exc:
        raise FnasError(
            f"Accel-NASBench row {row.get('id', '?')}: bad or missing block column ({exc})"
        ) from None
    e, k, n, se = choices
    return mnasnet_network(e, k, n, tuple(bool(v) for v in se), act=act, name=f"anb{row.get('id', '')}")


# --- MobileNets (the DPU's model-zoo figures are on them) ------------------------------------------


def _divisible(v: float, d: int = 8) -> int:
    """torchvision's rounding of a width-scaled channel count: to a multiple of ``d``, never below
    90% of ``v``."""
    c = max(d, int(v + d / 2) // d * d)
    return c + d if c < 0.9 * v else c


def mobilenet_v2_network(width: float = 1.0, size: int = 224, classes: int = 1000) -> Network:
    """MobileNetV2 (Sandler et al., CVPR 2018) with ReLU6: a stride-2 stem, 17 inverted residual
    blocks (1x1 expansion by t, a 3x3 depthwise conv, a linear 1x1 projection, a residual add where
    the shapes match), a 1x1 conv to 1280 (more for width > 1), pooling and a classifier."""
    from fnas_hls.network.activations import Activation

    relu6 = Activation("clip", lo=0.0, hi=6.0)
    cfg = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )
    b = _Builder()
    c = _divisible(32 * width)
    cur = b.add(Conv("stem", out=c, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1), act=relu6), (INPUT,))
    for i, (t, ch, n, s) in enumerate(cfg):
        out = _divisible(ch * width)
        for j in range(n):
            stride, p, h = (s if j == 0 else 1), f"ir{i}_{j}", c * t
            y = cur if t == 1 else b.add(Conv(f"{p}_expand", out=h, kernel=(1, 1), act=relu6), (cur,))
            dw = Conv(
                f"{p}_dw",
                out=h,
                kernel=(3, 3),
                stride=(stride, stride),
                padding=(1,) * 4,
                groups=h,
                act=relu6,
            )
            y = b.add(dw, (y,))
            y = b.add(Conv(f"{p}_project", out=out, kernel=(1, 1)), (y,))
            cur = b.add(Add(f"{p}_add"), (cur, y)) if stride == 1 and c == out else y
            c = out
    last = _divisible(1280 * max(1.0, width))
    cur = b.add(Conv("head", out=last, kernel=(1, 1), act=relu6), (cur,))
    cur = b.add(GlobalAvgPool("gap"), (cur,))
    b.add(Dense("classifier", out=classes), (cur,))
    return Network(Shape(3, size, size), tuple(b.layers), f"mobilenetv2_{width:g}_{size}")


def mobilenet_v1_network(size: int = 224, classes: int = 1000) -> Network:
    """MobileNetV1 (Howard et al., 2017) with ReLU: a stride-2 stem, 13 depthwise-separable pairs
    (3x3 depthwise, 1x1 pointwise), pooling and a classifier."""
    cfg = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *((512, 1),) * 5, (1024, 2), (1024, 1))
    b = _Builder()
    cur = b.add(Conv("stem", out=32, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1), relu=True), (INPUT,))
    c = 32
    for i, (out, s) in enumerate(cfg):
        dw = Conv(f"sep{i}_dw", out=c, kernel=(3, 3), stride=(s, s), padding=(1,) * 4, groups=c, relu=True)
        cur = b.add(dw, (cur,))
        cur = b.add(Conv(f"sep{i}_pw", out=out, kernel=(1, 1), relu=True), (cur,))
        c = out
    cur = b.add(GlobalAvgPool("gap"), (cur,))
    b.add(Dense("classifier", out=classes), (cur,))
    return Network(Shape(3, size, size), tuple(b.layers), f"mobilenetv1_{size}")
