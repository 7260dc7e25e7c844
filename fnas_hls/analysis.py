"""What an analysis predicts of a design, whatever its style: latency, resources, every layer's cost,
what is over budget; and the table ``fnas-hls analyze`` prints. The styles that produce it are in
``fnas_hls.styles``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fnas_hls.boards import Board
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.model import shared_engine as sh_engine
from fnas_hls.model.costs import LayerCost
from fnas_hls.model.sequential import top_latency
from fnas_hls.model.tiling import Tiling, TilingPin
from fnas_hls.network.ir import HostOp, Network
from fnas_hls.precision import Precision
from fnas_hls.resources import Resources


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
    width: int = 1  # words per beat


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
    # dataflow: the interval csynth reports, its slowest process at the worst case of a varying trip
    csynth_interval_cycles: int | None = None
    streams: tuple[Stream, ...] = ()
    over_detail: str = ""  # what is over budget, buffer by buffer
    styles: tuple[StyleOutcome, ...] = ()  # every style tried (auto)
    engine: sh_engine.Engine | None = None  # shared: the one engine every tiled layer runs on
    # shared: each add its engine's store computes, by the conv before it (model.shared.fused_adds)
    fused_adds: dict[str, str] = field(default_factory=dict)
    # shared: the maps its engine stores in whole beats, rows padded (model.shared.padded_maps)
    padded_maps: frozenset[str] = frozenset()
    # shared: the pointwise layers its engine runs as one row, and their maps' row words
    # (model.shared.flat_layers)
    flat_layers: dict[str, int] = field(default_factory=dict)
    # shared: those of them that stack their input channels as kernel rows, and their stacks
    # (model.shared_views.engine_geometry)
    stacked_layers: dict[str, int] = field(default_factory=dict)
    # shared: the layers whose kernel rows fold onto their input channels (engine_geometry's fold)
    folded_layers: frozenset[str] = frozenset()

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
            "csynth_interval_cycles": self.csynth_interval_cycles,
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
                    "tiling": lc.tiling.as_dict() if isinstance(lc.tiling, Tiling) else None,
                    "parallelism": lc.tiling.as_dict() if isinstance(lc.tiling, dfp.Parallelism) else None,
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


def outcome(a: Analysis) -> StyleOutcome:
    return StyleOutcome(a.style, a.latency_cycles, a.fits, "" if a.fits else a.over_detail)


def pin_notes(layer_pins: dict[str, TilingPin], chosen: dict[str, Any], factors: dict[str, str]) -> list[str]:
    """Notes for pinned factors (``factors``: the pin's name to the design's) clipped to a dimension."""
    notes = []
    for name, pin in layer_pins.items():
        t = chosen[name]
        for f, mine in factors.items():
            v = pin.factor(f)
            if isinstance(v, int) and v != getattr(t, mine):
                notes.append(f"layer '{name}': pinned {f}={v} clipped to the dimension, {getattr(t, mine)}")
    return notes


def host_notes(net: Network) -> list[str]:
    return [
        f"host layer '{li.name}' ({li.layer.op_type}) runs on the host, no FPGA cost"
        for li in net.info
        if isinstance(li.layer, HostOp)
    ]


def layers_in_turn(
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
    flat_layers: dict[str, int] | None = None,
    stacked_layers: dict[str, int] | None = None,
    folded_layers: frozenset[str] = frozenset(),
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
        over_detail="" if fits else over_line(resources, budget, buffers or [], lutram),
        engine=engine,
        fused_adds=dict(fused_adds or {}),
        padded_maps=padded_maps,
        flat_layers=dict(flat_layers or {}),
        stacked_layers=dict(stacked_layers or {}),
        folded_layers=frozenset(folded_layers),
    )


def over_line(
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


def format_table(a: Analysis) -> str:
    """The per-layer table with totals and utilisation that ``fnas-hls analyze`` prints."""
    region = a.interval_cycles is not None  # one DATAFLOW region: a new image every interval
    head = (
        "layer",
        "op",
        "MACs Pm/Pn/Pk(xPh)(cPc)" if region else "tiling Tm/Tn/Tr/Tc",
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
    if region:
        out.append(
            f"interval {a.interval_cycles:,} cycles (a new image every "
            f"{a.interval_cycles / (a.clock_mhz * 1e3):.4f} ms: the slowest process); csynth will report "
            f"{a.csynth_latency_cycles:,} (the sum of the processes: it does not see them overlap)"
        )
        # each FIFO's depth, and its width where a beat is several words
        out.append(
            "streams  "
            + ", ".join(
                f"{s.src}->{s.dst} {s.depth}" + (f" x{s.width}" if s.width > 1 else "") for s in a.streams
            )
        )
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
