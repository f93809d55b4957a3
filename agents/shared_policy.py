"""Parameter sharing: one stable-baselines3 policy acts for every agent of a PettingZoo env.

:class:`ParallelVecEnv` presents a Parallel API env with N agents as an SB3 ``VecEnv`` of
N slots (one per agent). SB3 then trains a single policy on all agents' experience. The
adapter needs agents that all finish at the same step (true of ``shared_lab_v0``, where
every agent runs one experiment per round with the same budget); it refuses an env
where they do not, rather than inventing transitions for finished agents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

LAB_METRICS = {"round_lab_hours": "lab/round_hours", "queue_wait_h": "lab/queue_wait_h"}


class ParallelVecEnv(VecEnv):
    """An SB3 VecEnv over one PettingZoo ParallelEnv: slot i is agent i.

    Args:
        make_env: builds the ParallelEnv (called once).
        seed: seed of the first reset; later resets continue from an internal generator.
    """

    def __init__(self, make_env: Callable[[], Any], seed: int | None = None):
        self.env = make_env()
        self.agent_ids = list(self.env.possible_agents)
        first = self.agent_ids[0]
        obs_space, act_space = self.env.observation_space(first), self.env.action_space(first)
        for a in self.agent_ids[1:]:
            if self.env.observation_space(a) != obs_space or self.env.action_space(a) != act_space:
                raise ValueError("parameter sharing needs identical spaces for every agent")
        super().__init__(len(self.agent_ids), obs_space, act_space)
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._actions: np.ndarray | None = None
        self.episode_returns = np.zeros(self.num_envs)
        self.episode_lengths = np.zeros(self.num_envs, dtype=int)
        self.last_infos: dict[str, dict] = {}

    def _next_seed(self) -> int:
        if self._seed is not None:
            s, self._seed = self._seed, None
            return s
        return int(self._rng.integers(2**31 - 1))

    def _stack(self, obs: dict) -> np.ndarray:
        return np.stack([obs[a] for a in self.agent_ids])

    def reset(self) -> np.ndarray:
        obs, infos = self.env.reset(seed=self._next_seed())
        self.last_infos = infos
        self.episode_returns[:] = 0
        self.episode_lengths[:] = 0
        return self._stack(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        assert self._actions is not None, "step_async first"
        acts = {a: self._actions[i] for i, a in enumerate(self.agent_ids) if a in self.env.agents}
        obs, rewards, terms, truncs, infos = self.env.step(acts)
        rew = np.array([rewards[a] for a in self.agent_ids], dtype=np.float32)
        done = np.array([terms[a] or truncs[a] for a in self.agent_ids])
        if done.any() and not done.all():
            raise RuntimeError("agents finished at different steps; ParallelVecEnv needs them to finish together")
        self.episode_returns += rew
        self.episode_lengths += 1
        stacked = self._stack(obs)
        out_infos = [{**infos[a], "agent": a} for a in self.agent_ids]
        if done.all():
            for i, info in enumerate(out_infos):
                info["terminal_observation"] = stacked[i]
                info["TimeLimit.truncated"] = bool(truncs[self.agent_ids[i]] and not terms[self.agent_ids[i]])
                info["episode"] = {"r": float(self.episode_returns[i]), "l": int(self.episode_lengths[i])}
            stacked = self.reset()
        self.last_infos = dict(zip(self.agent_ids, out_infos, strict=True))
        return stacked, rew, done, out_infos

    def close(self) -> None:
        if hasattr(self.env, "close"):
            self.env.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.env, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [getattr(self.env, method_name)(*args, **kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)


class AgentMetricsCallback(BaseCallback):
    """Logs per-agent episode returns and lab-level figures of multi-agent envs.

    ``agents/<agent>/ep_return`` for each finished episode of a slot that names its agent,
    and the means of ``lab/round_hours`` and ``lab/queue_wait_h`` over the rollout. Envs
    whose infos carry none of these keys log nothing.
    """

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            agent = info.get("agent")
            if agent is not None and "episode" in info:
                self.logger.record_mean(f"agents/{agent}/ep_return", info["episode"]["r"])
            for key, name in LAB_METRICS.items():
                if key in info:
                    self.logger.record_mean(name, float(info[key]))
        return True


def shared_lab_vec_env(env_id: str, n_envs: int, seed: int, env_kwargs: dict):
    """VecEnv builder for the trainer: ``--env shared_lab_v0`` with one slot per agent."""
    from stable_baselines3.common.vec_env import VecMonitor

    from synthgap.envs import shared_lab_v0

    if n_envs != 1:
        raise ValueError(f"{env_id} gives one slot per agent: set n_agents in --env-kwargs, not --n-envs {n_envs}")
    return VecMonitor(ParallelVecEnv(lambda: shared_lab_v0.parallel_env(**env_kwargs), seed=seed))
