"""Large evaluations within a memory bound, and the progress of long steps."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest

from fnas_hls.backend import batching
from fnas_hls.backend.float_model import layer_ranges, run_float, with_random_weights
from fnas_hls.backend.quantize import quantize_network
from fnas_hls.backend.reference import run_reference, run_reference_trace
from fnas_hls.model.tiling import Tiling
from fnas_hls.network.ir import Add, Conv, Dense, GlobalAvgPool, Network, Pool, Shape
from fnas_hls.progress import StepProgress


@pytest.fixture
def net():
    """A residual block with a depthwise conv, pooling and a classifier."""
    layers = (
        Conv("a", out=8, kernel=(3, 3), padding=(1, 1, 1, 1), relu=True),
        Conv("b", out=8, kernel=(3, 3), padding=(1, 1, 1, 1), groups=8, relu=True),
        Conv("c", out=8, kernel=(1, 1)),
        Add("s", ("a", "c"), relu=True),
        Pool("p", "max", (2, 2), (2, 2)),
        GlobalAvgPool("g"),
        Dense("fc", out=5),
    )
    return with_random_weights(Network(Shape(3, 16, 16), layers, "res"))


def _tilings(net):
    return {li.name: Tiling(4, 2, 5, 3) for li in net.info if isinstance(li.layer, (Conv, Dense))}


def test_the_last_reader_frees_each_map(net):
    last = batching.last_readers(net)
    assert last["a"] == 3 and last["c"] == 3 and last["b"] == 2  # the add reads a and c
    assert last[net.info[-1].name] == len(net.info)  # the output is never freed


@pytest.mark.parametrize("precision", ["fixed16", "float32"])
def test_batches_give_the_same_outputs(net, monkeypatch, precision):
    x = np.random.default_rng(0).standard_normal((23, 3, 16, 16)).astype(np.float32)
    plan = quantize_network(net, precision, x)
    xq = plan.input_type.quantize(x)
    whole = run_reference(net, plan, _tilings(net), xq)
    traced = run_reference_trace(net, plan, _tilings(net), xq)[-1].reshape(len(x), -1)
    np.testing.assert_array_equal(whole, traced)
    floats, ranges = run_float(net, x), layer_ranges(net, x)
    # a budget of about 5 inputs: five batches, and the same integers, floats and ranges
    monkeypatch.setattr(batching, "MEMORY_BUDGET", 5 * 8 * batching.peak_words(net))
    calls = []
    small = run_reference(net, plan, _tilings(net), xq, progress=lambda *a: calls.append(a))
    np.testing.assert_array_equal(small, whole)
    assert calls == [("reference model", n, 23) for n in (0, 5, 10, 15, 20, 23)]
    np.testing.assert_array_equal(run_float(net, x), floats)
    assert layer_ranges(net, x) == ranges
    again = quantize_network(net, precision, x)
    assert [(q.out_type, q.shift) for q in again.layers] == [(q.out_type, q.shift) for q in plan.layers]


def test_the_reference_model_stays_within_its_budget(net, monkeypatch):
    """Peak numpy allocation of run_reference on 400 inputs, against the budget it was given."""
    x = np.random.default_rng(0).standard_normal((400, 3, 16, 16)).astype(np.float32)
    plan = quantize_network(net, "fixed16", x[:32])
    xq = plan.input_type.quantize(x)
    budget = 40 * 8 * batching.peak_words(net)
    monkeypatch.setattr(batching, "MEMORY_BUDGET", budget)
    tracemalloc.start()
    try:
        run_reference(net, plan, _tilings(net), xq)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    inputs = xq.size * 8  # the int64 copy of all inputs the model starts from
    assert peak < budget + inputs + 2**20, (peak, budget)
    monkeypatch.setattr(batching, "MEMORY_BUDGET", 100 * budget)  # all 400 at once: far more
    tracemalloc.start()
    try:
        run_reference(net, plan, _tilings(net), xq)
        _, unbounded = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert unbounded > 4 * peak


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_step_progress_in_a_log_shows_only_long_steps():
    out, clock = io.StringIO(), _Clock()
    p = StepProgress("emit", out, after=1.0, clock=clock, units={"reference model": "inputs"})
    p("analysis", 0, 1)
    clock.t = 0.5
    p("analysis", 1, 1)  # quick: nothing
    p("reference model", 0, 64)
    clock.t = 2.0
    p("reference model", 32, 64)  # a log prints a step once, when it ends
    clock.t = 3.75
    p("reference model", 64, 64)
    assert out.getvalue() == "emit: reference model 64/64 inputs (3.2 s)\n"


def test_step_progress_on_a_terminal_refreshes_one_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out, clock = Tty(), _Clock()
    p = StepProgress("emit", out, after=1.0, clock=clock)
    p("rendering", 0, 10)
    clock.t = 1.5
    p("rendering", 4, 10)
    p.close()  # an error comes: the line is ended first
    assert out.getvalue() == "\remit: rendering 4/10 (1.5 s)\x1b[K\n"
