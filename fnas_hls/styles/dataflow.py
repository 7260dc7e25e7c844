"""The ``dataflow`` style: every layer a process of one DATAFLOW region, all at once, streams between
them (``dse.dataflow``, ``model.dataflow``, ``templates/dataflow/``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fnas_hls.analysis import (
    Analysis,
    Stream,
    over_line,
    pin_notes,
)
from fnas_hls.backend.dataflow_context import dataflow_layers
from fnas_hls.boards import Board
from fnas_hls.dse.dataflow import NO_DESIGN, ParallelismResult, choose_parallelism
from fnas_hls.model import dataflow as df
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.model import dataflow_streams as dfs
from fnas_hls.model import dataflow_width
from fnas_hls.model.dataflow_width import stream_widths
from fnas_hls.model.geometry import is_tiled
from fnas_hls.model.sequential import TOP_RESOURCES
from fnas_hls.model.tiling import TilingPin, pins_for_layers
from fnas_hls.network.ir import Flatten, HostOp, Network, map_roots
from fnas_hls.network.names import design_names
from fnas_hls.precision import Precision
from fnas_hls.styles.base import Style

if TYPE_CHECKING:
    from fnas_hls.backend.quantize import QuantPlan
from fnas_hls.resources import Resources


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


#: Rounds of the dataflow DSE: the FIFOs' block RAM is known only once the schedule is.
DATAFLOW_FIFO_ROUNDS = 3


def _analyze_dataflow(
    net: Network,
    board: Board,
    prec: Precision,
    clock_mhz: float | None,
    pins: tuple[TilingPin, ...],
    latency_refinement: bool = True,
    caps: tuple[int, ...] | None = None,
) -> Analysis:
    """The dataflow design of ``net``: for each stream-width cap of ``caps`` in turn (by default
    ``dataflow_width.WIDTH_CAPS``; a wider one only while the least-interval design's latency keeps
    falling), the DSE's design; the fastest that fits."""
    clock = float(clock_mhz or board.clock_mhz)
    infos = list(net.info)
    cnames, top = design_names([li.name for li in infos], net.name)
    tiled = [li.name for li in infos if is_tiled(li)]
    layer_pins = pins_for_layers(pins, tiled)
    budget = board.budget()
    geoms = {li.name: dfp.WindowGeometry.of(li) for li in infos if is_tiled(li)}
    best: Design | None = None
    lead: Design | None = None  # the best least-interval design: what decides whether to go on widening
    seen: list[dict[str, int]] = []
    worse = 0
    P = board.axi_words_per_cycle(prec.bits)
    for cap in caps or dataflow_width.WIDTH_CAPS:
        widths = stream_widths(infos, df.all_lanes(infos), cap, P)
        if widths in seen:  # no stream can be wider than at the last cap
            continue
        seen.append(widths)
        cand = _design_at(
            infos, cnames, top, geoms, board, prec, clock, layer_pins, latency_refinement, cap, widths
        )
        if cand is None:  # a layer cannot take these widths (a pinned tiling, say)
            continue
        cand, plain = cand
        if best is None or _better(cand, best, budget):
            best = cand
        # Wider caps only while the least-interval design's latency falls (one step may lose, the next
        # win back): the latency-aware designs then see the same caps, and at each one they are kept
        # only where faster, so the refinement never loses to the least-interval search.
        if lead is not None and not _better(plain, lead, budget):
            worse += 1
            if worse == 2:
                break
            continue
        lead, worse = plain, 0
    assert best is not None
    dse, reg, resources = best
    fits = resources.fits_in(budget)
    buffers = [(p.layer or p.name, what, n) for p in reg.processes for what, n in p.buffers]
    names = [p.layer or p.name for p in reg.processes]
    edges = reg.schedule.edges
    buffers += [
        (names[a], f"stream FIFO to {names[b]}", n)
        for (a, b, _), n in zip(edges, reg.fifo_bram18k, strict=True)
    ]
    streams = tuple(
        Stream(names[a], names[b], d, pk, n, reg.processes[a].width)
        for (a, b, _), d, pk, n in zip(
            edges, reg.schedule.fifo_depths, reg.schedule.fifo_peaks, reg.fifo_bram18k, strict=True
        )
    )
    notes = pin_notes(layer_pins, dse.parallelism, {"Tm": "Pm", "Tn": "Pn", "Tc": "Pc"})
    notes += [f"layer '{n}': --tiling Tr does not apply to the dataflow style (one output row at a time)"
              for n, pin in layer_pins.items() if pin.Tr is not None]  # fmt: skip
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
        csynth_interval_cycles=reg.csynth_interval,
        streams=streams,
        over_detail="" if fits else over_line(resources, budget, buffers),
    )


