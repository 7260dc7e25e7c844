"""The shared engine's load ports (``model.shared_fabric.LOAD_PORT_OPTIONS``): LOAD_IN reads two or four
input channels at once, a port each; what a step and the engine then cost, the descriptor's walk of
each port over the channels (a folded layer's row shifts too), the DSE's choice per board, and the C
simulation with four ports."""

from __future__ import annotations

import shutil

import pytest

import fnas_hls.dse.shared as dse_shared
from fnas_hls.backend.float_model import with_random_weights
from fnas_hls.backend.shared_context import descriptor_products
from fnas_hls.boards import load_board
from fnas_hls.model import resource_model as rm
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.shared_engine import engine_terms, make_engine
from fnas_hls.model.shared_fabric import engine_logic_luts
from fnas_hls.network.ir import INPUT, Add, Conv, Dense, GlobalAvgPool, Network, Shape
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze


def _bottleneck(c: int = 64, hw: int = 28) -> Network:
    """A ResNet bottleneck that halves its map: its 1x1 stride-2 downsampling reads two words a column
    for the one it uses."""
    return with_random_weights(
        Network(
            Shape(c, hw, hw),
            (
                Conv("a1", out=c, kernel=(1, 1), relu=True),
                Conv("a2", out=c, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1), relu=True),
                Conv("a3", out=4 * c, kernel=(1, 1)),
                Conv("ds", out=4 * c, kernel=(1, 1), stride=(2, 2), inputs=(INPUT,)),
                Add("add", inputs=("a3", "ds"), relu=True),
                GlobalAvgPool("g"),
                Dense("fc", out=10),
            ),
            "b",
        )
    )


def test_four_load_ports_read_a_window_in_half_the_iterations_for_two_adapters_more():
    prec, board = get_precision("int8"), load_board("zcu102")
    g = ConvGeometry(1, 256, 64, 14, 14, 1, 1, 1, 2)  # a downsampling's view: the rows it reads
    two, four = (make_engine(64, 32, [(g, 14, 14)], board, prec, load_ports=p) for p in (2, 4))
    k2, k4 = (engine_terms(g, e, 14, 14, prec) for e in (two, four))
    row_beats = cdiv(13 * 2 + 1, 16) + 1
    assert k2.load_in_trip == cdiv(32, 2) * 14 * row_beats and k4.load_in_trip == cdiv(32, 4) * 14 * row_beats
    assert k4.compute_trip == k2.compute_trip and k4.ddr_words == k2.ddr_words  # the same words, read sooner
    assert k4.cycles < k2.cycles
    extra = engine_logic_luts(64, 32, prec, beat=16, load_ports=4) - engine_logic_luts(64, 32, prec, beat=16)
    assert extra == 2 * rm.LUT_PER_AXI_PORT + 2 * 16 * rm.select_luts(16, 8)  # the adapters, their selects
    r2, r4 = (e.resources(prec, board.mac_cost(prec)) for e in (two, four))
    assert r4.lut - r2.lut == extra and r4.ff - r2.ff == 2 * rm.FF_PER_AXI_PORT and r4.dsp == r2.dsp


