"""``make bench`` section ``mobile``: MobileNet-class networks and int8, the figures of the MobileNet
issue, each measured in this run.

* Depthwise layers' share of the predicted time of MobileNetV1 and MobileNetV2 (1.0, 224x224) on
  zcu102 in style ``auto`` (fixed16), and of MobileNetV2 (0.35, 96x96) in int8 on zcu104 in the
  dataflow style, against their share of the MACs (in the dataflow style the sum of the processes'
  cycles, as csynth would add them).
* int8 against fixed16, the median of the per-network latency ratio: over FNAS's MNIST space on
  pynq (DSP48E1: one int8 product a slice) and on ultra96v2 (DSP48E2: two), and over the onnx
  wheel's nine model-zoo graphs on zcu102 (``--allow-host-ops``: their LRNs stay on the host).
* The int8 reference model's top-1 agreement with float: on the winner of a short int8 search of
  the digits space (its ``summary.json``, calibration and test inputs), and on a MobileNetV2
  (width 0.35) trained here for one epoch on Fashion-MNIST (32x32, 64 calibration images, 1,000
  test images), when the data is installed.
* The public tables' networks (``../shared/benchmarks/``): NAS-Bench-201 on pynq and
  Accel-NASBench on zcu102, each built and analyzed in style ``auto``: how many have a host layer
  (none should), how many fit, the median predicted latency and the sweep's seconds. ``--mode
  quick`` takes a sample of each and of the MNIST space; ``full`` every network.
"""

from __future__ import annotations

import csv
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from fnas_hls.boards import load_board
from fnas_hls.styles import analyze

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT.parent / "shared" / "benchmarks"


def _is_depthwise(li) -> bool:
    layer = li.layer
    return layer.op == "conv" and layer.groups > 1 and li.in_shape.c // layer.groups == 1


def depthwise_share() -> dict[str, Any]:
    from fnas_hls.network.benchmark_nets import mobilenet_v1_network, mobilenet_v2_network

    out = {}
    cases = (
        ("MobileNetV1", mobilenet_v1_network(), "zcu102", "fixed16", "auto"),
        ("MobileNetV2 1.0", mobilenet_v2_network(), "zcu102", "fixed16", "auto"),
        ("MobileNetV2 0.35/96", mobilenet_v2_network(0.35, 96, 10), "zcu104", "int8", "dataflow"),
    )
    for name, net, board, prec, style in cases:
        a = analyze(net, load_board(board), prec, style=style)
        dw = {li.name for li in net.info if _is_depthwise(li)}
        total = sum(lc.cycles for lc in a.layers)
        out[name] = {
            "board": board,
            "precision": prec,
            "style": a.style,
            "latency_ms": a.latency_ms,
            "fits": a.fits,
            "time_share": sum(lc.cycles for lc in a.layers if lc.name in dw) / total,
            "mac_share": sum(li.macs for li in net.info if li.name in dw) / sum(li.macs for li in net.info),
        }
    return out


def _mnist_ratio(board: str, step: int) -> dict[str, Any]:
    from fnas_hls.search.space import load_space

    space = load_space("fnas-mnist")
    archs = list(space.architectures())[::step]
    b = load_board(board)
    ratios, t0 = [], time.perf_counter()
    for choice in archs:
        net = space.build(choice)
        lat = [analyze(net, b, p, style="auto") for p in ("fixed16", "int8")]
        if all(a.fits for a in lat):
            ratios.append(lat[1].latency_cycles / lat[0].latency_cycles)
    return {
        "networks": len(archs),
        "both_fit": len(ratios),
        "median": statistics.median(ratios),
        "p10": float(np.percentile(ratios, 10)),
        "p90": float(np.percentile(ratios, 90)),
        "seconds": time.perf_counter() - t0,
    }


def _zoo_ratios() -> dict[str, Any]:
    import onnx

    from fnas_hls.network.onnx_frontend import load_onnx

    folder = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    out = {}
    for path in sorted(folder.glob("light_*.onnx")):
        net = load_onnx(path, allow_host_ops=True).network
        a16, a8 = (analyze(net, load_board("zcu102"), p, style="auto") for p in ("fixed16", "int8"))
        out[path.stem.removeprefix("light_")] = {
            "fixed16_ms": a16.latency_ms,
            "int8_ms": a8.latency_ms,
            "ratio": a8.latency_cycles / a16.latency_cycles,
            "styles": f"{a16.style}/{a8.style}",
            "fits": a16.fits and a8.fits,
        }
    return out


def int8_ratios(mode: str) -> dict[str, Any]:
    step = 40 if mode == "quick" else 1
    zoo = _zoo_ratios()
    return {
        "mnist_pynq": _mnist_ratio("pynq", step),
        "mnist_ultra96v2": _mnist_ratio("ultra96v2", step),
        "zoo_zcu102": zoo,
        "zoo_median": statistics.median(d["ratio"] for d in zoo.values()),
    }


