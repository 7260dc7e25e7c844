"""``make bench`` section ``dataflow``: the dataflow style against each board's roofline, the
figures of the dataflow issue, each measured in this run.

* FNAS's MNIST space on pynq, zcu104 and kv260, in fixed16 and int8, styles ``dataflow`` and
  ``auto``: the median and p90 of latency over the roofline bound (every usable DSP busy every
  cycle) over the networks that fit, the share that fits, the median share of DSPs used. ``quick``
  takes every 64th network of the space, ``full`` every 8th.
* The same for the dataflow style with every stream one word a cycle (``caps=(1,)``: the design
  before wide streams), on the same networks: what the widths bought.
* The issue's small nets: a 32x32 net (conv 3->16 k3, conv 16->32 k3 stride 2, GAP, linear) on
  zcu104 and pynq, a CIFAR-size net (conv 3->8 k3, max pool, conv 8->16 k3, GAP, linear) on pynq:
  latency over the roofline with wide streams and at one word a cycle, and the widths chosen.
* The fill's floor (``fill_floor``): the least latency over the roofline any layer pipeline of the
  space's networks can have, whatever its parallelism, for the rows each layer waits for; and the
  same for a pipeline that computes no kernel tap on padding (``real_tap_macs``). The space's ratios
  are given over that stricter roofline too (the integer designs skip the MAC steps of kernel rows
  on padding).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fnas_hls.boards import load_board
from fnas_hls.model import dataflow as df
from fnas_hls.model import dataflow_process as dfp
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.ir import Conv, Dense, LayerInfo, Network
from fnas_hls.precision import get_precision
from fnas_hls.search.space import load_space
from fnas_hls.styles import analyze
from fnas_hls.styles.dataflow import _analyze_dataflow

BOARDS = ("pynq", "zcu104", "kv260")
PRECISIONS = ("fixed16", "int8")

SMALL = {
    "32x32 net (conv 3->16, conv 16->32 s2, GAP, linear)": [
        {"type": "conv", "out": 16, "kernel": 3, "padding": "same", "relu": True},
        {"type": "conv", "out": 32, "kernel": 3, "stride": 2, "padding": "same", "relu": True},
        {"type": "gap"},
        {"type": "fc", "out": 10},
    ],
    "CIFAR-size net (conv 3->8, max pool, conv 8->16, GAP, linear)": [
        {"type": "conv", "out": 8, "kernel": 3, "padding": "same", "relu": True},
        {"type": "maxpool", "kernel": 2, "stride": 2},
        {"type": "conv", "out": 16, "kernel": 3, "padding": "same", "relu": True},
        {"type": "gap"},
        {"type": "fc", "out": 10},
    ],
}
SMALL_BOARDS = {
    "32x32 net (conv 3->16, conv 16->32 s2, GAP, linear)": ("zcu104", "pynq"),
    "CIFAR-size net (conv 3->8, max pool, conv 8->16, GAP, linear)": ("pynq", "zcu104"),
}


def _stats(ratios: list[float]) -> dict[str, float | None]:
    if not ratios:
        return {"median": None, "p90": None}
    return {"median": float(np.median(ratios)), "p90": float(np.percentile(ratios, 90))}


def real_tap_macs(li: LayerInfo) -> int:
    """A conv/fc layer's MACs less those of kernel taps on padding (products with zeros): what is left
    to compute where no such tap is. The roofline counts every tap, as MAC counts do."""
    if not isinstance(li.layer, Conv):
        return li.macs
    g = dfp.WindowGeometry.of(li)

    def taps(outputs: int, stride: int, k: int, pad: int, size: int) -> int:  # real taps, summed
        return sum(hi - lo for lo, hi in (dfp.real_taps(o, stride, k, pad, size) for o in range(outputs)))

    return taps(g.R, g.Sh, g.Kh, g.pt, g.H) * taps(g.C, g.Sw, g.Kw, g.pl, g.W) * g.N * g.m_total


def real_tap_share(net: Network) -> float:
    """The share of ``net``'s MACs on real input (``real_tap_macs``)."""
    tiled = [li for li in net.info if isinstance(li.layer, (Conv, Dense))]
    return sum(real_tap_macs(li) for li in tiled) / max(sum(li.macs for li in tiled), 1)


