"""Analyze a network on a board in an accelerator style: the style's DSE, then its model.

``sequential``: one tiled element per layer, layers one after another (``dse.sequential``,
``model.sequential``). ``dataflow``: every layer a process of one DATAFLOW region, all at once
(``dse.dataflow``, ``model.dataflow``). ``shared``: one tiled engine for the whole board that every
layer uses in turn (``dse.shared``, ``model.shared``). ``auto``: each, and the fastest that fits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from fnas_hls.boards import Board
from fnas_hls.dse.dataflow import ParallelismResult, choose_parallelism
from fnas_hls.dse.sequential import choose_tilings
from fnas_hls.dse.shared import choose_engine, compute_bound
from fnas_hls.errors import FnasError
from fnas_hls.model import dataflow as df
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.model import shared as sh
from fnas_hls.model import shared_engine as sh_engine
from fnas_hls.model.sequential import (
    TOP_RESOURCES,
    LayerCost,
    is_tiled,
    layer_cost,
    top_latency,
)
from fnas_hls.model.tiling import Tiling, TilingPin, pins_for_layers
from fnas_hls.network.ir import Flatten, HostOp, Network
from fnas_hls.network.names import c_identifiers, design_names
from fnas_hls.precision import Precision, get_precision
from fnas_hls.resources import Resources

#: The accelerator styles, and ``auto`` (the fastest that fits).
STYLES = ("sequential", "dataflow", "shared")
STYLE_CHOICES = (*STYLES, "auto")


@dataclass(frozen=True)
class StyleOutcome:
    """How one style did on a network (``auto`` compares them)."""

    style: str
    latency_cycles: int | None  # None where the style cannot build the network
    fits: bool
    why: str = ""  # why it does not fit, or cannot build the network

    def to_json(self) -> dict[str, Any]:
        return {
            "style": self.style,
            "latency_cycles": self.latency_cycles,
            "fits": self.fits,
            "why": self.why,
        }


@dataclass(frozen=True)
class Stream:
    """A stream FIFO of a dataflow region, between two processes."""

    src: str
    dst: str
    depth: int
    peak: int
    bram18k: int


@dataclass(frozen=True)
class Analysis:
    """Predicted latency and resources of a whole design."""

    network: str
    board: Board
    precision: Precision
    clock_mhz: float
    layers: tuple[LayerCost, ...]
    latency_cycles: int
    resources: Resources
    budget: Resources
    fits: bool
    dse_method: str
    notes: tuple[str, ...]
    macs: int
    style: str = "sequential"
    interval_cycles: int | None = None  # dataflow: a new image every interval
    csynth_latency_cycles: int | None = None  # dataflow: what csynth reports (it cannot see the overlap)
    streams: tuple[Stream, ...] = ()
    over_detail: str = ""  # what is over budget, buffer by buffer
    styles: tuple[StyleOutcome, ...] = ()  # every style tried (auto)
    engine: sh_engine.Engine | None = None  # shared: the one engine every tiled layer runs on
    # shared: each add its engine's store computes, by the conv before it (model.shared.fused_adds)
    fused_adds: dict[str, str] = field(default_factory=dict)
    # shared: the maps its engine stores in whole beats, rows padded (model.shared.padded_maps)
    padded_maps: frozenset[str] = frozenset()

    @property
    def latency_ms(self) -> float:
        return self.latency_cycles / (self.clock_mhz * 1e3)

    @property
    def over(self) -> list[str]:
        return self.resources.over(self.budget)

    @property
    def roofline_cycles(self) -> int:
        """Lower bound: all MACs on every usable DSP every cycle."""
        macs_per_cycle = self.board.mac_cost(self.precision).macs(self.budget.dsp)
        return -(-self.macs // macs_per_cycle)

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "board": self.board.name,
            "part": self.board.part,
            "clock_mhz": self.clock_mhz,
            "precision": self.precision.name,
            "style": self.style,
            "latency_cycles": self.latency_cycles,
            "interval_cycles": self.interval_cycles,
            "csynth_latency_cycles": self.csynth_latency_cycles,
            "streams": [vars(s) for s in self.streams],
            "styles": [s.to_json() for s in self.styles],
            "engine": vars(self.engine) if self.engine else None,
            "over_detail": self.over_detail,
            "latency_ms": self.latency_ms,
            "fits": self.fits,
            "over_budget": self.over,
            "resources": _res(self.resources),
            "budget": _res(self.budget),
            "dse_method": self.dse_method,
            "macs": self.macs,
            "roofline_cycles": self.roofline_cycles,
            "notes": list(self.notes),
            "layers": [
                {
                    "name": lc.name,
                    "op": lc.op,
                    "tiling": lc.tiling.as_dict() if lc.tiling and self.style != "dataflow" else None,
                    "parallelism": lc.tiling.as_dict() if lc.tiling and self.style == "dataflow" else None,
                    "cycles": lc.cycles,
                    "ms": lc.cycles / (self.clock_mhz * 1e3),
                    "compute_cycles": lc.compute_cycles,
                    "fnas_cycles": lc.fnas_cycles,
                    "bound": lc.bound,
                    "dsp": lc.resources.dsp,
                    "bram18k": lc.resources.bram18k,
                    "lut": lc.resources.lut,
                    "ff": lc.resources.ff,
                    "ddr_bytes": lc.ddr_bytes,
                    "functions": [
                        {
                            "name": f.name,
                            "latency": f.latency,
                            "calls": f.calls,
                            "loops": [{k: v for k, v in vars(lp).items() if v is not None} for lp in f.loops],
                        }
                        for f in lc.functions
                    ],
                }
                for lc in self.layers
            ],
        }


def _res(r: Resources) -> dict[str, int]:
    return {"dsp": r.dsp, "bram18k": r.bram18k, "lut": r.lut, "ff": r.ff}


def analyze(
    net: Network,
    board: Board,
    precision: str | Precision = "fixed16",
    clock_mhz: float | None = None,
    pins: Iterable[TilingPin] = (),
    style: str = "sequential",
) -> Analysis:
    """Choose the design of ``style`` (honouring ``pins``) and predict its cycles and resources.

    ``auto`` analyzes every style and returns the fastest that fits (else the sequential one);
    its ``styles`` says how each did.
    """
    if style not in STYLE_CHOICES:
        raise FnasError(f"unknown style '{style}'; accepted: {', '.join(STYLE_CHOICES)}")
    prec = get_precision(precision) if isinstance(precision, str) else precision
    pins = tuple(pins)
    if style == "sequential":
        return _analyze_sequential(net, board, prec, clock_mhz, pins)
    if style == "dataflow":
        why = dataflow_unsupported(net)
        if why:
            raise FnasError(f"--style dataflow: {why}")
        return _analyze_dataflow(net, board, prec, clock_mhz, pins)
    if style == "shared":
        return _analyze_shared(net, board, prec, clock_mhz, pins)
    results: list[Analysis] = []
    outcomes: list[StyleOutcome] = []
    why = dataflow_unsupported(net)
    if why:
        outcomes.append(StyleOutcome("dataflow", None, False, why))
    else:
        results.append(_analyze_dataflow(net, board, prec, clock_mhz, pins))
        outcomes.append(_outcome(results[0]))

    def fastest_fit() -> int | None:
        return min((a.latency_cycles for a in results if a.fits), default=None)

    # A style is analyzed only where it could beat the fastest fitting design so far.
    bound = sequential_lower_bound(net, board, prec)
    best_so_far = fastest_fit()
    if best_so_far is not None and best_so_far < bound:
        # No sequential design can be as fast: its layers take turns on DSPs split among them.
        outcomes.insert(
            0, StyleOutcome("sequential", None, True, f"not analyzed: at least {bound:,} cycles, slower")
        )
    else:
        results.insert(0, _analyze_sequential(net, board, prec, clock_mhz, pins))
        outcomes.insert(0, _outcome(results[0]))
    bound = shared_lower_bound(net, board, prec)
    best_so_far = fastest_fit()
    if best_so_far is not None and best_so_far < bound:
        outcomes.append(
            StyleOutcome("shared", None, True, f"not analyzed: at least {bound:,} cycles, slower")
        )
    else:
        results.append(_analyze_shared(net, board, prec, clock_mhz, pins))
        outcomes.append(_outcome(results[-1]))
    fitting = [a for a in results if a.fits]
    best = min(fitting, key=lambda a: a.latency_cycles) if fitting else results[0]
    return replace(best, styles=tuple(outcomes))


def shared_lower_bound(net: Network, board: Board, prec: Precision) -> int:
    """Cycles no shared design that fits can beat: its engine's computation alone
    (``dse.shared.compute_bound``) on at most the usable DSPs."""
    geoms = [sh_engine.engine_geometry(li) for li in net.info if is_tiled(li)]
    return compute_bound(geoms, board.mac_cost(prec).macs(board.budget().dsp))


def sequential_lower_bound(net: Network, board: Board, prec: Precision) -> int:
    """Cycles no sequential design of ``net`` can beat: its layers run one after another, each on
    the DSPs it holds, so with P MACs split as p_i the compute alone takes sum(MACs_i / p_i), least
    at p_i proportional to sqrt(MACs_i): (sum of sqrt(MACs_i))^2 / P."""
    macs_per_cycle = board.mac_cost(prec).macs(board.budget().dsp)
    roots = sum(li.macs**0.5 for li in net.info if is_tiled(li))
    return int(roots * roots / macs_per_cycle)


def _outcome(a: Analysis) -> StyleOutcome:
    return StyleOutcome(a.style, a.latency_cycles, a.fits, "" if a.fits else a.over_detail)


def dataflow_unsupported(net: Network) -> str:
    """Why the dataflow style cannot build ``net`` (empty when it can)."""
    for li in net.info:
        if isinstance(li.layer, HostOp):
            return (
                f"layer '{li.name}' ({li.layer.op_type}) runs on the host; a dataflow region holds "
                "FPGA layers only"
            )
    if all(isinstance(li.layer, Flatten) for li in net.info):
        return f"network '{net.name}' has no layer to run"
    _, readers, _ = df.map_readers(list(net.info))
    for li in net.info:
        if df.is_process(li) and not readers.get(li.name):
            return (
                f"layer '{li.name}': no layer reads its output; a dataflow region cannot leave a stream "
                "unread"
            )
    return ""


def _pin_notes(
    layer_pins: dict[str, TilingPin], chosen: dict[str, Any], factors: dict[str, str]
) -> list[str]:
    """Notes for pinned factors (``factors``: the pin's name to the design's) clipped to a dimension."""
    notes = []
    for name, pin in layer_pins.items():
        t = chosen[name]
        for f, mine in factors.items():
            v = pin.factor(f)
            if isinstance(v, int) and v != getattr(t, mine):
                notes.append(f"layer '{name}': pinned {f}={v} clipped to the dimension, {getattr(t, mine)}")
    return notes


def _host_notes(net: Network) -> list[str]:
    return [
        f"host layer '{li.name}' ({li.layer.op_type}) runs on the host, no FPGA cost"
        for li in net.info
        if isinstance(li.layer, HostOp)
    ]


def _analyze_sequential(
    net: Network, board: Board, prec: Precision, clock_mhz: float | None, pins: tuple[TilingPin, ...]
) -> Analysis:
    clock = float(clock_mhz or board.clock_mhz)
    tiled = [li.name for li in net.info if is_tiled(li)]
    layer_pins = pins_for_layers(pins, tiled)
    dse = choose_tilings(net, board, prec, layer_pins)
    cnames = c_identifiers([li.name for li in net.info])
    costs = tuple(
        layer_cost(li, cnames[li.name], dse.tilings.get(li.name), board, prec, clock) for li in net.info
    )
    resources = TOP_RESOURCES
    for lc in costs:
        resources = resources + lc.resources
    notes = _host_notes(net) + _pin_notes(layer_pins, dse.tilings, {f: f for f in ("Tm", "Tn", "Tr", "Tc")})
    return _layers_in_turn(net, board, prec, clock, costs, resources, dse.method, notes, "sequential")


def _layers_in_turn(
    net: Network,
    board: Board,
    prec: Precision,
    clock: float,
    costs: tuple[LayerCost, ...],
    resources: Resources,
    method: str,
    notes: list[str],
    style: str,
    buffers: list[tuple[str, str, int]] | None = None,
    engine: sh_engine.Engine | None = None,
    fused_adds: dict[str, str] | None = None,
    padded_maps: frozenset[str] = frozenset(),
) -> Analysis:
    """The analysis of a design whose top calls its layers one after another (sequential, shared)."""
    budget = board.budget()
    fits = resources.fits_in(budget)
    lutram = [("engine", b.name, b.lut) for b in engine.buffers(prec) if b.lut] if engine else []
    return Analysis(
        network=net.name,
        board=board,
        precision=prec,
        clock_mhz=clock,
        layers=costs,
        latency_cycles=top_latency([lc.cycles for lc in costs]),
        resources=resources,
        budget=budget,
        fits=fits,
        dse_method=method,
        notes=tuple(notes),
        macs=net.macs,
        style=style,
        over_detail="" if fits else _over_line(resources, budget, buffers or [], lutram),
        engine=engine,
        fused_adds=dict(fused_adds or {}),
        padded_maps=padded_maps,
    )


def _analyze_shared(
    net: Network, board: Board, prec: Precision, clock_mhz: float | None, pins: tuple[TilingPin, ...]
) -> Analysis:
    clock = float(clock_mhz or board.clock_mhz)
    infos = list(net.info)
    tiled = [li for li in infos if is_tiled(li)]
    layer_pins = pins_for_layers(pins, [li.name for li in tiled])
    dse = choose_engine(net, board, prec, layer_pins)
    cnames = c_identifiers([li.name for li in infos])
    engine = None
    fused = sh.fused_adds(infos)
    resources = TOP_RESOURCES + sh.merge_units(infos, prec, board)
    if tiled:
        layers = [(sh_engine.engine_geometry(li), *dse.tiles[li.name]) for li in tiled]
        beats = sh.stores_beats(infos, dse.padded)
        engine = sh_engine.make_engine(
            dse.Tm,
            dse.Tn,
            layers,
            board,
            prec,
            skip=bool(fused),
            beats=[beats[li.name] for li in tiled],
            w_words=dse.w_words,
        )
        resources = resources + engine.resources(prec, board.mac_cost(prec))
    costs = sh.shared_layer_costs(infos, cnames, engine, dse.tiles, board, prec, clock, dse.padded)
    for lc in costs:
        resources = resources + lc.resources
    chosen = {lc.name: lc.tiling for lc in costs if lc.tiling is not None}
    notes = _host_notes(net) + _pin_notes(layer_pins, chosen, {f: f for f in ("Tm", "Tn", "Tr", "Tc")})
    buffers = []
    if engine:
        notes.insert(
            0,
            f"one engine of Tm x Tn = {engine.Tm} x {engine.Tn} MACs for all {len(tiled)} conv/fc layers; "
            f"buffers for the largest tile: input {engine.in_words:,} words a channel, accumulators "
            f"{engine.acc_words:,}, kernel {engine.k_words}",
        )
        if dse.padded:
            names = sorted(dse.padded)
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            notes.insert(
                1,
                f"{len(names)} map{'s' if len(names) > 1 else ''} kept in DDR in rows of whole "
                f"{engine.beat_words}-word beats, written a beat a port a cycle (STORE_B): {shown}",
            )
        buffers = [("engine", b.name, b.bram18k) for b in engine.buffers(prec)]
    return _layers_in_turn(
        net,
        board,
        prec,
        clock,
        costs,
        resources,
        dse.method,
        notes,
        "shared",
        buffers,
        engine,
        fused,
        dse.padded,
    )


def _over_line(
    resources: Resources,
    budget: Resources,
    buffers: list[tuple[str, str, int]],
    lutram: list[tuple[str, str, int]] = (),
) -> str:
    """One line: each resource over budget and by how much, and the largest buffers behind BRAM
    (and behind LUTs, of the memories in LUTs)."""
    parts = []
    for name in resources.over(budget):
        used, avail = getattr(resources, name), getattr(budget, name)
        parts.append(f"{name.upper()} {used:,} of {avail:,} usable ({used - avail:,} over)")
    line = "; ".join(parts)
    if "bram18k" in resources.over(budget) and buffers:
        top = sorted(buffers, key=lambda b: -b[2])[:2]
        line += "; largest: " + ", ".join(f"layer '{layer}' {what} {n:,} BRAM18K" for layer, what, n in top)
    if "lut" in resources.over(budget) and lutram:
        top = sorted(lutram, key=lambda b: -b[2])[:2]
        line += "; in LUTs: " + ", ".join(f"{layer} {what} {n:,} LUT" for layer, what, n in top)
    return line


#: Rounds of the dataflow DSE: the FIFOs' block RAM is known only once the schedule is.
DATAFLOW_FIFO_ROUNDS = 3


def _analyze_dataflow(
    net: Network,
    board: Board,
    prec: Precision,
    clock_mhz: float | None,
    pins: tuple[TilingPin, ...],
    latency_refinement: bool = True,
) -> Analysis:
    clock = float(clock_mhz or board.clock_mhz)
    infos = list(net.info)
    cnames, top = design_names([li.name for li in infos], net.name)
    tiled = [li.name for li in infos if is_tiled(li)]
    layer_pins = pins_for_layers(pins, tiled)
    budget = board.budget()
    mac = board.mac_cost(prec)
    geoms = {li.name: dfp.WindowGeometry.of(li) for li in infos if is_tiled(li)}
    # What the DSE does not size: pooling, GAP, the movers (and, after a first round, the FIFOs).
    fixed = TOP_RESOURCES
    floor = 0
    for p in df.fixed_processes(infos, cnames, top, prec, board):
        fixed = fixed + p.resources + Resources(lut=dfp.LUT_PER_STREAM, ff=dfp.FF_PER_STREAM)
        floor = max(floor, p.cycles)
    regions: dict[tuple, df.Region] = {}

    def design(waits: dict[str, float] | None) -> tuple[ParallelismResult, df.Region, Resources]:
        fifo_bram = 0
        for _ in range(DATAFLOW_FIFO_ROUNDS):
            room = Resources(
                dsp=budget.dsp - fixed.dsp,
                bram18k=budget.bram18k - fixed.bram18k - fifo_bram,
                lut=budget.lut - fixed.lut - dfp.LUT_PER_STREAM * len(geoms),
                ff=budget.ff - fixed.ff - dfp.FF_PER_STREAM * len(geoms),
            )
            dse = choose_parallelism(geoms, prec, mac, room, floor, layer_pins, waits)
            key = tuple(sorted(dse.parallelism.items()))
            if key not in regions:  # the refinement often keeps the least-interval design
                regions[key] = df.region(infos, cnames, top, dse.parallelism, prec, board, clock)
            reg = regions[key]
            need = sum(reg.fifo_bram18k)
            if need <= fifo_bram or dse.resources.bram18k + need <= budget.bram18k - fixed.bram18k:
                break  # the FIFOs fit beside this design
            fifo_bram = need
        resources = TOP_RESOURCES
        for lc in reg.layer_costs:
            resources = resources + lc.resources
        return dse, reg, resources

    # The least-interval design, and the latency-aware one where it fits (its faster producers may
    # need FIFOs that do not) and its scheduled latency is less.
    dse, reg, resources = design(None)
    if latency_refinement:
        alt = design(df.consumer_waits(infos))
        if alt[2].fits_in(budget) and (
            not resources.fits_in(budget) or alt[1].schedule.latency < reg.schedule.latency
        ):
            dse, reg, resources = alt
    fits = resources.fits_in(budget)
    buffers = [(p.layer or p.name, what, n) for p in reg.processes for what, n in p.buffers]
    names = [p.layer or p.name for p in reg.processes]
    edges = reg.schedule.edges
    buffers += [
        (names[a], f"stream FIFO to {names[b]}", n)
        for (a, b, _), n in zip(edges, reg.fifo_bram18k, strict=True)
    ]
    streams = tuple(
        Stream(names[a], names[b], d, pk, n)
        for (a, b, _), d, pk, n in zip(
            edges, reg.schedule.fifo_depths, reg.schedule.fifo_peaks, reg.fifo_bram18k, strict=True
        )
    )
    notes = _pin_notes(layer_pins, dse.parallelism, {"Tm": "Pm", "Tn": "Pn"})
    notes += [f"layer '{n}': --tiling Tr/Tc do not apply to the dataflow style (one output pixel at a time)"
              for n, pin in layer_pins.items() if pin.Tr is not None or pin.Tc is not None]  # fmt: skip
    return Analysis(
        network=net.name,
        board=board,
        precision=prec,
        clock_mhz=clock,
        layers=reg.layer_costs,
        latency_cycles=reg.schedule.latency,
        resources=resources,
        budget=budget,
        fits=fits,
        dse_method=dse.method,
        notes=tuple(notes),
        macs=net.macs,
        style="dataflow",
        interval_cycles=reg.schedule.interval,
        csynth_latency_cycles=reg.csynth_latency,
        streams=streams,
        over_detail="" if fits else _over_line(resources, budget, buffers),
    )


def format_table(a: Analysis) -> str:
    """The per-layer table with totals and utilisation that ``fnas-hls analyze`` prints."""
    dataflow = a.style == "dataflow"
    head = (
        "layer",
        "op",
        "MACs Pm/Pn/Pk" if dataflow else "tiling Tm/Tn/Tr/Tc",
        "cycles",
        "ms",
        "bound",
        "DSP",
        "BRAM18K",
    )

    def par(t: Tiling | dfp.Parallelism | None) -> str:
        return "-" if t is None else str(t)

    on_engine = a.engine is not None
    rows = [
        (
            lc.name,
            lc.op,
            par(lc.tiling),
            f"{lc.cycles:,}",
            f"{lc.cycles / (a.clock_mhz * 1e3):.4f}",
            lc.bound,
            "engine" if on_engine and lc.tiling else str(lc.resources.dsp),
            "engine" if on_engine and lc.tiling else str(lc.resources.bram18k),
        )
        for lc in a.layers
    ]
    if a.engine is not None:  # the one engine's resources, counted once
        e = a.engine.resources(a.precision, a.board.mac_cost(a.precision))
        rows.append(
            ("engine", "", f"{a.engine.Tm}/{a.engine.Tn}/-/-", "", "", "", str(e.dsp), str(e.bram18k))
        )
    rows.append(
        (
            "total",
            "",
            "",
            f"{a.latency_cycles:,}",
            f"{a.latency_ms:.4f}",
            "",
            str(a.resources.dsp),
            str(a.resources.bram18k),
        )
    )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    right = {3, 4, 6, 7}

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    out = [
        f"{a.network} on {a.board.name} ({a.board.part}), {a.style} style, {a.precision.name}, "
        f"{a.clock_mhz:g} MHz",
        line(head),
        "  ".join("-" * w for w in widths),
        *[line(r) for r in rows[:-1]],
        "  ".join("-" * w for w in widths),
        line(rows[-1]),
        "",
    ]
    for name in ("dsp", "bram18k", "lut", "ff"):
        used, avail = getattr(a.resources, name), getattr(a.budget, name)
        pct = 100 * used / avail if avail else float("inf")
        flag = "  OVER BUDGET" if used > avail else ""
        out.append(f"{name.upper():8s} {used:>9,} / {avail:>9,} usable ({pct:5.1f}%){flag}")
    out.append(
        f"latency  {a.latency_cycles:,} cycles = {a.latency_ms:.4f} ms; "
        f"roofline bound {a.roofline_cycles:,} cycles ({a.latency_cycles / max(a.roofline_cycles, 1):.2f}x); "
        f"{'fits' if a.fits else 'does NOT fit'} the board (DSE: {a.dse_method})"
    )
    if dataflow:
        out.append(
            f"interval {a.interval_cycles:,} cycles (a new image every "
            f"{a.interval_cycles / (a.clock_mhz * 1e3):.4f} ms: the slowest process); csynth will report "
            f"{a.csynth_latency_cycles:,} (the sum of the processes: it does not see them overlap)"
        )
        out.append("streams  " + ", ".join(f"{s.src}->{s.dst} {s.depth}" for s in a.streams))
    if not a.fits and a.over_detail:
        out.append(f"over budget: {a.over_detail}")
    for s in a.styles:
        chosen = "  <- chosen" if s.style == a.style else ""
        if s.latency_cycles is None:  # not built, or not needed
            out.append(f"style {s.style:10s} {s.why}{chosen}")
            continue
        lat = f"{s.latency_cycles:,} cycles = {s.latency_cycles / (a.clock_mhz * 1e3):.4f} ms"
        state = "fits" if s.fits else f"does not fit ({s.why})"
        out.append(f"style {s.style:10s} {lat}, {state}{chosen}")
    out.extend(f"note: {n}" for n in a.notes)
    return "\n".join(out)
