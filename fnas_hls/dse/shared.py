"""The ``shared`` style's DSE: one (Tm, Tn) for the whole network, a (Tr, Tc) per layer.

1. Every engine (Tm, Tn) within the DSPs (and LUT, FF) is ranked the way Zhang et al. (FPGA'15)
   chose theirs: each layer's cycles with whole-map tiles (Tr = R, Tc = C), computation beside the
   input and weight loads, summed over the layers (``dse.shared_ranking``). The best
   ``ENGINE_CANDIDATES`` go on, and the best ``ALIGNED_CANDIDATES`` of sides a multiple of ``ALIGN``;
   from the best of them (and from the best ranked one) the search descends to better neighbours.
2. For each of those, every layer's (Tr, Tc) is chosen over its useful values
   (``dse.sequential.useful_factors``). The engine's buffers are sized for the largest tile any
   layer takes, so the choice is made per pair of buffer sizes (block RAMs per bank of the input
   tile and of the accumulators): within a pair, each layer takes its fastest tiling, and the
   least total that fits the board's BRAM wins. A table per layer, minimum-accumulated over the
   two sizes, gives every pair at once (``dse.shared_tiles``).
3. Both run for each count of the engine's load ports (``LOAD_PORT_OPTIONS``: two or four input
   channels loaded at once), and the faster design that fits wins (``choose_engine``).

Layers with a kernel larger than 1x1 keep Tr*Tc at least the accumulate's dependence latency
where their map allows it, so that COMPUTE keeps II 1 (COMPUTE declares one distance for all its
layers, DW_COMPUTE one of its own: each loop's layers keep to and are priced at their loop's).
A pointwise layer run as one row is tried with each stack of its input channels as kernel rows
(``model.shared_views.stack_options``) beside none, and a layer whose kernel rows may fold onto its
input channels (``folds_rows``) folded where its N*Kh channels fit one input-channel tile: each
view's tilings are more rows of its table.
"""

from __future__ import annotations

from collections.abc import Mapping

from fnas_hls.boards import Board
from fnas_hls.dse.shared_ranking import rank_engines
from fnas_hls.dse.shared_tiles import Candidate, EngineSearch, SharedDse, engine_pin
from fnas_hls.model.shared import unit_cycles
from fnas_hls.model.shared_fabric import LOAD_PORT_OPTIONS
from fnas_hls.model.shared_pool import beat_gaps
from fnas_hls.model.tiling import TilingPin
from fnas_hls.network.ir import Network
from fnas_hls.precision import Precision

#: Engines (Tm, Tn) of the first ranking, among those that fit, whose per-layer tilings are then
#: searched; at most MAX_RANKED of the ranking are tried to find them.
ENGINE_CANDIDATES = 8
MAX_RANKED = 64
#: Engines whose sides are both multiples of ALIGN, the best ALIGNED_CANDIDATES of the ranking that fit,
#: are searched too: networks' channel counts are mostly multiples of 8, so such sides split them into
#: whole tiles (and a depthwise diagonal, min(Tm, Tn), as wide as the lanes), which the ranking's
#: whole-map estimate sees only in part and the descent's steps jump over: MobileNetV2 int8 on zcu104,
#: where the descent from the ranked engines stopped at 48 x 23 (4.31 ms), 32 x 32 takes 3.75 ms.
ALIGN = 8
ALIGNED_CANDIDATES = 4
#: Rounds of the descent from the best of them to a better neighbouring engine.
DESCENT_ROUNDS = 12


