"""The performance model: the FNAS formula, the conv element's loop nest by hand, and consistency."""

from __future__ import annotations

import numpy as np
import pytest

from fnas_hls.boards import load_board
from fnas_hls.model import hls_rules as rules
from fnas_hls.model import resource_model as rm
from fnas_hls.model.geometry import ConvGeometry
from fnas_hls.model.resource_model import bram18k
from fnas_hls.model.sequential import conv_cost, conv_terms, fnas_cycles, layer_cost
from fnas_hls.model.tiling import Tiling
from fnas_hls.network.arch import parse_network_yaml
from fnas_hls.precision import get_precision
from fnas_hls.resources import MacCost

FIXED = get_precision("fixed16")
FLOAT = get_precision("float32")


def test_fnas_formula_known_vector():
    # M=128, N=192, R=C=13, K=1, S=1; Tm=64, Tn=4, Tr=Tc=13; W_p=2, I_p=16, O_p=2 -> 16,224 cycles.
    g = ConvGeometry(1, 128, 192, 13, 13, 1, 1)
    assert fnas_cycles(g, Tiling(64, 4, 13, 13), i_p=16, w_p=2, o_p=2) == 16_224


def test_fnas_formula_uses_min_of_tile_and_dimension():
    g = ConvGeometry(1, 10, 3, 5, 5, 3, 3)
    small = fnas_cycles(g, Tiling(10, 3, 5, 5))
    # Tiles larger than the layer cost the same in tI/tO as the layer itself (hotNAS).
    t_i = 3 * 7 * 7
    t_w = 10 * 3 * 9
    t_comp = 9 * 25
    t_o = 10 * 25
    assert small == max(max(t_i, t_w, t_comp), t_o)


def test_conv_loop_nest_by_hand():
    """A 3x3 conv, M=4, N=3, 6x6 output, tiled 2/2/3/3: every loop from the rules by hand."""
    g = ConvGeometry(1, 4, 3, 6, 6, 3, 3)
    k = conv_terms(g, 2, 2, 3, 3, FIXED, MacCost())
    tiles = 1 * 2 * 2 * 2  # ceil(6/3) * ceil(6/3) * ceil(4/2)
    n_in = 2  # ceil(3/2)
    load_in = (2 * 5 * 5 - 1) + rules.LOAD_DEPTH - 1  # Tn * ((Tr-1)+K) * ((Tc-1)+K), II 1
    load_w = (2 * 2 * 9 - 1) + rules.LOAD_DEPTH - 1
    depth = rules.BUFFER_READ_LATENCY + FIXED.mul_latency + 1 * FIXED.add_latency + FIXED.add_latency + 1
    # accumulator revisited every Tr*Tc = 9 iterations; dependence read+add+write = 3 cycles -> II 1
    compute = (9 * 9 - 1) * 1 + depth - 1
    init = (9 - 1) + rules.INIT_DEPTH - 1
    store = (2 * 9 - 1) + rules.STORE_DEPTH - 1
    f = rules.FUNCTION_OVERHEAD
    blk = rules.SEQUENTIAL_BLOCK_OVERHEAD  # each block run in sequence in a sequential loop's body
    stage = max(compute + f, load_in + f, load_w + f) + blk  # the calls of one TILE_IN iteration overlap
    # the prologue's init and first loads share one block with no dependence: they overlap too
    prologue = max(init + f, load_in + f, load_w + f) + blk
    tile_iteration = prologue + (n_in * stage + blk) + (store + f + blk)
    assert (k.tiles, k.n_in) == (tiles, n_in)
    assert (k.load_in, k.load_w, k.compute, k.init, k.store) == (load_in, load_w, compute, init, store)
    assert k.compute_depth == depth and k.compute_ii == 1
    assert k.tile_iteration == tile_iteration
    assert k.cycles == tiles * tile_iteration + rules.SEQUENTIAL_FUNCTION_OVERHEAD
    assert k.compute_cycles == tiles * n_in * compute
    assert k.dsp == 4
    # words: per tile, n_in * (input tile + weight tile) loads, then one output tile stored
    assert k.ddr_words == tiles * (n_in * (50 + 36) + 18)


def test_single_input_tile_has_no_tile_in_loop():
    g = ConvGeometry(1, 4, 2, 6, 6, 3, 3)
    k = conv_terms(g, 4, 2, 6, 6, FIXED, MacCost())
    assert k.n_in == 1
    assert k.tile_in == k.compute + rules.FUNCTION_OVERHEAD


