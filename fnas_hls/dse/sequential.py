"""Design-space exploration: each tiled layer's (Tm, Tn, Tr, Tc), so that the whole design fits the
board and the total latency is least.

1. Per layer, every *useful* value of each factor is enumerated: for a factor over a dimension D,
   only the smallest value giving each tile count ceil(D/T) (a larger one costs more and saves no
   tile). The whole grid is costed at once by ``model.sequential.conv_terms`` (numpy) and cut to its
   Pareto front in (cycles, DSP, BRAM). Fronts are cached per layer shape.
2. Layers are combined by dynamic programming over DSPs (a min-plus product per layer): exact
   whenever the best design within the DSP budget also fits BRAM, LUT and FF.
3. Where BRAM binds, an exact DP over (DSP, BRAM) pairs, when the board and network are small
   enough (``EXACT_DP_CELLS``).
4. Otherwise BRAM, LUT and FF are priced with a Lagrange weight (two batches of weights over many
   decades), the best fitting design is improved by moving one layer at a time, and the result
   is compared with the FNAS-Design split; the better is kept (``DseResult.method`` says which).

``fnas_design_tilings`` is that baseline: DSPs split in proportion to MACs, each layer enumerated
alone within its share (Jiang et al., FNAS, DAC 2019).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fnas_hls.boards import Board
from fnas_hls.model.geometry import ConvGeometry, is_tiled
from fnas_hls.model.sequential import conv_terms, layer_cost
from fnas_hls.model.tiling import FACTORS, Tiling, TilingPin
from fnas_hls.network.ir import LayerInfo, Network
from fnas_hls.precision import Precision
from fnas_hls.resources import MacCost, Resources

#: Largest (DSP x BRAM states) x tilings the exact DP may take (about 0.1 s of numpy).
EXACT_DP_CELLS = 40_000_000
#: Lagrange weights tried in each of the two batches.
LAGRANGE_STEPS = 8


def useful_factors(dim: int) -> np.ndarray:
    """The smallest tile size for each tile count of a dimension of size ``dim``."""
    return np.array(sorted({-(-dim // k) for k in range(1, dim + 1)}), dtype=np.int64)


def _dim(g: ConvGeometry, factor: str) -> int:
    return {"Tm": g.M, "Tn": g.N, "Tr": g.R, "Tc": g.C}[factor]


@dataclass(frozen=True)
class Front:
    """Pareto-optimal tilings of one layer, sorted by DSPs."""

    tilings: np.ndarray  # (k, 4): Tm, Tn, Tr, Tc
    cycles: np.ndarray
    dsp: np.ndarray
    bram18k: np.ndarray
    lut: np.ndarray
    ff: np.ndarray

    def __len__(self) -> int:
        return len(self.cycles)

    def tiling(self, i: int) -> Tiling:
        return Tiling(*(int(v) for v in self.tilings[i]))

    def subset(self, idx: np.ndarray) -> Front:
        return Front(
            self.tilings[idx], self.cycles[idx], self.dsp[idx], self.bram18k[idx], self.lut[idx], self.ff[idx]
        )


def _prune(fronts: list[Front], room: Resources, cycles_bound: float) -> list[np.ndarray]:
    """Per front, the tilings that can belong to a design within ``room`` of at most ``cycles_bound``
    cycles, given that every other layer takes at least its own minimum of each."""
    lows = [(int(f.cycles.min()), int(f.dsp.min()), int(f.bram18k.min())) for f in fronts]
    total = [sum(x[i] for x in lows) for i in range(3)]
    kept = []
    for f, (c, d, b) in zip(fronts, lows, strict=True):
        ok = (
            (f.cycles + total[0] - c <= cycles_bound)
            & (f.dsp + total[1] - d <= room.dsp)
            & (f.bram18k + total[2] - b <= room.bram18k)
        )
        kept.append(np.flatnonzero(ok))
    return kept


def _pin_values(g: ConvGeometry, factor: str, pin: TilingPin | None, every: bool = False) -> np.ndarray:
    """The values a factor may take: pinned, every integer (``every``), or the useful ones."""
    dim = _dim(g, factor)
    value = pin.factor(factor) if pin is not None else None
    if value is None:
        return np.arange(1, dim + 1, dtype=np.int64) if every else useful_factors(dim)
    return np.array([dim if value == "full" else min(int(value), dim)], dtype=np.int64)


def _pareto(cycles: np.ndarray, dsp: np.ndarray, bram: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats or equals in cycles, DSP and BRAM together."""
    order = np.lexsort((bram, cycles, dsp))
    keep: list[int] = []
    front_c = np.empty(0, dtype=np.int64)  # cycles ascending
    front_b = np.empty(0, dtype=np.int64)  # bram strictly descending
    start = 0
    n = len(order)
    while start < n:
        end = start
        d = dsp[order[start]]
        while end < n and dsp[order[end]] == d:
            end += 1
        group = order[start:end]
        # 2-D front of this DSP value in (cycles, bram): sorted by cycles, keep strictly falling bram.
        group = group[np.lexsort((bram[group], cycles[group]))]
        gb = np.minimum.accumulate(bram[group])
        first = np.ones(len(group), dtype=bool)
        first[1:] = gb[1:] < gb[:-1]
        group = group[first]
        # Drop points that a cheaper-DSP point already beats.
        if len(front_c):
            pos = np.searchsorted(front_c, cycles[group], side="right") - 1
            ok = (pos < 0) | (front_b[np.maximum(pos, 0)] > bram[group])
            group = group[ok]
        if len(group):
            keep.extend(group.tolist())
            c = np.concatenate([front_c, cycles[group]])
            b = np.concatenate([front_b, bram[group]])
            o = np.lexsort((b, c))
            c, b = c[o], b[o]
            mb = np.minimum.accumulate(b)
            sel = np.ones(len(c), dtype=bool)
            sel[1:] = mb[1:] < mb[:-1]
            front_c, front_b = c[sel], b[sel]
        start = end
    return np.array(keep, dtype=np.int64)


