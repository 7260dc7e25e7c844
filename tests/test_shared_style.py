"""The ``shared`` style: one tiled engine for every layer (Zhang et al., FPGA'15), its model, DSE,
templates and C simulation."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from fnas_hls.backend.shared_context import ENGINE_ARRAYS, pack_weights
from fnas_hls.boards import load_board
from fnas_hls.cli import main
from fnas_hls.errors import FnasError
from fnas_hls.model import hls_rules as rules
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.sequential import compute_depth
from fnas_hls.model.shared_engine import EMPTY_CALL, Engine, engine_terms, zhang_compute_cycles
from fnas_hls.model.shared_fabric import LOAD_PORTS, STORE_PORTS, W_PORTS, engine_ports, weight_ports
from fnas_hls.model.shared_views import engine_geometry
from fnas_hls.model.tiling import Tiling, parse_tiling_specs
from fnas_hls.network.arch import load_network_yaml
from fnas_hls.network.onnx_frontend import load_onnx
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze

sys.path.insert(0, str(Path(__file__).parent))
from test_hls_emit import SPREAD, net_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ALEXNET = ROOT / "examples" / "alexnet-227.yaml"
#: Zhang et al. (FPGA'15) measured AlexNet's conv layers on the VC707 at 100 MHz in this time.
ZHANG_MS = 21.61


def _steps_by_hand(g: ConvGeometry, e: Engine, Tr: int, Tc: int, prec) -> int:
    """The engine's cycles for one layer, walking its STEP loop one step at a time (the template's
    control flow, written out), against which the closed form of ``engine_terms`` is held."""
    call, block, side = rules.function_latency, rules.sequential_block, rules.overlapped
    TRin, TCin = (Tr - 1) * g.Sh + g.Kh, (Tc - 1) * g.Sw + g.Kw
    ii = e.compute_ii(prec)
    select = rules.SELECT_DEPTH if e.beat_words > 1 else 0  # a word out of a beat, or of B sub-banks
    cc = call(rules.pipelined_loop(g.Kh * g.Kw * Tr * Tc, ii, int(compute_depth(e.Tn, prec)) + select))
    row_beats = -(-TCin // e.beat_words) + 1  # a window row's chunks, and the beat read first
    ci = call(
        rules.pipelined_loop(
            cdiv(min(e.Tn, g.N), LOAD_PORTS) * TRin * row_beats, 1, rules.LOAD_DEPTH + select
        )
    )
    # a tap's WB beats, two a cycle: one through each weight port
    cw = call(rules.pipelined_loop(g.Kh * g.Kw * cdiv(e.w_beats, W_PORTS), 1, rules.LOAD_DEPTH))
    cs = call(rules.pipelined_loop(cdiv(min(e.Tm, g.M), STORE_PORTS) * Tr * Tc, 1, rules.STORE_DEPTH))
    tiles = g.groups * cdiv(g.R, Tr) * cdiv(g.C, Tc) * cdiv(g.M, e.Tm)
    nt_count = cdiv(g.N, e.Tn)
    steps = tiles * nt_count
    loop = 0
    for s in range(steps):
        nt = s % nt_count
        last = s + 1 == steps
        load_i, load_w = (EMPTY_CALL, EMPTY_CALL) if last else (ci, cw)
        store = cs if (nt == 0 and s > 0) else EMPTY_CALL
        loop += block(side(cc, load_i, load_w, store))
    return call(block(side(ci, cw)) + block(loop) + block(cs))


@pytest.mark.parametrize(
    "geom,tm,tn,tr,tc",
    [
        (ConvGeometry(1, 10, 7, 9, 8, 3, 3), 4, 3, 4, 3),  # several tiles of several steps
        (ConvGeometry(1, 10, 3, 9, 8, 3, 3), 4, 3, 4, 3),  # one step a tile: the last step stores
        (ConvGeometry(2, 6, 5, 5, 5, 5, 5, 2, 2), 8, 2, 5, 5),  # groups, M < Tm
        (ConvGeometry(1, 3, 2, 1, 1, 1, 1), 4, 4, 1, 1),  # one tile of one step
        (ConvGeometry(1, 40, 90, 1, 1, 1, 1), 16, 7, 1, 1),  # fully connected
    ],
)
@pytest.mark.parametrize("precision", ["fixed16", "float32"])
def test_engine_closed_form_walks_the_steps(geom, tm, tn, tr, tc, precision):
    prec = get_precision(precision)
    e = Engine(tm, tn, 1, 1, 1, 1, min_trtc=tr * tc if geom.Kh > 1 else 0, beat_words=4)
    k = engine_terms(geom, e, tr, tc, prec)
    assert k.cycles == _steps_by_hand(geom, e, tr, tc, prec)
    # the vectorized form (the DSE's) gives the same
    vec = engine_terms(geom, e, np.array([tr, tr]), np.array([tc, tc]), prec)
    assert list(np.asarray(vec.cycles)) == [k.cycles, k.cycles]


def test_alexnet_on_vc707_follows_zhang_compute_cycles(tmp_path, capsys):
    """Zhang's own case: AlexNet (227x227, grouped layers) on the VC707 in float32 at <64, 7>."""
    out = tmp_path / "a.json"
    argv = ["analyze", str(ALEXNET), "--board", "vc707", "--precision", "float32", "--clock-mhz", "100"]
    assert main([*argv, "--style", "shared", "--tiling", "all:Tm=64,Tn=7", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "shared style" in text and "64 x 7 MACs" in text
    data = json.loads(out.read_text())
    assert data["fits"] and data["engine"]["Tm"] == 64 and data["engine"]["Tn"] == 7
    net = load_network_yaml(ALEXNET)
    prec = get_precision("float32")
    # The paper's P: COMPUTE's depth in csynth's counting (a pipelined loop takes trip + depth - 2).
    # (and the stage that selects each input word out of its channel's sub-banks: 16 words a beat)
    P = int(compute_depth(7, prec)) + rules.SELECT_DEPTH - 2
    convs = [entry for entry in data["layers"] if entry["op"] == "conv"]
    assert len(convs) == 5
    for entry in convs:
        g = ConvGeometry.of(net[entry["name"]])
        t = Tiling(**entry["tiling"])
        assert (t.Tm, t.Tn) == (64, 7)
        assert entry["compute_cycles"] == zhang_compute_cycles(g, t, P)
        assert entry["compute_cycles"] <= entry["cycles"]
    # conv1: one group, M = 96 in 2 output tiles, N = 3 in one input tile, 11x11 taps
    c1 = convs[0]
    t1 = Tiling(**c1["tiling"])
    assert c1["compute_cycles"] == 2 * cdiv(55, t1.Tr) * cdiv(55, t1.Tc) * (t1.Tr * t1.Tc * 121 + P)
    # what the README compares with the paper's measurement: the conv layers' predicted time
    conv_ms = sum(entry["ms"] for entry in convs)
    assert ZHANG_MS * 0.9 <= conv_ms <= ZHANG_MS * 1.25, conv_ms


def test_a_per_layer_engine_pin_is_one_line(tmp_path):
    net = load_network_yaml(ALEXNET)
    with pytest.raises(FnasError, match=r"one \(Tm, Tn\) for every layer.*conv1"):
        analyze(net, load_board("vc707"), "float32", pins=parse_tiling_specs(["conv1:Tm=32"]), style="shared")
    # per-layer row and column tiles are the style's own: they are honoured
    a = analyze(
        net, load_board("vc707"), "float32", pins=parse_tiling_specs(["conv3:Tr=7,Tc=13"]), style="shared"
    )
    assert a.layers[4].tiling.Tr == 7 and a.layers[4].tiling.Tc == 13


def test_the_engine_is_sized_for_the_largest_tile_and_fits():
    net = load_network_yaml(ALEXNET)
    board = load_board("vc707")
    a = analyze(net, board, "float32", style="shared")
    assert a.fits and a.engine is not None
    e = a.engine
    tiles = [(ConvGeometry.of(net[lc.name]), lc.tiling) for lc in a.layers if lc.tiling]
    B = e.beat_words  # a window row as whole chunks of the load port's beat

    def window(g, t):
        return ((t.Tr - 1) * g.Sh + g.Kh) * B * cdiv((t.Tc - 1) * g.Sw + g.Kw, B)

    assert e.in_words == max(window(g, t) for g, t in tiles)
    assert e.acc_words == max(t.Tr * t.Tc for _, t in tiles) and e.k_words == 121
    assert e.macs * board.dsps_per_mac("float32") <= a.budget.dsp
    assert a.resources.fits_in(a.budget)
    # the DSE's engine is at least as fast as Zhang's <64, 7> with the same freedom per layer
    pinned = analyze(net, board, "float32", pins=parse_tiling_specs(["all:Tm=64,Tn=7"]), style="shared")
    assert a.latency_cycles <= pinned.latency_cycles


def test_pack_weights_lanes():
    g = ConvGeometry(2, 3, 5, 4, 4, 2, 2)
    w = np.arange(2 * 3 * 5 * 4).reshape(6, 5, 2, 2)
    beats = pack_weights(w, g, Tm=2, Tn=3, beat_words=4)
    MT, NT, taps = 2, 2, 4
    wb = 2  # ceil(2*3 / 4)
    assert beats.shape == (2 * MT * NT * taps * wb, 4)
    for gi in range(2):
        for mt in range(MT):
            for nt in range(NT):
                for k in range(taps):
                    row = (((gi * MT + mt) * NT + nt) * taps + k) * wb
                    lanes = beats[row : row + wb].reshape(-1)
                    for j in range(2 * 3):
                        m, n = mt * 2 + j // 3, nt * 3 + j % 3
                        want = w[gi * 3 + m, n].reshape(-1)[k] if m < 3 and n < 5 else 0
                        assert lanes[j] == want
                    assert not lanes[6:].any()  # the last beat's spare lanes


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("precision", ["fixed16", "float32"])
@pytest.mark.parametrize("case", sorted(SPREAD))
def test_shared_emit_csim_bit_exact(case, precision, tmp_path):
    from fnas_hls.backend.csim import run_csim
    from fnas_hls.backend.hls_writer import emit_project

    shape, layers, pins = SPREAD[case]
    net = net_of(layers, shape, name=case)
    rng = np.random.default_rng(2)
    calib = rng.standard_normal((24, *shape)).astype(np.float32)
    tests = rng.standard_normal((6, *shape)).astype(np.float32)
    pinned = parse_tiling_specs(pins)
    res = emit_project(
        net, load_board("pynq"), tmp_path / "p", precision, calib, pinned, test_inputs=tests, style="shared"
    )
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact and out.vectors == 6, out.verdict
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest["style"] == "shared" and "src/engine.cpp" in manifest["files"]["sources"]
    e = res.analysis.engine
    top = (tmp_path / "p" / "src" / f"{res.top}.cpp").read_text()
    assert "ALLOCATION function instances=fnas_engine limit=1" in top
    assert "DATA_PACK variable=weights" in top and "AGGREGATE variable=weights" in top  # one wide bus word
    convs = [lc for lc in res.analysis.layers if lc.tiling is not None]
    assert top.count("fnas_engine(") == len(convs)
    # loads read through one bundle, stores write through another (the same DDR buffer, fmap and fmap_wr)
    for port, bundle in (
        ("input", "gmem_fm"),
        ("fmap", "gmem_fm"),
        ("output", "gmem_out"),
        ("fmap_wr", "gmem_out"),
    ):
        assert f"port={port} offset=slave bundle={bundle} " in top
    # the engine's loads read beats of input or fmap (a port each of its load_ports channels at once),
    # its stores write output or fmap_wr (two)
    P = e.load_ports
    calls = re.findall(r"  fnas_engine\(" + ", ".join(["([^,]+)"] * (P + 2)) + ", ", top)
    assert len(calls) == len(convs)
    for call in calls:
        loads, (store, store2) = [c.split(" ")[0] for c in call[:P]], call[P:]
        assert loads in (
            ["input_b"] + [f"input_b{p}" for p in range(2, P + 1)],
            ["fmap_b"] + [f"fmap_b{p}" for p in range(2, P + 1)],
        ), loads
        assert (store.split(" ")[0], store2.split(" ")[0]) in (
            ("output", "output2"),
            ("fmap_wr", "fmap_wr2"),
        ), store
    header = (tmp_path / "p" / "src" / "engine.h").read_text()
    assert f"const int TM = {e.Tm}, TN = {e.Tn};" in header
    for entry, lc in zip(manifest["layers"], res.analysis.layers, strict=True):
        assert entry["tiling"] == (lc.tiling.as_dict() if lc.tiling else None)
    # LOAD_W: one tap an iteration, its WB beats unrolled (each lane's bank a constant), beat b through
    # weight port b mod 2 (weights and weights2, the same buffer): II = ceil(WB/2)
    if e.w_ports == 2:
        assert "port=weights2 offset=slave bundle=gmem_w2 " in top and "weights, weights2, FNAS_DESC_" in top
    else:  # a tap of one beat: no second weight port, the engine's w2 is the one port again (never read)
        assert e.w_beats == 1 and "*weights2" not in top and "weights, weights, FNAS_DESC_" in top
    engine = (tmp_path / "p" / "src" / "engine.cpp").read_text()
    load_w = engine[engine.index("LOAD_W:") : engine.index("void fnas_engine_compute")]
    assert e.w_ii == -(-e.w_beats // 2) and f"PIPELINE II={e.w_ii}" in load_w
    assert "buf[j / TN][j % TN][k]" in load_w and "b % 2 ? w2[at + b] : w[at + b]" in load_w
    a = res.analysis
    for lc in convs:  # a depthwise layer's loads the diagonal's weights alone (LOAD_WD, II ceil(DWB/2))
        n = lc.name  # (in the view the engine runs it in: one row, stacked, folded)
        g = engine_geometry(net[n], a.flat_layers.get(n, 0), a.stacked_layers.get(n, 1), n in a.folded_layers)
        (lp,) = [lp for fn in lc.functions for lp in fn.loops if lp.label in ("LOAD_W", "LOAD_WD")]
        want = ("LOAD_WD", e.dw_ii) if g.dw else ("LOAD_W", e.w_ii)
        assert (lp.label, lp.trip, lp.ii) == (want[0], g.Kh * g.Kw, want[1])
        if g.dw:
            assert f"PIPELINE II={e.dw_ii}" in engine and "buf[j][j][k] = beat.w[lane]" in engine
    assert not run_time_products(engine), run_time_products(engine)
    # every memory bound where the model counts it: block RAM, or LUTs for a small bank
    for m in e.buffers(res.analysis.precision):
        for var in ENGINE_ARRAYS[m.name]:
            if var == "fnas_engine_shift" and var not in engine:
                continue
            kind = f"rom_{m.ports}p" if m.rom else "ram_s2p"
            assert f"BIND_STORAGE variable={var} type={kind} impl={m.impl}\n" in engine, var
            assert f"RESOURCE variable={var} core={kind.upper()}_{m.impl.upper()}\n" in engine, var
    # every run-time loop carries a LOOP_TRIPCOUNT up to the largest trip the model gives it
    for label in ("STEP", "LOAD_IN", "LOAD_W", "COMPUTE", "STORE"):
        trips = [lp.trip for lc in convs for fn in lc.functions for lp in fn.loops if lp.label == label]
        if not trips:  # no layer takes it (STORE where every layer stores whole beats): not rendered
            assert f"\n{label}:" not in engine, label
            continue
        body = engine[engine.index(f"{label}:") :]
        pragma = body[body.index("LOOP_TRIPCOUNT") : body.index("\n", body.index("LOOP_TRIPCOUNT"))]
        assert body.index("LOOP_TRIPCOUNT") < body.index("\n  }") and pragma.endswith(f"max={max(trips)}")


#: The products the engine may hold: the MACs, and unrolled indices of compile-time constants.
_CONSTANT_PRODUCTS = ("b * WBEAT", "TM * TN", "2 * s", "s *= 2")


def run_time_products(source: str) -> list[str]:
    """Every multiply in C ``source`` (comments and pointer declarations aside) that is not a MAC
    (a product of ``fnas_prod_t`` operands) or of compile-time constants: one of the index products
    csynth would build with DSPs the model does not count."""
    out = []
    for line in source.splitlines():
        code = line.split("//")[0]
        if code.lstrip().startswith("#") or "fnas_prod_t" in code:
            continue
        code = re.sub(r"\b\w+_t\s*\*\s*\w+", "", code)  # a pointer parameter
        for c in _CONSTANT_PRODUCTS:
            code = code.replace(c, "")
        if "*" in code:
            out.append(line.strip())
    return out


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("board,beat", [("zcu102", 8), ("vc707", 32)])
def test_beat_loads_read_maps_at_any_offset_bit_exact(board, beat, tmp_path):
    """The engine's load ports read beats of ``beat`` words: with 9- and 11-word rows, padding and a
    map placed at any word of the fmap region, every window row starts at some offset within a beat
    (and a row may span three beats); the C simulation stays bit-exact."""
    from fnas_hls.backend.csim import run_csim
    from fnas_hls.backend.hls_writer import emit_project

    for case in ("k3_same_pool_s2_gap", "depthwise_avg_gap"):
        shape, layers, pins = SPREAD[case]
        net = net_of(layers, shape, name=case)
        rng = np.random.default_rng(3)
        calib = rng.standard_normal((24, *shape)).astype(np.float32)
        tests = rng.standard_normal((4, *shape)).astype(np.float32)
        p = tmp_path / case
        res = emit_project(
            net,
            load_board(board),
            p,
            "fixed16",
            calib,
            parse_tiling_specs(pins),
            test_inputs=tests,
            style="shared",
        )
        assert res.analysis.engine.beat_words == beat
        out = run_csim(p, opt="-O1")
        assert out.bit_exact and out.vectors == 4, out.verdict
        header = (p / "src" / "engine.h").read_text()
        assert f"const int WBEAT = {beat};" in header and f"LOG_WBEAT = {beat.bit_length() - 1};" in header


def test_run_time_products_are_found():
    assert run_time_products("    const int ih = r0 * d.SH + i - d.PT;") != []
    assert run_time_products("  x = (long)(g * d.N + ch) * d.H;") != []
    assert run_time_products("void f(const fnas_data_t *in, fnas_data_t *out) { // a * b\n") == []
    assert (
        run_time_products("        p[n] = (acc_t)((fnas_prod_t)in[n][x] * (fnas_prod_t)w[m][n][tap]);") == []
    )


def test_load_w_reads_two_beats_a_cycle_through_the_two_weight_ports():
    """ResNet-50's int8 engine on zcu102: 72 x 32 weights a tap are 144 beats of 16, read over two
    ports in 72 cycles; a depthwise tap's 32 diagonal weights, 2 beats, in one."""
    e = Engine(72, 32, 64, 9, 256, 1, 0, 16, dw=True)
    assert (e.w_beats, e.w_ii, e.dw_beats, e.dw_ii) == (144, 72, 2, 1)
    assert e.load_w_loop(ConvGeometry(1, 64, 64, 7, 7, 1, 1)) == ("LOAD_W", 72, rules.LOAD_DEPTH + 71)
    dw = ConvGeometry(1, 64, 1, 7, 7, 3, 3, dw=True)
    assert e.load_w_loop(dw) == ("LOAD_WD", 1, rules.LOAD_DEPTH + rules.BUFFER_READ_LATENCY)
    assert engine_ports() == LOAD_PORTS + STORE_PORTS + 2
    # a tap of one beat (4 x 4 int8 weights in a 16-word beat) has one weight port: a second would idle
    small = Engine(4, 4, 64, 9, 256, 1, 0, 16)
    assert (small.w_beats, small.w_ports, small.w_ii) == (1, 1, 1)
    assert engine_ports(w_ports=small.w_ports) == LOAD_PORTS + STORE_PORTS + 1
    assert list(weight_ports(np.array([4, 8]), np.array([4, 4]), 16)) == [1, 2]


def test_load_w_takes_as_long_as_one_beat_a_cycle():
    """A tap an iteration at II WB, its beats read in turn: the cycles of WB beats at II 1."""
    for taps, wb in ((1, 1), (9, 1), (9, 4), (25, 7), (1, 16)):
        assert rules.pipelined_loop(taps, wb, rules.LOAD_DEPTH + wb - 1) == rules.pipelined_loop(
            taps * wb, 1, rules.LOAD_DEPTH
        )


_LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


@pytest.mark.parametrize(
    "name", ["resnet50", "inception_v1", pytest.param("densenet121", marks=pytest.mark.slow)]
)
def test_model_zoo_graphs_too_big_for_an_element_a_layer_fit_on_the_shared_engine(name):
    net = _light(name)
    board = load_board("zcu102")
    a = analyze(net, board, "fixed16", style="auto")
    assert a.style == "shared" and a.fits
    seq = {s.style: s for s in a.styles}["sequential"]
    assert not seq.fits  # an element per layer does not fit: the reason for the style


def _light(name: str):
    path = _LIGHT / f"light_{name}.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is not in this onnx wheel")
    return load_onnx(path, allow_host_ops=True).network


def test_small_banks_cost_luts_and_a_design_over_on_them_names_them():
    """A bank of at most 1,024 bits is LUTRAM, not free: ResNet-50's 7x7 kernel on a 512 x 4 engine
    is 4,096 weight banks of 49 x 16 bits, six RAM64M (24 LUTs) each."""
    net = _light("resnet50")
    board = load_board("zcu102")
    a = analyze(net, board, "fixed16", style="shared", pins=parse_tiling_specs(["all:Tm=512,Tn=4"]))
    e = a.engine
    weights = next(m for m in e.buffers(a.precision) if m.name == "weight tiles")
    assert (weights.banks, weights.depth, weights.impl, weights.lut) == (4096, 49, "lutram", 4096 * 24)
    assert a.resources.lut >= weights.lut + e.macs * 40
    assert not a.fits and "in LUTs: engine weight tiles 98,304 LUT" in a.over_detail
    # the DSE's own engine fits, LUTs included
    assert analyze(net, board, "fixed16", style="shared").fits


@pytest.mark.parametrize(
    ("name", "board", "precision"),
    [
        ("alexnet", "vc707", "float32"),
        ("mobilenet_v2_0.35_96", "zcu104", "int8"),
        pytest.param("resnet50", "zcu102", "int8", marks=pytest.mark.slow),
    ],
)
def test_no_pinned_engine_around_the_dse_choice_beats_it_by_5_percent(name, board, precision):
    """Every fitting (Tm, Tn) of a sweep around the DSE's engine (each side times 1/2 .. 2), pinned
    and analyzed in full, is at most 5% faster than the DSE's choice."""
    from fnas_hls.network.benchmark_nets import mobilenet_v2_network

    if name == "alexnet":
        net = load_network_yaml(ALEXNET)
    elif name.startswith("mobilenet_v2"):
        net = mobilenet_v2_network(0.35, 96)
    else:
        net = _light(name)
    from bench.large_bench import pinned_sweep

    a, sweep = pinned_sweep(net, board, precision)
    assert a.fits
    fitting = [(tm, tn, p.latency_cycles) for tm, tn, p in sweep if p.fits]
    for tm, tn, cycles in fitting:
        assert cycles >= 0.95 * a.latency_cycles, (tm, tn, a.engine.Tm, a.engine.Tn)
    assert len(fitting) >= 5


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_weight_tiles_go_to_block_ram_as_a_word_a_tap_where_banks_in_luts_do_not_fit(tmp_path):
    """A 32 x 16 int8 engine on ultra96v2: the DSE's bound on the LUTs of its 2 x 512 weight banks
    (9 words each, in LUTs) leaves the board's LUTs short; as one 4,096-bit word a tap
    (ARRAY_RESHAPE) they take block RAM and no LUTs, and the design fits."""
    from dataclasses import replace

    from test_beat_stores import _stack

    from fnas_hls.backend.csim import run_csim
    from fnas_hls.backend.hls_writer import emit_project

    net = _stack()
    board = load_board("ultra96v2")
    pins = parse_tiling_specs(["all:Tm=32,Tn=16"])
    a = analyze(net, board, "int8", style="shared", pins=pins)
    e = a.engine
    assert e.w_words and a.fits
    weights = next(m for m in e.buffers(a.precision) if m.name == "weight tiles")
    assert (weights.banks, weights.width, weights.impl) == (2, 32 * 16 * 8, "bram") and weights.lut == 0
    mac = board.mac_cost(a.precision)
    assert (
        replace(e, w_words=False).resources(a.precision, mac).lut
        == e.resources(a.precision, mac).lut + 1024 * 8
    )
    rng = np.random.default_rng(4)
    calib = rng.standard_normal((8, 3, 13, 21)).astype(np.float32)
    tests = rng.standard_normal((2, 3, 13, 21)).astype(np.float32)
    emit_project(net, board, tmp_path / "p", "int8", calib, pins, test_inputs=tests, style="shared")
    engine = (tmp_path / "p" / "src" / "engine.cpp").read_text()
    assert "#pragma HLS ARRAY_RESHAPE variable=w_a complete dim=2" in engine
    assert "ARRAY_PARTITION variable=w_a" not in engine and re.search(
        r"BIND_STORAGE variable=w_a .*impl=bram", engine
    )
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_an_engine_whose_tap_is_one_beat_has_one_weight_port_and_simulates_bit_exact(tmp_path):
    from fnas_hls.backend.csim import run_csim
    from fnas_hls.backend.float_model import with_random_weights
    from fnas_hls.backend.hls_writer import emit_project
    from fnas_hls.network.ir import Conv, GlobalAvgPool, Network, Shape

    layers = (
        Conv("c1", out=2, kernel=(3, 3), padding=(1, 1, 1, 1), relu=True),
        Conv("c2", out=3, kernel=(1, 1)),
        GlobalAvgPool("g"),
    )
    from fnas_hls.model.tiling import parse_tiling_specs

    net = with_random_weights(Network(Shape(2, 6, 6), layers, "tiny"))
    calib = np.random.default_rng(3).standard_normal((8, 2, 6, 6)).astype(np.float32)
    pins = parse_tiling_specs(["all:Tm=3,Tn=2"])  # (the DSE would widen Tn to fold c1's rows)
    res = emit_project(net, load_board("zcu102"), tmp_path / "p", "int8", calib, pins, style="shared")
    e = res.analysis.engine
    assert (e.w_beats, e.w_ports) == (1, 1)  # 3 x 2 int8 weights a tap: one 16-word beat
    top = (tmp_path / "p" / "src" / f"{res.top}.cpp").read_text()
    assert "bundle=gmem_w2" not in top and "*weights2" not in top and "weights, weights, FNAS_DESC_" in top
    assert run_csim(tmp_path / "p", opt="-O1").bit_exact
