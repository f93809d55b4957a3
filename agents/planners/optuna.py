"""Bayesian optimisation through Optuna's ask/tell API: TPE, Gaussian processes, NSGA-II.

* ``tpe``, ``gp``: one objective, the measured performance.
* ``gp_feasible``: the GP with failed syntheses modelled as an unknown constraint, as Atlas
  (Hickman et al., 2023) and Gryffin's feasibility-aware variant do: beside the objective's
  GP, Optuna's ``GPSampler`` fits a GP to the constraint
  ``SUCCESS_PURITY - measured target fraction`` (feasible at <= 0: the target formed as the
  majority phase; told with ``Trial.set_constraint``) and weights the acquisition by the
  probability of feasibility. A graded
  constraint (how far from forming) carries more than a classifier's bit, and the same
  library does both models.
* ``nsga2`` and ``gp_mo``: two objectives, the measured performance (maximised) and the
  experiment's lab hours (minimised) (:mod:`synthgap.agents.objectives`): NSGA-II, and the GP
  sampler with several objectives (log expected hypervolume improvement).

Optuna is imported when a planner is built, not when this module is imported.
"""

from __future__ import annotations

import warnings

import numpy as np

from synthgap.envs.lab.measurement import SUCCESS_PURITY

from ..space import RecipeSpace
from .base import ExperimentResult, Planner, PlannerError, Suggestion

__all__ = ["MULTI_OBJECTIVE", "OptunaPlanner", "infeasibility", "robustness"]

#: samplers told two objectives: measured performance (max) and lab hours (min)
MULTI_OBJECTIVE = ("nsga2", "gp_mo")
_CONSTRAINT = "infeasibility"  # the trial's constraint key


def robustness(suggestion: Suggestion, result: ExperimentResult) -> float:
    """The measured weight fraction of the target (0 to 1): a fully converted sample sits on
    a plateau where a furnace offset changes little; a half-reacted one on a slope."""
    return float(result.phase_fractions.get(suggestion.recipe.target, 0.0))


def infeasibility(suggestion: Suggestion, result: ExperimentResult) -> float:
    """The feasibility constraint of ``gp_feasible``: ``SUCCESS_PURITY`` minus the measured
    target fraction (<= 0: the synthesis succeeded; a failed firing measures nothing: 0)."""
    return SUCCESS_PURITY - (robustness(suggestion, result) if result.phase_fractions else 0.0)


class OptunaPlanner(Planner):
    """An Optuna sampler driven through the ask/tell API (never re-implemented).

    Args:
        sampler: one of :attr:`SAMPLERS` (see the module docstring).
    """

    SAMPLERS = ("tpe", "gp", "gp_feasible", "nsga2", "gp_mo")

    def __init__(self, space: RecipeSpace, budget: int, seed: int | None = None,
                 sampler: str = "tpe"):
        import optuna

        super().__init__(space, budget, seed)
        if sampler not in self.SAMPLERS:
            raise PlannerError(f"unknown Optuna sampler {sampler!r}; choose from {self.SAMPLERS}")
        self.name = sampler
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # per-trial info is noise here
        sampler_seed = int(self.rng.integers(2**31 - 1))
        n_startup = max(4, min(10, self.budget // 3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if sampler == "tpe":
                s = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=n_startup)
            elif sampler in ("gp", "gp_feasible", "gp_mo"):  # gp_feasible: constraints told per trial
                s = optuna.samplers.GPSampler(seed=sampler_seed, n_startup_trials=n_startup)
            else:
                s = optuna.samplers.NSGAIISampler(
                    seed=sampler_seed, population_size=max(4, min(50, self.budget // 3)))
        directions = ["maximize", "minimize"] if sampler in MULTI_OBJECTIVE else ["maximize"]
        self.study = optuna.create_study(directions=directions, sampler=s)

    def _ask(self, n: int) -> list[tuple[np.ndarray, object]]:
        out = []
        for _ in range(n):
            trial = self.study.ask()
            out.append((self.space.suggest(trial), trial))
        return out

    def _tell(self, suggestion: Suggestion, result: ExperimentResult) -> None:
        trial = suggestion.payload
        if self.name == "gp_feasible":
            trial.set_constraint(_CONSTRAINT, infeasibility(suggestion, result))
        if self.name in MULTI_OBJECTIVE:
            self.study.tell(trial, [float(result.performance), float(result.lab_hours)])
        else:
            self.study.tell(trial, float(result.performance))