@lru_cache(maxsize=4096)
def layer_front(
    g: ConvGeometry, prec: Precision, mac: MacCost, dsp_budget: int, pin: TilingPin | None = None
) -> Front:
    """Pareto front of one layer's tilings within ``dsp_budget`` DSPs (all tilings if none fits)."""
    vals = [_pin_values(g, f, pin) for f in FACTORS]
    tm, tn = np.meshgrid(vals[0], vals[1], indexing="ij")
    tm, tn = tm.ravel(), tn.ravel()
    ok = mac.dsps(tm, tn) <= dsp_budget
    if ok.any():
        tm, tn = tm[ok], tn[ok]
    grid = np.stack(np.meshgrid(np.arange(len(tm)), vals[2], vals[3], indexing="ij"), -1).reshape(-1, 3)
    Tm, Tn, Tr, Tc = tm[grid[:, 0]], tn[grid[:, 0]], grid[:, 1], grid[:, 2]
    k = conv_terms(g, Tm, Tn, Tr, Tc, prec, mac)
    cycles = np.asarray(k.cycles, dtype=np.int64)
    dsp = np.broadcast_to(np.asarray(k.dsp, dtype=np.int64), cycles.shape)
    bram = np.broadcast_to(np.asarray(k.bram18k, dtype=np.int64), cycles.shape)
    idx = _pareto(cycles, dsp, bram)
    idx = idx[np.argsort(dsp[idx], kind="stable")]
    lut = np.broadcast_to(np.asarray(k.lut, dtype=np.int64), cycles.shape)
    ff = np.broadcast_to(np.asarray(k.ff, dtype=np.int64), cycles.shape)
    til = np.stack([Tm, Tn, Tr, Tc], axis=1)[idx]
    return Front(til, cycles[idx], dsp[idx], bram[idx], lut[idx], ff[idx])


