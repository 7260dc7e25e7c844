"""How the accelerator computes an output activation other than ReLU, in one place: the arithmetic
the reference model runs and the C++ repeats step for step (``fnas_activate`` in
``templates/fnas_types.h.j2``), for every kind of ``network.activations``.

Fixed point. The input is ``v``, the layer's accumulator rounded to the output's scale (``frac``
fractional bits) but not yet saturated, clamped to int32; the result is saturated to the data
word by the caller, as a ReLU's is. Constants are integers computed here once:

* ``clip``: ``min(max(v, LO), HI)``, ``LO``/``HI`` the bounds rounded half up to the output scale.
* ``leaky_relu``: ``v < 0 ? (v * A + 2**23) >> 24 : v``, ``A = round(alpha * 2**24)``.
* ``hard_sigmoid``: the gate ``t = min(max((v * A + B) >> (frac + 9), 0), 2**15)`` in TABLE_FRAC
  (15) fractional bits whatever the output's scale, ``A = round(alpha * 2**24)``,
  ``B = round(beta * 2**(frac + 24)) + 2**(frac + 8)`` (the rounding folded in), then ``t``
  rounded to the output's scale.
* ``hard_swish``: ``t`` as hard_sigmoid with alpha 1/6, beta 1/2, then ``(v * t + 2**14) >> 15``.
* ``sigmoid``, ``tanh``: a table of the function at ``2**TABLE_SEGMENT_BITS + 1`` points over
  ``[-16, 16]`` in ``TABLE_FRAC`` fractional bits (int32), linear interpolation between its two
  nearest points in integers, then rounded to the output scale; outside the table, its end points.
* ``silu``: ``(v * sigmoid_table(v) + 2**(TABLE_FRAC-1)) >> TABLE_FRAC``.

Every product stays inside int64 (``v`` is int32, ``|alpha| < 2**6``, the other factors at most
2**31), so the order of the operations is the only rule, and the C++ follows it.

float32. The same formulas in float32, each operation in the C++'s order (compiled without fused
multiply-add): clip and leaky_relu as compares and one multiply; hard_sigmoid ``v * a + b``
clamped; sigmoid and tanh from a float32 table of the same points with the same interpolation
(``libm``'s ``expf`` and numpy's differ in the last bit, a table does not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fnas_hls.backend.fixed_point import DataType
from fnas_hls.errors import FnasError
from fnas_hls.network.activations import Activation

#: The kind's number in the C++ (``fnas_activate``'s switch); 0 is none (or a ReLU).
CODES = {"clip": 1, "leaky_relu": 2, "hard_sigmoid": 3, "hard_swish": 4, "sigmoid": 5, "tanh": 6, "silu": 7}
#: Table activations cover [-TABLE_HALF_RANGE, TABLE_HALF_RANGE] with 2**TABLE_SEGMENT_BITS segments.
TABLE_HALF_RANGE_BITS = 4
TABLE_SEGMENT_BITS = 9
#: Fractional bits of the fixed-point table (int32: 1.0 is 2**15).
TABLE_FRAC = 15
#: Fractional bits of the multipliers alpha (leaky_relu, hard_sigmoid); |alpha| < 2**ALPHA_BITS keeps
#: the products in int64.
MUL_SHIFT = 24
ALPHA_BITS = 6
V_MIN, V_MAX = -(1 << 31), (1 << 31) - 1
TABLE_KINDS = ("sigmoid", "tanh", "silu")
#: The gate of hard_sigmoid and hard_swish, alpha * v at f + MUL_SHIFT bits, to TABLE_FRAC bits.
GATE_SHIFT = MUL_SHIFT - TABLE_FRAC


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def _to_output(s: np.ndarray, f: int) -> np.ndarray:
    """A value in TABLE_FRAC fractional bits at the output's ``f``, rounded half up."""
    if f < TABLE_FRAC:
        return (s + (1 << (TABLE_FRAC - f - 1))) >> (TABLE_FRAC - f)
    return s << (f - TABLE_FRAC)


def _table_points() -> np.ndarray:
    segments = 1 << TABLE_SEGMENT_BITS
    half = 1 << TABLE_HALF_RANGE_BITS
    return -half + np.arange(segments + 1, dtype=np.float64) * (2.0 * half / segments)


def _table_function(kind: str) -> Activation:
    return Activation("tanh" if kind == "tanh" else "sigmoid")


