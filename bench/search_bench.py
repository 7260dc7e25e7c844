"""FNAS's three headline claims, measured on this machine with the real ``fnas-hls search``.

For each latency spec (loose to tight, read off the space's own latency distribution), three
searches with the same seed and the same number of sampled children:

* ``fnas``: RL controller, children that break the spec pruned without training;
* ``hw-unaware``: the same controller rewarded by accuracy alone, every child trained, latency
  checked only afterwards (the NAS that FNAS compares against);
* ``random``: random sampling with the same pruning.

From their ``children.jsonl``: wall time, children trained and pruned, best accuracy, best
accuracy among children that meet the spec, and how far over the spec the architecture each
would deliver (its most accurate child) lies. The paper's figures are ratios of these:
hardware-unaware latency over the spec (7.81x on ImageNet), the accuracy FNAS gives up against
hardware-unaware NAS (under 1%), and hardware-unaware time over FNAS time (up to 11.13x).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fnas_hls.boards import load_board
from fnas_hls.search.datasets import DEFAULT_DIRS, MNIST_FILES
from fnas_hls.search.space import load_space
from fnas_hls.search.sweep import sweep

STRATEGIES = {
    "fnas": ["--strategy", "rl"],
    "hw-unaware": ["--strategy", "rl", "--hw-unaware"],
    "random": ["--strategy", "random"],
}


def _run_search(
    space: str,
    board: str,
    spec_ms: float,
    episodes: int,
    epochs: int | None,
    seed: int,
    extra: list[str],
    out: Path,
) -> tuple[float, list[dict[str, Any]]]:
    cmd = [
        sys.executable,
        "-m",
        "fnas_hls.cli",
        "search",
        "--space",
        space,
        "--board",
        board,
        "--spec-ms",
        f"{spec_ms:.6g}",
        "--episodes",
        str(episodes),
        "--seed",
        str(seed),
        "--out",
        str(out),
        *extra,
    ]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    log = out / "children.jsonl"
    if proc.returncode != 0 and not log.is_file():
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    # A search that ends with no child meeting the spec exits 2 but leaves its log: an outcome.
    children = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return seconds, children


def summarize(children: list[dict[str, Any]], spec_ms: float, seconds: float) -> dict[str, Any]:
    trained = [c for c in children if c.get("accuracy") is not None]
    meets = [
        c for c in trained if c.get("fits") and c.get("latency_ms") is not None and c["latency_ms"] <= spec_ms
    ]
    best = max(trained, key=lambda c: c["accuracy"], default=None)
    best_ok = max(meets, key=lambda c: c["accuracy"], default=None)
    return {
        "seconds": seconds,
        "children": len(children),
        "trained": len(trained),
        "pruned": sum(1 for c in children if c.get("pruned")),
        "best_accuracy": best["accuracy"] if best else None,
        "best_latency_ms": best["latency_ms"] if best else None,
        "best_over_spec": (best["latency_ms"] / spec_ms) if best and best.get("latency_ms") else None,
        "best_meeting_spec_accuracy": best_ok["accuracy"] if best_ok else None,
        "best_meeting_spec_latency_ms": best_ok["latency_ms"] if best_ok else None,
    }


def mnist_present() -> bool:
    """Whether the MNIST idx files are in ``data/mnist/`` (the fnas-mnist space's default folder)."""
    folder = DEFAULT_DIRS["mnist"]
    return all((folder / name).is_file() or (folder / f"{name}.gz").is_file() for name in MNIST_FILES)


def bench_search(mode: str, board: str = "pynq", space_name: str = "digits") -> dict[str, Any]:
    """The three searches side by side on ``space_name``; and on FNAS's MNIST space (paper's 8 ms
    spec, shortened training) when the MNIST files are present."""
    result = _bench_space(mode, board, space_name)
    if mode == "full" and space_name == "digits":
        result["fnas-mnist"] = (
            _bench_space(mode, board, "fnas-mnist", specs=[8.0], episodes=12, epochs=1)
            if mnist_present()
            else {"skipped": f"MNIST files absent from {DEFAULT_DIRS['mnist']}/"}
        )
    return result


def _bench_space(
    mode: str,
    board: str,
    space_name: str,
    specs: list[float] | None = None,
    episodes: int | None = None,
    epochs: int | None = None,
) -> dict[str, Any]:
    space = load_space(space_name)
    b = load_board(board)
    dist = sweep(space, b, jobs=os.cpu_count(), style="auto")  # the style the searches use
    lat = dist.latency_ms[dist.valid & dist.fits]
    if specs is None:
        quantiles = (0.5,) if mode == "quick" else (0.25, 0.5, 0.75)
        specs = [float(np.quantile(lat, q)) for q in quantiles]
    else:
        quantiles = tuple(float((lat <= s).mean()) for s in specs)
    if episodes is None:
        episodes = 16 if mode == "quick" else 40
        epochs = 5 if mode == "quick" else None
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fnas-bench-") as tmp:
        for spec, q in zip(specs, quantiles, strict=True):
            row: dict[str, Any] = {
                "spec_ms": spec,
                "spec_quantile": q,
                "space_meeting_spec": float((lat <= spec).mean()),
            }
            for name, extra in STRATEGIES.items():
                out = Path(tmp) / f"{name}-{q}"
                seconds, children = _run_search(space.source, board, spec, episodes, epochs, 0, extra, out)
                row[name] = summarize(children, spec, seconds)
            f, h = row["fnas"], row["hw-unaware"]
            row["speedup_hw_unaware_over_fnas"] = h["seconds"] / f["seconds"]
            row["hw_unaware_over_spec"] = h["best_over_spec"]
            if f["best_meeting_spec_accuracy"] is not None and h["best_accuracy"] is not None:
                row["accuracy_loss_fnas_vs_hw_unaware"] = h["best_accuracy"] - f["best_meeting_spec_accuracy"]
            else:
                row["accuracy_loss_fnas_vs_hw_unaware"] = None
            runs.append(row)
    return {
        "space": space.name,
        "board": board,
        "episodes": episodes,
        "epochs": epochs,
        "runs": runs,
        "architectures_per_second_sweep": len(dist.cycles) / dist.seconds,
    }


def _f(v: float | None, fmt: str, unit: str = "") -> str:
    return "-" if v is None else format(v, fmt) + unit


def search_table(r: dict[str, Any]) -> str:
    text = _space_table(r)
    mnist = r.get("fnas-mnist")
    if mnist is not None:
        text += "\n\nFNAS's MNIST space: " + (
            mnist["skipped"] if "skipped" in mnist else "\n\n" + _space_table(mnist)
        )
    return text


def _space_table(r: dict[str, Any]) -> str:
    lines = [
        f"Space `{r['space']}` on {r['board']}, {r['episodes']} children per search, seed 0.",
        "",
        "| spec ms (share of space meeting it) | search | seconds | trained | pruned | best acc | "
        "best acc meeting spec | delivered latency / spec |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["runs"]:
        for name in STRATEGIES:
            s = row[name]
            lines.append(
                f"| {row['spec_ms']:.4g} ({100 * row['space_meeting_spec']:.0f}%) | {name} "
                f"| {s['seconds']:.0f} | "
                f"{s['trained']} | {s['pruned']} | {_f(s['best_accuracy'], '.4f')} | "
                f"{_f(s['best_meeting_spec_accuracy'], '.4f')} | {_f(s['best_over_spec'], '.2f', 'x')} |"
            )
    lines += [
        "",
        "| spec ms | hw-unaware latency / spec (paper: 7.81x) | accuracy FNAS gives up (paper: < 1%) "
        "| hw-unaware time / FNAS time (paper: up to 11.13x) |",
        "|---|---|---|---|",
    ]
    for row in r["runs"]:
        loss = row["accuracy_loss_fnas_vs_hw_unaware"]
        lines.append(
            f"| {row['spec_ms']:.4g} | {_f(row['hw_unaware_over_spec'], '.2f', 'x')} | "
            f"{'-' if loss is None else f'{100 * loss:.2f} points'} | "
            f"{row['speedup_hw_unaware_over_fnas']:.2f}x |"
        )
    return "\n".join(lines)
