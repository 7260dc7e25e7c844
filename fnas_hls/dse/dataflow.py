"""The dataflow style's DSE: each layer's parallelism (Pg groups x Pm output x Pn input channels x
Pk kernel columns x Ph kernel rows x Pc output columns), so that the region's slowest process is as
fast as the board's DSPs and block RAM allow.

All processes of the region run at once, so one image takes about the slowest process's time
(plus the rows each layer waits for before it can start) and a new image can start every
interval: the objective is the interval, the largest process latency, not the sum. Per layer,
every useful (Pm, Pn, Pk, Pg, Ph, Pc) (``dse.sequential.useful_factors``) is costed at once with
``model.dataflow_conv.conv_stage`` and cut to its Pareto front in (cycles, DSP, BRAM). The smallest
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
from fnas_hls.model.dataflow_conv import conv_stage
from fnas_hls.model.dataflow_process import Parallelism, WindowGeometry
from fnas_hls.model.tiling import TilingPin
from fnas_hls.precision import Precision
from fnas_hls.resources import MacCost, Resources

#: The method of a result with no design: a layer whose lanes cannot take its streams' widths.
NO_DESIGN = "none at these widths"

#: Intervals above the least one the latency refinement tries.
LATENCY_TARGETS = 12


@dataclass(frozen=True)
class StageFront:
    """Pareto-optimal (Pm, Pn, Pk, Pg, Ph, Pc) of one layer's process."""

    pm: np.ndarray
    pn: np.ndarray
    pk: np.ndarray
    pg: np.ndarray
    ph: np.ndarray
    pc: np.ndarray
    cycles: np.ndarray
    dsp: np.ndarray
    bram18k: np.ndarray
    lut: np.ndarray
    ff: np.ndarray

    def __len__(self) -> int:
        return len(self.cycles)


@lru_cache(maxsize=4096)
def stage_front(
    g: WindowGeometry, prec: Precision, mac: MacCost, pin: TilingPin | None = None, vi: int = 1, vo: int = 1
) -> StageFront:
    """Every useful (Pm, Pn, Pk, Pg, Ph, Pc) of a conv/fc process, cut to the Pareto front, sorted
    by cycles.

    Kernel columns and rows are unrolled (Pk, Ph > 1) in fixed point only: the fixed-point sum may
    add a window's taps in any order, a float one must keep the reference model's. Rows are the
    last to unroll: Ph > 1 only with every input channel and kernel column of a step side by side
    (what a first layer, with few input channels, has left). Its input and output streams are
    ``vi`` and ``vo`` words wide (``model.dataflow_width``): only designs whose lanes they divide
    (none, at widths the layer cannot take: an empty front). Output columns side by side (Pc) go with
    every other choice, in any precision (each output's sum is the same)."""
    from fnas_hls.model.geometry import ConvGeometry

    cg = ConvGeometry(g.G, g.M, g.N, g.R, g.C, g.Kh, g.Kw, g.Sh, g.Sw)
    taps = np.array([1]) if prec.is_float else useful_factors(g.Kw)
    grid = np.meshgrid(
        _pin_values(cg, "Tm", pin), _pin_values(cg, "Tn", pin), taps, useful_factors(g.G), indexing="ij"
    )
    pm, pn, pk, pg = (v.ravel() for v in grid)
    ph = np.ones_like(pm)
    rows = np.array([1]) if prec.is_float else useful_factors(g.Kh)[1:]
    if len(rows):
        grid = np.meshgrid(
            _pin_values(cg, "Tm", pin), _pin_values(cg, "Tn", pin)[-1:], taps[-1:], useful_factors(g.G), rows,
            indexing="ij",
        )  # fmt: skip
        pm, pn, pk, pg, ph = (
            np.concatenate([a, b.ravel()]) for a, b in zip((pm, pn, pk, pg, ph), grid, strict=True)
        )
    cols = _pin_values(cg, "Tc", pin)  # a --tiling Tc pins the output columns a step
    n = len(pm)
    pm, pn, pk, pg, ph = (np.repeat(a, len(cols)) for a in (pm, pn, pk, pg, ph))
    pc = np.tile(cols, n)
    lanes_in = np.minimum(pg, g.G) * np.minimum(pn, g.N)
    lanes_out = np.minimum(pg, g.G) * np.minimum(pm, g.M)
    keep = (lanes_in % vi == 0) & (lanes_out % vo == 0)
    pm, pn, pk, pg, ph, pc = (a[keep] for a in (pm, pn, pk, pg, ph, pc))
    s = conv_stage(g, pm, pn, prec, mac, pk, pg, vi, vo, ph, pc)
    shape = pm.shape
    cyc, dsp, bram, lut, ff = (
        np.broadcast_to(np.asarray(v, dtype=np.int64), shape)
        for v in (s.cycles, s.dsp, s.bram18k, s.lut, s.ff)
    )
    # The front in (cycles, DSPs, BRAM), and in (cycles, DSPs, LUTs): designs whose small banks sit
    # in LUTs (kernel rows side by side split the line buffer so) must not push out those that fit
    # the LUTs by using block RAM.
    idx = np.union1d(_pareto(cyc, dsp, bram), _pareto(cyc, dsp, lut))
    idx = idx[np.argsort(cyc[idx], kind="stable")]
    return StageFront(
        pm[idx], pn[idx], pk[idx], pg[idx], ph[idx], pc[idx], cyc[idx], dsp[idx], bram[idx], lut[idx], ff[idx]
    )


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


