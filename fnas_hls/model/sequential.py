"""The analytic performance model: cycles per function and loop label, as csynth will report them.

It mirrors the kernels in ``templates/sequential/`` loop by loop (same function names, same loop labels);
the loop rules and csynth constants come from ``hls_rules`` alone.

The tiled convolution processing element of one layer (``<L>`` is the layer's C name)::

    <L>:                                    function, the layer's processing element
      TILE: for t < G*ceil(R/Tr)*ceil(C/Tc)*ceil(M/Tm)      sequential (group, row, col, out tile)
        <L>_init() || <L>_load_in(0) || <L>_load_w(0)
                                            prologue, side by side: bias into the Tm accumulators
                                            (INIT: Tr*Tc, II 1), first input and weight tiles
        TILE_IN: for i < ceil(N/Tn)         sequential, only when ceil(N/Tn) > 1
          <L>_compute(i) || <L>_load_in(i+1) || <L>_load_w(i+1)   ping-pong buffers, one block
                                            (the last iteration loads an all-zero dummy tile)
        <L>_store()                         STORE: Tm*Tr*Tc, II 1: ReLU, requantize, write
    <L>_load_in:  LOAD_IN: Tn*((Tr-1)S+K)*((Tc-1)S+K), pipelined II 1, zero padding at borders
    <L>_load_w:   LOAD_W: Tm*Tn*Kh*Kw, pipelined II 1
    <L>_compute:  COMPUTE: Kh*Kw*Tr*Tc, pipelined, Tm x Tn MACs unrolled; the accumulator of
                  one output is revisited every Tr*Tc iterations, so II = ceil(dep / (Tr*Tc));
                  a 1x1 kernel never revisits it (the template says so to HLS), so II 1
    <L>_init, <L>_store: as above

When ceil(N/Tn) = 1 there is no TILE_IN loop: the tile computes straight after its prologue.
Each call, or group of calls run side by side, in the body of a sequential loop is a "block"
(``hls_rules.sequential_block``). Calls side by side are calls in one basic block with no data
dependence between them, the shape every overlap in the fixture reports has: the prologue's
three calls write three different buffers, and each TILE_IN iteration's compute reads one half
of the ping-pong buffers while its loads write the other half. So the next tile's loads are
not under a condition of their own: on the last iteration they load input channels past N,
which the loads' bound checks turn into zeros without touching DDR.
A fully connected layer is the same element on a 1x1 map
(R = C = Kh = Kw = 1). Pooling and global average pooling are single pipelined loops
(``pool_cost``, ``gap_cost``); a residual add is one loop ADD over its words, reading every input
through the one map port (II = the number of inputs), a concat one loop CONCAT_<i> per input
(``add_cost``, ``concat_cost``); the top function calls the layers one after another.
Each load or store port moves one word per cycle (II 1 over a scalar m_axi port).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fnas_hls.boards import Board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.costs import FunctionCost, LayerCost, LoopCost
from fnas_hls.model.geometry import ConvGeometry, act_kind, cdiv
from fnas_hls.model.tiling import Tiling
from fnas_hls.network.ir import (
    Add,
    Concat,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    HostOp,
    LayerInfo,
    Pool,
    Scale,
)
from fnas_hls.precision import Precision
from fnas_hls.resources import MacCost, Resources

# --- the conv processing element, on scalars or on whole grids of tilings ----------------------


class ConvTerms(NamedTuple):
    """Every count of the conv element for one tiling (or, element-wise, for arrays of tilings)."""

    tiles: object  # trip of TILE
    n_in: object  # trip of TILE_IN (1 means no TILE_IN loop)
    load_in_trip: object
    load_in: object  # LOAD_IN loop latency
    load_w_trip: object
    load_w: object
    compute_trip: object
    compute_ii: object
    compute_depth: object
    compute: object  # COMPUTE loop latency
    init_trip: object
    init: object
    store_trip: object
    store_depth: object
    store: object
    stage: object  # one TILE_IN iteration: compute beside the next loads
    tile_in: object  # TILE_IN loop latency (or the lone compute call)
    tile_iteration: object
    cycles: object  # the layer function's latency
    compute_cycles: object  # the COMPUTE loop alone, summed over all tiles
    dsp: object
    bram18k: object
    lut: object
    ff: object
    ddr_words: object  # words moved between DDR and the element


def compute_depth(Tn, prec: Precision):
    """Pipeline depth of COMPUTE: buffer reads, multiply, adder tree over Tn, accumulate, write."""
    tree = (
        np.ceil(np.log2(np.maximum(Tn, 1))).astype(int) if np.ndim(Tn) else max(0, (int(Tn) - 1).bit_length())
    )
    return rules.BUFFER_READ_LATENCY + prec.mul_latency + tree * prec.add_latency + prec.add_latency + 1


def accumulate_dependence(prec: Precision) -> int:
    """Cycles from reading an accumulator to writing it back (read, add, write)."""
    return rules.BUFFER_READ_LATENCY + prec.add_latency + 1


def element_memories(g: ConvGeometry, Tm, Tn, Tr, Tc, prec: Precision) -> tuple[tuple, ...]:
    """The conv element's on-chip memories as (name, banks, depth, width, rom), each in block RAM or,
    at most ``resource_model.LUTRAM_MAX_BITS`` a bank, in LUTs (the template binds it there); works on
    ints or numpy arrays of tilings."""
    lanes_in = Tm if g.dw else Tn  # a depthwise tile loads one input channel per output lane
    TRin, TCin = (Tr - 1) * g.Sh + g.Kh, (Tc - 1) * g.Sw + g.Kw
    halves = np.where(
        cdiv(g.N, Tn) > 1, 2, 1
    )  # ping-pong only with input-channel tiles (the template's NT > 1)
    return (
        ("input tiles", halves * lanes_in, TRin * TCin, prec.bits, False),  # a bank per input channel
        ("weight tiles", halves * Tm * Tn, g.Kh * g.Kw, prec.bits, False),  # a bank per MAC
        ("accumulators", Tm, Tr * Tc, prec.acc_bits, False),  # a bank per output channel
        ("bias ROM", Tm, g.groups * cdiv(g.M, Tm), rm.BIAS_BITS, True),  # a bank per unrolled m
        *((("shift ROM", 1, g.groups * g.M, rm.SHIFT_BITS, True),) if prec.per_channel else ()),
    )


def conv_terms(g: ConvGeometry, Tm, Tn, Tr, Tc, prec: Precision, mac: MacCost) -> ConvTerms:
    """The conv element's loop counts, latencies and resources; works on ints or numpy arrays."""
    call = rules.function_latency
    TRin = (Tr - 1) * g.Sh + g.Kh
    TCin = (Tc - 1) * g.Sw + g.Kw
    tiles = g.groups * cdiv(g.R, Tr) * cdiv(g.C, Tc) * cdiv(g.M, Tm)
    n_in = cdiv(g.N, Tn)

    lanes_in = Tm if g.dw else Tn  # a depthwise tile loads one input channel per output lane
    load_in_trip = lanes_in * TRin * TCin
    load_in = rules.pipelined_loop(load_in_trip, 1, rules.LOAD_DEPTH)
    load_w_trip = Tm * Tn * g.Kh * g.Kw
    load_w = rules.pipelined_loop(load_w_trip, 1, rules.LOAD_DEPTH)

    compute_trip = g.Kh * g.Kw * Tr * Tc
    depth = compute_depth(Tn, prec)
    # The accumulator of one output is revisited Tr*Tc iterations later; a 1x1 kernel visits it
    # once per call, and the template's DEPENDENCE pragma (inter RAW false) tells HLS so, which it
    # cannot prove from the hand-rolled r*TC+c index: without it, II would be the whole
    # read-add-write latency (ii_recurrence_bound at distance 1).
    if g.Kh * g.Kw > 1:
        ii = rules.achieved_ii(1, rules.ii_recurrence_bound(accumulate_dependence(prec), Tr * Tc))
    else:
        ii = 1
    compute = rules.pipelined_loop(compute_trip, ii, depth)

    init_trip = Tr * Tc
    init = rules.pipelined_loop(init_trip, 1, rules.INIT_DEPTH)
    store_trip = Tm * Tr * Tc
    store_depth = rules.STORE_DEPTH + rules.act_depth(g.act, prec.mul_latency, prec.add_latency)
    if prec.per_channel:  # each channel's shift from a ROM
        store_depth += rules.BUFFER_READ_LATENCY
    store = rules.pipelined_loop(store_trip, 1, store_depth)

    block = rules.sequential_block
    stage = block(rules.overlapped(call(compute), call(load_in), call(load_w)))
    tile_in_loop = rules.sequential_loop(n_in, stage)
    tile_in = (
        np.where(n_in > 1, tile_in_loop, call(compute))
        if np.ndim(n_in)
        else (tile_in_loop if n_in > 1 else call(compute))
    )
    # init writes the accumulators, the loads the first input and weight tiles: no dependence,
    # one basic block, so csynth runs all three side by side.
    prologue = rules.overlapped(call(init), call(load_in), call(load_w))
    tile_iteration = block(prologue) + block(tile_in) + block(call(store))
    cycles = rules.sequential_function_latency(rules.sequential_loop(tiles, tile_iteration))
    compute_cycles = tiles * n_in * compute

    memories = element_memories(g, Tm, Tn, Tr, Tc, prec)
    bram = sum(banks * rm.bram18k(depth, width) for _, banks, depth, width, _ in memories)
    lut_ram = sum(banks * rm.memory_luts(depth, width, rom) for _, banks, depth, width, rom in memories)
    act_dsp, act_bram = rm.act_resources(g.act, prec.name)  # STORE's one output a cycle
    bram = bram + act_bram
    macs = Tm * Tn
    lut = rm.LUT_PER_LAYER + 3 * rm.LUT_PER_AXI_PORT + macs * rm.LUT_PER_MAC[prec.name] + lut_ram
    ff = rm.FF_PER_LAYER + 3 * rm.FF_PER_AXI_PORT + macs * rm.FF_PER_MAC[prec.name]
    ddr_words = tiles * (n_in * (load_in_trip + load_w_trip) + store_trip)
    return ConvTerms(
        tiles,
        n_in,
        load_in_trip,
        load_in,
        load_w_trip,
        load_w,
        compute_trip,
        ii,
        depth,
        compute,
        init_trip,
        init,
        store_trip,
        store_depth,
        store,
        stage,
        tile_in,
        tile_iteration,
        cycles,
        compute_cycles,
        # the Tm lanes of one input channel share its word; a depthwise element's lanes share none
        (Tm * Tn * mac.dsp_per_mac if g.dw else mac.dsps(Tm, Tn)) + act_dsp,
        bram,
        lut,
        ff,
        ddr_words,
    )


