"""One whole search, as named steps into ``runs/<name>/``: prepare, search, final training, best,
report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fnas_hls.search.datasets import load_dataset
from fnas_hls.search.final import FinalProgress, run_final
from fnas_hls.search.finalize import BestResult, finalize_best
from fnas_hls.search.loop import Progress, Search, best_record, set_threads
from fnas_hls.search.report import write_report
from fnas_hls.search.rundir import RunConfig, prepare_new, update_config
from fnas_hls.search.space import check_dataset
from fnas_hls.search.trainer import resolve_device
from fnas_hls.search.workers import make_workers


@dataclass(frozen=True)
class SearchOutcome:
    out: Path
    records: list[dict[str, Any]]
    best: BestResult | None
    report: Path
    seconds: float
    replayed: int  # log lines replayed on --resume without training
    final: list[dict[str, Any]] = field(default_factory=list)  # final.jsonl's lines, best first


def run_search(
    cfg: RunConfig,
    out: Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[Progress], None] | None = None,
    command: str = "",
    hls: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
    final_progress: Callable[[FinalProgress], None] | None = None,
) -> SearchOutcome:
    """Run (or, with ``resume``, continue) the search of ``cfg`` in ``out``, retrain its best
    ``cfg.final.k`` children in full (``search.final``), and finish the winner."""
    set_threads(cfg.train.threads)
    resolve_device(cfg.device)  # --device cuda on a machine without one fails before anything is written
    # Step 0: the data, before anything is written (a missing dataset fails here, naming its folder).
    t = cfg.train
    data = load_dataset(cfg.space.dataset, cfg.data_dir, cfg.seed, t.val_fraction, t.test_fraction)
    check_dataset(cfg.space, data)
    # Where the children train (this process, or Ray workers) is the machine's business, not the
    # run's config; a missing Ray fails here, before anything is written.
    pool = make_workers(cfg.train, resolve_device(cfg.device), workers, ray_address)
    try:
        # Step 1: the run folder (config.yaml, space.yaml), or the one being resumed.
        if resume:
            update_config(out, cfg)
        else:
            prepare_new(out, cfg, force, command)
        # Step 2: the episodes; children.jsonl and controller.pt grow as they finish.
        search = Search(cfg, out, progress, data, pool)
        replayed = search.restore() if resume else 0
        records = search.run()
        seconds = search.seconds  # the search's own time (final training and best/ come after)
    finally:
        pool.close()
    # Step 3: final training of the best k in-spec children (none with k 0); the best of them on
    # validation is the winner, else the most accurate child that meets the spec.
    device = resolve_device(cfg.device)
    final = run_final(out, records, data, cfg.final, cfg.seed, device, final_progress, cfg.precision)
    winner = best_record(records)
    best = None
    if final:
        winner = next(r for r in records if r["key"] == final[0]["key"])
        best = finalize_best(out, cfg, winner, data, hls=hls, final=final[0])
    elif winner is not None:
        best = finalize_best(out, cfg, winner, data, hls=hls)
    # Step 4: report.md and the plots.
    report = write_report(out, cfg, records, best, seconds, final=final)
    return SearchOutcome(out, records, best, report, seconds, replayed, final)
