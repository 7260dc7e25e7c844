"""The text forms of a csynth report (``<module>_csynth.rpt``, Vivado HLS' ``csynth.rpt``, Vitis'
"Synthesis Summary") as a ``SynthesisReport``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fnas_hls.errors import FnasError
from fnas_hls.reports.report_values import (
    MAX_NESTING,
    LoopReport,
    ModuleReport,
    ReportResources,
    SynthesisReport,
    _count,
    _float,
    _int_range,
    _Malformed,
    _resource_key,
    _same_module,
    _short,
)

# --- text reports (.rpt) ------------------------------------------------------------------------

_TITLE = re.compile(r"^==\s+(?P<title>.*?)\s*$")
_HEADER = re.compile(r"^==\s+(?P<tool>Vivado HLS|Vitis HLS) Report for '(?P<name>[^']+)'")
_SUMMARY_HEADER = re.compile(r"^==\s+Synthesis Summary Report of '(?P<name>[^']+)'")
_INFO = re.compile(r"^\s*\*\s*(?P<key>[A-Za-z ]+?):\s*(?P<value>.*?)\s*$")


def _cells(line: str) -> list[str]:
    """The cells of a table row ``|a|b|``, untrimmed (the first keeps its indentation)."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    return body.split("|")


def _table(lines: list[str], start: int) -> tuple[list[list[list[str]]], int]:
    """The table starting at or after ``start``: its row groups (split at ``+---`` lines), and its end."""
    i = start
    while i < len(lines) and not lines[i].strip().startswith("+-"):
        i += 1
    groups: list[list[list[str]]] = []
    current: list[list[str]] = []
    while i < len(lines):
        text = lines[i].strip()
        if text.startswith("+"):
            if current:
                groups.append(current)
                current = []
        elif text.startswith("|"):
            current.append(_cells(lines[i]))
        else:
            break
        i += 1
    if current:
        groups.append(current)
    return groups, i


def _marker(lines: list[str], start: int, stop: int, text: str) -> int | None:
    for i in range(start, stop):
        if lines[i].strip().startswith(text):
            return i
    return None


