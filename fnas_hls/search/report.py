"""The run's report: ``report.md`` with the best children, and the PNG plots.

- ``reward.png``: the reward of every episode and its moving average;
- ``accuracy_latency.png``: validation accuracy against predicted latency for every trained child,
  the spec line, the Pareto front (most accurate for its latency), pruned children as ticks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fnas_hls.io_utils import write_text_atomic
from fnas_hls.search.final import spearman
from fnas_hls.search.finalize import BestResult
from fnas_hls.search.loop import best_record
from fnas_hls.search.rundir import RunConfig
from fnas_hls.search.space import SEARCHED

TOP = 10
PLOT_CAPTIONS = {
    "reward.png": "reward of every episode and its moving average",
    "accuracy_latency.png": "validation accuracy against predicted latency: trained children, pruned "
    "ones as ticks, the spec line and the Pareto front",
}


def arch_summary(record: dict[str, Any]) -> str:
    """``k3 f16 max | k5 f32 - | ...``: the choices of each searched layer (and the precision, where
    the search chose it)."""
    parts = []
    for layer in record["choice"]:
        bits = []
        for name, value in layer.items():
            if name == "kernel":
                bits.append(f"k{value}")
            elif name == "filters":
                bits.append(f"f{value}")
            elif name == "stride":
                bits.append(f"s{value}")
            elif name == "pool":
                bits.append("-" if value == "none" else value)
        parts.append(" ".join(bits))
    if record.get("precision"):
        parts.append(record["precision"])
    return " \\| ".join(parts)


def unique_trained(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per trained architecture (its first)."""
    seen: set[str] = set()
    out = []
    for r in records:
        if r.get("accuracy") is not None and r["key"] not in seen:
            seen.add(r["key"])
            out.append(r)
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(latency, accuracy) points no other point beats in both, by increasing latency."""
    front: list[tuple[float, float]] = []
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((lat, acc))
    return front


def plot(out: Path, cfg: RunConfig, records: list[dict[str, Any]]) -> list[str]:
    """Write the two PNG plots; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for name, fig in (
        ("reward.png", reward_figure(cfg, records)),
        ("accuracy_latency.png", accuracy_figure(cfg, records)),
    ):
        fig.savefig(out / name)
        plt.close(fig)
        files.append(name)
    return files


def _figure(height: float) -> tuple[Any, Any]:
    """A figure whose legend goes below the axes (``_legend``), where it hides no point."""
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, height), dpi=110, layout="constrained")


def _legend(fig: Any, ax: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 3), fontsize=8)


def reward_figure(cfg: RunConfig, records: list[dict[str, Any]]) -> Any:
    """Reward per episode with its moving average; the legend below the axes."""
    rewards = np.array([r["reward"] for r in records], dtype=float)
    fig, ax = _figure(4.0)
    ax.plot(np.arange(len(rewards)), rewards, ".", color="tab:blue", label="reward")
    if len(rewards):
        avg, avgs = rewards[0], []
        for r in rewards:
            avg = 0.9 * avg + 0.1 * r
            avgs.append(avg)
        ax.plot(np.arange(len(rewards)), avgs, "-", color="tab:orange", label="moving average (0.9)")
    ax.set_xlabel("episode")
    ax.set_ylabel(f"reward ({cfg.search.reward})")
    ax.set_title(f"{cfg.space.name} on {cfg.board.name}: reward per episode ({cfg.search.strategy})")
    ax.grid(alpha=0.3)
    _legend(fig, ax)
    return fig


def accuracy_figure(cfg: RunConfig, records: list[dict[str, Any]]) -> Any:
    """Validation accuracy against predicted latency: trained children, the pruned ones as ticks
    under them, the Pareto front and the spec; the legend below the axes."""
    trained = unique_trained(records)
    fig, ax = _figure(4.8)
    ok = [r for r in trained if r["meets_spec"]]
    bad = [r for r in trained if not r["meets_spec"]]
    if ok:
        ax.scatter(
            [r["latency_ms"] for r in ok], [r["accuracy"] for r in ok], s=18, label="trained, meets spec"
        )
    if bad:
        ax.scatter(
            [r["latency_ms"] for r in bad],
            [r["accuracy"] for r in bad],
            s=18,
            marker="x",
            color="tab:red",
            label="trained, breaks spec",
        )
    pruned = {r["key"]: r["latency_ms"] for r in records if r["pruned"] and r["latency_ms"] is not None}
    if pruned:
        ymin = min([r["accuracy"] for r in trained] + [1.0])
        ax.scatter(
            list(pruned.values()),
            [ymin - 0.02] * len(pruned),
            marker="|",
            color="grey",
            label="pruned (not trained)",
        )
    front = pareto_front([(r["latency_ms"], r["accuracy"]) for r in trained])
    if front:
        ax.step(
            [p[0] for p in front],
            [p[1] for p in front],
            where="post",
            color="tab:green",
            label="Pareto front",
        )
    ax.axvline(cfg.spec_ms, color="black", linestyle="--", label=f"spec {cfg.spec_ms:g} ms")
    ax.set_xlabel(f"predicted latency on {cfg.board.name} (ms)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{cfg.space.name}: accuracy vs predicted latency")
    ax.grid(alpha=0.3)
    _legend(fig, ax)
    return fig


