"""The ``dataflow`` style's processes, loop by loop: each layer's process as ``templates/dataflow/``
renders it (same names and labels; the loop nest is drawn in ``model.dataflow``'s docstring), as
the loops it runs and the stream segments each loop reads and writes, for the region's schedule
(``model.dataflow``). Also the window geometry and parallelism every process is sized by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from fnas_hls.boards import Board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.sequential import (
    FunctionCost,
    LoopCost,
    accumulate_dependence,
    act_kind,
    average_dsps,
    cdiv,
    compute_depth,
)
from fnas_hls.network.ir import (
    Add,
    Conv,
    Dense,
    LayerInfo,
    Pool,
    Shape,
)
from fnas_hls.precision import Precision
from fnas_hls.resources import MacCost, Resources

#: LUT and FF of one stream FIFO's control (estimates, as in ``resource_model``).
LUT_PER_STREAM = 120
FF_PER_STREAM = 150


# --- geometry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowGeometry:
    """A window operator over a streamed map: conv (per-group M, N), pooling (M = N = channels)."""

    G: int
    M: int  # output channels per group
    N: int  # input channels per group
    H: int
    W: int
    R: int
    C: int
    Kh: int
    Kw: int
    Sh: int
    Sw: int
    pt: int
    pl: int
    act: str = ""  # the output activation's kind other than ReLU ('' none): the MAC step's extra work

    @classmethod
    def of(cls, li: LayerInfo) -> WindowGeometry:
        layer = li.layer
        x, y = li.in_shape, li.out_shape
        if isinstance(layer, Dense):
            return cls(1, layer.out, x.size, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, act_kind(layer))
        if isinstance(layer, (Conv, Pool)):  # a pool is a window over each channel alone
            g, m = (layer.groups, layer.out) if isinstance(layer, Conv) else (1, x.c)
            pt, pl = layer.padding[0], layer.padding[1]
            return cls(
                g, m // g, x.c // g, x.h, x.w, y.h, y.w, *layer.kernel, *layer.stride, pt, pl, act_kind(layer)
            )
        raise TypeError(f"layer '{li.name}' ({layer.op}) is not a window operator")

    @cached_property
    def n_total(self) -> int:
        return self.G * self.N

    @cached_property
    def m_total(self) -> int:
        return self.G * self.M

    @cached_property
    def wu(self) -> int:
        """Padded columns the windows use."""
        return (self.C - 1) * self.Sw + self.Kw

    @cached_property
    def wq(self) -> int:
        """Padded columns a fill walks per row: every real column, and every used one."""
        return max(self.wu, self.pl + self.W)

    @cached_property
    def lb_rows(self) -> int:
        return self.Kh + self.Sh

    @cached_property
    def fill_row(self) -> int:
        """Positions the ROW loop fills (Sh padded rows), none for a single output row."""
        return self.Sh * self.wq * self.n_total if self.R > 1 else 0

    @cached_property
    def prime(self) -> int:
        return self.Kh * self.wq * self.n_total

    @cached_property
    def rows_filled(self) -> int:
        """Padded rows PRIME and the ROW loops walk."""
        return self.Kh + (self.R * self.Sh if self.R > 1 else 0)

    @cached_property
    def first_drained_row(self) -> int:
        return min(self.H, max(0, self.rows_filled - self.pt))

    @cached_property
    def drain(self) -> int:
        return (self.H - self.first_drained_row) * self.W * self.n_total


@dataclass(frozen=True)
class Parallelism:
    """A conv/fc process's MACs per cycle: Pg groups x Pm output channels x Pn input channels x Pk
    kernel columns x Ph kernel rows x Pc output columns. Groups side by side are what gives a
    depthwise layer (a group per channel, M = N = 1) its parallelism: Pg channels a cycle, each lane
    reading its own input channel. Kernel rows side by side read Ph rows of the line buffer at once
    (its rows in banks of their own), what a layer with few input channels (a first layer) has left
    to unroll. Output columns side by side compute Pc pixels of the row at once from one weight
    word each: the weight ROM feeds Pc times the MACs it feeds alone, what a board short of block
    RAM for its DSPs' weights needs."""

    Pm: int
    Pn: int
    Pk: int = 1
    Pg: int = 1
    Ph: int = 1
    Pc: int = 1

    def as_dict(self) -> dict[str, int]:
        return (
            {"Pm": self.Pm, "Pn": self.Pn, "Pk": self.Pk}
            | ({"Pg": self.Pg} if self.Pg > 1 else {})
            | ({"Ph": self.Ph} if self.Ph > 1 else {})
            | ({"Pc": self.Pc} if self.Pc > 1 else {})
        )

    def __str__(self) -> str:
        rows = f"x{self.Ph}" if self.Ph > 1 else ""
        cols = f"c{self.Pc}" if self.Pc > 1 else ""
        return (f"{self.Pg}g " if self.Pg > 1 else "") + f"{self.Pm}/{self.Pn}/{self.Pk}{rows}{cols}"

    def clipped(self, g: WindowGeometry) -> Parallelism:
        """At most the layer's own extent in each dimension."""
        return Parallelism(
            min(self.Pm, g.M),
            min(self.Pn, g.N),
            min(self.Pk, g.Kw),
            min(self.Pg, g.G),
            min(self.Ph, g.Kh),
            min(self.Pc, g.C),
        )


