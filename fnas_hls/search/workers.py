"""Where children train: in the search's own process (the default), or on Ray workers.

Both take one batch of training jobs and call back once per job as it finishes, in whatever
order they finish; the search writes each outcome to its journal at once and logs the batch in
sampling order, so the log does not depend on how many workers trained it. A child's training
seed is a function of the run seed and its architecture (``loop.child_seed``), and every worker
trains with the run's thread count, so a child's accuracy is the same wherever it trains.

``RayWorkers`` runs a local Ray instance of N workers (``--workers N``) or joins a cluster
(``--ray ADDRESS``). The data set goes to Ray's object store once per search; a task whose worker
dies or whose training raises is retried once (Ray's ``max_retries`` and ``retry_exceptions``),
then logged as failed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from fnas_hls.errors import FnasError
from fnas_hls.network.ir import Network
from fnas_hls.search import trainer
from fnas_hls.search.datasets import Dataset
from fnas_hls.search.settings import TrainSettings

#: What ``pip`` needs for ``--workers`` and ``--ray``.
RAY_INSTALL = "pip install 'fnas-hls[ray]' (or: pip install ray)"
#: Retries of a child's training after its worker died or it raised, before it is logged failed.
RETRIES = 1


@dataclass(frozen=True)
class Job:
    """One child to train: its key, its network and its training seed; ``precision``: score it by
    its validation accuracy in that arithmetic (where the search chooses each child's), not float."""

    key: str
    net: Network
    seed: int
    precision: str | None = None


#: The outcome of a job, as the log records it, and the weights (None when it failed).
Outcome = dict[str, Any]
Done = Callable[[str, Outcome, dict[str, torch.Tensor] | None], None]


def failed(error: str, seconds: float) -> Outcome:
    return {
        "failed": True,
        "error": error.splitlines()[0][:500] if error else "failed",
        "accuracy": None,
        "best_epoch": None,
        "train_seconds": seconds,
    }


def train_outcome(
    net: Network, data: Dataset, settings: TrainSettings, seed: int, device: str, precision: str | None = None
) -> tuple[Outcome, dict[str, torch.Tensor] | None]:
    """Train one child; any failure of the child is its outcome, not an exception. With ``precision``,
    its accuracy is its design's in that arithmetic (``trainer.design_accuracy``), its float
    accuracy kept beside it."""
    t0 = time.perf_counter()
    try:
        result = trainer.train_child(net, data, settings, seed, device)
        quantized = None if precision is None else trainer.design_accuracy(net, result.state, data, precision)
    except Exception as exc:  # noqa: BLE001 - any failure of one child is logged, the search goes on
        return failed(f"{type(exc).__name__}: {exc}", time.perf_counter() - t0), None
    outcome = {
        "failed": False,
        "error": None,
        "accuracy": result.accuracy if quantized is None else quantized,
        "best_epoch": result.best_epoch,
        "train_seconds": time.perf_counter() - t0,
    }
    if quantized is not None:
        outcome["float_accuracy"] = result.accuracy
    return outcome, result.state


class InProcess:
    """Train the jobs one after another in this process (the search as it always ran)."""

    where = "in-process"

    def __init__(self, settings: TrainSettings, device: str) -> None:
        self.settings, self.device = settings, device

    def run(
        self, jobs: list[Job], data: Dataset, done: Done, started: Callable[[int], None] | None = None
    ) -> None:
        for job in jobs:
            if started is not None:
                started(1)
            outcome, state = train_outcome(job.net, data, self.settings, job.seed, self.device, job.precision)
            done(job.key, outcome, state)

    def close(self) -> None:
        pass


def _ray():
    try:
        import ray
    except ImportError:
        raise FnasError(f"--workers/--ray need Ray, which is not installed; {RAY_INSTALL}") from None
    return ray


#: Fault injection for the tests: a path in this variable makes the first task that finds no file
#: there create it and kill its own worker (kill -9), as a crashed machine would.
KILL_ONCE_ENV = "FNAS_HLS_KILL_WORKER_ONCE"


Layout = dict[str, tuple[tuple[int, ...], tuple[int, ...]]]


def data_layout(data: Dataset) -> Layout:
    """The strides of each split's arrays in the driver. Ray's serialisation gives an array's
    length-1 dimensions other strides (an (N, 1, H, W) map read as channels-last in the driver comes
    back channels-first), and torch picks its convolution kernels, so their order of adds, by the
    strides: the worker restores them, so that a child trains to the same bits as in the driver."""
    return {
        name: (getattr(data, name).x.strides, getattr(data, name).y.strides)
        for name in ("train", "val", "test")
    }


def _with_strides(a, strides: tuple[int, ...]):
    import numpy as np

    if a.strides == strides:
        return a
    if all(s == t or n == 1 for n, s, t in zip(a.shape, a.strides, strides, strict=True)):  # same memory
        return np.lib.stride_tricks.as_strided(a, a.shape, strides, writeable=False)
    return a


def restore_layout(data: Dataset, layout: Layout) -> Dataset:
    from dataclasses import replace

    splits = {}
    for name, (xs, ys) in layout.items():
        split = getattr(data, name)
        splits[name] = replace(split, x=_with_strides(split.x, xs), y=_with_strides(split.y, ys))
    return replace(data, **splits)


def _train_task(
    net: Network,
    data: Dataset,
    settings: TrainSettings,
    seed: int,
    device: str,
    threads: int,
    layout: Layout,
    precision: str | None = None,
):
    data = restore_layout(data, layout)
    marker = os.environ.get(KILL_ONCE_ENV)
    if marker:
        try:
            with open(marker, "x"):
                pass
        except FileExistsError:
            pass
        else:
            os.kill(os.getpid(), 9)
    torch.set_num_threads(threads)
    outcome, state = train_outcome(net, data, settings, seed, device, precision)
    if outcome["failed"]:  # raise, so that Ray retries it once (retry_exceptions)
        raise RuntimeError(outcome["error"])
    return outcome, state


class RayWorkers:
    """Train the jobs of a batch at once on Ray: ``workers`` local workers, or a cluster's."""

    def __init__(
        self, settings: TrainSettings, device: str, workers: int, address: str | None = None
    ) -> None:
        ray = _ray()
        self.ray, self.settings, self.device = ray, settings, device
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
            self.where = f"Ray, {workers} local worker{'s' if workers != 1 else ''}"
        else:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except Exception as exc:  # noqa: BLE001 - Ray raises many kinds for an unreachable cluster
                raise FnasError(
                    f"--ray {address}: cannot join the Ray cluster: {exc}".splitlines()[0]
                ) from None
            self.where = f"Ray cluster {address}"
        self.workers = workers
        cores = os.cpu_count() or 1
        # the run's threads per child (1 by default), and never more than the cores allow N workers
        self.threads = max(1, min(settings.threads or 1, cores // max(workers, 1)))
        self.task = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=True)(_train_task)
        self.data_ref = None
        self.data_id: int | None = None
        self.layout: Layout = {}

    def run(
        self, jobs: list[Job], data: Dataset, done: Done, started: Callable[[int], None] | None = None
    ) -> None:
        ray = self.ray
        if self.data_ref is None or self.data_id != id(data):  # the data set once, into the object store
            self.data_ref, self.data_id, self.layout = ray.put(data), id(data), data_layout(data)
        t0 = time.perf_counter()
        futures = {
            self.task.remote(
                job.net,
                self.data_ref,
                self.settings,
                job.seed,
                self.device,
                self.threads,
                self.layout,
                job.precision,
            ): job
            for job in jobs
        }
        if started is not None:
            started(min(len(futures), self.workers))
        try:
            while futures:
                ready, _ = ray.wait(list(futures), num_returns=1)
                for ref in ready:
                    job = futures.pop(ref)
                    try:
                        outcome, state = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - a retried task that still failed
                        cause = getattr(exc, "cause", None) or exc
                        # the child's own failure reads as in-process; a dead worker names Ray's error
                        own = type(cause) is RuntimeError
                        text = str(cause) if own else f"{type(cause).__name__}: {cause}"
                        outcome, state = failed(text, time.perf_counter() - t0), None
                    done(job.key, outcome, state)
                    if started is not None and len(futures) >= self.workers:
                        started(1)
        except KeyboardInterrupt:
            for ref in futures:
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        self.ray.shutdown()


def make_workers(settings: TrainSettings, device: str, workers: int | None, address: str | None):
    """In-process without ``workers`` and ``address``; otherwise Ray (one line if it is missing)."""
    if workers is None and address is None:
        return InProcess(settings, device)
    if workers is not None and workers < 1:
        raise FnasError(f"--workers must be at least 1, got {workers}")
    return RayWorkers(settings, device, workers or 1, address)
