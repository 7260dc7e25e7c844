"""The XML form of a csynth report (``csynth.xml``, ``<module>_csynth.xml``) as a ``SynthesisReport``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from fnas_hls.errors import FnasError
from fnas_hls.reports.report_values import (
    MAX_NESTING,
    LoopReport,
    ModuleReport,
    ReportResources,
    SynthesisReport,
    _float,
    _instance_module,
    _int,
    _int_range,
    _Malformed,
    _merge,
    _resource_key,
    _tool_for,
)

# --- XML ----------------------------------------------------------------------------------------


def _text(elem: ET.Element | None, path: str) -> str | None:
    if elem is None:
        return None
    found = elem.find(path)
    if found is None:
        return None
    return (found.text or "").strip()


class _XmlReader:
    """Reads one csynth XML ``<profile>`` (flat or with ``<ModuleInformation>``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.instance_modules: dict[str, str] = {}

    def bad(self, what: str) -> FnasError:
        return FnasError(f"{self.path}: {what}")

    def read(self, root: ET.Element) -> SynthesisReport:
        version = _text(root, "ReportVersion/Version")
        assigned = root.find("UserAssignments")
        top = _text(assigned, "TopModelName")
        if not top:
            raise self.bad("no <UserAssignments><TopModelName>; not an HLS synthesis report")
        calls = self._hierarchy(root.find("RTLDesignHierarchy"))
        perf = root.find("PerformanceEstimates")
        flat = self._module(top, perf, root.find("AreaEstimates"), calls)
        modules = [
            self._module(
                _text(m, "Name") or "", m.find("PerformanceEstimates"), m.find("AreaEstimates"), calls
            )
            for m in root.findall("ModuleInformation/Module")
        ]
        index = next((i for i, m in enumerate(modules) if m.name == top), None)
        if index is None:
            modules.insert(0, flat)
        else:
            # The top-level sections are the top's own summary (what its detailed .rpt says);
            # <ModuleInformation> fills what they lack (calls, pipeline types).
            modules.insert(0, _merge(flat, modules.pop(index)))
        return SynthesisReport(
            path=str(self.path),
            top=top,
            tool=_tool_for(version),
            version=version,
            part=_text(assigned, "Part"),
            target_clock_ns=self.float(assigned, "TargetClockPeriod"),
            clock_uncertainty_ns=self.float(assigned, "ClockUncertainty"),
            estimated_clock_ns=modules[0].estimated_clock_ns,
            modules=tuple(modules),
            sources=(str(self.path),),
        )

    # figures ----------------------------------------------------------------------------------
    def float(self, elem: ET.Element | None, tag: str) -> float | None:
        try:
            return _float(_text(elem, tag))
        except _Malformed as exc:
            raise self.bad(f"<{tag}> holds {exc}, not a number") from None

    def range(self, elem: ET.Element | None, tag: str) -> tuple[int | None, int | None]:
        node = None if elem is None else elem.find(tag)
        if node is None:
            return None, None
        try:
            bounds = node.find("range")
            if bounds is not None:
                return _int(_text(bounds, "min") or ""), _int(_text(bounds, "max") or "")
            return _int_range(node.text or "")
        except _Malformed as exc:
            raise self.bad(f"<{tag}> holds {exc}, not a cycle count") from None

    def single(self, elem: ET.Element | None, tag: str) -> int | None:
        return self.range(elem, tag)[1]

    # structure --------------------------------------------------------------------------------
    def _hierarchy(self, elem: ET.Element | None) -> dict[str, tuple[str, ...]]:
        """Module -> modules it instantiates, from ``<RTLDesignHierarchy>``; fills the instance map."""
        calls: dict[str, list[str]] = {}
        top = None if elem is None else elem.find("TopModule")
        if top is None:
            return {}
        stack = [(top, _text(top, "ModuleName") or "", 0)]
        while stack:
            node, module, depth = stack.pop()
            if depth > MAX_NESTING:
                raise self.bad(f"module hierarchy nested deeper than {MAX_NESTING}")
            for inst in node.findall("InstancesList/Instance"):
                inst_name, child = _text(inst, "InstName") or "", _text(inst, "ModuleName") or ""
                if inst_name and child:
                    self.instance_modules[inst_name] = child
                if child and child not in calls.setdefault(module, []):
                    calls[module].append(child)
                stack.append((inst, child, depth + 1))
        return {module: tuple(children) for module, children in calls.items()}

    def _module(
        self,
        name: str,
        perf: ET.Element | None,
        area: ET.Element | None,
        calls: dict[str, tuple[str, ...]],
    ) -> ModuleReport:
        if not name:
            raise self.bad("a <Module> without a <Name>")
        overall = None if perf is None else perf.find("SummaryOfOverallLatency")
        interval = self.range(overall, "Interval-min")[0], self.range(overall, "Interval-max")[1]
        if interval == (None, None):
            interval = self.range(overall, "PipelineInitiationInterval")
        used, available = self._resources(area)
        loops_elem = None if perf is None else perf.find("SummaryOfLoopLatency")
        loops = () if loops_elem is None else tuple(self._loop(e, 1) for e in loops_elem if _is_loop(e))
        return ModuleReport(
            name=name,
            latency_best=self.single(overall, "Best-caseLatency"),
            latency_avg=self.single(overall, "Average-caseLatency"),
            latency_worst=self.single(overall, "Worst-caseLatency"),
            interval_min=interval[0],
            interval_max=interval[1],
            pipeline_type=_text(overall, "PipelineType") or _text(perf, "PipelineType"),
            estimated_clock_ns=self.float(perf, "SummaryOfTimingAnalysis/EstimatedClockPeriod"),
            resources=used,
            available=available,
            loops=loops,
            calls=calls.get(name, ()),
        )

    def _resources(self, area: ET.Element | None) -> tuple[ReportResources, ReportResources]:
        used: dict[str, int | None] = {}
        available: dict[str, int | None] = {}
        if area is None:
            return ReportResources(), ReportResources()
        for group, target in (("Resources", used), ("AvailableResources", available)):
            for item in area.findall(group + "/*"):
                tag = item.tag
                if tag.startswith("UTIL_"):
                    continue
                into = available if tag.startswith("AVAIL_") else target
                key = _resource_key(tag.removeprefix("AVAIL_"))
                if key is not None and key not in into:
                    into[key] = self.single(area, f"{group}/{tag}")
        return ReportResources(**used), ReportResources(**available)

    def _loop(self, elem: ET.Element, depth: int) -> LoopReport:
        if depth > MAX_NESTING:
            raise self.bad(f"loops nested deeper than {MAX_NESTING}")
        kind = _text(elem, "PipelineType")
        ii = self.single(elem, "PipelineII")
        pipelined = kind.lower() not in ("no", "none", "") if kind is not None else ii is not None
        trip = self.range(elem, "TripCount")
        latency = self.range(elem, "Latency")
        iteration = self.range(elem, "IterationLatency")
        depth_ = self.single(elem, "PipelineDepth") if pipelined else None
        if pipelined and iteration == (None, None):
            iteration = depth_, depth_
        calls = []
        for inst in elem.findall("InstanceList/Instance"):
            name = (inst.text or "").strip()
            module = self.instance_modules.get(name) or _instance_module(name)
            if name and module not in calls:
                calls.append(module)
        return LoopReport(
            name=_text(elem, "Name") or elem.tag,
            trip_min=trip[0],
            trip_max=trip[1],
            latency_best=latency[0],
            latency_worst=latency[1],
            iteration_latency_min=iteration[0],
            iteration_latency_max=iteration[1],
            ii=ii if pipelined else None,
            depth=depth_,
            pipelined=pipelined,
            calls=tuple(calls),
            children=tuple(self._loop(child, depth + 1) for child in elem if _is_loop(child)),
        )


def _is_loop(elem: ET.Element) -> bool:
    return elem.find("TripCount") is not None or elem.find("Latency") is not None
