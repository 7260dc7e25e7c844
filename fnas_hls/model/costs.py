"""A layer's cost as the models report it, in csynth's terms: its labelled loops (``LoopCost``), the C
functions that hold them (``FunctionCost``), and the layer's cycles, bound, resources and DDR traffic
(``LayerCost``), which the manifest, ``compare`` and the reports read."""

from __future__ import annotations

from dataclasses import dataclass

from fnas_hls.model.tiling import Tiling
from fnas_hls.resources import Resources


@dataclass(frozen=True)
class LoopCost:
    """One labelled loop: pipelined (ii, depth) or sequential (iteration_latency)."""

    label: str
    trip: int
    latency: int
    ii: int | None = None
    depth: int | None = None
    iteration_latency: int | None = None


@dataclass(frozen=True)
class FunctionCost:
    """One rendered C function: latency of one call, calls per layer, and its loops."""

    name: str
    latency: int
    calls: int
    loops: tuple[LoopCost, ...]


@dataclass(frozen=True)
class LayerCost:
    name: str
    op: str
    tiling: Tiling | None
    cycles: int
    compute_cycles: int
    fnas_cycles: int | None
    bound: str  # "compute", "memory" (the element's ports), "ddr" (board bandwidth), or "none"
    resources: Resources
    functions: tuple[FunctionCost, ...]
    ddr_bytes: int
    ddr_cycles: int
