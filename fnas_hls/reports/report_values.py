"""What a synthesis or co-simulation report holds, as typed values (``hls_report`` reads the files),
and the small parsers of its figures that every format shares."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from fnas_hls.resources import Resources

#: Deepest loop (or call) nesting accepted; real reports stay under ten.
MAX_NESTING = 64
#: Width to which Vitis' summary table cuts module names.
SUMMARY_NAME_WIDTH = 80

_UNKNOWN = frozenset({"", "?", "undef", "-", "na", "n/a"})
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