def test_loads_and_weights_share_the_boards_hp_read_ports():
    """zcu102's four 128-bit HP ports read 4 beats a cycle between LOAD_IN and LOAD_W (and a fused
    add's skip reads in a step that stores): four load ports and two weight ports ask 6, so a step
    that streams both takes their beats over 4; two load ports and two weight ports never ask more
    than the ports bring (every tiling, the same cycles)."""
    import dataclasses

    import numpy as np

    from fnas_hls.model import hls_rules as rules
    from fnas_hls.model.shared_fabric import read_beats

    assert (read_beats(load_board("zcu102")), read_beats(load_board("pynq"))) == (4, 4)
    assert read_beats(load_board("vc707")) == 0  # no processing system: the DDR check alone
    prec, board = get_precision("int8"), load_board("zcu102")
    g = ConvGeometry(1, 256, 64, 14, 14, 1, 1, 1, 2)
    four = make_engine(64, 32, [(g, 14, 14)], board, prec, load_ports=4)
    unbound = dataclasses.replace(four, read_beats=0)
    k, free = engine_terms(g, four, 14, 14, prec), engine_terms(g, unbound, 14, 14, prec)
    both = k.load_in_trip * 4 + k.load_w_trip * four.w_beats  # 112*4 + 128 beats
    shared = rules.function_latency(rules.pipelined_loop(cdiv(both, 4), 1, rules.LOAD_DEPTH))
    assert shared > max(rules.function_latency(k.load_in), rules.function_latency(k.load_w))
    assert k.step > free.step and k.step == rules.sequential_block(shared)
    # a store that adds a residual map reads it beside the loads: its skip reads share the ports too
    kf = engine_terms(g, four, 14, 14, prec, fused=True, beats=True)  # STORE_B: a beat a port a cycle
    skips = kf.store_trip * 2  # its skip map's beats, STORE_PORTS a cycle
    with_skips = rules.function_latency(rules.pipelined_loop(cdiv(both + skips, 4), 1, rules.LOAD_DEPTH))
    call = rules.function_latency
    assert with_skips > max(call(kf.store), call(kf.compute), shared)
    assert kf.store_step == rules.sequential_block(with_skips) and kf.step == k.step
    tr, tc = (a.ravel() for a in np.meshgrid(np.arange(1, 15), np.arange(1, 15)))
    two = make_engine(64, 32, [(g, 14, 14)], board, prec)
    assert two.read_beats == 4 and np.array_equal(
        engine_terms(g, two, tr, tc, prec).cycles,
        engine_terms(g, dataclasses.replace(two, read_beats=0), tr, tc, prec).cycles,
    )


def _port_walk(p: dict[str, int], ports: int, channels: int) -> list[tuple[int, int]]:
    """The (channel's first word, row shift) each port of LOAD_IN starts each channel at, in the order
    the engine loads them, following the template's adds (``engine.cpp.j2``, fnas_engine_load_in)."""
    k, chan = [0], [0]
    for _ in range(1, ports):  # port q: one channel past port q - 1
        kq, cq = k[-1] + p["K2"], chan[-1] + p["CH2"]
        if kq >= p["FOLD"]:
            kq, cq = kq - p["FOLD"], cq + p["FOLD_WRAP"]
        k.append(kq)
        chan.append(cq)
    out = []
    for _ in range(cdiv(channels, ports)):
        out += list(zip(chan, k, strict=True))
        for q in range(ports):  # the next channels, ports on
            chan[q], k[q] = chan[q] + p["IN_CHSTEP"], k[q] + p["K_STEP"]
            if k[q] >= p["FOLD"]:
                k[q], chan[q] = k[q] - p["FOLD"], chan[q] + p["FOLD_WRAP"]
    return out[:channels]


