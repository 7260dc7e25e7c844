"""Train one child network (torch, on the CPU or a CUDA device) and score it by validation accuracy.

The best validation accuracy over the epochs is the child's accuracy and its weights are the ones
kept (as the FNAS paper's code does). Training is deterministic given the seed on the CPU: the
weights' initialisation, the training subset and the batch order come from it (drawn on the CPU
whatever the device), and the global torch RNG is left as it was. On CUDA the same seed gives the
same initialisation and batch order; cuDNN's kernels may still round differently.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fnas_hls.errors import FnasError
from fnas_hls.network.ir import Network
from fnas_hls.network.torch_model import TorchNetwork
from fnas_hls.precision import get_precision
from fnas_hls.search.datasets import Dataset, Split, calibration_images
from fnas_hls.search.settings import TrainSettings


class ChildFailed(Exception):
    """Training a child went wrong in a way that says something about the child (a NaN loss)."""


@dataclass(frozen=True)
class TrainResult:
    accuracy: float  # best validation accuracy
    best_epoch: int
    epochs: int  # epochs run
    seconds: float
    state: dict[str, torch.Tensor]  # the TorchNetwork's weights at the best epoch
    train_loss: float


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> str:
    """``auto``: ``cuda`` when torch sees a CUDA device, else ``cpu``; ``cuda`` without one: FnasError."""
    if device not in DEVICES:
        raise FnasError(f"--device {device}: accepted: {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise FnasError(
            f"--device cuda: torch {torch.__version__} ({build}) sees no CUDA device on this machine; "
            "use --device cpu (or auto)"
        )
    return device


def _tensors(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(split.x)), torch.from_numpy(np.ascontiguousarray(split.y))


@torch.no_grad()
def accuracy(model: torch.nn.Module, split: Split, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on ``split`` (on the device the model's parameters are on)."""
    model.eval()
    device = next(model.parameters()).device
    x, y = _tensors(split)
    correct = 0
    for i in range(0, len(y), batch_size):
        logits = model(x[i : i + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == y[i : i + batch_size]).sum())
    return correct / max(len(y), 1)


def design_accuracy(net: Network, state: dict[str, torch.Tensor], data: Dataset, precision: str) -> float:
    """Validation accuracy of ``net`` with weights ``state`` as a design in ``precision`` computes it:
    the formats chosen from ``datasets.calibration_images`` (as ``emit`` chooses them), the outputs
    the reference model's bit for bit (``backend.fake_quant``); float32: the float model's."""
    from fnas_hls.backend.fake_quant import fake_quantized

    model = TorchNetwork(net)
    model.load_state_dict(state)
    if get_precision(precision).is_float:
        return accuracy(model, data.val)
    return accuracy(fake_quantized(model, precision, calibration_images(data)), data.val)


def seeded_model(net: Network, seed: int, device: str) -> tuple[TorchNetwork, torch.Generator]:
    """``net``'s torch model initialised from ``seed`` (the global RNG left as it was), on ``device``,
    and the generator of its batch order, seeded the same."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TorchNetwork(net)
    return model.to(device), torch.Generator().manual_seed(seed)


def make_optimizer(
    model: torch.nn.Module, optimizer: str, lr: float, weight_decay: float, momentum: float
) -> torch.optim.Optimizer:
    """Adam, or SGD with ``momentum``, over ``model``'s parameters."""
    if optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


#: Training-time augmentation (``settings.AUGMENTS``): none; ``shift``: each image moved by up to
#: ``SHIFT`` pixels each way (zeros fill in); ``shift-flip``: and mirrored left to right with
#: probability 1/2 (for images with no left and right, such as clothes; not for digits).
SHIFT = 2


def augmented(x: torch.Tensor, augment: str, gen: torch.Generator) -> torch.Tensor:
    """``x`` (N, C, H, W) as ``augment`` (``settings.AUGMENTS``) says, drawn from ``gen`` (CPU) so that
    a seeded run repeats."""
    if augment == "none":
        return x
    n, _, h, w = x.shape
    s = SHIFT
    moves = torch.randint(0, 2 * s + 1, (n, 2), generator=gen)
    flips = (
        torch.rand(n, generator=gen) < 0.5 if augment == "shift-flip" else torch.zeros(n, dtype=torch.bool)
    )
    padded = F.pad(x, (s, s, s, s))
    out = torch.empty_like(x)
    for dy, dx in torch.unique(moves, dim=0).tolist():  # one slice of the padded batch per move
        rows = ((moves[:, 0] == dy) & (moves[:, 1] == dx)).nonzero().flatten().to(x.device)
        out[rows] = padded[rows, :, dy : dy + h, dx : dx + w]
    if flips.any():
        f = flips.nonzero().flatten().to(x.device)
        out[f] = out[f].flip(-1)
    return out


def train_epoch(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    opt: torch.optim.Optimizer,
    batch_size: int,
    gen: torch.Generator,
    where: str,
    augment: str = "none",
) -> float:
    """One epoch over ``x``, ``y`` (on the model's device) in the order ``gen`` draws; the mean loss.
    A loss that is not finite fails the child (``where`` says when). ``augment`` (``AUGMENTS``): each
    batch's images shifted and flipped as ``augmented`` draws them from ``gen``."""
    model.train()
    device = x.device
    order = torch.randperm(len(y), generator=gen)
    total, count = 0.0, 0
    for i in range(0, len(y), batch_size):
        idx = order[i : i + batch_size].to(device)
        loss = F.cross_entropy(model(augmented(x[idx], augment, gen)), y[idx])
        if not torch.isfinite(loss):
            raise ChildFailed(f"loss became {float(loss.detach())} in {where}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(idx)
        count += len(idx)
    return total / max(count, 1)


def train_child(
    net: Network, data: Dataset, settings: TrainSettings, seed: int, device: str = "cpu"
) -> TrainResult:
    """Train ``net`` on ``data.train`` on ``device`` (``cpu`` or ``cuda``); its accuracy is the best
    on ``data.val`` over the epochs, and its weights come back on the CPU."""
    start = time.perf_counter()
    model, gen = seeded_model(net, seed, device)
    x, y = _tensors(data.train)
    if settings.train_subset is not None and settings.train_subset < len(y):
        pick = torch.randperm(len(y), generator=gen)[: settings.train_subset]
        x, y = x[pick], y[pick]
    x, y = x.to(device), y.to(device)
    opt = make_optimizer(model, settings.optimizer, settings.lr, settings.weight_decay, settings.momentum)
    best, best_epoch, best_state = -1.0, 0, None
    loss_value = math.nan
    epoch = 0
    for epoch in range(1, settings.epochs + 1):
        loss_value = train_epoch(model, x, y, opt, settings.batch_size, gen, f"epoch {epoch}")
        acc = accuracy(model, data.val)
        if acc > best:
            best, best_epoch = acc, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        if settings.patience is not None and epoch - best_epoch >= settings.patience:
            break
    assert best_state is not None
    return TrainResult(best, best_epoch, epoch, time.perf_counter() - start, best_state, loss_value)
