"""Campaign-v0's action encoding and its history observation.

**Actions.** The six continuous recipe fields map affinely from ``[-1, 1]`` to the unit box of
:class:`~synthgap.envs.recipe_space.RecipeSpace` (ranges and scales of
:mod:`synthgap.envs.chemistry.limits`). Route and atmosphere are categories: one logit per
option, the choice is the argmax (ties: the first), so PPO's Gaussian can move each option's
preference on its own instead of sliding along equal bins of one coordinate.

**History.** The last ``k`` experiments, newest first (recipe as an action, the measured
outcome, success, failure, key telemetry, a filled flag; empty slots are zeros), and the best
recipe so far (by measured performance) with its performance: enough for sequential
experimental design, not only the last result.

Units as stated per entry; everything is a plain float32 vector clipped to +-10.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .chemistry import ChemicalSystem, Recipe, fire, hull_at
from .recipe_space import CONTINUOUS, RecipeSpace
from .reward import Reward, RewardWeights

__all__ = ["ActionEncoding", "CampaignLayout", "History", "HistoryBatch", "ExperimentSummary", "HISTORY_FIELDS",
           "OBS_LIMIT", "REFERENCE_DWELLS_K", "route_predictions", "route_slots", "task_layouts"]

OBS_LIMIT = 10.0  # observations are clipped to [-10, 10] (they are features, not commands)


class ActionEncoding:
    """Actions ``[-1, 1]^(6 + R + A)`` <-> recipes of a :class:`RecipeSpace` (see the module docstring).

    Args:
        space: the recipe space.
        route_slots: route logits in the action (default: the space's routes); more than the
            space has when one action space serves several systems (a task distribution): the
            extra slots are ignored by the argmax.

    Attributes:
        dim: action size: 6 continuous fields, ``R`` route logits, ``A`` atmosphere logits.
        route_slots: ``R``.
        route_slice, atmosphere_slice: where the logits sit (the space's own routes' slots).
    """

    def __init__(self, space: RecipeSpace, route_slots: int | None = None) -> None:
        self.space = space
        n_cont, n_a = len(CONTINUOUS), len(space.atmospheres)
        n_r = len(space.routes) if route_slots is None else int(route_slots)
        if n_r < len(space.routes):
            raise ValueError(f"route_slots={route_slots} is fewer than the {len(space.routes)} routes of the space")
        self.dim = n_cont + n_r + n_a
        self.route_slots = n_r
        self.route_slice = slice(n_cont, n_cont + len(space.routes))  # the slots this space's routes use
        self.atmosphere_slice = slice(n_cont + n_r, self.dim)

    def to_unit(self, action: np.ndarray) -> np.ndarray:
        """An action (dim,) -> the space's unit point (d,)."""
        a = np.asarray(action, dtype=float)
        routes, atms = len(self.space.routes), len(self.space.atmospheres)
        r = int(np.argmax(a[self.route_slice]))
        m = int(np.argmax(a[self.atmosphere_slice]))
        return np.concatenate([(a[: len(CONTINUOUS)] + 1.0) / 2.0, [(r + 0.5) / routes, (m + 0.5) / atms]])

    def decode(self, action: np.ndarray) -> Recipe:
        """An action (dim,) -> its recipe."""
        return self.space.decode(self.to_unit(action))

    def to_unit_batch(self, actions: np.ndarray) -> np.ndarray:
        """Actions (B, dim) -> the space's unit points (B, d), as :meth:`to_unit` row by row."""
        a = np.asarray(actions, dtype=float)
        r = np.argmax(a[:, self.route_slice], axis=1)
        m = np.argmax(a[:, self.atmosphere_slice], axis=1)
        return np.concatenate([(a[:, : len(CONTINUOUS)] + 1.0) / 2.0, ((r + 0.5) / len(self.space.routes))[:, None],
                               ((m + 0.5) / len(self.space.atmospheres))[:, None]], axis=1)

    def encode(self, recipe: Recipe, margin: float = 0.5) -> np.ndarray:
        """A recipe -> an action that decodes to it: the continuous fields at their values,
        the chosen options' logits at ``+margin``, the others at ``-margin`` (not saturated)."""
        x = self.space.encode(recipe)
        out = np.full(self.dim, -margin)
        out[: len(CONTINUOUS)] = 2.0 * x[: len(CONTINUOUS)] - 1.0
        out[self.route_slice.start + self.space.routes.index((recipe.target, tuple(recipe.precursors)))] = margin
        out[self.atmosphere_slice.start + self.space.atmospheres.index(recipe.atmosphere)] = margin
        return out


#: per experiment in the history, after the action: name, meaning and unit
HISTORY_FIELDS = (
    ("performance", "measured performance / theoretical max of the candidates"),
    ("target_fraction", "measured XRD weight fraction of the chosen target (0-1)"),
    ("success", "1 if that fraction reached the success threshold, else 0"),
    ("failed", "1 if the firing failed or nothing was measured, else 0"),
    ("dwell_deviation", "logged dwell thermocouple mean minus the dwell setpoint / 50 K"),
    ("dwell_noise", "logged dwell thermocouple std / 10 K"),
    ("lab_hours", "lab time of the experiment / 24 h"),
    ("filled", "1 for an experiment, 0 for an empty slot"),
)


@dataclass(frozen=True)
class ExperimentSummary:
    """One experiment as the history keeps it (see :data:`HISTORY_FIELDS`)."""

    action: np.ndarray
    performance: float
    target_fraction: float
    success: float
    failed: float
    dwell_deviation: float
    dwell_noise: float
    lab_hours: float

    @classmethod
    def of(cls, action: np.ndarray, record: Any, performance: float, success: float, failed: bool,
           lab_hours: float) -> ExperimentSummary:
        """An experiment from its action, the lab's record (for the dwell telemetry), its measured
        performance / max, success (1/0) and failure, and its lab hours."""
        tc = record.tc_summary or {}
        dwell_K = record.recipe.dwell_temperature
        fraction = 0.0 if failed else record.xrd_phase_fractions.get(record.recipe.target, 0.0)
        return cls(np.asarray(action, dtype=float), performance, fraction, success, float(failed),
                   (tc.get("tc_dwell_mean_K", dwell_K) - dwell_K) / 50.0, tc.get("tc_dwell_std_K", 0.0) / 10.0,
                   lab_hours / 24.0)

    def vector(self) -> np.ndarray:
        values = [self.performance, self.target_fraction, self.success, self.failed, self.dwell_deviation,
                  self.dwell_noise, self.lab_hours, 1.0]
        return np.concatenate([self.action, [v if math.isfinite(v) else 0.0 for v in values]])


@dataclass
class History:
    """The last ``k`` experiments and the best so far (by measured performance).

    Attributes:
        k: history length (>= 1).
        action_dim: size of an action.
    """

    k: int
    action_dim: int
    recent: deque[ExperimentSummary] = field(init=False)
    best: ExperimentSummary | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.k, int) and self.k >= 1):
            raise ValueError(f"history must be an int >= 1, got {self.k!r}")
        self.recent = deque(maxlen=self.k)

    @property
    def slot(self) -> int:
        """Size of one history slot."""
        return self.action_dim + len(HISTORY_FIELDS)

    @property
    def size(self) -> int:
        """Size of :meth:`vector`: k slots, then the best recipe (an action) and its performance."""
        return self.k * self.slot + self.action_dim + 1

    def add(self, e: ExperimentSummary) -> None:
        self.recent.appendleft(e)
        if not e.failed and (self.best is None or e.performance > self.best.performance):
            self.best = e

    def vector(self) -> np.ndarray:
        out = np.zeros(self.size)
        for i, e in enumerate(self.recent):
            out[i * self.slot:(i + 1) * self.slot] = e.vector()
        if self.best is not None:
            out[self.k * self.slot:self.k * self.slot + self.action_dim] = self.best.action
            out[-1] = self.best.performance
        return out


