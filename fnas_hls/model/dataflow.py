"""The ``dataflow`` accelerator style's model: every layer a process of one DATAFLOW region.

It mirrors ``templates/dataflow/`` loop by loop (same process names, same loop labels); the loop
rules and csynth constants come from ``hls_rules`` alone. Feature maps stream between the
processes one word at a time in raster order, channels innermost (HWC); weights and biases are
ROMs inside each layer's process; nothing but the input and the output touches DDR.

The region, in order (``<top>`` is the top function, ``<L>`` a layer's C name)::

    <top>_read:  READ: ceil(IN/P) beats, II P      the input over one m_axi burst of P-word beats
    <L> (conv / fully connected, Pg x Pm x Pn x Pk MACs):
      PRIME: real rows of the first Kh padded ones, W*N each, II 1   into the line buffer (a conv
                                                  writes real positions alone: its padding columns
                                                  stay zeros, rows on padding are masked)
      ROWS: for r < R                             sequential
        ROW: max(FILL, MAC, OUT), II = add recurrence
             one step of each, side by side in one pipeline:
             FILL = Sh*WQ*N (R > 1)   one word of the next Sh padded rows into the line buffer,
                                      in the loop's last FILL iterations (the row computes first);
                                      a conv's, the real rows' W*N words alone
             MAC  = C*GT*MT*NT*Kh*KT  Pg groups x Pm outputs x Pn inputs x Pk kernel columns
                                      of output row r (accumulators in registers); in integer
                                      precisions only the kernel rows that read real input rows
                                      (``dataflow_conv.conv_rows``: each row's trips, a table)
             OUT  = C*M               one output word of row r from the row buffer, from
                                      iteration D on (``out_start``: each word is computed by then)
      DRAIN: rows no output needs, II 1           (only where there are any)
    <L> (max / average pooling): PRIME, ROWS of ROW = max(FILL, OW*CH*Kh*Kw) writing each
         window's result as it completes, DRAIN
    <L> (global average pooling): GAP: H*W*CH, then GAP_OUT: CH
    <L> (residual add): ADD: H*W*C, II 1          word t of every input, one from each FIFO
    <L> (channel concat): CONCAT: H*W*(C_0+C_1..), II 1   per pixel, input 0's channels, then 1's
    <map>_fork: FORK: H*W*C, II 1                 a map read by several processes: each word to
                                                  every reader's FIFO (the skip path of a block)
    <top>_write: WRITE: ceil(OUT/P) beats, II P   the output over one m_axi burst

A chain runs in that order; a DAG (residual adds, concats) runs its processes in the layers'
order, each reading the processes its ``sources`` name (``wire``), a fork after every map read
more than once.

``WQ = max((C-1)*Sw + Kw, pl + W)`` padded columns per row; ``MT = ceil(M/Pm)``, ``NT =
ceil(N/Pn)`` per group, ``KT = ceil(Kw/Pk)``, ``GT = ceil(G/Pg)``. Groups side by side (Pg) are a
depthwise layer's parallelism: each of its groups is one channel, so Pm, Pn are 1 and only Pg
lanes (and Pk) put more than Kw multipliers to work; lanes of different groups read different
input words, so int8 pairs only the Pm lanes of one group in a DSP48E2. A fully connected layer
is the conv process on a 1x1 map whose N is its input size. The line buffer holds Kh + Sh rows,
so the next rows fill while row r computes.

Two latencies come out: what csynth reports for the region (``hls_rules.dataflow_region_csynth``:
the sum of the process latencies, the largest as the interval), and what one image really takes
with the processes overlapped, from the stream schedule (``schedule``). The schedule is exact at
the granularity of stream segments: a process's pipelined loop stalls when a word it reads has
not been written yet (every producer writes at most one word per cycle and every reader reads at
most one, so a segment's worst word is its last, or a producer segment's last); FIFOs are sized
from the same schedule so that no writer ever finds its FIFO full (no back-pressure), which is
what makes the schedule valid and the design deadlock-free without co-simulation.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from fnas_hls.boards import Board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.costs import LayerCost
from fnas_hls.model.dataflow_conv import conv_process
from fnas_hls.model.dataflow_process import Parallelism, Process, WindowGeometry, gap_process, pool_process
from fnas_hls.model.dataflow_streams import (
    FF_PER_STREAM,
    LUT_PER_STREAM,
    fork_process,
    merge_process,
    mover_process,
    scale_process,
)
from fnas_hls.model.dataflow_width import stream_widths
from fnas_hls.model.geometry import TILED_OPS
from fnas_hls.model.sequential import free_cost
from fnas_hls.network.ir import (
    INPUT,
    Add,
    Concat,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    HostOp,
    LayerInfo,
    Network,
    Pool,
    Scale,
    Shape,
    map_roots,
)
from fnas_hls.precision import Precision
from fnas_hls.resources import Resources

# --- the stream layout -----------------------------------------------------------------------


def hwc_order(shape: Shape) -> np.ndarray:
    """For each position of the HWC stream of a (C, H, W) map, its index in CHW order."""
    return np.arange(shape.size).reshape(shape.c, shape.h, shape.w).transpose(1, 2, 0).ravel()


def stream_dense_weight(weight: np.ndarray, map_shape: Shape) -> np.ndarray:
    """A fully connected layer's (out, in) weights with the columns in the stream's HWC order."""
    return np.asarray(weight)[:, hwc_order(map_shape)]


def dense_input_maps(net: Network) -> dict[str, Shape]:
    """The map (C, H, W) whose stream each fully connected layer reads (through any flatten)."""
    maps = {INPUT: net.input}
    out: dict[str, Shape] = {}
    for li in net.info:
        src = maps[li.sources[0]]
        if isinstance(li.layer, Dense):
            out[li.name] = src
        maps[li.name] = src if isinstance(li.layer, Flatten) else li.out_shape
    return out


# --- the schedule -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """When each process ends for one image, and the FIFO depth of each stream."""

    ends: tuple[int, ...]  # per process, cycles after the region starts
    latency: int  # the region's latency for one image (the last process's end)
    interval: int  # the largest process latency: a new image every ``interval`` cycles
    fifo_depths: tuple[int, ...]  # per stream (``edges``)
    fifo_peaks: tuple[int, ...]  # the schedule's largest occupancy of each stream
    edges: tuple[tuple[int, int, int], ...] = ()  # per stream: (producer, consumer, consumer's input)


def _avail(pk: list[float], pt: list[float], k: float) -> float:
    """Time word ``k`` is written, from the producer's segment ends (linear inside a segment)."""
    i = bisect.bisect_left(pk, k)
    if i < len(pk) and pk[i] == k:
        return pt[i]
    if i == 0:
        return pt[0]
    if i == len(pk):
        return pt[-1]
    k0, k1, t0, t1 = pk[i - 1], pk[i], pt[i - 1], pt[i]
    return t0 + (t1 - t0) * (k - k0) / (k1 - k0)


