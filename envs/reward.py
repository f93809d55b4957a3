"""The reward every environment pays: what the lab measured, never the simulator's truth.

Three kinds, each from what a lab could know (dimensionless, about 0 to 1):

``"measured"`` (the default)::

    reward = measured / theoretical_max + success_bonus * success
             - time_weight * lab_hours - failure_cost * failed

* ``measured``: the property the lab measured on the sample (noisy; 0 for a failed firing);
* ``theoretical_max``: the highest theoretical performance among the campaign's candidate
  targets (normalises the systems' different units);
* ``success``: 1 when the measured XRD weight fraction of the target is at least
  ``purity_threshold`` (:data:`~synthgap.envs.lab.measurement.SUCCESS_PURITY`);
* ``lab_hours``: lab time the experiment took; ``failed``: the firing broke down or nothing
  could be measured.

Identical measurements give identical rewards, whatever the recipe (a test holds it).

``"buildable"``: robustness from the lab's **belief** (the nominal model it was given, not
the world it is in)::

    reward = (measured / theoretical_max) * p_success - time_weight * lab_hours - risk_weight * spread

where ``p_success`` and ``spread`` are the recipe's process window under the belief model
(:func:`synthgap.envs.buildable.process_window`: the share of furnace offsets N(0,
``drift_band``), whole programme shifted, that still give ``purity_threshold`` of the
target, and the normalised performance sd over them).

``"performance_only"``: what a traditional predictor optimises: the target's theoretical
performance if it sits on the 0 K hull (normalised the same way), whatever the sample.

Evaluation's measure, buildable performance of a recipe in the lab's *true* world divided by
that world's oracle, is not a reward: the envs report it under ``info["privileged"]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .buildable import OFFSET_POINTS, ProcessWindow
from .buildable import process_window as _window
from .chemistry import ChemicalSystem, Recipe, RecipeBatch, hull_at
from .lab.measurement import SUCCESS_PURITY
from .lab.thermal import FURNACE_OFFSET_SD_K

REWARD_KINDS = ("measured", "buildable", "performance_only")


@dataclass(frozen=True)
class RewardWeights:
    """Explicit weights of the rewards.

    Attributes:
        time_weight: cost per lab hour (reward units / h).
        risk_weight: cost per unit of normalised performance spread ("buildable").
        success_bonus: paid for a measured success ("measured").
        failure_cost: charged for a failed experiment ("measured").
        purity_threshold: target weight fraction that counts as a success
            (default :data:`~synthgap.envs.lab.measurement.SUCCESS_PURITY`).
        drift_band: furnace offset sd (1 sigma, K) the recipe must survive.
        window_points: Gauss-Hermite points across the drift band.
    """

    time_weight: float = 0.005
    risk_weight: float = 0.5
    success_bonus: float = 0.1
    failure_cost: float = 0.1
    purity_threshold: float = SUCCESS_PURITY
    drift_band: float = FURNACE_OFFSET_SD_K
    window_points: int = OFFSET_POINTS

    def __post_init__(self):
        for name in ("time_weight", "risk_weight", "success_bonus", "failure_cost", "drift_band"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"RewardWeights.{name} must be finite and >= 0, got {v!r}")
        if not 0 < self.purity_threshold <= 1:
            raise ValueError(f"RewardWeights.purity_threshold must be in (0, 1], got {self.purity_threshold!r}")
        if not 1 <= self.window_points <= 64:
            raise ValueError(f"RewardWeights.window_points must be in [1, 64], got {self.window_points!r}")


@dataclass(frozen=True)
class RewardBreakdown:
    """The parts of one reward, for logging and plots (all from what the lab measured or believes).

    Attributes:
        reward: the reward paid.
        performance: measured performance / theoretical max of the candidates.
        success: 1.0 if the measured target fraction reached the threshold, else 0.0 (NaN: not measured).
        p_success: process-window success share under the belief model, in [0, 1] ("buildable"; else NaN).
        spread: performance sd over the offsets / theoretical max, belief model ("buildable"; else NaN).
        lab_hours: lab time of the experiment, h.
    """

    reward: float
    performance: float
    success: float
    p_success: float
    spread: float
    lab_hours: float

    def as_dict(self) -> dict[str, float]:
        """The parts that apply to this reward (NaN parts left out: NaN != NaN would make
        two identical infos differ)."""
        return {k: v for k, v in self.__dict__.items() if not math.isnan(v)}


def process_window(system: ChemicalSystem, recipes: Recipe | Sequence[Recipe], drift_band: float,
                   purity_threshold: float = SUCCESS_PURITY, points: int = OFFSET_POINTS
                   ) -> list[ProcessWindow]:
    """Each recipe's window over furnace offsets N(0, drift_band) K (whole programme shifted)."""
    return _window(system, recipes, purity_threshold, drift_band, points)


@dataclass(frozen=True)
class Outcome:
    """One experiment as the lab reported it, in the terms every reward reads.

    Attributes:
        recipe: the recipe as commanded.
        performance: the measured property, target's unit (0 for a failed experiment).
        target_fraction: the measured XRD weight fraction of the recipe's target (NaN when failed).
        failed: the firing failed or nothing was measured (status not "done", or no finite property).
        lab_hours: the sample's lab time from start to finish, h (>= 0).
    """

    recipe: Recipe
    performance: float
    target_fraction: float
    failed: bool
    lab_hours: float

    @classmethod
    def of(cls, record: Any) -> Outcome:
        """The outcome of a lab's :class:`~synthgap.envs.lab.records.SampleRecord`."""
        failed = record.status != "done" or not math.isfinite(record.performance)
        return cls(record.recipe, 0.0 if failed else float(record.performance),
                   math.nan if failed else record.xrd_phase_fractions.get(record.recipe.target, 0.0), failed,
                   max(0.0, (record.finished_s - record.started_s) / 3600.0))


