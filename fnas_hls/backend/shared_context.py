"""What the ``shared`` templates (``templates/shared/``) need beyond the common context.

Every conv and fully connected layer becomes a descriptor of the one engine (``model.shared``):
the engine's (TM, TN) for all, the layer's own (TR, TC). The weights are packed for the engine's
weight port in its tile order, and every layer's biases go into the engine's one ROM.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from fnas_hls.analysis import Analysis
from fnas_hls.backend.c_literals import braced_rows
from fnas_hls.backend.fixed_point import DataType
from fnas_hls.backend.storage import storage_bindings
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.shared import aligned_layers, stores_beats
from fnas_hls.model.shared_engine import ENGINE, engine_dependence
from fnas_hls.model.shared_fabric import LOAD_PORTS, STORE_PORTS, row_chunks, rows_begin_at_beats, whole_beats
from fnas_hls.model.shared_pool import (
    beat_gaps,
    beat_pool_ii,
    takes_beat_pool,
    takes_vector_pool,
    vector_pool_ii,
    vector_window,
)
from fnas_hls.model.shared_views import compute_view, engine_geometry, pads_columns, skips_pads, skips_rows
from fnas_hls.network.ir import Network, map_roots

if TYPE_CHECKING:  # the quantizer brings torch; fnas_hls.styles imports this module
    from fnas_hls.backend.quantize import QuantPlan


def pack_weights(w: np.ndarray, g: ConvGeometry, Tm: int, Tn: int, beat_words: int) -> np.ndarray:
    """[G*MT*NT*taps*WB][beat_words]: the beats of block (g, mt, nt), tap k, lane j = the weight of
    output mt*Tm + j // Tn, input nt*Tn + j % Tn (zeros past M, N and the last lane)."""
    taps = g.Kh * g.Kw
    MT, NT = cdiv(g.M, Tm), cdiv(g.N, Tn)
    pad = np.zeros((g.groups, MT * Tm, NT * Tn, taps), dtype=np.asarray(w).dtype)
    pad[:, : g.M, : g.N] = np.asarray(w).reshape(g.groups, g.M, g.N, taps)
    lanes = pad.reshape(g.groups, MT, Tm, NT, Tn, taps).transpose(0, 1, 3, 5, 2, 4).reshape(-1, Tm * Tn)
    wb = cdiv(Tm * Tn, beat_words)
    beats = np.zeros((len(lanes), wb * beat_words), dtype=lanes.dtype)
    beats[:, : Tm * Tn] = lanes
    return beats.reshape(-1, beat_words)


