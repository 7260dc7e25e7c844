"""C identifiers for layer names, whatever the ONNX node was called.

The performance model and the HLS writer both name functions through ``c_identifiers``, so the
model's function names are the rendered ones: each layer ``X`` owns ``X`` and ``X`` plus every
suffix in ``FUNCTION_SUFFIXES``; no layer's names collide with another's or with the names the
generated C++ keeps for itself (``RESERVED``).
"""

from __future__ import annotations

import keyword
import re

_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int "
    "long register restrict return short signed sizeof static struct switch typedef union unsigned void "
    "volatile while bool true false class namespace template typename this new delete public private "
    "protected virtual operator friend using".split()
)
#: Sub-functions of one conv processing element (``model.sequential``'s and the templates' names).
FUNCTION_SUFFIXES = ("", "_init", "_load_in", "_load_w", "_compute", "_store")
#: Names the generated C++ keeps for itself: main, stdint.h's, the testbench's, everything fnas_.
RESERVED = re.compile(
    r"^(main|fnas_\w*|FNAS_\w*|u?int\w*_t|U?INT\w*_(MAX|MIN|C)|SIZE_MAX|PTRDIFF_\w+|SIG_ATOMIC_\w+|"
    r"WCHAR_\w+|WINT_\w+|TB_\w+|std|sum_t|acc_t|in|out|w)$"
)


def c_identifier(name: str) -> str:
    """A valid C/C++ identifier made from ``name``: letters, digits and underscores only."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "layer"
    ident = re.sub(r"_+", "_", ident)
    if ident[0].isdigit():
        ident = "l_" + ident
    if ident in _C_KEYWORDS or keyword.iskeyword(ident):
        ident += "_"
    if RESERVED.match(ident):
        ident = "l_" + ident
    return ident


def c_identifiers(names: list[str]) -> dict[str, str]:
    """Unique C identifiers for ``names``: none of the functions they own collide (a suffix
    ``_2``, ``_3`` ... tells apart names that would)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = c_identifier(name)
        ident, k = base, 1
        while any(ident + s in used for s in FUNCTION_SUFFIXES) or any(
            ident == u + s for u in out.values() for s in FUNCTION_SUFFIXES
        ):
            k += 1
            ident = f"{base}_{k}"
        used.update(ident + s for s in FUNCTION_SUFFIXES)
        out[name] = ident
    return out


#: Functions of the top level: the top itself and the dataflow region's input and output movers.
TOP_SUFFIXES = ("", "_read", "_write")


def design_names(layer_names: list[str], network_name: str) -> tuple[dict[str, str], str]:
    """Each layer's C name (``c_identifiers``) and the top function's name, chosen so that no
    function of the top (``TOP_SUFFIXES``) is a layer's."""
    cnames = c_identifiers(layer_names)
    owner = {cnames[n] + s for n in layer_names for s in FUNCTION_SUFFIXES}
    top = base = c_identifier(network_name) + "_top"
    if RESERVED.match(top):
        top = base = "net_top"
    k = 1
    while any(top + s in owner for s in TOP_SUFFIXES):
        k += 1
        top = f"{base}_{k}"
    return cnames, top
