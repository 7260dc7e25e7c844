"""The synthesis-report parser and ``fnas-hls report``, on the real reports in ../shared/fixtures.

Every figure the fixture READMEs state is checked here, read from the file that states it; the
parser's refusals (missing, unknown, truncated, hostile, oversized input) are checked on files
made in a temporary folder. Fixture files are only read, never copied into the repository.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from fnas_hls.cli import main
from fnas_hls.errors import FnasError
from fnas_hls.reports import hls_report
from fnas_hls.reports.hls_report import (
    CosimReport,
    ReportResources,
    SynthesisReport,
    load_cosim,
    load_report,
    load_solution,
)
from fnas_hls.resources import Resources

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "hls_reports"
HJL = "HJL2020-s__FPGAZYNQ_TESTCONV"
PART_B = "Ritarka__8893Lab2/PartB_baseline"
PART_C = "Ritarka__8893Lab2/PartC_optimized"
SHARC = "sharc-lab__FPGA_ECE8893"
ARUN = "Arun-66__AN50_ZCU104"
#: Every folder that holds one synthesis run.
SOLUTIONS = [HJL, PART_B, PART_C, SHARC, *(f"{ARUN}/Conv{i}" for i in range(1, 6))]


def fixture(relative: str) -> Path:
    """A fixture file or folder; skips the test when ../shared/fixtures is not there."""
    if not FIXTURES.is_dir():
        pytest.skip(f"fixture reports not found at {FIXTURES}")
    return FIXTURES / relative


def report_files() -> list[str]:
    if not FIXTURES.is_dir():
        return []
    return sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*") if p.suffix in (".xml", ".rpt"))


def res(dsp: int, bram: int, ff: int, lut: int) -> tuple[int, int, int, int]:
    return dsp, bram, ff, lut


def used(module) -> tuple:
    r = module.resources
    return r.dsp, r.bram18k, r.ff, r.lut


# --- HJL2020: Vivado HLS 2019.2, flat XML, DSP48E, "?" top latency, missed II -----------------


def test_hjl_solution_header_and_top():
    r = load_solution(fixture(HJL))
    assert (r.tool, r.version, r.part, r.top) == ("Vivado HLS", "2019.2", "xc7z020-clg400-2", "conv")
    assert (r.target_clock_ns, r.clock_uncertainty_ns, r.estimated_clock_ns) == (10.0, 1.25, 8.75)
    top = r.top_module
    assert r.modules[0] is top
    # The top latency is "undef" in the XML and "?" in the .rpt: unknown, never 0.
    assert (top.latency_best, top.latency_avg, top.latency_worst) == (None, None, None)
    assert (top.interval_min, top.interval_max, top.latency) == (None, None, None)
    # Vivado HLS 2019.2 says DSP48E; it reads as dsp.
    assert used(top) == res(51, 54, 10926, 19831)
    assert top.resources.uram == 0
    assert top.available == ReportResources(dsp=220, bram18k=280, lut=53200, ff=106400, uram=0)
    bias = top.loop("memcpy.bias_buff.V.addr.bias.V")
    assert (bias.trip, bias.latency, bias.ii, bias.depth, bias.pipelined) == (64, 64, 1, 2, True)
    while_loop = top.loop("Loop2")
    assert (while_loop.trip_min, while_loop.trip_max, while_loop.latency_best, while_loop.latency_worst) == (
        None,
        None,
        None,
        None,
    )
    assert while_loop.iteration_latency == 3926876 and not while_loop.pipelined
    assert set(top.calls) == {"compute_output", "load_input"}


def test_hjl_compute4_missed_ii():
    r = load_solution(fixture(HJL))
    compute4 = r.module("compute4")
    assert compute4.latency == 921997 and compute4.estimated_clock_ns == 8.556
    assert (compute4.interval_min, compute4.interval_max) == (921997, 921997)
    assert used(compute4) == res(49, 0, 3824, 13156)
    (loop,) = compute4.loops
    assert (loop.name, loop.trip, loop.ii, loop.depth, loop.latency) == ("Loop1", 38416, 24, 36, 921995)
    assert loop.ii_target == 1  # from compute4_csynth.rpt: the XML does not state the target
    assert loop.pipelined and loop.iteration_latency == 36
    # From the XML alone the target is unknown, not guessed.
    alone = load_report(fixture(f"{HJL}/compute4_csynth.xml")).top_module.loops[0]
    assert alone.ii == 24 and alone.ii_target is None


def test_hjl_other_modules():
    r = load_solution(fixture(HJL))
    weight = r.module("load_weight")
    assert weight.latency == 2362
    (copy,) = weight.loops
    assert (copy.name, copy.trip, copy.ii, copy.depth, copy.latency) == (
        "memcpy.wt_buff.V.gep.weight.V",
        2352,
        1,
        3,
        2353,
    )
    store = r.module("store_output")
    assert store.latency == 57353
    nest = [(level, loop.trip, loop.iteration_latency, loop.pipelined) for level, loop in store.walk_loops()]
    assert nest == [(0, 4, 14338, False), (1, 28, 512, False), (2, 28, 18, False), (3, 4, 4, False)]
    assert [loop.name for _, loop in store.walk_loops()] == ["Loop1", "Loop1.1", "Loop1.1.1", "Loop1.1.1.1"]
    assert all(loop.ii is None and loop.depth is None for _, loop in store.walk_loops())
    compute_output = r.module("compute_output")
    assert compute_output.latency == 3926873
    (outer,) = compute_output.loops
    assert (outer.trip, outer.iteration_latency, outer.latency) == (4, 981718, 3926872)
    assert set(compute_output.calls) == {"compute4", "store_output", "load_weight"}
    load_input = r.module("load_input")
    assert load_input.latency == 3746
    (rows,) = load_input.loops
    assert (rows.trip, rows.ii, rows.depth, rows.latency, rows.ii_target) == (3721, 1, 25, 3744, 1)


def test_hjl_rpt_reads_like_the_xml():
    """The .rpt of a module gives the figures of its XML ("Loop 1" there is "Loop1" here)."""
    for module in ("compute4", "load_input", "load_weight", "store_output", "compute_output"):
        xml = load_report(fixture(f"{HJL}/{module}_csynth.xml")).top_module
        rpt = load_report(fixture(f"{HJL}/{module}_csynth.rpt")).top_module
        assert (xml.latency_best, xml.latency_worst) == (rpt.latency_best, rpt.latency_worst)
        assert (xml.interval_min, xml.interval_max) == (rpt.interval_min, rpt.interval_max)
        assert xml.resources == rpt.resources and xml.available == rpt.available
        for (_, a), (_, b) in zip(xml.walk_loops(), rpt.walk_loops(), strict=True):
            assert (a.name, a.trip_min, a.trip_max, a.latency_best, a.latency_worst) == (
                b.name,
                b.trip_min,
                b.trip_max,
                b.latency_best,
                b.latency_worst,
            )
            assert (a.ii, a.depth, a.pipelined, a.iteration_latency) == (
                b.ii,
                b.depth,
                b.pipelined,
                b.iteration_latency,
            )
    top = load_report(fixture(f"{HJL}/conv_csynth.rpt"))
    assert top.top_module.latency_best is None and top.top_module.latency_worst is None  # "?"
    assert top.top_module.loop("Loop2").trip is None
    # Its instance table names the sub-modules and their latencies.
    assert top.module("compute_output").latency == 3926873
    assert top.module("load_input").latency == 3746


# --- Ritarka: Vitis HLS 2022.1, indented XML with <ModuleInformation>, ranges -------------------


def test_partb_header_ranges_and_resources():
    r = load_solution(fixture(PART_B))
    assert (r.tool, r.version, r.part, r.top) == ("Vitis HLS", "2022.1.2", "xc7z020-clg400-1", "tiled_conv")
    assert (r.target_clock_ns, r.clock_uncertainty_ns, r.estimated_clock_ns) == (10.0, 2.7, 7.3)
    top = r.top_module
    assert (top.latency_best, top.latency_worst) == (2502647809, 2561548289)
    assert top.latency is None  # a range has no single figure
    assert (top.interval_min, top.interval_max) == (2502647810, 2561548290)
    assert used(top) == res(10, 11, 5421, 8514)  # Vitis says DSP
    tiles = top.loop("TILE_ROW_TILE_COL_TILE_DEPTH")
    assert tiles.trip == 8192 and not tiles.pipelined
    assert (tiles.iteration_latency_min, tiles.iteration_latency_max) == (305499, 312689)
    assert (tiles.latency_best, tiles.latency_worst) == (2502647808, 2561548288)
    assert tiles.iteration_latency is None
    pixels = top.loop("VITIS_LOOP_38_4_VITIS_LOOP_40_5_VITIS_LOOP_41_6")
    assert (pixels.trip, pixels.iteration_latency, pixels.latency) == (1840, 164, 301760)
    assert pixels.calls == ("tiled_conv_Pipeline_VITIS_LOOP_43_7_VITIS_LOOP_44_8_VITIS_LOOP_45_9",)
    assert tiles.children == (pixels,)


def test_partb_pipelines():
    r = load_solution(fixture(PART_B))

    def single(module: str):
        m = r.module(module)
        (loop,) = m.loops
        return m.latency, loop.trip, loop.ii, loop.ii_target, loop.depth, loop.latency

    # The 3x7x7 reduction: README's "latency 156" is its module's; the loop itself is 154.
    assert single("tiled_conv_Pipeline_VITIS_LOOP_43_7_VITIS_LOOP_44_8_VITIS_LOOP_45_9") == (
        156,
        147,
        1,
        1,
        9,
        154,
    )
    assert single("tiled_conv_Pipeline_INPUT_BUFFER_DEPTH_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH")[:5] == (
        7189,
        7176,
        1,
        1,
        13,
    )
    assert single("tiled_conv_Pipeline_WEIGHT_KERNEL_NUM_WEIGHT_KERNEL_HEIGHT_WEIGHT_KERNEL_WIDTH")[:3] == (
        592,
        588,
        1,
    )
    assert single("tiled_conv_Pipeline_VITIS_LOOP_30_1_VITIS_LOOP_31_2_VITIS_LOOP_32_3")[:2] == (1845, 1840)
    assert r.module("tiled_conv_Pipeline_BIAS").latency == 7
    store = single("tiled_conv_Pipeline_OUTPUT_BUFFER_DEPTH_OUTPUT_BUFFER_HEIGHT_OUTPUT_BUFFER_WIDTH")
    assert (store[0], store[1], store[4]) == (1862, 1840, 22)
    # The sub-module of the 2022.1 per-module XML states its own estimated clock.
    assert (
        r.module("tiled_conv_Pipeline_VITIS_LOOP_30_1_VITIS_LOOP_31_2_VITIS_LOOP_32_3").estimated_clock_ns
        == 6.925
    )


def test_partb_text_reports():
    detailed = load_report(fixture(f"{PART_B}/tiled_conv_csynth.rpt")).top_module
    tiles = detailed.loop("TILE_ROW_TILE_COL_TILE_DEPTH")
    assert (tiles.iteration_latency_min, tiles.iteration_latency_max) == (305499, 312689)  # "305499 ~ 312689"
    assert (tiles.latency_best, tiles.latency_worst) == (2502647808, 2561548288)
    # Vitis' summary table states the worst case only: best stays unknown.
    summary = load_report(fixture(f"{PART_B}/csynth.rpt"))
    top = summary.top_module
    assert (top.latency_best, top.latency_worst, top.interval_max) == (None, 2561548289, 2561548290)
    summary_tiles = top.loop("TILE_ROW_TILE_COL_TILE_DEPTH")
    assert (summary_tiles.iteration_latency_min, summary_tiles.iteration_latency_max) == (None, 312689)
    assert summary_tiles.trip_max == 8192 and summary_tiles.trip_min is None
    assert used(top) == res(10, 11, 5421, 8514)
    assert summary.target_clock_ns is None  # the summary states no clock


def test_partc_optimized():
    r = load_solution(fixture(PART_C))
    top = r.top_module
    assert top.latency == 40137217 and (top.interval_min, top.interval_max) == (40137218, 40137218)
    assert used(top) == res(279, 0, 39616, 49260)
    tiles = top.loop("TILE_ROW_TILE_COL")
    assert (tiles.trip, tiles.iteration_latency) == (512, 78393)
    depth = top.loop("TILE_DEPTH")
    assert (depth.trip, depth.iteration_latency) == (16, 4450)
    assert tiles.children == (depth,)
    conv = r.module("conv_7x7")
    assert conv.latency == 1967
    (kernel,) = conv.loops
    assert (kernel.name, kernel.trip, kernel.ii, kernel.ii_target, kernel.depth, kernel.latency) == (
        "KERN_I_KERN_J_WIDTH",
        980,
        2,
        1,
        8,
        1965,
    )
    assert conv.resources.dsp == 276
    assert (
        r.module("tiled_conv_Pipeline_WEIGHT_KERNEL_NUM_WEIGHT_KERNEL_HEIGHT_WEIGHT_KERNEL_WIDTH").latency
        == 591
    )
    assert r.module("tiled_conv_Pipeline_BIAS").latency == 7
    assert (
        r.module("tiled_conv_Pipeline_OUTPUT_BUFFER_DEPTH_OUTPUT_BUFFER_HEIGHT_OUTPUT_BUFFER_WIDTH").latency
        == 1862
    )
    assert (
        r.module("tiled_conv_Pipeline_INPUT_BUFFER_DEPTH_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH").latency
        == 7189
    )


# --- sharc-lab: .rpt only (Vitis summary + the top's detailed report) ---------------------------


def test_sharc_summary_and_top():
    r = load_solution(fixture(SHARC))
    assert (r.tool, r.version, r.part, r.top) == ("Vitis HLS", "2022.1.2", "xc7z020-clg400-1", "yolov4_tiny")
    # The clock comes from yolov4_tiny_csynth.rpt, merged into the summary.
    assert (r.target_clock_ns, r.clock_uncertainty_ns, r.estimated_clock_ns) == (10.0, 2.7, 7.3)
    top = r.top_module
    assert top.latency == 234651524 and top.interval_max == 234651525
    assert used(top) == res(37, 42, 11024, 17187)
    copies = [
        ("yolov4_tiny_Pipeline_VITIS_LOOP_26_1_VITIS_LOOP_28_2_VITIS_LOOP_30_3", 519171, 519168),
        ("yolov4_tiny_Pipeline_VITIS_LOOP_563_3", 1384468, 1384448),
        ("yolov4_tiny_Pipeline_VITIS_LOOP_46_6", 692239, 692224),
    ]
    for name, latency, trip in copies:
        module = r.module(name)
        assert module.latency == latency  # best case from the top's instance table
        assert module.loops[0].trip_max == trip


def test_sharc_layer1():
    r = load_solution(fixture(SHARC))
    l1 = r.module("tiled_conv_L1")
    assert l1.latency == 10403329
    tiles = l1.loop("TILE_ROW_TILE_COL")
    assert (tiles.trip_max, tiles.iteration_latency_max, tiles.latency_worst) == (208, 50016, 10403328)
    channels = l1.loop("VITIS_LOOP_255_1")
    assert (channels.trip_max, channels.iteration_latency_max) == (3, 14442)
    assert tiles.children == (channels,)

    def worst(name: str) -> int | None:
        return r.module(name).latency_worst

    assert worst("tiled_conv_L1_Pipeline_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH") == 1095
    load_in = r.module("tiled_conv_L1_Pipeline_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH").loops[0]
    assert (load_in.trip_max, load_in.ii) == (1080, 1)
    weights = r.module("tiled_conv_L1_Pipeline_WEIGHT_KERNEL_NUM")
    assert weights.latency_worst == 299 and (weights.loops[0].trip_max, weights.loops[0].ii) == (32, 9)
    assert worst("tiled_conv_L1_Pipeline_BIAS") == 35
    # The summary cuts module names to 80 characters; with no other report to restore them,
    # the cut name stays (the loop label inside is whole).
    conv_name = "tiled_conv_L1_Pipeline_OUT_BUF_DEPTH_CHECK_OUT_BUF_HEIGHT_CHECK_OUT_BUF_WIDTH_CH"
    assert len(conv_name) == hls_report.SUMMARY_NAME_WIDTH
    conv = r.module(conv_name)
    assert conv.latency_worst == 6671
    assert (conv.loops[0].name, conv.loops[0].trip_max, conv.loops[0].ii, conv.loops[0].depth) == (
        "OUT_BUF_DEPTH_CHECK_OUT_BUF_HEIGHT_CHECK_OUT_BUF_WIDTH_CHECK",
        6656,
        1,
        15,
    )
    assert worst("tiled_conv_L1_Pipeline_VITIS_LOOP_194_1_VITIS_LOOP_196_2_VITIS_LOOP_198_3") == 6663
    assert worst("tiled_conv_L1_Pipeline_OUTPUT_BUFFER_DEPTH_OUTPUT_BUFFER_HEIGHT_OUTPUT_BUFFER_WI") == 6680


def test_sharc_layer2():
    r = load_solution(fixture(SHARC))
    l2 = r.module("tiled_conv_L2")
    assert l2.latency == 221652289
    groups = l2.loop("TILE_ROW_TILE_COL_KERNEL_GROUP")
    assert (groups.trip_max, groups.iteration_latency_max) == (5408, 40986)
    outputs = l2.loop("OUT_BUF_DEPTH_CHECK_OUT_BUF_HEIGHT_CHECK_OUT_BUF_WIDTH_CHECK")
    assert (outputs.trip_max, outputs.iteration_latency_max, outputs.latency_worst) == (128, 298, 38144)
    inner_name = "tiled_conv_L2_Pipeline_IN_BUF_DEPTH_CHECK_KERNEL_HEIGHT_CHECK_KERNEL_WIDTH_CHECK"
    assert outputs.calls == (inner_name,)
    inner = r.module(inner_name)
    assert inner.latency_worst == 295
    assert (inner.loops[0].trip_max, inner.loops[0].ii, inner.loops[0].depth) == (288, 1, 7)
    load_in = r.module("tiled_conv_L2_Pipeline_INPUT_BUFFER_DEPTH_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH")
    assert (load_in.latency_worst, load_in.loops[0].trip_max) == (2607, 2592)
    weights = r.module("tiled_conv_L2_Pipeline_WEIGHT_KERNEL_WIDTH")
    assert (weights.latency_worst, weights.loops[0].trip_max) == (2316, 2304)
    assert r.module("tiled_conv_L2_Pipeline_BIAS").latency_worst == 11
    accumulate = r.module("tiled_conv_L2_Pipeline_VITIS_LOOP_442_1")
    assert (accumulate.latency_worst, accumulate.loops[0].ii) == (67, 8)
    assert (
        r.module(
            "tiled_conv_L2_Pipeline_OUTPUT_BUFFER_DEPTH_OUTPUT_BUFFER_HEIGHT_OUTPUT_BUFFER_WI"
        ).latency_worst
        == 140
    )
    # Sub-modules appear once each, with the modules that call them.
    assert len({m.name for m in r.modules}) == len(r.modules) == 18


# --- Arun-66: Vitis HLS 2024.2 ------------------------------------------------------------------

ARUN_LAYERS = {
    # conv: (latency, estimated clock, (dsp, bram, ff, lut))
    1: (909365, 7.3, res(1836, 19, 184241, 314279)),
    2: (47387272, 7.685, res(97, 184, 218370, 213552)),
    3: (1332116, 7.3, res(2649, 415, 404166, 286860)),
    4: (1066024, 7.3, res(2649, 213, 612946, 429361)),
    5: (739496, 7.3, res(2649, 215, 613614, 430025)),
}


@pytest.mark.parametrize("n", sorted(ARUN_LAYERS))
def test_arun_layers(n: int):
    latency, clock, resources = ARUN_LAYERS[n]
    r = load_solution(fixture(f"{ARUN}/Conv{n}"))
    assert (r.tool, r.version, r.part, r.top) == ("Vitis HLS", "2024.2", "xczu7ev-ffvc1156-2-i", f"conv{n}")
    assert (r.target_clock_ns, r.clock_uncertainty_ns, r.estimated_clock_ns) == (10.0, 2.7, clock)
    top = r.top_module
    assert top.latency == latency and top.interval_max == latency + 1
    assert used(top) == resources
    assert top.available == ReportResources(dsp=1728, bram18k=624, lut=230400, ff=460800, uram=96)


def test_arun_loops():
    def loops(n: int) -> dict:
        r = load_solution(fixture(f"{ARUN}/Conv{n}"))
        return {loop.name: loop for m in r.modules for _, loop in m.walk_loops()}

    c1 = loops(1)
    assert (c1["L2_L3_L4"].trip, c1["L2_L3_L4"].ii) == (4767, 1)
    assert (c1["L5"].trip, c1["L6"].trip, c1["L6"].iteration_latency) == (55, 55, 299)
    assert (c1["L7"].ii, c1["L1"].trip, c1["L1"].ii, c1["L1"].depth) == (44, 96, 1, 56)
    c2 = loops(2)
    assert (c2["L1_1"].trip, c2["L1_1"].ii) == (46128, 1)
    assert (c2["L4"].trip, c2["L4"].iteration_latency) == (128, 184746)
    assert (c2["C1_1"].trip, c2["C1_1"].iteration_latency) == (48, 3808)
    assert (c2["L5_L6"].trip, c2["L5_L6"].ii, c2["L5_L6"].depth) == (729, 5, 109)
    c3 = loops(3)
    assert c3["L1_1"].trip == 57600 and (c3["L4"].trip, c3["L4"].iteration_latency) == (384, 3319)
    assert (c3["F1_1"].trip, c3["VITIS_LOOP_91_1"].trip) == (2304, 169)
    assert (c3["C1_1"].trip, c3["C1_1"].ii, c3["C1_1"].depth) == (256, 3, 47)
    assert (c3["M1"].trip, c3["M1"].ii) == (13, 13)
    c4 = loops(4)
    assert (c4["C1_1"].trip, c4["C1_1"].ii, c4["C1_1"].depth) == (192, 3, 47)
    assert (c4["L4"].trip, c4["L4"].iteration_latency) == (192, 2551)
    c5 = loops(5)
    assert (c5["L4"].trip, c5["L4"].iteration_latency, c5["C1_1"].trip) == (128, 2551, 192)


def test_arun_summary_rpt_states_its_own_lut_figure():
    """Conv1's summary csynth.rpt says 314285 LUTs where its XML and detailed .rpt say 314279."""
    assert load_report(fixture(f"{ARUN}/Conv1/csynth.rpt")).top_module.resources.lut == 314285
    assert load_report(fixture(f"{ARUN}/Conv1/conv1_csynth.rpt")).top_module.resources.lut == 314279
    assert load_solution(fixture(f"{ARUN}/Conv1")).top_module.resources.lut == 314279  # the XML wins


