"""Bayesian optimisation through Optuna's ask/tell API: TPE, Gaussian process, NSGA-II.

Optuna is imported when a planner is built, not when this module is imported.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..space import RecipeSpace
from .base import ExperimentResult, Planner, PlannerError, Suggestion

__all__ = ["OptunaPlanner", "robustness"]


def robustness(suggestion: Suggestion, result: ExperimentResult) -> float:
    """NSGA-II's second objective: the measured weight fraction of the target (0 to 1).

    A fully converted sample sits on a plateau where a furnace offset changes little; a
    half-reacted one sits on a slope. It needs no extra experiment, only the XRD.
    """
    return float(result.phase_fractions.get(suggestion.recipe.target, 0.0))


class OptunaPlanner(Planner):
    """An Optuna sampler driven through the ask/tell API (never re-implemented).

    Args:
        sampler: ``"tpe"``, ``"gp"`` or ``"nsga2"`` (two objectives: performance and
            :func:`robustness`, both maximised).
    """

    SAMPLERS = ("tpe", "gp", "nsga2")

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
            elif sampler == "gp":
                s = optuna.samplers.GPSampler(seed=sampler_seed, n_startup_trials=n_startup)
            else:
                s = optuna.samplers.NSGAIISampler(
                    seed=sampler_seed, population_size=max(4, min(50, self.budget // 3)))
        directions = ["maximize", "maximize"] if sampler == "nsga2" else ["maximize"]
        self.study = optuna.create_study(directions=directions, sampler=s)

    def _ask(self, n: int) -> list[tuple[np.ndarray, object]]:
        out = []
        for _ in range(n):
            trial = self.study.ask()
            out.append((self.space.suggest(trial), trial))
        return out

    def _tell(self, suggestion: Suggestion, result: ExperimentResult) -> None:
        if self.name == "nsga2":
            values = [float(result.performance), robustness(suggestion, result)]
        else:
            values = float(result.performance)
        self.study.tell(suggestion.payload, values)
