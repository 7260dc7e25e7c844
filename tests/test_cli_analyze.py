"""``fnas-hls analyze`` and ``fnas-hls sweep`` as a user runs them, good input and bad."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from fnas_hls.boards import known_boards
from fnas_hls.cli import main

ARCH = """input: [1, 28, 28]
layers:
  - {type: conv, out: 18, kernel: 5, stride: 1, padding: same, relu: true}
  - {type: maxpool, kernel: 2, stride: 2}
  - {type: conv, out: 36, kernel: 3, stride: 1, padding: 1, groups: 2, relu: true}
  - {type: gap}
  - {type: fc, out: 10}
"""

JSON_KEYS = {
    "board",
    "part",
    "clock_mhz",
    "precision",
    "latency_cycles",
    "latency_ms",
    "fits",
    "resources",
    "budget",
    "layers",
}
LAYER_KEYS = {"name", "op", "tiling", "cycles", "compute_cycles", "fnas_cycles", "bound", "dsp", "bram18k"}


@pytest.fixture
def arch(tmp_path):
    p = tmp_path / "net.yaml"
    p.write_text(ARCH)
    return p


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 12 * 12, 10),
        nn.Softmax(dim=1),
    ).eval()
    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    torch.onnx.export(
        model,
        torch.zeros(1, 1, 28, 28),
        path,
        dynamo=False,
        input_names=["input"],
        output_names=["output"],
        opset_version=13,
    )
    return path


@pytest.mark.parametrize("board", [b.name for b in known_boards()])
def test_analyze_yaml_on_every_board_writes_the_json(arch, tmp_path, capsys, board):
    out = tmp_path / "a.json"
    assert main(["analyze", str(arch), "--board", board, "--style", "sequential", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "conv1" in text and "total" in text and "DSP" in text
    data = json.loads(out.read_text())
    assert JSON_KEYS <= data.keys()
    assert data["board"] == board
    assert data["fits"] is True
    assert {l["name"] for l in data["layers"]} == {"conv1", "pool1", "conv2", "gap1", "fc1"}
    for layer in data["layers"]:
        assert LAYER_KEYS <= layer.keys()
    conv = data["layers"][0]
    assert set(conv["tiling"]) == {"Tm", "Tn", "Tr", "Tc"}
    assert data["latency_cycles"] >= sum(l["cycles"] for l in data["layers"])
    assert data["resources"]["dsp"] <= data["budget"]["dsp"]


@pytest.mark.parametrize("board", [b.name for b in known_boards()])
def test_analyze_onnx_model_on_every_board(onnx_model, tmp_path, capsys, board):
    out = tmp_path / "a.json"
    args = ["analyze", str(onnx_model), "--board", board, "--precision", "float32", "--clock-mhz", "150"]
    args += ["--style", "sequential"]
    assert main([*args, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Softmax" in text  # the dropped final softmax is noted
    data = json.loads(out.read_text())
    assert data["precision"] == "float32" and data["clock_mhz"] == 150
    assert [l["op"] for l in data["layers"]] == ["conv", "maxpool", "conv", "flatten", "fc"]
    assert data["latency_ms"] == pytest.approx(data["latency_cycles"] / 150e3)


def test_analyze_with_pinned_tiling(arch, tmp_path):
    out = tmp_path / "a.json"
    assert (
        main(
            [
                "analyze",
                str(arch),
                "--board",
                "pynq",
                "--tiling",
                "conv1:Tm=6,Tn=1,Tr=full,Tc=7",
                "--tiling",
                "all:Tn=1",
                "--style",
                "sequential",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    conv1 = json.loads(out.read_text())["layers"][0]
    assert conv1["tiling"] == {"Tm": 6, "Tn": 1, "Tr": 28, "Tc": 7}


def test_analyze_auto_picks_the_fastest_style_and_says_so(arch, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main(["analyze", str(arch), "--board", "pynq", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    styles = {s["style"]: s for s in data["styles"]}
    assert set(styles) == {"sequential", "dataflow", "shared"}
    fitting = [s for s in styles.values() if s["fits"] and s["latency_cycles"] is not None]
    best = min(fitting, key=lambda s: s["latency_cycles"])
    assert data["style"] == best["style"] and data["latency_cycles"] == best["latency_cycles"]
    assert f"{best['style']} style" in text and "<- chosen" in text
    for s in styles.values():
        assert f"style {s['style']}" in text


def test_analyze_dataflow_json_has_the_region(arch, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main(["analyze", str(arch), "--board", "pynq", "--style", "dataflow", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["style"] == "dataflow" and "MACs Pm/Pn/Pk(xPh)(cPc)" in text and "interval" in text
    names = [l["name"] for l in data["layers"]]
    assert names[0].endswith("_read") and names[-1].endswith("_write")
    assert [n for n in names[1:-1]] == ["conv1", "pool1", "conv2", "gap1", "fc1"]
    conv = data["layers"][1]
    assert conv["tiling"] is None and {"Pm", "Pn", "Pk"} <= set(conv["parallelism"]) <= {
        "Pm",
        "Pn",
        "Pk",
        "Ph",
    }
    assert data["interval_cycles"] == max(l["cycles"] for l in data["layers"])
    assert data["interval_cycles"] <= data["latency_cycles"] < data["csynth_latency_cycles"]
    assert len(data["streams"]) == len(names) - 1 and all(s["depth"] >= 2 for s in data["streams"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--board", "nosuchboard"], "unknown board 'nosuchboard'; known boards: arty-a7-50"),
        (["--board", "pynq", "--tiling", "conv7:Tm=2"], "names layer 'conv7'"),
        (["--board", "pynq", "--tiling", "conv1:Tm=two"], "Tm must be a positive integer or 'full'"),
        (["--board", "pynq", "--clock-mhz", "-5"], "--clock-mhz must be positive"),
    ],
)
def test_analyze_bad_input_is_one_line_and_nonzero(arch, capsys, args, message):
    assert main(["analyze", str(arch), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_analyze_malformed_yaml_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [1, 8, 8]\nlayers:\n  - {type: conv, out: 4, kernel: 3\n")
    assert main(["analyze", str(bad), "--board", "pynq"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:4: malformed YAML" in err


def test_analyze_unsupported_onnx_op_names_the_node(tmp_path, capsys):
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(4, 4, 3, padding=1)
            self.b = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):  # the residual add runs on the FPGA; the softplus cannot
            return torch.nn.functional.softplus(self.b(torch.relu(self.a(x))) + x)

    path = tmp_path / "res.onnx"
    torch.onnx.export(
        Res().eval(),
        torch.zeros(1, 4, 8, 8),
        path,
        dynamo=False,
        input_names=["input"],
        output_names=["output"],
        opset_version=13,
    )
    assert main(["analyze", str(path), "--board", "pynq"]) == 2
    err = capsys.readouterr().err
    assert "unsupported ONNX operator 'Softplus'" in err and "--allow-host-ops" in err
    assert main(["analyze", str(path), "--board", "pynq", "--allow-host-ops"]) == 0
    assert "host" in capsys.readouterr().out


def test_analyze_unknown_model_format(tmp_path, capsys):
    p = tmp_path / "model.h5"
    p.write_text("x")
    assert main(["analyze", str(p), "--board", "pynq"]) == 2
    assert "unknown model format '.h5'" in capsys.readouterr().err


def test_json_output_into_missing_folder_leaves_nothing(arch, tmp_path, capsys):
    out = tmp_path / "no" / "a.json"
    assert main(["analyze", str(arch), "--board", "pynq", "--json", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.parent.exists()


def test_console_script_runs_as_a_user_would(arch):
    proc = subprocess.run(
        [sys.executable, "-m", "fnas_hls.cli", "analyze", str(arch), "--board", "pynq-z2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "pynq" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "fnas_hls.cli", "analyze", str(arch), "--board", "zz"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


SPACE = """name: tiny
dataset: digits
input: [1, 8, 8]
layers: 2
choices:
  kernel: [3, 5]
  filters: [4, 8]
  pool: [none, max]
