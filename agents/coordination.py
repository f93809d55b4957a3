"""Coordination in the shared lab: who shares a furnace load, and what it buys.

Four ways for the chemists of ``shared_lab_v0`` to act, compared on the same seeds by
:func:`evaluate_policy`:

* ``never_share``: every chemist fires alone (load bin 0), recipes from its own scrambled
  Sobol sequence over its recipe space (a scripted campaign that ignores the others);
* ``always_share``: the same recipes, but every chemist joins the first live chemist with
  the same target that fires alone (the host), so compatible samples go into one furnace
  run with the host's programme;
* ``independent_ppo``: one PPO policy per chemist, trained simultaneously in the same lab
  (:func:`train_independent`: each learner sees the others as part of its world);
* ``shared_ppo``: one PPO policy acting for every chemist (parameter sharing,
  :class:`~synthgap.agents.shared_policy.ParallelVecEnv`).

Metrics per episode (:class:`CoordinationEpisode`): lab throughput (samples finished per
lab-day), mean queue wait per sample (h), lab hours of the whole programme, and per chemist
the buildable performance (:mod:`synthgap.envs.buildable`, privileged: evaluation only) of
its recommendation (its best measured sample) as a fraction of its world's oracle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import qmc

from synthgap.envs import shared_lab_v0

Act = Callable[[str, np.ndarray], np.ndarray]  # (agent, observation) -> action

__all__ = ["SCRIPTED", "CoordinationEpisode", "evaluate_policy", "scripted_policy", "train_independent"]

SCRIPTED = ("never_share", "always_share")


@dataclass
class CoordinationEpisode:
    """One shared-lab programme (every chemist's campaign) and what it achieved.

    Attributes:
        seed: the episode's reset seed (its lab and world).
        samples: samples finished; lab_hours: lab time of the whole programme, h.
        throughput_per_day: samples per lab-day; queue_wait_h: mean queue wait per sample, h.
        shared_fraction: fraction of samples fired in another chemist's load.
        best_buildable: chemist -> buildable performance of its best measured sample, as a
            fraction of its world's oracle for its target (PRIVILEGED: evaluation only).
    """

    seed: int
    samples: int = 0
    lab_hours: float = 0.0
    throughput_per_day: float = 0.0
    queue_wait_h: float = 0.0
    shared_fraction: float = 0.0
    best_buildable: dict[str, float] = field(default_factory=dict)


def _bin_action(choice: int, n_agents: int) -> float:
    """The load coordinate (-1..1) of bin ``choice`` of ``n_agents`` equal bins (its centre)."""
    return (choice + 0.5) / n_agents * 2.0 - 1.0


def scripted_policy(env: shared_lab_v0.SharedLabEnv, kind: str, seed: int) -> Act:
    """``never_share`` or ``always_share`` (see the module docstring) for ``env``'s chemists,
    recipes from per-chemist scrambled Sobol sequences seeded by ``seed``."""
    if kind not in SCRIPTED:
        raise ValueError(f"unknown scripted policy {kind!r}; choose from {SCRIPTED}")
    agents = list(env.possible_agents)
    d = env.action_space(agents[0]).shape[0] - 1
    sobol = {a: qmc.Sobol(d, scramble=True, seed=np.random.default_rng([seed, i])) for i, a in enumerate(agents)}

    def act(agent: str, obs: np.ndarray) -> np.ndarray:
        recipe = sobol[agent].random(1)[0] * 2.0 - 1.0
        choice = 0
        if kind == "always_share":
            host = next((b for b in agents if b in env.agents and env.targets[b] == env.targets[agent]), agent)
            if host != agent:  # join the host: bin k is the k-th other chemist
                choice = 1 + [b for b in agents if b != agent].index(host)
        return np.append(recipe, _bin_action(choice, len(agents))).astype(np.float32)

    return act


def evaluate_policy(make_act: Callable[[shared_lab_v0.SharedLabEnv, int], Act], env_kwargs: dict,
                    seeds: list[int], oracle: Callable[[object, str], float]) -> list[CoordinationEpisode]:
    """Run one programme per seed with the policy ``make_act(env, seed)`` and measure it.

    Args:
        make_act: builds the episode's actor (called after each reset).
        env_kwargs: ``shared_lab_v0.parallel_env`` arguments.
        seeds: reset seeds, one episode each.
        oracle: ``(truth system, target) -> oracle`` in the target's unit (privileged).
    """
    env = shared_lab_v0.parallel_env(**env_kwargs)
    out = []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            act = make_act(env, seed)
            ep = CoordinationEpisode(seed=seed)
            best: dict[str, tuple[float, float]] = {}  # agent -> (measured, buildable)
            waits, shared = [], 0
            start = env.lab.now
            while env.agents:
                actions = {a: act(a, obs[a]) for a in env.agents}
                obs, _, _, _, infos = env.step(actions)
                for a, info in infos.items():
                    waits.append(info["queue_wait_h"])
                    shared += info["host"] != a
                    built = info.get("privileged", {}).get("buildable", 0.0)
                    if a not in best or info["measured_performance"] > best[a][0]:
                        best[a] = (info["measured_performance"], built)
            ep.samples = len(waits)
            ep.lab_hours = (env.lab.now - start) / 3600.0
            ep.throughput_per_day = ep.samples / max(ep.lab_hours, 1e-9) * 24.0
            ep.queue_wait_h = float(np.mean(waits))
            ep.shared_fraction = shared / ep.samples
            truth = env.lab.truth_system
            ep.best_buildable = {a: b / oracle(truth, env.targets[a]) for a, (_, b) in best.items()}
            out.append(ep)
    finally:
        env.close()
    return out


# ---------------------------------------------------------------------------------- independent PPO
class _Lockstep:
    """Steps one multi-agent VecEnv when every learner has submitted its action (a barrier)."""

    def __init__(self, inner, timeout_s: float):
        self.inner = inner
        self.n = inner.num_envs
        self._actions = np.zeros((self.n, *inner.action_space.shape), dtype=inner.action_space.dtype)
        self._op = "reset"
        self._result = None
        self.barrier = threading.Barrier(self.n, action=self._run, timeout=timeout_s)

    def _run(self) -> None:
        if self._op == "reset":
            self._result = self.inner.reset()
        else:
            self.inner.step_async(self._actions)
            self._result = self.inner.step_wait()

    def reset(self, i: int) -> np.ndarray:
        self._op = "reset"
        self.barrier.wait()
        return self._result[i:i + 1]

    def step(self, i: int, action: np.ndarray):
        self._actions[i] = np.asarray(action).reshape(self._actions.shape[1:])
        self._op = "step"
        self.barrier.wait()
        obs, rew, done, infos = self._result
        return obs[i:i + 1], rew[i:i + 1], done[i:i + 1], [infos[i]]


def _slot_env(lock: _Lockstep, i: int):
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    class Slot(VecEnv):
        """Learner ``i``'s view of the shared lab: one slot of the lockstep env."""

        render_mode = None

        def __init__(self):
            super().__init__(1, lock.inner.observation_space, lock.inner.action_space)
            self._action = None

        def reset(self):
            return lock.reset(i)

        def step_async(self, actions):
            self._action = actions[0]

        def step_wait(self):
            return lock.step(i, self._action)

        def close(self):
            pass

        def get_attr(self, name, indices=None):
            return [getattr(self, name)]

        def set_attr(self, name, value, indices=None):
            setattr(self, name, value)

        def env_method(self, method, *args, indices=None, **kwargs):
            return [getattr(self, method)(*args, **kwargs)]

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False]

        def seed(self, seed=None):
            return [None]

    return Slot()