def _search_winner_agreement(episodes: int) -> dict[str, Any]:
    """A short int8 search on digits: its winner's reference model against float."""
    import json

    from fnas_hls.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        rc = main(["search", "--space", "digits", "--precision", "int8", "--episodes", str(episodes),
                   "--out", str(out)])  # fmt: skip
        if rc != 0:
            return {"ran": False, "why": f"search exited {rc}"}
        summary = json.loads((out / "best" / "summary.json").read_text())
    hls = summary["hls"]
    return {
        "ran": True,
        "episodes": episodes,
        "top1_agreement": hls["reference_vs_float"]["top1_agreement"],
        "samples": hls["reference_vs_float"]["samples"],
        "csim_bit_exact": hls.get("csim", {}).get("bit_exact"),
        "float_test_accuracy": summary.get("test_accuracy"),
        "int8_test_accuracy": hls.get("quantized_test_accuracy"),
    }


def _mobilenet_agreement(train_images: int) -> dict[str, Any]:
    """MobileNetV2 0.35 trained one epoch on Fashion-MNIST at 32x32; int8 against float."""
    from fnas_hls.search.datasets import dataset_available, load_dataset

    if not dataset_available("fashion-mnist"):
        return {"ran": False, "why": "Fashion-MNIST is not installed (make fashion-mnist)"}
    import torch
    from torch import nn

    from fnas_hls.backend.quantize import quantize_network
    from fnas_hls.backend.reference import compare_outputs, run_reference
    from fnas_hls.network.onnx_frontend import load_onnx

    torch.manual_seed(0)
    data = load_dataset("fashion-mnist", seed=0)

    def images(x: np.ndarray) -> np.ndarray:  # 28x28x1 -> 32x32x3
        x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
        return np.repeat(x, 3, axis=1).astype(np.float32)

    model = _torch_mobilenet_v2(0.35, 10).train()
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    x, y = images(data.train.x[:train_images]), data.train.y[:train_images]
    t0 = time.perf_counter()
    for i in range(0, len(x), 64):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(
            model(torch.from_numpy(x[i : i + 64])), torch.from_numpy(y[i : i + 64])
        )
        loss.backward()
        opt.step()
    model.eval()
    train_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mnv2.onnx"
        torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False)
        net = load_onnx(path).network
    calib, test = images(data.train.x[-64:]), images(data.test.x[:1000])
    out: dict[str, Any] = {"ran": True, "train_images": train_images, "train_seconds": train_s}
    with torch.no_grad():
        floats = model(torch.from_numpy(test)).numpy()
    out["float_test_accuracy"] = float(np.mean(floats.argmax(1) == data.test.y[:1000]))
    for prec in ("int8", "fixed16"):
        plan = quantize_network(net, prec, calib)
        design = analyze(net, load_board("zcu104"), prec, style="sequential")
        tilings = {lc.name: lc.tiling for lc in design.layers if lc.tiling is not None}
        ref = plan.output_type.dequantize(run_reference(net, plan, tilings, plan.input_type.quantize(test)))
        agree = compare_outputs(ref, floats, plan.output_type.lsb)
        out[prec] = {
            "top1_agreement": agree.top1_agreement,
            "accuracy": float(np.mean(ref.argmax(1) == data.test.y[:1000])),
        }
    return out


def _torch_mobilenet_v2(width: float, classes: int):
    """MobileNetV2 in torch, the layers of ``benchmark_nets.mobilenet_v2_network`` (ReLU6)."""
    from torch import nn

    from fnas_hls.network.benchmark_nets import _divisible

    def cbr(i, o, k=1, s=1, g=1, act=True):
        layers = [nn.Conv2d(i, o, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(o)]
        return layers + ([nn.ReLU6()] if act else [])

    class Block(nn.Module):
        def __init__(self, i, o, s, t):
            super().__init__()
            h = i * t
            self.body = nn.Sequential(
                *((cbr(i, h) if t != 1 else []) + cbr(h, h, 3, s, h) + cbr(h, o, act=False))
            )
            self.res = s == 1 and i == o

        def forward(self, x):
            y = self.body(x)
            return x + y if self.res else y

    cfg = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )
    c = _divisible(32 * width)
    layers = cbr(3, c, 3, 2)
    for t, ch, n, s in cfg:
        for j in range(n):
            out = _divisible(ch * width)
            layers.append(Block(c, out, s if j == 0 else 1, t))
            c = out
    layers += cbr(c, 1280, 1) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, classes)]
    return nn.Sequential(*layers)


def int8_agreement(mode: str) -> dict[str, Any]:
    return {
        "search_winner": _search_winner_agreement(6 if mode == "quick" else 30),
        "mobilenet_v2": _mobilenet_agreement(20000),  # fewer images leave margins int8 flips (4,000: 88.7%)
    }


def _table_worker(args: tuple[str, dict]) -> tuple[bool, bool, float]:
    table, row = args
    from fnas_hls.network.benchmark_nets import accel_nasbench_network, nasbench201_network

    if table == "nasbench201":
        net, board = nasbench201_network(row["cellstr"]), "pynq"
    else:
        net, board = accel_nasbench_network(row), "zcu102"
    host = any(layer.op == "host" for layer in net.layers)
    a = analyze(net, load_board(board), "fixed16", style="auto")
    return host, a.fits, a.latency_ms


