"""Planners that bring chemistry: the thermodynamics-only "traditional AI" and the
synthesis-aware heuristic that learns kinetic traps from the XRD of its failures.
"""

from __future__ import annotations

import warnings

import numpy as np

from synthgap.envs.chemistry import hull_at

from ..space import RecipeSpace
from .base import ExperimentResult, Planner, Suggestion
from .optuna import OptunaPlanner

__all__ = ["ON_HULL_TOLERANCE", "SynthesisAwarePlanner", "ThermoOnlyPlanner", "thermodynamic_pick"]

ON_HULL_TOLERANCE = 1e-6  # eV/atom: "on the 0 K hull"


def thermodynamic_pick(space: RecipeSpace) -> str:
    """The target a 0 K predictor chooses: highest theoretical performance on the 0 K hull."""
    system = space.system
    hull = hull_at(system, 0.0)
    on_hull = [t for t in space.targets if hull.e_above_hull.get(t, np.inf) <= ON_HULL_TOLERANCE]
    pool = on_hull or list(space.targets)
    return max(pool, key=lambda t: system.targets[t].performance.theoretical)


class ThermoOnlyPlanner(Planner):
    """The traditional AI: trust the 0 K hull, choose the target, then optimise its recipe.

    The target is :func:`thermodynamic_pick` (the unobtainium where a system has one);
    recipes for it come from an inner TPE planner restricted to that target's routes.

    Attributes:
        target: the chosen target.
    """

    name = "thermo_only"

    def __init__(self, space: RecipeSpace, budget: int, seed: int | None = None):
        super().__init__(space, budget, seed)
        self.target = thermodynamic_pick(space)
        inner_space = RecipeSpace(space.system, targets=[self.target])
        self.inner = OptunaPlanner(inner_space, self.budget, int(self.rng.integers(2**31 - 1)),
                                   sampler="tpe")

    def _ask(self, n: int) -> list[tuple[object, str]]:
        return [(s.recipe, s.id) for s in self.inner.ask(n)]

    def _tell(self, suggestion: Suggestion, result: ExperimentResult) -> None:
        self.inner.tell(suggestion.payload, result)


