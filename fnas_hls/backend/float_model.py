"""The network in float, with ``torch.nn.functional``: what the quantized design is measured against.

``run_float(net, x)`` gives the output, ``run_float_trace(net, x)`` every layer's output (the
quantizer reads the activation ranges from it). Conv, pool, gap, flatten, fully connected, residual
add and concat layers with their weights run here (what the HLS back end renders), in any DAG.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fnas_hls.errors import FnasError
from fnas_hls.network.ir import INPUT, Add, Concat, Conv, Dense, Flatten, GlobalAvgPool, Network, Pool


def _as_batch(net: Network, x: np.ndarray) -> torch.Tensor:
    a = np.asarray(x, dtype=np.float32)
    shape = tuple(net.input.as_list())
    if a.shape == shape:
        a = a[None]
    if a.ndim != 4 or a.shape[1:] != shape:
        raise FnasError(
            f"network '{net.name}': inputs have shape {list(a.shape)}; "
            f"expected (n, {', '.join(map(str, shape))})"
        )
    return torch.from_numpy(np.ascontiguousarray(a))


def run_merge(layer: Add | Concat, xs: list[torch.Tensor]) -> torch.Tensor:
    """A residual sum (in ``inputs`` order) or a channel concatenation, in float32."""
    if isinstance(layer, Concat):
        return torch.cat(xs, dim=1)
    y = xs[0]
    for x in xs[1:]:
        y = y + x
    return F.relu(y) if layer.relu else y


def run_layer(layer, x: torch.Tensor) -> torch.Tensor:
    """One IR layer that reads one map (not a host operator) in float32 on ``x`` (n, C, H, W)."""
    if isinstance(layer, Conv):
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
    elif isinstance(layer, GlobalAvgPool):
        y = x.mean(dim=(2, 3), keepdim=True)
    elif isinstance(layer, Flatten):
        y = x.reshape(x.shape[0], -1, 1, 1)
    else:
        raise FnasError(
            f"layer '{layer.name}' ({layer.op}) has no float model; the HLS back end cannot run it"
        )
    if getattr(layer, "relu", False):
        y = F.relu(y)
    return y


def run_float_trace(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's float32 output, (n, C, H, W) each (a flat vector is (n, features, 1, 1))."""
    for li in net.info:
        if isinstance(li.layer, (Conv, Dense)) and li.layer.weight is None:
            raise FnasError(
                f"network '{net.name}' has no weights for layer '{li.name}'; emit needs a trained model "
                "(ONNX with initializers)"
            )
    outs = []
    with torch.no_grad():
        maps = {INPUT: _as_batch(net, x)}
        for li in net.info:
            if isinstance(li.layer, (Add, Concat)):
                t = run_merge(li.layer, [maps[n] for n in li.sources])
            else:
                t = run_layer(li.layer, maps[li.sources[0]])
            maps[li.name] = t
            outs.append(t.numpy().copy())
    return outs


def run_float(net: Network, x: np.ndarray) -> np.ndarray:
    """The network's float32 output for inputs ``x`` (n, C, H, W), flattened to (n, outputs)."""
    y = run_float_trace(net, x)[-1]
    return y.reshape(y.shape[0], -1)


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
