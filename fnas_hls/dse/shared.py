"""The ``shared`` style's DSE: one (Tm, Tn) for the whole network, a (Tr, Tc) per layer.

1. Every engine (Tm, Tn) within the DSPs (and LUT, FF) is ranked the way Zhang et al. (FPGA'15)
   chose theirs: each layer's cycles with whole-map tiles (Tr = R, Tc = C), computation beside the
   input and weight loads, summed over the layers. The best ``ENGINE_CANDIDATES`` go on.
2. For each of those, every layer's (Tr, Tc) is chosen over its useful values
   (``dse.sequential.useful_factors``). The engine's buffers are sized for the largest tile any
   layer takes, so the choice is made per pair of buffer sizes (block RAMs per bank of the input
   tile and of the accumulators): within a pair, each layer takes its fastest tiling, and the
   least total that fits the board's BRAM wins. A table per layer, minimum-accumulated over the
   two sizes, gives every pair at once.

Layers with a kernel larger than 1x1 keep Tr*Tc at least the accumulate's dependence latency
where their map allows it, so that COMPUTE keeps II 1 (the engine declares one distance for all).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fnas_hls.boards import Board
from fnas_hls.dse.sequential import room_for_tiled, useful_factors
from fnas_hls.errors import FnasError
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.sequential import ConvGeometry, accumulate_dependence, cdiv, is_tiled
from fnas_hls.model.shared import Engine, engine_geometry, engine_terms, make_engine, untiled_resources
from fnas_hls.model.tiling import TilingPin
from fnas_hls.network.ir import Network
from fnas_hls.precision import Precision
from fnas_hls.resources import Resources

#: Engines (Tm, Tn) of the first ranking whose per-layer tilings are then searched.
ENGINE_CANDIDATES = 8


@dataclass(frozen=True)
class SharedDse:
    """The engine and every tiled layer's (Tr, Tc)."""

    Tm: int
    Tn: int
    tiles: dict[str, tuple[int, int]]
    cycles: int  # the tiled layers' cycles, summed
    fits: bool
    method: str


def _engine_pin(pins: Mapping[str, TilingPin], geoms: list[tuple[str, ConvGeometry]]) -> tuple:
    """(Tm, Tn) pinned for the engine (None where free); per-layer pins must agree."""
    out = []
    for f, dim in (("Tm", max(g.M for _, g in geoms)), ("Tn", max(g.N for _, g in geoms))):
        named = sorted(n for n, pin in pins.items() if pin.factor(f) is not None)
        values = {pins[n].factor(f) for n in named}
        if named and (len(values) > 1 or len(named) < len(geoms)):
            raise FnasError(
                f"--tiling {f}: the shared style has one (Tm, Tn) for every layer; pin it for all "
                f"(all:{f}=..), not per layer ({', '.join(named)})"
            )
        v = values.pop() if values else None
        out.append(dim if v == "full" else v)
    return tuple(out)


def _untiled_bram(Tm, Tn, geoms: list[ConvGeometry], prec: Precision):
    """Block RAM of the engine's parts the tiles do not size (``model.shared.Engine.resources``):
    the weight buffers (a bank per MAC, ping-pong, for the largest kernel), the bias ROM and int8's
    shift ROM."""
    k_bank = rm.bram18k(max(g.Kh * g.Kw for g in geoms), prec.bits)
    bias_rows = sum(g.groups * cdiv(g.M, np.minimum(Tm, Tn) if g.dw else Tm) for g in geoms)
    shifts = rm.bram18k(bias_rows * Tm, rm.SHIFT_BITS) if prec.per_channel else 0  # one ROM (int8)
    return 2 * Tm * Tn * k_bank + Tm * rm.bram18k(bias_rows, rm.BIAS_BITS) + shifts


