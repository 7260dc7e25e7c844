"""The bench's fill floor (``bench.dataflow_bench.fill_floor``): the least latency over the roofline a
layer pipeline can have for the rows each layer waits for. A brute force over the DSP shares of a
two-layer chain, no floor for a network that is not a chain, and no dataflow design below it."""

from __future__ import annotations

import numpy as np
from test_hls_emit import net_of

from bench.dataflow_bench import fill_floor
from fnas_hls.boards import load_board
from fnas_hls.network.ir import Add, Conv, Network, Shape
from fnas_hls.precision import get_precision
from fnas_hls.search.space import load_space
from fnas_hls.styles import analyze

CHAIN = [
    {"type": "conv", "out": 8, "kernel": 3, "padding": "same", "relu": True},
    {"type": "conv", "out": 8, "kernel": 5, "padding": "same", "relu": True},
]


def test_floor_of_a_two_layer_chain_is_the_least_over_the_dsp_shares():
    n = net_of(CHAIN, [4, 12, 12], "chain")
    m = np.array([li.macs for li in n.info], dtype=float)
    m /= m.sum()
    w = (5 - 2) / 12  # the second layer waits for Kh - pt = 3 of the first's 12 rows
    d = np.linspace(1e-4, 1 - 1e-4, 200_001)
    c1, c2 = m[0] / d, m[1] / (1 - d)
    brute = float(np.min(np.maximum(c1, w * c1 + c2)))
    assert abs(fill_floor(n) - brute) < 1e-4
    assert fill_floor(n) > 1.0  # the wait costs something


def test_no_floor_for_a_network_with_a_residual_add():
    a = Conv("a", out=4, kernel=(3, 3), padding=(1, 1, 1, 1), relu=True)
    b = Conv("b", out=4, kernel=(3, 3), padding=(1, 1, 1, 1))
    n = Network(Shape(4, 8, 8), (a, b, Add("s", ("a", "b"))), "res")
    assert not n.is_chain and fill_floor(n) is None


def test_no_dataflow_design_beats_the_floor():
    """FNAS-MNIST networks on pynq and zcu104: a design that fits is never closer to the roofline than
    the floor (the floor is a bound, and the schedule honours every wait): in fixed16, whose designs
    leave out kernel rows on padding, the floor of the real taps; in float32 that of every tap."""
    space = load_space("fnas-mnist")
    archs = list(space.architectures())
    for i in (0, 2048, 6144):
        n = space.build(archs[i])
        for prec, floor in (
            (get_precision("fixed16"), fill_floor(n, real_taps=True)),
            (get_precision("float32"), fill_floor(n)),
        ):
            for board in ("pynq", "zcu104"):
                a = analyze(n, load_board(board), prec, style="dataflow")
                assert not a.fits or a.latency_cycles / a.roofline_cycles >= floor, (i, board, prec.name)
