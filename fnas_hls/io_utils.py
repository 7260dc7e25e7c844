"""Writing output files so that a failure leaves nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fnas_hls.errors import FnasError


def remove_entries(folder: Path, names: tuple[str, ...]) -> None:
    """Delete the files and folders ``names`` of ``folder`` that exist (what a run wrote, on --force)."""
    for name in names:
        p = Path(folder) / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def write_text_atomic(out: str | Path, text: str, what: str = "--json") -> None:
    """Write ``text`` to ``out`` through a temporary file in the same folder, then rename it.

    ``what`` names the option or file in the one-line error (e.g. ``--json report.json``).
    """
    write_bytes_atomic(out, text.encode("utf-8"), what)


def write_bytes_atomic(out: str | Path, data: bytes, what: str = "-o") -> None:
    """Write ``data`` to ``out`` through a temporary file in the same folder, then rename it."""
    out = Path(out)
    if out.is_dir():
        raise FnasError(f"{what} {out}: is a folder; give a file name, e.g. {out / 'out.json'}")
    folder = out.parent
    if not folder.is_dir():
        raise FnasError(f"{what} {out}: folder '{folder}' does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise FnasError(f"{what} {out}: cannot write in '{folder}': {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FnasError(f"{what} {out}: cannot write: {exc.strerror or exc}") from None
    except BaseException:  # Ctrl-C mid-write: leave nothing behind
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(out: str | Path, data: Any, what: str = "--json") -> None:
    """``data`` as indented JSON, written atomically."""
    write_text_atomic(out, json.dumps(data, indent=2) + "\n", what)
