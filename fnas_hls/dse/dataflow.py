"""The dataflow style's DSE: each layer's parallelism (Pg groups x Pm output x Pn input channels x
Pk kernel columns), so that the
region's slowest process is as fast as the board's DSPs and block RAM allow.

All processes of the region run at once, so one image takes about the slowest process's time
(plus the rows each layer waits for before it can start) and a new image can start every
interval: the objective is the interval, the largest process latency, not the sum. Per layer,
every useful (Pm, Pn, Pk, Pg) (``dse.sequential.useful_factors``) is costed at once with
``model.dataflow_process.conv_stage`` and cut to its Pareto front in (cycles, DSP, BRAM). The smallest
feasible interval is found by bisection over the candidates' cycle counts: for a target T each
layer takes its cheapest design no slower than T (fewest DSPs, then fewest BRAM), and where the
sums do not fit, a DP over DSPs of the least total BRAM decides whether any choice no slower than
T fits both budgets (exact; LUT and FF are checked after). A larger T never needs more, so the
bisection finds the least feasible interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fnas_hls.dse.sequential import _pareto, _pin_values, useful_factors
from fnas_hls.model.dataflow_process import Parallelism, WindowGeometry, conv_stage
from fnas_hls.model.dataflow_width import widest
from fnas_hls.model.tiling import TilingPin
from fnas_hls.precision import Precision
from fnas_hls.resources import MacCost, Resources

#: Intervals above the least one the latency refinement tries.
LATENCY_TARGETS = 12


@dataclass(frozen=True)
class StageFront:
    """Pareto-optimal (Pm, Pn, Pk, Pg) of one layer's process."""

    pm: np.ndarray
    pn: np.ndarray
    pk: np.ndarray
    pg: np.ndarray
    cycles: np.ndarray
    dsp: np.ndarray
    bram18k: np.ndarray
    lut: np.ndarray
    ff: np.ndarray

    def __len__(self) -> int:
        return len(self.cycles)


@lru_cache(maxsize=4096)
def stage_front(
    g: WindowGeometry, prec: Precision, mac: MacCost, pin: TilingPin | None = None, cap: int = 1
) -> StageFront:
    """Every useful (Pm, Pn, Pk, Pg) of a conv/fc process, cut to the Pareto front, sorted by cycles.

    Kernel columns are unrolled (Pk > 1) in fixed point only: the fixed-point sum may add a row of
    taps in any order, a float one must keep the reference model's. Each design is costed with
    its streams as wide as its own lanes and ``cap`` allow (``model.dataflow_width``); its
    neighbours may narrow them, which the region's schedule then counts."""
    from fnas_hls.model.sequential import ConvGeometry

    cg = ConvGeometry(g.G, g.M, g.N, g.R, g.C, g.Kh, g.Kw, g.Sh, g.Sw)
    taps = np.array([1]) if prec.is_float else useful_factors(g.Kw)
    grid = np.meshgrid(
        _pin_values(cg, "Tm", pin), _pin_values(cg, "Tn", pin), taps, useful_factors(g.G), indexing="ij"
    )
    pm, pn, pk, pg = (v.ravel() for v in grid)
    vi = widest(g.n_total, np.minimum(pg, g.G) * np.minimum(pn, g.N), cap) if g.G == 1 or g.N == 1 else 1
    vo = widest(g.m_total, np.minimum(pg, g.G) * np.minimum(pm, g.M), cap) if g.G == 1 or g.M == 1 else 1
    s = conv_stage(g, pm, pn, prec, mac, pk, pg, vi, vo)
    shape = pm.shape
    cyc, dsp, bram, lut, ff = (
        np.broadcast_to(np.asarray(v, dtype=np.int64), shape)
        for v in (s.cycles, s.dsp, s.bram18k, s.lut, s.ff)
    )
    idx = _pareto(cyc, dsp, bram)
    idx = idx[np.argsort(cyc[idx], kind="stable")]
    return StageFront(pm[idx], pn[idx], pk[idx], pg[idx], cyc[idx], dsp[idx], bram[idx], lut[idx], ff[idx])


@dataclass(frozen=True)
class ParallelismResult:
    parallelism: dict[str, Parallelism]
    interval: int  # the slowest conv/fc process (cycles)
    resources: Resources  # of the conv/fc processes
    fits: bool
    method: str  # "bisection", or "min-resources" when nothing fits


def _pick(f: StageFront, target: int) -> int:
    """The design no slower than ``target`` with the fewest DSPs, then the fewest BRAM."""
    ok = np.flatnonzero(f.cycles <= target)
    if not len(ok):
        return -1
    return int(ok[np.lexsort((f.bram18k[ok], f.dsp[ok]))[0]])


def _two_budget_dp(fronts: list[StageFront], target: int, room: Resources) -> list[int] | None:
    """Per layer one design no slower than ``target`` with total DSP and BRAM within ``room``,
    LUT and FF checked after: min-plus DP over DSPs of the least total BRAM."""
    size = max(room.dsp, 0) + 1
    best = np.full(size, np.inf)
    best[0] = 0.0
    choice: list[np.ndarray] = []
    at = np.arange(size)
    for f in fronts:
        ok = np.flatnonzero((f.cycles <= target) & (f.dsp < size))
        if not len(ok):
            return None
        # Of the designs with one DSP count only the one with the least BRAM can be in an optimum.
        ok = ok[np.lexsort((f.bram18k[ok], f.dsp[ok]))]
        ok = ok[np.r_[True, f.dsp[ok][1:] != f.dsp[ok][:-1]]]
        src = at[None, :] - f.dsp[ok][:, None]  # (designs, DSP totals)
        vals = np.where(src >= 0, best[np.maximum(src, 0)] + f.bram18k[ok][:, None], np.inf)
        k = np.argmin(vals, axis=0)
        best = vals[k, at]
        choice.append(np.where(np.isfinite(best), ok[k], -1))
    ok = np.flatnonzero(best <= room.bram18k)
    if not len(ok):
        return None
    at = int(ok[np.argmin(best[ok])])
    picks: list[int] = []
    for f, arg in zip(reversed(fronts), reversed(choice), strict=True):
        j = int(arg[at])
        picks.append(j)
        at -= int(f.dsp[j])
    picks = picks[::-1]
    return picks if _sum(fronts, picks).fits_in(room) else None


