"""The shared style's max pooling that writes a beat of outputs an iteration (``POOL_V``,
``model.shared_pool.vector_window``): its constants and counts by hand, which pools take it (their
maps in whole beats, ``model.shared.padded_maps``), and C simulation bit-exact in three precisions,
strides 1 and 2, with and without padding, its output read by a one-row pointwise layer and as the
skip map of a fused add."""

from __future__ import annotations

import shutil

import pytest

from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.boards import load_board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model.shared import padded_maps
from fnas_hls.model.shared_pool import (
    VLOOP,
    VectorWindow,
    takes_vector_pool,
    vector_pool_cost,
    vector_pool_depth,
    vector_window,
)
from fnas_hls.network.ir import Add, Conv, Dense, Flatten, GlobalAvgPool, Network, Pool, Shape
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze

P1 = (1, 1, 1, 1)
MAX3 = Pool("p", kind="max", kernel=(3, 3), stride=(2, 2), padding=P1)


def _net(pool: Pool, shape=(3, 21, 37)) -> Network:
    return with_random_weights(
        Network(
            Shape(*shape),
            (
                Conv("c0", out=8, kernel=(3, 3), padding=P1, relu=True),
                pool,
                Conv("pw", out=8, kernel=(1, 1), relu=True),
                Add("a", inputs=("pw", "p")),  # fused into pw's store: the pool's output is its skip map
                Conv("c2", out=6, kernel=(3, 3), padding=P1, relu=True),
                GlobalAvgPool("g"),
                Dense("fc", out=5),
            ),
            "v",
        )
    )


def _pool(net: Network):
    return next(li for li in net.info if li.name == "p")


def test_the_window_of_a_beat_of_outputs_by_hand():
    """ResNet-50's 3x3 stride-2 pad-1 max pool in 16-word beats: output beat k's columns 16k ..
    16k + 15 read input columns 32k - 1 .. 32k + 31, beats 2k - 1 .. 2k + 1; iteration t reads beats
    2t - 1, 2t and keeps 4, so output beat k is ready at iteration k + 1."""
    li = _pool(_net(MAX3, (3, 112, 112)))
    assert vector_window(li, 16) == VectorWindow(first=-1, lag=1, held=4, out_beats=4)
    board, prec = load_board("zcu102"), get_precision("int8")
    lc = vector_pool_cost(li, "p", board, prec)
    (loop,) = lc.functions[0].loops
    assert (loop.label, loop.trip, loop.ii) == (VLOOP, 8 * 56 * (4 + 1), 3)  # 3 rows x 2 beats, 2 ports
    depth = vector_pool_depth(li, prec)
    assert depth == rules.LOAD_DEPTH + 4 * 1 + 1  # 9 taps: a tree of 4 compares
    assert lc.cycles == rules.function_latency(rules.pipelined_loop(8 * 56 * 5, 3, depth))
    # a 2x2 stride-2 window without padding: beats 2k, 2k + 1; stride 1: beats k - 1 .. k + 1
    two = _pool(_net(Pool("p", kind="max", kernel=(2, 2), stride=(2, 2))))
    assert vector_window(two, 16) == VectorWindow(first=0, lag=0, held=2, out_beats=2)
    one = _pool(_net(Pool("p", kind="max", kernel=(3, 3), stride=(1, 1), padding=P1)))
    assert vector_window(one, 8) == VectorWindow(first=-1, lag=2, held=3, out_beats=5)


def test_which_pools_write_beats():
    net = _net(MAX3)
    li = _pool(net)
    assert takes_vector_pool(li, 16) and takes_vector_pool(li, 4)
    avg = _pool(_net(Pool("p", kind="avg", kernel=(3, 3), stride=(2, 2), padding=P1)))
    assert not takes_vector_pool(avg, 16)  # an average keeps the word-writing loop
    wide = _pool(_net(Pool("p", kind="max", kernel=(3, 3), stride=(16, 16))))
    assert not takes_vector_pool(wide, 4)  # a window wider than a beat: not even the beat unit
    # its output padded where its input is, in a design whose engine stores padded maps
    assert {"c0", "p", "a"} <= padded_maps(list(net.info), 16)
    flat = with_random_weights(
        Network(
            Shape(3, 8, 8),
            (Conv("c0", out=4, kernel=(3, 3), padding=P1), MAX3, Flatten("f"), Dense("fc", out=3)),
            "f",
        )
    )
    assert "p" not in padded_maps(list(flat.info), 16)  # read through a flatten: plain, the word loop
    a = analyze(net, load_board("zcu102"), "int8", style="shared")
    labels = {lp.label for lc in a.layers if lc.name == "p" for fn in lc.functions for lp in fn.loops}
    assert labels == {VLOOP}


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize(
    "pool,board,precision",
    [
        (MAX3, "zcu102", "int8"),
        (MAX3, "zcu102", "float32"),
        (Pool("p", kind="max", kernel=(2, 2), stride=(2, 2)), "zcu104", "int8"),
        (Pool("p", kind="max", kernel=(3, 3), stride=(1, 1), padding=P1), "pynq", "fixed16"),
    ],
)
def test_a_pool_that_writes_beats_csim_bit_exact(pool, board, precision, shared_csim, tmp_path):
    res, out = shared_csim(_net(pool), board, precision)
    assert "p" in res.analysis.padded_maps
    assert "POOL_V:" in (tmp_path / "p" / "src" / "p.cpp").read_text()
    # it reads through the engine's load ports, read r of an iteration through port r mod their count
    ports = ["fmap_b"] + [f"fmap_b{q}" for q in range(2, res.analysis.engine.load_ports + 1)]
    assert f"p({', '.join(ports)}, fmap_wb);" in (tmp_path / "p" / "src" / "v_top.cpp").read_text()
    assert out.bit_exact and out.vectors == 4, out.verdict


def test_pad_words_a_one_row_layer_wrote_are_skipped_bit_exact(shared_csim):
    """A pointwise layer run as one row computes its map's pad words too (5 a row here: 11 columns in
    rows of 16 words); the pool that reads its rows skips them by their column."""
    net = with_random_weights(
        Network(
            Shape(3, 9, 11),
            (
                Conv("c0", out=8, kernel=(3, 3), padding=P1, relu=True),
                Conv("pw", out=8, kernel=(1, 1)),  # no ReLU: its pad words hold whatever its bias makes
                MAX3,
                Conv("c2", out=6, kernel=(3, 3), padding=P1, relu=True),
                GlobalAvgPool("g"),
                Dense("fc", out=5),
            ),
            "g",
        )
    )
    res, out = shared_csim(net, "zcu102", "int8")
    assert "pw" in res.analysis.flat_layers and {"pw", "p"} <= res.analysis.padded_maps
    assert out.bit_exact and out.vectors == 4, out.verdict


@pytest.mark.parametrize(
    "pool",
    [
        Pool("p", kind="max", kernel=(2, 2), stride=(3, 3)),
        Pool("p", kind="max", kernel=(3, 3), stride=(3, 3)),
    ],
)
def test_strides_of_three_and_windows_narrower_than_them_bit_exact(pool, shared_csim, tmp_path):
    res, out = shared_csim(_net(pool), "zcu104", "int8")
    assert "POOL_V:" in (tmp_path / "p" / "src" / "p.cpp").read_text()
    assert out.bit_exact and out.vectors == 4, out.verdict
