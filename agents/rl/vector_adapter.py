"""A Gymnasium 1.x vector env as a stable-baselines3 ``VecEnv``: the thin adapter SB3 trains through.

SB3's ``VecEnv`` resets a finished env in the same step and hands the last observation over
as ``info["terminal_observation"]``: Gymnasium's ``"same_step"`` autoreset, so the adapter
requires that mode and only reshapes what the vector env returns (its dict of arrays into
SB3's list of per-env dicts, the final observation moved to ``terminal_observation``).
Wrap the result in ``VecMonitor`` for episode returns and lengths::

    venv = VecMonitor(VectorEnvAdapter(gymnasium.make_vec("synthgap/Campaign-v0", num_envs=64,
                                                         autoreset_mode="same_step")))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

__all__ = ["VectorEnvAdapter"]


class VectorEnvAdapter(VecEnv):
    """``venv`` (a Gymnasium vector env in ``"same_step"`` autoreset mode) as an SB3 ``VecEnv``.

    Raises:
        ValueError: ``venv`` resets on the next step (SB3 would learn from the reset steps).
    """

    def __init__(self, venv: VectorEnv) -> None:
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"SB3 needs a vector env that resets in the same step; this one's autoreset_mode is "
                             f"{mode!r}: make it with autoreset_mode='same_step'")
        self.venv = venv
        self.render_mode = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seed = self._seeds[0]
        obs, info = self.venv.reset(seed=seed)
        self._seeds = [None] * self.num_envs
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        final = info.get("final_obs")
        for i in np.flatnonzero(done):
            infos[i]["terminal_observation"] = final[i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        self.venv.close()

    def _indices(self, indices: None | int | Iterable[int]) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: None | int | Iterable[int] = None) -> list[Any]:
        """The vector env's attribute, once per index (every campaign shares it)."""
        value = getattr(self, attr_name) if attr_name == "render_mode" else getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: None | int | Iterable[int] = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: None | int | Iterable[int] = None,
                   **method_kwargs: Any) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: None | int | Iterable[int] = None) -> list[bool]:
        return [False for _ in self._indices(indices)]
