"""The csynth counting rules of ``fnas_hls.model.hls_rules``, held to every loop of every fixture report.

Every loop of every report file under ../shared/fixtures/hls_reports (each .xml and .rpt on its
own, so the same loop is checked in every form a tool wrote it) is one test case:

* a pipelined loop with trip, II and depth must take ``pipelined_loop(trip, ii, depth)``;
* a sequential loop with trip and iteration latency must take ``sequential_loop(trip, it)``;

for the worst case, and for the best case too where the report states one (ranges). The rule is
never loosened: the loops that deviate are listed below by name, each with the reason, and a test
checks that the list is exactly the set of deviating loops. Module-level rules (function overhead,
block overhead, top interval) are checked on whole solutions, where the call tree is known.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from fnas_hls.model import hls_rules as rules
from fnas_hls.reports.hls_report import LoopReport, ModuleReport, SynthesisReport, load_report, load_solution

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "hls_reports"
HJL = "HJL2020-s__FPGAZYNQ_TESTCONV"
PART_B = "Ritarka__8893Lab2/PartB_baseline"
PART_C = "Ritarka__8893Lab2/PartC_optimized"
SHARC = "sharc-lab__FPGA_ECE8893"
ARUN = "Arun-66__AN50_ZCU104"
SOLUTIONS = [HJL, PART_B, PART_C, SHARC, *(f"{ARUN}/Conv{i}" for i in range(1, 6))]
VITIS_SOLUTIONS = SOLUTIONS[1:]

# --- the loops that deviate from the two loop rules, and why ------------------------------------

#: Vitis HLS 2024.2 one-stage pipelines. These loops clear an accumulator array
#: (``conv_out[i] = 0``); Vitis 2024.2 makes each a depth-1 pipeline in its own "loop auto-rewind"
#: Pipeline_* module and reports ``trip * II`` cycles for it: one cycle more than
#: ``(trip - 1) * II + depth - 1``, which every deeper pipeline in all three tool versions meets
#: exactly (even depth 2 in 2024.2: conv2_Pipeline_F11, F21). No depth-1 loop occurs in the 2019.2
#: and 2022.1 reports, and fnas-hls renders none (its shallowest pipeline has depth INIT_DEPTH=2),
#: so ``pipelined_loop`` keeps the rule; the test below pins the deviation to exactly these loops.
SINGLE_STAGE_2024 = {
    ("conv2_Pipeline_VITIS_LOOP_85_1", "VITIS_LOOP_85_1"),
    ("conv2_Pipeline_VITIS_LOOP_173_7", "VITIS_LOOP_173_7"),
    ("conv3_Pipeline_VITIS_LOOP_91_1", "VITIS_LOOP_91_1"),
    ("conv4_Pipeline_VITIS_LOOP_87_1", "VITIS_LOOP_87_1"),
    ("conv4_Pipeline_VITIS_LOOP_174_7", "VITIS_LOOP_174_7"),
    ("conv5_Pipeline_VITIS_LOOP_85_1", "VITIS_LOOP_85_1"),
    ("conv5_Pipeline_VITIS_LOOP_172_7", "VITIS_LOOP_172_7"),
}
#: HJL2020's top walks the tiles with a data-dependent while loop: trip count and latency are
#: "?"/"undef" (kept as None), only its iteration latency is stated; there is nothing to check.
DATA_DEPENDENT = {("conv", "Loop2")}

#: Single-loop modules whose module latency deviates from the function rule, and by how much.
#: HJL2020 load_weight is a ``memcpy`` from an m_axi port: the module sets up the burst (read
#: request, first beat) in states before the copy loop, 7 cycles the loop's latency leaves out.
BURST_SETUP = {"load_weight": 7}
#: Modules whose body is their one loop although the report cannot say so: Vivado HLS 2019.2
#: reports name a module's calls but not the loop that makes them. HJL2020's README: each of
#: compute_output's 4 iterations runs load_weight, compute and store_output.
BODY_IS_ITS_LOOP = {"compute_output"}


def fixture(relative: str) -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"fixture reports not found at {FIXTURES}")
    return FIXTURES / relative


def solution(relative: str) -> SynthesisReport:
    """The report of a fixture folder or file; skips the test when the fixtures are absent."""
    fixture(relative)
    return report(relative)


@cache
def report(relative: str) -> SynthesisReport:
    path = FIXTURES / relative
    return load_solution(path) if path.is_dir() else load_report(path)


def loop_cases() -> list[tuple[str, str, str]]:
    """(report file, module, loop path) for every loop of every fixture report file."""
    if not FIXTURES.is_dir():
        return []
    cases = []
    for path in sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".xml", ".rpt")):
        relative = str(path.relative_to(FIXTURES))
        for module in report(relative).modules:
            for trail, _ in _paths(module.loops):
                cases.append((relative, module.name, trail))
    return cases


def _paths(loops: tuple[LoopReport, ...], prefix: str = ""):
    for loop in loops:
        trail = f"{prefix}/{loop.name}" if prefix else loop.name
        yield trail, loop
        yield from _paths(loop.children, trail)


def find(relative: str, module: str, trail: str) -> tuple[SynthesisReport, LoopReport]:
    r = report(relative)
    loop = dict(_paths(r.module(module).loops))[trail]
    return r, loop


def kind(module: str, loop: LoopReport) -> str:
    """How a loop is checked: "pipelined", "sequential", or the name of its listed exception."""
    if loop.pipelined:
        return "single-stage-2024" if loop.depth == 1 else "pipelined"
    if (module, loop.name) in DATA_DEPENDENT:
        return "data-dependent"
    return "sequential"


CASES = loop_cases()


@pytest.mark.parametrize(("relative", "module", "trail"), CASES, ids=[f"{f}::{m}::{t}" for f, m, t in CASES])
def test_loop_rule(relative: str, module: str, trail: str):
    r, loop = find(relative, module, trail)
    how = kind(module, loop)
    if how == "pipelined":
        assert None not in (loop.trip_max, loop.ii, loop.depth, loop.latency_worst), "states no figures"
        assert rules.pipelined_loop(loop.trip_max, loop.ii, loop.depth) == loop.latency_worst
        if loop.trip_min is not None and loop.latency_best is not None:
            assert rules.pipelined_loop(loop.trip_min, loop.ii, loop.depth) == loop.latency_best
    elif how == "sequential":
        assert None not in (loop.trip_max, loop.iteration_latency_max, loop.latency_worst), (
            "states no figures"
        )
        assert rules.sequential_loop(loop.trip_max, loop.iteration_latency_max) == loop.latency_worst
        if None not in (loop.trip_min, loop.iteration_latency_min, loop.latency_best):
            assert rules.sequential_loop(loop.trip_min, loop.iteration_latency_min) == loop.latency_best
    elif how == "single-stage-2024":
        assert (module, loop.name) in SINGLE_STAGE_2024 and r.version == "2024.2"
        assert loop.latency_worst == loop.trip_max * loop.ii
        assert loop.latency_worst == rules.pipelined_loop(loop.trip_max, loop.ii, loop.depth) + 1
    else:
        assert how == "data-dependent" and r.top == "conv"
        assert (loop.trip_min, loop.trip_max, loop.latency_best, loop.latency_worst) == (None,) * 4
        assert loop.iteration_latency == 3926876


def test_every_fixture_loop_is_checked():
    """How many loops the rules meet, and that the exceptions are exactly the listed loops."""
    fixture(HJL)
    counts: dict[str, int] = {}
    single_stage, dependent = set(), set()
    ranges = 0
    for relative, module, trail in CASES:
        _, loop = find(relative, module, trail)
        how = kind(module, loop)
        counts[how] = counts.get(how, 0) + 1
        if how == "single-stage-2024":
            single_stage.add((module, loop.name))
        if how == "data-dependent":
            dependent.add((module, loop.name))
        if loop.latency_best is not None and loop.latency_best != loop.latency_worst:
            ranges += 1
    assert single_stage == SINGLE_STAGE_2024 and dependent == DATA_DEPENDENT
    # 229 loop entries in 64 report files: 138 pipelined and 74 sequential ones meet the rules to
    # the cycle (3 of them ranges, checked at both ends: PartB's tile loop in three files); 14 are
    # the 7 one-stage 2024.2 pipelines (each in csynth.xml and csynth.rpt) and 3 the HJL2020 while
    # loop (csynth.xml, conv_csynth.xml, conv_csynth.rpt).
    assert counts == {"pipelined": 138, "sequential": 74, "single-stage-2024": 14, "data-dependent": 3}
    assert ranges == 3
    assert counts["pipelined"] + counts["sequential"] > 200


def test_range_is_the_conditional_input_load():
    """PartB's tile loop is a range because the input tile loads only when tk == 0: that path runs
    the load module (7189 cycles) plus one cycle for the branch into it."""
    r = solution(PART_B)
    tiles = r.top_module.loop("TILE_ROW_TILE_COL_TILE_DEPTH")
    load = r.module("tiled_conv_Pipeline_INPUT_BUFFER_DEPTH_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH")
    assert tiles.iteration_latency_max - tiles.iteration_latency_min == load.latency + 1
    assert (
        rules.sequential_loop(8192, 305499) == r.top_module.latency_best - rules.SEQUENTIAL_FUNCTION_OVERHEAD
    )
    assert (
        rules.sequential_loop(8192, 312689) == r.top_module.latency_worst - rules.SEQUENTIAL_FUNCTION_OVERHEAD
    )


# --- the function rule: a module whose body is one loop -------------------------------------------


def single_loop_body(module: ModuleReport) -> LoopReport | None:
    """The module's loop if its body is that loop alone (every call it makes is inside it)."""
    if len(module.loops) != 1:
        return None
    (loop,) = module.loops
    inside = {call for _, inner in loop.walk() for call in inner.calls}
    if all(call in inside for call in module.calls) or module.name in BODY_IS_ITS_LOOP:
        return loop
    return None


