"""What the ``dataflow`` templates (``templates/dataflow/``) need beyond the shared context.

Every count comes from ``model.dataflow`` (``WindowGeometry``, ``conv_stage``, ``pool_stage``,
``gap_ii``), so the rendered constants are the modelled ones. Feature maps stream in raster
order with channels innermost (HWC): a fully connected layer after a map therefore reads its
input in HWC order, and its weight columns are permuted to match (``model.dataflow.stream_dense_weight``), as
the reference model does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fnas_hls.analysis import Analysis
from fnas_hls.backend.c_literals import rows
from fnas_hls.backend.fixed_point import DataType
from fnas_hls.model import dataflow as df
from fnas_hls.model import dataflow_conv as dfc
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.model import dataflow_streams as dfs
from fnas_hls.network.ir import Add, Concat, Conv, Dense, Flatten, GlobalAvgPool, Network, Pool, Scale

if TYPE_CHECKING:  # the quantizer brings torch; fnas_hls.styles imports this module
    from fnas_hls.backend.quantize import QuantPlan

#: Stored value of a padded position of a max pool in float32 (the most negative float).
FLOAT_LOWEST_LITERAL = "-3.40282347e+38f"


def _weight_rom(
    w: np.ndarray, g: dfp.WindowGeometry, p: dfp.Parallelism, MT: int, NT: int, KT: int
) -> np.ndarray:
    """[GT*MT*NT*KHT*KT][Pg*Pm][Ph*Pk*Pn]: row (((gt*MT + mt)*NT + nt)*KHT + kht)*KT + kt, element
    (h*Pk + j)*Pn + n of lane gi*Pm + i the weight of group gt*Pg + gi's output mt*Pm + i, input
    nt*Pn + n, tap (kht*Ph + h, kt*Pk + j); zeros past G, M, N, Kh, Kw."""
    GT, KHT = -(-g.G // p.Pg), -(-g.Kh // p.Ph)
    w = np.asarray(w).reshape(g.G, g.M, g.N, g.Kh, g.Kw)
    pad = np.zeros((GT * p.Pg, MT * p.Pm, NT * p.Pn, KHT * p.Ph, KT * p.Pk), dtype=w.dtype)
    pad[: g.G, : g.M, : g.N, : g.Kh, : g.Kw] = w
    rom = pad.reshape(GT, p.Pg, MT, p.Pm, NT, p.Pn, KHT, p.Ph, KT, p.Pk)
    rom = rom.transpose(0, 2, 4, 6, 8, 1, 3, 7, 9, 5)
    return rom.reshape(-1, p.Pg * p.Pm, p.Ph * p.Pk * p.Pn)


def _bias_rom(b: np.ndarray, g: dfp.WindowGeometry, p: dfp.Parallelism, MT: int) -> np.ndarray:
    """[GT*MT][Pg*Pm]: row gt*MT + mt, lane gi*Pm + i the value of group gt*Pg + gi's output mt*Pm + i."""
    GT = -(-g.G // p.Pg)
    pad = np.zeros((GT * p.Pg, MT * p.Pm), dtype=np.asarray(b).dtype)
    pad[: g.G, : g.M] = np.asarray(b).reshape(g.G, g.M)
    return pad.reshape(GT, p.Pg, MT, p.Pm).transpose(0, 2, 1, 3).reshape(-1, p.Pg * p.Pm)


def dataflow_layers(
    net: Network, analysis: Analysis, plan: QuantPlan, layers: list[dict[str, Any]]
) -> dict[str, Any]:
    """Add the dataflow fields to each rendered layer of ``layers`` (in place); return the
    top-level fields (streams, beats)."""
    prec = analysis.precision
    board = analysis.board
    mac = board.mac_cost(prec)
    is_float = prec.is_float
    maps = df.dense_input_maps(net)
    costs = {lc.name: lc for lc in analysis.layers}
    streams = [
        {"name": f"s{i}", "src": s.src, "dst": s.dst, "depth": s.depth, "peak": s.peak, "width": s.width}
        for i, s in enumerate(analysis.streams)
    ]
    # each process's input (its first) and output stream widths
    in_width: dict[str, int] = {}
    out_width: dict[str, int] = {}
    for st in analysis.streams:
        in_width.setdefault(st.dst, st.width)
        out_width.setdefault(st.src, st.width)
    ins: dict[str, list[str]] = {}
    outs: dict[str, list[str]] = {}
    for st in streams:  # in the schedule's order: each consumer's inputs in order
        outs.setdefault(st["src"], []).append(st["name"])
        ins.setdefault(st["dst"], []).append(st["name"])
    by_name = {d["name"]: d for d in layers}
    calls = []
    for lc in analysis.layers:  # the processes in order (and flatten, which is none)
        if lc.op in ("read", "write", "fork"):
            src, dst = ", ".join(ins.get(lc.name, [])), ", ".join(outs.get(lc.name, []))
            calls.append({"kind": lc.op, "name": lc.name, "src": src, "dst": dst})
        elif lc.op != "flatten":
            calls.append({"kind": "layer", "l": by_name[lc.name]})
    # a fork is named after the process that writes its map: a layer's, or the input mover
    # (its producer's C name, the map's words), by the fork's name
    mapped = {df.fork_name(d["c_name"]): (d["c_name"], net[d["name"]].out_shape.size) for d in layers}
    read_mover = analysis.layers[0].name
    mapped[df.fork_name(read_mover)] = (read_mover, net.input.size)
    forks = []
    for c in calls:
        if c["kind"] == "fork":
            of, words = mapped[c["name"]]
            forks.append(
                {
                    "name": c["name"],
                    "of": of,
                    "outs": outs[c["name"]],
                    "words": words,
                    "width": out_width[c["name"]],
                }
            )
    for li, lq, d in zip(net.info, plan.layers, layers, strict=True):
        layer = li.layer
        if isinstance(layer, Flatten):
            continue
        d["src"], d["dst"] = ", ".join(ins[li.name]), outs[li.name][0]
        vi, vo = in_width[li.name], out_width[li.name]
        d.update(VI=vi, VO=vo)
        if isinstance(layer, Concat):
            ends = np.cumsum([x.c for x in li.in_shapes]).tolist()
            d.update(WORDS=li.out_shape.size, CTOT=li.out_shape.c)
            for part, end in zip(d["parts"], ends, strict=True):
                part["ch_end"] = end
            continue
        if isinstance(layer, (Add, Scale)):
            continue
        if isinstance(layer, (Conv, Dense)):
            g = dfp.WindowGeometry.of(li)
            par = costs[li.name].tiling
            assert par is not None
            assert isinstance(par, dfp.Parallelism)
            p = par.clipped(g)
            Pm, Pn, Pk = p.Pm, p.Pn, p.Pk
            s = dfc.ConvStage(
                *(int(v) for v in dfc.conv_stage(g, Pm, Pn, prec, mac, Pk, p.Pg, vi, vo, p.Ph, p.Pc))
            )
            per_row = dfc.conv_rows(g, p, prec, mac, vi, vo, s)
            varies = dfc.rows_vary(per_row)
            tables = dfc.row_tables(g, p, per_row)  # what the kernel reads per row, or its constants
            KT = -(-g.Kw // Pk)
            bits = int(dfc.table_bits(s.row_trip, s.mac, -(-g.Kh // p.Ph), KT))  # as the model counts them
            assert len(per_row) == g.R and max(max(v) for v in tables.values()) < 1 << bits
            span = int(dfc.window_span(g, Pk, p.Pc))
            w = lq.weight
            if isinstance(layer, Dense):
                w = df.stream_dense_weight(w, maps[li.name])
            d.update(
                G=g.G, M=g.M, N=g.N, H=g.H, W=g.W, R=g.R, C=g.C, KH=g.Kh, KW=g.Kw, SH=g.Sh, SW=g.Sw,
                PT=g.pt, PL=g.pl, PM=Pm, PN=Pn, PK=Pk, PG=p.Pg, PH=p.Ph, KT=KT, KHT=-(-g.Kh // p.Ph),
                PC=p.Pc, CB=-(-g.C // p.Pc), SPAN=span, WB=int(dfc.line_buffer_words(g, Pk, p.Pc)),
                BLOCK_Q=p.Pc * g.Sw // span, BLOCK_R=p.Pc * g.Sw % span,
                MT=s.MT, NT=s.NT, GT=s.GT,
                WU=g.wu, LBR=g.lb_rows,
                PRIME_TRIP=g.real_prime // vi, fills=any(r.fill for r in per_row),
                OUT_TRIP=s.out, ROW_TRIP_MIN=min(r.trip for r in per_row), ROW_TRIP_MAX=s.row_trip,
                row_tables={k: ", ".join(map(str, v)) for k, v in tables.items()} if varies else {},
                row_const={k: v[0] for k, v in tables.items()},
                row_type={8: "unsigned char", 16: "unsigned short", 32: "unsigned int"}[bits],
                ROW_II=s.row_ii, OB_DISTANCE=-(-s.row_depth // s.row_ii), DRAIN_TRIP=g.drain // vi,
                w_reshape=bool(s.w_reshape),
                weight_rom=rows(_weight_rom(w, g, p, s.MT, s.NT, KT), lq.w_type),
                bias_rom=rows(_bias_rom(lq.bias, g, p, s.MT), lq.bias_type),
                shift_rom=(
                    rows(_bias_rom(np.asarray(lq.shifts), g, p, s.MT), DataType.fixed(32, 0))
                    if lq.shifts is not None and not is_float else ""
                ),
                tiling=p.as_dict(), table_tiling=[Pm, Pn, Pk, 0], tiling_str=str(p),
            )  # fmt: skip
        elif isinstance(layer, Pool):
            g = dfp.WindowGeometry.of(li)
            ps = dfp.pool_stage(g, layer.kind, prec, layer.count_pad, vi)
            if layer.kind == "max":
                pad = FLOAT_LOWEST_LITERAL if is_float else str(plan.input_type.min_int)
            else:
                pad = "0"
            d.update(
                WU=g.wu, WQ=g.wq, LBR=g.lb_rows, PRIME_TRIP=g.prime // vi, FILL_TRIP=g.fill_row // vi,
                FILL_START=ps.row_trip - g.fill_row // vi, POOL_TRIP=ps.taps, ROW_TRIP=ps.row_trip,
                ROW_II=ps.row_ii, DRAIN_TRIP=g.drain // vi, pad=pad,
            )  # fmt: skip
        else:
            assert isinstance(layer, GlobalAvgPool)
            d["GAP_II"] = dfp.gap_ii(li.in_shape.c, prec, vi)
    P = board.axi_words_per_cycle(prec.bits)
    x, y = net.input, net.output
    vin, vout = out_width[read_mover], in_width[analysis.layers[-1].name]
    (a_in, q_in), (a_out, q_out) = dfs.mover_group(vin, P), dfs.mover_group(vout, P)
    iters_in, iters_out = dfs.mover_iterations(x.size, vin, P), dfs.mover_iterations(y.size, vout, P)
    return {
        "streams": streams,
        "calls": calls,
        "forks": forks,
        "beat_words": P,
        "in_width": vin,
        "out_width": vout,
        "in_stream_beats": x.size // vin,
        "out_stream_beats": y.size // vout,
        "axi_bits": board.axi_width_bits,
        # whole mover iterations of A AXI beats (the host pads the input with zeros)
        "in_beats": iters_in * a_in,
        "out_beats": iters_out * a_out,
        "in_group": {"iters": iters_in, "axi": a_in, "stream": q_in},
        "out_group": {"iters": iters_out, "axi": a_out, "stream": q_out},
        "in_shape_hwc": [x.h, x.w, x.c],
    }
