"""Analyze a network on a board: DSE tilings, then the performance model for every layer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fnas_hls.boards import Board
from fnas_hls.dse.sequential import choose_tilings
from fnas_hls.model.sequential import TOP_RESOURCES, LayerCost, is_tiled, layer_cost, top_latency
from fnas_hls.model.tiling import TilingPin, pins_for_layers
from fnas_hls.network.ir import HostOp, Network
from fnas_hls.network.names import c_identifiers
from fnas_hls.precision import Precision, get_precision
from fnas_hls.resources import Resources


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

    @property
    def latency_ms(self) -> float:
        return self.latency_cycles / (self.clock_mhz * 1e3)

    @property
    def over(self) -> list[str]:
        return self.resources.over(self.budget)

    @property
    def roofline_cycles(self) -> int:
        """Lower bound: all MACs on every usable DSP every cycle."""
        macs_per_cycle = max(self.budget.dsp // self.board.dsps_per_mac(self.precision.name), 1)
        return -(-self.macs // macs_per_cycle)

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "board": self.board.name,
            "part": self.board.part,
            "clock_mhz": self.clock_mhz,
            "precision": self.precision.name,
            "latency_cycles": self.latency_cycles,
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
                    "tiling": lc.tiling.as_dict() if lc.tiling else None,
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
) -> Analysis:
    """Choose tilings (honouring ``pins``) and predict every layer's cycles and resources."""
    prec = get_precision(precision) if isinstance(precision, str) else precision
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
    budget = board.budget()
    notes = [
        f"host layer '{li.name}' ({li.layer.op_type}) runs on the host, no FPGA cost"
        for li in net.info
        if isinstance(li.layer, HostOp)
    ]
    for name, pin in layer_pins.items():
        t = dse.tilings[name]
        for f in ("Tm", "Tn", "Tr", "Tc"):
            v = pin.factor(f)
            if isinstance(v, int) and v != getattr(t, f):
                notes.append(f"layer '{name}': pinned {f}={v} clipped to the dimension, {getattr(t, f)}")
    return Analysis(
        network=net.name,
        board=board,
        precision=prec,
        clock_mhz=clock,
        layers=costs,
        latency_cycles=top_latency([lc.cycles for lc in costs]),
        resources=resources,
        budget=budget,
        fits=resources.fits_in(budget),
        dse_method=dse.method,
        notes=tuple(notes),
        macs=net.macs,
    )


def format_table(a: Analysis) -> str:
    """The per-layer table with totals and utilisation that ``fnas-hls analyze`` prints."""
    head = ("layer", "op", "tiling Tm/Tn/Tr/Tc", "cycles", "ms", "bound", "DSP", "BRAM18K")
    rows = [
        (
            lc.name,
            lc.op,
            str(lc.tiling) if lc.tiling else "-",
            f"{lc.cycles:,}",
            f"{lc.cycles / (a.clock_mhz * 1e3):.4f}",
            lc.bound,
            str(lc.resources.dsp),
            str(lc.resources.bram18k),
        )
        for lc in a.layers
    ]
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
        f"{a.network} on {a.board.name} ({a.board.part}), {a.precision.name}, {a.clock_mhz:g} MHz",
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
        f"roofline bound {a.roofline_cycles:,} cycles; "
        f"{'fits' if a.fits else 'does NOT fit'} the board (DSE: {a.dse_method})"
    )
    out.extend(f"note: {n}" for n in a.notes)
    return "\n".join(out)
