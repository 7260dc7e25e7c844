"""Read Vivado HLS / Vitis HLS synthesis reports (and co-simulation reports) into typed values.

Synthesis (csynth) reports come in three shapes, all read here into the same frozen dataclasses:

* ``csynth.xml`` / ``<module>_csynth.xml`` (Vivado HLS 2018-2020, Vitis HLS 2020-2024): one module's
  figures; Vitis' ``csynth.xml`` also holds every module in ``<ModuleInformation>`` and the call tree
  in ``<RTLDesignHierarchy>``;
* ``<module>_csynth.rpt`` (and Vivado HLS' ``csynth.rpt``): the text form of one module, the only
  place that states a loop's *target* II;
* Vitis' ``csynth.rpt`` "Synthesis Summary": one table of every module and loop.  It states a single
  figure per cell, the worst case, so best-case figures read from it stay unknown (``None``), and it
  cuts module names to 80 characters (``load_solution`` restores them from the other reports).

Unknown figures ("?", "undef", "-", "NA", empty) stay ``None``; they never turn into 0.  Anything
that is not a report, or is truncated or hostile (a DOCTYPE or ENTITY declaration, a file over
``MAX_REPORT_BYTES``), raises :class:`FnasError` naming the file; nothing else is ever read.
"""

from __future__ import annotations

import os
import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fnas_hls.errors import FnasError
from fnas_hls.resources import Resources

#: Largest report file read; csynth reports of big designs reach a few MiB.
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: Deepest loop (or call) nesting accepted; real reports stay under ten.
MAX_NESTING = 64
#: Width to which Vitis' summary table cuts module names.
SUMMARY_NAME_WIDTH = 80

_UNKNOWN = frozenset({"", "?", "undef", "-", "na", "n/a"})
#: Any markup declaration (<!DOCTYPE, <!ENTITY, <!ELEMENT, <!ATTLIST ...); comments and CDATA pass.
_DECLARATION = re.compile(rb"<!(?!--|\[CDATA\[)")
_INSTANCE_NAME = re.compile(r"^(?:grp_)?(?P<module>.+?)(?:_fu_\d+|_U0|_U\d*)$")


# --- the values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportResources:
    """Resource counts as a report states them; ``None`` where the report gives no figure."""

    dsp: int | None = None
    bram18k: int | None = None
    lut: int | None = None
    ff: int | None = None
    uram: int | None = None

    def to_resources(self, missing: int | None = None) -> Resources:
        """As :class:`Resources`; unknown counts become ``missing``, or raise ``ValueError`` if it is None."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = [name for name, value in values.items() if value is None]
        if unknown and missing is None:
            raise ValueError(f"the report gives no figure for {', '.join(unknown)}")
        return Resources(**{name: missing if value is None else value for name, value in values.items()})


@dataclass(frozen=True)
class LoopReport:
    """One loop as csynth reports it; ranges are (min, max), equal when the figure is fixed.

    For a pipelined loop csynth's iteration latency is its pipeline depth, so both are set;
    a sequential loop has no depth and no II.  ``calls`` names the modules its body calls.
    """

    name: str
    trip_min: int | None = None
    trip_max: int | None = None
    latency_best: int | None = None
    latency_worst: int | None = None
    iteration_latency_min: int | None = None
    iteration_latency_max: int | None = None
    ii: int | None = None
    ii_target: int | None = None
    depth: int | None = None
    pipelined: bool = False
    calls: tuple[str, ...] = ()
    children: tuple[LoopReport, ...] = ()

    @property
    def trip(self) -> int | None:
        """The trip count when the report states one fixed figure, else None."""
        return _exact(self.trip_min, self.trip_max)

    @property
    def latency(self) -> int | None:
        """The latency when best and worst case are stated and equal, else None."""
        return _exact(self.latency_best, self.latency_worst)

    @property
    def iteration_latency(self) -> int | None:
        """The iteration latency when it is one fixed figure, else None."""
        return _exact(self.iteration_latency_min, self.iteration_latency_max)

    def walk(self, level: int = 0) -> Iterator[tuple[int, LoopReport]]:
        """This loop and every loop inside it, depth first, with their nesting level."""
        yield level, self
        for child in self.children:
            yield from child.walk(level + 1)


@dataclass(frozen=True)
class ModuleReport:
    """One module (function) of a synthesized design."""

    name: str
    latency_best: int | None = None
    latency_avg: int | None = None
    latency_worst: int | None = None
    interval_min: int | None = None
    interval_max: int | None = None
    pipeline_type: str | None = None
    estimated_clock_ns: float | None = None
    resources: ReportResources = field(default_factory=ReportResources)
    available: ReportResources = field(default_factory=ReportResources)
    loops: tuple[LoopReport, ...] = ()
    calls: tuple[str, ...] = ()

    @property
    def latency(self) -> int | None:
        """The latency when best and worst case are stated and equal, else None."""
        return _exact(self.latency_best, self.latency_worst)

    def walk_loops(self) -> Iterator[tuple[int, LoopReport]]:
        """Every loop of the module, depth first, with its nesting level (0 for the outermost)."""
        for loop in self.loops:
            yield from loop.walk()

    def loop(self, name: str) -> LoopReport:
        """The loop labelled ``name`` (at any depth); ``KeyError`` if there is none."""
        for _, loop in self.walk_loops():
            if loop.name == name:
                return loop
        raise KeyError(f"module {self.name} has no loop {name!r}")


@dataclass(frozen=True)
class SynthesisReport:
    """A synthesis run: its tool, part and clock, and every module it reports (top first)."""

    path: str
    top: str
    tool: str | None = None
    version: str | None = None
    part: str | None = None
    target_clock_ns: float | None = None
    clock_uncertainty_ns: float | None = None
    estimated_clock_ns: float | None = None
    modules: tuple[ModuleReport, ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def top_module(self) -> ModuleReport:
        """The top module's report."""
        return self.module(self.top)

    def module(self, name: str) -> ModuleReport:
        """The module called ``name``; ``KeyError`` if the report has none."""
        for module in self.modules:
            if module.name == name:
                return module
        raise KeyError(
            f"{self.path}: no module {name!r} (modules: {', '.join(m.name for m in self.modules)})"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``dataclasses.asdict``), ready for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class CosimReport:
    """The C/RTL co-simulation report (``<top>_cosim.rpt``): measured latency and interval."""

    path: str
    rtl: str | None = None
    status: str | None = None
    latency_min: int | None = None
    latency_avg: int | None = None
    latency_max: int | None = None
    interval_min: int | None = None
    interval_avg: int | None = None
    interval_max: int | None = None
    total_cycles: int | None = None
    solution: str | None = None
    simulator: str | None = None

    @property
    def passed(self) -> bool:
        return (self.status or "").lower() == "pass"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _exact(low: int | None, high: int | None) -> int | None:
    return low if low is not None and low == high else None


