"""The arithmetic a design uses: 16-bit fixed point (FNAS's choice) or float32."""

from __future__ import annotations

from dataclasses import dataclass

from fnas_hls.errors import FnasError
from fnas_hls.model import hls_rules


@dataclass(frozen=True)
class Precision:
    """Word width of features and weights, accumulator width, and operator latencies."""

    name: str
    bits: int
    acc_bits: int
    is_float: bool
    mul_latency: int
    add_latency: int


PRECISIONS: dict[str, Precision] = {
    # Accumulators: the writer renders int64 unless int32 provably cannot overflow, which real
    # layers almost never allow, so the model budgets 64 bits.
    "fixed16": Precision("fixed16", 16, 64, False, hls_rules.FIXED_MUL_LATENCY, hls_rules.FIXED_ADD_LATENCY),
    "float32": Precision("float32", 32, 32, True, hls_rules.FLOAT_MUL_LATENCY, hls_rules.FLOAT_ADD_LATENCY),
}


def get_precision(name: str) -> Precision:
    """The precision called ``name``; FnasError naming the accepted ones otherwise."""
    try:
        return PRECISIONS[name]
    except KeyError:
        raise FnasError(f"unknown precision '{name}'; accepted: {', '.join(PRECISIONS)}") from None