def module_cases() -> list[tuple[str, str]]:
    if not FIXTURES.is_dir():
        return []
    return [(s, m.name) for s in SOLUTIONS for m in report(s).modules if single_loop_body(m) is not None]


MODULE_CASES = module_cases()


@pytest.mark.parametrize(("solution_dir", "module"), MODULE_CASES, ids=[f"{s}::{m}" for s, m in MODULE_CASES])
def test_function_rule(solution_dir: str, module: str):
    m = solution(solution_dir).module(module)
    loop = single_loop_body(m)
    pairs = [(loop.latency_worst, m.latency_worst), (loop.latency_best, m.latency_best)]
    pairs = [(body, total) for body, total in pairs if body is not None and total is not None]
    assert pairs, "states no latency"
    for body, total in pairs:
        if loop.pipelined:
            assert total == rules.function_latency(body) + BURST_SETUP.get(module, 0)
        else:
            # One cycle less than function_latency: see SEQUENTIAL_FUNCTION_OVERHEAD.
            assert total == body + rules.SEQUENTIAL_FUNCTION_OVERHEAD == rules.function_latency(body) - 1


def test_function_rule_coverage():
    fixture(HJL)
    pipelined = [(s, m) for s, m in MODULE_CASES if single_loop_body(report(s).module(m)).pipelined]
    sequential = sorted({m for s, m in MODULE_CASES} - {m for _, m in pipelined})
    # 77 single-loop modules: 71 whose loop is pipelined (the Pipeline_* modules of Vitis, conv_7x7,
    # and compute4, load_input, load_weight of HJL2020), 6 whose loop is sequential.
    assert (len(MODULE_CASES), len(pipelined)) == (77, 71)
    assert sequential == ["compute_output", "store_output", "tiled_conv", "tiled_conv_L1", "tiled_conv_L2"]
    assert [m for _, m in MODULE_CASES if m in BURST_SETUP] == ["load_weight"]


