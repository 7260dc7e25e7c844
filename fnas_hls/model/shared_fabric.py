"""The shared engine's fabric outside its loops (``model.shared_engine`` holds the loops): its m_axi
ports (load, store, weight), the beat layout of its buffers (a window row's chunks, rows of whole
beats, the accumulators' sub-banks) and the LUTs of its logic but its memories'."""

from __future__ import annotations

import numpy as np

from fnas_hls.boards import Board
from fnas_hls.model import resource_model as rm
from fnas_hls.model.geometry import cdiv
from fnas_hls.precision import Precision

#: Input channels LOAD_IN reads at once, a beat of each a cycle, each through a load port of its own
#: (bundles gmem_fmb, gmem_fmb2, ... over the same buffers), as a board's several HP ports allow: the
#: least (``Engine.load_ports``' default, and the pooling units' where no engine's count is known).
LOAD_PORTS = 2
#: The engine's load ports the DSE chooses among (``Engine.load_ports``): four read twice the words a
#: cycle for two m_axi adapters more. ResNet-50's 1x1 stride-2 downsamplings read two words a column
#: for one they use, so two ports loaded twice as long as their steps computed; on ultra96v2's LUTs the
#: two adapters cost the engine more MACs than the loads save.
LOAD_PORT_OPTIONS = (2, 4)
#: Output words STORE writes a cycle: two output channels at once, each through a port of its own
#: (bundles gmem_out and gmem_out2; the fused adds read theirs through gmem_skip and gmem_skip2).
STORE_PORTS = 2
#: Weight beats LOAD_W reads a cycle: a tap's beats alternate between two ports of their own
#: (bundles gmem_w and gmem_w2 over the one weights buffer), so a tap of WB beats takes ceil(WB/2)
#: cycles; ResNet-50's 72x32 engine reads 144 beats a tap, more than a 7x7 map's 49 pixels compute.
W_PORTS = 2


def row_chunks(TCin, beat: int):
    """Chunks of ``beat`` words that hold one row of an input window of ``TCin`` words (the input
    buffer's row stride is that many whole chunks); element-wise on arrays."""
    return cdiv(TCin, beat)


def whole_beats(words, beat: int):
    """``words`` rounded up to whole beats of ``beat`` words (a row of a buffer or of a map kept in
    whole beats); element-wise on arrays."""
    return row_chunks(words, beat) * beat


def rows_begin_at_beats(aligned, Tc, C: int, Sw: int, beat: int):
    """Whether every window row of a layer's tiles begins at a beat: the layer is ``aligned``
    (``model.shared.aligned_layers``) and each column tile begins at a multiple of ``beat`` words
    (Tc*Sw a multiple of it) or the row is one tile; element-wise on arrays of Tc. LOAD_IN then reads
    a row's chunks alone (the descriptor's ALIGNED)."""
    return np.logical_and(aligned, ((Tc * Sw) % beat == 0) | (Tc >= C))


def accumulator_banks(beat: int, beats_out: bool) -> int:
    """Sub-banks of an output channel's accumulators: a beat's words where some layer stores whole
    beats (STORE_B reads a chunk of them in one cycle), else one."""
    return beat if beats_out else 1


def weight_ports(Tm, Tn, beat: int):
    """The weight ports an engine (Tm, Tn) has (Tm, Tn may be arrays): ``W_PORTS`` where a tap is
    more than one beat, else one (a second would never be read)."""
    w_beats = cdiv(Tm * Tn, beat)
    return np.where(w_beats > 1, W_PORTS, 1) if np.ndim(w_beats) else (W_PORTS if w_beats > 1 else 1)


def engine_ports(skip: bool = False, beats_out: bool = False, w_ports=W_PORTS, load_ports: int = LOAD_PORTS):
    """The engine's m_axi adapters: its ``load_ports`` load ports and its store ports, its ``w_ports``
    weight ports (``weight_ports``), the fused adds' skip ports, and with stores of whole beats
    (``beats_out``) their own store ports (and skip ports)."""
    return load_ports + STORE_PORTS + w_ports + skip * STORE_PORTS + beats_out * STORE_PORTS * (1 + skip)


def output_lanes(beat: int, words_out: bool = True, beats_out: bool = False) -> int:
    """Copies of the output stage (requantization, activation, fused add): a word a store port in
    STORE, ``beat`` words a store port in STORE_B."""
    return STORE_PORTS * (words_out + beat * beats_out)


def engine_logic_luts(
    Tm,
    Tn,
    prec: Precision,
    skip: bool = False,
    beat: int = 1,
    words_out: bool = True,
    beats_out: bool = False,
    dw: bool = False,
    dw_diag: bool = False,
    load_ports: int = LOAD_PORTS,
):
    """The engine's LUTs but its memories': control, its m_axi adapters (``engine_ports``, with
    ``load_ports`` load ports), the MACs' fabric, and the selections of a ``beat``-word port: each load
    port's words out of its last two
    beats (``beat`` ways a word); COMPUTE's word of each input channel, and its accumulator of each
    output channel, out of their ``beat`` sub-banks; the store's accumulator out of the Tm banks
    (a word a port in STORE, ``beat`` a port in STORE_B) and, in STORE, out of its sub-banks; the
    output stages' fabric (``output_lanes``); with depthwise layers (``dw``), each diagonal bank's
    write out of LOAD_W's lane or LOAD_WD's, and where one runs on COMPUTE's diagonal (``dw_diag``),
    each output channel's sum out of its adder tree or its diagonal product."""
    ports = engine_ports(skip, beats_out, weight_ports(Tm, Tn, beat), load_ports)
    acc, acc_banks = prec.acc_bits, accumulator_banks(beat, beats_out)
    select = (load_ports * beat + Tn) * rm.select_luts(beat, prec.bits) + Tm * rm.select_luts(acc_banks, acc)
    lanes = output_lanes(beat, words_out, beats_out)
    select = (
        select + lanes * rm.select_luts(Tm, acc) + words_out * STORE_PORTS * rm.select_luts(acc_banks, acc)
    )
    if dw:
        diagonal = np.minimum(Tm, Tn) if np.ndim(Tm) or np.ndim(Tn) else min(Tm, Tn)
        select = select + diagonal * rm.select_luts(2, prec.bits) + dw_diag * Tm * rm.select_luts(2, acc)
    return (
        rm.LUT_PER_LAYER
        + ports * rm.LUT_PER_AXI_PORT
        + Tm * Tn * rm.LUT_PER_MAC[prec.name]
        + select
        + lanes * rm.LUT_PER_OUTPUT_LANE
    )


def read_beats(board: Board) -> int:
    """Beats of the board's AXI width (the engine's ports') the processing system's HP ports read a
    cycle at the kernel clock, all together: every m_axi read port reaches DDR through them, so a
    step's LOAD_IN and LOAD_W (which run side by side) read at most that many beats a cycle between
    them (zcu102: four 128-bit ports, 4 beats a cycle: two load ports and two weight ports fill them,
    four load ports and two weight ports ask 6). 0 where the board has no processing system (the
    memory controller's bandwidth bounds it, the layers' ``ddr`` check)."""
    if board.ps is None:
        return 0
    return len(board.ps.hp_ports) * board.ps.hp_width_bits // board.axi_width_bits
