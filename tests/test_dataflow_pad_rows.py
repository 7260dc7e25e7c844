"""Padding in the dataflow style's conv process: each output row's MAC steps cover the kernel rows that
read real input rows and, in integer precisions, no step wholly on padding; its fills read and write
the real rows' real columns alone (brute-forced); the rows' tables in the kernel, C simulation
bit-exact, and the bench's roofline of the real taps (``bench.dataflow_bench.real_tap_macs``) and its
fill floor."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from dataflow_sim import force_columns
from test_hls_emit import net_of

from bench.dataflow_bench import fill_floor, real_tap_macs
from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.model import dataflow_conv as dfc
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.precision import get_precision
from fnas_hls.resources import MacCost
from fnas_hls.search.space import load_space

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

#: A 7x7 kernel over padding of 3 on an 8x8 map (most windows reach padding), a 5x5 stride-2 layer with
#: uneven padding, then a classifier.
PADDED = net_of(
    [
        {"type": "conv", "out": 6, "kernel": 7, "padding": "same", "relu": True},
        {"type": "conv", "out": 8, "kernel": 5, "stride": 2, "padding": [2, 1, 1, 2], "relu": True},
        {"type": "gap"},
        {"type": "fc", "out": 4},
    ],
    [3, 8, 8],
)


def _geometries():
    for kh, sh, pt, pb, h in [
        (3, 1, 1, 1, 10),
        (7, 1, 3, 3, 8),
        (5, 2, 2, 1, 9),
        (14, 1, 6, 7, 28),
        (3, 2, 0, 1, 7),
    ]:
        r = (h + pt + pb - kh) // sh + 1
        yield dfp.WindowGeometry(1, 4, 4, h, h, r, r, kh, kh, sh, sh, pt, pt)


def test_every_real_kernel_row_is_computed_and_no_step_wholly_on_padding():
    """For every output row and Ph: the steps first..end - 1 cover each kernel row whose input row is
    real, and each step left out holds none (brute force over the definition)."""
    for g in _geometries():
        real_row = lambda p, g=g: g.pt <= p < g.pt + g.H  # noqa: E731  (padded row p)
        rows = [(lo, hi) for lo, hi, _, n in g.real_kernel_rows for _ in range(n)]
        filled = [f for _, _, f, n in g.real_kernel_rows for _ in range(n)]
        assert len(rows) == g.R
        for r, (lo, hi) in enumerate(rows):
            assert [kh for kh in range(g.Kh) if real_row(r * g.Sh + kh)] == list(range(lo, hi))
            assert filled[r] == sum(real_row(p) for p in range(g.Kh + r * g.Sh, g.Kh + (r + 1) * g.Sh))
        assert g.real_prime == sum(real_row(p) for p in range(g.Kh)) * g.W * g.n_total
        for ph in range(1, g.Kh + 1):
            steps = [(int(f), int(e)) for f, e, _, n in dfc.kernel_steps(g, ph, True) for _ in range(n)]
            for (lo, hi), (first, end) in zip(rows, steps, strict=True):
                real = set(range(lo, hi))
                kept = {kh for s in range(first, end) for kh in range(s * ph, min((s + 1) * ph, g.Kh))}
                assert real <= kept, (g, ph)
                for s in range(-(-g.Kh // ph)):
                    if not first <= s < end:
                        assert not real & set(range(s * ph, (s + 1) * ph)), (g, ph, s)
            assert {(int(f), int(e)) for f, e, _, _ in dfc.kernel_steps(g, ph, False)} == {
                (0, -(-g.Kh // ph))
            }


def test_rows_on_padding_take_fewer_cycles_in_integer_precisions():
    """The 7x7 layer: its edge rows take fewer MAC steps in int8 than in float32, whose every row
    takes all seven kernel rows, and shorter ROW loops than its middle rows."""
    g = dfp.WindowGeometry.of(PADDED.info[0])
    p = dfp.Parallelism(2, 3)
    i8 = dfc.conv_rows(g, p, get_precision("int8"), MacCost())
    f32 = dfc.conv_rows(g, p, get_precision("float32"), MacCost())
    assert [r.end_step - r.first_step for r in i8] == [4, 5, 6, 7, 7, 6, 5, 4]
    assert [r.end_step - r.first_step for r in f32] == [7] * 8
    for a, b in zip(i8, f32, strict=True):
        assert a.mac * 7 == b.mac * (a.end_step - a.first_step)
    assert i8[0].trip < i8[3].trip  # an edge row's ROW loop is shorter
    s = dfc.conv_stage(g, 2, 3, get_precision("int8"), MacCost())
    assert s.row_trip == max(r.trip for r in i8)  # the fullest row's counts


@needs_gxx
@pytest.mark.parametrize("precision, cols", [("int8", 1), ("fixed16", 3), ("float32", 2)])
def test_rows_on_padding_csim_bit_exact(monkeypatch, precision, cols, tmp_path):
    """The padded net with the rows' tables in each conv kernel (steps left out in the integer
    precisions, none in float32) and ``cols`` output columns a step: bit-exact."""
    force_columns(monkeypatch, cols)
    rng = np.random.default_rng(8)
    calib = rng.standard_normal((16, 3, 8, 8)).astype(np.float32)
    tests = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    res = emit_project(
        PADDED, load_board("pynq"), tmp_path / "prj", precision, calib, test_inputs=tests, style="dataflow"
    )
    (lc,) = [lc for lc in res.analysis.layers if lc.name == "conv1"]
    g = dfp.WindowGeometry.of(PADDED.info[0])
    firsts = [
        r.first_step for r in dfc.conv_rows(g, lc.tiling.clipped(g), get_precision(precision), MacCost())
    ]
    assert (max(firsts) > 0) == (precision != "float32"), firsts
    header = next((tmp_path / "prj" / "src").glob("*conv1*.h")).read_text()
    # (its rows differ in every precision: the bottom rows fill no input row)
    assert f" ROW_KF[R] = {{{', '.join(map(str, firsts))}}};" in header, header
    out = run_csim(tmp_path / "prj", opt="-O1")
    assert out.bit_exact, out.verdict
    assert out.vectors == 3


def test_real_tap_macs_by_brute_force():
    """The MACs of the taps on real input: every (output pixel, kernel tap) whose input is in the map."""
    for li in PADDED.info:
        if li.layer.op != "conv":
            continue
        g = dfp.WindowGeometry.of(li)
        real = sum(
            1
            for r in range(g.R)
            for c in range(g.C)
            for kh in range(g.Kh)
            for kw in range(g.Kw)
            if 0 <= r * g.Sh + kh - g.pt < g.H and 0 <= c * g.Sw + kw - g.pl < g.W
        )
        assert real_tap_macs(li) == real * g.N * g.m_total
        assert real_tap_macs(li) < li.macs


def test_the_real_taps_floor_is_below_every_taps():
    space = load_space("fnas-mnist")
    archs = list(space.architectures())
    for i in (0, 2048):
        n = space.build(archs[i])
        assert fill_floor(n, real_taps=True) < fill_floor(n)


def test_rows_all_the_same_take_constants_and_no_tables():
    """A layer of one output row (valid padding) and a classifier: their rows are all the same, so no
    tables, no table read, and csynth's latency is the process's. (A layer of more rows has tables:
    its last rows fill no input row.)"""
    n = net_of([{"type": "conv", "out": 4, "kernel": 3, "relu": True}, {"type": "fc", "out": 3}], [2, 3, 6])
    for li in n.info:
        g = dfp.WindowGeometry.of(li)
        rows = dfc.conv_rows(g, dfp.Parallelism(2, 2), get_precision("int8"), MacCost())
        assert not dfc.rows_vary(rows)
        s = dfc.conv_stage(g, 2, 2, get_precision("int8"), MacCost())
        assert s.csynth == s.cycles
    varied = dfp.WindowGeometry.of(PADDED.info[0])
    s = dfc.conv_stage(varied, 2, 3, get_precision("int8"), MacCost())
    assert s.csynth > s.cycles  # csynth reports every row at the fullest row's trip


def test_csynth_interval_is_the_slowest_process_at_its_worst_case():
    """The interval csynth reports is its slowest process's latency at the worst case of a varying trip
    (what ``compare`` reads); the schedule's is the processes' real time, no more than it."""
    from fnas_hls.styles import analyze

    a = analyze(PADDED, load_board("pynq"), "int8", style="dataflow")
    worst = max(fn.latency for lc in a.layers for fn in lc.functions)
    assert a.csynth_interval_cycles == worst
    assert a.interval_cycles < a.csynth_interval_cycles  # the 7x7 layer's rows differ
    assert a.to_json()["csynth_interval_cycles"] == worst


@needs_gxx
def test_no_prime_where_the_first_kernel_rows_are_all_padding(tmp_path):
    """A 2x2 kernel under two rows of padding: PRIME has nothing to read, so the kernel renders none and
    the model counts none; the first output row's windows lie wholly on padding (its bias alone). The
    design C-simulates bit-exact."""
    n = net_of(
        [{"type": "conv", "out": 4, "kernel": 2, "padding": [2, 0, 2, 0], "relu": True}, {"type": "gap"}],
        [3, 4, 4],
    )
    g = dfp.WindowGeometry.of(n.info[0])
    assert g.real_prime == 0
    rng = np.random.default_rng(3)
    calib = rng.standard_normal((8, 3, 4, 4)).astype(np.float32)
    res = emit_project(
        n, load_board("pynq"), tmp_path / "prj", "int8", calib, test_inputs=calib[:2], style="dataflow"
    )
    (lc,) = [lc for lc in res.analysis.layers if lc.name == "conv1"]
    assert "PRIME" not in {lp.label for fn in lc.functions for lp in fn.loops}
    source = next((tmp_path / "prj" / "src").glob("*conv1*.cpp")).read_text()
    assert "PRIME:" not in source
    out = run_csim(tmp_path / "prj", opt="-O1")
    assert out.bit_exact, out.verdict
