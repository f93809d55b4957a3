"""Planners that ignore results: uniform random, Sobol and Latin-hypercube points of the unit box.

Baselines for the benchmark (scipy.stats.qmc for the low-discrepancy designs).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import qmc

from ..space import RecipeSpace
from .base import Planner

__all__ = ["LatinHypercubePlanner", "RandomPlanner", "SobolPlanner"]


class RandomPlanner(Planner):
    """Uniform random points of the unit box."""

    name = "random"

    def _ask(self, n: int) -> list[np.ndarray]:
        return list(self.space.sample(n, self.rng))


class SobolPlanner(Planner):
    """Scrambled Sobol points, drawn once (a power of two >= budget) and handed out in order."""

    name = "sobol"

    def __init__(self, space: RecipeSpace, budget: int, seed: int | None = None):
        super().__init__(space, budget, seed)
        m = max(1, math.ceil(math.log2(self.budget)))
        self._points = qmc.Sobol(space.d, scramble=True, rng=self.rng).random_base2(m)

    def _ask(self, n: int) -> list[np.ndarray]:
        return list(self._points[self.n_asked:self.n_asked + n])


class LatinHypercubePlanner(Planner):
    """A Latin hypercube of the whole budget, handed out in order."""

    name = "lhs"

    def __init__(self, space: RecipeSpace, budget: int, seed: int | None = None):
        super().__init__(space, budget, seed)
        self._points = qmc.LatinHypercube(space.d, rng=self.rng).random(self.budget)

    def _ask(self, n: int) -> list[np.ndarray]:
        return list(self._points[self.n_asked:self.n_asked + n])