class SynthesisAwarePlanner(Planner):
    """ARROWS-style heuristic that learns from the XRD of its failures.

    Per route (target, precursor set) it keeps the best measured performance and its
    failures. A failed experiment whose XRD shows an intermediate (a phase that is neither
    the target nor one of its precursors) marks a *trap* for that precursor set at that
    dwell temperature; traps are shared by every target made from the same precursors
    (pairwise reactions do not care what you wanted). Each ask:

    1. drop targets that failed ``target_patience`` times without one success (unless
       nothing would remain);
    2. score each route: its best measured performance, or its optimistic prior
       ``theoretical * prior * trap_penalty**traps(precursors) * fail_decay**failures``,
       whichever is higher; take the best route;
    3. propose around the route's best recipe (Gaussian steps in the unit box, shrinking
       as the route is exploited) or, without a good recipe yet, fresh candidates that are
       hotter and milled longer than its trapped attempts; candidates close to a trapped
       (precursor set, temperature) region are penalised. Once the route has
       ``surrogate_after`` results, the local steps and as many hot candidates across the
       box are ranked by expected improvement under a Gaussian process fitted to what the
       route measured (the last few per cent of performance sit in a narrow grain-size
       window that local steps alone find slowly).

    Args:
        target_patience: failures (no success) after which a target is abandoned.
        prior: optimism for untried routes, a fraction of theoretical performance.
        trap_penalty: factor per trap observed on a precursor set.
        fail_decay: factor per failure of a route.
        intermediate_threshold: XRD weight fraction that counts as "formed".
        n_candidates: candidates scored per proposal.
        surrogate_after: results of a route from which its model ranks the candidates.
    """

    name = "synthesis_aware"

    def __init__(self, space: RecipeSpace, budget: int, seed: int | None = None,
                 target_patience: int = 3, prior: float = 0.6, trap_penalty: float = 0.5,
                 fail_decay: float = 0.8, intermediate_threshold: float = 0.1,
                 n_candidates: int = 128, surrogate_after: int = 3):
        super().__init__(space, budget, seed)
        self.target_patience = target_patience
        self.prior = prior
        self.trap_penalty = trap_penalty
        self.fail_decay = fail_decay
        self.intermediate_threshold = intermediate_threshold
        self.n_candidates = n_candidates
        self.surrogate_after = surrogate_after
        n = len(space.routes)
        self.best_perf = np.zeros(n)
        self.best_x: list[np.ndarray | None] = [None] * n
        self.n_tried = np.zeros(n, dtype=int)
        self.n_fail = np.zeros(n, dtype=int)
        self.target_fail = {t: 0 for t in space.targets}
        self.target_success = {t: 0 for t in space.targets}
        #: precursor set -> list of (dwell unit coordinate, milling unit coordinate, phases)
        self.traps: dict[tuple[str, ...], list[tuple[float, float, tuple[str, ...]]]] = {}
        self._iT = space.index("dwell_temperature")
        self._iM = space.index("milling_time")

    # -- learning -----------------------------------------------------------------------

    def intermediates(self, suggestion: Suggestion, result: ExperimentResult) -> tuple[str, ...]:
        """Phases in the XRD that are neither the target nor its precursors."""
        r = suggestion.recipe
        skip = {r.target, *r.precursors}
        return tuple(sorted(p for p, f in result.phase_fractions.items()
                            if p not in skip and f >= self.intermediate_threshold))

    def _tell(self, suggestion: Suggestion, result: ExperimentResult) -> None:
        r = suggestion.recipe
        route = self.space.routes.index((r.target, tuple(r.precursors)))
        self.n_tried[route] += 1
        if self.best_x[route] is None or result.performance > self.best_perf[route]:
            self.best_perf[route] = result.performance
            self.best_x[route] = np.asarray(suggestion.x, dtype=float)
        if result.success:
            self.target_success[r.target] += 1
            return
        self.n_fail[route] += 1
        self.target_fail[r.target] += 1
        found = self.intermediates(suggestion, result)
        if found:
            x = suggestion.x
            self.traps.setdefault(tuple(r.precursors), []).append(
                (float(x[self._iT]), float(x[self._iM]), found))

    # -- proposing ----------------------------------------------------------------------

    def active_targets(self) -> list[str]:
        alive = [t for t in self.space.targets
                 if self.target_success[t] > 0 or self.target_fail[t] < self.target_patience]
        return alive or list(self.space.targets)

    def route_values(self) -> np.ndarray:
        """Value of each route (-inf for abandoned targets)."""
        alive = set(self.active_targets())
        vals = np.full(len(self.space.routes), -np.inf)
        for i, (t, pre) in enumerate(self.space.routes):
            if t not in alive:
                continue
            theo = self.space.system.targets[t].performance.theoretical
            optimistic = (theo * self.prior * self.trap_penalty ** len(self.traps.get(pre, []))
                          * self.fail_decay ** self.n_fail[i])
            vals[i] = max(self.best_perf[i], optimistic)
        return vals

    def trap_penalty_of(self, route: int, X: np.ndarray) -> np.ndarray:
        """(n,) how deep candidates sit in trapped regions (0 = none)."""
        pre = self.space.routes[route][1]
        pen = np.zeros(len(X))
        for T, M, _ in self.traps.get(pre, []):
            # not hotter and not milled longer than a trapped attempt: same trap expected
            colder = 1.0 / (1.0 + np.exp((X[:, self._iT] - T - 0.05) / 0.02))
            less_milled = 1.0 / (1.0 + np.exp((X[:, self._iM] - M - 0.1) / 0.05))
            pen += colder * (0.5 + 0.5 * less_milled)
        return pen

    def _propose(self, route: int, taken: list[np.ndarray]) -> np.ndarray:
        k = self.n_candidates
        best = self.best_x[route]
        good = best is not None and self.best_perf[route] > 0.01 * self._theo(route)
        if good and self.rng.random() < 0.8:
            n_used = self.n_tried[route]
            step = max(0.03, 0.15 * 0.9 ** n_used)
            cand = np.repeat(best[None, :], k, axis=0)
            n_cont = self.space.d - 2
            cand[:, :n_cont] += self.rng.normal(0.0, step, (k, n_cont))
            flip = self.rng.random(k) < 0.15
            cand[flip, self.space.index("atmosphere")] = self.rng.random(flip.sum())
            cand = np.clip(cand, 0.0, 1.0)
            told = [(s.x, r.performance) for s, r in self.history if self.space.route_of(s.x) == route]
            if len(told) >= self.surrogate_after:  # enough of this route to model it
                wide = self.space.sample(k, self.rng)
                wide[:, self._iT] = 0.35 + 0.65 * wide[:, self._iT]
                cand = self.space.with_route(np.vstack([cand, wide]), route)
                score = self._expected_improvement(route, told, cand) - 0.1 * self.trap_penalty_of(route, cand)
                if taken:
                    d = np.min(np.linalg.norm(cand[:, None, :] - np.array(taken)[None], axis=2), axis=1)
                    score -= 1.0 * (d < 0.05)
                return cand[int(np.argmax(score + 1e-9 * self.rng.random(len(cand))))]
        else:
            cand = self.space.sample(k, self.rng)
            # untried or failing routes: favour hot, well-milled firings (complete reaction)
            cand[:, self._iT] = 0.35 + 0.65 * cand[:, self._iT]
        cand = self.space.with_route(cand, route)
        score = -self.trap_penalty_of(route, cand)
        if taken:  # spread a batch: stay away from points already proposed this round
            d = np.min(np.linalg.norm(cand[:, None, :] - np.array(taken)[None], axis=2), axis=1)
            score += 0.2 * np.minimum(d, 0.3)
        if not good:
            told = [s.x for s, _ in self.history if self.space.route_of(s.x) == route]
            if told:
                d = np.min(np.linalg.norm(cand[:, None, :] - np.array(told)[None], axis=2), axis=1)
                score += 0.3 * np.minimum(d, 0.5)
        score += 1e-3 * self.rng.random(k)
        return cand[int(np.argmax(score))]

    def _expected_improvement(self, route: int, told: list[tuple[np.ndarray, float]],
                              cand: np.ndarray) -> np.ndarray:
        """(n,) expected improvement of ``cand`` over the route's best, in units of the
        route's theoretical performance, from a Gaussian process fitted to what the route
        measured (scikit-learn; Matern 5/2 with one length scale per coordinate, noise
        fitted)."""
        from scipy.stats import norm
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        cols = [i for i in range(self.space.d) if i != self.space.index("route")]
        X = np.array([x for x, _ in told])[:, cols]
        y = np.array([v for _, v in told]) / self._theo(route)
        kernel = (ConstantKernel(0.1, (1e-3, 10.0)) * Matern(np.full(len(cols), 0.3), (0.03, 3.0), nu=2.5)
                  + WhiteKernel(1e-3, (1e-6, 1e-1)))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=int(self.rng.integers(2**31 - 1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # hyper-parameters at a bound on tiny data sets
            gp.fit(X, y)
        mu, sd = gp.predict(cand[:, cols], return_std=True)
        sd = np.maximum(sd, 1e-9)
        z = (mu - y.max()) / sd
        return (mu - y.max()) * norm.cdf(z) + sd * norm.pdf(z)

    def _theo(self, route: int) -> float:
        return self.space.system.targets[self.space.routes[route][0]].performance.theoretical

    def _ask(self, n: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        vals = self.route_values()
        for _ in range(n):
            # break ties at random so equal routes share the exploration
            route = int(np.argmax(vals + 1e-9 * self.rng.random(len(vals))))
            out.append(self._propose(route, out))
            # a batch spreads over routes: count the pending one as a likely failure
            vals[route] *= self.fail_decay
        return out