def test_sequential_function_overhead():
    cases = [
        (HJL, "store_output", 57353, 57352),
        (HJL, "compute_output", 3926873, 3926872),
        (PART_B, "tiled_conv", 2561548289, 2561548288),
        (PART_C, "tiled_conv", 40137217, 40137216),
        (SHARC, "tiled_conv_L1", 10403329, 10403328),
        (SHARC, "tiled_conv_L2", 221652289, 221652288),
    ]
    for solution_dir, name, module_latency, loop_latency in cases:
        m = solution(solution_dir).module(name)
        (loop,) = m.loops
        assert not loop.pipelined
        assert (m.latency_worst, loop.latency_worst) == (module_latency, loop_latency)
        assert m.latency_worst == loop.latency_worst + rules.SEQUENTIAL_FUNCTION_OVERHEAD


# --- a sequential loop's iteration: the blocks it runs ---------------------------------------------

#: (solution, module, loop, stages, extra): the iteration runs ``stages`` one after another; a stage
#: is one block (a sub-loop by its loop latency, a call by its module's latency) or several blocks
#: Vitis runs side by side (independent loads). ``extra``: the cycles the body spends on other work
#: (as measured; 0 where the body is nothing but its blocks, which checks the constant exactly).
BLOCK_CASES = [
    # Exact: the body is only its blocks (Vivado HLS 2019.2, Vitis HLS 2022.1, 2024.2).
    (HJL, "store_output", "Loop1", [["Loop1.1"]], 0),
    (HJL, "store_output", "Loop1.1.1", [["Loop1.1.1.1"]], 0),
    (
        PART_C,
        "tiled_conv",
        "TILE_ROW_TILE_COL",
        [["tiled_conv_Pipeline_INPUT_BUFFER_DEPTH_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH"], ["TILE_DEPTH"]],
        0,
    ),
    (f"{ARUN}/Conv1", "conv1", "L5", [["L6"]], 0),
    (f"{ARUN}/Conv1", "conv1", "L6", [["conv1_Pipeline_L7"], ["conv1_Pipeline_L1"]], 0),
    # The body does more than its blocks: the blocks' cost is a lower bound.
    (HJL, "store_output", "Loop1.1", [["Loop1.1.1"]], 6),
    (
        PART_B,
        "tiled_conv",
        "VITIS_LOOP_38_4_VITIS_LOOP_40_5_VITIS_LOOP_41_6",
        [["tiled_conv_Pipeline_VITIS_LOOP_43_7_VITIS_LOOP_44_8_VITIS_LOOP_45_9"]],
        6,
    ),
    (
        SHARC,
        "tiled_conv_L2",
        "OUT_BUF_DEPTH_CHECK_OUT_BUF_HEIGHT_CHECK_OUT_BUF_WIDTH_CHECK",
        [["tiled_conv_L2_Pipeline_IN_BUF_DEPTH_CHECK_KERNEL_HEIGHT_CHECK_KERNEL_WIDTH_CHECK"]],
        1,
    ),
    (
        SHARC,
        "tiled_conv_L1",
        "TILE_ROW_TILE_COL",
        [
            ["VITIS_LOOP_255_1"],
            ["tiled_conv_L1_Pipeline_OUTPUT_BUFFER_DEPTH_OUTPUT_BUFFER_HEIGHT_OUTPUT_BUFFER_WI"],
        ],
        6,
    ),
    # Independent loads run side by side (Vitis 2022.1, 2024.2): the stage costs their max.
    (
        SHARC,
        "tiled_conv_L1",
        "VITIS_LOOP_255_1",
        [
            [
                "tiled_conv_L1_Pipeline_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH",
                "tiled_conv_L1_Pipeline_WEIGHT_KERNEL_NUM",
                "tiled_conv_L1_Pipeline_BIAS",
            ],
            ["tiled_conv_L1_Pipeline_OUT_BUF_DEPTH_CHECK_OUT_BUF_HEIGHT_CHECK_OUT_BUF_WIDTH_CH"],
            ["tiled_conv_L1_Pipeline_VITIS_LOOP_194_1_VITIS_LOOP_196_2_VITIS_LOOP_198_3"],
        ],
        7,
    ),
    (
        SHARC,
        "tiled_conv_L2",
        "TILE_ROW_TILE_COL_KERNEL_GROUP",
        [
            [
                "tiled_conv_L2_Pipeline_INPUT_BUFFER_DEPTH_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH",
                "tiled_conv_L2_Pipeline_WEIGHT_KERNEL_WIDTH",
                "tiled_conv_L2_Pipeline_BIAS",
            ],
            ["OUT_BUF_DEPTH_CHECK_OUT_BUF_HEIGHT_CHECK_OUT_BUF_WIDTH_CHECK"],
            ["tiled_conv_L2_Pipeline_VITIS_LOOP_442_1"],
            ["tiled_conv_L2_Pipeline_OUTPUT_BUFFER_DEPTH_OUTPUT_BUFFER_HEIGHT_OUTPUT_BUFFER_WI"],
        ],
        20,
    ),
    *(
        (
            f"{ARUN}/Conv{n}",
            f"conv{n}",
            loop,
            [[f"conv{n}_Pipeline_{load}", f"conv{n}_Pipeline_{clear}"], [inner], [f"conv{n}_Pipeline_{out}"]],
            16,
        )
        for n, loop, load, clear, inner, out in [
            (2, "L4", "F1_1", "VITIS_LOOP_85_1", "C1_1", "M1"),
            (2, "L7", "F2_1", "VITIS_LOOP_173_7", "C2_1", "M2"),
            (3, "L4", "F1_1", "VITIS_LOOP_91_1", "conv3_Pipeline_C1_1", "M1"),
            (4, "L4", "F1_1", "VITIS_LOOP_87_1", "conv4_Pipeline_C1_1", "M1"),
            (4, "L7", "F2_1", "VITIS_LOOP_174_7", "conv4_Pipeline_C2_1", "M2"),
            (5, "L4", "F1_1", "VITIS_LOOP_85_1", "conv5_Pipeline_C1_1", "M1"),
            (5, "L7", "F2_1", "VITIS_LOOP_172_7", "conv5_Pipeline_C2_1", "M2"),
        ]
    ),
]


