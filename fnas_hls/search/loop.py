"""The search loop: sample a child, predict its latency, prune or train it, reward, update, log.

One episode (``_episode``):

1. the strategy proposes a choice; ``SearchSpace.build`` makes the network IR;
2. the DSE and the performance model (``fnas_hls.analysis.analyze``) give its tiling, latency and
   whether it fits the board;
3. hardware-aware search prunes a child that breaks the spec or does not fit: it is never trained
   and gets the penalty reward; otherwise it is trained (``trainer.train_child``, once per
   architecture: a child seen before reuses its accuracy) and rewarded (``rewards.child_reward``);
   a child whose training fails (NaN loss, out of memory, any exception) gets the penalty;
4. the line goes to ``children.jsonl`` (flushed), the strategy learns from the reward, and the
   whole state goes to ``controller.pt``.

``--resume`` restarts from the checkpoint: the log lines after it are dropped and replayed from
the results they hold, so no finished child is trained again.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fnas_hls.analysis import Analysis, analyze
from fnas_hls.errors import FnasError
from fnas_hls.network.arch import network_to_dict
from fnas_hls.network.ir import Network
from fnas_hls.search import trainer
from fnas_hls.search.datasets import Dataset, load_dataset
from fnas_hls.search.policy import Strategy, make_strategy
from fnas_hls.search.rewards import child_reward, moving_average, pruned_reward
from fnas_hls.search.rundir import (
    CHECKPOINT,
    LogWriter,
    RunConfig,
    load_checkpoint,
    read_log,
    rewrite_log,
    save_torch_atomic,
)

CHECKPOINT_VERSION = 1


@dataclass
class Progress:
    """What the progress display shows after each episode."""

    done: int
    total: int
    trained: int
    pruned: int
    failed: int
    best_accuracy: float | None
    seconds: float
    eta_seconds: float | None
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Prediction:
    latency_ms: float | None
    cycles: int | None
    fits: bool
    tiling: dict[str, dict[str, int]]
    dsp: int | None
    bram18k: int | None
    error: str | None = None
    style: str | None = None


def child_key(choice: tuple[int, ...]) -> str:
    """A child's name in the log and on disk: its choice indices (``0-2-1-...``)."""
    return "-".join(str(c) for c in choice)


def child_seed(seed: int, key: str) -> int:
    """The training seed of a child: the run's seed and the architecture, not the episode."""
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % (2**31)


def predict(net: Network, cfg: RunConfig) -> _Prediction:
    a: Analysis = analyze(net, cfg.board, cfg.precision, style=cfg.style)
    tiling = {lc.name: lc.tiling.as_dict() for lc in a.layers if lc.tiling is not None}
    return _Prediction(
        a.latency_ms, a.latency_cycles, a.fits, tiling, a.resources.dsp, a.resources.bram18k, style=a.style
    )