Design = tuple[ParallelismResult, df.Region, Resources]


def _better(a: Design, b: Design, budget: Resources) -> bool:
    """Design ``a`` over ``b``: one that fits over one that does not, then the shorter latency."""
    fa, fb = a[2].fits_in(budget), b[2].fits_in(budget)
    if fa != fb:
        return fa
    return a[1].schedule.latency < b[1].schedule.latency


def _design_at(
    infos: list,
    cnames: dict[str, str],
    top: str,
    geoms: dict[str, dfp.WindowGeometry],
    board: Board,
    prec: Precision,
    clock: float,
    layer_pins: dict[str, TilingPin],
    latency_refinement: bool,
    cap: int,
    widths: dict[str, int],
) -> tuple[Design, Design] | None:
    """The dataflow design with streams at most ``cap`` words wide: the least-interval one, or
    the latency-aware one where it fits and its scheduled latency is less (and the least-interval
    one beside it). Every stream is as wide
    as its map's channels and ``cap`` allow (``model.dataflow_width``), and each layer's lanes a
    multiple of its streams' widths (``widths``, per map: ``stream_widths`` at ``cap`` with every
    layer's lanes whole), so the DSE costs each design at the widths it will have; None where a
    layer has no such design."""
    budget = board.budget()
    mac = board.mac_cost(prec)
    root = map_roots(infos)
    layer_widths = {n: df.process_widths(li, root, widths) for li in infos if (n := li.name) in geoms}
    # What the DSE does not size: pooling, GAP, the movers (and, after a first round, the FIFOs).
    fixed = TOP_RESOURCES
    floor = 0
    for p in df.fixed_processes(infos, cnames, top, prec, board, widths):
        fixed = fixed + p.resources + Resources(lut=dfs.LUT_PER_STREAM, ff=dfs.FF_PER_STREAM)
        floor = max(floor, p.cycles)
    regions: dict[tuple, df.Region] = {}

    def design(waits: dict[str, float] | None) -> Design | None:
        fifo_bram = 0
        for _ in range(DATAFLOW_FIFO_ROUNDS):
            room = Resources(
                dsp=budget.dsp - fixed.dsp,
                bram18k=budget.bram18k - fixed.bram18k - fifo_bram,
                lut=budget.lut - fixed.lut - dfs.LUT_PER_STREAM * len(geoms),
                ff=budget.ff - fixed.ff - dfs.FF_PER_STREAM * len(geoms),
            )
            dse = choose_parallelism(geoms, prec, mac, room, floor, layer_pins, waits, layer_widths)
            if dse.method == NO_DESIGN:
                return None
            key = tuple(sorted(dse.parallelism.items()))
            if key not in regions:  # the refinement often keeps the least-interval design
                regions[key] = df.region(infos, cnames, top, dse.parallelism, prec, board, clock, cap, widths)
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
    first = design(None)
    if first is None:
        return None
    dse, reg, resources = first
    if latency_refinement:
        alt = design(df.consumer_waits(infos))
        if (
            alt is not None
            and alt[2].fits_in(budget)
            and (not resources.fits_in(budget) or alt[1].schedule.latency < reg.schedule.latency)
        ):
            dse, reg, resources = alt
    return (dse, reg, resources), first


class Dataflow(Style):
    """Every layer a process of one DATAFLOW region, streams between them, weights in ROMs."""

    name = "dataflow"
    layout = "HWC (channels last), packed AXI beats"
    unit_templates = "dataflow"
    stream_order = True
    region = True
    must_fit = True
    rom_weights = True

    unsupported = staticmethod(dataflow_unsupported)
    analyze = staticmethod(_analyze_dataflow)

    def context(
        self,
        net: Network,
        analysis: Analysis,
        plan: QuantPlan,
        layers: list[dict[str, Any]],
        fmap_words: int,
    ) -> dict[str, Any]:
        return dataflow_layers(net, analysis, plan, layers)
