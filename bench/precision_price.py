"""What int8 buys a spec: the best network that meets it in fixed16 against the best with int8 allowed.

With the precision searched, a child may meet the spec in int8 that breaks it in fixed16 (where the
board's DSPs compute two 8-bit products each). This measures how much accuracy that adds at a spec:

1. every architecture of the space is predicted in fixed16 and in int8 (``sweep``, style auto); the
   spec is the fixed16 latency that ``--share`` of the space meets (10%: the bench's tight spec);
2. group A: the networks that meet it in fixed16; group B: those that meet it only in int8;
3. a seeded sample of ``--sample`` networks of each group is trained as the search trains a child
   (the space's ``train:``) and scored as a design: quantized in its precision (A fixed16, B int8),
   bit for bit the reference model (``trainer.design_accuracy``);
4. the best of each sample is trained in full (``--final-epochs``, the space's ``final:`` otherwise)
   and then ``--qat-epochs`` of quantization-aware training in its precision; its test accuracy as a
   design is the figure.

int8 bought ``max(0, B - A)`` points of the spec's price on this sample. The best network overall (the
other end of the price) is not trained here: on this machine it takes hours.

    python -m bench.precision_price --space fashion --board ultra96v2 --sample 30 --final-epochs 30
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from fnas_hls.backend.fake_quant import fake_quantized
from fnas_hls.boards import load_board
from fnas_hls.network.torch_model import TorchNetwork
from fnas_hls.search.datasets import calibration_images, load_dataset
from fnas_hls.search.final import train_final, train_qat
from fnas_hls.search.loop import child_key, child_seed
from fnas_hls.search.space import load_space
from fnas_hls.search.sweep import sweep
from fnas_hls.search.trainer import accuracy, design_accuracy, train_child

HERE = Path(__file__).resolve().parent
_DATA = {}


def _proxy(job: tuple) -> dict:
    space, choice, precision, seed = job
    torch.set_num_threads(1)
    net = space.build(choice)
    data = _DATA["data"]
    res = train_child(net, data, space.train_settings, child_seed(seed, child_key(choice)))
    return {
        "key": child_key(choice),
        "precision": precision,
        "float_accuracy": res.accuracy,
        "accuracy": design_accuracy(net, res.state, data, precision),
        "seconds": res.seconds,
    }


def _full(job: tuple) -> dict:
    space, choice, precision, seed, fs = job
    torch.set_num_threads(1)
    net = space.build(choice)
    data = _DATA["data"]
    t0 = time.perf_counter()
    res = train_final(net, data, fs, seed)
    calib = calibration_images(data)
    q = train_qat(net, res["state"], data, fs, precision, calib, seed)
    model = TorchNetwork(net)
    model.load_state_dict(res["state"])
    float_test = accuracy(model, data.test)
    model.load_state_dict(q["state"])
    return {
        "key": child_key(choice),
        "precision": precision,
        "float_test_accuracy": float_test,
        "design_val_accuracy": q["val_accuracy"],
        "design_test_accuracy": accuracy(fake_quantized(model, precision, calib), data.test),
        "epochs": res["epochs"],
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="fashion")
    p.add_argument("--board", default="ultra96v2")
    p.add_argument("--share", type=float, default=0.1)
    p.add_argument("--sample", type=int, default=30)
    p.add_argument("--final-epochs", type=int, default=30)
    p.add_argument("--qat-epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", default=str(HERE / "precision_price.json"))
    args = p.parse_args(argv)
    space = load_space(args.space)
    board = load_board(args.board)
    t0 = time.perf_counter()
    lat = {}
    for prec in ("fixed16", "int8"):
        r = sweep(space, board, prec, jobs=args.jobs, style="auto")
        lat[prec] = np.where(r.fits & (r.cycles >= 0), r.latency_ms, np.inf)
        print(f"sweep {prec}: {time.perf_counter() - t0:.0f} s", flush=True)
    archs = list(space.with_precision("fixed16").architectures())
    spec = float(np.quantile(lat["fixed16"][np.isfinite(lat["fixed16"])], args.share))
    in_a = lat["fixed16"] <= spec
    in_b = (lat["int8"] <= spec) & ~in_a
    rng = np.random.default_rng(args.seed)
    groups = {"A": ("fixed16", np.flatnonzero(in_a)), "B": ("int8", np.flatnonzero(in_b))}
    print(
        f"spec {spec:.4f} ms: {in_a.sum()} networks meet it in fixed16, {in_b.sum()} more only in int8",
        flush=True,
    )
    _DATA["data"] = load_dataset(
        space.dataset, seed=args.seed, val_fraction=space.train_settings.val_fraction
    )
    ctx = mp.get_context("fork")
    result = {"space": space.name, "board": board.name, "spec_ms": spec, "share": args.share,
              "meets_fixed16": int(in_a.sum()), "meets_only_int8": int(in_b.sum()), "groups": {}}  # fmt: skip
    jobs = []
    for name, (prec, idx) in groups.items():
        pick = rng.choice(idx, size=min(args.sample, len(idx)), replace=False)
        jobs += [(name, (space, archs[i], prec, args.seed)) for i in pick]
    with ProcessPoolExecutor(args.jobs, mp_context=ctx) as ex:
        proxies = list(ex.map(_proxy, [j for _, j in jobs]))
    print(f"proxy training: {time.perf_counter() - t0:.0f} s", flush=True)
    fs = replace(space.final_settings, epochs=args.final_epochs, qat_epochs=args.qat_epochs, patience=8)
    best = {}
    for name, (prec, _) in groups.items():
        rows = [r for (g, _), r in zip(jobs, proxies, strict=True) if g == name]
        top = max(rows, key=lambda r: r["accuracy"])
        best[name] = top
        result["groups"][name] = {"precision": prec, "proxy": rows, "proxy_best": top}
        print(f"group {name} ({prec}): best proxy {top['key']} {top['accuracy']:.4f}", flush=True)
    full_jobs = [
        (space, tuple(int(c) for c in best[n]["key"].split("-")), groups[n][0], args.seed, fs) for n in groups
    ]
    with ProcessPoolExecutor(args.jobs, mp_context=ctx) as ex:
        fulls = list(ex.map(_full, full_jobs))
    for name, full in zip(groups, fulls, strict=True):
        result["groups"][name]["full"] = full
        print(f"group {name}: {full}", flush=True)
    a, b = (result["groups"][n]["full"]["design_test_accuracy"] for n in ("A", "B"))
    result["int8_bought_points"] = 100 * max(0.0, b - a)
    result["seconds"] = time.perf_counter() - t0
    print(f"int8 bought {result['int8_bought_points']:.2f} points (A {a:.4f}, B {b:.4f})", flush=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
