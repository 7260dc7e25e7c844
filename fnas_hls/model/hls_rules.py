"""How Vivado HLS / Vitis HLS count cycles: the loop rules and every csynth constant, in one place.

The performance model (``model/sequential.py``) builds each kernel's latency from these functions only,
and ``tests/test_hls_rules.py`` holds them to the real synthesis reports in
``../shared/fixtures/hls_reports/``. In csynth's own counting:

* a pipelined loop of ``trip`` iterations at initiation interval ``ii`` and pipeline ``depth``
  takes ``(trip - 1) * ii + depth - 1`` cycles;
* a sequential (not pipelined) loop takes ``trip * iteration_latency``;
* a function (module) takes its body plus a small entry/exit constant;
* stages that run side by side (ping-pong buffers) take the max of their parts.

The achieved II of a pipelined loop is the largest of the target II, the memory-port bound
(accesses per iteration to one BRAM bank over its ports) and the recurrence bound (latency of a
loop-carried dependence over its distance in iterations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --- csynth constants -------------------------------------------------------------------------
#: Cycles a module adds around its body (ap_start to ap_done): a module whose body is one
#: *pipelined* loop reports the loop's latency plus this (every such module in the fixture
#: reports does, in Vivado HLS 2019.2 and Vitis HLS 2022.1 and 2024.2, Pipeline_* modules
#: included). A body that is one *sequential* loop adds SEQUENTIAL_FUNCTION_OVERHEAD instead.
FUNCTION_OVERHEAD = 2
#: Ports of one block-RAM bank (true dual port).
BRAM_PORTS = 2
#: Reads one m_axi adapter issues per cycle (one AXI read channel; writes have their own).
MAXI_PORTS = 1

# --- depths of the pipelines in our own templates (templates/<style>/*.cpp.j2) ------------------------
# These are the pipeline depths csynth gives the loops that fnas-hls renders; they are our
# estimates until a synthesis report says otherwise (``fnas-hls compare`` checks them).
#: m_axi latency the rendered design declares: ``latency=`` on every ``#pragma HLS INTERFACE
#: m_axi`` of the top function (templates/sequential/top.cpp.j2), which Vivado HLS 2019.2 and
#: Vitis HLS both accept; 64 is Vitis HLS's own default (UG1399 2020.2, "Options for Controlling
#: AXI4 Burst Behavior": "Default latency in Vitis HLS is 64"). The one setting covers reads and
#: writes alike: the design issues a request this many cycles before the data (a read) or the
#: write response is expected (same section), so a pipeline that waits for either is this much deeper.
MAXI_LATENCY = 64
#: The read side's name for MAXI_LATENCY (model/dataflow.py uses it).
MAXI_READ_LATENCY = MAXI_LATENCY
#: Depth, at m_axi latency 0, of a pipelined II-1 loop that moves one word per iteration through
#: an m_axi port under a condition (zero padding, edge tiles), so that csynth infers no burst. The
#: fixture reports show every such loop, all at m_axi latency 0 (the "Latency" column of each
#: csynth.rpt's M_AXI table), and name them in "Inferred Bursts and Widening Missed" as "Access
#: load/store is in the conditional branch" (tests/test_sequential_csynth.py finds them by that):
#:
#: * loads: 13 in Ritarka__8893Lab2/{PartB_baseline,PartC_optimized}/csynth.rpt and
#:   tiled_conv_Pipeline_INPUT_BUFFER_DEPTH_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH_csynth.xml;
#:   15 in sharc-lab__FPGA_ECE8893/csynth.rpt (tiled_conv_L1_Pipeline_INPUT_BUFFER_HEIGHT_INPUT_
#:   BUFFER_WIDTH and tiled_conv_L2_Pipeline_INPUT_BUFFER_DEPTH_INPUT_BUFFER_HEIGHT_INPUT_BUFFER_WIDTH).
#:   The 13 split as 4 address stages, 7 of read request and 1 of read data at latency 0, and
#:   1 BRAM write (Ritarka/8893Lab2 fdffcca, PartB/proj/solution1/.autopilot/db/
#:   tiled_conv_Pipeline_INPUT_BUFFER_..._WIDTH.verbose.sched.rpt).
#: * stores: 22 in Ritarka__8893Lab2/{PartB_baseline,PartC_optimized}/csynth.rpt and
#:   tiled_conv_Pipeline_OUTPUT_BUFFER_DEPTH_OUTPUT_BUFFER_HEIGHT_OUTPUT_BUFFER_WIDTH_csynth.xml;
#:   24 (tiled_conv_L1_Pipeline_OUTPUT_BUFFER_...) and 12 (tiled_conv_L2_Pipeline_OUTPUT_BUFFER_...)
#:   in sharc-lab__FPGA_ECE8893/csynth.rpt. The 22 split as 15 of index and address arithmetic
#:   (a 15-cycle urem by the tile width that csynth adds for a row-wise burst), 1 write request,
#:   1 write and 5 of write response at latency 0 (same .autopilot folder, the OUTPUT_BUFFER module's
#:   verbose.sched.rpt); the 12 stores an 8x4x4 tile, powers of two, where a urem is a bit mask.
#:
#: Our LOAD_IN / LOAD_W (address from run-time tile origins times constant map sizes, the
#: bound checks, the m_axi read, the zero select, the BRAM write) do what these loops do, and
#: STORE does more (accumulator read, round, shift, ReLU, clamp, three bound checks; csynth may
#: add the same row-burst divider, as TC is rarely a power of two), so each takes the deepest
#: fixture loop of its kind (the shallowest fixture loops are 2 and 12 cycles less).
MAXI_COND_LOAD_DEPTH_AT_LATENCY_0 = 15
MAXI_COND_STORE_DEPTH_AT_LATENCY_0 = 24
#: Depth of a tile-load loop (LOAD_IN, LOAD_W): the fixtures' depth at latency 0 plus the
#: MAXI_LATENCY cycles the read now waits for its data.
LOAD_DEPTH = MAXI_COND_LOAD_DEPTH_AT_LATENCY_0 + MAXI_LATENCY
#: Depth of the tile-store loop (STORE): the fixtures' depth at latency 0 plus the MAXI_LATENCY
#: cycles the write response now takes (each non-burst write waits for its response in the pipeline).
STORE_DEPTH = MAXI_COND_STORE_DEPTH_AT_LATENCY_0 + MAXI_LATENCY
#: Latency of one fixed-point multiply on a DSP48 (registered), and of one adder stage.
FIXED_MUL_LATENCY = 3
FIXED_ADD_LATENCY = 1
#: Latency of a float32 multiply and add (Xilinx floating-point cores at 100-200 MHz).
FLOAT_MUL_LATENCY = 4
FLOAT_ADD_LATENCY = 5
#: Latency of a float32 compare (max pooling in float).
FLOAT_CMP_LATENCY = 2
#: Cycles to read a value from an on-chip buffer (BRAM or LUTRAM) inside a pipeline.
BUFFER_READ_LATENCY = 1
#: A stage for selecting, at a run-time offset, one word out of a beat's or a row of sub-banks'
#: words (a multiplexer of up to 64 ways at the clocks the boards run: our estimate).
SELECT_DEPTH = 1
#: Depth of the loop that writes the bias into a tile's accumulators.
INIT_DEPTH = 2
#: Stages an add or concat spends after its reads: round, shift, ReLU, saturate (our estimate).
REQUANT_DEPTH = 2


def act_depth(kind: str, mul_latency: int, add_latency: int) -> int:
    """Stages an output activation other than ReLU (``kind``; '' for none or a ReLU) adds to the
    store stage it is fused into (templates/act.j2's ``fnas_activate``): compares for ``clip``,
    a multiply for ``leaky_relu``, a multiply and an add for ``hard_sigmoid``, one more multiply
    for ``hard_swish``; the tables: the index (an add and a shift, or an add and a multiply in
    float32), a buffer read and the interpolation (a subtract, a multiply, an add), and SiLU's
    multiply by its input. Our estimates, from the operators' latencies: no synthesis report in
    the fixtures has an activation yet (``fnas-hls compare`` checks them where one does)."""
    if not kind:
        return 0
    if kind == "clip":
        return 1
    if kind == "leaky_relu":
        return mul_latency + 1
    if kind == "hard_sigmoid":
        return mul_latency + add_latency + 1
    if kind == "hard_swish":
        return 2 * mul_latency + add_latency + 1
    table = add_latency + mul_latency + BUFFER_READ_LATENCY + 2 * add_latency + mul_latency
    return table + (mul_latency if kind == "silu" else 1)


# --- further csynth constants measured on the fixture reports (tests/test_hls_rules.py) -------
#: A module whose body is one sequential (not pipelined) loop reports the loop's latency plus
#: this, one cycle less than FUNCTION_OVERHEAD (csynth's pipelined-loop latency already leaves
#: out one cycle, the ``- 1`` of ``pipelined_loop``). Seen in store_output and compute_output
#: (Vivado HLS 2019.2) and tiled_conv, tiled_conv_L1 and tiled_conv_L2 (Vitis HLS 2022.1).
SEQUENTIAL_FUNCTION_OVERHEAD = 1
#: Each sub-loop or sub-module call that a sequential loop's iteration runs one after another
#: costs its own latency (a call: the callee module's latency) plus this. Exact where the body
#: holds nothing else (Vivado HLS 2019.2, Vitis HLS 2022.1 and 2024.2 alike); any other work in
#: the body adds to it. Vitis runs calls without a data dependence side by side (loads next
#: to each other), and those cost ``overlapped`` of them, not their sum.
SEQUENTIAL_BLOCK_OVERHEAD = 2
#: Vitis HLS (2022.1 and 2024.2) reports a top function's interval as its latency plus this.
#: (Sub-modules of Vitis HLS 2022.1 and modules of Vivado HLS 2019.2 report interval = latency.)
TOP_INTERVAL_OVERHEAD = 1


# --- the dataflow style (templates/dataflow/, model/dataflow.py) --------------------------------
#: Depth of a line-buffer fill step: FIFO read, pad select, line-buffer write (our estimate).
DF_FILL_DEPTH = 3
#: Depth of an output step: row-buffer read, FIFO write (our estimate).
DF_WRITE_DEPTH = 2
#: Stages a conv's MAC step adds after the accumulate: requantize (round, shift, ReLU, saturate)
#: and the row-buffer write (our estimate).
DF_REQUANT_DEPTH = 2
#: Depth of the region's input and output movers around their m_axi burst (our estimate); each
#: adds MAXI_LATENCY once per burst, not per word: the reader for its first beat, the writer for
#: the response to its last.
DF_MOVER_DEPTH = 4
#: Words a stream FIFO holds beyond the occupancy the schedule derives: one for the cycle between
#: a write and the read that frees it, one for the pipelines' rounding of burst ends.
FIFO_MARGIN = 2
#: A stream FIFO is a shift register (SRL, in LUTs) where it holds at most this many bits (depth x
#: width) or is at most this deep, else a memory (UG1399 "config_storage": fifo impl auto,
#: auto_srl_max_bits 1024 and auto_srl_max_depth 2 by default).
FIFO_SRL_MAX_BITS = 1024
FIFO_SRL_MAX_DEPTH = 2
#: Words one LUT of an SRL FIFO holds per bit (an SRLC32E).
SRL_DEPTH_PER_LUT = 32


def dataflow_region_csynth(process_latencies: list[int]) -> tuple[int, int]:
    """What csynth *reports* for a DATAFLOW region of processes: (latency, interval).

    csynth does not model the overlap of stream-connected processes: it reports the region's
    latency as the sum of its processes' latencies and its interval as the largest of them
    (AMD Vitis HLS tutorial XD261, "Version 3 Performance": "Its Latency is 2114 which is the sum
    of all the latencies of its subfunctions/processes", "The II ... is matching the longest II
    of its subfunctions/processes"; Xilinx/Vitis-HLS-Introductory-Examples#8: "the synthesis
    report will not show the effects of the dataflow optimization"). The latency one image
    really takes comes from co-simulation, and the model's stream schedule predicts that.
    """
    return sum(process_latencies), max(process_latencies, default=0)


def pipelined_loop(trip: int, ii: int, depth: int) -> int:
    """Latency of a pipelined loop in csynth's counting: ``(trip - 1) * ii + depth - 1``.

    Works element-wise on numpy arrays too (the DSE evaluates whole grids of tilings at once).
    Every fixture loop of depth >= 2 follows it to the cycle; Vitis HLS 2024.2 reports a one-stage
    (depth 1) pipeline as ``trip * ii``, one cycle more (fnas-hls renders no such loop).
    """
    if not (type(trip) is int and type(ii) is int and type(depth) is int) and (
        np.ndim(trip) or np.ndim(ii) or np.ndim(depth)
    ):
        return np.where(np.asarray(trip) > 0, (np.asarray(trip) - 1) * ii + depth - 1, 0)
    if trip <= 0:
        return 0
    if ii < 1 or depth < 1:
        raise ValueError(f"pipelined loop needs ii >= 1 and depth >= 1, got ii={ii}, depth={depth}")
    return (trip - 1) * ii + depth - 1


def sequential_loop(trip: int, iteration_latency: int) -> int:
    """Latency of a loop that is not pipelined: ``trip * iteration_latency`` (element-wise on arrays)."""
    if np.ndim(trip) or np.ndim(iteration_latency):
        return np.where(np.asarray(trip) > 0, np.asarray(trip) * iteration_latency, 0)
    if trip <= 0:
        return 0
    return trip * iteration_latency


def function_latency(body: int) -> int:
    """Latency of a module (function) whose body takes ``body`` cycles."""
    return body + FUNCTION_OVERHEAD


def sequential_function_latency(body: int) -> int:
    """Latency of a module whose body is one sequential loop taking ``body`` cycles."""
    return body + SEQUENTIAL_FUNCTION_OVERHEAD


def sequential_block(latency: int) -> int:
    """What one sub-loop or call (or one group of calls run side by side) adds to the iteration
    of a sequential loop, or to a function body that runs such blocks one after another."""
    return latency + SEQUENTIAL_BLOCK_OVERHEAD


def overlapped(*stages: int) -> int:
    """Stages that run side by side (ping-pong loads beside compute) take the longest of them."""
    if any(np.ndim(s) for s in stages):
        return np.maximum.reduce(np.broadcast_arrays(*stages))
    return max(stages) if stages else 0


def ii_memory_bound(accesses_per_bank: int, ports: int = BRAM_PORTS) -> int:
    """II forced by ``accesses_per_bank`` reads/writes to one memory bank in each iteration."""
    return max(1, -(-accesses_per_bank // ports))


def ii_recurrence_bound(dependence_latency: int, distance: int) -> int:
    """II forced by a loop-carried dependence: ``dependence_latency`` cycles over ``distance`` iterations."""
    if np.any(np.asarray(distance) <= 0):
        raise ValueError("dependence distance must be positive")
    if np.ndim(distance) or np.ndim(dependence_latency):
        return np.maximum(1, -(-np.asarray(dependence_latency) // np.asarray(distance)))
    return max(1, -(-dependence_latency // distance))


def achieved_ii(target: int = 1, *bounds: int) -> int:
    """The II HLS reaches: the target or the tightest structural bound, whichever is larger."""
    if any(np.ndim(b) for b in bounds):
        return np.maximum.reduce(np.broadcast_arrays(target, *bounds))
    return max((target, *bounds))


@dataclass(frozen=True)
class PipelinedLoop:
    """One pipelined loop as the model sees it (the same fields csynth reports)."""

    label: str
    trip: int
    ii: int
    depth: int

    @property
    def latency(self) -> int:
        return pipelined_loop(self.trip, self.ii, self.depth)


@dataclass(frozen=True)
class SequentialLoop:
    """One loop that is not pipelined: ``trip`` iterations of ``iteration_latency`` cycles."""

    label: str
    trip: int
    iteration_latency: int

    @property
    def latency(self) -> int:
        return sequential_loop(self.trip, self.iteration_latency)
