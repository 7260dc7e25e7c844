"""Quantization-aware training of a search's winner: what it buys over post-training quantization.

Takes the winner of a finished search run with final training (``final.jsonl``, ``final/<key>.pt``:
its float weights), and for each precision runs ``search.final.train_qat`` from those weights
(``--epochs`` at ``--lr``), then emits the QAT design for the run's board in the style the search
chose, C-simulates it, and runs the fake-quantized model and the reference model on the whole
test split: their outputs must agree bit for bit.

    python -m bench.qat --run runs/fashion --precisions int8 fixed16 --epochs 5

Writes ``bench/qat.json`` (``--json``) and prints a table: float test accuracy; post-training
quantization's and QAT's validation and test accuracy; QAT's seconds an epoch; csim; bit-exactness.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.fake_quant import fake_quantized
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.backend.reference import run_reference
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.torch_model import TorchNetwork, network_with_weights
from fnas_hls.search.datasets import calibration_images, load_dataset
from fnas_hls.search.final import design_val_accuracy, train_qat
from fnas_hls.search.finalize import CSIM_VECTORS
from fnas_hls.search.rundir import FINAL_DIR, FINAL_LOG, load_run_config, read_jsonl, read_log
from fnas_hls.search.trainer import accuracy

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a search run folder with final training")
    p.add_argument("--precisions", nargs="+", default=["int8", "fixed16"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=str(HERE / "qat.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.run)
    cfg = load_run_config(out)
    lines = read_jsonl(out / FINAL_LOG, "final training log")
    if not lines:
        print(f"{out}: no final training ({FINAL_LOG} is empty or missing)", file=sys.stderr)
        return 2
    line = max((r for r in lines if "val_accuracy" in r), key=design_val_accuracy)
    record = next(r for r in read_log(out) if r["key"] == line["key"])
    net = network_from_dict(record["arch"], f"{out}/children.jsonl")
    state = torch.load(out / FINAL_DIR / f"{line['key']}.pt", weights_only=True)
    t = cfg.train
    data = load_dataset(cfg.space.dataset, cfg.data_dir, cfg.seed, t.val_fraction, t.test_fraction)
    calib = calibration_images(data)
    fs = replace(cfg.final, qat_epochs=args.epochs, qat_lr=args.lr, patience=None)
    model = TorchNetwork(net)
    model.load_state_dict(state)
    result = {
        "run": str(out),
        "key": line["key"],
        "board": cfg.board.name,
        "style": record.get("style"),
        "float_val_accuracy": line["val_accuracy"],
        "float_test_accuracy": accuracy(model, data.test),
        "qat_epochs": args.epochs,
        "qat_lr": args.lr,
        "precisions": {},
    }
    print(f"winner {line['key']} ({record.get('style')}), float test {result['float_test_accuracy']:.4f}")
    for prec in args.precisions:
        start = time.perf_counter()
        ptq_test = accuracy(fake_quantized(model, prec, calib), data.test)
        q = train_qat(net, state, data, fs, prec, calib, seed=cfg.seed, progress=_tick(prec, args.epochs))
        qmodel = TorchNetwork(net)
        qmodel.load_state_dict(q["state"])
        row = {
            "ptq_val_accuracy": q["start_val_accuracy"],
            "ptq_test_accuracy": ptq_test,
            "qat_val_accuracy": q["val_accuracy"],
            "qat_test_accuracy": accuracy(fake_quantized(qmodel, prec, calib), data.test),
            "qat_float_test_accuracy": accuracy(qmodel, data.test),
            "best_epoch": q["best_epoch"],
            "seconds_per_epoch": q["seconds"] / max(q["epochs"], 1),
            **_design(network_with_weights(qmodel), qmodel, cfg, prec, record.get("style"), data, calib),
            "seconds": time.perf_counter() - start,
        }
        result["precisions"][prec] = row
        print(
            f"{prec}: PTQ val {row['ptq_val_accuracy']:.4f} test {row['ptq_test_accuracy']:.4f} | QAT val "
            f"{row['qat_val_accuracy']:.4f} test {row['qat_test_accuracy']:.4f} "
            f"(best epoch {row['best_epoch']}, {row['seconds_per_epoch']:.0f} s an epoch) | csim bit-exact "
            f"{row['csim_bit_exact']}, QAT = "
            f"reference on {row['checked_images']} test images: {row['qat_matches_reference']}",
            flush=True,
        )
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _tick(prec: str, epochs: int):  # noqa: ANN202
    def tick(epoch: int, loss: float, acc: float, best: float, seconds: float) -> None:
        print(
            f"  QAT {prec} epoch {epoch}/{epochs}: loss {loss:.4f}, val {acc:.4f} (best {best:.4f}), "
            f"{seconds:.0f} s"
        )

    return tick


def _design(net, model, cfg, prec: str, style: str | None, data, calib) -> dict:  # noqa: ANN001
    """The QAT design emitted and C-simulated, and the fake-quantized model against its reference
    model on the whole test split."""
    with tempfile.TemporaryDirectory() as tmp:
        emitted = emit_project(
            net,
            cfg.board,
            Path(tmp) / "p",
            prec,
            calibration=calib,
            test_inputs=data.test.x[:CSIM_VECTORS],
            style=style or "auto",
        )
        sim = run_csim(Path(tmp) / "p")
    plan = emitted.plan
    x = data.test.x
    stream = emitted.analysis.style == "dataflow"
    ref = run_reference(net, plan, emitted.tilings, plan.input_type.quantize(x), stream_order=stream)
    fq = fake_quantized(model, prec, calib)
    with torch.no_grad():
        units = (
            np.concatenate([fq(torch.from_numpy(x[i : i + 1000])).numpy() for i in range(0, len(x), 1000)])
            * 2.0**plan.output_type.frac
        )
    return {
        "csim_bit_exact": sim.bit_exact,
        "csim_vectors": sim.vectors,
        "reference_test_accuracy": float(np.mean(ref.argmax(1) == data.test.y)),
        "qat_matches_reference": bool(np.array_equal(units, ref)),
        "checked_images": int(len(x)),
    }


if __name__ == "__main__":
    sys.exit(main())
