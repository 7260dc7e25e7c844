"""The search's cheap accuracy predictor (ridge regression on one-hot decisions)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from fnas_hls.search.predictor import RidgePredictor, one_hot


def test_one_hot_puts_each_decision_in_its_block():
    x = one_hot([(0, 2), (1, 0)], (2, 3))
    assert x.tolist() == [[1, 0, 0, 0, 1], [0, 1, 1, 0, 0]]
    with pytest.raises(ValueError, match="outside its decision's range"):
        one_hot([(0, 3)], (2, 3))


def test_ridge_ranks_an_additive_space_from_few_points():
    # accuracy additive in six decisions of five values each (NAS-Bench-201's shape), no noise
    rng = np.random.default_rng(0)
    effect = rng.normal(size=(6, 5))
    space = np.array(list(itertools.product(range(5), repeat=6)))
    truth = effect[np.arange(6), space].sum(axis=1)
    seen = rng.choice(len(space), 40, replace=False)
    p = RidgePredictor((5,) * 6, alpha=1.0).fit(space[seen].tolist(), truth[seen].tolist())
    rho = stats.spearmanr(p.predict(space.tolist()), truth).statistic
    assert rho > 0.95
    # the shrinkage is small beside the effects: the best predicted is near the best
    top = int(np.argmax(p.predict(space.tolist())))
    assert truth[top] >= np.quantile(truth, 0.995)


def test_ridge_refuses_what_it_cannot_fit():
    p = RidgePredictor((2, 2))
    with pytest.raises(ValueError, match="predict before fit"):
        p.predict([(0, 0)])
    with pytest.raises(ValueError, match="as many accuracies as choices"):
        p.fit([(0, 0), (1, 1)], [0.5])
    with pytest.raises(ValueError, match="at least one"):
        p.fit([], [])
