"""What the templates render from: ``build_context`` turns the IR, the analysis (the DSE's tilings and the
performance model's breakdown) and the quantization plan into the one mapping every template of
``templates/`` reads, a pure function of the three. Beside it, the checks and names it needs:
``check_renderable`` (the layers the back end renders, one FnasError line otherwise),
``design_names`` (the C names), ``feature_map_places`` (where each map lives in DDR, places reused
once no later layer reads them; the dataflow style streams them instead). ``hls_writer`` renders
and writes the project.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from fnas_hls import __version__
from fnas_hls.analysis import Analysis
from fnas_hls.backend.activation import (
    MUL_SHIFT,
    TABLE_FRAC,
    TABLE_HALF_RANGE_BITS,
    TABLE_KINDS,
    TABLE_SEGMENT_BITS,
    V_MAX,
    V_MIN,
    FixedActivation,
    FloatActivation,
)
from fnas_hls.backend.c_literals import float_literal, row_list, rows
from fnas_hls.backend.fixed_point import (
    AVG_SHIFT,
    FLOAT32,
    DataType,
    avg_multiplier,
    avg_sum_bits,
    float_reciprocal,
)
from fnas_hls.backend.quantize import QuantPlan
from fnas_hls.backend.shared_context import map_layout
from fnas_hls.backend.storage import storage_bindings
from fnas_hls.errors import FnasError
from fnas_hls.model import hls_rules as rules
from fnas_hls.model.geometry import ConvGeometry, cdiv
from fnas_hls.model.resource_model import Memory
from fnas_hls.model.sequential import element_memories
from fnas_hls.model.tiling import Tiling
from fnas_hls.network import names
from fnas_hls.network.ir import (
    INPUT,
    Add,
    Concat,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    HostOp,
    Network,
    Pool,
    Scale,
    map_roots,
    output_activation,
)
from fnas_hls.precision import get_precision
from fnas_hls.styles import get_style

#: The exported IP's vendor, library and version (``export_design -vendor -library -version``: UG902,
#: UG1399; these are also the tools' defaults): its VLNV is ``vendor:library:<top>:version``.
IP_VENDOR, IP_LIBRARY, IP_VERSION = "xilinx.com", "hls", "1.0"


def ip_vlnv(top: str) -> str:
    """The VLNV the HLS export gives the top's IP (what a block design instantiates)."""
    return f"{IP_VENDOR}:{IP_LIBRARY}:{top}:{IP_VERSION}"


# --- names and checks --------------------------------------------------------------------------


def c_string(text: str) -> str:
    """A C string literal of ``text`` that nothing can break out of (octal escapes)."""
    out = []
    for byte in str(text).encode("utf-8"):
        ch = chr(byte)
        if 32 <= byte < 127 and ch not in '"\\?':
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _md(text: str) -> str:
    """A name for a Markdown table cell or code span."""
    return re.sub(r"[\x00-\x1f`|\\<>]", "_", str(text))


def check_renderable(net: Network) -> None:
    """Raise one FnasError line when the back end cannot render ``net``."""
    for li in net.info:
        if isinstance(li.layer, HostOp):
            raise FnasError(
                f"network '{net.name}': layer '{li.name}' ({li.layer.op_type}) runs on the host; the HLS "
                "back end renders conv, pooling, global pooling, flatten, fully connected, residual add "
                "and concat layers"
            )
    for li in net.info:
        if isinstance(li.layer, (Conv, Dense)) and li.layer.weight is None:
            raise FnasError(
                f"network '{net.name}' has no weights for layer '{li.name}'; emit needs a trained model "
                "(ONNX with initializers)"
            )
    if all(isinstance(li.layer, Flatten) for li in net.info):
        raise FnasError(f"network '{net.name}' has only flatten layers; there is nothing to render")


