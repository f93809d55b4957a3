"""Building environments for training and evaluation from an env id.

:func:`make_vec_env` is the single place where an env id becomes a ``VecEnv``. Env
families that are not plain Gymnasium envs (the PettingZoo shared lab, later) plug in
with :func:`register_vec_env_builder`: a builder ``(env_id, n_envs, seed, env_kwargs) ->
VecEnv`` chosen by env-id prefix, so the trainer does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

VecEnvBuilder = Callable[[str, int, int, dict[str, Any]], Any]
_BUILDERS: dict[str, VecEnvBuilder] = {}


class EnvSpecError(ValueError):
    """An env id is unknown, its kwargs are refused, or it does not suit the algorithm."""


def register_vec_env_builder(prefix: str, builder: VecEnvBuilder) -> None:
    """Route env ids starting with ``prefix`` to ``builder`` (the longest prefix wins)."""
    _BUILDERS[prefix] = builder


def _ensure_registered() -> None:
    import synthgap.envs  # noqa: F401  (registers the synthgap/ ids)


def _shared_lab_builder(env_id: str, n_envs: int, seed: int, env_kwargs: dict[str, Any]):
    from synthgap.agents.shared_policy import shared_lab_vec_env

    try:
        return shared_lab_vec_env(env_id, n_envs, seed, env_kwargs)
    except (TypeError, ValueError) as exc:
        raise EnvSpecError(f"{env_id}: {exc}") from None




MULTI_AGENT_PREFIX = "shared_lab_v0"


def is_multi_agent(env_id: str) -> bool:
    """True for the PettingZoo shared lab (one policy shared by every agent)."""
    return env_id.startswith(MULTI_AGENT_PREFIX)


class SharedPolicyView:
    """The spaces one shared policy sees in a multi-agent env (one agent's view) and its system, no more."""

    spec = None

    def __init__(self, env_kwargs: dict[str, Any]):
        from synthgap.envs import shared_lab_v0

        try:
            env = shared_lab_v0.parallel_env(**env_kwargs)
        except (TypeError, ValueError) as exc:
            raise EnvSpecError(f"{MULTI_AGENT_PREFIX}: bad env kwargs {env_kwargs!r} ({exc})") from None
        agent = env.possible_agents[0]
        self.observation_space, self.action_space = env.observation_space(agent), env.action_space(agent)
        self.system = env.system

    def close(self) -> None:
        pass


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None):
    """One ``gymnasium`` env, with a clear error for an unknown id or refused kwargs.

    For the multi-agent shared lab, a :class:`SharedPolicyView` (its spaces) instead.
    """
    import gymnasium as gym

    if is_multi_agent(env_id):
        return SharedPolicyView(dict(env_kwargs or {}))
    _ensure_registered()
    if env_id not in gym.registry:
        known = ", ".join(sorted(k for k in gym.registry if k.startswith("synthgap/")))
        raise EnvSpecError(f"unknown env id {env_id!r} (synthgap ids: {known})")
    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except TypeError as exc:
        raise EnvSpecError(f"{env_id}: bad env kwargs {env_kwargs!r} ({exc})") from None


def evaluation_kwargs(env_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """Env kwargs to evaluate a policy trained with ``env_kwargs``: in held-out worlds.

    A policy trained on ``split="train"`` is evaluated on ``split="test"`` (the disjoint world
    seeds: worlds it never met); any other setting is kept as trained (say so when reporting).
    """
    kwargs = dict(env_kwargs or {})
    if kwargs.get("split") == "train":
        kwargs["split"] = "test"
    return kwargs


def env_systems(env_id: str, env_kwargs: dict[str, Any] | None = None) -> str:
    """The chemical system(s) an env fires, by name (``"BaTiO3"``; ``"BaTiO3+CaSiO3"`` for a
    task distribution): what ``train`` says it trained on."""
    env = make_env(env_id, env_kwargs)
    try:
        base = getattr(env, "unwrapped", env)
        tasks = getattr(base, "tasks", None)
        if tasks:
            return "+".join(system.name for system, _ in tasks)
        return base.system.name
    finally:
        env.close()


def _gym_vec_env(env_id: str, n_envs: int, seed: int, env_kwargs: dict[str, Any]):
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    make_env(env_id, env_kwargs).close()  # fail early, in this process, with a clear message
    return sb3_make_vec_env(lambda: make_env(env_id, env_kwargs), n_envs=n_envs, seed=seed,
                            vec_env_cls=DummyVecEnv)


def check_vectorization(env_id: str, vectorization: str) -> None:
    """Refuse ``vectorization="native"`` for an env without a native vector env.

    Raises:
        EnvSpecError: naming the envs that have one.
    """
    if vectorization != "native":
        return
    import gymnasium as gym

    _ensure_registered()
    spec = gym.registry.get(env_id)
    if spec is None or spec.vector_entry_point is None:
        native = sorted(k for k, v in gym.registry.items() if k.startswith("synthgap/") and v.vector_entry_point)
        raise EnvSpecError(f"{env_id!r} has no native vector env (those that have: {', '.join(native)}); "
                           "use vectorization: dummy")


def _native_vec_env(env_id: str, n_envs: int, seed: int, env_kwargs: dict[str, Any]):
    """The env's own vector env (its vector entry point), "same_step" autoreset, as an SB3 ``VecEnv``
    (:class:`~synthgap.agents.rl.vector_adapter.VectorEnvAdapter` in a ``VecMonitor``)."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import VecMonitor

    from .vector_adapter import VectorEnvAdapter

    check_vectorization(env_id, "native")
    try:
        venv = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point",
                            autoreset_mode="same_step", **env_kwargs)
    except TypeError as exc:
        raise EnvSpecError(f"{env_id}: bad env kwargs {env_kwargs!r} ({exc})") from None
    out = VecMonitor(VectorEnvAdapter(venv))
    out.seed(seed)
    return out


def make_vec_env(env_id: str, n_envs: int = 1, seed: int = 0, env_kwargs: dict[str, Any] | None = None,
                 vectorization: str = "dummy"):
    """A seeded ``VecEnv`` for ``env_id``: a ``DummyVecEnv`` of ``Monitor``-wrapped envs, or
    (``vectorization="native"``) the env's own batched vector env."""
    env_kwargs = dict(env_kwargs or {})
    if vectorization == "native":
        return _native_vec_env(env_id, n_envs, seed, env_kwargs)
    matches = [p for p in _BUILDERS if env_id.startswith(p)]
    builder = _BUILDERS[max(matches, key=len)] if matches else _gym_vec_env
    return builder(env_id, n_envs, seed, env_kwargs)


register_vec_env_builder(MULTI_AGENT_PREFIX, _shared_lab_builder)


def check_algo_fits(algo: str, action_space) -> None:
    """SAC needs a continuous (Box) action space.

    Raises:
        EnvSpecError: the algorithm cannot act in this space.
    """
    from gymnasium import spaces

    if algo == "sac" and not isinstance(action_space, spaces.Box):
        raise EnvSpecError(f"algo sac needs a Box action space, the env has {action_space}; use ppo or a2c")
