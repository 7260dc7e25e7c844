"""``fnas-hls report``: print what a Vivado HLS / Vitis HLS synthesis report says, module by module."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fnas_hls.errors import FnasError
from fnas_hls.io_utils import write_text_atomic
from fnas_hls.reports.hls_report import (
    CosimReport,
    LoopReport,
    ModuleReport,
    SynthesisReport,
    load_cosim,
    load_report,
    load_solution,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="show a synthesis report: latency, II and depth per module and loop",
        description="Read a csynth report (csynth.xml, <module>_csynth.xml, csynth.rpt or "
        "<module>_csynth.rpt), a co-simulation report (<top>_cosim.rpt), or a whole solution/project "
        "folder (syn/report/ with every per-module report merged), and print each module and loop: "
        "trip count, best/worst latency, iteration latency, II achieved (target), depth and resources. "
        "Unknown figures print as '?'.",
    )
    parser.add_argument("path", metavar="PATH", help="a report file, or a solution/project/report folder")
    parser.add_argument(
        "--json",
        metavar="OUT",
        help="also write the same data as JSON to OUT ('-': print the JSON instead of the table)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the report table; write it as JSON when ``--json`` is given."""
    path = Path(args.path)
    if not path.exists():
        raise FnasError(f"{path}: no such file or folder")
    synthesis: SynthesisReport | None = None
    cosim: CosimReport | None = None
    if path.is_file() and path.name.lower().endswith("_cosim.rpt"):
        cosim = load_cosim(path)
    else:
        synthesis = load_solution(path) if path.is_dir() else load_report(path)
        if path.is_dir():
            cosim = _cosim_beside(synthesis)
    data = {
        "synthesis": None if synthesis is None else synthesis.as_dict(),
        "cosim": None if cosim is None else cosim.as_dict(),
    }
    text = json.dumps(data, indent=2) + "\n"
    if args.json == "-":
        sys.stdout.write(text)
        return 0
    if args.json is not None:
        write_text_atomic(args.json, text)
    sys.stdout.write(format_report(synthesis, cosim))
    return 0


def _cosim_beside(report: SynthesisReport) -> CosimReport | None:
    """The co-simulation report of the same solution (``<solution>/sim/report/<top>_cosim.rpt``), if any."""
    report_dir = Path(report.path).parent
    if report_dir.name != "report" or report_dir.parent.name != "syn":
        return None
    candidate = report_dir.parent.parent / "sim" / "report" / f"{report.top}_cosim.rpt"
    return load_cosim(candidate) if candidate.is_file() else None


# --- the table ----------------------------------------------------------------------------------

_COLUMNS = ("module / loop", "trip", "lat best", "lat worst", "iter lat", "II (target)", "depth")
_RESOURCES = ("DSP", "BRAM", "FF", "LUT")


def format_report(synthesis: SynthesisReport | None, cosim: CosimReport | None = None) -> str:
    """The report as text: header lines, then one row per module and per loop (indented by nesting)."""
    lines: list[str] = []
    if synthesis is not None:
        lines += _header(synthesis)
        lines.append("")
        lines += _table(synthesis)
    if cosim is not None:
        if lines:
            lines.append("")
        lines += _cosim_lines(cosim)
    return "\n".join(lines) + "\n"


def _header(r: SynthesisReport) -> list[str]:
    merged = len(r.sources) - 1
    more = f"  (+{merged} per-module report{'s' if merged != 1 else ''} merged)" if merged > 0 else ""
    tool = " ".join(x for x in (r.tool, r.version) if x) or "?"
    clock = (
        f"target {_ns(r.target_clock_ns)}, uncertainty {_ns(r.clock_uncertainty_ns)}, "
        f"estimated {_ns(r.estimated_clock_ns)}"
    )
    return [
        f"report: {r.path}{more}",
        f"tool:   {tool}, part {r.part or '?'}",
        f"top:    {r.top}",
        f"clock:  {clock}",
    ]


def _table(r: SynthesisReport) -> list[str]:
    rows: list[list[str]] = []
    for module in r.modules:
        rows.append(_module_row(module, module.name == r.top))
        for level, loop in module.walk_loops():
            rows.append(_loop_row(loop, level))
    header = list(_COLUMNS + _RESOURCES)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = "  ".join(cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return f"{first}  {rest}".rstrip()

    return [line(header), *(line(row) for row in rows)]


def _module_row(m: ModuleReport, top: bool) -> list[str]:
    res = m.resources
    name = f"{m.name} (top)" if top else m.name
    return [
        name,
        "",
        _n(m.latency_best),
        _n(m.latency_worst),
        "",
        "",
        "",
        *(_n(v) for v in (res.dsp, res.bram18k, res.ff, res.lut)),
    ]


def _loop_row(loop: LoopReport, level: int) -> list[str]:
    if loop.pipelined:
        ii = _n(loop.ii) + (f" ({loop.ii_target})" if loop.ii_target is not None else "")
        depth = _n(loop.depth)
    else:
        ii = depth = "-"
    return [
        "  " * (level + 1) + loop.name,
        _span(loop.trip_min, loop.trip_max),
        _n(loop.latency_best),
        _n(loop.latency_worst),
        _span(loop.iteration_latency_min, loop.iteration_latency_max),
        ii,
        depth,
        "",
        "",
        "",
        "",
    ]


def _cosim_lines(c: CosimReport) -> list[str]:
    return [
        f"co-simulation: {c.path}",
        f"  {c.rtl or '?'} {c.status or 'not run'}: latency min/avg/max "
        f"{_n(c.latency_min)}/{_n(c.latency_avg)}/{_n(c.latency_max)}, interval min/avg/max "
        f"{_n(c.interval_min)}/{_n(c.interval_avg)}/{_n(c.interval_max)}, total {_n(c.total_cycles)} cycles",
    ]


def _n(value: Any) -> str:
    return "?" if value is None else str(value)


def _span(low: int | None, high: int | None) -> str:
    """``7``, ``305499~312689``, or the one figure a report states (worst case); ``?`` if none."""
    if high is None:
        return _n(low)
    if low is None or low == high:
        return str(high)
    return f"{low}~{high}"


def _ns(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f} ns"
