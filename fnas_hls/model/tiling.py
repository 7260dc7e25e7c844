"""Loop tiling of a conv processing element, and tilings a user pins on the command line.

A tiling (Tm, Tn, Tr, Tc) splits output channels M by Tm, input channels N by Tn, output rows R
by Tr and output columns C by Tc (per group for grouped convolutions). A fully connected layer is
a 1x1 convolution on a 1x1 map, so its Tr = Tc = 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from fnas_hls.errors import FnasError

FACTORS = ("Tm", "Tn", "Tr", "Tc")


@dataclass(frozen=True)
class Tiling:
    Tm: int
    Tn: int
    Tr: int
    Tc: int

    def as_dict(self) -> dict[str, int]:
        return {"Tm": self.Tm, "Tn": self.Tn, "Tr": self.Tr, "Tc": self.Tc}

    def __str__(self) -> str:
        return f"{self.Tm}/{self.Tn}/{self.Tr}/{self.Tc}"


#: A pinned factor: a number, ``full`` (the whole dimension), or None (left to the DSE).
Factor = int | str | None


@dataclass(frozen=True)
class TilingPin:
    """Factors a user fixed for one layer (``layer``) or for every tiled layer (``all``)."""

    layer: str
    Tm: Factor = None
    Tn: Factor = None
    Tr: Factor = None
    Tc: Factor = None

    def factor(self, name: str) -> Factor:
        return getattr(self, name)


_SPEC = re.compile(r"^(?P<layer>[^:]+):(?P<body>.+)$")


def parse_tiling_spec(spec: str) -> TilingPin:
    """Parse ``LAYER:Tm=64,Tn=7,Tr=13,Tc=full`` (any subset of the four factors)."""
    m = _SPEC.match(spec.strip())
    if not m:
        raise FnasError(f"--tiling '{spec}': expected LAYER:Tm=..,Tn=..,Tr=..,Tc=.. (or all:...)")
    values: dict[str, Factor] = {}
    for part in m.group("body").split(","):
        key, sep, raw = part.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or key not in FACTORS:
            raise FnasError(
                f"--tiling '{spec}': '{part}' is not one of {', '.join(f + '=N' for f in FACTORS)}"
            )
        if key in values:
            raise FnasError(f"--tiling '{spec}': {key} is given twice")
        if raw == "full":
            values[key] = "full"
        elif raw.isdigit() and int(raw) >= 1:
            values[key] = int(raw)
        else:
            raise FnasError(f"--tiling '{spec}': {key} must be a positive integer or 'full', got '{raw}'")
    return TilingPin(layer=m.group("layer").strip(), **values)


def parse_tiling_specs(specs: Iterable[str]) -> tuple[TilingPin, ...]:
    return tuple(parse_tiling_spec(s) for s in specs)


def pins_for_layers(pins: Iterable[TilingPin], tiled_layers: Iterable[str]) -> dict[str, TilingPin]:
    """Merge ``all`` pins and per-layer pins (per-layer wins) for each tiled layer.

    Raises FnasError when a pin names no tiled layer, listing the layers that can be tiled.
    """
    names = list(tiled_layers)
    merged: dict[str, dict[str, Factor]] = {n: {} for n in names}
    for pin in sorted(pins, key=lambda p: p.layer != "all"):
        targets = names if pin.layer == "all" else [pin.layer]
        if pin.layer != "all" and pin.layer not in merged:
            known = ", ".join(names) if names else "none"
            raise FnasError(
                f"--tiling names layer '{pin.layer}', which is not a tiled layer; tiled layers: {known}"
            )
        for t in targets:
            merged[t].update({f: pin.factor(f) for f in FACTORS if pin.factor(f) is not None})
    return {n: TilingPin(n, **v) for n, v in merged.items() if v}
