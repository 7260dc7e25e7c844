"""The ``sequential`` style against csynth's semantics: six places where the templates and the model
must agree with what Vivado HLS / Vitis HLS will schedule.

1. TILE_IN: compute and the next tile's loads sit in one basic block (csynth overlaps calls only
   there), and the dummy loads of the last iteration touch no memory outside the layer's tensors.
2. The prologue: init and the first loads share one block with no dependence; the model overlaps all three.
3. 1x1 kernels: the compute loop tells HLS the accumulators carry no dependence (II 1, as modelled).
4. LOAD_DEPTH / STORE_DEPTH: the fixture reports' conditional m_axi loops plus the m_axi latency.
5. The TCL scripts: ``latency=`` on each m_axi pragma (portable), 64-bit m_axi on MPSoC parts.
6. The bias ROM: one bank per unrolled output channel, indexed by compile-time constants.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fnas_hls.backend.fixed_point import DataType
from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.backend.project_context import _bias_literal_rows
from fnas_hls.boards import load_board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model.geometry import ConvGeometry
from fnas_hls.model.sequential import conv_terms
from fnas_hls.model.tiling import parse_tiling_specs
from fnas_hls.network.arch import network_from_dict
from fnas_hls.precision import get_precision
from fnas_hls.reports.hls_report import load_solution
from fnas_hls.resources import MacCost

FIXED = get_precision("fixed16")
FLOAT = get_precision("float32")
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "hls_reports"
GXX = shutil.which("g++")

#: A 3x3 conv on 3 input channels, tiled Tn=2 (two input tiles, the second half past N) or Tn=1
#: (three), so the last TILE_IN iteration's dummy load goes to either half of the ping-pong.
CONV3 = [{"type": "conv", "out": 5, "kernel": 3, "padding": 1, "relu": True}]
NT2 = ["conv1:Tm=2,Tn=2,Tr=3,Tc=4"]
NT3 = ["conv1:Tm=3,Tn=1,Tr=7,Tc=2"]
#: A 1x1 conv and a fully connected layer (both 1x1 kernels), spatial tile 1x1 for the conv.
ONE_BY_ONE = [
    {"type": "conv", "out": 4, "kernel": 1, "relu": True},
    {"type": "fc", "out": 3},
]


@pytest.fixture(scope="module")
def emit(tmp_path_factory):
    """``emit(layers, shape, pins, board)``: the emitted project's folder, rendered once per configuration."""
    root = tmp_path_factory.mktemp("seq")
    done: dict[str, Path] = {}

    def run(layers: list[dict], shape: list[int], pins: list[str] = (), board: str = "pynq") -> Path:
        key = repr((layers, shape, list(pins), board))
        if key not in done:
            net = with_random_weights(network_from_dict({"name": "t", "input": shape, "layers": layers}), 0)
            out = root / f"p{len(done)}"
            emit_project(net, load_board(board), out, "fixed16", pins=parse_tiling_specs(list(pins)))
            done[key] = out
        return done[key]

    return run


def _function(text: str, name: str) -> str:
    """The body of C function ``name`` (from its opening brace to the matching one)."""
    m = re.search(rf"^void {re.escape(name)}\(", text, re.M)
    assert m, f"no function {name}"
    return _braced(text, text.index("{", m.end()))


def _braced(text: str, start: int) -> str:
    """The text from the brace at ``start`` to its matching close brace, both included."""
    assert text[start] == "{"
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start : i + 1]
    raise AssertionError("unbalanced braces")


def _loop_body(text: str, label: str) -> str:
    """The braced body of the loop labelled ``label``."""
    at = text.index(f"{label}:")
    return _braced(text, text.index("{", at))


def _direct_blocks(body: str) -> list[str]:
    """Every brace block of ``body`` as the text directly in it (nested blocks cut out)."""
    blocks, stack = [], []
    for i, ch in enumerate(body):
        if ch == "{":
            stack.append([i, []])
        elif ch == "}":
            start, holes = stack.pop()
            text, pos = "", start + 1
            for a, b in holes:
                text += body[pos:a]
                pos = b + 1
            blocks.append(text + body[pos:i])
            if stack:
                stack[-1][1].append((start, i))
    return blocks


