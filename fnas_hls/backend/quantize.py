"""Post-training quantization: per-tensor number formats chosen from a calibration set.

``quantize_network(net, precision, calibration)`` runs the float model on the calibration inputs,
reads the largest magnitude of the input, of each layer's weights and of each layer's output, and
picks every tensor's format by the rules stated once in ``fixed_point`` (the module docstring).
For ``float32`` every tensor is float32 and the weights are stored as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fnas_hls.backend.activation import FixedActivation, FloatActivation, quantize_activation
from fnas_hls.backend.batching import Progress
from fnas_hls.backend.fixed_point import (
    BIAS_BITS,
    FLOAT32,
    SHIFT_MAX,
    DataType,
    acc_bits_needed,
    frac_for_range,
)
from fnas_hls.backend.float_model import layer_ranges
from fnas_hls.network.ir import INPUT, Add, Concat, Conv, Dense, Network, Scale
from fnas_hls.network.names import c_identifiers
from fnas_hls.precision import get_precision


@dataclass(frozen=True)
class LayerQuant:
    """One layer's number formats and stored parameters.

    ``weight`` and ``bias`` are the stored values (integers as int64, or float32), weight in the
    IR's layout ((out, in/groups, kh, kw) or (out, in)); bias has one entry per output channel
    (zeros when the layer has none). ``shift`` is the requantization shift (fixed point only).
    """

    name: str
    c_name: str
    op: str
    in_type: DataType
    out_type: DataType
    in_types: tuple[DataType, ...] = ()  # add, concat: every input's format
    aligns: tuple[int, ...] = ()  # add: left shifts to the finest input's scale; concat: right shifts
    w_type: DataType | None = None
    bias_type: DataType | None = None
    acc_bits: int | None = None
    shift: int | None = None
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    act: FixedActivation | FloatActivation | None = None  # the output activation other than ReLU
    #: per-channel weight formats (``Precision.per_channel``): each output channel's weight
    #: fractional bits and requantization shift; ``w_type`` and ``shift`` then hold the first's
    w_fracs: tuple[int, ...] | None = None
    shifts: tuple[int, ...] | None = None

    @property
    def acc_c_type(self) -> str:
        if self.in_type.is_float:
            return "float"
        return "int32_t" if self.acc_bits == 32 else "int64_t"

    def to_json(self) -> dict:
        d = {
            "in_frac": self.in_type.frac,
            "out_frac": self.out_type.frac,
        }
        if self.w_type is not None:
            d.update(
                w_frac=self.w_type.frac,
                acc_frac=self.bias_type.frac,
                acc_bits=self.acc_bits,
                shift=self.shift,
            )
        if self.w_fracs is not None:
            d.update(w_fracs=list(self.w_fracs), shifts=list(self.shifts or ()))
        return d


@dataclass(frozen=True)
class QuantPlan:
    precision: str
    input_type: DataType
    layers: tuple[LayerQuant, ...]
    calibration_size: int

    @property
    def output_type(self) -> DataType:
        return self.layers[-1].out_type

    @property
    def data_c_type(self) -> str:
        return self.input_type.c_type

    def __getitem__(self, name: str) -> LayerQuant:
        for lq in self.layers:
            if lq.name == name:
                return lq
        raise KeyError(name)


def _max_abs(a: np.ndarray | None) -> float:
    return 0.0 if a is None or a.size == 0 else float(np.max(np.abs(a)))


def quantize_network(
    net: Network, precision: str, calibration: np.ndarray, progress: Progress | None = None
) -> QuantPlan:
    """Choose every tensor's number format from ``calibration`` (float inputs, (n, C, H, W))."""
    prec = get_precision(precision)
    ranges = layer_ranges(net, calibration, progress)  # also checks that every layer has weights
    cnames = c_identifiers([li.name for li in net.info])
    is_float = prec.is_float
    bits = prec.bits
    input_type = FLOAT32 if is_float else DataType.fixed(bits, frac_for_range(_max_abs(calibration), bits))
    types = {INPUT: input_type}  # each map's format, by the layer that writes it
    layers: list[LayerQuant] = []
    for li, y_max in zip(net.info, ranges, strict=True):
        layer = li.layer
        in_type = types[li.sources[0]]
        common = dict(name=li.name, c_name=cnames[li.name], op=layer.op, in_type=in_type)
        if isinstance(layer, Scale):
            lq = _scale_quant(tuple(types[n] for n in li.sources), y_max, is_float, bits, common)
        elif isinstance(layer, (Add, Concat)):
            lq = _merge_quant(layer, tuple(types[n] for n in li.sources), y_max, is_float, bits, common)
        elif not isinstance(layer, (Conv, Dense)):
            lq = LayerQuant(out_type=in_type, **common)  # pooling keeps the input's format
        else:
            quant = _per_channel_quant if prec.per_channel else _tiled_quant
            lq = quant(layer, in_type, y_max, is_float, bits, common)
        act = getattr(layer, "act", None)
        if act is not None:
            lq = replace(lq, act=quantize_activation(act, lq.out_type, li.name))
        layers.append(lq)
        types[li.name] = lq.out_type
    return QuantPlan(precision, input_type, tuple(layers), int(np.asarray(calibration).shape[0]))


