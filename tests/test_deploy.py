"""``fnas-hls deploy``: the block design script and the PYNQ driver. The driver's packing runs end to end
on this machine against the project's compiled C++ top (``deploy/local.py``), bit for bit the
reference model in every style and precision; the script is checked for what it must connect."""

from __future__ import annotations

import json
import re
import shutil
import types

import numpy as np
import pytest
from test_fake_quant import MOBILE

from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.backend.reference import run_reference
from fnas_hls.cli import main
from fnas_hls.deploy.driver import Driver, PynqBackend
from fnas_hls.deploy.local import CompiledBackend
from fnas_hls.network.arch import network_from_dict

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def _inputs(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, 12, 12)).astype(np.float32)


def _emit(tmp_path, style, precision, board="zcu104"):
    net = with_random_weights(network_from_dict(MOBILE), seed=5)
    e = emit_project(
        net, board, tmp_path / f"p-{style}-{precision}", precision, calibration=_inputs(16, 1), style=style
    )
    return net, e


@pytest.mark.parametrize("precision", ["fixed16", "int8", "float32"])
@pytest.mark.parametrize("style", ["dataflow", "sequential", "shared"])
def test_driver_packing_runs_the_compiled_top_bit_for_bit(tmp_path, style, precision, capsys):
    net, e = _emit(tmp_path, style, precision)
    out = tmp_path / "deploy"
    assert main(["deploy", str(e.project_dir), "--board", "zcu104", "-o", str(out)]) == 0
    assert "build_bitstream.tcl" in capsys.readouterr().out
    driver = Driver(
        out / "driver", backend=CompiledBackend(e.project_dir)
    )  # weights.npy written by the driver
    x = _inputs(11, seed=2)
    want = run_reference(
        net, e.plan, e.tilings, e.plan.input_type.quantize(x), stream_order=style == "dataflow"
    )
    np.testing.assert_array_equal(driver.predict(x), e.plan.output_type.dequantize(want))
    np.testing.assert_array_equal(driver.quantize(x), e.plan.input_type.quantize(x).astype(driver.dtype))
    spec = json.loads((out / "driver" / "design.json").read_text())
    # every m_axi port of the top is bound to a buffer, and nothing else is
    top_cpp = (e.project_dir / "src" / f"{e.top}.cpp").read_text()
    maxi = re.findall(r"#pragma HLS INTERFACE m_axi port=(\w+)", top_cpp)
    assert sorted(arg for arg, _ in spec["ports"]) == sorted(maxi)
    assert (out / "driver" / "weights.npy").exists() == (style != "dataflow")


def test_the_script_connects_the_boards_processing_system(tmp_path):
    _, e = _emit(tmp_path, "shared", "int8", board="pynq")
    out = tmp_path / "d"
    assert main(["deploy", str(e.project_dir), "--board", "pynq", "-o", str(out)]) == 0
    tcl = (out / "build_bitstream.tcl").read_text()
    assert "-part xc7z020clg400-1" in tcl and "NAME == processing_system7" in tcl
    assert f"create_bd_cell -type ip -vlnv {e.manifest['ip_vlnv']} fnas_0" in tcl
    assert e.manifest["ip_vlnv"] == f"xilinx.com:hls:{e.top}:1.0"
    assert "-vendor xilinx.com -library hls -version 1.0" in (e.project_dir / "run_hls.tcl").read_text()
    assert "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100}" in tcl
    assert "Master {/ps/M_AXI_GP0} Slave {/fnas_0/s_axi_control}" in tcl
    bundles = {p["bundle"] for p in e.manifest["m_axi"]}  # the manifest's record of the top's pragmas
    source = (e.project_dir / "src" / f"{e.top}.cpp").read_text()
    assert bundles == set(re.findall(r"m_axi port=\w+ .*bundle=(\w+)", source))
    for b in bundles:  # every bundle to an HP port; the ports it uses enabled at 64 bits
        assert re.search(rf"Master {{/fnas_0/m_axi_{b}}} Slave {{/ps/S_AXI_HP[0-3]}}", tcl), b
    assert "CONFIG.PCW_USE_S_AXI_HP0 {1} CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64}" in tcl
    assert "write_bitstream" in tcl and "fnas.hwh" in tcl
    assert "from driver import Driver" in (out / "README.md").read_text()


