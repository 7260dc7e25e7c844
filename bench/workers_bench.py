"""``make bench`` section ``workers``: the same search in-process and on Ray, as a wall-time ratio.

The Fashion-MNIST search (``--mode quick``: digits) with batch 4 (the controller samples four
children per update, the ones that meet the spec train at once), run by the real CLI in a
subprocess: in-process, then on a local Ray instance of 2 workers (``--workers 2``), one after the
other on this machine. Both logs must
be the same (keys, accuracies, rewards); the section says so. Without Ray installed the section
records that it did not run.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(out: Path, space: str, episodes: int, *extra: str) -> tuple[float, list]:
    cmd = [sys.executable, "-m", "fnas_hls.cli", "search", "--space", space, "--board", "pynq"]
    cmd += ["--episodes", str(episodes), "--batch", "4", "--no-hls", "--final-k", "0"]
    cmd += ["--out", str(out), *extra]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"search failed: {res.stderr[-2000:]}")
    lines = (out / "children.jsonl").read_text().splitlines()
    log = [json.loads(x) for x in lines if x.strip()]
    return seconds, [(r["key"], r["accuracy"], r["reward"]) for r in log]


def bench_workers(mode: str) -> dict:
    if importlib.util.find_spec("ray") is None:
        return {"ran": False, "why": "Ray is not installed (pip install 'fnas-hls[ray]')"}
    # a spec every child meets, so that every child of a batch trains and the workers have work
    space, episodes = ("digits", 16) if mode == "quick" else ("fashion", 12)
    spec = ("--spec-ms", "1" if space == "digits" else "10")
    with tempfile.TemporaryDirectory() as tmp:
        t_in, log_in = _run(Path(tmp) / "in", space, episodes, *spec)
        t_ray, log_ray = _run(Path(tmp) / "ray", space, episodes, *spec, "--workers", "2")
    trained = len({key for key, acc, _ in log_in if acc is not None})
    keys_same = [k for k, _, _ in log_in] == [k for k, _, _ in log_ray]
    pairs = zip(log_in, log_ray, strict=False)  # the same length unless a run lost lines
    worst = max(
        (abs(a - b) for (_, a, _), (_, b, _) in pairs if a is not None and b is not None), default=0.0
    )
    return {
        "ran": True,
        "space": space,
        "episodes": episodes,
        "trained": trained,
        "in_process_s": t_in,
        "ray_2_workers_s": t_ray,
        "speedup": t_in / t_ray,
        "same_log": log_in == log_ray,
        "same_keys": keys_same,
        "largest_accuracy_difference": worst,
    }


def workers_table(d: dict) -> str:
    if not d.get("ran"):
        return f"not run: {d.get('why')}"
    return "\n".join(
        [
            f"| search ({d.get('space', 'digits')}, batch 4) | episodes | children trained | in-process "
            "| Ray, 2 workers | in-process / Ray |",
            "|---|---:|---:|---:|---:|---:|",
            f"| wall time, whole CLI run | {d['episodes']} | {d['trained']} | {d['in_process_s']:.1f} s | "
            f"{d['ray_2_workers_s']:.1f} s | {d['speedup']:.2f}x |",
            "",
            "The two logs are the same (keys, accuracies, rewards, in order): "
            + ("yes" if d["same_log"] else "NO")
            + (
                ""
                if d["same_log"] or "same_keys" not in d
                else f" (the same children in the same order: {'yes' if d['same_keys'] else 'NO'}; largest "
                f"accuracy difference {d['largest_accuracy_difference']:.4f})"
            ),
        ]
    )
