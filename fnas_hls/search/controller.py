"""The controller: an LSTM policy that emits one architecture decision per step.

At each step the LSTM reads the embedding of the previous step's choice (a learned start vector at
the first step) and a linear head per step gives the logits over that step's choices. The
controller only samples and scores choices (log-probability and entropy); the reward, the baseline
and the update live in ``policy.py`` (as in ENAS: controller samples, trainer updates).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Controller(nn.Module):
    """An LSTM policy over a fixed sequence of decisions with ``num_choices[i]`` options each."""

    def __init__(self, num_choices: Sequence[int], hidden: int = 64) -> None:
        super().__init__()
        if not num_choices or min(num_choices) < 1:
            raise ValueError(f"every step needs at least one choice, got {list(num_choices)}")
        self.num_choices = tuple(int(n) for n in num_choices)
        self.hidden = hidden
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in self.num_choices[:-1])
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in self.num_choices)
        for p in self.parameters():  # small uniform init: a near-uniform policy at the start
            nn.init.uniform_(p, -0.1, 0.1)

    def _steps(self, choice: Sequence[int] | None, generator: torch.Generator | None, epsilon: float):
        """Walk the decisions; yield (logits, chosen index) per step, sampling where ``choice`` is None."""
        h = torch.zeros(1, self.hidden)
        c = torch.zeros(1, self.hidden)
        x = self.start
        for step, n in enumerate(self.num_choices):
            h, c = self.lstm(x, (h, c))
            logits = self.heads[step](h)[0]
            if choice is not None:
                k = int(choice[step])
            elif epsilon > 0 and float(torch.rand((), generator=generator)) < epsilon:
                k = int(torch.randint(n, (), generator=generator))
            else:
                probs = torch.softmax(logits.detach(), dim=-1)
                k = int(torch.multinomial(probs, 1, generator=generator))
            yield logits, k
            if step + 1 < len(self.num_choices):
                x = self.embeddings[step](torch.tensor([k]))

    @torch.no_grad()
    def sample(self, generator: torch.Generator | None = None, epsilon: float = 0.0) -> tuple[int, ...]:
        """One architecture (a choice index per step); with chance ``epsilon`` a step is uniform."""
        return tuple(k for _, k in self._steps(None, generator, epsilon))

    def score(self, choice: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of log-probabilities of ``choice`` and sum of the per-step entropies (with gradients)."""
        if len(choice) != len(self.num_choices):
            raise ValueError(f"expected {len(self.num_choices)} choices, got {len(choice)}")
        log_prob = torch.zeros(())
        entropy = torch.zeros(())
        for logits, k in self._steps(choice, None, 0.0):
            logp = torch.log_softmax(logits, dim=-1)
            log_prob = log_prob + logp[k]
            entropy = entropy - (logp.exp() * logp).sum()
        return log_prob, entropy

    @torch.no_grad()
    def probabilities(self, prefix: Sequence[int] = ()) -> torch.Tensor:
        """The distribution over the choices of step ``len(prefix)`` after the choices ``prefix``."""
        padded = list(prefix) + [0] * (len(self.num_choices) - len(prefix))
        for step, (logits, _) in enumerate(self._steps(padded, None, 0.0)):
            if step == len(prefix):
                return torch.softmax(logits, dim=-1)
        raise ValueError("prefix covers every step")
