"""The shared style's pooling unit that reads beats (``model.shared_pool``,
``templates/shared/pool_layer.cpp.j2``): counted by hand, taken where a window row fits a beat, and
bit-exact in C simulation for max and average pooling (padding counted or left out), windows that
straddle beats, and maps at any word of their buffer; a global average pooling whose rows fit a beat
runs on it as one window of its whole map."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model.sequential import pool_cost
from fnas_hls.model.shared_pool import (
    LOOP,
    VLOOP,
    as_pool,
    beat_gaps,
    beat_pool_cost,
    beat_pool_depth,
    beat_pool_ii,
    fits_beat_gap,
    takes_beat_pool,
)
from fnas_hls.network.arch import network_from_dict
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def _net(pool: dict, input_shape=(3, 15, 15)):
    return with_random_weights(
        network_from_dict(
            {
                "name": "bp",
                "input": list(input_shape),
                "layers": [
                    {"type": "conv", "out": 6, "kernel": 3, "padding": 1, "relu": True},
                    pool,
                    {"type": "conv", "out": 5, "kernel": 3, "padding": 1},
                    {"type": "gap"},
                    {"type": "fc", "out": 3},
                ],
            }
        )
    )


MAX = {"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1}


def _pool(net):
    return next(li for li in net.info if li.layer.op in ("maxpool", "avgpool"))


def test_beat_pool_counts_by_hand():
    """6 channels 15x15, 3x3 stride 2 pad 1 -> 8x8: 6*8*(8+1) iterations at II ceil(3/2) = 2."""
    net = _net(MAX)
    li = _pool(net)
    board, prec = load_board("zcu102"), get_precision("fixed16")
    assert takes_beat_pool(li, 8) and not takes_beat_pool(li, 2)
    assert beat_pool_ii(3) == 2 and beat_pool_ii(1) == 1 and beat_pool_ii(7) == 4
    lc = beat_pool_cost(li, "p", board, prec)
    (loop,) = lc.functions[0].loops
    depth = beat_pool_depth(li, prec)
    assert depth == rules.LOAD_DEPTH + rules.SELECT_DEPTH + 4 * 1 + prec.mul_latency + 1  # 9 taps: 4 levels
    assert (loop.label, loop.trip, loop.ii) == (LOOP, 6 * 8 * 9, 2)
    assert lc.cycles == rules.function_latency(rules.pipelined_loop(6 * 8 * 9, 2, depth))
    assert lc.cycles < pool_cost(li, "p", board, prec).cycles  # a word a tap: 6*8*8*9 iterations


def test_shared_style_takes_the_beat_pool_where_the_window_fits():
    net = _net(MAX)
    a = analyze(net, load_board("zcu102"), "fixed16", style="shared")
    labels = {lp.label for lc in a.layers if lc.op == "maxpool" for fn in lc.functions for lp in fn.loops}
    assert labels == {VLOOP}  # its output read by a conv alone: in whole beats, a beat of outputs a cycle
    avg = _net({"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1})
    a = analyze(avg, load_board("zcu102"), "fixed16", style="shared")
    labels = {lp.label for lc in a.layers if lc.op == "avgpool" for fn in lc.functions for lp in fn.loops}
    assert labels == {LOOP}
    wide = _net(
        {"type": "maxpool", "kernel": 5, "stride": 1, "padding": 2}
    )  # float32 on pynq: 2 words a beat
    a = analyze(wide, load_board("pynq"), "float32", style="shared")
    labels = {lp.label for lc in a.layers if lc.op == "maxpool" for fn in lc.functions for lp in fn.loops}
    assert labels == {"POOL"}


@needs_gxx
@pytest.mark.parametrize(
    ("pool", "precision", "board"),
    [
        (MAX, "fixed16", "zcu102"),
        (MAX, "int8", "zcu104"),
        (MAX, "float32", "zcu102"),
        (
            {"type": "avgpool", "kernel": 3, "stride": 1, "padding": 1, "count_include_pad": False},
            "fixed16",
            "zcu102",
        ),
        ({"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1}, "float32", "zcu102"),
        ({"type": "avgpool", "kernel": 2, "stride": 2}, "int8", "pynq"),
        ({"type": "maxpool", "kernel": 5, "stride": 3, "padding": 2}, "fixed16", "zcu102"),
    ],
)
def test_beat_pool_bit_exact(pool, precision, board, tmp_path):
    net = _net(pool)
    x = np.random.default_rng(3).standard_normal((5, 3, 15, 15)).astype(np.float32)
    res = emit_project(net, load_board(board), tmp_path / "p", precision, x, style="shared")
    li = _pool(net)
    src = (tmp_path / "p" / "src" / f"{li.name}.cpp").read_text()
    # a max pooling read by a conv alone writes its map in whole beats (POOL_V, tests/test_vector_pool.py)
    assert ("POOL_V:" if pool["type"] == "maxpool" else "POOL_B:") in src
    assert res.analysis.fits
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict


def _gap_net(input_shape, conv_out=6, pooled=False):
    pool = [{"type": "avgpool", "kernel": 2, "stride": 2}] if pooled else []  # its output plain
    return with_random_weights(
        network_from_dict(
            {
                "name": "gp",
                "input": list(input_shape),
                "layers": [
                    {"type": "conv", "out": conv_out, "kernel": 3, "padding": 1, "relu": True},
                    *pool,
                    {"type": "gap"},
                    {"type": "fc", "out": 3},
                ],
            }
        )
    )


def test_a_gap_whose_rows_fit_a_beat_is_one_window_on_the_beat_unit():
    """6 channels of 7x7 in 16-word beats: 2 iterations a channel at II ceil(7/2) = 4, where the word
    unit reads 49 words a channel; a 20-column map does not fit a beat and keeps the word unit."""
    li = next(x for x in _gap_net((3, 7, 7)).info if x.layer.op == "gap")
    pool = as_pool(li)
    assert (pool.kind, pool.kernel, pool.stride, pool.count_pad) == ("avg", (7, 7), (1, 1), True)
    assert fits_beat_gap(li, 16) and fits_beat_gap(li, 7) and not fits_beat_gap(li, 4)
    assert takes_beat_pool(li, 16, frozenset({li.name})) and not takes_beat_pool(li, 16)  # where chosen
    board, prec = load_board("zcu102"), get_precision("int8")
    (loop,) = beat_pool_cost(li, "g", board, prec).functions[0].loops
    assert (loop.label, loop.trip, loop.ii) == (LOOP, 6 * 1 * 2, 4)
    a = analyze(_gap_net((3, 7, 7)), board, "int8", style="shared")
    assert {lp.label for lc in a.layers if lc.op == "gap" for fn in lc.functions for lp in fn.loops} == {LOOP}
    a = analyze(_gap_net((3, 7, 20)), board, "int8", style="shared")
    assert LOOP not in {
        lp.label for lc in a.layers if lc.op == "gap" for fn in lc.functions for lp in fn.loops
    }
    # its H*W taps are unrolled: a map of more than GAP_TAPS words, or of one column, keeps the word unit
    big = next(x for x in _gap_net((3, 16, 16)).info if x.layer.op == "gap")
    one = next(x for x in _gap_net((3, 9, 1)).info if x.layer.op == "gap")
    assert not fits_beat_gap(big, 16) and not fits_beat_gap(one, 16)


def test_a_float_average_on_the_beat_unit_counts_its_adders():
    from fnas_hls.model.resource_model import DSP_PER_FLOAT_ADD

    li = next(x for x in _gap_net((3, 5, 4)).info if x.layer.op == "gap")
    board = load_board("zcu102")
    f32 = beat_pool_cost(li, "g", board, get_precision("float32")).resources
    i8 = beat_pool_cost(li, "g", board, get_precision("int8")).resources
    assert f32.dsp >= 19 * DSP_PER_FLOAT_ADD and i8.lut > 19 * 8


@needs_gxx
@pytest.mark.parametrize(
    ("shape", "precision", "board", "pooled"),
    [
        ((3, 7, 7), "int8", "zcu104", False),
        ((3, 5, 6), "fixed16", "zcu102", False),
        ((3, 5, 4), "float32", "zcu102", False),
        ((3, 10, 12), "fixed16", "zcu102", True),  # a 5x6 map a pool wrote plainly: rows 6 words apart
    ],
)
def test_a_gap_on_the_beat_unit_bit_exact(shape, precision, board, pooled, tmp_path):
    net = _gap_net(shape, pooled=pooled)
    x = np.random.default_rng(5).standard_normal((5, *shape)).astype(np.float32)
    emit_project(net, load_board(board), tmp_path / "p", precision, x, style="shared")
    li = next(x for x in net.info if x.layer.op == "gap")
    assert "POOL_B:" in (tmp_path / "p" / "src" / f"{li.name}.cpp").read_text()
    if pooled:  # the pool's output is plain: the GAP reads rows W words apart
        assert "const int IW = 6;" in (tmp_path / "p" / "src" / f"{li.name}.h").read_text()
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict


@needs_gxx
@pytest.mark.parametrize(("precision", "board"), [("int8", "zcu104"), ("float32", "zcu102")])
def test_a_max_pool_whose_map_stays_plain_writes_words_bit_exact(precision, board, tmp_path):
    """A max pooling read through a flatten keeps its map plain, so it writes a word an output
    (POOL_B), not a beat (POOL_V)."""
    from fnas_hls.network.ir import Conv, Dense, Flatten, Network, Pool, Shape

    net = with_random_weights(
        Network(
            Shape(3, 15, 15),
            (
                Conv("c1", out=6, kernel=(3, 3), padding=(1, 1, 1, 1), relu=True),
                Pool("p", kind="max", kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1)),
                Flatten("f"),
                Dense("fc", out=3),
            ),
            "mp",
        )
    )
    x = np.random.default_rng(4).standard_normal((5, 3, 15, 15)).astype(np.float32)
    res = emit_project(net, load_board(board), tmp_path / "p", precision, x, style="shared")
    assert "p" not in res.analysis.padded_maps
    assert "POOL_B:" in (tmp_path / "p" / "src" / "p.cpp").read_text()
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict


def test_gaps_take_the_beat_unit_within_a_share_of_the_luts():
    """Every GAP is a unit of its own: a network with a GAP in every block would spend the LUTs its
    engine needs. Of five 7x7 GAPs on zcu102 in int8, those that save the most cycles a LUT take the
    unit while their extra LUTs stay within BEAT_GAP_LUT_SHARE of the board's."""
    from fnas_hls.model.sequential import layer_cost
    from fnas_hls.model.shared_pool import BEAT_GAP_LUT_SHARE
    from fnas_hls.network.ir import Conv, GlobalAvgPool, Network, Shape

    layers, board, prec = [], load_board("zcu102"), get_precision("int8")
    for k in range(5):
        layers += [
            Conv(f"c{k}", out=64 * (k + 1), kernel=(3, 3), padding=(1, 1, 1, 1)),
            GlobalAvgPool(f"g{k}"),
        ]
        layers += [Conv(f"x{k}", out=8, kernel=(1, 1), inputs=(f"c{k}",))]
    net = with_random_weights(Network(Shape(8, 7, 7), tuple(layers), "gaps"))
    infos = list(net.info)
    chosen = beat_gaps(infos, board, prec, 16)
    gaps = [li for li in infos if li.layer.op == "gap"]
    extra = {
        li.name: beat_pool_cost(li, li.name, board, prec).resources.lut
        - layer_cost(li, li.name, None, board, prec).resources.lut
        for li in gaps
    }
    assert 0 < len(chosen) < 5 and sum(extra[n] for n in chosen) <= BEAT_GAP_LUT_SHARE * board.budget().lut
    assert "g4" in chosen  # the most channels: the most cycles saved
