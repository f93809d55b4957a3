"""Environments of synthgap: the chemistry world, the lab twin, Gymnasium and PettingZoo envs.

Importing this package registers the Gymnasium ids of :data:`ENTRY_POINTS` under the
``synthgap/`` namespace without importing Gymnasium, so the chemistry and the lab below it
load without Gymnasium (and the lab protocol without SimPy). If Gymnasium is already
imported the ids are registered at once; otherwise a one-shot import hook registers them
the moment ``gymnasium`` finishes loading. Either order works::

    import gymnasium, synthgap.envs      # or: import synthgap.envs, gymnasium
    env = gymnasium.make("synthgap/Campaign-v0")

(Gymnasium 1.x loads no plugin entry points, so a package cannot register itself there.)
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

#: Gymnasium id -> entry point of every registered env (PettingZoo's shared lab is
#: :func:`synthgap.envs.shared_lab_v0.parallel_env`, not registered).
ENTRY_POINTS = {
    "synthgap/Campaign-v0": "synthgap.envs.campaign:CampaignEnv",
    "synthgap/FurnaceControl-v0": "synthgap.envs.furnace_control:FurnaceControlEnv",
}
ENV_IDS = tuple(ENTRY_POINTS)
#: Gymnasium id -> vector entry point (``gymnasium.make_vec(id, num_envs=N)`` steps N in one batched call)
VECTOR_ENTRY_POINTS = {
    "synthgap/Campaign-v0": "synthgap.envs.campaign_vector:CampaignVectorEnv",
}


def register_envs() -> None:
    """Register :data:`ENV_IDS` with Gymnasium (idempotent; imports Gymnasium)."""
    from gymnasium.envs.registration import register, registry

    for env_id, entry_point in ENTRY_POINTS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, vector_entry_point=VECTOR_ENTRY_POINTS.get(env_id))


class _RegisterOnLoad(importlib.abc.Loader):
    """Gymnasium's own loader, then :func:`register_envs` once the package has loaded."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__spec__.loader = module.__loader__ = self.loader  # the module keeps its real loader
        self.loader.exec_module(module)
        _remove_hook()
        register_envs()


class _GymnasiumImportHook(importlib.abc.MetaPathFinder):
    """Finds nothing of its own: hands back Gymnasium's spec with :class:`_RegisterOnLoad`."""

    _searching = False

    def find_spec(self, name, path=None, target=None):
        if name != "gymnasium" or self._searching:
            return None
        self._searching = True  # the other finders locate gymnasium; this one must not recurse
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._searching = False
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterOnLoad(spec.loader)
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _GymnasiumImportHook)]


if "gymnasium" in sys.modules:
    register_envs()
elif not any(isinstance(f, _GymnasiumImportHook) for f in sys.meta_path):
    sys.meta_path.insert(0, _GymnasiumImportHook())