def stacked_weights(w: np.ndarray, stack: int) -> np.ndarray:
    """A pointwise layer's weights [M][N][1][1] as its view with its input channels stacked as
    ``stack`` kernel rows (``model.shared_views.engine_geometry``): [M][N/stack][stack][1], weight
    (m, v, i) that of input channel i*N/stack + v."""
    if stack == 1:
        return w
    w = np.asarray(w)
    m, n = w.shape[:2]
    return w.reshape(m, stack, n // stack).transpose(0, 2, 1).reshape(m, n // stack, stack, 1)


def pack_depthwise(w: np.ndarray, g: ConvGeometry, Tm: int, Tn: int, beat_words: int) -> np.ndarray:
    """A depthwise layer (``model.shared_views.engine_geometry``) on the engine's diagonal: [MT*taps*DWB]
    [beat_words], tile mt of P = min(Tm, Tn) channels, tap k, lane j = the weight of channel mt*P + j
    (LOAD_WD writes it to bank (j, j)); zeros past M and the last lane."""
    taps, P = g.Kh * g.Kw, min(Tm, Tn)
    MT = cdiv(g.M, P)
    chans = np.zeros((MT * P, taps), dtype=np.asarray(w).dtype)
    chans[: g.M] = np.asarray(w).reshape(g.M, taps)
    lanes = chans.reshape(MT, P, taps).transpose(0, 2, 1).reshape(MT * taps, P)
    beats = np.zeros((MT * taps, cdiv(P, beat_words) * beat_words), dtype=lanes.dtype)
    beats[:, :P] = lanes
    return beats.reshape(-1, beat_words)


def _lane_rows(v: np.ndarray, g: ConvGeometry, lanes: int, Tm: int, dtype) -> np.ndarray:
    """Per-output-channel values (biases, shifts) as rows of the engine's Tm lanes: row (g, mt), lane j
    the value of output mt*lanes + j of group g (lanes = Tm, or the diagonal's min(Tm, Tn))."""
    MT = cdiv(g.M, lanes)
    out = np.zeros((g.groups, MT, Tm), dtype=dtype)
    pad = np.zeros((g.groups, MT * lanes), dtype=dtype)
    pad[:, : g.M] = np.asarray(v).reshape(g.groups, g.M)
    out[:, :, :lanes] = pad.reshape(g.groups, MT, lanes)
    return out.reshape(-1, Tm)


#: The engine template's arrays behind each of ``model.shared_engine.Engine.buffers``.
ENGINE_ARRAYS = {
    "input tiles": ("in_a", "in_b"),
    "weight tiles": ("w_a", "w_b"),
    "accumulators": ("acc_a", "acc_b"),
    "bias ROM": ("fnas_engine_bias",),
    "shift ROM": ("fnas_engine_shift",),
}


def engine_storage(analysis: Analysis, has_shifts: bool) -> list[dict[str, Any]]:
    """Each engine array and where the model places it (``backend.storage``); the shift ROM only
    where the engine has one (``has_shifts``)."""
    arrays = {k: v for k, v in ENGINE_ARRAYS.items() if has_shifts or k != "shift ROM"}
    return storage_bindings(analysis.engine.buffers(analysis.precision), arrays)


#: The descriptor's products of its fields (``templates/shared/engine.h.j2``), in their order there.
DESCRIPTOR_PRODUCTS = (
    "STEPS", "IN_TRIP", "W_TRIP", "ST_TRIP", "C_TRIP", "ROWSTEP", "TRSH", "TCSW", "W_BLOCK", "GW",
    "HW", "NHW", "PT_W", "TRSH_W", "TN_HW", "MS_HW", "RC", "MRC", "TR_C", "MS_RC", "IN_CHSTEP",
    "ST_CHSTEP", "STB_TRIP", "FOLD", "K2", "K_STEP", "CH2", "FOLD_WRAP", "ALIGNED", "CTR", "CTC", "CSKIP",
)  # fmt: skip


def load_port_args(buffer: str, ports: int) -> list[str]:
    """The top's arguments a layer reads ``buffer`` (``input`` or ``fmap``) through as beats, one a load
    port of the engine's ``ports`` (the engine's ``in``, ``in2``, ..., and the beat pooling unit's):
    ``fmap_b``, ``fmap_b2``, ..."""
    return [f"{buffer}_b{'' if p == 1 else p}" for p in range(1, ports + 1)]


def descriptor_products(d: dict[str, Any], w_beats: int, load_ports: int = LOAD_PORTS) -> dict[str, int]:
    """Every product of a layer descriptor's fields that the engine needs, computed here so that the
    engine's loops keep their indices by adds alone (csynth would give each run-time multiply DSPs
    the model does not count). ``w_beats``: the layer's beats per kernel tap (WB, or a depthwise
    layer's DWB). The maps'
    strides are those of their layout in DDR: a row IW words apart in the input (W, or whole beats
    where it is padded, SH times that where the layer skips rows), a channel IHW apart, a row OC
    apart in the output; ``ST_BEATS``: the output is stored in whole beats
    (STB_TRIP, and STORE's trip 0), else a word a port (ST_TRIP, and STORE_B's 0). ``FOLD``: the
    kernel rows folded onto the input channels (1: none): channel v of the view is input channel
    v // FOLD read v % FOLD rows further, so LOAD_IN's ``load_ports`` channels at once are K_STEP row
    shifts and IN_CHSTEP words further each time, FOLD_WRAP more where the shift wraps into the next
    input channel; a port's channel is K2 rows and CH2 words past the port before's (one channel on)."""
    taps = d["KH"] * d["KW"]
    hw, rc = d["IHW"], d["R"] * d["OC"]
    fold = d["FOLD"]
    store = cdiv(d["ML"], STORE_PORTS) * d["TR"]  # STORE_PORTS channels a cycle
    p = {
        "STEPS": d["TILES"] * d["NT"],
        "IN_TRIP": cdiv(d["NL"], load_ports) * d["TRIN"] * d["KB1"],  # load_ports channels at once
        "W_TRIP": taps,
        "ST_TRIP": 0 if d["ST_BEATS"] else store * d["TC"],
        # DWTC = TC but on DW_COMPUTE; COMPUTE's CTR x CTC a tap (model.shared_views.compute_view)
        "C_TRIP": taps * (d["TR"] * d["DWTC"] if d["DWU"] else d["CTR"] * d["CTC"]),
        # an output row on in the input tile (COMPUTE's rows of a one-row view of padded rows: a row's words)
        "ROWSTEP": d["CROW"] or d["SH"] * d["TCINP"],
        "TRSH": d["TR"] * d["SH"],
        "TCSW": d["TC"] * d["SW"],
        "W_BLOCK": taps * w_beats,
        "GW": d["MT"] * d["NT"] * taps * w_beats,
        "HW": hw,
        "NHW": d["N"] * hw,
        "PT_W": d["PT"] * d["IW"],
        "TRSH_W": d["TR"] * d["SH"] * d["IW"],
        "TN_HW": d["TN"] * hw,
        "MS_HW": d["MSTEP"] * hw,
        "RC": rc,
        "MRC": d["M"] * rc,
        "TR_C": d["TR"] * d["OC"],
        "MS_RC": d["MSTEP"] * rc,
        # LOAD_IN's next channels, load_ports on: (load_ports // FOLD) input channels and K_STEP rows
        "IN_CHSTEP": (load_ports // fold) * hw + (load_ports % fold) * d["IW"],
        "ST_CHSTEP": STORE_PORTS * rc,  # STORE's next channels
        "STB_TRIP": store * d["TCB"] if d["ST_BEATS"] else 0,  # a row's chunks of a beat
        "FOLD": fold,
        "K2": 1 if fold > 1 else 0,
        "K_STEP": load_ports % fold,
        "CH2": d["IW"] if fold > 1 else hw,
        "FOLD_WRAP": hw - fold * d["IW"] if fold > 1 else 0,
        "ALIGNED": d["ALIGNED"],
        "CTR": d["CTR"],
        "CTC": d["CTC"],
        "CSKIP": d["CSKIP"],
    }
    assert tuple(p) == DESCRIPTOR_PRODUCTS
    return p


def loop_tripcounts(analysis: Analysis) -> dict[str, dict[str, int]]:
    """Per loop label of the engine and the units (STEP, LOAD_IN, LOAD_W, COMPUTE, STORE, ADD, COPY),
    the least and the largest trip any layer gives it (a call with nothing to do: 0), for the
    LOOP_TRIPCOUNT pragmas of loops whose trips are run-time arguments (csynth reports their
    latency as a range then, not as '?')."""
    trips: dict[str, list[int]] = {}
    for lc in analysis.layers:
        for fn in lc.functions:
            for lp in fn.loops:
                trips.setdefault(lp.label, []).append(lp.trip)
                if fn.name.endswith(("_load_in", "_load_w")) or fn.name.endswith("_store"):
                    trips[lp.label].append(0)  # the last step's loads, the store but in a tile's first step
    return {k: {"min": min(v), "max": max(v)} for k, v in trips.items()}


def _fuse_adds(net: Network, fused: dict[str, str], layers: list[dict[str, Any]]) -> bool:
    """The adds the engine's store computes (``fused``: the analysis's ``model.shared.fused_adds``):
    each marked ``fused`` (the top calls nothing for it), its conv writes the add's place and reads
    the other input through the engine's skip ports (``fmap_skip``, the same memory as ``fmap``)
    with the add's alignment, requantization and ReLU; every other conv reads nothing there
    (``skip_add`` 0)."""
    by_name = {d["name"]: d for d in layers}
    for d in layers:
        if d["kind"] == "add":
            d["fused"] = ""
        if d["kind"] == "conv":
            d.update(
                skip_add=0, skip_src="fmap_skip", a_conv=0, a_skip=0, add_shift=0, add_round=0, add_relu=0
            )
    for add, conv in fused.items():
        a, c = by_name[add], by_name[conv]
        j = net[add].sources.index(conv)
        other = a["srcs"][1 - j]
        assert other.startswith("fmap"), other  # fused_adds leaves out the network's input
        a["fused"], a["function"] = conv, ENGINE  # the engine's store computes it
        c.update(
            dst=a["dst"], skip_add=1, skip_src="fmap_skip" + other[len("fmap") :],
            a_conv=a["aligns"][j], a_skip=a["aligns"][1 - j], add_shift=a["shift"], add_round=a["round"],
            add_relu=1 if a["relu"] == "true" else 0,
        )  # fmt: skip
    return bool(fused)


def map_layout(net: Network, analysis: Analysis) -> tuple[dict[str, int], int]:
    """The fmap region's layout (``project_context.feature_map_places``): the words of each map stored in
    whole beats (``Analysis.padded_maps``: C*H rows of ceil(W/B)*B words), and every map's first
    word a beat's first (B words: the engine's load and store ports read and write beats); none
    but the plain layout without an engine."""
    if analysis.engine is None:
        return {}, 1
    beat = analysis.engine.beat_words
    sizes = {}
    for name in analysis.padded_maps:
        x = net[name].out_shape
        sizes[name] = x.c * x.h * whole_beats(x.w, beat)
    return sizes, beat


def split_place(place: str) -> tuple[str, int]:
    """A map's place (``project_context.feature_map_places``: ``input``, ``fmap``, ``fmap + 123``) as its
    buffer and its first word there."""
    name, _, offset = place.partition(" + ")
    return name, int(offset or 0)


def shared_layers(
    net: Network,
    analysis: Analysis,
    plan: QuantPlan,
    layers: list[dict[str, Any]],
    fmap_words: int,
) -> dict[str, Any]:
    """Fill each conv/fc layer's descriptor fields in ``layers``; return the engine's context
    (``fmap_words``: the words of the fmap region)."""
    e = analysis.engine
    assert e is not None, "a shared design has an engine"
    padded, roots = analysis.padded_maps, map_roots(net.info)
    stores_b = stores_beats(list(net.info), padded)  # the layers that store whole beats (STORE_B)
    # the layers whose window rows begin at beats (where their column tiles begin at multiples of B)
    aligned = aligned_layers(list(net.info), padded, analysis.flat_layers, e.beat_words)
    for d in layers:  # every layer writes the fmap region through its own port, fmap_wr (bundle gmem_out)
        if d.get("dst", "").startswith("fmap"):
            d["dst"] = "fmap_wr" + d["dst"][len("fmap") :]
    infos = {li.name: li for li in net.info}
    quant = {lq.name: lq for lq in plan.layers}
    tilings = {lc.name: lc.tiling for lc in analysis.layers}
    is_float = plan.precision == "float32"
    bias_blocks, shift_blocks, beat_rows = [], [], []
    bias_row = w_beat = 0
    acc_types = set()

    def input_row_stride(d: dict[str, Any]) -> int:
        """The words between two rows of layer ``d``'s input in DDR: W, or whole beats where padded."""
        return whole_beats(d["W"], e.beat_words) if roots[infos[d["name"]].sources[0]] in padded else d["W"]

    for d in layers:  # a GAP or a beat pool reads its map's rows IW words apart
        if d["kind"] in ("gap", "maxpool", "avgpool"):
            d["IW"] = input_row_stride(d)
    gaps = beat_gaps(list(net.info), analysis.board, analysis.precision, e.beat_words)  # GAPs that read beats
    for d in layers:  # pooling whose window fits a beat reads beats, through the engine's load ports
        d["beat_pool"] = takes_beat_pool(infos[d["name"]], e.beat_words, gaps)
        if d["beat_pool"]:
            buffer, in_base = split_place(d["src"])
            d.update(
                src_bs=load_port_args(buffer, e.load_ports),
                in_base=in_base,
                beat_ii=beat_pool_ii(d["KH"], e.load_ports),
            )
            li = infos[d["name"]]
            # a max pooling whose maps are in whole beats writes a beat of outputs an iteration (POOL_V)
            d["vector_pool"] = takes_vector_pool(li, e.beat_words) and li.name in padded
            if d["vector_pool"]:
                v = vector_window(li, e.beat_words)
                d.update(
                    vector_ii=vector_pool_ii(li, e.load_ports), IWB=d["IW"] // e.beat_words, OWB=v.out_beats,
                    FIRST=v.first, LAG=v.lag, NH=v.held, OUT_BASE=split_place(d["dst"])[1],
                )  # fmt: skip
    for d in layers:
        if d["kind"] != "conv":
            continue
        li, lq = infos[d["name"]], quant[d["name"]]
        row_words = analysis.flat_layers.get(li.name, 0)
        stack = analysis.stacked_layers.get(li.name, 1)
        fold = li.name in analysis.folded_layers
        g = engine_geometry(li, row_words, stack, fold)
        if row_words:  # one row of R rows' words, pad words included (model.shared.flat_layers)
            Tc = tilings[li.name].Tc  # the analysis's, not clipped to the map's columns
            d.update(H=1, W=g.C, R=1, C=g.C, TR=1, TC=Tc, TRIN=1, TCIN=Tc)
        if stack > 1:  # its channels as `stack` rows of N/stack: a Q x 1 kernel over Q rows
            d.update(N=g.N, H=stack, KH=stack, TRIN=stack)
        if pads_columns(li, stack):  # its one column in a tile of the analysis's Tc, the rest past the map
            Tc = tilings[li.name].Tc
            d.update(TC=Tc, TCIN=Tc)
        # its kernel rows folded onto its channels: N*KH channels of a 1 x KW kernel, each read its own
        # row shift further (the map's H and PT stay: LOAD_IN checks each channel's shifted rows)
        d["FOLD"] = d["KH"] if fold else 1
        if fold:
            d.update(N=g.N, KH=1, TRIN=(d["TR"] - 1) * d["SH"] + 1)
            assert g.N <= e.Tn, (li.name, g.N, e.Tn)  # one input-channel tile: LOAD_IN's channel 0 at n0 = 0
        lanes = e.out_lanes(g)
        Tr, Tc = d["TR"], d["TC"]
        MT, NT = cdiv(g.M, lanes), cdiv(g.N, e.Tn)
        RT, CT = cdiv(g.R, Tr), cdiv(g.C, Tc)
        bias = _lane_rows(lq.bias, g, lanes, e.Tm, np.float32 if is_float else np.int64)
        bias_blocks.append((bias, lq.bias_type))
        if lq.shifts is not None and not is_float:  # a shift per output channel, rows as the biases'
            shift_blocks.append(_lane_rows(lq.shifts, g, lanes, e.Tm, np.int64))
        pack = pack_depthwise if g.dw else pack_weights
        beats = pack(
            stacked_weights(lq.weight, stack), g, e.Tm, e.Tn, e.beat_words
        )  # (a fold: the same order)
        beat_rows.append(braced_rows(beats, lq.w_type))
        if g.dw:  # one group of all channels; a tile's input channels are its output channels
            d.update(G=1, M=g.M, N=g.M)
        # the engine's load ports read beats of the input map's buffer, from its first word on
        B = e.beat_words
        buffer, in_base = split_place(d["src"])
        chunks = row_chunks(d["TCIN"], B)
        # a window row's chunks and the beat before, or its chunks alone where every row begins at a beat
        whole = bool(rows_begin_at_beats(li.name in aligned, d["TC"], g.C, d["SW"], B))
        assert not whole or in_base % B == 0, (li.name, in_base)  # every map begins at a beat
        d.update(
            src_bs=load_port_args(buffer, e.load_ports),
            in_base=in_base,
            KB1=chunks + (0 if whole else 1),
        )
        d["ALIGNED"] = int(whole)
        acc_row = whole_beats(Tc, e.acc_banks)  # a row of accumulators, whole sub-bank rows
        d.update(TCINP=chunks * B, TCB=row_chunks(Tc, B), ACC_SKIP=acc_row - Tc)
        # DW_COMPUTE's column groups (model.shared_depthwise.on_dw_unit); C_TRIP counts them
        P = e.dw_cols if e.on_dw_unit(g) else 1
        d.update(DWU=int(P > 1), DWTC=cdiv(Tc, P), DW_ASKIP=acc_row - cdiv(Tc, P) * P, DW_XSTEP=P * d["SW"])
        # COMPUTE's rows and columns a tap: the tile's, or a one-row view's rows of the map with their pad
        # words skipped (the accumulators' and the input tile's rows then a map row's words apart)
        dep = engine_dependence(analysis.precision, e.acc_banks)
        ctr, ctc = compute_view(g, Tr, Tc, dep)
        skip_pads = bool(skips_pads(g, Tc, dep))
        d.update(
            CTR=ctr,
            CTC=ctc,
            CSKIP=g.row_words - ctc if skip_pads else acc_row - Tc,
            CROW=g.row_words if skip_pads else 0,
        )
        # the maps' row strides in DDR: whole beats where padded (model.shared.padded_maps)
        out_beats = stores_b[li.name]
        d.update(ST_BEATS=out_beats, OC=whole_beats(d["C"], B) if out_beats else d["C"])
        d["IW"] = input_row_stride(d)
        d["IHW"] = d["H"] * d["IW"]  # the input's channel stride
        if stack > 1:  # a row of the view is N/stack channels of the one-row map
            d.update(IHW=d["IW"], IW=g.N * d["IW"])
        if skips_rows(li):  # the rows it reads, SH apart: a map of row stride SH*IW, stride 1
            S = d["SH"]
            d.update(H=cdiv(d["H"], S), IW=d["IW"] * S, SH=1, TRIN=Tr)
        d.update(
            TM=e.Tm, TN=e.Tn, MT=MT, NT=NT, RT=RT, CT=CT, TILES=g.groups * MT * RT * CT,
            NL=min(lanes if g.dw else e.Tn, g.M if g.dw else g.N), ML=min(lanes, g.M),
            engine_dw=g.dw, MSTEP=lanes, bias_row=bias_row, w_beat=w_beat, w_beats=len(beats),
            weight_rows=beat_rows[-1],
            tiling={"Tm": e.Tm, "Tn": e.Tn, "Tr": Tr, "Tc": Tc},
            table_tiling=[e.Tm, e.Tn, Tr, Tc],
            tiling_str=f"{e.Tm}/{e.Tn}/{Tr}/{Tc}",
        )  # fmt: skip
        d.update(descriptor_products(d, e.dw_beats if g.dw else e.w_beats, e.load_ports))
        d["products"] = [d[k] for k in DESCRIPTOR_PRODUCTS]
        bias_row += len(bias_blocks[-1][0])
        w_beat += len(beats)
        acc_types.add(lq.acc_c_type)
    skip = _fuse_adds(net, analysis.fused_adds, layers)
    # conv layers call the engine; adds and concats the units (where a store has not fused them)
    merge_units = any(
        d["kind"] not in ("conv", "flatten") and d["on_unit"] and not d.get("fused") for d in layers
    )
    for d in layers:
        if d["kind"] == "conv":
            d["dst2"] = re.sub(r"^(output|fmap_wr)", r"\g<1>2", d["dst"])  # the second store port
            d["skip_src2"] = re.sub(r"^fmap_skip", "fmap_skip2", d["skip_src"])
            # STORE_B writes (and reads the skip map) as beats from the buffers' first word on
            d["out_base"], d["skip_base"] = split_place(d["dst"])[1], split_place(d["skip_src"])[1]
    acc = "float" if is_float else ("int64_t" if "int64_t" in acc_types else "int32_t")
    bias_rows = ",\n".join(braced_rows(b, dtype) for b, dtype in bias_blocks)
    shift_rows = ",\n".join(braced_rows(b, DataType.fixed(32, 0)) for b in shift_blocks)
    extra_load = list(range(LOAD_PORTS + 1, e.load_ports + 1))
    return {
        "engine": {
            "TM": e.Tm,
            "TN": e.Tn,
            "IN_WORDS": e.in_words,
            "K_WORDS": e.k_words,
            "ACC_WORDS": e.acc_words,
            "BIAS_TILES": max(bias_row, 1),
            "MIN_TRTC": e.min_trtc,
            "WBEAT": e.beat_words,
            "LOG_WBEAT": e.beat_words.bit_length() - 1,
            "ACC_BANKS": e.acc_banks,
            "LOG_ACC_BANKS": e.acc_banks.bit_length() - 1,
            "w_words": e.w_words,  # the weight tiles a word a tap (ARRAY_RESHAPE), not a bank a MAC
            "words_out": e.words_out,  # some layer stores a word a port (STORE)
            "beats_out": e.beats_out,  # some layer stores whole beats (STORE_B)
            "WB": e.w_beats,
            "W_II": e.w_ii,  # LOAD_W's II: WB beats over the weight ports
            "W2": e.w_ports > 1,  # a second weight port (a tap of more than one beat)
            "LP": e.load_ports,  # LOAD_IN's channels at once, a load port each
            # the engine's load ports (in, in2, ...), the top's past the pooling units' two, and the
            # buffer a host binds to each of those (host_call.j2)
            "in_ports": ["in" + ("" if p == 1 else str(p)) for p in range(1, e.load_ports + 1)],
            "extra_load": extra_load,
            "extra_host_ports": [
                (f"{b}_b{p}", b, "fnas_wbeat_t") for p in extra_load for b in ("input", "fmap")
            ],
            "DW_II": e.dw_ii,
            "dw": e.dw,  # some layer is depthwise: LOAD_WD
            "DW_LANES": e.dw_lanes,
            "DWB": e.dw_beats,
            "dw_diag": e.dw_diag,  # some depthwise layer on COMPUTE's diagonal: its select there
            "DWP": e.dw_cols,  # DW_COMPUTE's columns an iteration (1: none)
            "DW_DIST": e.dw_dist,
            "acc_c_type": acc,
            "skip": skip,
            # whether a layer on it reads its input through a ReLU (ReLU-Conv)
            "in_relu": any(d["in_relu"] for d in layers if d["kind"] == "conv"),
            # the activations its store computes (a run-time switch of these cases only)
            "act_codes": sorted({d["act"]["code"] for d in layers if d["kind"] == "conv" and d["act"]}),
            "bias_rows": bias_rows or "  {0}",
            # int8: every layer's requantization shift per output channel, rows as the biases'
            "shift_rows": shift_rows if shift_blocks and len(shift_blocks) == len(bias_blocks) else "",
        },
        "storage": engine_storage(analysis, bool(shift_rows and len(shift_blocks) == len(bias_blocks))),
        "weight_beats": w_beat,
        "in_beats": cdiv(net.input.size, e.beat_words),
        "fmap_beats": cdiv(fmap_words, e.beat_words),
        "skip_port": skip,
        "merge_units": merge_units,  # units.h and units.cpp: an add or concat the engine's store does not do
        # the add units the top calls: inputs of each (fnas_add2, fnas_add3)
        "add_units": sorted(
            {len(d["aligns"]) for d in layers if d["kind"] == "add" and d["on_unit"] and not d.get("fused")}
        ),
        "beat_ports": True,  # the engine's loads read beats: the testbench keeps the maps in whole beats
        "tripcount": loop_tripcounts(analysis),
        "unit_act_codes": sorted(
            {d["act"]["code"] for d in layers if d["kind"] == "add" and d["on_unit"] and d["act"]}
        ),
        "axi_bits": analysis.board.axi_width_bits,
    }
