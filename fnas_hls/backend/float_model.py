"""The network in float, with ``torch.nn.functional``: what the quantized design is measured against.

``run_float(net, x)`` gives the output, ``layer_ranges(net, x)`` every layer's largest magnitude
(the quantizer's calibration); both run in batches within a memory bound (``batching``). Conv,
pool, gap, flatten, fully connected, residual add and concat layers with their weights run here
(what the HLS back end renders), in any DAG.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from fnas_hls.backend.batching import Progress, evaluate, evaluate_in_batches
from fnas_hls.errors import FnasError
from fnas_hls.network.ir import (
    MERGE_OPS,
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
    Shape,
)


def _as_batch(net: Network, x: np.ndarray) -> torch.Tensor:
    a = np.asarray(x, dtype=np.float32)
    shape = tuple(net.input.as_list())
    if a.shape == shape:
        a = a[None]
    elif a.ndim == 3 and shape[1] == 1 and a.shape[1:] == (shape[0], shape[2]):
        a = a[:, :, None, :]  # 1-D signals (n, C, L): the IR's one-row maps
    if a.ndim != 4 or a.shape[1:] != shape:
        raise FnasError(
            f"network '{net.name}': inputs have shape {list(a.shape)}; "
            f"expected (n, {', '.join(map(str, shape))})"
        )
    return torch.from_numpy(np.ascontiguousarray(a))


def run_merge(layer: Add | Concat | Scale, xs: list[torch.Tensor]) -> torch.Tensor:
    """A residual sum (in ``inputs`` order), a channel concatenation or a map scaled per channel,
    in float32."""
    if isinstance(layer, Concat):
        return torch.cat(xs, dim=1)
    if isinstance(layer, Scale):
        return xs[0] * xs[1]  # the (n, C, 1, 1) vector broadcast over height and width
    y = xs[0]
    for x in xs[1:]:
        y = y + x
    return _activate(layer, y)


def _activate(layer: object, y: torch.Tensor) -> torch.Tensor:
    """A layer's output activation: its ReLU or its ``act``, if any."""
    act = getattr(layer, "act", None)
    if act is not None:
        return act.torch(y)
    return F.relu(y) if getattr(layer, "relu", False) else y


def run_layer(layer, x: torch.Tensor) -> torch.Tensor:
    """One IR layer that reads one map (not a host operator) in float32 on ``x`` (n, C, H, W)."""
    if isinstance(layer, Conv):
        if layer.in_relu:  # ReLU-Conv: the ReLU on the conv's input read
            x = F.relu(x)
        pt, pl, pb, pr = layer.padding
        w = torch.from_numpy(np.asarray(layer.weight, dtype=np.float32))
        b = None if layer.bias_value is None else torch.from_numpy(np.asarray(layer.bias_value, np.float32))
        y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=layer.stride, groups=layer.groups)
    elif isinstance(layer, Dense):
        w = torch.from_numpy(np.asarray(layer.weight, dtype=np.float32))
        b = None if layer.bias_value is None else torch.from_numpy(np.asarray(layer.bias_value, np.float32))
        y = F.linear(x.reshape(x.shape[0], -1), w, b).reshape(x.shape[0], -1, 1, 1)
    elif isinstance(layer, Pool):
        pt, pl, pb, pr = layer.padding
        if layer.kind == "max":
            y = F.max_pool2d(F.pad(x, (pl, pr, pt, pb), value=float("-inf")), layer.kernel, layer.stride)
        else:
            y = F.avg_pool2d(F.pad(x, (pl, pr, pt, pb)), layer.kernel, layer.stride)
            if not layer.count_pad:  # the window's mean over its real taps only
                shape = Shape(x.shape[1], x.shape[2], x.shape[3])
                taps = layer.kernel[0] * layer.kernel[1]
                y = y * (taps / torch.from_numpy(layer.counts(shape).astype(np.float32)))
    elif isinstance(layer, GlobalAvgPool):
        y = x.mean(dim=(2, 3), keepdim=True)
    elif isinstance(layer, Flatten):
        y = x.reshape(x.shape[0], -1, 1, 1)
    else:
        raise FnasError(
            f"layer '{layer.name}' ({layer.op}) has no float model; the HLS back end cannot run it"
        )
    return _activate(layer, y)


def _check_weights(net: Network) -> None:
    for li in net.info:
        if isinstance(li.layer, (Conv, Dense)) and li.layer.weight is None:
            raise FnasError(
                f"network '{net.name}' has no weights for layer '{li.name}'; emit needs a trained model "
                "(ONNX with initializers)"
            )


def _step(li: LayerInfo, xs: Sequence[torch.Tensor]) -> torch.Tensor:
    if isinstance(li.layer, MERGE_OPS):
        return run_merge(li.layer, list(xs))
    return run_layer(li.layer, xs[0])


def run_float(net: Network, x: np.ndarray, progress: Progress | None = None) -> np.ndarray:
    """The network's float32 output for inputs ``x`` (n, C, H, W), flattened to (n, outputs); the
    inputs go through in batches that fit the memory budget (``batching``)."""
    _check_weights(net)
    a = _as_batch(net, x).numpy()

    def one(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = evaluate(net, torch.from_numpy(batch), _step)
        return y.numpy().reshape(len(batch), -1)

    return evaluate_in_batches(net, a, one, 4, progress, "float model")


def layer_ranges(net: Network, x: np.ndarray, progress: Progress | None = None) -> list[float]:
    """The largest magnitude of every layer's float output over the inputs ``x`` (the quantizer's
    calibration), in layer order; batched like ``run_float``."""
    _check_weights(net)
    a = _as_batch(net, x).numpy()
    ranges = [0.0] * len(net.info)

    def seen(i: int, y: torch.Tensor) -> None:
        if y.numel():  # np.max keeps a NaN, as a whole-batch maximum would
            ranges[i] = float(np.max([ranges[i], float(y.abs().max())]))

    def one(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            evaluate(net, torch.from_numpy(batch), _step, seen)
        return np.zeros((len(batch), 0))

    evaluate_in_batches(net, a, one, 4, progress, "calibration")
    return ranges


def with_random_weights(net: Network, seed: int = 0) -> Network:
    """``net`` with He-initialised weights and small random biases (for tests and benchmarks)."""
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    layers = []
    for li in net.info:
        layer = li.layer
        if isinstance(layer, Conv):
            n_in = li.in_shape.c // layer.groups
            fan = n_in * layer.kernel[0] * layer.kernel[1]
            w = rng.standard_normal((layer.out, n_in, *layer.kernel)) * np.sqrt(2.0 / fan)
        elif isinstance(layer, Dense):
            w = rng.standard_normal((layer.out, li.in_shape.size)) * np.sqrt(2.0 / li.in_shape.size)
        else:
            layers.append(layer)
            continue
        b = (rng.standard_normal(layer.out) * 0.1).astype(np.float32) if layer.bias else None
        layers.append(replace(layer, weight=w.astype(np.float32), bias_value=b))
    return Network(net.input, tuple(layers), net.name)
