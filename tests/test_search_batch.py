"""Batched controller updates and parallel children: the same log whatever trains the children,
resume mid-batch without retraining, and Ray workers (slow: they start Ray)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fnas_hls.cli import main
from fnas_hls.search import workers as workers_mod
from fnas_hls.search.policy import ReinforceStrategy
from fnas_hls.search.rundir import read_log, read_trained
from fnas_hls.search.settings import SearchSettings

sys.path.insert(0, str(Path(__file__).parent))
from test_search_loop import FakeTrainer, _run, tiny  # noqa: E402, F401  (tiny: the space fixture)

ROOT = Path(__file__).resolve().parents[1]


def _sig(records):
    return [(r["episode"], r["key"], r["accuracy"], r["reward"], r["pruned"], r["cached"]) for r in records]


def test_a_batch_of_one_is_the_per_child_update():
    a = ReinforceStrategy([3, 2, 4], SearchSettings(), seed=1)
    b = ReinforceStrategy([3, 2, 4], SearchSettings(), seed=1)
    for reward in (0.3, -0.1, 0.7):
        choice = a.propose()
        assert b.propose() == choice
        sa, sb = a.feedback(choice, reward), b.feedback_batch([(choice, reward)])
        assert sa == sb
    for pa, pb in zip(a.controller.parameters(), b.controller.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_a_batch_update_averages_its_children_against_one_baseline():
    s = ReinforceStrategy([3, 3], SearchSettings(baseline_decay=0.5), seed=0)
    items = [(s.propose(), 0.2), (s.propose(), 0.6)]
    stats = s.feedback_batch(items)
    assert stats["advantage"] == pytest.approx(0.4 - 0.2)  # the mean reward over the first as baseline
    assert s.baseline == pytest.approx(0.2 * 0.5 + 0.5 * 0.6)  # then each reward in turn


def _batched(cfg, batch: int, episodes: int = 12):
    return replace(cfg, search=replace(cfg.search, episodes=episodes, batch=batch))


def test_batched_search_logs_in_sampling_order_and_checkpoints_at_batch_ends(tiny, tmp_path, monkeypatch):  # noqa: F811 (the imported fixture)
    cfg, _ = tiny
    cfg = _batched(cfg, 4)
    seen = []
    fake = FakeTrainer()
    _run(cfg, tmp_path / "r", monkeypatch, fake, progress=lambda p: p.record and seen.append(p.done))
    log = read_log(tmp_path / "r")
    assert [r["episode"] for r in log] == list(range(12)) and seen == list(range(1, 13))
    state = torch.load(tmp_path / "r" / "controller.pt", weights_only=False)
    assert state["episode"] == 12
    trained = read_trained(tmp_path / "r")
    assert set(trained) == {r["key"] for r in log if not r["pruned"]}  # each trained child once
    assert len(fake.calls) == len(trained)


class Reversed(workers_mod.InProcess):
    """Trains a batch's jobs in the opposite order, as parallel workers may finish them."""

    def run(self, jobs, data, done, started=None):
        super().run(list(reversed(jobs)), data, done, started)


def test_the_log_does_not_depend_on_the_order_children_finish(tiny, tmp_path, monkeypatch):  # noqa: F811 (the imported fixture)
    from fnas_hls.search.run import run_search

    cfg, _ = tiny
    cfg = _batched(cfg, 4)
    _run(cfg, tmp_path / "a", monkeypatch, FakeTrainer())
    monkeypatch.setattr("fnas_hls.search.run.make_workers", lambda t, d, w, a: Reversed(t, d))
    run_search(cfg, tmp_path / "b", hls=False)
    assert _sig(read_log(tmp_path / "a")) == _sig(read_log(tmp_path / "b"))


def test_a_search_killed_mid_batch_resumes_without_retraining(tiny, tmp_path, monkeypatch):  # noqa: F811 (the imported fixture)
    cfg, _ = tiny
    cfg = _batched(cfg, 4, episodes=16)
    whole = FakeTrainer()
    _run(cfg, tmp_path / "whole", monkeypatch, whole)
    first = FakeTrainer(stop_after=3)  # the fourth training of the run is interrupted, inside a batch
    with pytest.raises(KeyboardInterrupt):
        _run(cfg, tmp_path / "run", monkeypatch, first)
    state = torch.load(tmp_path / "run" / "controller.pt", weights_only=False)
    assert state["episode"] % 4 == 0  # the checkpoint is a batch boundary
    assert len(read_log(tmp_path / "run")) == state["episode"]
    assert len(read_trained(tmp_path / "run")) == 3  # finished children are in the journal
    second = FakeTrainer()
    _run(cfg, tmp_path / "run", monkeypatch, second, resume=True)
    assert _sig(read_log(tmp_path / "run")) == _sig(read_log(tmp_path / "whole"))
    assert set(first.calls).isdisjoint(second.calls)  # nothing finished before was trained again
    assert len(first.calls) + len(second.calls) == len(whole.calls)