def choose_engine(
    net: Network, board: Board, prec: Precision, pins: Mapping[str, TilingPin] | None = None
) -> SharedDse:
    """The engine and per-layer tiles of least total latency that fit ``board``: for each count of
    load ports (``LOAD_PORT_OPTIONS``), with the maps the engine alone writes and reads stored in
    whole beats (``model.shared.padded_maps``), or with none, whichever is faster and fits (stores of
    whole beats cost the accumulators' sub-banks and the output stages' copies; a max pooling writes
    beats only where its maps are padded, so the units' cycles count too,
    ``model.shared.unit_cycles``); then the ports of the faster design that fits (the fewer where
    neither fits)."""
    pins = pins or {}
    infos = list(net.info)
    beat = board.axi_words_per_cycle(prec.bits)
    gaps = beat_gaps(infos, board, prec, beat)  # (once: neither the layout nor the ports change it)
    best, best_total = None, 0
    for ports in LOAD_PORT_OPTIONS:
        search = EngineSearch(net, board, prec, pins, load_ports=ports)
        pick = _choose(search, pins, prec, board)
        total = pick.cycles + unit_cycles(infos, board, prec, beat, search.padded, ports, gaps)
        if search.tiled and search.padded:
            plain = _choose(EngineSearch(net, board, prec, pins, frozenset(), ports), pins, prec, board)
            plain_total = plain.cycles + unit_cycles(infos, board, prec, beat, frozenset(), ports, gaps)
            if not (pick.fits and (not plain.fits or total < plain_total)):
                pick, total = plain, plain_total  # (neither fits: the plain layout, which costs less)
        if best is None or (pick.fits, -total) > (best.fits, -best_total):
            best, best_total = pick, total
        if not search.tiled:
            break
    assert best is not None
    return best


def _choose(search: EngineSearch, pins: Mapping[str, TilingPin], prec: Precision, board: Board) -> SharedDse:
    """One search's engine: pinned, or the best ranked ones that fit (and those of aligned sides) and
    their neighbours."""
    if not search.tiled:
        return SharedDse(1, 1, {}, 0, True, "no tiled layer")
    pinned = engine_pin(pins, search.tiled)
    ranked = rank_engines(
        search.geoms, prec, board, search.room, pinned, search.beats, search.folded, search.load_ports
    )
    if None not in pinned:
        return _result(search, search.evaluate(*ranked[0]), "pinned engine")
    fitting = 0
    for Tm, Tn in ranked[:MAX_RANKED]:  # the best ENGINE_CANDIDATES that fit, in the ranking's order
        fitting += search.evaluate(Tm, Tn).fits
        if fitting >= ENGINE_CANDIDATES:
            break
    ranked_best = min(search.seen.values(), key=lambda c: c.key)
    fitting = 0  # and the best ALIGNED_CANDIDATES of sides a multiple of ALIGN that fit
    for Tm, Tn in [(m, n) for m, n in ranked if m % ALIGN == 0 and n % ALIGN == 0][:MAX_RANKED]:
        fitting += search.evaluate(Tm, Tn).fits
        if fitting >= ALIGNED_CANDIDATES:
            break
    start = min(search.seen.values(), key=lambda c: c.key)
    best = _descend(search, start, pinned)
    if start is not ranked_best:  # an aligned start may lie in a worse basin: descend from the ranked too
        best = min(best, _descend(search, ranked_best, pinned), key=lambda c: c.key)
    if best.fits:  # every engine within a quarter of each side, one side at a time, then descend again
        best = min(best, _descend(search, _lines(search, best, pinned), pinned), key=lambda c: c.key)
    if not best.fits:  # nothing it met fits: shrink the best ranked engine until one does, descend again
        _shrink_until_it_fits(search, start)
        best = min(
            best,
            _descend(search, min(search.seen.values(), key=lambda c: c.key), pinned),
            key=lambda c: c.key,
        )
    how = (
        f"best of {ENGINE_CANDIDATES} ranked engines that fit and {ALIGNED_CANDIDATES} of sides a multiple "
        f"of {ALIGN}, and neighbours ({len(search.seen)} tried)"
    )
    return _result(search, best, f"{how}, (Tr, Tc) per buffer size")


def _result(search: EngineSearch, best: Candidate, method: str) -> SharedDse:
    """The search's answer: engine ``best`` and the layout it was searched in."""
    return SharedDse(
        best.Tm, best.Tn, best.tiles, best.cycles, best.fits, method, search.padded, best.w_words,
        search.flat, best.stacks, best.folds, search.aligned, *best.buffer_min, search.load_ports,
    )  # fmt: skip