def schedule(procs: list[Process]) -> Schedule:
    """The stream schedule of processes started together (no back-pressure), in topological order:
    each reads the processes its ``sources`` name (by default the one before it: a chain), a
    process read by several writes every word to each at once (a fork)."""
    ends: list[int] = []
    edges: list[tuple[int, int, int]] = []
    fifo_depths: list[int] = []
    fifo_peaks: list[int] = []
    index = {p.name: i for i, p in enumerate(procs)}
    written: dict[str, tuple[list[float], list[float]]] = {}  # producer: word index, time at segment ends
    for n_proc, proc in enumerate(procs):
        sources = proc.sources or ((procs[n_proc - 1].name,) if n_proc else ())
        t = 0
        wk: list[float] = []
        wt: list[float] = []
        rk: dict[int, list[float]] = {j: [] for j in range(len(sources))}
        rt: dict[int, list[float]] = {j: [] for j in range(len(sources))}
        for run in proc.runs:
            b = t + run.lead
            shift = 0
            read_marks: list[tuple[int, int]] = []  # (first offset of a segment, shift once it is read)
            # Segments read in the same iterations (one word of each input stream an iteration) stall
            # together: the group's shift is the largest any of them needs.
            for _, group in itertools.groupby(run.reads, key=lambda seg: (seg.o0, seg.o1)):
                group = list(group)
                first = b + group[0].o0 + shift
                for seg in group:
                    pk, pt = written[sources[seg.stream]]
                    # Words whose availability can bind: the segment's last, and producer segment ends
                    # inside (every producer writes at most a word a cycle, every reader reads one).
                    rate = (seg.o1 - seg.o0) / max(seg.k1 - seg.k0, 1)
                    lo, hi = bisect.bisect_left(pk, seg.k0), bisect.bisect_right(pk, seg.k1)
                    need = _avail(pk, pt, seg.k1) + 1 - (b + seg.o1)
                    for i in range(lo, hi):
                        need = max(need, pt[i] + 1 - (b + seg.o0 + (pk[i] - seg.k0) * rate))
                    first = max(first, _avail(pk, pt, seg.k0) + 1)
                    shift = max(shift, math.ceil(need))
                for seg in group:
                    rk[seg.stream] += [seg.k0, seg.k1]
                    rt[seg.stream] += [first, b + seg.o1 + shift]
                read_marks.append((group[0].o0, shift))
            for seg in run.writes:
                # A write waits for every read segment begun before it (conservative within a segment).
                s_at = max([s for o, s in read_marks if o <= seg.o1], default=0)
                wk += [seg.k0, seg.k1]
                wt += [b + seg.o0 + s_at, b + seg.o1 + s_at]
            t = b + run.latency + shift + rules.SEQUENTIAL_BLOCK_OVERHEAD
        ends.append(t + rules.FUNCTION_OVERHEAD - rules.SEQUENTIAL_BLOCK_OVERHEAD * (len(proc.runs) == 1))
        if proc.op == "fork":  # each word is written as it is read, a fixed lag later: exact
            lag = proc.runs[0].depth - 1
            wk, wt = list(rk[0]), [x + lag for x in rt[0]]
        for j, src in enumerate(sources):
            pk, pt = written[src]
            peak = _fifo_peak(np.asarray(pk), np.asarray(pt), np.asarray(rk[j]), np.asarray(rt[j]))
            edges.append((index[src], n_proc, j))
            fifo_peaks.append(peak)
            fifo_depths.append(peak + rules.FIFO_MARGIN + proc.gather - 1)
        # Writes come in word order; a time never goes back (a later word is never written earlier).
        written[proc.name] = (wk, list(itertools.accumulate(wt, max)))
    latency = max(ends, default=0)  # the region is done when its last process is
    interval = max((p.cycles for p in procs), default=0)
    return Schedule(tuple(ends), latency, interval, tuple(fifo_depths), tuple(fifo_peaks), tuple(edges))


