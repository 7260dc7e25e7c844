"""Final training (``search/final.py``): the best K in-spec children retrained from scratch, the
best of them on validation as the winner, resumable from its last epoch, and the CLI around it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from test_search_cli import SPACE as CLI_SPACE

from fnas_hls.cli import main
from fnas_hls.search.datasets import load_dataset
from fnas_hls.search.final import final_candidates, spearman, train_final
from fnas_hls.search.settings import FinalSettings
from fnas_hls.search.space import load_space

SPACE = CLI_SPACE.replace("search: {episodes: 5}", "search: {episodes: 6, strategy: random}") + (
    "final: {k: 2, epochs: 3, lr: 0.01, batch_size: 64, patience: 5}\n"
)


def _rec(key, acc, meets=True, latency=1.0, episode=0, **kw):
    return {"key": key, "accuracy": acc, "meets_spec": meets, "latency_ms": latency, "episode": episode, **kw}


def test_final_candidates_are_the_best_in_spec_children_once_each():
    recs = [
        _rec("a", 0.5, episode=0),
        _rec("b", 0.9, meets=False, episode=1),  # breaks the spec
        _rec("c", 0.8, episode=2),
        _rec("c", 0.8, episode=3),  # the same architecture again
        _rec("d", None, episode=4, pruned=True),
        _rec("e", 0.8, latency=0.5, episode=5),  # as accurate as c, faster: first
        _rec("f", 0.95, episode=6, failed=True),
    ]
    assert [r["key"] for r in final_candidates(recs, 3)] == ["e", "c", "a"]
    assert [r["key"] for r in final_candidates(recs, 1)] == ["e"]
    assert final_candidates(recs, 0) == []


def test_spearman():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


def test_a_killed_final_training_continues_from_its_last_epoch(tmp_path):
    """Stopped after epoch 2 of 4 and run again from its checkpoint: the same weights, accuracy and
    best epoch as a run that was never stopped (CPU training is deterministic here)."""
    torch.set_num_threads(1)
    space = load_space("digits")
    net = space.build((0,) * len(space.steps))
    data = load_dataset("digits", seed=0)
    fs = FinalSettings(k=1, epochs=4, lr=0.01, batch_size=64, patience=None)
    whole = train_final(net, data, fs, seed=5)

    class Killed(Exception):
        pass

    def kill_after_two(epoch, *_):
        if epoch == 2:
            raise Killed

    ckpt = tmp_path / "c.ckpt"
    with pytest.raises(Killed):
        train_final(net, data, fs, seed=5, checkpoint=ckpt, progress=kill_after_two)
    assert ckpt.is_file()
    epochs_seen = []
    resumed = train_final(
        net, data, fs, seed=5, checkpoint=ckpt, progress=lambda e, *_: epochs_seen.append(e)
    )
    assert epochs_seen == [3, 4]  # epochs 1 and 2 are not run again
    assert (resumed["val_accuracy"], resumed["best_epoch"], resumed["epochs"]) == (
        whole["val_accuracy"],
        whole["best_epoch"],
        4,
    )
    for k, v in whole["state"].items():
        assert torch.equal(v, resumed["state"][k]), k


def test_early_stopping_on_validation_accuracy():
    space = load_space("digits")
    net = space.build((0,) * len(space.steps))
    data = load_dataset("digits", seed=0)
    res = train_final(net, data, FinalSettings(k=1, epochs=40, lr=0.5, patience=2), seed=0)  # diverges early
    assert res["epochs"] < 40 and res["epochs"] - res["best_epoch"] == 2


def test_search_with_final_training_end_to_end(tmp_path, capsys):
    """The tiny space's 2 best in-spec children retrained; the winner is the best on validation,
    best/ holds its final weights, the report compares them with the search's; --resume with a
    larger --final-k trains only the one child more."""
    space = tmp_path / "tiny.yaml"
    space.write_text(SPACE)
    out = tmp_path / "run"
    assert main(["search", "--space", str(space), "--out", str(out), "--no-hls"]) == 0
    text = capsys.readouterr()
    assert "final training 1/2" in text.err and "final training 2/2" in text.err
    lines = [json.loads(x) for x in (out / "final.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(r["epochs"] <= 3 and 0 <= r["test_accuracy"] <= 1 for r in lines)
    winner = max(lines, key=lambda r: r["val_accuracy"])
    summary = json.loads((out / "best" / "summary.json").read_text())
    assert summary["key"] == winner["key"] and summary["val_accuracy"] == winner["val_accuracy"]
    assert summary["final_training"]["key"] == winner["key"]
    final_weights = torch.load(out / "final" / f"{winner['key']}.pt", weights_only=True)
    best_weights = torch.load(out / "best" / "weights.pt", weights_only=True)
    assert all(torch.equal(final_weights[k], best_weights[k]) for k in final_weights)
    report = (out / "report.md").read_text()
    assert "## Final training" in report and f"`{winner['key']}`" in report
    assert not list((out / "final").glob("*.ckpt"))  # finished children leave no checkpoint
    assert main(["search", "--resume", "--out", str(out), "--final-k", "3", "--no-hls"]) == 0
    again = [json.loads(x) for x in (out / "final.jsonl").read_text().splitlines()]
    assert again[:2] == lines and len(again) <= 3  # the first two are replayed, not retrained
    cfg = (out / "config.yaml").read_text()
    assert "k: 3" in cfg


@pytest.mark.parametrize(
    "args, message",
    [
        (["--final-epochs", "0"], "--final-epochs must be at least 1, got 0"),
        (["--final-k", "-1"], "--final-k must be 0 or more, got -1"),
        (["--qat-epochs", "-2"], "--qat-epochs must be 0 or more, got -2"),
    ],
)
def test_final_training_bad_options_are_one_line(tmp_path, capsys, args, message):
    assert main(["search", "--space", "digits", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_bad_final_section_names_its_field(tmp_path, capsys):
    space = tmp_path / "bad.yaml"
    space.write_text(SPACE.replace("final: {k: 2,", "final: {k: -2,"))
    assert main(["search", "--space", str(space), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "field 'final.k' must be an integer >= 0, got -2" in err and str(space) in err


def test_resume_refuses_other_final_epochs_once_final_training_began(tmp_path, capsys):
    space = tmp_path / "tiny.yaml"
    space.write_text(SPACE.replace("episodes: 6", "episodes: 3"))
    out = tmp_path / "run"
    assert main(["search", "--space", str(space), "--out", str(out), "--no-hls"]) == 0
    capsys.readouterr()
    assert main(["search", "--resume", "--out", str(out), "--final-epochs", "9", "--no-hls"]) == 2
    err = capsys.readouterr().err
    assert "final training began with 3 epochs" in err and len(err.strip().splitlines()) == 1


def test_augmentation_moves_and_mirrors_images_as_drawn():
    from fnas_hls.search.trainer import SHIFT, augmented

    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    gen = torch.Generator().manual_seed(0)
    assert augmented(x, "none", gen) is x
    a = augmented(x, "shift", torch.Generator().manual_seed(3))
    b = augmented(x, "shift", torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape  # seeded: the same draw
    for i in range(2):  # each image is its own, moved: every nonzero value of the output is in it
        kept = a[i][a[i] != 0]
        assert set(kept.tolist()) <= set(x[i].flatten().tolist()) and len(kept) >= (6 - SHIFT) ** 2
    flipped = 0
    for seed in range(20):
        f = augmented(x, "shift-flip", torch.Generator().manual_seed(seed))
        s = augmented(x, "shift", torch.Generator().manual_seed(seed))
        flipped += int(not torch.equal(f, s))
    assert 0 < flipped < 20  # mirrored sometimes, not always


def test_quantization_aware_training_scores_what_the_reference_model_computes():
    """QAT in int8 after a short float training: epoch 0 is post-training quantization, the best
    epoch is kept, and the accuracy it reports is the reference model's on the formats that emit
    chooses from the same calibration images (the design's accuracy, bit for bit)."""
    from fnas_hls.backend.quantize import quantize_network
    from fnas_hls.backend.reference import run_reference
    from fnas_hls.model.tiling import Tiling
    from fnas_hls.network.torch_model import TorchNetwork, network_with_weights
    from fnas_hls.search.datasets import calibration_images
    from fnas_hls.search.final import train_qat

    torch.set_num_threads(1)
    space = load_space("digits")
    net = space.build((1,) * len(space.steps))
    data = load_dataset("digits", seed=0)
    fs = FinalSettings(k=1, epochs=3, lr=0.01, batch_size=64, patience=None, qat_epochs=2, qat_lr=1e-3)
    float_res = train_final(net, data, fs, seed=1)
    calib = calibration_images(data)
    seen = []
    q = train_qat(
        net, float_res["state"], data, fs, "int8", calib, seed=1, progress=lambda e, *_: seen.append(e)
    )
    assert seen == [1, 2] and q["epochs"] == 2 and 0 <= q["best_epoch"] <= 2
    assert q["val_accuracy"] >= q["start_val_accuracy"] > 0.5  # the best epoch, PTQ among them
    model = TorchNetwork(net)
    model.load_state_dict(q["state"])
    trained = network_with_weights(model)
    plan = quantize_network(trained, "int8", calib)
    tilings = {li.name: Tiling(8, 4, 4, 4) for li in trained.info}
    out = run_reference(trained, plan, tilings, plan.input_type.quantize(data.val.x))
    assert float(np.mean(out.argmax(1) == data.val.y)) == q["val_accuracy"]


def test_search_with_quantization_aware_training_end_to_end(tmp_path, capsys):
    """--qat-epochs: each retrained child gets QAT in the run's precision; the winner is the best
    design (quantized) on validation; best/ holds the QAT weights, its emitted design's reference
    model is the QAT model bit for bit, and the report shows QAT against post-training quantization."""
    space = tmp_path / "tiny.yaml"
    space.write_text(SPACE.replace("episodes: 6", "episodes: 3"))
    out = tmp_path / "run"
    args = ["search", "--space", str(space), "--out", str(out), "--precision", "int8", "--qat-epochs", "2"]
    assert main([*args, "--final-k", "2"]) == 0
    assert "QAT int8 training 1/2" in capsys.readouterr().err
    lines = [json.loads(x) for x in (out / "final.jsonl").read_text().splitlines()]
    assert all(r["qat"]["precision"] == "int8" and r["qat"]["epochs"] == 2 for r in lines)
    winner = max(lines, key=lambda r: r["qat"]["val_accuracy"])
    summary = json.loads((out / "best" / "summary.json").read_text())
    assert summary["key"] == winner["key"]
    hls = summary["hls"]
    assert hls["qat_matches_reference"] is True and hls["csim"]["bit_exact"] is True
    n = hls["quantized_test_samples"]
    assert n == len(load_dataset("digits", seed=0).test.y)  # the whole test split: the same figure
    assert hls["quantized_test_accuracy"] == pytest.approx(winner["qat"]["test_accuracy"], abs=1e-12)
    assert "PTQ val / test acc" in (out / "report.md").read_text()
    assert "--qat-epochs 2" in yaml.safe_load((out / "config.yaml").read_text())["command"]
