"""The reward every environment pays: buildable performance, or the traditional objective.

Buildable performance of one experiment (dimensionless, about 0 to 1)::

    reward = (measured / theoretical_max) * p_success
             - time_weight * lab_hours - risk_weight * spread

* ``measured``: the property measured on the sample (noisy, as the lab reports it);
* ``theoretical_max``: the highest theoretical performance among the campaign's
  candidate targets (normalises the systems' different units);
* ``p_success``: the process window, the probability that the same recipe still gives a
  sample with at least ``purity_threshold`` of the target when the furnace runs off by
  the drift band observed in the lab (Gauss-Hermite quadrature over the dwell
  temperature, through the twin's batched kinetics: deterministic and cheap);
* ``spread``: standard deviation of the performance over that band, normalised: the
  risk of a recipe that only works on a knife edge;
* ``lab_hours``: lab time the experiment took.

The planner benchmark scores recipes with the same drift band from the simulator's
truth (:mod:`synthgap.agents.oracle`: noise-free performance averaged over the offsets);
this reward is what a lab can compute from one measured sample.

``performance_only`` is what a traditional predictor optimises: the target's theoretical
performance if it sits on the 0 K hull (normalised the same way), whatever the sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .chemistry import ChemicalSystem, Recipe, RecipeBatch, fire, hull_at
from .lab.thermal import FURNACE_OFFSET_SD_K

REWARD_KINDS = ("buildable", "performance_only")


@dataclass(frozen=True)
class RewardWeights:
    """Explicit weights of the buildable-performance reward.

    Attributes:
        time_weight: cost per lab hour (reward units / h).
        risk_weight: cost per unit of normalised performance spread.
        purity_threshold: target weight fraction that counts as a success.
        drift_band: furnace temperature deviation (1 sigma, K) the recipe must survive.
        window_points: quadrature points across the drift band.
    """

    time_weight: float = 0.005
    risk_weight: float = 0.5
    purity_threshold: float = 0.9
    drift_band: float = FURNACE_OFFSET_SD_K
    window_points: int = 7

    def __post_init__(self):
        for name in ("time_weight", "risk_weight", "drift_band"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"RewardWeights.{name} must be finite and >= 0, got {v!r}")
        if not 0 < self.purity_threshold <= 1:
            raise ValueError(f"RewardWeights.purity_threshold must be in (0, 1], got {self.purity_threshold!r}")
        if not 1 <= self.window_points <= 64:
            raise ValueError(f"RewardWeights.window_points must be in [1, 64], got {self.window_points!r}")


@dataclass(frozen=True)
class RewardBreakdown:
    """The parts of one reward, for logging and plots."""

    reward: float
    performance: float  # normalised measured performance
    p_success: float
    spread: float
    lab_hours: float


@dataclass(frozen=True)
class ProcessWindow:
    """How a recipe fares across the furnace drift band.

    Attributes:
        p_success: weighted share of the band where the target fraction passes.
        mean: weighted mean performance (property units).
        std: weighted standard deviation of performance (property units).
    """

    p_success: float
    mean: float
    std: float


@lru_cache(maxsize=8)
def _quadrature(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes (in sigmas) and weights for a standard normal."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / w.sum()


def process_window(system: ChemicalSystem, recipes: Recipe | Sequence[Recipe], drift_band: float,
                   purity_threshold: float = 0.9, points: int = 7) -> list[ProcessWindow]:
    """Fire each recipe across the drift band (dwell temperature +- N(0, drift_band) K)."""
    recipes = [recipes] if isinstance(recipes, Recipe) else list(recipes)
    base = RecipeBatch.from_recipes(system, recipes)
    nodes, weights = _quadrature(points)
    rows = np.repeat(np.arange(len(recipes)), points)
    batch = {k: v[rows] for k, v in base.__dict__.items()}  # each recipe `points` times
    shifted = batch["dwell_temperature"] + np.tile(nodes * drift_band, len(recipes))
    batch["dwell_temperature"] = np.maximum(shifted, 300.0)
    fired = fire(system, RecipeBatch(**batch))
    ok = (fired.target_fraction >= purity_threshold).reshape(len(recipes), points)
    perf = fired.performance.reshape(len(recipes), points)
    mean = perf @ weights
    std = np.sqrt(np.maximum((perf - mean[:, None]) ** 2 @ weights, 0.0))
    return [ProcessWindow(float(p), float(m), float(s)) for p, m, s in zip(ok @ weights, mean, std, strict=True)]


class Reward:
    """The reward of a campaign over candidate targets of one system.

    Args:
        system: the chemical system.
        candidates: the targets the campaign may choose among.
        kind: "buildable" (default) or "performance_only".
        weights: the explicit weights.
    """

    def __init__(self, system: ChemicalSystem, candidates: Sequence[str], kind: str = "buildable",
                 weights: RewardWeights | None = None):
        if kind not in REWARD_KINDS:
            raise ValueError(f"reward must be one of {REWARD_KINDS}, got {kind!r}")
        self.system, self.kind = system, kind
        self.weights = weights or RewardWeights()
        self.candidates = tuple(candidates)
        self.scale = max(system.targets[t].performance.theoretical for t in self.candidates)
        hull0 = hull_at(system, 0.0)
        self.on_0K_hull = {t: hull0.e_above_hull[t] < 1e-9 for t in self.candidates}

    def theoretical(self, target: str) -> float:
        """The 0 K view of a target, normalised (what a predictor scores it with)."""
        if not self.on_0K_hull[target]:
            return 0.0
        return self.system.targets[target].performance.theoretical / self.scale

    def __call__(self, recipe: Recipe, measured_performance: float, lab_hours: float) -> RewardBreakdown:
        """Score one experiment from what the lab measured."""
        perf = float(measured_performance) / self.scale
        if self.kind == "performance_only":
            value = self.theoretical(recipe.target)
            return RewardBreakdown(value, perf, float("nan"), float("nan"), float(lab_hours))
        w = self.weights
        (window,) = process_window(self.system, recipe, w.drift_band, w.purity_threshold, w.window_points)
        spread = window.std / self.scale
        value = perf * window.p_success - w.time_weight * lab_hours - w.risk_weight * spread
        return RewardBreakdown(float(value), perf, window.p_success, spread, float(lab_hours))
