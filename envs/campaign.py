"""``synthgap/Campaign-v0``: a synthesis campaign, one experiment per step."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from .buildable import privileged_info
from .campaign_spaces import OBS_LIMIT, ExperimentSummary, History, task_layouts
from .chemistry import ChemicalSystem, Recipe, load_system
from .lab.world import DEFAULT_WORLD_SPREAD
from .lab_factories import LabFactory, SimLabFactory
from .reward import Outcome, RewardWeights

if TYPE_CHECKING:
    pass

__all__ = ["CampaignEnv", "LabFactory", "SimLabFactory", "check_action", "OBS_LIMIT", "parse_tasks"]

#: lab (and world) seeds of each split: train on one range, evaluate on the other
WORLD_SPLITS: dict[str | None, tuple[int, int]] = {None: (0, 2**31 - 1), "train": (0, 2**30),
                                                   "test": (2**30, 2**31 - 1)}


def check_action(action, space: spaces.Box) -> np.ndarray:
    """Validate an action without changing it.

    Raises:
        ValueError: the action has the wrong shape, is not finite, or lies outside the
            box (the env never clips what a user passed).
    """
    a = np.asarray(action, dtype=np.float64)
    if a.shape != space.shape:
        raise ValueError(f"action must have shape {space.shape}, got {a.shape}")
    if not np.isfinite(a).all():
        bad = ", ".join(str(int(i)) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(f"action must be finite, got action[{bad}] = {a[~np.isfinite(a)][0]}"
                         + (f" in {a.tolist()}" if a.size <= 32 else ""))
    outside = (a < space.low - 1e-6) | (a > space.high + 1e-6)
    if outside.any():
        bad = tuple(int(i) for i in np.argwhere(outside)[0])  # the first, for an action or a batch of them
        where = ", ".join(map(str, bad))
        raise ValueError(f"action[{where}] = {a[bad]:g} is outside [{space.low[bad]:g}, {space.high[bad]:g}]; "
                         "the env does not clip actions")
    return a


def parse_tasks(tasks: Sequence[Any]) -> list[tuple[ChemicalSystem, tuple[str, ...] | None]]:
    """Tasks as (system, candidate targets or None) pairs: each item a system (name, file or
    :class:`ChemicalSystem`, every target a candidate) or a (system, targets) pair.

    Raises:
        ValueError: no tasks, or an item of another shape.
    """
    out = []
    for item in tasks:
        if isinstance(item, str | ChemicalSystem):
            system, targets = item, None
        elif isinstance(item, Sequence) and len(item) == 2:
            system, targets = item
        else:
            raise ValueError(f"a task is a system or a (system, targets) pair, got {item!r}")
        system = load_system(system) if isinstance(system, str) else system
        out.append((system, None if targets is None else tuple(targets)))
    if not out:
        raise ValueError("tasks must name at least one system")
    return out


class CampaignEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """A self-driving-lab campaign: choose a target and a recipe, run it, learn, repeat.

    Each step is one experiment run through a :class:`~synthgap.envs.lab.frontend.Lab`
    (the SimPy twin by default, any Lab by argument): dispense, mill, press, fire, XRD,
    property measurement. The episode is a campaign with a budget of experiments.

    ## Action Space
    ``Box(-1, 1, (6 + R + A,), float32)``: a recipe (:mod:`synthgap.envs.campaign_spaces`).
    The six continuous fields map affinely to the unit box of
    :class:`~synthgap.envs.recipe_space.RecipeSpace`; ranges and scales are those of
    :mod:`synthgap.envs.chemistry.limits` (``tests/test_limits.py`` holds this table to them).
    Route and atmosphere are categories, one logit per option, chosen by argmax:

    | index | field             | range / meaning                                   |
    |-------|-------------------|---------------------------------------------------|
    | 0     | excess            | 0 to 0.3 (fraction of the first precursor), linear |
    | 1     | milling_time      | 0 to 12 h, linear                                  |
    | 2     | ramp_rate         | 1 to 50 K/min, log                                 |
    | 3     | dwell_temperature | 573 to 1773 K, linear                              |
    | 4     | dwell_time        | 0.1 to 48 h, log                                   |
    | 5     | cooling_rate      | 0.5 to 50 K/min, log                               |
    | 6     | route             | R logits, one per (target, precursor set): argmax  |
    | 6 + R | atmosphere        | air, O2, N2, CO2, A = 4 logits: argmax             |

    ``env.unwrapped.decode_action(action)`` gives the recipe; ``encode_recipe`` the inverse.
    Actions outside the box or not finite raise ``ValueError`` (never clipped).

    ## Observation Space
    ``Box(-10, 10, (2 C + k (D + 8) + D + 1 + P + 4,), float32)`` with ``D = 6 + R + A``,
    what a chemist would know (nothing of the lab's hidden world):

    | part                    | size | meaning                                          |
    |-------------------------|------|--------------------------------------------------|
    | candidate descriptors   | 2 C  | per candidate target: theoretical performance / max, |
    |                         |      | on the 0 K hull (1/0)                            |
    | history                 | k (D + 8) | the last ``k`` experiments, newest first: the recipe |
    |                         |      | as an action (D), measured performance / max, measured target |
    |                         |      | weight fraction, success (1/0), failed (1/0), dwell thermocouple |
    |                         |      | minus setpoint / 50 K, dwell thermocouple std / 10 K, lab hours / 24 h, |
    |                         |      | filled (1/0); empty slots are 0                  |
    | best so far             | D + 1 | the recipe with the best measured performance (an action), |
    |                         |      | that performance / max                           |
    | last XRD                | P    | measured weight fractions of the system's P solids |
    | lab                     | 2    | relative humidity at the last dispensing (0-1), last queue wait / 24 h |
    | budget                  | 2    | experiments left / budget, lab time used / (24 h x budget) |

    **A task distribution** (``tasks=`` several systems) has one system-agnostic layout for
    all of them (:class:`~synthgap.envs.campaign_spaces.CampaignLayout`): ``R`` is the most
    routes any task has (a task's routes fill the first slots; the argmax ignores the rest);
    the candidate descriptors become ``6 R`` entries, per route slot: valid (1/0),
    theoretical performance / max, on the 0 K hull (1/0), and the target weight fraction the
    lab's belief (the nominal model) predicts for the route fired 4 h at 1073, 1373 and
    1673 K (a low value at the cooler ones: little driving force or a kinetic trap); the
    last XRD becomes 3 entries (the chosen target's, its precursors' and all other phases'
    measured weight fractions). Empty slots are 0. ``info["system"]`` names the task.

    ## Rewards
    What the lab measured (``reward="measured"``, the default; :mod:`synthgap.envs.reward`):
    measured performance / max + 0.1 for a measured success (target weight fraction >= 0.5)
    - 0.005 per lab hour - 0.1 for a failed experiment; identical measurements pay
    identically, whatever the recipe. ``reward="buildable"``: measured performance x the
    recipe's process window under the lab's *belief* (the nominal model), minus lab-time and
    risk costs. ``reward="performance_only"`` pays the traditional objective: the
    theoretical performance of the chosen target if it is on the 0 K hull.
    ``info["sample_id"]`` names the lab's record of the experiment (``lab.record(sample_id)``)
    and ``info["lab"]`` which kind of lab made it ("twin", "direct", "hardware");
    ``info["reward_parts"]`` holds what the reward paid;
    ``info["privileged"]["buildable"]`` is the recipe's buildable performance in the lab's
    true world (property unit; absent on hardware), for evaluation only: no agent, reward or
    planner may use it.

    ## Starting State
    A fresh lab seeded from the env's generator, in a world of its own (the default twin
    draws its kinetics, furnaces and precursors around the nominal model,
    :mod:`synthgap.envs.lab.world`); nothing measured yet.

    ## Episode End
    Terminates when the budget of experiments is spent. No truncation of its own.

    ## Arguments
    system: catalogue name or system file (default "BaTiO3"); targets: candidate targets
    (default all, unobtainium included); budget: experiments per campaign (default 20);
    reward: "measured", "buildable" or "performance_only"; weights: :class:`RewardWeights`;
    history: k, experiments kept in the observation (default 4); split: None (any world),
    "train" (lab seeds below 2**30) or "test" (at or above): train a policy on some worlds,
    evaluate it on worlds it never saw;
    lab: a :class:`~synthgap.envs.lab.frontend.Lab` to use as is (e.g. a HardwareLab; the
    caller closes it), or None for a lab from ``lab_factory``;
    lab_factory: callable (system, seed) -> Lab made fresh at each reset (and closed at the
    next reset and at ``close()``); default the SimPy twin with ``n_furnaces``;
    n_furnaces: furnaces of the default twin; world_spread: the default twin's hidden world
    (:mod:`synthgap.envs.lab.world`, default 1: every episode a lab of its own; 0: the
    catalogue's nominal world every episode); tasks: the systems (or (system, targets) pairs)
    a campaign is drawn from at each reset, uniformly (``reset(options={"task": name})`` picks
    one). Default ``[(system, targets)]``: one task, the layout above; several: the
    system-agnostic layout, so one policy can be trained on some systems and evaluated on others.

    ## Version History
    v0: initial version.

    Example::

        >>> import gymnasium as gym, synthgap.envs
        >>> env = gym.make("synthgap/Campaign-v0", budget=3)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape == env.observation_space.shape
        True
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        system: str | ChemicalSystem = "BaTiO3",
        targets: Sequence[str] | None = None,
        budget: int = 20,
        reward: str = "measured",
        weights: RewardWeights | None = None,
        lab=None,
        lab_factory: LabFactory | None = None,
        n_furnaces: int = 2,
        render_mode: str | None = None,
        world_spread: float = DEFAULT_WORLD_SPREAD,
        history: int = 4,
        split: str | None = None,
        tasks: Sequence[Any] | None = None,
    ):
        if tasks is not None and targets is not None:
            raise ValueError("give the candidate targets per task (tasks=[(system, targets), ...]), not targets=")
        self.tasks = parse_tasks(tasks if tasks is not None else [(system, targets)])
        if lab is not None and len(self.tasks) > 1:
            raise ValueError("a lab passed in has one system: give one task with lab=, or a lab_factory")
        if not isinstance(budget, int) or budget < 1:
            raise ValueError(f"budget must be a positive int, got {budget!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.layouts = task_layouts(self.tasks, reward, weights, history)
        self._use(0)
        self.budget, self.render_mode = budget, render_mode
        if split not in WORLD_SPLITS:
            raise ValueError(f"split must be one of {sorted(WORLD_SPLITS, key=str)}, got {split!r}")
        self.split = split
        self._fixed_lab = lab
        self._factory = lab_factory or SimLabFactory(n_furnaces, world_spread)
        self._history_k = history
        self.action_space = spaces.Box(-1.0, 1.0, (self.actions.dim,), np.float32)
        self.observation_space = spaces.Box(-OBS_LIMIT, OBS_LIMIT, (self.layout.obs_size,), np.float32)
        self.lab = None
        self._reset_state()

    def task_index(self, task: int | str) -> int:
        """The index of a task given by index or system name.

        Raises:
            ValueError: no such task.
        """
        names = [system.name for system, _ in self.tasks]
        if isinstance(task, str) and task in names:
            return names.index(task)
        if isinstance(task, int) and not isinstance(task, bool) and 0 <= task < len(self.tasks):
            return task
        raise ValueError(f"unknown task {task!r}; the tasks are {names} (or their indices)")

    def _use(self, task: int) -> None:
        """Campaign in task ``task`` (its system, candidates, recipe space, reward, encoding)."""
        self.task = task
        self.layout = lay = self.layouts[task]
        self.system, self.space, self.candidates, self.reward_fn = lay.system, lay.space, lay.candidates, lay.reward_fn
        self.actions, self.solids = lay.actions, lay.solids

    def decode_action(self, action: NDArray[np.float32]) -> Recipe:
        """The recipe an action stands for (validated like a step's action)."""
        return self.actions.decode(check_action(action, self.action_space))

    def encode_recipe(self, recipe: Recipe) -> NDArray[np.float32]:
        """An action that decodes to ``recipe`` (categories' logits at +-0.5)."""
        return self.actions.encode(recipe).astype(np.float32)

    def _reset_state(self) -> None:
        self.memory = History(self._history_k, self.actions.dim)
        self._last_xrd = np.zeros(self.layout.xrd_size)
        self._lab_state = np.zeros(2)
        self._best = 0.0
        self._used = 0
        self._lab_hours = 0.0
        self.history: list[dict] = []

    def _obs(self) -> NDArray[np.float32]:
        budget = np.array([(self.budget - self._used) / self.budget,
                           self._lab_hours / (24.0 * self.budget)])
        return self.layout.observation(self.memory.vector(), self._last_xrd, self._lab_state, budget)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        if options and "task" in options:  # evaluate in one task of the distribution
            self._use(self.task_index(options["task"]))
        elif len(self.tasks) > 1:
            self._use(int(self.np_random.integers(len(self.tasks))))
        self._reset_state()
        if self._fixed_lab is not None:
            self.lab = self._fixed_lab
        else:
            self._close_own_lab()
            low, high = WORLD_SPLITS[self.split]
            self.lab = self._factory(self.system, int(self.np_random.integers(low, high)))
        return self._obs(), {"candidates": list(self.candidates), "system": self.system.name}

    def step(self, action: NDArray[np.float32]) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        if self.lab is None:
            raise RuntimeError("call reset() before step()")
        if self._used >= self.budget:
            raise RuntimeError("the campaign's budget is spent; call reset()")
        a = check_action(action, self.action_space)
        recipe = self.actions.decode(a)
        record = self.lab.run_recipe(recipe)
        outcome = Outcome.of(record)
        failed, measured, hours = outcome.failed, outcome.performance, outcome.lab_hours
        parts = self.reward_fn.score(outcome)
        self._used += 1
        self._lab_hours += hours
        perf = measured / self.reward_fn.scale
        self._best = max(self._best, perf)
        fractions = np.array([[record.xrd_phase_fractions.get(p, 0.0) for p in self.solids]])
        self._last_xrd = self.layout.xrd_features(fractions, np.array([self.layout.route_index(recipe)]))[0]
        self.memory.add(ExperimentSummary.of(a, record, perf, float(parts.success == 1.0), failed, hours))
        lab_state = (record.humidity, sum(record.waits_s.values()) / 3600.0 / 24.0)
        self._lab_state = np.array([v if math.isfinite(v) else 0.0 for v in lab_state])  # nothing logged: 0
        info = {"sample_id": record.sample_id, "lab": self.lab.kind, "system": self.system.name,
                "recipe": recipe.to_dict(),
                "status": record.status, "measured_performance": measured,
                "xrd": dict(record.xrd_phase_fractions), "reward_parts": parts.as_dict(),
                "lab_hours": hours, "best_performance": self._best * self.reward_fn.scale}
        privileged = privileged_info(self.lab.truth_system, recipe)  # the true world's: evaluation only
        if privileged:
            info["privileged"] = privileged
        self.history.append(info)
        terminated = self._used >= self.budget
        return self._obs(), float(parts.reward), terminated, False, info

    def _close_own_lab(self) -> None:
        """Close the lab this env made (a hardware lab frees its ports); a lab passed in is the caller's."""
        lab, self.lab = self.lab, None
        if lab is not None and lab is not self._fixed_lab:
            lab.close()

    def close(self) -> None:
        self._close_own_lab()
        super().close()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if not self.history:
            return "campaign: no experiments yet"
        h = self.history[-1]
        r = h["recipe"]
        return (f"[{self._used}/{self.budget}] {r['target']} from {'+'.join(r['precursors'])} "
                f"at {r['dwell_temperature']:.0f} K for {r['dwell_time']:.1f} h -> "
                f"{h['measured_performance']:.4g} (reward {h['reward_parts']['reward']:+.3f})")