# --- a process, as its loops ------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """Stream words ``k0..k1`` (inclusive) moved by one loop, the first at cycle ``o0`` after the
    loop starts and the last at ``o1`` (with no stall)."""

    k0: int
    k1: int
    o0: int
    o1: int
    stream: int = 0  # a read's input stream (the process's ``sources`` index)


@dataclass(frozen=True)
class LoopRun:
    """One run of a pipelined loop inside a process, with the stream words it reads and writes."""

    label: str
    trip: int
    ii: int
    depth: int
    reads: tuple[Segment, ...] = ()
    writes: tuple[Segment, ...] = ()

    @property
    def latency(self) -> int:
        return rules.pipelined_loop(self.trip, self.ii, self.depth)


@dataclass(frozen=True)
class Process:
    """One process of the region: its loop runs in order, its csynth latency and its breakdown."""

    name: str
    layer: str | None  # the IR layer, None for the movers
    op: str
    runs: tuple[LoopRun, ...]
    cycles: int
    functions: tuple[FunctionCost, ...]
    resources: Resources
    in_words: int
    out_words: int
    buffers: tuple[tuple[str, int], ...] = ()  # (buffer, BRAM18K) for the fit report
    sources: tuple[str, ...] = ()  # the processes it reads, one per input stream (region sets them)
    width: int = 1  # words per beat of its output stream (``model.dataflow_width``)
    # Stream reads one iteration makes, each waiting for the last: a producer that stalls inside
    # such a group leaves up to gather - 1 words in the FIFO that the schedule's rates do not see.
    gather: int = 1


def _rows_segments(
    first_row: int,
    rows: int,
    row_words: int,
    base_iter: int,
    stride_iters: int,
    lead_iters: int,
    ii: int,
) -> list[Segment]:
    """Reads of whole input rows ``first_row..`` whose words sit at iterations ``base_iter +
    j*stride_iters + lead_iters + (0..row_words-1)``."""
    out = []
    for j in range(rows):
        k0 = (first_row + j) * row_words
        it = base_iter + j * stride_iters + lead_iters
        out.append(Segment(k0, k0 + row_words - 1, it * ii, (it + row_words - 1) * ii))
    return out


def _fill_reads(
    g: WindowGeometry, p0: int, rows: int, ii: int, first_iter: int = 0, V: int = 1
) -> list[Segment]:
    """Reads of a fill over padded rows ``p0..p0+rows-1`` from iteration ``first_iter`` on: the
    real rows' beats (of ``V`` words), contiguous."""
    nt = g.n_total // V
    out = []
    for j in range(rows):
        i = p0 + j - g.pt
        if 0 <= i < g.H:
            out += _rows_segments(i, 1, g.W * nt, first_iter + j * g.wq * nt, 0, g.pl * nt, ii)
    return out


def _function(loops: list[int]) -> int:
    """A process function whose body runs ``loops`` one after another."""
    return rules.function_latency(sum(rules.sequential_block(x) for x in loops))


class ConvStage(NamedTuple):
    """The conv process's counts for one (Pm, Pn), or element-wise for arrays of them."""

    MT: object
    NT: object
    mac: object
    out: object
    out_start: object  # OUT's first iteration: every word it reads is computed by then
    row_trip: object
    row_ii: object
    row_depth: object
    prime: object
    row: object
    rows: object
    drain: object
    cycles: object
    dsp: object
    w_reshape: object  # the weight ROM as one wide bank per output lane (else one bank per MAC)
    bram_weights: object
    bram_line: object
    bram_out: object
    bram_bias: object
    bram18k: object
    lut: object
    ff: object
    GT: object  # group tiles: ceil(G/Pg)