class HistoryBatch:
    """:class:`History` of N campaigns as arrays (the vector env's): the same vector per campaign.

    Args:
        n: campaigns; k: history length (>= 1); action_dim: size of an action.
    """

    def __init__(self, n: int, k: int, action_dim: int) -> None:
        History(k, action_dim)  # validates k
        self.k, self.action_dim = k, action_dim
        self.slot = action_dim + len(HISTORY_FIELDS)
        self.size = k * self.slot + action_dim + 1
        self.recent = np.zeros((n, k, self.slot))
        self.best = np.zeros((n, action_dim + 1))  # the best experiment's action and performance
        self.has_best = np.zeros(n, dtype=bool)

    def clear(self, rows: np.ndarray) -> None:
        """Empty the histories of campaigns ``rows``."""
        self.recent[rows] = 0.0
        self.best[rows] = 0.0
        self.has_best[rows] = False

    def add(self, rows: np.ndarray, actions: np.ndarray, fields: np.ndarray) -> None:
        """One experiment for each campaign of ``rows`` (B,): its action (B, D) and its
        :data:`HISTORY_FIELDS` but ``filled`` (B, 7) (NaN read as 0), as :meth:`History.add`."""
        entry = np.concatenate([actions, np.nan_to_num(fields, nan=0.0, posinf=0.0, neginf=0.0),
                                np.ones((len(rows), 1))], axis=1)
        self.recent[rows, 1:] = self.recent[rows, :-1]
        self.recent[rows, 0] = entry
        perf, failed = fields[:, 0], fields[:, 3] > 0
        better = ~failed & (~self.has_best[rows] | (perf > self.best[rows, -1]))
        r = rows[better]
        self.best[r, :-1], self.best[r, -1] = actions[better], entry[better, self.action_dim]
        self.has_best[r] = True

    def vector(self) -> np.ndarray:
        """(N, size): each campaign's :meth:`History.vector`."""
        return np.concatenate([self.recent.reshape(len(self.recent), -1), self.best], axis=1)


