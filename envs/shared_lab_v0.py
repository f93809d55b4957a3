"""``shared_lab_v0``: several campaign agents share one lab's furnaces and XRD (PettingZoo).

Use::

    from synthgap.envs import shared_lab_v0
    env = shared_lab_v0.parallel_env(n_agents=3)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from .buildable import privileged_info
from .campaign import OBS_LIMIT, LabFactory, SimLabFactory, check_action
from .campaign_spaces import ExperimentSummary, History
from .chemistry import ChemicalSystem, Recipe, hull_at, load_system
from .lab.world import DEFAULT_WORLD_SPREAD
from .recipe_space import RecipeSpace
from .reward import Outcome, Reward, RewardWeights

DEFAULT_AGENTS = 4  # with one furnace: the setting where sharing loads matters
DEFAULT_FURNACES = 1
PROGRAMME_FIELDS = ("ramp_rate", "dwell_temperature", "dwell_time", "cooling_rate", "atmosphere")


def parallel_env(**kwargs) -> SharedLabEnv:
    """PettingZoo's convention: the Parallel API env of this module."""
    return SharedLabEnv(**kwargs)


class SharedLabEnv(ParallelEnv):
    """Several chemists run campaigns in one lab and share its furnaces and XRD.

    Each agent has its own target and budget. Every step, each live agent proposes one
    recipe; all samples of the round go through the lab together on the lab clock, so they
    queue for the balance, mill, furnaces and XRD. An agent may *join* another agent's
    furnace load: its sample is fired with the host's programme in the same furnace run,
    which frees a furnace and shortens everyone's queue. Coordination pays through a
    shared lab-throughput term.

    ## Action Space (per agent)
    ``Box(-1, 1, (9,), float32)``: coordinates 0-7 are a recipe as in ``Campaign-v0``
    (routes restricted to the agent's target; ranges from :mod:`synthgap.envs.chemistry.limits`):

    | index | field             | range / meaning                                    |
    |-------|-------------------|----------------------------------------------------|
    | 0     | excess            | 0 to 0.3 (fraction of the first precursor), linear |
    | 1     | milling_time      | 0 to 12 h, linear                                  |
    | 2     | ramp_rate         | 1 to 50 K/min, log                                 |
    | 3     | dwell_temperature | 573 to 1773 K, linear                              |
    | 4     | dwell_time        | 0.1 to 48 h, log                                   |
    | 5     | cooling_rate      | 0.5 to 50 K/min, log                               |
    | 6     | route             | the agent's target's precursor sets, equal bins    |
    | 7     | atmosphere        | air, O2, N2, CO2, equal bins                       |
    | 8     | load              | ``n_agents`` equal bins (below)                    |

    Coordinate 8 picks the furnace load in
    ``n_agents`` equal bins: bin 0 fires alone, bin k joins the k-th other agent's load
    (the host's programme replaces the joiner's for that round). Joining an agent that
    has finished, or one that joins someone else, is infeasible and masked in
    ``infos[agent]["action_mask"]`` (bool, ``n_agents`` entries, bin order); a masked
    choice fires alone and is reported as ``infos[agent]["masked_choice"]``. Out-of-box
    or non-finite actions raise ``ValueError``.

    ## Observation Space (per agent)
    ``Box(-10, 10, (2 + 16 k + 9 + P + 3 + 6 (n - 1),), float32)``: the agent's
    Campaign-v0-style features: its target's theoretical performance and 0 K stability (2);
    its history (:mod:`synthgap.envs.campaign_spaces`): the last ``k`` experiments, newest
    first, each its recipe coordinates (8, action units) and measured performance / max,
    measured target fraction, success, failed, dwell thermocouple minus setpoint / 50 K,
    dwell thermocouple std / 10 K, lab hours / 24 h, filled (8), then the best recipe so far
    and its performance (9); its last XRD over the P solids; its last queue wait / 24 h;
    budget left and the last round's lab hours / 24 h (2); and, per other agent, its last
    programme (5 coordinates in action units) and whether it is live.

    ## Rewards
    Per agent: the measured reward of its own sample (``reward="measured"`` of
    :mod:`synthgap.envs.reward`: measured performance / max, a measured success, minus lab
    hours and failures) minus ``wait_weight`` x its queue waits (h); plus, for every live
    agent, ``throughput_weight`` x samples finished per lab-day in the round. The recipe's
    buildable performance in the lab's true world is only in ``infos[agent]["privileged"]``.

    ## Starting State
    A fresh lab from ``lab_factory(system, seed)``, the seed drawn from the env's generator
    (the default factory: a new twin, furnaces with fresh offsets); nothing measured yet.

    ## Episode End
    An agent terminates when its budget is spent; a finished agent never comes back.

    ## Arguments
    system (default "BaTiO3"); n_agents (default 4); targets: one per agent (default:
    the system's first buildable target for all); budget per agent (default 10);
    n_furnaces: furnaces of the default twin (default 1; unused with ``lab_factory``). The
    defaults are the setting where coordination matters: four chemists queue for one
    furnace whose programmes take hours to days, so a round fired alone takes four furnace
    runs and a shared load one (``synthgap lab coordination`` measures what that buys);
    weights: :class:`RewardWeights`; history: k (default 4); wait_weight (per hour, default 0.005);
    throughput_weight (default 0.05); lab_factory: callable ``(system, seed) -> Lab``
    called at every reset, as in ``Campaign-v0`` (default :class:`SimLabFactory`, the SimPy
    twin with ``n_furnaces`` in a hidden world of spread ``world_spread``, default 1). The
    env closes the lab it made (``close()``, if the lab has one) at the next reset and in
    :meth:`close`.
    """

    metadata = {"name": "shared_lab_v0", "render_modes": []}

    def __init__(self, system: str | ChemicalSystem = "BaTiO3", n_agents: int = DEFAULT_AGENTS,
                 targets: Sequence[str] | None = None, budget: int = 10, n_furnaces: int = DEFAULT_FURNACES,
                 weights: RewardWeights | None = None, wait_weight: float = 0.005,
                 throughput_weight: float = 0.05, lab_factory: LabFactory | None = None,
                 world_spread: float = DEFAULT_WORLD_SPREAD, history: int = 4):
        if lab_factory is not None and not callable(lab_factory):
            raise TypeError(f"lab_factory must be a callable (system, seed) -> Lab, got {lab_factory!r}")
        self.system = load_system(system) if isinstance(system, str) else system
        if not isinstance(n_agents, int) or n_agents < 1:
            raise ValueError(f"n_agents must be a positive int, got {n_agents!r}")
        if not isinstance(budget, int) or budget < 1:
            raise ValueError(f"budget must be a positive int, got {budget!r}")
        default = next(t for t, v in self.system.targets.items() if not v.unobtainium)
        targets = list(targets) if targets is not None else [default] * n_agents
        if len(targets) != n_agents:
            raise ValueError(f"give one target per agent: {n_agents} agents, {len(targets)} targets")
        self.possible_agents = [f"chemist_{i}" for i in range(n_agents)]
        self.targets = dict(zip(self.possible_agents, targets, strict=True))
        self.recipe_spaces = {a: RecipeSpace(self.system, [t]) for a, t in self.targets.items()}
        self.rewards_fn = {a: Reward(self.system, [t], "measured", weights) for a, t in self.targets.items()}
        self.budget, self.n_furnaces = budget, n_furnaces
        self.lab_factory: LabFactory = (lab_factory if lab_factory is not None
                                        else SimLabFactory(n_furnaces, world_spread))
        self.wait_weight, self.throughput_weight = float(wait_weight), float(throughput_weight)
        hull0 = hull_at(self.system, 0.0)
        self._desc = {a: np.array([1.0, float(hull0.e_above_hull[t] < 1e-9)]) for a, t in self.targets.items()}
        self.solids = self.system.solids
        d = next(iter(self.recipe_spaces.values())).d
        self._d = d
        self._history_k = history
        # History(...) validates ``history``
        self._obs_dim = 2 + History(history, d).size + len(self.solids) + 2 + 1 + 6 * (n_agents - 1)
        self.lab = None
        self.agents: list[str] = []
        self.render_mode = None

    @functools.cache  # noqa: B019 - one space object per agent, as PettingZoo asks
    def observation_space(self, agent: str) -> spaces.Box:
        return spaces.Box(-OBS_LIMIT, OBS_LIMIT, (self._obs_dim,), np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self._d + 1,), np.float32)

    # -- episode ---------------------------------------------------------------------------

    def reset(self, seed: int | None = None, options: dict | None = None):
        self._rng = np.random.default_rng(seed)
        self.close()
        self.lab = self.lab_factory(self.system, int(self._rng.integers(2**31 - 1)))
        self.agents = list(self.possible_agents)
        n = len(self.possible_agents)
        self._used = dict.fromkeys(self.agents, 0)
        self._last_action = {a: np.zeros(self._d + 1) for a in self.agents}
        self._last_xrd = {a: np.zeros(len(self.solids)) for a in self.agents}
        self._memory = {a: History(self._history_k, self._d) for a in self.agents}
        self._queue_wait = dict.fromkeys(self.agents, 0.0)
        self._best = dict.fromkeys(self.agents, 0.0)
        self._round_hours = 0.0
        self._n = n
        return {a: self._obs(a) for a in self.agents}, {a: self._info(a) for a in self.agents}

    def close(self) -> None:
        """Close the lab this env made (a hardware lab frees its ports); the twin has nothing to close."""
        lab, self.lab = self.lab, None
        close = getattr(lab, "close", None)
        if close is not None:
            close()

    def _others(self, agent: str) -> list[str]:
        return [b for b in self.possible_agents if b != agent]

    def action_mask(self, agent: str) -> np.ndarray:
        """Feasible load choices: fire alone, or join a live other agent."""
        return np.array([True] + [b in self.agents for b in self._others(agent)])

    def _info(self, agent: str) -> dict:
        return {"action_mask": self.action_mask(agent), "target": self.targets[agent]}

    def _obs(self, agent: str) -> np.ndarray:
        left = np.array([(self.budget - self._used[agent]) / self.budget, self._round_hours / 24.0])
        parts = [self._desc[agent], self._memory[agent].vector(), self._last_xrd[agent],
                 [self._queue_wait[agent]], left]
        for b in self._others(agent):
            prog = self._last_action[b][[2, 3, 4, 5, 7]]
            parts.append(np.concatenate([prog, [float(b in self.agents)]]))
        obs = np.concatenate(parts)
        return np.clip(obs, -OBS_LIMIT, OBS_LIMIT).astype(np.float32)

    def _host(self, agent: str, choice: dict[str, int]) -> str:
        """The agent whose programme this agent's sample is fired with (itself if alone)."""
        k = choice[agent]
        if k == 0:
            return agent
        host = self._others(agent)[k - 1]
        # a host that joins someone else, or a finished one, cannot host: fire alone
        if host not in choice or choice[host] != 0:
            return agent
        return host

    def step(self, actions: dict):
        if self.lab is None:
            raise RuntimeError("call reset() before step()")
        live = list(self.agents)
        missing = [a for a in live if a not in actions]
        if missing:
            raise ValueError(f"actions missing for live agents {missing}")
        recipes: dict[str, Recipe] = {}
        choice: dict[str, int] = {}
        acts: dict[str, np.ndarray] = {}
        for a in live:
            act = check_action(actions[a], self.action_space(a))
            acts[a] = act
            recipes[a] = self.recipe_spaces[a].decode((act[: self._d] + 1.0) / 2.0)
            choice[a] = min(int((act[self._d] + 1.0) / 2.0 * self._n), self._n - 1)
        hosts = {a: self._host(a, choice) for a in live}
        masked = {a: (choice[a] != 0 and hosts[a] == a) for a in live}
        loads: dict[str, list[str]] = {}
        for a in live:
            loads.setdefault(hosts[a], []).append(a)
        start = self.lab.now
        ids: dict[str, str] = {}
        for host, members in loads.items():
            prog = {f: getattr(recipes[host], f) for f in PROGRAMME_FIELDS}
            group = [Recipe(**{**recipes[m].to_dict(), "precursors": recipes[m].precursors, **prog})
                     for m in members]
            for m, sid in zip(members, self.lab.submit_load(group, tags=members), strict=True):
                ids[m] = sid
        finished = {r.sample_id: r for r in self.lab.run()}
        hours = max(self.lab.now - start, 1e-9) / 3600.0
        self._round_hours = hours
        throughput = self.throughput_weight * len(live) / hours * 24.0 / max(len(live), 1)
        rewards, terms, truncs, infos = {}, {}, {}, {}
        for a in live:
            rec = finished[ids[a]]
            outcome = Outcome.of(rec)
            failed, measured, own_hours = outcome.failed, outcome.performance, outcome.lab_hours
            parts = self.rewards_fn[a].score(outcome)
            waits = sum(rec.waits_s.values()) / 3600.0
            rewards[a] = float(parts.reward - self.wait_weight * waits + throughput)
            self._used[a] += 1
            perf = measured / self.rewards_fn[a].scale
            self._best[a] = max(self._best[a], perf)
            self._last_action[a] = acts[a]
            self._last_xrd[a] = np.array([rec.xrd_phase_fractions.get(p, 0.0) for p in self.solids])
            self._memory[a].add(ExperimentSummary.of(acts[a][: self._d], rec, perf, float(parts.success == 1.0),
                                                     failed, own_hours))
            self._queue_wait[a] = waits / 24.0
            terms[a] = self._used[a] >= self.budget
            truncs[a] = False
            infos[a] = {"host": hosts[a], "masked_choice": masked[a], "recipe": rec.recipe.to_dict(),
                        "measured_performance": measured, "queue_wait_h": waits, "round_lab_hours": hours,
                        "reward_parts": parts.as_dict()}
            privileged = privileged_info(self.lab.truth_system, rec.recipe)  # the true world's: evaluation only
            if privileged:
                infos[a]["privileged"] = privileged
        self.agents = [a for a in live if not terms[a]]
        obs = {a: self._obs(a) for a in live}
        for a in live:
            infos[a]["action_mask"] = self.action_mask(a)
        return obs, rewards, terms, truncs, infos
