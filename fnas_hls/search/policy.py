"""Search strategies: propose an architecture, learn from its reward, checkpoint as a state dict.

- ``ReinforceStrategy``: the LSTM controller trained with REINFORCE, a moving-average baseline of
  the rewards, an entropy bonus and optional epsilon exploration (FNAS, after NAS and ENAS).
- ``RandomStrategy``: uniform random choices (the baseline every NAS paper compares against).
- ``EvolutionStrategy``: regularized evolution (Real et al., AAAI 2019): an aging population of the
  last ``population`` children evaluated; a child is the best of ``tournament`` members drawn at
  random with one decision changed. Its fitness is the child's accuracy, not the reward (a pruned or
  failed child has none and never joins the population).

``fitness`` says which of a child's figures ``feedback`` takes: ``reward`` or ``accuracy``.

Both are deterministic given the seed: the sampling generator's state is in the state dict, so a
resumed search proposes exactly what the uninterrupted one would have.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from fnas_hls.search.controller import Controller
from fnas_hls.search.settings import SearchSettings


class Strategy(Protocol):
    fitness: str

    def propose(self) -> tuple[int, ...]: ...

    def feedback(self, choice: tuple[int, ...], reward: float) -> dict[str, float]: ...

    def feedback_batch(self, items: list[tuple[tuple[int, ...], float]]) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ReinforceStrategy:
    """REINFORCE on the controller: loss = -(reward - baseline) * log p(choice) - beta * entropy."""

    fitness = "reward"

    def __init__(self, num_choices: Sequence[int], settings: SearchSettings, seed: int) -> None:
        self.settings = settings
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.controller = Controller(num_choices, settings.hidden)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=settings.controller_lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.baseline: float | None = None

    def propose(self) -> tuple[int, ...]:
        return self.controller.sample(self.generator, self.settings.epsilon)

    def feedback(self, choice: tuple[int, ...], reward: float) -> dict[str, float]:
        """One policy-gradient step on ``choice`` with ``reward``; the baseline moves after it."""
        return self.feedback_batch([(choice, reward)])

    def feedback_batch(self, items: list[tuple[tuple[int, ...], float]]) -> dict[str, float]:
        """One policy-gradient step on a batch: the mean of each child's loss, every advantage
        against the baseline before the batch; then the baseline moves by each reward in turn. A
        batch of one is the per-child update."""
        baseline = items[0][1] if self.baseline is None else self.baseline
        loss = torch.zeros(())
        entropies = []
        for choice, reward in items:
            log_prob, entropy = self.controller.score(choice)
            loss = loss - (reward - baseline) * log_prob - self.settings.entropy_weight * entropy
            entropies.append(float(entropy.detach()))
        self.optimizer.zero_grad()
        (loss / len(items)).backward()
        self.optimizer.step()
        decay = self.settings.baseline_decay
        for _, reward in items:
            self.baseline = reward if self.baseline is None else self.baseline * decay + (1 - decay) * reward
        advantage = sum(r for _, r in items) / len(items) - baseline
        return {"advantage": advantage, "baseline": self.baseline, "entropy": sum(entropies) / len(entropies)}

    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "kind": "rl",
                "controller": self.controller.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
                "baseline": self.baseline,
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = state["baseline"]


class RandomStrategy:
    """Uniform random architectures; learns nothing."""

    fitness = "reward"

    def __init__(self, num_choices: Sequence[int], seed: int) -> None:
        self.num_choices = tuple(num_choices)
        self.generator = torch.Generator().manual_seed(seed)

    def propose(self) -> tuple[int, ...]:
        return tuple(int(torch.randint(n, (), generator=self.generator)) for n in self.num_choices)

    def feedback(self, choice: tuple[int, ...], reward: float) -> dict[str, float]:
        return {}

    def feedback_batch(self, items: list[tuple[tuple[int, ...], float]]) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "random", "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class EvolutionStrategy:
    """Regularized evolution: tournament selection in an aging population, mutation of one decision."""

    fitness = "accuracy"

    def __init__(self, num_choices: Sequence[int], settings: SearchSettings, seed: int) -> None:
        self.num_choices = tuple(num_choices)
        self.population_size = settings.population
        self.tournament = min(settings.tournament, settings.population)
        self.generator = torch.Generator().manual_seed(seed)
        self.population: list[tuple[tuple[int, ...], float]] = []  # oldest first

    def _randint(self, n: int) -> int:
        return int(torch.randint(n, (), generator=self.generator))

    def propose(self) -> tuple[int, ...]:
        if len(self.population) < self.population_size:
            return tuple(self._randint(n) for n in self.num_choices)
        drawn = [self.population[self._randint(len(self.population))] for _ in range(self.tournament)]
        parent = list(max(drawn, key=lambda m: m[1])[0])
        mutable = [i for i, n in enumerate(self.num_choices) if n > 1]
        if mutable:
            step = mutable[self._randint(len(mutable))]
            other = self._randint(self.num_choices[step] - 1)
            parent[step] = other if other < parent[step] else other + 1  # any value but the parent's
        return tuple(parent)

    def feedback(self, choice: tuple[int, ...], reward: float | None) -> dict[str, float]:
        return self.feedback_batch([(choice, reward)])

    def feedback_batch(self, items: list[tuple[tuple[int, ...], float | None]]) -> dict[str, float]:
        for choice, accuracy in items:
            if accuracy is not None:
                self.population.append((tuple(choice), float(accuracy)))
                if len(self.population) > self.population_size:
                    self.population.pop(0)  # the oldest dies, however fit
        return {"population": float(len(self.population))}

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "evolution",
            "generator": self.generator.get_state(),
            "population": [[list(c), a] for c, a in self.population],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.population = [(tuple(c), float(a)) for c, a in state["population"]]


def make_strategy(kind: str, num_choices: Sequence[int], settings: SearchSettings, seed: int) -> Strategy:
    if kind == "rl":
        return ReinforceStrategy(num_choices, settings, seed)
    if kind == "random":
        return RandomStrategy(num_choices, seed)
    if kind == "evolution":
        return EvolutionStrategy(num_choices, settings, seed)
    raise ValueError(f"unknown strategy {kind!r}")
