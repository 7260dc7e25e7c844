"""Quantization-aware training: the kernels' fixed-point arithmetic in torch, with gradients.

``FakeQuantNetwork(model, plan)`` runs a ``TorchNetwork``'s own parameters through the number
formats of a ``QuantPlan`` (``backend/quantize.py``) with the rules of ``backend/fixed_point.py``,
step for step as ``backend/reference.py`` computes them, but on values (``q * 2**-frac``) in a
float tensor so that torch can differentiate them:

* the input, each layer's weights (per tensor, or per output channel where the precision says so)
  and biases are rounded half up and saturated to their formats (``DataType.quantize``);
* a conv or fully connected layer multiplies and sums the rounded values; in float64 every partial
  sum is an integer below 2**53 units of its accumulator's scale, so it is exact in any order, and
  the accumulator equals the kernel's;
* STORE rounds the accumulator half up to the output's scale, applies ReLU or the layer's
  activation (``FixedActivation.apply`` itself, on the integers), saturates;
* pooling: max compares values; an average sums the window and divides as ``avg_div`` does.

Gradients pass straight through each rounding (the straight-through estimator), not through a
saturated value, and through an activation other than ReLU as through its float function. In
float64 (``exact=True``, the default) the outputs are the reference model's, bit for bit (a test
holds them to it, and to the C simulation); in float32 they are close, and training is faster.
Float32 designs have nothing to fake: the plan must be fixed point.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fnas_hls.backend.fixed_point import AVG_SHIFT, DataType, avg_multiplier
from fnas_hls.backend.quantize import LayerQuant, QuantPlan, quantize_network
from fnas_hls.network.ir import Conv, Dense, Flatten, GlobalAvgPool, LayerInfo, Pool
from fnas_hls.network.torch_model import TorchNetwork, network_with_weights, param_module


def _straight_through(exact: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """``exact``'s value with ``surrogate``'s gradient."""
    return surrogate + (exact - surrogate).detach()


def _round_half_up(units: torch.Tensor) -> torch.Tensor:
    """``floor(units + 1/2)``, the gradient of the identity."""
    return _straight_through(torch.floor(units + 0.5), units)


def _saturate(q: torch.Tensor, t: DataType) -> torch.Tensor:
    return torch.clamp(q, float(t.min_int), float(t.max_int))


def fake_quantize(x: torch.Tensor, t: DataType, frac: torch.Tensor | int | None = None) -> torch.Tensor:
    """``x`` rounded half up and saturated to ``t`` (``frac`` overrides ``t.frac``: a tensor of fracs
    broadcast against ``x``, one per output channel), as a value."""
    f = t.frac if frac is None else frac
    scale = torch.pow(2.0, torch.as_tensor(f, dtype=x.dtype)) if torch.is_tensor(f) else math.ldexp(1.0, f)
    return _saturate(_round_half_up(x * scale), t) / scale


class FakeQuantNetwork(nn.Module):
    """``model`` in ``plan``'s formats (see the module docstring); its outputs are values of the
    plan's output format. ``exact``: compute in float64, bit for bit the reference model."""

    def __init__(self, model: TorchNetwork, plan: QuantPlan, exact: bool = True) -> None:
        super().__init__()
        if plan.input_type.is_float:
            raise ValueError("quantization-aware training needs a fixed-point plan, not float32")
        names = [lq.name for lq in plan.layers]
        if names != model.names:
            raise ValueError(f"the plan's layers {names} are not the network's {model.names}")
        self.model = model
        self.plan = plan
        self.dtype = torch.float64 if exact else torch.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = fake_quantize(x.to(self.dtype), self.plan.input_type)
        for step, li, lq in zip(self.model.steps, self.model.network.info, self.plan.layers, strict=True):
            x = self._layer(step, li, lq, x)
        return x.flatten(1)

    def _layer(self, step: nn.Module, li: LayerInfo, lq: LayerQuant, x: torch.Tensor) -> torch.Tensor:
        layer = li.layer
        if isinstance(layer, (Conv, Dense)):
            return self._weighted(step, li, lq, x)
        if isinstance(layer, Pool):
            return self._pool(step, li, lq, x)
        if isinstance(layer, GlobalAvgPool):
            n = li.in_shape.h * li.in_shape.w
            total = x.sum(dim=(2, 3), keepdim=True)
            y = _average(total, n, lq.out_type)
            return y if step.keepdim else y.flatten(1)
        if isinstance(layer, Flatten):
            return x.flatten(1)
        raise TypeError(f"layer '{li.name}' ({layer.op}) has no fake-quantized kernel")

    def _weighted(self, step: nn.Module, li: LayerInfo, lq: LayerQuant, x: torch.Tensor) -> torch.Tensor:
        layer = li.layer
        mod = param_module(step)
        w = mod.weight.to(self.dtype)
        if lq.w_fracs is not None:  # one format per output channel
            wf = torch.tensor(lq.w_fracs, dtype=self.dtype).view(-1, *([1] * (w.dim() - 1)))
            acc_fracs = torch.tensor([lq.in_type.frac + f for f in lq.w_fracs], dtype=self.dtype)
            wq = fake_quantize(w, lq.w_type, wf)
        else:
            acc_fracs = torch.full((layer.out,), float(lq.bias_type.frac), dtype=self.dtype)
            wq = fake_quantize(w, lq.w_type)
        if mod.bias is not None:
            bq = fake_quantize(mod.bias.to(self.dtype), lq.bias_type, acc_fracs)
        else:
            bq = None
        if isinstance(layer, Conv):
            if layer.in_relu:
                x = F.relu(x)
            if step.pad is not None:
                x = F.pad(x, step.pad)
            c = step.conv
            acc = F.conv2d(x, wq, bq, c.stride, c.padding, c.dilation, c.groups)
        else:
            acc = F.linear(x.flatten(1) if x.dim() != 2 else x, wq, bq)
        return _store(acc, lq, layer.relu, layer.act)

    def _pool(self, step: nn.Module, li: LayerInfo, lq: LayerQuant, x: torch.Tensor) -> torch.Tensor:
        layer = li.layer
        if layer.kind == "max":
            y = step(x)  # compares values; the ReLU after, as the step does
            return y
        if step.explicit is not None:
            x = F.pad(x, step.explicit)
        total = F.avg_pool2d(x, step.kernel, step.stride, step.padding, divisor_override=1)
        count = np.prod(layer.kernel) if layer.count_pad else layer.counts(li.in_shape)
        y = _average(total, count, lq.out_type)
        return F.relu(y) if layer.relu else y


