"""The search loop: pruning, failing children, resume after an interruption, out-folder safety."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from fnas_hls.boards import load_board
from fnas_hls.errors import FnasError
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.torch_model import TorchNetwork
from fnas_hls.search import trainer
from fnas_hls.search.loop import predict
from fnas_hls.search.run import run_search
from fnas_hls.search.rundir import RunConfig, read_log
from fnas_hls.search.settings import TrainSettings
from fnas_hls.search.space import load_space

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
spec_ms: 1.0
train: {epochs: 1, batch_size: 64, train_subset: 200, threads: 1}
search: {episodes: 12, controller_lr: 0.05, epsilon: 0.1}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[RunConfig, dict[str, float]]:
    """The tiny space on pynq with the spec at the median latency, and every child's latency."""
    path = tmp_path_factory.mktemp("space") / "tiny.yaml"
    path.write_text(SPACE)
    space = load_space(path)
    board = load_board("pynq")
    cfg = RunConfig(space, board, 1.0, "fixed16", 0, True, space.train_settings, space.search_settings)
    lat = {}
    for choice in space.architectures():
        key = "-".join(map(str, choice))
        lat[key] = predict(space.build(choice), cfg).latency_ms
    ordered = sorted(lat.values())
    spec = (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2
    return replace(cfg, spec_ms=spec), lat


def _sig(net) -> str:
    return repr([li.layer for li in net.info])


class FakeTrainer:
    """Stands in for ``trainer.train_child``: an accuracy made up from the architecture, no training."""

    def __init__(
        self, spec_ms: float | None = None, fail: set[str] = frozenset(), stop_after: int | None = None
    ):
        self.calls: list[str] = []
        self.spec_ms = spec_ms
        self.fail = fail
        self.stop_after = stop_after

    def __call__(self, net, data, settings, seed, device="cpu"):
        key = net.name
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt
        macs = net.macs
        self.calls.append(_sig(net))
        if self.spec_ms is not None:
            from fnas_hls.styles import analyze

            a = analyze(net, load_board("pynq"), "fixed16", style="auto")  # as the search does
            assert a.fits and a.latency_ms <= self.spec_ms, "a child that breaks the spec was trained"
        if any(f in key for f in self.fail) or macs % 7 == 3 and "nan" in self.fail:
            raise trainer.ChildFailed("loss became nan in epoch 1")
        model = TorchNetwork(net)
        acc = 0.5 + (macs % 997) / 2000
        return trainer.TrainResult(acc, 1, 1, 0.01, model.state_dict(), 0.1)


def _run(cfg, out, monkeypatch, fake, **kw):
    monkeypatch.setattr(trainer, "train_child", fake)
    return run_search(cfg, out, hls=False, **kw)


def test_pruning_never_trains_a_violating_child(tiny, tmp_path, monkeypatch):
    cfg, lat = tiny
    cfg = replace(cfg, search=replace(cfg.search, episodes=20))
    fake = FakeTrainer(spec_ms=cfg.spec_ms)
    outcome = _run(cfg, tmp_path / "run", monkeypatch, fake)
    recs = read_log(tmp_path / "run")
    assert len(recs) == 20
    pruned = [r for r in recs if r["pruned"]]
    trained = [r for r in recs if not r["pruned"]]
    assert pruned and trained
    for r in pruned:
        assert r["latency_ms"] > cfg.spec_ms and r["accuracy"] is None and r["reward"] == cfg.search.penalty
    for r in trained:
        assert r["latency_ms"] <= cfg.spec_ms and r["accuracy"] is not None
        assert r["latency_ms"] == pytest.approx(lat[r["key"]])
    # style auto: each child's latency is that of its fastest style that fits, and the log says which
    assert cfg.style == "auto" and {r["style"] for r in recs} <= {"sequential", "dataflow", "shared"}
    for r in recs:
        key = "Pm" if r["style"] == "dataflow" else "Tm"
        assert all(key in t for t in r["tiling"].values())
    # a child seen twice is trained once
    assert len(fake.calls) == len({r["key"] for r in trained})
    assert outcome.best is not None and outcome.best.latency_ms <= cfg.spec_ms
    assert (tmp_path / "run" / "best" / "model.onnx").is_file()


def test_distance_reward_penalises_by_how_far_over(tiny, tmp_path, monkeypatch):
    cfg, _ = tiny
    cfg = replace(cfg, search=replace(cfg.search, episodes=16, reward="distance", strategy="random"))
    _run(cfg, tmp_path / "run", monkeypatch, FakeTrainer(spec_ms=cfg.spec_ms))
    recs = read_log(tmp_path / "run")
    pruned = [r for r in recs if r["pruned"]]
    assert len({round(r["latency_ms"], 6) for r in pruned}) > 1
    for r in pruned:  # every violator below the flat penalty, the further over the lower
        want = cfg.search.penalty - cfg.search.distance_weight * math.log2(r["latency_ms"] / cfg.spec_ms)
        assert r["reward"] == pytest.approx(want) and r["reward"] < cfg.search.penalty
    assert all(r["accuracy"] is not None for r in recs if not r["pruned"])


def test_device_auto_is_the_cpu_without_cuda_and_cuda_without_one_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert trainer.resolve_device("auto") == "cpu" and trainer.resolve_device("cpu") == "cpu"
    with pytest.raises(FnasError, match=r"--device cuda: torch .* sees no CUDA device.*--device cpu"):
        trainer.resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert trainer.resolve_device("auto") == "cuda"


def test_training_on_an_explicit_device_returns_cpu_weights():
    space = load_space("digits")
    net = space.build((0,) * len(space.steps))
    from fnas_hls.search.datasets import load_dataset

    data = load_dataset("digits", seed=0)
    settings = TrainSettings(epochs=1, train_subset=128, batch_size=64)
    a = trainer.train_child(net, data, settings, seed=3, device="cpu")
    b = trainer.train_child(net, data, settings, seed=3)
    assert a.accuracy == b.accuracy  # same seed, same result
    assert all(v.device.type == "cpu" for v in a.state.values())
    for k in a.state:
        assert torch.equal(a.state[k], b.state[k])


def test_hw_unaware_trains_everything(tiny, tmp_path, monkeypatch):
    cfg, _ = tiny
    cfg = replace(cfg, hw_aware=False, search=replace(cfg.search, episodes=8, strategy="random"))
    _run(cfg, tmp_path / "run", monkeypatch, FakeTrainer())
    recs = read_log(tmp_path / "run")
    assert not any(r["pruned"] for r in recs)
    assert all(r["accuracy"] is not None for r in recs)
    assert any(not r["meets_spec"] for r in recs)  # latency is only checked afterwards


def test_failing_child_is_logged_and_penalised(tiny, tmp_path, monkeypatch):
    cfg, _ = tiny
    cfg = replace(cfg, hw_aware=False, search=replace(cfg.search, episodes=10, strategy="random"))

    def flaky(net, data, settings, seed, device="cpu"):
        if net.info[0].layer.kernel == (3, 3):
            raise RuntimeError("out of memory (simulated)")
        if net.info[0].layer.out == 8:
            raise trainer.ChildFailed("loss became nan in epoch 1")
        return FakeTrainer()(net, data, settings, seed)

    _run(cfg, tmp_path / "run", monkeypatch, flaky)
    recs = read_log(tmp_path / "run")
    assert len(recs) == 10
    failed = [r for r in recs if r["failed"]]
    assert failed, "the random sample had no failing child; change the seed"
    for r in failed:
        assert r["reward"] == cfg.search.penalty and r["accuracy"] is None
        assert "out of memory" in r["error"] or "nan" in r["error"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Failed children" in report


def test_real_nan_loss_fails_the_child(tmp_path):
    space = load_space("digits")
    net = space.build(tuple(0 for _ in space.steps))
    from fnas_hls.search.datasets import load_dataset

    data = load_dataset("digits", seed=0)
    bad = replace(data, train=replace(data.train, x=data.train.x * math.nan))
    with pytest.raises(trainer.ChildFailed, match="nan"):
        trainer.train_child(net, bad, TrainSettings(epochs=1, train_subset=64), seed=0)


def test_resume_after_interruption_retrains_nothing(tiny, tmp_path, monkeypatch):
    cfg, _ = tiny
    cfg = replace(cfg, search=replace(cfg.search, episodes=16))
    whole = FakeTrainer()
    _run(cfg, tmp_path / "whole", monkeypatch, whole)
    expected = read_log(tmp_path / "whole")

    first = FakeTrainer(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        _run(cfg, tmp_path / "run", monkeypatch, first)
    partial = read_log(tmp_path / "run")
    assert 0 < len(partial) < 16
    assert (tmp_path / "run" / "controller.pt").is_file()

    state = torch.load(tmp_path / "run" / "controller.pt", weights_only=False)
    assert state["episode"] == len(partial)

    second = FakeTrainer()
    with pytest.raises(FnasError, match="--resume"):
        _run(cfg, tmp_path / "run", monkeypatch, second)
    _run(cfg, tmp_path / "run", monkeypatch, second, resume=True)
    final = read_log(tmp_path / "run")
    assert [r["episode"] for r in final] == list(range(16))
    assert [r["key"] for r in final] == [r["key"] for r in expected]
    assert [r["reward"] for r in final] == pytest.approx([r["reward"] for r in expected])
    assert set(first.calls).isdisjoint(second.calls)  # nothing finished before was trained again
    assert len(first.calls) + len(second.calls) == len(whole.calls)


def test_resume_replays_log_lines_after_the_checkpoint(tiny, tmp_path, monkeypatch):
    """A kill after a child's log line but before its checkpoint: the line is replayed, not retrained."""
    cfg, _ = tiny
    episodes, k = 10, 6
    _run(
        replace(cfg, search=replace(cfg.search, episodes=episodes)),
        tmp_path / "whole",
        monkeypatch,
        FakeTrainer(),
    )
    expected = read_log(tmp_path / "whole")
    run = tmp_path / "run"
    _run(replace(cfg, search=replace(cfg.search, episodes=k)), run, monkeypatch, FakeTrainer())
    _run(
        replace(cfg, search=replace(cfg.search, episodes=k - 1)), tmp_path / "cut", monkeypatch, FakeTrainer()
    )
    (run / "controller.pt").write_bytes((tmp_path / "cut" / "controller.pt").read_bytes())
    with open(run / "children.jsonl", "a") as handle:
        handle.write('{"episode": 99, "key": "torn')  # a torn last line from the kill
    last = read_log(run)[-1]
    second = FakeTrainer()
    outcome = _run(
        replace(cfg, search=replace(cfg.search, episodes=episodes)), run, monkeypatch, second, resume=True
    )
    assert outcome.replayed == 1
    final = read_log(run)
    assert [r["episode"] for r in final] == list(range(episodes))
    assert [r["key"] for r in final] == [r["key"] for r in expected]
    assert final[k - 1]["accuracy"] == last["accuracy"]
    if last["arch"] is not None and not last["pruned"]:
        assert _sig(network_from_dict(last["arch"])) not in second.calls


def test_out_folder_safety(tiny, tmp_path, monkeypatch):
    cfg, _ = tiny
    cfg = replace(cfg, search=replace(cfg.search, episodes=2))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FnasError, match="not an fnas-hls run"):
        _run(cfg, other, monkeypatch, FakeTrainer())
    _run(cfg, other, monkeypatch, FakeTrainer(), force=True)
    assert (other / "notes.txt").read_text() == "mine"
    cfgdoc = (other / "config.yaml").read_text()
    assert "spec_ms" in cfgdoc and "seed" in cfgdoc and "train:" in cfgdoc and "search:" in cfgdoc
    lines = (other / "children.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    for field in ("arch", "tiling", "latency_ms", "fits", "pruned", "accuracy", "reward", "seconds"):
        assert field in rec
