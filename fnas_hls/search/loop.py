"""The search loop: sample a child, predict its latency, prune or train it, reward, update, log.

One episode (``_episode``):

1. the strategy proposes a choice; ``SearchSpace.build`` makes the network IR;
2. the DSE and the performance model (``fnas_hls.analysis.analyze``) give its tiling, latency and
   whether it fits the board;
3. hardware-aware search prunes a child that breaks the spec or does not fit: it is never trained
   and gets the penalty reward; otherwise it is trained (``trainer.train_child``, once per
   architecture: a child seen before reuses its accuracy) and rewarded (``rewards.child_reward``);
   a child whose training fails (NaN loss, out of memory, any exception) gets the penalty; where
   the search chooses each child's precision, a network already trained in another precision is
   not trained again: its weights (the same seed's) are scored in this child's precision;
4. the line goes to ``children.jsonl`` (flushed), the strategy learns from the reward, and the
   whole state goes to ``controller.pt``.

With ``batch`` B > 1 the strategy proposes B children, the ones to train go to the workers
(``workers``: in this process, or on Ray) at once, each outcome goes to ``trained.jsonl`` as it
finishes, and the B lines are then logged and rewarded in sampling order, followed by one
controller update over the batch and the checkpoint; so the log is the same for any number of
workers. B = 1 is the search as it always ran.

``--resume`` restarts from the checkpoint (a batch boundary): the log lines after it are dropped
and replayed from the results they and ``trained.jsonl`` hold, so no finished child is trained
again.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fnas_hls.analysis import Analysis
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
    TrainedWriter,
    load_checkpoint,
    read_log,
    read_trained,
    rewrite_log,
    save_torch_atomic,
)
from fnas_hls.search.space import check_dataset
from fnas_hls.search.workers import InProcess, Job
from fnas_hls.styles import analyze

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
    running: int = 0  # children training now (on the workers)
    workers: str = ""  # where they train


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


def predict(net: Network, cfg: RunConfig, precision: str | None = None) -> _Prediction:
    """The latency and resources of ``net`` on the run's board, in ``precision`` (default: the run's)."""
    a: Analysis = analyze(net, cfg.board, precision or cfg.precision, style=cfg.style)
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
        workers: Any = None,
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
        self.workers = workers if workers is not None else InProcess(cfg.train, self.device)
        self.running = 0
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
        for key, outcome in read_trained(self.out).items():  # finished in a batch the kill cut short
            self.results.setdefault(key, outcome)
        self.records = kept
        if pending or len(kept) != len(records):
            rewrite_log(self.out, kept)
        return len(pending)

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        total = self.cfg.search.episodes
        batch = self.cfg.search.batch
        log = LogWriter(self.out)
        journal = TrainedWriter(self.out)
        try:
            while self.episode < total:
                records = self._batch(self.episode, min(batch, total - self.episode), journal)
                for record in records:
                    log.append(record)
                    self.records.append(record)
                stats = self.strategy.feedback_batch(
                    [(tuple(r["choice_index"]), r[self.strategy.fitness]) for r in records]
                )
                self.episode += len(records)
                self._checkpoint()
                if self.progress is not None:
                    for i, record in enumerate(records):
                        self.progress(self._progress(record, stats, self.episode - len(records) + i + 1))
        finally:
            log.close()
            journal.close()
        return self.records

    def _batch(self, first: int, n: int, journal: TrainedWriter) -> list[dict[str, Any]]:
        """Propose ``n`` children, train the ones that need it at once, then complete their lines in
        sampling order (rewards, the accuracy average and 'cached' as if one after another)."""
        heads = [self._predicted(first + i, self.strategy.propose()) for i in range(n)]
        jobs, queued = [], set()
        for record, net in heads:
            key = record["key"]
            if net is not None and not record["pruned"] and key not in self.results and key not in queued:
                sibling = self._trained_sibling(record)
                if sibling is not None:  # the same network trained in another precision: score it in this one
                    self._rescore(record, net, sibling, journal)
                    continue
                queued.add(key)
                jobs.append(
                    Job(key, net, self._seed(record), record.get("precision") if self._scored else None)
                )
        if jobs:
            self._ensure_data()

            def done(key: str, outcome: dict[str, Any], state: Any) -> None:
                if state is not None:
                    save_torch_atomic(state, self.out / "children" / f"{key}.pt")
                journal.append(key, outcome)
                self.results[key] = outcome
                self.running = max(self.running - 1, 0)
                self._live()

            def started(k: int) -> None:
                self.running += k
                self._live()

            self.workers.run(jobs, self.data, done, started)
        self.running = 0
        earlier: list[dict[str, Any]] = []
        for record, net in heads:
            if net is not None and not record["pruned"]:
                self._complete(record, earlier)
            earlier.append(record)
        return [record for record, _ in heads]

    @property
    def _scored(self) -> bool:
        """Children scored in their own precision (where the search chooses it), not in float."""
        return self.cfg.space.searches_precision

    def _seed(self, record: dict[str, Any]) -> int:
        """A child's training seed: its architecture's (a network chosen in two precisions trains
        the same float weights, so that their scores differ by the arithmetic alone)."""
        arch = self.cfg.space.arch_choice(tuple(record["choice_index"]))
        return child_seed(self.cfg.seed, child_key(arch))

    def _trained_sibling(self, record: dict[str, Any]) -> str | None:
        """Where the search chooses precisions: a child of the same network in another precision whose
        weights are on disk (its training, from the same seed, is this child's)."""
        if not self._scored:
            return None
        space = self.cfg.space
        arch = space.arch_choice(tuple(record["choice_index"]))
        for key, outcome in self.results.items():
            choice = tuple(int(c) for c in key.split("-"))
            if space.arch_choice(choice) == arch and key != record["key"] and not outcome["failed"]:
                if (self.out / "children" / f"{key}.pt").is_file():
                    return key
        return None

    def _rescore(self, record: dict[str, Any], net: Network, sibling: str, journal: TrainedWriter) -> None:
        """The child's outcome from its sibling's weights, scored as a design in its own precision."""
        t0 = time.perf_counter()
        self._ensure_data()
        state = torch.load(self.out / "children" / f"{sibling}.pt", weights_only=True)
        theirs = self.results[sibling]
        outcome = {
            "failed": False,
            "error": None,
            "accuracy": trainer.design_accuracy(net, state, self.data, record["precision"]),
            "best_epoch": theirs["best_epoch"],
            "train_seconds": time.perf_counter() - t0,
            "float_accuracy": theirs.get("float_accuracy", theirs["accuracy"]),
            "weights_of": sibling,
        }
        save_torch_atomic(state, self.out / "children" / f"{record['key']}.pt")
        journal.append(record["key"], outcome)
        self.results[record["key"]] = outcome

    def _predicted(self, episode: int, choice: tuple[int, ...]) -> tuple[dict[str, Any], Network | None]:
        """A child's line up to the prune decision (the network, or None where it is none)."""
        cfg = self.cfg
        t0 = time.perf_counter()
        key = child_key(choice)
        record: dict[str, Any] = {
            "episode": episode,
            "key": key,
            "choice_index": list(choice),
            "choice": cfg.space.describe(choice),
        }
        precision = cfg.space.precision_of(choice)
        if cfg.space.searches_precision:
            record["precision"] = precision
        try:
            net = cfg.space.build(choice)
        except FnasError as exc:  # e.g. pooled below 1x1: not a network at all
            record.update(_invalid(str(exc), cfg.search.penalty))
            record["seconds"] = time.perf_counter() - t0
            return record, None
        record["arch"] = network_to_dict(net)
        pred = self.predictions.get(key) or predict(net, cfg, precision)
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
        pruned = cfg.hw_aware and not meets
        record["pruned"] = pruned
        if pruned:
            record.update(cached=False, failed=False, error=None, accuracy=None)
            reward = pruned_reward(cfg.search.reward, pred.latency_ms, cfg.spec_ms, cfg.search)
            record.update(best_epoch=None, train_seconds=0.0, reward=reward)
        record["seconds"] = time.perf_counter() - t0
        return record, net

    def _complete(self, record: dict[str, Any], earlier: list[dict[str, Any]]) -> None:
        """The trained child's outcome and reward (the accuracy average moves after it)."""
        cfg = self.cfg
        key = record["key"]
        logged = any(r["key"] == key and not r["pruned"] for r in (*self.records, *earlier))
        outcome = self.results[key]
        record.update(cached=logged, **{k: outcome[k] for k in ("failed", "error", "accuracy")})
        for k in ("float_accuracy", "weights_of"):
            if k in outcome:
                record[k] = outcome[k]
        record["best_epoch"] = outcome["best_epoch"]
        record["train_seconds"] = 0.0 if logged else outcome["train_seconds"]
        if outcome["failed"]:
            record["reward"] = cfg.search.penalty
        else:
            acc = outcome["accuracy"]
            record["reward"] = child_reward(
                cfg.search.reward,
                acc,
                record["latency_ms"],
                cfg.spec_ms,
                self.accuracy_average,
                cfg.search,
                cfg.hw_aware,
            )
            self.accuracy_average = moving_average(self.accuracy_average, acc, cfg.search.baseline_decay)
        # Its first line carries its training time (also when replayed on resume from a line, or from
        # trained.jsonl, that the checkpoint had not covered).
        if not logged:
            record["seconds"] += outcome["train_seconds"]

    def _live(self) -> None:
        """A progress update while a batch trains (no new log line: ``record`` is empty)."""
        if self.progress is not None:
            self.progress(self._progress({}, {}, self.episode))

    def _ensure_data(self) -> None:
        cfg = self.cfg
        if self.data is None:
            t = cfg.train
            self.data = load_dataset(
                cfg.space.dataset, cfg.data_dir, cfg.seed, t.val_fraction, t.test_fraction
            )
            check_dataset(cfg.space, self.data)

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

    def _progress(self, record: dict[str, Any], stats: dict[str, float], done: int) -> Progress:
        trained = sum(1 for r in self.records if not r["pruned"] and not r.get("cached") and not r["failed"])
        pruned = sum(1 for r in self.records if r["pruned"])
        failed = sum(1 for r in self.records if r["failed"] and not r.get("cached"))
        best = best_record(self.records)
        total = self.cfg.search.episodes
        elapsed = self.seconds
        eta = elapsed / done * (total - done) if done else None
        return Progress(
            done, total, trained, pruned, failed, best["accuracy"] if best else None, elapsed, eta, record,
            self.running, self.workers.where,
        )  # fmt: skip


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
        **{k: r[k] for k in ("float_accuracy", "weights_of") if k in r},
    }


def ranked_records(records: list[dict[str, Any]], meeting_spec: bool = True) -> list[dict[str, Any]]:
    """The trained children (meeting the spec and fitting, unless ``meeting_spec`` is False), most
    accurate first; ties go to the lower latency, then the earlier episode."""
    pool = [
        r
        for r in records
        if r.get("accuracy") is not None and not r.get("failed") and (r.get("meets_spec") or not meeting_spec)
    ]
    return sorted(pool, key=lambda r: (-r["accuracy"], r["latency_ms"], r["episode"]))


def best_record(records: list[dict[str, Any]], meeting_spec: bool = True) -> dict[str, Any] | None:
    """The first of ``ranked_records``, or None."""
    ranked = ranked_records(records, meeting_spec)
    return ranked[0] if ranked else None


def set_threads(threads: int | None) -> None:
    """torch CPU threads for training (1 is fastest for the tiny children of the digits space)."""
    if threads is not None:
        torch.set_num_threads(threads)
