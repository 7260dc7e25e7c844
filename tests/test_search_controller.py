"""The controller and its REINFORCE update, the rewards, and the settings loader."""

from __future__ import annotations

import json

import pytest
import torch

from fnas_hls.errors import FnasError
from fnas_hls.search.controller import Controller
from fnas_hls.search.policy import RandomStrategy, ReinforceStrategy
from fnas_hls.search.rewards import child_reward, fnas_reward, pruned_reward, soft_reward
from fnas_hls.search.settings import SearchSettings, parse_search_settings, parse_train_settings


def test_controller_samples_valid_choices_deterministically():
    c = Controller([3, 2, 4], hidden=16)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = [c.sample(g1) for _ in range(20)]
    b = [c.sample(g2) for _ in range(20)]
    assert a == b
    assert all(len(x) == 3 and x[0] < 3 and x[1] < 2 and x[2] < 4 for x in a)
    log_prob, entropy = c.score(a[0])
    assert log_prob.item() < 0 and entropy.item() > 0
    assert log_prob.requires_grad


def test_one_gradient_step_moves_probability_toward_rewarded_choice():
    s = SearchSettings(controller_lr=0.05, entropy_weight=0.0)
    strat = ReinforceStrategy([3, 3], s, seed=0)
    strat.baseline = 0.0
    before = strat.controller.probabilities()[2].item()
    strat.feedback((2, 0), reward=1.0)
    after = strat.controller.probabilities()[2].item()
    assert after > before


def test_reinforce_learns_a_toy_reward():
    """Reward 1 when the first decision is 2 and the second is 0: the policy must concentrate there."""
    s = SearchSettings(controller_lr=0.05, entropy_weight=0.001, baseline_decay=0.8)
    strat = ReinforceStrategy([3, 3], s, seed=1)
    start = strat.controller.probabilities()[2].item()
    for _ in range(150):
        choice = strat.propose()
        strat.feedback(choice, 1.0 if choice == (2, 0) else 0.0)
    p0 = strat.controller.probabilities()[2].item()
    p1 = strat.controller.probabilities((2,))[0].item()
    assert start < 0.5 and p0 > 0.8 and p1 > 0.8


def test_strategy_state_dict_resumes_the_same_sequence():
    s = SearchSettings(epsilon=0.2)
    a = ReinforceStrategy([3, 3, 2], s, seed=3)
    for _ in range(5):
        a.feedback(a.propose(), 0.5)
    state = a.state_dict()
    expected = []
    for i in range(5):
        ch = a.propose()
        expected.append(ch)
        a.feedback(ch, 0.1 * i)
    b = ReinforceStrategy([3, 3, 2], s, seed=99)
    b.load_state_dict(state)
    got = []
    for i in range(5):
        ch = b.propose()
        got.append(ch)
        b.feedback(ch, 0.1 * i)
    assert got == expected
    r = RandomStrategy([4, 4], seed=0)
    st = r.state_dict()
    first = [r.propose() for _ in range(4)]
    r.load_state_dict(st)
    assert [r.propose() for _ in range(4)] == first


def test_rewards():
    assert fnas_reward(0.9, 5.0, 10.0, None, 0.02, 0.1) == pytest.approx(0.01)
    assert fnas_reward(0.5, 5.0, 10.0, 0.9, 0.02, 0.1) == -0.1  # clipped
    assert fnas_reward(0.95, 10.0, 10.0, 0.9, 0.02, 0.1) == pytest.approx(0.05)
    assert soft_reward(0.9, 10.0, 10.0) == pytest.approx(0.9)
    assert soft_reward(0.9, 5.0, 10.0) > 0.9 > soft_reward(0.9, 20.0, 10.0)


def test_distance_reward_tells_how_far_over_the_spec():
    s = SearchSettings(penalty=-0.1, distance_weight=0.05)
    # the paper's penalty is flat: a child 1.1x over the spec and one 30x over look alike
    assert pruned_reward("fnas", 1.1, 1.0, s) == pruned_reward("fnas", 30.0, 1.0, s) == -0.1
    assert pruned_reward("distance", 2.0, 1.0, s) == pytest.approx(-0.15)  # one doubling over
    assert pruned_reward("distance", 8.0, 1.0, s) == pytest.approx(-0.25)  # three
    near, far = pruned_reward("distance", 1.1, 1.0, s), pruned_reward("distance", 30.0, 1.0, s)
    assert -0.1 > near > far
    # no latency (not a network), or under the spec but not on the board: the plain penalty
    assert pruned_reward("distance", None, 1.0, s) == pruned_reward("distance", 0.5, 1.0, s) == -0.1
    # a child that meets the spec is rewarded as under fnas
    assert child_reward("distance", 0.9, 0.5, 1.0, 0.8, s) == child_reward("fnas", 0.9, 0.5, 1.0, 0.8, s)


def test_settings_validation_names_file_and_field():
    t = parse_train_settings({"lr": 0.01, "epochs": 3}, "x.yaml")
    assert t.lr == 0.01 and t.epochs == 3 and t.optimizer == "adam"
    with pytest.raises(FnasError, match=r"x.yaml.*'train.lr' must be a positive number"):
        parse_train_settings({"lr": -1}, "x.yaml")
    with pytest.raises(FnasError, match=r"unknown field 'search.episode'"):
        parse_search_settings({"episode": 3}, "x.yaml")
    with pytest.raises(FnasError, match=r"'search.strategy' must be one of rl, random, evolution"):
        parse_search_settings({"strategy": "bayesian"}, "x.yaml")


def test_space_yaml_settings_errors(tmp_path):
    from fnas_hls.search.space import load_space

    bad = tmp_path / "s.yaml"
    bad.write_text(
        "dataset: digits\ninput: [1, 8, 8]\nlayers: 1\nchoices: {kernel: [3], filters: [4]}\n"
        "conv: {padding: same}\nhead: [{type: gap}, {type: fc, out: 10}]\ntrain:\n  batch_size: 0\n"
    )
    with pytest.raises(FnasError, match=r"s.yaml:\d+: field 'train.batch_size' must be a positive integer"):
        load_space(bad)
    for name in ("digits", "fnas-mnist", "cifar10"):
        sp = load_space(name)
        assert sp.search_settings.episodes >= 1 and sp.train_settings.epochs >= 1


def test_evolution_mutates_one_decision_of_a_population_member():
    from fnas_hls.search.policy import EvolutionStrategy

    s = EvolutionStrategy((5,) * 6, SearchSettings(population=4, tournament=2), seed=1)
    for _ in range(4):
        s.feedback(s.propose(), 0.5)
    s.feedback((0,) * 6, None)  # a pruned child never joins
    assert len(s.population) == 4
    members = [c for c, _ in s.population]
    for _ in range(20):
        child = s.propose()
        assert min(sum(a != b for a, b in zip(child, m, strict=True)) for m in members) == 1
    s.feedback((1,) * 6, 0.9)
    assert len(s.population) == 4 and s.population[-1] == ((1,) * 6, 0.9)  # the oldest died
    state = s.state_dict()
    t = EvolutionStrategy((5,) * 6, SearchSettings(population=4, tournament=2), seed=99)
    t.load_state_dict(
        json.loads(json.dumps(state, default=lambda x: x.tolist())) | {"generator": state["generator"]}
    )
    assert [t.propose() for _ in range(5)] == [s.propose() for _ in range(5)]
