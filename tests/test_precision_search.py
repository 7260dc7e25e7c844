"""Precision as a searched dimension: a space's ``precision: [fixed16, int8]`` is the controller's last
decision; each child's latency is predicted, and its accuracy scored, in its own precision."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from test_search_cli import SPACE as CLI_SPACE

from fnas_hls.backend.design import Design
from fnas_hls.boards import load_board
from fnas_hls.cli import main
from fnas_hls.deploy.driver import Driver
from fnas_hls.deploy.local import CompiledBackend
from fnas_hls.network.arch import network_from_dict
from fnas_hls.search.datasets import load_dataset
from fnas_hls.search.loop import Search, child_key
from fnas_hls.search.rundir import load_run_config
from fnas_hls.search.space import SEARCHED, load_space
from fnas_hls.styles import analyze

SPACE = CLI_SPACE.replace("board: pynq", "board: ultra96v2\nprecision: [fixed16, int8]").replace(
    "search: {episodes: 5}", "search: {episodes: 6, strategy: random}"
)


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPACE)
    return path


def test_a_listed_precision_is_the_last_decision(space_file):
    space = load_space(space_file)
    plain = load_space(space_file).with_precision("int8")
    assert space.searches_precision and space.precisions == ("fixed16", "int8")
    assert space.steps[-1].name == "precision" and space.size == 2 * plain.size
    assert not plain.searches_precision and len(plain.steps) == len(space.steps) - 1
    choice = (1, 0, 1) * 2 + (1,)
    assert space.precision_of(choice) == "int8" and space.precision_of(choice[:-1] + (0,)) == "fixed16"
    assert space.arch_choice(choice) == choice[:-1]
    assert space.build(choice) == plain.build(choice[:-1])  # the network is the layers' alone
    assert space.describe(choice) == plain.describe(choice[:-1])


@pytest.mark.parametrize(
    "value, message",
    [
        ("[fixed16, fixed16]", "give distinct precisions"),
        ("[fixed16, int4]", "field 'precision' must be one of fixed16, int8, float32 or a list of them"),
        ("[]", "give distinct precisions"),
    ],
)
def test_a_bad_precision_list_names_the_field(tmp_path, capsys, value, message):
    path = tmp_path / "bad.yaml"
    path.write_text(SPACE.replace("precision: [fixed16, int8]", f"precision: {value}"))
    assert main(["search", "--space", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and len(err.strip().splitlines()) == 1


def test_a_network_in_two_precisions_trains_the_same_float_weights(space_file, tmp_path):
    from fnas_hls.cli import build_parser
    from fnas_hls.commands.search import config_from_args

    args = build_parser().parse_args(["search", "--space", str(space_file)])
    cfg = config_from_args(args)
    assert cfg.precision == SEARCHED
    search = Search(cfg, tmp_path)
    arch = (1, 0, 1) * 2
    a, b = ({"choice_index": [*arch, p]} for p in (0, 1))
    assert search._seed(a) == search._seed(b)
    assert search._seed(a) != search._seed({"choice_index": [*arch[:-1], 0, 0]})


def test_search_over_precisions_end_to_end(space_file, tmp_path, capsys):
    """Each child's line carries its precision, its latency in it, its quantized validation accuracy
    (the reward's) and its float one; the winner's design is emitted and C-simulated in its own
    precision; --resume keeps the searched precision and --precision on it is refused."""
    out = tmp_path / "run"
    assert main(["search", "--space", str(space_file), "--out", str(out), "--final-k", "0"]) == 0
    assert "precision searched (fixed16, int8" in (out / "report.md").read_text()
    lines = [json.loads(x) for x in (out / "children.jsonl").read_text().splitlines()]
    board = load_board("ultra96v2")
    for r in lines:
        assert r["precision"] == ("fixed16", "int8")[r["choice_index"][-1]]
        if r["arch"] is None:
            continue
        a = analyze(network_from_dict(r["arch"]), board, r["precision"], style="auto")
        assert r["latency_ms"] == pytest.approx(a.latency_ms)
        if r["accuracy"] is not None and not r["cached"]:
            assert 0 <= r["float_accuracy"] <= 1 and 0 <= r["accuracy"] <= 1
    summary = json.loads((out / "best" / "summary.json").read_text())
    winner = next(r for r in lines if r["key"] == summary["key"])
    assert summary["hls"]["precision"] == winner["precision"]
    assert summary["hls"]["csim"]["bit_exact"] is True
    # the winner's design on the whole test split, through the compiled C++ (fnas-hls predict)
    test = load_dataset("digits", seed=0).test
    design = Design(out / "best" / "hls")
    accuracy = float(np.mean(design.predict(test.x).argmax(1) == test.y))
    assert summary["hls"]["quantized_test_samples"] == len(test.y)
    assert accuracy == summary["hls"]["quantized_test_accuracy"]
    # and through the deploy driver's packing (best/deploy/), on the same compiled top
    assert summary["hls"]["deploy"]["status"] == "written"
    driver = Driver(out / "best" / "deploy" / "driver", backend=CompiledBackend(out / "best" / "hls"))
    np.testing.assert_array_equal(driver.predict(test.x[:50]), design.predict(test.x[:50]))
    cfg = load_run_config(out)
    assert cfg.precision == SEARCHED and cfg.space.searches_precision
    assert "--precision" not in yaml.safe_load((out / "config.yaml").read_text())["command"]
    capsys.readouterr()
    assert main(["search", "--resume", "--out", str(out), "--precision", "int8"]) == 2
    assert "--precision" in capsys.readouterr().err


def test_precision_given_fixes_it(space_file, tmp_path):
    out = tmp_path / "run"
    args = ["search", "--space", str(space_file), "--out", str(out), "--precision", "int8", "--no-hls"]
    assert main([*args, "--episodes", "2", "--final-k", "0"]) == 0
    lines = [json.loads(x) for x in (out / "children.jsonl").read_text().splitlines()]
    space = load_space(space_file).with_precision("int8")
    assert all(len(r["choice_index"]) == len(space.steps) and "precision" not in r for r in lines)
    assert all(r["key"] == child_key(tuple(r["choice_index"])) for r in lines)
    cfg = load_run_config(out)
    assert cfg.precision == "int8" and not cfg.space.searches_precision


def test_a_network_trained_in_one_precision_is_scored_not_retrained_in_the_other(space_file, tmp_path):
    """The sibling's weights (the same seed's, so what training would give) scored in int8: the same
    outcome as training the int8 child itself, and no worker is asked to train it."""
    from fnas_hls.cli import build_parser
    from fnas_hls.commands.search import config_from_args
    from fnas_hls.search.rundir import TrainedWriter, prepare_new
    from fnas_hls.search.workers import train_outcome

    cfg = config_from_args(build_parser().parse_args(["search", "--space", str(space_file)]))
    out = tmp_path / "run"
    prepare_new(out, cfg, force=False)
    search = Search(cfg, out)
    arch = (1, 0, 1) * 2

    class NoTraining:
        where = "none"

        def run(self, jobs, data, done, started=None):
            assert not jobs, "a sibling's weights were on disk: nothing to train"

    proposals = iter([(*arch, 0), (*arch, 1)])
    search.strategy.propose = lambda: next(proposals)
    journal = TrainedWriter(out)
    try:
        search._batch(0, 1, journal)  # the fixed16 child trains in this process
        search.workers = NoTraining()
        [int8] = search._batch(1, 1, journal)
    finally:
        journal.close()
    fixed16 = search.results[child_key((*arch, 0))]
    assert int8["weights_of"] == child_key((*arch, 0)) and int8["float_accuracy"] == fixed16["float_accuracy"]
    net = cfg.space.build((*arch, 1))
    trained, _ = train_outcome(net, search.data, cfg.train, search._seed(int8), "cpu", "int8")
    assert int8["accuracy"] == trained["accuracy"] and int8["float_accuracy"] == trained["float_accuracy"]
