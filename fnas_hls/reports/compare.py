"""Predicted versus reported: hold the performance model to what HLS synthesis says.

An emitted project's ``manifest.json`` carries the model's prediction (``analysis``: cycles per
function and per loop label, resources). After synthesis, ``compare`` matches csynth's modules
and loops to those names and reports the error of each, the II that HLS achieved where it missed
the model's, and DSP/BRAM predicted against reported.

csynth names modules after the C functions, with two twists handled here: a function synthesized
in several variants gets a number appended (``compute`` -> ``compute4``), and Vitis HLS moves a
pipelined loop into a module of its own, ``<function>_Pipeline_<LABEL>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fnas_hls.errors import FnasError
from fnas_hls.model import hls_rules as rules
from fnas_hls.model.shared import ADD_UNITS, COPY_UNIT
from fnas_hls.model.shared_engine import ENGINE
from fnas_hls.reports.hls_report import (
    LoopReport,
    ModuleReport,
    SynthesisReport,
    load_cosim,
    load_report,
    load_solution,
)
from fnas_hls.styles import STYLES

#: Default tolerance, in percent, of |predicted - reported| / reported.
DEFAULT_TOLERANCE = 10.0
#: How deep under a project folder to look for ``syn/report``.
_SEARCH_DEPTH = 5


@dataclass(frozen=True)
class Row:
    """One compared figure: a function's latency, a loop's latency, or a resource."""

    kind: str  # "function", "loop", "resource", "top", "cosim"
    name: str  # function name, "function/LOOP", or resource name
    predicted: int | None
    reported: int | None
    module: str | None = None  # the report's module that matched
    note: str = ""

    @property
    def error_pct(self) -> float | None:
        if self.predicted is None or self.reported is None:
            return None
        if self.reported == 0:
            return 0.0 if self.predicted == 0 else float("inf")
        return 100.0 * (self.predicted - self.reported) / self.reported


@dataclass(frozen=True)
class Comparison:
    project: str
    report: str
    top: str
    tolerance_pct: float
    rows: tuple[Row, ...]
    missing: tuple[str, ...] = ()  # predicted functions/loops the report does not hold
    ii_missed: tuple[str, ...] = ()  # loops whose achieved II is above the model's
    notes: tuple[str, ...] = field(default=())

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.error_pct is not None and abs(r.error_pct) > self.tolerance_pct]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "report": self.report,
            "top": self.top,
            "tolerance_pct": self.tolerance_pct,
            "ok": self.ok,
            "rows": [{**asdict(r), "error_pct": r.error_pct} for r in self.rows],
            "failures": [r.name for r in self.failures],
            "missing": list(self.missing),
            "ii_missed": list(self.ii_missed),
            "notes": list(self.notes),
        }


def load_manifest(project: Path) -> dict[str, Any]:
    path = project / "manifest.json"
    if not path.is_file():
        raise FnasError(f"{project}: no manifest.json; is this a project written by `fnas-hls emit`?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FnasError(f"{path}: not a readable fnas-hls manifest ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("analysis"), dict) or "top" not in data:
        raise FnasError(f"{path}: manifest lacks 'top' or 'analysis'; re-emit the project with fnas-hls emit")
    analysis = data["analysis"]
    if not isinstance(analysis.get("layers"), list):
        raise FnasError(f"{path}: field 'analysis.layers' must be a list")
    style = analysis.get("style", "sequential")  # projects from before styles are sequential
    if style not in STYLES:
        raise FnasError(f"{path}: field 'analysis.style' is {style!r}; accepted: {', '.join(STYLES)}")
    return data


def find_report(project: Path) -> Path:
    """The newest ``syn/report`` folder under ``project`` (Vivado HLS and Vitis HLS layouts)."""
    looked: list[str] = []
    found: list[Path] = []
    for depth in range(_SEARCH_DEPTH):
        pattern = "/".join(["*"] * depth + ["syn", "report"]) if depth else "syn/report"
        looked.append(f"{project}/{pattern}")
        for d in project.glob(pattern):
            if d.is_dir() and (any(d.glob("*csynth.xml")) or any(d.glob("*csynth.rpt"))):
                found.append(d)
    if not found:
        raise FnasError(
            f"no synthesis report under {project} (looked in {', '.join(looked[:3])}, ...); run csynth "
            f"(see the project's README.md) or give --report PATH"
        )
    return max(found, key=lambda d: max(p.stat().st_mtime for p in d.iterdir()))


def _match_module(report: SynthesisReport, function: str) -> ModuleReport | None:
    """The report's module for a C function: the same name, or the name with a number appended."""
    for m in report.modules:
        if m.name == function:
            return m
    numbered = re.compile(rf"^{re.escape(function)}_?\d+$")
    for m in report.modules:
        if numbered.match(m.name):
            return m
    return None


