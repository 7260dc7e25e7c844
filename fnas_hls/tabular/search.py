"""One search over a table: the FNAS episode with the table in place of training.

Each episode the strategy proposes a choice; the space names its row; fnas-hls's model predicts the
row's latency (``LatencyTable``); hardware-aware search prunes a row that breaks the spec or does not
fit (never evaluated, the penalty reward); otherwise the row is evaluated: its short-fidelity
accuracy is looked up and its training cost counted, once: a row seen before is free and does not
count as an evaluation. The search stops after ``evaluations`` evaluations (or ``episodes``
proposals, whichever comes first). Hardware-unaware search evaluates every row and checks the spec
only afterwards.

With ``screen`` N (``TableSearchSettings``), once ``screen_after`` rows are evaluated, each evaluation
is the best of N new in-spec proposals by a cheap accuracy predictor fitted to the rows evaluated so
far (``fnas_hls.search.predictor``); the proposals screened out are neither evaluated nor episodes.

Then ``final_k``: the best K evaluated rows that meet the spec (by short accuracy) are retrained at
the long fidelity (looked up, cost counted) and the winner is the best of them there; without it the
winner is the best by short accuracy. A winner is scored by the long fidelity, and its regret is the
best long accuracy of any row of the table that meets the spec minus the winner's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fnas_hls.search.policy import make_strategy
from fnas_hls.search.predictor import RidgePredictor
from fnas_hls.search.rewards import child_reward, moving_average, pruned_reward
from fnas_hls.search.settings import SearchSettings
from fnas_hls.tabular.latency import Predicted
from fnas_hls.tabular.spaces import TableSearchSettings, TableSpace

#: The screen's proposals an evaluation, at most, per candidate it wants (``screen``): a strategy
#: settled on a few children proposes them again and again.
SCREEN_TRIES = 50


@dataclass(frozen=True)
class TableRun:
    """What decides one table search."""

    space: TableSpace
    spec_ms: float
    search: SearchSettings
    table_search: TableSearchSettings
    hw_aware: bool = True
    seed: int = 0


@dataclass
class TableOutcome:
    records: list[dict[str, Any]]
    evaluated: list[int]  # rows in the order first evaluated
    finalists: list[int]  # rows retrained at the long fidelity (final_k), best short first
    winner: int | None  # the best row that meets the spec (None: none evaluated meets it)
    winner_short: int | None  # the best that meets the spec by short accuracy alone (no final training)
    winner_any: int | None  # the best row evaluated, spec or not (what hw-unaware search would ship)
    cost_short: float
    cost_long: float
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def cost(self) -> float:
        return self.cost_short + self.cost_long


def run_table_search(
    cfg: TableRun,
    latency: Callable[[int], Predicted],
    progress: Callable[[int, int, int], None] | None = None,
) -> TableOutcome:
    """Run ``cfg``'s search with ``latency`` giving each row's prediction; ``progress`` hears
    (episodes, evaluations, pruned) after each episode."""
    space, s, ts = cfg.space, cfg.search, cfg.table_search
    strategy = make_strategy(s.strategy, space.num_choices, s, cfg.seed)
    predictor = RidgePredictor(space.num_choices) if ts.screen else None
    records: list[dict[str, Any]] = []
    evaluated: list[int] = []
    evaluated_choices: list[tuple[int, ...]] = []
    seen: set[int] = set()
    accuracy_average: float | None = None
    episode = pruned = screened_out = 0

    def step(choice: tuple[int, ...], row: int, distance: int, pred: Predicted) -> None:
        """One episode: ``choice`` (row ``row``) pruned, looked up again or evaluated; the strategy hears."""
        nonlocal accuracy_average, episode, pruned
        meets = pred.meets(cfg.spec_ms)
        record: dict[str, Any] = {
            "episode": episode,
            space.child_field: space.name_of(row),
            "row": row,
            "choice_index": list(choice),
            "latency_ms": pred.latency_ms,
            "fits": pred.fits,
            "meets_spec": meets,
            "style": pred.style,
            "dsp": pred.dsp,
            "bram18k": pred.bram18k,
        }
        if distance:
            record["distance"] = distance  # decisions the choice differs from its row in
        if cfg.hw_aware and not meets:
            reward = pruned_reward(s.reward, pred.latency_ms, cfg.spec_ms, s)
            record.update(pruned=True, cached=False, accuracy=None, reward=reward, cost=0.0)
            pruned += 1
        else:
            cached = row in seen
            acc = space.short(row) / 100.0
            if not cached:
                seen.add(row)
                evaluated.append(row)
                evaluated_choices.append(tuple(choice))
            latency_ms = pred.latency_ms if pred.latency_ms is not None else cfg.spec_ms
            reward = child_reward(s.reward, acc, latency_ms, cfg.spec_ms, accuracy_average, s, cfg.hw_aware)
            accuracy_average = moving_average(accuracy_average, acc, s.baseline_decay)
            record.update(
                pruned=False,
                cached=cached,
                accuracy=acc,
                reward=reward,
                cost=0.0 if cached else space.cost(row),
            )
        strategy.feedback(choice, record[strategy.fitness])
        records.append(record)
        episode += 1
        if progress is not None:
            progress(episode, len(evaluated), pruned)

    while len(evaluated) < ts.evaluations and episode < s.episodes:
        if predictor is None or len(evaluated) < ts.screen_after:
            choice = strategy.propose()
            row, distance = space.row_of(choice)
            step(choice, row, distance, latency(row))
            continue
        # the screen: proposals that are pruned or seen before are episodes as ever; the new ones that
        # meet the spec wait, and the one the predictor ranks best is evaluated
        waiting: dict[int, tuple[tuple[int, ...], int, Predicted]] = {}
        tries = 0
        while len(waiting) < ts.screen and tries < SCREEN_TRIES * ts.screen and episode < s.episodes:
            tries += 1
            choice = strategy.propose()
            row, distance = space.row_of(choice)
            pred = latency(row)
            if row in seen or (cfg.hw_aware and not pred.meets(cfg.spec_ms)):
                step(choice, row, distance, pred)
            else:
                waiting.setdefault(row, (choice, distance, pred))
        if not waiting:
            continue
        predictor.fit(evaluated_choices, [space.short(r) for r in evaluated])
        rows = list(waiting)
        best = rows[int(np.argmax(predictor.predict([waiting[r][0] for r in rows])))]
        screened_out += len(rows) - 1
        choice, distance, pred = waiting[best]
        step(choice, best, distance, pred)
    in_spec = sorted(
        (r for r in evaluated if latency(r).meets(cfg.spec_ms)), key=lambda r: (-space.short(r), r)
    )
    finalists = in_spec[: ts.final_k] if ts.final_k else []
    cost_long = sum(space.cost(r, long=True) for r in finalists)
    if finalists:
        winner: int | None = max(finalists, key=lambda r: (space.long(r), -r))
    else:
        winner = in_spec[0] if in_spec else None
    winner_any = min(evaluated, key=lambda r: (-space.short(r), r)) if evaluated else None
    stats = {"episodes": float(episode), "pruned": float(pruned), "screened_out": float(screened_out)}
    short_pick = in_spec[0] if in_spec else None
    cost = sum(space.cost(r) for r in evaluated)
    return TableOutcome(records, evaluated, finalists, winner, short_pick, winner_any, cost, cost_long, stats)


def best_in_spec(space: TableSpace, latency: Callable[[int], Predicted], spec_ms: float) -> int | None:
    """The row of the whole table with the best long accuracy among those that meet the spec."""
    rows = [r for r in range(space.rows) if latency(r).meets(spec_ms)]
    return max(rows, key=lambda r: (space.long(r), -r)) if rows else None


def regret(space: TableSpace, winner: int | None, best_row: int | None) -> float | None:
    """Points of long accuracy of ``winner`` below the best row that meets the spec (None without one)."""
    if best_row is None or winner is None:
        return None
    return space.long(best_row) - space.long(winner)


def pareto_rows(rows: list[int], space: TableSpace, latency: Callable[[int], Predicted]) -> list[int]:
    """The evaluated rows that fit and that no other beats on accuracy, latency, DSPs and BRAM at once."""
    pts = []
    for r in dict.fromkeys(rows):
        p = latency(r)
        if p.fits and p.latency_ms is not None:
            pts.append((r, (-space.short(r), p.latency_ms, p.dsp or 0, p.bram18k or 0)))

    def dominated(a: tuple, b: tuple) -> bool:  # b dominates a
        return all(y <= x for x, y in zip(a, b, strict=True)) and b != a

    front = [r for r, a in pts if not any(dominated(a, b) for _, b in pts)]
    return sorted(front, key=lambda r: (latency(r).latency_ms, r))
