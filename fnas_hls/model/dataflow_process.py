"""The ``dataflow`` style's processes, loop by loop: what every process is (its loop runs and the
stream segments each reads and writes, for the region's schedule in ``model.dataflow``), the window
geometry and parallelism they are sized by, and the pooling and global pooling processes as
``templates/dataflow/`` renders them (same names and labels; the loop nest is drawn in
``model.dataflow``'s docstring). The conv/fc process is ``model.dataflow_conv``'s; forks, merges,
scales and movers are ``model.dataflow_streams``'.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from fnas_hls.boards import Board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.costs import FunctionCost, LoopCost
from fnas_hls.model.geometry import act_kind
from fnas_hls.model.sequential import accumulate_dependence, average_dsps
from fnas_hls.network.ir import (
    Conv,
    Dense,
    LayerInfo,
    Pool,
)
from fnas_hls.precision import Precision
from fnas_hls.resources import Resources

# --- geometry ---------------------------------------------------------------------------------


def real_taps(o: int, stride: int, k: int, pad: int, size: int) -> tuple[int, int]:
    """Along one axis, the kernel taps lo .. hi - 1 of output position ``o`` whose input is real: tap j
    reads padded position o*stride + j, real where pad <= it < pad + size (lo = hi: none, a window
    wholly on padding)."""
    lo = min(max(pad - o * stride, 0), k)
    return lo, max(min(pad + size - o * stride, k), lo)


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

    def real_rows(self, first: int, end: int) -> int:
        """The real input rows among padded rows ``first .. end - 1``."""
        return max(0, min(end, self.pt + self.H) - max(first, self.pt))

    @cached_property
    def real_prime(self) -> int:
        """Words a conv process's PRIME reads: the real rows among the first Kh padded ones, their real
        columns (it writes no padding: ``conv_rows``)."""
        return self.real_rows(0, self.Kh) * self.W * self.n_total

    @cached_property
    def real_kernel_rows(self) -> tuple[tuple[int, int, int, int], ...]:
        """The output rows in runs, in order, by the kernel rows whose input rows are real and the real
        rows a conv's ROW loop fills: (first, end, filled, rows). Kernel row kh of output row r reads
        padded row r*Sh + kh, a real one where pt <= r*Sh + kh < pt + H (the others are padding,
        zeros); a window wholly on padding has none (first = end). Row r's loop fills padded rows
        Kh + r*Sh .. + Sh - 1 (none for a single output row), of which ``filled`` are real."""
        runs: list[list[int]] = []
        for r in range(self.R):
            top = r * self.Sh
            lo, hi = real_taps(r, self.Sh, self.Kh, self.pt, self.H)
            filled = self.real_rows(self.Kh + top, self.Kh + top + self.Sh) if self.R > 1 else 0
            if runs and runs[-1][:3] == [lo, hi, filled]:
                runs[-1][3] += 1
            else:
                runs.append([lo, hi, filled, 1])
        return tuple((lo, hi, f, n) for lo, hi, f, n in runs)


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
    lead: int = 0  # cycles of its sequential block before the loop starts (a conv row's table reads)

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
    cycles: int  # one image's time in the process (its loops as they run)
    functions: tuple[FunctionCost, ...]  # what csynth reports (its worst case where a trip varies)
    resources: Resources
    in_words: int
    out_words: int
    buffers: tuple[tuple[str, int], ...] = ()  # (buffer, BRAM18K) for the fit report
    csynth_cycles: int | None = None  # csynth's latency where it differs from ``cycles`` (a varying trip)
    sources: tuple[str, ...] = ()  # the processes it reads, one per input stream (region sets them)
    width: int = 1  # words per beat of its output stream (``model.dataflow_width``)
    # Stream reads one iteration makes, each waiting for the last: a producer that stalls inside
    # such a group leaves up to gather - 1 words in the FIFO that the schedule's rates do not see.
    gather: int = 1


def rows_segments(
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


def fill_reads(
    g: WindowGeometry, p0: int, rows: int, ii: int, first_iter: int = 0, V: int = 1
) -> list[Segment]:
    """Reads of a fill over padded rows ``p0..p0+rows-1`` from iteration ``first_iter`` on: the
    real rows' beats (of ``V`` words), contiguous."""
    nt = g.n_total // V
    out = []
    for j in range(rows):
        i = p0 + j - g.pt
        if 0 <= i < g.H:
            out += rows_segments(i, 1, g.W * nt, first_iter + j * g.wq * nt, 0, g.pl * nt, ii)
    return out


def process_function(loops: list[int]) -> int:
    """A process function whose body runs ``loops`` one after another."""
    return rules.function_latency(sum(rules.sequential_block(x) for x in loops))


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
    cycles = process_function([prime, rows] + ([drain] if g.drain else []))
    runs = [LoopRun("PRIME", prime_b, 1, rules.DF_FILL_DEPTH, tuple(fill_reads(g, 0, g.Kh, 1, 0, V)))]
    out_row = g.C * ch
    for r in range(g.R):
        reads = fill_reads(g, g.Kh + r * g.Sh, g.Sh, ii, row_trip - fill_b, V) if fill_b else []
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
        segs = tuple(rows_segments(i0, g.H - i0, g.W * ch, 0, g.W * ch, 0, 1))
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
    cycles = process_function([gap, out])
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
