"""The geometry the shared engine runs a layer in (``engine_geometry``): a depthwise layer on its
diagonal, a pointwise layer as one row of pixels (its input channels stacked as kernel rows where
``stack_options`` allow; a fully connected head's inputs likewise), a layer one row high of row
stride above 1 over the rows it reads alone,
a layer's kernel rows folded onto its input channels (``folds_rows``); the descriptor describes the
view (the fold also a row shift a channel in the engine's load)."""

from __future__ import annotations

import numpy as np

from fnas_hls.model.geometry import ConvGeometry
from fnas_hls.network.ir import Conv, Dense, LayerInfo


def is_pointwise(li: LayerInfo) -> bool:
    """A 1x1 convolution of stride 1 and no padding over a map of more than one row: each output
    pixel reads its own input pixel, so the rows of a map are only a view of its R*C pixels."""
    layer = li.layer
    return (
        isinstance(layer, Conv)
        and layer.kernel == (1, 1)
        and layer.stride == (1, 1)
        and not any(layer.padding)
        and li.out_shape.h > 1
        and not engine_geometry(li).dw
    )


def skips_rows(li: LayerInfo) -> bool:
    """A convolution one row high of row stride above 1, without top or bottom padding (ResNet's
    1x1 stride-2 downsampling): it reads every Sh-th row alone, so the engine reads only those,
    as a map whose rows are Sh*IW words apart (``engine_geometry``); a window of Tr rows loads Tr
    rows, not (Tr - 1)*Sh + 1."""
    layer = li.layer
    return (
        isinstance(layer, Conv)
        and layer.kernel[0] == 1
        and layer.stride[0] > 1
        and layer.padding[0] == layer.padding[2] == 0
        and not (layer.groups > 1 and layer.groups == li.in_shape.c == li.out_shape.c)
    )


def stacks_a_vector(li: LayerInfo) -> bool:
    """A fully connected layer on a map of one pixel (a global pooling's output, a classifier head): its
    N inputs are N channels of one word, one run of words in DDR."""
    return isinstance(li.layer, Dense) and li.in_shape.h == li.in_shape.w == 1


def pads_columns(li: LayerInfo, stack: int) -> bool:
    """Whether the engine runs layer ``li`` at ``stack`` in a tile of more columns than its map has: a
    stacked fully connected layer (``stacks_a_vector``) has one output pixel, so its Q taps would
    revisit each accumulator every iteration; its tile's Tc columns (the DSE's: at least the engine's
    accumulate distance) are its one column and Tc - 1 past the map, which LOAD_IN reads as zeros and
    STORE leaves unwritten, as in any edge tile."""
    return stack > 1 and stacks_a_vector(li)


def stack_options(li: LayerInfo, k_words: int, exact_sums: bool) -> tuple[int, ...]:
    """The stacks (``engine_geometry``) a pointwise layer of one group, or a fully connected layer on a
    map of one pixel (``stacks_a_vector``), may take: each Q > 1 that divides its N input channels, at
    most ``k_words`` (the weight tiles' depth, set by the network's largest kernel: a stack of Q taps
    fits it); none where sums are not exact (``exact_sums``: integer arithmetic; in float32 a stack
    would change the order the engine adds its products in)."""
    layer = li.layer
    pointwise = is_pointwise(li) and isinstance(layer, Conv) and layer.groups == 1
    if not (exact_sums and (pointwise or stacks_a_vector(li))):
        return ()
    n = li.in_shape.c
    return tuple(q for q in range(2, min(k_words, n) + 1) if n % q == 0)


def folds_rows(li: LayerInfo, exact_sums: bool) -> bool:
    """Whether a convolution may fold its kernel rows onto its input channels (``engine_geometry``'s
    ``fold``): one group, not depthwise, a kernel more than one row high, and sums exact in any order
    (``exact_sums``: integer arithmetic). Whether it pays, and whether its N*Kh channels fit one
    input-channel tile of the engine, is the DSE's to say."""
    layer = li.layer
    return (
        exact_sums
        and isinstance(layer, Conv)
        and layer.groups == 1
        and layer.kernel[0] > 1
        and not engine_geometry(li).dw
    )


