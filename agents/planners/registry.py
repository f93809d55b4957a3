"""The planners by name: the registry behind ``synthgap benchmark --planners``."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..space import RecipeSpace
from .base import Planner, PlannerError
from .heuristics import SynthesisAwarePlanner, ThermoOnlyPlanner
from .optuna import OptunaPlanner
from .sampling import LatinHypercubePlanner, RandomPlanner, SobolPlanner

__all__ = ["PLANNERS", "make_planner", "planner_factory"]

CAMPAIGN = "synthgap/Campaign-v0"


#: name -> factory(space, budget, seed) of every benchmarked planner.
PLANNERS: dict[str, Callable[..., Planner]] = {
    "random": RandomPlanner,
    "sobol": SobolPlanner,
    "lhs": LatinHypercubePlanner,
    "tpe": lambda space, budget, seed=None: OptunaPlanner(space, budget, seed, "tpe"),
    "gp": lambda space, budget, seed=None: OptunaPlanner(space, budget, seed, "gp"),
    "gp_feasible": lambda space, budget, seed=None: OptunaPlanner(space, budget, seed, "gp_feasible"),
    "nsga2": lambda space, budget, seed=None: OptunaPlanner(space, budget, seed, "nsga2"),
    "gp_mo": lambda space, budget, seed=None: OptunaPlanner(space, budget, seed, "gp_mo"),
    "thermo_only": ThermoOnlyPlanner,
    "synthesis_aware": SynthesisAwarePlanner,
}


#: a user's planner: ``package.module:ClassName``
USER_PLANNER = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
POLICY_PREFIX = "policy:"


def planner_factory(name: str) -> Callable[..., Planner]:
    """The factory ``(space, budget, seed) -> Planner`` of a planner spec:

    * a name of :data:`PLANNERS`;
    * ``policy:models:/NAME@ALIAS`` (or ``/VERSION``): a registered Campaign-v0 policy, loaded
      signature-checked (:func:`synthgap.agents.rl.registry.load_policy`), or ``policy:FILE.zip``:
      an SB3 PPO/A2C/SAC file (its env arguments in ``FILE.json`` beside it, if any);
    * ``module:Class``: your own :class:`~.base.Planner` subclass, imported from the Python
      path (the working directory first).

    Raises:
        PlannerError: an unknown name, a policy that cannot be loaded, or a class that is no Planner.
    """
    if name in PLANNERS:
        return PLANNERS[name]
    if name.startswith(POLICY_PREFIX):
        return _policy_factory(name)
    if USER_PLANNER.fullmatch(name):
        return _user_factory(name)
    raise PlannerError(f"unknown planner {name!r}; choose from {', '.join(PLANNERS)}, policy:models:/NAME@ALIAS, "
                       "policy:FILE.zip or module:Class")


def make_planner(name: str, space: RecipeSpace, budget: int, seed: int | None = None) -> Planner:
    """A planner from its spec (:func:`planner_factory`).

    Raises:
        PlannerError: unknown name (the message lists the known ones).
    """
    return planner_factory(name)(space, budget, seed)


@lru_cache(maxsize=16)
def _policy_factory(spec: str) -> Callable[..., Planner]:
    from .policy import CampaignPolicyPlanner

    source = spec[len(POLICY_PREFIX):]
    act, env_kwargs, trained = _load_campaign_policy(source)
    return lambda space, budget, seed=None: CampaignPolicyPlanner(space, budget, act, env_kwargs, seed, name=spec,
                                                                  training_experiments=trained)


def _load_campaign_policy(source: str) -> tuple[Callable[[np.ndarray], np.ndarray], dict, int]:
    """``(act, env_kwargs, experiments simulated in training)`` of a policy spec's source."""
    if source.startswith("models:/"):
        from synthgap.agents.rl.registry import load_policy

        try:
            policy = load_policy(source)
        except ValueError as exc:
            raise PlannerError(f"policy:{source}: {exc}") from None
        if policy.env_id != CAMPAIGN:
            raise PlannerError(f"policy:{source} was trained on {policy.env_id}; a planner needs a {CAMPAIGN} policy")
        return policy.predict, dict(policy.env_kwargs), int(policy.model.num_timesteps)
    path = Path(source)
    if path.suffix != ".zip" or not path.is_file():
        raise PlannerError(f"policy:{source}: not a models:/ URI nor an SB3 .zip file")
    from synthgap.agents.rl.algorithms import algo_class

    for algo in ("ppo", "a2c", "sac"):
        try:
            model = algo_class(algo).load(path, device="cpu")
            break
        except (ValueError, KeyError, TypeError):
            continue
    else:
        raise PlannerError(f"policy:{source}: not a PPO, A2C or SAC file of stable-baselines3")
    sidecar = path.with_suffix(".json")
    env_kwargs = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    return ((lambda obs: model.predict(np.asarray(obs, dtype=np.float32), deterministic=True)[0]), env_kwargs,
            int(model.num_timesteps))


def _user_factory(spec: str) -> Callable[..., Planner]:
    module, cls_name = spec.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # "my_planners:MyPlanner" from where the command runs
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError) as exc:
        raise PlannerError(f"planner {spec!r}: cannot import {cls_name} from {module} ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, Planner)):
        raise PlannerError(f"planner {spec!r} is not a subclass of synthgap.agents.planners.Planner (implement "
                           "_ask and _tell; see the README)")
    return cls