#: the belief model's reference firings of the route descriptors: dwell K, at 4 h (milled 2 h, 10 K/min, air)
REFERENCE_DWELLS_K = (1073.0, 1373.0, 1673.0)


@lru_cache(maxsize=64)
def route_predictions(system: ChemicalSystem, routes: tuple[tuple[str, tuple[str, ...]], ...]) -> np.ndarray:
    """(R, 3) the target weight fraction the belief model (``system``: the nominal model)
    predicts for each route fired at :data:`REFERENCE_DWELLS_K` for 4 h: where a route's
    driving force is low or an intermediate traps it, the cooler ones stay low."""
    recipes = [Recipe(target=t, precursors=pre, excess=0.0, milling_time=2.0, ramp_rate=10.0, dwell_temperature=T,
                      dwell_time=4.0, cooling_rate=10.0, atmosphere="air")
               for t, pre in routes for T in REFERENCE_DWELLS_K]
    return fire(system, recipes).target_fraction.reshape(len(routes), len(REFERENCE_DWELLS_K))


class CampaignLayout:
    """What a campaign of one system over candidate targets is, for the single env and the
    vector env alike: its recipe space and action encoding, its reward, the candidates'
    descriptors and the sizes of the observation (``CampaignEnv``'s spec card documents them).

    With ``route_slots`` (a task distribution: one policy for several systems) the layout is
    system-agnostic: ``route_slots`` route logits, descriptors per route slot (valid,
    theoretical performance / max, on the 0 K hull, :func:`route_predictions`; empty slots
    0) instead of per candidate, and the last XRD as three fractions (the chosen target, its
    route's precursors, everything else) instead of one per solid of the system.

    Args:
        system: the chemical system (the lab's belief); targets: candidate targets (None: all);
        reward: the reward kind; weights: its weights; history: k, experiments kept;
        route_slots: None (one system), or the route slots every task's layout shares.
    """

    def __init__(self, system: ChemicalSystem, targets, reward: str, weights: RewardWeights | None,
                 history: int, route_slots: int | None = None) -> None:
        self.system = system
        self.space = RecipeSpace(system, targets)
        self.candidates = self.space.targets
        self.reward_fn = Reward(system, self.candidates, reward, weights)
        self.actions = ActionEncoding(self.space, route_slots)
        self.history_k = history
        self.solids = system.solids
        self.generic = route_slots is not None
        hull0 = hull_at(system, 0.0)
        scale = self.reward_fn.scale

        def on_hull(t: str) -> float:
            return float(hull0.e_above_hull[t] < 1e-9)

        if self.generic:
            #: (6 route_slots,) per route slot: valid, theoretical / max, on the hull, 3 belief predictions
            slots = np.zeros((int(route_slots), 3 + len(REFERENCE_DWELLS_K)))
            pred = route_predictions(system, self.space.routes)
            for r, (t, _) in enumerate(self.space.routes):
                slots[r] = [1.0, system.targets[t].performance.theoretical / scale, on_hull(t), *pred[r]]
            self.descriptors = slots.ravel()
        else:
            #: (2 C,) per candidate: theoretical performance / max, on the 0 K hull (1/0)
            self.descriptors = np.array([[system.targets[t].performance.theoretical / scale, on_hull(t)]
                                         for t in self.candidates]).ravel()
        self.xrd_size = 3 if self.generic else len(self.solids)
        cols = {p: i for i, p in enumerate(self.solids)}
        # per route of the space: the column of its target and a mask of its precursors (system.solids order)
        self._route_target = np.array([cols[t] for t, _ in self.space.routes])
        self._route_precursors = np.array([[p in pre for p in self.solids] for _, pre in self.space.routes], float)
        self.obs_size = self.descriptors.size + History(history, self.actions.dim).size + self.xrd_size + 4

    def route_index(self, recipe: Recipe) -> int:
        """The route (index into ``space.routes``) of a recipe."""
        return self.space.routes.index((recipe.target, tuple(recipe.precursors)))

    def xrd_features(self, fractions: np.ndarray, routes: np.ndarray) -> np.ndarray:
        """The last-XRD part of the observation from measured fractions (B, P) in ``system.solids``
        order (zeros: nothing measured) of experiments on ``routes`` (B,): the fractions themselves,
        or (generic) the chosen target's, its precursors' and everything else's, (B, 3)."""
        if not self.generic:
            return fractions
        target = fractions[np.arange(len(routes)), self._route_target[routes]]
        precursors = (fractions * self._route_precursors[routes]).sum(axis=1)
        return np.stack([target, precursors, fractions.sum(axis=1) - target - precursors], axis=1)

    def observation(self, history: np.ndarray, last_xrd: np.ndarray, lab_state: np.ndarray,
                    budget_state: np.ndarray, descriptors: np.ndarray | None = None) -> np.ndarray:
        """The observation(s) from their parts: (..., H) history vectors, (..., X) last-XRD
        features, (..., 2) lab state, (..., 2) budget state (``descriptors``: per row, when rows
        are campaigns of different tasks; default this layout's) -> (..., obs_size) float32,
        clipped to +-OBS_LIMIT."""
        lead = history.shape[:-1]
        desc = np.broadcast_to(self.descriptors if descriptors is None else descriptors,
                               (*lead, self.descriptors.size))
        obs = np.concatenate([desc, history, last_xrd, lab_state, budget_state], axis=-1)
        return np.minimum(np.maximum(obs, -OBS_LIMIT), OBS_LIMIT).astype(np.float32)  # np.clip: 3x slower here


def task_layouts(tasks: Sequence[tuple[ChemicalSystem, Sequence[str] | None]], reward: str,
                 weights: RewardWeights | None, history: int) -> list[CampaignLayout]:
    """One layout per task (system, candidate targets): a single task's own layout, or for
    several the system-agnostic layouts sharing one action and observation space.

    Raises:
        ValueError: no tasks.
    """
    if not tasks:
        raise ValueError("a campaign needs at least one task (system, candidate targets)")
    if len(tasks) == 1:
        return [CampaignLayout(tasks[0][0], tasks[0][1], reward, weights, history)]
    slots = route_slots(tasks)
    return [CampaignLayout(system, targets, reward, weights, history, slots) for system, targets in tasks]


def route_slots(tasks: Sequence[tuple[ChemicalSystem, Sequence[str] | None]]) -> int:
    """Route slots of a task distribution's actions: the most routes any task has."""
    return max(len(RecipeSpace(system, targets).routes) for system, targets in tasks)