def fnas_cycles(g: ConvGeometry, t: Tiling, i_p: float = 1, w_p: float = 1, o_p: float = 1) -> int:
    """The FNAS paper's per-layer latency, with hotNAS's refinement (min(T, dim) and stride in tI, tO).

    Lat = ceil(R/Tr) ceil(C/Tc) ceil(M/Tm) * max(ceil(N/Tn) * max(tI, tW, tComp), tO), with port
    widths ``i_p``, ``w_p``, ``o_p`` in words per cycle (groups multiply the count).
    """
    tn, tr, tc, tm = min(t.Tn, g.N), min(t.Tr, g.R), min(t.Tc, g.C), min(t.Tm, g.M)
    t_i = int(np.ceil(tn * ((tr - 1) * g.Sh + g.Kh) * ((tc - 1) * g.Sw + g.Kw) / i_p))
    t_w = int(np.ceil(t.Tm * t.Tn * g.Kh * g.Kw / w_p))
    t_comp = g.Kh * g.Kw * t.Tr * t.Tc
    t_o = int(np.ceil(tm * tr * tc / o_p))
    outer = cdiv(g.R, t.Tr) * cdiv(g.C, t.Tc) * cdiv(g.M, t.Tm) * g.groups
    return outer * max(cdiv(g.N, t.Tn) * max(t_i, t_w, t_comp), t_o)