def compute_bound(geoms: list[ConvGeometry], macs: int) -> int:
    """Cycles of computation no engine of at most ``macs`` MACs beats: each step's COMPUTE runs at
    least Tr*Tc*Kh*Kw iterations, and a layer's steps cover its R*C outputs G ceil(M/Tm) ceil(N/Tn)
    times; for each Tm the largest Tn is the best (ceil(N/Tn) only falls with Tn)."""
    if not geoms:
        return 0
    tm = np.arange(1, min(macs, max(g.M for g in geoms)) + 1)
    tn = np.minimum(macs // tm, max(g.N for g in geoms))
    total = np.zeros(len(tm), dtype=np.float64)
    for g in geoms:  # a depthwise layer runs min(Tm, Tn) channels on the diagonal
        lanes = np.minimum(tm, tn) if g.dw else tm
        total += g.groups * cdiv(g.M, lanes) * cdiv(g.N, tn) * g.R * g.C * g.Kh * g.Kw
    return int(total.min())


def _rank_engines(
    geoms: list[ConvGeometry], prec: Precision, board: Board, room: Resources, pinned: tuple
) -> list[tuple[int, int]]:
    macs_max = board.mac_cost(prec).macs(room.dsp)
    m_max = max(g.M for g in geoms)
    n_max = max(g.N for g in geoms)
    tm_vals = np.arange(1, min(macs_max, m_max) + 1) if pinned[0] is None else np.array([pinned[0]])
    tn_vals = np.arange(1, min(macs_max, n_max) + 1) if pinned[1] is None else np.array([pinned[1]])
    Tm, Tn = (a.ravel() for a in np.meshgrid(tm_vals, tn_vals, indexing="ij"))
    per_mac_lut, per_mac_ff = rm.LUT_PER_MAC[prec.name], rm.FF_PER_MAC[prec.name]
    ok = (Tm * Tn <= macs_max) & (Tm * Tn * per_mac_lut <= room.lut) & (Tm * Tn * per_mac_ff <= room.ff)
    ok &= _untiled_bram(Tm, Tn, geoms, prec) <= room.bram18k
    if pinned != (None, None) or not ok.any():
        ok = np.ones_like(Tm, dtype=bool)  # a pinned engine is analyzed even where it does not fit
    Tm, Tn = Tm[ok], Tn[ok]
    beat = board.axi_words_per_cycle(prec.bits)
    total = np.zeros(len(Tm), dtype=np.float64)
    for g in geoms:
        taps = g.Kh * g.Kw
        hin, win = (g.R - 1) * g.Sh + g.Kh, (g.C - 1) * g.Sw + g.Kw
        compute = taps * g.R * g.C
        load_w = taps * cdiv(Tm * Tn, beat) + rules.LOAD_DEPTH
        lanes = np.minimum(Tm, Tn) if g.dw else Tm  # output channels a tile (the diagonal if depthwise)
        load_in = np.minimum(lanes if g.dw else Tn, g.M if g.dw else g.N) * hin * win + rules.LOAD_DEPTH
        per_tile = cdiv(g.N, Tn) * np.maximum(compute, np.maximum(load_w, load_in))
        store = np.minimum(lanes, g.M) * g.R * g.C
        total += g.groups * cdiv(g.M, lanes) * (per_tile + store)
    order = np.lexsort((Tn, Tm, total))[:ENGINE_CANDIDATES]
    return [(int(Tm[i]), int(Tn[i])) for i in order]


@lru_cache(maxsize=16384)
def _layer_table(
    g: ConvGeometry,
    Tm: int,
    Tn: int,
    required: int,
    distance: int,
    beat: int,
    prec: Precision,
    pin: TilingPin | None,
) -> tuple[np.ndarray, ...]:
    """A layer's useful (Tr, Tc) on engine (Tm, Tn) (Tr*Tc >= ``required`` for kernels larger than
    1x1), their cycles at the accumulators' declared ``distance``, and their block RAMs per bank of
    the input tile and of the accumulators (cached: search spaces repeat layer shapes)."""
    tr, tc = _grid(g, pin, required)
    probe = Engine(Tm, Tn, 1, 1, 1, 1, distance, beat)
    k = engine_terms(g, probe, tr, tc, prec)
    cycles = np.broadcast_to(np.asarray(k.cycles, dtype=np.int64), tr.shape)
    b_in = np.broadcast_to(rm.bram18k(np.asarray(k.in_words), prec.bits), tr.shape)
    b_acc = np.broadcast_to(rm.bram18k(np.asarray(k.acc_words), prec.acc_bits), tr.shape)
    return tr, tc, cycles, b_in, b_acc


def _grid(g: ConvGeometry, pin: TilingPin | None, required: int) -> tuple[np.ndarray, np.ndarray]:
    def values(factor: str, dim: int) -> np.ndarray:
        v = pin.factor(factor) if pin is not None else None
        if v is None:
            return useful_factors(dim)
        return np.array([dim if v == "full" else min(int(v), dim)], dtype=np.int64)

    tr, tc = (a.ravel() for a in np.meshgrid(values("Tr", g.R), values("Tc", g.C), indexing="ij"))
    if g.Kh * g.Kw > 1:
        keep = tr * tc >= required
        if keep.any():
            tr, tc = tr[keep], tc[keep]
    return tr, tc


def choose_engine(
    net: Network, board: Board, prec: Precision, pins: Mapping[str, TilingPin] | None = None
) -> SharedDse:
    """The engine and per-layer tiles of least total latency that fit ``board``."""
    pins = pins or {}
    tiled = [(li.name, engine_geometry(li)) for li in net.info if is_tiled(li)]
    if not tiled:
        return SharedDse(1, 1, {}, 0, True, "no tiled layer")
    budget = board.budget()
    fixed, room = room_for_tiled(net, board, prec, untiled_resources(list(net.info), prec, board))
    pinned = _engine_pin(pins, tiled)
    geoms = [g for _, g in tiled]
    dep = accumulate_dependence(prec)
    windowed = [g.R * g.C for g in geoms if g.Kh * g.Kw > 1]
    required = min([dep, *windowed])
    distance = required if windowed else 0  # what the engine will declare (model.shared.Engine)
    mac = board.mac_cost(prec)
    beat = board.axi_words_per_cycle(prec.bits)
    best: tuple | None = None  # ((not fits, cycles, bram), Tm, Tn, tiles, cycles, fits)
    for Tm, Tn in _rank_engines(geoms, prec, board, room, pinned):
        tables = [
            (name, g, *_layer_table(g, Tm, Tn, required, distance, beat, prec, pins.get(name)))
            for name, g in tiled
        ]
        lv_in = np.unique(np.concatenate([t[5] for t in tables]))
        lv_acc = np.unique(np.concatenate([t[6] for t in tables]))
        total = np.zeros((len(lv_in), len(lv_acc)))
        for _, _, _, _, cycles, b_in, b_acc in tables:
            cell = np.full((len(lv_in), len(lv_acc)), np.inf)
            np.minimum.at(cell, (np.searchsorted(lv_in, b_in), np.searchsorted(lv_acc, b_acc)), cycles)
            total += np.minimum.accumulate(np.minimum.accumulate(cell, axis=0), axis=1)
        bram = 2 * Tn * lv_in[:, None] + 2 * Tm * lv_acc[None, :] + _untiled_bram(Tm, Tn, geoms, prec)
        valid = np.isfinite(total)  # every layer has a tiling within the two buffer sizes
        fits_cell = valid & (bram <= room.bram18k) & (mac.dsps(Tm, Tn) <= room.dsp)
        if fits_cell.any():
            flat = np.lexsort((bram.ravel(), np.where(fits_cell, total, np.inf).ravel()))[0]
        else:  # nothing fits: the least block RAM
            flat = np.lexsort((total.ravel(), np.where(valid, bram, np.inf).ravel()))[0]
        i, j = np.unravel_index(flat, total.shape)
        tiles, cyc = {}, 0
        for name, _, tr, tc, cycles, b_in, b_acc in tables:
            ok = (b_in <= lv_in[i]) & (b_acc <= lv_acc[j])
            pick = np.flatnonzero(ok)[np.lexsort((tr[ok] * tc[ok], cycles[ok]))[0]]
            tiles[name] = (int(tr[pick]), int(tc[pick]))
            cyc += int(cycles[pick])  # at the probe's II, which the engine's can only better
        engine = make_engine(Tm, Tn, [(g, *tiles[n]) for n, g in tiled], board, prec)
        res = engine.resources(prec, mac)
        fits = (res + fixed).fits_in(budget)
        key = (not fits, cyc, res.bram18k)
        if best is None or key < best[0]:
            best = (key, Tm, Tn, tiles, cyc, fits)
    assert best is not None
    _, Tm, Tn, tiles, cyc, fits = best
    how = "pinned engine" if None not in pinned else f"best of {ENGINE_CANDIDATES} ranked engines"
    return SharedDse(Tm, Tn, tiles, cyc, fits, f"{how}, (Tr, Tc) per buffer size")
