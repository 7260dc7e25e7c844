"""``make bench`` section ``large``: large CNNs against the published figures of what users would
pick instead on the same board (the large-network issue's table), each predicted in this run.

* Each network of the table in style ``auto`` at the issue's precision and the board's default
  clock: predicted latency against the published measurement, the style chosen, DSPs used, latency
  over the roofline at that precision (MACs / (usable DSPs x MACs a DSP) / clock) and, for the DPU
  rows, latency x DSPs against the DPU core's (about 700 DSPs a B4096), as a ratio.
* The engine DSE against a pinned sweep around its choice (each of Tm, Tn times 1/2 .. 2, every
  pair analyzed in full in style ``shared``): the best pinned engine's latency over the DSE's.
* Accel-NASBench (``../shared/benchmarks/``) on zcu102 in int8, style ``auto``: the median of
  predicted over the DPU's measured latency, and the Spearman rank correlation of the prediction
  (and of the MACs alone) with the measurement. ``--mode quick`` takes a sample of the rows.
"""

from __future__ import annotations

import csv
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from fnas_hls.boards import load_board
from fnas_hls.model.tiling import parse_tiling_specs
from fnas_hls.styles import analyze

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT.parent / "shared" / "benchmarks"
#: DSP48 slices of one DPU B4096 core (the issue: "about 700"), for the per-DSP ratio.
DPU_B4096_DSPS = 700

#: (name, network, board, precision, published ms, source, pins, clock MHz, conv layers only)
CASES = (
    ("ResNet-50", "resnet50", "zcu102", "int8", 14.1,
     "Vitis AI 1.3 model zoo, B4096 at 281 MHz, int8, 1 thread", (), None, False),
    ("MobileNetV2 1.0/224", "mobilenet_v2", "zcu104", "int8", 3.92,
     "Vitis AI 1.3 model zoo, B4096 at 300 MHz, int8", (), None, False),
    ("ResNet-50", "resnet50", "ultra96v2", "int8", 30.8, "DPU B1600, AI SDK 2.0.4", (), None, False),
    ("AlexNet-227 conv layers", "alexnet", "vc707", "float32", 21.61,
     "Zhang et al. FPGA'15, float32, <64,7> at 100 MHz", ("all:Tm=64,Tn=7",), 100.0, True),
)  # fmt: skip


def _network(key: str):
    import onnx

    from fnas_hls.network.arch import load_network_yaml
    from fnas_hls.network.benchmark_nets import mobilenet_v2_network
    from fnas_hls.network.onnx_frontend import load_onnx

    if key == "alexnet":
        return load_network_yaml(ROOT / "examples" / "alexnet-227.yaml")
    if key == "mobilenet_v2":
        return mobilenet_v2_network()
    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{key}.onnx"
    return load_onnx(path, allow_host_ops=True).network


def pinned_sweep(net, board: str, prec: str, factors=(0.5, 0.75, 1, 1.25, 1.5, 2)):
    """The shared style's analysis with the DSE's engine, and every pinned (Tm, Tn) around it (each
    side times ``factors``, within the board's MACs) analyzed in full: ``(analysis, [(Tm, Tn,
    pinned analysis), ...])``."""
    b = load_board(board)
    a = analyze(net, b, prec, style="shared")
    e = a.engine
    macs = b.mac_cost(a.precision).macs(b.budget().dsp)
    out = []
    for tm in sorted({max(1, round(e.Tm * f)) for f in factors}):
        for tn in sorted({max(1, round(e.Tn * f)) for f in factors}):
            if tm * tn <= macs and (tm, tn) != (e.Tm, e.Tn):
                pins = parse_tiling_specs([f"all:Tm={tm},Tn={tn}"])
                out.append((tm, tn, analyze(net, b, prec, style="shared", pins=pins)))
    return a, out


def _dse_against_sweep(net, board, prec: str) -> dict[str, Any]:
    """The shared engine the DSE picks against every fitting pinned (Tm, Tn) around it."""
    a, sweep = pinned_sweep(net, board, prec)
    fitting = [(p.latency_cycles / a.latency_cycles, tm, tn) for tm, tn, p in sweep if p.fits]
    best = min(fitting, default=(float("nan"), 0, 0))
    return {
        "engine": f"{a.engine.Tm}x{a.engine.Tn}",
        "shared_ms": a.latency_ms,
        "pinned_fitting": len(fitting),
        "best_pinned": f"{best[1]}x{best[2]}",
        "best_pinned_ratio": best[0],
    }