def feature_map_places(
    net: Network,
    fused: Mapping[str, str] | None = None,
    sizes: Mapping[str, int] | None = None,
    align: int = 1,
) -> tuple[dict[str, str], int]:
    """Where each map lives in DDR, as a C expression: the network's ``input``, its ``output`` (the
    last layer's), or a place in the ``fmap`` region; a flatten is its source's place. Places are
    reused once no later layer reads them (first fit), so a chain takes two; returns the places
    and the words the fmap region needs. ``fused``: adds the shared engine's store computes, by the
    conv before each (``model.shared.fused_adds``): that conv writes the add's place while it still
    reads its own input, so its input stays live through the add, and its own map takes no place.
    ``sizes``: the words of maps that take more than their shape's (rows padded to whole beats);
    ``align``: every place begins at a multiple of that many words (a beat's first)."""
    infos = net.info
    root = map_roots(infos)
    fused = dict(fused or {})
    writes_for = {conv: add for add, conv in fused.items()}
    index = {li.name: i for i, li in enumerate(infos)}
    last_read: dict[str, int] = {}
    for i, li in enumerate(infos):
        for src in li.sources:
            last_read[root[src]] = max(last_read.get(root[src], -1), i)
        if li.name in writes_for:
            for src in li.sources:
                last_read[root[src]] = max(last_read[root[src]], index[writes_for[li.name]])
    final = root[infos[-1].name]
    offset: dict[str, int] = {}
    live: list[tuple[int, int, str]] = []  # (start, end, map)
    for i, li in enumerate(infos):
        if root[li.name] != li.name or li.name == final or li.name in writes_for:
            continue
        live = [b for b in live if last_read.get(b[2], -1) >= i]
        size = (sizes or {}).get(li.name, li.out_shape.size)
        start = 0
        for lo, hi, _ in sorted(live):
            if start + size <= lo:
                break
            start = -(-max(start, hi) // align) * align
        offset[li.name] = start
        live.append((start, start + size, li.name))
    places = {INPUT: "input", final: "output"}
    places.update({n: (f"fmap + {o}" if o else "fmap") for n, o in offset.items()})
    places.update({conv: places[root[add]] for conv, add in writes_for.items()})
    words = max([offset[n] + (sizes or {}).get(n, net[n].out_shape.size) for n in offset], default=1)
    return {n: places[root[n]] for n in root}, max(words, 1)


def design_names(net: Network) -> tuple[dict[str, str], str]:
    """Each layer's C name (as the analysis names it) and the top function's name."""
    return names.design_names([li.name for li in net.info], net.name)


# --- context -----------------------------------------------------------------------------------


def _bias_literal_rows(bias: np.ndarray, groups: int, M: int, MT: int, Tm: int, dtype: DataType) -> str:
    """The bias ROM's initializer as [group][output-channel tile][m] (zeros past M), so that the
    conv element's INIT indexes it [g][mt][m], m a compile-time bank per unrolled copy."""
    padded = np.zeros((groups, MT * Tm), dtype=np.float64 if dtype.is_float else np.int64)
    padded[:, :M] = np.asarray(bias).reshape(groups, M)
    if dtype.is_float:
        padded = padded.astype(np.float32)
    tiles = padded.reshape(groups, MT, Tm)

    def block(rows: list[str], indent: str) -> str:
        return f"{indent}{{\n" + ",\n".join(rows) + f"\n{indent}}}"

    return ",\n".join(
        block([block([rows(t, dtype, indent="      ")], "    ") for t in group], "  ") for group in tiles
    )


def build_context(
    net: Network,
    analysis: Analysis,
    plan: QuantPlan,
    test_stored: np.ndarray,
    golden: np.ndarray,
) -> dict[str, Any]:
    """Everything the templates need: a pure function of IR, analysis, quantization and vectors."""
    check_renderable(net)
    cnames, top = design_names(net)
    is_float = plan.precision == "float32"
    style = get_style(analysis.style)
    sequential = style.layer_elements  # each tiled layer its own element (FNAS-Design)
    costs = {lc.name: lc for lc in analysis.layers}
    word = plan.input_type
    layers: list[dict[str, Any]] = []
    w_offset = 0
    where, fmap_words = feature_map_places(net, analysis.fused_adds, *map_layout(net, analysis))
    for li, lq in zip(net.info, plan.layers, strict=True):
        layer = li.layer
        lc = costs[li.name]
        d: dict[str, Any] = {
            "name": li.name,
            "name_c": c_string(li.name),
            "name_md": _md(li.name),
            "c_name": cnames[li.name],
            "op": layer.op,
            "in_shape": li.in_shape.as_list(),
            "out_shape": li.out_shape.as_list(),
            "in_frac": 0 if is_float else lq.in_type.frac,
            "out_frac": 0 if is_float else lq.out_type.frac,
            "relu": "true" if getattr(layer, "relu", False) else "false",
            "in_relu": bool(getattr(layer, "in_relu", False)),  # ReLU-Conv: LOAD_IN's ReLU
            "act": _act_params(lq.act),
            "act_name": output_activation(layer),
            "cycles": f"{lc.cycles:,}",
            # the C function that runs the layer (the engine, a shared unit, or its own)
            "function": lc.functions[0].name if lc.functions else cnames[li.name],
            "table_tiling": [0, 0, 0, 0],
            "tiling_str": "-",
            "tiling": None,
        }
        if isinstance(layer, Flatten):
            d["kind"] = "flatten"
            layers.append(d)
            continue
        # Feature maps in DDR: the input, places in the fmap region, the output.
        d["srcs"] = [where[n] for n in li.sources]
        d["src"] = ", ".join(d["srcs"])
        # the shared style runs its tiled layers on the engine, two-input adds and concats on units
        d["on_unit"] = style.runs_on_units(li)
        d["dst"] = where[li.name]
        if isinstance(layer, Add):
            d.update(
                kind="add", WORDS=li.out_shape.size, inputs=len(li.sources),
                aligns=list(lq.aligns) if not is_float else [0] * len(li.sources),
                shift=lq.shift or 0, round=(1 << (lq.shift - 1)) if (lq.shift or 0) > 0 else 0,
            )  # fmt: skip
            layers.append(d)
            continue
        if isinstance(layer, Scale):
            shift = 0 if is_float else lq.shift
            d.update(
                kind="scale", inputs=2, WORDS=li.out_shape.size, CH=li.out_shape.c,
                HW=li.out_shape.h * li.out_shape.w, shift=shift, round=(1 << (shift - 1)) if shift > 0 else 0,
            )  # fmt: skip
            layers.append(d)
            continue
        if isinstance(layer, Concat):
            offsets = np.cumsum([0] + [x.size for x in li.in_shapes]).tolist()
            d.update(
                kind="concat",
                parts=[
                    {"words": x.size, "offset": offsets[j], "shift": 0 if is_float else lq.aligns[j]}
                    for j, x in enumerate(li.in_shapes)
                ],
            )
            layers.append(d)
            continue
        if isinstance(layer, (Conv, Dense)):
            g = ConvGeometry.element_of(li) if sequential else ConvGeometry.of(li)
            t = lc.tiling
            assert t is not None
            if not isinstance(t, Tiling):  # a dataflow layer's parallelism: dataflow_layers sets its fields
                t = Tiling(t.Pm, t.Pn, g.R, g.C)
            Tm, Tn, Tr, Tc = min(t.Tm, g.M), min(t.Tn, g.N), min(t.Tr, g.R), min(t.Tc, g.C)
            MT, NT, RT, CT = cdiv(g.M, Tm), cdiv(g.N, Tn), cdiv(g.R, Tr), cdiv(g.C, Tc)
            if isinstance(layer, Conv):
                H, W, PT, PL = li.in_shape.h, li.in_shape.w, layer.padding[0], layer.padding[1]
            else:
                H = W = 1
                PT = PL = 0
            w_words = int(np.asarray(lq.weight).size)
            d.update(
                kind="conv",
                G=g.groups, M=g.M, N=g.N, H=H, W=W, R=g.R, C=g.C,
                KH=g.Kh, KW=g.Kw, SH=g.Sh, SW=g.Sw, PT=PT, PL=PL,
                TM=Tm, TN=Tn, TR=Tr, TC=Tc,
                # a depthwise element: lane m reads input channel (m0 + m) / MULT of CIN; TIN loaded
                DW=g.dw, MULT=(g.M // li.in_shape.c) if g.dw else 1, CIN=li.in_shape.c,
                TIN=Tm if g.dw else Tn,
                TRIN=(Tr - 1) * g.Sh + g.Kh, TCIN=(Tc - 1) * g.Sw + g.Kw,
                MT=MT, NT=NT, RT=RT, CT=CT, TILES=g.groups * MT * RT * CT,
                acc_c_type=lq.acc_c_type,
                shift=lq.shift if not is_float else 0,
                round=(1 << (lq.shift - 1)) if (not is_float and lq.shift > 0) else 0,
                # int8: a requantization shift per output channel (its weights' own format)
                shifts=list(lq.shifts) if (lq.shifts is not None and not is_float) else None,
                # the sequential style's initializers (the dataflow style renders its own ROMs)
                bias_rows=(
                    _bias_literal_rows(lq.bias, g.groups, g.M, MT, Tm, lq.bias_type) if sequential else ""
                ),
                weight_rows=rows(lq.weight, lq.w_type) if sequential else "",
                w_offset=w_offset,
                w_words=w_words,
                tiling={"Tm": Tm, "Tn": Tn, "Tr": Tr, "Tc": Tc},
                table_tiling=[Tm, Tn, Tr, Tc],
                tiling_str=f"{Tm}/{Tn}/{Tr}/{Tc}",
            )  # fmt: skip
            if sequential:  # the element's arrays bound where the model counts them
                memories = [
                    Memory(*m) for m in element_memories(g, Tm, Tn, Tr, Tc, get_precision(plan.precision))
                ]
                arrays = {
                    "input tiles": ("in_a", "in_b") if NT > 1 else ("in_a",),
                    "weight tiles": ("w_a", "w_b") if NT > 1 else ("w_a",),
                    "accumulators": ("acc",),
                }
                d["storage"] = storage_bindings(memories, arrays)
                d["bias_storage"] = storage_bindings(memories, {"bias ROM": (f"{cnames[li.name]}_bias",)})
            w_offset += w_words
        else:
            x, y = li.in_shape, li.out_shape
            if isinstance(layer, Pool):
                kind = f"{layer.kind}pool"
                (kh, kw), (sh, sw), pads = layer.kernel, layer.stride, layer.padding
            else:
                assert isinstance(layer, GlobalAvgPool)
                kind, kh, kw, sh, sw, pads = "gap", x.h, x.w, 1, 1, (0, 0, 0, 0)
            count = kh * kw
            taps = range(1, count + 1)
            d.update(
                kind=kind, CH=x.c, H=x.h, W=x.w, OH=y.h, OW=y.w, KH=kh, KW=kw, SH=sh, SW=sw,
                PT=pads[0], PL=pads[1], IW=x.w,  # the input's row stride (shared_context: padded maps)
                recip=float_literal(float_reciprocal(count)),
                mul=avg_multiplier(count), avg_shift=AVG_SHIFT, avg_round=1 << (AVG_SHIFT - 1),
                sum_c_type=f"int{avg_sum_bits(count, word.bits)}_t",
                max_start="-3.40282347e+38f" if is_float else str(word.min_int),
                # padding left out of the average: the divisor by the window's real taps (1 .. KH*KW)
                exclude_pad=isinstance(layer, Pool) and not layer.count_pad,
                beat_pool=False,  # the shared style's beat unit (backend.shared_context) where it applies
                vector_pool=False,  # and where it writes a beat of outputs an iteration
                muls=", ".join(["0", *(str(avg_multiplier(c)) for c in taps)]),
                recips=", ".join(["0.0f", *(float_literal(float_reciprocal(c)) for c in taps)]),
            )  # fmt: skip
        layers.append(d)
    style_ctx = style.context(net, analysis, plan, layers, fmap_words)
    rendered = [d for d in layers if d["kind"] != "flatten"]
    src_files = style.src_files(rendered, style_ctx)
    out_lsb = 0.0 if is_float else plan.output_type.lsb
    return {
        "style": analysis.style,
        "rom_weights": style.rom_weights,  # no weights port, no weights.h
        "hwc_ports": style.stream_order,  # the top's ports carry packed beats, channels last
        "skip_port": False,  # the shared engine's port for the residual maps its store adds
        "beat_ports": False,  # the shared engine's loads read the maps as beats
        **style_ctx,
        "version": __version__,
        "network": net.name,
        "network_c_string": c_string(net.name),
        "network_md": _md(net.name),
        "top": top,
        "ip_vendor": IP_VENDOR,
        "ip_library": IP_LIBRARY,
        "ip_version": IP_VERSION,
        "board": analysis.board.name,
        "part": analysis.board.part,
        "clock_mhz": f"{analysis.clock_mhz:g}",
        "period_ns": f"{1000.0 / analysis.clock_mhz:.4g}",
        "maxi_latency": rules.MAXI_READ_LATENCY,
        "precision": plan.precision,
        "is_float": is_float,
        "data_c_type": word.c_type,
        "bias_c_type": "float" if is_float else "int32_t",
        "data_min": word.min_int if not is_float else 0,
        "data_max": word.max_int if not is_float else 0,
        "layers": layers,
        "rendered": rendered,
        "in_words": net.input.size,
        "in_shape": net.input.as_list(),
        "out_words": net.output.size,
        "weight_words": w_offset,
        "fmap_words": fmap_words,
        "vectors": int(len(test_stored)),
        "input_rows": row_list(test_stored, word),
        "golden_rows": row_list(golden, plan.output_type),
        "out_lsb": repr(out_lsb),
        "src_files": [*src_files, f"src/{top}.cpp"],
        "latency_cycles": f"{analysis.latency_cycles:,}",
        "latency_ms": f"{analysis.latency_ms:.4f}",
        "resources": ", ".join(
            f"{k.upper()} {getattr(analysis.resources, k):,}" for k in ("dsp", "bram18k", "lut", "ff")
        ),
        "modules": _modules(analysis),
        # products per DSP slice where two share an input word (int8 on a DSP48E2: fnas_mul2)
        "mac_pack": analysis.board.mac_cost(analysis.precision).pack,
        **_act_context(plan),
        "arithmetic_note": _arith_note(plan),
        "arithmetic_md": _arith_md(plan),
    }


def _act_params(act: FixedActivation | FloatActivation | None) -> dict[str, Any] | None:
    """A layer's activation constants for ``act.j2``'s ``init`` (float32 ones as C literals)."""
    if act is None:
        return None
    p = act.c_params()
    if isinstance(act, FloatActivation):
        return {k: (v if k == "code" else float_literal(v)) for k, v in p.items()}
    return p


def _act_context(plan: QuantPlan) -> dict[str, Any]:
    """What ``act.j2``'s definitions need: whether any layer has an activation other than ReLU, and
    the sigmoid and tanh tables when one uses them."""
    acts = [lq.act for lq in plan.layers if lq.act is not None]
    tables = [a for a in acts if a.act.kind in TABLE_KINDS]
    segments = 1 << TABLE_SEGMENT_BITS
    half = 1 << TABLE_HALF_RANGE_BITS
    ctx: dict[str, Any] = {
        "any_act": bool(acts), "act_codes": sorted({a.code for a in acts}), "act_tables": [],
        "act_table_points": segments + 1,
        "act_table_segments": segments, "act_table_half": half, "act_table_frac": TABLE_FRAC,
        "act_table_scale": float_literal(segments / (2.0 * half))[:-1], "act_mul_shift": MUL_SHIFT,
        "act_v_min": V_MIN, "act_v_max": V_MAX,
    }  # fmt: skip
    if tables:
        by_row = {}
        for a in tables:  # row 0 sigmoid (silu reads it too), row 1 tanh
            by_row[1 if a.act.kind == "tanh" else 0] = a.table
        tables_by_row = [by_row.get(r, next(iter(by_row.values()))) for r in (0, 1)]
        dtype = FLOAT32 if plan.precision == "float32" else DataType.fixed(32, TABLE_FRAC)
        ctx["act_tables"] = [rows(t, dtype, indent="    ") for t in tables_by_row]
    return ctx


def _modules(analysis: Analysis) -> list[dict[str, Any]]:
    """Each C function the model predicts, once, with its loop labels: what csynth will report."""
    out: dict[str, list[str]] = {}
    for lc in analysis.layers:
        for fn in lc.functions:
            labels = out.setdefault(fn.name, [])
            labels.extend(loop.label for loop in fn.loops if loop.label not in labels)
    return [{"name": name, "labels": labels} for name, labels in out.items()]


def _arith_note(plan: QuantPlan) -> str:
    if plan.input_type.is_float:
        return "float32 throughout; every multiply and add in the reference model's order."
    w = plan.input_type.c_type
    return (
        f"{plan.precision}: {w} features and weights with per-tensor fractional bits, int32 biases, "
        "int32/int64 accumulators, requantize = round half up by shift, activation, saturate "
        "(see fnas_hls/backend/fixed_point.py)."
    )


def _arith_md(plan: QuantPlan) -> str:
    if plan.input_type.is_float:
        return (
            "float32 for features, weights, biases and accumulators. The C++ adds in the reference "
            "model's order (the Tn products as a pairwise tree); compile without fused multiply-add "
            "(`-ffp-contract=off`) to reproduce the golden outputs bit for bit."
        )
    bits, w = plan.input_type.bits, plan.input_type.c_type.removesuffix("_t")
    lines = [
        f"{bits}-bit fixed point: every tensor is {w} `q` standing for `q / 2^frac`; `frac` per tensor "
        f"from the calibration ranges ({plan.calibration_size} inputs). Float to fixed rounds half up and "
        f"saturates. Products {w} x {w} accumulate in int32 or int64 (wide enough for the worst case), "
        "from int32 biases at the accumulator's scale; the output is `(acc + 2^(shift-1)) >> shift`, "
        f"the activation, saturated to {w}. Average pooling: `(sum * round(2^32/k) + 2^31) >> 32`.",
        "",
        f"Input: frac {plan.input_type.frac}.",
        "",
        "| layer | in frac | weight frac | out frac | shift | accumulator |",
        "|---|---|---|---|---|---|",
    ]
    for lq in plan.layers:
        if lq.w_type is None:
            continue
        lines.append(
            f"| {_md(lq.name)} | {lq.in_type.frac} | {lq.w_type.frac} | {lq.out_type.frac} | {lq.shift} | "
            f"{lq.acc_c_type} |"
        )
    return "\n".join(lines)
