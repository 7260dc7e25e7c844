"""``fnas-hls compare``: a hand-made csynth report with known deviations from the prediction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fnas_hls.boards import load_board
from fnas_hls.cli import main
from fnas_hls.network.arch import parse_network_yaml
from fnas_hls.reports.compare import compare
from fnas_hls.styles import analyze

NET = """name: small
input: [3, 16, 16]
layers:
  - {type: conv, out: 8, kernel: 3, padding: same, relu: true}
  - {type: maxpool, kernel: 2}
  - {type: conv, out: 16, kernel: 3, padding: same, relu: true}
  - {type: gap}
  - {type: fc, out: 10}
"""
TOP = "small_top"


def module_xml(
    name: str,
    latency: int,
    loops: list[dict],
    res: dict | None = None,
    top: str | None = None,
    interval: int | None = None,
) -> str:
    """A csynth.xml as Vivado HLS 2019.2 writes it for one module."""

    def loop_xml(lp: dict) -> str:
        inner = f"<TripCount>{lp['trip']}</TripCount><Latency>{lp['latency']}</Latency>"
        if lp.get("ii") is not None:
            inner += f"<PipelineII>{lp['ii']}</PipelineII><PipelineDepth>{lp['depth']}</PipelineDepth>"
        else:
            inner += f"<IterationLatency>{lp['iteration_latency']}</IterationLatency>"
        return f"<{lp['label']}>{inner}</{lp['label']}>"

    res = res or {"dsp": 0, "bram18k": 0, "ff": 0, "lut": 0}
    ii = latency if interval is None else interval
    return f"""<profile>
