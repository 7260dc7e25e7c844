"""What the cost models know of a tiled layer: its geometry as the conv element sees it (per-group
channels, output size, kernel, stride; ``ConvGeometry``), which layers the element tiles
(``is_tiled``), and ``cdiv``, the ceiling division every model uses."""

from __future__ import annotations

from dataclasses import dataclass

from fnas_hls.model.tiling import Tiling
from fnas_hls.network.ir import Conv, Dense, LayerInfo


def act_kind(layer: object) -> str:
    """The kind of a layer's output activation other than ReLU, '' when it has none."""
    act = getattr(layer, "act", None)
    return act.kind if act is not None else ""


def cdiv(a, b):
    """Ceiling division, for ints and numpy arrays."""
    return -(-a // b)


@dataclass(frozen=True)
class ConvGeometry:
    """What the conv element's cost depends on: per-group channels, output size, kernel, stride."""

    groups: int
    M: int  # output channels per group
    N: int  # input channels per group
    R: int  # output rows
    C: int  # output columns
    Kh: int
    Kw: int
    Sh: int = 1
    Sw: int = 1
    act: str = ""  # the output activation's kind other than ReLU ('' none): STORE's extra work
    dw: bool = False  # a depthwise layer as the element runs it: its Tm lanes are output channels,
    # each reading its own input channel (one group of M = all outputs, N = 1)
    # a pointwise layer of the shared engine run as one row over maps whose rows are padded to whole
    # beats (``model.shared_views.engine_geometry``): the words of each of its R rows in the one row, and
    # the pixels each begins with (0, 0: none); COMPUTE skips the pad words of a tile of whole rows
    row_words: int = 0
    row_pixels: int = 0

    @classmethod
    def element_of(cls, li: LayerInfo) -> ConvGeometry:
        """The geometry of the sequential style's element: a depthwise convolution (every group
        one input channel) puts its channels on the Tm lanes, not one MAC per group (``dw``)."""
        g = cls.of(li)
        if g.groups > 1 and g.N == 1:
            return cls(1, g.groups * g.M, 1, g.R, g.C, g.Kh, g.Kw, g.Sh, g.Sw, g.act, dw=True)
        return g

    @classmethod
    def of(cls, li: LayerInfo) -> ConvGeometry:
        layer = li.layer
        if isinstance(layer, Conv):
            g = layer.groups
            return cls(
                g,
                layer.out // g,
                li.in_shape.c // g,
                li.out_shape.h,
                li.out_shape.w,
                layer.kernel[0],
                layer.kernel[1],
                layer.stride[0],
                layer.stride[1],
                act_kind(layer),
            )
        if isinstance(layer, Dense):
            return cls(1, layer.out, li.in_shape.size, 1, 1, 1, 1, act=act_kind(layer))
        raise TypeError(f"layer '{li.name}' ({layer.op}) is not a conv element")

    @property
    def macs(self) -> int:
        return self.groups * self.M * self.N * self.R * self.C * self.Kh * self.Kw

    def full(self) -> Tiling:
        """The untiled design: one tile holds the whole layer."""
        return Tiling(self.M, self.N, self.R, self.C)


#: Layers the conv processing element implements, and so the DSE tiles.
TILED_OPS = (Conv, Dense)


def is_tiled(li: LayerInfo) -> bool:
    return isinstance(li.layer, TILED_OPS)
