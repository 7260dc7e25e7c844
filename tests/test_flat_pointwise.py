"""The views of a map the shared engine takes to load less (``model.shared_views.engine_geometry``):
pointwise layers run as one row of their maps' pixels (``model.shared.flat_layers``), and layers one
row high of row stride above 1 read only the rows they use (``skips_rows``): which layers, what
their loads cost, and the C simulation of networks that use them, padded maps and fused adds
included."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.shared import flat_layers, padded_maps
from fnas_hls.model.shared_engine import engine_terms, make_engine
from fnas_hls.model.shared_fabric import LOAD_PORTS
from fnas_hls.model.shared_views import engine_geometry, is_pointwise, skips_rows
from fnas_hls.network.ir import Add, Conv, Dense, GlobalAvgPool, Network, Pool, Shape
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze

P1 = (1, 1, 1, 1)


def _net(layers, shape=(4, 9, 9)) -> Network:
    return with_random_weights(Network(Shape(*shape), tuple(layers), "t"))


def _infos(net: Network) -> dict:
    return {li.name: li for li in net.info}


def test_only_a_1x1_conv_of_stride_1_without_padding_over_rows_is_pointwise():
    net = _net(
        [
            Conv("pw", out=6, kernel=(1, 1)),
            Conv("s2", out=6, kernel=(1, 1), stride=(2, 2)),
            Conv("pad", out=6, kernel=(1, 1), padding=P1),
            Conv("k3", out=6, kernel=(3, 3), padding=P1),
            Conv("dw", out=6, kernel=(1, 1), groups=6),
            Conv("grp", out=6, kernel=(1, 1), groups=2),
            GlobalAvgPool("g"),
            Dense("fc", out=3),
        ]
    )
    li = _infos(net)
    assert [n for n in li if n in ("pw", "s2", "pad", "k3", "dw", "grp", "fc") and is_pointwise(li[n])] == [
        "pw",
        "grp",
    ]
    g = engine_geometry(li["pw"], 9)
    assert (g.groups, g.M, g.N, g.R, g.C, g.Kh, g.Kw) == (1, 6, 4, 1, 81, 1, 1)
    # the rows' pad words: 9 columns in rows of 16 words are 9 rows of 16 pixels, pad words included
    assert engine_geometry(li["pw"], 16).C == 144
    assert engine_geometry(li["grp"], 7) == ConvGeometry(2, 3, 3, 1, 49, 1, 1)  # a 7x7 map
    assert engine_geometry(li["pw"]) == ConvGeometry.of(li["pw"])
    with pytest.raises(ValueError, match="'k3' cannot run as one row"):
        engine_geometry(li["k3"], 9)
    with pytest.raises(ValueError, match="'pw' cannot run as one row of 8-word rows"):
        engine_geometry(li["pw"], 8)  # fewer words a row than the map's columns


def test_a_pointwise_layer_runs_as_one_row_where_its_maps_are_padded_alike():
    net = _net(
        [
            Conv("c1", out=8, kernel=(3, 3), padding=P1),  # padded: read by pw1 alone
            Conv("pw1", out=8, kernel=(1, 1)),  # padded in and out: one row, pad words included
            Conv("pw2", out=8, kernel=(1, 1)),  # padded in, out read by the beat pooling unit: padded too
            Pool("p", kind="avg", kernel=(3, 3), stride=(3, 3)),  # (an average writes words: its map plain)
            Conv("pw3", out=8, kernel=(1, 1)),  # plain in (a pool's output), padded out (the GAP's): rows
            GlobalAvgPool("g"),
        ]
    )
    infos = list(net.info)
    padded = padded_maps(infos, 16)
    assert padded == {"c1", "pw1", "pw2", "pw3"}
    assert flat_layers(infos, padded, 16) == {"pw1": 16, "pw2": 16}
    assert flat_layers(infos, frozenset(), 16) == {"pw1": 9, "pw2": 9, "pw3": 3}
    assert flat_layers(infos, padded, 16, keep_rows={"pw1"}) == {"pw2": 16}
    # a pool the beat unit cannot take (a window row wider than a beat) reads plain maps alone
    wide = padded_maps(infos, 2)
    assert (
        "pw2" not in wide
        and flat_layers(infos, wide, 2)["pw1"] == 10
        and "pw2" not in flat_layers(infos, wide, 2)
    )


def test_a_residual_store_reads_its_other_input_as_its_own_output_is_laid_out():
    net = _net(
        [
            Conv("c0", out=8, kernel=(3, 3), padding=P1),
            Conv("pw", out=8, kernel=(1, 1)),
            Add("a", inputs=("pw", "c0")),  # fused into pw's store; c0 and a padded both or neither
            Conv("c2", out=8, kernel=(3, 3), padding=P1),
            GlobalAvgPool("g"),
        ]
    )
    infos = list(net.info)
    padded = padded_maps(infos, 8)
    assert padded == {"c0", "a", "c2"}  # c2 read by the GAP unit, rows IW words apart
    assert flat_layers(infos, padded, 8) == {"pw": 16}  # its input c0 and its map a, both padded


def test_a_row_of_pixels_loads_fewer_beats_than_rows_of_few_columns():
    """A 7x7 map in 16-word beats: by rows a window row is its one chunk and the beat read first
    (2 beats for 7 words); as one row, ceil(49/16) chunks and one beat more."""
    prec = get_precision("int8")
    net = _net([Conv("pw", out=64, kernel=(1, 1)), GlobalAvgPool("g")], shape=(64, 7, 7))
    li = _infos(net)["pw"]
    rows, flat = engine_geometry(li), engine_geometry(li, 7)
    e = make_engine(32, 32, [(rows, 7, 7), (flat, 1, 49)], load_board("zcu102"), prec)
    assert e.beat_words == 16
    k_rows = engine_terms(rows, e, 7, 7, prec)
    k_flat = engine_terms(flat, e, 1, 49, prec)
    assert k_rows.load_in_trip == cdiv(32, LOAD_PORTS) * 7 * (1 + 1) == 224
    assert k_flat.load_in_trip == cdiv(32, LOAD_PORTS) * 1 * (cdiv(49, 16) + 1) == 80
    assert k_flat.compute_trip == k_rows.compute_trip == 49  # the same MACs
    assert k_flat.cycles < k_rows.cycles


def test_the_analysis_names_the_layers_it_runs_as_one_row():
    net = _net(
        [
            Conv("c1", out=16, kernel=(3, 3), padding=P1),
            Conv("pw", out=32, kernel=(1, 1)),
            Conv("c2", out=16, kernel=(3, 3), padding=P1),
            GlobalAvgPool("g"),
        ],
        shape=(8, 14, 14),
    )
    a = analyze(net, load_board("zcu102"), "int8", style="shared")
    assert set(a.flat_layers) == {"pw"}
    t = next(lc.tiling for lc in a.layers if lc.name == "pw")
    assert t.Tr == 1 and t.Tc <= 14 * a.flat_layers["pw"]
    assert any("run as one row of their maps' pixels" in n and "pw" in n for n in a.notes)


def _mixed() -> Network:
    """Pointwise layers of every kind: plain maps, padded maps (pad words computed), a fused add,
    and a 3x3 that reads a map a pointwise layer wrote."""
    return _net(
        [
            Conv("pw0", out=12, kernel=(1, 1), relu=True),  # reads the network's input: plain
            Conv("c1", out=10, kernel=(3, 3), padding=P1, relu=True),
            Conv("pw1", out=12, kernel=(1, 1), relu=True),
            Conv("pw2", out=12, kernel=(1, 1)),
            Add("a", inputs=("pw2", "pw1"), relu=True),  # fused into pw2's store
            Conv("c3", out=8, kernel=(3, 3), padding=P1, relu=True),
            Pool("p", kind="avg", kernel=(2, 2), stride=(2, 2)),  # (an average writes words: its map plain)
            Conv("pw4", out=6, kernel=(1, 1), relu=True),  # reads a pool's output: plain
            GlobalAvgPool("g"),
            Dense("fc", out=5),
        ],
        shape=(5, 11, 13),
    )


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("board,precision", [("zcu102", "int8"), ("zcu102", "fixed16"), ("vc707", "float32")])
def test_pointwise_layers_as_one_row_csim_bit_exact(board, precision, tmp_path):
    from fnas_hls.backend.csim import run_csim

    net = _mixed()
    rng = np.random.default_rng(7)
    calib = rng.standard_normal((16, 5, 11, 13)).astype(np.float32)
    tests = rng.standard_normal((4, 5, 11, 13)).astype(np.float32)
    res = emit_project(
        net, load_board(board), tmp_path / "p", precision, calib, test_inputs=tests, style="shared"
    )
    a = res.analysis
    # pw0 reads the network's input (plain) and writes c1's input (padded), pw4 reads a pool's output
    # (plain) and writes the GAP's input (padded): in rows; pw1 and pw2 padded in and out: one row, the
    # rows' pad words computed too
    beat = a.engine.beat_words
    assert a.padded_maps >= {"c1", "pw1", "a", "pw4"}, a.padded_maps
    assert a.flat_layers == {"pw1": -(-13 // beat) * beat, "pw2": -(-13 // beat) * beat}, a.flat_layers
    # the GAP and the beat pooling unit read padded maps' rows IW words apart: pw4's 6 columns and c3's
    # 13 in whole beats
    assert "c3" in a.padded_maps, a.padded_maps
    row_strides = sorted(
        line
        for h in (tmp_path / "p" / "src").glob("*.h")
        for line in h.read_text().splitlines()
        if "int IW =" in line
    )
    assert [line.split("=")[1].split(";")[0].strip() for line in row_strides] == sorted(
        [str(-(-6 // beat) * beat), str(-(-13 // beat) * beat)]
    ), row_strides
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact and out.vectors == 4, out.verdict


def test_a_layer_one_row_high_of_stride_2_reads_only_the_rows_it_uses():
    net = _net(
        [
            Conv("ds", out=8, kernel=(1, 1), stride=(2, 2)),  # 13 rows: reads rows 0, 2, .. 12
            Conv("k3", out=8, kernel=(3, 3), stride=(2, 2), padding=P1),  # a window of 3 rows: no
            Conv("pad", out=8, kernel=(1, 1), stride=(2, 2), padding=P1),  # top padding: no
            GlobalAvgPool("g"),
        ],
        shape=(4, 13, 13),
    )
    li = _infos(net)
    assert [n for n in ("ds", "k3", "pad") if skips_rows(li[n])] == ["ds"]
    g = engine_geometry(li["ds"])
    assert (g.R, g.C, g.Kh, g.Kw, g.Sh, g.Sw) == (7, 7, 1, 1, 1, 2)
    prec = get_precision("int8")
    e = make_engine(8, 4, [(g, 7, 7)], load_board("zcu102"), prec)
    k = engine_terms(g, e, 7, 7, prec)
    assert k.load_in_trip == cdiv(4, LOAD_PORTS) * 7 * (1 + 1)  # 7 rows of 13 words, not 13 rows


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("board,precision", [("zcu102", "int8"), ("vc707", "float32")])
def test_layers_that_skip_rows_csim_bit_exact(board, precision, tmp_path):
    """ResNet's downsampling: a 1x1 stride-2 conv beside a 3x3 stride-2 one, their add fused, over a
    map of odd rows (padded to whole beats where the engine alone reads it)."""
    from fnas_hls.backend.csim import run_csim

    net = _net(
        [
            Conv("c0", out=8, kernel=(3, 3), padding=P1, relu=True),
            Conv("ds", out=12, kernel=(1, 1), stride=(2, 2), inputs=("c0",)),
            Conv("c1", out=12, kernel=(3, 3), stride=(2, 2), padding=P1, inputs=("c0",)),
            Add("a", inputs=("c1", "ds"), relu=True),
            Conv("c2", out=6, kernel=(1, 1), stride=(2, 2), relu=True),
            GlobalAvgPool("g"),
        ],
        shape=(3, 13, 11),
    )
    rng = np.random.default_rng(9)
    calib = rng.standard_normal((16, 3, 13, 11)).astype(np.float32)
    tests = rng.standard_normal((3, 3, 13, 11)).astype(np.float32)
    res = emit_project(
        net, load_board(board), tmp_path / "p", precision, calib, test_inputs=tests, style="shared"
    )
    assert res.analysis.padded_maps or precision == "float32", res.analysis.padded_maps
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact and out.vectors == 3, out.verdict


def test_rows_that_begin_at_beats_load_their_chunks_alone():
    """A layer without left padding whose input rows are whole beats (a padded map, or W a multiple
    of B), or one run as one row whose channels are: every window row begins at a beat where a
    column tile does, and LOAD_IN reads its chunks, not the beat before as well."""
    from fnas_hls.model.shared import aligned_layers

    net = _net(
        [
            Conv("c1", out=8, kernel=(3, 3), padding=P1),  # left padding: rows begin a word before a beat
            Conv("pw1", out=8, kernel=(1, 1)),  # its input padded (rows of 16 words)
            Pool("p", kind="avg", kernel=(3, 3), stride=(3, 3)),  # a plain 3x3 map: 3-word rows
            Conv("pw2", out=8, kernel=(1, 1)),
            GlobalAvgPool("g"),
        ]
    )
    infos = list(net.info)
    padded = padded_maps(infos, 16)
    assert "c1" in padded and "p" not in padded
    assert aligned_layers(infos, padded, flat_layers(infos, padded, 16), 16) == {"pw1"}
    wide = _net([Conv("pw", out=8, kernel=(1, 1)), GlobalAvgPool("g")], shape=(4, 3, 16))
    assert aligned_layers(list(wide.info), frozenset(), {}, 16) == {"pw"}  # W = 16: whole beats, plain
    prec = get_precision("int8")
    li = _infos(_net([Conv("pw", out=64, kernel=(1, 1)), GlobalAvgPool("g")], shape=(64, 7, 7)))["pw"]
    g = engine_geometry(li, 16)  # 7 rows of 16 words: one row of 112 pixels
    e = make_engine(32, 32, [(g, 1, 112)], load_board("zcu102"), prec)
    at, off = engine_terms(g, e, 1, 112, prec, aligned=True), engine_terms(g, e, 1, 112, prec)
    assert at.load_in_trip == 16 * 7 and off.load_in_trip == 16 * 8
    # tiles of 56 pixels: the second begins mid-beat, so every row reads the beat before too
    assert engine_terms(g, e, 1, 56, prec, aligned=True).load_in_trip == 16 * (4 + 1)
    assert at.cycles < off.cycles


def test_rows_at_beats_in_several_column_and_row_tiles_bit_exact(shared_csim):
    """A 3x3 convolution without left padding on a map of 40-word rows kept in 48-word beats rows
    (zcu102, int8: 16-word beats), pinned to column tiles of 16 and row tiles of 4: every window row
    begins at a beat, and LOAD_IN reads its chunks alone."""
    from fnas_hls.model.shared import aligned_layers

    net = _net(
        [
            Conv("c1", out=8, kernel=(3, 3), padding=P1, relu=True),
            Conv("c2", out=8, kernel=(3, 3), padding=(1, 0, 1, 0), relu=True),  # no left padding
            GlobalAvgPool("g"),
            Dense("fc", out=3),
        ],
        shape=(3, 12, 40),
    )
    res, out = shared_csim(net, "zcu102", "int8", pins=("c2:Tr=4,Tc=16",))
    a = res.analysis
    assert "c1" in a.padded_maps and "c2" in aligned_layers(list(net.info), a.padded_maps, a.flat_layers, 16)
    t = next(lc.tiling for lc in a.layers if lc.name == "c2")
    assert (t.Tr, t.Tc) == (4, 16)
    assert out.bit_exact and out.vectors == 4, out.verdict


# --- the pad words of a padded map's rows, skipped ------------------------------------------------


def test_compute_skips_the_pad_words_of_tiles_of_whole_rows():
    """A pointwise layer run as one row over 7-pixel rows of 16 words: a tile of whole rows computes
    its pixels alone (7 a row), any other tile every word; a stacked view (Q taps) skips them only
    where its pixels keep the accumulate's distance."""
    from fnas_hls.model.shared_views import compute_view, skips_pads, tile_pixels

    net = _net([Conv("pw", out=8, kernel=(1, 1))], (12, 7, 7))
    li = net.info[0]
    g = engine_geometry(li, 16)
    assert (g.C, g.row_words, g.row_pixels) == (112, 16, 7)
    assert compute_view(g, 1, 112) == (7, 7) and compute_view(g, 1, 32) == (2, 7)
    assert compute_view(g, 1, 40) == (1, 40)  # not whole rows: every word
    assert list(tile_pixels(g, 1, np.array([16, 40, 48, 112]))) == [7, 40, 21, 49]
    stacked = engine_geometry(li, 16, 4)
    assert skips_pads(stacked, 112, 40) and not skips_pads(stacked, 16, 8)  # 7 pixels < 8
    assert tile_pixels(stacked, 1, 16, 8) == 16
    assert engine_geometry(li, 7).row_words == 0  # rows not padded: nothing to skip
    # COMPUTE's trip in the model: a tap's pixels
    prec = get_precision("int8")
    e = make_engine(32, 16, [(g, 1, 112)], load_board("zcu102"), prec)
    assert engine_terms(g, e, 1, 112, prec).compute_trip == 49
    assert engine_terms(g, e, 1, 40, prec).compute_trip == 40


