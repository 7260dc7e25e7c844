"""``fnas-hls search`` end to end on tiny settings: every artefact of a run is there."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import yaml

from fnas_hls.cli import main

SPACE = """name: tiny
dataset: digits
input: [1, 8, 8]
layers: 2
choices:
  kernel: [1, 3]
  filters: [4, 8]
  pool: [none, max]
conv: {stride: 1, padding: same, relu: true}
head: [{type: flatten}, {type: fc, out: 10}]
board: pynq
spec_ms: 0.06
train: {epochs: 1, batch_size: 64, lr: 0.01, train_subset: 400, threads: 1}
search: {episodes: 5}
"""


def test_search_end_to_end(tmp_path, capsys):
    space = tmp_path / "tiny.yaml"
    space.write_text(SPACE)
    out = tmp_path / "run"
    rc = main(
        [
            "search",
            "--space",
            str(space),
            "--board",
            "pynq",
            "--episodes",
            "5",
            "--epochs",
            "1",
            "--out",
            str(out),
        ]
    )
    text = capsys.readouterr()
    assert rc == 0, text.err
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["spec_ms"] == 0.06 and cfg["seed"] == 0 and cfg["board"] == "pynq"
    assert cfg["train"]["epochs"] == 1 and cfg["search"]["episodes"] == 5
    recs = [json.loads(line) for line in (out / "children.jsonl").read_text().splitlines()]
    assert len(recs) == 5
    assert (out / "controller.pt").is_file()
    best = out / "best"
    for name in ("arch.yaml", "weights.pt", "model.onnx", "summary.json"):
        assert (best / name).is_file(), name
    onnx.checker.check_model(onnx.load(str(best / "model.onnx")))
    summary = json.loads((best / "summary.json").read_text())
    assert summary["onnx"]["matches_torch"] and summary["onnx"]["reimport_same_network"]
    assert summary["latency_ms"] <= 0.06
    if summary["hls"].get("status") == "emitted" and shutil.which("g++"):
        assert summary["hls"]["csim"]["bit_exact"]
        assert 0 <= summary["hls"]["quantized_test_accuracy"] <= 1
        assert (best / "hls").is_dir()
    report = (out / "report.md").read_text()
    assert "| rank |" in report and "Best child meeting the spec" in report
    for png in ("reward.png", "accuracy_latency.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "children" in text.err  # the progress display

    # the same --out again: refused, unless --resume; --resume with another seed: refused
    assert main(["search", "--space", str(space), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["search", "--out", str(out), "--resume", "--seed", "4"]) == 2
    assert "--seed" in capsys.readouterr().err
    # --resume with more episodes continues the run
    assert main(["search", "--out", str(out), "--resume", "--episodes", "7", "--no-hls"]) == 0
    recs = [json.loads(line) for line in (out / "children.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in recs] == list(range(7))


def test_search_errors(tmp_path, capsys):
    assert (
        main(
            [
                "search",
                "--space",
                "fnas-mnist",
                "--data-dir",
                str(tmp_path),
                "--out",
                str(tmp_path / "m"),
                "--episodes",
                "3",
                "--spec-ms",
                "1000",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err and str(tmp_path) in err
    assert main(["search", "--space", "digits", "--spec-ms", "-1"]) == 2
    assert "--spec-ms" in capsys.readouterr().err


@pytest.mark.slow
def test_default_search_random_and_unaware(tmp_path):
    """The default digits space with the two baselines, on short budgets."""
    for extra in (["--strategy", "random"], ["--hw-unaware"]):
        out = tmp_path / extra[-1]
        args = [
            "search",
            "--board",
            "pynq",
            "--episodes",
            "8",
            "--epochs",
            "3",
            "--out",
            str(out),
            "--no-hls",
        ]
        assert main(args + extra) == 0
        recs = [json.loads(line) for line in (out / "children.jsonl").read_text().splitlines()]
        assert len(recs) == 8
        if extra == ["--hw-unaware"]:
            assert not any(r["pruned"] for r in recs)
        assert np.isfinite([r["reward"] for r in recs]).all()