# --- every fixture file, and the command ---------------------------------------------------------


@pytest.mark.parametrize("relative", report_files())
def test_every_fixture_report_parses(relative: str):
    r = load_report(fixture(relative))
    assert isinstance(r, SynthesisReport) and r.modules and r.top_module.name == r.top
    assert r.tool in ("Vivado HLS", "Vitis HLS") and r.part
    json.dumps(r.as_dict())  # plain data all the way down
    for module in r.modules:
        for _, loop in module.walk_loops():
            assert loop.name and " " not in loop.name
            if loop.pipelined:
                assert loop.ii is not None and loop.depth is not None
            else:
                assert loop.ii is None and loop.depth is None and loop.ii_target is None


@pytest.mark.parametrize("relative", SOLUTIONS + report_files())
def test_report_command(relative: str, capsys):
    path = fixture(relative)
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    r = load_solution(path) if path.is_dir() else load_report(path)
    assert f"top:    {r.top}" in out
    for module in r.modules:
        assert module.name in out
        for _, loop in module.walk_loops():
            assert loop.name in out


def test_report_command_json(tmp_path: Path, capsys):
    out = tmp_path / "report.json"
    assert main(["report", str(fixture(HJL)), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["cosim"] is None
    synthesis = data["synthesis"]
    assert synthesis["top"] == "conv" and synthesis["version"] == "2019.2"
    compute4 = next(m for m in synthesis["modules"] if m["name"] == "compute4")
    assert compute4["loops"][0]["children"] == []
    assert (compute4["loops"][0]["ii"], compute4["loops"][0]["ii_target"]) == (24, 1)
    assert synthesis["modules"][0]["latency_best"] is None  # "?" stays null
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left
    assert "Loop1" in capsys.readouterr().out
    assert main(["report", str(fixture(HJL)), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["synthesis"]["top"] == "conv"


def test_report_command_json_refuses_bad_target(tmp_path: Path, capsys):
    assert main(["report", str(fixture(HJL)), "--json", str(tmp_path / "no" / "such" / "r.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(fixture(HJL)), "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_solution_layouts(tmp_path: Path):
    """Vivado HLS <proj>/<solution>/syn/report and Vitis <comp>/hls/syn/report, made of links."""

    def link_reports(source: Path, target: Path) -> None:
        target.mkdir(parents=True)
        for f in source.iterdir():
            if f.suffix in (".xml", ".rpt"):
                (target / f.name).symlink_to(f)

    link_reports(fixture(HJL), tmp_path / "vivado" / "test_conv" / "solution1" / "syn" / "report")
    for path in (tmp_path / "vivado" / "test_conv", tmp_path / "vivado" / "test_conv" / "solution1"):
        assert load_solution(path).module("compute4").loops[0].ii_target == 1
    link_reports(fixture(f"{ARUN}/Conv2"), tmp_path / "vitis" / "conv2" / "hls" / "syn" / "report")
    assert load_solution(tmp_path / "vitis").top == "conv2"
    assert load_solution(tmp_path / "vitis" / "conv2" / "hls").top == "conv2"
    link_reports(fixture(f"{ARUN}/Conv3"), tmp_path / "vitis" / "conv3" / "hls" / "syn" / "report")
    with pytest.raises(FnasError, match="several solutions") as err:
        load_solution(tmp_path / "vitis")
    assert "conv2" in str(err.value) and "conv3" in str(err.value)


# --- co-simulation ------------------------------------------------------------------------------

COSIM_VITIS = (
    "Report time       : Tue Mar 21 10:15:42 2023.\n"
    "Solution          : solution1.\n"
    "Simulation tool   : xsim.\n"
    "\n"
    "+----------+----------+-----------------------------------------------+"
    "-----------------------------------------------+----------------------+\n"
    "|          |          |             Latency(Clock Cycles)             |"
    "              Interval(Clock Cycles)           | Total Execution Time |\n"
    "+   RTL    +  Status  +-----------------------------------------------+"
    "-----------------------------------------------+    (Clock Cycles)    +\n"
    "|          |          |      min      |      avg      |      max      |"
    "      min      |      avg      |      max      |                      |\n"
    "+----------+----------+-----------------------------------------------+"
    "-----------------------------------------------+----------------------+\n"
    "|      VHDL|        NA|             NA|             NA|             NA|"
    "             NA|             NA|             NA|                    NA|\n"
    "|   Verilog|      Pass|     2502647809|     2532098049|     2561548289|"
    "             NA|             NA|             NA|            2561548289|\n"
    "+----------+----------+-----------------------------------------------+"
    "-----------------------------------------------+----------------------+\n"
)

COSIM_VIVADO = (
    "Report time       : Mon Mar 18 16:02:11 2024.\n"
    "Solution          : solution1.\n"
    "Simulation tool   : xsim.\n"
    "\n"
    "+----------+----------+------------------------------------"
    "-----------+-----------------------------------------------+\n"
    "|          |          |                    Latency         "
    "           |                    Interval                   |\n"
    "+    RTL   +  Status  +------------------------------------"
    "-----------+-----------------------------------------------+\n"
    "|          |          |      min      |      avg      |    "
    "  max      |      min      |      avg      |      max      |\n"
    "+----------+----------+------------------------------------"
    "-----------+-----------------------------------------------+\n"
    "|      VHDL|        NA|             NA|             NA|    "
    "         NA|             NA|             NA|             NA|\n"
    "|   Verilog|      Pass|          3746|          3746|   "
    "       3747|          3747|          3747|          3748|\n"
    "+----------+----------+------------------------------------"
    "-----------+-----------------------------------------------+\n"
)


def test_cosim_vitis_layout(tmp_path: Path):
    path = tmp_path / "tiled_conv_cosim.rpt"
    path.write_text(COSIM_VITIS)
    c = load_cosim(path)
    assert isinstance(c, CosimReport) and c.passed
    assert (c.rtl, c.status, c.solution, c.simulator) == ("Verilog", "Pass", "solution1", "xsim")
    assert (c.latency_min, c.latency_avg, c.latency_max) == (2502647809, 2532098049, 2561548289)
    assert (c.interval_min, c.interval_avg, c.interval_max) == (None, None, None)  # "NA": one transaction
    assert c.total_cycles == 2561548289


def test_cosim_vivado_layout_and_solution_folder(tmp_path: Path, capsys):
    report_dir = tmp_path / "solution1" / "sim" / "report"
    report_dir.mkdir(parents=True)
    (report_dir / "load_input_cosim.rpt").write_text(COSIM_VIVADO)
    c = load_cosim(tmp_path / "solution1")
    assert (c.latency_min, c.latency_max, c.interval_min, c.interval_avg, c.interval_max) == (
        3746,
        3747,
        3747,
        3747,
        3748,
    )
    assert c.total_cycles is None
    assert main(["report", str(report_dir / "load_input_cosim.rpt")]) == 0
    assert "latency min/avg/max 3746/3746/3747" in capsys.readouterr().out
    # Beside a synthesis report, `fnas-hls report <solution>` shows the co-simulation too.
    syn = tmp_path / "solution1" / "syn" / "report"
    syn.mkdir(parents=True)
    (syn / "csynth.xml").symlink_to(fixture(f"{HJL}/load_input_csynth.xml"))
    assert main(["report", str(tmp_path / "solution1")]) == 0
    out = capsys.readouterr().out
    assert "load_input (top)" in out and "Loop1" in out and "Verilog Pass" in out


def test_cosim_refusals(tmp_path: Path):
    with pytest.raises(FnasError, match="no \\*_cosim.rpt"):
        load_cosim(tmp_path)
    bad = tmp_path / "top_cosim.rpt"
    bad.write_text("Report time : today.\nnothing here\n")
    with pytest.raises(FnasError, match="top_cosim.rpt.*no Verilog/VHDL result row"):
        load_cosim(bad)
    bad.write_text(COSIM_VIVADO.replace("3746|", "3x46|", 1))
    with pytest.raises(FnasError, match="3x46"):
        load_cosim(bad)


# --- refusals: each names the file ----------------------------------------------------------------


def test_missing_path(tmp_path: Path, capsys):
    missing = tmp_path / "nowhere" / "csynth.xml"
    with pytest.raises(FnasError, match="no such file") as err:
        load_report(missing)
    assert str(missing) in str(err.value)
    with pytest.raises(FnasError, match="no such file"):
        load_solution(tmp_path / "nowhere")
    assert main(["report", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_folder_without_reports_says_where_it_looked(tmp_path: Path):
    with pytest.raises(FnasError) as err:
        load_solution(tmp_path)
    message = str(err.value)
    assert "no csynth.xml or csynth.rpt" in message
    assert str(tmp_path / "syn" / "report") in message and str(tmp_path / "hls" / "syn" / "report") in message


def test_unknown_formats(tmp_path: Path):
    text = tmp_path / "csynth.txt"
    text.write_text("latency 5\n")
    with pytest.raises(FnasError, match="unknown report format") as err:
        load_report(text)
    assert str(text) in str(err.value)
    rpt = tmp_path / "notes.rpt"
    rpt.write_text("== Timing report\nall good\n")
    with pytest.raises(FnasError, match="notes.rpt: unknown report format"):
        load_report(rpt)
    html = tmp_path / "page.xml"
    html.write_text("<html><body/></html>")
    with pytest.raises(FnasError, match="page.xml: XML root is <html>"):
        load_report(html)
    bad_number = tmp_path / "odd_csynth.xml"
    bad_number.write_text(
        "<profile><UserAssignments><TopModelName>odd</TopModelName></UserAssignments>"
        "<PerformanceEstimates><SummaryOfOverallLatency><Best-caseLatency>lots</Best-caseLatency>"
        "</SummaryOfOverallLatency></PerformanceEstimates></profile>"
    )
    with pytest.raises(FnasError, match="odd_csynth.xml: <Best-caseLatency> holds 'lots', not a cycle count"):
        load_report(bad_number)


def test_truncated_xml(tmp_path: Path):
    data = fixture(f"{HJL}/compute4_csynth.xml").read_bytes()
    cut = tmp_path / "compute4_csynth.xml"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FnasError, match="compute4_csynth.xml: malformed XML .*truncated"):
        load_report(cut)
    (tmp_path / "csynth.xml").write_bytes(b"")
    with pytest.raises(FnasError, match="csynth.xml: malformed XML"):
        load_solution(tmp_path)


def test_truncated_rpt_table(tmp_path: Path):
    lines = fixture(f"{SHARC}/csynth.rpt").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "Performance & Resource Estimates" in line)
    cut = tmp_path / "csynth.rpt"
    cut.write_text("\n".join(lines[: at + 6]) + "\n")
    with pytest.raises(FnasError, match="csynth.rpt: the 'Performance & Resource Estimates' table is empty"):
        load_report(cut)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<profile><UserAssignments><TopModelName>&lol9;</TopModelName></UserAssignments></profile>
"""


def test_billion_laughs_is_refused_quickly(tmp_path: Path, capsys):
    path = tmp_path / "csynth.xml"
    path.write_text(BILLION_LAUGHS)
    start = time.monotonic()
    with pytest.raises(FnasError, match="csynth.xml: refused: .*DOCTYPE/ENTITY"):
        load_report(path)
    assert time.monotonic() - start < 1.0
    assert main(["report", str(tmp_path)]) == 2
    assert "refused" in capsys.readouterr().err


def test_external_entity_is_refused_and_never_read(tmp_path: Path, capsys):
    secret = Path("/etc/passwd")
    secret_text = secret.read_text() if secret.is_file() else "root:x:0:0"
    path = tmp_path / "evil_csynth.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE profile [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'
        "<profile><UserAssignments><TopModelName>&xxe;</TopModelName><Part>&xxe;</Part>"
        "</UserAssignments></profile>\n"
    )
    with pytest.raises(FnasError, match="evil_csynth.xml: refused") as err:
        load_report(path)
    assert "root:" not in str(err.value)
    assert main(["report", str(path), "--json", "-"]) == 2
    captured = capsys.readouterr()
    first_line = secret_text.splitlines()[0] if secret_text else "root:"
    assert first_line not in captured.out + captured.err
    assert "root:x" not in captured.out + captured.err


def test_utf16_disguised_declaration_is_refused(tmp_path: Path):
    path = tmp_path / "csynth.xml"
    path.write_bytes(BILLION_LAUGHS.encode("utf-16"))
    with pytest.raises(FnasError, match="csynth.xml: (holds NUL bytes|not UTF-8)"):
        load_report(path)


def test_huge_file_is_refused_before_reading(tmp_path: Path, monkeypatch):
    sparse = tmp_path / "csynth.xml"
    with sparse.open("wb") as handle:
        handle.truncate(hls_report.MAX_REPORT_BYTES + 1)  # sparse: no disk used
    with pytest.raises(FnasError, match="csynth.xml: .* bytes, over the limit of 64 MiB"):
        load_report(sparse)
    monkeypatch.setattr(hls_report, "MAX_REPORT_BYTES", 4096)
    with pytest.raises(FnasError, match="compute4_csynth.xml: .*over the limit of 4096 bytes"):
        load_report(fixture(f"{HJL}/compute4_csynth.xml"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_is_refused_without_blocking(tmp_path: Path):
    fifo = tmp_path / "csynth.xml"
    os.mkfifo(fifo)
    with pytest.raises(FnasError, match="csynth.xml: not a regular file"):
        load_report(fifo)


def test_deep_loop_nesting_is_refused(tmp_path: Path):
    depth = hls_report.MAX_NESTING + 5
    loops = "".join(f"<L{i}><TripCount>2</TripCount>" for i in range(depth)) + "".join(
        f"</L{i}>" for i in reversed(range(depth))
    )
    path = tmp_path / "deep_csynth.xml"
    path.write_text(
        "<profile><UserAssignments><TopModelName>deep</TopModelName></UserAssignments>"
        f"<PerformanceEstimates><SummaryOfLoopLatency>{loops}</SummaryOfLoopLatency>"
        "</PerformanceEstimates></profile>"
    )
    with pytest.raises(FnasError, match="deep_csynth.xml: loops nested deeper than"):
        load_report(path)


# --- the value types ----------------------------------------------------------------------------


def test_report_resources_to_resources():
    known = ReportResources(dsp=1, bram18k=2, lut=3, ff=4, uram=0)
    assert known.to_resources() == Resources(dsp=1, bram18k=2, lut=3, ff=4, uram=0)
    partial = ReportResources(dsp=5, lut=7)
    with pytest.raises(ValueError, match="bram18k, ff, uram"):
        partial.to_resources()
    assert partial.to_resources(missing=0) == Resources(dsp=5, lut=7)


def test_module_lookup_errors_name_the_report():
    r = load_report(fixture(f"{HJL}/compute4_csynth.xml"))
    with pytest.raises(KeyError, match="no module 'nope'"):
        r.module("nope")
    with pytest.raises(KeyError, match="no loop 'nope'"):
        r.top_module.loop("nope")


def test_rpt_only_solution_matches_the_xml(tmp_path: Path):
    """PartB from its .rpt files alone (summary + detailed reports) gives what its XML gives."""
    for f in fixture(PART_B).glob("*.rpt"):
        (tmp_path / f.name).symlink_to(f)
    from_rpt = load_solution(tmp_path)
    from_xml = load_solution(fixture(PART_B))
    assert Path(from_rpt.path).name == "csynth.rpt"
    assert (from_rpt.top, from_rpt.version, from_rpt.part) == (from_xml.top, from_xml.version, from_xml.part)
    # The summary states no clock; the top's detailed report does (not a sub-module's 6.925 ns).
    assert (from_rpt.target_clock_ns, from_rpt.estimated_clock_ns) == (10.0, 7.3)
    assert sorted(m.name for m in from_rpt.modules) == sorted(m.name for m in from_xml.modules)

    def figures(module):
        loops = [
            (l.name, l.trip_min, l.trip_max, l.latency_best, l.latency_worst, l.ii, l.ii_target, l.depth)
            + (l.iteration_latency_min, l.iteration_latency_max, l.pipelined)
            for _, l in module.walk_loops()
        ]
        head = (module.latency_best, module.latency_worst, module.interval_min, module.interval_max)
        return head, used(module), loops

    for module in from_xml.modules:
        assert figures(from_rpt.module(module.name)) == figures(module), module.name


def test_merge_restores_cut_names_and_fills_unknowns():
    cut = "m" * hls_report.SUMMARY_NAME_WIDTH
    full = cut + "_WIDTH"
    summary = SynthesisReport(
        path="csynth.rpt",
        top="top",
        modules=(
            hls_report.ModuleReport(name="top", latency_worst=10, calls=(cut,)),
            hls_report.ModuleReport(name=cut, latency_worst=5),
        ),
        sources=("csynth.rpt",),
    )
    detailed = SynthesisReport(
        path="top_csynth.rpt",
        top="top",
        target_clock_ns=10.0,
        estimated_clock_ns=7.3,
        modules=(
            hls_report.ModuleReport(name="top", latency_best=10, latency_worst=12, estimated_clock_ns=7.3),
            hls_report.ModuleReport(name=full, latency_best=5, latency_worst=5),
        ),
        sources=("top_csynth.rpt",),
    )
    merged = hls_report.merge_reports(summary, detailed)
    assert [m.name for m in merged.modules] == ["top", full]
    assert merged.top_module.calls == (full,)  # references follow the restored name
    assert (merged.top_module.latency_best, merged.top_module.latency_worst) == (10, 10)  # main wins
    assert merged.module(full).latency_best == 5
    assert (merged.target_clock_ns, merged.estimated_clock_ns) == (10.0, 7.3)
    assert merged.sources == ("csynth.rpt", "top_csynth.rpt")
    # A sub-module's report never sets the design's estimated clock.
    sub = SynthesisReport(path="s.rpt", top=full, estimated_clock_ns=6.9, modules=(), sources=("s.rpt",))
    assert hls_report.merge_reports(summary, sub).estimated_clock_ns is None


def test_error_messages_stay_one_short_line(tmp_path: Path):
    path = tmp_path / "long_csynth.xml"
    path.write_text(
        "<profile><UserAssignments><TopModelName>t</TopModelName></UserAssignments><PerformanceEstimates>"
        f"<SummaryOfOverallLatency><Worst-caseLatency>{'9x' * 50000}</Worst-caseLatency>"
        "</SummaryOfOverallLatency></PerformanceEstimates></profile>"
    )
    with pytest.raises(FnasError) as err:
        load_report(path)
    message = str(err.value)
    assert "\n" not in message and len(message) < len(str(path)) + 120
