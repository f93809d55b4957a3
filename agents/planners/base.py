"""The planner interface: ask for recipes, tell results by suggestion id.

A campaign is a loop of :meth:`Planner.ask` and :meth:`Planner.tell`::

    planner = RandomPlanner(RecipeSpace(system), budget=30, seed=0)
    while planner.remaining:
        for s in planner.ask(2):                         # may stay pending for a while
            planner.tell(s.id, evaluator.evaluate(s.recipe, rng))

The public methods do the bookkeeping (budget, ids, pending set, history) and call two
small abstract hooks, :meth:`Planner._ask` and :meth:`Planner._tell` (the template of
stable-baselines3's callbacks). Results are told by id, so several experiments can be in
the furnaces at once and come back in any order.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthgap.envs.chemistry import Recipe

from ..space import RecipeSpace


class PlannerError(ValueError):
    """Misuse of a planner (bad n, unknown id, ...); the message quotes the bad value."""


class BudgetExhaustedError(PlannerError):
    """More suggestions were asked for than the experiment budget allows."""


class UnknownSuggestionError(PlannerError):
    """A result was told for an id the planner never handed out, or told twice."""


@dataclass(frozen=True)
class Suggestion:
    """One experiment a planner asks for.

    Attributes:
        id: unique within the planner, e.g. ``"tpe-0007"``.
        recipe: what to fire.
        x: the recipe's point in the planner's unit box, (d,).
        payload: planner-private data (e.g. the Optuna trial); not part of equality.
    """

    id: str
    recipe: Recipe
    x: np.ndarray = field(repr=False, compare=False)
    payload: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ExperimentResult:
    """What one experiment told us (the lab's answer; never the simulator's truth).

    Attributes:
        performance: measured property of the target, in the target's unit (0 if the
            target did not form).
        phase_fractions: phase name -> measured weight fraction (XRD refinement), sums to 1.
        success: the target formed as the majority phase (see ``synthgap.envs.lab.measurement.SUCCESS_PURITY``).
        lab_hours: simulated lab time the experiment took, h.
        telemetry: what the lab logged beside the measurement, where it logs it:
            ``tc_dwell_mean_K`` and ``tc_dwell_std_K`` (the dwell's thermocouple, K),
            ``humidity`` (at dispensing, 0-1), ``wait_h`` (queue waits, h).
    """

    performance: float
    phase_fractions: Mapping[str, float]
    success: bool
    lab_hours: float
    telemetry: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"performance": float(self.performance),
                "phase_fractions": {k: float(v) for k, v in self.phase_fractions.items()},
                "success": bool(self.success), "lab_hours": float(self.lab_hours),
                "telemetry": {k: float(v) for k, v in self.telemetry.items()}}


#: What :meth:`Planner._ask` may return per suggestion: a point, a recipe, or either with a
#: payload the planner gets back in :meth:`Planner._tell`.
Proposal = np.ndarray | Recipe | tuple[np.ndarray | Recipe, Any]


class Planner(abc.ABC):
    """Base class: budget accounting and id bookkeeping around ``_ask`` / ``_tell``.

    Args:
        space: the recipe space searched.
        budget: maximum number of suggestions over the planner's life (>= 1).
        seed: seed of :attr:`rng`, the planner's only source of randomness.
    """

    name = "planner"

    def __init__(self, space: RecipeSpace, budget: int, seed: int | None = None):
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
            raise PlannerError(f"budget must be a positive integer, got {budget!r}")
        self.space = space
        self.budget = int(budget)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._n_asked = 0
        self._pending: dict[str, Suggestion] = {}
        self._told: set[str] = set()
        self.history: list[tuple[Suggestion, ExperimentResult]] = []

    # -- public API ---------------------------------------------------------------------

    @property
    def n_asked(self) -> int:
        return self._n_asked

    @property
    def remaining(self) -> int:
        """Suggestions that may still be asked for."""
        return self.budget - self._n_asked

    @property
    def pending(self) -> tuple[Suggestion, ...]:
        """Suggestions handed out and not told yet, oldest first."""
        return tuple(self._pending.values())

    def ask(self, n: int = 1) -> list[Suggestion]:
        """``n`` new suggestions (pending until told).

        Raises:
            BudgetExhaustedError: fewer than ``n`` suggestions left in the budget.
            PlannerError: ``n`` is not a positive integer.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise PlannerError(f"n must be a positive integer, got {n!r}")
        if n > self.remaining:
            raise BudgetExhaustedError(
                f"{self.name}: asked for {n} suggestion(s) but only {self.remaining} of the "
                f"budget of {self.budget} remain ({self._n_asked} already asked)")
        proposals = list(self._ask(int(n)))
        if len(proposals) != n:
            raise RuntimeError(f"{type(self).__name__}._ask({n}) returned {len(proposals)} proposals")
        out = []
        for p in proposals:
            payload = None
            if isinstance(p, tuple):
                p, payload = p
            if isinstance(p, Recipe):
                recipe, x = p, self.space.encode(p)
            else:
                x = np.asarray(p, dtype=float)
                recipe = self.space.decode(x)
            s = Suggestion(f"{self.name}-{self._n_asked:04d}", recipe, x, payload)
            self._n_asked += 1
            self._pending[s.id] = s
            out.append(s)
        return out

    def tell(self, suggestion_id: str, result: ExperimentResult) -> None:
        """Report the result of a pending suggestion.

        Raises:
            UnknownSuggestionError: the id was never handed out, or was already told.
            PlannerError: ``result`` is not an :class:`ExperimentResult`.
        """
        if suggestion_id not in self._pending:
            if suggestion_id in self._told:
                raise UnknownSuggestionError(f"suggestion {suggestion_id!r} was already told")
            shown = ", ".join(list(self._pending)[:5]) or "none"
            raise UnknownSuggestionError(
                f"unknown suggestion id {suggestion_id!r} (pending: {shown})")
        if not isinstance(result, ExperimentResult):
            raise PlannerError(f"result must be an ExperimentResult, got {type(result).__name__}")
        s = self._pending.pop(suggestion_id)
        self._told.add(suggestion_id)
        self.history.append((s, result))
        self._tell(s, result)

    def best(self) -> tuple[Suggestion, ExperimentResult] | None:
        """The told experiment with the highest measured performance (the recommendation)."""
        if not self.history:
            return None
        return max(self.history, key=lambda h: h[1].performance)

    # -- hooks --------------------------------------------------------------------------

    @abc.abstractmethod
    def _ask(self, n: int) -> Sequence[Proposal]:
        """Return ``n`` proposals (points of ``space``, recipes, or either with a payload)."""

    def _tell(self, suggestion: Suggestion, result: ExperimentResult) -> None:  # noqa: B027
        """Learn from one result (default: nothing; the history is kept by the base)."""


class PolicyPlanner(Planner):
    """Any callable policy ``obs -> action`` as a planner (the hook for RL agents).

    The observation is :meth:`observe`'s dict (override it to match a trained policy);
    the action is one point of the unit box, (d,), or n points, (n, d). Subclass and
    override ``observe`` / ``act`` to adapt an SB3 model: ``policy = lambda o: model.predict(
    o, deterministic=True)[0]``.
    """

    name = "policy"

    def __init__(self, space: RecipeSpace, budget: int, policy: Callable[[dict], Any],
                 seed: int | None = None):
        super().__init__(space, budget, seed)
        self.policy = policy

    def observe(self) -> dict[str, np.ndarray]:
        """Observation: told points (k, d), their performance (k,), success (k,), budget left."""
        X = np.array([s.x for s, _ in self.history]).reshape(-1, self.space.d)
        return {"x": X,
                "performance": np.array([r.performance for _, r in self.history], dtype=float),
                "success": np.array([r.success for _, r in self.history], dtype=bool),
                "remaining": np.array([self.remaining], dtype=np.int64)}

    def _ask(self, n: int) -> list[np.ndarray]:
        out = []
        for _ in range(n):
            a = np.asarray(self.policy(self.observe()), dtype=float)
            out.extend(np.atleast_2d(a))
        return out[:n] if len(out) >= n else out + [self.space.sample(1, self.rng)[0]
                                                    for _ in range(n - len(out))]