def engine_geometry(li: LayerInfo, row_words: int = 0, stack: int = 1, fold: bool = False) -> ConvGeometry:
    """The geometry the engine runs a layer in: a depthwise layer of multiplier 1 (every group one
    input and one output channel) as one group of all its channels on the engine's diagonal (``dw``:
    min(Tm, Tn) channels a step, each lane reading its own input channel), not one group a step on
    one of the Tm x Tn MACs; with ``row_words``, the words a row of its maps takes in DDR, a
    pointwise layer (``is_pointwise``) as one row of R*row_words columns (``model.shared.flat_layers``):
    a channel's pixels are then one run of words in and out, so a tile of Tc of them loads as
    ceil(Tc/B) + 1 beats where Tr rows of C loaded Tr*(ceil(C/B) + 1) (a 7-column map read 2 beats of
    16 words a row for 7 of them); a layer that skips rows (``skips_rows``) as one of row stride 1
    over the rows it reads; any other layer as it is.

    With ``stack`` Q (``stack_options``; a layer run as one row only), its N input channels as Q rows
    of N/Q channels: input channel i*N/Q + v is channel v of row i, and each of its weights tap i of
    (m, v), so that the layer is a Q x 1 convolution of N/Q channels over a map of Q rows whose one
    output row is the sum over all N. One step then computes Q input-channel tiles' worth where it
    computed one (a step a tile paid LOAD_IN's and LOAD_W's m_axi latency again: ResNet-50's 7x7 layers
    took 224 cycles a step for 112 of computation); the descriptor's row stride is N/Q channels of
    the map in DDR. A fully connected layer on a map of one pixel (``stacks_a_vector``) stacks the same
    way, its one output pixel in a tile padded with columns past the map (``pads_columns``): a head of
    1,280 inputs on Tn = 32 took 40 steps an output tile, each paying the loads' latency for one
    iteration of computation.

    With ``fold`` (``folds_rows``), its Kh kernel rows folded onto its input channels: channel
    c*Kh + k of the view is input channel c read k rows further down, and the layer is a 1 x Kw
    convolution of N*Kh channels (weight (m, c*Kh + k, 0, kw) is (m, c, k, kw)); the engine's load
    keeps each channel's row shift k (its rows' offset in DDR, and its check against the map's top
    and bottom). A stem of 3 channels then fills 3*Kh of the engine's Tn lanes, not 3, and runs Kw
    taps a pixel, not Kh*Kw (ResNet-50's 7x7 stem: 21 of 32 lanes, 7 taps)."""
    g = ConvGeometry.of(li)
    if stack > 1 and stacks_a_vector(li):  # its one pixel's N words as Q rows of N/Q channels
        if g.N % stack:
            raise ValueError(f"layer '{li.name}' cannot stack its {g.N} input channels as {stack} rows")
        return ConvGeometry(1, g.M, g.N // stack, 1, 1, stack, 1, 1, 1, g.act)
    if fold:
        if not folds_rows(li, True):
            raise ValueError(f"layer '{li.name}' cannot fold its kernel rows onto its input channels")
        return ConvGeometry(1, g.M, g.N * g.Kh, g.R, g.C, 1, g.Kw, g.Sh, g.Sw, g.act)
    if g.groups > 1 and g.M == 1 and g.N == 1:
        return ConvGeometry(1, g.groups, 1, g.R, g.C, g.Kh, g.Kw, g.Sh, g.Sw, g.act, dw=True)
    if skips_rows(li):  # the rows it reads alone, Sh rows apart: a map of row stride Sh*IW
        return ConvGeometry(g.groups, g.M, g.N, g.R, g.C, 1, g.Kw, 1, g.Sw, g.act)
    if row_words:
        if not is_pointwise(li) or row_words < g.C:
            raise ValueError(f"layer '{li.name}' cannot run as one row of {row_words}-word rows")
        pad = (row_words, g.C) if row_words > g.C else (0, 0)  # its rows' pad words (``compute_view``)
        if stack > 1:
            if g.groups > 1 or g.N % stack:
                raise ValueError(f"layer '{li.name}' cannot stack its {g.N} input channels as {stack} rows")
            return ConvGeometry(1, g.M, g.N // stack, 1, g.R * row_words, stack, 1, 1, 1, g.act, False, *pad)
        return ConvGeometry(g.groups, g.M, g.N, 1, g.R * row_words, 1, 1, 1, 1, g.act, False, *pad)
    if stack > 1:
        raise ValueError(f"layer '{li.name}' stacks its input channels only as one row")
    return g


def skips_pads(g: ConvGeometry, Tc, distance: int = 0) -> object:
    """Whether COMPUTE skips the pad words of a tile of ``Tc`` columns of layer ``g`` (``compute_view``):
    a one-row view of maps whose rows are padded (``ConvGeometry.row_words``) in a tile of whole rows,
    where its kernel is one tap or its pixels are at least ``distance`` (the accumulate's dependence,
    ``model.shared_engine.engine_dependence``: a stack's Q taps revisit an accumulator every tile's
    iterations, so a tile of fewer pixels computes its pad words as before, keeping the distance);
    element-wise on an array of Tc."""
    Tc = np.asarray(Tc)
    rows = (g.row_words > 0) & (Tc % max(g.row_words, 1) == 0)
    return rows & ((g.Kh * g.Kw == 1) | (Tc // max(g.row_words, 1) * g.row_pixels >= distance))


def compute_view(g: ConvGeometry, Tr: int, Tc: int, distance: int = 0) -> tuple[int, int]:
    """The rows and columns COMPUTE iterates a kernel tap of a (Tr, Tc) tile: (Tr, Tc), or, where it
    skips the pad words (``skips_pads``), the tile's Tc/row_words rows of the map, ``row_pixels`` columns
    each; the pad words' accumulators are not computed, and what STORE_B writes there never reaches a
    pixel (``model.shared.flat_layers``: a reader either checks a word's column against W or, run as one
    row or reading a fused add's skip map, takes a pad word only into a pad word). A 7-column map of 16-word
    rows (MobileNetV2's last stage in int8 at 128 bits) computed 112 iterations a tap for 49 pixels."""
    if skips_pads(g, Tc, distance):
        return Tc // g.row_words, g.row_pixels
    return Tr, Tc


def tile_pixels(g: ConvGeometry, Tr, Tc, distance: int = 0):
    """COMPUTE's iterations a kernel tap of a (Tr, Tc) tile of layer ``g`` (``compute_view``: Tr*Tc, or
    its pixels alone); element-wise on arrays of Tr and Tc. (On the DSE's hot path: a view without
    padded rows, most of them, is Tr*Tc at once.)"""
    if not g.row_words:
        return Tr * Tc
    Tr, Tc = np.asarray(Tr), np.asarray(Tc)
    rows = Tc // max(g.row_words, 1) * g.row_pixels
    out = np.where(skips_pads(g, Tc, distance), rows, Tr * Tc)
    return out if out.ndim else int(out)
