"""The shared engine's stores of whole beats: which maps are kept in rows of whole beats
(``model.shared.padded_maps``), what a store of beats costs in the model, the DSE's tiles for it,
the fmap region's layout, and the C simulation of a network that uses them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from readme_check import check_readme

from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.backend.project_context import feature_map_places
from fnas_hls.backend.shared_context import map_layout
from fnas_hls.boards import load_board
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.shared import padded_maps, stores_beats
from fnas_hls.model.shared_engine import Engine, engine_terms
from fnas_hls.model.shared_fabric import STORE_PORTS
from fnas_hls.network.ir import INPUT, Add, Conv, Dense, Flatten, GlobalAvgPool, Network, Pool, Shape
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze

P1 = (1, 1, 1, 1)


def _net(layers, shape=(4, 9, 9)) -> Network:
    return Network(Shape(*shape), tuple(layers), "t")


def test_a_map_is_padded_where_the_engine_alone_writes_and_reads_it():
    net = _net(
        [
            Conv("c1", out=8, kernel=(3, 3), padding=P1),  # read by c2 alone: padded
            Conv("c2", out=8, kernel=(3, 3), padding=P1),  # read by a pool on the word unit: not
            Pool("p", kind="max", kernel=(2, 9), stride=(2, 9)),  # a window row wider than a beat
            Conv("c3", out=8, kernel=(1, 1)),  # read by the fully connected layer as a vector: not
            Dense("fc", out=4),  # the network's output: never
        ]
    )
    infos = list(net.info)
    assert padded_maps(infos, 8) == {"c1"}
    assert stores_beats(infos, padded_maps(infos, 8)) == {"c1": True, "c2": False, "c3": False, "fc": False}
    assert padded_maps(infos, 1) == frozenset()  # a word a beat: nothing to pad
    # a Tc pinned off the beat keeps the layer's output plain; the whole row or a multiple does not
    assert padded_maps(infos, 8, {"c1": 5}) == frozenset()
    assert padded_maps(infos, 8, {"c1": 8}) == padded_maps(infos, 8, {"c1": "full"}) == {"c1"}
    assert padded_maps(infos, 8, {"c1": 9}) == {"c1"}  # the whole row (9 columns)
    flat = _net([Conv("c1", out=4, kernel=(3, 3)), Flatten("f"), Dense("fc", out=3)])
    assert padded_maps(list(flat.info), 8) == frozenset()
    # a pool the beat unit takes (its window row within a beat) reads padded rows IW words apart
    beat_pool = _net(
        [
            Conv("c1", out=8, kernel=(3, 3), padding=P1),
            Pool("p", kind="max", kernel=(2, 2), stride=(2, 2)),
            Conv("c2", out=4, kernel=(1, 1)),
            GlobalAvgPool("g"),
        ]
    )
    # c2: read by the GAP unit; p: the max pooling's, its input padded (it writes a beat of outputs, POOL_V)
    assert padded_maps(list(beat_pool.info), 8) == {"c1", "p", "c2"}


def test_an_add_the_store_computes_and_its_other_input_are_padded_both_or_neither():
    both = _net(
        [
            Conv("c0", out=4, kernel=(3, 3), padding=P1),
            Conv("c1", out=4, kernel=(3, 3), padding=P1),
            Add("a", inputs=("c1", "c0")),  # fused into c1's store, reads c0 beside it
            Conv("c2", out=4, kernel=(3, 3), padding=P1),
            GlobalAvgPool("g"),
        ]
    )
    assert padded_maps(list(both.info), 8) == {"c0", "a", "c2"}  # c2: read by the GAP unit, rows IW apart
    # the add's output read by the GAP unit: both still
    gap = _net(list(both.layers[:3]) + [GlobalAvgPool("g")])
    assert padded_maps(list(gap.info), 8) == {"c0", "a"}
    # read by a pooling unit that reads words: neither it nor its other input
    neither = _net(list(both.layers[:3]) + [Pool("p", kind="max", kernel=(2, 9), stride=(2, 9))])
    assert padded_maps(list(neither.info), 8) == frozenset()
    # an add with the network's input stays on the add unit, and its conv's map is the unit's to read
    unit = _net([Conv("c0", out=4, kernel=(3, 3), padding=P1), Add("a", inputs=(INPUT, "c0"))])
    assert padded_maps(list(unit.info), 8) == frozenset()


@pytest.mark.parametrize("precision", ["fixed16", "int8"])
def test_a_store_of_beats_writes_a_rows_chunks(precision):
    """11 output columns in tiles of 8 on 8-word beats: a tile row is one beat (two for Tc = 11),
    against 8 (11) words a port in STORE; its accumulators' rows are whole sub-bank rows."""
    prec = get_precision(precision)
    g = ConvGeometry(1, 6, 5, 7, 11, 3, 3)
    e = Engine(4, 5, 1, 1, 1, 1, 9, 8, beats_out=True)
    for tc, chunks in ((8, 1), (11, 2)):
        words = engine_terms(g, e, 7, tc, prec)
        beats = engine_terms(g, e, 7, tc, prec, beats=True)
        assert words.store_trip == cdiv(4, STORE_PORTS) * 7 * tc
        assert beats.store_trip == cdiv(4, STORE_PORTS) * 7 * chunks
        assert beats.store < words.store and beats.acc_words == 7 * chunks * 8
        assert beats.ddr_words - words.ddr_words == beats.tiles * STORE_PORTS * 7 * (chunks * 8 - tc) * 2
    assert e.acc_banks == 8 and Engine(4, 5, 1, 1, 1, 1, 9, 8).acc_banks == 1


