"""``synthgap/Campaign-v0`` natively vectorised: N campaigns stepped in one batched call.

::

    envs = gymnasium.make_vec("synthgap/Campaign-v0", num_envs=256, vectorization_mode="vector_entry_point")

Each of the N campaigns is :class:`~synthgap.envs.campaign.CampaignEnv`'s: the same action
and observation spaces (:class:`~synthgap.envs.campaign_spaces.CampaignLayout`), the same
reward (:meth:`~synthgap.envs.reward.Reward.score_batch`), the same history, each in a lab
of its own drawn from the same seeds and world prior. The labs are
:class:`~synthgap.envs.lab.batched.BatchedLabs`: the twin's noise model without its event
queue (one sample in flight per campaign needs none), so a step costs array operations over
the batch instead of N SimPy runs. Its outcome distribution is the twin's
(``tests/lab/test_batched_labs.py``: two-sample tests, 1,000 samples).

Autoreset follows Gymnasium 1.x (``metadata["autoreset_mode"]``): ``"next_step"`` (the
default: the step after a campaign's last one resets it, ignores its action and returns its
first observation with reward 0) or ``"same_step"`` (the last step returns the new
campaign's first observation; the last one is in ``info["final_obs"]``, its info in
``info["final_info"]``). :class:`synthgap.agents.rl.vector_adapter.VectorEnvAdapter` hands
a ``"same_step"`` env to stable-baselines3.

Infos are Gymnasium's vector infos (a dict of (N,) arrays, each with its ``_key`` mask of the
campaigns it holds): ``measured_performance``, ``target_fraction`` (measured; NaN when
failed), ``failed``, ``lab_hours``, ``best_performance``, ``lab`` ("batched"), the reward's
parts under ``reward_parts``; with ``privileged=True``, ``info["privileged"]["buildable"]``:
each recipe's buildable performance in its lab's true world (7 firings per experiment, for
evaluation only: no agent, reward or planner may read it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .buildable import buildable_performance
from .campaign import WORLD_SPLITS, check_action, parse_tasks
from .campaign_spaces import OBS_LIMIT, HistoryBatch, task_layouts
from .chemistry import ChemicalSystem, Recipe
from .lab.batched import BatchedLabs
from .lab.params import LabParams
from .lab.world import DEFAULT_WORLD_SPREAD
from .reward import RewardWeights

__all__ = ["CampaignVectorEnv"]

AUTORESET_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


class CampaignVectorEnv(VectorEnv):
    """N ``Campaign-v0`` campaigns in one batched call (see the module docstring).

    Args:
        num_envs: campaigns stepped together (>= 1).
        system, targets, budget, reward, weights, n_furnaces, world_spread, history, split, tasks:
            as :class:`~synthgap.envs.campaign.CampaignEnv`'s (with several ``tasks`` each
            campaign draws its task at each reset).
        privileged: report ``info["privileged"]["buildable"]`` (costs 7 firings per experiment).
        autoreset_mode: "next_step" (Gymnasium's default) or "same_step".
        config: the labs' parameters (default :class:`~synthgap.envs.lab.params.LabParams`).
        lab, lab_factory: not supported here (the labs are the batched ones): raise with a hint.

    Attributes:
        layouts: each task's :class:`~synthgap.envs.campaign_spaces.CampaignLayout`.
        lab_sets: each task's :class:`~synthgap.envs.lab.batched.BatchedLabs` (N rows; a campaign
            uses its row of its task's).
        task: (N,) each campaign's task.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, system: str | ChemicalSystem = "BaTiO3", targets: Sequence[str] | None = None,
                 budget: int = 20, reward: str = "measured", weights: RewardWeights | None = None,
                 n_furnaces: int = 2, world_spread: float = DEFAULT_WORLD_SPREAD, history: int = 4,
                 split: str | None = None, privileged: bool = False, autoreset_mode: str = "next_step",
                 config: LabParams | None = None, lab: Any = None, lab_factory: Any = None,
                 render_mode: str | None = None, tasks: Sequence[Any] | None = None) -> None:
        if lab is not None or lab_factory is not None:
            raise ValueError("the native vector env runs its own batched labs; to step envs on a lab or a lab "
                             "factory use gymnasium.make_vec(..., vectorization_mode='sync')")
        if render_mode is not None:
            raise ValueError(f"the vector env does not render; render_mode must be None, got {render_mode!r}")
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise ValueError(f"budget must be a positive int, got {budget!r}")
        if split not in WORLD_SPLITS:
            raise ValueError(f"split must be one of {sorted(WORLD_SPLITS, key=str)}, got {split!r}")
        if autoreset_mode not in AUTORESET_MODES:
            raise ValueError(f"autoreset_mode must be one of {sorted(AUTORESET_MODES)}, got {autoreset_mode!r}")
        if tasks is not None and targets is not None:
            raise ValueError("give the candidate targets per task (tasks=[(system, targets), ...]), not targets=")
        self.tasks = parse_tasks(tasks if tasks is not None else [(system, targets)])
        self.layouts = task_layouts(self.tasks, reward, weights, history)
        lay = self.layouts[0]
        self.system = lay.system
        self.num_envs, self.budget, self.split, self.privileged = num_envs, budget, split, bool(privileged)
        self.metadata = {**self.metadata, "autoreset_mode": AUTORESET_MODES[autoreset_mode]}
        self.single_action_space = spaces.Box(-1.0, 1.0, (lay.actions.dim,), np.float32)
        self.single_observation_space = spaces.Box(-OBS_LIMIT, OBS_LIMIT, (lay.obs_size,), np.float32)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.lab_sets = [BatchedLabs(la.system, num_envs, n_furnaces=n_furnaces, config=config,
                                     world_spread=world_spread) for la in self.layouts]
        self._xrd_columns = [np.array([labs.solids.index(p) for p in la.system.solids])
                             for labs, la in zip(self.lab_sets, self.layouts, strict=True)]
        self._target_columns = [np.array([labs.solids.index(t) for t in la.system.targets])
                                for labs, la in zip(self.lab_sets, self.layouts, strict=True)]
        self._descriptors = np.stack([la.descriptors for la in self.layouts])
        self.memory = HistoryBatch(num_envs, history, lay.actions.dim)
        N = num_envs
        self.task = np.zeros(N, dtype=np.int64)
        self._last_xrd, self._lab_state = np.zeros((N, lay.xrd_size)), np.zeros((N, 2))
        self._used, self._lab_hours, self._best = np.zeros(N, dtype=np.int64), np.zeros(N), np.zeros(N)
        self._autoreset = np.zeros(N, dtype=bool)
        self._started = False

    @property
    def labs(self) -> BatchedLabs:
        """The campaigns' labs (one task; with several, :attr:`lab_sets`)."""
        if len(self.lab_sets) > 1:
            raise AttributeError("campaigns of several tasks have one BatchedLabs per task: read lab_sets")
        return self.lab_sets[0]

    @property
    def lab_seeds(self) -> np.ndarray:
        """(N,) the seed of each campaign's lab (its world)."""
        return np.array([self.lab_sets[t].lab_seeds[i] for i, t in enumerate(self.task)])

    # ------------------------------------------------------------------ actions
    def decode_actions(self, actions: np.ndarray) -> list[Recipe]:
        """The recipe each campaign's action (N, D) stands for, in its task (validated like a step's)."""
        a = self._check(actions)
        out: list[Recipe] = []
        for i, t in enumerate(self.task):
            out.append(self.layouts[t].actions.decode(a[i]))
        return out

    def _check(self, actions: np.ndarray) -> np.ndarray:
        return check_action(actions, self.action_space)  # (num_envs, action size): the single env's checks

    # ------------------------------------------------------------------ episodes
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Fresh campaigns (each a new lab in a world of its own); ``options={"reset_mask": (N,) bool}``
        resets only those."""
        super().reset(seed=seed)
        mask = np.ones(self.num_envs, dtype=bool)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], dtype=bool)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
        if seed is not None or not self._started:
            for labs in self.lab_sets:
                labs.rng = np.random.default_rng(int(self.np_random.integers(2**63)))
        self._started = True
        self._reset_rows(np.flatnonzero(mask))
        return self._obs(), {"candidates": [list(self.layouts[t].candidates) for t in self.task],
                             "system": np.array([self.layouts[t].system.name for t in self.task], dtype=object)}

    def _reset_rows(self, rows: np.ndarray) -> None:
        low, high = WORLD_SPLITS[self.split]
        seeds = self.np_random.integers(low, high, rows.size)
        if len(self.layouts) > 1:
            self.task[rows] = self.np_random.integers(len(self.layouts), size=rows.size)
        for t, labs in enumerate(self.lab_sets):
            mine = self.task[rows] == t
            labs.reset(rows[mine], seeds[mine])
        self.memory.clear(rows)
        self._last_xrd[rows], self._lab_state[rows] = 0.0, 0.0
        self._used[rows], self._lab_hours[rows], self._best[rows] = 0, 0.0, 0.0
        self._autoreset[rows] = False

    def _obs(self) -> np.ndarray:
        budget = np.stack([(self.budget - self._used) / self.budget, self._lab_hours / (24.0 * self.budget)], axis=1)
        desc = self._descriptors[self.task] if len(self.layouts) > 1 else None
        return self.layouts[0].observation(self.memory.vector(), self._last_xrd, self._lab_state, budget, desc)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = self._check(actions)
        N = self.num_envs
        reward, terminated = np.zeros(N), np.zeros(N, dtype=bool)
        resetting = np.flatnonzero(self._autoreset)  # next-step autoreset: these only reset
        if resetting.size:
            self._reset_rows(resetting)
        rows = np.flatnonzero(~np.isin(np.arange(N), resetting))
        infos: dict[str, Any] = {}
        if rows.size:
            reward[rows], infos = self._experiments(rows, a[rows])
            terminated[rows] = self._used[rows] >= self.budget
        obs = self._obs()
        if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP and terminated.any():
            done = np.flatnonzero(terminated)
            final = np.empty(N, dtype=object)
            for i in done:
                final[i] = obs[i].copy()
            infos = {**infos, "final_obs": final, "_final_obs": terminated.copy(), "final_info": dict(infos),
                     "_final_info": terminated.copy()}
            self._reset_rows(done)
            obs = self._obs()
        else:
            self._autoreset = terminated.copy()
        return obs, reward.astype(np.float64), terminated, np.zeros(N, dtype=bool), infos

    def _experiments(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """One experiment in each campaign of ``rows``, task by task; their rewards and the step's infos."""
        N = self.num_envs
        value = np.zeros(rows.size)
        cols: dict[str, np.ndarray] = {}
        for t in np.unique(self.task[rows]):
            mine = np.flatnonzero(self.task[rows] == t)
            value[mine], parts = self._task_experiments(int(t), rows[mine], actions[mine])
            for k, v in parts.items():
                if k not in cols:
                    cols[k] = np.full(N, np.nan) if v.dtype.kind == "f" else np.empty(N, dtype=v.dtype)
                    if v.dtype == bool:
                        cols[k][:] = False
                cols[k][rows[mine]] = v
        mask = np.zeros(N, dtype=bool)
        mask[rows] = True
        part_keys = ("reward", "performance", "success", "p_success", "spread", "lab_hours")
        infos: dict[str, Any] = {k: cols[k] for k in ("measured_performance", "target_fraction", "failed",
                                                       "lab_hours", "best_performance", "lab", "system")}
        infos["reward_parts"] = {**{k: cols[f"part_{k}"] for k in part_keys}, **{f"_{k}": mask for k in part_keys}}
        if self.privileged:
            infos["privileged"] = {"buildable": cols["buildable"], "_buildable": mask}
        for k in list(infos):
            infos[f"_{k}"] = mask
        return value, infos

    def _task_experiments(self, t: int, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """One experiment in each campaign of ``rows`` (all of task ``t``): rewards and per-row info columns."""
        lay, labs = self.layouts[t], self.lab_sets[t]
        unit = lay.actions.to_unit_batch(actions)
        batch = lay.space.decode_batch(unit)
        res = labs.run(rows, batch)
        failed = res.failed
        fraction = np.where(failed, np.nan, res.xrd[np.arange(rows.size), self._target_columns[t][batch.target]])
        measured = np.where(failed, 0.0, res.performance)
        value, perf, success, p_success, spread, hours = lay.reward_fn.score_batch(batch, measured, res.lab_hours,
                                                                                  fraction, failed)
        self._used[rows] += 1
        self._lab_hours[rows] += hours
        self._best[rows] = np.maximum(self._best[rows], perf)
        self._last_xrd[rows] = lay.xrd_features(res.xrd[:, self._xrd_columns[t]], lay.space.route_of(unit))
        self._lab_state[rows] = np.nan_to_num(np.stack([res.humidity, res.wait_h / 24.0], axis=1))
        fields = np.stack([perf, np.where(failed, 0.0, fraction), (success == 1.0).astype(float), failed.astype(float),
                           (res.tc_dwell_mean_K - batch.dwell_temperature) / 50.0, res.tc_dwell_std_K / 10.0,
                           hours / 24.0], axis=1)
        self.memory.add(rows, actions, fields)
        out = {"measured_performance": measured, "target_fraction": fraction, "failed": failed, "lab_hours": hours,
               "best_performance": self._best[rows] * lay.reward_fn.scale,
               "lab": np.full(rows.size, "batched", dtype=object),
               "system": np.full(rows.size, lay.system.name, dtype=object),
               **{f"part_{k}": v for k, v in zip(("reward", "performance", "success", "p_success", "spread",
                                                   "lab_hours"), (value, perf, success, p_success, spread, hours),
                                                  strict=True)}}
        if self.privileged:
            out["buildable"] = buildable_performance(lay.system, batch, worlds=labs.worlds.take(rows))
        return value, out

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to free (the labs hold no ports or threads)."""
