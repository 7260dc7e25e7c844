"""The dataflow style's model: loop counts by hand, the stream schedule against a word-level event
simulation of the kernels' control flow (``dataflow_sim``), FIFO depths, the DSE and the fit report."""

from __future__ import annotations

import numpy as np
import pytest
from dataflow_sim import analyze_and_simulate, simulate

from fnas_hls.boards import load_board
from fnas_hls.errors import FnasError
from fnas_hls.model import dataflow as df
from fnas_hls.model import dataflow_conv as dfc
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.names import design_names
from fnas_hls.precision import get_precision
from fnas_hls.resources import MacCost
from fnas_hls.search.space import load_space
from fnas_hls.styles import analyze

PYNQ = load_board("pynq")
FIXED = get_precision("fixed16")


def net(layers, shape, name="t"):
    return network_from_dict({"name": name, "input": shape, "layers": layers})


def test_conv_counts_by_hand():
    """conv 4->6 k3 same on 10x8, Pm=3, Pn=2: every trip of the loop nest, worked out by hand."""
    n = net([{"type": "conv", "out": 6, "kernel": 3, "padding": "same"}], [4, 10, 8])
    g = dfp.WindowGeometry.of(n.info[0])
    assert (g.wu, g.wq, g.lb_rows) == (10, 10, 4)  # (8-1)*1+3 = 10 padded columns, 3 + 1 rows
    # the conv's fills read real positions alone: PRIME the 2 real rows of the first 3 padded ones, each
    # ROW loop the next padded row where it is real (rows 0..7; 8 and 9 fill padding, none)
    assert g.real_prime == 2 * 8 * 4 and g.drain == 0
    assert [f for _, _, f, n in g.real_kernel_rows for _ in range(n)] == [1] * 8 + [0] * 2
    s = dfc.conv_stage(g, 3, 2, FIXED, MacCost())
    assert (s.MT, s.NT) == (2, 2)
    assert s.mac == 8 * 2 * 2 * 9  # C * MT * NT * Kh * Kw, the fullest row
    assert s.out == 8 * 6
    depth = s.row_depth

    def row(kernel_rows: int) -> tuple[int, int]:
        # Word k of a row is read at out_start + k; its group ends at ((c*MT + q) + 1) * B - 1,
        # B = NT*rows*Kw MAC steps a group.
        B = 2 * kernel_rows * 3
        need = max(((c * 2 + q) + 1) * B - 1 - (c * 6 + q * 3) for c in range(8) for q in range(2))
        return max(8 * 2 * B, need + depth + s.out, 8 * 4), need + depth

    full, start = row(3)
    assert (s.out_start, s.row_trip) == (start, full)
    # rows 0 and 9: one kernel row reads the padding above (below) the map, a step left out
    edge, _ = row(2)
    rows = dfc.conv_rows(g, dfp.Parallelism(3, 2), FIXED, MacCost())
    assert [(r.first_step, r.end_step, r.trip) for r in rows] == [(1, 3, edge)] + [(0, 3, full)] * 8 + [
        (0, 2, edge)
    ]
    assert edge < full
    prime = rules.pipelined_loop(64, 1, rules.DF_FILL_DEPTH)
    # the rows differ: each reads its counts from the tables before its ROW loop
    lead = rules.BUFFER_READ_LATENCY
    trips = [edge] + [full] * 8 + [edge]
    body = sum(rules.sequential_block(lead + rules.pipelined_loop(t, 1, depth)) for t in trips)
    assert s.cycles == rules.function_latency(rules.sequential_block(prime) + rules.sequential_block(body))
    # csynth reports the ROW loop at its largest trip, every row
    worst = 10 * rules.sequential_block(lead + rules.pipelined_loop(full, 1, depth))
    assert s.csynth == rules.function_latency(rules.sequential_block(prime) + rules.sequential_block(worst))
    assert s.dsp == 6
    # float32 takes every step (the reference model's sum, zero products and all)
    f32 = get_precision("float32")
    assert {(r.first_step, r.end_step) for r in dfc.conv_rows(g, dfp.Parallelism(3, 2), f32, MacCost())} == {
        (0, 3)
    }


