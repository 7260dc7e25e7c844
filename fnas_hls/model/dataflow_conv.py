"""The ``dataflow`` style's conv/fc process, loop by loop as ``templates/dataflow/conv_layer.cpp.j2``
renders it: its counts and resources for any parallelism (``conv_stage``, element-wise over the
DSE's arrays), OUT's start, and the process with its loops' stream segments (``conv_process``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from fnas_hls.boards import Board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.costs import FunctionCost, LoopCost
from fnas_hls.model.dataflow_process import (
    LoopRun,
    Parallelism,
    Process,
    Segment,
    WindowGeometry,
    process_function,
    rows_segments,
)
from fnas_hls.model.geometry import cdiv
from fnas_hls.model.sequential import compute_depth
from fnas_hls.network.ir import LayerInfo
from fnas_hls.precision import Precision
from fnas_hls.resources import MacCost, Resources


class ConvStage(NamedTuple):
    """The conv process's counts for one (Pm, Pn), or element-wise for arrays of them."""

    MT: object
    NT: object
    mac: object  # MAC_TRIP of the fullest row (``conv_rows``: each row's)
    out: object
    out_start: object  # OUT's first iteration: every word it reads is computed by then (fullest row)
    row_trip: object  # (the fullest row)
    row_ii: object
    row_depth: object
    prime: object
    row: object  # the fullest row's ROW loop
    rows: object  # ROWS: every row's ROW loop
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
    csynth: object  # the latency csynth reports: ``cycles`` where no trip varies, else its worst case


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
    Pk of them, every one in a bank of its own (the buffer keeps its columns in that many banks:
    ``line_buffer_words``)."""
    return (Pc - 1) * g.Sw + Pk


def line_buffer_words(g: WindowGeometry, Pk, Pc):
    """Words of each line-buffer row in a bank (column x is word x // span of bank x % span): the
    columns the fills write, and the word one past a step's first column's that a bank below the
    step's first bank is read at (the last step's, ``(C - 1)/Pc`` blocks and ``KT - 1`` kernel-column
    steps on)."""
    span = window_span(g, Pk, Pc)
    last = (cdiv(g.C, Pc) - 1) * Pc * g.Sw + (cdiv(g.Kw, Pk) - 1) * Pk  # the last step's first column
    return np.maximum(cdiv(g.wu, span), (last + span - 1) // span + 1)


def moving_banks(g: WindowGeometry, Pk, Pc):
    """Whether the bank of a MAC step's first column, c*Pc*Sw + kt*Pk mod ``window_span``, changes
    from step to step, so that the span's words are a rotation by it (selects in LUTs, a stage in the
    pipeline): not where the span divides Pc*Sw and, with more than one kernel-column step, Pk (or
    there is one bank). Counted whatever C: the kernel's counters do not let HLS see a row of one
    pixel block keep its first bank."""
    span = window_span(g, Pk, Pc)
    kt_moves = (cdiv(g.Kw, Pk) > 1) & (Pk % span != 0)
    return (span > 1) & (((Pc * g.Sw) % span != 0) | kt_moves)


def skips_pad_rows(prec: Precision) -> bool:
    """Whether a row's MAC steps over kernel rows that read only padding are left out: in integer
    precisions, where a sum without its zero products is the same sum. A float32 sum keeps every step
    of the reference model's (a zero product turns an accumulator of -0.0 into +0.0)."""
    return not prec.is_float


