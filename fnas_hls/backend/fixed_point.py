"""The arithmetic of the generated kernels, in one place: one datatype class for the quantizer, the
numpy reference model and the C++ type strings of the templates.

Fixed point (``fixed16``, the default)
--------------------------------------
* A tensor is stored as signed integers ``q`` of ``bits`` bits standing for ``q / 2**frac``
  (``frac`` fractional bits, chosen per tensor; it may be negative or larger than ``bits``).
* Feature maps and weights are ``int16``; every tensor (the network input, each layer's weights,
  each layer's output) has its own ``frac``, chosen by ``frac_for_range`` from the largest
  magnitude seen on the calibration set: the largest ``frac`` with ``max|x| * 2**frac <= 32767``.
* Float to fixed (``DataType.quantize``): round half up, ``floor(x * 2**frac + 1/2)``, then
  saturate to ``[-2**(bits-1), 2**(bits-1) - 1]``.
* A conv or fully connected layer multiplies ``int16 x int16`` into its accumulator, whose scale
  is ``frac_in + frac_w``; the bias is an ``int32`` at that same scale (``frac_w`` is lowered
  until the largest bias fits in ``int32``). The accumulator is ``int32`` when the layer's
  worst case ``max_m (|b_m| + 32768 * sum |w_m|)`` fits in 31 bits, else ``int64``: it never
  overflows, so the order of the additions does not change an integer result.
* Requantize (``requantize``): ``shift = frac_in + frac_w - frac_out >= 0`` (``frac_out`` is
  capped at the accumulator's), ``y = (acc + 2**(shift-1)) >> shift`` (arithmetic shift: round
  half up), then ReLU (``max(y, 0)``) or another activation (``backend/activation.py``) when the
  layer has one, then saturate to ``int16``.
* Max pooling compares integers (padding taps are skipped). Average pooling (padding counts as
  zeros, ONNX's default) and global average pooling sum into ``int64`` and divide by the count
  ``k`` as ``(sum * round(2**32 / k) + 2**31) >> 32`` (``avg_div``); both keep the input's ``frac``.

float32
-------
The same loop nest in ``float``; the C++ and the numpy reference do every multiply and add in
the same order (the Tn products of one output are summed as a pairwise tree, ``tree_sum``), and
the C++ is compiled with ``-ffp-contract=off`` (no fused multiply-add), so the two agree bit for
bit. Average pooling multiplies the sum by the float32 reciprocal of the count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Word width of feature maps and weights in ``fixed16``.
WORD_BITS = 16
#: Width of the stored biases.
BIAS_BITS = 32
#: Shift of the reciprocal multiply in average pooling: ``(sum * round(2**AVG_SHIFT / k)) >> AVG_SHIFT``.
AVG_SHIFT = 32
#: Bounds on chosen fractional bits (a tensor of zeros gets ``FRAC_MAX``).
FRAC_MIN, FRAC_MAX = -24, 30
#: Largest requantization shift (keeps ``1 << (shift - 1)`` and the accumulator inside int64).
SHIFT_MAX = 48

_C_INT = {8: "int8_t", 16: "int16_t", 32: "int32_t", 64: "int64_t"}
_NP_INT = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}


@dataclass(frozen=True)
class DataType:
    """A number format: signed fixed point of ``bits`` bits with ``frac`` fractional bits, or float32.

    The integer (``q``) of a fixed-point value ``x`` is ``x * 2**frac``; ``frac`` is None for float.
    """

    bits: int
    frac: int | None = 0
    is_float: bool = False

    @classmethod
    def fixed(cls, bits: int, frac: int) -> DataType:
        return cls(bits, int(frac), False)

    @property
    def c_type(self) -> str:
        """The C++ type of the kernels (plain integer types: no Xilinx headers)."""
        return "float" if self.is_float else _C_INT[self.bits]

    @property
    def np_dtype(self) -> type:
        return np.float32 if self.is_float else _NP_INT[self.bits]

    @property
    def min_int(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def max_int(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def saturate(self, q: np.ndarray) -> np.ndarray:
        """Clip integers to this type's range (int64 in, int64 out)."""
        return np.clip(q, self.min_int, self.max_int)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float to this type: round half up, then saturate (float32 for a float type)."""
        if self.is_float:
            return np.asarray(x, dtype=np.float32)
        scaled = np.asarray(x, dtype=np.float64) * math.ldexp(1.0, self.frac)
        return self.saturate(np.floor(scaled + 0.5)).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        if self.is_float:
            return np.asarray(q, dtype=np.float64)
        return np.asarray(q, dtype=np.float64) * math.ldexp(1.0, -self.frac)

    @property
    def lsb(self) -> float:
        """Value of one unit in the last place (0 for float)."""
        return 0.0 if self.is_float else math.ldexp(1.0, -self.frac)

    def literal(self, v) -> str:
        """A C++ literal of a stored value (an integer, or a float32 that reads back exactly)."""
        if self.is_float:
            f = float(np.float32(v))
            if math.isinf(f) or math.isnan(f):
                raise ValueError(f"non-finite float32 {f}")
            return f"{f:.9g}f" if "." in f"{f:.9g}" or "e" in f"{f:.9g}" else f"{f:.9g}.0f"
        q = int(v)
        if self.bits == 64 or q == self.min_int:
            return f"({q + 1}LL - 1)" if q < 0 else f"{q}LL"
        return str(q)

    def __str__(self) -> str:
        return "float32" if self.is_float else f"int{self.bits}(frac={self.frac})"


FLOAT32 = DataType(32, None, True)


def frac_for_range(max_abs: float, bits: int = WORD_BITS) -> int:
    """Most fractional bits that still hold ``max_abs`` in a signed ``bits``-bit word."""
    top = (1 << (bits - 1)) - 1
    if not np.isfinite(max_abs) or max_abs <= 0:
        return FRAC_MAX
    frac = math.floor(math.log2(top / max_abs))
    while max_abs * math.ldexp(1.0, frac) > top:  # guard against log2 rounding
        frac -= 1
    return int(min(max(frac, FRAC_MIN), FRAC_MAX))


def requantize(acc: np.ndarray, shift: int, relu: bool, out: DataType, act: Any = None) -> np.ndarray:
    """Accumulator (int64) to the output word: round half up by ``shift``, the activation (ReLU, or
    ``act``, a ``backend.activation.FixedActivation``), saturate."""
    acc = np.asarray(acc, dtype=np.int64)
    if np.ndim(shift):  # one shift per output channel, broadcast against acc
        s = np.asarray(shift, dtype=np.int64)
        y = (acc + np.where(s > 0, np.left_shift(1, np.maximum(s - 1, 0)), 0)) >> s
    else:
        y = (acc + (1 << (shift - 1))) >> shift if shift > 0 else acc
    if act is not None:
        y = act.apply(y)
    elif relu:
        y = np.maximum(y, 0)
    return out.saturate(y)


def avg_multiplier(count: Any) -> Any:
    """``round(2**AVG_SHIFT / count)``: the reciprocal of an averaging count, as an integer (or an
    int64 array of them, one per window, where padding is left out of the count)."""
    if np.ndim(count):
        c = np.asarray(count, dtype=np.int64)
        return (2 * (1 << AVG_SHIFT) + c) // (2 * c)
    return (2 * (1 << AVG_SHIFT) + count) // (2 * count)


def avg_sum_bits(count: int, data_bits: int) -> int:
    """Width of the C type the kernels sum an average's ``count`` words of ``data_bits`` bits in:
    32 where no sum can reach 2**31 (``count`` words of at most 2**(data_bits-1) each), else 64.
    The product with the reciprocal is taken in 64 bits either way, so the result is the same."""
    return 32 if count * (1 << (data_bits - 1)) < (1 << 31) else 64


def avg_div(total: np.ndarray, count: Any, out: DataType) -> np.ndarray:
    """``round(total / count)`` the way the kernels do it: multiply by the reciprocal and shift
    (``count`` a number, or an array broadcast against ``total``: each window's own)."""
    t = np.asarray(total, dtype=np.int64) * avg_multiplier(count)
    return out.saturate((t + (1 << (AVG_SHIFT - 1))) >> AVG_SHIFT)


def float_reciprocal(count: Any) -> Any:
    """float32 ``1 / count`` (of each count of an array)."""
    return (
        np.float32(1.0) / np.asarray(count, dtype=np.float32)
        if np.ndim(count)
        else (np.float32(1.0) / np.float32(count))
    )


def tree_sum(p: np.ndarray, axis: int) -> np.ndarray:
    """Pairwise sum along ``axis`` in the kernels' order: step s = 1, 2, 4..: p[n] += p[n + s].

    The C++ compute loop sums its Tn products exactly so; for integers the order is immaterial,
    for float32 it makes the reference and the C++ agree bit for bit.
    """
    p = np.array(np.moveaxis(p, axis, 0), copy=True)
    n = p.shape[0]
    s = 1
    while s < n:
        lo = np.arange(0, n - s, 2 * s)
        p[lo] = p[lo] + p[lo + s]
        s *= 2
    return p[0]


def acc_bits_needed(weight_q: np.ndarray, bias_q: np.ndarray | None, in_type: DataType) -> int:
    """32 when no output's worst-case sum can leave int32, else 64 (weights (out, ...) as integers)."""
    w = np.abs(np.asarray(weight_q, dtype=np.int64)).reshape(weight_q.shape[0], -1).sum(axis=1)
    worst = w * (-in_type.min_int)
    if bias_q is not None:
        worst = worst + np.abs(np.asarray(bias_q, dtype=np.int64))
    return 32 if int(worst.max(initial=0)) < (1 << 31) else 64