def _seven_by_seven() -> Network:
    """MobileNetV2's last stage in small: pointwise layers on 7x7 maps padded to 16-word rows (zcu102,
    int8), one with a fused residual add, between 3x3 convolutions that read and write them."""
    return _net(
        [
            Conv("c1", out=16, kernel=(3, 3), padding=P1, relu=True),
            Conv("pw1", out=24, kernel=(1, 1), relu=True),
            Conv("pw2", out=16, kernel=(1, 1)),
            Add("a", inputs=("pw2", "c1"), relu=True),  # fused into pw2's store
            Conv("c3", out=8, kernel=(3, 3), padding=P1, relu=True),
            GlobalAvgPool("g"),
            Dense("fc", out=5),
        ],
        shape=(8, 7, 7),
    )


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("rows", [7, 2])
def test_skipped_pad_words_csim_bit_exact(shared_csim, monkeypatch, rows):
    """The pointwise layers of ``_seven_by_seven`` in tiles of all 7 rows and, with the DSE's tiles
    held to 2 rows (4 tiles, the last past the map), of 2: COMPUTE iterates their pixels alone, and
    the C simulation is bit-exact (the pad words' accumulators are never read)."""
    from fnas_hls.dse import shared_tiles as dse

    grid = dse.tiling_grid

    def held(g, pin, required, tc_step=1, cols=1, dependence=0):
        tr, tc = grid(g, pin, required, tc_step, cols, dependence)
        keep = tc == rows * g.row_words if g.row_words else np.ones(len(tc), dtype=bool)
        return tr[keep], tc[keep]

    dse.layer_table.cache_clear()
    monkeypatch.setattr(dse, "tiling_grid", held)
    try:
        res, out = shared_csim(_seven_by_seven(), "zcu102", "int8")
    finally:
        dse.layer_table.cache_clear()
    a = res.analysis
    assert a.flat_layers == {"pw1": 16, "pw2": 16}, a.flat_layers
    for name in ("pw1", "pw2"):
        lc = next(lc for lc in a.layers if lc.name == name)
        assert lc.tiling.Tc == rows * 16
        taps = a.stacked_layers.get(name, 1)
        trips = [lp.trip for fn in lc.functions for lp in fn.loops if lp.label == "COMPUTE"]
        assert trips and set(trips) == {taps * rows * 7}, trips
    engine_h = next(res.project_dir.rglob("engine.h")).read_text()
    assert "int CTR, CTC, CSKIP;" in engine_h
    assert out.bit_exact and out.vectors == 4, out.verdict