def _calls(block: str) -> list[str]:
    return re.findall(r"\b(conv1_\w+)\(", block)


# --- 1. TILE_IN: compute and the next loads in one block --------------------------------------------


@pytest.mark.parametrize("pins", [NT2, NT3], ids=["NT2", "NT3"])
def test_tile_in_compute_and_next_loads_share_one_block(emit, pins):
    """csynth runs calls side by side only within one basic block (HJL2020's ``if (pp) {load; compute}``
    is the fixture shape): a nested ``if (i + 1 < NT)`` around the loads would put them in a block
    of their own, run after compute, and cost their latency on top of it."""
    text = (emit(CONV3, [3, 7, 6], pins) / "src" / "conv1.cpp").read_text()
    body = _loop_body(_function(text, "conv1"), "TILE_IN")
    with_compute = [b for b in _direct_blocks(body) if "conv1_compute(" in b]
    assert len(with_compute) == 2  # the two halves of the ping-pong
    for block in with_compute:
        assert sorted(_calls(block)) == ["conv1_compute", "conv1_load_in", "conv1_load_w"]
        assert " if " not in block and "if (" not in block
    # The model charges exactly that: each of the NT iterations costs the overlap of the three calls.
    tm, tn, tr, tc = {"NT2": (2, 2, 3, 4), "NT3": (3, 1, 7, 2)}["NT2" if pins is NT2 else "NT3"]
    k = conv_terms(ConvGeometry(1, 5, 3, 7, 6, 3, 3), tm, tn, tr, tc, FIXED, MacCost())
    call, blk = rules.function_latency, rules.sequential_block
    assert k.n_in == -(-3 // tn) > 1
    assert k.stage == blk(max(call(k.compute), call(k.load_in), call(k.load_w)))
    assert k.tile_in == k.n_in * k.stage


#: Calls conv1 with its input and weight tensors each ending right at an inaccessible page (and
#: starting right after one): any read outside them, e.g. a dummy tile's channels past N, faults.
GUARD_HARNESS = r"""
#include <sys/mman.h>
#include <unistd.h>
#include <cstdio>
#include <cstring>
#include "conv1.h"
namespace c = fnas_cfg_conv1;

static fnas_data_t *guarded(size_t words, int seed) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes = words * sizeof(fnas_data_t);
  const size_t span = (bytes + page - 1) / page * page;
  char *base = (char *)mmap(nullptr, span + 2 * page, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return nullptr;
  mprotect(base, page, PROT_NONE);
  mprotect(base + page + span, page, PROT_NONE);
  fnas_data_t *p = (fnas_data_t *)(base + page + span - bytes);
  for (size_t i = 0; i < words; i++) p[i] = (fnas_data_t)((i * 7 + seed) % 13) - 6;
  return p;
}

int main() {
  const size_t in_words = (size_t)c::G * c::N * c::H * c::W;
  const size_t w_words = (size_t)c::G * c::M * c::N * c::KH * c::KW;
  static fnas_data_t out[c::G * c::M * c::R * c::C];
  fnas_data_t *in = guarded(in_words, 1), *w = guarded(w_words, 2);
  if (!in || !w) return 2;
  conv1(in, out, w);
  long sum = 0;
  for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) sum += out[i];
  printf("ok %ld\n", sum);
  return 0;
}
"""


@pytest.mark.skipif(GXX is None, reason="needs g++")
@pytest.mark.parametrize("pins", [NT2, NT3], ids=["NT2", "NT3"])
def test_last_iteration_dummy_loads_touch_no_memory_outside_the_tensors(emit, pins, tmp_path):
    """The loads of the last TILE_IN iteration ask for channels NT*TN >= N: their bound checks must
    keep every read inside the input and weight tensors (in the emitted C++, run under guard pages)."""
    src = emit(CONV3, [3, 7, 6], pins) / "src"
    text = (src / "conv1.cpp").read_text()
    # the reads are under the channel bounds, so a dummy tile is zeros without a DDR access
    assert re.search(r"if \(ch < fnas_cfg::N && .*\{\s*v = in\[", _function(text, "conv1_load_in"), re.S)
    assert re.search(r"if \(m0 \+ m < fnas_cfg::M && n0 \+ n < fnas_cfg::N\) \{\s*v = w\[", text)
    harness = tmp_path / "guard.cpp"
    harness.write_text(GUARD_HARNESS)
    exe = tmp_path / "guard"
    build = subprocess.run(
        [GXX, "-std=c++14", "-O0", f"-I{src}", str(harness), str(src / "conv1.cpp"), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("ok"), (run.returncode, run.stdout, run.stderr)


# --- 2. the prologue: init beside the first loads ---------------------------------------------------


def test_prologue_overlaps_init_with_the_first_loads(emit):
    """init writes the accumulators, the loads the first input and weight tiles: one block, no
    dependence, so csynth overlaps all three (as sharc-lab's three loads, and AN50's load beside
    its accumulator clear). The model must not charge init as a block of its own before the loads."""
    # the template: the three calls one after another in the TILE body itself, under no condition
    text = (emit(CONV3, [3, 7, 6], NT2) / "src" / "conv1.cpp").read_text()
    tile = _loop_body(_function(text, "conv1"), "TILE")
    top_level = _direct_blocks(tile)[-1]  # the TILE body, nested blocks cut out
    prologue_calls = (
        r"conv1_init\(acc, g, mt\);\s*"
        r"conv1_load_in\(in, in_a, g, 0, r0, c0\);\s*"
        r"conv1_load_w\(w, w_a, g, m0, 0\);"
    )
    assert re.search(prologue_calls, top_level)
    # the model, by hand: 3x3 conv M=4, N=4, 6x6 output, tiled 2/2/3/3
    g = ConvGeometry(1, 4, 4, 6, 6, 3, 3)
    k = conv_terms(g, 2, 2, 3, 3, FIXED, MacCost())
    f, blk = rules.FUNCTION_OVERHEAD, rules.SEQUENTIAL_BLOCK_OVERHEAD
    init = (3 * 3 - 1) + rules.INIT_DEPTH - 1
    load_in = (2 * 5 * 5 - 1) + rules.LOAD_DEPTH - 1
    load_w = (2 * 2 * 9 - 1) + rules.LOAD_DEPTH - 1
    store = (2 * 3 * 3 - 1) + rules.STORE_DEPTH - 1
    compute = (9 * 9 - 1) + k.compute_depth - 1
    stage = max(compute, load_in, load_w) + f + blk
    prologue = max(init, load_in, load_w) + f + blk  # not (init + f + blk) + (max(loads) + f + blk)
    assert k.tile_iteration == prologue + (2 * stage + blk) + (store + f + blk)
    # the same on a grid of tilings (the DSE's numpy path)
    grid = conv_terms(
        g, np.array([2, 4]), np.array([2, 1]), np.array([3, 6]), np.array([3, 2]), FIXED, MacCost()
    )
    for i, (tm, tn, tr, tc) in enumerate([(2, 2, 3, 3), (4, 1, 6, 2)]):
        assert int(grid.tile_iteration[i]) == int(
            conv_terms(g, tm, tn, tr, tc, FIXED, MacCost()).tile_iteration
        )


# --- 3. 1x1 kernels: no false accumulator dependence ----------------------------------------------


def test_one_by_one_compute_declares_no_inter_iteration_dependence(emit):
    """A 1x1 kernel touches each accumulator once per compute call; HLS cannot prove that from the
    hand-rolled ``r*TC+c`` index and, without a DEPENDENCE pragma, schedules the read-add-write
    recurrence at distance 1 (II 3 in fixed point, 7 in float) where the model says II 1."""
    src = emit(ONE_BY_ONE, [3, 5, 4], ["conv1:Tm=2,Tn=3,Tr=1,Tc=1"]) / "src"
    for name in ("conv1", "fc1"):
        compute = _function((src / f"{name}.cpp").read_text(), f"{name}_compute")
        assert "#pragma HLS DEPENDENCE variable=acc inter RAW false" in compute
        assert "distance=" not in compute
    # a KxK kernel keeps its true dependence at distance Tr*Tc
    k3 = _function((emit(CONV3, [3, 7, 6], NT2) / "src" / "conv1.cpp").read_text(), "conv1_compute")
    assert "#pragma HLS DEPENDENCE variable=acc inter RAW distance=12 true" in k3 and "RAW false" not in k3
    # the model: II 1 for 1x1 kernels, even at a 1x1 spatial tile, where a distance-1 recurrence
    # would force ii_recurrence_bound(read + add + write, 1)
    for prec in (FIXED, FLOAT):
        k = conv_terms(ConvGeometry(1, 4, 3, 5, 4, 1, 1), 2, 3, 1, 1, prec, MacCost())
        assert k.compute_ii == 1
        dep = rules.BUFFER_READ_LATENCY + prec.add_latency + 1
        assert rules.ii_recurrence_bound(dep, 1) == dep > 1


# --- 4. load and store depths from the fixture reports ---------------------------------------------

#: The fixture solutions whose csynth.rpt lists the m_axi accesses it could not burst.
COND_SOLUTIONS = [
    "Ritarka__8893Lab2/PartB_baseline",
    "Ritarka__8893Lab2/PartC_optimized",
    "sharc-lab__FPGA_ECE8893",
]


def _rpt_rows(text: str, section: str) -> list[list[str]]:
    """The table rows (cells stripped) of the first table after the line ``section`` in a csynth.rpt."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == section)
    rows, seen = [], 0
    for line in lines[start + 1 :]:
        if line.startswith("+"):
            seen += 1
            if seen == 3:  # header rule, header/body rule, closing rule
                break
            continue
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif seen:
            break
    return rows


def _maxi_latencies(text: str) -> list[int]:
    rows = _rpt_rows(text, "* M_AXI")
    col = rows[0].index("Latency")
    return [int(r[col]) for r in rows if r[0].startswith("m_axi_")]


def _conditional_loops(text: str, kind: str) -> set[str]:
    """Loops csynth names as not bursting because the m_axi ``kind`` (load or store) is conditional."""
    rows = _rpt_rows(text, "* Inferred Bursts and Widening Missed")
    col = rows[0].index("Loop")
    return {r[col] for r in rows if f"Access {kind} is in the conditional branch" in " ".join(r)}


def _depths(solution: str, kind: str) -> dict[str, int]:
    """{module/loop: depth} of each pipelined loop that is a conditional m_axi ``kind``, and checks
    that the solution ran at m_axi latency 0 on every port."""
    text = (FIXTURES / solution / "csynth.rpt").read_text()
    assert _maxi_latencies(text) and set(_maxi_latencies(text)) == {0}
    names = _conditional_loops(text, kind)
    assert names
    found = {}
    for module in load_solution(FIXTURES / solution).modules:
        for _, loop in module.walk_loops():
            if loop.pipelined and any(loop.name == n or loop.name.endswith("_" + n) for n in names):
                assert loop.ii == 1
                found[f"{module.name}/{loop.name}"] = loop.depth
    assert found
    return found


def test_load_and_store_depths_are_the_fixture_loops_plus_the_maxi_latency():
    """Every conditional (non-burst) m_axi load and store loop of the fixture reports, at m_axi
    latency 0: loads 13 and 15 deep, stores 12, 22 and 24. Our loops take the deepest of their kind,
    and the rendered m_axi latency on top (the old 4 and 5 were below every fixture loop)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"fixture reports not found at {FIXTURES}")
    loads = {k: v for s in COND_SOLUTIONS for k, v in _depths(s, "load").items()}
    stores = {k: v for s in COND_SOLUTIONS for k, v in _depths(s, "store").items()}
    assert len(loads) == 3 and len(stores) == 3  # PartB and PartC share their module names
    assert sorted(set(loads.values())) == [13, 15] and sorted(set(stores.values())) == [12, 22, 24]
    assert rules.MAXI_COND_LOAD_DEPTH_AT_LATENCY_0 == max(loads.values())
    assert rules.MAXI_COND_STORE_DEPTH_AT_LATENCY_0 == max(stores.values())
    assert rules.LOAD_DEPTH == max(loads.values()) + rules.MAXI_LATENCY
    assert rules.STORE_DEPTH == max(stores.values()) + rules.MAXI_LATENCY
    # what the model charges a load and a store loop
    k = conv_terms(ConvGeometry(1, 4, 4, 6, 6, 3, 3), 2, 2, 3, 3, FIXED, MacCost())
    assert k.load_in == rules.pipelined_loop(50, 1, 15 + rules.MAXI_LATENCY)
    assert k.store == rules.pipelined_loop(18, 1, 24 + rules.MAXI_LATENCY)


# --- 5. the TCL scripts and the m_axi pragmas --------------------------------------------------------


@pytest.mark.parametrize(
    ("board", "mpsoc"), [("pynq", False), ("vc707", False), ("zcu104", True), ("kv260", True)]
)
def test_maxi_latency_on_each_pragma_and_addr64_on_mpsoc(emit, board, mpsoc):
    """Vivado HLS 2019.2 has no ``config_interface -m_axi_latency`` (a Vitis HLS option): the latency
    the model assumes goes on each m_axi INTERFACE pragma, which both tools accept. Zynq UltraScale+
    parts (xczu*, and Kria's xck2*) need 64-bit m_axi addresses, which Vivado HLS does not default to."""
    out = emit([{"type": "fc", "out": 3}], [2, 2, 2], [], board)
    part = load_board(board).part
    assert part.lower().startswith(("xczu", "xck2")) == mpsoc
    top = (out / "src" / "t_top.cpp").read_text()
    maxi = [line for line in top.splitlines() if "INTERFACE m_axi" in line]
    assert len(maxi) == 4
    assert all(line.rstrip().endswith(f" latency={rules.MAXI_LATENCY}") for line in maxi)
    hls = (out / "run_hls.tcl").read_text()
    vitis = (out / "run_vitis.tcl").read_text()
    commands = [line for line in hls.splitlines() if not line.lstrip().startswith("#")]
    assert not any("-m_axi_latency" in line for line in commands)
    for tcl in (hls, vitis):
        assert ("\nconfig_interface -m_axi_addr64\n" in tcl) == mpsoc
        assert f"set_part {{{part}}}" in tcl


# --- 6. the bias ROM: a bank per unrolled output channel -------------------------------------------


def test_bias_rom_is_indexed_by_compile_time_banks(emit):
    """The bias ROM was cyclic-partitioned by TM and read at ``[g][m0 + m]``, m0 a run-time tile
    origin: HLS cannot tell which bank each unrolled m reads (a mux over all banks, or II > 1).
    As [G][MT][TM], split completely on the last dimension and read at ``[g][mt][m]``, each
    unrolled m reads its own bank."""
    text = (emit(CONV3, [3, 7, 6], NT2) / "src" / "conv1.cpp").read_text()
    assert "static const fnas_bias_t conv1_bias[fnas_cfg::G][fnas_cfg::MT][fnas_cfg::TM] = {" in text
    init = _function(text, "conv1_init")
    assert "#pragma HLS ARRAY_PARTITION variable=conv1_bias complete dim=3" in init
    assert "acc[m][i] = conv1_bias[g][mt][m];" in init and "m0" not in init
    assert re.search(r"^void conv1_init\(.*, int g, int mt\) \{", text, re.M)


def test_bias_literal_rows_nest_group_tile_channel():
    """``_bias_literal_rows`` writes [group][tile][m], zero past M, in the order the ROM is declared."""
    bias = np.arange(1, 11)  # 2 groups of M=5, tiled Tm=3: MT=2, one padded slot per group
    text = _bias_literal_rows(bias, 2, 5, 2, 3, DataType.fixed(32, 8))
    nested = json.loads("[" + text.replace("{", "[").replace("}", "]") + "]")  # C braces as JSON lists
    assert nested == [[[1, 2, 3], [4, 5, 0]], [[6, 7, 8], [9, 10, 0]]]