def _fifo_peak(wk: np.ndarray, wt: np.ndarray, rk: np.ndarray, rt: np.ndarray) -> int:
    """Largest number of words written and not yet read, at every segment end and start."""
    if not len(rk):
        return int(wk.max() + 1) if len(wk) else 0
    order = np.argsort(rk, kind="stable")
    rk, rt = rk[order], np.maximum.accumulate(rt[order])
    times = np.concatenate([wt, rt - 1])
    written = np.floor(np.interp(times, wt, wk + 1, left=0, right=wk[-1] + 1))
    read = np.floor(np.interp(times, rt, rk + 1, left=0, right=rk[-1] + 1))
    # Just before a read segment starts nothing of it is read yet.
    return int(max(0, np.max(written - read)))


# --- the whole region -------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """The dataflow design of a network: its processes, schedule and resources."""

    processes: tuple[Process, ...]
    schedule: Schedule
    fifo_bram18k: tuple[int, ...]
    csynth_latency: int
    csynth_interval: int
    layer_costs: tuple[LayerCost, ...] = field(default=())


def fifo_is_srl(depth: int, bits: int) -> bool:
    """A stream FIFO of ``depth`` beats of ``bits`` bits is a shift register (``hls_rules``)."""
    return depth <= rules.FIFO_SRL_MAX_DEPTH or depth * bits <= rules.FIFO_SRL_MAX_BITS


def fifo_bram18k(depth: int, bits: int) -> int:
    """Block RAM of a stream FIFO of ``depth`` beats of ``bits`` bits: none for a shift register."""
    return 0 if fifo_is_srl(depth, bits) else max(1, rm.bram18k(depth, bits))