def test_small_spatial_tile_raises_compute_ii_by_the_accumulator_recurrence():
    g = ConvGeometry(1, 4, 4, 6, 6, 3, 3)
    fixed = conv_terms(g, 1, 1, 1, 1, FIXED, MacCost())
    assert fixed.compute_ii == 3  # read + add + write = 3 cycles, revisited every iteration
    flt = conv_terms(g, 1, 1, 1, 2, FLOAT, MacCost(5))
    assert flt.compute_ii == -(-(rules.BUFFER_READ_LATENCY + FLOAT.add_latency + 1) // 2)
    # a 1x1 kernel never revisits an accumulator within one compute call
    assert conv_terms(ConvGeometry(1, 4, 4, 6, 6, 1, 1), 1, 1, 1, 1, FIXED, MacCost()).compute_ii == 1


def test_grid_evaluation_equals_scalar_evaluation():
    g = ConvGeometry(2, 6, 5, 7, 9, 3, 2, 2, 1)
    rng = np.random.default_rng(0)
    Tm = rng.integers(1, 7, 50)
    Tn = rng.integers(1, 6, 50)
    Tr = rng.integers(1, 8, 50)
    Tc = rng.integers(1, 10, 50)
    grid = conv_terms(g, Tm, Tn, Tr, Tc, FLOAT, MacCost(5))
    for i in range(50):
        one = conv_terms(g, int(Tm[i]), int(Tn[i]), int(Tr[i]), int(Tc[i]), FLOAT, MacCost(5))
        for name in one._fields:
            assert int(
                np.asarray(getattr(grid, name)).reshape(-1)[i]
                if np.ndim(getattr(grid, name))
                else getattr(grid, name)
            ) == int(getattr(one, name)), name


@pytest.mark.parametrize(
    ("depth", "width", "expected"),
    [
        (64, 16, 0),  # 1024 bits: LUTRAM
        (65, 16, 1),
        (1024, 16, 1),
        (1025, 16, 2),
        (512, 32, 1),
        (784, 32, 2),
        (2048, 9, 1),
        (100, 72, 2),
    ],
)
def test_bram18k_shapes(depth, width, expected):
    assert bram18k(depth, width) == expected


@pytest.mark.parametrize(
    ("depth", "width", "luts"),
    [
        (32, 6, 4),  # one RAM32M, simple dual port
        (9, 16, 12),  # three RAM32M: a 3x3 kernel's weights, 16 bits
        (33, 3, 4),  # one RAM64M
        (49, 16, 24),  # six RAM64M: a 7x7 kernel's weights
        (16, 64, 44),  # eleven RAM32M: 16 accumulators of 64 bits
        (128, 8, 2 * 4 * 3 + 8),  # two banks of three RAM64M, a 2:1 read multiplexer a bit
    ],
)
def test_lutram_luts(depth, width, luts):
    from fnas_hls.model.resource_model import lutram_luts

    assert lutram_luts(depth, width) == luts
    assert list(lutram_luts(np.array([depth, depth]), width)) == [luts, luts]


def test_a_memory_is_in_block_ram_or_luts_never_free():
    from fnas_hls.model.resource_model import LUTRAM_MAX_BITS, Memory, lutrom_luts

    for depth, width in ((1, 1), (9, 16), (64, 16), (65, 16), (512, 32), (16, 64)):
        for rom in (False, True):
            m = Memory("m", 3, depth, width, rom=rom)
            assert (m.bram18k > 0) != (m.lut > 0), (depth, width, rom)
            assert m.impl == ("lutram" if depth * width <= LUTRAM_MAX_BITS else "bram")
    assert Memory("bias", 4, 32, 32, rom=True).lut == 4 * lutrom_luts(32, 32) == 4 * 32


@pytest.mark.parametrize(
    "a,b,dsp_slice,dsps",
    [
        (16, 16, "DSP48E1", 1),  # one MAC
        (25, 18, "DSP48E1", 1),  # the ports' full width
        (26, 18, "DSP48E1", 2),
        (27, 18, "DSP48E2", 1),
        (32, 28, "DSP48E2", 4),  # a GAP's int32 sum times a 27-bit reciprocal and its sign
        (64, 28, "DSP48E2", 6),  # the same sum in int64: what the templates did before
        (18, 64, "DSP48E1", 3),  # the wider operand on the wider port
    ],
)
def test_a_wide_multiply_takes_the_partial_products_of_the_slices_ports(a, b, dsp_slice, dsps):
    assert rm.mul_dsps(a, b, dsp_slice) == dsps == rm.mul_dsps(b, a, dsp_slice)


def test_an_average_counts_the_dsps_of_its_sum_times_its_reciprocal():
    from fnas_hls.backend.fixed_point import avg_multiplier, avg_sum_bits
    from fnas_hls.model.dataflow_process import gap_process
    from fnas_hls.model.sequential import gap_cost

    assert (
        avg_sum_bits(49, 16) == 32
        and avg_sum_bits(1 << 16, 16) == 64
        and avg_sum_bits(1 << 23, 8) == 32
        and avg_sum_bits(1 << 24, 8) == 64
    )
    assert int(avg_multiplier(49)).bit_length() == 27
    net = parse_network_yaml("""
input: [8, 7, 7]
layers:
  - {type: gap}
  - {type: fc, out: 4}
""")
    for board, want in (("pynq", 4), ("zcu102", 4)):
        b = load_board(board)
        assert rm.avg_dsps(49, 16, b.dsp_slice) == want
        assert gap_process(net.info[0], "gap", FIXED, b).resources.dsp == want
        assert gap_cost(net.info[0], "gap", b, FIXED).resources.dsp == want
    # leaving padding out of the count reads each window's reciprocal from an int64 table
    assert rm.avg_dsps(9, 16, "DSP48E1", table=True) == rm.mul_dsps(32, 64, "DSP48E1") == 6


def test_conv_cost_breakdown_and_resources():
    net = parse_network_yaml("""
input: [3, 16, 16]
layers:
  - {type: conv, out: 8, kernel: 3, padding: same, relu: true}
  - {type: maxpool, kernel: 2}
  - {type: gap}
  - {type: fc, out: 10}
""")
    board = load_board("pynq")
    c = conv_cost(net.info[0], "conv1", Tiling(4, 3, 8, 8), board, FIXED)
    names = [f.name for f in c.functions]
    assert names == ["conv1", "conv1_init", "conv1_load_in", "conv1_load_w", "conv1_compute", "conv1_store"]
    labels = {lp.label for f in c.functions for lp in f.loops}
    assert labels == {"TILE", "INIT", "LOAD_IN", "LOAD_W", "COMPUTE", "STORE"}  # ceil(3/3) = 1: no TILE_IN
    assert c.resources.dsp == 12
    # input 3 banks (one input-channel tile: no ping-pong half, as the template) of 10x10 x 16 bit
    # = 1600 bits -> 1 block each; weights 9x16 bits in LUTRAM, accumulators 4 banks of 64 x 64 bit
    # -> 2 blocks (36 bits wide) each, bias ROM 4 banks of 2 x 32 bits in LUTRAM
    assert c.resources.bram18k == 3 * 1 + 0 + 4 * 2 + 0
    # LUTs: the element's logic, and the weight banks (12 of 9 x 16 bits: 3 RAM32M each) and the
    # bias ROM's 4 banks (a LUT a bit) in LUTs
    logic = rm.LUT_PER_LAYER + 3 * rm.LUT_PER_AXI_PORT + 12 * rm.LUT_PER_MAC["fixed16"]
    assert c.resources.lut == logic + 12 * 12 + 4 * 32
    # 2x2 spatial tiles x 2 output tiles x 1 input tile, each computing 9*64 iterations at II 1
    assert c.compute_cycles == 8 * (9 * 64 - 1 + c.functions[4].loops[0].depth - 1)
    assert c.fnas_cycles is not None and c.fnas_cycles > 0
    assert c.bound in ("compute", "memory", "ddr")
    fc = layer_cost(net.info[3], "fc1", Tiling(5, 8, 1, 1), board, FIXED)
    assert fc.resources.dsp == 40
    assert fc.functions[4].loops[0].trip == 1  # a 1x1 "conv" on a 1x1 map
    pool = layer_cost(net.info[1], "pool1", None, board, FIXED)
    assert pool.functions[0].loops[0].trip == 8 * 8 * 8 * 4
    assert pool.cycles == rules.function_latency(
        rules.pipelined_loop(8 * 8 * 8 * 4, 1, pool.functions[0].loops[0].depth)
    )
    gap = layer_cost(net.info[2], "gap1", None, board, get_precision("float32"))
    assert gap.functions[0].loops[0].ii == FLOAT.add_latency  # carried float sum


def test_float32_costs_five_dsps_per_mac():
    net = parse_network_yaml("input: [4, 8, 8]\nlayers:\n  - {type: conv, out: 4, kernel: 3}\n")
    c = conv_cost(net.info[0], "c", Tiling(2, 2, 6, 6), load_board("pynq"), FLOAT)
    assert c.resources.dsp == 2 * 2 * 5
