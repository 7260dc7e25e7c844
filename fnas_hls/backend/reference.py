"""The bit-exact reference model: the generated kernels' arithmetic, in numpy.

In float32 each conv (and fully connected) layer runs the processing element's tiled loops in the
kernel's order (TILE over group, row tile, column tile, output-channel tile; the bias into the
accumulators; TILE_IN over input-channel tiles with zero-filled edge tiles; COMPUTE over kh, kw
with the Tn products of one output summed as the kernel's pairwise tree; STORE: the activation, in-bounds
outputs only), vectorised over the batch and the unrolled Tm x Tn MACs and the Tr x Tc tile, since
the order of float adds decides the result. In fixed point the accumulators are wide enough that
no partial sum overflows (``fixed_point.acc_bits_needed``), so every order of the adds, and so
every tiling, gives the same integers: a layer is one matrix product per group over the unrolled
windows (in float64 when every partial sum stays below 2**53, where float64 adds integers exactly
in any order), then STORE's requantize (round half up by the shift), the activation (ReLU or
``backend/activation.py``) and saturation.

Pooling and global pooling use the kernels' integer formulas (``fixed_point``); a residual add
shifts its inputs to the finest one's scale, sums and requantizes; a concat rounds each input to
its format. Layers read their inputs by name, so DAGs run as well as chains; inputs go through in
batches within a memory bound (``batching``). The C++ testbench's golden vectors come from here,
and ``fnas-hls csim`` holds the C++ to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from fnas_hls.backend.batching import Progress, evaluate, evaluate_in_batches
from fnas_hls.backend.fixed_point import avg_div, float_reciprocal, requantize, tree_sum
from fnas_hls.backend.float_model import run_float
from fnas_hls.backend.quantize import LayerQuant, QuantPlan
from fnas_hls.model.dataflow import dense_input_maps, hwc_order
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.tiling import Tiling
from fnas_hls.network.ir import (
    Add,
    Concat,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    LayerInfo,
    Network,
    Pool,
    Scale,
)

#: The most negative float32, the start of a float max-pool (the kernels avoid <cmath>'s INFINITY).
FLOAT_LOWEST = np.float32(-3.4028234663852886e38)
#: Integers below this add exactly in float64 in any order.
EXACT_FLOAT64 = 2**53


def _padded(x: np.ndarray, li: LayerInfo, rows: int, cols: int, dt: type) -> np.ndarray:
    """LOAD_IN's zero fill, once for the whole map: (B, groups, N, rows, cols) with the input at its
    padding offset, zeros around it (and the rows and columns past ``rows`` x ``cols`` left out)."""
    g = ConvGeometry.of(li)
    B = x.shape[0]
    layer = li.layer
    if isinstance(layer, Dense):
        x = x.reshape(B, g.N, 1, 1)
        pt = pl = 0
    else:
        pt, pl = layer.padding[0], layer.padding[1]
    H, W = x.shape[2], x.shape[3]
    xp = np.zeros((B, g.groups, g.N, rows, cols), dtype=dt)
    xg = x.reshape(B, g.groups, g.N, H, W)
    hh, ww = max(0, min(H, rows - pt)), max(0, min(W, cols - pl))
    xp[:, :, :, pt : pt + hh, pl : pl + ww] = xg[..., :hh, :ww]
    return xp


def _conv(x: np.ndarray, li: LayerInfo, t: Tiling, lq: LayerQuant) -> np.ndarray:
    if getattr(li.layer, "in_relu", False):  # LOAD_IN's ReLU of every word it reads
        x = np.where(x < 0, x.dtype.type(0), x)
    if lq.in_type.is_float:
        return _conv_float(x, li, t, lq)
    return _conv_fixed(x, li, lq)


def _conv_fixed(x: np.ndarray, li: LayerInfo, lq: LayerQuant) -> np.ndarray:
    """Fixed point: each output is bias + the sum of its window's products, requantized (STORE).
    The accumulator is wide enough for every partial sum (``fixed_point.acc_bits_needed``), so the
    kernel's order of the adds, and so its tiling, cannot change the result: the whole map is one
    matrix product per group (the windows unrolled), in float64 when every partial sum stays below
    2**53, where float64 adds integers exactly in any order."""
    g = ConvGeometry.of(li)
    B = x.shape[0]
    w = np.asarray(lq.weight, dtype=np.int64).reshape(g.groups, g.M, g.N * g.Kh * g.Kw)
    b = np.asarray(lq.bias, dtype=np.int64).reshape(g.groups, 1, g.M)
    worst = np.abs(w).sum(axis=2) * (-lq.in_type.min_int)
    exact = int(worst.max(initial=0)) + int(np.abs(b).max(initial=0)) < EXACT_FLOAT64
    mm = np.float64 if exact else np.int64
    rows, cols = (g.R - 1) * g.Sh + g.Kh, (g.C - 1) * g.Sw + g.Kw
    xp = _padded(np.asarray(x), li, rows, cols, mm)
    rspan, cspan = (g.R - 1) * g.Sh + 1, (g.C - 1) * g.Sw + 1
    win = np.stack(
        [xp[..., kh : kh + rspan : g.Sh, kw : kw + cspan : g.Sw] for kh in range(g.Kh) for kw in range(g.Kw)],
        axis=3,
    )  # (B, G, N, Kh*Kw, R, C)
    del xp
    lhs = win.transpose(1, 0, 4, 5, 2, 3).reshape(g.groups, B * g.R * g.C, -1)
    del win
    acc = np.matmul(lhs, w.transpose(0, 2, 1).astype(mm)).astype(np.int64) + b  # (G, B*R*C, M)
    shift = lq.shift if lq.shifts is None else np.asarray(lq.shifts).reshape(g.groups, 1, g.M)
    y = requantize(acc, shift, li.layer.relu, lq.out_type, lq.act)
    y = y.reshape(g.groups, B, g.R, g.C, g.M).transpose(1, 0, 4, 2, 3)
    return np.ascontiguousarray(y).reshape(B, g.groups * g.M, g.R, g.C)


def _conv_float(x: np.ndarray, li: LayerInfo, t: Tiling, lq: LayerQuant) -> np.ndarray:
    """float32: the processing element's tiled loops in the kernel's order, since the order of
    float adds decides the result."""
    g = ConvGeometry.of(li)
    B = x.shape[0]
    layer = li.layer
    Tm, Tn, Tr, Tc = min(t.Tm, g.M), min(t.Tn, g.N), min(t.Tr, g.R), min(t.Tc, g.C)
    MT, NT, RT, CT = cdiv(g.M, Tm), cdiv(g.N, Tn), cdiv(g.R, Tr), cdiv(g.C, Tc)
    TRin, TCin = (Tr - 1) * g.Sh + g.Kh, (Tc - 1) * g.Sw + g.Kw
    Hp, Wp = (RT * Tr - 1) * g.Sh + g.Kh, (CT * Tc - 1) * g.Sw + g.Kw
    # LOAD_IN's zero fill: padding, edge tiles, channels past N.
    xp = np.zeros((B, g.groups, NT * Tn, Hp, Wp), dtype=np.float32)
    xp[:, :, : g.N] = _padded(np.asarray(x), li, Hp, Wp, np.float32)
    # LOAD_W's zero fill, and the bias ROM padded per group.
    wp = np.zeros((g.groups, MT * Tm, NT * Tn, g.Kh, g.Kw), dtype=np.float32)
    wp[:, : g.M, : g.N] = np.asarray(lq.weight).reshape(g.groups, g.M, g.N, g.Kh, g.Kw)
    bp = np.zeros((g.groups, MT * Tm), dtype=np.float32)
    bp[:, : g.M] = np.asarray(lq.bias).reshape(g.groups, g.M)

    y = np.zeros((B, g.groups, MT * Tm, RT * Tr, CT * Tc), dtype=np.float32)
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
                        for kh in range(g.Kh):  # COMPUTE in the kernel's order: kh, kw, then the Tn tree
                            for kw in range(g.Kw):
                                patch = tile[:, :, kh : kh + rspan : g.Sh, kw : kw + cspan : g.Sw]
                                p = patch[:, None] * wt[None, :, :, kh, kw, None, None]
                                acc += tree_sum(p, axis=2)
                    if lq.act is not None:  # STORE
                        out = lq.act.apply(acc)
                    else:
                        out = np.where(acc < 0, np.float32(0), acc) if layer.relu else acc
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
    else:  # padding taps add zeros; the divisor is the window's size or its real taps (count_pad)
        count = kh * kw if layer.count_pad else layer.counts(li.in_shape)
        if is_float:
            s = np.zeros((B, C, oh, ow), dtype=np.float32)
            for tap in taps:
                s = s + tap
            y = (s * float_reciprocal(count)).astype(np.float32)
        else:
            y = avg_div(np.sum(np.stack(taps), axis=0), count, lq.out_type)
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
        return lq.act.apply(y) if lq.act is not None else _relu(y, layer.relu)
    acc = np.zeros(xs[0].shape, dtype=np.int64)
    for x, a in zip(xs, lq.aligns, strict=True):
        acc = acc + (np.asarray(x, dtype=np.int64) << a)
    return requantize(acc, lq.shift, layer.relu, lq.out_type, lq.act)


def _scale(x: np.ndarray, s: np.ndarray, lq: LayerQuant) -> np.ndarray:
    """SCALE: each word times its channel's value, requantized (round half up by the shift,
    saturate); float32 one multiply."""
    if lq.out_type.is_float:
        return (x * s).astype(np.float32)
    prod = np.asarray(x, dtype=np.int64) * np.asarray(s, dtype=np.int64)  # s (n, C, 1, 1) broadcast
    return requantize(prod, lq.shift, False, lq.out_type)


def _concat(xs: list[np.ndarray], lq: LayerQuant) -> np.ndarray:
    """CONCAT: each input rounded to the output's format (half up; never saturates), stacked."""
    if lq.out_type.is_float:
        return np.concatenate(xs, axis=1)
    return np.concatenate(
        [requantize(x, a, False, lq.out_type) for x, a in zip(xs, lq.aligns, strict=True)], axis=1
    )


