"""The planners by name: the registry behind ``synthgap benchmark --planners``."""

from __future__ import annotations

from collections.abc import Callable

from ..space import RecipeSpace
from .base import Planner, PlannerError
from .heuristics import SynthesisAwarePlanner, ThermoOnlyPlanner
from .optuna import OptunaPlanner
from .sampling import LatinHypercubePlanner, RandomPlanner, SobolPlanner

__all__ = ["PLANNERS", "make_planner"]


#: name -> factory(space, budget, seed) of every benchmarked planner.
PLANNERS: dict[str, Callable[..., Planner]] = {
    "random": RandomPlanner,
    "sobol": SobolPlanner,
    "lhs": LatinHypercubePlanner,
    "tpe": lambda space, budget, seed=None: OptunaPlanner(space, budget, seed, "tpe"),
    "gp": lambda space, budget, seed=None: OptunaPlanner(space, budget, seed, "gp"),
    "nsga2": lambda space, budget, seed=None: OptunaPlanner(space, budget, seed, "nsga2"),
    "thermo_only": ThermoOnlyPlanner,
    "synthesis_aware": SynthesisAwarePlanner,
}


def make_planner(name: str, space: RecipeSpace, budget: int, seed: int | None = None) -> Planner:
    """A planner from :data:`PLANNERS` by name.

    Raises:
        PlannerError: unknown name (the message lists the known ones).
    """
    if name not in PLANNERS:
        raise PlannerError(f"unknown planner {name!r}; choose from {', '.join(PLANNERS)}")
    return PLANNERS[name](space, budget, seed)
