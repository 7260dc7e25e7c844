"""Typed training and search settings: the ``train:``, ``search:`` and ``final:`` mappings of a space.

```yaml
train:                  # how each child is trained (torch, CPU)
  optimizer: adam       # adam | sgd
  lr: 0.001
  batch_size: 256
  epochs: 40            # the best validation accuracy over the epochs is kept
  weight_decay: 0.0
  momentum: 0.9         # sgd only
  patience: null        # stop after this many epochs without a better validation accuracy
  train_subset: null    # train each child on this many (seeded) training samples
  val_fraction: 0.1     # share of the training data held out for validation
  test_fraction: 0.2    # datasets without a test split (digits): share held out for testing
  threads: null         # torch CPU threads (default: torch's)
search:                 # the controller and the reward
  episodes: 40
  strategy: rl          # rl | random | evolution
  reward: fnas          # fnas | distance | soft
  hidden: 64            # controller LSTM size
  controller_lr: 0.01
  entropy_weight: 0.01
  baseline_decay: 0.9
  epsilon: 0.0          # chance of a uniform choice at each step (exploration)
  penalty: -0.1         # reward of a pruned (or failed) child
  latency_weight: 0.02  # fnas reward: weight of the latency headroom term
  clip: 0.1             # fnas reward: clipped to [-clip, clip]
  distance_weight: 0.05 # distance reward: penalty lowered by this per doubling of latency over the spec
  soft_weight: -0.07    # soft reward: accuracy * (latency / spec) ** soft_weight
  population: 10        # evolution: the aging population's size
  tournament: 3         # evolution: members drawn to choose a parent
final:                  # the best k in-spec children retrained from scratch (search/final.py)
  k: 0                  # how many (0: none; the winner keeps its search training)
  epochs: 30            # at most; cosine learning-rate schedule over them
  optimizer: adam
  lr: 0.001
  batch_size: 128
  weight_decay: 0.0
  momentum: 0.9
  patience: 8           # early stopping on validation accuracy
  augment: none         # none | shift (up to 2 pixels each way) | shift-flip (and mirrored)
  qat_epochs: 0         # then quantization-aware training in the design's precision (0: none)
  qat_lr: 0.0001        # its learning rate, on a cosine schedule
```

Every field is optional; the loader names the file, line and field of any fault.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from fnas_hls.errors import FnasError
from fnas_hls.yaml_io import LINE, where

OPTIMIZERS = ("adam", "sgd")
AUGMENTS = ("none", "shift", "shift-flip")  # final training's (search.trainer.augmented)
STRATEGIES = ("rl", "random", "evolution")
REWARDS = ("fnas", "distance", "soft")


@dataclass(frozen=True)
class TrainSettings:
    """How each child network is trained."""

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 256
    epochs: int = 10
    weight_decay: float = 0.0
    momentum: float = 0.9
    patience: int | None = None
    train_subset: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    threads: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SearchSettings:
    """The search: how many episodes, which strategy and reward, the controller's hyper-parameters."""

    episodes: int = 40
    batch: int = 1  # children sampled per controller update (trained at once on workers)
    strategy: str = "rl"
    reward: str = "fnas"
    hidden: int = 64
    controller_lr: float = 0.01
    entropy_weight: float = 0.01
    baseline_decay: float = 0.9
    epsilon: float = 0.0
    penalty: float = -0.1
    latency_weight: float = 0.02
    clip: float = 0.1
    soft_weight: float = -0.07
    distance_weight: float = 0.05
    population: int = 10
    tournament: int = 3

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class FinalSettings:
    """Final training (``search/final.py``): the best ``k`` in-spec children retrained from scratch on
    the whole training split, the validation split held out for early stopping, with a cosine
    learning-rate schedule; the best of them on validation is the winner. ``k`` 0: none (the
    winner keeps its proxy training's weights)."""

    k: int = 0
    epochs: int = 30
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    momentum: float = 0.9
    patience: int | None = 8  # stop after this many epochs without a better validation accuracy
    augment: str = "none"  # none | shift | shift-flip (trainer.AUGMENTS)
    qat_epochs: int = 0  # quantization-aware training after the float training (0: none)
    qat_lr: float = 1e-4

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# field -> (kind, accepted); kinds: int+, int+?, int>=0, num+, num>=0, frac, frac01, num, choice
_TRAIN = {
    "optimizer": ("choice", OPTIMIZERS),
    "lr": ("num+", None),
    "batch_size": ("int+", None),
    "epochs": ("int+", None),
    "weight_decay": ("num>=0", None),
    "momentum": ("frac01", None),
    "patience": ("int+?", None),
    "train_subset": ("int+?", None),
    "val_fraction": ("frac", None),
    "test_fraction": ("frac", None),
    "threads": ("int+?", None),
}
_SEARCH = {
    "episodes": ("int+", None),
    "batch": ("int+", None),
    "strategy": ("choice", STRATEGIES),
    "reward": ("choice", REWARDS),
    "hidden": ("int+", None),
    "controller_lr": ("num+", None),
    "entropy_weight": ("num>=0", None),
    "baseline_decay": ("frac01", None),
    "epsilon": ("frac01", None),
    "penalty": ("num", None),
    "latency_weight": ("num>=0", None),
    "clip": ("num+", None),
    "soft_weight": ("num", None),
    "distance_weight": ("num>=0", None),
    "population": ("int+", None),
    "tournament": ("int+", None),
}