def _match_loop(
    report: SynthesisReport, module: ModuleReport | None, function: str, label: str
) -> tuple[LoopReport | None, str | None]:
    """The loop ``label`` of ``function``: in its module, or in Vitis's ``<function>_Pipeline_<label>``."""
    if module is not None:
        for _, loop in module.walk_loops():
            if loop.name == label or loop.name.startswith(f"{label}_"):
                return loop, module.name
    prefix = f"{module.name if module else function}_Pipeline_"
    for m in report.modules:
        if m.name.startswith(prefix) and label in m.name[len(prefix) :]:
            for _, loop in m.walk_loops():
                if loop.name == label or label in loop.name:
                    return loop, m.name
    return None, None


def _is_run_time(name: str) -> bool:
    """A shared design's function with run-time trips: the engine's, the add and copy units."""
    return name.startswith(ENGINE) or name in (*ADD_UNITS.values(), COPY_UNIT)


def _run_time_rows(
    report: SynthesisReport, analysis: dict, rows: list[Row], missing: list[str], ii_missed: list[str]
) -> None:
    """The run-time functions at csynth's worst case: each pipelined loop at the largest trip any
    layer gives it (its LOOP_TRIPCOUNT max), its function at its longest call, and the engine's STEP
    iteration as its calls side by side at their longest (compute, the loads, and the stores: STORE
    and STORE_B, each called every step, with trip 0 where the layer stores the other way)."""
    calls: dict[str, list[dict]] = {}
    for layer in analysis["layers"]:
        for fn in layer.get("functions", []):
            if _is_run_time(fn["name"]):
                calls.setdefault(fn["name"], []).append(fn)
    longest = {name: max(f["latency"] for f in fns) for name, fns in calls.items()}
    for name, fns in calls.items():
        module = _match_module(report, name)
        if name == ENGINE:
            step = rules.sequential_block(
                rules.overlapped(
                    *(
                        longest.get(f"{ENGINE}_{part}", 0)
                        for part in ("compute", "load_in", "load_w", "store", "store_b")
                    )
                )
            )
            loop, where = _match_loop(report, module, name, "STEP")
            if loop is None:
                missing.append(f"{name}/STEP")
            else:
                rows.append(
                    Row(
                        "loop", f"{name}/STEP iteration (worst case)", step, loop.iteration_latency_max, where
                    )
                )
            continue
        if module is None:
            missing.append(name)
        else:
            rows.append(
                Row("function", f"{name} (worst case)", longest[name], module.latency_worst, module.name)
            )
        for label in dict.fromkeys(lp["label"] for f in fns for lp in f.get("loops", [])):
            lp = max(
                (lp for f in fns for lp in f["loops"] if lp["label"] == label), key=lambda lp: lp["trip"]
            )
            key = f"{name}/{label}"
            loop, where = _match_loop(report, module, name, label)
            if loop is None:
                missing.append(key)
                continue
            note = ""
            if loop.trip_max is not None and loop.trip_max != lp["trip"]:
                note = f"largest trip {loop.trip_max} reported, {lp['trip']} predicted"
            if loop.ii is not None and lp.get("ii") is not None and loop.ii > lp["ii"]:
                ii_missed.append(f"{key}: HLS achieved II {loop.ii}, the model predicted {lp['ii']}")
                note = (note + "; " if note else "") + f"II {loop.ii} vs {lp['ii']}"
            rows.append(
                Row("loop", f"{key} (trip {lp['trip']:,})", lp["latency"], loop.latency_worst, where, note)
            )


