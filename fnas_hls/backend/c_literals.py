"""C initializer text of stored values: what the templates paste into ROMs, weight arrays and
the testbench's vectors (integers as they are, float32 as exact ``f`` literals)."""

from __future__ import annotations

import numpy as np

from fnas_hls.backend.fixed_point import DataType
from fnas_hls.errors import FnasError


def float_literal(v: float) -> str:
    """A C float literal that reads back as the float32 ``v`` exactly."""
    s = f"{float(np.float32(v)):.9g}"
    if not any(ch in s for ch in ".e"):
        s += ".0"
    return s + "f"


def _items(values: np.ndarray, dtype: DataType) -> list[str]:
    flat = np.asarray(values).reshape(-1)
    if dtype.is_float:
        f = flat.astype(np.float32)
        if not np.all(np.isfinite(f)):
            raise FnasError("a weight, bias or test value is not finite (inf or NaN); cannot render it")
        return [float_literal(v) for v in f.tolist()]
    return list(map(str, flat.astype(np.int64).tolist()))


def rows(values: np.ndarray, dtype: DataType, per_line: int = 16, indent: str = "  ") -> str:
    """Array initializer lines (no braces) of stored values, ``per_line`` to a line."""
    items = _items(values, dtype)
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join(indent + line for line in lines)


def row_list(values: np.ndarray, dtype: DataType) -> list[str]:
    """Each row of a 2-D array of stored values as one initializer line (no braces), formatted in
    one pass (a large design's weight beats are a million rows)."""
    a = np.asarray(values)
    n = len(a)
    k = a.size // n if n else 0
    items = _items(a, dtype)
    return [", ".join(items[i * k : (i + 1) * k]) for i in range(n)]


def braced_rows(values: np.ndarray, dtype: DataType, indent: str = "  ") -> str:
    """A 2-D array's rows as ``{...}`` initializers, one to a line."""
    return ",\n".join(f"{indent}{{{line}}}" for line in row_list(values, dtype))
