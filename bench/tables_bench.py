"""``make bench`` section ``tables``: the search judged on public tables, a hundred seeds a strategy.

* NAS-Bench-201, CIFAR-10, pynq, fixed16, style auto: every one of the 15,625 cells analyzed (kept in
  the latency cache, ``fnas_hls.tabular.latency``; the first run fills it, about two hours on two
  cores since the engine DSE tries two load-port counts); specs at the 10/25/50% quantiles of the
  predicted latency of the cells that fit; each strategy of ``STRATEGIES`` (rl as the space has it,
  with the predictor's screen; random, evolution; FNAS's own rl settings; the screen on random and
  evolution; rl and evolution hardware-unaware) with 40 evaluations at 12 epochs and ``--final-k 5``
  at 200 epochs, over seeds: mean regret in 200-epoch validation accuracy below the best cell that
  meets the spec, with a 95% t-interval, and without the final training; the default strategy (rl)
  against random search, paired over the seeds (Wilcoxon signed-rank, one sided). Training cost in
  MAC-epochs.
* FNAS's ImageNet claims on Accel-NASBench, zcu102, int8, style shared (the style auto takes for
  these networks on zcu102, at a third of auto's analysis time): a seeded sample of 200 of the
  table's rows analyzed (about 4 s each: the whole table would take hours), specs at the 10/25/50%
  quantiles of their predicted latency; rl hardware-aware against rl hardware-unaware, the same
  number of episodes (100): the unaware winner's latency over the spec, the accuracy the aware
  search gives up against it, and the unaware search's training time over the aware one's (the
  table's measured training times).

Seeds: NAS-Bench-201 100 (quick: 20); Accel-NASBench 40 (quick: 10), its controller having 28
decisions to NAS-Bench-201's 6 (about 30 ms a step on this machine).
"""

from __future__ import annotations

import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from fnas_hls.boards import load_board
from fnas_hls.search.settings import SearchSettings
from fnas_hls.tabular.latency import LatencyTable, Predicted
from fnas_hls.tabular.search import TableRun, best_in_spec, regret, run_table_search
from fnas_hls.tabular.spaces import AccelNasBenchSpace, NasBench201Space, TableSearchSettings, TableSpace

QUANTILES = (0.10, 0.25, 0.50)
#: (label, strategy, hardware-aware, screen, entropy weight): "rl" is the space's default
#: (``search/nb201.yaml``: FNAS's controller, each child the predicted best of 20 proposals, entropy
#: 0.1), "random" the baseline it is paired against; FNAS's own settings (no screen, entropy 0.01)
#: and the screen on the other strategies beside them.
STRATEGIES = (
    ("rl", "rl", True, 20, 0.1),
    ("random", "random", True, 0, 0.01),
    ("evolution", "evolution", True, 0, 0.01),
    ("rl, FNAS's settings", "rl", True, 0, 0.01),
    ("random, screened", "random", True, 20, 0.01),
    ("evolution, screened", "evolution", True, 20, 0.01),
    ("rl (hw-unaware)", "rl", False, 20, 0.1),
    ("evolution (hw-unaware)", "evolution", False, 0, 0.01),
)

_space: TableSpace | None = None
_latency: dict[int, Predicted] = {}


def _init(space: TableSpace, known: dict[int, Predicted]) -> None:
    global _space, _latency
    _space, _latency = space, known
    import torch

    torch.set_num_threads(1)  # one worker a core: the controller's small LSTM gains nothing from more


def _one(job: tuple[str, bool, int, float, float, int, int, int, int, int | None]) -> dict[str, Any]:
    strategy, aware, screen, entropy, spec, seed, evaluations, final_k, episodes, best = job
    assert _space is not None
    run = TableRun(
        _space, spec, SearchSettings(episodes=episodes, strategy=strategy, entropy_weight=entropy),
        TableSearchSettings(evaluations=evaluations, final_k=final_k, screen=screen), hw_aware=aware,
        seed=seed,
    )  # fmt: skip
    o = run_table_search(run, _latency.__getitem__)
    any_lat = _latency[o.winner_any].latency_ms if o.winner_any is not None else None
    return {
        "regret": regret(_space, o.winner, best),
        "regret_short": regret(_space, o.winner_short, best),
        "cost": o.cost,
        "cost_short": o.cost_short,
        "episodes": o.stats["episodes"],
        "evaluated": len(o.evaluated),
        "winner_acc": _space.long(o.winner) if o.winner is not None else None,
        "any_acc": _space.long(o.winner_any) if o.winner_any is not None else None,
        "any_latency": any_lat,
    }