# --- per-layer costs, with the breakdown the manifest and compare use -------------------------


def _bound(cycles: int, compute_side: int, memory_side: int, ddr_cycles: int) -> str:
    if ddr_cycles > cycles:
        return "ddr"
    return "compute" if compute_side >= memory_side else "memory"


def conv_cost(
    li: LayerInfo, cname: str, t: Tiling, board: Board, prec: Precision, clock_mhz: float | None = None
) -> LayerCost:
    """Cost of a conv or fully connected layer rendered as the tiled conv element with tiling ``t``."""
    g = ConvGeometry.element_of(li)
    k = conv_terms(g, t.Tm, t.Tn, t.Tr, t.Tc, prec, board.mac_cost(prec))
    call = rules.function_latency
    ints = {name: int(v) for name, v in k._asdict().items()}
    k = ConvTerms(**ints)
    calls_in = k.tiles * k.n_in
    top_loops = [LoopCost("TILE", k.tiles, k.tiles * k.tile_iteration, iteration_latency=k.tile_iteration)]
    if k.n_in > 1:
        top_loops.append(LoopCost("TILE_IN", k.n_in, k.tile_in, iteration_latency=k.stage))
    functions = (
        FunctionCost(cname, k.cycles, 1, tuple(top_loops)),
        FunctionCost(
            f"{cname}_init",
            call(k.init),
            k.tiles,
            (LoopCost("INIT", k.init_trip, k.init, 1, rules.INIT_DEPTH),),
        ),
        FunctionCost(
            f"{cname}_load_in",
            call(k.load_in),
            calls_in,
            (LoopCost("LOAD_IN", k.load_in_trip, k.load_in, 1, rules.LOAD_DEPTH),),
        ),
        FunctionCost(
            f"{cname}_load_w",
            call(k.load_w),
            calls_in,
            (LoopCost("LOAD_W", k.load_w_trip, k.load_w, 1, rules.LOAD_DEPTH),),
        ),
        FunctionCost(
            f"{cname}_compute",
            call(k.compute),
            calls_in,
            (LoopCost("COMPUTE", k.compute_trip, k.compute, k.compute_ii, k.compute_depth),),
        ),
        FunctionCost(
            f"{cname}_store",
            call(k.store),
            k.tiles,
            (LoopCost("STORE", k.store_trip, k.store, 1, k.store_depth),),
        ),
    )
    ddr_bytes = k.ddr_words * prec.bits // 8
    ddr_cycles = int(np.ceil(ddr_bytes / board.ddr_bytes_per_cycle(clock_mhz)))
    bound = _bound(k.cycles, call(k.compute), max(call(k.load_in), call(k.load_w)), ddr_cycles)
    return LayerCost(
        name=li.name,
        op=li.layer.op,
        tiling=t,
        cycles=k.cycles,
        compute_cycles=k.compute_cycles,
        fnas_cycles=fnas_cycles(g, t),
        bound=bound,
        resources=Resources(dsp=k.dsp, bram18k=k.bram18k, lut=k.lut, ff=k.ff),
        functions=functions,
        ddr_bytes=ddr_bytes,
        ddr_cycles=ddr_cycles,
    )


