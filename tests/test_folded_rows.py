"""Convolutions that fold their kernel rows onto their input channels on the shared engine
(``model.shared_views.folds_rows`` and ``engine_geometry``'s ``fold``): which layers may, the view's
geometry, what a step then costs, the descriptor's row shifts, the DSE's choice, and the C
simulation (odd and even folds, the second load port's channel crossing into the next input
channel)."""

from __future__ import annotations

import shutil

import pytest

from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.shared_context import descriptor_products
from fnas_hls.boards import load_board
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.shared_engine import engine_terms, make_engine
from fnas_hls.model.shared_fabric import LOAD_PORTS
from fnas_hls.model.shared_views import engine_geometry, folds_rows
from fnas_hls.network.ir import Conv, Dense, GlobalAvgPool, Network, Shape
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze

P1 = (1, 1, 1, 1)


def _net(stem: Conv, shape=(3, 13, 11)) -> Network:
    return with_random_weights(
        Network(
            Shape(*shape),
            (
                stem,
                Conv("c1", out=12, kernel=(3, 3), padding=P1, relu=True),
                Conv("c2", out=8, kernel=(3, 3), stride=(2, 2), padding=(0, 1, 1, 0), relu=True),
                GlobalAvgPool("g"),
                Dense("fc", out=5),
            ),
            "f",
        )
    )


STEM5 = Conv("stem", out=16, kernel=(5, 5), stride=(2, 2), padding=(2, 2, 2, 2), relu=True)


def test_a_convolution_of_one_group_with_kernel_rows_may_fold_them_in_integer_arithmetic():
    net = with_random_weights(
        Network(
            Shape(4, 8, 8),
            (
                Conv("k3", out=8, kernel=(3, 3), padding=P1),
                Conv("pw", out=8, kernel=(1, 1)),
                Conv("dw", out=8, kernel=(3, 3), padding=P1, groups=8),
                Conv("grp", out=8, kernel=(3, 3), padding=P1, groups=2),
                Conv("k13", out=8, kernel=(1, 3), padding=(0, 1, 0, 1)),
            ),
            "t",
        )
    )
    li = {x.name: x for x in net.info}
    assert [n for n in li if folds_rows(li[n], True)] == ["k3"]
    assert not folds_rows(li["k3"], False)  # float32: the engine's order of adds would change


def test_the_folded_view_is_a_1_by_kw_kernel_over_n_times_kh_channels():
    li = _net(STEM5).info[0]
    assert engine_geometry(li, fold=True) == ConvGeometry(1, 16, 15, 7, 6, 1, 5, 2, 2)
    pw = with_random_weights(Network(Shape(4, 5, 5), (Conv("pw", out=4, kernel=(1, 1)),), "t")).info[0]
    with pytest.raises(ValueError, match="'pw' cannot fold its kernel rows"):
        engine_geometry(pw, fold=True)


def test_a_folded_step_fills_the_lanes_and_runs_kw_taps_a_pixel():
    """ResNet-50's stem, 3 channels 7x7 stride 2 on Tn = 32, its output stored in whole beats: folded,
    21 channels load (2*Tr - 1 rows each, not 2*Tr + 5) and each pixel runs 7 taps, not 49."""
    prec = get_precision("int8")
    stem = Conv("stem", out=64, kernel=(7, 7), stride=(2, 2), padding=(3, 3, 3, 3))
    li = with_random_weights(Network(Shape(3, 224, 224), (stem,), "r")).info[0]
    g, f = engine_geometry(li), engine_geometry(li, fold=True)
    e = make_engine(72, 32, [(g, 4, 112), (f, 4, 112)], load_board("zcu102"), prec, beats=[True, True])
    k, kf = engine_terms(g, e, 4, 112, prec, beats=True), engine_terms(f, e, 4, 112, prec, beats=True)
    assert k.compute_trip == 49 * 4 * 112 and kf.compute_trip == 7 * 4 * 112
    chunks = cdiv(111 * 2 + 7, 16)
    assert k.load_in_trip == cdiv(3, LOAD_PORTS) * (3 * 2 + 7) * (chunks + 1)
    assert kf.load_in_trip == cdiv(21, LOAD_PORTS) * (3 * 2 + 1) * (chunks + 1)
    assert kf.cycles * 5 < k.cycles


