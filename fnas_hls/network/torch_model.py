"""The network IR as a torch module, and back: the trained weights into the IR.

``TorchNetwork(net)`` runs exactly what the IR says (asymmetric padding as an explicit pad, a
global average pooling before a dense layer as a mean over height and width, a dense layer on a
feature map flattens it first), so that its ONNX export (``export_onnx``) reads back through
``fnas_hls.network.onnx_frontend.load_onnx`` into an equal network with the same layer names.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from fnas_hls.network.ir import Conv, Dense, Flatten, GlobalAvgPool, HostOp, Layer, Network, Pool

#: The ONNX operator each IR layer exports as (its "main" node, which gets the layer's name).
_MAIN_OPS = {
    "conv": ("Conv",),
    "maxpool": ("MaxPool",),
    "avgpool": ("AveragePool",),
    "gap": ("ReduceMean", "GlobalAveragePool"),
    "flatten": ("Flatten", "Reshape"),
    "fc": ("Gemm", "MatMul"),
}


def _symmetric(p: tuple[int, int, int, int]) -> bool:
    return p[0] == p[2] and p[1] == p[3]


class _ConvStep(nn.Module):
    def __init__(self, layer: Conv, in_channels: int) -> None:
        super().__init__()
        pt, pl, pb, pr = layer.padding
        self.pad = None if _symmetric(layer.padding) else (pl, pr, pt, pb)
        self.conv = nn.Conv2d(
            in_channels,
            layer.out,
            layer.kernel,
            stride=layer.stride,
            padding=(pt, pl) if self.pad is None else 0,
            groups=layer.groups,
            bias=layer.bias,
        )
        self.relu = layer.relu
        self.act = layer.act
        self.in_relu = layer.in_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_relu:
            x = F.relu(x)
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = self.conv(x)
        if self.act is not None:
            return self.act.torch(x)
        return F.relu(x) if self.relu else x


class _PoolStep(nn.Module):
    def __init__(self, layer: Pool) -> None:
        super().__init__()
        self.kind = layer.kind
        self.kernel, self.stride = layer.kernel, layer.stride
        pt, pl, pb, pr = layer.padding
        self.explicit = None
        self.padding = (0, 0)
        if any(layer.padding):
            half = pt <= self.kernel[0] // 2 and pl <= self.kernel[1] // 2
            if _symmetric(layer.padding) and half:
                self.padding = (pt, pl)
            else:
                self.explicit = (pl, pr, pt, pb)
        self.count_pad = layer.count_pad
        if not layer.count_pad and self.explicit is not None:
            raise ValueError(
                f"layer '{layer.name}': torch leaves out only symmetric padding of up to half the kernel"
            )
        self.relu = layer.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            if self.explicit is not None:
                x = F.pad(x, self.explicit, value=float("-inf"))
            x = F.max_pool2d(x, self.kernel, self.stride, self.padding)
        else:
            if self.explicit is not None:
                x = F.pad(x, self.explicit)
            x = F.avg_pool2d(x, self.kernel, self.stride, self.padding, count_include_pad=self.count_pad)
        return F.relu(x) if self.relu else x


class _GapStep(nn.Module):
    def __init__(self, keepdim: bool) -> None:
        super().__init__()
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=self.keepdim)


class _FlattenStep(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class _DenseStep(nn.Module):
    def __init__(self, layer: Dense, in_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, layer.out, bias=layer.bias)
        self.relu = layer.relu
        self.act = layer.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            x = x.flatten(1)
        x = self.fc(x)
        if self.act is not None:
            return self.act.torch(x)
        return F.relu(x) if self.relu else x


class TorchNetwork(nn.Module):
    """A chain network of the IR as a torch module (inputs ``(N, C, H, W)``, logits out)."""

    def __init__(self, net: Network) -> None:
        super().__init__()
        if not net.is_chain or any(isinstance(li.layer, HostOp) for li in net.info):
            raise ValueError(f"network '{net.name}' is not a chain of FPGA layers; torch needs one")
        self.network = net
        self.names = [li.name for li in net.info]
        steps: list[nn.Module] = []
        layers = [li.layer for li in net.info]
        for i, li in enumerate(net.info):
            layer = li.layer
            if isinstance(layer, Conv):
                steps.append(_ConvStep(layer, li.in_shape.c))
            elif isinstance(layer, Pool):
                steps.append(_PoolStep(layer))
            elif isinstance(layer, GlobalAvgPool):
                following = layers[i + 1] if i + 1 < len(layers) else None
                steps.append(_GapStep(keepdim=not (following is None or isinstance(following, Dense))))
            elif isinstance(layer, Flatten):
                steps.append(_FlattenStep())
            elif isinstance(layer, Dense):
                steps.append(_DenseStep(layer, li.in_shape.size))
            else:  # pragma: no cover - HostOp excluded above
                raise TypeError(type(layer))
        self.steps = nn.ModuleList(steps)
        if net.has_weights:
            load_ir_weights(self, net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x.flatten(1)


def param_module(step: nn.Module) -> nn.Conv2d | nn.Linear | None:
    """The conv or linear module that holds a step's parameters (None for a step without any)."""
    if isinstance(step, _ConvStep):
        return step.conv
    if isinstance(step, _DenseStep):
        return step.fc
    return None


