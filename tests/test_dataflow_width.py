"""Wide streams in the dataflow style (``model.dataflow_width``): the width rules, OUT's start with
beats, the stream schedule against the event simulation, a region that survives any process
slowed, and C simulations bit-exact with the reference model on designs whose streams carry
several words a beat."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from dataflow_sim import analyze_and_simulate, force_columns, simulate_bounded
from test_hls_emit import net_of

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.model import dataflow as df
from fnas_hls.model import dataflow_conv as dfc
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.model import dataflow_streams as dfs
from fnas_hls.model.dataflow_width import stream_widths, widest
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.ir import INPUT
from fnas_hls.network.names import design_names
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def net(layers, shape, name="t"):
    return network_from_dict({"name": name, "input": shape, "layers": layers})


#: The issue's small nets (a 32x32 two-conv net; a CIFAR-size net with a max pool), a depthwise
#: block, a classifier after a flatten, and an average pool that leaves its padding out.
WIDE = {
    "s32": (
        [3, 32, 32],
        [
            {"type": "conv", "out": 16, "kernel": 3, "padding": "same", "relu": True},
            {"type": "conv", "out": 32, "kernel": 3, "stride": 2, "padding": "same", "relu": True},
            {"type": "gap"},
            {"type": "fc", "out": 10},
        ],
    ),
    "c8": (
        [3, 32, 32],
        [
            {"type": "conv", "out": 8, "kernel": 3, "padding": "same", "relu": True},
            {"type": "maxpool", "kernel": 2, "stride": 2},
            {"type": "conv", "out": 16, "kernel": 3, "padding": "same", "relu": True},
            {"type": "gap"},
            {"type": "fc", "out": 10},
        ],
    ),
    "dw_flatten": (
        [4, 12, 12],
        [
            {"type": "conv", "out": 16, "kernel": 1, "relu": True},
            {"type": "conv", "out": 16, "kernel": 3, "padding": "same", "groups": 16, "relu": True},
            {"type": "conv", "out": 8, "kernel": 1, "stride": 2},
            {"type": "flatten"},
            {"type": "fc", "out": 6},
        ],
    ),
    "avgpool_nopad": (
        [8, 11, 11],
        [
            {"type": "conv", "out": 8, "kernel": 3, "padding": "same", "relu": True},
            {"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1, "count_include_pad": False},
            {"type": "conv", "out": 4, "kernel": 3, "padding": "same"},
        ],
    ),
}


def _wide_net(case):
    shape, layers = WIDE[case]
    return net_of(layers, shape, case)


# --- the rules --------------------------------------------------------------------------------


def test_widest_is_the_largest_common_divisor_within_the_cap():
    assert widest(16, 8, 32) == 8
    assert widest(12, 8, 32) == 4
    assert widest(16, 16, 4) == 4
    assert widest(3, 4, 8) == 1
    assert list(widest(24, np.array([1, 6, 8, 24]), 16)) == [1, 6, 8, 12]


def test_stream_widths_follow_channels_lanes_the_movers_and_the_merges():
    n = _wide_net("c8")
    infos = list(n.info)
    par = {"conv1": dfp.Parallelism(8, 3, 3), "conv2": dfp.Parallelism(4, 8, 3), "fc1": dfp.Parallelism(1, 1)}
    w = stream_widths(infos, par, 32, 8)
    assert w[INPUT] == 3  # the input's 3 channels; conv1's 3 input lanes; at most 8 (the AXI beat)
    # conv1 -> pool1 -> conv2 is one class: conv1's 8 output lanes, conv2's 8 input lanes
    assert w["conv1"] == w["pool1"] == 8
    assert w["conv2"] == 4  # conv2's 4 output lanes
    assert w["gap1"] == 1  # a divisor of its input's width; fc1 reads one word a cycle
    assert stream_widths(infos, par, 2, 8)["conv1"] == 2  # the cap
    assert stream_widths(infos, par, 32, 2)[INPUT] == 1  # 3 words do not fit a 2-word AXI beat
    # a mover iteration moves lcm(V, P) words: whole AXI beats at its own index, a stream beat a cycle
    assert (
        dfs.mover_group(3, 8) == (3, 8)
        and dfs.mover_group(4, 8) == (1, 2)
        and dfs.mover_group(1, 4) == (1, 4)
    )


def test_a_residual_add_keeps_its_maps_one_word_wide(tmp_path):
    from test_residual import _onnx

    from fnas_hls.network.ir import Add
    from fnas_hls.network.onnx_frontend import load_onnx

    _, path = _onnx("basic_block", tmp_path)
    n = load_onnx(path).network
    infos = list(n.info)
    w = stream_widths(infos, df.all_lanes(infos), 32, 8)
    (add,) = [li for li in infos if isinstance(li.layer, Add)]
    for m in [*add.sources, add.name]:
        assert w[m] == 1
    assert max(w.values()) > 1  # the maps no add reads are wide


def test_out_start_with_beats_lets_every_beat_be_computed_first():
    """Brute force over every beat of a pixel: beat j of pixel c (channels j*Vo ..) is read at
    iteration out_start + c*J + j, after the block of its last channel has ended (the block of Pc
    pixels c // Pc)."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        depthwise = bool(rng.integers(0, 2))
        G, M = (int(rng.integers(1, 13)), 1) if depthwise else (1, int(rng.integers(1, 13)))
        N = 1 if depthwise else int(rng.integers(1, 7))
        K, C = int(rng.integers(1, 4)), int(rng.integers(1, 6))
        Pc = int(rng.integers(1, C + 1))
        Pm = 1 if depthwise else int(rng.integers(1, M + 1))
        Pg = int(rng.integers(1, G + 1)) if depthwise else 1
        Pn = int(rng.integers(1, N + 1))
        lanes = Pg * Pm
        Vo = int(widest(G * M, lanes, 16))
        g = dfp.WindowGeometry(G, M, N, 4, C, 4, C, K, K, 1, 1, 0, 0)
        MT, NT, GT = -(-M // Pm), -(-N // Pn), -(-G // Pg)
        B = NT * K * K
        J = G * M // Vo
        worst = max(
            ((c // Pc) * GT * MT + ((j + 1) * Vo - 1) // lanes + 1) * B - 1 - (c * J + j)
            for c in range(C)
            for j in range(J)
        )
        got = int(dfc.out_start(g, Pm, MT, NT, 7, 1, Pg=Pg, Vo=Vo, Pc=Pc))
        assert got == worst + 7, (G, M, N, K, C, Pm, Pn, Pg, Vo, Pc)


# --- the schedule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, board, precision",
    [("s32", "zcu104", "fixed16"), ("c8", "pynq", "fixed16"), ("dw_flatten", "zcu104", "int8"),
     ("avgpool_nopad", "zcu104", "fixed16")],
)  # fmt: skip
def test_wide_schedule_against_event_simulation(case, board, precision):
    """The event simulation reads and writes beats as the kernels do: the model's latency is the
    simulated one or a little above, and no FIFO ever holds more beats than its depth."""
    a, reg, sim = analyze_and_simulate(_wide_net(case), load_board(board), precision)
    assert max(s.width for s in a.streams) > 1
    assert reg.schedule.latency == a.latency_cycles
    assert sim.latency <= reg.schedule.latency <= sim.latency * 1.03 + 10
    for model_end, sim_end in zip(reg.schedule.ends, sim.ends, strict=True):
        assert model_end >= sim_end
    for peak, depth in zip(sim.peaks, reg.schedule.fifo_depths, strict=True):
        assert peak <= depth


def test_wide_region_survives_any_one_process_slowed():
    """Every process in turn at twice its II over the chosen FIFO depths: no deadlock, and no
    faster than with none slowed."""
    n = _wide_net("c8")
    board, prec = load_board("pynq"), get_precision("fixed16")
    a, reg, sim = analyze_and_simulate(n, board, "fixed16")
    par = {lc.name: lc.tiling for lc in a.layers if lc.tiling is not None}
    P, depths = board.axi_words_per_cycle(prec.bits), list(reg.schedule.fifo_depths)
    for p in reg.processes:
        r = simulate_bounded(list(n.info), reg, par, prec, P, depths, {p.name: 2})
        assert r.latency is not None and r.latency >= sim.latency, (p.name, r)


def test_wide_streams_take_the_small_net_off_the_word_a_cycle_bound():
    """The 32x32 two-conv net on zcu104: at one word a cycle (cap 1) its 16-channel map takes
    16,384 cycles to cross; the style's choice is at least twice as fast and fits."""
    n = _wide_net("s32")
    board, prec = load_board("zcu104"), get_precision("fixed16")
    a = analyze(n, board, prec, style="dataflow")
    par = {lc.name: lc.tiling for lc in a.layers if lc.tiling is not None}
    cnames, top = design_names([li.name for li in n.info], n.name)
    narrow = df.region(list(n.info), cnames, top, par, prec, board, cap=1)
    assert a.fits and a.latency_cycles * 2 < narrow.schedule.latency
    # each FIFO's block RAM is counted at its width
    assert all(s.bram18k == df.fifo_bram18k(s.depth, prec.bits * s.width) for s in a.streams)


# --- C simulation -----------------------------------------------------------------------------


@needs_gxx
@pytest.mark.parametrize(
    "case, board, precision",
    [("s32", "zcu104", "int8"), ("c8", "pynq", "fixed16"), ("dw_flatten", "zcu104", "fixed16"),
     ("avgpool_nopad", "zcu104", "fixed16"), ("c8", "zcu104", "float32")],
)  # fmt: skip
def test_wide_streams_csim_bit_exact(case, board, precision, tmp_path):
    n = _wide_net(case)
    shape = [n.input.c, n.input.h, n.input.w]
    rng = np.random.default_rng(3)
    calib = rng.standard_normal((16, *shape)).astype(np.float32)
    tests = rng.standard_normal((3, *shape)).astype(np.float32)
    res = emit_project(
        n, load_board(board), tmp_path / "prj", precision, calib, test_inputs=tests, style="dataflow"
    )
    manifest = json.loads((tmp_path / "prj" / "manifest.json").read_text())
    widths = [s["width"] for s in manifest["streams"]]
    assert max(widths) > 1, widths
    top = (tmp_path / "prj" / "src" / f"{res.top}.cpp").read_text()
    assert "FNAS_STREAM_W(" in top
    out = run_csim(tmp_path / "prj", opt="-O1")
    assert out.bit_exact, out.verdict
    assert out.vectors == 3


# --- kernel rows side by side -----------------------------------------------------------------


@needs_gxx
@pytest.mark.parametrize("precision", ["fixed16", "int8"])
def test_kernel_rows_side_by_side_csim_bit_exact(precision, tmp_path, monkeypatch):
    """The 32x32 net's first layer (3 input channels) on zcu104 unrolls its kernel rows (Ph 2 of its
    3: the second step's second row is padding, masked) where it computes one output column a step:
    its MAC step reads two line-buffer rows at once; the design C-simulates bit-exact."""
    force_columns(monkeypatch, 1)
    n = _wide_net("s32")
    rng = np.random.default_rng(4)
    calib = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)
    tests = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    res = emit_project(
        n, load_board("zcu104"), tmp_path / "prj", precision, calib, test_inputs=tests, style="dataflow"
    )
    par = {lc.name: lc.tiling for lc in res.analysis.layers if lc.tiling is not None}
    assert par["conv1"].Ph > 1, par
    manifest = json.loads((tmp_path / "prj" / "manifest.json").read_text())
    (entry,) = [e for e in manifest["layers"] if e["name"] == "conv1"]
    assert entry["tiling"]["Ph"] == par["conv1"].Ph
    out = run_csim(tmp_path / "prj", opt="-O1")
    assert out.bit_exact, out.verdict


def test_kernel_rows_cost_what_they_unroll():
    """Ph kernel rows a step: the MAC loop takes ceil(Kh/Ph) steps a window where it took Kh, the
    DSPs are Ph times as many, and every line-buffer row is a bank of its own."""
    g = dfp.WindowGeometry.of(_wide_net("s32").info[0])
    prec = get_precision("fixed16")
    one = dfc.conv_stage(g, 16, 3, prec, load_board("zcu104").mac_cost(prec), 3, 1)
    three = dfc.conv_stage(g, 16, 3, prec, load_board("zcu104").mac_cost(prec), 3, 1, Ph=3)
    assert one.mac == g.C * g.Kh and three.mac == g.C
    assert three.dsp == 3 * one.dsp
    assert three.row_depth > one.row_depth  # a deeper adder tree
    assert three.lut > one.lut  # each row lane selects its bank out of Kh + Sh
    # the float sum keeps the reference's order: no kernel rows side by side
    from fnas_hls.dse.dataflow import stage_front

    f32 = get_precision("float32")
    assert set(stage_front(g, f32, load_board("zcu104").mac_cost(f32)).ph) == {1}
    assert 3 in set(stage_front(g, prec, load_board("zcu104").mac_cost(prec)).ph)