class Reward:
    """The reward of a campaign over candidate targets of one system (see the module docstring).

    Args:
        system: the chemical system as the lab believes it (the nominal model).
        candidates: the targets the campaign may choose among.
        kind: "measured" (default), "buildable" or "performance_only".
        weights: the explicit weights.
    """

    def __init__(self, system: ChemicalSystem, candidates: Sequence[str], kind: str = "measured",
                 weights: RewardWeights | None = None):
        if kind not in REWARD_KINDS:
            raise ValueError(f"reward must be one of {REWARD_KINDS}, got {kind!r}")
        self.system, self.kind = system, kind
        self.weights = weights or RewardWeights()
        self.candidates = tuple(candidates)
        self.scale = max(system.targets[t].performance.theoretical for t in self.candidates)
        hull0 = hull_at(system, 0.0)
        self.on_0K_hull = {t: hull0.e_above_hull[t] < 1e-9 for t in self.candidates}
        #: (T,) :meth:`theoretical` of every target of the system (0 for a non-candidate), by target index
        self._theoretical = np.array([self.theoretical(t) if t in self.on_0K_hull else 0.0 for t in system.targets])

    def theoretical(self, target: str) -> float:
        """The 0 K view of a target, normalised (what a predictor scores it with)."""
        if not self.on_0K_hull[target]:
            return 0.0
        return self.system.targets[target].performance.theoretical / self.scale

    def score(self, outcome: Outcome) -> RewardBreakdown:
        """Score one experiment from its :class:`Outcome`."""
        return self(outcome.recipe, outcome.performance, outcome.lab_hours, outcome.target_fraction, outcome.failed)

    def __call__(self, recipe: Recipe, measured_performance: float, lab_hours: float,
                 target_fraction: float = math.nan, failed: bool = False) -> RewardBreakdown:
        """Score one experiment from what the lab measured: the property (0 when failed), lab
        hours, the target's measured XRD weight fraction, whether it failed (the formulas of
        :meth:`score_batch`, on floats: a campaign step scores one experiment)."""
        w, nan = self.weights, math.nan
        perf = 0.0 if failed else float(measured_performance) / self.scale
        success = nan if math.isnan(target_fraction) else float(not failed and target_fraction >= w.purity_threshold)
        hours = float(lab_hours)
        if self.kind == "performance_only":
            return RewardBreakdown(self.theoretical(recipe.target), perf, success, nan, nan, hours)
        if self.kind == "buildable":
            (window,) = _window(self.system, recipe, w.purity_threshold, w.drift_band, w.window_points)
            spread = window.std / self.scale
            return RewardBreakdown(float(_buildable(w, perf, window.p_success, hours, spread)), perf, success,
                                   window.p_success, spread, hours)
        value = _measured(w, perf, 0.0 if math.isnan(success) else success, hours, float(failed))
        return RewardBreakdown(float(value), perf, success, nan, nan, hours)

    def score_batch(self, recipes: RecipeBatch | None, measured_performance: np.ndarray, lab_hours: np.ndarray,
                    target_fraction: np.ndarray, failed: np.ndarray) -> tuple[np.ndarray, ...]:
        """:meth:`__call__` for B experiments at once (arrays (B,)): the :class:`RewardBreakdown`
        fields as (B,) arrays, in its order (the one formula of every reward). ``recipes`` may be
        None for the "measured" reward, which does not read them."""
        if recipes is None and self.kind != "measured":
            raise ValueError(f"the {self.kind!r} reward needs the recipes")
        w = self.weights
        failed = np.asarray(failed, dtype=bool)
        perf = np.where(failed, 0.0, np.asarray(measured_performance, dtype=float)) / self.scale
        tf = np.asarray(target_fraction, dtype=float)
        success = np.where(np.isnan(tf), np.nan, (~failed & (tf >= w.purity_threshold)).astype(float))
        hours = np.asarray(lab_hours, dtype=float)
        nan = np.full(perf.shape, np.nan)
        if self.kind == "performance_only":  # pays the 0 K view
            return self._theoretical[recipes.target], perf, success, nan, nan, hours
        if self.kind == "buildable":  # robustness from the belief model
            windows = _window(self.system, recipes, w.purity_threshold, w.drift_band, w.window_points)
            p_success = np.array([x.p_success for x in windows])
            spread = np.array([x.std for x in windows]) / self.scale
            return _buildable(w, perf, p_success, hours, spread), perf, success, p_success, spread, hours
        return _measured(w, perf, np.nan_to_num(success), hours, failed), perf, success, nan, nan, hours


def _measured(w: RewardWeights, perf, success, hours, failed):
    """The "measured" reward from its parts (floats or (B,) arrays; success 0/1, failed 0/1)."""
    return perf + w.success_bonus * success - w.time_weight * hours - w.failure_cost * failed


def _buildable(w: RewardWeights, perf, p_success, hours, spread):
    """The "buildable" reward from its parts (floats or (B,) arrays)."""
    return perf * p_success - w.time_weight * hours - w.risk_weight * spread
