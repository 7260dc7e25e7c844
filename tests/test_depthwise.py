"""Depthwise convolution with its own parallelism across channels: in the sequential style its
channels on the element's Tm lanes (one input channel per lane), in the dataflow style Pg groups
side by side, on the shared engine min(Tm, Tn) channels on its diagonal; counted by the models and
bit-exact in C simulation."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from dataflow_sim import force_columns
from test_shared_style import run_time_products

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.backend.shared_context import pack_depthwise
from fnas_hls.boards import load_board
from fnas_hls.model import dataflow_conv as dfc
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.model import hls_rules as rules
from fnas_hls.model.geometry import ConvGeometry
from fnas_hls.model.sequential import compute_depth, conv_terms
from fnas_hls.model.shared_depthwise import DW_COLS
from fnas_hls.model.shared_engine import Engine, engine_terms
from fnas_hls.model.shared_fabric import LOAD_PORTS, STORE_PORTS
from fnas_hls.model.shared_views import engine_geometry
from fnas_hls.network.arch import network_from_dict
from fnas_hls.precision import get_precision
from fnas_hls.resources import MacCost
from fnas_hls.styles import analyze, shared_lower_bound

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

ARCH = {
    "name": "dws",
    "input": [3, 16, 16],
    "layers": [
        {"type": "conv", "out": 16, "kernel": 3, "padding": 1, "act": "relu6"},
        {"type": "conv", "out": 16, "kernel": 3, "padding": 1, "groups": 16, "act": "relu6"},
        {"type": "conv", "out": 32, "kernel": 3, "stride": 2, "padding": 1, "groups": 16, "relu": True},
        {"type": "conv", "out": 8, "kernel": 1},
        {"type": "gap"},
        {"type": "fc", "out": 5},
    ],
}


@pytest.fixture
def net():
    return with_random_weights(network_from_dict(ARCH))


def test_the_element_geometry_of_a_depthwise_layer(net):
    infos = net.info
    assert ConvGeometry.element_of(infos[0]) == ConvGeometry.of(infos[0])  # a dense conv: as it is
    g = ConvGeometry.element_of(infos[2])  # 16 groups, 2 outputs each (multiplier 2), stride 2
    assert (g.groups, g.M, g.N, g.R, g.C, g.dw) == (1, 32, 1, 8, 8, True)
    assert g.macs == ConvGeometry.of(infos[2]).macs == 32 * 8 * 8 * 9


def test_depthwise_counts_by_hand():
    """16 channels 16x16, k3 same, Tm=8 lanes, Tr=Tc=8: four row/column tiles of two lane tiles."""
    g = ConvGeometry(1, 16, 1, 16, 16, 3, 3, dw=True)
    k = conv_terms(g, 8, 1, 8, 8, get_precision("fixed16"), MacCost(1, 2))
    assert k.tiles == 2 * 2 * 2 and k.n_in == 1
    assert k.load_in_trip == 8 * 10 * 10  # one input channel per lane, the 10x10 window tile
    assert k.load_w_trip == 8 * 9 and k.compute_trip == 9 * 8 * 8 and k.store_trip == 8 * 8 * 8
    assert k.dsp == 8  # one multiplier a lane: the lanes share no input word, so no int8 pairing
    assert k.load_in == rules.pipelined_loop(800, 1, rules.LOAD_DEPTH)


@pytest.mark.parametrize("board", ["pynq", "zcu104"])
def test_depthwise_is_faster_than_one_mac_a_cycle(net, board):
    a = analyze(net, load_board(board), "fixed16", style="sequential")
    dw = [lc for lc in a.layers if lc.name in ("conv2", "conv3")]
    for lc in dw:
        assert lc.tiling.Tm > 1 and lc.tiling.Tn == 1
        macs = next(li.macs for li in net.info if li.name == lc.name)
        assert lc.cycles < macs  # not one MAC a cycle any more


@needs_gxx
@pytest.mark.parametrize(
    ("precision", "board"), [("fixed16", "pynq"), ("float32", "pynq"), ("int8", "zcu104")]
)
def test_depthwise_bit_exact(net, precision, board, tmp_path):
    x = np.random.default_rng(1).random((12, 3, 16, 16)).astype(np.float32)
    res = emit_project(net, load_board(board), tmp_path / "p", precision, x, style="sequential")
    header = (tmp_path / "p" / "src" / "conv2.h").read_text()
    assert "const int MULT = 1, CIN = 16;" in header
    assert "const int MULT = 2, CIN = 16;" in (tmp_path / "p" / "src" / "conv3.h").read_text()
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict
    assert res.agreement.top1_agreement >= 0.9


def test_dataflow_group_lanes_counts_by_hand():
    """16 channels 16x16, k3 same, Pg=4 groups side by side, Pk=3: per output row 16 pixels x 4 group
    tiles x 3 kernel rows of MAC steps; twelve multipliers, none paired (no two share an input word)."""
    g = dfp.WindowGeometry(16, 1, 1, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1)
    s = dfc.conv_stage(g, 1, 1, get_precision("int8"), MacCost(1, 2), Pk=3, Pg=4)
    assert (s.GT, s.MT, s.NT) == (4, 1, 1)
    assert s.mac == 16 * 4 * 3 and s.out == 16 * 16
    assert s.dsp == 4 * 3
    one = dfc.conv_stage(g, 1, 1, get_precision("int8"), MacCost(1, 2), Pk=3)
    assert one.mac == 16 * 16 * 3 and one.dsp == 3  # a group at a time: Kw multipliers at most


@pytest.mark.parametrize("board", ["pynq", "zcu104"])
def test_dataflow_depthwise_takes_groups_side_by_side(net, board):
    a = analyze(net, load_board(board), "fixed16", style="dataflow")
    for lc in a.layers:
        if lc.name in ("conv2", "conv3"):
            assert lc.tiling.Pg > 1
            macs = next(li.macs for li in net.info if li.name == lc.name)
            assert lc.cycles < macs / 3  # more multipliers than a kernel row's


@needs_gxx
@pytest.mark.parametrize(
    ("precision", "board"), [("fixed16", "pynq"), ("float32", "pynq"), ("int8", "pynq"), ("int8", "zcu104")]
)
def test_dataflow_depthwise_bit_exact(net, precision, board, tmp_path, monkeypatch):
    """Pg lanes that do not divide the 16 groups (the last tile's lanes past G compute zeros; on
    the PYNQ), a channel multiplier of 2, and int8's paired lanes within a group (on zcu104, the
    multiplier's two outputs pinned side by side: Pm 2). At one word a cycle: wide streams want
    lanes that divide the channels (``test_dataflow_width`` C-simulates those)."""
    from fnas_hls.model import dataflow_width
    from fnas_hls.model.tiling import parse_tiling_specs

    monkeypatch.setattr(dataflow_width, "WIDTH_CAPS", (1,))
    force_columns(monkeypatch, 1)  # groups side by side, not output columns
    if board == "pynq":  # group lanes that do not divide the 16 groups, whatever the DSE would take
        _groups_not_dividing(monkeypatch)
    x = np.random.default_rng(1).random((12, 3, 16, 16)).astype(np.float32)
    pins = parse_tiling_specs(["conv3:Tm=2"] if board == "zcu104" else [])
    res = emit_project(net, load_board(board), tmp_path / "p", precision, x, pins, style="dataflow")
    pg = {lc.name: lc.tiling.Pg for lc in res.analysis.layers if lc.name in ("conv2", "conv3")}
    assert min(pg.values()) > 1
    if board == "pynq":
        assert any(16 % v for v in pg.values())
    else:
        assert next(lc.tiling.Pm for lc in res.analysis.layers if lc.name == "conv3") == 2
    header = (tmp_path / "p" / "src" / "conv3.h").read_text()
    assert f"const int PG = {pg['conv3']}," in header
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict


def _groups_not_dividing(monkeypatch) -> None:
    """Keep the DSE's designs of a grouped layer to those whose Pg does not divide its groups."""
    from dataclasses import fields

    from fnas_hls.dse import dataflow as dse_dataflow

    front = dse_dataflow.stage_front

    def kept(g, *args, **kwargs):
        f = front(g, *args, **kwargs)
        keep = (g.G == 1) | (g.G % f.pg != 0)
        return type(f)(*(getattr(f, x.name)[keep] for x in fields(f)))

    monkeypatch.setattr(dse_dataflow, "stage_front", kept)