@dataclass(frozen=True)
class DseResult:
    tilings: dict[str, Tiling]
    cycles: int  # sum of the tiled layers' cycles
    resources: Resources  # of the tiled layers
    fits: bool
    method: str  # exact: "dp" (DSP binds), "dp-exact" (BRAM too); else "dp+lagrange",
    # "fnas-design" (the baseline was better), "min-resources" (nothing fits)


def _fronts(
    net: Network, board: Board, prec: Precision, pins: Mapping[str, TilingPin], dsp_budget: int
) -> list[tuple[LayerInfo, Front]]:
    mac = board.mac_cost(prec)
    return [
        (li, layer_front(ConvGeometry.element_of(li), prec, mac, dsp_budget, pins.get(li.name)))
        for li in net.info
        if is_tiled(li)
    ]


def _dp(fronts: list[Front], dsp_budget: int, weights: np.ndarray) -> list[list[int] | None]:
    """Min-plus DP over DSPs, for a batch of Lagrange weights at once.

    ``weights`` is (L, 3): per row, the price of one BRAM18K, LUT and FF in cycles. For each row it
    returns the choice per layer minimising cycles plus priced resources within ``dsp_budget``
    DSPs (None when no choice fits the DSPs).
    """
    size = dsp_budget + 1
    lam = weights.shape[0]
    d = np.arange(size)
    best = np.full((lam, size), np.inf)
    best[:, 0] = 0.0
    choices: list[np.ndarray] = []
    for f in fronts:
        res = np.stack([f.bram18k, f.lut, f.ff]).astype(float)  # (3, k)
        cost = f.cycles[None, :] + weights @ res  # (L, k)
        # Only the cheapest tiling of each DSP count can be part of an optimum: sort each row by
        # (DSP, cost); fronts are sorted by DSP, so the groups start at the same places in every row.
        order = np.argsort(cost, axis=1, kind="stable")
        order = np.take_along_axis(order, np.argsort(f.dsp[order], axis=1, kind="stable"), axis=1)
        starts = np.flatnonzero(np.r_[True, f.dsp[1:] != f.dsp[:-1]])
        cand = order[:, starts]  # (L, G)
        dsp_g = f.dsp[starts]  # (G,)
        src = d[None, :] - dsp_g[:, None]  # (G, size)
        ok = src >= 0
        vals = best[:, np.maximum(src, 0)] + np.take_along_axis(cost, cand, axis=1)[:, :, None]
        vals = np.where(ok[None], vals, np.inf)  # (L, G, size)
        arg = np.argmin(vals, axis=1)  # (L, size)
        best = np.take_along_axis(vals, arg[:, None, :], axis=1)[:, 0, :]
        choices.append(np.take_along_axis(cand, arg, axis=1))  # tiling index per (row, dsp)
    out: list[list[int] | None] = []
    for r in range(lam):
        if not np.isfinite(best[r]).any():
            out.append(None)
            continue
        at = int(np.argmin(best[r]))
        picked: list[int] = []
        for f, ch in zip(reversed(fronts), reversed(choices), strict=True):
            j = int(ch[r, at])
            picked.append(j)
            at -= int(f.dsp[j])
        out.append(picked[::-1])
    return out


def _totals(fronts: list[Front], picked: list[int]) -> tuple[int, Resources]:
    cycles = sum(int(f.cycles[j]) for f, j in zip(fronts, picked, strict=True))
    res = Resources(
        dsp=sum(int(f.dsp[j]) for f, j in zip(fronts, picked, strict=True)),
        bram18k=sum(int(f.bram18k[j]) for f, j in zip(fronts, picked, strict=True)),
        lut=sum(int(f.lut[j]) for f, j in zip(fronts, picked, strict=True)),
        ff=sum(int(f.ff[j]) for f, j in zip(fronts, picked, strict=True)),
    )
    return cycles, res


