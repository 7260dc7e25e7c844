"""Does short child training rank architectures as longer training does?

A search trains each child briefly (a subset of the training data, a few epochs) and ranks the
children by that accuracy; the ranking is worth searching on only if longer training would order
them alike. This trains a seeded random sample of a space's architectures under each short setting
and under one long setting, and reports the rank correlation (Spearman's rho, Kendall's tau) of
each short setting's validation accuracies with the long ones, and the training time per child.

    python -m bench.rank_correlation --space fashion --sample 12 --short 5000x2 10000x3 --long 20000x6

Writes ``bench/rank_correlation.json`` (every child's accuracies and seconds) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from fnas_hls.search.datasets import load_dataset
from fnas_hls.search.final import ranks
from fnas_hls.search.loop import child_key, child_seed
from fnas_hls.search.space import load_space
from fnas_hls.search.trainer import train_child

HERE = Path(__file__).resolve().parent


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks."""
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def kendall(a: list[float], b: list[float]) -> float:
    """Kendall's tau-a over all pairs (ties count as neither concordant nor discordant)."""
    n, s = len(a), 0
    for i in range(n):
        for j in range(i + 1, n):
            s += int(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]))
    return 2.0 * s / (n * (n - 1))


def _setting(text: str) -> tuple[int, int]:
    subset, _, epochs = text.partition("x")
    return int(subset), int(epochs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="fashion")
    p.add_argument("--sample", type=int, default=12, help="architectures sampled (seeded)")
    p.add_argument("--short", nargs="+", default=["5000x2", "10000x3"], help="SUBSETxEPOCHS settings")
    p.add_argument("--long", default="20000x6", help="the reference SUBSETxEPOCHS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None, help="override the space's train.batch_size")
    p.add_argument("--lr", type=float, default=None, help="override the space's train.lr")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=str(HERE / "rank_correlation.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    space = load_space(args.space)
    base = space.train_settings
    if args.batch_size is not None:
        base = replace(base, batch_size=args.batch_size)
    if args.lr is not None:
        base = replace(base, lr=args.lr)
    data = load_dataset(space.dataset, args.data_dir, args.seed, base.val_fraction, base.test_fraction)
    archs = list(space.architectures())
    pick = np.random.default_rng(args.seed).choice(len(archs), args.sample, replace=False)
    settings = {s: _setting(s) for s in [*args.short, args.long]}
    children = []
    for i in pick:
        choice = archs[int(i)]
        net = space.build(choice)
        key = child_key(choice)
        row = {"key": key, "choice": space.describe(choice), "accuracy": {}, "seconds": {}}
        for name, (subset, epochs) in settings.items():
            t = replace(base, train_subset=subset, epochs=epochs, patience=None)
            r = train_child(net, data, t, child_seed(args.seed, key))
            row["accuracy"][name], row["seconds"][name] = r.accuracy, r.seconds
            print(f"{key} {name}: acc {r.accuracy:.4f} in {r.seconds:.1f} s", file=sys.stderr, flush=True)
        children.append(row)
    long = [c["accuracy"][args.long] for c in children]
    summary = {}
    for name in args.short:
        short = [c["accuracy"][name] for c in children]
        summary[name] = {
            "spearman": spearman(short, long),
            "kendall": kendall(short, long),
            "seconds_per_child": float(np.mean([c["seconds"][name] for c in children])),
            "accuracy_range": [min(short), max(short)],
        }
    result = {
        "space": space.name,
        "sample": args.sample,
        "seed": args.seed,
        "long": args.long,
        "train": base.as_dict(),
        "long_seconds_per_child": float(np.mean([c["seconds"][args.long] for c in children])),
        "long_accuracy_range": [min(long), max(long)],
        "short": summary,
        "children": children,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{space.name}: {args.sample} architectures; reference {args.long} (subset x epochs), "
        f"{result['long_seconds_per_child']:.0f} s per child"
    )
    print("| setting | Spearman | Kendall | s per child | accuracy range |")
    print("|---|---|---|---|---|")
    for name, s in summary.items():
        lo, hi = s["accuracy_range"]
        print(
            f"| {name} | {s['spearman']:.3f} | {s['kendall']:.3f} | {s['seconds_per_child']:.1f} | "
            f"{lo:.3f}-{hi:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