def test_engine_geometry_of_a_depthwise_layer(net):
    infos = net.info
    g = engine_geometry(infos[1])  # 16 channels, multiplier 1: one group on the diagonal
    assert (g.groups, g.M, g.N, g.dw) == (1, 16, 1, True)
    assert engine_geometry(infos[2]) == ConvGeometry.of(infos[2])  # multiplier 2: its groups as they are
    assert engine_geometry(infos[0]) == ConvGeometry.of(infos[0])


def test_engine_depthwise_counts_by_hand():
    """16 channels 16x16, k3, on a 16x8 engine: tiles of min(16, 8) = 8 channels, Tr = Tc = 8: eight
    output tiles of one step each, every step loading its 8 channels' 10x10 windows."""
    g = ConvGeometry(1, 16, 1, 16, 16, 3, 3, dw=True)
    e = Engine(16, 8, 100, 9, 64, 2, 64, 4)
    k = engine_terms(g, e, 8, 8, get_precision("fixed16"))
    assert k.tiles == 2 * 2 * 2 and k.n_in == 1 and k.steps == 8
    # two channels at once in and out; a 10-word window row is 3 chunks of a 4-word beat, one beat more
    assert k.load_in_trip == 8 // LOAD_PORTS * 10 * (3 + 1) and k.store_trip == 8 // STORE_PORTS * 8 * 8
    assert k.compute_trip == 9 * 8 * 8
    groups = ConvGeometry(16, 1, 1, 16, 16, 3, 3)  # the same layer a group at a time: 16x the steps
    assert engine_terms(groups, e, 8, 8, get_precision("fixed16")).steps == 16 * 4


