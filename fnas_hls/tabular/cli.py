"""``fnas-hls search --space nb201`` (``--evaluate table``): a search over a public table, in seconds."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from fnas_hls.boards import load_board
from fnas_hls.errors import FnasError
from fnas_hls.search.rundir import default_run_folder
from fnas_hls.tabular.latency import LatencyTable
from fnas_hls.tabular.output import prepare_folder, write_outputs
from fnas_hls.tabular.search import TableRun, run_table_search
from fnas_hls.tabular.spaces import TableSearchSettings, TableSpaceConfig, load_table_space, no_long_fidelity

# Options of a training search that a table search has no use for.
_TRAINING_ONLY = ("epochs", "train_subset", "data_dir", "device", "batch", "workers", "ray", "resume")


def run_table(args: argparse.Namespace, space_path: Path) -> int:
    for flag in _TRAINING_ONLY:
        if getattr(args, flag, None) not in (None, False):
            raise FnasError(
                f"--{flag.replace('_', '-')}: a table search trains nothing (accuracy comes from the table); "
                "drop it"
            )
    sc: TableSpaceConfig = load_table_space(space_path)
    space = sc.space
    board = load_board(args.board or sc.board)
    spec = args.spec_ms if args.spec_ms is not None else sc.spec_ms
    if spec is None:
        raise FnasError(f"{sc.source}: the space has no 'spec_ms'; pass --spec-ms")
    settings = sc.search
    for field in ("episodes", "strategy", "reward"):
        if getattr(args, field) is not None:
            settings = replace(settings, **{field: getattr(args, field)})
    ts = sc.table_search
    if args.evaluations is not None:
        ts = replace(ts, evaluations=args.evaluations)
    if args.screen is not None:
        ts = replace(ts, screen=args.screen)
    if args.final_k is not None:
        if args.final_k and not space.has_long:
            raise FnasError(f"--final-k {args.final_k}: {no_long_fidelity(space)}; pass --final-k 0")
        ts = replace(ts, final_k=args.final_k)
    precision = args.precision or sc.precision
    style = args.style or "auto"
    seed = args.seed if args.seed is not None else 0
    run = TableRun(space, float(spec), settings, ts, hw_aware=not args.hw_unaware, seed=seed)
    out = (
        Path(args.out)
        if args.out
        else default_run_folder(space.name, board.name, settings.strategy, run.hw_aware, seed)
    )
    prepare_folder(out, args.force)
    latency = LatencyTable(space, board, precision, style)
    latency.load()
    command = _command(sc.source, board.name, run, precision, style, out)
    print(
        f"table search: {space.name} ({space.table}, {space.dataset}, {space.rows:,} rows) on {board.name}, "
        f"spec {spec:g} ms, {precision}, style {style}, strategy {settings.strategy}"
        f"{'' if run.hw_aware else ' (hardware-unaware)'}; {ts.evaluations} evaluations{_screened(ts)}, "
        f"final-k {ts.final_k}; {len(latency.known):,} rows' latency cached; folder {out}/",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.perf_counter()
    tty = sys.stderr.isatty()
    last = [0.0]

    def progress(episodes: int, evaluations: int, pruned: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= (0.2 if tty else 5.0) or evaluations == ts.evaluations:
            last[0] = now
            text = (
                f"  {episodes} episodes: {evaluations}/{ts.evaluations} evaluated, {pruned} pruned, "
                f"{now - t0:.1f} s"
            )
            print(f"\r{text}\x1b[K" if tty else text, end="" if tty else "\n", file=sys.stderr, flush=True)

    outcome = run_table_search(run, latency, progress)
    if tty:
        print(file=sys.stderr)
    latency.save()
    config: dict[str, Any] = {
        "space": sc.source,
        "table": space.table,
        "dataset": space.dataset,
        "board": board.name,
        "precision": precision,
        "style": style,
        "spec_ms": run.spec_ms,
        "seed": seed,
        "strategy": settings.strategy,
        "hw_aware": run.hw_aware,
        "evaluations": ts.evaluations,
        "final_k": ts.final_k,
        "screen": ts.screen,
        "screen_after": ts.screen_after,
        "episodes": settings.episodes,
        "search": settings.as_dict(),
        "command": command,
    }
    report = write_outputs(out, run, outcome, latency, config, board.name)
    print(
        f"{len(outcome.records)} episodes in {time.perf_counter() - t0:.1f} s: "
        f"{len(outcome.evaluated)} evaluated, {int(outcome.stats['pruned'])} pruned"
    )
    if outcome.winner is None:
        print(f"report: {report}")
        raise FnasError(
            f"no evaluated child meets the {spec:g} ms spec on {board.name}; see {report} (raise --episodes, "
            "--evaluations or --spec-ms)"
        )
    w = outcome.winner
    p = latency(w)
    print(
        f"best: {space.child_field} {space.name_of(w)}: {space.long(w):.2f}% "
        f"({'200-epoch' if space.has_long else 'table'}), {p.latency_ms:.4f} ms on {board.name} "
        f"(spec {spec:g} ms)"
    )
    print(f"report: {report}")
    return 0


def _screened(ts: TableSearchSettings) -> str:
    """The screen, as the start line says it (none where off)."""
    return f" (each the best of {ts.screen} by the predictor after {ts.screen_after})" if ts.screen else ""


def _command(source: str, board: str, run: TableRun, precision: str, style: str, out: Path) -> str:
    parts = ["fnas-hls", "search", "--space", source, "--evaluate", "table", "--board", board]
    parts += ["--spec-ms", f"{run.spec_ms:g}", "--strategy", run.search.strategy, "--seed", str(run.seed)]
    parts += ["--evaluations", str(run.table_search.evaluations), "--final-k", str(run.table_search.final_k)]
    parts += ["--screen", str(run.table_search.screen)]
    parts += ["--episodes", str(run.search.episodes), "--precision", precision, "--style", style]
    if not run.hw_aware:
        parts.append("--hw-unaware")
    parts += ["--out", str(out), "--force"]
    return " ".join(shlex.quote(p) for p in parts)