def _exact(fronts: list[Front], room: Resources) -> list[int] | None:
    """Exact DP over (DSP, BRAM18K) pairs: the least total cycles within both budgets.

    After i layers the table spans only the DSP and BRAM totals those layers can reach and the
    rest can still afford. None when nothing fits. LUT and FF are checked by the caller.
    """
    lo_d = [int(f.dsp.min()) for f in fronts]
    lo_b = [int(f.bram18k.min()) for f in fronts]
    hi_d = [int(f.dsp.max()) for f in fronts]
    hi_b = [int(f.bram18k.max()) for f in fronts]
    caps = []
    for i in range(len(fronts) + 1):
        d_cap = min(room.dsp - sum(lo_d[i:]), sum(hi_d[:i]))
        b_cap = min(room.bram18k - sum(lo_b[i:]), sum(hi_b[:i]))
        if d_cap < 0 or b_cap < 0:
            return None
        caps.append((d_cap, b_cap))
    best = np.zeros((1, 1))
    stages = [best]
    for f, (d_cap, b_cap) in zip(fronts, caps[1:], strict=True):
        new = np.full((d_cap + 1, b_cap + 1), np.inf)
        rows, cols = best.shape
        for j in range(len(f)):
            dd, bb = int(f.dsp[j]), int(f.bram18k[j])
            if dd > d_cap or bb > b_cap:
                continue
            r, c = min(rows, d_cap + 1 - dd), min(cols, b_cap + 1 - bb)
            sub = new[dd : dd + r, bb : bb + c]
            np.minimum(sub, best[:r, :c] + float(f.cycles[j]), out=sub)
        best = new
        stages.append(best)
    if not np.isfinite(best).any():
        return None
    # Walk back: at each layer, a tiling whose cost explains the state's best total.
    d, b = np.unravel_index(int(np.argmin(best)), best.shape)
    picked: list[int] = []
    for i in range(len(fronts) - 1, -1, -1):
        f, prev, total = fronts[i], stages[i], stages[i + 1][d, b]
        for j in range(len(f)):
            pd, pb = d - int(f.dsp[j]), b - int(f.bram18k[j])
            if (
                0 <= pd < prev.shape[0]
                and 0 <= pb < prev.shape[1]
                and prev[pd, pb] + float(f.cycles[j]) == total
            ):
                picked.append(j)
                d, b = pd, pb
                break
        else:  # pragma: no cover - the forward pass guarantees a match
            raise AssertionError("exact DP could not walk back")
    return picked[::-1]


def _improve(fronts: list[Front], picked: list[int], room: Resources) -> list[int]:
    """Local search from a fitting design: move one layer at a time to the tiling that cuts the
    total latency most while the design still fits, until no move helps."""
    picked = list(picked)
    used = np.array(
        [
            sum(int(getattr(f, r)[j]) for f, j in zip(fronts, picked, strict=True))
            for r in ("dsp", "bram18k", "lut", "ff")
        ]
    )
    limit = np.array([room.dsp, room.bram18k, room.lut, room.ff])
    while True:
        best_gain, best_move = 0, None
        for i, f in enumerate(fronts):
            j = picked[i]
            res = np.stack([f.dsp, f.bram18k, f.lut, f.ff], axis=1)  # (k, 4)
            after = used[None, :] - res[j][None, :] + res
            ok = (after <= limit[None, :]).all(axis=1)
            gain = np.where(ok, f.cycles[j] - f.cycles, 0)
            k = int(np.argmax(gain))
            if gain[k] > best_gain:
                best_gain, best_move = int(gain[k]), (i, k)
        if best_move is None:
            return picked
        i, k = best_move
        f = fronts[i]
        used = (
            used
            - np.array([f.dsp[picked[i]], f.bram18k[picked[i]], f.lut[picked[i]], f.ff[picked[i]]])
            + np.array([f.dsp[k], f.bram18k[k], f.lut[k], f.ff[k]])
        )
        picked[i] = k


def fixed_resources(net: Network, board: Board, prec: Precision) -> Resources:
    """Resources of the layers the DSE does not tile (pooling, GAP) plus the top function."""
    from fnas_hls.model.sequential import TOP_RESOURCES

    total = TOP_RESOURCES
    for li in net.info:
        if not is_tiled(li):
            total = total + layer_cost(li, li.name, None, board, prec).resources
    return total