def fill_floor(net: Network, real_taps: bool = False) -> float | None:
    """The least latency over the roofline any layer pipeline of ``net`` (a chain) can have: with
    every conv/fc layer given a continuous share d of the DSPs (no divisibility, no stream or memory
    bound), layer k takes c_k = its MACs / d_k and cannot start before each layer before it has made
    the rows its consumer waits for (``model.dataflow.consumer_waits``: w_j of c_j), so one image
    takes at least max over k of sum_{j<k} w_j c_j + c_k; minimised over the shares (a convex
    problem, solved numerically as t >= each of those sums). ``real_taps``: a pipeline that computes
    no tap on padding (``real_tap_macs``, what the integer designs skip in part), still over the
    roofline of every tap. None for a network that is not a chain."""
    from scipy.optimize import minimize

    if not net.is_chain:
        return None
    infos = list(net.info)
    waits = df.consumer_waits(infos)
    tiled = [li for li in infos if isinstance(li.layer, (Conv, Dense))]
    m = np.array([real_tap_macs(li) if real_taps else li.macs for li in tiled], dtype=float)
    m = m / sum(li.macs for li in tiled)  # in units of the roofline: every DSP busy every cycle
    w = np.array([waits.get(li.name, 0.0) for li in tiled])
    lead = np.tril(np.ones((len(m), len(m))), -1) * w  # row k: w_j for j < k

    def sums(x: np.ndarray) -> np.ndarray:
        c = m / x[:-1]
        return lead @ c + c

    x0 = np.append(m, sums(np.append(m, 0.0)).max())
    res = minimize(
        lambda x: x[-1],
        x0,
        method="SLSQP",
        bounds=[(1e-9, 1.0)] * len(m) + [(0.0, None)],
        constraints=[
            {"type": "ineq", "fun": lambda x: x[-1] - sums(x)},
            {"type": "eq", "fun": lambda x: x[:-1].sum() - 1.0},
        ],
        options={"ftol": 1e-10, "maxiter": 500},
    )
    # the shares it ends at, made to sum to one: a latency they reach (SLSQP may stop a hair short of
    # the optimum, "positive directional derivative", where a layer's share is near zero)
    x = np.append(res.x[:-1] / res.x[:-1].sum(), 0.0)
    return float(sums(x).max())


def _space_nets(mode: str) -> list[Network]:
    """The space's networks the section measures: every 64th (quick) or 8th (full)."""
    space = load_space("fnas-mnist")
    return [space.build(a) for a in list(space.architectures())[:: 64 if mode == "quick" else 8]]


def _space_rows(nets: list[Network], shares: list[float]) -> list[dict[str, Any]]:
    """The space's rows; ``shares``: each network's ``real_tap_share``."""
    rows = []
    for board_name in BOARDS:
        board = load_board(board_name)
        for pname in PRECISIONS:
            prec = get_precision(pname)
            for label in ("dataflow", "auto", "dataflow, one word a cycle"):
                ratios, real, dsp, fits = [], [], [], 0
                t0 = time.perf_counter()
                for n, share in zip(nets, shares, strict=True):
                    if label.startswith("dataflow, one"):
                        a = _analyze_dataflow(n, board, prec, None, (), caps=(1,))
                    else:
                        a = analyze(n, board, prec, style=label)
                    if a.fits:
                        fits += 1
                        ratios.append(a.latency_cycles / a.roofline_cycles)
                        real.append(a.latency_cycles / (a.roofline_cycles * share))
                        dsp.append(a.resources.dsp / a.budget.dsp)
                rows.append(
                    {
                        "board": board_name,
                        "precision": pname,
                        "style": label,
                        "networks": len(nets),
                        "fits": fits,
                        "latency_over_roofline": _stats(ratios),
                        # over the roofline of the taps on real input alone (``real_tap_macs``)
                        "latency_over_real_tap_roofline": _stats(real),
                        "dsp_share_median": float(np.median(dsp)) if dsp else None,
                        "seconds": time.perf_counter() - t0,
                    }
                )
    return rows