class Search:
    """The state of one search run in ``out`` (see the module docstring for an episode)."""

    def __init__(
        self,
        cfg: RunConfig,
        out: Path,
        progress: Callable[[Progress], None] | None = None,
        data: Dataset | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = out
        self.progress = progress
        steps = cfg.space.steps
        self.strategy: Strategy = make_strategy(
            cfg.search.strategy, [len(d.values) for d in steps], cfg.search, cfg.seed
        )
        self.episode = 0
        self.accuracy_average: float | None = None
        self.records: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}  # key -> training outcome
        self.predictions: dict[str, _Prediction] = {}
        self.data = data
        self.device = trainer.resolve_device(cfg.device)
        self.start = time.perf_counter()
        self.elapsed_before = 0.0

    # --- resume ------------------------------------------------------------------------------
    def restore(self) -> int:
        """Load the checkpoint and the log; return how many log lines are replayed, not retrained."""
        state = load_checkpoint(self.out)
        records = read_log(self.out)
        done = 0
        if state is not None:
            if state.get("version") != CHECKPOINT_VERSION:
                raise FnasError(f"{self.out / CHECKPOINT}: checkpoint version {state.get('version')} unknown")
            self.strategy.load_state_dict(state["strategy"])
            self.episode = done = int(state["episode"])
            self.accuracy_average = state["accuracy_average"]
            self.elapsed_before = float(state.get("seconds", 0.0))
        kept = [r for r in records if r["episode"] < done]
        pending = [r for r in records if r["episode"] >= done]
        for r in records:
            if not r["pruned"] and not r["cached"] and r["key"] not in self.results:
                self.results[r["key"]] = _outcome_of(r)
        self.records = kept
        if pending or len(kept) != len(records):
            rewrite_log(self.out, kept)
        return len(pending)

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        total = self.cfg.search.episodes
        log = LogWriter(self.out)
        try:
            while self.episode < total:
                record = self._episode(self.episode)
                log.append(record)
                self.records.append(record)
                stats = self.strategy.feedback(tuple(record["choice_index"]), record["reward"])
                self.episode += 1
                self._checkpoint()
                if self.progress is not None:
                    self.progress(self._progress(record, stats))
        finally:
            log.close()
        return self.records

    def _episode(self, episode: int) -> dict[str, Any]:
        cfg = self.cfg
        t0 = time.perf_counter()
        choice = self.strategy.propose()
        key = child_key(choice)
        record: dict[str, Any] = {
            "episode": episode,
            "key": key,
            "choice_index": list(choice),
            "choice": cfg.space.describe(choice),
        }
        try:
            net = cfg.space.build(choice)
        except FnasError as exc:  # e.g. pooled below 1x1: not a network at all
            record.update(_invalid(str(exc), cfg.search.penalty))
            record["seconds"] = time.perf_counter() - t0
            return record
        record["arch"] = network_to_dict(net)
        pred = self.predictions.get(key) or predict(net, cfg)
        self.predictions[key] = pred
        meets = pred.fits and pred.latency_ms is not None and pred.latency_ms <= cfg.spec_ms
        record.update(
            style=pred.style,
            tiling=pred.tiling,
            latency_ms=pred.latency_ms,
            cycles=pred.cycles,
            fits=pred.fits,
            meets_spec=meets,
            dsp=pred.dsp,
            bram18k=pred.bram18k,
        )
        if cfg.hw_aware and not meets:
            record.update(pruned=True, cached=False, failed=False, error=None, accuracy=None)
            reward = pruned_reward(cfg.search.reward, pred.latency_ms, cfg.spec_ms, cfg.search)
            record.update(best_epoch=None, train_seconds=0.0, reward=reward)
            record["seconds"] = time.perf_counter() - t0
            return record
        logged = any(r["key"] == key and not r["pruned"] for r in self.records)
        outcome = self.results.get(key)
        trained_now = outcome is None
        if outcome is None:
            outcome = self._train(net, key)
            self.results[key] = outcome
        record.update(pruned=False, cached=logged, **{k: outcome[k] for k in ("failed", "error", "accuracy")})
        record["best_epoch"] = outcome["best_epoch"]
        record["train_seconds"] = 0.0 if logged else outcome["train_seconds"]
        if outcome["failed"]:
            record["reward"] = cfg.search.penalty
        else:
            acc = outcome["accuracy"]
            record["reward"] = child_reward(
                cfg.search.reward,
                acc,
                pred.latency_ms,
                cfg.spec_ms,
                self.accuracy_average,
                cfg.search,
                cfg.hw_aware,
            )
            self.accuracy_average = moving_average(self.accuracy_average, acc, cfg.search.baseline_decay)
        # A child replayed on resume from a line the checkpoint had not covered keeps its training time.
        replayed = not trained_now and not logged
        record["seconds"] = time.perf_counter() - t0 + (outcome["train_seconds"] if replayed else 0.0)
        return record

    def _train(self, net: Network, key: str) -> dict[str, Any]:
        cfg = self.cfg
        if self.data is None:
            t = cfg.train
            self.data = load_dataset(
                cfg.space.dataset, cfg.data_dir, cfg.seed, t.val_fraction, t.test_fraction
            )
            if self.data.shape != tuple(cfg.space.input):
                raise FnasError(
                    f"{cfg.space.source}: field 'input' is {list(cfg.space.input)} but dataset "
                    f"'{cfg.space.dataset}' has images {list(self.data.shape)}"
                )
        t0 = time.perf_counter()
        try:
            result = trainer.train_child(net, self.data, cfg.train, child_seed(cfg.seed, key), self.device)
        except Exception as exc:  # noqa: BLE001 - any failure of one child is logged, the search goes on
            return {
                "failed": True,
                "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                "accuracy": None,
                "best_epoch": None,
                "train_seconds": time.perf_counter() - t0,
            }
        save_torch_atomic(result.state, self.out / "children" / f"{key}.pt")
        return {
            "failed": False,
            "error": None,
            "accuracy": result.accuracy,
            "best_epoch": result.best_epoch,
            "train_seconds": result.seconds,
        }

    def _checkpoint(self) -> None:
        state = {
            "version": CHECKPOINT_VERSION,
            "episode": self.episode,
            "strategy": self.strategy.state_dict(),
            "accuracy_average": self.accuracy_average,
            "seconds": self.seconds,
        }
        save_torch_atomic(state, self.out / CHECKPOINT)

    @property
    def seconds(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.start

    def _progress(self, record: dict[str, Any], stats: dict[str, float]) -> Progress:
        trained = sum(1 for r in self.records if not r["pruned"] and not r.get("cached") and not r["failed"])
        pruned = sum(1 for r in self.records if r["pruned"])
        failed = sum(1 for r in self.records if r["failed"] and not r.get("cached"))
        best = best_record(self.records)
        done, total = self.episode, self.cfg.search.episodes
        elapsed = self.seconds
        eta = elapsed / done * (total - done) if done else None
        return Progress(
            done, total, trained, pruned, failed, best["accuracy"] if best else None, elapsed, eta, record
        )


def _invalid(message: str, penalty: float) -> dict[str, Any]:
    return {
        "arch": None,
        "tiling": {},
        "latency_ms": None,
        "cycles": None,
        "fits": False,
        "meets_spec": False,
        "dsp": None,
        "bram18k": None,
        "pruned": True,
        "cached": False,
        "failed": False,
        "error": message,
        "accuracy": None,
        "best_epoch": None,
        "train_seconds": 0.0,
        "reward": penalty,
    }


def _outcome_of(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "failed": r["failed"],
        "error": r["error"],
        "accuracy": r["accuracy"],
        "best_epoch": r.get("best_epoch"),
        "train_seconds": r.get("train_seconds", r.get("seconds", 0.0)),
    }


def best_record(records: list[dict[str, Any]], meeting_spec: bool = True) -> dict[str, Any] | None:
    """The most accurate trained child (meeting the spec and fitting, unless ``meeting_spec`` is False);
    ties go to the lower latency, then the earlier episode."""
    pool = [
        r
        for r in records
        if r.get("accuracy") is not None and not r.get("failed") and (r.get("meets_spec") or not meeting_spec)
    ]
    if not pool:
        return None
    return min(pool, key=lambda r: (-r["accuracy"], r["latency_ms"], r["episode"]))


def set_threads(threads: int | None) -> None:
    """torch CPU threads for training (1 is fastest for the tiny children of the digits space)."""
    if threads is not None:
        torch.set_num_threads(threads)