def room_for_tiled(
    net: Network, board: Board, prec: Precision, fixed: Resources | None = None
) -> tuple[Resources, Resources]:
    """What the untiled layers and the top take (``fixed``; by default ``fixed_resources``), and
    what they leave of the board's budget for the tiled layers."""
    budget = board.budget()
    fixed = fixed_resources(net, board, prec) if fixed is None else fixed
    room = Resources(
        dsp=max(budget.dsp - fixed.dsp, 0),
        bram18k=budget.bram18k - fixed.bram18k,
        lut=budget.lut - fixed.lut,
        ff=budget.ff - fixed.ff,
    )
    return fixed, room


def choose_tilings(
    net: Network,
    board: Board,
    prec: Precision,
    pins: Mapping[str, TilingPin] | None = None,
    exact: bool = True,
) -> DseResult:
    """The tiling of every conv/fc layer that minimises total latency within the board's budget.

    ``exact=False`` skips the exact (DSP, BRAM) DP where BRAM binds (the benchmark measures what
    that DP costs and buys).
    """
    pins = pins or {}
    budget = board.budget()
    fixed, room = room_for_tiled(net, board, prec)
    pairs = _fronts(net, board, prec, pins, room.dsp)
    if not pairs:
        return DseResult({}, 0, Resources(), fixed.fits_in(budget), "dp")
    infos = [li for li, _ in pairs]
    fronts = [f for _, f in pairs]

    def result(picked: list[int], method: str) -> DseResult:
        cycles, res = _totals(fronts, picked)
        til = {li.name: f.tiling(j) for li, f, j in zip(infos, fronts, picked, strict=True)}
        return DseResult(til, cycles, res, (res + fixed).fits_in(budget), method)

    def fits(picked: list[int]) -> bool:
        return _totals(fronts, picked)[1].fits_in(room)

    picked = _dp(fronts, room.dsp, np.zeros((1, 3)))[0]
    if picked is None:  # even the smallest tilings exceed the DSPs: analyze the smallest design
        return result([int(np.lexsort((f.cycles, f.dsp))[0]) for f in fronts], "min-resources")
    if fits(picked):
        return result(picked, "dp")

    # BRAM (or LUT/FF) binds. The exact DP over (DSP, BRAM) pairs, on the tilings that could still
    # beat FNAS-Design's design (when that fits), where the table is small enough.
    base = fnas_design_tilings(net, board, prec, pins)
    if exact:
        kept = _prune(fronts, room, base.cycles if base.fits else np.inf)
        if all(len(k) for k in kept):
            sub_fronts = [f.subset(k) for f, k in zip(fronts, kept, strict=True)]
            cells = (room.dsp + 1) * (max(room.bram18k, 0) + 1) * sum(len(f) for f in sub_fronts)
            if cells <= EXACT_DP_CELLS:
                p = _exact(sub_fronts, room)
                if p is not None:
                    p = [int(k[j]) for k, j in zip(kept, p, strict=True)]
                    if fits(p):
                        return result(p, "dp-exact")

    # Otherwise (or where LUT/FF bind) price BRAM, LUT and FF (per share of what is left) with a
    # Lagrange weight: a batch of weights spanning many decades finds where the design starts to
    # fit, a second batch refines, and a local search improves the best fitting design; keep
    # FNAS-Design's if that is better.
    norm = np.array([1 / max(room.bram18k, 1), 1 / max(room.lut, 1), 1 / max(room.ff, 1)])
    scale = float(_totals(fronts, picked)[0])
    grid = scale * np.logspace(-4, 4, LAGRANGE_STEPS)
    feasible: list[list[int]] = []
    for _ in range(2):
        picks = _dp(fronts, room.dsp, grid[:, None] * norm[None, :])
        ok = [p is not None and fits(p) for p in picks]
        feasible += [p for p, good in zip(picks, ok, strict=True) if good]
        if not any(ok):
            grid = grid[-1] * np.logspace(1, 12, LAGRANGE_STEPS)
            continue
        first = ok.index(True)
        lo = grid[first - 1] if first > 0 else grid[0] / 1e4
        grid = np.geomspace(lo, grid[first], LAGRANGE_STEPS)
    candidates: list[DseResult] = []
    if feasible:
        best_fit = _improve(fronts, min(feasible, key=lambda p: _totals(fronts, p)[0]), room)
        candidates.append(result(best_fit, "dp+lagrange"))
    if base.fits:
        candidates.append(DseResult(base.tilings, base.cycles, base.resources, True, "fnas-design"))
    if candidates:
        return min(candidates, key=lambda r: r.cycles)
    return result([int(np.lexsort((f.cycles, f.bram18k))[0]) for f in fronts], "min-resources")


