"""``fnas-hls search`` end to end on tiny settings: every artefact of a run is there."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import yaml

from fnas_hls.cli import main
from fnas_hls.search.datasets import dataset_available

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
    assert main(["search", "--space", "digits", "--train-subset", "0"]) == 2
    assert "--train-subset must be at least 1" in capsys.readouterr().err


def test_search_on_cuda_without_one_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    assert main(["search", "--space", "digits", "--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--device cuda" in err and "Traceback" not in err
    assert not out.exists()


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


needs_fashion = pytest.mark.skipif(
    not dataset_available("fashion-mnist"),
    reason="Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist, or put its four idx "
    "files in data/fashion-mnist/ (CI installs the package)",
)


@needs_fashion
def test_search_fashion_on_the_real_files(tmp_path, capsys):
    """`fnas-hls search --space fashion` on the Debian package's files: short, but the whole way."""
    out = tmp_path / "fashion"
    args = ["search", "--space", "fashion", "--episodes", "3", "--epochs", "2", "--train-subset", "2000"]
    args += ["--final-k", "0"]  # final training on all 54,000 images is the slow set's
    rc = main(args + ["--spec-ms", "100", "--seed", "1", "--out", str(out)])
    text = capsys.readouterr()
    assert rc == 0, text.err
    assert "dataset fashion-mnist from" in text.err and "children train on cpu" in text.err
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["dataset"] == "fashion-mnist" and cfg["train"]["train_subset"] == 2000
    recs = [json.loads(line) for line in (out / "children.jsonl").read_text().splitlines()]
    assert len(recs) == 3 and all(r["accuracy"] is not None for r in recs)
    assert all(r["arch"]["input"] == [1, 28, 28] for r in recs)
    # 2,000 images, two epochs: far from trained, but well above chance (10%) on real images
    assert max(r["accuracy"] for r in recs) > 0.2
    summary = json.loads((out / "best" / "summary.json").read_text())
    assert summary["onnx"]["matches_torch"] and summary["hls"]["csim"]["bit_exact"]
    report = (out / "report.md").read_text()
    assert (
        "accuracy_latency.png" in report and "Pareto" in report and (out / "accuracy_latency.png").is_file()
    )


@pytest.mark.slow
@needs_fashion
def test_fnas_mnist_space_trains_on_real_28x28_files(tmp_path):
    """FNAS's own MNIST space (kernels up to 14) on real 28x28 idx files via --data-dir: a few children,
    one epoch, a subset. (The MNIST files are not packaged; Fashion-MNIST's are the same format.)"""
    from fnas_hls.search.datasets import dataset_folder

    out = tmp_path / "fnas-mnist"
    args = ["search", "--space", "fnas-mnist", "--data-dir", str(dataset_folder("fashion-mnist"))]
    args += ["--episodes", "3", "--epochs", "1", "--train-subset", "1000", "--spec-ms", "1000"]
    args += ["--out", str(out), "--no-hls"]
    assert main(args) == 0
    recs = [json.loads(line) for line in (out / "children.jsonl").read_text().splitlines()]
    assert len(recs) == 3 and any(r["accuracy"] is not None for r in recs)
    assert all(r["latency_ms"] is not None for r in recs)


def test_a_dataset_name_the_tool_does_not_know_is_one_line(tmp_path, capsys):
    space = tmp_path / "tiny.yaml"
    space.write_text(SPACE.replace("dataset: digits", "dataset: fashion_mnist"))
    out = tmp_path / "run"
    assert main(["search", "--space", str(space), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{space}:1: field 'dataset' is 'fashion_mnist' (did you mean 'fashion-mnist'?)" in err
    assert "digits, mnist, fashion-mnist, cifar10, or the path of your own data" in err
    assert not out.exists()
    # the sweep reads the same field
    assert main(["sweep", "--space", str(space), "--board", "pynq"]) == 2
    assert "field 'dataset'" in capsys.readouterr().err


def _own_npz(path, n_train=300, n_test=60, classes=4):
    """Images a user brings: 8x8 uint8, the class drawn as a bright row."""
    rng = np.random.default_rng(0)

    def split(n):
        y = rng.integers(0, classes, n)
        x = rng.integers(0, 60, (n, 8, 8)).astype(np.uint8)
        x[np.arange(n), 2 * y] = 250
        return x, y

    (xtr, ytr), (xte, yte) = split(n_train), split(n_test)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)


def test_search_on_the_users_own_npz(tmp_path, monkeypatch, capsys):
    """A space names the user's .npz relative to itself; the run resumes from another folder."""
    (tmp_path / "spaces" / "data").mkdir(parents=True)
    _own_npz(tmp_path / "spaces" / "data" / "mine.npz")
    space = tmp_path / "spaces" / "mine.yaml"
    space.write_text(SPACE.replace("dataset: digits", "dataset: data/mine.npz").replace("out: 10", "out: 4"))
    out = tmp_path / "run"
    args = ["search", "--space", str(space), "--episodes", "3", "--epochs", "6", "--out", str(out)]
    args.append("--no-hls")
    assert main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert f"dataset {tmp_path / 'spaces' / 'data' / 'mine.npz'}; children train" in err
    recs = [json.loads(line) for line in (out / "children.jsonl").read_text().splitlines()]
    trained = [r for r in recs if not r["pruned"]]
    assert max(r["accuracy"] for r in trained) > 0.6  # a bright row is easy to learn; chance is 0.25
    monkeypatch.chdir(tmp_path / "run")
    assert main(["search", "--out", ".", "--resume", "--episodes", "4", "--no-hls"]) == 0
    assert len((out / "children.jsonl").read_text().splitlines()) == 4


def test_the_users_own_data_faults_are_one_line(tmp_path, capsys):
    def search(dataset: str, head_out: int = 4) -> str:
        space = tmp_path / "s.yaml"
        space.write_text(
            SPACE.replace("dataset: digits", f"dataset: {dataset}").replace("out: 10", f"out: {head_out}")
        )
        assert main(["search", "--space", str(space), "--out", str(tmp_path / "run"), "--no-hls"]) == 2
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if not ln.startswith("search: space")]  # the first line
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
        assert not (tmp_path / "run").exists()
        return err

    assert "no such file or folder" in search("./missing.npz")
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.zeros(4, np.int64))
    assert "no array 'x_test', 'y_test'" in search("./partial.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert "cannot read the .npz" in search("./junk.npz")
    _own_npz(tmp_path / "ok.npz", classes=4)
    err = search("./ok.npz", head_out=3)
    assert "the networks have 3 outputs" in err and "labels up to 3" in err and "out: 4" in err
    x = np.zeros((6, 1, 10, 10), np.float32)
    np.savez(tmp_path / "big.npz", x_train=x, y_train=np.zeros(6, int), x_test=x, y_test=np.zeros(6, int))
    assert "field 'input' is [1, 8, 8]" in search(
        "./big.npz"
    ) and "[1, 10, 10]" in capsys.readouterr().err + search("./big.npz")
    (tmp_path / "idx").mkdir()
    assert "train-images-idx3-ubyte" in search("./idx") and "--data-dir" not in search("./idx")
