"""Analyze a network on a board in an accelerator style: the style's DSE, then its model.

``sequential``: one tiled element per layer, layers one after another (``styles.sequential``).
``dataflow``: every layer a process of one DATAFLOW region, all at once (``styles.dataflow``).
``shared``: one tiled engine for the whole board that every layer uses in turn (``styles.shared``).
``auto``: each, and the fastest that fits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from fnas_hls.analysis import Analysis, StyleOutcome, outcome
from fnas_hls.boards import Board
from fnas_hls.errors import FnasError
from fnas_hls.model.tiling import TilingPin
from fnas_hls.network.ir import Network
from fnas_hls.precision import Precision, get_precision
from fnas_hls.styles.dataflow import _analyze_dataflow, dataflow_unsupported
from fnas_hls.styles.sequential import _analyze_sequential, sequential_lower_bound
from fnas_hls.styles.shared import _analyze_shared, shared_lower_bound

#: The accelerator styles, and ``auto`` (the fastest that fits).
STYLES = ("sequential", "dataflow", "shared")
STYLE_CHOICES = (*STYLES, "auto")


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
        outcomes.append(outcome(results[0]))

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
        outcomes.insert(0, outcome(results[0]))
    bound = shared_lower_bound(net, board, prec)
    best_so_far = fastest_fit()
    if best_so_far is not None and best_so_far < bound:
        outcomes.append(
            StyleOutcome("shared", None, True, f"not analyzed: at least {bound:,} cycles, slower")
        )
    else:
        results.append(_analyze_shared(net, board, prec, clock_mhz, pins))
        outcomes.append(outcome(results[-1]))
    fitting = [a for a in results if a.fits]
    best = min(fitting, key=lambda a: a.latency_cycles) if fitting else results[0]
    return replace(best, styles=tuple(outcomes))
