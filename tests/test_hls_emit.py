"""The HLS back end end to end: emit a spread of networks, C-simulate them with g++, bit-exact.

Every network here is rendered from the templates, compiled with the machine's g++ and run; the
C++ outputs must equal the numpy reference model's bit for bit, and the reference model must
agree with torch within the quantization error stated in ``_within_quantization_error``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.float_model import run_float, with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.boards import load_board
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.resource_model import Memory
from fnas_hls.model.sequential import element_memories
from fnas_hls.model.tiling import parse_tiling_specs
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.ir import Conv, Dense, Flatten, GlobalAvgPool, Network, Pool

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def net_of(layers: list[dict], input_shape: list[int], name: str = "t", seed: int = 0) -> Network:
    return with_random_weights(
        network_from_dict({"name": name, "input": input_shape, "layers": layers}), seed
    )


#: name -> (input shape, layers, tiling pins)
SPREAD = {
    "k1_valid_fc": (
        [3, 9, 7],
        [{"type": "conv", "out": 5, "kernel": 1, "relu": True}, {"type": "fc", "out": 4}],
        [],
    ),
    "k3_same_pool_s2_gap": (
        [3, 13, 11],
        [
            {"type": "conv", "out": 8, "kernel": 3, "padding": "same", "relu": True},
            {"type": "maxpool", "kernel": 2, "stride": 2},
            {"type": "conv", "out": 6, "kernel": 3, "stride": 2, "padding": 1, "relu": True},
            {"type": "gap"},
            {"type": "fc", "out": 5},
        ],
        ["all:Tm=3,Tn=2,Tr=4,Tc=3"],
    ),
    "k5_avgpool_pad": (
        [2, 12, 10],
        [
            {"type": "conv", "out": 7, "kernel": 5, "padding": "same", "relu": True},
            {"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1},
            {"type": "flatten"},
            {"type": "fc", "out": 6, "relu": True},
            {"type": "fc", "out": 3},
        ],
        ["all:Tm=4,Tn=5,Tr=5,Tc=3"],
    ),
    "k7_s2_asym_groups": (
        [4, 17, 15],
        [
            {"type": "conv", "out": 6, "kernel": 7, "stride": 2, "padding": [1, 2, 3, 0], "relu": True},
            {"type": "conv", "out": 4, "kernel": 3, "padding": 1, "groups": 2, "relu": True},
            {"type": "maxpool", "kernel": 3, "stride": 2, "padding": [1, 0, 0, 1]},
            {"type": "fc", "out": 3},
        ],
        ["all:Tm=5,Tn=3,Tr=3,Tc=2"],
    ),
    "k11_s4_valid": (
        [3, 27, 25],
        [
            {"type": "conv", "out": 5, "kernel": 11, "stride": 4, "padding": "valid", "relu": True},
            {"type": "conv", "out": 6, "kernel": 3, "stride": 1, "padding": "valid", "relu": True},
            {"type": "gap"},
        ],
        [],
    ),
    "depthwise_avg_gap": (
        [6, 8, 9],
        [
            {"type": "conv", "out": 6, "kernel": 3, "padding": "same", "groups": 6, "relu": True},
            {"type": "conv", "out": 9, "kernel": 1, "bias": False},
            {"type": "avgpool", "kernel": 2, "stride": 2},
            {"type": "gap"},
            {"type": "fc", "out": 4},
        ],
        ["all:Tm=2,Tn=4,Tr=3,Tc=5"],
    ),
}


def _within_quantization_error(design: np.ndarray, floats: np.ndarray) -> None:
    """The stated error of fixed16 against float: within 1% of the largest output (or 1/16 in abs)."""
    tol = max(0.01 * float(np.max(np.abs(floats))), 1 / 16)
    assert float(np.max(np.abs(design - floats))) <= tol


def _torch_module(net: Network) -> nn.Module:
    """The network as plain torch modules, independently of ``float_model``."""
    mods: list[nn.Module] = []
    for li in net.info:
        layer = li.layer
        if isinstance(layer, Conv):
            pt, pl, pb, pr = layer.padding
            conv = nn.Conv2d(
                li.in_shape.c, layer.out, layer.kernel, layer.stride, groups=layer.groups, bias=layer.bias
            )
            conv.weight.data = torch.from_numpy(layer.weight)
            if layer.bias:
                conv.bias.data = torch.from_numpy(layer.bias_value)
            mods += [nn.ZeroPad2d((pl, pr, pt, pb)), conv]
        elif isinstance(layer, Dense):
            lin = nn.Linear(li.in_shape.size, layer.out, bias=layer.bias)
            lin.weight.data = torch.from_numpy(layer.weight)
            if layer.bias:
                lin.bias.data = torch.from_numpy(layer.bias_value)
            mods += [nn.Flatten(), lin]
        elif isinstance(layer, Pool):
            pt, pl, pb, pr = layer.padding
            if layer.kind == "max":
                mods += [
                    nn.ConstantPad2d((pl, pr, pt, pb), float("-inf")),
                    nn.MaxPool2d(layer.kernel, layer.stride),
                ]
            else:
                mods += [nn.ZeroPad2d((pl, pr, pt, pb)), nn.AvgPool2d(layer.kernel, layer.stride)]
        elif isinstance(layer, GlobalAvgPool):
            mods.append(nn.AdaptiveAvgPool2d(1))
        elif isinstance(layer, Flatten):
            mods.append(nn.Flatten())
        if getattr(layer, "relu", False):
            mods.append(nn.ReLU())
    mods.append(nn.Flatten())
    return nn.Sequential(*mods).eval()


@pytest.mark.parametrize("case", sorted(SPREAD))
def test_float_model_matches_torch_modules(case):
    shape, layers, _ = SPREAD[case]
    net = net_of(layers, shape)
    x = np.random.default_rng(1).standard_normal((4, *shape)).astype(np.float32)
    with torch.no_grad():
        want = _torch_module(net)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_float(net, x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("precision", ["fixed16", "float32"])
@pytest.mark.parametrize("case", sorted(SPREAD))
def test_emit_csim_bit_exact(case, precision, tmp_path):
    shape, layers, pins = SPREAD[case]
    net = net_of(layers, shape, name=case)
    rng = np.random.default_rng(2)
    calib = rng.standard_normal((24, *shape)).astype(np.float32)
    tests = rng.standard_normal((6, *shape)).astype(np.float32)
    res = emit_project(
        net,
        load_board("pynq"),
        tmp_path / "prj",
        precision,
        calib,
        parse_tiling_specs(pins),
        test_inputs=tests,
    )
    out = run_csim(tmp_path / "prj", opt="-O1")
    assert out.bit_exact, out.verdict
    assert out.vectors == 6 and "PASS" in out.verdict
    # The tiling rendered is the one the analysis chose (pins honoured).
    manifest = json.loads((tmp_path / "prj" / "manifest.json").read_text())
    for entry, lc in zip(manifest["layers"], res.analysis.layers, strict=True):
        assert entry["tiling"] == (lc.tiling.as_dict() if lc.tiling else None)
    # Every array of a conv element bound where the model counts it (block RAM or LUTs); the
    # ping-pong halves in_b, w_b only where the layer has input-channel tiles.
    for li, lc in zip(net.info, res.analysis.layers, strict=True):
        if lc.tiling is None:
            continue
        code = (tmp_path / "prj" / "src" / f"{lc.name}.cpp").read_text()
        g, t = ConvGeometry.element_of(li), lc.tiling
        impl = {
            m[0]: Memory(*m).impl for m in element_memories(g, t.Tm, t.Tn, t.Tr, t.Tc, res.analysis.precision)
        }
        arrays = {
            "in_a": "input tiles",
            "w_a": "weight tiles",
            "acc": "accumulators",
            f"{lc.name}_bias": "bias ROM",
        }
        if cdiv(g.N, t.Tn) > 1:
            arrays.update(in_b="input tiles", w_b="weight tiles")
        else:
            assert "variable=in_b " not in code
        for var, name in arrays.items():
            kind = "rom_1p" if name == "bias ROM" else "ram_s2p"
            assert f"BIND_STORAGE variable={var} type={kind} impl={impl[name]}\n" in code, (lc.name, var)
    # The reference (hence the C++) against torch, within the stated quantization error.
    with torch.no_grad():
        want = _torch_module(net)(torch.from_numpy(tests)).numpy()
    if precision == "float32":
        np.testing.assert_allclose(out.max_abs_error, 0, atol=1e-4)
        assert float(np.max(np.abs(run_float(net, tests) - want))) < 1e-4
    else:
        vec = np.load(tmp_path / "prj" / "tb" / "vectors.npz")
        _within_quantization_error(res.plan.output_type.dequantize(vec["golden"]), want)
        assert out.top1_agreement >= 5 / 6


def test_pinned_tiling_is_rendered(tmp_path):
    shape, layers, _ = SPREAD["k3_same_pool_s2_gap"]
    net = net_of(layers, shape)
    pins = parse_tiling_specs(["conv1:Tm=5,Tn=1,Tr=2,Tc=full", "fc1:Tm=2"])
    res = emit_project(net, load_board("pynq"), tmp_path / "p", "fixed16", pins=pins)
    header = (tmp_path / "p" / "src" / "conv1.h").read_text()
    assert "const int TM = 5, TN = 1, TR = 2, TC = 11;" in header
    assert res.tilings["conv1"].as_dict() == {"Tm": 5, "Tn": 1, "Tr": 2, "Tc": 11}
    assert "const int TM = 2," in (tmp_path / "p" / "src" / "fc1.h").read_text()
    assert run_csim(tmp_path / "p", opt="-O1").bit_exact


_FUNC = re.compile(r"^void (\w+)\(", re.M)
_LABEL = re.compile(r"^\s*([A-Z_]+):\s*$")


def _rendered_labels(src_dir, top: str) -> set[tuple[str, str | None]]:
    """(function, loop label) pairs in the rendered C++, and (function, None) for each function."""
    pairs: set[tuple[str, str | None]] = set()
    for path in sorted(src_dir.glob("*.cpp")):
        current = None
        for line in path.read_text().splitlines():
            m = _FUNC.match(line)
            if m:
                current = m.group(1)
                if current != top:
                    pairs.add((current, None))
                continue
            m = _LABEL.match(line)
            if m:
                assert current is not None
                pairs.add((current, m.group(1)))
    return pairs


@pytest.mark.parametrize("case", sorted(SPREAD))
def test_template_labels_are_the_models(case, tmp_path):
    """Every function and loop label in the rendered C++ is in the model's breakdown, and vice versa."""
    shape, layers, pins = SPREAD[case]
    net = net_of(layers, shape)
    for i, p in enumerate([pins, ["all:Tn=full"]]):  # with and without TILE_IN
        res = emit_project(net, load_board("pynq"), tmp_path / f"p{i}", "fixed16", pins=parse_tiling_specs(p))
        model: set[tuple[str, str | None]] = set()
        for layer in res.manifest["analysis"]["layers"]:
            for f in layer["functions"]:
                model.add((f["name"], None))
                model.update((f["name"], lp["label"]) for lp in f["loops"])
        assert _rendered_labels(tmp_path / f"p{i}" / "src", res.top) == model


