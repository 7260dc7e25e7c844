"""Rewards: pure functions of a child's accuracy, its predicted latency and the spec.

- ``fnas`` (the FNAS paper's): a child that breaks the spec (pruned, never trained) gets the
  penalty (-0.1); otherwise the accuracy against the moving average of the accuracies so far, plus a
  small term for the latency headroom, clipped to [-clip, clip].
- ``distance``: ``fnas`` for a child that meets the spec; a child over it gets the penalty minus
  ``distance_weight * log2(latency / spec)``, so the further over, the lower: the paper's flat
  penalty tells the controller only "not here", this one also "that way" (towards the spec).
  Latencies spread multiplicatively over a space (each layer's choices scale them), hence the log.
- ``soft`` (MnasNet's): ``accuracy * (latency / spec) ** w`` with ``w < 0``, so faster children
  earn more; pruned children get the penalty too.

Hardware-unaware search (the accuracy-only NAS FNAS compares against) drops the latency terms.
A child that failed to train gets the penalty.
"""

from __future__ import annotations

import math

from fnas_hls.search.settings import SearchSettings


def fnas_reward(
    accuracy: float,
    latency_ms: float,
    spec_ms: float,
    accuracy_average: float | None,
    latency_weight: float = 0.02,
    clip: float = 0.1,
) -> float:
    """``clip(accuracy - average + latency_weight * (spec - latency) / spec)``; no average yet: 0 there."""
    average = accuracy if accuracy_average is None else accuracy_average
    headroom = (spec_ms - latency_ms) / spec_ms
    return float(min(max(accuracy - average + latency_weight * headroom, -clip), clip))


def soft_reward(accuracy: float, latency_ms: float, spec_ms: float, weight: float = -0.07) -> float:
    """MnasNet's soft-constraint reward ``accuracy * (latency / spec) ** weight``."""
    return float(accuracy * (max(latency_ms, 1e-9) / spec_ms) ** weight)


def child_reward(
    kind: str,
    accuracy: float,
    latency_ms: float,
    spec_ms: float,
    accuracy_average: float | None,
    settings: SearchSettings,
    hw_aware: bool = True,
) -> float:
    """The reward of a trained child under reward ``kind`` (``fnas`` or ``soft``)."""
    if kind in ("fnas", "distance"):
        weight = settings.latency_weight if hw_aware else 0.0
        return fnas_reward(accuracy, latency_ms, spec_ms, accuracy_average, weight, settings.clip)
    if kind == "soft":
        return soft_reward(accuracy, latency_ms, spec_ms, settings.soft_weight if hw_aware else 0.0)
    raise ValueError(f"unknown reward {kind!r}")


def pruned_reward(kind: str, latency_ms: float | None, spec_ms: float, settings: SearchSettings) -> float:
    """The reward of a child that breaks the spec or does not fit (never trained) under ``kind``.

    ``distance`` lowers the penalty by ``distance_weight`` per doubling of the latency over the spec; a
    child with no latency (not a network) or one that fits under the spec but not on the board gets
    the plain penalty.
    """
    if kind != "distance" or latency_ms is None or latency_ms <= spec_ms:
        return settings.penalty
    return float(settings.penalty - settings.distance_weight * math.log2(latency_ms / spec_ms))


def moving_average(average: float | None, value: float, decay: float) -> float:
    """Exponential moving average, starting at the first value."""
    return value if average is None else decay * average + (1 - decay) * value