def _single_loop_layer(
    li: LayerInfo,
    cname: str,
    label: str,
    trip: int,
    ii: int,
    depth: int,
    words: int,
    board: Board,
    prec: Precision,
    clock_mhz: float | None,
    dsp: int = 0,
    bram18k: int = 0,
) -> LayerCost:
    loop = rules.pipelined_loop(trip, ii, depth)
    loops = (LoopCost(label, trip, loop, ii, depth),)
    cycles = rules.function_latency(loop)
    return _unit_cost(li, cname, loops, cycles, words, board, prec, clock_mhz, dsp, bram18k)


def _unit_cost(
    li: LayerInfo,
    cname: str,
    loops: tuple[LoopCost, ...],
    cycles: int,
    words: int,
    board: Board,
    prec: Precision,
    clock_mhz: float | None,
    dsp: int = 0,
    bram18k: int = 0,
) -> LayerCost:
    """A layer that is one function of ``loops`` (no tiling): pooling, GAP, add, concat."""
    ddr_bytes = words * prec.bits // 8
    ddr_cycles = int(np.ceil(ddr_bytes / board.ddr_bytes_per_cycle(clock_mhz)))
    return LayerCost(
        name=li.name,
        op=li.layer.op,
        tiling=None,
        cycles=cycles,
        compute_cycles=0,
        fnas_cycles=None,
        bound=_bound(cycles, 0, cycles, ddr_cycles),
        resources=Resources(
            dsp=dsp,
            bram18k=bram18k,
            lut=rm.LUT_PER_LAYER + 2 * rm.LUT_PER_AXI_PORT,
            ff=rm.FF_PER_LAYER + 2 * rm.FF_PER_AXI_PORT,
        ),
        functions=(FunctionCost(cname, cycles, 1, loops),),
        ddr_bytes=ddr_bytes,
        ddr_cycles=ddr_cycles,
    )


