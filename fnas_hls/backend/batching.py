"""Evaluating a network on many inputs within a memory bound.

The float model and the reference model run every layer on a whole batch of inputs at once. A
large network on many calibration inputs would hold gigabytes that way, so both go through
``evaluate_in_batches``: the inputs are cut into batches whose estimated peak fits
``MEMORY_BUDGET``, and within a batch each map is dropped once its last reader has run
(``evaluate``). ``peak_words`` is that estimate, per input: the maps alive at each layer plus the
layer's own working set (a conv's unrolled windows, the largest of them).

Long evaluations report progress through a ``Progress`` callback: ``(step, done, total)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fnas_hls.network.ir import INPUT, Concat, Conv, Dense, Flatten, LayerInfo, Network, Pool

#: Bytes one evaluation may hold at once (the inputs' batches are cut to fit).
MEMORY_BUDGET = 512 * 2**20

#: ``progress(step, done, total)``: ``done`` of ``total`` units of ``step`` are finished.
Progress = Callable[[str, int, int], None]

#: ``step(layer, its input maps) -> its output map``, on a batch.
Step = Callable[[LayerInfo, Sequence[np.ndarray]], np.ndarray]


def last_readers(net: Network) -> dict[str, int]:
    """The index of the last layer that reads each map (INPUT's too); the output's is past the end."""
    infos = net.info
    last = {INPUT: -1} | {li.name: -1 for li in infos}
    for i, li in enumerate(infos):
        for src in li.sources:
            last[src] = i
    last[infos[-1].name] = len(infos)
    return last


def _working_words(li: LayerInfo) -> int:
    """Words a layer needs besides its inputs and output, per input (an estimate from above)."""
    layer = li.layer
    if isinstance(layer, Conv):  # every output's window unrolled (and a copy), the padded input
        windows = li.out_shape.h * li.out_shape.w * li.in_shape.c * layer.kernel[0] * layer.kernel[1]
        return 2 * windows + 3 * li.out_shape.size + 2 * li.in_shape.size
    if isinstance(layer, Dense):
        return 3 * li.in_shape.size + 3 * li.out_shape.size
    if isinstance(layer, Pool):
        return (layer.kernel[0] * layer.kernel[1] + 2) * li.out_shape.size + 2 * li.in_shape.size
    if isinstance(layer, Flatten):
        return 0
    if isinstance(layer, Concat):
        return 2 * li.out_shape.size
    return 2 * li.out_shape.size + li.in_shape.size


def peak_words(net: Network) -> int:
    """The most words ``evaluate`` holds at once for one input: live maps plus a layer's work."""
    infos = net.info
    last = last_readers(net)
    sizes = {INPUT: net.input.size} | {li.name: li.out_shape.size for li in infos}
    peak = sizes[INPUT]
    live = {INPUT}
    for i, li in enumerate(infos):
        if not isinstance(li.layer, Flatten):
            live.add(li.name)
        peak = max(peak, sum(sizes[n] for n in live) + _working_words(li))
        live = {n for n in live if last[n] > i}
    return max(peak, 1)


def batch_size(net: Network, word_bytes: int = 8, budget: int | None = None) -> int:
    """How many inputs one batch takes so that ``evaluate`` stays within ``budget`` bytes
    (default ``MEMORY_BUDGET``)."""
    return max(1, (MEMORY_BUDGET if budget is None else budget) // (word_bytes * peak_words(net)))


def evaluate(
    net: Network, x: np.ndarray, step: Step, on_layer: Callable[[int, np.ndarray], None] | None = None
) -> np.ndarray:
    """The last layer's output for the batch ``x``, each map dropped after its last reader;
    ``on_layer(index, output)`` sees every layer's output as it is made."""
    last = last_readers(net)
    values = {INPUT: x}
    y = x
    for i, li in enumerate(net.info):
        y = step(li, [values[n] for n in li.sources])
        if on_layer is not None:
            on_layer(i, y)
        values[li.name] = y
        for n in set(li.sources):
            if last[n] == i:
                del values[n]
    return y


def evaluate_in_batches(
    net: Network,
    x: np.ndarray,
    run: Callable[[np.ndarray], np.ndarray],
    word_bytes: int = 8,
    progress: Progress | None = None,
    what: str = "",
    budget: int | None = None,
) -> np.ndarray:
    """``run`` (one batch's outputs, (b, ...)) on ``x`` cut into batches that fit ``budget``,
    concatenated; ``progress(what, inputs done, inputs)`` before the first batch and after each."""
    n = len(x)
    size = batch_size(net, word_bytes, budget)
    outs = []
    if progress is not None:
        progress(what, 0, n)
    for start in range(0, n, size):
        outs.append(run(x[start : start + size]))
        if progress is not None:
            progress(what, min(start + size, n), n)
    if not outs:
        return run(x)
    return outs[0] if len(outs) == 1 else np.concatenate(outs)