def table_sweeps(mode: str) -> dict[str, Any]:
    out = {}
    for table, file, sample in (
        ("nasbench201", "nasbench201-cifar-12epochs.csv", 160),
        ("accel_nasbench", "accel-nasbench-mnasnet.csv", 24),
    ):
        path = TABLES / file
        if not path.is_file():
            out[table] = {"ran": False, "why": f"{path} not found"}
            continue
        rows = list(csv.DictReader(path.open()))
        if mode == "quick":
            rows = rows[:: max(1, len(rows) // sample)]
        t0 = time.perf_counter()
        with ProcessPoolExecutor(os.cpu_count()) as pool:
            results = list(pool.map(_table_worker, [(table, r) for r in rows], chunksize=8))
        out[table] = {
            "ran": True,
            "networks": len(rows),
            "with_host_layer": sum(h for h, _, _ in results),
            "fit": sum(f for _, f, _ in results),
            "median_ms": statistics.median(ms for _, _, ms in results),
            "seconds": time.perf_counter() - t0,
            "board": "pynq" if table == "nasbench201" else "zcu102",
        }
        if table == "accel_nasbench":
            dpu = [float(r["latency_zcu102_ms"]) for r in rows if r.get("latency_zcu102_ms")]
            out[table]["dpu_median_ms"] = statistics.median(dpu)
    return out


def bench_mobile(mode: str) -> dict[str, Any]:
    t = {}
    out: dict[str, Any] = {}
    parts = (
        ("depthwise", depthwise_share),
        ("int8", lambda: int8_ratios(mode)),
        ("agreement", lambda: int8_agreement(mode)),
        ("tables", lambda: table_sweeps(mode)),
    )
    for name, fn in parts:
        t0 = time.perf_counter()
        out[name] = fn()
        t[name] = time.perf_counter() - t0
    out["part_seconds"] = t
    return out


def mobile_table(r: dict[str, Any]) -> str:
    rows = []
    for name, d in r["depthwise"].items():
        fits = "" if d["fits"] else ", does not fit"
        ratio = d["time_share"] / d["mac_share"]
        rows.append((
            f"{name} {d.get('precision', 'fixed16')} on {d.get('board', 'zcu102')} ({d['style']}, "
            f"{d['latency_ms']:.2f} ms{fits}): depthwise share of the time",
            f"{100 * d['time_share']:.1f}% ({100 * d['mac_share']:.1f}% of the MACs; {ratio:.1f}x)",
        ))  # fmt: skip
    i8 = r["int8"]
    for key, board in (("mnist_pynq", "pynq"), ("mnist_ultra96v2", "ultra96v2")):
        d = i8[key]
        rows.append((
            f"int8 / fixed16 latency, FNAS's MNIST space on {board} "
            f"({d['both_fit']:,} of {d['networks']:,} fit both)",
            f"median {d['median']:.3f} (p10 {d['p10']:.3f}, p90 {d['p90']:.3f})",
        ))  # fmt: skip
    zoo = ", ".join(f"{k} {v['ratio']:.2f}" for k, v in i8["zoo_zcu102"].items())
    rows.append(
        (
            "int8 / fixed16 latency, the nine model-zoo graphs on zcu102",
            f"median {i8['zoo_median']:.3f} ({zoo})",
        )
    )
    ag = r["agreement"]
    s = ag["search_winner"]
    if s.get("ran"):
        rows.append((
            f"int8 reference vs float, top-1, winner of a {s['episodes']}-episode int8 digits search",
            f"{100 * s['top1_agreement']:.1f}% of {s['samples']} inputs "
            f"(csim bit-exact: {s['csim_bit_exact']})",
        ))  # fmt: skip
    m = ag["mobilenet_v2"]
    if m.get("ran"):
        i8m, f16 = m["int8"], m["fixed16"]
        rows.append((
            "int8 (fixed16) reference vs float, top-1, MobileNetV2 0.35 on Fashion-MNIST "
            f"({m['train_images']:,} images, 1 epoch)",
            f"{100 * i8m['top1_agreement']:.1f}% ({100 * f16['top1_agreement']:.1f}%) of 1,000; accuracy "
            f"float {100 * m['float_test_accuracy']:.1f}%, int8 {100 * i8m['accuracy']:.1f}%",
        ))  # fmt: skip
    else:
        rows.append(("int8 agreement on MobileNetV2", f"not run: {m.get('why')}"))
    for table, d in r["tables"].items():
        if not d.get("ran"):
            rows.append((table, f"not run: {d.get('why')}"))
            continue
        extra = f"; the DPU's measured median {d['dpu_median_ms']:.2f} ms" if "dpu_median_ms" in d else ""
        rows.append((
            f"{table}: {d['networks']:,} networks built and analyzed on {d['board']} (auto)",
            f"{d['with_host_layer']} with a host layer, {d['fit']:,} fit, median "
            f"{d['median_ms']:.2f} ms{extra}; {d['seconds']:.0f} s",
        ))  # fmt: skip
    head = "| figure | value |\n|---|---|\n"
    return head + "\n".join(f"| {a} | {b} |" for a, b in rows)