# --- public entry points ------------------------------------------------------------------------


def load_report(path: str | Path) -> SynthesisReport:
    """Read one synthesis report file: ``csynth.xml``, ``<module>_csynth.xml`` or a ``.rpt``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".xml", ".rpt"):
        if path.is_dir():
            raise FnasError(f"{path}: is a folder; give a report file, or use load_solution for a folder")
        raise FnasError(
            f"{path}: unknown report format '{path.suffix or '(no suffix)'}'; expected csynth.xml, "
            "<module>_csynth.xml, csynth.rpt or <module>_csynth.rpt"
        )
    data = _read_checked(path)
    if suffix == ".xml":
        return _XmlReader(path).read(_parse_xml(path, data))
    return _RptReader(path).read(_decode(path, data))


def load_solution(path: str | Path) -> SynthesisReport:
    """Read a solution, project or report folder: its csynth report, with every per-module report merged.

    Looks in the folder itself, ``syn/report/``, ``hls/syn/report/`` (Vitis), and one level down
    (``<solution>/syn/report/``, ``<component>/hls/syn/report/``).  ``csynth.xml`` is the main
    report (``csynth.rpt`` where there is no XML); ``<module>_csynth.xml`` and then
    ``<module>_csynth.rpt`` beside it add modules it lacks and fill figures it leaves unknown (the
    target II, full module names, best cases).
    """
    folder = Path(path)
    if not folder.exists():
        raise FnasError(f"{folder}: no such file or folder")
    if not folder.is_dir():
        return load_report(folder)
    report_dir = _find_report_dir(folder)
    main = next((report_dir / n for n in ("csynth.xml", "csynth.rpt") if (report_dir / n).is_file()), None)
    if main is None:
        raise FnasError(f"{report_dir}: holds per-module reports but no csynth.xml or csynth.rpt")
    report = load_report(main)
    extras = sorted(report_dir.glob("*_csynth.xml")) + sorted(report_dir.glob("*_csynth.rpt"))
    for extra in extras:
        report = merge_reports(report, load_report(extra))
    return report


def load_cosim(path: str | Path) -> CosimReport:
    """Read a C/RTL co-simulation report ``<top>_cosim.rpt`` (or find it in a solution's ``sim/report/``)."""
    path = Path(path)
    if path.is_dir():
        looked = [path, path / "sim" / "report", path / "hls" / "sim" / "report"]
        found = [f for d in looked for f in sorted(d.glob("*_cosim.rpt"))]
        if not found:
            raise FnasError(f"{path}: no *_cosim.rpt (looked in {', '.join(str(d) for d in looked)})")
        if len(found) > 1:
            raise FnasError(
                f"{path}: several co-simulation reports ({', '.join(f.name for f in found)}); name one"
            )
        path = found[0]
    elif path.suffix.lower() != ".rpt":
        raise FnasError(f"{path}: unknown co-simulation report format; expected <top>_cosim.rpt")
    return _read_cosim(path, _decode(path, _read_checked(path)))


def merge_reports(main: SynthesisReport, extra: SynthesisReport) -> SynthesisReport:
    """``main`` with what ``extra`` adds: its modules ``main`` lacks, and figures ``main`` leaves unknown."""
    modules = list(main.modules)
    renamed: dict[str, str] = {}
    for module in extra.modules:
        index = next((i for i, m in enumerate(modules) if _same_module(m.name, module.name)), None)
        if index is None:
            modules.append(module)
            continue
        merged = _merge(modules[index], module)
        if merged.name != modules[index].name:  # a name the summary cut, restored
            renamed[modules[index].name] = merged.name
        modules[index] = merged
    if renamed:
        modules = [_rename_calls(m, renamed) for m in modules]
    top = next((m.name for m in modules if _same_module(m.name, main.top)), main.top)
    # Tool, part and clock target are the design's; the estimated clock is the top module's own.
    design_wide = replace(extra, estimated_clock_ns=None)
    filled = _merge(main, design_wide)
    estimated = filled.estimated_clock_ns
    if estimated is None:
        estimated = next((m.estimated_clock_ns for m in modules if m.name == top), None)
    sources = main.sources + tuple(s for s in extra.sources if s not in main.sources)
    return replace(filled, top=top, modules=tuple(modules), sources=sources, estimated_clock_ns=estimated)


# --- reading files safely -----------------------------------------------------------------------


def _read_checked(path: Path) -> bytes:
    """The bytes of ``path``: a regular file of at most ``MAX_REPORT_BYTES``.

    The file is opened without blocking and checked on the open handle, so a FIFO or device put
    in a report's place is refused instead of read (or waited on).
    """
    mib = 1024 * 1024
    size = f"{MAX_REPORT_BYTES // mib} MiB" if MAX_REPORT_BYTES % mib == 0 else f"{MAX_REPORT_BYTES} bytes"
    limit = f"the limit of {size} for a report file"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FnasError(f"{path}: no such file") from None
    except OSError as exc:
        raise FnasError(f"{path}: cannot read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise FnasError(f"{path}: not a regular file")
        if info.st_size > MAX_REPORT_BYTES:
            raise FnasError(f"{path}: {info.st_size} bytes, over {limit}; is this a synthesis report?")
        try:
            data = handle.read(MAX_REPORT_BYTES + 1)
        except OSError as exc:
            raise FnasError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_REPORT_BYTES:
        raise FnasError(f"{path}: over {limit}; is this a synthesis report?")
    return data


def _decode(path: Path, data: bytes) -> str:
    if b"\x00" in data:
        raise FnasError(f"{path}: holds NUL bytes; not a text report")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FnasError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None


def _parse_xml(path: Path, data: bytes) -> ET.Element:
    """Parse report XML, refusing any DOCTYPE/ENTITY declaration before the parser sees it."""
    _decode(path, data)  # UTF-8 without NULs: no UTF-16 disguise of a declaration
    if _DECLARATION.search(data):
        raise FnasError(
            f"{path}: refused: the XML holds a DOCTYPE/ENTITY declaration; csynth reports never do, "
            "and such declarations can expand without bound or pull in other files"
        )
    parser = ET.XMLParser(encoding="utf-8")
    try:
        parser.feed(data)
        root = parser.close()
    except ET.ParseError as exc:
        raise FnasError(f"{path}: malformed XML ({exc}); the report may be truncated") from None
    if root.tag != "profile":
        raise FnasError(f"{path}: XML root is <{root.tag}>, not the <profile> of an HLS synthesis report")
    return root


def _find_report_dir(folder: Path) -> Path:
    def holds_report(d: Path) -> bool:
        return d.is_dir() and (
            (d / "csynth.xml").is_file() or (d / "csynth.rpt").is_file() or any(d.glob("*_csynth.*"))
        )

    direct = [folder, folder / "syn" / "report", folder / "hls" / "syn" / "report"]
    for candidate in direct:
        if holds_report(candidate):
            return candidate
    below = ["*/syn/report", "*/hls/syn/report"]
    found = sorted({d for pattern in below for d in folder.glob(pattern) if holds_report(d)})
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(str(d.relative_to(folder)) for d in found)
        raise FnasError(f"{folder}: holds several solutions ({names}); give one of them")
    looked = ", ".join([str(d) for d in direct] + [str(folder / p) for p in below])
    raise FnasError(f"{folder}: no csynth.xml or csynth.rpt (looked in {looked})")


# --- small value parsers ------------------------------------------------------------------------


class _Malformed(ValueError):
    """A figure that is neither a number nor an unknown marker; its text, cut short for messages."""

    def __init__(self, text: str) -> None:
        super().__init__(_short(text))


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def _int(text: str) -> int | None:
    text = text.strip()
    if text.lower() in _UNKNOWN:
        return None
    try:
        return int(text)
    except ValueError:
        raise _Malformed(text) from None


def _int_range(text: str | None) -> tuple[int | None, int | None]:
    """``"7"`` -> (7, 7); ``"305499 ~ 312689"`` -> (305499, 312689); unknown -> (None, None)."""
    if text is None:
        return None, None
    if "~" in text:
        low, _, high = text.partition("~")
        return _int(low), _int(high)
    value = _int(text)
    return value, value


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    text = text.strip()
    for unit in ("ns", "NS"):
        text = text.removesuffix(unit).strip()
    if text.lower() in _UNKNOWN:
        return None
    try:
        return float(text)
    except ValueError:
        raise _Malformed(text) from None


def _count(text: str) -> int | None:
    """A resource cell: ``"42"``, ``"42 (15%)"`` or ``"-"``."""
    return _int(text.split("(")[0])


def _instance_module(instance: str) -> str:
    match = _INSTANCE_NAME.match(instance)
    return match.group("module") if match else instance


def _resource_key(tag: str) -> str | None:
    tag = tag.upper()
    if tag.startswith("BRAM"):
        return "bram18k"
    if tag.startswith("DSP"):
        return "dsp"
    return {"FF": "ff", "LUT": "lut", "URAM": "uram"}.get(tag)


def _same_module(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) == SUMMARY_NAME_WIDTH and long.startswith(short)


def _merge(a: Any, b: Any) -> Any:
    """``a`` with its unknown fields filled from ``b`` (same dataclass); loops are matched by name."""
    changes: dict[str, Any] = {}
    for f in fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if f.name in ("loops", "children"):
            changes[f.name] = _merge_loops(va, vb)
        elif f.name == "name" and isinstance(va, str) and isinstance(vb, str):
            changes[f.name] = vb if len(vb) > len(va) and _same_module(va, vb) else va
        elif isinstance(va, ReportResources):
            changes[f.name] = _merge(va, vb)
        elif va is None or va == ():
            changes[f.name] = vb
    return replace(a, **changes)


def _rename_calls(item: Any, names: dict[str, str]) -> Any:
    """A module or loop with its calls (and its loops' calls) renamed by ``names``."""
    inner = "loops" if isinstance(item, ModuleReport) else "children"
    return replace(
        item,
        calls=tuple(names.get(call, call) for call in item.calls),
        **{inner: tuple(_rename_calls(loop, names) for loop in getattr(item, inner))},
    )


def _merge_loops(a: tuple[LoopReport, ...], b: tuple[LoopReport, ...]) -> tuple[LoopReport, ...]:
    if not a:
        return b
    by_name = {loop.name: loop for loop in b}
    return tuple(_merge(loop, by_name[loop.name]) if loop.name in by_name else loop for loop in a)


def _tool_for(version: str | None) -> str | None:
    if not version:
        return None
    match = re.match(r"(\d{4})", version)
    if not match:
        return None
    return "Vivado HLS" if int(match.group(1)) < 2020 else "Vitis HLS"


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


# --- co-simulation ------------------------------------------------------------------------------

_COSIM_RTL = ("verilog", "vhdl", "systemc")


def _read_cosim(path: Path, text: str) -> CosimReport:
    lines = text.splitlines()
    meta: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("solution", "simulation tool"):
            meta[key.strip().lower()] = value.strip().rstrip(".")
    rows = [_cells(line) for line in lines if line.strip().startswith("|")]
    results = [[c.strip() for c in row] for row in rows if row and row[0].strip().lower() in _COSIM_RTL]
    if not results:
        raise FnasError(f"{path}: unknown co-simulation report format: no Verilog/VHDL result row")
    ran = [row for row in results if len(row) > 1 and row[1].upper() != "NA"]
    row = (ran or results)[0]
    if len(row) < 2:
        raise FnasError(f"{path}: co-simulation result row {_short('|'.join(row))} is truncated")

    def value(i: int) -> int | None:
        if i >= len(row):
            return None
        try:
            return _int(row[i])
        except _Malformed as exc:
            raise FnasError(f"{path}: co-simulation cell holds {exc}, not a cycle count") from None

    status = row[1] if row[1].upper() != "NA" else None
    return CosimReport(
        path=str(path),
        rtl=row[0],
        status=status,
        latency_min=value(2),
        latency_avg=value(3),
        latency_max=value(4),
        interval_min=value(5),
        interval_avg=value(6),
        interval_max=value(7),
        total_cycles=value(8),
        solution=meta.get("solution"),
        simulator=meta.get("simulation tool"),
    )
