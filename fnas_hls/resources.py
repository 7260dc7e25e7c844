"""FPGA resource counts: what a design uses and what a board offers, as one small value type."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


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


@dataclass(frozen=True)
class MacCost:
    """What a multiply-accumulate costs in DSP slices on one board at one precision.

    ``dsp_per_mac`` slices per product; ``pack`` products per slice where they share an operand:
    two int8 weights times one activation in one DSP48E2 (Xilinx WP486, "Deep Learning with INT8
    Optimization on Xilinx Devices": the 27-bit pre-adder port takes ``w1 * 2**18 + w2``), so the
    lanes of a MAC array that read the same input pair up.
    """

    dsp_per_mac: int = 1
    pack: int = 1

    def dsps(self, shared: Any, other: Any = 1) -> Any:
        """Slices of ``shared`` lanes (one operand in common) times ``other`` (ints or numpy arrays)."""
        return -(-shared // self.pack) * other * self.dsp_per_mac

    def macs(self, dsps: int) -> int:
        """The most multiply-accumulates ``dsps`` slices hold, paired where they can be."""
        return max(dsps // self.dsp_per_mac * self.pack, 1)
