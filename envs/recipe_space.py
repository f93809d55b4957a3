"""The search space of every planner: recipes encoded to and decoded from a unit box.

One place maps a recipe of a system to ``x`` in ``[0, 1]^d`` and back, so every planner
(random, quasi-random, Optuna, heuristics, RL policies) searches the same space.

Coordinates (``d = 8``), in :attr:`RecipeSpace.dim_names` order:

======================  ============================================================
``excess``              the six continuous fields, each over its range in
``milling_time``        :data:`~synthgap.envs.chemistry.limits.RECIPE_LIMITS`, on that
``ramp_rate``           bound's scale (linear, or logarithmic for times and rates that
``dwell_temperature``   span decades)
``dwell_time``
``cooling_rate``
``route``               categorical: (target, precursor set) pairs, ``k`` equal bins
``atmosphere``          categorical: the atmospheres table, equal bins
======================  ============================================================

Ranges and scales come from :mod:`synthgap.envs.chemistry.limits`, the single source of
truth (:func:`synthgap.envs.chemistry.random_recipes` samples the same scales).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from synthgap.envs.chemistry import (
    RECIPE_LIMITS,
    ChemicalSystem,
    Recipe,
    RecipeBatch,
    load_atmospheres,
)

#: Continuous fields searched on a log scale (the others are linear).
LOG_FIELDS = frozenset(k for k, b in RECIPE_LIMITS.items() if b.scale == "log")
CONTINUOUS = tuple(RECIPE_LIMITS)
CATEGORICAL = ("route", "atmosphere")


class SpaceError(ValueError):
    """A point or recipe that does not belong to the space; the message says why."""


def route_label(target: str, precursors: Sequence[str]) -> str:
    """Human-readable name of a route, e.g. ``"BaO+TiO2->BaTiO3"``."""
    return f"{'+'.join(precursors)}->{target}"


class RecipeSpace:
    """Recipes of one system as points of the unit box ``[0, 1]^d``.

    Args:
        system: the chemical system.
        targets: restrict the routes to these targets (default: every target).

    Attributes:
        routes: the (target, precursor set) pairs, in bin order.
        atmospheres: atmosphere names, in bin order.
    """

    def __init__(self, system: ChemicalSystem, targets: Sequence[str] | None = None):
        self.system = system
        names = list(system.targets) if targets is None else list(targets)
        for t in names:
            if t not in system.targets:
                raise SpaceError(f"target {t!r} is not a target of {system.name} "
                                 f"(targets: {', '.join(system.targets)})")
        if not names:
            raise SpaceError("a recipe space needs at least one target")
        self.targets = tuple(names)
        self.routes: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
            (t, tuple(s)) for t in names for s in system.targets[t].precursor_sets
        )
        self.route_labels = tuple(route_label(t, s) for t, s in self.routes)
        self.atmospheres = tuple(load_atmospheres())
        self.dim_names = CONTINUOUS + CATEGORICAL
        self._lo = np.array([RECIPE_LIMITS[k].low for k in CONTINUOUS])
        self._hi = np.array([RECIPE_LIMITS[k].high for k in CONTINUOUS])
        self._log = np.array([k in LOG_FIELDS for k in CONTINUOUS])
        self._scalar_bounds = tuple((k, RECIPE_LIMITS[k].low, RECIPE_LIMITS[k].high, k in LOG_FIELDS)
                                    for k in CONTINUOUS)
        all_targets = list(system.targets)
        self._route_target = np.array([all_targets.index(t) for t, _ in self.routes])
        self._route_set = np.array(
            [system.targets[t].precursor_sets.index(s) for t, s in self.routes])

    @property
    def d(self) -> int:
        """Number of coordinates."""
        return len(self.dim_names)

    def index(self, name: str) -> int:
        """Column of a coordinate in ``x``."""
        return self.dim_names.index(name)

    # -- unit box <-> physical values ----------------------------------------------------

    def _to_physical(self, u: np.ndarray) -> np.ndarray:
        u = np.clip(u, 0.0, 1.0)
        out = self._lo + u * (self._hi - self._lo)
        lo, hi = np.log(self._lo[self._log]), np.log(self._hi[self._log])
        out[..., self._log] = np.exp(lo + u[..., self._log] * (hi - lo))
        return np.clip(out, self._lo, self._hi)

    def _to_unit(self, v: np.ndarray) -> np.ndarray:
        out = (v - self._lo) / (self._hi - self._lo)
        lo, hi = np.log(self._lo[self._log]), np.log(self._hi[self._log])
        out[..., self._log] = (np.log(v[..., self._log]) - lo) / (hi - lo)
        return np.clip(out, 0.0, 1.0)

    @staticmethod
    def _bin(u: np.ndarray, k: int) -> np.ndarray:
        return np.minimum((np.clip(u, 0.0, 1.0) * k).astype(np.int64), k - 1)

    def route_of(self, x: np.ndarray) -> np.ndarray:
        """Route index (into :attr:`routes`) of each point; ``x`` is (d,) or (n, d)."""
        return self._bin(np.asarray(x, dtype=float)[..., self.index("route")], len(self.routes))

    def decode_batch(self, X: np.ndarray) -> RecipeBatch:
        """(n, d) points -> a :class:`RecipeBatch` of n recipes."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.shape[1] != self.d or not np.all(np.isfinite(X)):
            raise SpaceError(f"points must be finite with {self.d} columns {self.dim_names}, "
                             f"got shape {X.shape}")
        phys = self._to_physical(X[:, : len(CONTINUOUS)])
        r = self.route_of(X)
        atm = self._bin(X[:, self.index("atmosphere")], len(self.atmospheres))
        all_atms = list(load_atmospheres())
        atm_idx = np.array([all_atms.index(self.atmospheres[a]) for a in atm], dtype=np.int64)
        cols = {k: phys[:, i] for i, k in enumerate(CONTINUOUS)}
        return RecipeBatch(target=self._route_target[r].astype(np.int64),
                           precursor_set=self._route_set[r].astype(np.int64),
                           atmosphere=atm_idx, **cols)

    def decode(self, x: np.ndarray) -> Recipe:
        """One point (d,) -> a :class:`Recipe` (the same as row 0 of :meth:`decode_batch`,
        in scalar arithmetic: a campaign step decodes one action)."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.d,) or not np.all(np.isfinite(x)):
            raise SpaceError(f"a point must be finite with shape ({self.d},) {self.dim_names}, got shape {x.shape}")
        u = x.tolist()
        values = {}
        for i, (name, lo, hi, log) in enumerate(self._scalar_bounds):
            ui = min(max(u[i], 0.0), 1.0)
            v = math.exp(math.log(lo) + ui * (math.log(hi) - math.log(lo))) if log else lo + ui * (hi - lo)
            values[name] = min(max(v, lo), hi)
        k = len(CONTINUOUS)
        target, precursors = self.routes[min(int(min(max(u[k], 0.0), 1.0) * len(self.routes)), len(self.routes) - 1)]
        atm = self.atmospheres[min(int(min(max(u[k + 1], 0.0), 1.0) * len(self.atmospheres)),
                                   len(self.atmospheres) - 1)]
        return Recipe(target=target, precursors=precursors, atmosphere=atm, **values)

    def encode(self, recipe: Recipe) -> np.ndarray:
        """A recipe -> its point (d,); categorical coordinates sit at bin centres.

        Raises:
            SpaceError: the recipe's route or atmosphere is not in this space.
        """
        key = (recipe.target, tuple(recipe.precursors))
        if key not in self.routes:
            raise SpaceError(f"route {route_label(*key)!r} is not in this space "
                             f"(routes: {', '.join(self.route_labels)})")
        if recipe.atmosphere not in self.atmospheres:
            raise SpaceError(f"atmosphere {recipe.atmosphere!r} unknown "
                             f"(choose from {', '.join(self.atmospheres)})")
        u = self._to_unit(np.array([getattr(recipe, k) for k in CONTINUOUS], dtype=float))
        r = (self.routes.index(key) + 0.5) / len(self.routes)
        a = (self.atmospheres.index(recipe.atmosphere) + 0.5) / len(self.atmospheres)
        return np.concatenate([u, [r, a]])

    def encode_batch(self, batch: RecipeBatch) -> np.ndarray:
        """A batch -> (n, d) points."""
        return np.stack([self.encode(batch.recipe(self.system, i)) for i in range(len(batch))])

    def with_route(self, X: np.ndarray, route: int) -> np.ndarray:
        """Copy of ``X`` (n, d) with every point moved to the bin centre of ``route``."""
        X = np.array(X, dtype=float, copy=True)
        X[..., self.index("route")] = (route + 0.5) / len(self.routes)
        return X

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, d) uniform points of the box."""
        return rng.random((n, self.d))

    # -- Optuna -----------------------------------------------------------------------

    def suggest(self, trial) -> np.ndarray:
        """Ask an Optuna trial for a point (d,): floats in [0, 1], categoricals by label.

        Categoricals go to Optuna as categoricals (its samplers treat them natively), then
        come back as bin centres, so ``decode`` reads every planner's points the same way.
        """
        x = np.empty(self.d)
        for i, name in enumerate(CONTINUOUS):
            x[i] = trial.suggest_float(name, 0.0, 1.0)
        route = self.route_labels.index(trial.suggest_categorical("route", list(self.route_labels)))
        atm = self.atmospheres.index(trial.suggest_categorical("atmosphere", list(self.atmospheres)))
        x[self.index("route")] = (route + 0.5) / len(self.routes)
        x[self.index("atmosphere")] = (atm + 0.5) / len(self.atmospheres)
        return x