def test_hostile_layer_names(tmp_path):
    """ONNX-style names with quotes, slashes and comment markers make valid, uninjected C++."""
    base = net_of(
        [{"type": "conv", "out": 3, "kernel": 3, "padding": 1, "relu": True}, {"type": "fc", "out": 2}],
        [1, 6, 6],
    )
    from dataclasses import replace

    names = ['conv1/3x3;"  */ #include <x>\n', "1fc\\"]
    layers = tuple(replace(layer, name=n) for layer, n in zip(base.layers, names, strict=True))
    net = Network(base.input, layers, name='evil"*/net')
    res = emit_project(net, load_board("pynq"), tmp_path / "p", "fixed16")
    cnames = [entry["c_name"] for entry in res.manifest["layers"]]
    assert all(re.fullmatch(r"[A-Za-z_]\w*", c) for c in cnames)
    assert res.manifest["layers"][0]["name"] == names[0]
    assert re.fullmatch(r"[A-Za-z_]\w*", res.top)
    assert run_csim(tmp_path / "p", opt="-O1").bit_exact


def test_manifest_and_files(tmp_path):
    shape, layers, pins = SPREAD["k5_avgpool_pad"]
    res = emit_project(net_of(layers, shape, name="m"), load_board("zcu102"), tmp_path / "p", clock_mhz=150)
    m = json.loads((tmp_path / "p" / "manifest.json").read_text())
    for key in (
        "fnas_hls_version",
        "network",
        "top",
        "board",
        "part",
        "clock_mhz",
        "precision",
        "layers",
        "analysis",
    ):
        assert key in m
    assert m["clock_mhz"] == 150 and m["board"] == "zcu102" and m["precision"] == "fixed16"
    assert m["analysis"] == res.analysis.to_json()
    assert {"name", "c_name", "op", "tiling", "frac_bits"} <= set(m["layers"][0])
    tcl = (tmp_path / "p" / "run_hls.tcl").read_text()
    assert "set_part {" + res.analysis.board.part + "}" in tcl and "create_clock -period 6.667" in tcl
    assert (
        "csim_design" in tcl and "csynth_design" in tcl and "cosim_design" in tcl and "export_design" in tcl
    )
    assert "-flow_target vivado" in (tmp_path / "p" / "run_vitis.tcl").read_text()
    top = (tmp_path / "p" / "src" / f"{res.top}.cpp").read_text()
    assert "m_axi port=weights" in top and "s_axilite port=return" in top
    assert "vivado_hls -f run_hls.tcl" in (tmp_path / "p" / "README.md").read_text()
    assert any("no calibration data" in n for n in res.notes)