def fifo_luts(depth: int, bits: int) -> int:
    """LUTs of a shift-register FIFO's storage: one SRLC32E per bit per 32 beats (none in RAM)."""
    return bits * -(-depth // rules.SRL_DEPTH_PER_LUT) if fifo_is_srl(depth, bits) else 0


def is_process(li: LayerInfo) -> bool:
    """Layers that become a process (flatten is a change of view of the stream)."""
    return not isinstance(li.layer, (Flatten, HostOp))


def layer_process(
    li: LayerInfo,
    cname: str,
    par: Parallelism | None,
    prec: Precision,
    board: Board,
    widths: tuple[int, int] = (1, 1),
) -> Process:
    """``li``'s process, its input and output streams ``widths`` words a beat."""
    layer = li.layer
    vi, vo = widths
    if isinstance(layer, TILED_OPS):
        if par is None:
            raise ValueError(f"layer '{li.name}' needs its parallelism")
        return conv_process(li, cname, par, prec, board, vi, vo)
    if isinstance(layer, Pool):
        return pool_process(li, cname, prec, board, vi)
    if isinstance(layer, GlobalAvgPool):
        return gap_process(li, cname, prec, board, vi, vo)
    if isinstance(layer, (Add, Concat)):
        return merge_process(li, cname, prec, board)
    if isinstance(layer, Scale):
        return scale_process(li, cname, prec, board)
    raise TypeError(f"layer '{li.name}' ({layer.op}) has no dataflow process")


def consumer_waits(infos: list[LayerInfo]) -> dict[str, float]:
    """Per conv/fc layer, the share of its own latency its consumer waits before it can start: the
    padded rows the consumer's PRIME needs (its Kh less its top padding) over the layer's rows.
    The DSE's latency estimate (``dse.dataflow``); the schedule is what the analysis reports."""
    out: dict[str, float] = {}
    chain = [li for li in infos if is_process(li)]
    for li, nxt in zip(chain, chain[1:], strict=False):
        if isinstance(li.layer, TILED_OPS) and isinstance(nxt.layer, (Conv, Pool)):
            g = WindowGeometry.of(nxt)
            out[li.name] = max(g.Kh - g.pt, 1) / max(li.out_shape.h, 1)
    return out


def movers(
    infos: list[LayerInfo], top: str, prec: Precision, board: Board, widths: dict[str, int] | None = None
) -> tuple[Process, Process]:
    """``<top>_read`` and ``<top>_write`` of the region that runs ``infos`` (``widths``: per map)."""
    P = board.axi_words_per_cycle(prec.bits)
    first, last = infos[0].in_shape, infos[-1].out_shape
    vi = (widths or {}).get(INPUT, 1)
    vo = (widths or {}).get(map_roots(infos)[infos[-1].name], 1)
    return (
        mover_process(f"{top}_read", first.size, first.w * first.c, P, True, vi),
        mover_process(f"{top}_write", last.size, last.w * last.c, P, False, vo),
    )


def process_widths(li: LayerInfo, root: dict[str, str], widths: dict[str, int]) -> tuple[int, int]:
    """A layer's (input, output) stream widths: its first input's map and its own."""
    return widths.get(root[li.sources[0]], 1), widths.get(root[li.name], 1)


def fixed_processes(
    infos: list[LayerInfo],
    cnames: dict[str, str],
    top: str,
    prec: Precision,
    board: Board,
    widths: dict[str, int] | None = None,
) -> list[Process]:
    """The processes whose design does not depend on the DSE: the movers, pooling, GAP, the
    forks, on streams of ``widths`` words (per map, ``model.dataflow_width``; one by default)."""
    root = map_roots(infos)
    widths = widths or {}
    fixed = [layer_process(li, cnames[li.name], None, prec, board, process_widths(li, root, widths))
             for li in infos if is_process(li) and not isinstance(li.layer, TILED_OPS)]  # fmt: skip
    _, readers, _ = map_readers(infos)
    shapes = {INPUT: infos[0].in_shape, **{li.name: li.out_shape for li in infos}}
    forks = [fork_process(fork_name(m), shapes[m], n, widths.get(m, 1)) for m, n in readers.items() if n > 1]
    return [*movers(infos, top, prec, board, widths), *fixed, *forks]


def all_lanes(infos: list[LayerInfo]) -> dict[str, Parallelism]:
    """Every conv/fc layer at its whole extent: lanes that limit no stream's width."""
    out = {}
    for li in infos:
        if isinstance(li.layer, TILED_OPS):
            g = WindowGeometry.of(li)
            out[li.name] = Parallelism(g.M, g.N, 1, g.G)
    return out


def fork_name(producer: str) -> str:
    return f"{producer}_fork"


def map_readers(infos: list[LayerInfo]) -> tuple[dict[str, str], dict[str, int], str]:
    """Each layer's map (a flatten's is its source's; INPUT the input's), how many process inputs
    read each map (the output mover reads the last), and the last map."""
    root = map_roots(infos)
    readers: dict[str, int] = {}
    for li in infos:
        if is_process(li):
            for src in li.sources:
                readers[root[src]] = readers.get(root[src], 0) + 1
    final = root[infos[-1].name]
    readers[final] = readers.get(final, 0) + 1
    return root, readers, final


def wire(
    infos: list[LayerInfo],
    cnames: dict[str, str],
    read: Process,
    write: Process,
    make: Callable[[LayerInfo], Process],
    widths: dict[str, int] | None = None,
) -> list[Process]:
    """The region's processes in order with their ``sources``: the input mover, each layer's
    process (``make``) reading its inputs' producers, a fork after every map that several
    processes read (the output mover reads the last map)."""
    root, readers, final = map_readers(infos)
    made: dict[str, str] = {}  # map -> the process its readers read (its producer, or its fork)

    def emit(proc: Process, key: str, shape: Shape) -> list[Process]:
        if readers.get(key, 0) > 1:
            fork = fork_process(fork_name(proc.name), shape, readers[key], (widths or {}).get(key, 1))
            fork = replace(fork, sources=(proc.name,))
            made[key] = fork.name
            return [proc, fork]
        made[key] = proc.name
        return [proc]

    procs = emit(read, INPUT, infos[0].in_shape)
    for li in infos:
        if is_process(li):
            p = replace(make(li), sources=tuple(made[root[src]] for src in li.sources))
            procs += emit(p, li.name, li.out_shape)
    procs.append(replace(write, sources=(made[final],)))
    return procs


def region(
    infos: list[LayerInfo],
    cnames: dict[str, str],
    top: str,
    parallelism: dict[str, Parallelism],
    prec: Precision,
    board: Board,
    clock_mhz: float | None = None,
    cap: int = 1,
    widths: dict[str, int] | None = None,
) -> Region:
    """Processes, schedule and FIFOs of the region that runs ``infos`` on ``board``: a chain, or
    a DAG whose maps read by several processes go through a fork each; streams as wide as
    ``cap`` and the layers' lanes allow (``model.dataflow_width``), or ``widths`` where the caller
    has them (the style's, at ``cap`` with every layer's lanes whole: the same widths, since the
    DSE keeps only lanes they divide)."""
    root = map_roots(infos)
    if widths is None:
        widths = stream_widths(infos, parallelism, cap, board.axi_words_per_cycle(prec.bits))
    read, write = movers(infos, top, prec, board, widths)
    procs = wire(
        infos,
        cnames,
        read,
        write,
        lambda li: layer_process(
            li, cnames[li.name], parallelism.get(li.name), prec, board, process_widths(li, root, widths)
        ),
        widths,
    )
    sched = schedule(procs)
    fifos = tuple(
        fifo_bram18k(d, prec.bits * procs[src].width)
        for d, (src, _, _) in zip(sched.fifo_depths, sched.edges, strict=True)
    )
    lat, interval = rules.dataflow_region_csynth(
        [p.cycles if p.csynth_cycles is None else p.csynth_cycles for p in procs]
    )
    costs = []
    free = {li.name: free_cost(li) for li in infos if not is_process(li)}
    order = [li.name for li in infos]
    fifo_of = [0] * len(procs)  # each stream's FIFO is counted with the process that writes it
    srl_of = [0] * len(procs)
    for (src, _, _), n, d in zip(sched.edges, fifos, sched.fifo_depths, strict=True):
        fifo_of[src] += n
        srl_of[src] += fifo_luts(d, prec.bits * procs[src].width)
    for i, p in enumerate(procs):
        res = p.resources + Resources(bram18k=fifo_of[i], lut=LUT_PER_STREAM + srl_of[i], ff=FF_PER_STREAM)
        par = parallelism.get(p.layer) if p.layer else None
        costs.append(
            LayerCost(
                name=p.layer or p.name,
                op=p.op,
                tiling=par,
                cycles=p.cycles,
                compute_cycles=0,
                fnas_cycles=None,
                bound="interval" if p.cycles == sched.interval else "stream",  # the slowest sets the pace
                resources=res,
                functions=p.functions,
                ddr_bytes=(p.in_words * prec.bits // 8) if p.op in ("read", "write") else 0,
                ddr_cycles=0,
            )
        )
    # Flatten (a change of view of the stream) costs nothing; it keeps its place in the list.
    for name, lc in free.items():
        here = order.index(name)
        later = (j for j, c in enumerate(costs) if c.name in order and order.index(c.name) > here)
        at = next(later, len(costs) - 1)  # a trailing flatten: before the output mover
        costs.insert(at, lc)
    return Region(tuple(procs), sched, fifos, lat, interval, tuple(costs))
