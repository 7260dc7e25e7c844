"""The generated README.md against the code beside it: every C function and loop label it names is
in the emitted sources (the README is rendered from the project's own analysis, per style)."""

from __future__ import annotations

import re
from pathlib import Path


def _table(readme: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header line starts with ``header``, as cells."""
    lines = readme.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header))
    rows = []
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


def check_readme(project: Path) -> None:
    """AssertionError naming the first function or label the README lists that the code lacks."""
    readme = (project / "README.md").read_text()
    code = "\n".join(p.read_text() for p in sorted((project / "src").glob("*.cpp")))
    defined = set(re.findall(r"^[A-Za-z_][\w:<>, ]*?\b(\w+)\s*\([^;{]*\)\s*\{", code, flags=re.M))
    labels = set(re.findall(r"^\s*([A-Z][A-Z0-9_]*):\s*$", code, flags=re.M))
    modules = _table(readme, "| module | loop labels |")
    assert modules, "the README lists no modules"
    for name, loops in modules:
        assert name.strip("`") in defined, f"README module {name} is not a function of src/"
        for label in (x.strip() for x in loops.split(",") if x.strip() != "-"):
            assert label in labels, f"README label {label} ({name}) is no loop label of src/"
    for row in _table(readme, "| layer | C function |"):
        if row[1] != "-":
            assert row[1].strip("`") in defined, f"README layer {row[0]}: {row[1]} is not a function of src/"