def pool_cost(
    li: LayerInfo, cname: str, board: Board, prec: Precision, clock_mhz: float | None = None
) -> LayerCost:
    """POOL: one pipelined loop over every (channel, output pixel, window tap), one read a cycle.

    The running max (or sum) is carried from one tap to the next, so II is the compare (add) latency.
    """
    layer = li.layer
    assert isinstance(layer, Pool)
    kh, kw = layer.kernel
    y = li.out_shape
    trip = y.size * kh * kw
    op_latency = pool_op_latency(layer, prec)
    ii = rules.ii_recurrence_bound(op_latency, 1)
    depth = rules.LOAD_DEPTH + op_latency + prec.mul_latency + 1
    if not layer.count_pad:  # the divisor of the window's real taps from a table
        depth += rules.BUFFER_READ_LATENCY
    dsp = pool_dsps(layer, board, prec)
    return _single_loop_layer(li, cname, "POOL", trip, ii, depth, trip + y.size, board, prec, clock_mhz, dsp)


def pool_op_latency(layer: Pool, prec: Precision) -> int:
    """Latency of one tap's step of a pooling reduction: the compare (max) or the add (average)."""
    if layer.kind == "max":
        return rules.FLOAT_CMP_LATENCY if prec.is_float else 1
    return prec.add_latency


def pool_dsps(layer: Pool, board: Board, prec: Precision) -> int:
    """DSPs of a pooling unit: none for max, the average's divide (``average_dsps``) otherwise."""
    if layer.kind == "max":
        return 0
    return average_dsps(layer.kernel[0] * layer.kernel[1], board, prec, not layer.count_pad)


def average_dsps(count: int, board: Board, prec: Precision, table: bool = False) -> int:
    """DSPs of an average's divide by ``count`` (pooling, GAP): a float multiply, or the fixed-point
    sum times its reciprocal (``resource_model.avg_dsps``; ``table``: the reciprocal of each
    window's real taps, read at run time)."""
    if prec.is_float:
        return board.dsps_per_mac(prec.name)
    return rm.avg_dsps(count, prec.bits, board.dsp_slice, table)


def gap_cost(
    li: LayerInfo, cname: str, board: Board, prec: Precision, clock_mhz: float | None = None
) -> LayerCost:
    """GAP: one pipelined loop over every input value; the per-channel sum is carried (II = add latency)."""
    x = li.in_shape
    ii = rules.ii_recurrence_bound(prec.add_latency, 1)
    depth = rules.LOAD_DEPTH + prec.add_latency + prec.mul_latency + 1
    dsp = average_dsps(x.h * x.w, board, prec)
    return _single_loop_layer(li, cname, "GAP", x.size, ii, depth, x.size + x.c, board, prec, clock_mhz, dsp)


def add_cost(
    li: LayerInfo, cname: str, board: Board, prec: Precision, clock_mhz: float | None = None
) -> LayerCost:
    """ADD: one pipelined loop over the map's words; each iteration reads one word of every input
    through the one feature-map port, so II is the number of inputs; shifts align fixed-point
    inputs, the sum is requantized like an accumulator."""
    k = len(li.sources)
    words = li.out_shape.size
    kind = act_kind(li.layer)
    depth = rules.LOAD_DEPTH + (k - 1) * prec.add_latency + rules.REQUANT_DEPTH
    depth += rules.act_depth(kind, prec.mul_latency, prec.add_latency)
    ii = rules.ii_memory_bound(k, ports=rules.MAXI_PORTS)
    act_dsp, act_bram = rm.act_resources(kind, prec.name)
    dsp = ((k - 1) * rm.DSP_PER_FLOAT_ADD if prec.is_float else 0) + act_dsp
    return _single_loop_layer(
        li, cname, "ADD", words, ii, depth, (k + 1) * words, board, prec, clock_mhz, dsp, act_bram
    )