@pytest.mark.parametrize("fold", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("ports", [2, 4])
def test_each_port_starts_each_channel_of_the_view_at_its_input_channel_and_row_shift(fold, ports):
    """Channel v of a folded view is input channel v // FOLD read v % FOLD rows further: its first word
    is (v // FOLD)*HW + (v % FOLD)*IW, for every count of ports and every fold (FOLD 1: no fold)."""
    iw, hw, n = 11, 11 * 13, 3
    d = {
        "KH": 1, "KW": 5, "IHW": hw, "R": 7, "OC": 6, "ML": 8, "TR": 3, "TC": 6, "ST_BEATS": 0, "TILES": 1,
        "NT": 1, "NL": n * fold, "TRIN": 3, "KB1": 2, "DWTC": 6, "SH": 2, "TCINP": 16, "SW": 2, "MT": 1,
        "N": n * fold, "PT": 2, "IW": iw, "TN": 16, "MSTEP": 8, "M": 8, "TCB": 1, "FOLD": fold, "ALIGNED": 0,
        "DWU": 0, "CTR": 3, "CTC": 6, "CSKIP": 0, "CROW": 0,
    }  # fmt: skip
    p = descriptor_products(d, 1, ports)
    assert p["IN_TRIP"] == cdiv(n * fold, ports) * 3 * 2
    walk = _port_walk(p, ports, n * fold)
    assert walk == [((v // fold) * hw + (v % fold) * iw, v % fold) for v in range(n * fold)]


def test_the_dse_takes_four_load_ports_where_they_pay_and_two_where_the_luts_are_short(monkeypatch):
    net = _bottleneck()
    on_zcu102 = analyze(net, load_board("zcu102"), "int8", style="shared")
    on_pynq = analyze(net, load_board("pynq"), "int8", style="shared")
    assert on_zcu102.engine.load_ports == 4 and on_pynq.engine.load_ports == 2
    assert any("4 input channels loaded at once" in n for n in on_zcu102.notes)
    for board, chosen, other in (("zcu102", on_zcu102, (2,)), ("pynq", on_pynq, (4,))):
        monkeypatch.setattr(dse_shared, "LOAD_PORT_OPTIONS", other)
        alternative = analyze(net, load_board(board), "int8", style="shared")
        assert chosen.fits and (not alternative.fits or chosen.latency_cycles < alternative.latency_cycles)
    # the downsampling, load-bound on two ports, gains most
    monkeypatch.setattr(dse_shared, "LOAD_PORT_OPTIONS", (2,))
    two = {lc.name: lc for lc in analyze(net, load_board("zcu102"), "int8", style="shared").layers}
    four = {lc.name: lc for lc in on_zcu102.layers}
    assert two["ds"].bound == "memory" and four["ds"].cycles < 0.8 * two["ds"].cycles


needs_gpp = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


@needs_gpp
def test_a_design_of_four_load_ports_c_simulates_bit_exact(shared_csim, tmp_path):
    res, out = shared_csim(_bottleneck(16, 12), "zcu102", "int8")
    assert res.analysis.engine.load_ports == 4
    assert out.bit_exact and out.vectors == 4, out.verdict
    top = (tmp_path / "p" / "src" / f"{res.top}.cpp").read_text()
    for q in (3, 4):
        assert f"port=input_b{q} offset=slave bundle=gmem_fmb{q} " in top
        assert f"port=fmap_b{q} offset=slave bundle=gmem_fmb{q} " in top


@needs_gpp
@pytest.mark.parametrize("kernel", [(2, 3), (3, 3), (5, 5)])
def test_folded_kernel_rows_on_four_load_ports_c_simulate_bit_exact(shared_csim, monkeypatch, kernel):
    """A stem whose kernel rows fold onto its channels, each port's channel crossing into the next
    input channel at its own row shift (FOLD 2, 3 and 5 over four ports)."""
    monkeypatch.setattr(dse_shared, "LOAD_PORT_OPTIONS", (4,))
    stem = Conv("stem", out=16, kernel=kernel, stride=(2, 2), padding=(1, 1, 1, 1), relu=True)
    net = with_random_weights(
        Network(
            Shape(3, 13, 11),
            (stem, Conv("c1", out=12, kernel=(3, 3), padding=(1, 1, 1, 1)), GlobalAvgPool("g")),
        )
    )
    res, out = shared_csim(net, "zcu102", "int8")
    assert res.analysis.engine.load_ports == 4 and "stem" in res.analysis.folded_layers
    assert out.bit_exact and out.vectors == 4, out.verdict


@needs_gpp
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_the_pooling_units_read_through_four_load_ports_bit_exact(shared_csim, monkeypatch, tmp_path, kind):
    """A 3x3 stride-2 max pool writing beats (POOL_V: 6 reads an iteration, II 2 on four ports, 3 on
    two) and an average pool on the beat unit (POOL_B), each read r through port r mod 4."""
    from fnas_hls.model.shared_pool import vector_pool_ii
    from fnas_hls.network.ir import Pool

    monkeypatch.setattr(dse_shared, "LOAD_PORT_OPTIONS", (4,))
    pool = Pool("p", kind=kind, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1))
    net = with_random_weights(
        Network(
            Shape(3, 21, 37),
            (
                Conv("c0", out=8, kernel=(3, 3), padding=(1, 1, 1, 1), relu=True),
                pool,
                Conv("c2", out=6, kernel=(3, 3), padding=(1, 1, 1, 1), relu=True),
                GlobalAvgPool("g"),
            ),
            "q",
        )
    )
    res, out = shared_csim(net, "zcu102", "int8")
    assert res.analysis.engine.load_ports == 4
    assert out.bit_exact and out.vectors == 4, out.verdict
    src = (tmp_path / "p" / "src" / "p.cpp").read_text()
    assert "const fnas_wbeat_t *in4" in src and "in4[" in src
    if kind == "max":
        assert "POOL_V:" in src and (vector_pool_ii(net.info[1], 4), vector_pool_ii(net.info[1])) == (2, 3)
    assert "p(fmap_b, fmap_b2, fmap_b3, fmap_b4, " in (tmp_path / "p" / "src" / "q_top.cpp").read_text()
