"""8-bit fixed point: the quantizer, two products per DSP48E2 (WP486) in the model and in the C++,
and every style bit-exact in C simulation."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from fnas_hls.backend.csim import run_csim
from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.hls_writer import emit_project
from fnas_hls.backend.quantize import quantize_network
from fnas_hls.boards import load_board
from fnas_hls.model.tiling import parse_tiling_specs
from fnas_hls.network.arch import network_from_dict
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

ARCH = {
    "name": "small8",
    "input": [3, 12, 12],
    "layers": [
        {"type": "conv", "out": 8, "kernel": 3, "padding": 1, "act": "relu6"},
        {"type": "conv", "out": 8, "kernel": 3, "padding": 1, "groups": 8, "relu": True},
        {"type": "maxpool", "kernel": 2, "stride": 2},
        {"type": "conv", "out": 15, "kernel": 1, "act": "hard_swish"},
        {"type": "gap"},
        {"type": "fc", "out": 5},
    ],
}


@pytest.fixture
def net():
    return with_random_weights(network_from_dict(ARCH))


def test_int8_formats(net):
    x = np.random.default_rng(0).random((16, 3, 12, 12)).astype(np.float32)
    plan = quantize_network(net, "int8", x)
    assert plan.input_type.c_type == "int8_t" and plan.input_type.min_int == -128
    for lq in plan.layers:
        assert lq.out_type.bits == 8
        if lq.w_type is not None:
            assert lq.w_type.bits == 8 and int(np.abs(lq.weight).max()) <= 128 and lq.bias_type.bits == 32
            assert lq.acc_bits == 32  # 8-bit products of these layers cannot leave int32


def test_two_int8_macs_per_dsp48e2_and_one_per_dsp48e1(net):
    """Ultra96 (DSP48E2) pairs the lanes that share an input; PYNQ (DSP48E1) cannot (WP486)."""
    for board, pack in (("ultra96v2", 2), ("zcu104", 2), ("kv260", 2), ("pynq", 1), ("vc707", 1)):
        b = load_board(board)
        assert b.mac_cost(get_precision("int8")).pack == pack
        assert b.mac_cost(get_precision("fixed16")).pack == 1
    b = load_board("ultra96v2")
    pins = parse_tiling_specs(["conv1:Tm=4,Tn=3"])
    dsp = {
        p: analyze(net, b, p, style="sequential", pins=pins).layers[0].resources.dsp
        for p in ("int8", "fixed16")
    }
    assert (dsp["fixed16"], dsp["int8"]) == (4 * 3, 2 * 3)  # conv1's 4 x 3 MACs; ReLU6 takes no DSP
    m = b.mac_cost(get_precision("int8"))
    assert m.dsps(5, 3) == 9 and m.dsps(4, 3) == 6 and m.macs(100) == 200


@needs_gxx
def test_the_packed_multiply_is_exact_for_every_operand(tmp_path, net):
    """fnas_mul2 as rendered, over every (w0, w1, x) in int8: 16.7 million products, both exact."""
    x = np.random.default_rng(0).random((4, 3, 12, 12)).astype(np.float32)
    emit_project(net, load_board("zcu104"), tmp_path / "p", "int8", x, style="sequential")
    types = (tmp_path / "p" / "src" / "fnas_types.h").read_text()
    assert "fnas_mul2" in types
    main = tmp_path / "all.cpp"
    main.write_text(
        '#include "fnas_types.h"\n#include <cstdio>\nint main() {\n  long bad = 0;\n'
        "  for (int w0 = -128; w0 < 128; w0++) for (int w1 = -128; w1 < 128; w1++)\n"
        "  for (int x = -128; x < 128; x++) {\n"
        "    fnas_prod_t p0, p1;\n    fnas_mul2((fnas_data_t)w0, (fnas_data_t)w1, (fnas_data_t)x, p0, p1);\n"
        "    if (p0 != w0 * x || p1 != w1 * x) bad++;\n  }\n"
        '  std::printf("%ld\\n", bad);\n  return bad != 0;\n}\n'
    )
    exe = tmp_path / "all"
    subprocess.run(["g++", "-O2", f"-I{tmp_path / 'p' / 'src'}", str(main), "-o", str(exe)], check=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "0"


@needs_gxx
@pytest.mark.parametrize("board", ["pynq", "zcu104"])
@pytest.mark.parametrize("style", ["sequential", "dataflow", "shared"])
def test_int8_bit_exact_in_every_style(net, board, style, tmp_path):
    x = np.random.default_rng(1).random((20, 3, 12, 12)).astype(np.float32)
    res = emit_project(net, load_board(board), tmp_path / "p", "int8", x, style=style)
    assert res.analysis.style == style and res.plan.precision == "int8"
    packed = any("fnas_mul2(" in p.read_text() for p in (tmp_path / "p" / "src").glob("*.cpp"))
    assert packed == (board == "zcu104")  # paired products only on the DSP48E2 board
    out = run_csim(tmp_path / "p", opt="-O1")
    assert out.bit_exact, out.verdict
    assert res.agreement.top1_agreement >= 0.9


def test_a_weight_format_per_output_channel(net):
    """Channels whose weights differ 100-fold each get their own fractional bits and shift, so the
    small one keeps its precision (one format for the layer would leave it a couple of levels)."""
    from dataclasses import replace

    conv = net.layers[0]
    w = np.array(conv.weight)
    w[1] *= 0.01
    small = replace(net, layers=(replace(conv, weight=w), *net.layers[1:]))
    x = np.random.default_rng(0).random((16, 3, 12, 12)).astype(np.float32)
    lq = quantize_network(small, "int8", x).layers[0]
    assert lq.w_fracs[1] >= lq.w_fracs[0] + 6 and lq.shifts[1] >= lq.shifts[0] + 6
    assert int(np.abs(lq.weight[1]).max()) >= 64  # the small channel still spans int8
    assert quantize_network(small, "fixed16", x).layers[0].w_fracs is None  # fixed16: one per layer