def test_a_worker_restores_the_drivers_array_layout():
    """Ray's serialisation re-strides length-1 dimensions; torch picks its kernels by the strides."""
    import numpy as np

    from fnas_hls.search.datasets import Dataset, Split

    x = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 1).transpose(0, 3, 1, 2)  # (2, 1, 3, 3)
    y = np.arange(2)
    split = Split(x, y)
    driver = Dataset("d", split, split, split, 2)
    layout = workers_mod.data_layout(driver)
    shipped = Dataset("d", *(Split(np.ascontiguousarray(x).copy(), y.copy()),) * 3, 2)  # canonical strides
    assert shipped.train.x.strides != x.strides
    back = workers_mod.restore_layout(shipped, layout)
    assert back.train.x.strides == x.strides and np.array_equal(back.train.x, x)
    t_driver, t_back = torch.from_numpy(x), torch.from_numpy(np.array(back.train.x, copy=False))
    assert t_driver.stride() == t_back.stride()


def test_workers_without_ray_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    code = main(
        ["search", "--space", "digits", "--episodes", "2", "--workers", "2", "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "need Ray, which is not installed; pip install 'fnas-hls[ray]'" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()
    assert main(["search", "--space", "digits", "--workers", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--workers must be at least 1, got 0" in capsys.readouterr().err


# --- Ray (slow: each test starts a local Ray instance) ------------------------------------------

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install 'fnas-hls[ray]')"
)


def _search(out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "fnas_hls.cli", "search", "--space", "digits", "--board", "pynq"]
    cmd += ["--episodes", "8", "--batch", "4", "--no-hls", "--final-k", "0", "--out", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


@pytest.mark.slow
@needs_ray
def test_the_same_log_in_process_and_on_one_or_two_ray_workers(tmp_path):
    runs = {}
    for name, extra in (("in-process", ()), ("ray1", ("--workers", "1")), ("ray2", ("--workers", "2"))):
        res = _search(tmp_path / name, *extra)
        assert res.returncode == 0, res.stderr[-2000:]
        runs[name] = _sig(read_log(tmp_path / name))
    assert runs["in-process"] == runs["ray1"] == runs["ray2"]
    assert any(r[2] is not None for r in runs["ray2"])  # children were trained, not all pruned


@pytest.mark.slow
@needs_ray
def test_the_same_log_in_process_and_on_ray_on_fashion_mnist(tmp_path):
    """Real 28x28 images, (N, 1, 28, 28) maps whose channel stride Ray's serialisation changes."""
    from fnas_hls.search.datasets import dataset_folder

    if not (Path(dataset_folder("fashion-mnist", None)) / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    runs = {}
    for name, extra in (("in-process", ()), ("ray2", ("--workers", "2"))):
        cmd = [sys.executable, "-m", "fnas_hls.cli", "search", "--space", "fashion", "--board", "pynq"]
        cmd += ["--episodes", "8", "--batch", "4", "--spec-ms", "10", "--no-hls", "--final-k", "0"]
        cmd += ["--out", str(tmp_path / name)]
        res = subprocess.run([*cmd, *extra], capture_output=True, text=True, cwd=ROOT, timeout=900)
        assert res.returncode == 0, res.stderr[-2000:]
        runs[name] = _sig(read_log(tmp_path / name))
    assert runs["in-process"] == runs["ray2"]


@pytest.mark.slow
@needs_ray
def test_a_worker_killed_mid_child_is_retried_and_the_search_finishes(tmp_path):
    marker = tmp_path / "killed"
    env = {**os.environ, workers_mod.KILL_ONCE_ENV: str(marker)}
    res = _search(tmp_path / "r", "--workers", "2", env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert marker.exists()  # one worker did die (kill -9) during a child
    base = _search(tmp_path / "base")
    assert base.returncode == 0
    log = read_log(tmp_path / "r")
    assert len(log) == 8 and not any(r["failed"] for r in log)  # the retry trained it
    assert _sig(log) == _sig(read_log(tmp_path / "base"))


@pytest.mark.slow
@needs_ray
def test_a_driver_killed_mid_batch_resumes_with_every_child_once(tmp_path):
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "fnas_hls.cli", "search", "--space", "digits", "--board", "pynq"]
    cmd += [
        "--episodes",
        "12",
        "--batch",
        "4",
        "--workers",
        "2",
        "--no-hls",
        "--final-k",
        "0",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    journal = out / "trained.jsonl"
    mid_batch = False
    while time.monotonic() < deadline and proc.poll() is None:  # kill it once a child has finished
        log = read_log(out) if (out / "children.jsonl").exists() else []  # in a batch not yet logged
        trained_keys = set(read_trained(out)) if journal.exists() else set()
        if len(log) >= 4 and trained_keys - {r["key"] for r in log}:
            mid_batch = True
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert mid_batch and proc.returncode == -signal.SIGKILL
    before = read_trained(out)
    res = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    log = read_log(out)
    assert [r["episode"] for r in log] == list(range(12))  # every child exactly once
    lines = (out / "trained.jsonl").read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines if line.strip()]
    assert len(keys) == len(set(keys))  # no child trained twice, before the kill or after
    assert set(before) <= set(keys)