def kernel_steps(g: WindowGeometry, Ph, skip: bool) -> list[tuple]:
    """Per run of output rows (``WindowGeometry.real_kernel_rows``): its MAC steps over kernel rows,
    first .. end - 1, each of Ph kernel rows, the real input rows its ROW loops fill, and the run's
    rows. With ``skip``, a step whose Ph kernel rows all read padding is left out (a window wholly on
    padding keeps one step, so that its output is written; it reads zeros); otherwise every row takes
    all ceil(Kh/Ph). Ph may be an array (the DSE's)."""
    KHT = cdiv(g.Kh, Ph)
    out = []
    for lo, hi, filled, n in g.real_kernel_rows:
        if skip:
            first = np.minimum(lo // Ph, KHT - 1)
            out.append((first, np.maximum(cdiv(hi, Ph), first + 1), filled, n))
        else:
            out.append((KHT * 0, KHT, filled, n))
    return out


#: The kernel's per-row tables where its rows differ (``row_tables``), R words each: the first and end
#: MAC step over kernel rows, the weight ROM's first row and the rows it skips from one tile to the
#: next, MAC_TRIP, OUT_START, the beats FILL reads, ROW_TRIP.
ROW_TABLES = ("ROW_KF", "ROW_KE", "ROW_MW0", "ROW_KSKIP", "ROW_MAC", "ROW_OUT", "ROW_FILLS", "ROW_TRIPS")
#: LUTs of the control a layer with tables adds, an estimate no csynth report checks: the ROW counter
#: compared with the row's trip, MAC trip, OUT window and fill start where it was compared with
#: constants (5 comparisons of about 17 bits, ~9 LUTs each on the carry chain, and the fill start's
#: subtraction, ~17), the kernel-row counter against its first and end step (~6), the weight address's
#: skip adder and its two resets (~25). A review of b4f6e11 put it at 200-300 with 32-bit operands; the
#: tables' words are 8 or 16 bits wherever a row's trip is under 65,536.
ROW_CONTROL_LUTS = 100


class RowRun(NamedTuple):
    """A run of output rows with the same MAC steps over kernel rows and fill, and its ROW loop's
    counts."""

    first_step: object  # the first MAC step over kernel rows (of ceil(Kh/Ph))
    end_step: object  # one past the last
    rows: int
    mac: object  # MAC_TRIP: CB*GT*MT*NT*(end - first)*KT
    out_start: object
    fill: object  # FILL_TRIP: the beats of the real rows it fills, real columns alone, in its last iterations
    trip: object  # max(FILL, MAC, OUT_START + OUT)


def _row_runs(
    g: WindowGeometry, Pm, MT, NT, KT, GT, CB, Ph, Pg, Pc, Vi, Vo, out, row_depth, row_ii, skip: bool
) -> list[RowRun]:
    runs, counts = [], {}  # (the counts depend on a row's number of steps alone: computed once a number)
    for first, end, filled, n in kernel_steps(g, Ph, skip):
        steps = end - first
        key = np.asarray(steps).tobytes()
        if key not in counts:
            mac = CB * GT * MT * NT * steps * KT
            counts[key] = mac, out_start(g, Pm, MT, NT, row_depth, row_ii, KT, Pg, Vo, steps, Pc)
        mac, start = counts[key]
        fill = filled * g.W * g.n_total // Vi
        runs.append(RowRun(first, end, n, mac, start, fill, np.maximum(np.maximum(mac, start + out), fill)))
    return runs


def rows_vary(runs: list[RowRun]):
    """Whether the rows' counts differ (element-wise for the DSE's arrays): the kernel then reads them
    from tables, each row's before its ROW loop, and the ROW loop's trip varies (else constants)."""
    if not np.ndim(runs[0].trip):  # one design's rows (``conv_rows``): compare them as tuples
        return len({tuple(int(v) for v in (*r[:2], *r[3:])) for r in runs}) > 1
    out = np.zeros(np.shape(runs[0].trip), dtype=bool)
    for r in runs[1:]:
        for a, b in zip(r[:2] + r[3:], runs[0][:2] + runs[0][3:], strict=True):
            out = out | (np.asarray(a) != np.asarray(b))
    return out if out.ndim else bool(out)


def table_bits(row_trip, mac, KHT, KT) -> object:
    """Bits of the tables' words: 8, 16 or 32, the least that holds their largest value, a ROW trip, a
    MAC trip (a fill's beats and OUT_START are within the trip) or a weight ROM row (element-wise)."""
    largest = np.maximum(np.maximum(row_trip, mac), KHT * KT)
    return np.where(largest < 1 << 8, 8, np.where(largest < 1 << 16, 16, 32))


def row_tables(g: WindowGeometry, p: Parallelism, rows: list[RowRun]) -> dict[str, list[int]]:
    """The kernel's tables (``ROW_TABLES``), each a word per output row."""
    KHT, KT = cdiv(g.Kh, p.Ph), cdiv(g.Kw, p.Pk)
    cols = {
        "ROW_KF": [r.first_step for r in rows],
        "ROW_KE": [r.end_step for r in rows],
        "ROW_MW0": [r.first_step * KT for r in rows],
        "ROW_KSKIP": [(KHT - r.end_step + r.first_step) * KT for r in rows],
        "ROW_MAC": [r.mac for r in rows],
        "ROW_OUT": [r.out_start for r in rows],
        "ROW_FILLS": [r.fill for r in rows],
        "ROW_TRIPS": [r.trip for r in rows],
    }
    assert tuple(cols) == ROW_TABLES
    return cols


def conv_rows(
    g: WindowGeometry,
    p: Parallelism,
    prec: Precision,
    mac_cost: MacCost,
    Vi: int = 1,
    Vo: int = 1,
    s: ConvStage | None = None,
) -> list[RowRun]:
    """Each output row's MAC steps over kernel rows and ROW counts, in order (one parallelism, clipped
    to ``g``; ``s``: its ``conv_stage`` where the caller has it): what the kernel's per-row tables hold
    and the schedule runs."""
    if s is None:
        s = conv_stage(g, p.Pm, p.Pn, prec, mac_cost, p.Pk, p.Pg, Vi, Vo, p.Ph, p.Pc)
    runs = _row_runs(
        g, p.Pm, int(s.MT), int(s.NT), cdiv(g.Kw, p.Pk), int(s.GT), cdiv(g.C, p.Pc), p.Ph, p.Pg, p.Pc, Vi, Vo,
        int(s.out), int(s.row_depth), int(s.row_ii), skips_pad_rows(prec),
    )  # fmt: skip
    out = []
    for run in runs:
        one = RowRun(*(int(v) for v in run[:2]), 1, *(int(v) for v in run[3:]))
        out += [one] * run.rows
    return out


def conv_stage(
    g: WindowGeometry, Pm, Pn, prec: Precision, mac_cost: MacCost, Pk=1, Pg=1, Vi=1, Vo=1, Ph=1, Pc=1
) -> ConvStage:
    """Cycles and resources of the conv process with Pg x Pm x Pn x Pk x Ph x Pc MACs (ints or numpy
    arrays; Ph kernel rows a step, KHT = ceil(Kh/Ph) steps a window row set; Pc output columns a
    step, CB = ceil(C/Pc) pixel blocks a row, each weight word read once for the Pc of them).
    Every buffer is banked per group lane as well: lane (gi, i) of a MAC step reads group
    gt*Pg + gi's channels and weights and writes its output lane. ``Vi``, ``Vo``: words per beat
    of the input and output streams (FILL and DRAIN move a beat an iteration, OUT writes one);
    PRIME_TRIP, each row's fill and DRAIN_TRIP are ``g``'s word counts over ``Vi`` (real positions
    alone: ``WindowGeometry.real_prime``, ``real_kernel_rows``). Each row's loop is its own
    (``conv_rows``): ``mac``, ``out_start``, ``row_trip`` and ``row`` are the fullest row's, ``rows``
    and ``cycles`` the process as it runs, ``csynth`` what csynth reports."""
    MT, NT, KT, GT = cdiv(g.M, Pm), cdiv(g.N, Pn), cdiv(g.Kw, Pk), cdiv(g.G, Pg)
    KHT = cdiv(g.Kh, Ph)
    taps = Pn * Pk * Ph  # products a lane sums in one step
    CB = cdiv(g.C, Pc)
    out = g.C * g.m_total // Vo
    g_prime, g_drain = g.real_prime // Vi, g.drain // Vi
    # The Pm accumulators are registers revisited every iteration: the add is the recurrence.
    row_ii = rules.ii_recurrence_bound(prec.add_latency, 1)
    row_depth = compute_depth(taps, prec) + rules.DF_REQUANT_DEPTH  # one tree over Pn x Pk x Ph
    row_depth = row_depth + rules.act_depth(g.act, prec.mul_latency, prec.add_latency)
    if prec.per_channel:  # each lane's shift from its ROM
        row_depth = row_depth + rules.BUFFER_READ_LATENCY
    row_depth = row_depth + np.where(Ph > 1, 1, 0)  # kernel rows side by side: each row lane's bank select
    moves = moving_banks(g, Pk, Pc)
    row_depth = row_depth + np.where(moves, 1, 0)  # and the span's rotation
    runs = _row_runs(
        g, Pm, MT, NT, KT, GT, CB, Ph, Pg, Pc, Vi, Vo, out, row_depth, row_ii, skips_pad_rows(prec)
    )
    # the fullest row's counts (every row's where no kernel row is skipped); the rows, each its own
    mac, start, _, row_trip = (
        functools.reduce(np.maximum, v) for v in zip(*(r[3:] for r in runs), strict=True)
    )
    prime = rules.pipelined_loop(g_prime, 1, rules.DF_FILL_DEPTH)
    row = rules.pipelined_loop(row_trip, row_ii, row_depth)
    # Rows that differ read their counts from tables before their ROW loop (a ROM read), and csynth
    # reports a loop whose trip varies at its largest (LOOP_TRIPCOUNT max): every row the fullest's.
    varies = rows_vary(runs)
    lead = np.where(varies, rules.BUFFER_READ_LATENCY, 0)
    rows = sum(
        rules.sequential_loop(
            run.rows, rules.sequential_block(lead + rules.pipelined_loop(run.trip, row_ii, row_depth))
        )
        for run in runs
    )
    drain = rules.pipelined_loop(g_drain, 1, rules.DF_FILL_DEPTH)
    primes = [prime] if g_prime else []  # (no PRIME loop where the first Kh padded rows are all padding)
    cycles = process_function(primes + [rows] + ([drain] if g.drain else []))
    csynth_rows = rules.sequential_loop(g.R, rules.sequential_block(lead + row))
    csynth = process_function(primes + [csynth_rows] + ([drain] if g.drain else []))
    width = table_bits(row_trip, mac, KHT, KT)
    tables_lut = np.where(varies, len(ROW_TABLES) * rm.memory_luts(g.R, width, True) + ROW_CONTROL_LUTS, 0)
    tables_bram = np.where(varies, len(ROW_TABLES) * rm.bram18k(g.R, width), 0)
    bits = prec.bits
    depth_w = GT * MT * NT * KHT * KT
    lanes = Pg * Pm  # output lanes
    banked = taps * rm.bram18k(depth_w, bits)  # one ROM bank per MAC
    wide = rm.bram18k(depth_w, taps * bits)  # one bank of Pn*Pk*Ph-word rows per output lane
    reshape = wide < banked
    bram_w = lanes * np.minimum(banked, wide)
    # one bank per unrolled group, channel and column a step reads (the buffer's columns in the span's
    # banks, ``line_buffer_words`` deep); with kernel rows side by side (Ph > 1) every line-buffer row a
    # bank of its own as well
    span = window_span(g, Pk, Pc)
    lb_banks = Pg * Pn * span * np.where(Ph > 1, g.lb_rows, 1)
    lb_depth = np.where(Ph > 1, 1, g.lb_rows) * line_buffer_words(g, Pk, Pc) * GT * NT
    bram_line = lb_banks * rm.bram18k(lb_depth, bits)
    # the row buffer, a bank per output and column lane
    bram_out = lanes * Pc * rm.bram18k(CB * GT * MT, bits)
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
    rotate = np.where(moves, reads * rm.select_luts(span, bits), 0)
    # OUT reads its row-buffer row from every bank once; its beat's word v is lane b*Vo + v, b one of
    # Pg*Pm/Vo (one word: one lane of Pg*Pm): a selector per word
    rotate = rotate + np.where(
        Vo > 1, Vo * rm.select_luts(lanes // np.maximum(Vo, 1), bits), rm.select_luts(lanes, bits)
    )
    # and its pixel's column lane, one of Pc banks
    rotate = rotate + np.where(Pc > 1, np.maximum(Vo, 1) * rm.select_luts(Pc, bits), 0)
    # kernel row h of a step is line-buffer row (slot + kh) mod LBR: each row lane selects its bank
    rotate = rotate + np.where(Ph > 1, reads * rm.select_luts(g.lb_rows, bits), 0)
    return ConvStage(
        MT, NT, mac, out, start, row_trip, row_ii, row_depth, prime, row, rows, drain, cycles,
        Pc * Pg * mac_cost.dsps(Pm, taps) + act_dsp,  # the Pm lanes of a group share each input word
        reshape, bram_w, bram_line, bram_out, bram_bias + act_bram,
        bram_w + bram_line + bram_out + bram_bias + act_bram + tables_bram,
        rm.LUT_PER_LAYER + macs * rm.LUT_PER_MAC[prec.name] + lut_w + lut_line + lut_out + lut_bias + rotate
        + (0 if prec.is_float else lanes * Pc * rm.LUT_PER_OUTPUT_LANE)  # each output lane's requantization
        + tables_lut,  # the rows' tables and their control, where the rows differ (``row_tables``)
        rm.FF_PER_LAYER + macs * rm.FF_PER_MAC[prec.name],
        GT, csynth,
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
    prime_b, drain_b, row_b = g.real_prime // Vi, g.drain // Vi, g.W * g.n_total // Vi
    # PRIME and FILL read the real rows' real columns alone, one after another
    prime = rows_segments(0, prime_b // row_b if row_b else 0, row_b, 0, row_b, 0, 1)
    runs = [LoopRun("PRIME", prime_b, 1, rules.DF_FILL_DEPTH, tuple(prime))] if prime_b else []
    out_row = g.C * g.m_total // Vo
    lag = rules.DF_WRITE_DEPTH - 1
    rows = conv_rows(g, p, prec, mac_cost, Vi, Vo, s)
    lead = rules.BUFFER_READ_LATENCY if rows_vary(rows) else 0  # each row's tables, read before its loop
    for r, row in enumerate(rows):
        first = max(g.Kh + r * g.Sh - g.pt, 0)  # the first input row it fills, if any
        reads = rows_segments(first, row.fill // row_b, row_b, row.trip - row.fill, row_b, 0, s.row_ii)
        o0 = row.out_start * s.row_ii + lag
        w = Segment(r * out_row, (r + 1) * out_row - 1, o0, o0 + (out_row - 1) * s.row_ii)
        runs.append(LoopRun("ROW", row.trip, s.row_ii, s.row_depth, tuple(reads), (w,), lead))
    # What csynth reports: a ROW loop whose trip varies at its largest (the fullest row's), every row
    block = rules.sequential_block(lead + s.row)
    loops = [LoopCost("PRIME", prime_b, s.prime, 1, rules.DF_FILL_DEPTH)] if prime_b else []
    loops += [
        LoopCost("ROWS", g.R, rules.sequential_loop(g.R, block), iteration_latency=block),
        LoopCost("ROW", s.row_trip, s.row, s.row_ii, s.row_depth),
    ]
    if g.drain:
        i0 = g.first_drained_row
        segs = rows_segments(i0, g.H - i0, row_b, 0, row_b, 0, 1)
        runs.append(LoopRun("DRAIN", drain_b, 1, rules.DF_FILL_DEPTH, tuple(segs)))
        loops.append(LoopCost("DRAIN", drain_b, s.drain, 1, rules.DF_FILL_DEPTH))
    res = Resources(dsp=s.dsp, bram18k=s.bram18k, lut=s.lut, ff=s.ff)
    buffers = (
        ("weight ROM", s.bram_weights),
        ("line buffer", s.bram_line),
        ("row buffer", s.bram_out),
        ("bias ROM", s.bram_bias),
    )
    tables = s.bram18k - s.bram_weights - s.bram_line - s.bram_out - s.bram_bias
    buffers += (("row tables", tables),) if tables else ()
    fn = FunctionCost(cname, s.csynth, 1, tuple(loops))
    return Process(cname, li.name, li.layer.op, tuple(runs), s.cycles, (fn,), res,
                   li.in_shape.size, li.out_shape.size, buffers, width=Vo,
                   csynth_cycles=s.csynth)  # fmt: skip