class _RptReader:
    """Reads a ``.rpt`` report: one module's detailed report or Vitis' synthesis summary."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def bad(self, what: str) -> FnasError:
        return FnasError(f"{self.path}: {what}")

    def read(self, text: str) -> SynthesisReport:
        lines = text.splitlines()
        for line in lines[:20]:
            if match := _HEADER.match(line.strip()):
                return self._detailed(lines, match.group("name"), match.group("tool"))
            if match := _SUMMARY_HEADER.match(line.strip()):
                return self._summary(lines, match.group("name"))
        raise self.bad(
            "unknown report format: no '== Vivado HLS Report for', '== Vitis HLS Report for' or "
            "'== Synthesis Summary Report of' header"
        )

    # figures ----------------------------------------------------------------------------------
    def num(self, cell: str, what: str) -> tuple[int | None, int | None]:
        try:
            return _int_range(cell)
        except _Malformed as exc:
            raise self.bad(f"{what} cell holds {exc}, not a cycle count") from None

    def count(self, cell: str, what: str) -> int | None:
        try:
            return _count(cell)
        except _Malformed as exc:
            raise self.bad(f"{what} cell holds {exc}, not a count") from None

    def clock(self, cell: str, what: str) -> float | None:
        try:
            return _float(cell)
        except _Malformed as exc:
            raise self.bad(f"{what} holds {exc}, not a clock period") from None

    def info(self, lines: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for line in lines[:40]:
            if match := _INFO.match(line):
                found.setdefault(match.group("key").strip().lower(), match.group("value"))
        return found

    # one module's report ----------------------------------------------------------------------
    def _detailed(self, lines: list[str], name: str, tool: str) -> SynthesisReport:
        info = self.info(lines)
        version = info.get("version", "").split(" ")[0] or None
        sections = self._sections(lines)
        perf_start, perf_stop = sections.get("Performance Estimates", (0, 0))
        target = uncertainty = estimated = None
        timing = _marker(lines, perf_start, perf_stop, "+ Timing")
        if timing is not None:
            groups, _ = _table(lines, timing)
            row = groups[-1][0] if groups else []
            if len(row) >= 4:
                target = self.clock(row[1], "clock target")
                estimated = self.clock(row[2], "estimated clock")
                uncertainty = self.clock(row[3], "clock uncertainty")
        latency: tuple[int | None, int | None] = (None, None)
        interval: tuple[int | None, int | None] = (None, None)
        pipeline_type = None
        summary = _marker(lines, perf_start, perf_stop, "+ Latency")
        if summary is not None:
            groups, _ = _table(lines, summary)
            row = groups[-1][0] if len(groups) > 1 else []
            if len(row) >= 7:
                latency = self.num(row[0], "latency min")[0], self.num(row[1], "latency max")[1]
                interval = self.num(row[4], "interval min")[0], self.num(row[5], "interval max")[1]
                pipeline_type = row[6].strip() or None
        stubs, calls = self._instances(lines, perf_start, perf_stop)
        loops = self._loops(lines, perf_start, perf_stop)
        used, available = self._utilization(lines, *sections.get("Utilization Estimates", (0, 0)))
        module = ModuleReport(
            name=name,
            latency_best=latency[0],
            latency_worst=latency[1],
            interval_min=interval[0],
            interval_max=interval[1],
            pipeline_type=pipeline_type,
            estimated_clock_ns=estimated,
            resources=used,
            available=available,
            loops=loops,
            calls=calls,
        )
        return SynthesisReport(
            path=str(self.path),
            top=name,
            tool=tool,
            version=version,
            part=info.get("target device") or None,
            target_clock_ns=target,
            clock_uncertainty_ns=uncertainty,
            estimated_clock_ns=estimated,
            modules=(module, *stubs),
            sources=(str(self.path),),
        )

    def _sections(self, lines: list[str]) -> dict[str, tuple[int, int]]:
        starts = [(i, m.group("title")) for i, line in enumerate(lines) if (m := _TITLE.match(line.strip()))]
        bounds: dict[str, tuple[int, int]] = {}
        for k, (i, title) in enumerate(starts):
            stop = starts[k + 1][0] if k + 1 < len(starts) else len(lines)
            bounds.setdefault(title, (i, stop))
        return bounds

    def _instances(
        self, lines: list[str], start: int, stop: int
    ) -> tuple[list[ModuleReport], tuple[str, ...]]:
        at = _marker(lines, start, stop, "* Instance")
        if at is None or _marker(lines, at + 1, min(at + 2, stop), "N/A") is not None:
            return [], ()
        groups, _ = _table(lines, at)
        stubs: list[ModuleReport] = []
        for row in groups[1] if len(groups) > 1 else []:
            if len(row) < 9 or not row[1].strip():
                continue
            module = row[1].strip()
            if any(stub.name == module for stub in stubs):
                continue
            stubs.append(
                ModuleReport(
                    name=module,
                    latency_best=self.num(row[2], f"{module} latency min")[0],
                    latency_worst=self.num(row[3], f"{module} latency max")[1],
                    interval_min=self.num(row[6], f"{module} interval min")[0],
                    interval_max=self.num(row[7], f"{module} interval max")[1],
                    pipeline_type=row[8].strip() or None,
                )
            )
        return stubs, tuple(stub.name for stub in stubs)

    def _loops(self, lines: list[str], start: int, stop: int) -> tuple[LoopReport, ...]:
        at = _marker(lines, start, stop, "* Loop")
        if at is None or _marker(lines, at + 1, min(at + 2, stop), "N/A") is not None:
            return ()
        groups, _ = _table(lines, at)
        rows = groups[1] if len(groups) > 1 else []
        flat: list[tuple[int, _LoopDraft]] = []
        for row in rows:
            if len(row) < 8:
                raise self.bad(f"loop table row has {len(row)} cells, expected 8: {_short('|'.join(row))}")
            label = row[0].strip()
            marker = re.match(r"^(-|\++)\s*(.*)$", label)
            if marker is None:
                raise self.bad(f"loop table row {_short(label)} lacks its '-'/'+' nesting marker")
            level = 0 if marker.group(1) == "-" else len(marker.group(1))
            name = "".join(marker.group(2).split())  # "Loop 1.1" is "Loop1.1" in the XML
            pipelined = row[7].strip().lower() == "yes"
            iteration = self.num(row[3], f"{name} iteration latency")
            ii = self.num(row[4], f"{name} II")[1]
            draft = _LoopDraft(
                name=name,
                trip=self.num(row[6], f"{name} trip count"),
                latency=(
                    self.num(row[1], f"{name} latency min")[0],
                    self.num(row[2], f"{name} latency max")[1],
                ),
                iteration=iteration,
                ii=ii if pipelined else None,
                ii_target=self.num(row[5], f"{name} II target")[1] if pipelined else None,
                depth=iteration[1] if pipelined else None,
                pipelined=pipelined,
            )
            flat.append((level, draft))
        return _nest(flat, self)

    def _utilization(
        self, lines: list[str], start: int, stop: int
    ) -> tuple[ReportResources, ReportResources]:
        at = _marker(lines, start, stop, "* Summary")
        if at is None:
            return ReportResources(), ReportResources()
        groups, _ = _table(lines, at)
        if not groups:
            return ReportResources(), ReportResources()
        keys = [_resource_key(cell.strip()) for cell in groups[0][0]]
        found: dict[str, ReportResources] = {}
        for row in (row for group in groups[1:] for row in group):
            label = row[0].strip()
            if label in ("Total", "Available") and label not in found:
                values = {
                    key: self.count(cell, f"{label} {key}")
                    for key, cell in zip(keys, row, strict=False)
                    if key is not None
                }
                found[label] = ReportResources(**values)
        return found.get("Total", ReportResources()), found.get("Available", ReportResources())

    # Vitis' synthesis summary -----------------------------------------------------------------
    def _summary(self, lines: list[str], top: str) -> SynthesisReport:
        info = self.info(lines)
        version = info.get("version", "").split(" ")[0] or None
        at = _marker(lines, 0, len(lines), "+ Performance & Resource Estimates")
        if at is None:
            raise self.bad("synthesis summary without its 'Performance & Resource Estimates' table")
        groups, _ = _table(lines, at)
        if len(groups) < 2:
            raise self.bad("the 'Performance & Resource Estimates' table is empty or truncated")
        columns = self._columns(groups[0])
        rows = groups[1]
        stack: list[tuple[int, Any]] = []
        modules: list[_ModuleDraft] = []
        for row in rows:
            match = re.match(r"^(?P<indent> *)(?P<kind>[+o*])\s+(?P<name>\S.*?)\s*$", row[0])
            if match is None:
                raise self.bad(f"summary row {_short(row[0])} lacks its '+'/'o' marker")
            if len(row) < len(columns):
                raise self.bad(
                    f"summary row {match.group('name')!r} has {len(row)} cells, expected {len(columns)}"
                )
            indent, kind, name = len(match.group("indent")), match.group("kind"), match.group("name")
            if len(stack) > MAX_NESTING:
                raise self.bad(f"modules and loops nested deeper than {MAX_NESTING}")
            while stack and stack[-1][0] >= indent:
                stack.pop()
            cell = {key: row[i] for key, i in columns.items()}
            worst = self.num(cell.get("latency", ""), f"{name} latency")[1]
            if kind in "+*":
                draft = _ModuleDraft(
                    name=name,
                    latency_worst=worst,
                    interval_max=self.num(cell.get("interval", ""), f"{name} interval")[1],
                    pipeline_type=cell.get("pipelined", "").strip() or None,
                    resources=ReportResources(
                        **{k: self.count(cell[k], f"{name} {k}") for k in _RESOURCE_COLUMNS if k in cell}
                    ),
                )
                modules.append(draft)
                for _, owner in reversed(stack):
                    if name not in owner.calls:
                        owner.calls.append(name)
                    if isinstance(owner, _ModuleDraft):
                        break
            else:
                if not stack:
                    raise self.bad(f"summary loop {name!r} outside any module")
                pipelined = cell.get("pipelined", "").strip().lower() == "yes"
                iteration = self.num(cell.get("iteration", ""), f"{name} iteration latency")[1]
                draft = _LoopDraft(
                    name=name,
                    trip=(None, self.num(cell.get("trip", ""), f"{name} trip count")[1]),
                    latency=(None, worst),
                    iteration=(None, iteration),
                    ii=self.num(cell.get("interval", ""), f"{name} II")[1] if pipelined else None,
                    depth=iteration if pipelined else None,
                    pipelined=pipelined,
                )
                stack[-1][1].loops.append(draft)
            stack.append((indent, draft))
        if not modules:
            raise self.bad("the 'Performance & Resource Estimates' table lists no module")
        built = tuple(m.build() for m in modules)
        return SynthesisReport(
            path=str(self.path),
            top=built[0].name if _same_module(built[0].name, top) else top,
            tool="Vitis HLS",
            version=version,
            part=info.get("target device") or None,
            modules=built,
            sources=(str(self.path),),
        )

    def _columns(self, header: list[list[str]]) -> dict[str, int]:
        width = max(len(row) for row in header)
        names = [
            "".join(row[i] for row in header if i < len(row)).lower().replace(" ", "").replace("&", "")
            for i in range(width)
        ]
        wanted = {
            "latency": "latency(cycles)",
            "iteration": "iterationlatency",
            "interval": "interval",
            "trip": "tripcount",
            "pipelined": "pipelined",
            "bram18k": "bram",
            "dsp": "dsp",
            "ff": "ff",
            "lut": "lut",
            "uram": "uram",
        }
        columns = {key: names.index(title) for key, title in wanted.items() if title in names}
        missing = [
            wanted[k] for k in ("latency", "iteration", "interval", "trip", "pipelined") if k not in columns
        ]
        if missing:
            raise self.bad(f"summary table lacks the column(s) {', '.join(missing)}")
        return columns


_RESOURCE_COLUMNS = ("dsp", "bram18k", "lut", "ff", "uram")


@dataclass
class _LoopDraft:
    """A loop while its table is read (mutable); ``build`` freezes it."""

    name: str
    trip: tuple[int | None, int | None] = (None, None)
    latency: tuple[int | None, int | None] = (None, None)
    iteration: tuple[int | None, int | None] = (None, None)
    ii: int | None = None
    ii_target: int | None = None
    depth: int | None = None
    pipelined: bool = False
    calls: list[str] = field(default_factory=list)
    loops: list[_LoopDraft] = field(default_factory=list)

    def build(self) -> LoopReport:
        return LoopReport(
            name=self.name,
            trip_min=self.trip[0],
            trip_max=self.trip[1],
            latency_best=self.latency[0],
            latency_worst=self.latency[1],
            iteration_latency_min=self.iteration[0],
            iteration_latency_max=self.iteration[1],
            ii=self.ii,
            ii_target=self.ii_target,
            depth=self.depth,
            pipelined=self.pipelined,
            calls=tuple(self.calls),
            children=tuple(child.build() for child in self.loops),
        )


@dataclass
class _ModuleDraft:
    name: str
    latency_worst: int | None = None
    interval_max: int | None = None
    pipeline_type: str | None = None
    resources: ReportResources = field(default_factory=ReportResources)
    calls: list[str] = field(default_factory=list)
    loops: list[_LoopDraft] = field(default_factory=list)

    def build(self) -> ModuleReport:
        return ModuleReport(
            name=self.name,
            latency_worst=self.latency_worst,
            interval_max=self.interval_max,
            pipeline_type=self.pipeline_type,
            resources=self.resources,
            loops=tuple(loop.build() for loop in self.loops),
            calls=tuple(self.calls),
        )


def _nest(flat: list[tuple[int, _LoopDraft]], reader: _RptReader) -> tuple[LoopReport, ...]:
    """Loops listed with their nesting level, as a tree."""
    roots: list[_LoopDraft] = []
    stack: list[_LoopDraft] = []
    for level, draft in flat:
        if level > MAX_NESTING:
            raise reader.bad(f"loops nested deeper than {MAX_NESTING}")
        if level > len(stack):
            raise reader.bad(f"loop {draft.name!r} is nested under no loop")
        del stack[level:]
        (stack[-1].loops if stack else roots).append(draft)
        stack.append(draft)
    return tuple(draft.build() for draft in roots)
