"""The DSE against brute force, against the FNAS-Design baseline, and with pinned tilings."""

from __future__ import annotations

import numpy as np
import pytest

from fnas_hls.boards import load_board
from fnas_hls.dse.sequential import (
    _pareto,
    choose_tilings,
    fixed_resources,
    fnas_design_tilings,
    useful_factors,
)
from fnas_hls.errors import FnasError
from fnas_hls.model.geometry import ConvGeometry, is_tiled
from fnas_hls.model.sequential import conv_terms
from fnas_hls.model.tiling import Tiling, parse_tiling_spec
from fnas_hls.network.arch import parse_network_yaml
from fnas_hls.precision import get_precision
from fnas_hls.resources import MacCost
from fnas_hls.search.space import load_space
from fnas_hls.styles import analyze

FIXED = get_precision("fixed16")


def all_tilings(g: ConvGeometry):
    """Every integer tiling of a layer, costed: the brute-force reference."""
    grids = np.meshgrid(
        np.arange(1, g.M + 1),
        np.arange(1, g.N + 1),
        np.arange(1, g.R + 1),
        np.arange(1, g.C + 1),
        indexing="ij",
    )
    Tm, Tn, Tr, Tc = (a.ravel() for a in grids)
    k = conv_terms(g, Tm, Tn, Tr, Tc, FIXED, MacCost())
    shape = Tm.shape
    return {
        n: np.broadcast_to(np.asarray(getattr(k, n)), shape)
        for n in ("cycles", "dsp", "bram18k", "lut", "ff")
    }


