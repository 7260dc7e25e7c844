"""Where the data folders (templates/, boards/, search/) live, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Folder ``name`` (``templates``, ``boards``, ``search`` or ``benchmarks``): inside the wheel,
    else the repo root."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"fnas-hls data folder '{name}' not found next to {_PKG}")