def _scale_quant(
    ins: tuple[DataType, ...], y_max: float, is_float: bool, bits: int, common: dict
) -> LayerQuant:
    """A map times a per-channel vector: the product at the sum of their scales (it fits 32 bits),
    rounded to the output's format like an accumulator."""
    if is_float:
        return LayerQuant(out_type=FLOAT32, in_types=ins, **common)
    frac = ins[0].frac + ins[1].frac
    out_frac = max(min(frac_for_range(y_max, bits), frac), frac - SHIFT_MAX)
    return LayerQuant(
        out_type=DataType.fixed(bits, out_frac), in_types=ins, shift=frac - out_frac, acc_bits=32, **common
    )


def _merge_quant(
    layer: Add | Concat, ins: tuple[DataType, ...], y_max: float, is_float: bool, bits: int, common: dict
) -> LayerQuant:
    """An add sums its inputs at the finest input scale (each shifted left to it), then rounds to
    its output format like a conv's accumulator; a concat rounds each input to its output format,
    the coarsest of the inputs' and its own range's, so that no input saturates."""
    if is_float:
        return LayerQuant(out_type=FLOAT32, in_types=ins, aligns=(0,) * len(ins), **common)
    fracs = [t.frac for t in ins]
    if isinstance(layer, Add):
        finest = max(fracs)
        out_frac = max(min(frac_for_range(y_max, bits), finest), finest - SHIFT_MAX)
        return LayerQuant(
            out_type=DataType.fixed(bits, out_frac),
            in_types=ins,
            aligns=tuple(finest - f for f in fracs),
            shift=finest - out_frac,
            acc_bits=64,
            **common,
        )
    out_frac = min(frac_for_range(y_max, bits), *fracs)
    return LayerQuant(
        out_type=DataType.fixed(bits, out_frac),
        in_types=ins,
        aligns=tuple(f - out_frac for f in fracs),
        **common,
    )


def _tiled_quant(
    layer: Conv | Dense, in_type: DataType, y_max: float, is_float: bool, bits: int, common: dict
) -> LayerQuant:
    """A conv or fully connected layer: weights, bias, accumulator and output formats."""
    w = np.asarray(layer.weight, dtype=np.float64)
    b = np.zeros(layer.out) if layer.bias_value is None else np.asarray(layer.bias_value, np.float64)
    if is_float:
        return LayerQuant(
            out_type=FLOAT32,
            w_type=FLOAT32,
            bias_type=FLOAT32,
            weight=w.astype(np.float32),
            bias=b.astype(np.float32),
            **common,
        )
    w_frac = frac_for_range(_max_abs(w), bits)
    bias_limit = (1 << (BIAS_BITS - 1)) - 1
    while _max_abs(b) * 2.0 ** (in_type.frac + w_frac) > bias_limit:
        w_frac -= 1
    acc_frac = in_type.frac + w_frac
    out_frac = min(frac_for_range(y_max, bits), acc_frac)
    out_frac = max(out_frac, acc_frac - SHIFT_MAX)
    w_type = DataType.fixed(bits, w_frac)
    bias_type = DataType.fixed(BIAS_BITS, acc_frac)
    wq = w_type.quantize(w)
    bq = bias_type.quantize(b)
    out_type = DataType.fixed(bits, out_frac)
    return LayerQuant(
        out_type=out_type,
        w_type=w_type,
        bias_type=bias_type,
        acc_bits=acc_bits_needed(wq, bq, in_type),
        shift=acc_frac - out_frac,
        weight=wq,
        bias=bq,
        **common,
    )


def _per_channel_quant(
    layer: Conv | Dense, in_type: DataType, y_max: float, is_float: bool, bits: int, common: dict
) -> LayerQuant:
    """A conv or fully connected layer with one weight format per output channel: channel m's
    weights take the most fractional bits their largest magnitude allows (fewer where its bias
    would leave int32), its accumulator is at ``in_frac + w_frac[m]``, and its shift brings it to
    the one output format of the layer."""
    if is_float:
        return _tiled_quant(layer, in_type, y_max, is_float, bits, common)
    w = np.asarray(layer.weight, dtype=np.float64)
    rows = w.reshape(layer.out, -1)
    b = np.zeros(layer.out) if layer.bias_value is None else np.asarray(layer.bias_value, np.float64)
    bias_limit = (1 << (BIAS_BITS - 1)) - 1
    w_fracs = []
    for m in range(layer.out):
        f = frac_for_range(_max_abs(rows[m]), bits)
        while abs(b[m]) * 2.0 ** (in_type.frac + f) > bias_limit:
            f -= 1
        w_fracs.append(f)
    acc = [in_type.frac + f for f in w_fracs]
    out_frac = min(frac_for_range(y_max, bits), *acc)
    out_frac = max(out_frac, max(acc) - SHIFT_MAX)
    wq = np.stack([DataType.fixed(bits, f).quantize(rows[m]) for m, f in enumerate(w_fracs)]).reshape(w.shape)
    bq = np.array([DataType.fixed(BIAS_BITS, a).quantize(b[m]) for m, a in enumerate(acc)], dtype=np.int64)
    shifts = tuple(a - out_frac for a in acc)
    return LayerQuant(
        out_type=DataType.fixed(bits, out_frac),
        w_type=DataType.fixed(bits, w_fracs[0]),
        bias_type=DataType.fixed(BIAS_BITS, acc[0]),
        acc_bits=acc_bits_needed(wq, bq, in_type),
        shift=shifts[0],
        weight=wq,
        bias=bq,
        w_fracs=tuple(w_fracs),
        shifts=shifts,
        **common,
    )