def _small_rows() -> list[dict[str, Any]]:
    rows = []
    for name, layers in SMALL.items():
        n = network_from_dict({"name": "small", "input": [3, 32, 32], "layers": layers})
        for board_name in SMALL_BOARDS[name]:
            board = load_board(board_name)
            for pname in PRECISIONS:
                prec = get_precision(pname)
                wide = analyze(n, board, prec, style="dataflow")
                narrow = _analyze_dataflow(n, board, prec, None, (), caps=(1,))
                rows.append(
                    {
                        "network": name,
                        "board": board_name,
                        "precision": pname,
                        "latency_cycles": wide.latency_cycles,
                        "roofline_cycles": wide.roofline_cycles,
                        "over_roofline": wide.latency_cycles / wide.roofline_cycles,
                        "one_word_over_roofline": narrow.latency_cycles / narrow.roofline_cycles,
                        "dsp_share": wide.resources.dsp / wide.budget.dsp,
                        "widths": [s.width for s in wide.streams],
                        "fits": wide.fits,
                    }
                )
    return rows


def bench_dataflow(mode: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    nets = _space_nets(mode)
    shares = [real_tap_share(n) for n in nets]
    space = _space_rows(nets, shares)
    small = _small_rows()
    floors = [f for n in nets if (f := fill_floor(n))]
    real_floors = [f for n in nets if (f := fill_floor(n, real_taps=True))]
    return {
        "mode": mode,
        "space": space,
        "fill_floor": _stats(floors),
        "fill_floor_real_taps": _stats(real_floors),
        "real_tap_share": _stats(shares),
        "small": small,
        "seconds": time.perf_counter() - t0,
    }


def dataflow_table(r: dict[str, Any]) -> str:
    n = r["space"][0]["networks"] if r["space"] else 0
    lines = [
        f"FNAS's MNIST space, {n} networks (every {64 if r['mode'] == 'quick' else 8}th), latency over each "
        "board's roofline (the networks that fit):",
        "",
        "| board | precision | style | fits | median | p90 | median over the real taps' roofline | "
        "DSPs used (median) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in r["space"]:
        s = row["latency_over_roofline"]
        med = "—" if s["median"] is None else f"{s['median']:.2f}x"
        p90 = "—" if s["p90"] is None else f"{s['p90']:.2f}x"
        real = row.get("latency_over_real_tap_roofline", {}).get("median")
        share = "—" if row["dsp_share_median"] is None else f"{row['dsp_share_median']:.0%}"
        lines.append(
            f"| {row['board']} | {row['precision']} | {row['style']} | {row['fits']}/{row['networks']} | "
            f"{med} | {p90} | {'—' if real is None else f'{real:.2f}x'} | {share} |"
        )
    taps = r.get("real_tap_share")
    if taps and taps["median"] is not None:
        lines += [
            "",
            "The roofline counts every MAC, kernel taps on padding included (as MAC counts do); the "
            "integer designs leave out the MAC steps whose kernel rows all read padding. The taps on "
            f"real input are a median {taps['median']:.0%} of these networks' MACs: the roofline of "
            "those alone is the stricter bound.",
        ]
    floor, real_floor = r.get("fill_floor"), r.get("fill_floor_real_taps")
    if floor and floor["median"] is not None:
        lines += [
            "",
            "The fill's floor (``fill_floor``: no layer pipeline of these networks that computes every tap, "
            f"on any board, at any parallelism, is closer to the roofline): median {floor['median']:.2f}x, "
            f"p90 {floor['p90']:.2f}x"
            + (
                f"; one that computes no tap on padding: median {real_floor['median']:.2f}x, "
                f"p90 {real_floor['p90']:.2f}x."
                if real_floor and real_floor["median"] is not None
                else "."
            ),
        ]
    lines += [
        "",
        "The issue's small nets, style dataflow:",
        "",
        "| network | board | precision | latency / roofline | one word a cycle | DSPs used | stream widths |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in r["small"]:
        lines.append(
            f"| {row['network']} | {row['board']} | {row['precision']} | {row['over_roofline']:.2f}x "
            f"({row['latency_cycles']:,} cycles) | {row['one_word_over_roofline']:.2f}x | "
            f"{row['dsp_share']:.0%} | {', '.join(str(w) for w in row['widths'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - a quick look without the whole bench
    print(dataflow_table(bench_dataflow("quick")))
