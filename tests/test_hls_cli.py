"""A new user's path: a torch model exported to ONNX, then `fnas-hls emit`, then `fnas-hls csim`."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from fnas_hls.cli import main

pytestmark = [
    pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def _export(path, model: nn.Module, shape) -> None:
    torch.onnx.export(
        model.eval(),
        (torch.zeros(1, *shape),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamo=False,
    )


def test_onnx_emit_then_csim(tmp_path, capsys):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 3 * 3, 10),
    )
    with torch.no_grad():  # a non-trivial BatchNorm to fold
        model[1].running_mean.uniform_(-0.2, 0.2)
        model[1].running_var.uniform_(0.5, 2.0)
    onnx_path = tmp_path / "cnn.onnx"
    _export(onnx_path, model, (1, 14, 14))
    calib = np.random.default_rng(0).random((40, 1, 14, 14), dtype=np.float32)
    np.save(tmp_path / "calib.npy", calib)
    out = tmp_path / "hls"
    rc = main(
        [
            "emit",
            str(onnx_path),
            "--board",
            "pynq",
            "-o",
            str(out),
            "--calibration",
            str(tmp_path / "calib.npy"),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "wrote" in printed and "top-1 agreement" in printed
    rc = main(["csim", str(out), "--json", str(tmp_path / "csim.json")])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert printed.count("\n") == 1 and "bit-exact" in printed
    res = json.loads((tmp_path / "csim.json").read_text())
    assert res["bit_exact"] is True and res["top1_agreement"] >= 0.9
    for key in ("max_abs_error", "compile_seconds", "run_seconds"):
        assert key in res
    # The C++ against torch itself (the ONNX was exported from it).
    with torch.no_grad():
        want = model(torch.from_numpy(calib[:32])).numpy()
    assert res["max_abs_error"] <= 0.01 * np.abs(want).max() + 1e-3


def test_relative_paths(tmp_path, monkeypatch, capsys):
    """`fnas-hls emit m.onnx -o hls` then `fnas-hls csim hls`, from the folder the user is in."""
    monkeypatch.chdir(tmp_path)
    _export(
        tmp_path / "m.onnx",
        nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2)),
        (2, 4, 4),
    )
    assert main(["emit", "m.onnx", "--board", "pynq", "-o", "hls", "--tiling", "all:Tn=1"]) == 0
    assert main(["csim", "hls", "--json", "r.json"]) == 0
    assert "bit-exact" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["bit_exact"] is True


def test_emit_errors_are_one_line(tmp_path, capsys):
    arch = tmp_path / "a.yaml"
    arch.write_text(
        "input: [1, 8, 8]\nlayers:\n  - {type: conv, out: 2, kernel: 3}\n  - {type: fc, out: 2}\n"
    )
    assert main(["emit", str(arch), "--board", "pynq", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no weights for layer" in err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 2))
    _export(tmp_path / "m.onnx", model, (1, 8, 8))
    assert main(["emit", str(tmp_path / "m.onnx"), "--board", "pynq", "-o", str(tmp_path / "busy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert (
        main(["emit", str(tmp_path / "m.onnx"), "--board", "pynq", "-o", str(tmp_path / "busy"), "--force"])
        == 0
    )
    replaced = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("replaced in")]
    assert len(replaced) == 1 and "1 file(s) fnas-hls did not write (x.txt)" in replaced[0]
    assert main(["csim", str(tmp_path / "nothing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_each_commands_advice_names_only_its_own_flags(tmp_path, capsys):
    """An unsupported operator: analyze suggests --allow-host-ops, emit (which has no such flag) not."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softplus(), nn.Flatten(), nn.Linear(2 * 6 * 6, 2))
    _export(tmp_path / "m.onnx", model, (1, 8, 8))
    assert main(["analyze", str(tmp_path / "m.onnx"), "--board", "pynq"]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "unsupported ONNX operator 'Softplus'" in err and "--allow-host-ops" in err
    )
    assert main(["emit", str(tmp_path / "m.onnx"), "--board", "pynq", "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unsupported ONNX operator 'Softplus'" in err
    assert "--allow-host-ops" not in err and "export the model with one of them" in err
    assert not (tmp_path / "p").exists()
    emit_flags = {a for action in _emit_parser()._actions for a in action.option_strings}
    assert not {f for f in re.findall(r"--[a-z-]+", err)} - emit_flags  # every flag it names, emit takes


def _emit_parser():
    from fnas_hls.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["emit"]


def test_a_dynamo_export_without_its_weights_file(tmp_path, capsys):
    """Only model.onnx copied, not model.onnx.data: emit names the missing file and where it looked."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 2)).eval()
    (tmp_path / "export").mkdir()
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(tmp_path / "export" / "model.onnx"), dynamo=True,
                      external_data=True)  # fmt: skip
    data = [p.name for p in (tmp_path / "export").iterdir() if p.name != "model.onnx"]
    assert data == ["model.onnx.data"]
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "export" / "model.onnx", tmp_path / "copy" / "model.onnx")
    assert (
        main(["emit", str(tmp_path / "copy" / "model.onnx"), "--board", "pynq", "-o", str(tmp_path / "p")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights file 'model.onnx.data' is missing" in err
    assert str(tmp_path / "copy" / "model.onnx.data") in err and "no weights for layer" not in err
    assert not (tmp_path / "p").exists()
    # analyze needs no weights: it notes the missing file and goes on
    assert main(["analyze", str(tmp_path / "copy" / "model.onnx"), "--board", "pynq"]) == 0
    assert "model.onnx.data' is missing" in capsys.readouterr().out
    # with the file beside it, emit works
    shutil.copy(tmp_path / "export" / "model.onnx.data", tmp_path / "copy")
    assert (
        main(["emit", str(tmp_path / "copy" / "model.onnx"), "--board", "pynq", "-o", str(tmp_path / "p")])
        == 0
    )