def _layer_step(
    net: Network, plan: QuantPlan, tilings: Mapping[str, Tiling], stream_order: bool
) -> Callable[[LayerInfo, Sequence[np.ndarray]], np.ndarray]:
    """One layer of the design on a batch: its stored output from its stored input maps.

    ``stream_order``: a fully connected layer sums its inputs in the order the dataflow style
    streams them (HWC, ``model.dataflow.hwc_order``), not in the IR's CHW order.
    """
    maps = dense_input_maps(net) if stream_order else {}
    quant = {lq.name: lq for lq in plan.layers}

    def step(li: LayerInfo, xs: Sequence[np.ndarray]) -> np.ndarray:
        layer, lq, x = li.layer, quant[li.name], xs[0]
        if isinstance(layer, Add):
            return _add(list(xs), layer, lq)
        if isinstance(layer, Concat):
            return _concat(list(xs), lq)
        if isinstance(layer, Scale):
            return _scale(xs[0], xs[1], lq)
        if isinstance(layer, Dense) and li.name in maps:
            order = hwc_order(maps[li.name])
            xs_ = x.reshape(x.shape[0], -1)[:, order].reshape(x.shape[0], -1, 1, 1)
            return _conv(xs_, li, tilings[li.name], replace(lq, weight=np.asarray(lq.weight)[:, order]))
        if isinstance(layer, (Conv, Dense)):
            return _conv(x, li, tilings[li.name], lq)
        if isinstance(layer, Pool):
            return _pool(x, li, lq)
        if isinstance(layer, GlobalAvgPool):
            return _gap(x, lq)
        if isinstance(layer, Flatten):
            return x.reshape(x.shape[0], -1, 1, 1)
        raise TypeError(f"layer '{li.name}' ({layer.op}) has no reference kernel")

    return step


