"""FPGA resource counts: what a design uses and what a board offers, as one small value type."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Resources:
    """DSP slices, 18-kbit block RAMs, LUTs, flip-flops and UltraRAMs."""

    dsp: int = 0
    bram18k: int = 0
    lut: int = 0
    ff: int = 0
    uram: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def fits_in(self, budget: Resources) -> bool:
        """True when every count is within ``budget``."""
        return all(getattr(self, f.name) <= getattr(budget, f.name) for f in fields(self))

    def over(self, budget: Resources) -> list[str]:
        """Names of the resources that exceed ``budget``."""
        return [f.name for f in fields(self) if getattr(self, f.name) > getattr(budget, f.name)]

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
