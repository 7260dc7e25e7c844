"""What the rest of the toolkit asks of an accelerator style, so that no module tests a style's name:
a new style is a module of its own here (its analysis, bound and project hooks), a model, a DSE
objective and a template folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fnas_hls.boards import Board
from fnas_hls.model.tiling import TilingPin
from fnas_hls.network.ir import LayerInfo, Network
from fnas_hls.precision import Precision

if TYPE_CHECKING:
    from fnas_hls.analysis import Analysis
    from fnas_hls.backend.quantize import QuantPlan


class Style:
    """One accelerator style: its analysis, and what its project looks like."""

    #: what ``--style`` and the manifest call it; ``templates/<name>/`` holds its top
    name: str = ""
    #: the order of a feature map's words in the top's ports (the manifest's ``layout``)
    layout: str = "CHW"
    #: the folder of the templates of the layers that render a function of their own
    unit_templates: str = ""
    #: maps stream pixel by pixel, channels last: the reference model sums a fully connected
    #: layer's inputs in that order, over whole rows
    stream_order: bool = False
    #: the top is one DATAFLOW region: csynth reports the sum of its processes as the latency
    #: and the slowest as the interval (``hls_rules.dataflow_region_csynth``)
    region: bool = False
    #: every layer's weights a ROM of its own: the top has no weights port, the project no weights.h
    rom_weights: bool = False
    #: a design that does not fit cannot be written (everything lives on chip)
    must_fit: bool = False
    #: every tiled layer its own element, its weights initializers of ``weights.h`` (FNAS-Design)
    layer_elements: bool = False
    #: its layers call units with run-time loop trips (csynth reports the LOOP_TRIPCOUNT maxima)
    run_time_trips: bool = False

    def unsupported(self, net: Network) -> str:
        """Why this style cannot build ``net`` (empty when it can)."""
        return ""

    def lower_bound(self, net: Network, board: Board, prec: Precision) -> int | None:
        """Cycles no design of this style that fits can beat (``auto`` skips a style whose bound is
        above a design it has); None: no bound."""
        return None

    def analyze(
        self,
        net: Network,
        board: Board,
        prec: Precision,
        clock_mhz: float | None,
        pins: tuple[TilingPin, ...],
    ) -> Analysis:
        """The style's DSE, then its model."""
        raise NotImplementedError

    def predict(
        self, net: Network, board: Board, prec: Precision, clock_mhz: float | None, exact: bool
    ) -> tuple[int, bool, str]:
        """Cycles and whether the design fits, as fast as the sweep can have them (``exact``: the
        DSE's exact search where it has a cheaper one)."""
        a = self.analyze(net, board, prec, clock_mhz, ())
        return a.latency_cycles, a.fits, a.style

    # --- the project ---------------------------------------------------------------------------

    def runs_on_units(self, li: LayerInfo) -> bool:
        """Whether the layer runs on a unit the design shares (and renders no function of its own)."""
        return False

    def context(
        self,
        net: Network,
        analysis: Analysis,
        plan: QuantPlan,
        layers: list[dict[str, Any]],
        fmap_words: int,
    ) -> dict[str, Any]:
        """What the style's templates read beyond the layers' common fields (may add to ``layers``)."""
        return {}

    def project_files(self, ctx: dict[str, Any]) -> list[tuple[str, str]]:
        """(file, template) of the project's files beyond the top, testbench and scripts."""
        return []

    def src_files(self, rendered: list[dict[str, Any]], ctx: dict[str, Any]) -> list[str]:
        """The C++ sources the scripts add, besides the top."""
        return [f"src/{d['c_name']}.cpp" for d in rendered]