#: Weights of LUTs against BRAM (in shares of their budgets) the DP tries where the least BRAM alone
#: takes designs whose small memories, in LUTs, overflow the LUTs.
LUT_WEIGHTS = (0.125, 0.25, 0.5, 1.0, 2.0)


def _two_budget_dp(
    fronts: list[StageFront], target: int, room: Resources, lut_share: float = 0.0
) -> list[int] | None:
    """Per layer one design no slower than ``target`` with total DSP and BRAM within ``room``
    (LUT and FF for the caller to check): min-plus DP over DSPs of the least total BRAM, or of
    BRAM plus ``lut_share`` times the LUTs (each as a share of its budget). None where none is."""
    size = max(room.dsp, 0) + 1
    lut_weight = lut_share * room.bram18k / max(room.lut, 1)
    best = np.full(size, np.inf)
    best[0] = 0.0
    choice: list[np.ndarray] = []
    at = np.arange(size)
    for f in fronts:
        ok = np.flatnonzero((f.cycles <= target) & (f.dsp < size))
        if not len(ok):
            return None
        cost = f.bram18k + lut_weight * f.lut
        # Of the designs with one DSP count only the one with the least cost can be in an optimum.
        ok = ok[np.lexsort((cost[ok], f.dsp[ok]))]
        ok = ok[np.r_[True, f.dsp[ok][1:] != f.dsp[ok][:-1]]]
        src = at[None, :] - f.dsp[ok][:, None]  # (designs, DSP totals)
        vals = np.where(src >= 0, best[np.maximum(src, 0)] + cost[ok][:, None], np.inf)
        k = np.argmin(vals, axis=0)
        best = vals[k, at]
        choice.append(np.where(np.isfinite(best), ok[k], -1))
    ok = np.flatnonzero(best <= room.bram18k * (1 + lut_share))  # within both budgets' shares
    if not len(ok):
        return None
    at = int(ok[np.argmin(best[ok])])
    picks: list[int] = []
    for f, arg in zip(reversed(fronts), reversed(choice), strict=True):
        j = int(arg[at])
        picks.append(j)
        at -= int(f.dsp[j])
    picks = picks[::-1]
    return picks if _sum(fronts, picks).bram18k <= room.bram18k else None


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
    widths: Mapping[str, tuple[int, int]] | None = None,
) -> ParallelismResult:
    """(Pm, Pn) per conv/fc layer for the least interval within ``room``; ``floor_cycles`` is the
    slowest process the DSE does not size (pooling, the movers): no layer need beat it.

    With ``waits`` (per layer: how many of its row times its consumer waits before starting, over
    its rows), the least interval is a start: the next ``LATENCY_TARGETS`` intervals are tried with
    the resources left given to the layers others wait for, and the design with the least
    latency estimate, slowest process + sum of waits, is kept."""
    pins = pins or {}
    names = list(layers)
    widths = widths or {}
    fronts = [stage_front(layers[n], prec, mac, pins.get(n), *widths.get(n, (1, 1))) for n in names]
    if not fronts:
        return ParallelismResult({}, 0, Resources(), True, "bisection")
    if min(len(f) for f in fronts) == 0:  # a layer that cannot take its streams' widths
        return ParallelismResult({}, 0, Resources(), False, NO_DESIGN)

    def result(picks: list[int], method: str) -> ParallelismResult:
        res = _sum(fronts, picks)
        par = {
            n: Parallelism(int(f.pm[j]), int(f.pn[j]), int(f.pk[j]), int(f.pg[j]), int(f.ph[j]), int(f.pc[j]))
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
        picks = _two_budget_dp(fronts, target, room)
        if picks is None:  # not even the least BRAM fits: nor will any other weighing
            return None
        if _sum(fronts, picks).fits_in(room):
            return picks
        for share in LUT_WEIGHTS:  # the least BRAM overflows the LUTs: weigh them in
            picks = _two_budget_dp(fronts, target, room, share)
            if picks is not None and _sum(fronts, picks).fits_in(room):
                return picks
        return None

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
