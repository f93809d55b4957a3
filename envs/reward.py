"""The reward every environment pays: buildable performance, or the traditional objective.

Buildable performance of one experiment (dimensionless, about 0 to 1)::

    reward = (measured / theoretical_max) * p_success
             - time_weight * lab_hours - risk_weight * spread

* ``measured``: the property measured on the sample (noisy, as the lab reports it);
* ``theoretical_max``: the highest theoretical performance among the campaign's
  candidate targets (normalises the systems' different units);
* ``p_success``: the process window (:func:`synthgap.envs.buildable.process_window`), the
  share of the lab's furnace offsets (``drift_band`` sd, whole programme shifted) at which
  the same recipe still gives a sample with at least ``purity_threshold`` of the target
  (through the batched kinetics: deterministic and cheap);
* ``spread``: standard deviation of the performance over those offsets, normalised: the
  risk of a recipe that only works on a knife edge;
* ``lab_hours``: lab time the experiment took.

The same firing gives the recipe's buildable performance
(:func:`synthgap.envs.buildable.buildable_performance`, property unit), reported in the
breakdown as ``buildable``: evaluation divides it by the oracle of the campaign's
candidates (:func:`synthgap.envs.buildable.fraction_of_oracle`).

``performance_only`` is what a traditional predictor optimises: the target's theoretical
performance if it sits on the 0 K hull (normalised the same way), whatever the sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .buildable import OFFSET_POINTS, ProcessWindow, buildable_performance
from .buildable import process_window as _window
from .chemistry import ChemicalSystem, Recipe, hull_at
from .lab.measurement import SUCCESS_PURITY
from .lab.thermal import FURNACE_OFFSET_SD_K

REWARD_KINDS = ("buildable", "performance_only")


@dataclass(frozen=True)
class RewardWeights:
    """Explicit weights of the buildable-performance reward.

    Attributes:
        time_weight: cost per lab hour (reward units / h).
        risk_weight: cost per unit of normalised performance spread.
        purity_threshold: target weight fraction that counts as a success
            (default :data:`~synthgap.envs.lab.measurement.SUCCESS_PURITY`).
        drift_band: furnace offset sd (1 sigma, K) the recipe must survive.
        window_points: Gauss-Hermite points across the drift band.
    """

    time_weight: float = 0.005
    risk_weight: float = 0.5
    purity_threshold: float = SUCCESS_PURITY
    drift_band: float = FURNACE_OFFSET_SD_K
    window_points: int = OFFSET_POINTS

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
    """The parts of one reward, for logging and plots.

    Attributes:
        reward: the reward paid.
        performance: measured performance / theoretical max of the candidates.
        p_success: process-window success share, in [0, 1].
        spread: performance sd over the offsets / theoretical max.
        lab_hours: lab time of the experiment, h.
        buildable: the recipe's buildable performance, the target's property unit
            (:mod:`synthgap.envs.buildable`), whatever the reward pays.
    """

    reward: float
    performance: float
    p_success: float
    spread: float
    lab_hours: float
    buildable: float

    def split(self) -> tuple[dict[str, float], dict[str, float]]:
        """``(what the reward paid, privileged)``: the parts an agent may see, and the
        truth-based ``buildable`` value, for evaluation only (``info["privileged"]``)."""
        parts = dict(self.__dict__)
        return parts, {"buildable": parts.pop("buildable")}


def process_window(system: ChemicalSystem, recipes: Recipe | Sequence[Recipe], drift_band: float,
                   purity_threshold: float = SUCCESS_PURITY, points: int = OFFSET_POINTS
                   ) -> list[ProcessWindow]:
    """Each recipe's window over furnace offsets N(0, drift_band) K (whole programme shifted)."""
    return _window(system, recipes, purity_threshold, drift_band, points)


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
        self._standard_band = (self.weights.drift_band, self.weights.window_points) == (FURNACE_OFFSET_SD_K,
                                                                                         OFFSET_POINTS)
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
        w = self.weights
        (window,) = _window(self.system, recipe, w.purity_threshold, w.drift_band, w.window_points)
        # the window's offsets are the definition's unless the weights say otherwise
        buildable = window.mean if self._standard_band else float(buildable_performance(self.system, recipe)[0])
        if self.kind == "performance_only":  # pays the 0 K view; the buildable value is still reported
            value = self.theoretical(recipe.target)
            nan = float("nan")
            return RewardBreakdown(value, perf, nan, nan, float(lab_hours), buildable)
        spread = window.std / self.scale
        value = perf * window.p_success - w.time_weight * lab_hours - w.risk_weight * spread
        return RewardBreakdown(float(value), perf, window.p_success, spread, float(lab_hours), buildable)