def test_the_descriptor_gives_each_load_port_its_channels_row_shift():
    d = {
        "KH": 1, "KW": 5, "IHW": 13 * 11, "R": 7, "OC": 6, "ML": 16, "TR": 7, "TC": 6, "ST_BEATS": 0,
        "TILES": 1, "NT": 1, "NL": 15, "TRIN": 13, "KB1": 2, "DWTC": 6, "SH": 2, "TCINP": 16, "SW": 2,
        "MT": 1, "N": 15, "PT": 2, "IW": 11, "TN": 16, "MSTEP": 16, "M": 16, "TCB": 1, "FOLD": 5,
        "ALIGNED": 0,
        "DWU": 0, "CTR": 7, "CTC": 6, "CSKIP": 0, "CROW": 0,
    }  # fmt: skip
    p = descriptor_products(d, 1)
    assert (p["FOLD"], p["K2"], p["K_STEP"], p["CH2"]) == (5, 1, LOAD_PORTS, 11)
    assert p["IN_CHSTEP"] == LOAD_PORTS * 11 and p["FOLD_WRAP"] == 13 * 11 - 5 * 11
    plain = descriptor_products({**d, "FOLD": 1}, 1)
    assert (plain["K2"], plain["K_STEP"], plain["CH2"], plain["IN_CHSTEP"]) == (
        0,
        0,
        13 * 11,
        LOAD_PORTS * 143,
    )


def test_the_analysis_folds_a_stem_whose_channels_fit_a_tile_and_names_it():
    a = analyze(_net(STEM5), load_board("pynq"), "int8", style="shared")
    assert a.folded_layers == {"stem"}, a.folded_layers
    assert any("fold their kernel rows onto their input" in n and "stem" in n for n in a.notes)
    assert 3 * 5 <= a.engine.Tn  # its 15 channels one input-channel tile
    assert analyze(_net(STEM5), load_board("pynq"), "float32", style="shared").folded_layers == frozenset()


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize(
    "stem,board,precision",
    [
        (STEM5, "pynq", "int8"),  # FOLD 5: pairs cross into the next input channel
        (STEM5, "ultra96v2", "fixed16"),
        (Conv("stem", out=10, kernel=(2, 3), padding=(0, 1, 1, 1), relu=True), "zcu102", "int8"),  # FOLD 2
    ],
)
def test_folded_layers_csim_bit_exact(stem, board, precision, shared_csim):
    res, out = shared_csim(_net(stem), board, precision)
    assert "stem" in res.analysis.folded_layers, res.analysis.folded_layers
    assert out.bit_exact and out.vectors == 4, out.verdict


def test_the_dse_widens_tn_for_a_fold_and_the_bound_holds(shared_csim):
    """A 3-channel 7x7 stem before 8-channel layers: the widest layer has 8 input channels, the
    stem's fold 21; the DSE looks at engines up to Tn 24 and takes the fold, and the shared lower
    bound counts the fold too (a pinned engine cannot beat it). Several row tiles, C-simulated."""
    from fnas_hls.styles.shared import shared_lower_bound

    net = with_random_weights(
        Network(
            Shape(3, 24, 24),
            (
                Conv("stem", out=8, kernel=(7, 7), stride=(2, 2), padding=(3, 3, 3, 3), relu=True),
                Conv("c1", out=8, kernel=(3, 3), padding=P1, relu=True),
                GlobalAvgPool("g"),
                Dense("fc", out=4),
            ),
            "w",
        )
    )
    board = load_board("zcu102")
    a = analyze(net, board, "int8", style="shared")
    assert "stem" in a.folded_layers and a.engine.Tn >= 21, (a.engine, a.folded_layers)
    assert shared_lower_bound(net, board, get_precision("int8")) <= a.latency_cycles
    res, out = shared_csim(net, "zcu102", "int8", pins=("stem:Tr=2",))
    t = next(lc.tiling for lc in res.analysis.layers if lc.name == "stem")
    assert "stem" in res.analysis.folded_layers and t.Tr == 2  # six row tiles of the 12 rows
    assert out.bit_exact and out.vectors == 4, out.verdict
