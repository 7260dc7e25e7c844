"""The ``sequential`` style: one tiled element per layer, layers one after another (FNAS-Design;
``dse.sequential``, ``model.sequential``, ``templates/sequential/``)."""

from __future__ import annotations

from typing import Any

from fnas_hls.analysis import (
    Analysis,
    host_notes,
    layers_in_turn,
    pin_notes,
)
from fnas_hls.boards import Board
from fnas_hls.dse.sequential import choose_tilings
from fnas_hls.model import hls_rules as rules
from fnas_hls.model.geometry import is_tiled
from fnas_hls.model.sequential import TOP_RESOURCES, layer_cost, top_latency
from fnas_hls.model.tiling import TilingPin, pins_for_layers
from fnas_hls.network.ir import Network
from fnas_hls.network.names import c_identifier, c_identifiers
from fnas_hls.precision import Precision
from fnas_hls.styles.base import Style


def sequential_lower_bound(net: Network, board: Board, prec: Precision) -> int:
    """Cycles no sequential design of ``net`` can beat: its layers run one after another, each on
    the DSPs it holds, so with P MACs split as p_i the compute alone takes sum(MACs_i / p_i), least
    at p_i proportional to sqrt(MACs_i): (sum of sqrt(MACs_i))^2 / P."""
    macs_per_cycle = board.mac_cost(prec).macs(board.budget().dsp)
    roots = sum(li.macs**0.5 for li in net.info if is_tiled(li))
    return int(roots * roots / macs_per_cycle)


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
    notes = host_notes(net) + pin_notes(layer_pins, dse.tilings, {f: f for f in ("Tm", "Tn", "Tr", "Tc")})
    return layers_in_turn(net, board, prec, clock, costs, resources, dse.method, notes, "sequential")


class Sequential(Style):
    """One tiled element per layer, layers one after another."""

    name = "sequential"
    unit_templates = "sequential"
    layer_elements = True

    lower_bound = staticmethod(sequential_lower_bound)
    analyze = staticmethod(_analyze_sequential)

    def predict(
        self, net: Network, board: Board, prec: Precision, clock_mhz: float | None, exact: bool
    ) -> tuple[int, bool, str]:
        """The DSE's cycles without the per-layer functions ``analyze`` lists."""
        dse = choose_tilings(net, board, prec, exact=exact)
        fixed = [
            layer_cost(li, c_identifier(li.name), None, board, prec, clock_mhz).cycles
            for li in net.info
            if not is_tiled(li)
        ]
        # The top calls each tiled layer in turn: one block per layer, as the analysis counts it.
        tiled = sum(1 for li in net.info if is_tiled(li))
        blocks = rules.SEQUENTIAL_BLOCK_OVERHEAD * max(tiled - 1, 0)
        return top_latency([dse.cycles, *fixed]) + blocks, dse.fits, self.name

    def project_files(self, ctx: dict[str, Any]) -> list[tuple[str, str]]:
        return [("src/weights.h", "weights.h.j2")]  # the elements' weights, as initializers