def published_table() -> dict[str, Any]:
    out = {}
    for name, key, board, prec, ms, source, pins, clock, convs in CASES:
        net = _network(key)
        b = load_board(board)
        t0 = time.perf_counter()
        style = "shared" if pins else "auto"
        a = analyze(net, b, prec, style=style, clock_mhz=clock, pins=parse_tiling_specs(list(pins)))
        layers = [lc for lc in a.layers if lc.op == "conv"] if convs else list(a.layers)
        pred = sum(lc.cycles for lc in layers) / (a.clock_mhz * 1e3) if convs else a.latency_ms
        macs = sum(li.macs for li in net.info if li.layer.op == "conv") if convs else net.macs
        dsp = b.budget().dsp
        per_dsp = b.mac_cost(a.precision).macs(dsp) / dsp
        roofline_ms = macs / (dsp * per_dsp) / (a.clock_mhz * 1e3)
        row = {
            "network": name, "board": board, "precision": prec, "published_ms": ms, "source": source,
            "style": a.style, "predicted_ms": pred, "ratio": pred / ms, "fits": a.fits,
            "dsp": a.resources.dsp, "roofline_ms": roofline_ms, "over_roofline": pred / roofline_ms,
            "seconds": time.perf_counter() - t0,
        }  # fmt: skip
        if "B4096" in source:
            row["per_dsp_vs_dpu"] = (pred * a.resources.dsp) / (ms * DPU_B4096_DSPS)
        if not pins:
            row["dse"] = _dse_against_sweep(net, board, prec)
        out[f"{name} on {board}"] = row
    return out


def _anb_worker(row: dict) -> tuple[float, float, float, bool]:
    from fnas_hls.network.benchmark_nets import accel_nasbench_network

    net = accel_nasbench_network(row)
    a = analyze(net, load_board("zcu102"), "int8", style="auto")
    return a.latency_ms, float(row["latency_zcu102_ms"]), float(net.macs), a.fits


def _spearman(x, y) -> float:
    rx, ry = (np.argsort(np.argsort(v)).astype(float) for v in (x, y))
    return float(np.corrcoef(rx, ry)[0, 1])


def accel_nasbench(mode: str) -> dict[str, Any]:
    path = TABLES / "accel-nasbench-mnasnet.csv"
    if not path.is_file():
        return {"ran": False, "why": f"{path} not found"}
    rows = [r for r in csv.DictReader(path.open()) if r.get("latency_zcu102_ms")]
    if mode == "quick":
        rows = rows[:: max(1, len(rows) // 24)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        res = list(pool.map(_anb_worker, rows, chunksize=4))
    pred, dpu, macs, fits = (np.array(v) for v in zip(*res, strict=True))
    return {
        "ran": True,
        "networks": len(rows),
        "fit": int(fits.sum()),
        "median_ratio": float(np.median(pred / dpu)),
        "median_ms": float(np.median(pred)),
        "dpu_median_ms": float(np.median(dpu)),
        "spearman": _spearman(pred, dpu),
        "spearman_macs": _spearman(macs, dpu),
        "seconds": time.perf_counter() - t0,
    }


def bench_large(mode: str) -> dict[str, Any]:
    return {"table": published_table(), "accel_nasbench": accel_nasbench(mode)}


def large_table(r: dict[str, Any]) -> str:
    head = (
        "| network | board | published | predicted (style, precision) | ratio | DSPs | over roofline "
        "| latency x DSPs vs the DPU core | DSE vs pinned sweep |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for d in r["table"].values():
        per = f"{d['per_dsp_vs_dpu']:.1f}x" if "per_dsp_vs_dpu" in d else "-"
        dse = d.get("dse")
        sweep = (
            f"{dse['engine']}; best of {dse['pinned_fitting']} pinned {dse['best_pinned']} at "
            f"{dse['best_pinned_ratio']:.3f}x"
            if dse
            else "pinned <64,7>"
        )
        fits = "" if d["fits"] else ", does not fit"
        lines.append(
            f"| {d['network']} | {d['board']} | {d['published_ms']:.2f} ms ({d['source']}) | "
            f"{d['predicted_ms']:.2f} ms ({d['style']}, {d['precision']}{fits}) | {d['ratio']:.2f}x | "
            f"{d['dsp']:,} | {d['over_roofline']:.1f}x | {per} | {sweep} |"
        )
    text = head + "\n".join(lines)
    a = r["accel_nasbench"]
    if a.get("ran"):
        text += (
            f"\n\nAccel-NASBench on zcu102, int8, auto: {a['networks']:,} networks, {a['fit']:,} fit; median "
            f"predicted / DPU measured {a['median_ratio']:.1f} (median {a['median_ms']:.2f} ms against "
            f"{a['dpu_median_ms']:.2f} ms); Spearman with the measured latency {a['spearman']:.3f} "
            f"(MACs alone {a['spearman_macs']:.3f}); {a['seconds']:.0f} s."
        )
    else:
        text += f"\n\nAccel-NASBench: not run ({a.get('why')})."
    return text


if __name__ == "__main__":
    import json
    import sys

    data = bench_large(sys.argv[1] if len(sys.argv) > 1 else "quick")
    print(json.dumps(data, indent=1))
    print(large_table(data))
