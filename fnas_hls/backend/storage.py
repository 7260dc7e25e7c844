"""Where each on-chip memory of a design goes, as pragmas: the model's placement
(``resource_model.Memory``: block RAM, or LUTs for a bank of at most 1,024 bits) bound in the C++
(``templates/storage.j2``), so that csynth builds each memory where the model counts it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fnas_hls.model.resource_model import Memory


def storage_bindings(memories: Iterable[Memory], arrays: Mapping[str, Iterable[str]]) -> list[dict[str, Any]]:
    """One binding per C array: ``arrays`` names the arrays behind each memory (by ``Memory.name``;
    a memory it does not name has no array to bind). ``type``/``impl`` for Vitis HLS's
    BIND_STORAGE, ``core`` for Vivado HLS's RESOURCE."""
    out = []
    for m in memories:
        for var in arrays.get(m.name, ()):
            kind = f"rom_{m.ports}p" if m.rom else "ram_s2p"
            out.append({"var": var, "type": kind, "impl": m.impl, "core": f"{kind}_{m.impl}".upper()})
    return out
