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
from fnas_hls.styles.base import Style
from fnas_hls.styles.dataflow import Dataflow
from fnas_hls.styles.sequential import Sequential, sequential_lower_bound
from fnas_hls.styles.shared import Shared, shared_lower_bound

#: The accelerator styles by name, in the order ``auto`` reports them (and breaks ties).
STYLES: dict[str, Style] = {s.name: s for s in (Sequential(), Dataflow(), Shared())}
#: ``--style``: a style, or ``auto`` (the fastest that fits).
STYLE_CHOICES = (*STYLES, "auto")
#: The order ``auto`` analyzes them in: the one whose design most often fits and wins first, so
#: that its latency can spare the others by their lower bounds.
AUTO_ORDER = ("dataflow", "sequential", "shared")
#: The style ``auto`` returns where none fits.
AUTO_FALLBACK = "sequential"

__all__ = ["AUTO_ORDER", "STYLES", "STYLE_CHOICES", "Style", "analyze", "get_style", "sequential_lower_bound",
           "shared_lower_bound"]  # fmt: skip


def get_style(name: str) -> Style:
    """The style called ``name``; FnasError naming the accepted ones otherwise."""
    try:
        return STYLES[name]
    except KeyError:
        raise FnasError(f"unknown style '{name}'; accepted: {', '.join(STYLES)}") from None


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
    if style != "auto":
        chosen = STYLES[style]
        why = chosen.unsupported(net)
        if why:
            raise FnasError(f"--style {style}: {why}")
        return chosen.analyze(net, board, prec, clock_mhz, pins)
    results: dict[str, Analysis] = {}
    outcomes: dict[str, StyleOutcome] = {}
    for name in AUTO_ORDER:
        s = STYLES[name]
        why = s.unsupported(net)
        if why:
            outcomes[name] = StyleOutcome(name, None, False, why)
            continue
        # A style is analyzed only where it could beat the fastest fitting design so far.
        best_so_far = min((a.latency_cycles for a in results.values() if a.fits), default=None)
        bound = s.lower_bound(net, board, prec)
        if best_so_far is not None and bound is not None and best_so_far < bound:
            outcomes[name] = StyleOutcome(
                name, None, True, f"not analyzed: at least {bound:,} cycles, slower"
            )
            continue
        results[name] = s.analyze(net, board, prec, clock_mhz, pins)
        outcomes[name] = outcome(results[name])
    done = [results[n] for n in STYLES if n in results]
    fitting = [a for a in done if a.fits]
    best = min(fitting, key=lambda a: a.latency_cycles) if fitting else results[AUTO_FALLBACK]
    return replace(best, styles=tuple(outcomes[n] for n in STYLES))
