"""The shared engine's depthwise unit (DW_COMPUTE): how many columns it takes, which layers run on it,
what it costs (``model.shared_engine`` runs it inside COMPUTE's step)."""

from __future__ import annotations

from typing import NamedTuple

from fnas_hls.model import resource_model as rm
from fnas_hls.model.geometry import ConvGeometry
from fnas_hls.precision import Precision
from fnas_hls.resources import MacCost, Resources

#: Output columns of a channel DW_COMPUTE takes at once, at most. A 3x3 depthwise layer computes 9
#: taps a word it loads; LOAD_IN brings two channels of B words a cycle (four with four load ports,
#: ``model.shared_fabric.LOAD_PORT_OPTIONS``), so the diagonal's D channels at one column a cycle
#: compute about 9*D/(2*B) times longer than they load (18x at D = 32, B = 8; 4.5x at B = 16 with four
#: ports). The columns are capped at half a beat (``dw_columns``), so 8 take effect at beats of 16
#: words or more (int8 on 128-bit ports; any precision on vc707's 512-bit ports). Measured, the
#: engine DSE choosing the engine around it each time: 8 against 4 took MobileNetV2 1.0/224 int8 on
#: zcu104 from 3.75 to 3.55 ms, MobileNetV2 0.35/96 from 0.908 to 0.873 ms, and each of ten
#: Accel-NASBench MnasNets on zcu102 3% to 22% faster (their 5x5 depthwise layers compute 25 taps a
#: word), the unit's LUTs taken from the engine's.
DW_COLS = 8
#: The largest column stride DW_COMPUTE takes: P lanes of stride S read words x .. x + (P-1)*S of
#: one window row, which must fall in one beat's sub-banks (P <= B/2 at stride 2).
DW_MAX_STRIDE = 2


def dw_columns(beat: int, acc_banks: int) -> int:
    """DW_COMPUTE's columns an iteration (P): ``DW_COLS``, at most half a beat (a stride-2 layer's
    lanes read distinct sub-banks) and at most the accumulators' sub-banks (each column its own);
    1 where that leaves fewer than two (no DW_COMPUTE: depthwise layers on COMPUTE's diagonal)."""
    p = min(DW_COLS, beat // 2, acc_banks)
    return p if p >= 2 else 1


def on_dw_unit(g: ConvGeometry, cols: int) -> bool:
    """Whether layer ``g`` runs on DW_COMPUTE of ``cols`` columns (``dw_columns``)."""
    return g.dw and cols > 1 and g.Sw <= DW_MAX_STRIDE


class DepthwiseUse(NamedTuple):
    """How an engine runs the depthwise layers of a network (``depthwise_use``)."""

    cols: int  # DW_COMPUTE's columns an iteration (1: no DW_COMPUTE)
    unit: tuple[bool, ...]  # per layer: on DW_COMPUTE
    dw: bool  # some layer is depthwise (LOAD_WD)
    diag: bool  # some depthwise layer runs on COMPUTE's diagonal (its select there)


def depthwise_use(geoms: list[ConvGeometry], beat: int, acc_banks: int) -> DepthwiseUse:
    """Which of ``geoms`` run on DW_COMPUTE at ``dw_columns(beat, acc_banks)`` columns, and which
    depthwise parts the engine therefore has."""
    cols = dw_columns(beat, acc_banks)
    unit = tuple(on_dw_unit(g, cols) for g in geoms)
    return DepthwiseUse(
        cols if any(unit) else 1,
        unit,
        any(g.dw for g in geoms),
        any(g.dw and not u for g, u in zip(geoms, unit, strict=True)),
    )


def dw_unit_resources(D, cols: int, prec: Precision, mac: MacCost, beat: int, acc_banks: int) -> Resources:
    """DW_COMPUTE's D x P MACs (P = ``cols``; the P lanes of a channel share its weight, so int8
    pairs them in a DSP48E2 as ``MacCost`` says) and their fabric: each lane's word out of its
    channel's ``beat`` sub-banks, its accumulator out of the ``acc_banks``/P sub-banks its column can
    fall in, and each of the D channels' accumulator sub-banks written by COMPUTE or by it (a select
    of the data). None for ``cols`` 1."""
    if cols <= 1:
        return Resources()
    lanes = D * cols
    lut = lanes * (
        rm.LUT_PER_MAC[prec.name]
        + rm.select_luts(beat, prec.bits)
        + rm.select_luts(acc_banks // cols, prec.acc_bits)
    ) + D * acc_banks * rm.select_luts(2, prec.acc_bits)
    return Resources(dsp=mac.dsps(cols, D), lut=lut, ff=lanes * rm.FF_PER_MAC[prec.name])
