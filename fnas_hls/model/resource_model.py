"""Estimates of BRAM, LUT and FF for the rendered kernels (DSPs are exact: one MAC, one DSP48 in fixed16).

Block RAM follows the 7-series / UltraScale BRAM18K aspect ratios; arrays too small for a block
RAM go to LUTRAM or registers, as HLS does. LUT and FF are coarse per-MAC and per-port figures,
stated as estimates in every report; ``fnas-hls compare`` holds them to synthesis results.
"""

from __future__ import annotations

import numpy as np

#: (width, depth) shapes one BRAM18K can take.
BRAM18K_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
#: Arrays (or partitioned banks) of at most this many bits are mapped to LUTRAM/registers.
LUTRAM_MAX_BITS = 1024
#: Width of a bias word in the on-chip bias ROM (int32 at the accumulator's scale; float32 too).
BIAS_BITS = 32

#: LUT and FF per unrolled multiply-accumulate, per precision (adder tree, operand registers;
#: float32 includes the floating-point adder and multiplier cores' fabric part).
LUT_PER_MAC = {"fixed16": 40, "float32": 450}
FF_PER_MAC = {"fixed16": 60, "float32": 700}
#: LUT and FF of one m_axi master adapter, and of one layer's control and address logic.
LUT_PER_AXI_PORT = 1200
FF_PER_AXI_PORT = 1800
LUT_PER_LAYER = 900
FF_PER_LAYER = 1100
#: DSP48 slices of one float32 adder (Floating-Point Operator, full DSP usage; PG060). A fixed-point
#: add is fabric.
DSP_PER_FLOAT_ADD = 2
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
