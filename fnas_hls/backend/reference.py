"""The bit-exact reference model: the generated kernels' loop nests and arithmetic, in numpy.

Each conv (and fully connected) layer runs the processing element's tiled loops in the kernel's
order (TILE over group, row tile, column tile, output-channel tile; the bias into the
accumulators; TILE_IN over input-channel tiles with zero-filled edge tiles; COMPUTE over kh, kw
with the Tn products of one output summed as the kernel's pairwise tree; STORE: requantize, ReLU,
saturate, in-bounds outputs only), vectorised over the batch and the unrolled Tm x Tn MACs and the
Tr x Tc tile. Pooling and global pooling use the kernels' integer formulas (``fixed_point``); a
residual add shifts its inputs to the finest one's scale, sums and requantizes; a concat rounds
each input to its format. Layers read their inputs by name, so DAGs run as well as chains.
The C++ testbench's golden vectors come from here, and ``fnas-hls csim`` holds the C++ to them.

For fixed point the integer sums cannot overflow (``fixed_point.acc_bits_needed``), so the
reduction over (n, kh, kw) of one input tile is done at once, as a matrix product (in float64
when every partial sum stays below 2**53, where float64 adds integers exactly in any order);
for float32 every add is done in the kernel's order, so the C++ agrees bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from fnas_hls.backend.fixed_point import avg_div, float_reciprocal, requantize, tree_sum
from fnas_hls.backend.float_model import run_float
from fnas_hls.backend.quantize import LayerQuant, QuantPlan
from fnas_hls.model.dataflow import dense_input_maps, hwc_order
from fnas_hls.model.sequential import ConvGeometry, cdiv
from fnas_hls.model.tiling import Tiling
from fnas_hls.network.ir import (
    INPUT,
    Add,
    Concat,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    LayerInfo,
    Network,
    Pool,
)

#: The most negative float32, the start of a float max-pool (the kernels avoid <cmath>'s INFINITY).
FLOAT_LOWEST = np.float32(-3.4028234663852886e38)
#: Integers below this add exactly in float64 in any order.
EXACT_FLOAT64 = 2**53


def _conv(x: np.ndarray, li: LayerInfo, t: Tiling, lq: LayerQuant) -> np.ndarray:
    g = ConvGeometry.of(li)
    is_float = lq.in_type.is_float
    dt = np.float32 if is_float else np.int64
    B = x.shape[0]
    layer = li.layer
    if isinstance(layer, Dense):
        x = x.reshape(B, g.N, 1, 1)
        pt = pl = 0
    else:
        pt, pl = layer.padding[0], layer.padding[1]
    H, W = x.shape[2], x.shape[3]
    Tm, Tn, Tr, Tc = min(t.Tm, g.M), min(t.Tn, g.N), min(t.Tr, g.R), min(t.Tc, g.C)
    MT, NT, RT, CT = cdiv(g.M, Tm), cdiv(g.N, Tn), cdiv(g.R, Tr), cdiv(g.C, Tc)
    TRin, TCin = (Tr - 1) * g.Sh + g.Kh, (Tc - 1) * g.Sw + g.Kw
    Hp, Wp = (RT * Tr - 1) * g.Sh + g.Kh, (CT * Tc - 1) * g.Sw + g.Kw

    # LOAD_IN's zero fill, once for the whole map: padding, edge tiles, channels past N.
    xp = np.zeros((B, g.groups, NT * Tn, Hp, Wp), dtype=dt)
    xg = x.reshape(B, g.groups, g.N, H, W).astype(dt)
    r0, c0 = max(0, -pt), max(0, -pl)  # (negative pads do not occur; kept safe)
    hh, ww = max(0, min(H, Hp - pt) - r0), max(0, min(W, Wp - pl) - c0)
    xp[:, :, : g.N, pt + r0 : pt + r0 + hh, pl + c0 : pl + c0 + ww] = xg[..., r0 : r0 + hh, c0 : c0 + ww]
    # LOAD_W's zero fill, and the bias ROM padded per group.
    wp = np.zeros((g.groups, MT * Tm, NT * Tn, g.Kh, g.Kw), dtype=dt)
    wp[:, : g.M, : g.N] = np.asarray(lq.weight).reshape(g.groups, g.M, g.N, g.Kh, g.Kw)
    bp = np.zeros((g.groups, MT * Tm), dtype=dt)
    bp[:, : g.M] = np.asarray(lq.bias).reshape(g.groups, g.M)

    y = np.zeros((B, g.groups, MT * Tm, RT * Tr, CT * Tc), dtype=np.float32 if is_float else np.int64)
    mm = np.int64
    if not is_float:
        # Every partial sum is an integer below EXACT_FLOAT64 in magnitude: float64 (BLAS) sums exactly.
        worst = np.abs(wp).reshape(g.groups * MT * Tm, -1).sum(axis=1) * (-lq.in_type.min_int)
        if int(worst.max(initial=0)) + int(np.abs(bp).max(initial=0)) < EXACT_FLOAT64:
            mm = np.float64
    rspan, cspan = (Tr - 1) * g.Sh + 1, (Tc - 1) * g.Sw + 1
    for gi in range(g.groups):  # TILE: group, row tile, column tile, output-channel tile
        for rt in range(RT):
            for ct in range(CT):
                for mt in range(MT):
                    acc = np.broadcast_to(bp[gi, mt * Tm : (mt + 1) * Tm, None, None], (B, Tm, Tr, Tc)).copy()
                    for it in range(NT):  # TILE_IN
                        tile = xp[
                            :,
                            gi,
                            it * Tn : (it + 1) * Tn,
                            rt * Tr * g.Sh : rt * Tr * g.Sh + TRin,
                            ct * Tc * g.Sw : ct * Tc * g.Sw + TCin,
                        ]
                        wt = wp[gi, mt * Tm : (mt + 1) * Tm, it * Tn : (it + 1) * Tn]
                        if is_float:  # COMPUTE in the kernel's order: kh, kw, then the Tn tree
                            for kh in range(g.Kh):
                                for kw in range(g.Kw):
                                    patch = tile[:, :, kh : kh + rspan : g.Sh, kw : kw + cspan : g.Sw]
                                    p = patch[:, None] * wt[None, :, :, kh, kw, None, None]
                                    acc += tree_sum(p, axis=2)
                        else:  # integers: the order of the sum is immaterial
                            win = np.stack(
                                [
                                    tile[:, :, kh : kh + rspan : g.Sh, kw : kw + cspan : g.Sw]
                                    for kh in range(g.Kh)
                                    for kw in range(g.Kw)
                                ],
                                axis=2,
                            )  # (B, Tn, Kh*Kw, Tr, Tc)
                            lhs = win.transpose(0, 3, 4, 1, 2).reshape(B, Tr, Tc, -1).astype(mm)
                            part = lhs @ wt.reshape(Tm, -1).T.astype(mm)  # (B, Tr, Tc, Tm)
                            acc += part.transpose(0, 3, 1, 2).astype(np.int64)
                    if is_float:  # STORE
                        out = np.where(acc < 0, np.float32(0), acc) if layer.relu else acc
                    else:
                        out = requantize(acc, lq.shift, layer.relu, lq.out_type)
                    y[:, gi, mt * Tm : (mt + 1) * Tm, rt * Tr : (rt + 1) * Tr, ct * Tc : (ct + 1) * Tc] = out
    y = y[:, :, : g.M, : g.R, : g.C]
    return y.reshape(B, g.groups * g.M, g.R, g.C)


def _relu(y: np.ndarray, on: bool) -> np.ndarray:
    if not on:
        return y
    return np.where(y < 0, y.dtype.type(0), y)


def _pool(x: np.ndarray, li: LayerInfo, lq: LayerQuant) -> np.ndarray:
    layer = li.layer
    is_float = lq.in_type.is_float
    kh, kw = layer.kernel
    sh, sw = layer.stride
    pt, pl, pb, pr = layer.padding
    oh, ow = li.out_shape.h, li.out_shape.w
    B, C, H, W = x.shape
    rows, cols = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    if layer.kind == "max":
        fill = FLOAT_LOWEST if is_float else lq.in_type.min_int
    else:
        fill = 0
    dt = np.float32 if is_float else np.int64
    xp = np.full((B, C, max(rows, pt + H), max(cols, pl + W)), fill, dtype=dt)
    xp[:, :, pt : pt + H, pl : pl + W] = x
    taps = [
        xp[:, :, i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    if layer.kind == "max":
        y = taps[0]
        for tap in taps[1:]:
            y = np.maximum(y, tap)
        if not is_float:
            y = np.maximum(y, lq.in_type.min_int)
    elif is_float:
        s = np.zeros((B, C, oh, ow), dtype=np.float32)
        for tap in taps:
            s = s + tap
        y = s * float_reciprocal(kh * kw)
    else:
        y = avg_div(np.sum(np.stack(taps), axis=0), kh * kw, lq.out_type)
    return _relu(y, layer.relu)


def _gap(x: np.ndarray, lq: LayerQuant) -> np.ndarray:
    B, C, H, W = x.shape
    if lq.in_type.is_float:
        s = np.zeros((B, C), dtype=np.float32)
        flat = x.reshape(B, C, H * W)
        for i in range(H * W):
            s = s + flat[:, :, i]
        y = s * float_reciprocal(H * W)
    else:
        y = avg_div(x.reshape(B, C, -1).sum(axis=2), H * W, lq.out_type)
    return y.reshape(B, C, 1, 1)


def _add(xs: list[np.ndarray], layer: Add, lq: LayerQuant) -> np.ndarray:
    """ADD: each input shifted left to the finest input's scale, summed in ``inputs`` order, then
    requantized like an accumulator (round half up, ReLU, saturate); float32 adds in order."""
    if lq.out_type.is_float:
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return _relu(y, layer.relu)
    acc = np.zeros(xs[0].shape, dtype=np.int64)
    for x, a in zip(xs, lq.aligns, strict=True):
        acc = acc + (np.asarray(x, dtype=np.int64) << a)
    return requantize(acc, lq.shift, layer.relu, lq.out_type)


def _concat(xs: list[np.ndarray], lq: LayerQuant) -> np.ndarray:
    """CONCAT: each input rounded to the output's format (half up; never saturates), stacked."""
    if lq.out_type.is_float:
        return np.concatenate(xs, axis=1)
    return np.concatenate(
        [requantize(x, a, False, lq.out_type) for x, a in zip(xs, lq.aligns, strict=True)], axis=1
    )


