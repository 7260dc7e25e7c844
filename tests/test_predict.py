"""``Design(project).predict(x)`` and ``fnas-hls predict``: the generated C++ compiled as a library and run
on any inputs, through the testbench's own packing (templates/host_call.j2), equal to the reference
model bit for bit in every style and precision."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_fake_quant import MOBILE

from fnas_hls.backend.design import Design
from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.backend.reference import run_reference
from fnas_hls.cli import main
from fnas_hls.network.arch import network_from_dict

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

#: Ends on a map, not a vector: the dataflow style's channels-last outputs must come back in CHW order.
MAP_OUT = {
    "name": "maps",
    "input": [2, 9, 7],
    "layers": [
        {"type": "conv", "out": 6, "kernel": 3, "padding": 1, "relu": True},
        {"type": "maxpool", "kernel": 2, "stride": 2},
        {"type": "conv", "out": 3, "kernel": 1},
    ],
}


def _inputs(net, n, seed=0):
    shape = (n, net.input.c, net.input.h, net.input.w)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _emit(tmp_path, arch, style, precision, seed=5):
    net = with_random_weights(network_from_dict(arch), seed=seed)
    calib = _inputs(net, 16, seed=1)
    e = emit_project(
        net, "zcu104", tmp_path / f"{style}-{precision}", precision, calibration=calib, style=style
    )
    return net, e


@pytest.mark.parametrize("precision", ["fixed16", "int8", "float32"])
@pytest.mark.parametrize("style", ["dataflow", "sequential", "shared"])
@pytest.mark.parametrize("arch", [MOBILE, MAP_OUT], ids=["mobile", "map-out"])
def test_predict_is_the_reference_model_bit_for_bit(tmp_path, arch, style, precision):
    net, e = _emit(tmp_path, arch, style, precision)
    assert e.analysis.style == style
    x = _inputs(net, 37, seed=2)  # more inputs than the testbench's vectors, and other ones
    xq = e.plan.input_type.quantize(x)
    want = run_reference(net, e.plan, e.tilings, xq, stream_order=style == "dataflow")
    design = Design(e.project_dir)
    got = design.predict_stored(xq)
    assert got.shape == want.shape == (37, net.output.size)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(design.predict(x), e.plan.output_type.dequantize(want))
    np.testing.assert_array_equal(design.predict(x[0]), design.predict(x[:1]))  # one image (C, H, W)


def test_predict_command_writes_the_designs_outputs(tmp_path, capsys):
    net, e = _emit(tmp_path, MOBILE, "dataflow", "int8")
    x = _inputs(net, 9)
    np.save(tmp_path / "images.npy", x)
    out = tmp_path / "outputs.npy"
    assert main(["predict", str(e.project_dir), str(tmp_path / "images.npy"), "-o", str(out)]) == 0
    assert "9 inputs through" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(out), Design(e.project_dir).predict(x))
    stored = tmp_path / "stored.npy"
    np.save(tmp_path / "xq.npy", e.plan.input_type.quantize(x))
    assert main(["predict", str(e.project_dir), str(tmp_path / "xq.npy"), "-o", str(stored), "--stored"]) == 0
    np.testing.assert_array_equal(
        np.load(stored), Design(e.project_dir).predict_stored(np.load(tmp_path / "xq.npy"))
    )


@pytest.mark.parametrize(
    "images, args, message",
    [
        (
            np.zeros((2, 3, 12, 11), np.float32),
            [],
            "images of shape [2, 3, 12, 11]; the design takes (n, 3, 12, 12)",
        ),
        (np.array(["a", "b"]), [], "images of type <U1; the design takes numbers"),
        (np.full((1, 3, 12, 12), np.nan, np.float32), [], "432 values are not finite"),
        (
            np.zeros((2, 3, 12, 12), np.float32),
            ["--stored"],
            "stored inputs of type float32; this int8 design",
        ),
        (np.full((2, 3, 12, 12), 300), ["--stored"], "stored inputs outside [-128, 127]"),
        (None, [], "not a numpy .npy file"),
    ],
)
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, capsys, images, args, message):
    _, e = _emit(tmp_path, MOBILE, "sequential", "int8")
    path = tmp_path / "images.npy"
    if images is None:
        path.write_text("not numpy")
    else:
        np.save(path, images)
    out = tmp_path / "outputs.npy"
    assert main(["predict", str(e.project_dir), str(path), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_not_a_project_and_a_missing_file_are_one_line(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 12, 12), np.float32))
    assert main(["predict", str(tmp_path), str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.npy")]) == 2
    assert "not an fnas-hls project" in capsys.readouterr().err
    _, e = _emit(tmp_path, MOBILE, "shared", "fixed16")
    assert (
        main(["predict", str(e.project_dir), str(tmp_path / "nope.npy"), "-o", str(tmp_path / "o.npy")]) == 2
    )
    assert "nope.npy: no such file" in capsys.readouterr().err
