"""Read Vivado HLS / Vitis HLS synthesis reports (and co-simulation reports) into typed values.

Synthesis (csynth) reports come in three shapes, each read by a module of its own (``csynth_xml``,
``csynth_rpt``; ``cosim_rpt`` for co-simulation) into the same frozen dataclasses (``report_values``):

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
from dataclasses import replace
from pathlib import Path

from fnas_hls.errors import FnasError
from fnas_hls.reports.cosim_rpt import _read_cosim
from fnas_hls.reports.csynth_rpt import _RptReader
from fnas_hls.reports.csynth_xml import _XmlReader
from fnas_hls.reports.report_values import (
    MAX_NESTING,
    SUMMARY_NAME_WIDTH,
    CosimReport,
    LoopReport,
    ModuleReport,
    ReportResources,
    SynthesisReport,
    _merge,
    _rename_calls,
    _same_module,
)

# The readers live one format a module (csynth_xml, csynth_rpt, cosim_rpt) and the values in
# report_values; this module reads the files and is what the rest of fnas-hls imports.
__all__ = [
    "MAX_NESTING", "MAX_REPORT_BYTES", "SUMMARY_NAME_WIDTH", "CosimReport", "LoopReport", "ModuleReport",
    "ReportResources", "SynthesisReport", "load_cosim", "load_report", "load_solution", "merge_reports",
]  # fmt: skip

#: Largest report file read; csynth reports of big designs reach a few MiB.
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: Any markup declaration (<!DOCTYPE, <!ENTITY, <!ELEMENT, <!ATTLIST ...); comments and CDATA pass.
_DECLARATION = re.compile(rb"<!(?!--|\[CDATA\[)")


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
