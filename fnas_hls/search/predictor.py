"""A cheap accuracy predictor for the search's screen: ridge regression of a child's accuracy on its
decisions, each one-hot (a weight per value of each decision, and an intercept).

The screen (``fnas_hls.tabular.search``): once ``screen_after`` children are evaluated, the strategy
proposes until it has ``screen`` distinct children that meet the spec and were never evaluated, and
only the one the predictor ranks best is evaluated. Proposals that break the spec or were seen before
cost nothing, as without the screen; the ones screened out are not evaluated and teach the strategy
nothing. A linear model of one-hot decisions is what a few dozen points can fit: NAS-Bench-201's
accuracy is close to additive in its edges' ops (a ``none`` or a pooling edge costs accuracy, a
3x3 convolution gains it), and the fit takes microseconds, so the screen is free beside an evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def one_hot(choices: Sequence[Sequence[int]], num_choices: Sequence[int]) -> np.ndarray:
    """Each choice as a row of one-hot blocks, one block of ``num_choices[i]`` columns a decision."""
    offsets = np.concatenate([[0], np.cumsum(num_choices)[:-1]]).astype(np.int64)
    c = np.asarray(choices, dtype=np.int64).reshape(len(choices), len(num_choices))
    if ((c < 0) | (c >= np.asarray(num_choices))).any():
        raise ValueError("a choice's value is outside its decision's range")
    x = np.zeros((len(c), int(sum(num_choices))))
    x[np.arange(len(c))[:, None], offsets + c] = 1.0
    return x


class RidgePredictor:
    """Ridge regression on one-hot decisions; ``alpha`` weighs the L2 penalty (the intercept is free)."""

    def __init__(self, num_choices: Sequence[int], alpha: float = 1.0) -> None:
        self.num_choices = tuple(num_choices)
        self.alpha = alpha
        self.weights: np.ndarray | None = None

    def fit(self, choices: Sequence[Sequence[int]], accuracies: Sequence[float]) -> RidgePredictor:
        if len(choices) != len(accuracies) or not choices:
            raise ValueError("fit needs as many accuracies as choices, at least one")
        x = _with_intercept(one_hot(choices, self.num_choices))
        penalty = self.alpha * np.eye(x.shape[1])
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        self.weights = np.linalg.solve(x.T @ x + penalty, x.T @ np.asarray(accuracies, dtype=float))
        return self

    def predict(self, choices: Sequence[Sequence[int]]) -> np.ndarray:
        if self.weights is None:
            raise ValueError("predict before fit")
        return _with_intercept(one_hot(choices, self.num_choices)) @ self.weights


def _with_intercept(x: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((len(x), 1))])
