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
  space's networks can have, whatever its parallelism, for the rows each layer waits for.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fnas_hls.boards import load_board
from fnas_hls.model import dataflow as df
from fnas_hls.network.arch import network_from_dict
from fnas_hls.network.ir import Conv, Dense, Network
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


def fill_floor(net: Network) -> float | None:
    """The least latency over the roofline any layer pipeline of ``net`` (a chain) can have: with
    every conv/fc layer given a continuous share d of the DSPs (no divisibility, no stream or memory
    bound), layer k takes c_k = its MACs / d_k and cannot start before each layer before it has made
    the rows its consumer waits for (``model.dataflow.consumer_waits``: w_j of c_j), so one image
    takes at least max over k of sum_{j<k} w_j c_j + c_k; minimised over the shares (a convex
    problem, solved numerically as t >= each of those sums). None for a network that is not a
    chain."""
    from scipy.optimize import minimize

    if not net.is_chain:
        return None
    infos = list(net.info)
    waits = df.consumer_waits(infos)
    tiled = [li for li in infos if isinstance(li.layer, (Conv, Dense))]
    m = np.array([li.macs for li in tiled], dtype=float)
    m = m / m.sum()  # in units of the roofline: every DSP busy every cycle
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


def _space_rows(nets: list[Network]) -> list[dict[str, Any]]:
    rows = []
    for board_name in BOARDS:
        board = load_board(board_name)
        for pname in PRECISIONS:
            prec = get_precision(pname)
            for label in ("dataflow", "auto", "dataflow, one word a cycle"):
                ratios, dsp, fits = [], [], 0
                t0 = time.perf_counter()
                for n in nets:
                    if label.startswith("dataflow, one"):
                        a = _analyze_dataflow(n, board, prec, None, (), caps=(1,))
                    else:
                        a = analyze(n, board, prec, style=label)
                    if a.fits:
                        fits += 1
                        ratios.append(a.latency_cycles / a.roofline_cycles)
                        dsp.append(a.resources.dsp / a.budget.dsp)
                rows.append(
                    {
                        "board": board_name,
                        "precision": pname,
                        "style": label,
                        "networks": len(nets),
                        "fits": fits,
                        "latency_over_roofline": _stats(ratios),
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
    space = _space_rows(nets)
    small = _small_rows()
    floors = [f for n in nets if (f := fill_floor(n))]
    return {
        "mode": mode,
        "space": space,
        "fill_floor": _stats(floors),
        "small": small,
        "seconds": time.perf_counter() - t0,
    }


def dataflow_table(r: dict[str, Any]) -> str:
    n = r["space"][0]["networks"] if r["space"] else 0
    lines = [
        f"FNAS's MNIST space, {n} networks (every {64 if r['mode'] == 'quick' else 8}th), latency over each "
        "board's roofline (the networks that fit):",
        "",
        "| board | precision | style | fits | median | p90 | DSPs used (median) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in r["space"]:
        s = row["latency_over_roofline"]
        med = "—" if s["median"] is None else f"{s['median']:.2f}x"
        p90 = "—" if s["p90"] is None else f"{s['p90']:.2f}x"
        share = "—" if row["dsp_share_median"] is None else f"{row['dsp_share_median']:.0%}"
        lines.append(
            f"| {row['board']} | {row['precision']} | {row['style']} | {row['fits']}/{row['networks']} | "
            f"{med} | {p90} | {share} |"
        )
    floor = r.get("fill_floor")
    if floor and floor["median"] is not None:
        lines += [
            "",
            "The fill's floor (``fill_floor``: no layer pipeline of these networks, on any board, at any "
            f"parallelism, is closer to the roofline): median {floor['median']:.2f}x, "
            f"p90 {floor['p90']:.2f}x.",
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