def _sum(fronts: list[StageFront], picks: list[int]) -> Resources:
    return Resources(
        dsp=sum(int(f.dsp[j]) for f, j in zip(fronts, picks, strict=True)),
        bram18k=sum(int(f.bram18k[j]) for f, j in zip(fronts, picks, strict=True)),
        lut=sum(int(f.lut[j]) for f, j in zip(fronts, picks, strict=True)),
        ff=sum(int(f.ff[j]) for f, j in zip(fronts, picks, strict=True)),
    )


def choose_parallelism(
    layers: Mapping[str, WindowGeometry],
    prec: Precision,
    mac: MacCost,
    room: Resources,
    floor_cycles: int = 0,
    pins: Mapping[str, TilingPin] | None = None,
    waits: Mapping[str, float] | None = None,
    cap: int = 1,
) -> ParallelismResult:
    """(Pm, Pn) per conv/fc layer for the least interval within ``room``; ``floor_cycles`` is the
    slowest process the DSE does not size (pooling, the movers): no layer need beat it.

    With ``waits`` (per layer: how many of its row times its consumer waits before starting, over
    its rows), the least interval is a start: the next ``LATENCY_TARGETS`` intervals are tried with
    the resources left given to the layers others wait for, and the design with the least
    latency estimate, slowest process + sum of waits, is kept."""
    pins = pins or {}
    names = list(layers)
    fronts = [stage_front(layers[n], prec, mac, pins.get(n), cap) for n in names]
    if not fronts:
        return ParallelismResult({}, 0, Resources(), True, "bisection")

    def result(picks: list[int], method: str) -> ParallelismResult:
        res = _sum(fronts, picks)
        par = {
            n: Parallelism(int(f.pm[j]), int(f.pn[j]), int(f.pk[j]), int(f.pg[j]))
            for n, f, j in zip(names, fronts, picks, strict=True)
        }
        interval = max(int(f.cycles[j]) for f, j in zip(fronts, picks, strict=True))
        return ParallelismResult(par, interval, res, res.fits_in(room), method)

    def feasible(target: int) -> list[int] | None:
        """A design no slower than ``target`` within the DSPs and BRAM, if there is one: per layer its
        cheapest designs, then a DP over DSPs of the least BRAM (exact for the two budgets)."""
        picks = [_pick(f, target) for f in fronts]
        if min(picks) < 0:
            return None
        if _sum(fronts, picks).fits_in(room):
            return picks
        return _two_budget_dp(fronts, target, room)

    targets = np.unique(np.concatenate([f.cycles for f in fronts]))
    targets = targets[targets >= min(int(max(f.cycles.min() for f in fronts)), max(floor_cycles, 0))]
    lo, hi = 0, len(targets) - 1
    if feasible(int(targets[hi])) is None:  # even the slowest designs do not fit
        return result([int(np.lexsort((f.cycles, f.bram18k, f.dsp))[0]) for f in fronts], "min-resources")
    while lo < hi:
        mid = (lo + hi) // 2
        if feasible(int(targets[mid])) is not None:
            hi = mid
        else:
            lo = mid + 1
    picks = feasible(int(targets[lo]))
    assert picks is not None
    if waits is None:
        return result(picks, "bisection")
    # One image's latency is about the slowest process plus, for each layer, the rows its consumer
    # waits for before it can start (``waits``: row times of that layer). A slightly larger
    # interval can buy a shorter latency: spend what is left on the layers others wait for.
    w = np.array([waits.get(n, 0.0) for n in names])

    def proxy(ps: list[int]) -> float:
        c = np.array([float(f.cycles[j]) for f, j in zip(fronts, ps, strict=True)])
        return float(c.max() + np.dot(w, c))

    def upgrade(ps: list[int]) -> list[int]:
        ps = list(ps)
        for i in np.argsort(-w * np.array([float(f.cycles[j]) for f, j in zip(fronts, ps, strict=True)])):
            f = fronts[i]
            used = _sum(fronts, ps)
            mine = (int(f.dsp[ps[i]]), int(f.bram18k[ps[i]]), int(f.lut[ps[i]]), int(f.ff[ps[i]]))
            left = (
                room.dsp - used.dsp + mine[0],
                room.bram18k - used.bram18k + mine[1],
                room.lut - used.lut + mine[2],
                room.ff - used.ff + mine[3],
            )
            ok = np.flatnonzero(
                (f.dsp <= left[0]) & (f.bram18k <= left[1]) & (f.lut <= left[2]) & (f.ff <= left[3])
            )
            if len(ok):
                ps[i] = int(ok[np.argmin(f.cycles[ok])])
        return ps

    best, best_cost = picks, proxy(picks)
    for target in targets[lo : lo + LATENCY_TARGETS]:
        cand = feasible(int(target))
        if cand is None:
            continue
        cand = upgrade(cand)
        cost = proxy(cand)
        if cost < best_cost:
            best, best_cost = cand, cost
    return result(best, "bisection+latency")