def _stack() -> Network:
    return with_random_weights(
        _net(
            [
                Conv("c1", out=6, kernel=(3, 3), padding=P1, relu=True),
                Conv("c2", out=7, kernel=(3, 3), padding=P1, relu=True),
                Conv("c3", out=6, kernel=(3, 3), padding=P1),
                Add("a", inputs=("c3", "c1"), relu=True),
                Conv("c4", out=5, kernel=(1, 1), relu=True),
                GlobalAvgPool("g"),
            ],
            shape=(3, 13, 21),
        )
    )


def test_the_dse_tiles_a_store_of_beats_on_beat_columns_and_the_maps_on_beats():
    net = _stack()
    board = load_board("zcu102")  # 128-bit AXI: 16 int8 words a beat
    a = analyze(net, board, "int8", style="shared")
    assert a.padded_maps == {"c1", "c2", "a", "c4"} and a.engine.beats_out
    beats = stores_beats(list(net.info), a.padded_maps)
    for lc in a.layers:
        if lc.tiling is not None and beats[lc.name]:
            assert lc.tiling.Tc % 16 == 0 or lc.tiling.Tc == net[lc.name].out_shape.w, lc
            assert lc.functions[-1].name == "fnas_engine_store_b"
    sizes, align = map_layout(net, a)
    assert align == 16 and sizes["c1"] == 6 * 13 * 32  # rows of 21 words in two beats
    where, words = feature_map_places(net, a.fused_adds, sizes, align)
    spans = []
    for name in ("c1", "c2", "a"):
        start = int(where[name].partition(" + ")[2] or 0)
        assert start % 16 == 0
        spans.append((start, start + sizes[name], name))
    assert words >= max(end for _, end, _ in spans)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("board,precision", [("zcu102", "int8"), ("zcu102", "fixed16"), ("vc707", "float32")])
def test_stores_of_beats_csim_bit_exact(board, precision, tmp_path):
    """Padded maps written a beat a cycle (with a fused add reading its skip map as beats), read back
    by the next layers' loads, bit-exact to the reference model."""
    from fnas_hls.backend.csim import run_csim

    net = _stack()
    rng = np.random.default_rng(5)
    calib = rng.standard_normal((16, 3, 13, 21)).astype(np.float32)
    tests = rng.standard_normal((3, 3, 13, 21)).astype(np.float32)
    res = emit_project(
        net, load_board(board), tmp_path / "p", precision, calib, test_inputs=tests, style="shared"
    )
    assert res.analysis.padded_maps == {"c1", "c2", "a", "c4"}
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact and out.vectors == 3, out.verdict
    engine = (tmp_path / "p" / "src" / "engine.cpp").read_text()
    assert "STORE_B:" in engine and "skip[sk >> LOG_WBEAT]" in engine
    check_readme(
        tmp_path / "p"
    )  # the project's README names fnas_engine_store_b and STORE_B as the code has them
    assert "fnas_engine_store_b" in (tmp_path / "p" / "README.md").read_text()


def test_analyze_names_the_maps_stored_in_whole_beats(capsys):
    from pathlib import Path

    from fnas_hls.cli import main

    example = Path(__file__).resolve().parents[1] / "examples" / "mnist-cnn.yaml"
    assert main(["analyze", str(example), "--board", "zcu102", "--style", "shared"]) == 0
    out = capsys.readouterr().out
    assert (
        "4 maps kept in DDR in rows of whole 8-word beats, written a beat a port a cycle (STORE_B; pool1 by "
        "its max pooling, a beat of outputs a cycle (POOL_V)): conv1, conv2, conv3, pool1" in out
    )
    assert (
        main(["analyze", str(example), "--board", "zcu102", "--style", "shared", "--tiling", "conv1:Tc=5"])
        == 0
    )
    # conv1, pinned to a Tc off the beat, keeps the plain layout
    note = (
        "3 maps kept in DDR in rows of whole 8-word beats, written a beat a port a cycle (STORE_B; pool1 by "
    )
    assert (
        note + "its max pooling, a beat of outputs a cycle (POOL_V)): conv2, conv3, pool1"
        in capsys.readouterr().out
    )


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("key,board", [("resnet50", "zcu102"), ("mobilenet_v2", "zcu104")])
def test_the_dpu_tables_networks_simulate_bit_exact_on_their_engines(key, board, tmp_path):
    """The large-network bench's designs as `auto` picks them (int8: loads and stores of whole beats,
    fused adds reading their skip maps as beats, the weight tiles in block RAM where the DSE takes
    them), one input through the C simulation, bit-exact to the reference model (about 75 s for
    ResNet-50 here)."""
    from bench.large_bench import _network
    from fnas_hls.backend.csim import run_csim

    net = with_random_weights(_network(key))
    rng = np.random.default_rng(0)
    shape = net.input.as_list()
    calib = rng.standard_normal((4, *shape)).astype(np.float32)
    tests = rng.standard_normal((1, *shape)).astype(np.float32)
    res = emit_project(
        net, load_board(board), tmp_path / "p", "int8", calib, test_inputs=tests, style="shared"
    )
    assert res.analysis.padded_maps and res.analysis.engine.beats_out
    out = run_csim(tmp_path / "p", opt="-O2")
    assert out.bit_exact and out.vectors == 1, out.verdict
