"""The ``shared`` style's DSE, step 2 (``dse.shared``): one engine (Tm, Tn) of a network evaluated on a
board. Every tiled layer's useful (Tr, Tc) are tabled with their cycles and the block RAMs per bank of
the input tile and of the accumulators (``layer_table``, over ``tiling_grid``); the pair of buffer sizes
of least total latency that fits the board is the engine's design (``EngineSearch.evaluate``, a
``Candidate``), and ``SharedDse`` is the search's answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from fnas_hls.boards import Board
from fnas_hls.dse.sequential import room_for_tiled, useful_factors
from fnas_hls.dse.shared_ranking import lutram_bound, untiled_memory
from fnas_hls.errors import FnasError
from fnas_hls.model import resource_model as rm
from fnas_hls.model.geometry import ConvGeometry, cdiv, is_tiled
from fnas_hls.model.shared import (
    aligned_layers,
    flat_layers,
    fused_adds,
    padded_maps,
    stores_beats,
    untiled_resources,
)
from fnas_hls.model.shared_depthwise import depthwise_use, dw_unit_resources, on_dw_unit
from fnas_hls.model.shared_engine import Engine, engine_dependence, engine_terms, make_engine
from fnas_hls.model.shared_fabric import (
    LOAD_PORTS,
    accumulator_banks,
    engine_logic_luts,
    read_beats,
    whole_beats,
)
from fnas_hls.model.shared_views import (
    engine_geometry,
    folds_rows,
    stack_options,
    stacks_a_vector,
    tile_pixels,
)
from fnas_hls.model.tiling import TilingPin
from fnas_hls.network.ir import LayerInfo, Network
from fnas_hls.precision import Precision


@dataclass(frozen=True)
class SharedDse:
    """The engine and every tiled layer's (Tr, Tc)."""

    Tm: int
    Tn: int
    tiles: dict[str, tuple[int, int]]
    cycles: int  # the tiled layers' cycles, summed
    fits: bool
    method: str
    padded: frozenset[str] = frozenset()  # the maps stored in whole beats (model.shared.padded_maps)
    w_words: bool = False  # the weight tiles a word a tap in block RAM (model.shared_engine.Engine.w_words)
    # the pointwise layers run as one row, and their maps' row words (model.shared.flat_layers)
    flat: dict[str, int] = field(default_factory=dict)
    # the layers run as one row that stack their input channels as kernel rows, and their stacks
    # (model.shared_views.engine_geometry)
    stacks: dict[str, int] = field(default_factory=dict)
    # the layers whose kernel rows fold onto their input channels (model.shared_views.engine_geometry)
    folds: frozenset[str] = frozenset()
    # the layers whose window rows begin at beats (model.shared.aligned_layers)
    aligned: frozenset[str] = frozenset()
    # the least words a channel of the input tiles and of the accumulators (make_engine)
    in_words_min: int = 0
    acc_words_min: int = 0
    load_ports: int = LOAD_PORTS  # the engine's load ports (model.shared_fabric.LOAD_PORT_OPTIONS)

    def geometry(self, li: LayerInfo) -> ConvGeometry:
        """The geometry the engine runs tiled layer ``li`` in (``engine_geometry``)."""
        return engine_geometry(
            li, self.flat.get(li.name, 0), self.stacks.get(li.name, 1), li.name in self.folds
        )


def engine_pin(pins: Mapping[str, TilingPin], geoms: list[tuple[str, ConvGeometry]]) -> tuple:
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