_FINAL = {
    "k": ("int>=0", None),
    "epochs": ("int+", None),
    "optimizer": ("choice", OPTIMIZERS),
    "lr": ("num+", None),
    "batch_size": ("int+", None),
    "weight_decay": ("num>=0", None),
    "momentum": ("frac01", None),
    "patience": ("int+?", None),
    "augment": ("choice", AUGMENTS),
    "qat_epochs": ("int>=0", None),
    "qat_lr": ("num+", None),
}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(value: Any, kind: str, accepted: Any) -> tuple[bool, str]:
    if kind == "choice":
        return value in accepted, "one of " + ", ".join(accepted)
    if kind in ("int+", "int+?"):
        ok = value is None and kind == "int+?" or (isinstance(value, int) and not isinstance(value, bool))
        ok = ok and (value is None or value >= 1)
        return ok, "a positive integer" + (" or null" if kind == "int+?" else "")
    if kind == "int>=0":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0, "an integer >= 0"
    if kind == "num+":
        return _number(value) and value > 0, "a positive number"
    if kind == "num>=0":
        return _number(value) and value >= 0, "a number >= 0"
    if kind == "frac":
        return _number(value) and 0 < value < 1, "a number between 0 and 1 (exclusive)"
    if kind == "frac01":
        return _number(value) and 0 <= value < 1, "a number >= 0 and < 1"
    return _number(value), "a number"


def _parse(raw: Any, source: str, section: str, spec: dict[str, tuple[str, Any]], default: Any) -> Any:
    if raw is None:
        return default
    if not isinstance(raw, dict):
        raise FnasError(f"{source}: field '{section}' must be a mapping of settings ({', '.join(spec)})")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == LINE:
            continue
        if key not in spec:
            raise FnasError(
                f"{where(source, raw)}: unknown field '{section}.{key}'; accepted: {', '.join(spec)}"
            )
        kind, accepted = spec[key]
        ok, what = _check(value, kind, accepted)
        if not ok:
            raise FnasError(f"{where(source, raw)}: field '{section}.{key}' must be {what}, got {value!r}")
        if kind in ("num+", "num>=0", "frac", "frac01", "num"):
            value = float(value)
        values[key] = value
    return replace(default, **values)


def parse_train_settings(raw: Any, source: str, default: TrainSettings | None = None) -> TrainSettings:
    """The ``train:`` mapping of ``source`` (a file name for errors), over ``default``."""
    return _parse(raw, source, "train", _TRAIN, default or TrainSettings())


def parse_search_settings(raw: Any, source: str, default: SearchSettings | None = None) -> SearchSettings:
    """The ``search:`` mapping of ``source`` (a file name for errors), over ``default``."""
    return _parse(raw, source, "search", _SEARCH, default or SearchSettings())


def parse_final_settings(raw: Any, source: str, default: FinalSettings | None = None) -> FinalSettings:
    """The ``final:`` mapping of ``source`` (a file name for errors), over ``default``."""
    return _parse(raw, source, "final", _FINAL, default or FinalSettings())