def test_pack_depthwise_puts_each_channel_on_its_lane():
    w = np.arange(1, 5 * 9 + 1, dtype=np.int64).reshape(5, 1, 3, 3)  # 5 channels, k3
    g = ConvGeometry(1, 5, 1, 4, 4, 3, 3, dw=True)
    beats = pack_depthwise(w, g, 4, 3, 2)  # P = 3: two tiles; a tap's 3 lanes in two beats of 2
    assert beats.shape == (2 * 9 * 2, 2)
    lanes = beats.reshape(2, 9, 4)  # (tile, tap, lane)
    for mt in range(2):
        for j in range(3):
            c = mt * 3 + j
            want = w[c].ravel() if c < 5 else np.zeros(9)
            np.testing.assert_array_equal(lanes[mt, :, j], want)
    assert not lanes[:, :, 3].any()  # past the last lane: zero


def test_engine_depthwise_loads_the_diagonal_alone():
    """LOAD_WD: a tap's min(Tm, Tn) = 8 weights in ceil(8/4) = 2 beats, one through each weight port
    (LOAD_W: ceil(16*8/4) = 32 beats, 16 cycles), one read more deep (the tap's word it writes in part)."""
    g = ConvGeometry(1, 16, 1, 16, 16, 3, 3, dw=True)
    e = Engine(16, 8, 100, 9, 64, 2, 64, 4, dw=True)
    assert (e.dw_lanes, e.dw_beats, e.w_beats) == (8, 2, 32)
    assert e.load_w_loop(g) == ("LOAD_WD", 1, rules.LOAD_DEPTH + rules.BUFFER_READ_LATENCY)
    dense = ConvGeometry(1, 16, 8, 16, 16, 3, 3)
    assert e.load_w_loop(dense) == ("LOAD_W", 16, rules.LOAD_DEPTH + 15)
    k = engine_terms(g, e, 8, 8, get_precision("fixed16"))
    assert k.load_w == rules.pipelined_loop(9, 1, rules.LOAD_DEPTH + rules.BUFFER_READ_LATENCY)
    # the weights a step reads from DDR: 9 taps of 2 beats of 4 words
    plain = engine_terms(g, Engine(16, 8, 100, 9, 64, 2, 64, 4), 8, 8, get_precision("fixed16"))
    assert plain.ddr_words == k.ddr_words  # the loop is the layer's, not the engine's flag
    assert k.ddr_words - k.tiles * (
        k.n_in * k.load_in_trip * LOAD_PORTS * 4 + k.store_trip * STORE_PORTS
    ) == (k.steps * 9 * 2 * 4)


@pytest.mark.parametrize("board", ["pynq", "zcu104"])
def test_engine_depthwise_beats_a_group_at_a_time(net, board):
    a = analyze(net, load_board(board), "fixed16", style="shared")
    conv2 = next(lc for lc in a.layers if lc.name == "conv2")
    assert conv2.cycles < next(li.macs for li in net.info if li.name == "conv2")  # not a MAC a cycle
    assert shared_lower_bound(net, load_board(board), get_precision("fixed16")) <= a.latency_cycles


@needs_gxx
@pytest.mark.parametrize(
    ("precision", "board"), [("fixed16", "pynq"), ("float32", "pynq"), ("int8", "zcu104")]
)
def test_engine_depthwise_bit_exact(net, precision, board, tmp_path):
    x = np.random.default_rng(1).random((12, 3, 16, 16)).astype(np.float32)
    emit_project(net, load_board(board), tmp_path / "p", precision, x, style="shared")
    descs = "".join(f.read_text() for f in (tmp_path / "p" / "src").glob("*.cpp"))
    assert "FNAS_DESC_conv2" in descs
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict


