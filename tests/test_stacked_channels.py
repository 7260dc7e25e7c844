"""Pointwise layers that stack their input channels as kernel rows on the shared engine
(``model.shared_views.stack_options`` and ``engine_geometry``'s ``stack``): which layers may, the
view's geometry and weights, what a step then costs, the DSE's choice, and the C simulation."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.shared_context import stacked_weights
from fnas_hls.boards import load_board
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.shared_engine import engine_terms, make_engine
from fnas_hls.model.shared_fabric import LOAD_PORTS
from fnas_hls.model.shared_views import engine_geometry, pads_columns, stack_options, stacks_a_vector
from fnas_hls.network.ir import Add, Conv, Dense, GlobalAvgPool, Network, Pool, Shape
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze

P1 = (1, 1, 1, 1)


def _net(layers, shape) -> Network:
    return with_random_weights(Network(Shape(*shape), tuple(layers), "t"))


def _stacked() -> Network:
    """Pointwise layers of 40 to 48 input channels on plain and padded maps, a fused add among them."""
    return _net(
        [
            Conv("c0", out=48, kernel=(3, 3), padding=P1, relu=True),
            Conv("pw1", out=40, kernel=(1, 1), relu=True),
            Conv("pw2", out=48, kernel=(1, 1)),
            Add("a", inputs=("pw2", "c0"), relu=True),  # fused into pw2's store
            Conv("pw3", out=24, kernel=(1, 1), relu=True),
            Pool("p", kind="avg", kernel=(2, 2), stride=(2, 2)),  # (an average writes words: its map plain)
            Conv("pw4", out=36, kernel=(1, 1), relu=True),  # reads the pool's plain output
            GlobalAvgPool("g"),
            Dense("fc", out=5),
        ],
        (6, 9, 11),
    )


def test_a_pointwise_layer_of_one_group_stacks_by_the_divisors_of_its_channels_within_the_kernel_depth():
    net = _net(
        [
            Conv("pw", out=8, kernel=(1, 1)),
            Conv("k3", out=12, kernel=(3, 3), padding=P1),
            Conv("grp", out=12, kernel=(1, 1), groups=2),
        ],
        (12, 5, 5),
    )
    li = {x.name: x for x in net.info}
    assert stack_options(li["pw"], 9, True) == (2, 3, 4, 6)  # 12 channels, at most 9 taps deep
    assert stack_options(li["pw"], 4, True) == (2, 3, 4)
    assert stack_options(li["pw"], 1, True) == ()  # a network of 1x1 kernels alone: weight tiles one tap deep
    assert stack_options(li["pw"], 9, False) == ()  # float32: the engine's order of adds would change
    assert stack_options(li["k3"], 9, True) == () and stack_options(li["grp"], 9, True) == ()


def test_the_stacked_view_is_a_q_by_1_kernel_over_q_rows_of_n_over_q_channels():
    net = _net([Conv("pw", out=8, kernel=(1, 1))], (12, 5, 7))
    li = net.info[0]
    # 7-pixel rows padded to 16 words: the view keeps the rows' words and pixels (COMPUTE skips the pads)
    assert engine_geometry(li, 16, 4) == ConvGeometry(1, 8, 3, 1, 5 * 16, 4, 1, 1, 1, "", False, 16, 7)
    assert engine_geometry(li, 7, 4) == ConvGeometry(1, 8, 3, 1, 5 * 7, 4, 1, 1, 1)  # rows not padded
    with pytest.raises(ValueError, match="'pw' cannot stack its 12 input channels as 5 rows"):
        engine_geometry(li, 16, 5)
    with pytest.raises(ValueError, match="'pw' stacks its input channels only as one row"):
        engine_geometry(li, 0, 4)


def test_stacked_weights_put_input_channel_i_n_over_q_plus_v_at_channel_v_tap_i():
    rng = np.random.default_rng(0)
    w = rng.integers(-99, 99, size=(5, 12, 1, 1))
    s = stacked_weights(w, 4)
    assert s.shape == (5, 3, 4, 1)
    for m in range(5):
        for v in range(3):
            for i in range(4):
                assert s[m, v, i, 0] == w[m, i * 3 + v, 0, 0]
    assert stacked_weights(w, 1) is w


def test_a_step_of_a_stacked_layer_computes_q_channel_tiles_and_pays_the_loads_latency_once():
    """N = 256 on Tn = 32 in 16-word beats, 112 pixels a step, four output tiles: eight steps of one
    channel tile each a tile, or one step of a stack of 8 (32 channels a row): the same loads and MACs,
    a step's latency paid once a tile (the first step's loads, the prologue, are not hidden either way)."""
    prec = get_precision("int8")
    net = _net([Conv("pw", out=256, kernel=(1, 1)), GlobalAvgPool("g")], (256, 7, 16))
    li = net.info[0]
    rows, stacked = engine_geometry(li, 16), engine_geometry(li, 16, 8)
    e = make_engine(64, 32, [(rows, 1, 112), (stacked, 1, 112)], load_board("zcu102"), prec)
    k1, k8 = engine_terms(rows, e, 1, 112, prec), engine_terms(stacked, e, 1, 112, prec)
    assert (k1.steps, k8.steps) == (32, 4)
    assert k1.load_in_trip == cdiv(32, LOAD_PORTS) * (7 + 1) and k8.load_in_trip == 8 * k1.load_in_trip
    assert k8.compute_trip == 8 * k1.compute_trip and k8.compute_cycles <= k1.compute_cycles
    assert k8.cycles < k1.cycles


def test_the_analysis_stacks_where_it_pays_and_names_the_layers():
    net = _stacked()
    a = analyze(net, load_board("pynq"), "int8", style="shared")
    vectors = {li.name for li in net.info if stacks_a_vector(li)}
    assert a.stacked_layers and set(a.stacked_layers) <= set(a.flat_layers) | vectors, a.stacked_layers
    assert any("stack their input channels as kernel rows" in n for n in a.notes)
    for name, q in a.stacked_layers.items():
        n = net[name].in_shape.c
        assert n % q == 0 and 1 < q <= a.engine.k_words
    assert analyze(_stacked(), load_board("pynq"), "float32", style="shared").stacked_layers == {}


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("board,precision", [("pynq", "int8"), ("ultra96v2", "fixed16")])
def test_stacked_pointwise_layers_csim_bit_exact(board, precision, shared_csim):
    from fnas_hls.model.shared import aligned_layers

    res, out = shared_csim(_stacked(), board, precision)
    a = res.analysis
    assert len(a.stacked_layers) >= 3, a.stacked_layers
    # on pynq their maps are padded, so their rows begin at beats: LOAD_IN reads each row's chunks alone
    aligned = aligned_layers(list(_stacked().info), a.padded_maps, a.flat_layers, a.engine.beat_words)
    assert bool(set(a.stacked_layers) & aligned) == bool(a.padded_maps), (aligned, a.padded_maps)
    assert out.bit_exact and out.vectors == 4, out.verdict


def test_a_row_shorter_than_the_accumulate_distance_is_not_stacked():
    """Two pointwise layers on plain 2x1 maps (after a 4x4 pool): a stack's Q taps would revisit each
    accumulator every 2 iterations, below the dependence latency, and lower the distance the engine
    declares for its 3x3 layer too; the DSE offers them no stack. On rows of whole beats (8 words a
    row on pynq in int8) their one row is 16 pixels, and stacks are offered."""
    from fnas_hls.dse.shared_tiles import EngineSearch

    net = _net(
        [
            Conv("c0", out=48, kernel=(3, 3), padding=P1, relu=True),
            Pool("p", kind="avg", kernel=(4, 4), stride=(4, 4)),  # (its map plain)
            Conv("pw1", out=48, kernel=(1, 1), relu=True),
            Conv("pw2", out=48, kernel=(1, 1), relu=True),
            GlobalAvgPool("g"),
        ],
        (6, 8, 4),
    )
    board, prec = load_board("pynq"), get_precision("int8")
    plain = EngineSearch(net, board, prec, {}, frozenset())
    assert plain.flat == {"pw1": 1, "pw2": 1} and plain.compute_required > 2
    assert [v[0] for v in plain.views["pw1"]] == [1] and [v[0] for v in plain.views["pw2"]] == [1]
    padded = EngineSearch(net, board, prec, {})
    assert padded.flat == {"pw2": 8} and len(padded.views["pw2"]) > 1
    a = analyze(net, board, "int8", style="shared")
    assert a.engine.min_trtc >= plain.compute_required


# --- a fully connected head on one pixel ----------------------------------------------------------


def _head(n: int = 96, m: int = 40) -> Network:
    """A 3x3 layer (weight tiles 9 taps deep), a pointwise one to ``n`` channels, a global pooling and
    a fully connected head of ``n`` inputs."""
    return _net(
        [
            Conv("c0", out=16, kernel=(3, 3), padding=P1, relu=True),
            Conv("pw", out=n, kernel=(1, 1), relu=True),
            GlobalAvgPool("g"),
            Dense("fc", out=m),
        ],
        (3, 6, 6),
    )


def test_a_head_on_one_pixel_stacks_its_inputs_and_pads_its_columns():
    net = _head()
    li = {x.name: x for x in net.info}
    fc = li["fc"]
    assert stacks_a_vector(fc) and not stacks_a_vector(li["pw"])
    assert stack_options(fc, 9, True) == (2, 3, 4, 6, 8) and stack_options(fc, 9, False) == ()
    assert engine_geometry(fc, 0, 8) == ConvGeometry(1, 40, 12, 1, 1, 8, 1, 1, 1)
    assert pads_columns(fc, 8) and not pads_columns(fc, 1)
    with pytest.raises(ValueError, match="'fc' cannot stack its 96 input channels as 5 rows"):
        engine_geometry(fc, 0, 5)
    # a head on a map of more than one pixel (a Dense over a 2x2 map) is not offered a stack
    flat = _net([Conv("c0", out=8, kernel=(3, 3)), Dense("fc", out=4)], (3, 4, 4))
    assert stack_options(flat.info[1], 9, True) == ()


def test_a_stacked_head_computes_its_padded_columns_and_stores_its_one():
    """Stack 8 on Tn 16: 12 channels a row, one channel tile a step where 96 inputs took six; the step
    computes 8 taps x Tc 4 columns (three of them past the map), its store writes Tc words a channel
    (the store masks those past C, as in an edge tile), and the engine declares distance Tc."""
    from fnas_hls.model.shared_engine import engine_layer_cost

    prec, board = get_precision("int8"), load_board("pynq")
    fc = _head().info[3]
    plain, stacked = engine_geometry(fc), engine_geometry(fc, 0, 8)
    e = make_engine(40, 16, [(plain, 1, 1), (stacked, 1, 4)], board, prec)
    assert e.min_trtc == 4
    k1, k8 = engine_terms(plain, e, 1, 1, prec), engine_terms(stacked, e, 1, 4, prec)
    assert (k1.steps, k8.steps) == (6, 1)
    assert k8.compute_trip == 8 * 4 and k8.store_trip == cdiv(40, 2) * 4
    assert k8.cycles < k1.cycles
    cost = engine_layer_cost(fc, e, 1, 4, board, prec, stack=8)
    assert (cost.tiling.Tr, cost.tiling.Tc) == (1, 4)  # not clipped to the map's one column


def test_a_stacked_head_keeps_computes_ii_where_a_small_depthwise_map_lowers_the_distance():
    """A depthwise layer on a 3x3 map runs on DW_COMPUTE with its own distance (3 iterations, below the
    accumulate's dependence); the head stacked pads its columns to COMPUTE's own distance, not to that
    one: COMPUTE keeps II 1 (padded to 3, the head took the engine to II 2 for every layer, 11,102 to
    13,453 cycles on this net). Every COMPUTE layer's tiles keep to COMPUTE's distance, priced at it."""
    from fnas_hls.model.shared_engine import engine_dependence

    net = _net(
        [
            Conv("c0", out=16, kernel=(3, 3), padding=P1, relu=True),
            Conv("c1", out=32, kernel=(3, 3), stride=(2, 2), padding=P1, relu=True),
            Conv("c2", out=64, kernel=(3, 3), stride=(2, 2), padding=P1, relu=True),
            Conv("c3", out=64, kernel=(3, 3), stride=(2, 2), padding=P1, relu=True),
            Conv("dw", out=64, kernel=(3, 3), padding=P1, groups=64, relu=True),
            Conv("pw", out=128, kernel=(1, 1), relu=True),
            GlobalAvgPool("g"),
            Dense("fc", out=100),
        ],
        (3, 24, 24),
    )
    from fnas_hls.dse.shared_tiles import EngineSearch

    a = analyze(net, load_board("zcu104"), "int8", style="shared")
    e, prec = a.engine, a.precision
    dep = engine_dependence(prec, e.acc_banks)
    assert 0 < e.dw_dist < dep  # the case: the depthwise layer's distance is below the dependence
    # the DSE prices COMPUTE's layers at COMPUTE's distance and DW_COMPUTE's at its own (one distance
    # for both priced every layer at II 2 here: 10,964 cycles where the split finds 10,119)
    search = EngineSearch(net, load_board("zcu104"), prec, {})
    assert search.distance >= dep and search.dw_distance == e.dw_dist < dep
    assert "fc" in a.stacked_layers, a.stacked_layers
    fc = next(lc for lc in a.layers if lc.name == "fc")
    assert fc.tiling.Tr * fc.tiling.Tc >= dep and e.min_trtc >= dep
    assert e.compute_ii(prec) == 1


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("board,precision", [("pynq", "int8"), ("ultra96v2", "fixed16")])
def test_a_stacked_head_csim_bit_exact(board, precision, shared_csim):
    res, out = shared_csim(_head(256, 100), board, precision)
    a = res.analysis
    assert "fc" in a.stacked_layers, a.stacked_layers
    # the emitted descriptor's tile (the layer table's Tm, Tn, Tr, Tc) keeps the padded columns, and the
    # engine declares the distance they give
    src = res.project_dir / "src"
    row = next(x for x in (src / "fnas_types.h").read_text().splitlines() if x.strip().startswith('{"fc"'))
    tr, tc = (int(v) for v in row.split(",")[11:13])
    assert tr * tc >= a.engine.min_trtc > 1
    assert f"distance={a.engine.min_trtc} true" in (src / "engine.cpp").read_text()
    assert out.bit_exact and out.vectors == 4, out.verdict


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_a_stacked_head_after_a_flatten_csim_bit_exact(shared_csim):
    """The MNIST CNN's classifier reads a flatten of an 18 x 7 x 7 map: 882 channels of one pixel, one
    run of words in DDR, so it stacks too (21 rows of 42 on pynq)."""
    from pathlib import Path

    from fnas_hls.network.arch import load_network_yaml

    net = with_random_weights(
        load_network_yaml(Path(__file__).resolve().parents[1] / "examples" / "mnist-cnn.yaml")
    )
    res, out = shared_csim(net, "pynq", "int8")
    assert "fc1" in res.analysis.stacked_layers, res.analysis.stacked_layers
    assert out.bit_exact and out.vectors == 4, out.verdict
