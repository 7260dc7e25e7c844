"""A word-level event simulation of a dataflow region, written from the templates' control flow.

It is a second, independent statement of what ``templates/dataflow/`` does: for every iteration
of every loop of every process, which stream word it reads (if any) and which words it writes,
taken from the kernels' own conditions (``t >= FILL_START``, real positions of the padded map,
``OUT_START <= t < OUT_START + OUT_TRIP``, one window result every Kh*Kw taps...), not from the
model's stream segments. A conv's per-row counts (its ROW trip, MAC trip, OUT_START, fill) are the
values the kernel reads from its tables, so they come from the model (``conv_rows``); what the loops
do with them is restated here. Each pipelined loop issues iteration i at
``max(issue[i-1] + II, time its read word was written + 1)``: a blocking read stalls the whole
pipeline. FIFOs are unbounded here; the test then checks that the occupancy the simulation
sees never exceeds the depth the model chose, which is what makes the simulated timeline the
real one (no writer ever waits) and the design deadlock-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fnas_hls.model import dataflow as df
from fnas_hls.model import dataflow_conv as dfc
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.model import dataflow_streams as dfs
from fnas_hls.model import hls_rules as rules
from fnas_hls.resources import MacCost


@dataclass
class SimResult:
    ends: list[int]
    latency: int
    peaks: list[int]  # largest occupancy of each stream


class _Loop:
    """One run of a pipelined loop: the words its iterations read and write."""

    def __init__(self, trip: int, ii: int, depth: int, start: int = 0):
        self.trip, self.ii, self.depth = trip, ii, depth
        self.start = start  # cycles before its first iteration (a conv row's table reads)
        self.reads: list[tuple[int, int, int, int]] = []  # (iteration, word, cycles after issue, stream)
        self.writes: list[tuple[int, int, int]] = []  # (iteration, word, cycles after issue)

    def read(self, it: int, word: int, lead: int = 0, stream: int = 0) -> None:
        if word >= 0:
            self.reads.append((it, word, lead, stream))


def _positions(g: dfp.WindowGeometry, V: int = 1):
    """Every padded position a fill walks, in order, one entry per beat of ``V`` words: (is real)."""
    real = []
    p = 0
    while True:
        for q in range(g.wq):
            r = (0 <= p - g.pt < g.H) and (0 <= q - g.pl < g.W)
            real.extend([r] * (g.n_total // V))
        p += 1
        yield from real
        real = []


class _Fill:
    def __init__(self, g: dfp.WindowGeometry, V: int = 1):
        self.pos = _positions(g, V)
        self.V = V
        self.word = 0  # beats read so far

    def step(self) -> int:
        if next(self.pos):
            self.word += 1
            return self.word - 1
        return -1


class _RealFill(_Fill):
    def __init__(self, V: int = 1):
        self.V = V
        self.word = 0

    def step(self) -> int:
        self.word += 1
        return self.word - 1


def _conv_loops(li, par: dfp.Parallelism, prec, vi: int = 1, vo: int = 1) -> list[_Loop]:
    g = dfp.WindowGeometry.of(li)
    # The rendered constants are the model's (conv_stage); the control flow below is the kernel's.
    p = par.clipped(g)
    s = dfc.conv_stage(g, p.Pm, p.Pn, prec, MacCost(), p.Pk, p.Pg, vi, vo, p.Ph, p.Pc)
    s = dfc.ConvStage(*(int(v) for v in s))
    fill = _RealFill(vi)  # the conv's fills read real positions alone, every iteration a beat
    loops = []
    prime = g.real_prime // vi
    lp = _Loop(prime, 1, rules.DF_FILL_DEPTH)
    for t in range(prime):
        lp.read(t, fill.step())
    loops.append(lp)
    word = 0
    # each row's trips, fill and OUT_START: the kernel's tables
    rows = dfc.conv_rows(g, p, prec, MacCost(), vi, vo)
    start = rules.BUFFER_READ_LATENCY if dfc.rows_vary(rows) else 0  # rows that differ read tables first
    for row in rows:
        lp = _Loop(row.trip, s.row_ii, s.row_depth, start)
        for t in range(row.trip):
            if t >= row.trip - row.fill:
                lp.read(t, fill.step())
            if row.out_start <= t < row.out_start + s.out:
                lp.writes.append((t, word, rules.DF_WRITE_DEPTH - 1))
                word += 1
        loops.append(lp)
    return loops + _drain(g, fill)


def _drain(g: dfp.WindowGeometry, fill: _Fill) -> list[_Loop]:
    left = g.H * g.W * g.n_total // fill.V - fill.word
    if not left:
        return []
    assert left == g.drain // fill.V
    lp = _Loop(left, 1, rules.DF_FILL_DEPTH)
    for t in range(left):
        lp.read(t, fill.word + t)
    return [lp]


def _pool_loops(li, prec, V: int = 1) -> list[_Loop]:
    g = dfp.WindowGeometry.of(li)
    taps, row_trip, ii, depth = dfp.pool_stage(g, li.layer.kind, prec, li.layer.count_pad, V)
    win = g.Kh * g.Kw
    fill = _Fill(g, V)
    prime, fill_row = g.prime // V, g.fill_row // V
    lp = _Loop(prime, 1, rules.DF_FILL_DEPTH)
    for t in range(prime):
        lp.read(t, fill.step())
    loops = [lp]
    word = 0
    for _r in range(g.R):
        lp = _Loop(row_trip, ii, depth)
        for t in range(row_trip):
            if fill_row and t >= row_trip - fill_row:
                lp.read(t, fill.step())
            if t < taps and t % win == win - 1:
                lp.writes.append((t, word, depth - 1))
                word += 1
        loops.append(lp)
    return loops + _drain(g, fill)


def _gap_loops(li, prec, vi: int = 1, vo: int = 1) -> list[_Loop]:
    x = li.in_shape
    n = x.size // vi
    a = _Loop(n, dfp.gap_ii(x.c, prec, vi), rules.BUFFER_READ_LATENCY + prec.add_latency + 1)
    for t in range(n):
        a.read(t, t)
    od = rules.BUFFER_READ_LATENCY + prec.mul_latency + rules.DF_WRITE_DEPTH
    b = _Loop(x.c // vo, 1, od)
    b.writes = [(c, c, od - 1) for c in range(x.c // vo)]
    return [a, b]


def _mover_loops(words: int, P: int, reading: bool, V: int = 1) -> list[_Loop]:
    """READ / WRITE: lcm(V, P) words an iteration, as Q stream beats of V words (II Q), stream beat
    q of an iteration in its cycle q."""
    Q = dfs.mover_group(V, P)[1]
    n = words // V  # stream beats
    axi = -(-n // Q)
    # the read waits the m_axi latency for its first beat, the write for its last response
    depth = rules.DF_MOVER_DEPTH + rules.MAXI_LATENCY
    lp = _Loop(axi, Q, depth)
    for k in range(n):
        b, q = divmod(k, Q)
        if reading:
            lp.writes.append((b, k, depth - 1 + q))
        else:
            lp.read(b, k, q)
    return [lp]


def _fork_loops(words: int) -> list[_Loop]:
    """FORK: iteration t reads beat t and writes it to every output (one cycle later)."""
    lp = _Loop(words, 1, rules.DF_WRITE_DEPTH)
    for t in range(words):
        lp.read(t, t)
        lp.writes.append((t, t, rules.DF_WRITE_DEPTH - 1))
    return [lp]


def _merge_loops(li, prec) -> list[_Loop]:
    """ADD: iteration t reads word t of every input; CONCAT: iteration t is pixel t // C, channel
    t % C, read from the input whose channels hold it; either writes word t at its end."""
    y = li.out_shape
    if li.layer.op == "add":
        depth = rules.BUFFER_READ_LATENCY + (len(li.sources) - 1) * prec.add_latency + rules.REQUANT_DEPTH + 1
    else:
        depth = rules.BUFFER_READ_LATENCY + rules.REQUANT_DEPTH + 1
    lp = _Loop(y.size, 1, depth)
    ends = np.cumsum([x.c for x in li.in_shapes])
    for t in range(y.size):
        if li.layer.op == "add":
            for j in range(len(li.sources)):
                lp.read(t, t, 0, j)
        else:
            px, ch = divmod(t, y.c)
            j = int(np.searchsorted(ends, ch, side="right"))
            c0 = int(ends[j - 1]) if j else 0
            lp.read(t, px * li.in_shapes[j].c + ch - c0, 0, j)
        lp.writes.append((t, t, depth - 1))
    return [lp]


def _region_loops(infos, region: df.Region, parallelism, prec, P: int, slow: dict[str, int] | None = None):
    """Every process of the region as (name, the processes it reads, its loops); ``slow``: processes
    whose every loop runs at that many times its II."""
    layer_of = {li.name: li for li in infos}
    procs = region.processes
    out = []
    by_name = {p.name: p for p in procs}
    for i, p in enumerate(procs):
        sources = p.sources or ((procs[i - 1].name,) if i else ())
        vi = by_name[sources[0]].width if sources else 1  # words a beat of its (first) input stream
        if i == 0:
            loops = _mover_loops(p.out_words, P, True, p.width)
        elif i == len(procs) - 1:
            loops = _mover_loops(p.in_words, P, False, vi)
        elif p.op == "fork":
            loops = _fork_loops(p.in_words // vi)
        else:
            li = layer_of[p.layer]
            if p.op in ("conv", "fc"):
                loops = _conv_loops(li, parallelism[p.layer], prec, vi, p.width)
            elif p.op == "gap":
                loops = _gap_loops(li, prec, vi, p.width)
            elif p.op in ("add", "concat"):
                assert vi == p.width == 1, "residual adds and concats move one word a cycle"
                loops = _merge_loops(li, prec)
            else:
                loops = _pool_loops(li, prec, vi)
        for lp in loops:
            lp.ii *= (slow or {}).get(p.name, 1)
        out.append((p.name, sources, loops))
    return out


def _run(procs, back: dict[str, np.ndarray]):
    """One pass over the processes in order: each loop's iterations issued as early as their reads
    (and, where ``back`` holds a process's words, their writes: the time each word's FIFO slot
    frees) allow. Returns each process's end, its words' write times, and each (consumer, input)'s
    read time of every word it reads."""
    avail: dict[str, np.ndarray] = {}
    ends, reads = [], []
    for name, sources, loops in procs:
        t = 0
        out_time: dict[int, int] = {}
        read_time: dict[int, list[tuple[int, int]]] = {j: [] for j in range(len(sources))}
        for lp in loops:
            t += lp.start
            need = np.full(lp.trip, t, dtype=np.int64)
            for it, k, lead, j in lp.reads:
                need[it] = max(need[it], avail[sources[j]][k] + 1 - lead)
            if name in back:
                for it, k, lag in lp.writes:
                    need[it] = max(need[it], back[name][k] - lag)
            idx = np.arange(lp.trip, dtype=np.int64)
            issue = idx * lp.ii + np.maximum.accumulate(need - idx * lp.ii)
            for it, k, lag in lp.writes:
                out_time[k] = int(issue[it]) + lag
            for it, k, lead, j in lp.reads:
                read_time[j].append((k, int(issue[it]) + lead))
            end = int(issue[-1]) + lp.depth - 1 if lp.trip else t
            t = end + rules.SEQUENTIAL_BLOCK_OVERHEAD
        ends.append(t + rules.FUNCTION_OVERHEAD - rules.SEQUENTIAL_BLOCK_OVERHEAD * (len(loops) == 1))
        reads.append([read_time[j] for j in range(len(sources))])
        if out_time:
            avail[name] = np.array([out_time[k] for k in range(len(out_time))], dtype=np.int64)
    return ends, avail, reads


def simulate(infos, region: df.Region, parallelism, prec, P: int) -> SimResult:
    """Run the region's processes in order over unbounded FIFOs, word by word; a process reads
    the processes its ``sources`` name (a chain: the one before it)."""
    procs = _region_loops(infos, region, parallelism, prec, P)
    ends, avail, reads = _run(procs, {})
    peaks = [  # one FIFO per (consumer, input), in the schedule's order
        _peak(avail[src], reads[i][j])
        for i, (_, sources, _) in enumerate(procs)
        for j, src in enumerate(sources)
    ]
    return SimResult(ends, max(ends), peaks)


@dataclass
class BoundedResult:
    latency: int | None  # None: deadlock (no fixed point within the bound)
    rounds: int  # passes until no time moved


def simulate_bounded(
    infos, region: df.Region, parallelism, prec, P: int, depths, slow: dict[str, int] | None = None
) -> BoundedResult:
    """The region over FIFOs of ``depths`` (per (consumer, input), in the schedule's order) with
    blocking writes: word k of a FIFO of depth D is written no earlier than the cycle after its
    consumer read word k - D. The writers' and readers' times depend on each other, so passes
    repeat until no time moves (times only grow); a region that keeps growing past many times
    its unbounded latency has deadlocked (a cycle of full and empty FIFOs never resolves). The
    unbounded ``simulate`` is this with no FIFO ever full."""
    procs = _region_loops(infos, region, parallelism, prec, P, slow)
    ends, avail, reads = _run(procs, {})
    bound = 10 * max(ends) + 10_000
    fifos = [(i, j, src) for i, (_, sources, _) in enumerate(procs) for j, src in enumerate(sources)]
    assert len(fifos) == len(depths)
    back: dict[str, np.ndarray] = {}
    for rounds in range(1, 10_000):
        new = {name: np.zeros(len(t), dtype=np.int64) for name, t in avail.items()}
        for (i, j, src), d in zip(fifos, depths, strict=True):
            r = np.full(len(avail[src]), np.iinfo(np.int64).max // 4, dtype=np.int64)  # never read
            for k, t in reads[i][j]:
                r[k] = t
            if d < len(r):  # a FIFO deeper than its stream's words never fills
                new[src][d:] = np.maximum(new[src][d:], r[: len(r) - d] + 1)
        if rounds > 1 and all(np.array_equal(new[n], back.get(n)) for n in new):
            return BoundedResult(max(ends), rounds)
        back = new
        ends, avail, reads = _run(procs, back)
        if max(ends) > bound:
            return BoundedResult(None, rounds)
    return BoundedResult(None, rounds)


def analyze_and_simulate(net, board, precision: str):
    """The dataflow analysis of ``net``, its region as the model schedules it, and the simulation."""
    from fnas_hls.network.names import design_names
    from fnas_hls.precision import get_precision
    from fnas_hls.styles import analyze

    prec = get_precision(precision)
    a = analyze(net, board, precision, style="dataflow")
    par = {lc.name: lc.tiling for lc in a.layers if lc.tiling is not None}
    cnames, top = design_names([li.name for li in net.info], net.name)
    cap = max((st.width for st in a.streams), default=1)  # the widths the analysis chose
    reg = df.region(list(net.info), cnames, top, par, prec, board, cap=cap)
    return a, reg, simulate(list(net.info), reg, par, prec, board.axi_words_per_cycle(prec.bits))


def _peak(write_t: np.ndarray, reads: list[tuple[int, int]]) -> int:
    """Largest number of words written (at or before t) and not yet read (after t)."""
    rt = np.full(len(write_t), np.iinfo(np.int64).max)
    for k, t in reads:
        rt[k] = t
    # For the mover that reads a beat at once, words of a beat count as read at the beat's time.
    events = np.concatenate([write_t, rt[rt < np.iinfo(np.int64).max]])
    w = np.searchsorted(np.sort(write_t), events, side="right")
    r = np.searchsorted(np.sort(rt), events, side="right")
    return int(np.max(w - r)) if len(events) else 0


def force_columns(monkeypatch, want: int) -> None:
    """Make the DSE compute ``want`` output columns a step in every conv/fc layer (at most its
    columns), as a ``--tiling all:Tc=want`` pin would: 1 for a test of another kind of parallelism
    that output columns would take the place of."""
    from dataclasses import replace

    from fnas_hls.dse import dataflow as dse_dataflow
    from fnas_hls.model.tiling import TilingPin

    original = dse_dataflow.stage_front

    def pinned(g, prec, mac, pin=None, vi=1, vo=1):
        return original(g, prec, mac, replace(pin or TilingPin("all"), Tc=want), vi, vo)

    monkeypatch.setattr(dse_dataflow, "stage_front", pinned)