def run_reference_trace(
    net: Network, plan: QuantPlan, tilings: Mapping[str, Tiling], xq: np.ndarray, stream_order: bool = False
) -> list[np.ndarray]:
    """Every layer's stored output (int64 integers or float32) for stored inputs ``xq`` (n, C, H, W),
    all at once (for inspection; ``run_reference`` keeps only what it needs)."""
    outs: list[np.ndarray] = []
    evaluate(
        net, _stored(plan, xq), _layer_step(net, plan, tilings, stream_order), lambda i, y: outs.append(y)
    )
    return outs


def _stored(plan: QuantPlan, xq: np.ndarray) -> np.ndarray:
    return np.asarray(xq, dtype=np.float32 if plan.input_type.is_float else np.int64)


def run_reference(
    net: Network,
    plan: QuantPlan,
    tilings: Mapping[str, Tiling],
    xq: np.ndarray,
    stream_order: bool = False,
    progress: Progress | None = None,
) -> np.ndarray:
    """The stored outputs (n, outputs) of the design for stored inputs ``xq``, in CHW order; the
    inputs go through in batches that fit the memory budget (``batching``)."""
    step = _layer_step(net, plan, tilings, stream_order)

    def one(batch: np.ndarray) -> np.ndarray:
        y = evaluate(net, batch, step)
        return y.reshape(len(batch), -1)

    return evaluate_in_batches(net, _stored(plan, xq), one, 8, progress, "reference model")


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