#: Depthwise layers of stride 2 and of a 5x5 kernel on maps whose widths are no multiple of the
#: depthwise unit's columns (the last column group of a row reaches past TC).
ARCH_DW_UNIT = {
    "name": "dwu",
    "input": [3, 13, 13],
    "layers": [
        {"type": "conv", "out": 12, "kernel": 3, "padding": 1, "relu": True},
        {"type": "conv", "out": 12, "kernel": 3, "stride": 2, "padding": 1, "groups": 12, "act": "relu6"},
        {"type": "conv", "out": 12, "kernel": 5, "padding": 2, "groups": 12},
        {"type": "conv", "out": 6, "kernel": 1},
        {"type": "gap"},
        {"type": "fc", "out": 4},
    ],
}


def _compute_loops(a) -> dict[str, str]:
    return {
        lc.name: lp.label
        for lc in a.layers
        for fn in lc.functions
        for lp in fn.loops
        if "COMPUTE" in lp.label
    }


def test_depthwise_unit_counts_by_hand():
    """12 channels 7x7, k5, on a 16x16 engine of 8-word beats with accumulators in sub-banks: the
    diagonal's 12 channels, 4 columns an iteration: 25 taps x 7 rows x ceil(7/4) = 2 groups."""
    g = ConvGeometry(1, 12, 1, 7, 7, 5, 5, dw=True)
    e = Engine(16, 16, 100, 25, 64, 2, 8, 8, beats_out=True, dw=True, dw_cols=4, dw_dist=14)
    assert e.acc_banks == 8 and e.on_dw_unit(g)
    k = engine_terms(g, e, 7, 7, get_precision("fixed16"))
    label, ii, depth = e.compute_loop(g, get_precision("fixed16"))
    assert label == "DW_COMPUTE" and k.compute_trip == 25 * 7 * 2
    assert depth == compute_depth(1, get_precision("fixed16")) + 2 * rules.SELECT_DEPTH
    assert ii == 1 and k.compute == rules.pipelined_loop(25 * 7 * 2, 1, depth)
    wide = ConvGeometry(1, 12, 1, 7, 7, 3, 3, 3, 3, dw=True)  # column stride 3: on COMPUTE's diagonal
    assert not e.on_dw_unit(wide) and e.compute_loop(wide, get_precision("fixed16"))[0] == "COMPUTE"


def test_depthwise_unit_is_counted_in_the_engine():
    """DW_COMPUTE's D x P MACs: fixed16 a DSP each, int8 two lanes of one weight a DSP48E2."""
    e = Engine(16, 12, 100, 9, 64, 2, 8, 8, beats_out=True, dw=True, dw_cols=4, dw_dist=14)
    plain = Engine(16, 12, 100, 9, 64, 2, 8, 8, beats_out=True, dw=True)
    fx, i8 = get_precision("fixed16"), get_precision("int8")
    assert e.dw_unit(fx, MacCost()).dsp == 12 * 4
    assert e.dw_unit(i8, MacCost(pack=2)).dsp == 12 * 2
    r, r0 = e.resources(fx, MacCost()), plain.resources(fx, MacCost())
    assert (r.dsp - r0.dsp, r.lut > r0.lut, r.ff > r0.ff) == (48, True, True)
    assert plain.dw_unit(fx, MacCost()).dsp == 0


@pytest.mark.parametrize("board", ["zcu102", "zcu104"])
def test_depthwise_unit_speeds_up_depthwise_layers(board):
    net = with_random_weights(network_from_dict(ARCH_DW_UNIT))
    a = analyze(net, load_board(board), "fixed16", style="shared")
    assert _compute_loops(a)["conv2"] == "DW_COMPUTE" and _compute_loops(a)["conv3"] == "DW_COMPUTE"
    assert shared_lower_bound(net, load_board(board), get_precision("fixed16")) <= a.latency_cycles


@needs_gxx
@pytest.mark.parametrize(
    ("precision", "board"),
    [("fixed16", "zcu102"), ("float32", "zcu102"), ("int8", "zcu104"), ("fixed16", "pynq")],
)
def test_depthwise_unit_bit_exact(precision, board, tmp_path):
    net = with_random_weights(network_from_dict(ARCH_DW_UNIT))
    a = analyze(net, load_board(board), precision, style="shared")
    assert "DW_COMPUTE" in _compute_loops(a).values()
    # DW_COLS columns where a beat is 16 words (int8 at 128 bits), half a beat where it is fewer
    assert a.engine.dw_cols == min(DW_COLS, a.engine.beat_words // 2), a.engine
    x = np.random.default_rng(2).random((6, 3, 13, 13)).astype(np.float32)
    emit_project(net, load_board(board), tmp_path / "p", precision, x, style="shared")
    engine = (tmp_path / "p" / "src" / "engine.cpp").read_text()
    assert "DW_COMPUTE:" in engine and not run_time_products(engine), run_time_products(engine)
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict
