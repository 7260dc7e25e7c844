"""Output columns side by side (Pc) in the dataflow style's conv process: a MAC step computes Pc
pixels of the row from one read of each weight word. Its costs, OUT's start with pixel blocks
(brute-forced), the DSE's use of it where block RAM is short, the stream schedule against the event
simulation, and C simulations bit-exact with the reference model."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from dataflow_sim import analyze_and_simulate, force_columns
from test_hls_emit import net_of

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.model import dataflow_conv as dfc
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.precision import get_precision
from fnas_hls.resources import MacCost
from fnas_hls.styles import analyze

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


#: A small net whose rows do not divide every Pc (a 10-column map), a stride-2 layer, a max pool and
#: a classifier; and a 1x1 layer (its column banks constant).
SMALL = net_of(
    [
        {"type": "conv", "out": 6, "kernel": 3, "padding": "same", "relu": True},
        {"type": "conv", "out": 8, "kernel": 3, "stride": 2, "padding": "same", "relu": True},
        {"type": "conv", "out": 8, "kernel": 1, "relu": True},
        {"type": "maxpool", "kernel": 2, "stride": 1},
        {"type": "gap"},
        {"type": "fc", "out": 4},
    ],
    [2, 10, 10],
    "pc",
)


def test_columns_cost_what_they_unroll():
    """Pc output columns a step: the MAC loop takes ceil(C/Pc) pixel blocks where it took C, the
    DSPs are Pc times as many, the weight ROM is the same, and the row buffer and the line buffer's
    column banks grow."""
    g = dfp.WindowGeometry.of(SMALL.info[0])
    prec = get_precision("fixed16")
    mac = MacCost()
    one = dfc.conv_stage(g, 6, 2, prec, mac, 3, 1)
    two = dfc.conv_stage(g, 6, 2, prec, mac, 3, 1, Pc=2)
    three = dfc.conv_stage(g, 6, 2, prec, mac, 3, 1, Pc=3)
    assert (
        one.mac == g.C * g.Kh and two.mac == 5 * g.Kh and three.mac == 4 * g.Kh
    )  # 10 columns: 4 blocks of 3
    assert two.dsp == 2 * one.dsp and three.dsp == 3 * one.dsp
    assert two.bram_weights == one.bram_weights
    assert two.lut > one.lut
    assert dfc.window_span(g, 3, 2) == 4 and dfc.window_span(g, 3, 1) == 3
    # a 1x1 layer of stride 1 reads column c*Pc + u in bank u: no selector; a 3x3 one moves
    g1 = dfp.WindowGeometry.of(SMALL.info[2])
    assert not dfc.moving_banks(g1, 1, 4)
    assert dfc.moving_banks(g, 3, 2) and dfc.moving_banks(g, 2, 1) and not dfc.moving_banks(g, 1, 1)


def test_out_start_with_pixel_blocks_lets_every_word_be_computed_first():
    """Brute force over small layers: OUT's word k (pixel c, lane block) at iteration out_start + k is
    never before the MAC step that ends its block (pixels c // Pc, group tile, output tile)."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        G = int(rng.choice([1, 1, 2, 3]))
        M, N, C = (int(v) for v in rng.integers(1, 9, 3))
        K = int(rng.choice([1, 3]))
        Pm, Pn, Pg, Pc = (
            int(rng.integers(1, M + 1)),
            int(rng.integers(1, N + 1)),
            int(rng.integers(1, G + 1)),
            int(rng.integers(1, C + 1)),
        )
        g = dfp.WindowGeometry(G, M, N, C, C, C, C, K, K, 1, 1, K // 2, K // 2)
        MT, NT, GT = -(-M // Pm), -(-N // Pn), -(-G // Pg)
        B = NT * K * K
        depth = 7
        got = int(dfc.out_start(g, Pm, MT, NT, depth, 1, Pg=Pg, Pc=Pc))
        worst = 0
        for c in range(C):
            for gg in range(G):
                for m in range(M):
                    block = ((c // Pc) * GT + gg // Pg) * MT + m // Pm
                    end = (block + 1) * B - 1  # its last MAC iteration
                    k = (c * G + gg) * M + m
                    worst = max(worst, end - k)
        assert got == worst + depth, (G, M, N, C, K, Pm, Pn, Pg, Pc)


def test_the_dse_takes_columns_where_block_ram_is_short():
    """A FNAS-MNIST network on kv260 (1,248 DSPs, 288 BRAM18K): its weight ROMs can feed about half
    the DSPs a word each, so the DSE computes several output columns from each weight word, and the
    design is faster than with one column a step."""
    from fnas_hls.search.space import load_space

    space = load_space("fnas-mnist")
    arch = list(space.architectures())[2048]
    n = space.build(arch)
    board, prec = load_board("kv260"), get_precision("fixed16")
    a = analyze(n, board, prec, style="dataflow")
    cols = [lc.tiling.Pc for lc in a.layers if lc.tiling is not None]
    assert a.fits and max(cols) > 1, cols


@pytest.mark.parametrize("precision, want", [("fixed16", 3), ("int8", 2), ("float32", 4)])
def test_columns_schedule_against_event_simulation(monkeypatch, precision, want):
    force_columns(monkeypatch, want)
    a, reg, sim = analyze_and_simulate(SMALL, load_board("zcu104"), precision)
    assert max(lc.tiling.Pc for lc in a.layers if lc.tiling is not None) > 1
    assert sim.latency <= reg.schedule.latency <= sim.latency * 1.03 + 10
    for peak, depth in zip(sim.peaks, reg.schedule.fifo_depths, strict=True):
        assert peak <= depth


@needs_gxx
@pytest.mark.parametrize(
    "board, precision, want", [("pynq", "fixed16", 3), ("zcu104", "int8", 2), ("zcu104", "float32", 4),
                               ("zcu104", "fixed16", 5)]
)  # fmt: skip
def test_columns_csim_bit_exact(monkeypatch, board, precision, want, tmp_path):
    """Pc output columns a step (3 of a 10-column row: a last block of one real column and two masked),
    with kernel columns side by side and wide streams where the DSE takes them: bit-exact."""
    force_columns(monkeypatch, want)
    rng = np.random.default_rng(5)
    calib = rng.standard_normal((16, 2, 10, 10)).astype(np.float32)
    tests = rng.standard_normal((3, 2, 10, 10)).astype(np.float32)
    res = emit_project(
        SMALL, load_board(board), tmp_path / "prj", precision, calib, test_inputs=tests, style="dataflow"
    )
    par = {lc.name: lc.tiling for lc in res.analysis.layers if lc.tiling is not None}
    assert par["conv1"].Pc == want, par
    manifest = json.loads((tmp_path / "prj" / "manifest.json").read_text())
    (entry,) = [e for e in manifest["layers"] if e["name"] == "conv1"]
    assert entry["tiling"]["Pc"] == par["conv1"].Pc
    out = run_csim(tmp_path / "prj", opt="-O1")
    assert out.bit_exact, out.verdict
    assert out.vectors == 3


def test_replace_keeps_columns():
    p = dfp.Parallelism(4, 2, 3, 1, 1, 5)
    assert str(p) == "4/2/3c5" and p.as_dict()["Pc"] == 5
    assert replace(p, Pc=1).as_dict().get("Pc") is None


def test_a_tiling_pin_sets_the_output_columns():
    """``--tiling all:Tc=2`` computes two output columns a step in every conv layer (at most its
    columns); a pin above a layer's columns is clipped, and the analysis says so; Tr does not apply."""
    from fnas_hls.model.tiling import parse_tiling_specs

    board, prec = load_board("zcu104"), get_precision("fixed16")
    a = analyze(SMALL, board, prec, style="dataflow", pins=parse_tiling_specs(["all:Tc=2"]))
    cols = {lc.name: lc.tiling.Pc for lc in a.layers if lc.tiling is not None}
    assert cols == {"conv1": 2, "conv2": 2, "conv3": 2, "fc1": 1}, cols
    assert any("fc1" in n and "Tc=2 clipped" in n for n in a.notes), a.notes
    b = analyze(SMALL, board, prec, style="dataflow", pins=parse_tiling_specs(["conv1:Tr=2"]))
    assert any("Tr does not apply" in n for n in b.notes), b.notes
