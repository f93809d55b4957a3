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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .chemistry import ChemicalSystem, Recipe, hull_at
from .recipe_space import CONTINUOUS, RecipeSpace
from .reward import Reward, RewardWeights

__all__ = ["ActionEncoding", "CampaignLayout", "History", "HistoryBatch", "ExperimentSummary", "HISTORY_FIELDS",
           "OBS_LIMIT"]

OBS_LIMIT = 10.0  # observations are clipped to [-10, 10] (they are features, not commands)


class ActionEncoding:
    """Actions ``[-1, 1]^(6 + R + A)`` <-> recipes of a :class:`RecipeSpace` (see the module docstring).

    Attributes:
        dim: action size: 6 continuous fields, ``R`` route logits, ``A`` atmosphere logits.
        route_slice, atmosphere_slice: where the logits sit.
    """

    def __init__(self, space: RecipeSpace) -> None:
        self.space = space
        n_cont, n_r, n_a = len(CONTINUOUS), len(space.routes), len(space.atmospheres)
        self.dim = n_cont + n_r + n_a
        self.route_slice = slice(n_cont, n_cont + n_r)
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


class CampaignLayout:
    """What a campaign of one system over candidate targets is, for the single env and the
    vector env alike: its recipe space and action encoding, its reward, the candidates'
    descriptors and the sizes of the observation (``CampaignEnv``'s spec card documents them).

    Args:
        system: the chemical system (the lab's belief); targets: candidate targets (None: all);
        reward: the reward kind; weights: its weights; history: k, experiments kept.
    """

    def __init__(self, system: ChemicalSystem, targets, reward: str, weights: RewardWeights | None,
                 history: int) -> None:
        self.system = system
        self.space = RecipeSpace(system, targets)
        self.candidates = self.space.targets
        self.reward_fn = Reward(system, self.candidates, reward, weights)
        self.actions = ActionEncoding(self.space)
        self.history_k = history
        self.solids = system.solids
        hull0 = hull_at(system, 0.0)
        #: (2 C,) per candidate: theoretical performance / max, on the 0 K hull (1/0)
        self.descriptors = np.array(
            [[system.targets[t].performance.theoretical / self.reward_fn.scale, float(hull0.e_above_hull[t] < 1e-9)]
             for t in self.candidates]).ravel()
        self.obs_size = self.descriptors.size + History(history, self.actions.dim).size + len(self.solids) + 4

    def observation(self, history: np.ndarray, last_xrd: np.ndarray, lab_state: np.ndarray,
                    budget_state: np.ndarray) -> np.ndarray:
        """The observation(s) from their parts: (..., H) history vectors, (..., P) last XRD,
        (..., 2) lab state, (..., 2) budget state -> (..., obs_size) float32, clipped to +-OBS_LIMIT."""
        lead = history.shape[:-1]
        obs = np.concatenate([np.broadcast_to(self.descriptors, (*lead, self.descriptors.size)), history, last_xrd,
                              lab_state, budget_state], axis=-1)
        return np.minimum(np.maximum(obs, -OBS_LIMIT), OBS_LIMIT).astype(np.float32)  # np.clip: 3x slower here
