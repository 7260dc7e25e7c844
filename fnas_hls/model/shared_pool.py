"""The ``shared`` style's pooling unit that reads beats: one per pooling layer, mirroring
``templates/shared/pool_layer.cpp.j2`` loop by loop.

The sequential style's pooling unit (``model.sequential.pool_cost``) reads one word a cycle, every
tap of every window: ResNet-50's 3x3 max pool takes 1.8M cycles there, a quarter of the network on
zcu102. This unit reads each window row through the engine's two load ports a beat of B words at a
time and keeps the last two beats of each of the KH rows, so that a window's KW words of a row are
a selection out of them::

    <layer>(in, in2, out):                      function
      POOL_B: CH*OH*(OW+1) iterations, pipelined at II ceil(KH/P), P the engine's load ports:
        an output row's first iteration reads, for each window row, the beat before the one that
        holds its first window's last word; each next iteration computes output column u - 1: it
        reads, for each window row, the beat that holds the window's last word when it is not held
        yet (window row i through load port i mod 2: ceil(KH/2) reads a port an iteration), selects
        the KW words out of the row's last two beats, reduces the valid taps in row-major order
        (as the reference model and the word unit do), and writes the output word

A layer takes this unit where its window fits a beat (KW <= B, SW <= B); its input map is stored
plainly or in rows of whole beats (IW words apart). A global average pooling whose map's rows fit a
beat takes it too, as the average pooling of one window of the whole map (``as_pool``: the same
arithmetic, the sum in row-major order and one divide): a channel is two iterations, ceil(H/2)
cycles each, where the word unit read H*W words a channel (MobileNetV2's 7x7x1280 GAP: 62.7k
cycles on zcu104). Its H*W taps are unrolled, each a selection out of two beats with an adder of its
own, so a GAP takes the unit only where its map has at most ``GAP_TAPS`` words and rows of more than
one (where it pays). Pooling on boards whose beat is narrower than the window, and other GAPs, keep
the word units.

Where a max pooling's input and output maps are both kept in rows of whole beats
(``model.shared.padded_maps``), its unit writes a beat of B outputs an iteration instead of a word::

    <layer>(in, in2, out):                      function
      POOL_V: CH*OH*(OWB+LAG) iterations, pipelined at II ceil(KH*SW/P):
        each window row reads its next SW beats (read r through load port r mod 2) and keeps its
        last NH; from iteration LAG on, output beat t - LAG: lane l the maximum of its valid taps,
        each a word of the held beats at a constant place (``VectorWindow``), written a beat

ResNet-50's 3x3 stride-2 max pool on zcu102 in int8: 64*56*(4+1) iterations at II 3, where the
word-writing loop took 64*56*57 at II 2 (0.41M cycles).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fnas_hls.boards import Board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.costs import LayerCost
from fnas_hls.model.geometry import cdiv
from fnas_hls.model.sequential import _single_loop_layer, pool_dsps, pool_op_latency
from fnas_hls.model.shared_fabric import LOAD_PORTS
from fnas_hls.network.ir import GlobalAvgPool, LayerInfo, Pool
from fnas_hls.precision import Precision
from fnas_hls.resources import Resources

#: The loop's label (the template's).
LOOP = "POOL_B"
#: The most taps (H*W) of a GAP on the unit: an 8x8 map (ResNet's and the MobileNets' last maps are
#: 7x7), each tap a (2B)-way selection and an adder, unrolled.
GAP_TAPS = 64
#: The share of the board's usable LUTs that the GAPs on the unit may take beyond what the word unit
#: takes, all together (``beat_gaps``): every GAP is a unit of its own, and a network with a
#: squeeze-excite block in every stage has a GAP in each (an Accel-NASBench MnasNet, a dozen): on
#: the unit they took the LUTs the engine's padded layout needed, which then did not fit (6.9 to
#: 13.7 ms on one of them). 3% is one 7x7 GAP in int8 on zcu104 (the MobileNetV2 head's).
BEAT_GAP_LUT_SHARE = 0.03


def as_pool(li: LayerInfo) -> Pool:
    """A pooling layer as it is; a global average pooling as the average pooling of one window of
    its whole map (``Pool.count_pad``: the divisor is H*W, as the GAP's)."""
    layer = li.layer
    if isinstance(layer, GlobalAvgPool):
        x = li.in_shape
        return Pool(layer.name, "avg", (x.h, x.w), (1, 1), inputs=layer.inputs)
    assert isinstance(layer, Pool)
    return layer


def fits_beat_gap(li: LayerInfo, beat: int) -> bool:
    """Whether a global average pooling may run on the beat unit (``as_pool``): its rows within a
    beat, more than one word, and at most ``GAP_TAPS`` words in its map."""
    if not isinstance(li.layer, GlobalAvgPool) or beat < 2:
        return False
    x = li.in_shape
    return 1 < x.w <= beat and x.h * x.w <= GAP_TAPS


def beat_gaps(infos: list[LayerInfo], board: Board, prec: Precision, beat: int) -> frozenset[str]:
    """The GAPs that run on the beat unit: of those that may (``fits_beat_gap``), the ones that save
    the word unit the most cycles per LUT the unit takes beyond it, while those LUTs stay within
    ``BEAT_GAP_LUT_SHARE`` of the board's usable LUTs together. The beat unit is priced on the
    least load ports (``LOAD_PORTS``): the choice comes before the engine's ports are known, and more
    ports only save more."""
    from fnas_hls.model.sequential import layer_cost  # (the word unit)

    options = []
    for li in infos:
        if fits_beat_gap(li, beat):
            word = layer_cost(li, li.name, None, board, prec)
            unit = beat_pool_cost(li, li.name, board, prec)
            options.append(
                (li.name, word.cycles - unit.cycles, max(1, unit.resources.lut - word.resources.lut))
            )
    budget, used, out = BEAT_GAP_LUT_SHARE * board.budget().lut, 0, set()
    for name, saved, lut in sorted(options, key=lambda o: (-o[1] / o[2], o[0])):
        if saved > 0 and used + lut <= budget:
            out.add(name)
            used += lut
    return frozenset(out)


def takes_beat_pool(li: LayerInfo, beat: int, gaps: frozenset[str] = frozenset()) -> bool:
    """Whether pooling layer ``li`` runs on the beat unit at ``beat`` words a beat: a window row
    within one beat (KW <= B) and a stride of at most a beat, so that one beat a row an output is
    enough; a global average pooling where ``gaps`` names it (``beat_gaps``)."""
    if isinstance(li.layer, GlobalAvgPool):
        return li.name in gaps
    if not isinstance(li.layer, Pool) or beat < 2:
        return False
    (_, kw), (_, sw) = li.layer.kernel, li.layer.stride
    return kw <= beat and sw <= beat


def beat_pool_ii(kh: int, ports: int = LOAD_PORTS) -> int:
    """POOL_B's II: each window row reads a beat an iteration through port i mod ``ports`` (the
    engine's load ports)."""
    return rules.ii_memory_bound(cdiv(kh, ports), rules.MAXI_PORTS)


def beat_pool_depth(li: LayerInfo, prec: Precision) -> int:
    """POOL_B's depth: the beat's read, the word's selection out of two beats, the reduction of the
    KH*KW taps (integer: a tree csynth balances; float32: the chain in row-major order, as the
    reference model sums and compares), the average's multiply (and with padding left out, the
    reciprocal's read from its table), the write."""
    layer = as_pool(li)
    taps = layer.kernel[0] * layer.kernel[1]
    op = pool_op_latency(layer, prec)
    levels = taps if prec.is_float else max(1, (taps - 1).bit_length())
    depth = rules.LOAD_DEPTH + rules.SELECT_DEPTH + levels * op + prec.mul_latency + 1
    if not layer.count_pad:
        depth += rules.BUFFER_READ_LATENCY
    return depth


def beat_pool_resources(li: LayerInfo, board: Board, prec: Precision, beat: int) -> Resources:
    """The unit's control and write port (its reads share the engine's load ports), the KH rows'
    two beats in registers, a (2B)-way selection of each tap's word, the reduction's KH*KW - 1
    operators (an average's adders: float32 adders on DSPs, integer ones of the sum's width in
    LUTs; a maximum's compares: LUTs), and the average's divide."""
    layer = as_pool(li)
    kh, kw = layer.kernel
    ops = kh * kw - 1
    float_adds = ops if layer.kind == "avg" and prec.is_float else 0
    op_luts = 0 if float_adds else ops * (prec.bits + max(1, (kh * kw - 1).bit_length()))
    return Resources(
        dsp=pool_dsps(layer, board, prec) + float_adds * rm.DSP_PER_FLOAT_ADD,
        lut=rm.LUT_PER_LAYER + rm.LUT_PER_AXI_PORT + kh * kw * rm.select_luts(2 * beat, prec.bits) + op_luts,
        ff=rm.FF_PER_LAYER + rm.FF_PER_AXI_PORT + kh * 2 * beat * prec.bits,
    )


def beat_pool_cost(
    li: LayerInfo,
    cname: str,
    board: Board,
    prec: Precision,
    clock_mhz: float | None = None,
    ports: int = LOAD_PORTS,
) -> LayerCost:
    """One pooling layer on the beat unit (``takes_beat_pool``), reading through the engine's
    ``ports`` load ports."""
    layer = as_pool(li)
    beat = board.axi_words_per_cycle(prec.bits)
    y = li.out_shape
    trip = y.c * y.h * (y.w + 1)
    # every window row of every output row: its beats from the first window's to the last's
    row_beats = cdiv((y.w - 1) * layer.stride[1] + layer.kernel[1], beat) + 1
    words = y.c * y.h * layer.kernel[0] * row_beats * beat + y.size
    ii, depth = beat_pool_ii(layer.kernel[0], ports), beat_pool_depth(li, prec)
    cost = _single_loop_layer(li, cname, LOOP, trip, ii, depth, words, board, prec, clock_mhz)
    return replace(cost, resources=beat_pool_resources(li, board, prec, beat))


#: The label of the loop that writes a beat of outputs an iteration (the template's).
VLOOP = "POOL_V"
#: The most beats each window row of ``POOL_V`` holds (``VectorWindow.held``).
VECTOR_HELD = 8


@dataclass(frozen=True)
class VectorWindow:
    """``POOL_V``'s constants for a max pooling whose maps are kept in rows of whole beats of B words:
    output beat k (columns k*B ..) reads, in each window row, the beats k*SW + ``first`` ..
    k*SW + ``first`` + ``held`` - 1; iteration t of an output row reads beats t*SW + ``first`` ..
    + SW - 1 of each window row and keeps the last ``held``, and from iteration ``lag`` on writes
    output beat t - ``lag``; ``out_beats`` an output row. Tap (l, kw) of output lane l is word
    l*SW - PL + kw - ``first``*B of the held beats, a constant."""

    first: int
    lag: int
    held: int
    out_beats: int


def vector_window(li: LayerInfo, beat: int) -> VectorWindow:
    layer = as_pool(li)
    (_, kw), (_, sw), pl = layer.kernel, layer.stride, layer.padding[1]
    first = -pl // beat  # floor(-PL / B)
    last = ((beat - 1) * sw + kw - 1 - pl) // beat  # output beat 0's last beat
    lag = cdiv(last - first + 1, sw) - 1
    return VectorWindow(first, lag, (lag + 1) * sw, cdiv(li.out_shape.w, beat))


def takes_vector_pool(li: LayerInfo, beat: int) -> bool:
    """Whether a pooling layer may write a beat of outputs an iteration (``POOL_V``) where its input
    and output maps are kept in rows of whole beats (``model.shared.padded_maps`` says where): a max
    pooling on the beat unit whose window of a beat of outputs is at most ``VECTOR_HELD`` beats a row
    (an average's divisor and its float adders a lane are left to the word-writing loop)."""
    layer = li.layer
    if not (isinstance(layer, Pool) and layer.kind == "max" and takes_beat_pool(li, beat)):
        return False
    return vector_window(li, beat).held <= VECTOR_HELD


def vector_pool_ii(li: LayerInfo, ports: int = LOAD_PORTS) -> int:
    """POOL_V's II: each of the KH window rows reads SW beats an iteration, through port r mod
    ``ports`` (r its read's number; the engine's load ports)."""
    layer = as_pool(li)
    return rules.ii_memory_bound(cdiv(layer.kernel[0] * layer.stride[1], ports), rules.MAXI_PORTS)


def vector_pool_depth(li: LayerInfo, prec: Precision) -> int:
    """POOL_V's depth: the beats' read, the KH*KW taps' maximum (a tree), the beat's write."""
    layer = as_pool(li)
    taps = layer.kernel[0] * layer.kernel[1]
    levels = taps if prec.is_float else max(1, (taps - 1).bit_length())
    return rules.LOAD_DEPTH + levels * pool_op_latency(layer, prec) + 1


def vector_pool_resources(li: LayerInfo, prec: Precision, beat: int) -> Resources:
    """The unit's control and write port, the KH rows' held beats in registers, and B lanes of
    KH*KW - 1 compares (the taps are wires out of the held beats: no selection)."""
    layer = as_pool(li)
    kh, kw = layer.kernel
    held = vector_window(li, beat).held
    return Resources(
        lut=rm.LUT_PER_LAYER + rm.LUT_PER_AXI_PORT + beat * (kh * kw - 1) * prec.bits,
        ff=rm.FF_PER_LAYER + rm.FF_PER_AXI_PORT + kh * held * beat * prec.bits,
    )


def vector_pool_cost(
    li: LayerInfo,
    cname: str,
    board: Board,
    prec: Precision,
    clock_mhz: float | None = None,
    ports: int = LOAD_PORTS,
) -> LayerCost:
    """One max pooling on ``POOL_V`` (``takes_vector_pool``, its maps in whole beats), reading through
    the engine's ``ports`` load ports."""
    layer = as_pool(li)
    beat = board.axi_words_per_cycle(prec.bits)
    v = vector_window(li, beat)
    x, y = li.in_shape, li.out_shape
    (kh, _), (sh, sw), pt = layer.kernel, layer.stride, layer.padding[0]
    trip = y.c * y.h * (v.out_beats + v.lag)
    # the beats read: of each output row's window rows on the map, those of the row's beats
    row_beats = -(-x.w // beat)
    beats_a_row = sum(
        0 <= t * sw + v.first + j < row_beats for t in range(v.out_beats + v.lag) for j in range(sw)
    )
    rows = sum(0 <= oh * sh - pt + i < x.h for oh in range(y.h) for i in range(kh))
    words = y.c * rows * beats_a_row * beat + y.c * y.h * v.out_beats * beat
    cost = _single_loop_layer(
        li,
        cname,
        VLOOP,
        trip,
        vector_pool_ii(li, ports),
        vector_pool_depth(li, prec),
        words,
        board,
        prec,
        clock_mhz,
    )
    return replace(cost, resources=vector_pool_resources(li, prec, beat))