#: Depth of a CONCAT loop: the conditional-free read, the rounding shift and saturation, the write.
CONCAT_DEPTH = rules.LOAD_DEPTH + rules.REQUANT_DEPTH


def concat_cost(
    li: LayerInfo, cname: str, board: Board, prec: Precision, clock_mhz: float | None = None
) -> LayerCost:
    """CONCAT_<i>: one pipelined loop per input, in order, copying its words (rounded to the
    output's format) to its channels' place in the output (CHW: one contiguous block each)."""
    loops = []
    for i, x in enumerate(li.in_shapes):
        trip = x.size
        loops.append(
            LoopCost(f"CONCAT_{i}", trip, rules.pipelined_loop(trip, 1, CONCAT_DEPTH), 1, CONCAT_DEPTH)
        )
    cycles = rules.function_latency(sum(rules.sequential_block(lp.latency) for lp in loops))
    return _unit_cost(li, cname, tuple(loops), cycles, 2 * li.out_shape.size, board, prec, clock_mhz)


def scale_cost(
    li: LayerInfo, cname: str, board: Board, prec: Precision, clock_mhz: float | None = None
) -> LayerCost:
    """LOAD_S: the vector's C words into a buffer; SCALE: every map word (CHW) times its channel's
    value from the buffer, requantized; one read a cycle through the feature-map port each."""
    x = li.out_shape
    scale_depth = rules.LOAD_DEPTH + prec.mul_latency + rules.REQUANT_DEPTH
    load = rules.pipelined_loop(x.c, 1, rules.LOAD_DEPTH)
    scale = rules.pipelined_loop(x.size, 1, scale_depth)
    loops = (
        LoopCost("LOAD_S", x.c, load, 1, rules.LOAD_DEPTH),
        LoopCost("SCALE", x.size, scale, 1, scale_depth),
    )
    cycles = rules.function_latency(rules.sequential_block(load) + rules.sequential_block(scale))
    dsp = board.dsps_per_mac(prec.name)
    bram = rm.bram18k(x.c, prec.bits)
    return _unit_cost(li, cname, loops, cycles, x.c + 2 * x.size, board, prec, clock_mhz, dsp, bram)


def free_cost(li: LayerInfo) -> LayerCost:
    """Flatten (a change of view) and host operators cost the FPGA nothing."""
    bound = "host" if isinstance(li.layer, HostOp) else "none"
    return LayerCost(li.name, li.layer.op, None, 0, 0, None, bound, Resources(), (), 0, 0)


def layer_cost(
    li: LayerInfo,
    cname: str,
    tiling: Tiling | None,
    board: Board,
    prec: Precision,
    clock_mhz: float | None = None,
) -> LayerCost:
    """Cost of any IR layer; ``tiling`` is required for conv and fully connected layers."""
    layer = li.layer
    if isinstance(layer, (Conv, Dense)):
        if tiling is None:
            raise ValueError(f"layer '{li.name}' needs a tiling")
        return conv_cost(li, cname, tiling, board, prec, clock_mhz)
    if isinstance(layer, Pool):
        return pool_cost(li, cname, board, prec, clock_mhz)
    if isinstance(layer, GlobalAvgPool):
        return gap_cost(li, cname, board, prec, clock_mhz)
    if isinstance(layer, Add):
        return add_cost(li, cname, board, prec, clock_mhz)
    if isinstance(layer, Concat):
        return concat_cost(li, cname, board, prec, clock_mhz)
    if isinstance(layer, Scale):
        return scale_cost(li, cname, board, prec, clock_mhz)
    if isinstance(layer, (Flatten, HostOp)):
        return free_cost(li)
    raise TypeError(type(layer))


def top_latency(layer_cycles: list[int]) -> int:
    """The top function calls each layer in turn (layers that cost nothing render no call)."""
    return rules.function_latency(sum(rules.sequential_block(c) for c in layer_cycles if c))


TOP_RESOURCES = Resources(lut=rm.LUT_TOP, ff=rm.FF_TOP)
