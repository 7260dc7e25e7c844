"""Torch models to ONNX for the import tests: export with either exporter, and batch norms that are
not the identity (so that folding them is tested)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


def export_onnx(
    model: nn.Module, shape: tuple[int, ...], path: Path | str, dynamo: bool = False, **kw
) -> Path:
    """``model`` (in eval mode) on a zero input of ``shape``, through the legacy exporter or
    ``dynamo``'s, its warnings silenced; ``kw`` goes to ``torch.onnx.export``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(*shape),), str(path), dynamo=dynamo, **kw)
    return Path(path)


def perturb_batch_norms(
    model: nn.Module,
    mean: float,
    var: tuple[float, float] = (0.5, 1.5),
    weight: tuple[float, float] | None = None,
    bias: float | None = None,
) -> nn.Module:
    """Every BatchNorm2d of ``model`` drawn away from the identity, in place, from torch's generator
    (in this order: weight from ``weight``, bias from +-``bias``, running mean from +-``mean``,
    running variance from ``var``; those left None keep their values)."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                if weight is not None:
                    mod.weight.uniform_(*weight)
                if bias is not None:
                    mod.bias.uniform_(-bias, bias)
                mod.running_mean.uniform_(-mean, mean)
                mod.running_var.uniform_(*var)
    return model
