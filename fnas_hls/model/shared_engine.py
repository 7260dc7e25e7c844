"""The ``shared`` style's engine: one tiled conv engine for the whole board, reused by every layer.

The engine follows Zhang et al. (FPGA'15, "Optimizing FPGA-based Accelerator Design for Deep
Convolutional Neural Networks"): one (Tm, Tn) for every conv and fully connected layer, so that
all the board's DSPs serve each layer in turn; feature maps and weights live in DDR; each layer
runs with its own (Tr, Tc), and loads, computation and stores of successive tiles overlap. It
mirrors ``templates/shared/`` loop by loop (same function names and labels); the loop rules and
csynth constants are ``hls_rules``'. One call per layer; a *step* is one input-channel tile of one
output tile, and there are T = G*ceil(R/Tr)*ceil(C/Tc)*ceil(M/Tm) output tiles of ceil(N/Tn) steps::

    fnas_engine(in, out, w, layer):          function, the one engine (ALLOCATION limit 1)
      engine_load_in(0) || engine_load_w(0)  prologue, side by side
      STEP: for s < T*ceil(N/Tn)             sequential, run-time trip
        engine_compute(s) || engine_load_in(s+1) || engine_load_w(s+1) || engine_store(tile before)
                                             ping-pong input and weight buffers, ping-pong
                                             accumulators; the store writes the previous output
                                             tile during the first step of the next; calls that have
                                             nothing to do run with trip 0 (the last step's loads,
                                             the store in any other step); the loads (and a
                                             fused add's skip reads) share the board's HP read
                                             ports: a step takes their beats over
                                             ``shared_fabric.read_beats`` at least
      engine_store(last tile)
    engine_load_in:  LOAD_IN: ceil(min(Tn, N)/P)*((Tr-1)S+K)*(ceil(((Tc-1)S+K)/B)+1) iterations,
                     II 1: P channels at once (the engine's load_ports, 2 or 4), each through a
                     load port of its own as wide as the board's AXI, B words a beat; a row of the
                     input window is ceil(TCIN/B) chunks of B words, each selected at the
                     row's offset from the last two beats read (one more beat a row, the
                     first), zero padding and edge tiles masked per word; the input buffer
                     holds a window row as whole chunks, B sub-banks a channel, so that a
                     chunk's words are written in one cycle (csynth infers no burst). The
                     same loop, described otherwise (``engine_geometry``): a pointwise layer
                     whose maps allow it loads one row of Tc pixels (``model.shared.flat_layers``),
                     a layer one row high of row stride S only the rows it uses (``skips_rows``)
    engine_load_w:   LOAD_W: Kh*Kw taps, II ceil(WB/2), WB = ceil(Tm*Tn/B), the tap's WB beats
                     unrolled so that every lane's bank is a constant, beat b read through
                     weight port b mod 2 (W_PORTS): the weights come over ports as wide as the
                     board's AXI, B = axi_width_bits / word bits words a beat, packed by the
                     host in the engine's tile order. A depthwise layer's LOAD_WD: Kh*Kw taps,
                     II ceil(DWB/2), DWB = ceil(min(Tm, Tn)/B), the diagonal's weights alone (lane j of
                     the tap's beats to bank (j, j)); it writes those banks only, so a tap held
                     as one word (``w_words``) is read and written back (one read more deep)
    engine_compute:  COMPUTE: Kh*Kw*Tr*Tc (``tile_pixels``: a one-row view's pixels alone where
                     it skips pad words), pipelined, Tm x Tn MACs unrolled, starting from the
                     bias in a tile's first step; an accumulator is revisited every such Tr*Tc
                     iterations, and the template declares the smallest such distance of any layer
                     (MIN_TRTC; 1x1 kernels revisit none), so II = ceil(dependence / MIN_TRTC)
                     A depthwise layer (``engine_geometry``) runs on the diagonal: a tile is
                     D = min(Tm, Tn) channels, output channel j takes lane (j, j)'s product
                     alone (a select beside the adder tree: the other lanes' weights are stale),
                     so one step per output tile (no input-channel tiles) loads those channels'
                     windows
    engine_compute, DW_COMPUTE: a depthwise layer of column stride at most 2 on an engine whose
                     accumulators are in sub-banks (``dw_columns``): Kh*Kw*Tr*ceil(Tc/P)
                     iterations, D channels x P output columns at once on D*P MACs of its own
                     (``dw_unit_resources``): each channel's beat of sub-banks read once, lane p
                     takes word x + p*Sw out of them, and adds its product to column c + p's
                     accumulator, sub-bank (c + p) mod B: c a multiple of P, so lane p writes
                     the sub-banks p mod P alone; II = ceil(dependence / the least
                     Tr*ceil(Tc/P) of such a layer), declared as ``dw_dist``
    engine_store:    STORE: ceil(min(Tm, M)/2)*Tr*Tc iterations, II 1, two output channels a
                     cycle through two store ports (STORE_PORTS): requantize, activation, the
                     fused residual add, write
    engine_store_b:  STORE_B, for a layer whose output map is kept in rows of whole beats
                     (``padded_maps``: the maps the engine alone writes and reads): ceil(min(Tm,
                     M)/2)*Tr*ceil(Tc/B) iterations, II 1, a beat of B words a store port a
                     cycle (B copies of the output stage a port; a fused add reads its skip map as
                     beats too); its tiles' columns begin at a beat (Tc a multiple of B, or the
                     whole row), and its accumulators sit in B sub-banks an output channel. Where
                     the engine has such layers, every layer's accumulator row is whole sub-bank
                     rows; the DSE keeps the padded layout only where it is faster and fits

The engine's buffers are sized for the largest tile any layer takes (input tile, kernel,
accumulators). A two-input residual add right after a conv on the engine is computed by that
conv's store (``fused_adds``: the store reads the other input's word beside each word it writes,
through a port of its own); other two-input adds call one add unit (``fnas_add2``) and concats one
copy unit per input (``fnas_copy``), with run-time sizes; pooling, global average pooling (and adds of
more inputs) keep the sequential style's per-layer units (``model.sequential``); the top calls
the layers in turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from fnas_hls.boards import Board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.costs import FunctionCost, LayerCost, LoopCost
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.sequential import _bound, accumulate_dependence, compute_depth
from fnas_hls.model.shared_depthwise import (
    depthwise_use,
    dw_unit_resources,
    on_dw_unit,
)
from fnas_hls.model.shared_fabric import (
    LOAD_PORTS,
    STORE_PORTS,
    accumulator_banks,
    engine_logic_luts,
    engine_ports,
    output_lanes,
    read_beats,
    row_chunks,
    rows_begin_at_beats,
    weight_ports,
    whole_beats,
)
from fnas_hls.model.shared_views import engine_geometry, pads_columns, tile_pixels
from fnas_hls.model.tiling import Tiling
from fnas_hls.network.ir import LayerInfo
from fnas_hls.precision import Precision
from fnas_hls.resources import MacCost, Resources

#: The engine's C name (every conv and fully connected layer calls it).
ENGINE = "fnas_engine"
#: Cycles of a call whose loop runs zero times (the last TILE_IN iteration's loads).
EMPTY_CALL = rules.function_latency(0)


@dataclass(frozen=True)
class Engine:
    """The one tiled engine: its unroll (Tm, Tn), its buffers' sizes and its weight port."""

    Tm: int
    Tn: int
    in_words: int  # input tile buffer, per input channel: the largest ((Tr-1)S+K)*row_chunks*beat_words
    k_words: int  # weight buffer, per MAC: the largest Kh*Kw
    acc_words: int  # accumulators, per output channel: the largest Tr*Tc
    bias_tiles: int  # rows of the bias ROM: every layer's G*ceil(M/Tm)
    min_trtc: int  # the least Tr*Tc (``tile_pixels``) of a layer with a kernel larger than 1x1 (0: none)
    beat_words: int  # words in one beat of the weight port and of the load ports
    act_kinds: tuple[str, ...] = ()  # activations other than ReLU its store computes (a run-time switch)
    skip: bool = False  # its store adds a residual map read from DDR (``fused_adds``), a port of its own
    words_out: bool = True  # some layer's output is stored a word a port a cycle (STORE)
    beats_out: bool = False  # some layer's output is stored a beat a port a cycle (STORE_B, ``padded_maps``)
    # the weight tiles as one word of all Tm*Tn weights a tap (ARRAY_RESHAPE: block RAM), not a bank a
    # MAC (ARRAY_PARTITION: LUTs where small); every tap is read and written whole either way
    w_words: bool = False
    dw: bool = False  # some layer is depthwise: LOAD_WD
    dw_diag: bool = False  # some depthwise layer runs on COMPUTE's diagonal: its select there
    dw_cols: int = 1  # DW_COMPUTE's columns an iteration (``dw_columns``; 1: no DW_COMPUTE)
    dw_dist: int = 0  # the least Tr*ceil(Tc/dw_cols) of a layer on DW_COMPUTE (its accumulators' distance)
    load_ports: int = LOAD_PORTS  # input channels LOAD_IN reads at once, a port each (LOAD_PORT_OPTIONS)
    read_beats: int = 0  # beats a cycle LOAD_IN and LOAD_W read together at most (shared_fabric.read_beats)

    def out_lanes(self, g: ConvGeometry) -> int:
        """Output channels of one tile: Tm, or on the diagonal for a depthwise layer (``dw``),
        min(Tm, Tn): lane j reads input channel j and writes output channel j."""
        return min(self.Tm, self.Tn) if g.dw else self.Tm

    def store_depth(self, prec: Precision, beats: bool = False) -> int:
        """STORE's depth (STORE_B's with ``beats``): the switch over its activations is as deep as
        its deepest case; STORE selects its accumulator out of the sub-banks too."""
        extra = [rules.act_depth(k, prec.mul_latency, prec.add_latency) for k in self.act_kinds]
        shift = rules.BUFFER_READ_LATENCY if prec.per_channel else 0  # each channel's shift from a ROM
        # a fused add: the skip word's read, the aligned sum, its requantization
        add = rules.LOAD_DEPTH + prec.add_latency + rules.REQUANT_DEPTH if self.skip else 0
        sub = 0 if beats or self.acc_banks == 1 else rules.SELECT_DEPTH
        return rules.STORE_DEPTH + max(extra, default=0) + shift + add + sub

    @property
    def macs(self) -> int:
        return self.Tm * self.Tn

    @property
    def w_beats(self) -> int:
        """Beats of the weight port per kernel tap: the Tm*Tn weights of one tap, packed."""
        return cdiv(self.Tm * self.Tn, self.beat_words)

    @property
    def dw_lanes(self) -> int:
        """Channels of a depthwise tile: the diagonal's min(Tm, Tn)."""
        return min(self.Tm, self.Tn)

    @property
    def dw_beats(self) -> int:
        """Beats of the weight port per kernel tap of a depthwise layer: the diagonal's weights."""
        return cdiv(self.dw_lanes, self.beat_words)

    def on_dw_unit(self, g: ConvGeometry) -> bool:
        return on_dw_unit(g, self.dw_cols)

    def compute_loop(self, g: ConvGeometry, prec: Precision) -> tuple[str, int, int]:
        """The compute loop of layer ``g``: its label, II and depth (DW_COMPUTE: a read, the lane's
        word out of the beat, the multiply, the accumulator out of its sub-banks, the add, the write)."""
        if self.on_dw_unit(g):
            dep = engine_dependence(prec, self.acc_banks)
            # dw_dist 0: no such layer has a kernel larger than 1x1, no accumulator is revisited
            ii = int(rules.ii_recurrence_bound(dep, self.dw_dist)) if self.dw_dist > 0 else 1
            return "DW_COMPUTE", ii, compute_depth(1, prec) + 2 * rules.SELECT_DEPTH
        return "COMPUTE", self.compute_ii(prec), self.compute_depth(prec)

    @property
    def w_ports(self) -> int:
        """Its weight ports (``weight_ports``): two, or one where a tap is one beat."""
        return weight_ports(self.Tm, self.Tn, self.beat_words)

    @property
    def w_ii(self) -> int:
        """LOAD_W's II: a tap's WB beats over the weight ports."""
        return cdiv(self.w_beats, self.w_ports)

    @property
    def dw_ii(self) -> int:
        """LOAD_WD's II: a depthwise tap's DWB beats over the weight ports."""
        return cdiv(self.dw_beats, self.w_ports)

    def load_w_loop(self, g: ConvGeometry) -> tuple[str, int, int]:
        """The weight load's loop for layer ``g``: its label, II and depth (LOAD_W: a tap's WB beats,
        W_PORTS a cycle; LOAD_WD, a depthwise layer's: DWB beats, and the read of the tap it writes
        in part)."""
        if g.dw:
            return "LOAD_WD", self.dw_ii, rules.LOAD_DEPTH + self.dw_ii - 1 + rules.BUFFER_READ_LATENCY
        return "LOAD_W", self.w_ii, rules.LOAD_DEPTH + self.w_ii - 1

    @property
    def acc_banks(self) -> int:
        return accumulator_banks(self.beat_words, self.beats_out)

    @property
    def select_depth(self) -> int:
        """The stage a word's selection out of a beat or of a channel's sub-banks adds (none at one
        word a beat)."""
        return rules.SELECT_DEPTH if self.beat_words > 1 else 0

    @property
    def load_in_depth(self) -> int:
        return rules.LOAD_DEPTH + self.select_depth

    def compute_depth(self, prec: Precision) -> int:
        return compute_depth(self.Tn, prec) + self.select_depth

    def compute_ii(self, prec: Precision) -> int:
        """COMPUTE's II, one for every layer (one pipeline): the accumulate's recurrence over the
        distance the template declares; with no kernel larger than 1x1, no accumulator is revisited."""
        if self.min_trtc <= 0:
            return 1
        return int(rules.ii_recurrence_bound(engine_dependence(prec, self.acc_banks), self.min_trtc))

    def buffers(self, prec: Precision) -> list[rm.Memory]:
        """The engine's on-chip memories, each in block RAM or LUTs as the template binds it."""
        bits, acc = prec.bits, prec.acc_bits
        return [
            # ping-pong, a channel's words in beat_words sub-banks (a chunk written in one cycle)
            rm.Memory("input tiles", 2 * self.Tn * self.beat_words, self.in_words // self.beat_words, bits),
            # ping-pong, a bank per MAC or a word a tap
            rm.Memory("weight tiles", 2, self.k_words, bits * self.macs)
            if self.w_words
            else rm.Memory("weight tiles", 2 * self.macs, self.k_words, bits),
            # ping-pong, an output channel's in acc_banks sub-banks (STORE_B reads a beat's in one cycle)
            rm.Memory("accumulators", 2 * self.Tm * self.acc_banks, self.acc_words // self.acc_banks, acc),
            rm.Memory("bias ROM", self.Tm, self.bias_tiles, rm.BIAS_BITS, rom=True),  # a bank per m
            *(
                (
                    rm.Memory(
                        "shift ROM", 1, self.bias_tiles * self.Tm, rm.SHIFT_BITS, rom=True, ports=STORE_PORTS
                    ),
                )
                if prec.per_channel
                else ()
            ),
        ]

    def dw_unit(self, prec: Precision, mac: MacCost) -> Resources:
        """DW_COMPUTE's MACs and fabric (none without it)."""
        return dw_unit_resources(self.dw_lanes, self.dw_cols, prec, mac, self.beat_words, self.acc_banks)

    def resources(self, prec: Precision, mac: MacCost) -> Resources:
        lanes = output_lanes(self.beat_words, self.words_out, self.beats_out)
        act_dsp, act_bram = rm.act_resources(self.act_kinds, prec.name, lanes=lanes)  # each output stage's
        memories = self.buffers(prec)
        skip_dsp = lanes * rm.DSP_PER_FLOAT_ADD if self.skip and prec.is_float else 0  # the fused adds
        return Resources(
            dsp=mac.dsps(self.Tm, self.Tn) + act_dsp + skip_dsp,  # the Tm lanes of one input share its word
            bram18k=sum(b.bram18k for b in memories) + act_bram,
            lut=engine_logic_luts(
                self.Tm,
                self.Tn,
                prec,
                self.skip,
                self.beat_words,
                self.words_out,
                self.beats_out,
                self.dw,
                self.dw_diag,
                self.load_ports,
            )
            + sum(b.lut for b in memories),
            ff=rm.FF_PER_LAYER
            + engine_ports(self.skip, self.beats_out, self.w_ports, self.load_ports) * rm.FF_PER_AXI_PORT
            + self.macs * rm.FF_PER_MAC[prec.name],
        ) + self.dw_unit(prec, mac)


class EngineTerms(NamedTuple):
    """The engine's counts for one layer at (Tr, Tc); element-wise on numpy arrays of them."""

    tiles: object
    n_in: object
    steps: object  # trip of STEP: tiles * n_in
    load_in_trip: object
    load_in: object
    load_w_trip: object
    load_w: object
    compute_trip: object
    compute_ii: object
    compute_depth: object
    compute: object
    store_trip: object
    store: object
    prologue: object
    step: object  # a step that loads the next tiles (and stores none)
    store_step: object  # a step that also stores the previous output tile
    last_step: object
    step_loop: object  # STEP's latency
    cycles: object
    compute_cycles: object
    in_words: object  # the input tile this layer needs, per channel
    acc_words: object  # its accumulators, per output channel (a row as whole chunks of a beat)
    ddr_words: object


def engine_dependence(prec: Precision, acc_banks: int) -> int:
    """COMPUTE's accumulate recurrence: read, select out of the ``acc_banks`` sub-banks, add, write."""
    return accumulate_dependence(prec) + (rules.SELECT_DEPTH if acc_banks > 1 else 0)


def engine_terms(
    g: ConvGeometry,
    e: Engine,
    Tr,
    Tc,
    prec: Precision,
    fused: bool = False,
    beats: bool = False,
    aligned: bool = False,
) -> EngineTerms:
    """One layer on the engine: every loop's trip and latency (Tr, Tc may be arrays); ``fused``: its
    store also reads a residual map (``fused_adds``); ``beats``: its output is stored in whole beats
    (STORE_B: its map's rows padded to whole beats, ``padded_maps``), else a word a port a cycle;
    ``aligned``: its window rows begin at beats where a column tile begins at a multiple of B
    (``model.shared.aligned_layers``), so that LOAD_IN reads a row's chunks alone."""
    call, block, side = rules.function_latency, rules.sequential_block, rules.overlapped
    TRin = (Tr - 1) * g.Sh + g.Kh
    TCin = (Tc - 1) * g.Sw + g.Kw
    chunks = row_chunks(TCin, e.beat_words)
    taps = g.Kh * g.Kw
    lanes = e.out_lanes(g)
    tiles = g.groups * cdiv(g.R, Tr) * cdiv(g.C, Tc) * cdiv(g.M, lanes)
    n_in = cdiv(g.N, e.Tn)  # 1 for a depthwise layer: a tile's channels are its own inputs
    steps = tiles * n_in
    # load_ports channels at once, one through each load port: a window row's chunks and one beat more,
    # none more where every row begins at a beat (every column tile at a multiple of B, or one tile)
    whole = rows_begin_at_beats(aligned, Tc, g.C, g.Sw, e.beat_words)
    row_beats = chunks + np.where(whole, 0, 1)
    load_in_trip = cdiv(min(lanes if g.dw else e.Tn, g.M if g.dw else g.N), e.load_ports) * TRin * row_beats
    load_in = rules.pipelined_loop(load_in_trip, 1, e.load_in_depth)
    load_w_trip = taps
    _, w_ii, w_depth = e.load_w_loop(g)
    load_w = rules.pipelined_loop(load_w_trip, w_ii, w_depth)
    _, ii, depth = e.compute_loop(g, prec)
    pixels = tile_pixels(g, Tr, Tc, engine_dependence(prec, e.acc_banks) if g.row_words else 0)
    compute_trip = taps * (Tr * cdiv(Tc, e.dw_cols) if e.on_dw_unit(g) else pixels)
    compute = rules.pipelined_loop(compute_trip, ii, depth)
    # STORE_PORTS channels a cycle: a word each (STORE) or a beat, a row's chunk (STORE_B)
    store_trip = cdiv(min(lanes, g.M), STORE_PORTS) * Tr * (row_chunks(Tc, e.beat_words) if beats else Tc)
    store = rules.pipelined_loop(store_trip, 1, e.store_depth(prec, beats))
    cc, ci, cw, cs = call(compute), call(load_in), call(load_w), call(store)
    # LOAD_IN and LOAD_W share the board's HP read ports (``read_beats``): together at most that many
    # beats a cycle, however many ports they read through; in a step that stores, a fused add's skip
    # reads (STORE_PORTS a cycle) share them too (never above the loads' own where two load and two
    # weight ports alone fill the ports' beats)
    w_beats = e.dw_beats if g.dw else e.w_beats
    if e.read_beats:
        read = load_in_trip * e.load_ports + load_w_trip * w_beats  # (``beats``: the store's)
        skips = fused * store_trip * STORE_PORTS
        cr = call(rules.pipelined_loop(cdiv(read, e.read_beats), 1, rules.LOAD_DEPTH))
        crs = call(rules.pipelined_loop(cdiv(read + skips, e.read_beats), 1, rules.LOAD_DEPTH))
    else:
        cr = crs = EMPTY_CALL
    prologue = block(side(ci, cw, cr))
    step = block(side(cc, ci, cw, EMPTY_CALL, cr))
    store_step = block(side(cc, ci, cw, cs, crs))
    # The last step loads nothing; it stores the tile before when every tile is one step.
    last_store = (tiles > 1) & (n_in == 1)
    last_step = block(side(cc, EMPTY_CALL, EMPTY_CALL, np.where(last_store, cs, EMPTY_CALL)))
    # Stores run in the first step of every tile but the first; the last step is its own case.
    store_steps = tiles - 1 - last_store
    step_loop = store_steps * store_step + (steps - 1 - store_steps) * step + last_step
    cycles = call(prologue + block(step_loop) + block(cs))
    loaded = n_in * load_in_trip * e.load_ports * e.beat_words  # whole beats
    stored = (1 + fused) * store_trip * STORE_PORTS * (e.beat_words if beats else 1)
    ddr_words = tiles * (loaded + stored)
    ddr_words = ddr_words + steps * load_w_trip * w_beats * e.beat_words
    if not np.ndim(cycles):
        last_step, step_loop, cycles = int(last_step), int(step_loop), int(cycles)
    return EngineTerms(
        tiles, n_in, steps, load_in_trip, load_in, load_w_trip, load_w, compute_trip, ii, depth, compute,
        store_trip, store, prologue, step, store_step, last_step, step_loop, cycles,
        steps * compute, TRin * chunks * e.beat_words, Tr * whole_beats(Tc, e.acc_banks),
        ddr_words,
    )  # fmt: skip


def zhang_compute_cycles(g: ConvGeometry, t: Tiling, pipeline_depth: int) -> int:
    """Zhang et al.'s computation cycles of a layer: ceil(M/Tm) ceil(N/Tn) ceil(R/Tr) ceil(C/Tc)
    (Tr Tc K^2 + P), P the pipeline's depth (times the groups, each its own convolution)."""
    outer = g.groups * cdiv(g.M, t.Tm) * cdiv(g.N, t.Tn) * cdiv(g.R, t.Tr) * cdiv(g.C, t.Tc)
    return outer * (t.Tr * t.Tc * g.Kh * g.Kw + pipeline_depth)


def make_engine(
    Tm: int,
    Tn: int,
    layers: list[tuple[ConvGeometry, int, int]],
    board: Board,
    prec: Precision,
    skip: bool = False,
    beats: list[bool] | None = None,
    w_words: bool = False,
    in_words_min: int = 0,
    acc_words_min: int = 0,
    load_ports: int = LOAD_PORTS,
) -> Engine:
    """The engine (Tm, Tn) whose buffers hold every ``(geometry, Tr, Tc)`` it is to run; ``beats``:
    for each, whether its output is stored in whole beats (STORE_B; none where not given);
    ``in_words_min``, ``acc_words_min``: the least words of its input tiles and accumulators a
    channel (the DSE's buffer sizes: a buffer it counted in block RAM stays there); ``load_ports``: its
    load ports (``LOAD_PORT_OPTIONS``)."""
    beat = board.axi_words_per_cycle(prec.bits)
    beats = beats or [False] * len(layers)
    acc_banks = accumulator_banks(beat, any(beats))
    use = depthwise_use([g for g, _, _ in layers], beat, acc_banks)
    in_words = max(
        in_words_min,
        *(((tr - 1) * g.Sh + g.Kh) * whole_beats((tc - 1) * g.Sw + g.Kw, beat) for g, tr, tc in layers),
    )
    windowed = [(g, tr, tc, u) for (g, tr, tc), u in zip(layers, use.unit, strict=True) if g.Kh * g.Kw > 1]
    dep = engine_dependence(prec, acc_banks)
    trtc = [tile_pixels(g, tr, tc, dep) for g, tr, tc, u in windowed if not u]
    dw_trtc = [tr * cdiv(tc, use.cols) for _, tr, tc, u in windowed if u]
    return Engine(
        Tm=Tm,
        Tn=Tn,
        in_words=in_words,
        k_words=max(g.Kh * g.Kw for g, _, _ in layers),
        acc_words=max(acc_words_min, *(tr * whole_beats(tc, acc_banks) for _, tr, tc in layers)),
        bias_tiles=sum(g.groups * cdiv(g.M, min(Tm, Tn) if g.dw else Tm) for g, _, _ in layers),
        min_trtc=min(trtc) if trtc else 0,
        beat_words=beat,
        act_kinds=tuple(sorted({g.act for g, _, _ in layers if g.act})),
        skip=skip,
        words_out=not all(beats),
        beats_out=any(beats),
        w_words=w_words,
        dw=use.dw,
        dw_diag=use.diag,
        dw_cols=use.cols,
        dw_dist=min(dw_trtc, default=0),
        load_ports=load_ports,
        read_beats=read_beats(board),
    )


def engine_layer_cost(
    li: LayerInfo,
    e: Engine,
    Tr: int,
    Tc: int,
    board: Board,
    prec: Precision,
    clock_mhz: float | None = None,
    fused: bool = False,
    beats: bool = False,
    row_words: int = 0,
    stack: int = 1,
    fold: bool = False,
    aligned: bool = False,
) -> LayerCost:
    """One conv or fully connected layer's call of the engine (its resources are the engine's,
    counted once for the design, so none here); ``fused``: it also computes the add after it;
    ``beats``: it stores its output in whole beats (STORE_B); ``row_words``: a pointwise layer run as
    one row (``engine_geometry``), ``stack``: its input channels stacked as that many kernel rows,
    ``fold``: its kernel rows folded onto its input channels; ``aligned``: its window rows begin at
    beats (``model.shared.aligned_layers``)."""
    g = engine_geometry(li, row_words, stack, fold)
    Tr, Tc = min(Tr, g.R), (Tc if pads_columns(li, stack) else min(Tc, g.C))
    k = EngineTerms(*(int(v) for v in engine_terms(g, e, Tr, Tc, prec, fused, beats, aligned)))
    w_label, w_ii, w_depth = e.load_w_loop(g)
    store = ("_store_b", "STORE_B") if beats else ("_store", "STORE")
    functions = (
        FunctionCost(
            ENGINE,
            k.cycles,
            1,
            (LoopCost("STEP", k.steps, k.step_loop, iteration_latency=k.step),),
        ),
        FunctionCost(
            f"{ENGINE}_load_in",
            rules.function_latency(k.load_in),
            k.steps,  # the prologue's and every step's but the last (whose loads are empty)
            (LoopCost("LOAD_IN", k.load_in_trip, k.load_in, 1, e.load_in_depth),),
        ),
        FunctionCost(
            f"{ENGINE}_load_w",
            rules.function_latency(k.load_w),
            k.steps,
            (LoopCost(w_label, k.load_w_trip, k.load_w, w_ii, w_depth),),
        ),
        FunctionCost(
            f"{ENGINE}_compute",
            rules.function_latency(k.compute),
            k.steps,
            (LoopCost(e.compute_loop(g, prec)[0], k.compute_trip, k.compute, k.compute_ii, k.compute_depth),),
        ),
        FunctionCost(
            ENGINE + store[0],
            rules.function_latency(k.store),
            k.tiles,
            (LoopCost(store[1], k.store_trip, k.store, 1, e.store_depth(prec, beats)),),
        ),
    )
    ddr_bytes = k.ddr_words * prec.bits // 8
    ddr_cycles = int(np.ceil(ddr_bytes / board.ddr_bytes_per_cycle(clock_mhz)))
    call = rules.function_latency
    bound = _bound(k.cycles, call(k.compute), max(call(k.load_in), call(k.load_w)), ddr_cycles)
    return LayerCost(
        name=li.name,
        op=li.layer.op,
        tiling=Tiling(e.Tm, e.Tn, Tr, Tc),
        cycles=k.cycles,
        compute_cycles=k.compute_cycles,
        fnas_cycles=None,
        bound=bound,
        resources=Resources(),
        functions=functions,
        ddr_bytes=ddr_bytes,
        ddr_cycles=ddr_cycles,
    )
