"""``make bench`` section ``styles``: the accelerator styles side by side, in one run.

For every network of FNAS's MNIST space and of the digits space on a PYNQ, and for
``examples/mnist-cnn.yaml``: the latency each style predicts over the roofline bound (all MACs on
every usable DSP every cycle), the share of the space that fits and that meets the spec, and for
``auto`` (the fastest style that fits) which style it took. Then the time the analysis takes per
architecture in each style, cold (per-layer caches cleared), interleaved on one sample with the
exhaustive FNAS-Design enumeration, which the DSE must beat by at least 20x.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from fnas_hls.boards import load_board
from fnas_hls.dse.dataflow import stage_front
from fnas_hls.dse.sequential import _fnas_design_layer, fnas_design_tilings, layer_front
from fnas_hls.dse.shared_tiles import layer_table
from fnas_hls.network.arch import load_network_yaml
from fnas_hls.precision import get_precision
from fnas_hls.search.space import load_space
from fnas_hls.search.sweep import sweep
from fnas_hls.styles import analyze

STYLES = ("sequential", "dataflow", "shared")


def _stats(x: np.ndarray) -> dict:
    if not len(x):
        return {"median": None, "p90": None, "n": 0}
    return {"median": float(np.median(x)), "p90": float(np.percentile(x, 90)), "n": int(len(x))}


def _space(name: str, mode: str, spec_ms: float | None) -> dict:
    space = load_space(name)
    board = load_board(space.board)
    prec = get_precision(space.precision)
    macs_per_cycle = board.mac_cost(prec).macs(board.budget().dsp)
    archs = list(space.architectures())
    step = 20 if mode == "quick" else 1
    picked = np.arange(0, len(archs), step)
    cyc, fit, warm, chosen = {}, {}, {}, {}
    for s in (*STYLES, "auto"):
        if mode == "quick":  # every 20th architecture, in this process
            t0 = time.perf_counter()
            res = [analyze(space.build(archs[i]), board, prec, style=s) for i in picked]
            warm[s] = (time.perf_counter() - t0) / len(picked)
            cyc[s] = np.array([a.latency_cycles for a in res], dtype=np.float64)
            fit[s] = np.array([a.fits for a in res])
            chosen[s] = np.array([a.style for a in res])
        else:  # the whole space, in every core (per-layer caches warm, as in a search)
            r = sweep(space, board, jobs=os.cpu_count(), style=s)
            warm[s] = r.seconds * (os.cpu_count() or 1) / len(archs)
            cyc[s] = r.cycles.astype(np.float64)
            fit[s] = r.fits & (r.cycles >= 0)
            chosen[s] = r.styles
    roof = np.array([-(-space.build(archs[i]).macs // macs_per_cycle) for i in picked], dtype=np.float64)
    spec = spec_ms if spec_ms is not None else space.spec_ms
    out: dict = {"architectures": int(len(picked)), "spec_ms": spec, "board": board.name, "styles": {}}
    for s in (*STYLES, "auto"):
        ms = cyc[s] / (board.clock_mhz * 1e3)
        out["styles"][s] = {
            "fits": float(fit[s].mean()),
            "latency_over_roofline": _stats(cyc[s][fit[s]] / roof[fit[s]]),
            "meets_spec": float((fit[s] & (ms <= spec)).mean()),
            "warm_s_per_arch": warm[s],
        }
    # auto is the fastest style that fits: check it against the styles' own analyses
    fitting = np.stack([np.where(fit[s], cyc[s], np.inf) for s in STYLES])
    want = np.where(np.isfinite(fitting.min(axis=0)), fitting.min(axis=0), cyc["sequential"])
    out["styles"]["auto"]["agrees_with_the_styles"] = bool(np.all(want == cyc["auto"]))
    out["styles"]["auto"]["chose"] = {s: float(np.mean(chosen["auto"][fit["auto"]] == s)) for s in STYLES}
    return out


def _timing(mode: str) -> dict:
    space = load_space("fnas-mnist")
    board = load_board(space.board)
    prec = get_precision(space.precision)
    archs = list(space.architectures())
    sample = archs[:: max(1, len(archs) // (6 if mode == "quick" else 30))]
    t = {"fnas_design_exhaustive": [], **{s: [] for s in (*STYLES, "auto")}}
    for choice in sample:
        net = space.build(choice)
        t0 = time.perf_counter()
        fnas_design_tilings(net, board, prec, exhaustive=True)
        t["fnas_design_exhaustive"].append(time.perf_counter() - t0)
        for style in (*STYLES, "auto"):
            layer_front.cache_clear()
            _fnas_design_layer.cache_clear()
            stage_front.cache_clear()
            layer_table.cache_clear()
            t0 = time.perf_counter()
            analyze(net, board, prec, style=style)
            t[style].append(time.perf_counter() - t0)
    mean = {k: statistics.mean(v) for k, v in t.items()}
    base = mean["fnas_design_exhaustive"]
    return {
        "sample": len(sample),
        "seconds_per_arch": mean,
        "speedup_over_fnas_design": {k: base / v for k, v in mean.items() if k != "fnas_design_exhaustive"},
    }


def bench_styles(mode: str) -> dict:
    out = {"fnas-mnist": _space("fnas-mnist", mode, 8.0), "digits": _space("digits", mode, None)}
    net = load_network_yaml("examples/mnist-cnn.yaml")
    board = load_board("pynq")
    per = {}
    for style in (*STYLES, "auto"):
        a = analyze(net, board, style=style)
        per[style] = {
            "latency_over_roofline": a.latency_cycles / a.roofline_cycles,
            "latency_ms": a.latency_ms,
            "fits": a.fits,
            "style": a.style,
        }
    out["mnist-cnn"] = per
    out["timing"] = _timing(mode)
    return out


def styles_table(r: dict) -> str:
    lines = [
        "| network set | style | fits | latency / roofline, median | p90 | meets spec |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name in ("fnas-mnist", "digits"):
        d = r[name]
        label = f"{name} ({d['architectures']:,} on {d['board']}, spec {d['spec_ms']:g} ms)"
        for style in [st for st in (*STYLES, "auto") if st in d["styles"]]:  # older records: two styles
            s = d["styles"][style]
            lr = s["latency_over_roofline"]
            extra = ""
            if style == "auto":
                chose = s.get("chose", {"dataflow": s.get("chose_dataflow", 0.0)})  # older records
                extra = " (" + ", ".join(f"{k} {100 * v:.0f}%" for k, v in chose.items() if v) + ")"
            lines.append(
                f"| {label} | {style}{extra} | {100 * s['fits']:.1f}% | {lr['median']:.2f}x | "
                f"{lr['p90']:.2f}x | {100 * s['meets_spec']:.1f}% |"
            )
    for style, s in r["mnist-cnn"].items():
        lines.append(
            f"| examples/mnist-cnn.yaml (pynq) | {style}{' -> ' + s['style'] if style == 'auto' else ''} | "
            f"{'yes' if s['fits'] else 'no'} | {s['latency_over_roofline']:.2f}x | | "
            f"{s['latency_ms']:.4f} ms |"
        )
    for name in ("fnas-mnist", "digits"):
        agree = r[name]["styles"]["auto"]["agrees_with_the_styles"]
        verdict = "yes" if agree else "NO"
        lines.append(f"\n{name}: auto's latency is the fastest fitting style's on every network: {verdict}")
    t = r["timing"]
    lines += [
        "",
        f"Analysis time per architecture, cold caches, sample of {t['sample']} (FNAS-Design exhaustive: "
        f"{t['seconds_per_arch']['fnas_design_exhaustive'] * 1e3:.0f} ms):",
        "",
        "| style | ms per architecture | FNAS-Design exhaustive / this |",
        "|---|---:|---:|",
    ]
    for style, sp in t["speedup_over_fnas_design"].items():
        lines.append(f"| {style}, cold | {t['seconds_per_arch'][style] * 1e3:.1f} | {sp:.0f}x |")
    base = t["seconds_per_arch"]["fnas_design_exhaustive"]
    for style in [st for st in (*STYLES, "auto") if st in r["fnas-mnist"]["styles"]]:
        w = r["fnas-mnist"]["styles"][style]["warm_s_per_arch"]
        lines.append(f"| {style}, warm (the space's sweep, per core) | {w * 1e3:.1f} | {base / w:.0f}x |")
    return "\n".join(lines)
