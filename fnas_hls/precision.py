"""The arithmetic a design uses: 16-bit fixed point (FNAS's choice), 8-bit fixed point (what the DPU
and FINN run) or float32."""

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
    #: DSP slices that multiply two of its products sharing an operand in one (WP486: int8 on the
    #: DSP48E2 of UltraScale and UltraScale+; 7-series' DSP48E1 has no 27-bit port for it).
    pack_slices: tuple[str, ...] = ()
    #: Weights with a format per output channel (and so a requantization shift per channel): 8 bits
    #: are too few for one format across channels whose magnitudes differ 100-fold (depthwise and
    #: batch-norm-folded convs).
    per_channel: bool = False

    def pack(self, dsp_slice: str) -> int:
        """Products one DSP slice of kind ``dsp_slice`` computes, paired on a shared operand."""
        return 2 if dsp_slice in self.pack_slices else 1


PRECISIONS: dict[str, Precision] = {
    # Accumulators: the writer renders int64 unless int32 provably cannot overflow, which real
    # layers almost never allow, so the model budgets 64 bits.
    "fixed16": Precision("fixed16", 16, 64, False, hls_rules.FIXED_MUL_LATENCY, hls_rules.FIXED_ADD_LATENCY),
    # int32 accumulators suffice far more often than in fixed16; the writer checks each layer.
    "int8": Precision(
        "int8", 8, 32, False, hls_rules.FIXED_MUL_LATENCY, hls_rules.FIXED_ADD_LATENCY, ("DSP48E2",), True
    ),
    "float32": Precision("float32", 32, 32, True, hls_rules.FLOAT_MUL_LATENCY, hls_rules.FLOAT_ADD_LATENCY),
}


def get_precision(name: str) -> Precision:
    """The precision called ``name``; FnasError naming the accepted ones otherwise."""
    try:
        return PRECISIONS[name]
    except KeyError:
        raise FnasError(f"unknown precision '{name}'; accepted: {', '.join(PRECISIONS)}") from None