def run_reference_trace(
    net: Network, plan: QuantPlan, tilings: Mapping[str, Tiling], xq: np.ndarray, stream_order: bool = False
) -> list[np.ndarray]:
    """Every layer's stored output (int64 integers or float32) for stored inputs ``xq`` (n, C, H, W).

    ``stream_order``: a fully connected layer sums its inputs in the order the dataflow style
    streams them (HWC, ``model.dataflow.hwc_order``), not in the IR's CHW order.
    """
    x0 = np.asarray(xq, dtype=np.float32 if plan.input_type.is_float else np.int64)
    maps = dense_input_maps(net) if stream_order else {}
    values = {INPUT: x0}
    outs = []
    for li, lq in zip(net.info, plan.layers, strict=True):
        layer = li.layer
        x = values[li.sources[0]]
        if isinstance(layer, Add):
            x = _add([values[n] for n in li.sources], layer, lq)
        elif isinstance(layer, Concat):
            x = _concat([values[n] for n in li.sources], lq)
        elif isinstance(layer, Dense) and li.name in maps:
            order = hwc_order(maps[li.name])
            xs = x.reshape(x.shape[0], -1)[:, order].reshape(x.shape[0], -1, 1, 1)
            x = _conv(xs, li, tilings[li.name], replace(lq, weight=np.asarray(lq.weight)[:, order]))
        elif isinstance(layer, (Conv, Dense)):
            x = _conv(x, li, tilings[li.name], lq)
        elif isinstance(layer, Pool):
            x = _pool(x, li, lq)
        elif isinstance(layer, GlobalAvgPool):
            x = _gap(x, lq)
        elif isinstance(layer, Flatten):
            x = x.reshape(x.shape[0], -1, 1, 1)
        else:
            raise TypeError(f"layer '{li.name}' ({layer.op}) has no reference kernel")
        values[li.name] = x
        outs.append(x)
    return outs


