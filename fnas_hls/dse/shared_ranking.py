"""The shared style's first ranking of engines (Tm, Tn) (``dse.shared``'s step 1): every engine within
the board's DSPs, LUTs, FFs and block RAM (its logic and the memories the tiles do not size), best first
by Zhang et al.'s whole-map estimate; and the compute bound no engine of the board beats."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from fnas_hls.boards import Board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.shared_depthwise import DW_COLS, depthwise_use, dw_unit_resources, on_dw_unit
from fnas_hls.model.shared_engine import engine_dependence
from fnas_hls.model.shared_fabric import (
    LOAD_PORTS,
    W_PORTS,
    accumulator_banks,
    engine_logic_luts,
    read_beats,
    row_chunks,
)
from fnas_hls.model.shared_views import tile_pixels
from fnas_hls.precision import Precision
from fnas_hls.resources import Resources


def untiled_memory(Tm, Tn, geoms: list[ConvGeometry], prec: Precision, w_words: bool = False):
    """(BRAM18K, LUT) of the engine's memories the tiles do not size (``model.shared_engine.Engine.buffers``):
    the weight buffers (ping-pong, for the largest kernel: a bank per MAC, or with ``w_words`` one
    word of all the MACs' weights a tap), the bias ROM and int8's shift ROM; element-wise on arrays
    of (Tm, Tn)."""
    k_words = max(g.Kh * g.Kw for g in geoms)
    bias_rows = sum(g.groups * cdiv(g.M, np.minimum(Tm, Tn) if g.dw else Tm) for g in geoms)
    weights = (
        (2, k_words, Tm * Tn * prec.bits, False) if w_words else (2 * Tm * Tn, k_words, prec.bits, False)
    )
    parts = [
        weights,
        (Tm, bias_rows, rm.BIAS_BITS, True),
        *(((1, bias_rows * Tm, rm.SHIFT_BITS, True),) if prec.per_channel else ()),  # one ROM (int8)
    ]
    bram = sum(banks * rm.bram18k(depth, width) for banks, depth, width, _ in parts)
    lut = sum(banks * rm.memory_luts(depth, width, rom) for banks, depth, width, rom in parts)
    return bram, lut


@lru_cache(maxsize=64)
def lutram_bound(width: int) -> int:
    """The most LUTs one bank of ``width``-bit words that stays in LUTs can take."""
    depth = np.arange(1, rm.LUTRAM_MAX_BITS // width + 1)
    return int(np.max(rm.lutram_luts(depth, width), initial=0))


def compute_bound(
    geoms: list[ConvGeometry], macs: int, folded: Sequence[ConvGeometry | None] | None = None
) -> int:
    """Cycles of computation no engine of at most ``macs`` MACs beats: each step's COMPUTE runs at
    least Tr*Tc*Kh*Kw iterations, and a layer's steps cover its R*C outputs G ceil(M/Tm) ceil(N/Tn)
    times; for each Tm the largest Tn is the best (ceil(N/Tn) only falls with Tn). A depthwise layer
    runs min(Tm, Tn) channels on the diagonal, at most ``DW_COLS`` columns an iteration on
    DW_COMPUTE where its column stride allows. ``folded``: each layer's view with its kernel rows
    folded onto its channels where it may take one (``model.shared_views.folds_rows``; None where
    not): such a layer counts the lesser of its two views. (A stack of channels as kernel rows never
    computes less: ceil(N/Q/Tn)*Q is at least ceil(N/Tn).)"""
    if not geoms:
        return 0
    folded = list(folded) if folded is not None else [None] * len(geoms)
    tm = np.arange(1, min(macs, max(g.M for g in geoms)) + 1)
    tn = np.minimum(macs // tm, max(g.N for g in [*geoms, *(f for f in folded if f is not None)]))
    total = np.zeros(len(tm), dtype=np.float64)

    def cycles(g: ConvGeometry) -> np.ndarray:
        lanes = np.minimum(tm, tn) if g.dw else tm
        cols = cdiv(g.C, DW_COLS) if on_dw_unit(g, DW_COLS) else g.C
        return g.groups * cdiv(g.M, lanes) * cdiv(g.N, tn) * g.R * cols * g.Kh * g.Kw

    for g, f in zip(geoms, folded, strict=True):
        total += cycles(g) if f is None else np.minimum(cycles(g), cycles(f))
    return int(total.min())


def rank_engines(
    geoms: list[ConvGeometry],
    prec: Precision,
    board: Board,
    room: Resources,
    pinned: tuple,
    beats: list[bool] | None = None,
    folded: Sequence[ConvGeometry | None] | None = None,
    load_ports: int = LOAD_PORTS,
) -> list[tuple[int, int]]:
    """Every engine within the board, best first by Zhang's whole-map estimate, each layer in the
    cheaper of its view as it is and its ``folded`` one (None where it has none; the fold where its
    N*Kh channels fit a tile); Tn up to the most input channels of either; ``load_ports``: the
    engine's load ports."""
    macs_max = board.mac_cost(prec).macs(room.dsp)
    m_max = max(g.M for g in geoms)
    n_max = max(g.N for g in [*geoms, *(f for f in folded or () if f is not None)])
    tm_vals = np.arange(1, min(macs_max, m_max) + 1) if pinned[0] is None else np.array([pinned[0]])
    tn_vals = np.arange(1, min(macs_max, n_max) + 1) if pinned[1] is None else np.array([pinned[1]])
    Tm, Tn = (a.ravel() for a in np.meshgrid(tm_vals, tn_vals, indexing="ij"))
    per_mac_ff = rm.FF_PER_MAC[prec.name]
    beat = board.axi_words_per_cycle(prec.bits)
    reads = read_beats(board)
    beats = beats or [False] * len(geoms)
    acc_banks = accumulator_banks(beat, any(beats))
    use = depthwise_use(geoms, beat, acc_banks)
    dep = engine_dependence(prec, acc_banks)
    mac = board.mac_cost(prec)
    dw_unit = dw_unit_resources(np.minimum(Tm, Tn), use.cols, prec, mac, beat, acc_banks)
    logic = engine_logic_luts(
        Tm, Tn, prec, beat=beat, words_out=not all(beats), beats_out=any(beats), dw=use.dw, dw_diag=use.diag,
        load_ports=load_ports,
    ) + dw_unit.lut  # fmt: skip
    ok = np.zeros(len(Tm), dtype=bool)
    for w_words in (False, True):  # the weights a bank per MAC, or a word a tap
        bram, lut = untiled_memory(Tm, Tn, geoms, prec, w_words)
        ok |= (logic + lut <= room.lut) & (bram <= room.bram18k)
    ok &= (Tm * Tn <= macs_max) & (mac.dsps(Tm, Tn) + dw_unit.dsp <= room.dsp)
    ok &= Tm * Tn * per_mac_ff + dw_unit.ff <= room.ff
    if pinned != (None, None) or not ok.any():
        ok = np.ones_like(Tm, dtype=bool)  # a pinned engine is analyzed even where it does not fit
    Tm, Tn = Tm[ok], Tn[ok]
    total = np.zeros(len(Tm), dtype=np.float64)

    def estimate(g: ConvGeometry, b: bool, u: bool) -> np.ndarray:
        taps = g.Kh * g.Kw
        hin, win = (g.R - 1) * g.Sh + g.Kh, (g.C - 1) * g.Sw + g.Kw
        compute = taps * (g.R * cdiv(g.C, use.cols) if u else tile_pixels(g, g.R, g.C, dep))  # (pads skipped)
        lanes = np.minimum(Tm, Tn) if g.dw else Tm  # output channels a tile (the diagonal if depthwise)
        w_beats = cdiv(lanes if g.dw else Tm * Tn, beat)  # a tap's (the diagonal's alone if depthwise)
        load_w = taps * cdiv(w_beats, W_PORTS) + rules.LOAD_DEPTH
        chans = np.minimum(lanes if g.dw else Tn, g.M if g.dw else g.N)
        in_beats = cdiv(chans, load_ports) * hin * (row_chunks(win, beat) + 1)
        load_in = in_beats + rules.LOAD_DEPTH
        if reads:  # both loads through the board's HP ports (model.shared_fabric.read_beats)
            both = cdiv(in_beats * load_ports + taps * w_beats, reads)
            load_in = np.maximum(load_in, both + rules.LOAD_DEPTH)
        per_tile = cdiv(g.N, Tn) * np.maximum(compute, np.maximum(load_w, load_in))
        store = np.minimum(lanes, g.M) * g.R * (row_chunks(g.C, beat) if b else g.C)
        return g.groups * cdiv(g.M, lanes) * (per_tile + store)

    folded = list(folded) if folded is not None else [None] * len(geoms)
    for g, b, u, f in zip(geoms, beats, use.unit, folded, strict=True):
        est = estimate(g, b, u)
        if f is not None:  # a fold where its N*Kh channels fit one input-channel tile
            est = np.where(f.N <= Tn, np.minimum(est, estimate(f, b, False)), est)
        total += est
    order = np.lexsort((Tn, Tm, total))
    return [(int(Tm[i]), int(Tn[i])) for i in order]
