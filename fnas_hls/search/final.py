"""Final training: the best K in-spec children of a search, retrained from scratch to convergence.

A search ranks its children by a short proxy training (a few epochs on a subset); the network a user
takes to the board should be trained in full. ``run_final`` takes the K most accurate children that
meet the spec (``final_candidates``), trains each from its own seed on the whole training split with
the validation split held out (``FinalSettings``: Adam or SGD, a cosine learning-rate schedule,
early stopping on validation accuracy, the best epoch's weights kept), measures its test accuracy,
and logs it as a line of ``final.jsonl``; the winner is the best of them on validation. Each epoch
ends with a checkpoint (``final/<key>.ckpt``: weights, optimizer, schedule, the batch order's
generator), so a killed final training continues from its last epoch on ``--resume``; a finished
child is replayed from its line.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fnas_hls.backend.fake_quant import fake_quantized
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.ir import Network
from fnas_hls.network.torch_model import TorchNetwork
from fnas_hls.precision import get_precision
from fnas_hls.search.datasets import Dataset, calibration_images
from fnas_hls.search.loop import ranked_records
from fnas_hls.search.rundir import FINAL_DIR, FINAL_LOG, append_jsonl, read_jsonl, save_torch_atomic
from fnas_hls.search.settings import FinalSettings
from fnas_hls.search.trainer import ChildFailed, _tensors, accuracy, make_optimizer, seeded_model, train_epoch


@dataclass(frozen=True)
class FinalProgress:
    """One finished epoch of one child's final training."""

    child: int  # 1-based, of ``children``
    children: int
    key: str
    epoch: int
    epochs: int
    loss: float
    val_accuracy: float
    best: float
    seconds: float  # this child's so far
    eta_seconds: float  # this child's epochs left, at its pace
    phase: str = "final"  # final (float) training, or QAT in a precision


