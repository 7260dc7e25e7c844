"""The public tables' networks as IR: NAS-Bench-201 from its cell strings (held to the table's own
parameter counts), built without host layers, analyzed, and one emitted and C-simulated."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.boards import load_board
from fnas_hls.errors import FnasError
from fnas_hls.network.benchmark_nets import nasbench201_network, parse_cellstr
from fnas_hls.network.ir import Conv, Dense, HostOp
from fnas_hls.styles import analyze

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
NB201 = SHARED / "nasbench201-cifar10-200epochs-valid.csv"
needs_tables = pytest.mark.skipif(not NB201.is_file(), reason="needs ../shared/benchmarks")
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def test_parse_cellstr():
    edges = parse_cellstr("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|")
    assert edges == {
        (0, 1): "nor_conv_3x3", (0, 2): "none", (1, 2): "skip_connect",
        (0, 3): "avg_pool_3x3", (1, 3): "nor_conv_1x1", (2, 3): "none",
    }  # fmt: skip
    for bad in (
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
        "x",
    ):
        with pytest.raises(FnasError, match="cell string"):
            parse_cellstr(bad)


def _params_as_nasbench201_counts(net) -> int:
    """Conv weights, two per channel of every batch norm (the shortcut's 1x1 has none; the last
    one, our 1x1 depthwise conv, is one), the classifier's weights and biases."""
    total = 0
    for li in net.info:
        layer = li.layer
        if isinstance(layer, Conv):
            if layer.name == "lastact":
                total += 2 * layer.out
                continue
            total += layer.out * (li.in_shape.c // layer.groups) * layer.kernel[0] * layer.kernel[1]
            total += 0 if layer.name.endswith("_short") else 2 * layer.out
        elif isinstance(layer, Dense):
            total += layer.out * li.in_shape.size + layer.out
    return total


def _all_reached(cellstr: str) -> bool:
    """Whether every op of the cell computes something the cell's output reads."""
    edges = parse_cellstr(cellstr)
    live, useful = {0}, {3}
    for j in (1, 2, 3):
        if any(edges[(i, j)] != "none" and i in live for i in range(j)):
            live.add(j)
    for i in (2, 1, 0):
        if any(edges[(i, j)] != "none" and j in useful for j in range(i + 1, 4)):
            useful.add(i)
    return all(i in live and j in useful for (i, j), op in edges.items() if op != "none")


@needs_tables
def test_the_structure_is_nasbench201s_by_its_parameter_counts():
    """The cells of the first 600 whose ops all compute: our layers hold the table's parameters
    (380 of 381; the one that differs, arch 327, has 9,306 more here, a quirk of the table)."""
    rows = list(csv.DictReader(NB201.open()))[:600]
    same = differ = 0
    for row in rows:
        if _all_reached(row["cellstr"]):
            ours = round(_params_as_nasbench201_counts(nasbench201_network(row["cellstr"])) / 1e6, 4)
            same, differ = (same + 1, differ) if ours == float(row["params_m"]) else (same, differ + 1)
    assert same >= 350 and differ <= same // 100


def test_zero_nodes_cost_nothing_and_a_zero_cell_is_an_identity():
    dead = nasbench201_network("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert not any("n3e2" in layer.name for layer in dead.layers)  # reads zero node 2: left out
    assert not any(layer.name.startswith("s0c") for layer in dead.layers)  # the cells are identities
    full = nasbench201_network(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    assert sum(isinstance(layer, Conv) for layer in full.layers) == 1 + 15 * 6 + 2 * 3 + 1


@needs_tables
@pytest.mark.parametrize("index", [1, 77, 4242])
def test_networks_analyze_on_pynq_with_no_host_layer(index):
    row = list(csv.DictReader(NB201.open()))[index]
    net = nasbench201_network(row["cellstr"])
    assert not any(isinstance(layer, HostOp) for layer in net.layers)
    a = analyze(net, load_board("pynq"), "fixed16", style="auto")
    assert a.latency_cycles > 0 and a.macs == sum(li.macs for li in net.info)


@needs_gxx
def test_a_cell_emits_bit_exact(tmp_path):
    """Pre-activation convs, padding-excluding average pools, the reduction's shortcut, the last
    batch norm as a depthwise conv: a whole network in C simulation."""
    from fnas_hls.backend.csim import run_csim
    from fnas_hls.backend.hls_writer import emit_project

    net = with_random_weights(
        nasbench201_network(
            "|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|"
        )
    )
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    emit_project(net, load_board("zcu104"), tmp_path / "p", "fixed16", x, style="sequential")
    assert run_csim(tmp_path / "p", opt="-O1").bit_exact


ANB = SHARED / "accel-nasbench-mnasnet.csv"


@pytest.mark.skipif(not ANB.is_file(), reason="needs ../shared/benchmarks")
def test_accel_nasbench_networks_hold_the_tables_macs():
    """The skeleton's convolutions and classifier are about 90% of the table's profiler count, and
    the rest is 4 operations per conv output (batch norm, activation); row 0 exactly the README's
    375.7 of 415.4 million."""
    from fnas_hls.network.benchmark_nets import accel_nasbench_network

    rows = list(csv.DictReader(ANB.open()))
    net = accel_nasbench_network(rows[0])
    assert round(sum(li.macs for li in net.info) / 1e6, 1) == 375.7
    for row in rows[:60]:  # the rest is 4 operations per conv output (4.005 to 4.034 on 300 rows)
        net = accel_nasbench_network(row)
        outputs = sum(li.out_shape.size for li in net.info if isinstance(li.layer, Conv))
        rest = float(row["macs_m"]) * 1e6 - sum(li.macs for li in net.info)
        assert 3.99 < rest / outputs < 4.05, row["id"]


def test_mbconv_blocks():
    from fnas_hls.network.benchmark_nets import mnasnet_network
    from fnas_hls.network.ir import Add, Scale

    net = mnasnet_network((1, 6, 6, 6, 6, 6, 6), (3, 3, 5, 3, 5, 5, 3), (1, 2, 2, 3, 3, 4, 1), (True,) * 7)
    assert sum(isinstance(layer, Scale) for layer in net.layers) == 16  # EfficientNet-B0: SE everywhere
    assert sum(isinstance(layer, Add) for layer in net.layers) == 16 - 7  # all but each block's first
    assert not any(isinstance(layer, HostOp) for layer in net.layers)
    assert net.output.c == 1000 and net.input.h == 224
    dw = [layer for layer in net.layers if layer.name.endswith("_dw")]
    assert [d.kernel[0] for d in dw][:4] == [3, 3, 3, 5] and all(d.groups == d.out for d in dw)
    a = analyze(net, load_board("zcu102"), "fixed16", style="shared")
    assert a.macs == sum(li.macs for li in net.info) and a.latency_cycles > 0
