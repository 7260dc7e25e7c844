"""An emitted project's folder: whether a folder is one (its manifest), what a new emit would lose
there, and writing a project into place without losing what fnas-hls did not write (a temporary
folder beside it, renamed into place)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnas_hls.backend.batching import Progress
from fnas_hls.errors import FnasError

MANIFEST = "manifest.json"
#: Folders in a project that fnas-hls rebuilds itself (the C simulation's objects and log).
REBUILT = ("csim_build",)


def is_project(folder: Path) -> bool:
    """True when ``folder`` holds an fnas-hls project (its manifest names the tool's version)."""
    return _read_manifest(folder) is not None


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "fnas_hls_version" in data else None


def digest(content: str | bytes) -> str:
    """The SHA-256 of a file's content, as the manifest records it."""
    return hashlib.sha256(content.encode("utf-8") if isinstance(content, str) else content).hexdigest()


@dataclass(frozen=True)
class FolderState:
    """What an output folder holds that fnas-hls did not write, relative paths sorted."""

    others: tuple[str, ...] = ()  # files no fnas-hls emit wrote: synthesis output, a user's files
    edited: tuple[str, ...] = ()  # files an emit wrote whose content has changed since

    def __bool__(self) -> bool:
        return bool(self.others or self.edited)

    def summary(self, shown: int = 3) -> str:
        """One line: how many files of each kind, the first few named."""

        def part(paths: tuple[str, ...], what: str) -> str:
            more = f", ... {len(paths) - shown} more" if len(paths) > shown else ""
            return f"{len(paths)} {what} ({', '.join(paths[:shown])}{more})"

        parts = [part(self.others, "file(s) fnas-hls did not write")] if self.others else []
        if self.edited:
            parts.append(part(self.edited, "edited file(s)"))
        return " and ".join(parts)


def folder_state(folder: Path) -> FolderState:
    """The files in ``folder`` that a new emit would lose: everything but the files the previous
    emit wrote (``manifest.json`` lists them with their digests) unchanged, and csim's own build
    folder, which ``csim`` rebuilds. A folder without a manifest is all others."""
    manifest = _read_manifest(folder) or {}
    written = manifest.get("written") if isinstance(manifest.get("written"), dict) else {}
    others: list[str] = []
    edited: list[str] = []
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST and manifest or rel.split("/")[0] in REBUILT:
            continue
        if rel not in written:
            others.append(rel)
            continue
        try:
            same = path.is_file() and not path.is_symlink() and digest(path.read_bytes()) == written[rel]
        except OSError:
            same = False
        if not same:
            edited.append(rel)
    return FolderState(tuple(others), tuple(edited))


def check_out_dir(out_dir: Path, force: bool) -> FolderState:
    """What a project written into ``out_dir`` would replace; FnasError when ``out_dir`` is a file,
    or holds files fnas-hls did not write (or has since been edited) and ``force`` is not given."""
    if not (out_dir.exists() or out_dir.is_symlink()):
        return FolderState()
    if not out_dir.is_dir():
        raise FnasError(f"-o {out_dir}: is a file, not a folder; give a new or empty folder")
    state = folder_state(out_dir)
    if state and not force:
        what = "an fnas-hls project" if is_project(out_dir) else "a folder that is not an fnas-hls project"
        raise FnasError(
            f"-o {out_dir}: {what} that holds {state.summary()}; nothing was written; give a new "
            "folder, or pass --force to replace them"
        )
    return state


def write_project(
    out_dir: Path, files: Mapping[str, str | bytes], force: bool = False, progress: Progress | None = None
) -> FolderState:
    """Write ``files`` into a temporary folder beside ``out_dir``, then rename it into place; returns
    what it replaced that fnas-hls had not written (only with ``force``)."""
    out_dir = Path(out_dir)
    replaced = check_out_dir(out_dir, force)
    parent = out_dir.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise FnasError(f"-o {out_dir}: cannot write in '{parent}': {exc.strerror or exc}") from None
    old: Path | None = None
    try:
        for i, (rel, content) in enumerate(files.items()):
            if progress is not None:
                progress("writing", i, len(files))
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=parent))
            old.rmdir()
            out_dir.rename(old)
        tmp.rename(out_dir)
        if progress is not None:
            progress("writing", len(files), len(files))
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not out_dir.exists():
            old.rename(out_dir)
        raise FnasError(f"-o {out_dir}: cannot write the project: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not out_dir.exists():
            old.rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return replaced