def final_candidates(records: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` most accurate trained children that meet the spec, each architecture once, in
    ``loop.ranked_records``'s order (accuracy, then the lower latency, then the earlier episode)."""
    first = {}
    for r in ranked_records(records):
        first.setdefault(r["key"], r)
    return list(first.values())[:k]


def train_final(
    net: Network,
    data: Dataset,
    fs: FinalSettings,
    seed: int,
    device: str = "cpu",
    checkpoint: Path | None = None,
    progress: Callable[[int, float, float, float, float], None] | None = None,
) -> dict[str, Any]:
    """Train ``net`` from scratch on ``data.train`` (all of it) for at most ``fs.epochs`` epochs,
    keep the weights of the best validation accuracy, stop after ``fs.patience`` epochs without a
    better one. With ``checkpoint``, each epoch's state is saved there and a run that finds one
    continues after its epoch. ``progress(epoch, loss, val_accuracy, best, seconds)`` after each
    epoch. Returns the best accuracy and epoch, the epochs run, the seconds and the weights (CPU)."""
    model, gen = seeded_model(net, seed, device)

    def score() -> float:
        return accuracy(model, data.val)

    return _fit(
        model, gen, data, fs, fs.epochs, fs.lr, lambda: model, score, False, "final", checkpoint, progress
    )


def train_qat(
    net: Network,
    state: dict[str, torch.Tensor],
    data: Dataset,
    fs: FinalSettings,
    precision: str,
    calibration: np.ndarray,
    seed: int,
    device: str = "cpu",
    checkpoint: Path | None = None,
    progress: Callable[[int, float, float, float, float], None] | None = None,
) -> dict[str, Any]:
    """Quantization-aware training of ``net`` from the float weights ``state``: ``fs.qat_epochs``
    epochs at ``fs.qat_lr`` (cosine schedule) through ``backend.fake_quant.FakeQuantNetwork`` in
    ``precision``. Each epoch takes its number formats from the current weights and ``calibration``
    as the emitted design will (``quantize_network``), trains in float32, and is scored on
    validation in float64, which is the reference model's (and the C simulation's) accuracy; the
    best epoch's weights are kept, the float weights (epoch 0: post-training quantization) among
    them. Returns ``train_final``'s fields; ``start_val_accuracy`` is the float weights' quantized."""
    model = TorchNetwork(net)
    model.load_state_dict(state)
    model.to(device)
    gen = torch.Generator().manual_seed(seed)

    def score() -> float:
        return accuracy(fake_quantized(model, precision, calibration), data.val)

    def view() -> torch.nn.Module:
        return fake_quantized(model, precision, calibration, exact=False)

    return _fit(
        model, gen, data, fs, fs.qat_epochs, fs.qat_lr, view, score, True, "QAT", checkpoint, progress
    )


def _fit(
    model: TorchNetwork,
    gen: torch.Generator,
    data: Dataset,
    fs: FinalSettings,
    epochs: int,
    lr: float,
    view: Callable[[], torch.nn.Module],
    score: Callable[[], float],
    score_start: bool,
    label: str,
    checkpoint: Path | None,
    progress: Callable[[int, float, float, float, float], None] | None,
) -> dict[str, Any]:
    """The training loop of ``train_final`` and ``train_qat``: each epoch trains ``view()`` (the model,
    or the model seen through its quantization) and keeps the weights of the best ``score()``;
    ``score_start``: the weights before the first epoch are scored too (epoch 0)."""
    device = next(model.parameters()).device
    x, y = _tensors(data.train)
    x, y = x.to(device), y.to(device)
    opt = make_optimizer(model, fs.optimizer, lr, fs.weight_decay, fs.momentum)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    state: dict[str, Any] = {"epoch": 0, "best": -1.0, "best_epoch": 0, "best_state": None, "seconds": 0.0}
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False, map_location="cpu")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["schedule"])
        gen.set_state(saved["generator"])
        state = saved["state"]
    elif score_start:
        state.update(best=score(), best_state=_copy(model))
        state["start"] = state["best"]
    start = time.perf_counter() - state["seconds"]
    loss_value = math.nan
    epoch = state["epoch"]
    while epoch < epochs:
        if fs.patience is not None and epoch - state["best_epoch"] >= fs.patience and state["best_epoch"]:
            break
        epoch += 1
        loss_value = train_epoch(view(), x, y, opt, fs.batch_size, gen, f"{label} epoch {epoch}", fs.augment)
        sched.step()
        acc = score()
        if acc > state["best"]:
            state["best"], state["best_epoch"] = acc, epoch
            state["best_state"] = _copy(model)
        state["epoch"], state["seconds"] = epoch, time.perf_counter() - start
        if checkpoint is not None:
            saved = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "schedule": sched.state_dict(),
                "generator": gen.get_state(),
                "state": state,
            }
            save_torch_atomic(saved, checkpoint)
        if progress is not None:
            progress(epoch, loss_value, acc, state["best"], state["seconds"])
    assert state["best_state"] is not None, "training ran no epoch"
    return {
        "val_accuracy": float(state["best"]),
        "start_val_accuracy": state.get("start"),
        "best_epoch": int(state["best_epoch"]),
        "epochs": int(epoch),
        "seconds": float(time.perf_counter() - start),
        "state": state["best_state"],
    }


def _copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def run_final(
    out: Path,
    records: list[dict[str, Any]],
    data: Dataset,
    fs: FinalSettings,
    seed: int,
    device: str = "cpu",
    progress: Callable[[FinalProgress], None] | None = None,
    precision: str = "fixed16",
) -> list[dict[str, Any]]:
    """Final training of the best ``fs.k`` in-spec children of ``records`` into ``out/final/`` and
    ``out/final.jsonl`` (see the module docstring), then, with ``fs.qat_epochs``, their
    quantization-aware training in their precision (the child's, where the search chose it, else
    ``precision``); the lines, best validation accuracy of the design (quantized where QAT ran)
    first. A child whose line is in the log already is not trained again."""
    chosen = final_candidates(records, fs.k)
    if not chosen:
        return []
    folder = out / FINAL_DIR
    folder.mkdir(exist_ok=True)
    log = out / FINAL_LOG
    done = {r["key"]: r for r in read_jsonl(log, "final training log")}
    calibration = calibration_images(data)
    lines = []
    for n, rec in enumerate(chosen, 1):
        key = rec["key"]
        if key in done:
            lines.append(done[key])
            continue
        net = network_from_dict(rec["arch"], f"{out}/children.jsonl episode {rec['episode']}")
        prec = rec.get("precision") or precision
        qat = fs.qat_epochs > 0 and not get_precision(prec).is_float

        def tick(epoch, loss, acc, best, seconds, _n=n, _key=key, _phase="final", _epochs=fs.epochs):
            if progress is not None:
                left = seconds / epoch * (_epochs - epoch)
                progress(
                    FinalProgress(
                        _n, len(chosen), _key, epoch, _epochs, loss, acc, best, seconds, left, _phase
                    )
                )

        child_seed = seed * 1000 + int(rec["episode"])
        ckpt, qat_ckpt = folder / f"{key}.ckpt", folder / f"{key}.qat.ckpt"
        try:
            res = train_final(net, data, fs, child_seed, device, ckpt, tick)
            if qat:
                qtick = partial(tick, _phase=f"QAT {prec}", _epochs=fs.qat_epochs)
                q = train_qat(
                    net, res["state"], data, fs, prec, calibration, child_seed, device, qat_ckpt, qtick
                )
        except ChildFailed as exc:
            line = {"key": key, "episode": rec["episode"], "failed": str(exc)}
            append_jsonl(log, line)
            continue
        model = TorchNetwork(net)
        model.load_state_dict(res["state"])
        line = {
            "key": key,
            "episode": rec["episode"],
            "proxy_accuracy": float(rec["accuracy"]),
            "val_accuracy": res["val_accuracy"],
            "test_accuracy": accuracy(model, data.test),
            "best_epoch": res["best_epoch"],
            "epochs": res["epochs"],
            "seconds": res["seconds"],
            "device": device,
            "latency_ms": rec.get("latency_ms"),
        }
        weights = res["state"]
        if qat:
            ptq_test = accuracy(fake_quantized(model, prec, calibration), data.test)
            model.load_state_dict(q["state"])
            weights = q["state"]
            line["qat"] = {
                "precision": prec,
                "ptq_val_accuracy": q["start_val_accuracy"],
                "ptq_test_accuracy": ptq_test,
                "val_accuracy": q["val_accuracy"],
                "test_accuracy": accuracy(fake_quantized(model, prec, calibration), data.test),
                "float_test_accuracy": accuracy(model, data.test),
                "best_epoch": q["best_epoch"],
                "epochs": q["epochs"],
                "seconds": q["seconds"],
            }
        save_torch_atomic(weights, folder / f"{key}.pt")
        append_jsonl(log, line)
        ckpt.unlink(missing_ok=True)
        qat_ckpt.unlink(missing_ok=True)
        lines.append(line)
    lines = [r for r in lines if "val_accuracy" in r]
    lines.sort(key=lambda r: -design_val_accuracy(r))
    return lines


def design_val_accuracy(line: dict[str, Any]) -> float:
    """A final training line's validation accuracy of the design: quantized where QAT ran."""
    return float((line.get("qat") or line)["val_accuracy"])


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation of ``a`` and ``b`` (average ranks for ties); None below 3 pairs or
    where either is constant."""
    if len(a) < 3:
        return None
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def ranks(values: list[float]) -> np.ndarray:
    """Ranks 0 .. n-1 of ``values``, ties sharing their mean rank."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v), dtype=float)
    for value in np.unique(v):  # ties share their average rank
        tie = v == value
        ranks[tie] = ranks[tie].mean()
    return ranks
