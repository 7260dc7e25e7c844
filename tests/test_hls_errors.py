"""Bad input to the HLS back end: each gets one clear FnasError line, and nothing half-written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fnas_hls.backend import csim
from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.errors import FnasError
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.ir import HostOp, Network, Shape

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

ARCH = {
    "name": "small",
    "input": [1, 8, 8],
    "layers": [
        {"type": "conv", "out": 4, "kernel": 3, "padding": 1, "relu": True},
        {"type": "maxpool", "kernel": 2, "stride": 2},
        {"type": "fc", "out": 3},
    ],
}


@pytest.fixture
def net():
    return with_random_weights(network_from_dict(ARCH))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_missing_weights(tmp_path):
    with pytest.raises(FnasError) as exc:
        emit_project(network_from_dict(ARCH), load_board("pynq"), tmp_path / "p")
    assert _one_line(exc) == (
        "network 'small' has no weights for layer 'conv1'; "
        "emit needs a trained model (ONNX with initializers)"
    )
    assert not (tmp_path / "p").exists()


def test_host_op(net, tmp_path):
    host = HostOp("topk", "TopK", Shape(3, 1, 1))
    bad = Network(net.input, (*net.layers, host), net.name)
    with pytest.raises(FnasError, match="'topk' \\(TopK\\) runs on the host"):
        emit_project(bad, load_board("pynq"), tmp_path / "p")


def test_an_unread_map_is_not_for_the_dataflow_style(net, tmp_path):
    conv = net.layers[0]
    from dataclasses import replace

    second = replace(conv, name="conv_b", out=4, kernel=(1, 1), padding=(0, 0, 0, 0))
    third = replace(conv, name="conv_c", out=4, kernel=(1, 1), padding=(0, 0, 0, 0), inputs=("conv1",))
    w = np.ones((4, 4, 1, 1), np.float32)
    branchy = Network(net.input, (conv, replace(second, weight=w), replace(third, weight=w)), "branchy")
    # conv_b's map is read by no layer: the dataflow style cannot leave a stream unread (one line)
    with pytest.raises(FnasError, match="--style dataflow: layer 'conv_b': no layer reads its output"):
        emit_project(branchy, load_board("pynq"), tmp_path / "p", style="dataflow")
    assert not (tmp_path / "p").exists()
    # the styles with their maps in DDR render it
    res = emit_project(branchy, load_board("pynq"), tmp_path / "p", style="auto")
    assert res.analysis.style in ("sequential", "shared")


def test_bad_calibration_shape(net, tmp_path):
    with pytest.raises(FnasError, match=r"calibration: inputs have shape \[5, 2, 8, 8\]"):
        emit_project(net, load_board("pynq"), tmp_path / "p", calibration=np.zeros((5, 2, 8, 8)))


def test_reserved_and_colliding_c_names_are_renamed(net, tmp_path):
    from dataclasses import replace

    from fnas_hls.network.names import c_identifiers

    # 'main' is reserved; 'c_init' would collide with the init function of a conv layer named 'c'.
    layers = (replace(net.layers[0], name="main"), *net.layers[1:])
    names = c_identifiers(["main", "c", "c_init", "c/init"])
    assert names == {"main": "l_main", "c": "c", "c_init": "c_init_2", "c/init": "c_init_3"}
    result = emit_project(Network(net.input, layers, net.name), load_board("pynq"), tmp_path / "p")
    assert "l_main(" in (result.project_dir / "src" / f"{result.top}.cpp").read_text()


def test_folder_holding_other_files(net, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(FnasError) as exc:
        emit_project(net, load_board("pynq"), out)
    assert "not an fnas-hls project" in _one_line(exc) and "--force" in str(exc.value)
    assert "(thesis.tex)" in str(exc.value)
    assert (out / "thesis.tex").read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary folder left behind
    emit_project(net, load_board("pynq"), out, force=True)
    assert (out / "manifest.json").is_file() and not (out / "thesis.tex").exists()


def test_an_unchanged_project_is_replaced(net, tmp_path):
    out = tmp_path / "p"
    emit_project(net, load_board("pynq"), out)
    (out / "csim_build").mkdir()  # csim's own build products: fnas-hls rebuilds them
    (out / "csim_build" / "tb.o").write_bytes(b"obj")
    res = emit_project(net, load_board("pynq"), out, precision="float32")
    assert not res.replaced and not (out / "csim_build").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_synthesis_results_and_edits_are_kept_without_force(net, tmp_path):
    """Re-emitting into a project that holds csynth output and a hand-edited source: nothing is
    touched without --force; with it, the result says what was replaced."""
    out = tmp_path / "p"
    res = emit_project(net, load_board("pynq"), out)
    report = out / f"{res.top}_prj" / "solution1" / "syn" / "report" / "csynth.xml"
    report.parent.mkdir(parents=True)
    report.write_text("<profile/>")
    edited = out / "src" / "conv1.cpp"
    edited.write_text(edited.read_text() + "// tuned by hand\n")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(FnasError) as exc:
        emit_project(net, load_board("pynq"), out, precision="float32")
    msg = _one_line(exc)
    assert "1 file(s) fnas-hls did not write" in msg and "solution1/syn/report/csynth.xml" in msg
    assert "1 edited file(s) (src/conv1.cpp)" in msg and "--force" in msg
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    res = emit_project(net, load_board("pynq"), out, precision="float32", force=True)
    assert res.replaced.others == (report.relative_to(out).as_posix(),)
    assert res.replaced.edited == ("src/conv1.cpp",)
    assert not report.exists() and "tuned by hand" not in edited.read_text()


def test_a_project_without_digests_is_kept(net, tmp_path):
    """A manifest that lists no digests (an older fnas-hls) cannot vouch for its files."""
    out = tmp_path / "p"
    emit_project(net, load_board("pynq"), out)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["written"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FnasError, match="fnas-hls did not write"):
        emit_project(net, load_board("pynq"), out)


def test_output_is_a_file(net, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(FnasError, match="is a file"):
        emit_project(net, load_board("pynq"), tmp_path / "f")


def test_csim_not_a_project(tmp_path):
    with pytest.raises(FnasError, match="not an fnas-hls project"):
        run_csim(tmp_path)
    with pytest.raises(FnasError, match="is not a folder"):
        run_csim(tmp_path / "nope")


def test_csim_without_compiler(net, tmp_path, monkeypatch):
    emit_project(net, load_board("pynq"), tmp_path / "p")
    monkeypatch.setattr(csim, "CXX", "/nonexistent/bin/g++")
    with pytest.raises(FnasError) as exc:
        run_csim(tmp_path / "p")
    assert "C++ compiler '/nonexistent/bin/g++' not found" in _one_line(exc)
    monkeypatch.setattr(csim, "CXX", "g++")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FnasError, match="C\\+\\+ compiler 'g\\+\\+' not found"):
        run_csim(tmp_path / "p")


@needs_gxx
def test_csim_broken_source(net, tmp_path):
    emit_project(net, load_board("pynq"), tmp_path / "p")
    src = tmp_path / "p" / "src" / "conv1.cpp"
    src.write_text(src.read_text() + "\nthis is not C++;\n")
    with pytest.raises(FnasError) as exc:
        run_csim(tmp_path / "p", opt="-O0")
    msg = _one_line(exc)
    assert msg.startswith("csim: g++ failed on src/conv1.cpp:") and "error" in msg and "csim.log" in msg


@needs_gxx
def test_csim_detects_a_wrong_kernel(net, tmp_path):
    """A kernel that computes something else fails the bit-exact check (the check can fail)."""
    emit_project(net, load_board("pynq"), tmp_path / "p")
    src = tmp_path / "p" / "src" / "conv1.cpp"
    src.write_text(src.read_text().replace("if (fnas_cfg::RELU && v < 0) v = 0;", "if (v < 0) v = 1;"))
    res = run_csim(tmp_path / "p", opt="-O0")
    assert not res.bit_exact and res.differing_outputs > 0 and res.verdict.startswith("FNAS-CSIM FAIL")