def block_latency(r: SynthesisReport, module: ModuleReport, name: str) -> int:
    """A block's latency: a sub-loop of ``module`` by name, else a called module."""
    try:
        return module.loop(name).latency_worst
    except KeyError:
        return r.module(name).latency_worst


@pytest.mark.parametrize(
    ("solution_dir", "module", "loop", "stages", "extra"),
    BLOCK_CASES,
    ids=[f"{c[0]}::{c[2]}" for c in BLOCK_CASES],
)
def test_sequential_block_overhead(solution_dir: str, module: str, loop: str, stages: list, extra: int):
    r = solution(solution_dir)
    m = r.module(module)
    iteration = m.loop(loop).iteration_latency_max
    # Every block the stages name is one the loop really runs (a child loop or a call in it).
    runs = {child.name for child in m.loop(loop).children} | set(m.loop(loop).calls)
    assert {name for stage in stages for name in stage} <= runs
    cost = sum(
        rules.overlapped(*(block_latency(r, m, name) for name in stage)) + rules.SEQUENTIAL_BLOCK_OVERHEAD
        for stage in stages
    )
    assert iteration == cost + extra
    if any(len(stage) > 1 for stage in stages):
        # Summing side-by-side loads instead would overshoot the reported iteration.
        serial = sum(
            block_latency(r, m, n) + rules.SEQUENTIAL_BLOCK_OVERHEAD for stage in stages for n in stage
        )
        assert serial > iteration