@lru_cache(maxsize=16384)
def layer_table(
    g: ConvGeometry,
    Tm: int,
    Tn: int,
    required: int,
    distance: int,
    beat: int,
    prec: Precision,
    pin: TilingPin | None,
    skip: bool = False,
    beats: bool = False,
    beats_out: bool = False,
    cols: int = 1,
    aligned: bool = False,
    load_ports: int = LOAD_PORTS,
    read_beats: int = 0,
    pad_to: int = 0,
    dw_required: int = 0,
    dw_distance: int = 0,
) -> tuple[np.ndarray, ...]:
    """A layer's useful (Tr, Tc) on engine (Tm, Tn) (``tile_pixels`` >= ``required`` for kernels
    larger than 1x1 on COMPUTE, Tr*ceil(Tc/cols) >= ``dw_required`` on DW_COMPUTE), their cycles at the
    distances the engine declares (COMPUTE's ``distance``, DW_COMPUTE's ``dw_distance``), and their
    block RAMs per bank of
    the input tile (per channel: its ``beat`` sub-banks) and of the accumulators (per output
    channel: its sub-banks); ``beats``: the layer stores whole beats, ``beats_out``: some layer of
    the engine does; ``cols``: the engine's DW_COMPUTE columns; ``aligned``: its window rows begin at
    beats (``model.shared.aligned_layers``); ``load_ports``, ``read_beats``: the engine's; ``pad_to``: its
    one column computed in a tile of that many (``model.shared_views.pads_columns``) (cached: search
    spaces repeat layer shapes)."""
    unit = on_dw_unit(g, cols)
    dep = engine_dependence(prec, accumulator_banks(beat, beats_out))
    if pad_to:
        tr, tc = np.ones(1, dtype=np.int64), np.full(1, max(pad_to, g.C), dtype=np.int64)
    else:
        tr, tc = tiling_grid(
            g, pin, dw_required if unit else required, beat if beats else 1, cols if unit else 1, dep
        )
    probe = Engine(
        Tm,
        Tn,
        1,
        1,
        1,
        1,
        distance,
        beat,
        skip=skip,
        beats_out=beats_out,
        dw_cols=cols,
        dw_dist=dw_distance,
        load_ports=load_ports,
        read_beats=read_beats,
    )
    k = engine_terms(g, probe, tr, tc, prec, beats=beats, aligned=aligned)
    cycles = np.broadcast_to(np.asarray(k.cycles, dtype=np.int64), tr.shape)
    b_in = np.broadcast_to(beat * rm.bram18k(np.asarray(k.in_words) // beat, prec.bits), tr.shape)
    acc_banks = probe.acc_banks
    b_acc = rm.bram18k(np.asarray(k.acc_words) // acc_banks, prec.acc_bits)
    b_acc = np.broadcast_to(acc_banks * b_acc, tr.shape)
    return tr, tc, cycles, b_in, b_acc


def tiling_grid(
    g: ConvGeometry,
    pin: TilingPin | None,
    required: int,
    tc_step: int = 1,
    cols: int = 1,
    dependence: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A layer's (Tr, Tc) to try; ``tc_step``: Tc a multiple of it or the whole row (a store of
    whole beats: each tile's columns begin at a beat), each useful Tc rounded up to one; ``cols``:
    the columns its compute takes an iteration (an accumulator revisited every Tr*ceil(Tc/cols)
    iterations, or every ``tile_pixels``, at least ``required``); a one-row view of padded rows also
    tries tiles of whole rows (``model.shared_views.compute_view``)."""

    def values(factor: str, dim: int) -> np.ndarray:
        v = pin.factor(factor) if pin is not None else None
        if v is None:
            t = useful_factors(dim)
            if factor == "Tc":
                t = np.unique(np.minimum(dim, whole_beats(t, tc_step)))
                if g.row_words:  # tiles of whole rows too: COMPUTE skips their pad words (compute_view)
                    t = np.union1d(t, useful_factors(dim // g.row_words) * g.row_words)
            return t
        return np.array([dim if v == "full" else min(int(v), dim)], dtype=np.int64)

    tr, tc = (a.ravel() for a in np.meshgrid(values("Tr", g.R), values("Tc", g.C), indexing="ij"))
    if g.Kh * g.Kw > 1:
        keep = (tr * cdiv(tc, cols) if cols > 1 else tile_pixels(g, tr, tc, dependence)) >= required
        if keep.any():
            tr, tc = tr[keep], tc[keep]
    return tr, tc


@dataclass(frozen=True)
class Candidate:
    """One engine (Tm, Tn) with every layer's best (Tr, Tc) for it."""

    key: tuple  # (not fits, cycles, block RAM): the least wins
    Tm: int
    Tn: int
    tiles: dict[str, tuple[int, int]]
    cycles: int
    fits: bool
    w_words: bool = False  # its weight tiles a word a tap (model.shared_engine.Engine.w_words)
    stacks: dict[str, int] = field(default_factory=dict)  # the stacks its layers take (above 1)
    folds: frozenset[str] = frozenset()  # the layers that fold their kernel rows onto their channels
    buffer_min: tuple[int, int] = (0, 0)  # the least words a channel of its input tiles, accumulators


class EngineSearch:
    """Evaluates engines (Tm, Tn) of one network on one board: each layer's tilings per buffer size
    (``layer_table``), the pair of buffer sizes of least total latency that fits."""

    def __init__(
        self,
        net: Network,
        board: Board,
        prec: Precision,
        pins: Mapping[str, TilingPin],
        padded: frozenset[str] | None = None,
        load_ports: int = LOAD_PORTS,
    ):
        """``padded``: the maps stored in whole beats (``model.shared.padded_maps`` where not given);
        ``load_ports``: the engine's load ports (``LOAD_PORT_OPTIONS``)."""
        self.board, self.prec, self.pins, self.load_ports = board, prec, pins, load_ports
        self.read_beats = read_beats(board)  # LOAD_IN's and LOAD_W's beats a cycle together, at most
        self.budget = board.budget()
        self.fixed, self.room = room_for_tiled(
            net, board, prec, untiled_resources(list(net.info), prec, board)
        )
        self.beat = board.axi_words_per_cycle(prec.bits)
        infos = list(net.info)
        if padded is None:
            tc_pins = {n: p.factor("Tc") for n, p in pins.items() if p.factor("Tc") is not None}
            padded = padded_maps(infos, self.beat, tc_pins)
        self.padded = padded
        rows_pinned = {n for n, p in pins.items() if p.factor("Tr") is not None or p.factor("Tc") is not None}
        self.flat = flat_layers(infos, padded, self.beat, rows_pinned)
        self.aligned = aligned_layers(infos, padded, self.flat, self.beat)  # rows that begin at beats
        self.tiled = [
            (li.name, engine_geometry(li, self.flat.get(li.name, 0))) for li in infos if is_tiled(li)
        ]
        self.geoms = [g for _, g in self.tiled]
        # the weight tiles' depth: the network's largest kernel (a stack of Q taps must fit it)
        k_words = max((g.Kh * g.Kw for g in self.geoms), default=1)
        beats = stores_beats(infos, self.padded)
        self.beats = [beats[n] for n, _ in self.tiled]
        self.beats_out = any(self.beats)
        acc_banks = accumulator_banks(self.beat, self.beats_out)
        dep = engine_dependence(prec, acc_banks)
        self.dw = depthwise_use(self.geoms, self.beat, acc_banks)  # LOAD_WD, the layers on DW_COMPUTE
        # an accumulator's distance, each loop's own: Tr*Tc iterations (``tile_pixels``) on COMPUTE,
        # Tr*ceil(Tc/P) on DW_COMPUTE (``Engine.min_trtc``, ``Engine.dw_dist``); each loop's layers keep
        # their tiles to the least its own windowed layers force, so a small depthwise map on DW_COMPUTE
        # never lowers COMPUTE's, through a stack or a tile (MobileNetV2 0.35/96 on zcu104: the head
        # padded to 3 columns took COMPUTE to II 2, 10% slower)
        on_compute = [
            g.R * g.C for g, u in zip(self.geoms, self.dw.unit, strict=True) if g.Kh * g.Kw > 1 and not u
        ]
        on_unit = [g.R * cdiv(g.C, self.dw.cols) for g, u in zip(self.geoms, self.dw.unit, strict=True) if u]
        windowed = any(g.Kh * g.Kw > 1 for g in self.geoms)
        self.compute_required = min([dep, *on_compute])
        self.dw_required = min([dep, *on_unit])
        self.dw_distance = self.dw_required if on_unit else 0
        # the fully connected heads that may stack (none where a Tr or Tc pin holds their one column)
        self.vectors = {
            li.name for li in infos if is_tiled(li) and stacks_a_vector(li) and li.name not in rows_pinned
        }
        # each tiled layer's views: as it is (stack 1), and each stack of its channels as kernel rows
        # where its one row reaches the accumulate's distance (a stack's Q taps revisit an accumulator
        # every Tc iterations; a shorter row would lower the distance the engine declares for all)
        # (stack, fold, geometry); and the layer folded onto its channels where it may (``folds_rows``)
        self.views = {
            li.name: [(1, False, g)]
            + [
                (q, False, view)
                for q in (stack_options(li, k_words, not prec.is_float) if li.name in self.flat else ())
                for view in [engine_geometry(li, self.flat[li.name], q)]
                if tile_pixels(view, 1, view.C, dep) >= self.compute_required  # its whole row's iterations
            ]
            + ([(1, True, engine_geometry(li, fold=True))] if folds_rows(li, not prec.is_float) else [])
            # a fully connected head stacked, its one column in a tile of ``compute_required``
            # (``pads_columns``)
            + [
                (q, False, engine_geometry(li, 0, q))
                for q in (stack_options(li, k_words, not prec.is_float) if li.name in self.vectors else ())
            ]
            for li, (_, g) in zip([li for li in infos if is_tiled(li)], self.tiled, strict=True)
        }
        # what COMPUTE will declare (model.shared_engine.Engine's min_trtc; DW_COMPUTE's is dw_distance)
        self.distance = self.compute_required if windowed else 0
        # the most input channels of any layer's view (a fold's N*Kh may be more than any layer's N)
        self.n_max = max(g.N for views in self.views.values() for _, _, g in views)
        # each tiled layer's folded view, where it has one
        self.folded = [next((g for _, f, g in self.views[n] if f), None) for n, _ in self.tiled]
        # the tiled layers in groups of alike ones (the same views, pin, store and alignment: the same
        # table on any engine; search spaces and ResNets repeat layer shapes), each with its store layout
        alike: dict[tuple, list[str]] = {}
        for (name, _), b in zip(self.tiled, self.beats, strict=True):
            key = (tuple(self.views[name]), self.pins.get(name), b, name in self.aligned)
            alike.setdefault(key, []).append(name)
        self.alike = [(tuple(names), key[2]) for key, names in alike.items()]
        self.mac = board.mac_cost(prec)
        self.seen: dict[tuple[int, int], Candidate] = {}
        self.skip = bool(fused_adds(list(net.info)))  # the engine's store computes residual adds

    def evaluate(self, Tm: int, Tn: int) -> Candidate:
        if (Tm, Tn) not in self.seen:
            self.seen[Tm, Tn] = self._evaluate(Tm, Tn)
        return self.seen[Tm, Tn]

    def _evaluate(self, Tm: int, Tn: int) -> Candidate:
        prec, room = self.prec, self.room
        tables = []  # one a group of alike layers (``self.alike``), with its count
        for names, b in self.alike:
            name = names[0]
            parts = [
                (
                    np.full(1, k),
                    *layer_table(
                        g,
                        Tm,
                        Tn,
                        self.compute_required,
                        self.distance,
                        self.beat,
                        prec,
                        self.pins.get(name),
                        self.skip,
                        b,
                        self.beats_out,
                        self.dw.cols,
                        name in self.aligned,
                        self.load_ports,
                        self.read_beats,
                        self.compute_required if name in self.vectors and stack > 1 else 0,
                        self.dw_required,
                        self.dw_distance,
                    ),
                )
                for k, (stack, fold, g) in enumerate(self.views[name])
                if not (fold and g.N > Tn)  # a folded layer's channels: one input-channel tile
            ]
            # each view's rows, its index beside each (view, Tr, Tc, cycles, b_in, b_acc)
            cols = [np.concatenate([np.broadcast_to(p[k], p[1].shape) for p in parts]) for k in range(6)]
            tables.append((names, *cols))
        lv_in = np.unique(np.concatenate([t[5] for t in tables]))
        lv_acc = np.unique(np.concatenate([t[6] for t in tables]))
        total = np.zeros((len(lv_in), len(lv_acc)))
        for names, _, _, _, cycles, b_in, b_acc in tables:
            cell = np.full((len(lv_in), len(lv_acc)), np.inf)
            np.minimum.at(cell, (np.searchsorted(lv_in, b_in), np.searchsorted(lv_acc, b_acc)), cycles)
            total += len(names) * np.minimum.accumulate(np.minimum.accumulate(cell, axis=0), axis=1)
        acc_banks = accumulator_banks(self.beat, self.beats_out)
        unit = dw_unit_resources(min(Tm, Tn), self.dw.cols, prec, self.mac, self.beat, acc_banks)
        tiles_bram = 2 * Tn * lv_in[:, None] + 2 * Tm * lv_acc[None, :]
        # a bank of no block RAM is in LUTs: at most the largest such bank's LUTs
        tiles_lut = (
            engine_logic_luts(
                Tm,
                Tn,
                prec,
                self.skip,
                self.beat,
                not all(self.beats),
                self.beats_out,
                self.dw.dw,
                self.dw.diag,
                self.load_ports,
            )
            + unit.lut
            + np.where(lv_in[:, None] == 0, 2 * Tn * self.beat * lutram_bound(prec.bits), 0)
            + np.where(lv_acc[None, :] == 0, 2 * Tm * acc_banks * lutram_bound(prec.acc_bits), 0)
        )
        valid = np.isfinite(total)  # every layer has a tiling within the two buffer sizes
        dsp_ok = self.mac.dsps(Tm, Tn) + unit.dsp <= room.dsp
        options = []  # the weights a bank per MAC (in LUTs where small), or a word a tap (block RAM)
        for w_words in (False, True):
            w_bram, w_lut = untiled_memory(Tm, Tn, self.geoms, prec, w_words)
            bram = tiles_bram + w_bram
            options.append((valid & (bram <= room.bram18k) & (tiles_lut + w_lut <= room.lut) & dsp_ok, bram))
        (fits_banks, bram_banks), (fits_words, bram_words) = options
        fits_cell = fits_banks | fits_words
        bram = np.where(fits_banks | ~fits_words, bram_banks, bram_words)
        if fits_cell.any():
            flat = np.lexsort((bram.ravel(), np.where(fits_cell, total, np.inf).ravel()))[0]
        else:  # nothing fits: the least block RAM
            flat = np.lexsort((total.ravel(), np.where(valid, bram, np.inf).ravel()))[0]
        i, j = np.unravel_index(flat, total.shape)
        w_words = bool(fits_words[i, j] and not fits_banks[i, j])  # a word a tap only where it alone fits
        tiles, stacks, folds, layers, layer_beats, cyc = {}, {}, set(), [], [], 0
        for (names, beats), (_, view, tr, tc, cycles, b_in, b_acc) in zip(self.alike, tables, strict=True):
            ok = (b_in <= lv_in[i]) & (b_acc <= lv_acc[j])
            pick = np.flatnonzero(ok)[np.lexsort((view[ok], tr[ok] * tc[ok], cycles[ok]))[0]]
            stack, fold, g = self.views[names[0]][int(view[pick])]
            for name in names:  # alike layers take the same tiling
                tiles[name] = (int(tr[pick]), int(tc[pick]))
                if stack > 1:
                    stacks[name] = stack
                if fold:
                    folds.add(name)
                layers.append((g, *tiles[name]))
                layer_beats.append(beats)
            cyc += len(names) * int(cycles[pick])  # at the probe's II, which the engine's can only better
        # a buffer the cell counts in block RAM stays there (its LUTs were counted as none) even where
        # the tiles picked in the cell are small enough for LUTs: at least a block RAM's worth a bank
        buffer_min = (
            self.beat * (rm.LUTRAM_MAX_BITS // prec.bits + 1) if lv_in[i] > 0 else 0,
            acc_banks * (rm.LUTRAM_MAX_BITS // prec.acc_bits + 1) if lv_acc[j] > 0 else 0,
        )
        engine = make_engine(
            Tm, Tn, layers, self.board, prec, self.skip, layer_beats, w_words, *buffer_min, self.load_ports
        )
        tiles = {name: tiles[name] for name, _ in self.tiled}  # in the network's order
        res = engine.resources(prec, self.mac)
        fits = (res + self.fixed).fits_in(self.budget)
        return Candidate(
            (not fits, cyc, res.bram18k), Tm, Tn, tiles, cyc, fits, w_words, stacks, frozenset(folds),
            buffer_min,
        )  # fmt: skip
