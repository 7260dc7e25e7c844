"""How many words a cycle each stream of a ``dataflow`` region carries: its width.

A stream carries a map in HWC order; a beat of width V is V consecutive channels of one pixel,
so V divides the map's channels and every process moves one beat an iteration. A process's line
and row buffers are banked by lanes (a conv's Pg x Pn input and Pg x Pm output lanes): a beat is
written to, or read from, V of them, so V divides the lanes on each side (a beat never spans two
rows of banks; the lanes it lands in are a run of V, each bank always written from the same word
of the beat). Only a layer whose lanes are a run of channels is wide: a plain layer (one group:
lanes are channels n % Pn) or a depthwise one (one channel per group: lanes are groups g % Pg);
a grouped layer with several channels per group keeps one word a cycle.

Pooling and a fork move each beat whole: their input and output have one width. Global pooling
sums beats of its input's width and writes beats of a width that divides it (its output is a
few words: a narrow reader, a 1/1 classifier say, need not narrow the map it pools).
Residual adds, concats and channel scales read and write one word a cycle (not yet widened). The
movers cut the AXI port's beats of P words into stream beats and back, V at most P: an iteration
moves lcm(V, P) words, whole AXI beats at the loop's own index (a gearbox that read or wrote the
port conditionally would defeat csynth's burst inference).

A stream's width is the largest that every process reading or writing it allows and that is at
most the DSE's cap (``cap``): the region is built for one cap at a time, and the style tries a
few (``styles.dataflow``). Width 1 is the design as it was before wide streams.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import lru_cache

import numpy as np

from fnas_hls.model.dataflow_process import Parallelism, WindowGeometry
from fnas_hls.model.geometry import is_tiled
from fnas_hls.network.ir import (
    INPUT,
    Add,
    Concat,
    GlobalAvgPool,
    LayerInfo,
    Pool,
    Scale,
    map_roots,
)

#: Caps the dataflow style tries, in order (a wider one only while the latency keeps falling).
WIDTH_CAPS = (1, 2, 4, 8, 16, 32)


@lru_cache(maxsize=4096)
def _largest_divisor(n: int, cap: int) -> int:
    """The largest divisor of ``n`` that is at most ``cap`` (1 for n = 0)."""
    return max((d for d in range(1, min(n, cap) + 1) if n % d == 0), default=1)


def widest(channels: int, lanes, cap: int):
    """The widest beat a side of ``lanes`` lanes (ints or an array) allows over a map of
    ``channels`` channels: the largest divisor of both at most ``cap``."""
    g = np.gcd(np.asarray(lanes), channels)
    if not g.ndim:
        return _largest_divisor(int(g), cap)
    u, inv = np.unique(g, return_inverse=True)
    return np.array([_largest_divisor(int(x), cap) for x in u])[inv].reshape(g.shape)


def lanes_in(g: WindowGeometry, p: Parallelism) -> int:
    """The input lanes a beat lands in (1 where they are not a run of channels)."""
    p = p.clipped(g)
    return p.Pg * p.Pn if (g.G == 1 or g.N == 1) else 1


def lanes_out(g: WindowGeometry, p: Parallelism) -> int:
    """The output lanes a beat is read from (1 where they are not a run of channels)."""
    p = p.clipped(g)
    return p.Pg * p.Pm if (g.G == 1 or g.M == 1) else 1


def _passes_beats(li: LayerInfo) -> bool:
    """A process whose input and output beats are one width (the same channels)."""
    return isinstance(li.layer, Pool)


def stream_widths(
    infos: Iterable[LayerInfo],
    parallelism: Mapping[str, Parallelism],
    cap: int,
    axi_words: int,
) -> dict[str, int]:
    """Per map (``map_roots``' names; INPUT the input's), its stream's width for ``cap``."""
    infos = [li for li in infos]
    root = map_roots(infos)
    parent: dict[str, str] = {}

    def find(m: str) -> str:
        while parent.get(m, m) != m:
            m = parent[m]
        return m

    def union(a: str, b: str) -> None:
        a, b = find(a), find(b)
        if a != b:
            parent[b] = a

    channels: dict[str, int] = {INPUT: infos[0].in_shape.c}
    for li in infos:
        if root[li.name] == li.name:  # a flatten is its source's map
            channels[li.name] = li.out_shape.c
        if _passes_beats(li):
            union(root[li.sources[0]], li.name)
    # Each class of maps one width: the gcd of what each end allows, then its largest divisor <= cap.
    limit: dict[str, int] = {}

    def allow(m: str, lanes: int) -> None:
        c = find(m)
        limit[c] = math.gcd(limit.get(c, 0), lanes)

    for m in {root[k] for k in channels}:
        allow(m, channels[m])
    # the movers: at most an AXI beat's P words a stream beat
    top = {find(INPUT): axi_words, find(root[infos[-1].name]): axi_words}
    for li in infos:
        ins = [root[s] for s in li.sources]
        if is_tiled(li):
            g = WindowGeometry.of(li)
            p = parallelism.get(li.name, Parallelism(1, 1))
            allow(ins[0], lanes_in(g, p))
            allow(li.name, lanes_out(g, p))
        elif isinstance(li.layer, (Add, Concat, Scale)):
            for m in [*ins, li.name]:
                allow(m, 1)
    width = {c: _largest_divisor(limit[c], min(cap, top.get(c, cap))) for c in {find(m) for m in channels}}
    # A global pooling's output width divides its input's: narrowing a class to a divisor keeps
    # every other rule (each is a divisor or an upper bound), so repeat until none changes.
    gaps = [(find(root[li.sources[0]]), find(li.name)) for li in infos if isinstance(li.layer, GlobalAvgPool)]
    changed = True
    while changed:
        changed = False
        for a, b in gaps:
            if width[a] % width[b]:
                width[b] = math.gcd(width[a], width[b])
                changed = True
    return {m: width[find(m)] for m in {root[k] for k in channels}}
