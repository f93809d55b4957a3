"""A trained Campaign-v0 policy as a planner: the benchmark runs it like any other.

:class:`CampaignPolicyPlanner` rebuilds, from the planner's own history, exactly the
observation ``synthgap/Campaign-v0`` gives (:class:`~synthgap.envs.campaign_spaces.CampaignLayout`:
the candidates' descriptors, the last ``k`` experiments and the best so far, the last XRD,
the lab's humidity and queue wait, the budget), asks the policy for an action and decodes
it to a recipe with the env's own encoding. What the lab reports beside the measurement
(dwell thermocouple, humidity, wait) comes in :attr:`ExperimentResult.telemetry`; a lab that
does not log one gives 0, as the env does.

The layout is the one the policy was trained on, read from its env arguments: one system
(then only that system fits), or a task distribution (``tasks=``: its route slots fit any
system with as many routes or fewer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from synthgap.envs.campaign_spaces import CampaignLayout, ExperimentSummary, History, route_slots
from synthgap.envs.chemistry import load_system

from ..space import RecipeSpace
from .base import ExperimentResult, Planner, PlannerError, Suggestion

__all__ = ["CampaignPolicyPlanner", "layout_for"]


def training_systems(env_kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the systems a Campaign-v0 policy trained with ``env_kwargs`` has seen:
    its tasks' systems, or its one system (default BaTiO3)."""
    tasks = env_kwargs.get("tasks")
    if not tasks:
        system = env_kwargs.get("system", "BaTiO3")
        return (system if isinstance(system, str) else system.name,)
    from synthgap.envs.campaign import parse_tasks

    return tuple(dict.fromkeys(system.name for system, _ in parse_tasks(tasks)))


def layout_for(space: RecipeSpace, env_kwargs: Mapping[str, Any]) -> CampaignLayout:
    """The Campaign-v0 layout a policy trained with ``env_kwargs`` sees in ``space``'s system.

    Raises:
        PlannerError: the policy's observation cannot describe this system.
    """
    history = int(env_kwargs.get("history", 4))
    reward = str(env_kwargs.get("reward", "measured"))
    system, targets = space.system, list(space.targets)
    tasks = env_kwargs.get("tasks")
    if not tasks:
        trained = env_kwargs.get("system", "BaTiO3")
        trained_name = trained if isinstance(trained, str) else getattr(trained, "name", str(trained))
        if load_system(trained_name).name != system.name:
            raise PlannerError(f"the policy was trained on {trained_name} alone; its observation does not fit "
                               f"{system.name} (train it with tasks=[...] to act in several systems)")
        return CampaignLayout(system, env_kwargs.get("targets", targets), reward, None, history)
    from synthgap.envs.campaign import parse_tasks

    n_slots = route_slots(parse_tasks(tasks))  # the action's slots, without building every task's layout
    if len(space.routes) > n_slots:
        raise PlannerError(f"{system.name} has {len(space.routes)} routes; the policy has {n_slots} route slots")
    return CampaignLayout(system, targets, reward, None, history, n_slots)


class CampaignPolicyPlanner(Planner):
    """A Campaign-v0 policy (``act(obs) -> action``) as a planner (see the module docstring).

    Args:
        space: the recipe space (its system and candidate targets).
        budget: experiments of the campaign (the observation's budget part counts them).
        policy: ``obs (obs_size,) -> action (action_dim,)``, deterministic.
        env_kwargs: the arguments the policy was trained with (its layout).
        seed: unused by the policy; kept for the planner interface.
        name: how the planner is called in tables.
        training_experiments: experiments the policy was trained on (its training cost; the
            benchmark table reports it beside the cost per suggestion).
    """

    def __init__(self, space: RecipeSpace, budget: int, policy: Callable[[np.ndarray], Any],
                 env_kwargs: Mapping[str, Any] | None = None, seed: int | None = None, name: str = "policy",
                 training_experiments: int = 0):
        super().__init__(space, budget, seed)
        self.policy, self.name = policy, name
        self.training_experiments = int(training_experiments)
        #: names of the systems the policy was trained on (the benchmark marks a campaign in another
        #: system as held out)
        self.training_systems = training_systems(env_kwargs or {})
        self.layout = layout_for(space, env_kwargs or {})
        self._actions: dict[str, np.ndarray] = {}
        self.memory = History(self.layout.history_k, self.layout.actions.dim)
        self._last_xrd = np.zeros(self.layout.xrd_size)
        self._lab_state = np.zeros(2)
        self._hours = 0.0

    def observe(self) -> np.ndarray:
        """The Campaign-v0 observation after the experiments told so far, (obs_size,) float32."""
        budget = np.array([self.remaining / self.budget, self._hours / (24.0 * self.budget)])
        return self.layout.observation(self.memory.vector(), self._last_xrd, self._lab_state, budget)

    def _ask(self, n: int) -> list[tuple[Any, np.ndarray]]:
        obs = self.observe()  # n > 1 before any is told: the same observation, so the same action
        out = []
        for _ in range(n):
            action = np.clip(np.asarray(self.policy(obs), dtype=float).reshape(self.layout.actions.dim), -1.0, 1.0)
            out.append((self.layout.actions.decode(action), action))
        return out

    def _tell(self, suggestion: Suggestion, result: ExperimentResult) -> None:
        lay, recipe = self.layout, suggestion.recipe
        failed = not result.phase_fractions
        fraction = 0.0 if failed else float(result.phase_fractions.get(recipe.target, 0.0))
        t = result.telemetry
        dwell = recipe.dwell_temperature
        perf = float(result.performance) / lay.reward_fn.scale
        self.memory.add(ExperimentSummary(
            np.asarray(suggestion.payload, dtype=float), perf, fraction, float(result.success), float(failed),
            (t.get("tc_dwell_mean_K", dwell) - dwell) / 50.0, t.get("tc_dwell_std_K", 0.0) / 10.0,
            result.lab_hours / 24.0))
        fractions = np.array([[float(result.phase_fractions.get(p, 0.0)) for p in lay.solids]])
        self._last_xrd = lay.xrd_features(fractions, np.array([lay.route_index(recipe)]))[0]
        state = (t.get("humidity", 0.0), t.get("wait_h", 0.0) / 24.0)
        self._lab_state = np.array([v if math.isfinite(v) else 0.0 for v in state])
        self._hours += result.lab_hours
