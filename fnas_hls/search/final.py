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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.ir import Network
from fnas_hls.network.torch_model import TorchNetwork
from fnas_hls.search.datasets import Dataset
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
    x, y = _tensors(data.train)
    x, y = x.to(device), y.to(device)
    opt = make_optimizer(model, fs.optimizer, fs.lr, fs.weight_decay, fs.momentum)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=fs.epochs)
    state: dict[str, Any] = {"epoch": 0, "best": -1.0, "best_epoch": 0, "best_state": None, "seconds": 0.0}
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False, map_location="cpu")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["schedule"])
        gen.set_state(saved["generator"])
        state = saved["state"]
    start = time.perf_counter() - state["seconds"]
    loss_value = math.nan
    epoch = state["epoch"]
    while epoch < fs.epochs:
        if fs.patience is not None and epoch - state["best_epoch"] >= fs.patience and state["best_epoch"]:
            break
        epoch += 1
        loss_value = train_epoch(model, x, y, opt, fs.batch_size, gen, f"final epoch {epoch}", fs.augment)
        sched.step()
        acc = accuracy(model, data.val)
        if acc > state["best"]:
            state["best"], state["best_epoch"] = acc, epoch
            state["best_state"] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
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
    assert state["best_state"] is not None, "final training ran no epoch"
    return {
        "val_accuracy": float(state["best"]),
        "best_epoch": int(state["best_epoch"]),
        "epochs": int(epoch),
        "seconds": float(time.perf_counter() - start),
        "state": state["best_state"],
    }


def run_final(
    out: Path,
    records: list[dict[str, Any]],
    data: Dataset,
    fs: FinalSettings,
    seed: int,
    device: str = "cpu",
    progress: Callable[[FinalProgress], None] | None = None,
) -> list[dict[str, Any]]:
    """Final training of the best ``fs.k`` in-spec children of ``records`` into ``out/final/`` and
    ``out/final.jsonl`` (see the module docstring); the lines, best final validation accuracy
    first. A child whose line is in the log already is not trained again."""
    chosen = final_candidates(records, fs.k)
    if not chosen:
        return []
    folder = out / FINAL_DIR
    folder.mkdir(exist_ok=True)
    log = out / FINAL_LOG
    done = {r["key"]: r for r in read_jsonl(log, "final training log")}
    lines = []
    for n, rec in enumerate(chosen, 1):
        key = rec["key"]
        if key in done:
            lines.append(done[key])
            continue
        net = network_from_dict(rec["arch"], f"{out}/children.jsonl episode {rec['episode']}")

        def tick(epoch, loss, acc, best, seconds, _n=n, _key=key):
            if progress is not None:
                left = seconds / epoch * (fs.epochs - epoch)
                progress(
                    FinalProgress(_n, len(chosen), _key, epoch, fs.epochs, loss, acc, best, seconds, left)
                )

        child_seed = seed * 1000 + int(rec["episode"])
        ckpt = folder / f"{key}.ckpt"
        try:
            res = train_final(net, data, fs, child_seed, device, ckpt, tick)
        except ChildFailed as exc:
            line = {"key": key, "episode": rec["episode"], "failed": str(exc)}
            append_jsonl(log, line)
            continue
        save_torch_atomic(res["state"], folder / f"{key}.pt")
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
        append_jsonl(log, line)
        ckpt.unlink(missing_ok=True)
        lines.append(line)
    lines = [r for r in lines if "val_accuracy" in r]
    lines.sort(key=lambda r: -r["val_accuracy"])
    return lines


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
