"""The shared style's engine DSE where none of its ranked engines fits once each one's tile buffers
are counted: it shrinks the best of them until one fits before it descends (``dse.shared``)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

from fnas_hls.boards import load_board
from fnas_hls.dse.shared import _choose, _EngineSearch
from fnas_hls.network.benchmark_nets import accel_nasbench_network
from fnas_hls.precision import get_precision

TABLE = Path(__file__).resolve().parents[1] / "benchmarks" / "accel-nasbench-mnasnet.csv.gz"


def _row(i: int) -> dict:
    """Row i of the `large` bench's quick sample of Accel-NASBench (every 214th measured row)."""
    with gzip.open(TABLE, "rt") as f:
        rows = [r for r in csv.DictReader(f) if r.get("latency_zcu102_ms")]
    return rows[:: max(1, len(rows) // 24)][i]


def test_an_engine_that_fits_is_found_where_no_ranked_one_does():
    """An MnasNet of the quick sample on zcu102 in int8, its maps kept in whole beats: none of the
    64 ranked engines fits with its buffers (the ranking's filter sees the logic and the weights
    alone); shrinking the best of them finds engines that do, and the design keeps the layout (it
    fell back to the plain one at 2.0M cycles)."""
    net = accel_nasbench_network(_row(12))
    board, prec = load_board("zcu102"), get_precision("int8")
    search = _EngineSearch(net, board, prec, {})
    assert search.padded
    best = _choose(search, {}, prec, board)
    assert best.fits and best.padded == search.padded
    plain = _choose(_EngineSearch(net, board, prec, {}, frozenset()), {}, prec, board)
    assert best.cycles < plain.cycles


def test_no_engine_within_a_quarter_of_one_side_beats_the_choice():
    """After the descent, every engine that differs from the choice in one side by at most a quarter of
    it is evaluated (the landscape is not smooth: ResNet-50 on zcu102 found 64 x 32 where 64 x 37 is 3%
    faster); none of them is better by the search's own measure, and the choice is the best it met."""
    from fnas_hls.tabular.spaces import NasBench201Space

    net = NasBench201Space("nb201").network(12000)
    board, prec = load_board("pynq"), get_precision("fixed16")
    search = _EngineSearch(net, board, prec, {})
    best = _choose(search, {}, prec, board)
    assert best.fits
    m, n = best.Tm, best.Tn
    line = {(a, n) for a in range(m - m // 4, m + m // 4 + 1)} | {
        (m, b) for b in range(n - n // 4, n + n // 4 + 1)
    }
    macs = search.mac.macs(search.room.dsp)
    mine = search.evaluate(m, n).key
    for a, b in line:
        if 1 <= a and 1 <= b and a * b <= macs and a <= max(g.M for g in search.geoms) and b <= search.n_max:
            assert search.evaluate(a, b).key >= mine, (a, b)
    assert mine == min(c.key for c in search.seen.values())