def test_block_overhead_exact_cases_span_three_tool_versions():
    versions = {solution(c[0]).version for c in BLOCK_CASES if c[4] == 0}
    assert versions == {"2019.2", "2022.1.2", "2024.2"}


# --- intervals, and the missed II ----------------------------------------------------------------


@pytest.mark.parametrize("solution_dir", VITIS_SOLUTIONS)
def test_top_interval_overhead(solution_dir: str):
    top = solution(solution_dir).top_module
    assert top.interval_max == top.latency_worst + rules.TOP_INTERVAL_OVERHEAD
    if top.latency_best is not None and top.interval_min is not None:
        assert top.interval_min == top.latency_best + rules.TOP_INTERVAL_OVERHEAD


@pytest.mark.parametrize("solution_dir", [HJL, PART_B, PART_C])
def test_sub_module_interval_is_its_latency(solution_dir: str):
    r = solution(solution_dir)
    subs = [m for m in r.modules if m.name != r.top and m.latency_worst is not None]
    assert subs
    for m in subs:
        assert (m.interval_min, m.interval_max) == (m.latency_best, m.latency_worst)


def test_compute4_ii_is_the_memory_port_bound():
    """48 weight reads per iteration through the 2 ports of an unpartitioned BRAM: II 24, not 1."""
    compute4 = solution(HJL).module("compute4")
    (loop,) = compute4.loops
    assert rules.ii_memory_bound(48) == 24 == loop.ii
    assert loop.ii_target == 1
    assert rules.achieved_ii(loop.ii_target, rules.ii_memory_bound(48)) == loop.ii
    assert rules.pipelined_loop(loop.trip, rules.ii_memory_bound(48), loop.depth) == loop.latency == 921995
    assert rules.function_latency(loop.latency) == compute4.latency == 921997
    # Had the weights been partitioned (one bank per MAC), II 1 would give 38450 cycles.
    assert (
        rules.pipelined_loop(loop.trip, rules.achieved_ii(1, rules.ii_memory_bound(1)), loop.depth) == 38450
    )