def run_reference(
    net: Network, plan: QuantPlan, tilings: Mapping[str, Tiling], xq: np.ndarray, stream_order: bool = False
) -> np.ndarray:
    """The stored outputs (n, outputs) of the design for stored inputs ``xq``, in CHW order."""
    y = run_reference_trace(net, plan, tilings, xq, stream_order)[-1]
    return y.reshape(y.shape[0], -1)


@dataclass(frozen=True)
class Agreement:
    """The quantized design against the float model on a set of inputs."""

    samples: int
    max_abs_error: float
    top1_agreement: float
    output_lsb: float

    def to_json(self) -> dict:
        return {
            "samples": self.samples,
            "max_abs_error": self.max_abs_error,
            "top1_agreement": self.top1_agreement,
            "output_lsb": self.output_lsb,
        }


def compare_outputs(design: np.ndarray, floats: np.ndarray, lsb: float) -> Agreement:
    """Max abs error and top-1 agreement of dequantized design outputs against float outputs."""
    d = np.asarray(design, dtype=np.float64).reshape(len(design), -1)
    f = np.asarray(floats, dtype=np.float64).reshape(len(floats), -1)
    err = float(np.max(np.abs(d - f))) if d.size else 0.0
    top1 = float(np.mean(np.argmax(d, axis=1) == np.argmax(f, axis=1))) if len(d) else 1.0
    return Agreement(len(d), err, top1, lsb)


def agreement(net: Network, plan: QuantPlan, tilings: Mapping[str, Tiling], x: np.ndarray) -> Agreement:
    """Reference model against the float model on float inputs ``x`` (n, C, H, W)."""
    yq = run_reference(net, plan, tilings, plan.input_type.quantize(x))
    return compare_outputs(plan.output_type.dequantize(yq), run_float(net, x), plan.output_type.lsb)
