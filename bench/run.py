"""``make bench``: the project's performance record, every figure a ratio or count from one run.

Section ``dse``: the DSE against a faithful FNAS-Design baseline (DSPs and BRAM split in
proportion to MACs, every integer tiling of each layer enumerated) over FNAS's MNIST space on
pynq, side by side:

* latency: the baseline's total latency over the DSE's, for every architecture of the space
  (the baseline's tilings found by enumerating only the useful tile sizes, which reaches exactly
  the exhaustive enumeration's latency; ``tests/test_dse.py`` checks that);
* time: the exhaustive baseline and the DSE with cold caches on the same sample of
  architectures, interleaved so that machine noise hits both alike; and the DSE's time per
  architecture over the whole space with its per-layer caches warm, as a search runs it;
* the latency found against the roofline bound (all MACs on every usable DSP every cycle).

Sections ``styles``, ``model`` and ``hls``: the accelerator styles side by side, the model's
throughput, the reference model and C simulation (``bench/styles_bench.py``, ``bench/hls_bench.py``).
Section ``predict``: the compiled C++ top (``fnas-hls predict``) against the reference model and torch,
time per image (``bench/predict_bench.py``).
Section ``dataflow``: the dataflow style over each board's roofline on FNAS's MNIST space and the
dataflow issue's small nets, with wide streams and at one word a cycle (``bench/dataflow_bench.py``).

Section ``mobile``: depthwise layers' share of MobileNets' time, int8 against fixed16, int8's agreement
with float, the public tables' networks built and analyzed (``bench/mobile_bench.py``).
Section ``large``: ResNet-50, MobileNetV2 and AlexNet against the DPU's and Zhang's published
latencies, over the roofline, the engine DSE against a pinned sweep, Accel-NASBench against the
DPU's measured latency (``bench/large_bench.py``).
Section ``tables``: the search strategies over NAS-Bench-201 and FNAS's ImageNet claims over
Accel-NASBench, a hundred seeds each, accuracy looked up (``bench/tables_bench.py``).
Section ``search``: FNAS's claims on Fashion-MNIST over seeds and specs (``bench/search_bench.py``).
Section ``workers``: one search in-process and on 2 Ray workers, a wall-time ratio
(``bench/workers_bench.py``).

``--mode quick`` takes every 20th architecture, a smaller timing sample, one spec, one seed and
short searches. ``--only SECTION ...`` runs some sections and keeps the others' last record in
``results.json``; each section in ``results.md`` says when and in which mode it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from fnas_hls.boards import load_board
from fnas_hls.dse.sequential import (
    _fnas_design_layer,
    choose_tilings,
    fnas_design_tilings,
    layer_front,
)
from fnas_hls.precision import get_precision
from fnas_hls.search.space import load_space
from fnas_hls.search.sweep import sweep
from fnas_hls.styles import analyze

HERE = Path(__file__).resolve().parent


def _clear_caches() -> None:
    layer_front.cache_clear()
    _fnas_design_layer.cache_clear()


def bench_dse(mode: str, board_name: str = "pynq") -> dict:
    space = load_space("fnas-mnist")
    board = load_board(board_name)
    prec = get_precision(space.precision)
    archs = list(space.architectures())
    if mode == "quick":
        archs = archs[::20]
    sample = archs[:: max(1, len(archs) // (6 if mode == "quick" else 30))]

    # Timing, interleaved: exhaustive baseline vs DSE with cold caches, same architectures.
    t_base, t_dse_cold, t_fast_cold = [], [], []
    for choice in sample:
        net = space.build(choice)
        t0 = time.perf_counter()
        fnas_design_tilings(net, board, prec, exhaustive=True)
        t1 = time.perf_counter()
        _clear_caches()
        choose_tilings(net, board, prec)
        t2 = time.perf_counter()
        _clear_caches()
        choose_tilings(net, board, prec, exact=False)
        t3 = time.perf_counter()
        t_base.append(t1 - t0)
        t_dse_cold.append(t2 - t1)
        t_fast_cold.append(t3 - t2)

    # Latency over the whole space (DSE caches warm, as in a search).
    _clear_caches()
    ratios, roof, methods = [], [], {}
    better = equal = worse = base_unfit = dse_unfit = 0
    start = time.perf_counter()
    dse_time = 0.0
    for choice in archs:
        net = space.build(choice)
        t0 = time.perf_counter()
        dse = choose_tilings(net, board, prec)
        dse_time += time.perf_counter() - t0
        base = fnas_design_tilings(net, board, prec)
        methods[dse.method] = methods.get(dse.method, 0) + 1
        if not dse.fits:
            dse_unfit += 1
            continue
        if not base.fits:
            base_unfit += 1
            continue
        ratios.append(base.cycles / dse.cycles)
        better += base.cycles > dse.cycles
        equal += base.cycles == dse.cycles
        worse += base.cycles < dse.cycles
    for choice in archs[:: max(1, len(archs) // 200)]:
        a = analyze(space.build(choice), board, prec)
        roof.append(a.latency_cycles / a.roofline_cycles)
    wall = time.perf_counter() - start
    return {
        "space": space.name,
        "board": board.name,
        "architectures": len(archs),
        "timing_sample": len(sample),
        "baseline_exhaustive_s_per_arch": statistics.mean(t_base),
        "dse_cold_s_per_arch": statistics.mean(t_dse_cold),
        "speedup_cold": statistics.mean(t_base) / statistics.mean(t_dse_cold),
        "dse_fast_cold_s_per_arch": statistics.mean(t_fast_cold),
        "speedup_fast_cold": statistics.mean(t_base) / statistics.mean(t_fast_cold),
        "dse_warm_s_per_arch": dse_time / len(archs),
        "speedup_warm": statistics.mean(t_base) / (dse_time / len(archs)),
        "latency_ratio_baseline_over_dse": {
            "mean": statistics.mean(ratios),
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        },
        "dse_better": better,
        "dse_equal": equal,
        "dse_worse": worse,
        "baseline_does_not_fit_dse_does": base_unfit,
        "dse_does_not_fit": dse_unfit,
        "dse_methods": methods,
        "latency_over_roofline_median": statistics.median(roof),
        "seconds": wall,
    }


def dse_table(r: dict) -> str:
    lat = r["latency_ratio_baseline_over_dse"]
    rows = [
        ("architectures (FNAS MNIST space, pynq)", f"{r['architectures']:,}"),
        (
            "baseline latency / DSE latency: mean (median, min, max)",
            f"{lat['mean']:.3f} ({lat['median']:.3f}, {lat['min']:.3f}, {lat['max']:.3f})",
        ),
        (
            "DSE better / equal / worse than baseline",
            f"{r['dse_better']} / {r['dse_equal']} / {r['dse_worse']}",
        ),
        ("baseline design does not fit, DSE's does", f"{r['baseline_does_not_fit_dse_does']}"),
        (
            f"time per network, exhaustive baseline / DSE, cold (sample of {r['timing_sample']})",
            f"{r['speedup_cold']:.0f}x ({r['baseline_exhaustive_s_per_arch'] * 1e3:.0f} ms / "
            f"{r['dse_cold_s_per_arch'] * 1e3:.1f} ms)",
        ),
        (
            f"time per network, exhaustive baseline / DSE, no exact DP, cold (sample {r['timing_sample']})",
            f"{r['speedup_fast_cold']:.0f}x ({r['dse_fast_cold_s_per_arch'] * 1e3:.1f} ms)",
        ),
        (
            "time per architecture, exhaustive baseline / DSE warm (whole space)",
            f"{r['speedup_warm']:.0f}x ({r['dse_warm_s_per_arch'] * 1e3:.1f} ms per architecture)",
        ),
        ("DSE latency / roofline bound (median)", f"{r['latency_over_roofline_median']:.2f}"),
    ]
    return md_table(rows)


def md_table(rows: list[tuple[str, str]]) -> str:
    """Two-column Markdown table of (figure, value) rows."""
    width = max(len(a) for a, _ in rows)
    lines = [f"| {'figure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {a.ljust(width)} | {b} |" for a, b in rows]
    return "\n".join(lines)


def bench_model(mode: str) -> dict:
    """The performance model alone: architectures predicted per second over whole spaces (DSE included)."""
    out = {}
    for name in ("fnas-mnist", "digits") if mode == "full" else ("digits",):
        space = load_space(name)
        r = sweep(space, load_board(space.board), jobs=os.cpu_count(), style="auto")
        out.setdefault("spaces", {})[name] = {
            "architectures": len(r.cycles),
            "seconds": r.seconds,
            "architectures_per_second": len(r.cycles) / r.seconds,
            "meet_spec": int(r.meets_spec.sum()),
            "spec_ms": r.spec_ms,
        }
    return out


def model_table(r: dict) -> str:
    return md_table(
        [
            (
                f"`fnas-hls sweep` of {name} on pynq ({d['architectures']:,} architectures, DSE included)",
                f"{d['architectures_per_second']:,.0f} per second ({d['seconds']:.1f} s; "
                f"{d['meet_spec']:,} meet {d['spec_ms']:g} ms)",
            )
            for name, d in r["spaces"].items()
        ]
    )


SECTIONS = (
    "dse",
    "styles",
    "dataflow",
    "model",
    "hls",
    "predict",
    "mobile",
    "large",
    "tables",
    "search",
    "workers",
)


def sections_without_data(sections: list[str], mode: str) -> list[str]:
    """The sections of ``sections`` that would train on Fashion-MNIST where it is not installed."""
    from fnas_hls.search.datasets import dataset_available

    if dataset_available("fashion-mnist"):
        return []
    needs = {"search"} | ({"workers"} if mode == "full" else set())  # quick workers: digits
    return [name for name in sections if name in needs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("quick", "full"), default="full")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    parser.add_argument(
        "--render", action="store_true", help="only rewrite results.md from results.json (no run)"
    )
    args = parser.parse_args(argv)
    if args.render:
        args.only = []
    without = sections_without_data(args.only, args.mode)
    if without:
        print(
            f"bench: Fashion-MNIST is not on this machine, and the {', '.join(without)} section(s) train "
            "on it: they are left out of this run (their last record is kept); get it with "
            "`make fashion-mnist` (root or sudo), or put its four idx files in data/fashion-mnist/",
            file=sys.stderr,
            flush=True,
        )
        args.only = [name for name in args.only if name not in without]
    from bench.dataflow_bench import bench_dataflow, dataflow_table
    from bench.hls_bench import bench_hls, hls_rows
    from bench.large_bench import bench_large, large_table
    from bench.mobile_bench import bench_mobile, mobile_table
    from bench.predict_bench import bench_predict, predict_table
    from bench.search_bench import bench_search, search_table
    from bench.styles_bench import bench_styles, styles_table
    from bench.tables_bench import bench_tables, tables_table
    from bench.workers_bench import bench_workers, workers_table

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine = (
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores"
    )
    runs = {
        "dse": (lambda: bench_dse(args.mode), dse_table, "DSE against FNAS-Design"),
        "styles": (lambda: bench_styles(args.mode), styles_table, "Accelerator styles side by side"),
        "model": (lambda: bench_model(args.mode), model_table, "Performance model throughput"),
        "hls": (
            bench_hls,
            lambda d: md_table(hls_rows(d)),
            "Reference model and C simulation",
        ),
        "predict": (
            lambda: bench_predict(args.mode),
            predict_table,
            "The compiled design on any inputs (predict)",
        ),
        "dataflow": (
            lambda: bench_dataflow(args.mode),
            dataflow_table,
            "The dataflow style against the roofline",
        ),
        "mobile": (lambda: bench_mobile(args.mode), mobile_table, "MobileNet-class networks and int8"),
        "large": (lambda: bench_large(args.mode), large_table, "Large CNNs against the DPU and Zhang"),
        "tables": (lambda: bench_tables(args.mode), tables_table, "The search judged on public tables"),
        "search": (lambda: bench_search(args.mode), search_table, "FNAS's claims: search side by side"),
        "workers": (lambda: bench_workers(args.mode), workers_table, "The search on Ray workers"),
    }
    # A run of some sections keeps the others' last record (each section says when and how it ran).
    results: dict = {}
    out = Path(args.out)
    if set(args.only) != set(SECTIONS) and out.is_file():
        results = json.loads(out.read_text())
        for name in SECTIONS:  # a record from before sections carried their own date
            if isinstance(results.get(name), dict):
                results[name].setdefault("date", results.get("date"))
                results[name].setdefault("mode", results.get("mode"))
    if not args.render:
        results.update({"mode": args.mode, "date": started, "machine": machine})
    for name in args.only:
        fn, _, _ = runs[name]
        t0 = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        data = fn()
        data["section_seconds"] = time.perf_counter() - t0
        data["date"], data["mode"], data["machine"] = started, args.mode, machine
        results[name] = data
        print(f"bench: {name} done in {data['section_seconds']:.0f} s", file=sys.stderr, flush=True)
    parts = [f"# fnas-hls benchmark ({machine})"]
    for name in SECTIONS:
        if name not in results:
            continue
        data = results[name]
        _, table, title = runs[name]
        when = f"{data['mode']} run, {data['date']}"
        parts.append(f"## {title}\n\n_{when}, {data['section_seconds']:.0f} s._\n\n{table(data)}")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    md = Path(args.out).with_suffix(".md")
    md.write_text("\n\n".join(parts) + "\n")
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
