"""Residual Add and channel Concat on the FPGA: the IR as a DAG, import, quantization, the model,
the rendered units and the C simulation, for a torch ResNet basic block and a SqueezeNet fire module."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from readme_check import check_readme
from torch import nn

from fnas_hls.backend.float_model import run_float
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.backend.project_context import feature_map_places
from fnas_hls.backend.quantize import quantize_network
from fnas_hls.boards import load_board
from fnas_hls.cli import main
from fnas_hls.errors import FnasError
from fnas_hls.model import hls_rules as rules
from fnas_hls.network.ir import INPUT, Add, Concat, Conv, HostOp, Network, Shape
from fnas_hls.network.onnx_frontend import load_onnx
from fnas_hls.precision import get_precision
from fnas_hls.resources import MacCost, Resources
from fnas_hls.styles import analyze

sys.path.insert(0, str(Path(__file__).parent))
from test_onnx_frontend import export  # noqa: E402

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


class BasicBlock(nn.Module):
    """A ResNet basic block (Conv-BN-ReLU, Conv-BN, + identity, ReLU) between a stem and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)
        with torch.no_grad():  # batch-norm statistics other than the identity
            for bn in (self.bn1, self.bn2):
                bn.running_mean.uniform_(-0.2, 0.2)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        x = torch.relu(x + y)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Fire(nn.Module):
    """A SqueezeNet fire module (squeeze 1x1, expand 1x1 and 3x3, concat) between a stem and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.squeeze = nn.Conv2d(8, 4, 1)
        self.expand1 = nn.Conv2d(4, 6, 1)
        self.expand3 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(12 * 5 * 5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.relu(self.squeeze(torch.relu(self.stem(x))))
        x = torch.cat([torch.relu(self.expand1(s)), torch.relu(self.expand3(s))], 1)
        x = nn.functional.max_pool2d(x, 2)
        return self.fc(torch.flatten(x, 1))


SHAPE = (1, 3, 10, 10)
MODELS = {"basic_block": BasicBlock, "fire": Fire}


def _onnx(name: str, tmp_path: Path) -> tuple[nn.Module, Path]:
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    return model, export(model, SHAPE, tmp_path / f"{name}.onnx")


def _net(layers, shape=(4, 5, 5)) -> Network:
    return Network(Shape(*shape), tuple(layers), "t")


# --- the IR -------------------------------------------------------------------------------------


def test_add_and_concat_infer_their_shapes():
    c1 = Conv("a", out=4, kernel=(3, 3), padding=(1, 1, 1, 1))
    c2 = Conv("b", out=6, kernel=(1, 1), inputs=(INPUT,))
    net = _net(
        [c1, c2, Concat("cat", inputs=("a", "b")), Conv("c", out=4, kernel=(1, 1)), Add("s", ("a", "c"))]
    )
    assert net["cat"].out_shape == Shape(10, 5, 5) and net["cat"].sources == ("a", "b")
    assert net["s"].out_shape == Shape(4, 5, 5) and net["s"].in_shapes == (Shape(4, 5, 5),) * 2
    assert net.readers()["a"] == ["cat", "s"] and not net.is_chain


def test_bad_merges_are_one_line():
    c1 = Conv("a", out=4, kernel=(3, 3))
    with pytest.raises(FnasError, match=r"layer 's' \(add\) sums maps of different shapes: 4x3x3, 4x5x5"):
        _net([c1, Add("s", ("a", INPUT))])
    with pytest.raises(FnasError, match=r"layer 'cat' \(concat\) stacks maps of different heights"):
        _net([c1, Concat("cat", ("a", INPUT))])
    with pytest.raises(FnasError, match=r"layer 's' \(add\) reads 1 map\(s\); it needs two or more"):
        _net([c1, Add("s")])
    with pytest.raises(FnasError, match=r"layer 'c' \(conv\) reads 2 maps; it takes one"):
        _net([c1, Conv("c", out=2, kernel=(1, 1), inputs=("a", INPUT))])


# --- import and the float model -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_torch_blocks_import_with_their_merges_on_the_fpga(name, tmp_path):
    model, path = _onnx(name, tmp_path)
    result = load_onnx(path)  # no host operators needed
    net = result.network
    assert not any(isinstance(li.layer, HostOp) for li in net)
    merge = [li.layer for li in net if isinstance(li.layer, (Add, Concat))]
    assert len(merge) == 1
    if name == "basic_block":
        assert isinstance(merge[0], Add) and merge[0].relu  # the ReLU after the sum is fused
        assert sum(isinstance(li.layer, Conv) for li in net) == 3  # both batch norms folded
    else:
        assert isinstance(merge[0], Concat) and net[merge[0].name].out_shape == Shape(12, 10, 10)
    x = torch.randn(4, *SHAPE[1:])
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(run_float(net, x.numpy()), want, rtol=1e-4, atol=1e-5)


# --- quantization -------------------------------------------------------------------------------


def test_an_add_aligns_inputs_of_different_formats_and_a_concat_rounds_to_one():
    rng = np.random.default_rng(0)
    wa = rng.standard_normal((4, 4, 1, 1)).astype(np.float32) * 8  # a wide range: a coarse format
    wb = rng.standard_normal((4, 4, 1, 1)).astype(np.float32) * 0.1  # a narrow one: a fine format
    net = _net(
        [
            Conv("a", out=4, kernel=(1, 1), weight=wa, bias=False),
            Conv("b", out=4, kernel=(1, 1), inputs=(INPUT,), weight=wb, bias=False),
            Add("s", ("a", "b")),
            Concat("cat", ("a", "b")),
        ]
    )
    plan = quantize_network(net, "fixed16", rng.standard_normal((8, 4, 5, 5)).astype(np.float32))
    fa, fb = plan["a"].out_type.frac, plan["b"].out_type.frac
    assert fb > fa
    s = plan["s"]
    assert s.in_types[0].frac == fa and s.in_types[1].frac == fb
    assert s.aligns == (fb - fa, 0) and s.shift == fb - s.out_type.frac >= 0
    cat = plan["cat"]
    assert cat.out_type.frac <= fa and cat.aligns == (fa - cat.out_type.frac, fb - cat.out_type.frac)


# --- the model ----------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["fixed16", "float32"])
def test_merge_costs_follow_their_loops(precision):
    net = _net([Conv("a", out=4, kernel=(1, 1)), Add("s", ("a", INPUT)), Concat("cat", ("s", "a", INPUT))])
    board = load_board("pynq")
    # sequential: a unit per layer, ADD at II 2 (two reads on the one map port), a CONCAT loop per input
    a = analyze(net, board, precision, style="sequential")
    costs = {lc.name: lc for lc in a.layers}
    add = costs["s"].functions[0].loops[0]
    assert (costs["s"].functions[0].name, add.label, add.trip, add.ii) == ("s", "ADD", 100, 2)
    assert costs["s"].cycles == rules.function_latency(add.latency)
    loops = costs["cat"].functions[0].loops
    assert [(lp.label, lp.trip, lp.ii) for lp in loops] == [(f"CONCAT_{i}", 100, 1) for i in range(3)]
    assert costs["cat"].cycles == rules.function_latency(
        sum(rules.sequential_block(lp.latency) for lp in loops)
    )
    assert costs["s"].resources.lut > 0 and costs["cat"].resources.lut > 0
    # shared: the same ADD loop as a call of the add unit; a concat is one copy-unit call per input
    b = analyze(net, board, precision, style="shared")
    shared = {lc.name: lc for lc in b.layers}
    assert shared["s"].functions[0].name == "fnas_add2" and shared["s"].cycles == costs["s"].cycles
    calls = shared["cat"].functions
    assert [(f.name, f.loops[0].label, f.loops[0].trip) for f in calls] == [("fnas_copy", "COPY", 100)] * 3
    blocks = sum(rules.sequential_block(f.latency) for f in calls)
    assert (
        shared["cat"].cycles == blocks - rules.SEQUENTIAL_BLOCK_OVERHEAD
    )  # the top adds one block per layer
    assert shared["s"].resources == shared["cat"].resources == Resources()  # the units count once:
    two = _net([Conv("a", out=4, kernel=(1, 1)), Concat("c1", ("a", INPUT)), Concat("c2", ("c1", INPUT))])
    more = analyze(two, board, precision, style="shared")
    one = analyze(
        _net([Conv("a", out=4, kernel=(1, 1)), Concat("c1", ("a", INPUT))]), board, precision, style="shared"
    )
    assert more.resources.lut - more.engine.resources(more.precision, MacCost()).lut == (
        one.resources.lut - one.engine.resources(one.precision, MacCost()).lut
    )
    # dataflow: a process each, and a fork for every map that several processes read
    d = analyze(net, board, precision, style="dataflow")
    ops = [lc.op for lc in d.layers]
    assert ops.count("fork") == 2 and "add" in ops and "concat" in ops  # the input (3 readers) and 'a' (2)
    assert {(s.src, s.dst) for s in d.streams} >= {("s", "cat"), ("a_fork", "s"), ("a_fork", "cat")}


def test_resnet50_adds_run_on_the_fpga():
    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_resnet50.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is not in this onnx wheel")
    net = load_onnx(path).network  # no host operator at all now
    adds = [li for li in net if isinstance(li.layer, Add)]
    assert len(adds) == 16 and all(li.layer.relu for li in adds)
    a = analyze(net, load_board("zcu102"), "fixed16", style="shared")
    assert a.fits
    costs = {lc.name: lc for lc in a.layers}
    infos = list(net.info)
    # every add is on the FPGA, in the store of the conv just before it (model.shared.fused_adds)
    assert all(costs[li.name].bound == f"fused into {infos[i - 1].name}" for i, li in adds_at(net))
    assert all(costs[li.name].cycles == 0 and not costs[li.name].functions for li in adds)


def adds_at(net: Network) -> list[tuple[int, object]]:
    return [(i, li) for i, li in enumerate(net.info) if isinstance(li.layer, Add)]


# --- emit and C simulation ----------------------------------------------------------------------


def _span(net: Network, where: dict[str, str], name: str) -> tuple[int, int] | None:
    """The words of the fmap region a map takes (None: the input or the output port)."""
    w = where[name]
    if not w.startswith("fmap"):
        return None
    start = int(w.split("+")[1]) if "+" in w else 0
    return start, start + net[name].out_shape.size


@pytest.mark.parametrize("name", sorted(MODELS))
def test_feature_maps_are_placed_without_overlapping_a_live_one(name, tmp_path):
    _, path = _onnx(name, tmp_path)
    net = load_onnx(path).network
    where, words = feature_map_places(net)
    assert where[INPUT] == "input" and where[net.info[-1].name] == "output"
    for i, li in enumerate(net.info):
        mine = _span(net, where, li.name)
        if mine is None or li.layer.op == "flatten":
            continue
        assert mine[1] <= words
        # no map written before this layer and read by it or after it may share its words
        later = {s for lj in net.info[i:] for s in lj.sources} - {INPUT}
        for other in later:
            theirs = _span(net, where, other)
            if theirs is not None and net[other].index < i:
                assert mine[1] <= theirs[0] or theirs[1] <= mine[0], (li.name, other)


@needs_gxx
@pytest.mark.parametrize("precision", ["fixed16", "float32"])
@pytest.mark.parametrize("style", ["sequential", "shared", "dataflow"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_blocks_emit_and_csim_bit_exact(name, style, precision, tmp_path):
    from fnas_hls.backend.csim import run_csim

    model, path = _onnx(name, tmp_path)
    net = load_onnx(path).network
    rng = np.random.default_rng(1)
    calib = rng.standard_normal((16, *SHAPE[1:])).astype(np.float32)
    res = emit_project(net, load_board("pynq"), tmp_path / "p", precision, calib, style=style)
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact and out.vectors == 16, out.verdict
    assert res.analysis.style == style
    check_readme(tmp_path / "p")  # the README names this style's functions (fnas_add2, forks, ...)
    merge = "add" if name == "basic_block" else "concat"
    if style != "shared":  # a unit (a process) of its own
        assert any(f"({merge})" in p.read_text() for p in (tmp_path / "p" / "src").glob("*.h"))
    elif merge == "add":  # in the store of the conv before it, the other input through fmap_skip
        top = (tmp_path / "p" / "src" / f"{res.top}.cpp").read_text()
        assert "fnas_add2(" not in top and "(computed by the store of" in top
        assert "port=fmap_skip offset=slave bundle=gmem_skip" in top
    else:  # calls of the shared copy unit
        assert "fnas_copy(" in (tmp_path / "p" / "src" / f"{res.top}.cpp").read_text()
    # the reference (so the C++) against torch, within what the quantization costs
    with torch.no_grad():
        want = model(torch.from_numpy(calib)).numpy()
    if style == "dataflow":  # the testbench's outputs are in stream order (HWC); the head's are flat
        assert tuple(net.output.as_list())[1:] == (1, 1)
    vec = np.load(tmp_path / "p" / "tb" / "vectors.npz")
    got = vec["golden"].astype(np.float64) * (
        1.0 if precision == "float32" else 2.0 ** -int(vec["output_frac"])
    )
    assert np.max(np.abs(got - want)) < (1e-4 if precision == "float32" else 0.05)


@pytest.mark.parametrize("precision", ["fixed16", "float32"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_dataflow_schedule_of_the_blocks_against_the_event_simulation(name, precision, tmp_path):
    """Forks, the skip path's FIFO and the joins: the model's schedule is the simulated one or a
    little above, and no FIFO ever holds more than the depth the schedule gave it."""
    from dataflow_sim import analyze_and_simulate

    _, path = _onnx(name, tmp_path)
    a, reg, sim = analyze_and_simulate(load_onnx(path).network, load_board("pynq"), precision)
    assert sim.latency <= reg.schedule.latency <= sim.latency * 1.03 + 10, (sim.ends, reg.schedule.ends)
    assert len(sim.peaks) == len(reg.schedule.fifo_depths)
    assert all(p <= d for p, d in zip(sim.peaks, reg.schedule.fifo_depths, strict=True))
    if name == "basic_block":  # the skip path waits for two convolutions: rows of the map
        skip = [s for s in a.streams if s.src.endswith("_fork") and s.dst == "/Add"]
        assert len(skip) == 1 and skip[0].depth > 2 * 10 * 8


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dataflow_region_survives_any_one_process_slowed(name, tmp_path):
    """Every process of the region in turn at twice its II (a stall csynth's schedule did not
    foresee), over FIFOs of the depths the model chose and blocking writes: the region finishes (no
    deadlock; ``dataflow_sim.simulate_bounded``), no faster than with no process slowed. The check
    can fail: the basic block's skip FIFO cut to two words deadlocks (the join waits for the
    convolutions, which wait for the fork, which waits for room in the skip FIFO)."""
    from dataflow_sim import analyze_and_simulate, simulate_bounded

    from fnas_hls.precision import get_precision

    _, path = _onnx(name, tmp_path)
    net = load_onnx(path).network
    board, prec = load_board("pynq"), get_precision("fixed16")
    a, reg, sim = analyze_and_simulate(net, board, "fixed16")
    par = {lc.name: lc.tiling for lc in a.layers if lc.tiling is not None}
    P, depths = board.axi_words_per_cycle(prec.bits), list(reg.schedule.fifo_depths)
    assert simulate_bounded(list(net.info), reg, par, prec, P, depths).latency == sim.latency
    for p in reg.processes:
        r = simulate_bounded(list(net.info), reg, par, prec, P, depths, {p.name: 2})
        assert r.latency is not None and r.latency >= sim.latency, (p.name, r)
    if name == "basic_block":
        procs = reg.processes
        (skip,) = [
            i
            for i, (src, dst, _) in enumerate(reg.schedule.edges)
            if procs[src].op == "fork" and procs[dst].op == "add"
        ]
        depths[skip] = 2
        assert simulate_bounded(list(net.info), reg, par, prec, P, depths).latency is None


@needs_gxx
def test_the_cli_emits_a_fire_module_in_the_fastest_style_and_csim_passes(tmp_path, capsys):
    _, path = _onnx("fire", tmp_path)
    assert main(["emit", str(path), "--board", "pynq", "-o", str(tmp_path / "p")]) == 0
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest["style"] == "dataflow"  # auto: the fastest, streams with a fork and a join
    assert main(["csim", str(tmp_path / "p")]) == 0
    assert "csim PASS: bit-exact with the reference model (0 differing outputs" in capsys.readouterr().out


# --- adds in the shared engine's store ------------------------------------------------------------


def _chain() -> Network:
    """Residual adds of every kind the shared engine meets: one with the network's input (left to
    the add unit), one that takes the conv before it as its first input and one as its second (a
    stride-2 block whose skip is a 1x1 conv), one with a ReLU and one without."""
    from fnas_hls.network.ir import Dense, GlobalAvgPool

    p1 = (1, 1, 1, 1)
    return _net(
        [
            Conv("ca", out=3, kernel=(3, 3), padding=p1),
            Add("a0", inputs=(INPUT, "ca"), relu=True),  # skip from the input: not fused
            Conv("c0", out=8, kernel=(3, 3), padding=p1, relu=True),
            Conv("c1", out=8, kernel=(3, 3), padding=p1, relu=True),
            Conv("c2", out=8, kernel=(3, 3), padding=p1),
            Add("a1", inputs=("c2", "c0"), relu=True),
            Conv("c3", out=16, kernel=(3, 3), stride=(2, 2), padding=p1, relu=True),
            Conv("d3", out=16, kernel=(1, 1), stride=(2, 2), inputs=("a1",)),
            Conv("c4", out=16, kernel=(3, 3), padding=p1, inputs=("c3",)),
            Add("a2", inputs=("d3", "c4")),
            GlobalAvgPool("gap"),
            Dense("fc", out=5),
        ],
        shape=(3, 9, 9),
    )


def test_the_shared_engine_fuses_the_adds_that_follow_a_conv():
    from fnas_hls.model.shared import fused_adds

    net = _chain()
    assert fused_adds(list(net.info)) == {"a1": "c2", "a2": "c4"}
    board = load_board("pynq")
    a = analyze(net, board, "fixed16", style="shared")
    costs = {lc.name: lc for lc in a.layers}
    assert costs["a0"].functions[0].name == "fnas_add2" and costs["a0"].cycles > 0
    assert costs["a1"].bound == "fused into c2" and costs["a1"].cycles == 0 and not costs["a1"].functions
    # the fused conv's store reads the skip map beside its writes: a word more for every word out
    from fnas_hls.model.shared import stores_beats
    from fnas_hls.model.shared_engine import engine_layer_cost, engine_terms
    from fnas_hls.model.shared_fabric import STORE_PORTS
    from fnas_hls.model.shared_views import engine_geometry
    from fnas_hls.precision import get_precision

    t, prec = costs["c2"].tiling, get_precision("fixed16")
    beats = stores_beats(list(net.info), a.padded_maps)["c2"]  # a word a port, or a beat (STORE_B)
    alone = engine_layer_cost(net["c2"], a.engine, t.Tr, t.Tc, board, prec, beats=beats)
    k = engine_terms(engine_geometry(net["c2"]), a.engine, t.Tr, t.Tc, prec, beats=beats)
    skip_words = k.tiles * k.store_trip * STORE_PORTS * (a.engine.beat_words if beats else 1)
    assert a.engine.skip and costs["c2"].ddr_bytes == alone.ddr_bytes + skip_words * 2
    assert a.engine.store_depth(a.precision) > replace(a.engine, skip=False).store_depth(a.precision)
    # its place: never over the conv's own input, the skip, or a map still to be read
    where, _ = feature_map_places(net, fused_adds(list(net.info)))
    assert where["c2"] == where["a1"] and where["c4"] == where["a2"]
    for add, conv, skip in (("a1", "c2", "c0"), ("a2", "c4", "d3")):
        out = _span(net, where, add)
        for other in (net[conv].sources[0], skip):
            theirs = _span(net, where, other)
            assert theirs is None or out[1] <= theirs[0] or theirs[1] <= out[0], (add, other)


@needs_gxx
@pytest.mark.parametrize(
    "precision,board", [("fixed16", "pynq"), ("int8", "pynq"), ("float32", "pynq"), ("int8", "zcu102")]
)
def test_fused_adds_csim_bit_exact(precision, board, tmp_path):
    from fnas_hls.backend.csim import run_csim
    from fnas_hls.backend.float_model import with_random_weights

    net = with_random_weights(_chain())
    rng = np.random.default_rng(3)
    calib = rng.standard_normal((16, 3, 9, 9)).astype(np.float32)
    tests = rng.standard_normal((4, 3, 9, 9)).astype(np.float32)
    res = emit_project(
        net, load_board(board), tmp_path / "p", precision, calib, test_inputs=tests, style="shared"
    )
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact and out.vectors == 4, out.verdict
    top = next((tmp_path / "p" / "src").glob("*_top.cpp")).read_text()
    assert top.count("fnas_add2(") == 1 and top.count("(computed by the store of") == 2
    if board == "zcu102":  # 16 int8 words a beat: a1's map stored in whole beats, its skip map read so
        assert {"a1", "c0"} <= res.analysis.padded_maps
        assert (
            "fmap_skipb" in top
            and "fnas_engine_store_b(" in (tmp_path / "p" / "src" / "engine.cpp").read_text()
        )


@needs_gxx
@pytest.mark.parametrize("precision", ["fixed16", "int8", "float32"])
def test_three_input_adds_share_one_add_unit(precision, tmp_path):
    """NAS-Bench-201's node sums add three maps. In the shared style every add of three inputs calls
    the one fnas_add3 (II 3), as two-input adds call fnas_add2: two such adds cost one unit's
    resources (before, each was a unit of its own: 15 a cell, 3,300 LUTs each), and the design
    C-simulates bit-exact."""
    from fnas_hls.backend.csim import run_csim
    from fnas_hls.backend.float_model import with_random_weights
    from fnas_hls.model import shared as sh

    def conv(name, src):
        return Conv(name, out=4, kernel=(3, 3), padding=(1, 1, 1, 1), relu=True, inputs=(src,))

    layers = [
        conv("a", INPUT),
        conv("b", "a"),
        conv("c", "a"),
        Add("s1", ("a", "b", "c")),
        conv("d", "s1"),
        conv("e", "s1"),
        Add("s2", ("s1", "d", "e")),
    ]
    net = with_random_weights(Network(Shape(3, 8, 8), tuple(layers), "sum3"), 2)
    infos = list(net.info)
    assert [sh.add_unit(li) for li in infos if isinstance(li.layer, Add)] == ["fnas_add3"] * 2
    board, prec = load_board("zcu104"), get_precision(precision)
    one, both = sh.merge_units(infos[:4], prec, board), sh.merge_units(infos, prec, board)
    assert one == both and one.lut > 0  # one unit, whatever the number of adds that call it
    rng = np.random.default_rng(3)
    calib = rng.standard_normal((12, 3, 8, 8)).astype(np.float32)
    res = emit_project(net, load_board("zcu104"), tmp_path / "p", precision, calib, style="shared")
    assert res.analysis.style == "shared"
    top = (tmp_path / "p" / "src" / f"{res.top}.cpp").read_text()
    assert top.count("fnas_add3(") == 2 and "instances=fnas_add3 limit=1" in top
    assert not (tmp_path / "p" / "src" / "s1.cpp").exists()
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict
