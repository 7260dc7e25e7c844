"""A C/RTL co-simulation report (``<top>_cosim.rpt``) as a ``CosimReport``."""

from __future__ import annotations

from pathlib import Path

from fnas_hls.errors import FnasError
from fnas_hls.reports.csynth_rpt import _cells
from fnas_hls.reports.report_values import CosimReport, _int, _Malformed, _short

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