def fnas_design_tilings(
    net: Network,
    board: Board,
    prec: Precision,
    pins: Mapping[str, TilingPin] | None = None,
    exhaustive: bool = False,
) -> DseResult:
    """FNAS-Design's DSE: DSPs (and BRAM) split in proportion to MACs, each layer enumerated alone.

    Each layer takes the fastest tiling within its share; a layer whose share admits none takes
    its smallest tiling, and the result says whether the whole still fits. ``exhaustive``
    enumerates every integer tiling with no cache, as FNAS-Design did (the benchmark's faithful
    baseline); by default only the useful tile sizes are enumerated, which reaches the same
    latency (a larger tile with the same tile count never costs less) far faster.
    """
    pins = pins or {}
    budget = board.budget()
    fixed = fixed_resources(net, board, prec)
    mac = board.mac_cost(prec)
    tiled = [li for li in net.info if is_tiled(li)]
    total_macs = sum(li.macs for li in tiled) or 1
    dsp_room = max(budget.dsp - fixed.dsp, 0)
    bram_room = budget.bram18k - fixed.bram18k
    tilings: dict[str, Tiling] = {}
    cycles = 0
    res = Resources()
    for li in tiled:
        share = li.macs / total_macs
        layer = _fnas_design_layer_uncached if exhaustive else _fnas_design_layer
        t, layer_cycles, layer_res = layer(
            ConvGeometry.element_of(li),
            prec,
            mac,
            int(dsp_room * share),
            int(bram_room * share),
            pins.get(li.name),
            exhaustive,
        )
        tilings[li.name] = t
        cycles += layer_cycles
        res = res + layer_res
    return DseResult(tilings, cycles, res, (res + fixed).fits_in(budget), "fnas-design")


def _fnas_design_layer_uncached(
    g: ConvGeometry,
    prec: Precision,
    mac: MacCost,
    dsp_share: int,
    bram_share: int,
    pin: TilingPin | None,
    exhaustive: bool = False,
) -> tuple[Tiling, int, Resources]:
    """One layer of FNAS-Design: the fastest tiling within its DSP and BRAM share, by enumeration."""
    vals = [_pin_values(g, f, pin, every=exhaustive) for f in FACTORS]
    Tm, Tn, Tr, Tc = (a.ravel() for a in np.meshgrid(*vals, indexing="ij"))
    k = conv_terms(g, Tm, Tn, Tr, Tc, prec, mac)
    shape = Tm.shape
    cyc, dsp, bram, lut, ff = (
        np.broadcast_to(np.asarray(v), shape) for v in (k.cycles, k.dsp, k.bram18k, k.lut, k.ff)
    )
    ok = (dsp <= dsp_share) & (bram <= bram_share)
    if ok.any():
        i = int(np.flatnonzero(ok)[np.argmin(cyc[ok])])
    else:  # no tiling fits the share: the smallest one
        i = int(np.lexsort((cyc, bram, dsp))[0])
    res = Resources(dsp=int(dsp[i]), bram18k=int(bram[i]), lut=int(lut[i]), ff=int(ff[i]))
    return Tiling(int(Tm[i]), int(Tn[i]), int(Tr[i]), int(Tc[i])), int(cyc[i]), res


_fnas_design_layer = lru_cache(maxsize=4096)(_fnas_design_layer_uncached)
