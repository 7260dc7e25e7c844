"""The ``dataflow`` style's stream plumbing, loop by loop as ``templates/dataflow/`` renders it: the
processes that move or combine whole maps a word (or beat) at a time: forks, residual adds and
concats, channel scales, and the movers between DDR and the region.
"""

from __future__ import annotations

import math

from fnas_hls.boards import Board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.costs import FunctionCost, LoopCost
from fnas_hls.model.dataflow_process import LoopRun, Process, Segment, process_function
from fnas_hls.model.geometry import act_kind, cdiv
from fnas_hls.network.ir import Add, LayerInfo, Shape
from fnas_hls.precision import Precision
from fnas_hls.resources import Resources

#: LUT and FF of one stream FIFO's control (estimates, as in ``resource_model``).
LUT_PER_STREAM = 120
FF_PER_STREAM = 150


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
    cycles = process_function([r.latency for r in runs])
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


def mover_iterations(words: int, V: int, P: int) -> int:
    """Iterations of a mover of ``words`` words in stream beats of ``V`` and AXI beats of ``P``
    (``mover_group``'s stream beats an iteration; the last one padded)."""
    return cdiv(words // V, mover_group(V, P)[1])


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
    axi = mover_iterations(words, V, P)
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