<ReportVersion><Version>2019.2</Version></ReportVersion>
<UserAssignments><unit>ns</unit><ProductFamily>zynq</ProductFamily><Part>xc7z020-clg400-1</Part>
<TopModelName>{top or name}</TopModelName><TargetClockPeriod>10.00</TargetClockPeriod>
<ClockUncertainty>1.25</ClockUncertainty></UserAssignments>
<PerformanceEstimates><SummaryOfTimingAnalysis><unit>ns</unit><EstimatedClockPeriod>8.5</EstimatedClockPeriod>
</SummaryOfTimingAnalysis><SummaryOfOverallLatency><unit>clock cycles</unit>
<Best-caseLatency>{latency}</Best-caseLatency><Average-caseLatency>{latency}</Average-caseLatency>
<Worst-caseLatency>{latency}</Worst-caseLatency><Interval-min>{ii}</Interval-min>
<Interval-max>{ii}</Interval-max></SummaryOfOverallLatency>
<SummaryOfLoopLatency>{"".join(loop_xml(lp) for lp in loops)}</SummaryOfLoopLatency></PerformanceEstimates>
<AreaEstimates><Resources><BRAM_18K>{res["bram18k"]}</BRAM_18K><DSP48E>{res["dsp"]}</DSP48E><FF>{res["ff"]}</FF>
<LUT>{res["lut"]}</LUT><URAM>0</URAM></Resources><AvailableResources><BRAM_18K>280</BRAM_18K>
<DSP48E>220</DSP48E><FF>106400</FF><LUT>53200</LUT><URAM>0</URAM></AvailableResources></AreaEstimates>
</profile>
"""


def make_project(tmp_path: Path, deviate: bool, vitis: bool = False) -> Path:
    """A project folder: manifest.json with the model's prediction, and a csynth report of it.

    With ``deviate``, the report differs in exactly three figures: conv1_compute runs its COMPUTE
    loop at II 2 (so the loop and the module take longer) and the design uses 50% more BRAM.
    With ``vitis``, each pipelined loop sits in a module of its own, as Vitis HLS puts it
    (``<function>_Pipeline_<LABEL>``).
    """
    project = tmp_path / "proj"
    report = project / "prj" / "solution1" / "syn" / "report"
    report.mkdir(parents=True)
    a = analyze(parse_network_yaml(NET), load_board("pynq"))
    data = a.to_json()
    (project / "manifest.json").write_text(json.dumps({"top": TOP, "analysis": data}))
    res = dict(data["resources"])
    if deviate:
        res["bram18k"] = res["bram18k"] * 3 // 2
    (report / "csynth.xml").write_text(module_xml(TOP, data["latency_cycles"], [], res))
    for layer in data["layers"]:
        for fn in layer["functions"]:
            loops = [dict(lp) for lp in fn["loops"]]
            latency = fn["latency"]
            if deviate and fn["name"] == "conv1_compute":
                lp = loops[0]
                extra = (lp["trip"] - 1) * (2 - lp["ii"])
                lp["ii"], lp["latency"] = 2, lp["latency"] + extra
                latency += extra
            name = "conv1_compute4" if fn["name"] == "conv1_compute" else fn["name"]  # csynth's numbering
            if vitis:
                for lp in [lp for lp in loops if lp.get("ii") is not None]:
                    sub = f"{name}_Pipeline_{lp['label']}"
                    (report / f"{sub}_csynth.xml").write_text(module_xml(sub, lp["latency"] + 2, [lp]))
                loops = [lp for lp in loops if lp.get("ii") is None]
            (report / f"{name}_csynth.xml").write_text(module_xml(name, latency, loops))
    return project


def test_exact_report_passes(tmp_path, capsys):
    project = make_project(tmp_path, deviate=False)
    c = compare(project)
    assert c.ok and not c.missing and not c.ii_missed
    assert all(r.error_pct == 0 for r in c.rows if r.error_pct is not None)
    kinds = {r.kind for r in c.rows}
    assert kinds == {"top", "function", "loop", "resource"}
    assert main(["compare", str(project)]) == 0
    assert "OK: 0 of" in capsys.readouterr().out


@pytest.mark.parametrize("vitis", [False, True])
def test_known_deviations_are_found_exactly_and_fail(tmp_path, capsys, vitis):
    project = make_project(tmp_path, deviate=True, vitis=vitis)
    c = compare(project, tolerance_pct=10)
    assert {r.name for r in c.failures} == {"conv1_compute", "conv1_compute/COMPUTE", "bram18k"}
    assert len(c.ii_missed) == 1 and c.ii_missed[0].startswith("conv1_compute/COMPUTE: HLS achieved II 2")
    assert not c.missing
    out_json = tmp_path / "c.json"
    assert main(["compare", str(project), "--json", str(out_json)]) == 1
    text = capsys.readouterr().out
    assert "FAIL: 3 of" in text and "II missed" in text
    data = json.loads(out_json.read_text())
    assert data["ok"] is False and sorted(data["failures"]) == [
        "bram18k",
        "conv1_compute",
        "conv1_compute/COMPUTE",
    ]
    # a loose enough tolerance lets the same report pass
    assert main(["compare", str(project), "--tolerance", "1000"]) == 0


def test_explicit_report_path_and_missing_entries(tmp_path):
    project = make_project(tmp_path, deviate=False)
    report = project / "prj" / "solution1" / "syn" / "report"
    (report / "pool1_csynth.xml").unlink()  # as if HLS had inlined the pooling function
    c = compare(project, report_path=report)
    assert "pool1" in c.missing and "pool1/POOL" in c.missing
    assert c.ok


def test_missing_report_says_where_it_looked(tmp_path, capsys):
    project = make_project(tmp_path, deviate=False)
    for f in (project / "prj" / "solution1" / "syn" / "report").iterdir():
        f.unlink()
    assert main(["compare", str(project)]) == 2
    err = capsys.readouterr().err
    assert "no synthesis report under" in err and "syn/report" in err and "--report" in err


def test_report_of_another_top_function(tmp_path, capsys):
    project = make_project(tmp_path, deviate=False)
    other = tmp_path / "other.xml"
    other.write_text(module_xml("tiled_conv", 100, []))
    assert main(["compare", str(project), "--report", str(other)]) == 2
    assert "top function 'tiled_conv', but the project's top is 'small_top'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><profile>&lol;</profile>', "DOCTYPE"),
        ("<profile><ReportVersion>", ""),
        ("just text, not a report", ""),
    ],
)
def test_hostile_truncated_or_unknown_report(tmp_path, capsys, content, message):
    project = make_project(tmp_path, deviate=False)
    bad = tmp_path / "bad_csynth.xml"
    bad.write_text(content)
    assert main(["compare", str(project), "--report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err and message in err


def test_not_a_project(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_emitted_project_with_hand_made_vitis_report(tmp_path, capsys):
    """emit a real project, write csynth reports for it as Vitis HLS names modules and loops, with
    two known deviations (a missed II on conv2's COMPUTE and 40% more DSP), and compare."""
    from fnas_hls.backend.float_model import with_random_weights
    from fnas_hls.backend.hls_writer import emit_project

    net = with_random_weights(parse_network_yaml(NET))
    result = emit_project(net, load_board("pynq"), tmp_path / "proj")
    project = result.project_dir
    manifest = json.loads((project / "manifest.json").read_text())
    top, data = manifest["top"], manifest["analysis"]
    report = project / f"{top}_prj" / "solution1" / "syn" / "report"  # where run_hls.tcl puts it
    report.mkdir(parents=True)
    res = dict(data["resources"])
    res["dsp"] = res["dsp"] * 14 // 10
    (report / "csynth.xml").write_text(module_xml(top, data["latency_cycles"], [], res))
    for layer in data["layers"]:
        for fn in layer["functions"]:
            loops = [dict(lp) for lp in fn["loops"]]
            latency = fn["latency"]
            for lp in [lp for lp in loops if lp.get("ii") is not None]:
                if fn["name"] == "conv2_compute":
                    extra = (lp["trip"] - 1) * 3
                    lp["ii"], lp["latency"] = lp["ii"] + 3, lp["latency"] + extra
                    latency += extra
                sub = f"{fn['name']}_Pipeline_{lp['label']}"
                (report / f"{sub}_csynth.xml").write_text(module_xml(sub, lp["latency"] + 2, [lp]))
            seq = [lp for lp in loops if lp.get("ii") is None]
            (report / f"{fn['name']}_csynth.xml").write_text(module_xml(fn["name"], latency, seq))
    assert main(["compare", str(project)]) == 1
    out = capsys.readouterr().out
    c = compare(project)
    assert {r.name for r in c.failures} == {"conv2_compute", "conv2_compute/COMPUTE", "dsp"}
    assert len(c.ii_missed) == 1 and "conv2_compute/COMPUTE" in c.ii_missed[0]
    assert not c.missing
    assert "FAIL: 3 of" in out


def _emitted(tmp_path: Path, style: str) -> tuple[Path, str, dict, Path]:
    """NET emitted in ``style`` on pynq: the project, its top, the manifest's analysis, and the
    empty report folder where run_hls.tcl puts csynth's reports."""
    from fnas_hls.backend.float_model import with_random_weights
    from fnas_hls.backend.hls_writer import emit_project

    net = with_random_weights(parse_network_yaml(NET))
    project = emit_project(net, load_board("pynq"), tmp_path / "proj", style=style).project_dir
    manifest = json.loads((project / "manifest.json").read_text())
    top, data = manifest["top"], manifest["analysis"]
    assert data["style"] == style
    report = project / f"{top}_prj" / "solution1" / "syn" / "report"
    report.mkdir(parents=True)
    return project, top, data, report


def test_dataflow_project_against_a_hand_made_report(tmp_path, capsys):
    """A dataflow project: csynth reports the region as the sum of its processes (interval: the
    slowest); a report that says so passes, and one whose conv1 ROW loop misses its II fails on
    exactly that loop, its process, the region's sum and (conv1 is then the slowest) its interval."""
    project, top, data, report = _emitted(tmp_path, "dataflow")

    def write(deviate: bool) -> None:
        total, slowest = 0, 0
        for layer in data["layers"]:
            for fn in layer["functions"]:
                loops = [dict(lp) for lp in fn["loops"]]
                latency = fn["latency"]
                if deviate and fn["name"] == "conv1":
                    row = next(lp for lp in loops if lp["label"] == "ROW")
                    extra = (row["trip"] - 1) * row["ii"]
                    row["ii"], row["latency"] = 2 * row["ii"], row["latency"] + extra
                    rows = next(lp for lp in loops if lp["label"] == "ROWS")
                    rows["latency"] += extra * rows["trip"]
                    latency += extra * rows["trip"]
                total, slowest = total + latency, max(slowest, latency)
                (report / f"{fn['name']}_csynth.xml").write_text(module_xml(fn["name"], latency, loops))
        res = dict(data["resources"])
        (report / "csynth.xml").write_text(module_xml(top, total, [], res, interval=slowest))

    write(False)
    c = compare(project)
    assert c.ok and not c.missing, [r for r in c.failures]
    write(True)
    c = compare(project)
    region = {f"{top} (csynth: sum of the processes)", f"{top} interval (the slowest process)"}
    assert {r.name for r in c.failures} == region | {"conv1", "conv1/ROW", "conv1/ROWS"}
    assert len(c.ii_missed) == 1 and "conv1/ROW" in c.ii_missed[0]


def _range(low: int, high: int) -> str:
    return f"<range><min>{low}</min><max>{high}</max></range>"


def test_shared_project_against_a_hand_made_vitis_report(tmp_path):
    """A shared project: the engine and units have run-time trips, so csynth (with the templates'
    LOOP_TRIPCOUNT) reports each loop's trip and latency as a range and its worst case at the largest
    trip; a report that says what the model does passes, and one whose COMPUTE reaches II 2 fails on
    that loop, its function and the STEP iteration that calls it."""
    from fnas_hls.model import hls_rules as rules

    project, top, data, report = _emitted(tmp_path, "shared")
    run_time = {}
    for layer in data["layers"]:
        for fn in layer["functions"]:
            if fn["name"].startswith("fnas_engine") or fn["name"] in ("fnas_add2", "fnas_copy"):
                run_time.setdefault(fn["name"], []).append(fn)
            else:
                (report / f"{fn['name']}_csynth.xml").write_text(
                    module_xml(fn["name"], fn["latency"], fn["loops"])
                )

    def write(compute_ii: int) -> None:
        longest = {}
        for name, fns in run_time.items():
            if name == "fnas_engine":
                continue
            lp = max((lp for f in fns for lp in f["loops"]), key=lambda lp: lp["trip"])
            ii = compute_ii if lp["label"] == "COMPUTE" else lp["ii"]
            worst = rules.pipelined_loop(lp["trip"], ii, lp["depth"])
            longest[name] = rules.function_latency(worst)
            loop = {"label": lp["label"], "trip": _range(0, lp["trip"]), "latency": _range(0, worst),
                    "ii": ii, "depth": lp["depth"]}  # fmt: skip
            sub = f"{name}_Pipeline_{lp['label']}"
            (report / f"{sub}_csynth.xml").write_text(module_xml(sub, worst + 2, [loop]))
            (report / f"{name}_csynth.xml").write_text(module_xml(name, longest[name], []))
        parts = [longest[f"fnas_engine_{p}"] for p in ("compute", "load_in", "load_w", "store")]
        step = rules.sequential_block(max(parts))
        trips = max(lp["trip"] for f in run_time["fnas_engine"] for lp in f["loops"])
        loop = {"label": "STEP", "trip": _range(1, trips), "latency": _range(step, trips * step),
                "iteration_latency": _range(step, step)}  # fmt: skip
        (report / "fnas_engine_csynth.xml").write_text(module_xml("fnas_engine", trips * step + 50, [loop]))
        (report / "csynth.xml").write_text(module_xml(top, 10**7, [], dict(data["resources"])))

    write(compute_ii=1)
    c = compare(project)
    assert c.ok and not c.missing, (c.failures, c.missing)
    names = {r.name for r in c.rows}
    assert "fnas_engine/STEP iteration (worst case)" in names and "fnas_engine_compute (worst case)" in names
    assert any(n.startswith("fnas_engine_load_in/LOAD_IN (trip ") for n in names)
    write(compute_ii=2)
    c = compare(project)
    failed = {r.name.split(" (")[0] for r in c.failures}
    assert failed == {"fnas_engine_compute", "fnas_engine_compute/COMPUTE", "fnas_engine/STEP iteration"}
    assert len(c.ii_missed) == 1 and "COMPUTE" in c.ii_missed[0]


def test_a_manifest_of_an_unknown_style_is_one_line(tmp_path, capsys):
    project = make_project(tmp_path, deviate=False)
    doc = json.loads((project / "manifest.json").read_text())
    doc["analysis"]["style"] = "systolic"
    (project / "manifest.json").write_text(json.dumps(doc))
    assert main(["compare", str(project)]) == 2
    err = capsys.readouterr().err
    assert (
        "manifest.json: field 'analysis.style' is 'systolic'; accepted: sequential, dataflow, shared" in err
    )
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
