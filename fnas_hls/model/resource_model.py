"""Estimates of BRAM, LUT and FF for the rendered kernels (DSPs are exact: one MAC, one DSP48 in fixed16).

Block RAM follows the 7-series / UltraScale BRAM18K aspect ratios; arrays too small for a block
RAM go to LUTRAM or registers, as HLS does. LUT and FF are coarse per-MAC and per-port figures,
stated as estimates in every report; ``fnas-hls compare`` holds them to synthesis results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fnas_hls.backend.activation import TABLE_KINDS, TABLE_SEGMENT_BITS
from fnas_hls.backend.fixed_point import avg_multiplier, avg_sum_bits

#: (width, depth) shapes one BRAM18K can take.
BRAM18K_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
#: Arrays (or partitioned banks) of at most this many bits are mapped to LUTRAM/registers.
LUTRAM_MAX_BITS = 1024
#: Width of a bias word in the on-chip bias ROM (int32 at the accumulator's scale; float32 too).
BIAS_BITS = 32
#: Width of a requantization shift in the per-channel shift ROMs (int8): an unsigned char, since
#: a shift lies in 0 .. fixed_point.SHIFT_MAX (48).
SHIFT_BITS = 8

#: LUT and FF per unrolled multiply-accumulate, per precision (adder tree, operand registers;
#: float32 includes the floating-point adder and multiplier cores' fabric part).
LUT_PER_MAC = {"fixed16": 40, "int8": 30, "float32": 450}
FF_PER_MAC = {"fixed16": 60, "int8": 40, "float32": 700}
#: LUT and FF of one m_axi master adapter, and of one layer's control and address logic.
LUT_PER_AXI_PORT = 1200
FF_PER_AXI_PORT = 1800
LUT_PER_LAYER = 900
#: LUTs of one copy of a store's output stage beside its DSPs: rounding add and shift, saturation,
#: ReLU, the activation switch's multiplexer (our estimate).
LUT_PER_OUTPUT_LANE = 100
FF_PER_LAYER = 1100
#: DSP48 slices of one float32 adder (Floating-Point Operator, full DSP usage; PG060). A fixed-point
#: add is fabric.
DSP_PER_FLOAT_ADD = 2
#: DSP48 slices of one output activation other than ReLU (templates/act.j2), per precision: the
#: multiplies of each kind on DSP48E1-sized operands (25 x 18). fixed16: an int32 by an 17-bit
#: constant takes 2 (leaky_relu, hard_sigmoid); hard_swish adds an int32 by a 31-bit factor (4);
#: a table's interpolation multiplies a 17-bit difference by the offset in its segment (2) and
#: SiLU multiplies by its input (2 more). float32: a multiply is 3, an add 2 (PG060, full DSP
#: usage). int8 as fixed16: the activation works on the int32 accumulator either way. Our
#: estimates, like the operators' depths (hls_rules.act_depth).
ACT_DSP = {
    "fixed16": {
        "clip": 0,
        "leaky_relu": 2,
        "hard_sigmoid": 2,
        "hard_swish": 6,
        "sigmoid": 2,
        "tanh": 2,
        "silu": 4,
    },
    "float32": {
        "clip": 0,
        "leaky_relu": 3,
        "hard_sigmoid": 5,
        "hard_swish": 8,
        "sigmoid": 12,
        "tanh": 12,
        "silu": 15,
    },
}
ACT_DSP["int8"] = ACT_DSP["fixed16"]
#: Words of the sigmoid and tanh tables (act.j2's FNAS_ACT_TABLE: two rows of 2**bits + 1 points),
#: 32 bits each; a function that reads it holds its own copy.
ACT_TABLE_WORDS = 2 * ((1 << TABLE_SEGMENT_BITS) + 1)


def act_resources(kinds: str | tuple[str, ...], precision: str, lanes: int = 1) -> tuple[int, int]:
    """(DSP48, BRAM18K) of ``lanes`` side-by-side instances of an output activation that computes
    ``kinds`` ('' for none; several for the shared style's run-time switch): a table is one ROM,
    read through both ports of its blocks, so two lanes share one copy."""
    kinds = tuple(k for k in ((kinds,) if isinstance(kinds, str) else kinds) if k)
    dsp = lanes * sum(ACT_DSP[precision][k] for k in kinds)
    bram = -(-lanes // 2) * bram18k(ACT_TABLE_WORDS, 32) if any(k in TABLE_KINDS for k in kinds) else 0
    return dsp, bram


#: LUT and FF of the top function: AXI-Lite control, interconnect.
LUT_TOP = 1500
FF_TOP = 2000


def bram18k(depth, width):
    """BRAM18K blocks for one array (bank) of ``depth`` words of ``width`` bits; arrays allowed."""
    depth = np.asarray(depth)
    best = None
    for w, d in BRAM18K_SHAPES:
        n = -(-width // w) * -(-depth // d)
        best = n if best is None else np.minimum(best, n)
    result = np.where(depth * width <= LUTRAM_MAX_BITS, 0, best)
    return result if result.ndim else int(result)


def lutram_luts(depth, width):
    """LUTs of one simple-dual-port distributed RAM (a write port and a read port, as a ping-pong
    bank or an accumulator needs) of ``depth`` words of ``width`` bits; arrays allowed. From the
    distributed RAM configurations of the 7-series and UltraScale CLBs (UG474 table 2-5, UG574):
    RAM32M is 32 x 6 bits simple dual port in 4 LUTs, RAM64M 64 x 3 bits in 4 LUTs; a deeper
    memory is banks of RAM64M and a read multiplexer of a LUT per bit per extra bank."""
    depth, width = np.asarray(depth), np.asarray(width)
    banks = -(-depth // 64)
    deep = banks * 4 * -(-width // 3) + (banks - 1) * width
    result = np.where(depth <= 32, 4 * -(-width // 6), deep)
    return result if result.ndim else int(result)


def lutrom_luts(depth, width):
    """LUTs of a ROM in fabric: a LUT6 is a 64 x 1 ROM (UG474), one per bit per 64 words."""
    result = -(-np.asarray(depth) // 64) * np.asarray(width)
    return result if np.ndim(result) else int(result)


#: Signed operand widths of a DSP slice's multiplier (A x B): DSP48E1 25 x 18 (7-series), DSP48E2
#: 27 x 18 (UltraScale+); UG479, UG579.
DSP_MULTIPLIER_PORTS = {"DSP48E1": (25, 18), "DSP48E2": (27, 18)}


def mul_dsps(a_bits: int, b_bits: int, dsp_slice: str) -> int:
    """DSP slices of one signed ``a_bits`` x ``b_bits`` multiply, as partial products of the
    slice's ports (each takes one sign bit fewer of a wider operand), the wider operand on the
    wider port or the other, whichever takes fewer: our estimate of csynth's decomposition."""
    A, B = DSP_MULTIPLIER_PORTS[dsp_slice]

    def tiles(a: int, b: int) -> int:
        return -(-(a - 1) // (A - 1)) * -(-(b - 1) // (B - 1))

    return min(tiles(a_bits, b_bits), tiles(b_bits, a_bits))


def avg_dsps(count: int, data_bits: int, dsp_slice: str, table: bool = False) -> int:
    """DSPs of an average's fixed-point divide (``templates/*/gap_layer``, ``pool_layer``): its sum
    (``fixed_point.avg_sum_bits`` wide) times the reciprocal ``avg_multiplier(count)``, a constant of
    its own width and a sign bit, or, where padding is left out of the count (``table``), a word of
    the int64 table of them read at run time."""
    mul_bits = 64 if table else int(avg_multiplier(count)).bit_length() + 1
    return mul_dsps(avg_sum_bits(count, data_bits), mul_bits, dsp_slice)


def select_luts(ways, width):
    """LUTs of a ``ways``:1 multiplexer of ``width`` bits: a LUT6 selects one of four (wider ones
    chain through the slice's F7/F8 multiplexers); none for one way."""
    ways = np.asarray(ways)
    result = np.where(ways > 1, -(-ways // 4) * width, 0)
    return result if result.ndim else int(result)


def memory_luts(depth, width, rom: bool = False):
    """LUTs of one bank of ``depth`` x ``width`` bits: none in block RAM (more than
    ``LUTRAM_MAX_BITS``), else distributed RAM or, for a ROM, LUT ROM; arrays allowed."""
    depth = np.asarray(depth)
    per = (lutrom_luts if rom else lutram_luts)(depth, width)
    result = np.where(depth * width <= LUTRAM_MAX_BITS, per, 0)
    return result if result.ndim else int(result)


@dataclass(frozen=True)
class Memory:
    """An on-chip memory of a design: ``banks`` arrays of ``depth`` x ``width`` bits, in block RAM
    or, at most ``LUTRAM_MAX_BITS`` a bank, in LUTs (distributed RAM, or LUT ROM for a ``rom``), as
    csynth places an array of implementation 'auto'; the shared templates bind each to where this
    says (``impl``) so that the count is the one csynth reports."""

    name: str
    banks: int
    depth: int
    width: int
    rom: bool = False
    ports: int = 1  # read ports a ROM needs a cycle (1 or 2; a RAM is one write and one read port)

    @property
    def impl(self) -> str:
        return "lutram" if self.depth * self.width <= LUTRAM_MAX_BITS else "bram"

    @property
    def bram18k(self) -> int:
        return self.banks * bram18k(self.depth, self.width)

    @property
    def lut(self) -> int:
        return self.banks * memory_luts(self.depth, self.width, self.rom)
