"""C identifiers for layer names, whatever the ONNX node was called."""

from __future__ import annotations

import keyword
import re

_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int "
    "long register restrict return short signed sizeof static struct switch typedef union unsigned void "
    "volatile while bool true false class namespace template typename this new delete public private "
    "protected virtual operator friend using".split()
)


def c_identifier(name: str) -> str:
    """A valid C/C++ identifier made from ``name``: letters, digits and underscores only."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "layer"
    ident = re.sub(r"_+", "_", ident)
    if ident[0].isdigit():
        ident = "l_" + ident
    if ident in _C_KEYWORDS or keyword.iskeyword(ident):
        ident += "_"
    return ident


def c_identifiers(names: list[str]) -> dict[str, str]:
    """Unique C identifiers for ``names`` (a suffix tells apart names that sanitize alike)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = c_identifier(name)
        ident, k = base, 1
        while ident in used:
            k += 1
            ident = f"{base}_{k}"
        used.add(ident)
        out[name] = ident
    return out