def compare(
    project: Path, report_path: Path | None = None, tolerance_pct: float = DEFAULT_TOLERANCE
) -> Comparison:
    """Match the manifest's predictions to a synthesis report; every figure side by side."""
    project = Path(project)
    if not project.is_dir():
        raise FnasError(f"{project}: not a folder; give the project folder written by `fnas-hls emit`")
    manifest = load_manifest(project)
    if report_path is not None:
        report_path = Path(report_path)
        report = load_solution(report_path) if report_path.is_dir() else load_report(report_path)
    else:
        report = load_solution(find_report(project))
    top = str(manifest["top"])
    if report.top != top and not (report.top.startswith(top) and report.top[len(top) :].isdigit()):
        raise FnasError(
            f"{report.path}: a report of top function '{report.top}', but the project's top is '{top}'"
        )
    analysis = manifest["analysis"]
    rows: list[Row] = []
    missing: list[str] = []
    ii_missed: list[str] = []
    notes: list[str] = []

    top_module = _match_module(report, report.top)
    style = STYLES[analysis.get("style", "sequential")]
    # A dataflow region: csynth reports the sum of its processes as the latency and the largest as
    # the interval (hls_rules.dataflow_region_csynth); the real latency is co-simulation's.
    rows.append(
        Row(
            "top",
            f"{top} (csynth: sum of the processes)" if style.region else top,
            analysis.get("csynth_latency_cycles") if style.region else analysis.get("latency_cycles"),
            top_module.latency_worst if top_module else None,
            report.top,
            "" if top_module is None or top_module.latency_worst is not None else "latency '?' in report",
        )
    )
    if style.region:
        rows.append(
            Row(
                "top",
                f"{top} interval (the slowest process)",
                # csynth's (a process whose trip varies at its worst case); a manifest before it: the real one
                analysis.get("csynth_interval_cycles") or analysis.get("interval_cycles"),
                top_module.interval_max if top_module else None,
                report.top,
            )
        )
    if style.run_time_trips:
        notes.append(
            f"{style.name} style: every conv/fc layer calls the one engine ({ENGINE}), adds and concats the "
            f"units {', '.join(ADD_UNITS.values())} and {COPY_UNIT}, with run-time trips; csynth reports "
            "their worst case from "
            "the LOOP_TRIPCOUNT maxima (the largest trip any layer gives a loop), and so does this table; "
            "each layer's own figures, and the network's latency, are co-simulation's to check"
        )
        rows[0] = Row(
            "top", f"{top} (csynth: worst case of run-time trips)", None, rows[0].reported, report.top
        )
        _run_time_rows(report, analysis, rows, missing, ii_missed)
    for layer in analysis["layers"]:
        for fn in layer.get("functions", []):
            name = fn["name"]
            if style.run_time_trips and _is_run_time(name):
                continue
            module = _match_module(report, name)
            if module is None:
                missing.append(name)
            else:
                rows.append(Row("function", name, fn["latency"], module.latency_worst, module.name))
            for lp in fn.get("loops", []):
                label = lp["label"]
                loop, where = _match_loop(report, module, name, label)
                key = f"{name}/{label}"
                if loop is None:
                    missing.append(key)
                    continue
                note = ""
                if loop.trip is not None and loop.trip != lp.get("trip"):
                    note = f"trip {loop.trip} reported, {lp.get('trip')} predicted"
                if loop.ii is not None and lp.get("ii") is not None and loop.ii > lp["ii"]:
                    target = f" (target {loop.ii_target})" if loop.ii_target is not None else ""
                    ii_missed.append(
                        f"{key}: HLS achieved II {loop.ii}{target}, the model predicted {lp['ii']}: look for "
                        f"memory-port conflicts (partitioning) or a loop-carried dependence"
                    )
                    note = (note + "; " if note else "") + f"II {loop.ii} vs {lp['ii']}"
                rows.append(Row("loop", key, lp.get("latency"), loop.latency_worst, where, note))
    predicted_res = analysis.get("resources", {})
    if top_module is not None:
        for res in ("dsp", "bram18k"):
            rows.append(
                Row("resource", res, predicted_res.get(res), getattr(top_module.resources, res), report.top)
            )
    else:
        notes.append(f"module '{report.top}' not found in the report; resources not compared")
    cosim_dir = Path(report.path).parent.parent.parent / "sim" / "report"
    cosim_file = cosim_dir / f"{report.top}_cosim.rpt"
    if cosim_file.is_file():
        cosim = load_cosim(cosim_file)
        rows.append(
            Row(
                "cosim",
                f"{top} (co-simulation, measured)",
                analysis.get("latency_cycles"),
                cosim.latency_max,
                report.top,
            )
        )
    return Comparison(
        project=str(project),
        report=report.path,
        top=top,
        tolerance_pct=tolerance_pct,
        rows=tuple(rows),
        missing=tuple(missing),
        ii_missed=tuple(ii_missed),
        notes=tuple(notes),
    )


def format_comparison(c: Comparison) -> str:
    """The predicted-versus-reported table, with the II misses and what the report lacks."""
    head = ("what", "name", "predicted", "reported", "error %", "")
    body = []
    for r in c.rows:
        err = r.error_pct
        err_s = "-" if err is None else f"{err:+.1f}"
        flag = "OVER" if err is not None and abs(err) > c.tolerance_pct else ""
        body.append(
            (r.kind, r.name, _n(r.predicted), _n(r.reported), err_s, " ".join(x for x in (flag, r.note) if x))
        )
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(w) if i in (2, 3, 4) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [
        f"{c.project} against {c.report} (top {c.top}, tolerance {c.tolerance_pct:g}%)",
        line(head),
        "  ".join("-" * w for w in widths),
    ]
    out += [line(b) for b in body]
    out += [f"II missed: {m}" for m in c.ii_missed]
    if c.missing:
        out.append(f"not in the report (inlined or renamed by HLS?): {', '.join(c.missing)}")
    out += [f"note: {n}" for n in c.notes]
    n_fail = len(c.failures)
    out.append(
        f"{'OK' if c.ok else 'FAIL'}: {n_fail} of {sum(r.error_pct is not None for r in c.rows)} "
        f"figures beyond {c.tolerance_pct:g}%"
    )
    return "\n".join(out)


def _n(v: int | None) -> str:
    return "?" if v is None else f"{v:,}"
