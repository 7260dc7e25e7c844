"""Output activations other than ReLU: what a layer applies to its output before it stores it.

A conv, fully connected or add layer has ``relu`` (the common case, as cheap as a compare) or one
``Activation`` in its ``act`` field, fused into its output stage the same way. The kinds, as ONNX
and torch define them:

==================  =============================================  ===============================
kind                y(x)                                           ONNX / torch
==================  =============================================  ===============================
``clip``            min(max(x, lo), hi)                            Clip / ReLU6, Hardtanh
``leaky_relu``      x if x >= 0 else alpha * x                     LeakyRelu / LeakyReLU
``hard_sigmoid``    min(max(alpha * x + beta, 0), 1)               HardSigmoid / Hardsigmoid (1/6, 1/2)
``hard_swish``      x * hard_sigmoid(x), alpha 1/6, beta 1/2       HardSwish / Hardswish
``sigmoid``         1 / (1 + exp(-x))                              Sigmoid
``tanh``            tanh(x)                                        Tanh
``silu``            x * sigmoid(x)                                 Sigmoid then Mul / SiLU
==================  =============================================  ===============================

How the accelerator computes each one in fixed point and float32 is ``backend/activation.py``;
this module holds what they are (the float function the design is measured against).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fnas_hls.errors import FnasError

KINDS = ("clip", "leaky_relu", "hard_sigmoid", "hard_swish", "sigmoid", "tanh", "silu")
#: The names a YAML architecture may give (``act: relu6``), with what they stand for.
NAMED = {
    "relu6": ("clip", {"lo": 0.0, "hi": 6.0}),
    "hard_sigmoid": ("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    "hard_swish": ("hard_swish", {}),
    "sigmoid": ("sigmoid", {}),
    "tanh": ("tanh", {}),
    "silu": ("silu", {}),
}


@dataclass(frozen=True)
class Activation:
    """One output activation: ``kind`` (``KINDS``) with its constants."""

    kind: str
    lo: float = 0.0  # clip
    hi: float = 0.0  # clip
    alpha: float = 0.0  # leaky_relu's slope; hard_sigmoid's slope
    beta: float = 0.0  # hard_sigmoid's offset

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FnasError(f"unknown activation '{self.kind}'; accepted: relu, {', '.join(KINDS)}")
        if self.kind == "clip" and not (
            math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi
        ):
            raise FnasError(f"clip({self.lo:g}, {self.hi:g}): the bounds must be finite with lo < hi")
        if self.kind in ("leaky_relu", "hard_sigmoid") and not math.isfinite(self.alpha):
            raise FnasError(f"{self.kind}: alpha {self.alpha} is not finite")

    def __str__(self) -> str:
        if self.kind == "clip":
            return f"clip({self.lo:g}, {self.hi:g})"
        if self.kind == "leaky_relu":
            return f"leaky_relu({self.alpha:g})"
        if self.kind == "hard_sigmoid":
            return f"hard_sigmoid({self.alpha:g}, {self.beta:g})"
        return self.kind

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The activation in float64, as ONNX defines it."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "clip":
            return np.minimum(np.maximum(x, self.lo), self.hi)
        if self.kind == "leaky_relu":
            return np.where(x >= 0, x, self.alpha * x)
        if self.kind == "hard_sigmoid":
            return np.clip(self.alpha * x + self.beta, 0.0, 1.0)
        if self.kind == "hard_swish":
            return x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)
        sig = 0.5 * (1.0 + np.tanh(0.5 * x))  # 1 / (1 + exp(-x)) without overflow
        if self.kind == "sigmoid":
            return sig
        if self.kind == "tanh":
            return np.tanh(x)
        return x * sig  # silu

    def torch(self, x):  # noqa: ANN001, ANN201 - torch is imported only where it is used
        """The activation on a torch tensor (the float model and the trained network)."""
        import torch
        import torch.nn.functional as F

        if self.kind == "clip":
            return torch.clamp(x, self.lo, self.hi)
        if self.kind == "leaky_relu":
            return F.leaky_relu(x, self.alpha)
        if self.kind == "hard_sigmoid":
            return torch.clamp(self.alpha * x + self.beta, 0.0, 1.0)
        if self.kind == "hard_swish":
            return F.hardswish(x)
        if self.kind == "sigmoid":
            return torch.sigmoid(x)
        if self.kind == "tanh":
            return torch.tanh(x)
        return F.silu(x)

    def to_dict(self) -> dict[str, float] | str:
        """The YAML form: a name, or a mapping of the kind's constants."""
        for name, (kind, consts) in NAMED.items():
            if kind == self.kind and all(math.isclose(getattr(self, k), v) for k, v in consts.items()):
                return name
        if self.kind == "clip":
            return {"clip": [self.lo, self.hi]}
        if self.kind == "leaky_relu":
            return {"leaky_relu": self.alpha}
        return {"hard_sigmoid": [self.alpha, self.beta]}


def parse_activation(value: object, where: str) -> Activation:
    """An ``act`` field of a YAML architecture: a name (``relu6``, ``hard_swish``, ``sigmoid``,
    ``tanh``, ``silu``, ``hard_sigmoid``) or ``{clip: [lo, hi]}``, ``{leaky_relu: alpha}``,
    ``{hard_sigmoid: [alpha, beta]}``; FnasError naming ``where`` otherwise."""
    accepted = (
        f"{', '.join(NAMED)}, {{clip: [lo, hi]}}, {{leaky_relu: alpha}}, {{hard_sigmoid: [alpha, beta]}}"
    )
    if isinstance(value, str) and value in NAMED:
        kind, consts = NAMED[value]
        return Activation(kind, **consts)
    if isinstance(value, dict):
        items = {k: v for k, v in value.items() if k != "__line__"}
        if len(items) == 1:
            ((kind, arg),) = items.items()
            nums = arg if isinstance(arg, list) else [arg]
            if all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in nums):
                try:
                    if kind == "clip" and len(nums) == 2:
                        return Activation("clip", lo=float(nums[0]), hi=float(nums[1]))
                    if kind == "leaky_relu" and len(nums) == 1:
                        return Activation("leaky_relu", alpha=float(nums[0]))
                    if kind == "hard_sigmoid" and len(nums) == 2:
                        return Activation("hard_sigmoid", alpha=float(nums[0]), beta=float(nums[1]))
                except FnasError as exc:
                    raise FnasError(f"{where}: field 'act': {exc}") from None
    raise FnasError(f"{where}: field 'act' is {value!r}; accepted: {accepted}")