def train_independent(env_kwargs: dict, timesteps: int, seed: int, ppo_kwargs: dict,
                      timeout_s: float = 600.0, configure: Callable | None = None) -> list:
    """One PPO learner per chemist, trained at the same time in one lab (``timesteps`` rounds
    each); returns the models in ``possible_agents`` order. Each learns from its own
    observations and rewards only; the others are part of its world. ``configure(model)``
    (e.g. a logger without a folder) is applied to each model before it learns.

    Raises:
        RuntimeError: a learner failed (the others are stopped, not left waiting).
    """
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from .shared_policy import ParallelVecEnv

    torch.set_num_threads(1)
    inner = ParallelVecEnv(lambda: shared_lab_v0.parallel_env(**env_kwargs), seed=seed)
    lock = _Lockstep(inner, timeout_s)
    models = [PPO("MlpPolicy", VecMonitor(_slot_env(lock, i)), seed=seed + i, verbose=0, device="cpu", **ppo_kwargs)
              for i in range(lock.n)]
    for m in models:
        if configure is not None:
            configure(m)
    errors: list[BaseException] = []

    def learn(model) -> None:
        try:
            model.learn(total_timesteps=timesteps)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others stop
            errors.append(exc)
            lock.barrier.abort()

    threads = [threading.Thread(target=learn, args=(m,), name=f"learner-{i}") for i, m in enumerate(models)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    inner.close()
    if errors:  # the learner that failed first, not the others' broken barriers
        cause = next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
        raise RuntimeError(f"independent training failed: {cause!r}") from cause
    return models