def out_start(g: WindowGeometry, Pm, MT, NT, row_depth, row_ii, KT=None, Pg=1, Vo=1, KHT=None, Pc=1):
    """The first iteration of OUT in the ROW loop: output word k (pixel c, channel g*M+m) is read
    at iteration ``out_start + k``, after the MAC steps of its block (pixels c // Pc, group tile
    g // Pg, lane block m // Pm) have ended and its result is in the row buffer. The binding word is
    the first of a block's first pixel; (block end - word index) is linear in (c // Pc, g // Pg,
    m // Pm), so its largest value sits at a corner of the ranges.

    With beats of ``Vo`` words (a layer whose Pg*Pm output lanes are a run of channels, Vo
    dividing them: ``model.dataflow_width``), beat j of a pixel holds channels j*Vo.., block
    j*Vo // (Pg*Pm); the first beat of a block binds, at a corner as above."""
    B = NT * (g.Kh if KHT is None else KHT) * (g.Kw if KT is None else KT)  # MAC iterations per block
    GT = cdiv(g.G, Pg)
    CB = cdiv(g.C, Pc)  # pixel blocks of the row
    coef = ((GT * MT * B - Pc * g.m_total, CB - 1), (MT * B - Pg * g.M, GT - 1), (B - Pm, MT - 1))
    d = B - 1 + cdiv(row_depth, row_ii)
    word = d
    for a, extent in coef:
        word = word + np.maximum(a, 0) * extent
    if not np.ndim(Vo) and Vo == 1:
        return word
    beats = g.m_total // Vo
    wide = d + np.maximum(GT * MT * B - Pc * beats, 0) * (CB - 1)
    wide = wide + np.maximum(B - Pg * Pm // Vo, 0) * (GT * MT - 1)
    return np.where(np.asarray(Vo) > 1, wide, word)


def window_span(g: WindowGeometry, Pk, Pc):
    """Line-buffer columns one MAC step reads: Pc output columns' Pk kernel columns, (Pc - 1)*Sw +
    Pk of them, every one in a bank of its own (the buffer's columns cyclic over that many banks)."""
    return (Pc - 1) * g.Sw + Pk


def moving_banks(g: WindowGeometry, Pk, Pc):
    """Whether a MAC step's column lanes change banks from step to step: lane (u, j) reads column
    c*Pc*Sw + kt*Pk + u*Sw + j, bank (that) mod ``window_span``; constant only where the span
    divides both Pc*Sw and Pk (or there is one bank, or one kernel-column step)."""
    span = window_span(g, Pk, Pc)
    kt_moves = (cdiv(g.Kw, Pk) > 1) & (Pk % span != 0)
    return (span > 1) & (((Pc * g.Sw) % span != 0) | kt_moves)


def conv_stage(
    g: WindowGeometry, Pm, Pn, prec: Precision, mac_cost: MacCost, Pk=1, Pg=1, Vi=1, Vo=1, Ph=1, Pc=1
) -> ConvStage:
    """Cycles and resources of the conv process with Pg x Pm x Pn x Pk x Ph x Pc MACs (ints or numpy
    arrays; Ph kernel rows a step, KHT = ceil(Kh/Ph) steps a window row set; Pc output columns a
    step, CB = ceil(C/Pc) pixel blocks a row, each weight word read once for the Pc of them).
    Every buffer is banked per group lane as well: lane (gi, i) of a MAC step reads group
    gt*Pg + gi's channels and weights and writes its output lane. ``Vi``, ``Vo``: words per beat
    of the input and output streams (FILL and DRAIN move a beat an iteration, OUT writes one);
    PRIME_TRIP, FILL_TRIP and DRAIN_TRIP are ``g``'s word counts over ``Vi``."""
    MT, NT, KT, GT = cdiv(g.M, Pm), cdiv(g.N, Pn), cdiv(g.Kw, Pk), cdiv(g.G, Pg)
    KHT = cdiv(g.Kh, Ph)
    taps = Pn * Pk * Ph  # products a lane sums in one step
    CB = cdiv(g.C, Pc)
    mac = CB * GT * MT * NT * KHT * KT
    out = g.C * g.m_total // Vo
    fill_row, g_prime, g_drain = g.fill_row // Vi, g.prime // Vi, g.drain // Vi
    # The Pm accumulators are registers revisited every iteration: the add is the recurrence.
    row_ii = rules.ii_recurrence_bound(prec.add_latency, 1)
    row_depth = compute_depth(taps, prec) + rules.DF_REQUANT_DEPTH  # one tree over Pn x Pk x Ph
    row_depth = row_depth + rules.act_depth(g.act, prec.mul_latency, prec.add_latency)
    if prec.per_channel:  # each lane's shift from its ROM
        row_depth = row_depth + rules.BUFFER_READ_LATENCY
    row_depth = row_depth + np.where(Ph > 1, 1, 0)  # kernel rows side by side: each row lane's bank select
    start = out_start(g, Pm, MT, NT, row_depth, row_ii, KT, Pg, Vo, KHT, Pc)
    row_trip = np.maximum(np.maximum(mac, start + out), fill_row)
    prime = rules.pipelined_loop(g_prime, 1, rules.DF_FILL_DEPTH)
    row = rules.pipelined_loop(row_trip, row_ii, row_depth)
    rows = rules.sequential_loop(g.R, rules.sequential_block(row))
    drain = rules.pipelined_loop(g_drain, 1, rules.DF_FILL_DEPTH)
    cycles = _function([prime, rows] + ([drain] if g.drain else []))
    bits = prec.bits
    depth_w = GT * MT * NT * KHT * KT
    lanes = Pg * Pm  # output lanes
    banked = taps * rm.bram18k(depth_w, bits)  # one ROM bank per MAC
    wide = rm.bram18k(depth_w, taps * bits)  # one bank of Pn*Pk*Ph-word rows per output lane
    reshape = wide < banked
    bram_w = lanes * np.minimum(banked, wide)
    # one bank per unrolled group, channel and column a step reads (columns cyclic over the span of
    # Pc output columns' Pk kernel columns); with kernel rows side by side (Ph > 1) every line-buffer
    # row a bank of its own as well
    span = window_span(g, Pk, Pc)
    lb_banks = Pg * Pn * span * np.where(Ph > 1, g.lb_rows, 1)
    lb_depth = np.where(Ph > 1, 1, g.lb_rows) * cdiv(g.wu, span) * GT * NT
    bram_line = lb_banks * rm.bram18k(lb_depth, bits)
    bram_out = (
        lanes * Pc * rm.bram18k(CB * GT * MT, bits)
    )  # the row buffer, a bank per output and column lane
    bram_bias = lanes * rm.bram18k(GT * MT, rm.BIAS_BITS)
    if prec.per_channel:  # and the shifts, laid out as the biases
        bram_bias = bram_bias + lanes * rm.bram18k(GT * MT, rm.SHIFT_BITS)
    macs = lanes * taps * Pc
    act_dsp, act_bram = rm.act_resources(g.act, prec.name, lanes * Pc)  # one per output and column lane
    # a bank of at most LUTRAM_MAX_BITS is in LUTs (its block RAMs above are none): the weight and bias
    # ROMs as LUT ROM, the line and row buffers as distributed RAM
    lut_w = lanes * np.where(
        reshape, rm.memory_luts(depth_w, taps * bits, True), taps * rm.memory_luts(depth_w, bits, True)
    )
    lut_line = lb_banks * rm.memory_luts(lb_depth, bits)
    lut_out = lanes * Pc * rm.memory_luts(CB * GT * MT, bits)
    lut_bias = lanes * rm.memory_luts(GT * MT, rm.BIAS_BITS, True)
    if prec.per_channel:
        lut_bias = lut_bias + lanes * rm.memory_luts(GT * MT, rm.SHIFT_BITS, True)
    # a MAC step reads the span's line-buffer columns from column c*Pc*Sw + kt*Pk, each once (output
    # column u takes kernel column j from the span's word u*Sw + j, a constant), column o in bank
    # (that + o) mod span: each read selects its bank out of the span's, unless none ever moves
    reads = Pg * Pn * Ph * span  # line-buffer words a step reads
    rotate = np.where(moving_banks(g, Pk, Pc), reads * rm.select_luts(span, bits), 0)
    # OUT's beat word v is lane b*Vo + v of its row-buffer row, b one of Pg*Pm/Vo: a selector per word
    rotate = rotate + np.where(Vo > 1, Vo * rm.select_luts(lanes // np.maximum(Vo, 1), bits), 0)
    # and its pixel's column lane, one of Pc banks
    rotate = rotate + np.where(Pc > 1, np.maximum(Vo, 1) * rm.select_luts(Pc, bits), 0)
    # kernel row h of a step is line-buffer row (slot + kh) mod LBR: each row lane selects its bank
    rotate = rotate + np.where(Ph > 1, reads * rm.select_luts(g.lb_rows, bits), 0)
    return ConvStage(
        MT, NT, mac, out, start, row_trip, row_ii, row_depth, prime, row, rows, drain, cycles,
        Pc * Pg * mac_cost.dsps(Pm, taps) + act_dsp,  # the Pm lanes of a group share each input word
        reshape, bram_w, bram_line, bram_out, bram_bias + act_bram,
        bram_w + bram_line + bram_out + bram_bias + act_bram,
        rm.LUT_PER_LAYER + macs * rm.LUT_PER_MAC[prec.name] + lut_w + lut_line + lut_out + lut_bias + rotate,
        rm.FF_PER_LAYER + macs * rm.FF_PER_MAC[prec.name],
        GT,
    )  # fmt: skip


def conv_process(
    li: LayerInfo, cname: str, par: Parallelism, prec: Precision, board: Board, Vi: int = 1, Vo: int = 1
) -> Process:
    g = WindowGeometry.of(li)
    p = par.clipped(g)
    mac_cost = board.mac_cost(prec)
    s = ConvStage(
        *(int(v) for v in conv_stage(g, p.Pm, p.Pn, prec, mac_cost, p.Pk, p.Pg, Vi, Vo, p.Ph, p.Pc))
    )
    prime_b, fill_b, drain_b = g.prime // Vi, g.fill_row // Vi, g.drain // Vi
    runs = [LoopRun("PRIME", prime_b, 1, rules.DF_FILL_DEPTH, tuple(_fill_reads(g, 0, g.Kh, 1, 0, Vi)))]
    out_row = g.C * g.m_total // Vo
    lag = rules.DF_WRITE_DEPTH - 1
    for r in range(g.R):
        first = s.row_trip - fill_b
        reads = _fill_reads(g, g.Kh + r * g.Sh, g.Sh, s.row_ii, first, Vi) if fill_b else []
        o0 = s.out_start * s.row_ii + lag
        w = Segment(r * out_row, (r + 1) * out_row - 1, o0, o0 + (out_row - 1) * s.row_ii)
        runs.append(LoopRun("ROW", s.row_trip, s.row_ii, s.row_depth, tuple(reads), (w,)))
    loops = [
        LoopCost("PRIME", prime_b, s.prime, 1, rules.DF_FILL_DEPTH),
        LoopCost("ROWS", g.R, s.rows, iteration_latency=rules.sequential_block(s.row)),
        LoopCost("ROW", s.row_trip, s.row, s.row_ii, s.row_depth),
    ]
    if g.drain:
        i0, row_b = g.first_drained_row, g.W * g.n_total // Vi
        segs = _rows_segments(i0, g.H - i0, row_b, 0, row_b, 0, 1)
        runs.append(LoopRun("DRAIN", drain_b, 1, rules.DF_FILL_DEPTH, tuple(segs)))
        loops.append(LoopCost("DRAIN", drain_b, s.drain, 1, rules.DF_FILL_DEPTH))
    res = Resources(dsp=s.dsp, bram18k=s.bram18k, lut=s.lut, ff=s.ff)
    buffers = (
        ("weight ROM", s.bram_weights),
        ("line buffer", s.bram_line),
        ("row buffer", s.bram_out),
        ("bias ROM", s.bram_bias),
    )
    fn = FunctionCost(cname, s.cycles, 1, tuple(loops))
    return Process(cname, li.name, li.layer.op, tuple(runs), s.cycles, (fn,), res,
                   li.in_shape.size, li.out_shape.size, buffers, width=Vo)  # fmt: skip


class PoolStage(NamedTuple):
    """The pooling process's counts."""

    taps: int  # POOL_TRIP: C * CH * Kh * Kw window taps per output row
    row_trip: int
    row_ii: int
    row_depth: int


def pool_stage(
    g: WindowGeometry, kind: str, prec: Precision, count_pad: bool = True, V: int = 1
) -> PoolStage:
    """One window tap of ``V`` channels (a beat) per iteration; the running max (sum) is carried,
    so II is its latency. An average that leaves padding out computes its window's real taps (a
    product of two small differences) and reads their divisor from a table: two more stages."""
    taps = g.C * (g.n_total // V) * g.Kh * g.Kw
    op = (rules.FLOAT_CMP_LATENCY if prec.is_float else 1) if kind == "max" else prec.add_latency
    ii = rules.ii_recurrence_bound(op, 1)
    depth = rules.BUFFER_READ_LATENCY + op + (prec.mul_latency + 1 if kind == "avg" else 0) + 1
    if not count_pad:
        depth += 1 + rules.BUFFER_READ_LATENCY
    return PoolStage(taps, max(taps, g.fill_row // V), ii, depth)


def pool_process(li: LayerInfo, cname: str, prec: Precision, board: Board, V: int = 1) -> Process:
    """Pooling on beats of ``V`` channels: V lanes, each its own line-buffer bank."""
    layer = li.layer
    assert isinstance(layer, Pool)
    g = WindowGeometry.of(li)
    ch = g.n_total // V  # beats per pixel
    win = g.Kh * g.Kw
    mac, row_trip, ii, depth = pool_stage(g, layer.kind, prec, layer.count_pad, V)
    prime_b, fill_b, drain_b = g.prime // V, g.fill_row // V, g.drain // V
    prime = rules.pipelined_loop(prime_b, 1, rules.DF_FILL_DEPTH)
    row = rules.pipelined_loop(row_trip, ii, depth)
    rows = rules.sequential_loop(g.R, rules.sequential_block(row))
    drain = rules.pipelined_loop(drain_b, 1, rules.DF_FILL_DEPTH)
    cycles = _function([prime, rows] + ([drain] if g.drain else []))
    runs = [LoopRun("PRIME", prime_b, 1, rules.DF_FILL_DEPTH, tuple(_fill_reads(g, 0, g.Kh, 1, 0, V)))]
    out_row = g.C * ch
    for r in range(g.R):
        reads = _fill_reads(g, g.Kh + r * g.Sh, g.Sh, ii, row_trip - fill_b, V) if fill_b else []
        w = Segment(
            r * out_row, (r + 1) * out_row - 1, (win - 1) * ii + depth - 1, (mac - 1) * ii + depth - 1
        )
        runs.append(LoopRun("ROW", row_trip, ii, depth, tuple(reads), (w,)))
    loops = [
        LoopCost("PRIME", prime_b, prime, 1, rules.DF_FILL_DEPTH),
        LoopCost("ROWS", g.R, rows, iteration_latency=rules.sequential_block(row)),
        LoopCost("ROW", row_trip, row, ii, depth),
    ]
    if g.drain:
        i0 = g.first_drained_row
        segs = tuple(_rows_segments(i0, g.H - i0, g.W * ch, 0, g.W * ch, 0, 1))
        runs.append(LoopRun("DRAIN", drain_b, 1, rules.DF_FILL_DEPTH, segs))
        loops.append(LoopCost("DRAIN", drain_b, drain, 1, rules.DF_FILL_DEPTH))
    # one line-buffer bank per lane; a comparator (or adder) per lane beyond the first
    bram_line = V * rm.bram18k(g.lb_rows * g.wu * ch, prec.bits)
    lut_line = V * rm.memory_luts(g.lb_rows * g.wu * ch, prec.bits)  # a small one in distributed RAM
    lut = rm.LUT_PER_LAYER + lut_line + (V - 1) * prec.acc_bits
    dsp = 0 if layer.kind == "max" else V * average_dsps(win, board, prec, not layer.count_pad)
    res = Resources(dsp=dsp, bram18k=bram_line, lut=lut, ff=rm.FF_PER_LAYER)
    return Process(
        cname,
        li.name,
        layer.op,
        tuple(runs),
        cycles,
        (FunctionCost(cname, cycles, 1, tuple(loops)),),
        res,
        li.in_shape.size,
        li.out_shape.size,
        (("line buffer", bram_line),),
        width=V,
    )


def gap_ii(channels: int, prec: Precision, V: int = 1) -> int:
    """GAP's II: a beat's accumulators are revisited every ``channels / V`` iterations."""
    return rules.ii_recurrence_bound(accumulate_dependence(prec), channels // V)


def gap_process(li: LayerInfo, cname: str, prec: Precision, board: Board, V: int = 1, Vo: int = 1) -> Process:
    """Global pooling on beats of ``V`` channels: V accumulator banks, V averaging multipliers;
    GAP_OUT writes beats of ``Vo`` (dividing V), word v of beat j from bank (j*Vo mod V) + v."""
    x = li.in_shape
    cb = x.c // V  # beats per pixel
    ob = x.c // Vo  # output beats
    trip = x.size // V
    ii = gap_ii(x.c, prec, V)
    depth = rules.BUFFER_READ_LATENCY + prec.add_latency + 1
    out_depth = rules.BUFFER_READ_LATENCY + prec.mul_latency + rules.DF_WRITE_DEPTH
    gap = rules.pipelined_loop(trip, ii, depth)
    out = rules.pipelined_loop(ob, 1, out_depth)
    cycles = _function([gap, out])
    row = x.w * cb
    reads = tuple(
        Segment(i * row, (i + 1) * row - 1, i * row * ii, ((i + 1) * row - 1) * ii) for i in range(x.h)
    )
    runs = (
        LoopRun("GAP", trip, ii, depth, reads),
        LoopRun(
            "GAP_OUT", ob, 1, out_depth, (), (Segment(0, ob - 1, out_depth - 1, ob - 1 + out_depth - 1),)
        ),
    )
    loops = (LoopCost("GAP", trip, gap, ii, depth), LoopCost("GAP_OUT", ob, out, 1, out_depth))
    bram = V * rm.bram18k(cb, prec.acc_bits)
    lut = rm.LUT_PER_LAYER + V * rm.memory_luts(cb, prec.acc_bits)  # few channels: distributed RAM
    lut = lut + Vo * rm.select_luts(V // Vo, prec.acc_bits)
    dsp = Vo * average_dsps(x.h * x.w, board, prec)  # one multiplier per output word
    res = Resources(dsp=dsp, bram18k=bram, lut=lut, ff=rm.FF_PER_LAYER)
    return Process(
        cname,
        li.name,
        "gap",
        runs,
        cycles,
        (FunctionCost(cname, cycles, 1, loops),),
        res,
        x.size,
        x.c,
        (("accumulators", bram),),
        width=Vo,
    )


def _row_reads(words: int, row_words: int, lead: int, stream: int = 0) -> list[Segment]:
    """Reads of a map's rows at one word an iteration (II 1), iteration k reading word k."""
    return [
        Segment(k0, min(words, k0 + row_words) - 1, k0 + lead, min(words, k0 + row_words) - 1 + lead, stream)
        for k0 in range(0, words, row_words)
    ]


def fork_process(name: str, x: Shape, outputs: int, V: int = 1) -> Process:
    """``<map>_fork``: a map read by several processes, one beat of ``V`` words a cycle to each
    of their FIFOs. FORK: H*W*C / V, II 1 (read, then the same beat written to every output)."""
    words, row = x.size // V, x.w * x.c // V
    depth = rules.DF_WRITE_DEPTH
    loop = rules.pipelined_loop(words, 1, depth)
    cycles = rules.function_latency(loop)
    run = LoopRun(
        "FORK", words, 1, depth, tuple(_row_reads(words, row, 0)), tuple(_row_reads(words, row, depth - 1))
    )
    fn = FunctionCost(name, cycles, 1, (LoopCost("FORK", words, loop, 1, depth),))
    res = Resources(lut=LUT_PER_STREAM * outputs, ff=FF_PER_STREAM * outputs)
    return Process(name, None, "fork", (run,), cycles, (fn,), res, x.size, x.size, width=V)


def merge_process(li: LayerInfo, cname: str, prec: Precision, board: Board) -> Process:
    """A residual add or a channel concat of streams in HWC order, one output word an iteration.

    ADD: H*W*C, II 1: word k of every input (each from its own FIFO), summed and requantized.
    CONCAT: H*W*(C_0 + C_1 + ...), II 1: for each pixel, the C_0 words of input 0, then input 1's...
    """
    y = li.out_shape
    words = y.size
    act_dsp, act_bram = rm.act_resources(act_kind(li.layer), prec.name)
    if isinstance(li.layer, Add):
        k = len(li.sources)
        depth = rules.BUFFER_READ_LATENCY + (k - 1) * prec.add_latency + rules.REQUANT_DEPTH + 1
        depth += rules.act_depth(act_kind(li.layer), prec.mul_latency, prec.add_latency)
        reads = [
            seg
            for row in zip(*(_row_reads(words, y.w * y.c, 0, j) for j in range(k)), strict=True)
            for seg in row
        ]
        label, op = "ADD", "add"
        dsp = ((k - 1) * rm.DSP_PER_FLOAT_ADD if prec.is_float else 0) + act_dsp
    else:
        depth = rules.BUFFER_READ_LATENCY + rules.REQUANT_DEPTH + 1
        reads, offset = [], 0
        for j, x in enumerate(li.in_shapes):
            for px in range(y.h * y.w):  # pixel px: iterations px*C + offset .. + C_j - 1
                it = px * y.c + offset
                reads.append(Segment(px * x.c, px * x.c + x.c - 1, it, it + x.c - 1, j))
            offset += x.c
        reads.sort(key=lambda seg: seg.o0)
        label, op = "CONCAT", "concat"
        dsp = 0
    loop = rules.pipelined_loop(words, 1, depth)
    cycles = rules.function_latency(loop)
    run = LoopRun(label, words, 1, depth, tuple(reads), tuple(_row_reads(words, y.w * y.c, depth - 1)))
    fn = FunctionCost(cname, cycles, 1, (LoopCost(label, words, loop, 1, depth),))
    res = Resources(dsp=dsp, bram18k=act_bram, lut=rm.LUT_PER_LAYER, ff=rm.FF_PER_LAYER)
    return Process(cname, li.name, op, (run,), cycles, (fn,), res, sum(x.size for x in li.in_shapes), words)


def scale_process(li: LayerInfo, cname: str, prec: Precision, board: Board) -> Process:
    """A map times one value per channel (squeeze-and-excitation): the value depends on the whole
    map, so the map waits in a buffer on chip. MAP: H*W*C words of the map into the buffer;
    SCALE_IN: the C values; SCALE: H*W*C, II 1, each word times its channel's value, requantized."""
    y = li.out_shape
    words, row = y.size, y.w * y.c
    map_depth = rules.DF_FILL_DEPTH
    in_depth = rules.DF_FILL_DEPTH
    depth = rules.BUFFER_READ_LATENCY + prec.mul_latency + rules.REQUANT_DEPTH + rules.DF_WRITE_DEPTH
    runs = (
        LoopRun("MAP", words, 1, map_depth, tuple(_row_reads(words, row, 0, 0))),
        LoopRun("SCALE_IN", y.c, 1, in_depth, (Segment(0, y.c - 1, 0, y.c - 1, 1),)),
        LoopRun("SCALE", words, 1, depth, (), tuple(_row_reads(words, row, depth - 1))),
    )
    loops = tuple(LoopCost(r.label, r.trip, r.latency, 1, r.depth) for r in runs)
    cycles = _function([r.latency for r in runs])
    buffer, vector = rm.bram18k(words, prec.bits), rm.bram18k(y.c, prec.bits)
    lut = rm.LUT_PER_LAYER + rm.memory_luts(words, prec.bits) + rm.memory_luts(y.c, prec.bits)
    res = Resources(dsp=board.dsps_per_mac(prec.name), bram18k=buffer + vector, lut=lut, ff=rm.FF_PER_LAYER)
    return Process(
        cname, li.name, "scale", runs, cycles, (FunctionCost(cname, cycles, 1, loops),), res,
        words + y.c, words, (("map buffer", buffer), ("scale vector", vector)),
    )  # fmt: skip


def mover_group(V: int, P: int) -> tuple[int, int]:
    """A mover iteration's AXI beats and stream beats: lcm(V, P) words, each way."""
    L = V * P // math.gcd(V, P)
    return L // P, L // V


def mover_process(
    name: str, words: int, row_words: int, words_per_beat: int, reading: bool, V: int = 1
) -> Process:
    """``<top>_read`` (DDR to stream) or ``<top>_write`` (stream to DDR): one burst of AXI beats of
    P words, streams of ``V`` words a beat (V at most P: ``model.dataflow_width``). An iteration
    moves L = lcm(V, P) words: A = L / P AXI beats at the loop's own index (so csynth infers the
    burst; the host's buffer is padded to whole iterations) and Q = L / V stream beats, II Q:
    stream beat q of an iteration in its cycle q, a stream beat a cycle."""
    P = words_per_beat
    Q = mover_group(V, P)[1]
    beats = words // V  # stream beats (V divides the map's channels)
    row = row_words // V
    axi = cdiv(beats, Q)  # iterations
    # the read waits the m_axi latency for its first beat, the write for its last response
    depth = rules.DF_MOVER_DEPTH + rules.MAXI_LATENCY
    loop = rules.pipelined_loop(axi, Q, depth)
    cycles = rules.function_latency(loop)
    label = "READ" if reading else "WRITE"
    lag = depth - 1 if reading else 0
    segs = tuple(
        Segment(k0, min(beats, k0 + row) - 1, k0 + lag, min(beats, k0 + row) - 1 + lag)
        for k0 in range(0, beats, row)
    )
    run = LoopRun(label, axi, Q, depth, () if reading else segs, segs if reading else ())
    fn = FunctionCost(name, cycles, 1, (LoopCost(label, axi, loop, Q, depth),))
    res = Resources(lut=rm.LUT_PER_AXI_PORT, ff=rm.FF_PER_AXI_PORT)
    op = "read" if reading else "write"
    return Process(
        name, None, op, (run,), cycles, (fn,), res, words, words, width=V, gather=1 if reading else Q
    )