def _interval(xs: list[float]) -> dict[str, float]:
    n = len(xs)
    mean = statistics.fmean(xs) if xs else math.nan
    sd = statistics.stdev(xs) if n > 1 else 0.0
    from scipy import stats

    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n) if n > 1 else math.nan
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": n}


def _latency_table(space: TableSpace, board: str, precision: str, style: str) -> LatencyTable:
    lt = LatencyTable(space, load_board(board), precision, style)
    lt.load()
    if not lt.complete:
        print(f"bench tables: analyzing {space.rows - len(lt.known):,} rows of {space.name} ...", flush=True)
        lt.fill(jobs=2)
        lt.save()
    return lt


def _specs(lt: LatencyTable) -> list[float]:
    fit = sorted(p.latency_ms for p in lt.known.values() if p.fits and p.latency_ms is not None)
    return [fit[min(len(fit) - 1, int(q * len(fit)))] for q in QUANTILES]


def bench_nb201(seeds: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    space = NasBench201Space("nb201")
    lt = _latency_table(space, "pynq", "fixed16", "auto")
    analysis_s = time.perf_counter() - t0
    fits = sum(1 for p in lt.known.values() if p.fits)
    specs = _specs(lt)
    out: dict[str, Any] = {"cells": space.rows, "fit": fits, "analysis_seconds": analysis_s, "specs": {}}
    t1 = time.perf_counter()
    with ProcessPoolExecutor(2, initializer=_init, initargs=(space, lt.known)) as pool:
        for q, spec in zip(QUANTILES, specs, strict=True):
            best = best_in_spec(space, lt, spec)
            jobs = [
                (strategy, aware, screen, entropy, spec, seed, 40, 5, 6000, best)
                for _, strategy, aware, screen, entropy in STRATEGIES
                for seed in range(seeds)
            ]
            results = list(pool.map(_one, jobs, chunksize=4))
            per: dict[str, Any] = {}
            for i, (name, *_) in enumerate(STRATEGIES):
                rs = results[i * seeds : (i + 1) * seeds]
                reg = [r["regret"] for r in rs if r["regret"] is not None]
                reg_short = [r["regret_short"] for r in rs if r["regret_short"] is not None]
                per[name] = {
                    "regret": _interval(reg),
                    "regret_short": _interval(reg_short),
                    "no_winner": seeds - len(reg),
                    "cost": statistics.fmean(r["cost"] for r in rs),
                    "episodes": statistics.fmean(r["episodes"] for r in rs),
                    "values": [r["regret"] for r in rs],
                }
            paired = [
                (a, b)
                for a, b in zip(per["rl"]["values"], per["random"]["values"], strict=True)
                if a is not None and b is not None
            ]
            from scipy import stats

            diff = [a - b for a, b in paired]
            p = float(stats.wilcoxon(diff, alternative="less").pvalue) if any(diff) else 1.0
            for d in per.values():
                d.pop("values")
            out["specs"][f"{int(q * 100)}%"] = {
                "spec_ms": spec,
                "best_long": space.long(best) if best is not None else None,
                "in_spec": sum(1 for pr in lt.known.values() if pr.meets(spec)),
                "strategies": per,
                "rl_vs_random_p": p,
                "rl_better_seeds": sum(1 for x in diff if x < 0),
                "rl_worse_seeds": sum(1 for x in diff if x > 0),
            }
    out["search_seconds"] = time.perf_counter() - t1
    out["seeds"] = seeds
    return out


def bench_anb(sample: int, seeds: int, episodes: int = 100) -> dict[str, Any]:
    t0 = time.perf_counter()
    space = AccelNasBenchSpace("accel-nasbench", sample=sample)
    lt = _latency_table(space, "zcu102", "int8", "shared")
    analysis_s = time.perf_counter() - t0
    specs = _specs(lt)
    out: dict[str, Any] = {"rows": space.rows, "analysis_seconds": analysis_s, "specs": {}}
    with ProcessPoolExecutor(2, initializer=_init, initargs=(space, lt.known)) as pool:
        for q, spec in zip(QUANTILES, specs, strict=True):
            jobs = [
                ("rl", aware, 0, 0.01, spec, seed, 10**6, 0, episodes, None)
                for aware in (True, False)
                for seed in range(seeds)
            ]
            results = list(pool.map(_one, jobs, chunksize=4))
            aware, unaware = results[:seeds], results[seeds:]
            over = [u["any_latency"] / spec for u in unaware if u["any_latency"] is not None]
            gives = [
                u["any_acc"] - a["winner_acc"]
                for a, u in zip(aware, unaware, strict=True)
                if a["winner_acc"] is not None and u["any_acc"] is not None
            ]
            time_ratio = [u["cost"] / a["cost"] for a, u in zip(aware, unaware, strict=True) if a["cost"] > 0]
            out["specs"][f"{int(q * 100)}%"] = {
                "spec_ms": spec,
                "unaware_latency_over_spec": _spread(over),
                "accuracy_given_up": _spread(gives),
                "unaware_time_over_aware": _spread(time_ratio),
                "aware_without_winner": sum(1 for a in aware if a["winner_acc"] is None),
            }
    out["seconds"] = time.perf_counter() - t0
    out["seeds"] = seeds
    out["episodes"] = episodes
    return out


def _spread(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"median": math.nan, "p10": math.nan, "p90": math.nan, "mean": math.nan, "n": 0}
    s = sorted(xs)
    return {
        "median": statistics.median(s),
        "p10": s[int(0.1 * (len(s) - 1))],
        "p90": s[int(0.9 * (len(s) - 1))],
        "mean": statistics.fmean(s),
        "n": len(s),
    }


def bench_tables(mode: str) -> dict[str, Any]:
    quick = mode == "quick"
    return {
        "nb201": bench_nb201(20 if quick else 100),
        # 28 decisions make the controller's step ~30 ms: 40 seeds x 2 x 3 specs x 100 episodes is ~10 min
        "anb": bench_anb(200, 10 if quick else 40),
    }


def tables_table(r: dict[str, Any]) -> str:
    nb = r["nb201"]
    lines = [
        f"NAS-Bench-201 (CIFAR-10) on pynq, fixed16, auto: {nb['fit']:,} of {nb['cells']:,} cells fit; "
        f"{nb['seeds']} seeds a strategy, 40 evaluations (12 epochs) + final-k 5 (200 epochs). Regret: "
        "points of 200-epoch validation top-1 below the best cell that meets the spec (mean [95% interval]).",
        "",
        "| spec (quantile) | strategy | regret, final-k 5 | regret, short only | cost (G MAC-epochs) "
        "| episodes |",
        "|---|---|---|---|---|---|",
    ]
    for q, d in nb["specs"].items():
        for name, s in d["strategies"].items():
            reg, rs = s["regret"], s["regret_short"]
            lines.append(
                f"| {d['spec_ms']:.3g} ms ({q}; {d['in_spec']:,} cells, best {d['best_long']:.2f}) "
                f"| {name} | "
                f"{reg['mean']:.2f} [{reg['lo']:.2f}, {reg['hi']:.2f}] | {rs['mean']:.2f} [{rs['lo']:.2f}, "
                f"{rs['hi']:.2f}] | {s['cost']:.1f} | {s['episodes']:.0f} |"
            )
        lines.append(
            f"| {q} | rl vs random, paired | p = {d['rl_vs_random_p']:.3g} (rl better on "
            f"{d['rl_better_seeds']}, worse on {d['rl_worse_seeds']} seeds) | | | |"
        )
    an = r["anb"]
    lines += [
        "",
        f"FNAS's ImageNet claims on Accel-NASBench ({an['rows']} rows sampled; zcu102, int8, shared): rl "
        f"hardware-aware vs hardware-unaware, {an['episodes']} episodes each, {an['seeds']} seeds "
        "(median [p10, p90]).",
        "",
        "| spec (quantile) | unaware winner's latency / spec (paper 7.81x) "
        "| accuracy given up (paper < 1 point) | unaware / aware training time (paper up to 11.13x) |",
        "|---|---|---|---|",
    ]
    for q, d in an["specs"].items():
        cells = [d[k] for k in ("unaware_latency_over_spec", "accuracy_given_up", "unaware_time_over_aware")]
        lines.append(
            f"| {d['spec_ms']:.3g} ms ({q}) | "
            + " | ".join(f"{c['median']:.2f} [{c['p10']:.2f}, {c['p90']:.2f}]" for c in cells)
            + " |"
        )
    return "\n".join(lines)
