"""The folder a table search leaves (``fnas-hls search --evaluate table``).

```
table_search.json  what decided the run (space, table, board, precision, style, spec, seed, strategy,
                   budget) and the command that repeats it; marks the folder as a table search's
children.jsonl     one line per episode: the child (``cellstr`` or ``id``), its row, latency, pruned or
                   evaluated, accuracy, reward, cost
pareto.json        the evaluated children that fit and that no other beats on accuracy, latency, DSPs
                   and BRAM at once: one search serves every spec
best/summary.json  the winner at the spec (``cellstr`` or ``id``), its accuracies, latency, resources,
                   and the finalists retrained at the long fidelity
report.md          the above for a person, with accuracy_latency.png
```

Nothing is half-written: each file goes through a temporary file and a rename.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fnas_hls.errors import FnasError
from fnas_hls.io_utils import remove_entries, write_json_atomic, write_text_atomic
from fnas_hls.tabular.latency import Predicted
from fnas_hls.tabular.search import TableOutcome, TableRun, pareto_rows
from fnas_hls.tabular.spaces import TableSpace

MARKER = "table_search.json"
OURS = (MARKER, "children.jsonl", "pareto.json", "best", "report.md", "accuracy_latency.png")


def prepare_folder(out: Path, force: bool) -> None:
    """Refuse an ``out`` that holds something (a previous table search needs ``force``)."""
    if out.exists() and not out.is_dir():
        raise FnasError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            if (out / MARKER).is_file():
                raise FnasError(f"--out {out}: holds a previous table search; pass --force to run it again")
            raise FnasError(
                f"--out {out}: folder exists and is not a table search of ours (no {MARKER}); choose another "
                "--out or pass --force to write into it"
            )
        remove_entries(out, OURS)
    out.mkdir(parents=True, exist_ok=True)


def child_summary(space: TableSpace, row: int, pred: Predicted, spec_ms: float) -> dict[str, Any]:
    d: dict[str, Any] = {space.child_field: space.name_of(row), "row": row}
    d["accuracy_short"] = space.short(row)
    if space.has_long:
        d["accuracy_long"] = space.long(row)
    d.update(
        latency_ms=pred.latency_ms, meets_spec=pred.meets(spec_ms), fits=pred.fits, style=pred.style,
        dsp=pred.dsp, bram18k=pred.bram18k,
    )  # fmt: skip
    return d


def write_outputs(
    out: Path,
    run: TableRun,
    outcome: TableOutcome,
    latency: Callable[[int], Predicted],
    config: dict[str, Any],
    board: str,
) -> Path:
    """Every file of the folder; returns the report's path."""
    space = run.space
    write_json_atomic(out / MARKER, config, MARKER)
    write_text_atomic(out / "children.jsonl", "".join(json.dumps(r) + "\n" for r in outcome.records))
    front = pareto_rows(outcome.evaluated, space, latency)
    write_json_atomic(
        out / "pareto.json",
        {
            "objectives": ["accuracy_short (max)", "latency_ms (min)", "dsp (min)", "bram18k (min)"],
            "board": board,
            "precision": config["precision"],
            "children": [child_summary(space, r, latency(r), run.spec_ms) for r in front],
        },
        "pareto.json",
    )
    best = out / "best"
    best.mkdir(exist_ok=True)
    summary: dict[str, Any] = {"spec_ms": run.spec_ms, "winner": None}
    if outcome.winner is not None:
        w = outcome.winner
        summary = {
            **child_summary(space, w, latency(w), run.spec_ms),
            "spec_ms": run.spec_ms,
            "scored_by": _scored_by(space),
        }
    summary["finalists"] = [child_summary(space, r, latency(r), run.spec_ms) for r in outcome.finalists]
    summary["evaluations"] = len(outcome.evaluated)
    summary["cost"] = {"short": outcome.cost_short, "long": outcome.cost_long, "unit": space.cost_unit}
    write_json_atomic(best / "summary.json", summary, "best/summary.json")
    figure = _plot(out, run, outcome, latency, front)
    report = out / "report.md"
    write_text_atomic(report, _report(run, outcome, latency, front, config, figure), "report.md")
    return report