conv: {stride: 1, padding: same, relu: true}
head:
  - {type: gap}
  - {type: fc, out: 10}
board: pynq
spec_ms: 0.011
"""


def test_sweep_small_space(tmp_path, capsys):
    space = tmp_path / "tiny.yaml"
    space.write_text(SPACE)
    out = tmp_path / "s.json"
    assert main(["sweep", "--space", str(space), "--board", "pynq", "--json", str(out), "--jobs", "1"]) == 0
    text = capsys.readouterr().out
    assert "64 architectures" in text and "meet the 0.011 ms spec" in text
    assert "style chosen: " in text  # the default style is auto
    data = json.loads(out.read_text())
    assert data["architectures"] == 64 == len(data["architectures_detail"])
    lat = [a["latency_ms"] for a in data["architectures_detail"]]
    meets = sum(1 for a in data["architectures_detail"] if a["fits"] and a["latency_ms"] <= 0.011)
    assert {a["style"] for a in data["architectures_detail"]} <= {"sequential", "dataflow", "shared"}
    assert data["meet_spec"] == meets
    assert 0 < meets < 64  # the spec splits this space
    assert min(lat) > 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SPACE.replace("layers: 2", "layers: zero"), "field 'layers' must be a positive integer"),
        (SPACE.replace("pool: [none, max]", "pool: [none, big]"), "choices.pool has 'big'"),
        (SPACE.replace("  kernel: [3, 5]\n", "  dilation: [1]\n"), "unknown decision 'dilation'"),
        (SPACE.replace("spec_ms: 0.011", "spec_ms: -1"), "field 'spec_ms' must be a positive number"),
        (SPACE.replace("board: pynq", "bored: pynq"), "unknown field 'bored'"),
    ],
)
def test_sweep_bad_space(tmp_path, capsys, text, message):
    space = tmp_path / "bad.yaml"
    space.write_text(text)
    assert main(["sweep", "--space", str(space)]) == 2
    assert message in capsys.readouterr().err


def test_sweep_unknown_space_lists_known(capsys):
    assert main(["sweep", "--space", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "unknown search space 'nosuch'; known spaces:" in err and "fnas-mnist" in err and "digits" in err


def test_fnas_mnist_space_is_the_papers():
    from fnas_hls.search.space import load_space

    s = load_space("fnas-mnist")
    assert s.size == 3**8
    assert s.board == "pynq" and s.spec_ms == 8 and s.precision == "fixed16"
    net = s.build((2, 2) * 4)
    assert [li.layer.op for li in net.info] == ["conv"] * 4 + ["gap", "fc"]
    assert all(li.out_shape.h == 28 for li in net.info[:4])
    assert net.info[0].layer.kernel == (14, 14) and net.info[3].layer.out == 36


@pytest.mark.slow
def test_sweep_whole_fnas_mnist_space(capsys):
    assert main(["sweep", "--space", "fnas-mnist", "--board", "pynq"]) == 0
    assert "6,561 architectures" in capsys.readouterr().out