def test_force_replaces_its_files_and_keeps_the_rest(tmp_path, capsys):
    _, e = _emit(tmp_path, "dataflow", "int8")
    out = tmp_path / "d"
    args = ["deploy", str(e.project_dir), "--board", "zcu104", "-o", str(out)]
    assert main(args) == 0
    (out / "vivado").mkdir()
    (out / "fnas.bit").write_text("a built bitstream")
    capsys.readouterr()
    assert main(args) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert (out / "fnas.bit").read_text() == "a built bitstream" and (out / "vivado").is_dir()


@pytest.mark.parametrize(
    "board, emitted_for, extra, message",
    [
        ("pynq", "zcu104", [], "emitted for board zcu104, not pynq"),
        ("vc707", "vc707", [], "board vc707 has no processing system"),
        ("zcu102", "zcu102", [], "board zcu102 has no PYNQ image"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(tmp_path, capsys, board, emitted_for, extra, message):
    _, e = _emit(tmp_path, "sequential", "fixed16", board=emitted_for)
    out = tmp_path / "d"
    assert main(["deploy", str(e.project_dir), "--board", board, "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_no_driver_writes_the_script_alone(tmp_path):
    _, e = _emit(tmp_path, "sequential", "fixed16", board="zcu102")
    out = tmp_path / "d"
    assert main(["deploy", str(e.project_dir), "--board", "zcu102", "-o", str(out), "--no-driver"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "build_bitstream.tcl"]


def test_driver_refuses_images_of_another_shape(tmp_path):
    _, e = _emit(tmp_path, "dataflow", "fixed16")
    out = tmp_path / "d"
    assert main(["deploy", str(e.project_dir), "--board", "zcu104", "-o", str(out)]) == 0
    driver = Driver(out / "driver", backend=CompiledBackend(e.project_dir))
    with pytest.raises(ValueError, match=r"the design takes numbers \(n, 3, 12, 12\)"):
        driver.predict(np.zeros((2, 3, 12, 13), np.float32))


@pytest.mark.parametrize(
    "fields, written",
    [
        (("input_r_1", "input_r_2"), {"input_r_1": 0x3456_7000, "input_r_2": 0x12}),  # 32-bit halves
        (("input_r",), {"input_r": 0x12_3456_7000}),  # one 64-bit field
        (("weights",), {"weights": 0x12_3456_7000}),
    ],
)
def test_board_backend_writes_each_ports_address_register(fields, written):
    """On the board the address goes into the register HLS names after the argument (not run on a
    board here: a register map stands in for PYNQ's)."""
    regs = types.SimpleNamespace(**{f: None for f in fields})
    backend = object.__new__(PynqBackend)
    backend.ip = types.SimpleNamespace(register_map=regs)
    arg = "weights" if "weights" in fields else "input"
    backend._address(arg, 0x12_3456_7000)
    assert {f: getattr(regs, f) for f in fields} == written
    with pytest.raises(KeyError, match="no register for argument 'fmap'"):
        backend._address("fmap", 1)


def _zoo(name, tmp_path):
    """The model zoo's blocks as torch exports them: a ResNet basic block (residual add), a SqueezeNet
    fire module (concat), two EfficientNet MBConv blocks (depthwise, SiLU, squeeze-excite's scale)."""
    from fnas_hls.network.onnx_frontend import load_onnx

    if name == "mbconv":
        from test_squeeze_excite import _model
        from torch_export import export_onnx

        return load_onnx(export_onnx(_model(), (1, 3, 16, 16), tmp_path / "se.onnx", dynamo=False)).network
    from test_residual import _onnx

    return load_onnx(_onnx(name, tmp_path)[1]).network


@pytest.mark.parametrize("style", ["dataflow", "sequential", "shared"])
@pytest.mark.parametrize("block", ["basic_block", "fire", "mbconv"])
def test_driver_runs_the_zoo_blocks_bit_for_bit(tmp_path, block, style):
    net = _zoo(block, tmp_path)
    shape = (net.input.c, net.input.h, net.input.w)
    x = np.random.default_rng(3).standard_normal((8, *shape)).astype(np.float32)
    e = emit_project(net, "zcu104", tmp_path / "p", "int8", calibration=x, style=style)
    assert main(["deploy", str(e.project_dir), "--board", "zcu104", "-o", str(tmp_path / "d")]) == 0
    driver = Driver(tmp_path / "d" / "driver", backend=CompiledBackend(e.project_dir))
    want = run_reference(
        net, e.plan, e.tilings, e.plan.input_type.quantize(x), stream_order=style == "dataflow"
    )
    np.testing.assert_array_equal(driver.predict(x), e.plan.output_type.dequantize(want))


def test_the_driver_package_stands_alone(tmp_path, monkeypatch):
    """``driver/`` imports as a package from the deploy folder, with numpy alone (fnas-hls is not on the
    board), and finds its design.json beside itself."""
    import importlib
    import sys

    _, e = _emit(tmp_path, "shared", "fixed16")
    out = tmp_path / "d"
    assert main(["deploy", str(e.project_dir), "--board", "zcu104", "-o", str(out)]) == 0
    source = (out / "driver" / "fnas_driver.py").read_text()
    assert not re.search(r"^\s*(from|import) fnas_hls", source, re.M)
    monkeypatch.syspath_prepend(str(out))
    monkeypatch.delitem(sys.modules, "driver", raising=False)
    package = importlib.import_module("driver")
    design = package.Driver(backend=CompiledBackend(e.project_dir))
    assert design.folder == (out / "driver").resolve() and design.spec["bitstream"] == "../fnas.bit"
    x = _inputs(3)
    np.testing.assert_array_equal(
        design.predict(x), Driver(out / "driver", backend=CompiledBackend(e.project_dir)).predict(x)
    )


def test_a_64_bit_address_register_is_written_as_two_words():
    writes = []
    reg = types.SimpleNamespace(address=0x1C, width=64)
    backend = object.__new__(PynqBackend)
    backend.ip = types.SimpleNamespace(
        register_map=types.SimpleNamespace(input_r=reg), write=lambda off, v: writes.append((off, v))
    )
    backend._address("input", 0x12_3456_7000)
    assert writes == [(0x1C, 0x3456_7000), (0x20, 0x12)]


def test_more_bundles_than_ports_share_the_first_ones_interconnect(tmp_path):
    """The shared engine's 8 m_axi bundles on Zynq UltraScale+'s 4 HP ports: the first on each port by
    automation on the port, the next from the master pin into the interconnect already there; HPM1 off
    (its clock would be left unconnected), a timing check before the bitstream is copied."""
    _, e = _emit(tmp_path, "shared", "int8")
    out = tmp_path / "d"
    assert main(["deploy", str(e.project_dir), "--board", "zcu104", "-o", str(out)]) == 0
    tcl = (out / "build_bitstream.tcl").read_text()
    bundles = re.findall(
        r"m_axi port=\w+ .*bundle=(\w+)", (e.project_dir / "src" / f"{e.top}.cpp").read_text()
    )
    bundles = list(dict.fromkeys(bundles))
    assert len(bundles) > 4
    for i, b in enumerate(bundles):
        port = f"S_AXI_HP{i % 4}_FPD"
        obj = f"[get_bd_intf_pins ps/{port}]" if i < 4 else f"[get_bd_intf_pins fnas_0/m_axi_{b}]"
        line = next(ln for ln in tcl.splitlines() if f"Master {{/fnas_0/m_axi_{b}}}" in ln)
        assert f"Slave {{/ps/{port}}}" in line and line.endswith(obj), line
        assert ("intc_ip $intc" in line) == (i >= 4)
    assert "CONFIG.PSU__USE__M_AXI_GP1 {0}" in tcl and "STATS.WNS" in tcl and "ACT_FREQMHZ" in tcl
