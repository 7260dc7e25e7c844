"""Searches over public tables: the tables read and checked, the spaces' rows, the search loop (each
child evaluated once, pruning, final training, regret, Pareto set), evolution, the latency cache, and
the CLI end to end with its bad inputs."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fnas_hls.errors import FnasError
from fnas_hls.search.settings import SearchSettings
from fnas_hls.tabular import tables
from fnas_hls.tabular.latency import LatencyTable, Predicted
from fnas_hls.tabular.search import TableRun, best_in_spec, pareto_rows, regret, run_table_search
from fnas_hls.tabular.spaces import (
    AccelNasBenchSpace,
    NasBench201Space,
    TableSearchSettings,
    cellstr_of,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def nb201() -> NasBench201Space:
    return NasBench201Space("nb201")


@pytest.fixture(scope="module")
def anb() -> AccelNasBenchSpace:
    return AccelNasBenchSpace("anb")


# --- the tables ------------------------------------------------------------------------------------


def test_nasbench201_tables_join(nb201):
    d = nb201.data
    assert len(d) == 15_625 and len(set(d.cellstr)) == 15_625
    # row 0 of both files (../shared/benchmarks): 12-epoch cifar10-val 63.364, 200-epoch 81.9827
    assert (
        d.cellstr[0]
        == "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    )
    assert nb201.short(0) == pytest.approx(63.364)
    assert nb201.long(0) == pytest.approx(81.9827)
    assert max(d.long_valid) == pytest.approx(91.61, abs=0.01)  # the best cell, as the README says


def _write(folder: Path, name: str, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    (folder / name).write_bytes(gzip.compress(buf.getvalue().encode()))


def _nb201_files(folder: Path, n: int = 3) -> tuple[list[list[str]], list[list[str]]]:
    src = tables.load_nasbench201()
    cols = ["arch", "cellstr"] + [
        f"{p}-{s}" for p in ("cifar10", "cifar100", "imagenet") for s in ("val", "test")
    ]
    short = [cols] + [[str(i), src.cellstr[i]] + ["50.0"] * 6 for i in range(n)]
    long = [["arch", "cellstr", "params_m", "valid_top1"]] + [
        [str(i), src.cellstr[i], "0.1", "90"] for i in range(n)
    ]
    return short, long


@pytest.mark.parametrize(
    "fault, message",
    [
        ("missing", "table not found"),
        ("column", "no column 'cifar10-val'"),
        ("number", "row 3, column 'cifar10-val': 'abc' is not a number"),
        ("order", "row 2 is arch 1"),
        ("cell", "row 2, column 'cellstr'"),
    ],
)
def test_a_bad_nasbench201_file_is_one_line(tmp_path, fault, message):
    short, long = _nb201_files(tmp_path)
    if fault == "column":
        short = [
            [c for c in r if c != "cifar10-val"] if i == 0 else r[:2] + r[3:] for i, r in enumerate(short)
        ]
    if fault == "number":
        short[2][2] = "abc"
    if fault == "order":
        long[1], long[2] = long[2], long[1]
    if fault == "cell":
        short[1][1] = long[1][1] = "|conv~0|+|x|"
    _write(tmp_path, tables.NB201_SHORT, short)
    if fault != "missing":
        _write(tmp_path, tables.NB201_LONG, long)
    with pytest.raises(FnasError, match=message) as e:
        tables.load_nasbench201(tmp_path)
    assert "\n" not in str(e.value)


def test_a_bad_accel_nasbench_value_names_row_and_column(tmp_path):
    text = gzip.decompress(tables.table_path(tables.ANB).read_bytes()).decode().splitlines()
    header = text[0].split(",")
    row = text[1].split(",")
    row[header.index("b2_k")] = "7"
    (tmp_path / tables.ANB).write_bytes(gzip.compress("\n".join([text[0], ",".join(row)]).encode()))
    with pytest.raises(FnasError, match=r"row 2, column 'b2_k': 7 is not one of 3, 5"):
        tables.load_accel_nasbench(tmp_path)


def test_accel_nasbench_rows_and_block5_layers(anb):
    assert anb.rows == 5138
    assert anb.num_choices == (3, 2, 3, 2) * 5 + (3, 2, 4, 2) + (3, 2, 3, 2)
    # two rows lack the FPGA figures (the README)
    assert sum(1 for r in range(anb.rows) if anb.dpu_ms(r) != anb.dpu_ms(r)) == 2


# --- the spaces ------------------------------------------------------------------------------------


def test_nasbench201_choice_names_its_row(nb201):
    for row in (0, 1, 777, 15_624):
        assert nb201.row_of(nb201.choice_of(row)) == (row, 0)
    assert cellstr_of(("none",) * 6) in nb201.index


def test_accel_nasbench_nearest_row(anb):
    for row in (0, 17, 5000):
        assert anb.row_of(anb.choice_of(row)) == (row, 0)
    c = list(anb.choice_of(3))
    c[0] = (c[0] + 1) % 3  # one decision off: a row at distance 1 at most (row 3 itself is one)
    row, distance = anb.row_of(tuple(c))
    assert distance <= 1
    assert distance == sum(a != b for a, b in zip(anb.choice_of(row), c, strict=True))


def test_accel_nasbench_sample_is_seeded(anb):
    a = AccelNasBenchSpace("s", sample=50, sample_seed=3)
    b = AccelNasBenchSpace("s", sample=50, sample_seed=3)
    assert a.table_rows == b.table_rows and a.rows == 50
    assert a.cache_name == "accel-nasbench-sample50-seed3"
    r = a.table_rows[7]
    assert a.name_of(7) == anb.name_of(r) and a.short(7) == anb.short(r)


# --- the search ------------------------------------------------------------------------------------


def _fake_latency(rows: int):
    """A deterministic stand-in for the model: latency grows with the row, a third does not fit."""

    def latency(row: int) -> Predicted:
        return Predicted(1.0 + (row * 7919 % 1000) / 100, row % 3 != 0, row % 50, row % 40, "shared")

    return latency


def _run(
    space,
    strategy="random",
    aware=True,
    evaluations=20,
    final_k=0,
    episodes=3000,
    seed=0,
    spec=5.0,
    screen=0,
    screen_after=10,
):
    cfg = TableRun(
        space, spec, SearchSettings(episodes=episodes, strategy=strategy),
        TableSearchSettings(evaluations, final_k, screen, screen_after), hw_aware=aware, seed=seed,
    )  # fmt: skip
    return run_table_search(cfg, _fake_latency(space.rows))


@pytest.mark.parametrize("strategy", ["rl", "random", "evolution"])
def test_each_child_is_evaluated_once_and_pruned_ones_never(nb201, strategy):
    lat = _fake_latency(nb201.rows)
    o = _run(nb201, strategy)
    assert len(o.evaluated) == 20 == len(set(o.evaluated))
    for r in o.records:
        if r["pruned"]:
            assert not lat(r["row"]).meets(5.0) and r["accuracy"] is None and r["cost"] == 0
        else:
            assert lat(r["row"]).meets(5.0)
    firsts = [r for r in o.records if not r["pruned"] and not r["cached"]]
    assert [r["row"] for r in firsts] == o.evaluated
    assert all(r["cost"] == 0 for r in o.records if r["cached"])  # a child seen again is free
    assert o.cost_short == pytest.approx(sum(nb201.cost(r) for r in o.evaluated))
    assert all(r["cellstr"] == nb201.name_of(r["row"]) for r in o.records)


def test_final_k_takes_the_best_at_the_long_fidelity(nb201):
    o = _run(nb201, final_k=5)
    by_short = sorted(o.evaluated, key=lambda r: -nb201.short(r))
    assert o.finalists == by_short[:5]  # every evaluated child meets the spec (pruning)
    assert o.winner == max(o.finalists, key=nb201.long)
    assert o.winner_short == by_short[0]
    assert o.cost_long == pytest.approx(sum(nb201.cost(r, long=True) for r in o.finalists))
    assert nb201.cost(0, long=True) == pytest.approx(nb201.cost(0) * 200 / 12)


def test_hw_unaware_evaluates_children_over_the_spec(nb201):
    lat = _fake_latency(nb201.rows)
    o = _run(nb201, aware=False, evaluations=30)
    assert not any(r["pruned"] for r in o.records)
    assert any(not lat(r).meets(5.0) for r in o.evaluated)
    assert o.winner is None or lat(o.winner).meets(5.0)  # the winner is still checked against the spec
    assert o.winner_any == max(o.evaluated, key=lambda r: (nb201.short(r), -r))


def test_regret_is_against_the_best_row_in_spec(nb201):
    lat = _fake_latency(nb201.rows)
    best = best_in_spec(nb201, lat, 5.0)
    assert lat(best).meets(5.0)
    assert all(nb201.long(r) <= nb201.long(best) for r in range(0, nb201.rows, 97) if lat(r).meets(5.0))
    o = _run(nb201, final_k=5)
    assert regret(nb201, o.winner, best) == pytest.approx(nb201.long(best) - nb201.long(o.winner))
    assert regret(nb201, o.winner, best) >= 0
    assert regret(nb201, None, best) is None


def test_pareto_rows_are_not_dominated(nb201):
    lat = _fake_latency(nb201.rows)
    rows = list(range(0, 600, 7))
    front = pareto_rows(rows, nb201, lat)
    key = {r: (-nb201.short(r), lat(r).latency_ms, lat(r).dsp, lat(r).bram18k) for r in rows if lat(r).fits}
    for r in front:
        assert not any(
            all(b <= a for a, b in zip(key[r], key[s], strict=True)) and key[s] != key[r] for s in key
        )
    assert set(front) <= set(key) and front


def test_search_is_deterministic_per_seed(nb201):
    a, b = _run(nb201, "rl", seed=4), _run(nb201, "rl", seed=4)
    assert a.evaluated == b.evaluated and a.winner == b.winner
    assert _run(nb201, "rl", seed=5).evaluated != a.evaluated


def test_screen_evaluates_the_predicted_best_of_new_in_spec_proposals(nb201, monkeypatch):
    from fnas_hls.search.predictor import RidgePredictor

    screens = []
    predict = RidgePredictor.predict

    def spy(self, choices):
        out = predict(self, choices)
        screens.append(([tuple(c) for c in choices], out, len(self.weights)))
        return out

    monkeypatch.setattr(RidgePredictor, "predict", spy)
    lat = _fake_latency(nb201.rows)
    o = _run(nb201, evaluations=20, screen=6, screen_after=5)
    assert len(o.evaluated) == 20 == len(set(o.evaluated)) and all(lat(r).meets(5.0) for r in o.evaluated)
    assert len(screens) == 15  # one screen an evaluation, after the first five
    for k, ((choices, predicted, _), row) in enumerate(zip(screens, o.evaluated[5:], strict=True)):
        rows = [nb201.row_of(c)[0] for c in choices]
        assert len(set(rows)) == 6 and all(lat(r).meets(5.0) for r in rows)  # new, distinct, in spec
        assert not set(rows) & set(o.evaluated[: 5 + k])
        assert row == rows[int(np.argmax(predicted))]
    assert o.stats["screened_out"] == 15 * 5
    # the screened-out proposals are neither evaluated nor episodes
    assert sum(1 for r in o.records if not r["pruned"] and not r["cached"]) == 20


def test_screen_raises_the_accuracy_of_the_children_evaluated(nb201):
    """Random search, 30 evaluations, 8 seeds: the 20 evaluated after the first 10, each the predicted
    best of 20 new proposals, against the same evaluations unscreened (measured: 73.2% against 68.8%
    mean 12-epoch accuracy)."""

    def mean_short(screen: int) -> float:
        runs = [_run(nb201, evaluations=30, seed=s, screen=screen) for s in range(8)]
        return statistics.fmean(nb201.short(r) for o in runs for r in o.evaluated[10:])

    plain, screened = mean_short(0), mean_short(20)
    assert screened > plain + 2, (plain, screened)


def test_accel_nasbench_search_names_children_by_id(anb):
    o = _run(anb, "random", evaluations=5, spec=8.0)
    assert all(r["id"] == anb.name_of(r["row"]) for r in o.records)
    assert any("distance" in r for r in o.records)  # random proposals are seldom rows themselves


# --- the latency cache -----------------------------------------------------------------------------


def test_latency_cache_round_trip_and_bad_file(tmp_path, nb201):
    from fnas_hls.boards import load_board

    lt = LatencyTable(nb201, load_board("pynq"), "fixed16", "dataflow")
    lt.known = {
        0: Predicted(1.5, True, 10, 20, "dataflow"),
        5: Predicted(None, False, None, None, None, "bad"),
    }
    path = lt.save(tmp_path)
    assert path.name.startswith("nasbench201-cifar10-pynq-fixed16-dataflow-")
    again = LatencyTable(nb201, load_board("pynq"), "fixed16", "dataflow")
    assert again.load(tmp_path) is False  # two rows of 15,625
    assert again.known == lt.known
    path.write_bytes(b"not gzip")
    with pytest.raises(FnasError, match="unreadable latency cache"):
        again.load(tmp_path)


def test_latency_of_a_row_is_the_models(nb201):
    from fnas_hls.boards import load_board
    from fnas_hls.styles import analyze

    board = load_board("pynq")
    lt = LatencyTable(nb201, board, "fixed16", "dataflow")
    a = analyze(nb201.network(1), board, "fixed16", style="dataflow")
    assert lt(1).latency_ms == a.latency_ms and lt(1).fits == a.fits


# --- the CLI ---------------------------------------------------------------------------------------


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FNAS_HLS_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "fnas_hls.cli", "search", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )


def test_cli_table_search_end_to_end(tmp_path):
    out = tmp_path / "run"
    p = _cli(
        "--space", "nb201", "--evaluations", "3", "--final-k", "2", "--spec-ms", "1000",
        "--style", "dataflow", "--strategy", "evolution", "--out", str(out), cache=tmp_path / "cache",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "best: cellstr |" in p.stdout
    lines = [json.loads(x) for x in (out / "children.jsonl").read_text().splitlines()]
    evaluated = [x for x in lines if not x["pruned"] and not x["cached"]]
    assert len(evaluated) == 3 and all(x["cellstr"].startswith("|") for x in lines)
    summary = json.loads((out / "best" / "summary.json").read_text())
    assert summary["cellstr"] in {x["cellstr"] for x in evaluated}
    assert len(summary["finalists"]) == 2 and summary["scored_by"].startswith("200-epoch")
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["children"] and all("cellstr" in c for c in pareto["children"])
    report = (out / "report.md").read_text()
    assert "Final training (--final-k 2)" in report and (out / "accuracy_latency.png").is_file()
    assert list((tmp_path / "cache").iterdir())  # the rows it analyzed are cached for the next run
    again = _cli("--space", "nb201", "--evaluations", "3", "--out", str(out), cache=tmp_path / "cache")
    assert again.returncode != 0 and "holds a previous table search; pass --force" in again.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--space", "nb201", "--evaluate", "train"], "--evaluate train: space"),
        (["--space", "digits", "--evaluate", "table"], "--evaluate table: space"),
        (["--space", "digits", "--evaluations", "3"], "--evaluations: only a table search"),
        (["--space", "nb201", "--final-epochs", "3"], "--final-epochs: space"),
        (["--space", "accel-nasbench", "--final-k", "3"], "no long fidelity"),
        (["--space", "nb201", "--epochs", "3"], "--epochs: a table search trains nothing"),
        (["--space", "nb201", "--evaluations", "0"], "--evaluations must be at least 1"),
        (["--space", "nb201", "--screen", "-1"], "--screen must be 0 or more"),
        (["--space", "digits", "--screen", "3"], "--screen: only a table search"),
    ],
)
def test_cli_table_search_bad_input_is_one_line(tmp_path, monkeypatch, capsys, args, message):
    from fnas_hls.cli import main

    monkeypatch.setenv("FNAS_HLS_CACHE", str(tmp_path / "cache"))
    assert main(["search", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written


def test_table_space_yaml_faults(tmp_path):
    from fnas_hls.tabular.spaces import load_table_space

    bad = {
        "table: nasbench2\n": "field 'table' must be one of",
        "table: nasbench201\ndataset: svhn\n": "field 'dataset' must be one of cifar10",
        "table: accel-nasbench\nsearch: {final_k: 2}\n": "final_k: the accel-nasbench table has no long",
        "table: nasbench201\nsearch: {evaluations: 0}\n": "'search.evaluations' must be an integer >= 1",
        "table: nasbench201\nlayers: 3\n": "unknown field 'layers'",
        "table: nasbench201\nsearch: {screen: -1}\n": "'search.screen' must be an integer >= 0",
        "table: nasbench201\nsearch: {screen_after: 0}\n": "'search.screen_after' must be an integer >= 1",
    }
    for text, message in bad.items():
        f = tmp_path / "s.yaml"
        f.write_text(text)
        with pytest.raises(FnasError, match=message):
            load_table_space(f)


def test_sweep_of_a_table_names_rows_by_cell_string(tmp_path, monkeypatch, capsys, nb201):
    """The sweep reads the latency cache (here filled with made-up figures, so that it computes
    nothing) and names each architecture by its cell string."""
    from fnas_hls.boards import load_board
    from fnas_hls.cli import main

    lt = LatencyTable(nb201, load_board("pynq"), "fixed16", "dataflow")
    lt.known = {r: Predicted(1.0 + r / 1000, r % 2 == 0, 10, 10, "dataflow") for r in range(nb201.rows)}
    lt.save(tmp_path / "latency")
    monkeypatch.setenv("FNAS_HLS_CACHE", str(tmp_path))
    out = tmp_path / "sweep.json"
    assert main(["sweep", "--space", "nb201", "--style", "dataflow", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    detail = data["architectures_detail"]
    assert len(detail) == 15_625 and detail[3]["choice"] == nb201.name_of(3) and detail[3]["row"] == 3
    assert detail[3]["latency_ms"] == pytest.approx(1.003) and detail[3]["fits"] is False
    assert "15,625" in capsys.readouterr().out


def test_fill_analyzes_a_network_once_however_many_cells_build_it(nb201, monkeypatch):
    """Cells whose extra ops feed nothing build the same network: one analysis serves them all."""
    from fnas_hls.boards import load_board
    from fnas_hls.tabular import latency as latency_module

    # node 3 reads only node 0: whatever the ops into nodes 1 and 2, the network is the same
    dead = [r for r in range(nb201.rows) if nb201.name_of(r).endswith("|+|skip_connect~0|none~1|none~2|")]
    assert len(dead) == 125
    keys = {latency_module.structure_key(nb201.network(r)) for r in dead}
    assert len(keys) == 1
    calls = []

    def fake(net, board, precision, style):
        calls.append(net.name)
        return Predicted(1.0, True, 1, 1, style)

    monkeypatch.setattr(latency_module, "predict_network", fake)
    lt = LatencyTable(nb201, load_board("pynq"), "fixed16", "dataflow")
    lt.fill(dead[:10] + [0], progress=False)
    assert len(calls) == 2 and set(lt.known) == set(dead[:10]) | {0}
    other = nb201.network(0)
    assert latency_module.structure_key(other) not in keys
