"""``synthgap/FurnaceControl-v0``: steer one furnace load past a kinetic trap."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from .campaign import check_action
from .chemistry import Recipe, load_system, network_for
from .chemistry.firing import starting_amounts
from .chemistry.kinetics import milling_rate_factor
from .chemistry.recipe import RECIPE_BOUNDS, ROOM_TEMPERATURE, RecipeBatch
from .lab.thermal import FurnaceParams, FurnaceThermalModel

CONTROL_STEP = 60.0  # s, resolution of the furnace simulation inside an interval
KINETIC_STEPS = 6  # kinetic integration steps per interval
COOLING_RATE = 10.0  # K/min, natural cooling after the unload command
MAX_RAMP = 20.0  # K/min, the controller's setpoint rate limit


class FurnaceControlEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """Program a furnace interval by interval for one load, then unload it.

    One crucible of precursors (by default BaCO3 + TiO2 for BaTiO3, milled 2 h) sits in a
    furnace whose thermocouple is off by a hidden calibration offset and whose sample
    temperature drifts (Ornstein-Uhlenbeck) during dwells. Each step sets the setpoint
    for the next interval; the controller ramps to it at most at 20 K/min. The agent sees
    what a thermogravimetric furnace shows (thermocouple, mass loss), not the phases.

    ## Action Space
    ``Box(-1, 1, (2,), float32)``:

    | index | field    | range / meaning                                                  |
    |-------|----------|------------------------------------------------------------------|
    | 0     | setpoint | 573 to 1773 K, linear: the setpoint for the next interval        |
    | 1     | unload   | > 0 unloads: the furnace cools at 10 K/min, the sample comes out |

    The setpoint range is the recipes' dwell-temperature range
    (:mod:`synthgap.envs.chemistry.limits`), capped at the furnace's maximum; the
    controller ramps to it at most at 20 K/min. Out-of-box or non-finite actions raise
    ``ValueError``.

    ## Observation Space
    ``Box(-10, 10, (6,), float32)``: thermocouple reading / 2000 K, setpoint / 2000 K,
    elapsed time / maximum time, mass lost / initial mass (TGA), mass-loss rate over the
    last interval (fraction per hour), thermocouple standard deviation over the last
    interval / 10 K.

    ## Rewards
    Each interval costs ``time_weight`` x interval hours. At unloading the sample's
    performance / theoretical performance is paid (buildable: a trapped sample pays
    nearly nothing; over-firing coarsens grains and pays less).

    ## Starting State
    Room temperature, fresh precursors; a calibration offset drawn from N(0, offset_sigma).

    ## Episode End
    Terminates at unloading, or when the maximum number of intervals is reached (the
    load is then cooled and unloaded).

    ## Arguments
    system, target, precursors: what is fired (default BaTiO3 from BaCO3 + TiO2);
    interval: seconds per step (default 1800); max_intervals (default 24);
    offset_sigma: K (default 15); time_weight: reward per hour (default 0.005).

    ## Version History
    v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, system: str = "BaTiO3", target: str | None = None,
                 precursors: tuple[str, ...] | None = None, interval: float = 1800.0,
                 max_intervals: int = 24, offset_sigma: float = 15.0, time_weight: float = 0.005,
                 milling_time: float = 2.0, render_mode: str | None = None):
        self.system = load_system(system)
        self.target = target or next(t for t, v in self.system.targets.items() if not v.unobtainium)
        if self.target not in self.system.targets:
            raise ValueError(f"{self.target!r} is not a target of {self.system.name}")
        self.precursors = tuple(precursors or self.system.targets[self.target].precursor_sets[0])
        if not interval >= 4 * CONTROL_STEP:
            raise ValueError(f"interval must be >= {4 * CONTROL_STEP:g} s, got {interval!r}")
        if not (isinstance(max_intervals, int) and max_intervals >= 1):
            raise ValueError(f"max_intervals must be a positive int, got {max_intervals!r}")
        self.interval, self.max_intervals = float(interval), max_intervals
        self.offset_sigma, self.time_weight = float(offset_sigma), float(time_weight)
        self.render_mode = render_mode
        self.net = network_for(self.system)
        self.params = FurnaceParams()
        self.t_min = RECIPE_BOUNDS["dwell_temperature"][0]
        self.t_max = min(RECIPE_BOUNDS["dwell_temperature"][1], self.params.max_temperature_K)
        recipe = Recipe(self.target, self.precursors, milling_time=milling_time)
        batch = RecipeBatch.from_recipes(self.system, [recipe])
        self._start = starting_amounts(self.system, batch)
        self._rate = milling_rate_factor(batch.milling_time)
        self._atm = batch.atmosphere
        self._t_index = list(self.system.targets).index(self.target)
        self._mass0 = float(self._start[0] @ self.net.molar_mass)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Box(-10.0, 10.0, (6,), np.float32)
        self.furnace: FurnaceThermalModel | None = None

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        offset = float(self.np_random.normal(0.0, self.offset_sigma))
        params = FurnaceParams(**{**self.params.__dict__, "offset_K": offset})
        self.furnace = FurnaceThermalModel(params, self.np_random)
        self.amounts = self._start.copy()
        self.grain = None
        self.gas = np.zeros((1, len(self.system.gases)))
        self.lost = np.zeros_like(self.amounts)
        self.setpoint, self.tc, self.tc_std = ROOM_TEMPERATURE, ROOM_TEMPERATURE, 0.0
        self.elapsed, self.steps, self.mass_loss, self.loss_rate = 0.0, 0, 0.0, 0.0
        self.trace: list[tuple[float, float, float, float]] = []  # (time s, setpoint, tc, true) K
        return self._obs(), {"offset_K": offset}

    def _obs(self) -> NDArray[np.float32]:
        total = self.max_intervals * self.interval
        return np.clip(np.array([self.tc / 2000.0, self.setpoint / 2000.0, self.elapsed / total,
                                 self.mass_loss, self.loss_rate, self.tc_std / 10.0]), -10, 10).astype(np.float32)

    def _run(self, setpoints: np.ndarray) -> None:
        """Run the furnace along ``setpoints`` (one per CONTROL_STEP) and react the load."""
        dt = np.full(setpoints.size, CONTROL_STEP)
        true, tc = self.furnace.simulate(setpoints, dt)
        for k in range(setpoints.size):
            self.trace.append((self.elapsed + (k + 1) * CONTROL_STEP, setpoints[k], tc[k], true[k]))
        n = max(1, min(KINETIC_STEPS, setpoints.size))
        chunks = np.array_split(true, n)
        T = np.array([[c.mean() for c in chunks]])
        step_dt = np.array([[c.size * CONTROL_STEP for c in chunks]])
        state = self.net.integrate(self.amounts, T, step_dt, self._atm, self._rate, self.grain)
        before = self.mass_loss
        self.amounts, self.grain = state.amounts, state.grain_size
        self.gas += state.gas_released
        self.lost += state.volatilized
        mass = float(self.amounts[0] @ self.net.molar_mass)
        self.mass_loss = 1.0 - mass / self._mass0
        hours = setpoints.size * CONTROL_STEP / 3600.0
        self.loss_rate = (self.mass_loss - before) / hours
        self.tc, self.tc_std = float(tc[-1]), float(tc.std())
        self.elapsed += setpoints.size * CONTROL_STEP

    def step(self, action: NDArray[np.float32]) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        if self.furnace is None:
            raise RuntimeError("call reset() before step()")
        a = check_action(action, self.action_space)
        unload = a[1] > 0 or self.steps + 1 >= self.max_intervals
        target_sp = self.t_min + (a[0] + 1.0) / 2.0 * (self.t_max - self.t_min)
        n = int(round(self.interval / CONTROL_STEP))
        max_step = MAX_RAMP * CONTROL_STEP / 60.0
        sps = self.setpoint + np.clip(target_sp - self.setpoint, -max_step * np.arange(1, n + 1),
                                      max_step * np.arange(1, n + 1))
        self._run(sps)
        self.setpoint = float(sps[-1])
        self.steps += 1
        reward = -self.time_weight * self.interval / 3600.0
        info = {"setpoint_K": self.setpoint, "elapsed_h": self.elapsed / 3600.0}
        if unload:
            cool_steps = int(np.ceil((self.setpoint - ROOM_TEMPERATURE) / (COOLING_RATE * CONTROL_STEP / 60.0)))
            if cool_steps > 0:
                self._run(np.maximum(self.setpoint - COOLING_RATE * CONTROL_STEP / 60.0 * np.arange(1, cool_steps + 1),
                                     ROOM_TEMPERATURE))
            mass = self.amounts[0] * self.net.molar_mass
            fractions = mass / mass.sum()
            tf = float(fractions[self.net.solids.index(self.target)])
            from .chemistry.phenotype import performance

            perf = float(performance(self.system, np.array([self._t_index]), np.array([tf]),
                                     np.asarray(self.grain))[0])
            theo = self.system.targets[self.target].performance.theoretical
            reward += perf / theo
            info.update(target_fraction=tf, performance=perf, grain_size_um=float(self.grain[0]),
                        phase_fractions={p: float(x) for p, x in zip(self.net.solids, fractions, strict=True)})
        return self._obs(), float(reward), bool(unload), False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return (f"t={self.elapsed / 3600:.1f} h setpoint {self.setpoint:.0f} K thermocouple {self.tc:.0f} K "
                f"mass loss {100 * self.mass_loss:.1f} %")