def fake_quantized(
    model: TorchNetwork, precision: str, calibration: np.ndarray, exact: bool = True
) -> FakeQuantNetwork:
    """``model`` in ``precision`` with the number formats that its current weights and
    ``calibration`` give (``quantize_network``: those of the design ``emit`` would write)."""
    plan = quantize_network(network_with_weights(model), precision, calibration)
    return FakeQuantNetwork(model, plan, exact)


def _average(total: torch.Tensor, count, out: DataType) -> torch.Tensor:  # noqa: ANN001 - int or array
    """``avg_div``: the window's sum (a value) times the integer reciprocal of ``count``, rounded
    half up at AVG_SHIFT bits and saturated, as a value of ``out``; the gradient of ``total / count``."""
    scale = math.ldexp(1.0, out.frac)
    mult = torch.as_tensor(np.asarray(avg_multiplier(count), dtype=np.float64), dtype=total.dtype)
    units = total.detach() * scale * mult
    q = torch.floor((units + math.ldexp(1.0, AVG_SHIFT - 1)) / math.ldexp(1.0, AVG_SHIFT))
    cnt = torch.as_tensor(np.asarray(count, dtype=np.float64), dtype=total.dtype)
    exact = _saturate(q, out) / scale
    return _straight_through(exact, total / cnt)


def _store(acc: torch.Tensor, lq: LayerQuant, relu: bool, act) -> torch.Tensor:  # noqa: ANN001
    """STORE: the accumulator rounded half up to the output's scale, the activation, saturation."""
    out = lq.out_type
    scale = math.ldexp(1.0, out.frac)
    v = _round_half_up(acc * scale)
    if lq.act is not None:
        exact = torch.from_numpy(lq.act.apply(v.detach().cpu().numpy().astype(np.int64)).astype(np.float64))
        surrogate = act.torch(v / scale) * scale
        v = _straight_through(exact.to(v.dtype).to(v.device), surrogate)
    elif relu:
        v = F.relu(v)
    return _saturate(v, out) / scale