def top_table(records: list[dict[str, Any]], n: int = TOP) -> list[str]:
    """Markdown rows of the ``n`` most accurate trained children (any latency)."""
    trained = sorted(unique_trained(records), key=lambda r: (-r["accuracy"], r["latency_ms"]))[:n]
    rows = [
        "| rank | episode | architecture (per layer: kernel, filters, pool) | style | latency ms | "
        "meets spec | DSP | BRAM18K | val acc | reward |",
        "|---:|---:|---|---|---:|:---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(trained, 1):
        rows.append(
            f"| {i} | {r['episode']} | {arch_summary(r)} | {r.get('style') or 'sequential'} | "
            f"{r['latency_ms']:.4f} | "
            f"{'yes' if r['meets_spec'] else 'no'} | {r['dsp']} | {r['bram18k']} | {r['accuracy']:.4f} | "
            f"{r['reward']:+.4f} |"
        )
    return rows


def final_section(cfg: RunConfig, final: list[dict[str, Any]]) -> list[str]:
    """The final training's table: each retrained child's search (proxy) accuracy against its
    final validation and test accuracy, and whether the proxy's ranking held (Spearman)."""
    f = cfg.final
    rho = spearman([r["proxy_accuracy"] for r in final], [r["val_accuracy"] for r in final])
    held = "fewer than 3 children or a tie throughout" if rho is None else f"{rho:.3f}"
    lines = [
        "## Final training",
        "",
        f"The {len(final)} most accurate children that meet the spec (final.k {f.k}), retrained from scratch "
        "on the whole training split "
        f"({f.optimizer}, lr {f.lr:g} on a cosine schedule, batch {f.batch_size}, up to {f.epochs} epochs, "
        f"early stopping after {f.patience} without a better validation accuracy); the winner is the best "
        "on validation. Spearman of the search's accuracy against the final validation accuracy: "
        f"{held}.",
        "",
        "| key | latency (ms) | search val acc | final val acc | final test acc | best epoch / run | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in final:
        lines.append(
            f"| `{r['key']}` | {r['latency_ms']:.4f} | {r['proxy_accuracy']:.4f} | {r['val_accuracy']:.4f} | "
            f"{r['test_accuracy']:.4f} | {r['best_epoch']} / {r['epochs']} | {r['seconds']:.0f} "
            f"({r['device']}) |"
        )
    qat = [r for r in final if r.get("qat")]
    if qat:
        lines += [
            "",
            f"Then quantization-aware training ({f.qat_epochs} epochs at lr {f.qat_lr:g}, cosine) in the "
            "design's precision, scored by the model that rounds as the kernels do (bit for bit the "
            "reference model): its accuracy against post-training quantization of the float weights. "
            "The winner is the best design on validation: quantized.",
            "",
            "| key | precision | float test acc | PTQ val / test acc | QAT val / test acc | best epoch / run "
            "| s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in qat:
            q = r["qat"]
            lines.append(
                f"| `{r['key']}` | {q['precision']} | {r['test_accuracy']:.4f} | "
                f"{q['ptq_val_accuracy']:.4f} / {q['ptq_test_accuracy']:.4f} | "
                f"{q['val_accuracy']:.4f} / {q['test_accuracy']:.4f} | "
                f"{q['best_epoch']} / {q['epochs']} | {q['seconds']:.0f} |"
            )
    return [*lines, ""]


def _precision_text(cfg: RunConfig) -> str:
    if cfg.precision != SEARCHED:
        return cfg.precision
    return (
        f"precision searched ({', '.join(cfg.space.precisions)}; each child scored by its quantized "
        "validation accuracy)"
    )


def write_report(
    out: Path,
    cfg: RunConfig,
    records: list[dict[str, Any]],
    best: BestResult | None,
    seconds: float,
    plots: bool = True,
    final: list[dict[str, Any]] | None = None,
) -> Path:
    """Write ``report.md`` (and the plots) for the run in ``out``; ``final``: its final training's
    lines, best first (the winner is then the first)."""
    trained = [r for r in records if not r["pruned"] and not r["cached"] and not r["failed"]]
    pruned = [r for r in records if r["pruned"]]
    failed = [r for r in records if r["failed"] and not r["cached"]]
    cached = [r for r in records if r["cached"]]
    mode = "hardware-aware (prune, then train)" if cfg.hw_aware else "hardware-unaware (train all)"
    lines = [
        f"# Search report: {cfg.space.name} on {cfg.board.name}",
        "",
        f"- space: `{cfg.space.source}` ({cfg.space.size:,} architectures), dataset `{cfg.space.dataset}`",
        f"- board: {cfg.board.name} ({cfg.board.part}), {_precision_text(cfg)}, spec {cfg.spec_ms:g} ms",
        f"- strategy: {cfg.search.strategy}, reward: {cfg.search.reward}, {mode}, seed {cfg.seed}",
        f"- episodes: {len(records)}; trained: {len(trained)}; pruned: {len(pruned)}; "
        f"failed: {len(failed)}; repeats (not retrained): {len(cached)}",
        f"- training: {cfg.train.optimizer}, lr {cfg.train.lr:g}, batch {cfg.train.batch_size}, "
        f"up to {cfg.train.epochs} epochs (best validation accuracy kept)",
        f"- search time: {seconds:.1f} s",
        "",
    ]
    winner = best_record(records)
    if final:
        winner = next(r for r in records if r["key"] == final[0]["key"])
    if winner is None:
        lines += ["**No trained child meets the spec.**", ""]
    else:
        lines += [
            "## Best child meeting the spec",
            "",
            f"- architecture: {arch_summary(winner).replace(chr(92), '')} (episode {winner['episode']}, "
            f"key `{winner['key']}`)",
            f"- predicted latency: {winner['latency_ms']:.4f} ms (spec {cfg.spec_ms:g} ms), "
            f"DSP {winner['dsp']}, BRAM18K {winner['bram18k']}",
            f"- validation accuracy: {winner['accuracy']:.4f}"
            + (f" in the search; {final[0]['val_accuracy']:.4f} after final training" if final else ""),
        ]
        if best is not None:
            lines.append(f"- test accuracy (float, torch): {best.test_accuracy:.4f}")
            o = best.onnx
            lines.append(
                f"- ONNX: checker {o.get('checker')}; reference evaluator vs torch on {o.get('samples')} "
                f"validation inputs: max abs diff {o.get('max_abs_diff', float('nan')):.2e}, top-1 agreement "
                f"{o.get('top1_agreement', float('nan')):.3f}; "
                f"re-imported IR equal: {o.get('reimport_same_network')}"
            )
            h = best.hls
            if h.get("status") == "emitted":
                c = h["csim"]
                lines.append(
                    f"- quantized ({h.get('precision', cfg.precision)}) test accuracy, bit-exact reference "
                    "model: "
                    f"{h['quantized_test_accuracy']:.4f} on {h['quantized_test_samples']} images"
                )
                lines.append(
                    f"- HLS project: `best/hls/` (top `{h['top']}`); C simulation: bit exact "
                    f"{c.get('bit_exact')}, {c.get('vectors')} vectors, max abs error vs float "
                    f"{c.get('max_abs_error', float('nan')):.3g}"
                )
            else:
                lines.append(f"- HLS: {h.get('status')}")
        lines.append("")
    most = best_record(records, meeting_spec=False)
    if most is not None and (winner is None or most["key"] != winner["key"]):
        lines += [
            f"Most accurate child overall: {arch_summary(most).replace(chr(92), '')}, accuracy "
            f"{most['accuracy']:.4f} at {most['latency_ms']:.4f} ms "
            f"({'meets' if most['meets_spec'] else 'breaks'} the spec).",
            "",
        ]
    if final:
        lines += final_section(cfg, final)
    lines += ["## Most accurate children", "", *top_table(records), ""]
    if failed:
        lines += ["## Failed children", ""]
        lines += [f"- episode {r['episode']} `{r['key']}`: {r['error']}" for r in failed]
        lines.append("")
    if plots and records:
        files = plot(out, cfg, records)
        lines += ["## Plots", ""] + [f"![{PLOT_CAPTIONS.get(f, f)}]({f})" for f in files] + [""]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines), "report.md")
    return path