def tables(s: dfc.ConvStage, rows: int) -> int:
    """LUTs of a conv's per-row tables (its rows differ), words as wide as its largest count needs."""
    width = int(dfc.table_bits(int(s.row_trip), int(s.mac), 3, 3))  # (3x3 kernels: 9 ROM rows a tile at most)
    return len(dfc.ROW_TABLES) * rm.lutrom_luts(rows, width) + dfc.ROW_CONTROL_LUTS


def test_conv_luts_count_its_small_memories_and_the_column_rotation():
    """The same conv, Pm=3, Pn=2: its ROMs and its row buffer fit banks of LUT ROM and distributed RAM,
    so each costs its LUTs (the line buffer's two banks of 80 words, 1,280 bits, are block RAM); with
    Pk=3 kernel columns a step, each column lane selects its line-buffer bank out of 3 where the stride
    moves it (none at Pk=2 over a stride of 2: column j is in bank j always). Every output lane has its
    requantization, and OUT selects its word's lane out of the row buffer's 3."""
    n = net([{"type": "conv", "out": 6, "kernel": 3, "padding": "same"}], [4, 10, 8])
    g = dfp.WindowGeometry.of(n.info[0])
    out = rm.select_luts(3, 16) + 3 * rm.LUT_PER_OUTPUT_LANE  # OUT's lane select, 3 output stages
    lut = rm.LUT_PER_LAYER + 6 * rm.LUT_PER_MAC["fixed16"] + out
    s = dfc.conv_stage(g, 3, 2, FIXED, MacCost())
    assert s.bram18k == s.bram_line == 2
    memories = (
        3 * 2 * rm.lutrom_luts(2 * 2 * 3 * 3, 16)  # the weight ROM, a bank a MAC: MT*NT*Kh*Kw words
        + 3 * rm.lutram_luts(8 * 2, 16)  # the row buffer, a bank an output lane: C*MT words
        + 3 * rm.lutrom_luts(2, rm.BIAS_BITS)  # the biases
        + tables(s, 10)  # the rows' tables: R words each, and their control
    )
    assert s.lut == lut + memories
    s3 = dfc.conv_stage(g, 3, 2, FIXED, MacCost(), Pk=3)
    rotate = 2 * 3 * rm.select_luts(3, 16)
    assert s3.lut == 18 * rm.LUT_PER_MAC["fixed16"] + rm.LUT_PER_LAYER + rotate + out + (
        3 * 2 * 3 * rm.lutrom_luts(2 * 2 * 3, 16)
        + 2 * 3 * rm.lutram_luts(4 * 4 * 2, 16)
        + 3 * rm.lutram_luts(8 * 2, 16)
        + 3 * rm.lutrom_luts(2, rm.BIAS_BITS)
        + tables(s3, 10)
    )
    strided = net([{"type": "conv", "out": 6, "kernel": 3, "stride": 2, "padding": "same"}], [4, 10, 8])
    g2 = dfp.WindowGeometry.of(strided.info[0])
    rows = lambda pk: 2 * pk * rm.lutram_luts(g2.lb_rows * -(-g2.wu // pk) * 2, 16)  # noqa: E731
    rest = 3 * rm.lutram_luts(g2.C * 2, 16) + 3 * rm.lutrom_luts(2, rm.BIAS_BITS) + rm.LUT_PER_LAYER + out
    rest += tables(dfc.conv_stage(g2, 3, 2, FIXED, MacCost(), Pk=3), g2.R)
    pk3 = dfc.conv_stage(g2, 3, 2, FIXED, MacCost(), Pk=3)  # stride 2, Pk 3: a bank that moves
    assert pk3.lut == 18 * rm.LUT_PER_MAC["fixed16"] + 18 * rm.lutrom_luts(2 * 2 * 3, 16) + rows(3) + rest + (
        2 * 3 * rm.select_luts(3, 16)
    )
    pk2 = dfc.conv_stage(g2, 3, 2, FIXED, MacCost(), Pk=2)  # stride 2, Pk 2: column j in bank j always
    assert pk2.lut == 12 * rm.LUT_PER_MAC["fixed16"] + 12 * rm.lutrom_luts(2 * 2 * 3 * 2, 16) + rows(2) + rest
    # a large layer's buffers are block RAM (no LUTs); its 16 rows of biases a lane stay LUT ROM
    big = net([{"type": "conv", "out": 64, "kernel": 3, "padding": "same"}], [64, 32, 32])
    sb = dfc.conv_stage(dfp.WindowGeometry.of(big.info[0]), 4, 4, FIXED, MacCost())
    assert sb.bram18k > 0
    assert sb.lut == rm.LUT_PER_LAYER + 16 * rm.LUT_PER_MAC["fixed16"] + 4 * rm.lutrom_luts(
        16, rm.BIAS_BITS
    ) + (rm.select_luts(4, 16) + 4 * rm.LUT_PER_OUTPUT_LANE) + tables(sb, 32)


def test_out_start_lets_every_word_be_computed_first():
    """For many shapes, the first OUT iteration is the least one after which every output word's
    MAC group has ended (brute force over every word)."""
    rng = np.random.default_rng(0)
    for _ in range(80):
        G, M, N = (int(rng.integers(1, 7)), int(rng.integers(1, 9)), int(rng.integers(1, 9)))
        K, C = int(rng.integers(1, 4)), int(rng.integers(1, 6))
        Pm, Pn, Pg = int(rng.integers(1, M + 1)), int(rng.integers(1, N + 1)), int(rng.integers(1, G + 1))
        g = dfp.WindowGeometry(G, M, N, 4, C, 4, C, K, K, 1, 1, 0, 0)
        MT, NT, GT = -(-M // Pm), -(-N // Pn), -(-G // Pg)
        B = NT * K * K
        # the MAC steps of pixel c run group tiles g // Pg, then lane blocks m // Pm, B steps each
        worst = max(
            ((c * GT + gi // Pg) * MT + m // Pm + 1) * B - 1 - (c * G * M + gi * M + m)
            for c in range(C)
            for gi in range(G)
            for m in range(M)
        )
        assert dfc.out_start(g, Pm, MT, NT, 7, 1, Pg=Pg) == worst + 7, (G, M, N, K, C, Pm, Pn, Pg)


NETS = {
    "chain": (
        [3, 12, 11],
        [
            {"type": "conv", "out": 8, "kernel": 3, "padding": "same", "relu": True},
            {"type": "maxpool", "kernel": 2, "stride": 2},
            {"type": "conv", "out": 6, "kernel": 3, "stride": 2, "padding": 1, "relu": True},
            {"type": "gap"},
            {"type": "fc", "out": 5},
        ],
    ),
    "k5_flatten_fc": (
        [1, 14, 14],
        [
            {"type": "conv", "out": 9, "kernel": 5, "padding": "same", "relu": True},
            {"type": "conv", "out": 12, "kernel": 5, "padding": "same", "relu": True},
            {"type": "maxpool", "kernel": 2, "stride": 2},
            {"type": "flatten"},
            {"type": "fc", "out": 10},
        ],
    ),
    "k11_s4_valid_drain": (
        [3, 27, 25],
        [
            {"type": "conv", "out": 5, "kernel": 11, "stride": 4, "padding": "valid", "relu": True},
            {"type": "conv", "out": 6, "kernel": 3, "padding": "valid", "relu": True},
            {"type": "gap"},
        ],
    ),
    "groups_avgpool": (
        [6, 9, 8],
        [
            {"type": "conv", "out": 6, "kernel": 3, "padding": "same", "groups": 3, "relu": True},
            {"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1},
            {"type": "fc", "out": 4},
        ],
    ),
}


@pytest.mark.parametrize("precision", ["fixed16", "float32"])
@pytest.mark.parametrize("case", sorted(NETS))
def test_schedule_against_event_simulation(case, precision):
    """The model's latency is the simulated one or a little above (it is conservative where a
    write follows a stalled read inside one loop), and no FIFO ever holds more than its depth."""
    shape, layers = NETS[case]
    _, reg, sim = analyze_and_simulate(net(layers, shape, case), load_board("zcu102"), precision)
    assert reg.schedule.latency >= sim.latency
    assert reg.schedule.latency <= sim.latency * 1.03 + 10
    for model_end, sim_end in zip(reg.schedule.ends, sim.ends, strict=True):
        assert model_end >= sim_end
    assert len(sim.peaks) == len(reg.schedule.fifo_depths)
    for peak, depth in zip(sim.peaks, reg.schedule.fifo_depths, strict=True):
        assert peak <= depth


def test_schedule_on_a_search_space_sample():
    """Four 28x28 layers of FNAS's MNIST space: the pipelined region against the simulation."""
    sp = load_space("fnas-mnist")
    n = sp.build((0, 0, 1, 1, 0, 2, 1, 0))
    a = analyze(n, PYNQ, style="dataflow")
    par = {lc.name: lc.tiling for lc in a.layers if lc.tiling is not None}
    cnames, top = design_names([li.name for li in n.info], n.name)
    reg = df.region(list(n.info), cnames, top, par, FIXED, PYNQ, cap=max(s.width for s in a.streams))
    sim = simulate(list(n.info), reg, par, FIXED, 4)
    assert sim.latency <= reg.schedule.latency <= sim.latency * 1.03
    assert all(p <= d for p, d in zip(sim.peaks, reg.schedule.fifo_depths, strict=True))
    # All layers at once: far below the sum of the processes (what csynth reports).
    assert a.latency_cycles < 0.8 * a.csynth_latency_cycles
    assert a.interval_cycles == max(p.cycles for p in reg.processes)


def test_csynth_region_rule():
    assert rules.dataflow_region_csynth([10, 30, 20]) == (60, 30)


@pytest.mark.parametrize("bram", [400, 60, 25])
def test_dse_finds_the_least_interval_by_brute_force(bram):
    """Without the latency refinement the DSE's interval is the least any choice of the layers'
    Pareto designs reaches within the DSP and BRAM room (brute force over every combination)."""
    import itertools

    from fnas_hls.dse.dataflow import choose_parallelism, stage_front
    from fnas_hls.resources import MacCost, Resources

    n = net(
        [
            {"type": "conv", "out": 6, "kernel": 3, "padding": "same"},
            {"type": "conv", "out": 8, "kernel": 5, "padding": "same"},
            {"type": "fc", "out": 4},
        ],
        [2, 10, 10],
    )
    geoms = {li.name: dfp.WindowGeometry.of(li) for li in n.info if li.layer.op in ("conv", "fc")}
    room = Resources(dsp=60, bram18k=bram, lut=10**6, ff=10**6)
    got = choose_parallelism(geoms, FIXED, MacCost(), room)
    fronts = [stage_front(g, FIXED, MacCost()) for g in geoms.values()]
    best = None
    for picks in itertools.product(*(range(len(f)) for f in fronts)):
        dsp = sum(int(f.dsp[j]) for f, j in zip(fronts, picks, strict=True))
        br = sum(int(f.bram18k[j]) for f, j in zip(fronts, picks, strict=True))
        if dsp <= room.dsp and br <= room.bram18k:
            interval = max(int(f.cycles[j]) for f, j in zip(fronts, picks, strict=True))
            best = interval if best is None else min(best, interval)
    assert best is not None and got.fits
    assert got.interval == best
    assert got.resources.dsp <= room.dsp and got.resources.bram18k <= room.bram18k


def test_latency_refinement_never_loses_to_the_least_interval_design():
    """The latency-aware design is kept only where it fits and its scheduled latency is below the
    least-interval design's (the analysis schedules both); on this sample it helps somewhere."""
    from fnas_hls.styles.dataflow import _analyze_dataflow

    sp = load_space("fnas-mnist")
    archs = list(sp.architectures())
    gained = 0
    for choice in archs[:: len(archs) // 12]:
        n = sp.build(choice)
        a = analyze(n, PYNQ, style="dataflow")
        base = _analyze_dataflow(n, PYNQ, FIXED, None, (), latency_refinement=False)
        if base.fits:
            assert a.fits and a.latency_cycles <= base.latency_cycles
            gained += a.latency_cycles < base.latency_cycles
        assert a.latency_cycles >= a.interval_cycles
    assert gained


def test_dataflow_beats_sequential_on_the_mnist_cnn():
    from fnas_hls.network.arch import load_network_yaml

    n = load_network_yaml("examples/mnist-cnn.yaml")
    seq = analyze(n, PYNQ, style="sequential")
    dfl = analyze(n, PYNQ, style="dataflow")
    auto = analyze(n, PYNQ, style="auto")
    assert dfl.latency_cycles < seq.latency_cycles
    assert auto.style == "dataflow" and auto.latency_cycles == dfl.latency_cycles
    assert {s.style for s in auto.styles} == {"sequential", "dataflow", "shared"}


def test_too_big_for_chip_is_reported_by_buffer():
    """A layer whose weights cannot stay on chip: the analysis names the buffer and the excess."""
    big = {"type": "conv", "out": 64, "kernel": 7}
    n = net([{**big, "padding": "same"}, big], [64, 20, 20])
    a = analyze(n, PYNQ, style="dataflow")
    assert not a.fits
    assert "BRAM18K" in a.over_detail and "over" in a.over_detail
    assert "weight ROM" in a.over_detail and "layer 'conv" in a.over_detail
    auto = analyze(n, PYNQ, style="auto")
    assert auto.style in ("sequential", "shared") and auto.fits  # a style with its maps in DDR


def test_dataflow_refuses_host_layers_and_unread_maps():
    from dataclasses import replace

    from fnas_hls.network.ir import HostOp, Network, Shape

    chain = net([{"type": "conv", "out": 2, "kernel": 1}, {"type": "fc", "out": 3}], [1, 4, 4])
    assert analyze(chain, PYNQ, style="dataflow").style == "dataflow"
    host = Network(chain.input, (chain.layers[0], HostOp("sm", "Softmax", Shape(2, 4, 4))), name="h")
    with pytest.raises(FnasError, match="layer 'sm' \\(Softmax\\) runs on the host"):
        analyze(host, PYNQ, style="dataflow")
    assert analyze(host, PYNQ, style="auto").style in ("sequential", "shared")  # not dataflow
    # a layer whose map no later layer reads would leave its stream full: one line
    dead = Network(chain.input, (chain.layers[0], replace(chain.layers[1], inputs=("@input",))), name="b")
    assert not dead.is_chain
    with pytest.raises(FnasError, match=r"layer 'conv1': no layer reads its output; a dataflow region"):
        analyze(dead, PYNQ, style="dataflow")
    assert analyze(dead, PYNQ, style="auto").style in ("sequential", "shared")
    with pytest.raises(FnasError, match="unknown style 'fast'"):
        analyze(chain, PYNQ, style="fast")


def test_sequential_lower_bound_holds_so_auto_may_skip_it():
    """auto skips the sequential (or shared) analysis only where it provably loses: each bound is
    below every design's latency of its style, on a sample of both spaces and on several boards."""
    from fnas_hls.styles import sequential_lower_bound, shared_lower_bound

    for space_name, board_name in (("fnas-mnist", "pynq"), ("digits", "pynq"), ("digits", "zcu102")):
        sp = load_space(space_name)
        board = load_board(board_name)
        archs = list(sp.architectures())
        for choice in archs[:: len(archs) // 25]:
            n = sp.build(choice)
            seq = analyze(n, board, style="sequential")
            assert sequential_lower_bound(n, board, FIXED) <= seq.latency_cycles
            shared = analyze(n, board, style="shared")
            assert shared_lower_bound(n, board, FIXED) <= shared.latency_cycles
            auto = analyze(n, board, style="auto")
            every = (seq, analyze(n, board, style="dataflow"), shared)
            best = min((a for a in every if a.fits), key=lambda a: a.latency_cycles)
            assert auto.latency_cycles == best.latency_cycles and auto.style == best.style


def test_sweep_predicts_what_analyze_says():
    """The sweep's fast sequential prediction is the analysis's latency to the cycle, so that auto
    over a sweep and auto per network agree."""
    from fnas_hls.search.sweep import predict

    sp = load_space("fnas-mnist")
    archs = list(sp.architectures())
    for choice in archs[:: len(archs) // 20]:
        n = sp.build(choice)
        cycles, fits, style = predict(n, PYNQ, FIXED)
        a = analyze(n, PYNQ, style="sequential")
        assert (cycles, fits, style) == (a.latency_cycles, a.fits, "sequential")
        cycles, fits, style = predict(n, PYNQ, FIXED, style="auto")
        a = analyze(n, PYNQ, style="auto")
        assert (cycles, fits, style) == (a.latency_cycles, a.fits, a.style)
