"""QONNX ``Quant`` nodes (Brevitas's and FINN's export): weights quantized before the import.

A ``Quant`` whose inputs are all stored constants (a weight or a bias, its scale, zero point and bit
width) is evaluated here, as QONNX defines it::

    q = clip(round(x / scale + zero_point), lo, hi);  y = (q - zero_point) * scale
    lo, hi = -2**(b-1) (+1 if narrow), 2**(b-1) - 1   (signed)    0, 2**b - 1 (- 1 if narrow)   (unsigned)

with ``rounding_mode`` ROUND (half to even), CEIL, FLOOR or ROUND_TO_ZERO, and the result becomes the
constant the layer reads. Whether fnas-hls's own formats then hold those weights exactly is a
property of the scales: a power-of-two scale with zero point 0 puts every weight on a grid
``2**-f``; fnas-hls's formats are powers of two too and hold the grid exactly wherever they are at
least as fine, which ``weight_grid`` reports per folded tensor (the import notes say how many are on
such a grid; the quantizer's choice decides the rest). A ``Quant`` of a computed tensor (an
activation) is refused: fnas-hls chooses each map's format itself and rounds half up, so a QONNX
activation quantizer (half to even, any scale) would not be matched bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: The domains QONNX's ``Quant`` is exported under (QONNX, FINN's older name, Brevitas's older one).
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")

_ROUND = {
    "ROUND": np.round,  # half to even, as numpy
    "CEIL": np.ceil,
    "FLOOR": np.floor,
    "ROUND_TO_ZERO": np.trunc,
}


def is_qonnx_quant(domain: str, op_type: str) -> bool:
    return op_type == "Quant" and domain in QONNX_DOMAINS


def quant(xs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    """QONNX ``Quant`` on constants (see the module docstring)."""
    x, scale, zero, bits = (np.asarray(v, dtype=np.float64) for v in xs[:4])
    b = float(np.ravel(bits)[0])
    if b != int(b) or not 1 <= b <= 32:
        raise ValueError(f"bit width {b:g} is not an integer from 1 to 32")
    signed, narrow = int(attrs.get("signed", 1)), int(attrs.get("narrow", 0))
    mode = attrs.get("rounding_mode", "ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode.upper() not in _ROUND:
        raise ValueError(f"rounding_mode {mode!r}; accepted: {', '.join(_ROUND)}")
    n = int(b)
    lo, hi = (-(2 ** (n - 1)) + narrow, 2 ** (n - 1) - 1) if signed else (0, 2**n - 1 - narrow)
    q = np.clip(_ROUND[mode.upper()](x / scale + zero), lo, hi)
    return ((q - zero) * scale).astype(np.float32)


def weight_grid(xs: list[np.ndarray | None]) -> int | None:
    """The largest ``f`` such that every scale of the ``Quant`` is ``2**-f`` or coarser by a power of
    two with zero point 0, so that its output lies on the grid ``2**-f``; None where a scale is not a
    power of two or a zero point is not 0."""
    scale, zero = np.ravel(np.asarray(xs[1], dtype=np.float64)), np.ravel(np.asarray(xs[2], dtype=np.float64))
    if np.any(zero != 0) or np.any(scale <= 0):
        return None
    exps = []
    for s in scale:
        m, e = math.frexp(float(s))
        if m != 0.5:
            return None
        exps.append(1 - e)  # s = 2**(e-1) = 2**-f
    return max(exps)