def test_useful_factors_are_the_smallest_per_tile_count():
    assert useful_factors(10).tolist() == [1, 2, 3, 4, 5, 10]
    assert useful_factors(1).tolist() == [1]
    for d in (7, 13, 28, 36):
        vals = useful_factors(d)
        counts = [-(-d // t) for t in vals]
        assert len(set(counts)) == len(vals)  # one value per tile count
        for t in range(1, d + 1):  # every tile size is matched by a useful one with the same count
            assert any(-(-d // v) == -(-d // t) and v <= t for v in vals)


def test_pareto_filter_against_quadratic_check():
    rng = np.random.default_rng(1)
    c, d, b = (rng.integers(0, 30, 400) for _ in range(3))
    keep = set(_pareto(c, d, b).tolist())
    for i in range(400):
        dominated = any(
            c[j] <= c[i] and d[j] <= d[i] and b[j] <= b[i] and (c[j], d[j], b[j]) != (c[i], d[i], b[i])
            for j in range(400)
        )
        if dominated:
            assert i not in keep
        else:  # a non-dominated point is kept, or an identical twin of it is
            twins = [j for j in keep if (c[j], d[j], b[j]) == (c[i], d[i], b[i])]
            assert twins


SMALL = """
input: [4, 7, 6]
layers:
  - {type: conv, out: 6, kernel: 3, padding: 1, relu: true}
  - {type: conv, out: 5, kernel: 3, stride: 2, relu: true}
"""


@pytest.mark.parametrize(("dsp", "bram"), [(8, 1000), (30, 1000), (12, 14), (30, 10), (6, 8)])
def test_dse_is_optimal_against_brute_force(make_board, dsp, bram):
    """Two small layers, every integer tiling of each, every pair: the DSE finds the least latency."""
    board = make_board(dsp=dsp, bram18k=bram)
    net = parse_network_yaml(SMALL)
    fixed = fixed_resources(net, board, FIXED)
    budget = board.budget()
    a, b = (all_tilings(ConvGeometry.of(li)) for li in net.info)
    total = {k: a[k][:, None] + b[k][None, :] for k in a}
    ok = np.ones(total["cycles"].shape, dtype=bool)
    for k in ("dsp", "bram18k", "lut", "ff"):
        ok &= total[k] + getattr(fixed, k) <= getattr(budget, k)
    result = choose_tilings(net, board, FIXED)
    if not ok.any():
        assert not result.fits
        return
    assert result.fits
    assert result.cycles == total["cycles"][ok].min()
    assert result.method in ("dp", "dp-exact")


def test_fast_mode_fits_and_beats_the_baseline_on_fnas_space_sample():
    space = load_space("fnas-mnist")
    board = load_board("pynq")
    archs = list(space.architectures())[::97]
    for choice in archs:
        net = space.build(choice)
        exact = choose_tilings(net, board, FIXED)
        fast = choose_tilings(net, board, FIXED, exact=False)
        base = fnas_design_tilings(net, board, FIXED)
        assert exact.fits and fast.fits
        assert exact.cycles <= fast.cycles
        if base.fits:
            assert fast.cycles <= base.cycles
            assert exact.cycles <= base.cycles


def test_baseline_splits_dsps_by_macs():
    net = parse_network_yaml(SMALL)
    board = load_board("pynq")
    base = fnas_design_tilings(net, board, FIXED)
    macs = [li.macs for li in net.info]
    room = board.budget().dsp - fixed_resources(net, board, FIXED).dsp
    for li, m in zip(net.info, macs, strict=True):
        t = base.tilings[li.name]
        assert t.Tm * t.Tn <= int(room * m / sum(macs))


def test_pinned_tilings_are_honoured_and_full_means_the_dimension():
    net = parse_network_yaml(SMALL)
    board = load_board("pynq")
    a = analyze(net, board, pins=[parse_tiling_spec("conv1:Tm=2,Tr=full"), parse_tiling_spec("all:Tc=3")])
    t1, t2 = (lc.tiling for lc in a.layers)
    assert (t1.Tm, t1.Tr, t1.Tc) == (2, 7, 3)
    assert t2.Tc == 2  # conv2 has 2 output columns: the pin is clipped to them
    clipped = analyze(net, board, pins=[parse_tiling_spec("all:Tm=64,Tn=64,Tr=full,Tc=full")])
    assert [lc.tiling for lc in clipped.layers] == [Tiling(6, 4, 7, 6), Tiling(5, 6, 3, 2)]
    assert any("clipped" in n for n in clipped.notes)


def test_pinned_design_over_budget_is_analyzed_and_flagged(make_board):
    board = make_board(dsp=10, bram18k=1000)
    net = parse_network_yaml(SMALL)
    a = analyze(net, board, pins=[parse_tiling_spec("all:Tm=full,Tn=full,Tr=full,Tc=full")])
    assert not a.fits
    assert "dsp" in a.over
    assert a.latency_cycles > 0
    assert a.resources.dsp == 6 * 4 + 5 * 6


def test_tiling_spec_errors():
    for bad, msg in [
        ("conv1", "expected LAYER"),
        ("conv1:Tx=3", "is not one of"),
        ("conv1:Tm=0", "positive integer or 'full'"),
        ("conv1:Tm=3,Tm=4", "given twice"),
    ]:
        with pytest.raises(FnasError, match=msg):
            parse_tiling_spec(bad)
    net = parse_network_yaml(SMALL)
    with pytest.raises(FnasError, match="not a tiled layer; tiled layers: conv1, conv2"):
        analyze(net, load_board("pynq"), pins=[parse_tiling_spec("conv9:Tm=2")])


def test_every_tiled_layer_gets_a_tiling_on_every_board():
    from fnas_hls.boards import known_boards

    net = parse_network_yaml("""
input: [3, 32, 32]
layers:
  - {type: conv, out: 16, kernel: 3, padding: same, relu: true}
  - {type: maxpool, kernel: 2}
  - {type: conv, out: 32, kernel: 3, padding: same, groups: 2, relu: true}
  - {type: avgpool, kernel: 2}
  - {type: flatten}
  - {type: fc, out: 10}
""")
    for board in known_boards():
        for prec in ("fixed16", "float32"):
            a = analyze(net, board, prec)
            assert a.fits, (board.name, prec)
            tiled = [lc for lc, li in zip(a.layers, net.info, strict=True) if is_tiled(li)]
            assert all(lc.tiling is not None for lc in tiled)
            assert a.latency_cycles >= a.roofline_cycles


def test_baseline_on_useful_factors_equals_exhaustive_enumeration():
    """Enumerating only the useful tile sizes reaches FNAS-Design's exhaustive latency."""
    space = load_space("fnas-mnist")
    board = load_board("pynq")
    net = space.build((0, 0, 1, 1, 0, 2, 1, 0))  # kernels 5, 7, 5, 7; filters 9, 18, 36, 9
    quick = fnas_design_tilings(net, board, FIXED)
    full = fnas_design_tilings(net, board, FIXED, exhaustive=True)
    assert quick.cycles == full.cycles and quick.fits == full.fits
