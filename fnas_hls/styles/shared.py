"""The ``shared`` style: one tiled engine for the whole board that every conv and fc layer uses in
turn (Zhang et al., FPGA'15; ``dse.shared``, ``model.shared``, ``templates/shared/``)."""

from __future__ import annotations

from typing import Any

from fnas_hls.analysis import (
    Analysis,
    host_notes,
    layers_in_turn,
    pin_notes,
)
from fnas_hls.backend.shared_context import shared_layers
from fnas_hls.boards import Board
from fnas_hls.dse.shared import choose_engine
from fnas_hls.dse.shared_ranking import compute_bound
from fnas_hls.model import shared as sh
from fnas_hls.model import shared_engine as sh_engine
from fnas_hls.model.geometry import is_tiled
from fnas_hls.model.sequential import TOP_RESOURCES
from fnas_hls.model.shared_views import engine_geometry, folds_rows
from fnas_hls.model.tiling import TilingPin, pins_for_layers
from fnas_hls.network.ir import LayerInfo, Network, Pool
from fnas_hls.network.names import c_identifiers
from fnas_hls.precision import Precision
from fnas_hls.styles.base import Style


def shared_lower_bound(net: Network, board: Board, prec: Precision) -> int:
    """Cycles no shared design that fits can beat: its engine's computation alone
    (``dse.shared_ranking.compute_bound``) on at most the usable DSPs, each layer in the view that computes
    least (its kernel rows folded onto its channels where it may)."""
    tiled = [li for li in net.info if is_tiled(li)]
    folded = [engine_geometry(li, fold=True) if folds_rows(li, not prec.is_float) else None for li in tiled]
    return compute_bound(
        [engine_geometry(li) for li in tiled], board.mac_cost(prec).macs(board.budget().dsp), folded
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
        layers = [(dse.geometry(li), *dse.tiles[li.name]) for li in tiled]
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
            in_words_min=dse.in_words_min,
            acc_words_min=dse.acc_words_min,
            load_ports=dse.load_ports,
        )
        resources = resources + engine.resources(prec, board.mac_cost(prec))
    costs = sh.shared_layer_costs(
        infos,
        cnames,
        engine,
        dse.tiles,
        board,
        prec,
        clock,
        dse.padded,
        dse.flat,
        dse.stacks,
        dse.folds,
        dse.aligned,
    )
    for lc in costs:
        resources = resources + lc.resources
    chosen = {lc.name: lc.tiling for lc in costs if lc.tiling is not None}
    notes = host_notes(net) + pin_notes(layer_pins, chosen, {f: f for f in ("Tm", "Tn", "Tr", "Tc")})
    buffers = []
    if engine:
        notes.insert(
            0,
            f"one engine of Tm x Tn = {engine.Tm} x {engine.Tn} MACs for all {len(tiled)} conv/fc layers, "
            f"{engine.load_ports} input channels loaded at once (a load port each); buffers for the largest "
            f"tile: input {engine.in_words:,} words a channel, accumulators "
            f"{engine.acc_words:,}, kernel {engine.k_words}",
        )
        if dse.padded:
            names = sorted(dse.padded)
            pools = [n for n in names if isinstance(net[n].layer, Pool)]
            by_pools = (
                f"; {_listed(pools)} by its max pooling, a beat of outputs a cycle (POOL_V)" if pools else ""
            )
            notes.insert(
                1,
                f"{len(names)} map{'s' if len(names) > 1 else ''} kept in DDR in rows of whole "
                f"{engine.beat_words}-word beats, written a beat a port a cycle (STORE_B{by_pools}): "
                f"{_listed(names)}",
            )
        if dse.flat:
            names = [li.name for li in tiled if li.name in dse.flat]
            notes.append(
                f"{len(names)} pointwise layer{'s' if len(names) > 1 else ''} run as one row of their "
                f"maps' pixels (Tr 1, Tc pixels, rows' pad words included where padded): {_listed(names)}"
            )
        if dse.stacks:
            names = [f"{li.name} ({dse.stacks[li.name]})" for li in tiled if li.name in dse.stacks]
            notes.append(
                f"{len(names)} layer{'s' if len(names) > 1 else ''} (pointwise layers run as one row, fully "
                "connected heads on one pixel) stack their input channels as kernel rows (Q rows of N/Q "
                f"channels, a step Q channel tiles; Q in brackets): {_listed(names)}"
            )
        if dse.folds:
            names = [li.name for li in tiled if li.name in dse.folds]
            notes.append(
                f"{len(names)} layer{'s' if len(names) > 1 else ''} fold their kernel rows onto their input "
                f"channels (N*Kh channels of a 1 x Kw kernel, each read Kh rows apart): {_listed(names)}"
            )
        buffers = [("engine", b.name, b.bram18k) for b in engine.buffers(prec)]
    return layers_in_turn(
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
        dse.flat,
        dse.stacks,
        dse.folds,
    )


def _listed(names: list[str], most: int = 6) -> str:
    """The first ``most`` names, and how many more."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


class Shared(Style):
    """One tiled engine for the whole board; pooling and GAP on the unit that reads beats where a
    window row fits a beat (``model.shared_pool``), else and the rest as the sequential style's
    units; adds and concats on shared units."""

    name = "shared"
    unit_templates = "sequential"
    run_time_trips = True

    lower_bound = staticmethod(shared_lower_bound)
    analyze = staticmethod(_analyze_shared)

    def runs_on_units(self, li: LayerInfo) -> bool:
        return is_tiled(li) or sh.on_merge_unit(li)

    context = staticmethod(shared_layers)

    def project_files(self, ctx: dict[str, Any]) -> list[tuple[str, str]]:
        names = ["weights.h", "engine.h", "engine.cpp"] + (
            ["units.h", "units.cpp"] if ctx["merge_units"] else []
        )
        return [(f"src/{f}", f"shared/{f}.j2") for f in names]

    def src_files(self, rendered: list[dict[str, Any]], ctx: dict[str, Any]) -> list[str]:
        own = [f"src/{d['c_name']}.cpp" for d in rendered if not d["on_unit"]]
        return [*own, "src/engine.cpp", *(["src/units.cpp"] if ctx["merge_units"] else [])]