#: Stubs of the HLS tools' Tcl commands: each file and include folder that the script names must
#: exist relative to the folder the script is in when it names it; open_project prints that folder.
HLS_STUBS = r"""
proc open_project {args} { puts "PROJECT [pwd] [lindex $args end]" }
proc add_files {args} {
    set skip 0
    foreach a $args {
        if {$skip} {
            foreach flag $a {
                if {[string match -I* $flag] && ![file isdirectory [string range $flag 2 end]]} {
                    puts "MISSING-INCLUDE $flag"; exit 3
                }
            }
            set skip 0
        } elseif {$a eq "-cflags"} { set skip 1
        } elseif {$a eq "-tb"} {
        } elseif {![file isfile $a]} { puts "MISSING $a"; exit 3
        } else { puts "FILE $a" }
    }
}
foreach cmd {set_top open_solution set_part create_clock config_interface csim_design csynth_design
             cosim_design export_design} { proc $cmd {args} {} }
source [lindex $argv 0]
"""


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh (Debian: tcl)")
@pytest.mark.parametrize("style", ["sequential", "dataflow", "shared"])
@pytest.mark.parametrize("script", ["run_hls.tcl", "run_vitis.tcl"])
def test_the_tcl_scripts_run_from_another_folder(tmp_path, monkeypatch, style, script):
    """`vivado_hls -f prj/run_hls.tcl` as the README says it: every file the script adds is found
    from the user's folder, the list is the manifest's, and the HLS project is made in prj/."""
    shape, layers, _ = SPREAD["k5_avgpool_pad"]
    res = emit_project(net_of(layers, shape, name="m"), load_board("pynq"), tmp_path / "prj", style=style)
    (tmp_path / "stubs.tcl").write_text(HLS_STUBS)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    run = subprocess.run(
        ["tclsh", str(tmp_path / "stubs.tcl"), "../prj/" + script], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert f"PROJECT {(tmp_path / 'prj').resolve()} {res.top}_prj" in lines
    files = [ln.split(" ", 1)[1] for ln in lines if ln.startswith("FILE ")]
    m = res.manifest["files"]
    assert files == [*m["sources"], m["testbench"]]


@pytest.mark.parametrize("style", ["sequential", "dataflow", "shared"])
def test_the_generated_readme_names_its_own_code(tmp_path, style):
    """Each style's README lists the functions and loop labels of its own code, not another style's."""
    from readme_check import check_readme

    shape, layers, _ = SPREAD["k5_avgpool_pad"]
    res = emit_project(net_of(layers, shape, name="m"), load_board("pynq"), tmp_path / "p", style=style)
    check_readme(res.project_dir)
    readme = (res.project_dir / "README.md").read_text()
    assert ("LOAD_IN" in readme) == (style != "dataflow") and ("PRIME" in readme) == (style == "dataflow")


def test_emit_reports_each_step(tmp_path):
    shape, layers, _ = SPREAD["k5_avgpool_pad"]
    calls = []
    calib = np.random.default_rng(0).standard_normal((40, *shape)).astype(np.float32)
    emit_project(net_of(layers, shape, name="m"), load_board("pynq"), tmp_path / "p", calibration=calib,
                 progress=lambda *a: calls.append(a))  # fmt: skip
    steps = list(dict.fromkeys(step for step, _, _ in calls))
    assert steps == [
        "analysis", "calibration", "reference model", "float model", "weights and vectors as C", "rendering",
        "writing",
    ]  # fmt: skip
    for step in steps:
        done = [(d, t) for s, d, t in calls if s == step]
        assert done[0][0] == 0 and done[-1][0] == done[-1][1] and done == sorted(done), step
    assert ("calibration", 40, 40) in calls and ("reference model", 40, 40) in calls
