"""The dataflow style end to end: every network of the emit matrix rendered as one DATAFLOW region,
compiled with g++ and C-simulated, bit-exact with the reference model (fixed16 and float32); the
rendered functions and loop labels are the model's; a network that cannot fit on chip is refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from test_hls_emit import SPREAD, _rendered_labels, _torch_module, _within_quantization_error, net_of

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.float_model import run_float
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.cli import main
from fnas_hls.model.tiling import parse_tiling_specs
from fnas_hls.resources import MacCost

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


@pytest.mark.parametrize("precision", ["fixed16", "float32"])
@pytest.mark.parametrize("case", sorted(SPREAD))
def test_dataflow_emit_csim_bit_exact(case, precision, tmp_path):
    shape, layers, pins = SPREAD[case]
    net = net_of(layers, shape, name=case)
    rng = np.random.default_rng(2)
    calib = rng.standard_normal((24, *shape)).astype(np.float32)
    tests = rng.standard_normal((6, *shape)).astype(np.float32)
    # float32 takes 5 DSPs a MAC: the pinned designs need a larger part than the PYNQ
    board = load_board("pynq" if precision == "fixed16" else "zcu102")
    res = emit_project(
        net, board, tmp_path / "prj", precision, calib, parse_tiling_specs(pins), test_inputs=tests,
        style="dataflow",
    )  # fmt: skip
    assert res.analysis.style == "dataflow"
    out = run_csim(tmp_path / "prj", opt="-O1")
    assert out.bit_exact, out.verdict
    assert out.vectors == 6 and "PASS" in out.verdict
    manifest = json.loads((tmp_path / "prj" / "manifest.json").read_text())
    assert manifest["style"] == "dataflow" and manifest["layout"].startswith("HWC")
    par = {lc.name: lc.tiling for lc in res.analysis.layers if lc.tiling is not None}
    for entry in manifest["layers"]:
        t = par.get(entry["name"])
        assert entry["tiling"] == (None if t is None else t.as_dict())
    for pin in parse_tiling_specs(pins):  # the pinned Tm, Tn are the rendered Pm, Pn (clipped)
        for entry in manifest["layers"]:
            if entry["tiling"] and isinstance(pin.Tm, int):
                assert entry["tiling"]["Pm"] <= pin.Tm
    top = (tmp_path / "prj" / "src" / f"{res.top}.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top and top.count("#pragma HLS STREAM") == len(manifest["streams"])
    # OUT reads the row buffer no sooner than the MAC pipeline's depth after it was written, and says so.

    from fnas_hls.model import dataflow_conv as dfc
    from fnas_hls.model import dataflow_process as dfp

    for li in net.info:
        if li.layer.op in ("conv", "fc"):
            t = par[li.name]
            s = dfc.conv_stage(
                dfp.WindowGeometry.of(li),
                t.Pm,
                t.Pn,
                res.analysis.precision,
                MacCost(),
                t.Pk,
                t.Pg,
                Ph=t.Ph,
                Pc=t.Pc,
            )
            code = (tmp_path / "prj" / "src" / f"{entry_cname(manifest, li.name)}.cpp").read_text()
            distance = -(-int(s.row_depth) // int(s.row_ii))
            assert f"DEPENDENCE variable=ob inter RAW distance={distance} true" in code
    with torch.no_grad():
        want = _torch_module(net)(torch.from_numpy(tests)).numpy()
    if precision == "float32":
        np.testing.assert_allclose(out.max_abs_error, 0, atol=1e-4)
        assert float(np.max(np.abs(run_float(net, tests) - want))) < 1e-4
    else:
        vec = np.load(tmp_path / "prj" / "tb" / "vectors.npz")
        y = net.output
        hwc = vec["golden"].reshape(-1, y.h, y.w, y.c).transpose(0, 3, 1, 2).reshape(len(tests), -1)
        _within_quantization_error(res.plan.output_type.dequantize(hwc), want)


def entry_cname(manifest: dict, name: str) -> str:
    return next(e["c_name"] for e in manifest["layers"] if e["name"] == name)


@pytest.mark.parametrize("case", sorted(SPREAD))
def test_dataflow_template_labels_are_the_models(case, tmp_path):
    shape, layers, pins = SPREAD[case]
    net = net_of(layers, shape)
    res = emit_project(net, load_board("pynq"), tmp_path / "p", "fixed16", pins=parse_tiling_specs(pins),
                       style="dataflow")  # fmt: skip
    model: set[tuple[str, str | None]] = set()
    for layer in res.manifest["analysis"]["layers"]:
        for f in layer["functions"]:
            model.add((f["name"], None))
            model.update((f["name"], lp["label"]) for lp in f["loops"])
    assert _rendered_labels(tmp_path / "p" / "src", res.top) == model


def test_torch_dynamo_export_to_dataflow_project(tmp_path):
    """A torch model exported with dynamo=True, emitted in the dataflow style and C-simulated."""
    pytest.importorskip("onnxscript")
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    ).eval()  # fmt: skip
    onnx_path = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 16, 16),), str(onnx_path), dynamo=True)
    calib = np.random.default_rng(0).random((16, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "c.npy", calib)
    args = ["emit", str(onnx_path), "--board", "pynq", "-o", str(tmp_path / "prj"), "--style", "dataflow"]
    assert main([*args, "--calibration", str(tmp_path / "c.npy")]) == 0
    assert main(["csim", str(tmp_path / "prj")]) == 0
    m = json.loads((tmp_path / "prj" / "manifest.json").read_text())
    assert m["style"] == "dataflow"


def test_dataflow_that_cannot_fit_on_chip_is_one_line_and_writes_nothing(tmp_path, capsys):
    """Weights of 64x64x7x7 cannot stay on a PYNQ's block RAM: one line, which buffer, by how much."""
    conv = {"type": "conv", "out": 64, "kernel": 7}
    big = net_of([{**conv, "padding": "same"}, conv], [64, 12, 12])
    from fnas_hls.network.torch_model import TorchNetwork, export_onnx, load_ir_weights

    model = TorchNetwork(big)
    load_ir_weights(model, big)
    onnx_path = tmp_path / "big.onnx"
    export_onnx(model, onnx_path)
    out = tmp_path / "prj"
    assert main(["emit", str(onnx_path), "--board", "pynq", "-o", str(out), "--style", "dataflow"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--style dataflow" in err[0] and "does not fit on chip on pynq" in err[0]
    assert "BRAM18K" in err[0] and "over" in err[0] and "weight ROM" in err[0] and "layer 'conv" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".prj*"))