def _scored_by(space: TableSpace) -> str:
    if space.table == "nasbench201":
        return (
            "200-epoch CIFAR-10 validation top-1"
            if space.has_long
            else f"12-epoch {space.dataset} test top-1"
        )
    return "proxy-trained ImageNet validation top-1 (the table's only fidelity)"


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def _report(
    run: TableRun,
    outcome: TableOutcome,
    latency: Callable[[int], Predicted],
    front: list[int],
    config: dict[str, Any],
    figure: str | None,
) -> str:
    space = run.space
    name = space.child_field
    pruned = sum(1 for r in outcome.records if r["pruned"])
    lines = [
        f"# Table search: {space.name} ({space.table}, {space.dataset}) on {config['board']}",
        "",
        f"- strategy {config['strategy']}{'' if run.hw_aware else ', hardware-unaware'}, seed {run.seed}, "
        f"spec {run.spec_ms:g} ms, precision {config['precision']}, style {config['style']}",
        f"- {len(outcome.records)} episodes: {len(outcome.evaluated)} children evaluated (each once; a "
        f"child seen again is free), {pruned} pruned without evaluation",
        *(
            [
                f"- screen: after the first {run.table_search.screen_after} evaluations, each child "
                f"evaluated was the best of {run.table_search.screen} new in-spec proposals by an accuracy "
                "predictor "
                f"(ridge regression on the decisions); {int(outcome.stats.get('screened_out', 0))} proposals "
                "screened out, never evaluated"
            ]
            if run.table_search.screen
            else []
        ),
        f"- accuracy: the table's {_short_name(space)}; latency, DSPs and BRAM: fnas-hls's model",
        f"- training cost: {outcome.cost_short:,.1f} {space.cost_unit} for the evaluations, "
        f"{outcome.cost_long:,.1f} for the final training of {len(outcome.finalists)}",
        "",
    ]
    far = [r["distance"] for r in outcome.records if "distance" in r]
    if space.table == "accel-nasbench":
        lines += [
            "Accel-NASBench is a sample of its space: each proposal was taken to the table's nearest row "
            f"(fewest differing decisions); {len(far)} of {len(outcome.records)} proposals were not rows "
            f"themselves{f', a median {sorted(far)[len(far) // 2]} decisions away' if far else ''}.",
            "",
        ]
    if outcome.winner is None:
        lines += [f"**No evaluated child meets the {run.spec_ms:g} ms spec.**", ""]
    else:
        w = outcome.winner
        p = latency(w)
        lines += [
            f"## Winner: {name} `{space.name_of(w)}`",
            "",
            f"{_scored_by(space)} {space.long(w):.2f}%, short {space.short(w):.2f}%, "
            f"{_fmt(p.latency_ms)} ms ({p.style}), {p.dsp} DSP, {p.bram18k} BRAM18K.",
            "",
        ]
    if outcome.finalists:
        lines += [
            f"## Final training (--final-k {len(outcome.finalists)}): does the short ranking hold?",
            "",
            f"| {name} | short top-1 | long top-1 | latency ms |",
            "|---|---|---|---|",
        ]
        for r in outcome.finalists:
            lines.append(
                f"| {_cell(space.name_of(r))} | {space.short(r):.2f} | {space.long(r):.2f} | "
                f"{_fmt(latency(r).latency_ms)} |"
            )
        lines.append("")
    lines += [
        "## Pareto set (pareto.json): accuracy, latency, DSPs, BRAM",
        "",
        f"| {name} | short top-1 | latency ms | style | DSP | BRAM18K |",
        "|---|---|---|---|---|---|",
    ]
    for r in front:
        p = latency(r)
        lines.append(
            f"| {_cell(space.name_of(r))} | {space.short(r):.2f} | {_fmt(p.latency_ms)} | {p.style} "
            f"| {p.dsp} | {p.bram18k} |"
        )
    if figure:
        lines += ["", f"![accuracy against latency]({figure})"]
    lines += ["", f"Repeat: `{config.get('command', '')}`", ""]
    return "\n".join(lines)


def _cell(name: str) -> str:
    """A child's name in a Markdown table cell (a cell string's bars escaped)."""
    return "`" + name.replace("|", "\\|") + "`"


def _short_name(space: TableSpace) -> str:
    if space.table == "nasbench201":
        return f"12-epoch {space.dataset} validation top-1"
    return "proxy-trained ImageNet top-1"


def _plot(
    out: Path,
    run: TableRun,
    outcome: TableOutcome,
    latency: Callable[[int], Predicted],
    front: list[int],
) -> str | None:
    """Short accuracy against latency of the evaluated children, the Pareto set and the spec."""
    rows = [r for r in outcome.evaluated if latency(r).latency_ms is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    space = run.space
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=110, layout="constrained")
    ax.scatter([latency(r).latency_ms for r in rows], [space.short(r) for r in rows], s=16, label="evaluated")
    if front:
        ax.step(
            [latency(r).latency_ms for r in front], [space.short(r) for r in front], where="post",
            color="tab:green", label="Pareto set",
        )  # fmt: skip
    ax.axvline(run.spec_ms, color="black", linestyle="--", label=f"spec {run.spec_ms:g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel(f"{_short_name(space)} (%)")
    ax.set_title(f"{space.name}: evaluated children")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
    fig.savefig(out / "accuracy_latency.png")
    plt.close(fig)
    return "accuracy_latency.png"