@dataclass(frozen=True)
class FixedActivation:
    """An activation at an output scale of ``frac`` fractional bits, as integers."""

    act: Activation
    frac: int
    lo: int = 0
    hi: int = 0
    a: int = 0
    b: int = 0
    table: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), compare=False, repr=False)

    @property
    def code(self) -> int:
        return CODES[self.act.kind]

    def apply(self, v: np.ndarray) -> np.ndarray:
        """int64 ``v`` (rounded, unsaturated) to the activation's output, at the same scale."""
        v = np.clip(np.asarray(v, dtype=np.int64), V_MIN, V_MAX)
        kind, f = self.act.kind, self.frac
        if kind == "clip":
            return np.minimum(np.maximum(v, self.lo), self.hi)
        if kind == "leaky_relu":
            return np.where(v < 0, (v * self.a + (1 << (MUL_SHIFT - 1))) >> MUL_SHIFT, v)
        if kind in ("hard_sigmoid", "hard_swish"):  # the gate t in TABLE_FRAC bits, whatever f is
            t = np.minimum(np.maximum((v * self.a + self.b) >> (f + GATE_SHIFT), 0), 1 << TABLE_FRAC)
            if kind == "hard_sigmoid":
                return _to_output(t, f)
            return (v * t + (1 << (TABLE_FRAC - 1))) >> TABLE_FRAC
        s = self._interpolate(v)
        if kind == "silu":
            return (v * s + (1 << (TABLE_FRAC - 1))) >> TABLE_FRAC
        return _to_output(s, f)

    @property
    def span_bits(self) -> int:
        """The table's domain, 2**(TABLE_HALF_RANGE_BITS + 1) real units, in output units (log2)."""
        return TABLE_HALF_RANGE_BITS + 1 + self.frac

    @property
    def table_k(self) -> int:
        """log2 of the output units in one table segment."""
        return self.span_bits - TABLE_SEGMENT_BITS

    def _interpolate(self, v: np.ndarray) -> np.ndarray:
        """The table at ``v``: between its two nearest points when a segment spans several output
        units (``table_k > 0``), else the point itself."""
        k = self.table_k
        u = np.clip(v + (1 << (self.span_bits - 1)), 0, 1 << self.span_bits)
        if k <= 0:
            return self.table[u << -k]
        i = np.minimum(u >> k, (1 << TABLE_SEGMENT_BITS) - 1)
        r = u - (i << k)
        t0, t1 = self.table[i], self.table[i + 1]
        return t0 + (((t1 - t0) * r + (1 << (k - 1))) >> k)

    def c_params(self) -> dict[str, Any]:
        """What the templates pass to ``fnas_activate``."""
        return {"code": self.code, "lo": self.lo, "hi": self.hi, "a": self.a, "b": self.b, "frac": self.frac,
                "k": self.table_k if self.act.kind in TABLE_KINDS else 0,
                "half": (1 << (self.span_bits - 1)) if self.act.kind in TABLE_KINDS else 0}  # fmt: skip


@dataclass(frozen=True)
class FloatActivation:
    """An activation in float32."""

    act: Activation
    table: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), compare=False, repr=False)

    @property
    def code(self) -> int:
        return CODES[self.act.kind]

    @property
    def a(self) -> np.float32:
        return np.float32(1.0 / 6.0 if self.act.kind == "hard_swish" else self.act.alpha)

    @property
    def b(self) -> np.float32:
        return np.float32(0.5 if self.act.kind == "hard_swish" else self.act.beta)

    def apply(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float32)
        kind = self.act.kind
        if kind == "clip":
            lo, hi = np.float32(self.act.lo), np.float32(self.act.hi)
            return np.where(v < lo, lo, np.where(v > hi, hi, v)).astype(np.float32)
        if kind == "leaky_relu":
            return np.where(v < 0, v * self.a, v).astype(np.float32)
        if kind in ("hard_sigmoid", "hard_swish"):
            t = v * self.a + self.b
            t = np.where(t < 0, np.float32(0), np.where(t > 1, np.float32(1), t)).astype(np.float32)
            return t if kind == "hard_sigmoid" else (v * t).astype(np.float32)
        s = self._interpolate(v)
        return (v * s).astype(np.float32) if kind == "silu" else s

    def _interpolate(self, v: np.ndarray) -> np.ndarray:
        segments = np.float32(1 << TABLE_SEGMENT_BITS)
        half = np.float32(1 << TABLE_HALF_RANGE_BITS)
        scale = np.float32((1 << TABLE_SEGMENT_BITS) / (2.0 * (1 << TABLE_HALF_RANGE_BITS)))
        u = (v + half) * scale
        u = np.where(u < 0, np.float32(0), np.where(u > segments, segments, u)).astype(np.float32)
        i = np.minimum(np.floor(u), segments - 1).astype(np.int64)
        r = (u - i.astype(np.float32)).astype(np.float32)
        t0, t1 = self.table[i], self.table[i + 1]
        return (t0 + (t1 - t0) * r).astype(np.float32)

    def c_params(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "lo": self.act.lo,
            "hi": self.act.hi,
            "a": float(self.a),
            "b": float(self.b),
        }


def quantize_activation(act: Activation, out: DataType, layer: str) -> FixedActivation | FloatActivation:
    """``act`` for a layer whose output has format ``out``; FnasError naming ``layer`` when its
    output scale cannot carry it (a table or hard_sigmoid needs ``frac >= 0``)."""
    kind = act.kind
    if out.is_float:
        table = np.zeros(0, np.float32)
        if kind in TABLE_KINDS:
            table = _table_function(kind)(_table_points()).astype(np.float32)
        return FloatActivation(act, table)
    f = int(out.frac)
    if kind in ("hard_sigmoid", "hard_swish", *TABLE_KINDS) and f < 0:
        raise FnasError(
            f"layer '{layer}': its {act} output needs frac >= 0 but its range gives frac {f}; "
            "its outputs are too large for 16-bit words"
        )
    if kind == "clip":
        return FixedActivation(act, f, lo=_round(act.lo * 2.0**f), hi=_round(act.hi * 2.0**f))
    if kind in ("leaky_relu", "hard_sigmoid") and not abs(act.alpha) < 2**ALPHA_BITS:
        raise FnasError(f"layer '{layer}': {act}: alpha must be below {2**ALPHA_BITS} in magnitude")
    if kind == "leaky_relu":
        return FixedActivation(act, f, a=_round(act.alpha * 2.0**MUL_SHIFT))
    if kind in ("hard_sigmoid", "hard_swish"):
        alpha, beta = (1 / 6, 0.5) if kind == "hard_swish" else (act.alpha, act.beta)
        a = _round(alpha * 2.0**MUL_SHIFT)
        b = _round(beta * 2.0 ** (f + MUL_SHIFT)) + (1 << (f + GATE_SHIFT - 1))  # the rounding folded in
        return FixedActivation(act, f, a=a, b=b)
    points = _table_function(kind)(_table_points())
    table = np.floor(points * 2.0**TABLE_FRAC + 0.5).astype(np.int64)
    return FixedActivation(act, f, table=table)