def load_ir_weights(model: TorchNetwork, net: Network) -> None:
    """Copy the IR layers' ``weight`` and ``bias_value`` arrays into ``model``."""
    with torch.no_grad():
        for step, li in zip(model.steps, net.info, strict=True):
            mod = param_module(step)
            if mod is None:
                continue
            layer = li.layer
            mod.weight.copy_(torch.from_numpy(np.asarray(layer.weight, dtype=np.float32)).view_as(mod.weight))
            if mod.bias is not None and layer.bias_value is not None:
                mod.bias.copy_(torch.from_numpy(np.asarray(layer.bias_value, dtype=np.float32)))


def network_with_weights(model: TorchNetwork) -> Network:
    """The model's network with its current weights as float32 numpy arrays in the IR layers."""
    layers: list[Layer] = []
    for step, layer in zip(model.steps, model.network.layers, strict=True):
        mod = param_module(step)
        if mod is not None:
            w = mod.weight.detach().cpu().numpy().astype(np.float32).copy()
            b = None if mod.bias is None else mod.bias.detach().cpu().numpy().astype(np.float32).copy()
            layer = replace(layer, weight=w, bias_value=b)
        layers.append(layer)
    return Network(model.network.input, tuple(layers), name=model.network.name)


def export_onnx(model: TorchNetwork, path: str | Path, opset: int = 17) -> onnx.ModelProto:
    """Export ``model`` (batch size 1, dynamic batch axis) to ``path`` with the IR's layer names.

    The node that carries each layer (Conv, MaxPool, Gemm, ...) is renamed to the layer's name and the
    graph to the network's, so that ``load_onnx`` gives back the same names.
    """
    path = Path(path)
    net = model.network
    dummy = torch.zeros(1, net.input.c, net.input.h, net.input.w)
    was_training = model.training
    model.eval()
    tmp = path.with_name(f".{path.name}.export.tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's notes on constant folding
            torch.onnx.export(
                model,
                (dummy,),
                str(tmp),
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        proto = onnx.load(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)
        model.train(was_training)
    _rename_nodes(proto, net)
    onnx.save(proto, str(path))
    return proto


def _rename_nodes(proto: onnx.ModelProto, net: Network) -> None:
    layer_names = [li.name for li in net.info]
    ops = [_MAIN_OPS[li.layer.op] for li in net.info]
    taken = set(layer_names)
    k = 0
    for i, node in enumerate(proto.graph.node):
        if k < len(ops) and node.op_type in ops[k]:
            node.name = layer_names[k]
            k += 1
            continue
        base = f"{node.op_type.lower()}_{i}"
        name = base
        while name in taken:
            name += "_"
        taken.add(name)
        node.name = name
    if k != len(ops):
        raise RuntimeError(f"ONNX export of '{net.name}': matched {k} of {len(ops)} layers to nodes")
    proto.graph.name = net.name
