"""The search report's plots: no legend hides a point."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from fnas_hls.search.report import accuracy_figure, reward_figure  # noqa: E402


def _records():
    """What the issue saw: pruned ticks at 0.05-0.065 ms, rewards of -0.1 at episodes 38-52, both in
    the lower right, where a 'lower right' legend sat on them."""
    rng = np.random.default_rng(0)
    recs = []
    for ep in range(60):
        pruned = 38 <= ep <= 52 or ep % 7 == 0
        lat = float(rng.uniform(0.05, 0.065) if pruned else rng.uniform(0.01, 0.045))
        acc = None if pruned else float(rng.uniform(0.8, 0.95))
        recs.append({
            "episode": ep, "key": f"k{ep}", "pruned": pruned, "latency_ms": lat, "accuracy": acc,
            "meets_spec": lat <= 0.03, "reward": -0.1 if pruned else acc,
        })  # fmt: skip
    return recs


CFG = SimpleNamespace(
    space=SimpleNamespace(name="digits"),
    board=SimpleNamespace(name="pynq"),
    search=SimpleNamespace(reward="fnas", strategy="rl"),
    spec_ms=0.03,
)


def _points(ax) -> np.ndarray:
    """Every plotted marker, in display coordinates."""
    pts = [ax.transData.transform(c.get_offsets()) for c in ax.collections if len(c.get_offsets())]
    pts += [
        ax.transData.transform(line.get_xydata())
        for line in ax.lines
        if line.get_marker() not in ("None", "")
    ]
    return np.concatenate(pts)


@pytest.mark.parametrize("make", [reward_figure, accuracy_figure])
def test_no_legend_hides_a_point(make):
    fig = make(CFG, _records())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    legends = fig.legends + ([ax.get_legend()] if ax.get_legend() else [])
    assert legends
    points = _points(ax)
    assert len(points) >= 45
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert not box.overlaps(ax.get_window_extent(renderer))  # outside the axes
        inside = (points[:, 0] >= box.x0) & (points[:, 0] <= box.x1)
        inside &= (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1)
        assert not inside.any()