def _shrink_until_it_fits(search: EngineSearch, start: Candidate) -> None:
    """Where neither the ranked engines (nor those of aligned sides) nor the descent from the best of
    them met one that fits once
    its tiles' buffers are counted (the ranking's filter sees the logic and the weights alone; the
    descent moves by cycles among engines that do not fit, towards larger ones), evaluate smaller
    engines than the best ranked one, its larger side an eighth less a step, until one fits (an
    Accel-NASBench MnasNet on zcu102: 117 x 32 and its neighbours, none fits; 40 x 40 fits)."""
    m, n = start.Tm, start.Tn
    while m * n > 1:
        if m >= n:
            m -= max(1, m // 8)
        else:
            n -= max(1, n // 8)
        if search.evaluate(m, n).fits:
            return


def _neighbours(Tm: int, Tn: int) -> set[tuple[int, int]]:
    """Engines near (Tm, Tn): each side by one, an eighth, a quarter and a half of itself, and MACs
    moved from one side to the other (twice one, half the other; one side an eighth or a quarter
    more, the other as much less)."""

    def steps(v: int) -> set[int]:
        return {v + s * d for d in {1, max(v // 8, 1), max(v // 4, 1), max(v // 2, 1)} for s in (-1, 1)}

    out = {(m, Tn) for m in steps(Tm)} | {(Tm, n) for n in steps(Tn)}
    out |= {(2 * Tm, -(-Tn // 2)), (-(-Tm // 2), 2 * Tn)}
    for k in (8, 4):
        dm, dn = max(Tm // k, 1), max(Tn // k, 1)
        out |= {(Tm + dm, Tn - dn), (Tm - dm, Tn + dn)}
    return {(m, n) for m, n in out if m >= 1 and n >= 1} - {(Tm, Tn)}


def _evaluate_near(search: EngineSearch, pairs: set[tuple[int, int]], pinned: tuple) -> list[Candidate]:
    """Each engine (Tm, Tn) of ``pairs`` within the MACs, the layers' channels and the pins, evaluated
    in order."""
    macs = search.mac.macs(search.room.dsp)
    m_max, n_max = max(g.M for g in search.geoms), search.n_max
    return [
        search.evaluate(m, n)
        for m, n in sorted(pairs)
        if 1 <= m <= m_max
        and 1 <= n <= n_max
        and m * n <= macs
        and pinned[0] in (None, m)
        and pinned[1] in (None, n)
    ]


def _lines(search: EngineSearch, best: Candidate, pinned: tuple) -> Candidate:
    """The best engine that differs from ``best`` in one side by at most a quarter of it (within the
    MACs, the layers' channels and the pins): the descent's steps skip most of them, and the landscape
    is not smooth (ResNet-50 int8 on zcu102: 64 x 33 .. 36 each slower than 64 x 32, 64 x 37 3% faster
    than all of them, the classifier's stack of 32 against the other layers' tiles)."""
    m, n = best.Tm, best.Tn
    line = {(v, n) for v in range(m - m // 4, m + m // 4 + 1)} | {
        (m, v) for v in range(n - n // 4, n + n // 4 + 1)
    }
    return min([best, *_evaluate_near(search, line, pinned)], key=lambda c: c.key)


def _descend(search: EngineSearch, best: Candidate, pinned: tuple) -> Candidate:
    """From ``best``, move to the best neighbouring engine (within the MACs, the layers' channels and
    the pins) while one is better, for at most ``DESCENT_ROUNDS`` rounds: the first ranking
    approximates every layer with whole-map tiles, and the engine its tiles favour is often near."""
    for _ in range(DESCENT_ROUNDS):
        near = _evaluate_near(search, _neighbours(best.Tm, best.Tn), pinned)
        step = min(near, key=lambda c: c.key, default=best)
        if step.key >= best.key:
            break
        best = step
    return best
